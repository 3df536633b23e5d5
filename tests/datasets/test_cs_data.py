"""CS data: the authors' luminance, the sampling matrices (the authors' files, the seeded
recipe, the least-squares Qinit and its cache), the synthetic set and the measurement noise."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from bench.datasets import cs as D
from bench.errors import DataError


def test_luminance_is_opencvs_fixed_point_bt601_and_leaves_gray_unchanged():
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert np.array_equal(D.luminance_u8(np.stack([gray] * 3, -1)), gray)
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 200, 30]]], dtype=np.uint8)
    # by hand: (R 4899 + G 9617 + B 1868 + 8192) >> 14
    expected = [(255 * 4899 + 8192) >> 14, (255 * 9617 + 8192) >> 14, (255 * 1868 + 8192) >> 14,
                (10 * 4899 + 200 * 9617 + 30 * 1868 + 8192) >> 14]
    assert D.luminance_u8(rgb)[0].tolist() == expected == [76, 150, 29, 124]


def test_palette_images_are_read_through_their_palette(tmp_path):
    from PIL import Image

    a = (np.arange(64, dtype=np.uint8) * 3).reshape(8, 8)
    im = Image.fromarray(a, mode="L").convert("P")
    path = str(tmp_path / "p.tif")
    im.save(path)
    assert Image.open(path).mode == "P"
    assert np.array_equal(D.read_luminance(path), a)
    with pytest.raises(DataError, match="not a readable image"):
        (tmp_path / "bad.tif").write_bytes(b"not an image")
        D.read_luminance(str(tmp_path / "bad.tif"))


@pytest.mark.parametrize("ratio", [1, 25, 50])
def test_generated_phi_has_orthonormal_rows_and_depends_on_the_seed_only(ratio):
    phi = D.generate_phi(ratio, 3)
    assert phi.shape == (D.MEASUREMENTS[ratio], 1089)
    torch.testing.assert_close(phi @ phi.T, torch.eye(phi.shape[0], dtype=torch.float64), atol=1e-12, rtol=0)
    assert torch.equal(phi, D.generate_phi(ratio, 3))
    assert not torch.allclose(phi, D.generate_phi(ratio, 4))


def test_fitted_qinit_solves_the_authors_normal_equations():
    """Qinit = X Y^T (Y Y^T)^-1: the residual X - Qinit Y is orthogonal to Y."""
    g = torch.Generator().manual_seed(0)
    blocks = torch.rand(400, 1089, generator=g, dtype=torch.float64)
    phi = D.generate_phi(10, 0)
    q = D.fit_qinit(phi, blocks)
    y = blocks @ phi.T
    residual = blocks - y @ q.T
    assert q.shape == (1089, 109)
    assert float((residual.T @ y).abs().max()) < 1e-8 * float((blocks.T @ y).abs().max())
    # the same as the authors' explicit formula
    x_t = blocks.T
    authors = (x_t @ y) @ torch.linalg.inv(y.T @ y)
    torch.testing.assert_close(q, authors, atol=1e-8, rtol=1e-6)
    with pytest.raises(DataError, match="need at least as many"):
        D.fit_qinit(D.generate_phi(50, 0), blocks)


def test_training_blocks_are_the_non_overlapping_row_major_blocks():
    im = torch.arange(70 * 40, dtype=torch.float64).reshape(70, 40)
    b = D.training_blocks([im])
    assert b.shape == (2, 1089)                     # 2 x 1 whole blocks; the remainders are dropped
    assert torch.equal(b[1], im[33:66, :33].reshape(-1))


def test_synthetic_set_is_seeded_8bit_and_in_range():
    a = D.CsSynthetic(n_images=2, size=40, ratio=10).load()
    b = D.CsSynthetic(n_images=2, size=40, ratio=10).load()
    c = D.CsSynthetic(n_images=2, size=40, ratio=10, instance_seed=1).load()
    assert a.instance_id == b.instance_id != c.instance_id
    for im in a.images:
        assert im.shape == (40, 40) and float(im.min()) >= 0 and float(im.max()) <= 1
        assert torch.equal(torch.round(im * 255), im * 255)
        assert float(im.std()) > 0.05
    assert a.matrix.kind == "generated" and a.matrix.qinit.shape == (1089, 109)


def test_measurement_noise_is_seeded_and_has_its_std():
    y = torch.zeros(200, 545, dtype=torch.float64)
    n = D.MeasurementNoise(sigma=10.0)
    a = n.apply(y, torch.Generator().manual_seed(1))
    assert torch.equal(a, n.apply(y, torch.Generator().manual_seed(1)))
    assert abs(float(a.std()) * 255 / 10.0 - 1) < 0.01
    assert torch.equal(D.MeasurementNoise().apply(y + 1, torch.Generator()), y + 1)


# --------------------------------------------------------------------------- the data root
def test_set11_reads_the_eleven_luminance_images(data_root):
    d = D.Set11(ratio=10).load(data_root)
    assert d.names == D.SET11 and len(d) == 11
    sizes = {n: tuple(im.shape) for n, im in zip(d.names, d.images)}
    assert sizes["fingerprint"] == sizes["flinstones"] == (512, 512)
    assert all(s == (256, 256) for n, s in sizes.items() if n not in ("fingerprint", "flinstones"))
    for im in d.images:
        assert torch.equal(torch.round(im * 255), im * 255) and 0 <= float(im.min()) < float(im.max()) <= 1
    sub = D.Set11(ratio=10, names="Parrots+Monarch").load(data_root)
    assert sub.names == ("Parrots", "Monarch") and torch.equal(sub.images[1], d.images[0])


def test_the_authors_matrices_have_orthonormal_rows(data_root):
    for r in D.AUTHORS_RATIOS:
        m = D.authors_matrix(r, data_root)
        assert m.phi.shape == (D.MEASUREMENTS[r], 1089) and m.qinit.shape == (1089, D.MEASUREMENTS[r])
        torch.testing.assert_close(m.phi @ m.phi.T, torch.eye(m.phi.shape[0], dtype=torch.float64), atol=1e-10, rtol=0)
    with pytest.raises(DataError, match="no sampling matrix for ratio 50"):
        D.authors_matrix(50, data_root)
    assert D.sampling_matrix(10, "auto", 0, data_root).kind == "authors"


def test_ratio_50_generates_a_matrix_and_caches_its_train400_qinit(data_root, tmp_path, monkeypatch):
    from bench import paths
    monkeypatch.setattr(paths, "CACHE_DIR", str(tmp_path))
    m = D.sampling_matrix(50, "auto", 0, data_root)
    assert m.kind == "generated" and m.label == "generated(seed=0)" and "train400" in m.source
    cached = os.listdir(tmp_path / "cs")
    assert len(cached) == 1 and cached[0].startswith("qinit_r50_seed0_train400-")
    again = D.sampling_matrix(50, "generated", 0, data_root)         # read from the cache
    assert torch.equal(again.qinit, m.qinit) and again.digest == m.digest
    # Qinit is the least-squares map: better than Phi^T on train400 blocks
    images, _ = D.train400_images(data_root)
    x = D.training_blocks(images[:40])
    y = x @ m.phi.T
    assert float((y @ m.qinit.T - x).pow(2).mean()) < float((y @ m.phi - x).pow(2).mean())


def test_a_missing_data_root_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"set11 data set .* not under the data root .* `python -m bench data fetch set11`"):
        D.Set11().load(str(tmp_path))
    with pytest.raises(DataError, match="no data root"):
        D.Set11().load(None)


# --------------------------------------------------------------------------- data identity and checks
def _copy_monarch(data_root, dst, with_sums: bool):
    """A scratch data root holding Monarch, the authors' 25 % matrix and (``with_sums``)
    the real root's SHA256SUMS; Monarch then overwritten with a valid all-zero image."""
    import shutil

    from PIL import Image

    for rel in ("cs/Set11/Monarch.tif", "cs/sampling_matrix/phi_0_25_1089.mat",
                "cs/sampling_matrix/Initialization_Matrix_25.mat"):
        os.makedirs(os.path.dirname(dst / rel), exist_ok=True)
        shutil.copy(os.path.join(data_root, rel), dst / rel)
    if with_sums:
        shutil.copy(os.path.join(data_root, "SHA256SUMS"), dst / "SHA256SUMS")
    Image.fromarray(np.zeros((256, 256), np.uint8)).save(dst / "cs/Set11/Monarch.tif")
    return str(dst)


