import math

import pytest

from bench.errors import SelectorError
from bench.selectors import expand, parse_selector


def test_plain_name():
    assert parse_selector("fista") == ("fista", {})


def test_parameters_are_typed():
    name, p = parse_selector("fista[n_iter=200, lam=0.1,flag=true,snr=inf,mode=fast]")
    assert name == "fista"
    assert p == {"n_iter": 200, "lam": 0.1, "flag": True, "snr": math.inf, "mode": "fast"}
    assert isinstance(p["n_iter"], int)


def test_list_expands_to_a_grid():
    _, p = parse_selector("lista[n_layers=[4,8],lam=0.4]")
    assert expand(p) == [{"n_layers": 4, "lam": 0.4}, {"n_layers": 8, "lam": 0.4}]


@pytest.mark.parametrize("text, part", [
    ("fista[n_iter=200", "missing closing"),
    ("fista[n_iter]", "not of the form key=value"),
    ("fista[n_iter=]", "empty value"),
    ("Fista", "not a valid name"),
    ("fista[1x=2]", "not a valid parameter name"),
    ("fista[a=1,a=2]", "given twice"),
    ("fista[a=[1,2]", "unbalanced brackets"),
    ("", "empty selector"),
])
def test_malformed_selector_says_which_part(text, part):
    with pytest.raises(SelectorError, match=part):
        parse_selector(text)
