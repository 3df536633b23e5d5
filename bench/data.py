"""``python -m bench data list`` and ``python -m bench data fetch NAME|all``: the real data
sets and published weights on a fresh machine.

``list`` shows every data set (:data:`bench.data_manifest.DATASETS`) and published weights
file (:data:`bench.weights.MANIFEST`) with its status under the data or weights root
(present / missing / corrupt: the file's SHA-256 differs from the manifest's), its size,
where it comes from and what to cite. It needs neither root to exist.

``fetch`` downloads with ``pooch`` into the data root or the weights root, keeping each
file's place (the layout the loaders read). Every file is checked against the manifest's
SHA-256: pooch writes to a temporary file and moves it into place only when the hash
matches, so an interrupted or corrupt download is never used; it is retried (``retries``
times) and reported when it still fails. A file already present with the right hash is not
downloaded again; one present with a wrong hash (corrupt) is downloaded again. ``--mirror
URL`` (or ``$BENCH_MIRROR``) fetches from a copy of the two roots served at
``URL/data/<path>`` and ``URL/weights/<path>`` instead of the public sources (a lab's
mirror; the tests' loopback server).
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass

from bench import paths
from bench.data_manifest import ALL_WEIGHT_FILES, DATASETS, DataSet
from bench.errors import BenchError, UnknownNameError

FETCH = "python -m bench data fetch"

#: the papers of the published networks (the shared weights README)
CITES = {
    "rpcanet": "Wu et al., \"RPCANet: Deep unfolding RPCA based infrared small target detection\", WACV 2024",
    "l_rpcanet": "Liu, Han, Xiu, L-RPCANet (github xianchaoxiu/L-RPCANet)",
    "ista_net": "Zhang, Ghanem, \"ISTA-Net: Interpretable optimization-inspired deep network for image compressive "
                "sensing\", CVPR 2018",
    "star_net": "Liu, Jin, Xiu, STAR-Net, Pattern Recognition 2026",
    "smds_net": "Xiong et al., SMDS-Net, IEEE TIP 2022",
}
CITES["ista_net_plus"] = CITES["ista_net"]
RETRIES = 2


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_status(path: str, sha: str) -> str:
    if not os.path.isfile(path):
        return "missing"
    return "present" if sha256_of(path) == sha else "corrupt"


@dataclass(frozen=True)
class Item:
    """One fetchable thing: a data set (many files) or one published weights file."""

    name: str
    kind: str                    # data / weights
    title: str
    files: tuple[tuple[str, int, str, str | None], ...]   # (path under the root, size, sha256, url or None)
    source: str
    cite: str
    manual: str | None = None    # no direct download: what to do instead
    #: files whose source has CRLF line ends where the root's copy has LF (converted, then checked)
    crlf_paths: frozenset = frozenset()
    #: a data set the user downloads by hand: no hashes in the manifest; its folders under the root
    by_hand: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return sum(f[1] for f in self.files)


def _weights_items() -> list[Item]:
    from bench import weights
    sizes = {p: s for p, s, _ in ALL_WEIGHT_FILES}
    out = []
    for e in weights.MANIFEST:
        out.append(Item(f"{e.method}:{e.name}", "weights", f"{e.method} published weights, trained on {e.trained_on}",
                        ((e.path, sizes.get(e.path, 0), e.sha256, e.url),),
                        f"{e.source} [licence: {e.licence}]", CITES.get(e.method, f"the paper named in {e.repo}'s README")))
    return out


def _data_item(d: DataSet) -> Item:
    files = tuple((p, size, sha, (d.source_of(p).url(p) if d.source_of(p) else None)) for p, size, sha in d.files)
    source = "; ".join(dict.fromkeys(s.where for s in d.sources)) if d.sources else "no public download"
    crlf = frozenset(p for p, _, _ in d.files if d.source_of(p) is not None and d.source_of(p).crlf)
    return Item(d.name, "data", d.title + (f"; read by: {d.uses}" if d.uses else ""), files,
                source if not d.by_hand else "manual download (see below)", d.cite, d.manual, crlf,
                d.prefixes if d.by_hand else ())


def items() -> list[Item]:
    return [_data_item(d) for d in DATASETS] + _weights_items()


def select(names: list[str]) -> list[Item]:
    """The items ``names`` name: ``all``, ``data``, ``weights``, a data set, a weights file
    (``method:name``) or every weights file of a method (``rpcanet``)."""
    every = items()
    chosen: dict[str, Item] = {}
    for n in names:
        hits = ([i for i in every] if n == "all" else
                [i for i in every if i.kind == n] if n in ("data", "weights") else
                [i for i in every if i.name == n or (i.kind == "weights" and i.name.split(":")[0] == n)])
        if not hits:
            raise UnknownNameError(f"no data set or weights named {n!r}",
                                   valid=["all", "data", "weights"] + [i.name for i in every], what="name")
        for i in hits:
            chosen[i.name] = i
    return list(chosen.values())


def root_of(item: Item, data_root: str | None, weights_root: str | None) -> str:
    return paths.data_root(data_root) if item.kind == "data" else paths.weights_root(weights_root)


def _origin(given: str | None, env: str) -> str:
    if given:
        return "--data-root" if env == "BENCH_DATA" else "--weights-root"
    return f"${env}" if os.environ.get(env) else "default"


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


def item_status(item: Item, root: str) -> dict[str, int]:
    counts = {"present": 0, "missing": 0, "corrupt": 0}
    for path, _, sha, _ in item.files:
        counts[file_status(os.path.join(root, path), sha)] += 1
    return counts


def status_word(counts: dict[str, int]) -> str:
    n = sum(counts.values())
    if counts["corrupt"]:
        return f"corrupt ({counts['corrupt']}/{n} files)"
    if counts["missing"] == n:
        return "missing"
    if counts["missing"]:
        return f"missing ({counts['missing']}/{n} files)"
    return "present"


def listing(data_root: str | None = None, weights_root: str | None = None, names: list[str] | None = None
            ) -> tuple[str, int]:
    """What ``bench data list`` prints, and the number of items with a corrupt file."""
    chosen = select(names) if names else items()
    droot, wroot = paths.data_root(data_root), paths.weights_root(weights_root)
    lines = []
    for label, root, given, env in (("data root", droot, data_root, "BENCH_DATA"),
                                    ("weights root", wroot, weights_root, "BENCH_WEIGHTS")):
        there = "" if os.path.isdir(root) else ", does not exist yet"
        lines.append(f"{label}: {root} ({_origin(given, env)}{there})")
    corrupt = 0
    totals = {"present": 0, "missing": 0, "corrupt": 0}
    by_hand = [it for it in chosen if it.by_hand]
    chosen = [it for it in chosen if not it.by_hand]
    for it in chosen:
        root = droot if it.kind == "data" else wroot
        counts = item_status(it, root)
        word = status_word(counts)
        key = "corrupt" if counts["corrupt"] else ("missing" if counts["missing"] else "present")
        totals[key] += 1
        corrupt += bool(counts["corrupt"])
        lines.append(f"{it.name:24s} {it.kind:7s} {word:24s} {_mib(it.size):>10s}  {len(it.files)} file(s)")
        lines.append(f"    what     {it.title}")
        lines.append(f"    source   {it.source}")
        lines.append(f"    cite     {it.cite}")
        if it.manual:
            lines.append(f"    get it   no direct download: {it.manual}")
        elif key != "present":
            lines.append(f"    get it   {FETCH} {it.name}   (into {root})")
        if counts["corrupt"]:
            bad = [p for p, _, sha, _ in it.files if file_status(os.path.join(root, p), sha) == "corrupt"]
            lines.append(f"    CORRUPT  sha256 differs from the manifest: {', '.join(bad[:5])}"
                         + (f" and {len(bad) - 5} more" if len(bad) > 5 else "") + f"; `{FETCH} {it.name}` "
                         f"downloads them again")
    for it in by_hand:
        there = [p for p in it.by_hand if os.path.exists(os.path.join(droot, p))]
        word = "copy found" if there else "not there"
        lines.append(f"{it.name:24s} {it.kind:7s} {'manual: ' + word:24s} {'':>10s}  downloaded by hand")
        lines.append(f"    what     {it.title}")
        lines.append(f"    cite     {it.cite}")
        lines.append(f"    get it   manual download: {it.manual}")
        lines.append(f"    put it   {', '.join(os.path.join(droot, p) for p in it.by_hand)}")
    lines.append(f"{len(chosen)} item(s): {totals['present']} present, {totals['missing']} missing, "
                 f"{totals['corrupt']} corrupt" + (f"; {len(by_hand)} manual download(s), listed above"
                                                   if by_hand else ""))
    return "\n".join(lines), corrupt


# --------------------------------------------------------------------------- fetching
class FetchError(BenchError):
    exit_code = 1


def _pooch_quiet():
    import pooch
    pooch.get_logger().setLevel(logging.WARNING)
    return pooch


def fetch_file(url: str, root: str, relpath: str, sha: str, retries: int = RETRIES, timeout: float = 60,
               progress: bool = False, crlf: bool = False) -> str:
    """Download ``url`` to ``root/relpath`` with pooch, checked against ``sha``; the path.
    Pooch downloads to a temporary file beside it and moves it into place only when the
    hash matches (else ValueError, after ``retries`` further tries). ``crlf``: the source is
    a text file with CRLF line ends and ``sha`` that of its LF copy: the download (into a
    temporary folder beside the target) is converted first, then checked, then moved."""
    pooch = _pooch_quiet()
    if crlf:
        return _fetch_text_lf(pooch, url, root, relpath, sha, retries, timeout)
    p = pooch.create(path=root, base_url="", registry={relpath: f"sha256:{sha}"}, urls={relpath: url},
                     retry_if_failed=retries, allow_updates=True)
    return p.fetch(relpath, downloader=pooch.HTTPDownloader(timeout=timeout, progressbar=progress))


def _fetch_text_lf(pooch, url: str, root: str, relpath: str, sha: str, retries: int, timeout: float) -> str:
    import tempfile
    target = os.path.join(root, relpath)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    error: Exception = ValueError(f"{url}: not downloaded")
    for _ in range(retries + 1):
        with tempfile.TemporaryDirectory(dir=os.path.dirname(target), prefix=".fetch-") as tmp:
            try:
                got = pooch.retrieve(url, known_hash=None, fname="download", path=tmp,
                                     downloader=pooch.HTTPDownloader(timeout=timeout, progressbar=False))
                with open(got, "rb") as f:
                    data = f.read().replace(b"\r\n", b"\n")
            except Exception as e:  # noqa: BLE001 - retried, then reported
                error = e
                continue
            digest = hashlib.sha256(data).hexdigest()
            if digest != sha:
                error = ValueError(f"SHA256 hash of the downloaded file (CRLF -> LF) ({digest}) does not match the "
                                   f"known hash ({sha})")
                continue
            part = os.path.join(tmp, "converted")
            with open(part, "wb") as f:
                f.write(data)
            os.replace(part, target)
            return target
    raise error


def mirror_url(mirror: str, item: Item, relpath: str) -> str:
    return f"{mirror.rstrip('/')}/{item.kind}/{relpath}"


def fetch(names: list[str], data_root: str | None = None, weights_root: str | None = None,
          mirror: str | None = None, retries: int = RETRIES, echo=print, progress: bool = False) -> int:
    """``bench data fetch``: download what ``names`` select; the number of items that could
    not be completed (a file that failed its checksum or its download, or a set with no
    direct download)."""
    mirror = mirror or os.environ.get("BENCH_MIRROR") or None
    chosen = select(names)
    named = set(names)
    bad = 0
    for it in chosen:
        root = root_of(it, data_root, weights_root)
        if it.by_hand:  # no file of it can be fetched, not even from a mirror
            if it.name in named:
                echo(f"{it.name}: cannot be fetched: a manual download. {it.manual}")
                bad += 1
            else:
                echo(f"{it.name}: skipped, a manual download (`python -m bench data list {it.name}` says how)")
            continue
        if it.manual and not mirror:
            counts = item_status(it, root)
            if counts["present"] == len(it.files):
                echo(f"{it.name}: present ({len(it.files)} file(s) verified) in {root}")
                continue
            if it.name in named:  # asked for by name: an error; within `all`/`data`: a note
                echo(f"{it.name}: cannot be fetched: no direct download. {it.manual}")
                bad += 1
            else:
                echo(f"{it.name}: skipped, no direct download (fetch it by name for the reason; only the tests "
                     f"that need it use it)")
            continue
        got = have = 0
        errors = []
        for path, _, sha, url in it.files:
            target = os.path.join(root, path)
            if file_status(target, sha) == "present":
                have += 1
                continue
            src = mirror_url(mirror, it, path) if mirror else url
            try:
                fetch_file(src, root, path, sha, retries, progress=progress, crlf=path in it.crlf_paths)
                got += 1
            except Exception as e:  # noqa: BLE001 - a failed file is reported, the others go on
                msg = str(e).splitlines()[0] if str(e) else ""
                errors.append(f"{path}: {type(e).__name__}: {msg} (from {src})")
        line = f"{it.name}: {got} downloaded, {have} already present"
        if errors:
            bad += 1
            echo(f"{line}, {len(errors)} FAILED (never used: a file is moved into {root} only once its sha256 "
                 f"matches):")
            for e in errors[:10]:
                echo(f"    {e}")
            if len(errors) > 10:
                echo(f"    ... and {len(errors) - 10} more")
        else:
            echo(f"{line}; {len(it.files)} file(s) verified (sha256) in {root}")
    return bad


def missing_hint(what: str, path: str, data_root: str | None) -> str:
    """The end of a loader's "not found" message: the data root searched and the command
    that gets the data set (``what``: a data set name of the manifest)."""
    root = data_root or paths.default_data_root()
    names = [d.name for d in DATASETS if d.name == what]
    get = f"`{FETCH} {what}`" if names else f"`python -m bench data list`"
    return (f"{path} not found under the data root {root} (--data-root, else $BENCH_DATA, else "
            f"~/.cache/imaging-bench/data); get it with {get} or pass the right --data-root")
