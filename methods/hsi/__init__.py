"""Hyperspectral denoising methods (suite ``hsi``): classical (BM4D, LRTDTV, a spectral-
subspace baseline) and, later, learned (SMDS-Net, STAR-Net) side by side."""