def _run_monarch(store, data_root):
    from bench.grid import build_cells
    from bench.runner import RunOptions, run_grid

    cells = build_cells("cs", ["set11[names=Monarch]"], ["measurement_noise"], ["qinit"], ["cpu"], 0,
                        data_root=data_root)
    return run_grid(cells, store, RunOptions(data_root=data_root, repeat=1, warmup=False, threads=1),
                    progress=False)


def test_a_corrupt_set11_file_fails_its_cell_by_name_and_a_row_is_never_reused_on_other_data(
        data_root, tmp_path):
    """A corrupt Set11 file listed in SHA256SUMS fails its cell naming the file and the fetch
    command (it used to be scored: PSNR 100 dB); without SHA256SUMS it is scored, but the
    row is never reused for the real data (it used to be: "1 reused", 100 dB kept)."""
    from bench.store import Store

    store = Store(str(tmp_path / "s.sqlite"))
    s = _run_monarch(store, _copy_monarch(data_root, tmp_path / "sums", with_sums=True))
    assert s.failed == 1 and s.done == 0
    error = store.frame("cs", status="failed").iloc[0]["error"]
    assert "Monarch.tif" in error and "checksum mismatch" in error and "bench data fetch set11" in error
    s = _run_monarch(store, _copy_monarch(data_root, tmp_path / "nosums", with_sums=False))
    assert s.done == 1
    s = _run_monarch(store, data_root)
    assert s.reused == 0 and s.done == 1
    ok = store.frame("cs")
    values = sorted(float(m["psnr_cs"]) for m in ok["metrics"])
    assert values[0] == pytest.approx(25.50, abs=0.01) and values[1] == pytest.approx(100.0)
    store.close()


def test_an_image_under_the_ssim_window_is_refused_naming_the_file(tmp_path):
    from PIL import Image

    os.makedirs(tmp_path / "cs" / "Set11")
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(tmp_path / "cs/Set11/Monarch.tif")
    with pytest.raises(DataError, match=r"Monarch\.tif: 1x1 pixels, smaller than the 7x7 window"):
        D.Set11(names="Monarch").load(str(tmp_path))


def test_a_non_finite_sampling_matrix_is_refused_naming_the_file(tmp_path):
    import scipy.io as sio

    phi = np.ones((272, 1089))
    phi[0, 0] = np.nan
    sio.savemat(tmp_path / "phi.mat", {"phi": phi})
    with pytest.raises(DataError, match=r"phi\.mat: 1 non-finite value"):
        D._load_mat(str(tmp_path / "phi.mat"), "phi")


def test_set11_lists_its_images_and_matrix_files():
    ds = D.Set11(names="Monarch+Parrots", ratio=25)
    assert ds.files("/r") == ("/r/cs/Set11/Monarch.tif", "/r/cs/Set11/Parrots.tif",
                              "/r/cs/sampling_matrix/phi_0_25_1089.mat",
                              "/r/cs/sampling_matrix/Initialization_Matrix_25.mat")
    assert D.CsSynthetic().files("/r") == ()
