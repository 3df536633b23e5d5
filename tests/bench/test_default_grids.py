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
    # the test split at the four sigmas, and the real-world study on Indian Pines (its own noise)
    assert s.grid.datasets == ("hsi_split[split=test]", "indian_pines")
    assert s.grid.degradations == ("hsi_gaussian[sigma=[10,30,50,70]]", "hsi_real")
    split = s.extra_grids["test_split"]
    assert split.datasets == ("hsi_split[split=test]",) and set(split.methods) <= set(s.grid.methods)
    assert "cave" in s.full.datasets and "hsi_mixed" in s.full.degradations
    assert grid_cell_count(s, split) == 40


def test_istd_default_grid_is_sirst_clean_both_protocols():
    R.load_all()
    s = R.SUITES["istd"]
    assert s.grid.datasets == ("sirst",) and s.grid.degradations == ("clean",)
    assert set(s.grid.protocols) == {"basicirstd", "rpcanet"}
    assert s.full.datasets == ("sirst", "istd_synthetic")
    assert grid_cell_count(s, s.grid) == 2 * len(s.grid.methods)


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
    assert "    default                 110 cells" in out


def test_unknown_grid_names_the_valid_ones(capsys):
    assert main(["run", "--suite", "hsi", "--grid", "nope", "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert "full" in err and "default" in err


def test_longest_cells_first():
    R.load_all()
    s = R.SUITES["hsi"]
    cells = build_cells("hsi", ("hsi_split[split=test]",), ("hsi_gaussian[sigma=50]",), s.grid.methods, ["cpu"], 0)
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
