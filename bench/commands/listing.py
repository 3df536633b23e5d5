"""``python -m bench list``, ``weights`` and ``data``: what the project knows (suites, their
components and grids) and what is on disk (published weights, data sets), and ``data fetch``."""
from __future__ import annotations

import sys

from bench.commands.run import named_grids


def cmd_list(args) -> int:
    from bench import registry as R
    R.load_all()
    suites = [R.SUITES.get_or_fail(args.suite)] if args.suite else list(R.SUITES.values())
    for s in suites:
        print(f"suite {s.name}: {s.description}")
        print("  datasets:")
        for d in R.datasets_of(s.name):
            _print_component(d, f"{_params(d.parameters)}{'  [reads --data-root]' if d.needs_data else ''}")
        print("  degradations:")
        for g in R.DEGRADATIONS.values():
            if s.name in g.suites:
                _print_component(g, _params(g.parameters))
        print("  methods:")
        for m in R.methods_of(s.name):
            _print_component(m, f"{m.family:9s} devices={','.join(m.devices):9s} {_params(m.parameters)}")
        print("  metrics:")
        for name in s.metrics:
            mt = R.METRICS[name]
            arrow = "lower is better" if mt.direction == "min" else "higher is better"
            print(f"    {mt.name:22s} [{mt.unit}] {arrow}; {mt.definition}")
        _print_grids(s)
        if s.protocols:
            print("  protocols (run --protocol NAME):")
            for name in s.protocols:
                default = " (default)" if name == s.default_protocol else ""
                print(f"    {name + default:22s} {s.protocol_description(name)}")
        print()
    return 0


def grid_cell_count(suite, grid) -> int:
    """The cells of a grid on one device (datasets x noise cases x methods x protocols, summed
    over the grid's parts)."""
    from bench.grid import resolve, resolve_protocols
    from bench import registry as R
    from bench.suite import grid_parts
    total = 0
    for spec in grid_parts(grid):
        n = len(resolve_protocols(suite.name, spec.protocols))
        for sel, reg, what in ((spec.datasets, R.DATASETS, "dataset"),
                               (spec.degradations, R.DEGRADATIONS, "degradation"), (spec.methods, R.METHODS, "method")):
            n *= len(resolve(sel, reg, suite.name, what))
        total += n
    return total


def _print_grids(s) -> None:
    """``bench list``: every grid of a suite with its size and, where measured, its time."""
    from bench.grid_times import measured
    print("  grids (run --grid NAME; `default` is what `bench run` runs, the paper's main table):")
    from bench.suite import grid_parts
    for gname, g in named_grids(s).items():
        same = gname == "full" and getattr(s, "full", None) is None
        t = measured(s.name, gname)
        shape = " + ".join(f"{len(p.datasets)} dataset(s) x {len(p.degradations)} degradation(s) x "
                           f"{len(p.methods)} method selector(s)"
                           + (f", protocol(s) {', '.join(p.protocols)}" if p.protocols else "") for p in grid_parts(g))
        print(f"    {gname:22s} {grid_cell_count(s, g):4d} cells (before skips): {shape}"
              + (" (the default grid)" if same else "") + (f"; {t.line()}" if t else ""))


def _print_component(cls, head: str) -> None:
    """``bench list``: a dataset, degradation or method: its name and ``head``, its
    description, and the values each parameter takes."""
    print(f"    {cls.name:22s} {head}")
    if cls.description:
        print(f"    {'':22s} {cls.description}")
    _print_allowed(cls)


def _print_allowed(cls) -> None:
    """One line per parameter: what values it takes (its spec, :mod:`bench.params`)."""
    for k in cls.parameters:
        spec = cls.parameter_specs.get(k)
        print(f"    {'':22s}   {k}: {spec.describe() if spec else '(undeclared)'}")


def _params(p: dict) -> str:
    from bench.registry import format_value
    return "[" + ", ".join(f"{k}={format_value(v)}" for k, v in p.items()) + "]" if p else "[]"


def cmd_weights(args) -> int:
    from bench import weights
    text, corrupt = weights.listing(args.weights_root, suite=args.suite, method=args.method)
    print(text)
    return 1 if corrupt else 0


def cmd_data(args) -> int:
    from bench import data
    if args.data_command == "list":
        text, corrupt = data.listing(args.data_root, args.weights_root, args.names or None)
        print(text)
        return 1 if corrupt else 0
    if args.data_command == "fetch":
        if args.retries < 0:
            print("error: --retries must be at least 0", file=sys.stderr)
            return 2
        bad = data.fetch(args.names, args.data_root, args.weights_root, args.mirror, args.retries)
        return 1 if bad else 0
    if args.data_command == "verify":
        from bench.data_verify import verify
        return verify(args.name, args.path, args.data_root)
    print("usage: python -m bench data {list,fetch,verify} ...", file=sys.stderr)
    return 2
