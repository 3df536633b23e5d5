"""Each suite's default grid is its paper's main table, the former defaults stay under
`--grid full`, `bench list` shows every grid's size (and measured time), and a pool of
workers starts the costliest cells first."""
from __future__ import annotations

from bench import registry as R
from bench.cli import main
from bench.commands.listing import grid_cell_count
from bench.commands.run import named_grids
from bench.grid import build_cells
from bench.grid_times import MEASURED
from bench.runner import expected_cost, longest_first


def test_hsi_default_grid_is_the_test_split_table():
    R.load_all()
    s = R.SUITES["hsi"]
    # two parts: the test split at the four sigmas, and the real-world study on Indian Pines
    # under its own noise; no data set is paired with a noise case it cannot take
    split, real = s.grid
    assert split is s.extra_grids["test_split"] and real is s.extra_grids["real"]
    assert split.datasets == ("hsi_split[split=test]",)
    assert split.degradations == ("hsi_gaussian[sigma=[10,30,50,70]]",)
    assert real.datasets == ("indian_pines",) and real.degradations == ("hsi_real",)
    assert set(split.methods) < set(real.methods)          # plus the real study's 3x3 mean row
    assert grid_cell_count(s, split) == 40 and grid_cell_count(s, s.grid) == 40 + len(real.methods)
    assert any("cave" in p.datasets and "hsi_mixed" in p.degradations for p in s.full)


def test_hsi_default_grid_plans_no_impossible_pair():
    """Every cell of the default and full grids that is left out is left out for its weights
    or its training scenes, never because its data set cannot take its noise case."""
    R.load_all()
    s = R.SUITES["hsi"]
    from bench.suite import grid_parts
    for grid in (s.grid, s.full):
        for p in grid_parts(grid):
            cells = build_cells("hsi", p.datasets, p.degradations, p.methods, ["cpu"], 0)
            reasons = [s.skip_reason(c) for c in cells]
            structural = [r for r in reasons if r and ("runs under hsi_real only" in r or "adds no noise" in r
                                                       or "reference row" in r)]
            assert structural == []


def test_istd_default_grid_is_sirst_and_nudt_sirst_clean_both_protocols():
    R.load_all()
    s = R.SUITES["istd"]
    sirst, nudt = s.grid
    assert sirst is s.extra_grids["sirst"] and nudt is s.extra_grids["nudt"]
    assert sirst.datasets == ("sirst",) and nudt.datasets == ("nudt_sirst",)
    for part in s.grid:
        assert part.degradations == ("clean",) and set(part.protocols) == {"basicirstd", "rpcanet"}
    # NUDT-SIRST: the classical rows and the authors' NUDT-SIRST files of both networks
    assert {"ipi", "mpcm", "pstnn"} <= set(nudt.methods)
    assert {m for m in nudt.methods if "published:nudt_sirst" in m} == {
        "rpcanet[checkpoint=published:nudt_sirst]", "l_rpcanet[checkpoint=published:nudt_sirst]"}
    assert s.full.datasets == ("sirst", "istd_synthetic")
    assert grid_cell_count(s, s.grid) == 2 * (len(sirst.methods) + len(nudt.methods))


def test_every_suite_has_default_and_full():
    R.load_all()
    for s in R.SUITES.values():
        grids = named_grids(s)
        assert grids["default"] is s.grid
        assert grids["full"] is (getattr(s, "full", None) or s.grid)
    for (suite, grid) in MEASURED:
        assert grid in named_grids(R.SUITES[suite])


def test_list_shows_grid_sizes(capsys):
    assert main(["list", "--suite", "hsi"]) == 0
    out = capsys.readouterr().out
    assert "    test_split               40 cells" in out
    assert "measured 61 min wall" in out
    assert "    default                  51 cells (before skips): 1 dataset(s) x 1 degradation(s) x 10 method " \
           "selector(s) + 1 dataset(s) x 1 degradation(s) x 11 method selector(s)" in out


def test_unknown_grid_names_the_valid_ones(capsys):
    assert main(["run", "--suite", "hsi", "--grid", "nope", "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert "full" in err and "default" in err


def test_longest_cells_first():
    R.load_all()
    s = R.SUITES["hsi"]
    cells = build_cells("hsi", ("hsi_split[split=test]",), ("hsi_gaussian[sigma=50]",), s.grid[0].methods, ["cpu"], 0)
    order = longest_first(cells)
    costs = [expected_cost(c) for c in order]
    assert costs == sorted(costs, reverse=True)
    assert order[0].method == "star_net_s" and order[1].method == "star_net"
    assert order[1].mparams["l_update"] == "slides"
    # the released STAR-Net (no L update) costs what SMDS-Net does
    released = [c for c in cells if c.method == "star_net" and c.mparams.get("l_update") == "released"]
    assert expected_cost(released[0]) < expected_cost(order[1])
    # equal costs keep the grid's order
    zero = [c for c in order if expected_cost(c) == 0]
    assert zero == [c for c in cells if expected_cost(c) == 0]
