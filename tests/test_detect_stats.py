"""The blob and chip detectors' fast order statistics give NumPy's numbers (equal values, and
the same dtype; of tied zeros either sign may come out): they replace np.median / np.percentile
only to save wrapper overhead, never to change a result."""

from __future__ import annotations

import numpy as np
import pytest

from defectscope.detect.blob import _median, _percentile
from defectscope.detect.chip import _median_axis0


def _samples(seed: int):
    """1-D float32 samples of many sizes: smooth, heavily tied, and with signed zeros."""
    rng = np.random.default_rng(seed)
    for n in (1, 2, 3, 4, 5, 10, 99, 100, 101, 1000, 2001):
        yield rng.normal(0, 10, n).astype(np.float32)
        yield rng.integers(-3, 4, n).astype(np.float32)
        yield np.where(rng.random(n) < 0.5, -0.0, 0.0).astype(np.float32)


@pytest.mark.parametrize("q", [0, 37.5, 50, 75, 90, 99, 100])
def test_percentile_is_numpys_percentile(q):
    for values in _samples(seed=1):
        expected = np.percentile(values, q)
        got = _percentile(values, q)
        assert got.dtype == expected.dtype and got == expected, (values.size, q)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_median_is_numpys_median(dtype):
    for values in _samples(seed=2):
        values = values.astype(dtype)
        expected, got = np.median(values), _median(values)
        assert got.dtype == expected.dtype and got == expected, values.size


def test_median_over_directions_is_numpys_median_along_axis_0():
    rng = np.random.default_rng(3)
    for n_angles in (1, 2, 227, 228, 910):
        band = np.abs(rng.normal(0, 5, (n_angles, 29)))  # float64, as the chip scan's residuals
        assert np.array_equal(_median_axis0(band[::4]), np.median(band[::4], axis=0))
        assert np.array_equal(_median_axis0(band[:, 3]), np.median(band[:, 3], axis=0))
