"""Measured wall times of the suites' grids, shown by ``bench list`` beside each grid.

Only times that were measured end to end are listed, each with the machine, the workers and
the date (timings on a shared machine vary several-fold with its load; the suite notes in
docs/ give the details). A grid without an entry shows its cell count only.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GridTime:
    wall: str      # the measured wall time, as a person reads it ("61 min")
    workers: str   # "--jobs 2", "one process"
    cpu: str       # the CPU model lscpu names, and the load when measured
    date: str      # ISO date of the measurement

    def line(self) -> str:
        return f"measured {self.wall} wall ({self.workers}, {self.cpu}, {self.date})"


#: (suite, grid name) -> its measured time; "default" is the grid `bench run --suite S` runs
MEASURED: dict[tuple[str, str], GridTime] = {
    ("istd", "full"): GridTime("1 h 44 min", "one process, one thread", "AMD EPYC, two other jobs on 2 cores",
                               "2026-12-02"),
    ("istd", "sirst"): GridTime("33 min", "one process, one thread", "AMD EPYC, other jobs on 2 cores",
                                "2026-12-06"),
    ("istd", "cross"): GridTime("54 min", "one process, one thread", "AMD EPYC, two other jobs on 2 cores",
                                "2026-12-06"),
    ("istd", "nudt_robust"): GridTime("2 h 9 min", "one process, one thread",
                                      "AMD EPYC, two or three other jobs on 2 cores", "2026-12-06"),
    ("hsi", "default"): GridTime("51 min", "--jobs 2, one thread each", "AMD EPYC, 2 cores, idle; from a fresh "
                              "clone, data fetched from a loopback mirror", "2026-12-06"),
    ("hsi", "test_split"): GridTime("61 min", "--jobs 2, one thread each", "AMD EPYC, 2 cores, nearly idle",
                                 "2026-12-03"),
    ("cs", "default"): GridTime("2 h 7 min", "one process, one thread", "AMD EPYC, 2-3 other jobs on 2 cores",
                                "2026-12-02"),
    ("cs", "full"): GridTime("2 h 7 min", "one process, one thread", "AMD EPYC, 2-3 other jobs on 2 cores",
                             "2026-12-02"),
}


def measured(suite: str, grid: str) -> GridTime | None:
    return MEASURED.get((suite, grid))


#: seconds per sample of the costliest methods (one thread, AMD EPYC, measured in the grids
#: above: docs/suite_hsi.md, docs/suite_cs.md, docs/speed.md): the order in which a pool of
#: workers takes the cells (:func:`bench.runner.longest_first`), never a result. Kept here,
#: outside the methods' modules, so that revising an estimate changes no cell key.
EXPECTED_SECONDS: dict[tuple[str, str], float] = {
    ("hsi", "star_net_s"): 240.0,      # the L update (t-SVT) runs: 5-6x SMDS-Net
    ("hsi", "star_net"): 190.0,
    ("hsi", "smds_net"): 40.0,
    ("hsi", "bm4d"): 33.0,
    ("hsi", "ngmeet"): 3.0,
    ("hsi", "lrtdtv"): 1.0,
    ("cs", "pnp_hqs"): 65.0,           # per Set11 image
}


def expected_seconds(suite: str, method: str, params) -> float:
    """A cell's expected seconds per sample (0: unknown or negligible). STAR-Net without its
    L update (``l_update=released``) costs what SMDS-Net does."""
    if method in ("star_net", "star_net_s") and str(params.get("l_update", "slides")) == "released":
        method = "smds_net"
    return EXPECTED_SECONDS.get((suite, method), 0.0)
