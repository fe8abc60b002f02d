"""The detection helpers' fast paths give exactly what the plain NumPy formulations give: they
exist for speed only, so any difference would change reports."""

import cv2
import numpy as np

from defectscope.detect.base import (
    CORE_GUARD,
    GUARD,
    OUTSIDE,
    Window,
    _band_radii,
    _hist_quantile,
    _median_by_bin,
    _zone_histograms,
    components,
    concentric_ring,
    within_radii,
    zone_medians,
    zone_noise,
)
from defectscope.detect.chip import _components, _harmonic_background, _unwrap_band
from defectscope.detect.region import _enclosed, _ids_under, _pixels_xy
from defectscope.detect.scratch import _box_peaks, _running_median
from defectscope.geometry import polar_unwrap
from defectscope.numeric import median, median_axis0, percentile


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


def test_scratch_medians_and_quartile_match_numpy():
    rng = np.random.default_rng(7)
    for n in range(1, 60):
        values = rng.integers(0, 6, n).astype(np.float32) / 3  # few levels: many ties
        assert median(values) == np.median(values)
        table = rng.normal(size=(n, 9)).astype(np.float32)
        assert np.array_equal(median_axis0(table), np.median(table, axis=0))
        counts = rng.integers(0, 50, n, dtype=np.uint16)  # the line noise's quartile of uint16 responses
        assert percentile(counts.astype(np.float64), 75) == np.percentile(counts, 75)


def test_running_median_matches_the_padded_sliding_window():
    rng = np.random.default_rng(8)
    for size in range(1, 30):
        values = rng.integers(0, 5, 40).astype(np.float32)
        before = size // 2
        padded = np.pad(values, (before, size - 1 - before), mode="edge")
        windows = np.lib.stride_tricks.sliding_window_view(padded, size)
        assert np.array_equal(_running_median(values, size), np.sort(windows, axis=1)[:, before])


def test_box_peaks_match_argmax_box_by_box():
    rng = np.random.default_rng(9)
    n, side = 12, 40
    responses = rng.integers(0, 4, (n, side, side), dtype=np.uint16)  # ties: the first one counts
    alongs = rng.integers(0, 9000, (n, side, side), dtype=np.uint16)
    k = rng.integers(0, n, 50)
    x0, y0 = rng.integers(0, side - 8, 50), rng.integers(0, side - 8, 50)
    x1, y1 = x0 + rng.integers(1, 8, 50), y0 + rng.integers(1, 8, 50)
    peaks, at_peak = _box_peaks(responses, alongs, k, x0, x1, y0, y1)
    for j in range(50):
        if k[j] < n // 2:
            part = np.s_[k[j], y0[j] : y1[j], x0[j] : x1[j]]
        else:  # stored untransposed
            part = np.s_[k[j], x0[j] : x1[j], y0[j] : y1[j]]
        box, along = responses[part], alongs[part]
        assert peaks[j] == box.max() and at_peak[j] == along.flat[box.argmax()]


def test_zone_medians_are_zone_noise_medians():
    rng = np.random.default_rng(10)
    labels = rng.choice(np.array([0, 1, 2, 3, 255], np.uint8), (60, 70))
    labels[:, :10] = 2  # zone 4 is empty
    residual = rng.integers(0, 9, labels.shape, dtype=np.uint8)
    assert np.array_equal(zone_medians(residual, labels, 4), zone_noise(residual, labels, 4)[0])


def test_chip_band_sampling_is_polar_unwrap():
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, (300, 400), dtype=np.uint8)
    for _ in range(200):
        inner = float(rng.uniform(1, 120))
        outer = inner + float(rng.uniform(1, 40))
        centre_xy = (float(rng.uniform(-50, 450)), float(rng.uniform(-50, 350)))  # some bands leave the frame
        n_angles = max(360, int(2 * np.pi * outer))
        expected, expected_valid = polar_unwrap(
            pixels, centre_xy, outer, min_radius_px=inner, n_angles=n_angles
        )
        polar, valid = _unwrap_band(pixels, centre_xy, inner, outer, n_angles)
        assert np.array_equal(polar, expected)
        if valid is None:
            assert expected_valid.all()
        else:
            assert np.array_equal(valid, expected_valid)


def test_chip_components_match_base_components():
    rng = np.random.default_rng(8)
    for _ in range(300):
        shape = (int(rng.integers(1, 900)), int(rng.integers(1, 40)))
        mask = (rng.random(shape) < rng.uniform(0.0, 0.4)).astype(np.uint8)
        n, labels, stats = components(mask)
        own_labels, boxes = _components(mask)
        assert np.array_equal(own_labels, labels)
        assert np.array_equal(np.array(boxes, np.int64).reshape(-1, 5), stats[1:])


def test_chip_background_fit_without_a_validity_mask_is_the_fit_with_all_valid():
    rng = np.random.default_rng(9)
    theta = np.linspace(0, 2 * np.pi, 900, endpoint=False)[:, None]
    for _ in range(50):
        level = 100 + 20 * np.cos(theta - rng.uniform(0, 6))  # a lighting gradient
        polar = (level + rng.normal(0, 3, (900, 30))).astype(np.float32)
        polar[rng.integers(0, 880) :][:20] += 60  # a chip: left out by the reweighting
        everywhere = np.ones(polar.shape, bool)
        assert np.array_equal(_harmonic_background(polar, None), _harmonic_background(polar, everywhere))


