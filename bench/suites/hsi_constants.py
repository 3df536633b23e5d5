"""Names the hsi suite and its report share (a leaf module: imports nothing of the project)."""

SIGMAS = (10, 30, 50, 70)
#: also the order of the classical columns in the report (the slides': Noisy, BM4D, LRTDTV, NGMeet, ...)
CLASSICAL = ("noisy", "bm4d", "lrtdtv", "ngmeet", "subspace_tv")
