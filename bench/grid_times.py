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
    ("hsi", "default"): GridTime("61 min", "--jobs 2, one thread each", "AMD EPYC, 2 cores, nearly idle",
                                 "2026-12-03"),
    ("cs", "default"): GridTime("2 h 7 min", "one process, one thread", "AMD EPYC, 2-3 other jobs on 2 cores",
                                "2026-12-02"),
    ("cs", "full"): GridTime("2 h 7 min", "one process, one thread", "AMD EPYC, 2-3 other jobs on 2 cores",
                             "2026-12-02"),
}


def measured(suite: str, grid: str) -> GridTime | None:
    return MEASURED.get((suite, grid))
