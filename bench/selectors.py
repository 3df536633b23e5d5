"""Parsing of command-line selectors: ``fista``, ``fista[n_iter=200,lam=0.1]``,
``lista[n_layers=[4,8,16]]`` (a list expands into one selector per value).
"""
from __future__ import annotations

import ast
import itertools
import re
from typing import Any

from bench.errors import SelectorError

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _split_top(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside brackets/parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_value(text: str, where: str) -> Any:
    t = text.strip()
    if t == "":
        raise SelectorError(f"{where}: empty value")
    low = t.lower()
    if low in ("inf", "+inf"):
        return float("inf")
    if low == "-inf":
        return float("-inf")
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    if t.startswith("[") and t.endswith("]"):
        return [parse_value(x, where) for x in _split_top(t[1:-1])]
    try:
        v = ast.literal_eval(t)
        if isinstance(v, (int, float)) and "_" in t:
            return t  # a name such as split=50_50, not Python's 5050 with a digit separator
        if isinstance(v, (int, float, str, tuple)):
            return v
    except (ValueError, SyntaxError):
        pass
    return t  # a bare word is a string


def parse_selector(text: str) -> tuple[str, dict[str, Any]]:
    """``"fista[n_iter=200]"`` -> ``("fista", {"n_iter": 200})``; raises SelectorError."""
    s = text.strip()
    if not s:
        raise SelectorError("empty selector")
    if "[" in s:
        if not s.endswith("]"):
            raise SelectorError(f"selector {text!r}: missing closing ']'")
        name, body = s[: s.index("[")], s[s.index("[") + 1 : -1]
    else:
        name, body = s, ""
    name = name.strip()
    if not _NAME.match(name):
        raise SelectorError(f"selector {text!r}: {name!r} is not a valid name (lower case, digits, '_')")
    params: dict[str, Any] = {}
    if body.strip():
        if body.count("[") != body.count("]") or body.count("(") != body.count(")"):
            raise SelectorError(f"selector {text!r}: unbalanced brackets in {body!r}")
        for item in _split_top(body):
            if "=" not in item:
                raise SelectorError(f"selector {text!r}: {item.strip()!r} is not of the form key=value")
            key, val = item.split("=", 1)
            key = key.strip()
            if not _NAME.match(key):
                raise SelectorError(f"selector {text!r}: {key!r} is not a valid parameter name")
            if key in params:
                raise SelectorError(f"selector {text!r}: parameter {key!r} given twice")
            params[key] = parse_value(val, f"selector {text!r}, parameter {key!r}")
    return name, params


def expand(params: dict[str, Any]) -> list[dict[str, Any]]:
    """Cross product over list-valued parameters."""
    keys = list(params)
    values = [v if isinstance(v, list) else [v] for v in params.values()]
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]
