"""The LASSO data set: codes checked when generated."""
from __future__ import annotations

import pytest

from bench.datasets.sparse import GaussianLasso
from bench.errors import DataError


def test_a_test_set_of_zero_codes_is_refused_when_loaded():
    """The NMSE divides by the codes' energy: all-zero codes used to end in ZeroDivisionError
    after the method ran; now the load says what to change."""
    with pytest.raises(DataError, match=r"every one of the 3 test codes is zero .*raise p, n or n_test"):
        GaussianLasso(m=1, n=1, p=1e-9, n_test=3).load()
    assert GaussianLasso(m=5, n=10, p=0.5, n_test=3).load().x.any()
