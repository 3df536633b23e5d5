"""Sparse coding (LASSO) methods."""
