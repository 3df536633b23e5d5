"""Methods, one module per family: sparse/, istd/, hsi/ (classical and learned side by
side). Installed as ``bench.methods``."""
