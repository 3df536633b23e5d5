"""The manifest of the real data sets ``bench data list`` / ``bench data fetch`` know: every
file with its place under the data root, its SHA-256 and size, where it comes from and what
to cite. Metadata only: the files themselves are downloaded by the user (never part of the
repository). The published weights' manifest is :data:`bench.weights.MANIFEST`; their sizes
are in :data:`ALL_WEIGHT_FILES` here.

Sources are those the shared data README names (a GitHub repository, a path in it and, where
the README records it, a commit). A file is fetched from ``https://github.com/<repo>/raw/
<ref>/<path>``: ``ref`` is the recorded commit, or ``HEAD`` (the default branch) where the
README records none; either way the bytes are checked against the SHA-256 here, so a source
that moved on is detected (the file is refused, never used). The source paths were taken from
the README (``images/``, ``masks/`` and ``idx_427/`` of YimianDai/sirst, the renamed CAVE
files' original names) and, where they could be, checked against the repositories' file
lists. A set with no public download (``istd_reference``: outputs of the IPI authors' code
made for this project) says so and how to make it.

The files are data, not code: ``bench/data_registry/data.txt`` and ``weights.txt`` are
registry files in pooch's own format (``path sha256`` per line, ``#`` comment lines; what
``pooch.Pooch.load_registry`` reads), with the sizes in bytes beside them in
``data_sizes.txt`` and ``weights_sizes.txt`` (``path bytes``). They are read at import into
:data:`ALL_FILES` and :data:`ALL_WEIGHT_FILES`; the data registry lists exactly the files of
the shared data folder's ``SHA256SUMS`` (a test checks it where that folder is present). A
file's data set is the set whose ``prefixes`` hold it; where it comes from is in
:data:`DATASETS` below. ``irstd1k_test.txt`` (same format, no sizes) holds the SHA-256 of
each IRSTD-1k test image and mask as distributed, for ``bench data verify irstd1k``
(:mod:`bench.data_verify`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Source:
    """Where the files under ``prefix`` (relative to the data root) come from: the GitHub
    ``repo`` at ``ref``, with ``prefix`` replaced by ``source_prefix`` (``renames``: files
    whose name differs)."""

    prefix: str
    repo: str
    ref: str                    # a commit, or HEAD when the data README records none
    source_prefix: str
    renames: tuple[tuple[str, str], ...] = ()
    #: the source's text files end their lines with CRLF where the data root's copy has LF:
    #: a download is converted (CRLF -> LF) before its SHA-256 is checked
    crlf: bool = False

    def source_path(self, relpath: str) -> str:
        rest = relpath[len(self.prefix):]
        for local, remote in self.renames:
            if rest == local:
                rest = remote
        return self.source_prefix + rest

    def url(self, relpath: str) -> str:
        return f"https://github.com/{self.repo}/raw/{self.ref}/{self.source_path(relpath)}"

    @property
    def where(self) -> str:
        ref = self.ref if self.ref != "HEAD" else "default branch (commit not recorded)"
        return f"github.com/{self.repo} @ {ref}, {self.source_prefix or '/'}"


@dataclass(frozen=True)
class DataSet:
    name: str                   # `bench data fetch NAME`
    suite: str
    title: str
    prefixes: tuple[str, ...]   # its files: those under these paths of the data root
    cite: str
    sources: tuple[Source, ...] = ()
    #: why it cannot be downloaded and what to do instead (None: it can)
    manual: str | None = None
    uses: str = ""              # what reads it (the project's datasets, a command)
    #: a set the user downloads by hand (``manual`` says how and where to put it): the manifest
    #: has no hashes of its files (IRSTD-1k's test files: ``bench data verify irstd1k``)
    by_hand: bool = False
    files: tuple[tuple[str, int, str], ...] = field(default=(), compare=False)  # (path, size, sha256)

    def source_of(self, relpath: str) -> Source | None:
        best = None
        for s in self.sources:
            if relpath.startswith(s.prefix) and (best is None or len(s.prefix) > len(best.prefix)):
                best = s
        return best


_SIRST_CITE = ("Dai, Wu, Zhou, Barnard, \"Asymmetric Contextual Modulation for Infrared Small Target Detection\", "
               "WACV 2021")
_NUDT_CITE = ("Li, Xiao, Wang, Wang, Lin, Li, An, Guo, \"Dense Nested Attention Network for Infrared Small "
              "Target Detection\", IEEE TIP 2023")
_IRSTD1K_CITE = ("Zhang, Zhang, Yang, Bai, Shi, \"ISNet: Shape Matters for Infrared Small Target Detection\", "
                 "CVPR 2022")
_ISTANET_CITE = ("Zhang, Ghanem, \"ISTA-Net: Interpretable optimization-inspired deep network for image "
                 "compressive sensing\", CVPR 2018")
_CAVE_CITE = "Yasuma, Mitsunaga, Iso, Nayar, \"Generalized assorted pixel camera\", IEEE TIP 2010"
_UNMIX_CITE = ("Zhu, \"Hyperspectral unmixing: ground truth labeling, datasets, benchmark performances and survey\", "
               "arXiv 1708.05125")

DATASETS: tuple[DataSet, ...] = (
    DataSet("sirst", "istd", "SIRST (NUAA-SIRST) v1: 427 infrared images, masks, the authors' idx_427 split",
            ("istd/sirst-v1/images/", "istd/sirst-v1/masks/", "istd/sirst-v1/splits/idx_427/"), _SIRST_CITE,
            (Source("istd/sirst-v1/images/", "YimianDai/sirst", "84302ab", "images/"),
             Source("istd/sirst-v1/masks/", "YimianDai/sirst", "84302ab", "masks/"),
             Source("istd/sirst-v1/splits/idx_427/", "YimianDai/sirst", "84302ab", "idx_427/")),
            uses="sirst"),
    DataSet("sirst_50_50", "istd", "SIRST's 213/214 split of DNANet and BasicIRSTD-style papers",
            ("istd/sirst-v1/splits/50_50/",), _SIRST_CITE,
            (Source("istd/sirst-v1/splits/50_50/", "YeRen123455/Infrared-Small-Target-Detection", "HEAD",
                    "dataset/NUAA-SIRST/50_50/"),), uses="sirst[split=50_50]"),
    DataSet("nudt_sirst", "istd",
            "NUDT-SIRST: 1,327 synthetic-target infrared images (256x256) and masks, the official 50_50 split "
            "(train 663, test 664; the papers quote 662 test images, but no 662-name list is public)",
            ("istd/NUDT-SIRST/",), _NUDT_CITE,
            (Source("istd/NUDT-SIRST/images/", "15730845297/Infrared-Small-Target-Detection", "0d42d23",
                    "dataset/NUDT-SIRST/images/"),
             Source("istd/NUDT-SIRST/masks/", "15730845297/Infrared-Small-Target-Detection", "0d42d23",
                    "dataset/NUDT-SIRST/masks/"),
             Source("istd/NUDT-SIRST/50_50/", "YeRen123455/Infrared-Small-Target-Detection", "21584be",
                    "dataset/NUDT-SIRST/50_50/", crlf=True)),
            uses="nudt_sirst"),
    DataSet("irstd1k_reference", "istd",
            "what identifies IRSTD-1k: the official split (test 201, trainval 800) and the SHA-256 of each test "
            "image and mask as distributed (no images)",
            ("istd/IRSTD-1k-reference/",), _IRSTD1K_CITE,
            manual=("the split lists are github RuiZhang97/ISNet @ c5a7548, IRSTD-1k/{test,trainval}.txt; "
                    "expected_test_sha256.tsv was made for this project from the hash list in github "
                    "Arialliy/RC-IRSTD @ 638db24, audits/aaai27/dataset_contract_v1.json; the same split and "
                    "hashes ship with the project (bench/data_registry/irstd1k_test.txt), so `python -m bench "
                    "data verify irstd1k` needs no copy of this folder"),
            uses="tests of the shipped IRSTD-1k hashes"),
    DataSet("irstd1k", "istd", "IRSTD-1k: 1,001 real infrared images (512x512) and masks, test 201, trainval 800",
            ("istd/IRSTD-1k/",), _IRSTD1K_CITE,
            manual=("the images are only on the authors' cloud drive: follow the download link in github "
                    "RuiZhang97/ISNet's README, then unpack so that <data root>/istd/IRSTD-1k/ holds IRSTD1k_Img/, "
                    "IRSTD1k_Label/, test.txt and trainval.txt (the BasicIRSTD layout images/, masks/, img_idx/ is "
                    "read too); `python -m bench data verify irstd1k` checks the 201 test images and masks file by "
                    "file against the SHA-256 shipped with the project"),
            uses="irstd1k", by_hand=True),
    DataSet("sirst_aug", "istd", "SIRST-Aug: the AGPCNet authors' augmented SIRST (256x256), subsets trainval and test",
            ("istd/SIRST-Aug/",),
            ("Zhang, Li, Cao, Pu, Peng, \"Attention-Guided Pyramid Context Networks for Detecting Infrared Small "
             "Target Under Complex Background\", IEEE TAES 2023 (AGPCNet)"),
            manual=("the images are only on the authors' cloud drive: follow the download link in github "
                    "Tianfang-Zhang/AGPCNet's README, then unpack so that <data root>/istd/SIRST-Aug/ holds trainval/ "
                    "and test/, each with images/ and masks/ (masks named as their images)"),
            uses="sirst_aug", by_hand=True),
    DataSet("istd_reference", "istd", "what the IPI authors' code outputs on the SIRST test split (maps, times)",
            ("istd/reference/",), "the IPI authors' code: Gao et al., IEEE TIP 2013; " + _SIRST_CITE,
            manual=("made for this project by running the IPI authors' code (github "
                    "gaocq/IPI-for-small-target-detection) on the 86 SIRST test images with GNU Octave; no public "
                    "download: copy istd/reference/ from a machine that has it (tests that need it skip without it)"),
            uses="the IPI port's reference tests"),
    DataSet("set11", "cs", "Set11: the 11 test images of image compressive sensing papers", ("cs/Set11/",),
            _ISTANET_CITE, (Source("cs/Set11/", "jianzhangcs/ISTA-Net-PyTorch", "HEAD", "data/Set11/"),),
            uses="set11"),
    DataSet("cs_sampling_matrix", "cs", "ISTA-Net's measurement matrices and initialisations, ratios 1-40 %",
            ("cs/sampling_matrix/",), _ISTANET_CITE,
            (Source("cs/sampling_matrix/", "jianzhangcs/ISTA-Net-PyTorch", "f699040", "sampling_matrix/"),),
            uses="set11 (every cs method reads the matrix of its ratio)"),
    DataSet("train400", "cs", "400 gray 180x180 BSD training images of DnCNN", ("cs/train400/",),
            "Zhang et al., \"Beyond a Gaussian denoiser\", IEEE TIP 2017; Martin et al., ICCV 2001 (BSD)",
            (Source("cs/train400/", "cszn/DnCNN", "e93b278", "TrainingCodes/DnCNN_TrainingCodes_v1.0/data/Train400/"),),
            uses="bench train --suite cs"),
    DataSet("abu", "hsi", "ABU airport-beach-urban scenes (AVIRIS, ROSIS), 12 cubes",
            ("hsi/abu/abu-airport", "hsi/abu/abu-beach-1", "hsi/abu/abu-beach-2", "hsi/abu/abu-beach-3",
             "hsi/abu/abu-urban"),
            "Kang, Zhang, Li, Benediktsson, \"Hyperspectral anomaly detection with attribute and edge-preserving "
            "filters\", IEEE TGRS 2017",
            (Source("hsi/abu/", "jiojio0505/OT-AD", "HEAD", "data/"),), uses="abu"),
    DataSet("abu_pavia", "hsi", "the ROSIS Pavia scene of ABU (abu-beach-4), 100x100x102",
            ("hsi/abu/abu-beach-4-pavia.mat",),
            "Kang, Zhang, Li, Benediktsson, IEEE TGRS 2017 (ABU)",
            (Source("hsi/abu/abu-beach-4-pavia.mat", "xdjiangkai/LREN", "HEAD", "datasets/avirs/abu-beach-4.mat"),),
            uses="pavia"),
    DataSet("cave", "hsi", "three 256x256x31 CAVE scenes", ("hsi/cave/",),
            _CAVE_CITE + "; for these files Zha et al., IEEE TGRS 2023 (NLSSR)",
            (Source("hsi/cave/chart_and_stuffed_toy_256.mat", "zhazhiyuan/NLSSR_Denoising_Demo", "HEAD",
                    "Data/chart_and_stuffed_toy_ms_256.mat"),
             Source("hsi/cave/cloth_256.mat", "zhazhiyuan/NRR_HSI_Denoising_Demo", "3f91106", "Data/cloth_ms_256.mat"),
             Source("hsi/cave/real_and_fake_apples_256.mat", "zhazhiyuan/MCP_MSI_CS_Demo", "aa26daa",
                    "CAVE_Data/real_and_fake_apples_ms_256.mat")),
            uses="cave"),
    DataSet("icvl", "hsi", "ICVL hyperspectral scenes (1392x1300, 31 bands, 400-700 nm): the 50 test scenes of "
            "the QRNN3D protocol", ("hsi/icvl/",),
            "Arad, Ben-Shahar, \"Sparse recovery of hyperspectral signal from natural RGB images\", ECCV 2016",
            manual=("download the scenes' .mat files (MATLAB v7.3, variable rad) from the ICVL hyperspectral "
                    "database (icvl.cs.bgu.ac.il/hyperspectral, Ben-Gurion University) and put them in "
                    "<data root>/hsi/icvl/ under their own names (<scene>.mat); the test names and the protocol "
                    "(rotate 90 degrees, centre 512x512 crop, min-max normalisation) are those of QRNN3D (Wei, Fu, "
                    "Huang, IEEE TNNLS 2021, github Vandermode/QRNN3D)"),
            uses="icvl (hsi; --grid icvl)", by_hand=True),
    DataSet("paviau", "hsi", "ROSIS Pavia University, the whole scene (610x340, 103 bands)",
            ("hsi/pavia_university/PaviaU.mat",),
            "ROSIS Pavia University (P. Gamba, University of Pavia), distributed by the Grupo de Inteligencia "
            "Computacional, UPV/EHU",
            manual=("download PaviaU.mat (MATLAB v5, variable paviaU) from the Grupo de Inteligencia Computacional's "
                    "page 'Hyperspectral Remote Sensing Scenes' (www.ehu.eus/ccwintco/index.php/"
                    "Hyperspectral_Remote_Sensing_Scenes) to <data root>/hsi/pavia_university/PaviaU.mat"),
            uses="pavia_u (hsi)", by_hand=True),
    DataSet("dc_mall", "hsi", "HYDICE Washington DC Mall (1280x307, 191 bands)", ("hsi/dc_mall/",),
            "Landgrebe, \"Signal Theory Methods in Multispectral Remote Sensing\", Wiley 2003 (the DC Mall image of "
            "Purdue's MultiSpec)",
            manual=("download the DC Mall cube (dc.tif, 191 bands) from Purdue's MultiSpec page "
                    "(engineering.purdue.edu/~biehl/MultiSpec/hyperspectral.html) to <data root>/hsi/dc_mall/"),
            uses="dc_mall (hsi)", by_hand=True),
    DataSet("paviau_sub50", "hsi", "a 50x50x103 subset of ROSIS Pavia University", ("hsi/pavia_university/",),
            "GatorSense hsi_toolkit (MIT); ROSIS Pavia University",
            (Source("hsi/pavia_university/paviaU_sub50.mat", "GatorSense/hsi_toolkit", "ef546dc",
                    "unmixP_NCM/paviaU_subimg.mat"),), uses="pavia_university"),
    DataSet("simu_indian", "hsi", "the simulated Indian Pines cube (145x145x224) of LRTDTV/RCTV papers",
            ("hsi/simulated/",), "RCTV (github andrew-pengjj/rctv); Indian Pines (AVIRIS)",
            (Source("hsi/simulated/simu_indian.mat", "andrew-pengjj/rctv", "HEAD", "simu_indian.mat"),),
            uses="simu_indian"),
    DataSet("jasper_ridge", "hsi", "Jasper Ridge (100x100, 198 bands) with endmembers and abundances",
            ("hsi/unmixing/jasperRidge2",), _UNMIX_CITE,
            (Source("hsi/unmixing/", "HarlinLee/gtvMBO-public", "HEAD", "data/"),), uses="jasper_ridge"),
    DataSet("samson", "hsi", "Samson (95x95, 156 bands) with endmembers and abundances",
            ("hsi/unmixing/samson",), _UNMIX_CITE,
            (Source("hsi/unmixing/", "HarlinLee/gtvMBO-public", "HEAD", "data/"),), uses="samson"),
)

#: the folder of the registry files (package data): pooch's registry format, one file per line
REGISTRY_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data_registry")


def read_registry(name: str) -> tuple[tuple[str, int, str], ...]:
    """``data_registry/<name>.txt`` (pooch's registry format: ``path sha256`` per line, ``#``
    comment lines) joined with ``data_registry/<name>_sizes.txt`` (``path bytes``): the files
    as (path, size, sha256), in the registry's order. A registry line without a size, a
    size without a registry line or a malformed line raises ValueError naming the file and
    line (the registry ships with the package: a broken one is a packaging error)."""
    def lines(fname):
        path = os.path.join(REGISTRY_DIR, fname)
        with open(path, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = line.split()
                if len(parts) not in (2, 3):  # pooch allows a third column: a download URL
                    raise ValueError(f"{path}:{i}: expected 'path sha256' (pooch's registry format), got {line!r}")
                yield path, i, parts
    sizes = {}
    for path, i, parts in lines(f"{name}_sizes.txt"):
        if len(parts) != 2 or not parts[1].isdigit():
            raise ValueError(f"{path}:{i}: expected 'path bytes', got {' '.join(parts)!r}")
        sizes[parts[0]] = int(parts[1])
    out = []
    for path, i, parts in lines(f"{name}.txt"):
        rel, sha = parts[0], parts[1].lower().removeprefix("sha256:")
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise ValueError(f"{path}:{i}: {rel}: not a SHA-256 ({parts[1]!r})")
        if rel not in sizes:
            raise ValueError(f"{path}:{i}: {rel} has no size in {name}_sizes.txt")
        out.append((rel, sizes.pop(rel), sha))
    if sizes:
        raise ValueError(f"{name}_sizes.txt lists {len(sizes)} file(s) that {name}.txt does not, e.g. {next(iter(sizes))}")
    return tuple(out)


#: every data file: (path under the data root, size in bytes, sha256), from data_registry/data.txt
ALL_FILES = read_registry("data")
#: every published weights file: (path under the weights root, size, sha256), from data_registry/weights.txt
ALL_WEIGHT_FILES = read_registry("weights")


def _with_files(ds: DataSet) -> DataSet:
    from dataclasses import replace
    return replace(ds, files=tuple(f for f in ALL_FILES if any(f[0].startswith(p) for p in ds.prefixes)))


DATASETS = tuple(_with_files(d) for d in DATASETS)
_claimed = [f[0] for d in DATASETS for f in d.files]
assert len(_claimed) == len(set(_claimed)) == len(ALL_FILES), "every data file belongs to exactly one data set"
assert all(d.manual or all(d.source_of(f[0]) for f in d.files) for d in DATASETS), "a file without a source"


def dataset_of(relpath: str) -> DataSet | None:
    """The data set a path under the data root belongs to (a file of it, or a folder that
    holds files of it or lies inside one of its folders); None when none does."""
    rel = relpath.replace(os.sep, "/").strip("/")
    for d in DATASETS:
        for p in d.prefixes:
            if rel.startswith(p) or p.startswith(rel + "/"):
                return d
    return None


def missing_data(relpath: str, data_root: str | None) -> str:
    """The message of a loader that does not find ``relpath`` under the data root: the data
    set, the root searched and the command that gets it."""
    from bench.paths import data_root as resolve

    root = resolve(data_root)
    d = dataset_of(relpath)
    what = f"the {d.name} data set ({d.title})" if d else "this data"
    if d is not None and d.by_hand:
        return (f"{what} is not under the data root {root} (looked for {os.path.join(root, relpath)}); it is a "
                f"manual download: {d.manual}")
    get = (f"no direct download: {d.manual}" if d is not None and d.manual else
           f"get it with `python -m bench data fetch {d.name}`" if d else "see `python -m bench data list`")
    return (f"{what} is not under the data root {root} (looked for {os.path.join(root, relpath)}; the root is "
            f"--data-root, else $BENCH_DATA, else ~/.cache/imaging-bench/data); {get}, or pass the right --data-root")
