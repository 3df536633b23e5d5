"""The ``checkpoint=`` grammar (bench.weights), the same in every suite: the README's
examples resolve to the files their comments name; old spellings become the new ones."""
from __future__ import annotations

import os
import re
import shlex

import pytest

from bench import registry as R
from bench import weights as W
from bench.grid import build_cells

README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "README.md")


def readme_examples() -> list[tuple[list[str], str]]:
    """(the command's arguments, the file its comment names) per line of the README block."""
    text = open(README, encoding="utf-8").read()
    m = re.search(r"<!-- checkpoint-examples: begin -->\s*```bash\n(.*?)```\s*<!-- checkpoint-examples: end -->",
                  text, re.S)
    assert m, "README.md lost its checkpoint= examples (the markers around the code block)"
    out = []
    for line in m.group(1).strip().splitlines():
        command, _, comment = line.partition("  # ")
        out.append((shlex.split(command), comment.strip()))
    return out


def _option(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_the_readme_has_one_example_per_suite():
    R.load_all()
    suites = [_option(args, "--suite") for args, _ in readme_examples()]
    assert sorted(suites) == sorted(R.SUITES) and len(suites) == len(set(suites))


@pytest.mark.parametrize("args, names", readme_examples())
def test_each_readme_example_reads_the_file_its_comment_names(args, names):
    """The command's cell is built as `bench run` builds it (its selectors parsed and
    checked); the weights its checkpoint names, resolved for the cell's problem as the
    suite plans it, are the file of the comment; a shipped one is here and not skipped."""
    assert args[:3] == ["python", "-m", "bench"] and args[3] == "run"
    suite = _option(args, "--suite")
    (cell,) = build_cells(suite, [_option(args, "--dataset")], [_option(args, "--degradation")],
                          [_option(args, "--method")], ["cpu"], 0)
    s = R.SUITES[suite]
    source = W.resolve(suite, cell.method, cell.mparams["checkpoint"], problem=s.checkpoint_problem(cell))
    assert source.label == names
    if source.kind == "shipped":
        assert os.path.exists(source.path) and s.skip_reason(cell) is None


@pytest.mark.parametrize("old, new", [("auto", "shipped"), ("trained", "shipped"),
                                      ("star_net_cpu", "shipped:star_net_cpu"), ("none", None), ("None", None)])
def test_old_spellings_become_the_new_ones_with_one_line(old, new, capsys):
    W._warned.discard(old)
    assert W.canonical(old) == new
    assert W.canonical(old) == new     # the line is printed once per value
    err = capsys.readouterr().err
    if new is None:
        assert err == ""
    else:
        assert err.count("deprecated") == 1 and f"checkpoint={new}" in err


@pytest.mark.parametrize("value", ["published:sirst", "shipped:rpcanet_sirst", "shipped", "published",
                                   "shipped:l_rpcanet_ablation_se-background+target",
                                   "results/checkpoints/istd/x.npz", "x.npz", None])
def test_new_spellings_stay_as_they_are(value, capsys):
    assert W.canonical(value) == value
    assert W.valid_value("l_rpcanet", value) or value == "published:sirst"
    assert capsys.readouterr().err == ""


def test_a_selector_with_an_old_spelling_is_the_cell_of_the_new_one():
    """Same weights, same cell: the label and the key carry the new spelling."""
    old = build_cells("istd", ["sirst"], ["clean"], ["l_rpcanet[checkpoint=l_rpcanet_sirst_from_nudt_sirst]",
                                                     "rpcanet[checkpoint=auto]"], ["cpu"], 0)
    new = build_cells("istd", ["sirst"], ["clean"], ["l_rpcanet[checkpoint=shipped:l_rpcanet_sirst_from_nudt_sirst]",
                                                     "rpcanet"], ["cpu"], 0)
    assert [c.key for c in old] == [c.key for c in new]
    assert [c.method_label() for c in old] == ["l_rpcanet[checkpoint=shipped:l_rpcanet_sirst_from_nudt_sirst]",
                                               "rpcanet"]


@pytest.mark.parametrize("suite, method, problem, expected", [
    ("sparse", "alista", {"snr_db": float("inf")}, "methods/sparse/checkpoints/alista_snrinf.npz"),
    ("sparse", "lista", {"snr_db": 40.0}, "methods/sparse/checkpoints/lista_snr40.npz"),
    ("cs", "ista_net", {"ratio": 10}, "methods/cs/checkpoints/ista_net_ratio10_cpu.npz"),
    ("istd", "rpcanet", None, "methods/istd/checkpoints/rpcanet_sirst.npz"),
    ("hsi", "star_net", None, "methods/hsi/checkpoints/star_net_cpu.npz"),
])
def test_shipped_is_the_methods_file_for_the_cells_problem(suite, method, problem, expected):
    R.load_all()
    source = W.resolve(suite, method, "shipped", problem=problem)
    assert source.kind == "shipped" and source.label == expected and os.path.exists(source.path)


def test_a_bare_word_the_method_cannot_name_a_file_for_says_what_to_write():
    from bench.errors import CheckpointError
    R.load_all()
    with pytest.raises(CheckpointError, match="published:<name>"):
        W.resolve("istd", "rpcanet", "published")        # istd names its published files
    with pytest.raises(CheckpointError, match="no file for this cell's problem"):
        W.resolve("sparse", "lista", "shipped")          # no SNR: no problem given


def test_unknown_values_are_refused_when_the_selector_is_read():
    from bench.errors import BadParameterError
    R.load_all()
    for method, value in (("rpcanet", "published:nope"), ("lista", "shipped:a b"), ("star_net", "weights?"),
                          ("rpcanet", "none")):
        with pytest.raises(BadParameterError):
            R.METHODS[method](checkpoint=value)


def test_missing_weights_are_skipped_the_same_way_in_every_suite():
    """The Suite base's skip line: a shipped name that is not there gives the command that
    makes it, from the method's own reading of its file names."""
    R.load_all()
    cases = [("sparse", "gaussian_lasso", "awgn_snr[snr_db=7]", "lista_cp",
              "python -m bench train --suite sparse --method lista_cp --snr 7 --recipe cpu"),
             ("cs", "set11[ratio=25]", "measurement_noise", "ista_net[checkpoint=shipped:ista_net_ratio7_cpu]",
              "python -m bench train --suite cs --method ista_net --recipe cpu --set ratio=7"),
             ("istd", "sirst", "clean", "l_rpcanet[checkpoint=shipped:l_rpcanet_ablation_stages3]",
              "python -m bench train --suite istd --method l_rpcanet --dataset sirst --recipe ablation --set stages=3"),
             ("hsi", "cave[size=32]", "hsi_gaussian[sigma=30]", "star_net[checkpoint=shipped:star_net_x]",
              "python -m bench train --suite hsi --method star_net --recipe cpu")]
    for suite, ds, dg, method, command in cases:
        (cell,) = build_cells(suite, [ds], [dg], [method], ["cpu"], 0)
        reason = R.SUITES[suite].skip_reason(cell)
        assert reason is not None and f"`{command}`" in reason, (suite, reason)


def test_provenance_reads_how_the_weights_were_made():
    published = {"extras": {"weights": {"source": "published", "checkpoint": "published:sirst",
                                        "trained_on": "SIRST v1"}, "training": {"recipe": "published"}}}
    assert W.provenance(published)["kind"] == "published"
    assert W.provenance(published)["trained_on"] == "SIRST v1"
    finetuned = {"extras": {"weights": {"source": "shipped", "checkpoint": "methods/istd/checkpoints/x.npz"},
                            "training": {"recipe": "finetune from published:nudt_sirst",
                                         "init": "published:nudt_sirst", "steps": 600, "seconds": 4918.9}}}
    p = W.provenance(finetuned)
    assert (p["kind"], p["init"], p["recipe"], p["steps"]) == ("finetuned", "published:nudt_sirst", "finetune", 600)
    assert abs(p["minutes"] - 81.98) < 0.01
    # a row stored before rows recorded the init: the recipe's name says it
    del finetuned["extras"]["training"]["init"]
    assert W.provenance(finetuned)["init"] == "published:nudt_sirst"
    trained = {"extras": {"weights": {"source": "shipped"}, "training": {"recipe": "cpu", "steps": 300}}}
    assert W.provenance(trained)["kind"] == "trained" and W.provenance(trained)["init"] is None
    assert W.provenance({"extras": {}}) is None
    assert W.provenance({"extras": {"training": {"recipe": "untrained (initialisation)"}}}) is None