def _zone_noise_reference(residual: np.ndarray, labels: np.ndarray, n_zones: int):
    """zone_noise as a loop over zones, one `_hist_quantile` per histogram."""
    hist2d = _zone_histograms(residual, labels, n_zones)
    level = np.zeros(n_zones + 1)
    spread = np.zeros(n_zones + 1, np.float32)
    grey = np.arange(256)
    for z in range(1, n_zones + 1):
        if hist2d[z].sum() > 0:
            level[z] = _hist_quantile(hist2d[z], 0.5)
            deviations = np.bincount(np.abs(grey - int(round(level[z]))), weights=hist2d[z], minlength=256)
            spread[z] = 1.4826 * _hist_quantile(deviations, 0.5)
    return level.astype(np.float32), spread


def test_zone_noise_matches_the_per_zone_loop():
    rng = np.random.default_rng(11)
    for trial in range(300):
        labels = rng.choice(np.array([0, 1, 2, 3, 4, 253, 255], np.uint8), (40, 50))
        if trial % 3 == 0:
            labels[labels == 3] = 2  # an empty zone
        top = int(rng.choice([2, 5, 30, 256]))
        residual = rng.integers(0, top, labels.shape, dtype=np.uint8)
        if trial % 7 == 0:  # medians halfway between two greys (x.5: rounded half to even)
            labels[:] = 1
            labels[:, 48:] = OUTSIDE  # 24 sampled columns: as many of each grey
            residual[:] = (np.arange(50) // 2 % 2 + 2 * (trial % 2))[None, :]  # sampled: every other column
        expected_found = zip(_zone_noise_reference(residual, labels, 4), zone_noise(residual, labels, 4))
        for expected, found in expected_found:
            assert found.dtype == expected.dtype and np.array_equal(found, expected)


def _enclosed_reference(pixels, mask, labels, peak):
    """region._enclosed as two 3x3 dilations and boolean NumPy masks."""
    kernel = np.ones((3, 3), np.uint8)
    near = cv2.dilate(mask.astype(np.uint8), kernel)
    ring = (cv2.dilate(near, kernel) > 0) & (near == 0) & (labels != 0)
    ring &= (labels != GUARD) & (labels != CORE_GUARD)
    if ring.sum() < 8:
        return True
    level_with_it = pixels[ring].astype(np.float32) - np.median(pixels[mask]) <= max(2.0, 0.1 * peak)
    return bool(level_with_it.mean() < 0.5)


def test_enclosed_matches_the_boolean_mask_formulation():
    rng = np.random.default_rng(12)
    seen = set()
    for _ in range(2000):
        h, w = rng.integers(3, 30, 2)
        pixels = rng.integers(90, 110, (h, w), dtype=np.uint8)
        mask = np.zeros((h, w), bool)
        y, x = rng.integers(0, h), rng.integers(0, w)
        mask[max(0, y - 2) : y + rng.integers(1, 6), max(0, x - 2) : x + rng.integers(1, 6)] = True
        pixels[mask] -= rng.integers(0, 30, dtype=np.uint8)
        labels = rng.choice(np.array([0, 1, 2, 253, 255], np.uint8), (h, w), p=[0.1, 0.5, 0.3, 0.05, 0.05])
        peak = float(rng.integers(3, 40))
        expected = _enclosed_reference(pixels, mask, labels, peak)
        assert _enclosed(pixels, mask, labels, peak) == expected
        seen.add(expected)
    assert seen == {True, False}


def test_ids_under_are_the_labels_under_the_mask():
    rng = np.random.default_rng(13)
    for _ in range(2000):
        comp = rng.integers(0, int(rng.integers(1, 5)), (9, 11)).astype(np.int32)
        under = (rng.random((9, 11)) < rng.choice([0.0, 0.02, 0.3])).astype(np.uint8)
        expected = np.unique(comp[under > 0])
        assert np.array_equal(_ids_under(comp, under), expected[expected > 0])


def test_region_pixels_are_np_nonzero_as_float32_points():
    rng = np.random.default_rng(15)
    for _ in range(200):
        mask = rng.random((int(rng.integers(1, 20)), int(rng.integers(1, 20)))) < rng.choice([0.0, 0.1, 0.7])
        ys, xs = np.nonzero(mask)
        expected = np.column_stack([xs, ys]).astype(np.float32)
        found = _pixels_xy(mask)
        assert found.dtype == np.float32 and np.array_equal(found, expected)


def _concentric_ring_reference(mask, origin_xy, centre_xy):
    """concentric_ring from the pixels' angles alone (no bounding-box shortcut)."""
    ys, xs = np.nonzero(mask)
    if xs.size < 20:
        return False
    dx, dy = xs + origin_xy[0] - centre_xy[0], ys + origin_xy[1] - centre_xy[1]
    angles = np.sort(np.arctan2(dy, dx))
    if 2 * np.pi - np.diff(angles, append=angles[0] + 2 * np.pi).max() < np.pi / 2:
        return False
    r10, r50, r90 = np.percentile(np.hypot(dx, dy), (10, 50, 90))
    return bool(r90 - r10 <= 0.15 * r50)


def test_concentric_ring_matches_the_angle_formulation():
    rng = np.random.default_rng(16)
    seen = set()
    yy, xx = np.mgrid[:80, :80]
    for _ in range(1500):
        centre = tuple(rng.uniform(-60, 140, 2))
        radius, width = rng.uniform(5, 90), rng.uniform(1, 12)
        ring = np.abs(np.hypot(xx - centre[0], yy - centre[1]) - radius) < width / 2
        mask = ring & (rng.random(ring.shape) < rng.choice([1.0, 0.3]))
        if rng.random() < 0.3:
            mask = mask[: int(rng.integers(1, 80)), : int(rng.integers(1, 80))]
        origin = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        local_centre = (centre[0] + origin[0], centre[1] + origin[1])
        expected = _concentric_ring_reference(mask, origin, local_centre)
        assert concentric_ring(mask, origin, local_centre) == expected
        seen.add(expected)
    assert seen == {True, False}
