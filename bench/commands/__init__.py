"""The handlers of ``python -m bench``'s commands, one module per group; :mod:`bench.cli`
parses the command line and calls them:

- :mod:`bench.commands.listing`: ``list``, ``weights``, ``data`` (what the project knows and has);
- :mod:`bench.commands.run`: ``run`` (a grid into the store, then its report);
- :mod:`bench.commands.report`: ``report``, ``publish``, ``export`` (reading the store back);
- :mod:`bench.commands.check`: ``check`` (smoke grids against the baselines).

``train`` lives with the training code (:mod:`bench.train`). These modules import their heavy
dependencies inside the handlers, so that ``--help`` stays fast.
"""
