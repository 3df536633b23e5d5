"""A benchmark of classical solvers and deep-unrolling networks for imaging inverse problems."""
__version__ = "0.1.0"
