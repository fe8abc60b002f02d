"""The fast order statistics (`defectscope.numeric`) give NumPy's numbers (equal values, and the
same dtype; of tied zeros either sign may come out): they replace np.median / np.percentile only
to save wrapper overhead, never to change a result."""

from __future__ import annotations

import numpy as np
import pytest

from defectscope.numeric import median, median_axis0, median_rows_uint8, percentile


def _samples(seed: int):
    """1-D float32 samples of many sizes: smooth, heavily tied, and with signed zeros."""
    rng = np.random.default_rng(seed)
    for n in (1, 2, 3, 4, 5, 10, 99, 100, 101, 1000, 2001):
        yield rng.normal(0, 10, n).astype(np.float32)
        yield rng.integers(-3, 4, n).astype(np.float32)
        yield np.where(rng.random(n) < 0.5, -0.0, 0.0).astype(np.float32)


@pytest.mark.parametrize("q", [10, 37.5, 75, 90, 95])
def test_percentile_of_other_dtypes_and_every_size_is_numpys(q):
    """The virtual index is (n - 1) q as NumPy 2 computes it: other formulations of the same
    number (n q + 1 - q - 1) differ in the last bit for some n and move the result."""
    rng = np.random.default_rng(4)
    for n in range(1, 400):
        for values in (rng.integers(0, 256, n, dtype=np.uint8), rng.normal(0, 10, n)):
            expected, got = np.percentile(values, q), percentile(values, q)
            assert got == expected, (n, values.dtype, q)


@pytest.mark.parametrize("q", [0, 37.5, 50, 75, 90, 99, 100])
def test_percentile_is_numpys_percentile(q):
    for values in _samples(seed=1):
        expected = np.percentile(values, q)
        got = percentile(values, q)
        assert got.dtype == expected.dtype and got == expected, (values.size, q)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_median_is_numpys_median(dtype):
    for values in _samples(seed=2):
        values = values.astype(dtype)
        expected, got = np.median(values), median(values)
        assert got.dtype == expected.dtype and got == expected, values.size


def test_median_over_directions_is_numpys_median_along_axis_0():
    rng = np.random.default_rng(3)
    for n_angles in (1, 2, 227, 228, 910):
        band = np.abs(rng.normal(0, 5, (n_angles, 29)))  # float64, as the chip scan's residuals
        assert np.array_equal(median_axis0(band[::4]), np.median(band[::4], axis=0))
        assert np.array_equal(median_axis0(band[:, 3]), np.median(band[:, 3], axis=0))


def test_medians_of_small_and_integer_arrays_are_numpys():
    rng = np.random.default_rng(2)
    rows = rng.integers(0, 255, (40, 360), dtype=np.uint8)
    assert np.array_equal(median_rows_uint8(rows), np.median(rows, axis=1))
    for n in range(1, 40):
        for values in (
            rng.uniform(0, 10, n),
            rng.uniform(0, 10, n).astype(np.float32),
            rng.integers(0, 4, n, dtype=np.uint8),  # few levels: ties, and pairs that overflow uint8
            rng.integers(250, 256, n, dtype=np.uint8),
        ):
            got, expected = median(values), np.median(values)
            assert got == expected and got.dtype == expected.dtype
        columns = rng.uniform(0, 10, (n, 7)).astype(np.float32)
        assert np.array_equal(median_axis0(columns), np.median(columns, axis=0))
        assert median_axis0(columns).dtype == np.float32
