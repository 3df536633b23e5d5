"""Declared types and ranges of component parameters, checked before anything runs.

A component declares, next to its ``parameters`` (the defaults), one :class:`Param` per
parameter in ``parameter_specs``::

    parameters = {"n_iter": 1000, "lam": 0.4}
    parameter_specs = {"n_iter": Param(int, min=1), "lam": Param(float, min=0)}

:meth:`bench.registry.Component.__init__` checks every value it is given (a selector's
``fista[n_iter=-5]`` builds the component while the grid is resolved, so a bad value stops
``bench run`` and ``bench train`` before a cell runs or a row is stored) and raises
:class:`bench.errors.BadParameterError` (exit 2) naming the component, the parameter, the
value and what is allowed. The contract tests check that every registered component
declares a spec for each of its parameters and that its defaults pass them.

Rules of a spec, in the order they are applied:

0. ``convert``: a function applied to the value first (an old spelling to its new one:
   :func:`bench.weights.canonical` for ``checkpoint``), so that cells and labels only
   ever see the new spelling;
1. ``allow``: special values accepted as they are, whatever the rest says (``"auto"``,
   ``None``, ``float("inf")``);
2. ``choices``: the value must be one of them (then neither type nor range applies);
3. ``type``: ``int`` (an integral float such as the selector's ``1e3`` is accepted and
   becomes the int 1000, so that ``n_iter=1e3`` is the same cell as ``n_iter=1000``; a
   bool is refused), ``float`` (an int is accepted and kept as given, so that existing
   cell keys do not change; NaN and infinities are refused unless in ``allow``), ``str``,
   ``bool`` or ``tuple`` (a list or tuple, stored as a tuple; ``items`` checks each item,
   ``length``/``min_length`` its length);
4. ``min``/``max`` (inclusive unless ``min_exclusive``/``max_exclusive``);
5. ``where``: a predicate with ``where_help`` saying what it requires (``"odd"``).

Values are compared by kind as well as by value: ``True`` is not ``1`` and ``"1"`` is not
``1``.

Rules between parameters (a lower and an upper bound of one range) are declared in
``parameter_rules`` (:class:`Ordered`) and checked by the same ``__init__`` after each value
passed its own spec, with the same error (exit 2)::

    parameter_rules = (Ordered("min_size", "max_size"),)

Iteration counts have an upper bound (:data:`MAX_ITERATIONS`, :func:`iterations`) that
states its reason, so that a typo such as ``n_iter=10**26`` is refused at once instead of
running until killed.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from bench.errors import BadParameterError

_TYPES = (int, float, str, bool, tuple)


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _same(value: Any, allowed: Any) -> bool:
    """``value`` is ``allowed``, compared by kind (bool, number, string, None) and value."""
    if allowed is None:
        return value is None
    if isinstance(allowed, bool):
        return value is allowed
    if _is_number(allowed):
        return _is_number(value) and value == allowed
    if isinstance(allowed, (tuple, list)):
        return (isinstance(value, (tuple, list)) and len(value) == len(allowed)
                and all(_same(a, b) for a, b in zip(value, allowed)))
    return type(value) is type(allowed) and value == allowed


def format_value(v: Any) -> str:
    """A parameter value as a selector and a label write it (``inf``, ``(3,5,7)``)."""
    if isinstance(v, float):
        if v == float("inf"):
            return "inf"
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "(" + ",".join(format_value(x) for x in v) + ")"
    return str(v)


def show(v: Any) -> str:
    """A value as a message prints it: strings quoted, numbers as selectors write them."""
    if isinstance(v, str):
        return repr(v)
    if v is None:
        return "none"
    if isinstance(v, (list, tuple)):
        return "(" + ",".join(show(x) for x in v) + ")"
    return format_value(v)


def _num(v: float) -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:g}"


@dataclass(frozen=True)
class Param:
    """What values one parameter takes (see the module docstring for the rules)."""

    type: type
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    max_exclusive: bool = False
    choices: tuple | None = None
    allow: tuple = ()
    #: tuple-valued parameters: the spec of every item, and the exact or least length
    items: "Param | None" = None
    length: int | None = None
    min_length: int | None = None
    #: an extra rule (``where(value)`` is True when the value passes) and what it requires
    where: Callable[[Any], bool] | None = None
    where_help: str = ""
    #: what the parameter means / what the values do (printed after the rules)
    help: str = ""
    #: applied to a value before any rule (an old spelling to its new one); may raise
    #: :class:`bench.errors.BenchError` with a message for a value it refuses
    convert: Callable[[Any], Any] | None = None

    def __post_init__(self):
        if self.type not in _TYPES:
            raise TypeError(f"Param type must be one of {', '.join(t.__name__ for t in _TYPES)}, got {self.type!r}")
        if self.choices is not None and not isinstance(self.choices, tuple):
            object.__setattr__(self, "choices", tuple(self.choices))
        if not isinstance(self.allow, tuple):
            object.__setattr__(self, "allow", tuple(self.allow))
        if self.type is tuple and self.items is None:
            raise TypeError("a tuple Param needs `items` (the spec of each item)")

    # ------------------------------------------------------------------ checking
    def normalise(self, value: Any) -> tuple[bool, Any]:
        """``(True, normalised value)`` when ``value`` is allowed, else ``(False, None)``."""
        if self.convert is not None:
            value = self.convert(value)
        for a in self.allow:
            if _same(value, a):
                return True, value
        if self.choices is not None:
            for c in self.choices:
                if _same(value, c):
                    return True, c
            return False, None
        t = self.type
        if t is bool:
            if not isinstance(value, bool):
                return False, None
        elif t is int:
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                value = int(value)
            elif _is_number(value) and math.isfinite(value) and float(value).is_integer():
                value = int(value)
            else:
                return False, None
        elif t is float:
            if not _is_number(value) or not math.isfinite(value):
                return False, None
            if type(value) not in (int, float):  # numpy scalars: plain Python numbers
                value = int(value) if isinstance(value, numbers.Integral) else float(value)
        elif t is str:
            if not isinstance(value, str):
                return False, None
        elif t is tuple:
            if not isinstance(value, (tuple, list)):
                return False, None
            if self.length is not None and len(value) != self.length:
                return False, None
            if self.min_length is not None and len(value) < self.min_length:
                return False, None
            out = []
            for item in value:
                ok, item = self.items.normalise(item)
                if not ok:
                    return False, None
                out.append(item)
            value = tuple(out)
        if self.min is not None and _is_number(value):
            if value < self.min or (self.min_exclusive and value == self.min):
                return False, None
        if self.max is not None and _is_number(value):
            if value > self.max or (self.max_exclusive and value == self.max):
                return False, None
        if self.where is not None:
            try:
                if not self.where(value):
                    return False, None
            except Exception:  # noqa: BLE001 - a rule that cannot be evaluated refuses
                return False, None
        return True, value

    def check(self, name: str, value: Any, component: str = "") -> Any:
        """The normalised ``value``, or :class:`BadParameterError` naming ``component``,
        ``name``, the value and what is allowed."""
        ok, out = self.normalise(value)
        if not ok:
            raise BadParameterError(component, name, value, self.describe(), shown=show(value))
        return out

    # ------------------------------------------------------------------ describing
    def _range(self) -> str:
        lo, hi = self.min, self.max
        if lo is not None and hi is not None:
            return f" in {'(' if self.min_exclusive else '['}{_num(lo)}, {_num(hi)}{')' if self.max_exclusive else ']'}"
        if lo is not None:
            return f" {'>' if self.min_exclusive else '>='} {_num(lo)}"
        if hi is not None:
            return f" {'<' if self.max_exclusive else '<='} {_num(hi)}"
        return ""

    def rules(self) -> str:
        """What is allowed, without the help text: ``an integer >= 1``."""
        if self.choices is not None:
            main = "one of " + ", ".join(show(c) for c in self.choices)
        elif self.type is tuple:
            if self.length is not None:
                count = f"{self.length} value{'s' if self.length != 1 else ''}"
            elif self.min_length is not None:
                count = f"at least {self.min_length} value{'s' if self.min_length != 1 else ''}"
            else:
                count = "values"
            main = f"a tuple of {count}, each {self.items.rules()}"
        else:
            main = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}[self.type]
            main += self._range()
        if self.where_help:
            main += f", {self.where_help}"
        if self.allow:
            specials = [show(a) for a in self.allow]
            return ", ".join(specials) + " or " + main
        return main

    def describe(self) -> str:
        """What is allowed, with the help text: ``one of 'running', 'image' (which BN ...)``."""
        return f"{self.rules()} ({self.help})" if self.help else self.rules()


#: the most iterations (or passes) a method runs per cell: the curves keep one value per
#: iteration and a million iterations already take hours on the default problems
MAX_ITERATIONS = 1_000_000
ITERATIONS_WHY = (f"at most {MAX_ITERATIONS:,}: a cell's curves keep one value per iteration and a million "
                  f"iterations already take hours on the default problems")


def iterations(help: str = "", **kwargs) -> Param:
    """The spec of an iteration count: an integer in [1, :data:`MAX_ITERATIONS`] whose help
    says why it is bounded."""
    kwargs.setdefault("min", 1)
    return Param(int, max=MAX_ITERATIONS, help=f"{help}; {ITERATIONS_WHY}" if help else ITERATIONS_WHY, **kwargs)


@dataclass(frozen=True)
class Ordered:
    """Parameter ``low`` must not exceed parameter ``high`` (``strict``: must be below it):
    the two ends of a range, such as ``min_size``/``max_size``."""

    low: str
    high: str
    strict: bool = False

    def check(self, component: str, params: Mapping[str, Any]) -> None:
        lo, hi = params.get(self.low), params.get(self.high)
        if not (_is_number(lo) and _is_number(hi)):
            return
        if lo > hi or (self.strict and lo == hi):
            rel = "below" if self.strict else "at most"
            raise BadParameterError(component, self.low, lo,
                                    f"{rel} {self.high}={show(hi)} (the two ends of one range); swap them or "
                                    f"change one", shown=show(lo))


def check_rules(component: str, rules, params: Mapping[str, Any]) -> None:
    """Check the rules between parameters (``parameter_rules``) on the full parameters."""
    for rule in rules:
        rule.check(component, params)


def check_parameters(component: str, specs: Mapping[str, Param], params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with every value that has a spec checked and normalised (a parameter
    without a spec passes as given; the contract tests require one for each)."""
    out = {}
    for name, value in params.items():
        spec = specs.get(name)
        out[name] = spec.check(name, value, component) if spec is not None else value
    return out


def undeclared(cls) -> list[str]:
    """The parameters of component class ``cls`` that have no spec."""
    specs = cls.parameter_specs
    return sorted(set(cls.parameters) - set(specs))


def bad_defaults(cls) -> list[str]:
    """The parameters of ``cls`` whose default does not pass its own spec (messages)."""
    specs = cls.parameter_specs
    out = []
    for name, value in cls.parameters.items():
        spec = specs.get(name)
        if spec is None:
            continue
        ok, norm = spec.normalise(value)
        if not ok:
            out.append(f"{name}={show(value)}: must be {spec.describe()}")
        elif not _same(norm, value):
            out.append(f"{name}={show(value)}: normalised to {show(norm)} (write the default as that)")
    return out
