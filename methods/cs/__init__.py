"""Image compressive sensing methods (suite ``cs``): classical reconstructions (ISTA and
FISTA with a block-DCT l1 prior, TV by ADMM, plug-and-play ADMM with BM3D) and the
unrolled ISTA-Net and ISTA-Net+ side by side."""
