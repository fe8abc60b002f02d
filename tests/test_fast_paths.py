"""The detection helpers' fast paths give exactly what the plain NumPy formulations give: they
exist for speed only, so any difference would change reports."""

import cv2
import numpy as np

from defectscope.detect.base import (
    OUTSIDE,
    Window,
    _band_radii,
    _median_by_bin,
    within_radii,
)


def _median_by_bin_reference(samples: np.ndarray) -> np.ndarray:
    """The sort-and-np.median formulation (all samples present)."""
    n_bins = len(samples)
    level = np.sort(samples.astype(np.float32), axis=1)[:, (samples.shape[1] - 1) // 2]
    extended = np.concatenate([level[-2:], level, level[:2]]).astype(np.float64)
    return np.median(np.stack([extended[i : i + n_bins] for i in range(5)]), axis=0)


def test_edge_level_medians_match_numpy_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(200):
        samples = rng.integers(0, 4, (72, 32), dtype=np.uint8)  # few levels: many ties
        expected = _median_by_bin_reference(samples)
        assert np.array_equal(_median_by_bin(samples), expected)
        assert np.array_equal(_median_by_bin(samples.astype(np.float32)), expected)


def test_band_radii_are_linspace():
    rng = np.random.default_rng(1)
    for lo, hi in rng.uniform(0, 400, (1000, 2)):
        assert np.array_equal(_band_radii(lo, hi), np.linspace(lo, hi, 8))


def test_within_radii_clears_the_same_pixels_as_a_ring_mask():
    labels = np.full((101, 121), 3, np.uint8)
    window, centre_xy = Window(10, 20, 121, 101), (70.3, 69.6)
    kept = np.zeros(labels.shape, np.uint8)
    at = window.fixed_xy(centre_xy)
    cv2.circle(kept, at, round(45.2 * 16), 1, -1, shift=4)
    cv2.circle(kept, at, round(12.7 * 16), 0, -1, shift=4)
    expected = np.where(kept > 0, labels, OUTSIDE)
    found = within_radii(labels, window, centre_xy, inner_px=12.7, outer_px=45.2)
    assert np.array_equal(found, expected)
    assert within_radii(labels, window, centre_xy, inner_px=12.7)[labels.shape[0] // 2, 0] == 3
