"""Large features -- big particles, contamination, oil and wet films -- against a median background.

Rank filters only see features narrower than their window, and a window wide enough for a
60 um particle would erase the fiber itself (a 50 um core, a 37 um-wide cladding ring). So
large features are found against a median background computed at reduced resolution (~1.8 um
per pixel) separately inside each domain of the fiber -- core disk, cladding ring, ferrule --
with everything outside the domain filled with the domain's own median. Fiber structure then
never looks like a defect, and a blob is found as long as it covers less than half of its
surroundings. Each blob is then cut at half its peak at full resolution against the
upsampled background, and called oil when it is faint and soft-edged, a particle otherwise.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..numeric import median, percentile
from ..profile import DetectionParams, OilParams
from ..records import CandidateMap, DefectKind, Frame, Geometry
from .base import components, concentric_ring, detection_radius_px, fiber_guards, inspection_window

__all__ = ["BlobDetector"]

_TARGET_UM_PER_PX = 1.8  # working resolution of the background


class BlobDetector:
    name = "blob.median"

    def __init__(self, params: DetectionParams):
        self.params = params.oil
        self.detection = params

    def __call__(self, frame: Frame, geometry: Geometry) -> CandidateMap:
        p = self.params
        win = inspection_window(geometry, frame.pixels.shape, self.detection, margin_px=2)
        roi = win.crop(frame.pixels)
        if not p.enabled:
            return CandidateMap.empty(self.name, roi.shape, (win.x0, win.y0))
        step = max(2, round(_TARGET_UM_PER_PX / geometry.um_per_px))
        small_hw = (max(1, roi.shape[0] // step), max(1, roi.shape[1] // step))
        # whole step x step cells (the window's last < step rows and columns lie beyond the
        # detection margin): OpenCV's integer-factor area path, 4x faster than a fractional one
        small = cv2.resize(
            roi[: small_hw[0] * step, : small_hw[1] * step], small_hw[::-1], interpolation=cv2.INTER_AREA
        )
        domains = _domains(geometry, win, small_hw, step, self.detection)
        window = int(p.window_um / (step * geometry.um_per_px)) | 1
        background = _domain_median(small, domains, min(window, 255))
        # large features are judged on a lightly smoothed residual: the noise they compete with is
        # that of their own scale, not of single pixels
        inside = (domains > 0).astype(np.float32)
        diff = (small.astype(np.float32) - background) * inside  # nothing from outside the domains
        residual = cv2.GaussianBlur(diff, (0, 0), 1.0) / np.maximum(
            cv2.GaussianBlur(inside, (0, 0), 1.0), 1e-3
        )
        residual *= inside
        noise = _domain_noise(residual, domains)

        res_full = None  # the full-resolution residual, made only if a sharp blob needs cutting
        centre = win.local_xy(geometry.center_xy)
        min_area_small = math.pi * (0.5 * p.min_size_um / (step * geometry.um_per_px)) ** 2
        out = None  # the label map, made for the first blob kept: most frames have none
        kinds, scores, contrasts = [], [], []
        high = np.maximum(p.k_sigma * noise, p.min_contrast_grey)
        in_domain = domains > 0
        for sign in (-1.0, 1.0):
            signed = sign * residual
            seeds = (signed > high) & in_domain
            grow = ((signed > 2.5 * noise) & in_domain).astype(np.uint8)
            n, comp, areas = _labelled_areas(grow)
            for i in range(1, n):
                if areas[i] < min_area_small:
                    continue
                own = comp == i
                # a seed stands out on its own; a large faint film stands out by its mean over its extent
                if not seeds[own].any() and not _coherent(own, signed, noise, areas[i], min_area_small, p):
                    continue
                peak_small = float(percentile(signed[own], 90))  # robust: a film may touch a brighter speck
                if peak_small < p.max_oil_contrast_grey:
                    # faint: cut on the smoothed low-resolution residual (a film's size is tens of
                    # um; full resolution only adds noise to its soft edge)
                    found = _cut_small(own, signed, step, roi.shape, peak_small)
                else:
                    if res_full is None:
                        res_full = _FullResidual(roi, background, domains)
                    found = _cut_at_half_peak(own, res_full, sign, step, noise[own].mean())
                if found is None:
                    continue
                box, mask, peak, soft = found
                fresh = mask if out is None else mask & (out[box] == 0)
                if fresh.sum() < min_area_small * step * step:
                    continue
                if fresh.sum() / _length_px(
                    fresh
                ) * geometry.um_per_px < p.max_scratch_width_um and _elongated(fresh):
                    continue  # long and thin is a scratch: the line detector's
                if concentric_ring(fresh, (box[1].start, box[0].start), centre):
                    continue
                kinds.append(
                    DefectKind.OIL if peak < p.max_oil_contrast_grey and soft else DefectKind.PARTICLE
                )
                if out is None:
                    out = np.zeros(roi.shape, np.int32)
                out[box][fresh] = len(kinds)
                scores.append(float(np.clip(peak / (2 * high[own].mean()), 0.5, 1.0)))
                contrasts.append(sign * peak)
        if out is None:  # nothing found: no window-sized map (~0.1 ms to make, here)
            return CandidateMap.empty(self.name, origin_xy=(win.x0, win.y0))
        return CandidateMap(
            self.name,
            (win.x0, win.y0),
            out,
            tuple(kinds),
            np.array(scores, np.float32),
            np.array(contrasts, np.float32),
        )


def _labelled_areas(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """`components(mask)` with only the areas: (n including background, (h, w) int32 labels,
    (n,) pixel counts). The same labels; counting them apart is ~2x cheaper than OpenCV's
    statistics pass on these speckled masks (~60 against ~130 us)."""
    n, labels = cv2.connectedComponentsWithAlgorithm(mask, 8, cv2.CV_32S, cv2.CCL_GRANA)
    return n, labels, np.bincount(labels.ravel(), minlength=n)


def _coherent(
    own: np.ndarray, signed: np.ndarray, noise: np.ndarray, area_px: int, min_area_px: float, p: OilParams
) -> bool:
    """Whether a component without a seed is a large faint film: at least four times the
    smallest blob (areas at reduced resolution), its upper quartile above the contrast floor
    and three times its noise."""
    return area_px >= 4 * min_area_px and percentile(signed[own], 75) >= max(
        p.min_contrast_grey, 3.0 * float(noise[own].mean())
    )


class _FullResidual:
    """roi minus the upsampled background, zero outside the domains (guards and beyond: no signal),
    float32, formed box by box (`res[box]`): the blobs it is read for cover a small part of
    the window, and forming all of it took ~2 ms. shape: the roi's."""

    def __init__(self, roi: np.ndarray, background: np.ndarray, domains: np.ndarray):
        self.shape = roi.shape
        self._roi = roi
        self._background = cv2.resize(background, roi.shape[::-1], interpolation=cv2.INTER_LINEAR)
        self._in_domain = cv2.resize(
            (domains > 0).astype(np.uint8), roi.shape[::-1], interpolation=cv2.INTER_NEAREST
        )

    def __getitem__(self, box: tuple[slice, slice]) -> np.ndarray:
        difference = self._roi[box].astype(np.float32) - self._background[box]
        return np.where(self._in_domain[box] > 0, difference, 0.0)


def _domains(
    geometry: Geometry, win, small_hw: tuple[int, int], step: int, params: DetectionParams
) -> np.ndarray:
    """(h, w) uint8 at reduced resolution: 1 core disk, 2 cladding, 3 ferrule (contact zone), 0 elsewhere."""
    labels = np.zeros(small_hw, np.uint8)
    scale = 1.0 / step

    def disk(xy, radius_px, value):
        if radius_px > 0:
            cv2.circle(
                labels, win.fixed_xy(xy, scale), int(round(radius_px * scale * 16)), value, -1, shift=4
            )

    guards = fiber_guards(geometry, params)
    (clad_c, clad_r, clad_in, clad_out) = guards[0]
    disk(clad_c, detection_radius_px(geometry, params), 3)
    disk(clad_c, clad_r + clad_out + step, 0)
    disk(clad_c, clad_r - clad_in - step, 2)
    if len(guards) > 1:
        core_c, core_r, core_in, core_out = guards[1]
        disk(core_c, core_r + core_out + step, 0)
        disk(core_c, core_r - core_in - step, 1)
    return labels


def _domain_median(small: np.ndarray, domains: np.ndarray, window: int) -> np.ndarray:
    """Background per domain: a robust quadratic surface plus a median of what it leaves.

    The surface (outliers reweighted away) follows shading across the domain and ignores
    films covering up to about half of it; the median of the residual around it, with the
    rest of the image set to zero, corrects local shading the surface cannot follow. When the
    median window spans the whole domain, that median is one number, taken directly.
    """
    background = np.zeros(small.shape, np.float32)
    h, w = small.shape
    xx = (np.arange(w, dtype=np.float32) / max(w, 1) - 0.5)[None, :]
    yy = (np.arange(h, dtype=np.float32) / max(h, 1) - 0.5)[:, None]
    values = small.astype(np.float32)
    flat_values, flat_background = values.reshape(-1), background.reshape(-1)  # views
    for d in (1, 2, 3):
        inside = domains == d
        at = np.flatnonzero(inside)  # row-major, as np.nonzero; flat indices cost half as much
        if at.size < 12:
            continue
        # the core disk is small: a quadratic there is flexible enough to fit a film as a dome
        coeffs = _robust_surface(values, xx, yy, at, n_terms=3 if d == 1 else 6)
        _, _, width_px, height_px = cv2.boundingRect(inside.view(np.uint8))
        if window >= max(width_px, height_px):
            # the surface only where it is used: a domain is a fraction of the image
            ys, xs = np.divmod(at, w)
            surface = _surface(coeffs, xx[0, xs], yy[ys, 0])
            level = float(median(flat_values[at[::2]] - surface[::2]))
            flat_background[at] = surface + level
            continue
        surface = _surface(coeffs, xx, yy)
        # the local correction is smooth on the window's scale: its median is taken on every
        # other pixel (a window of ~250 um on a ~3.6 um grid) and interpolated back, so the
        # residual is only formed there
        half_grid = (slice(None, None, 2), slice(None, None, 2))
        residual = np.where(inside[half_grid], values[half_grid] - surface[half_grid], 0.0)
        shifted = np.clip(residual + 128.0, 0, 255).astype(np.uint8)
        coarse = cv2.medianBlur(shifted, max(3, (window // 2) | 1))
        local = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32) - 128.0
        np.add(surface, local, out=background, where=inside)
    return background


def _robust_surface(
    values: np.ndarray,
    xx: np.ndarray,
    yy: np.ndarray,
    at: np.ndarray,
    *,
    n_terms: int,
    n_iter: int = 3,
) -> np.ndarray:
    """Coefficients (6,) float32 of the surface 1, x, y[, x^2, xy, y^2] (the first `n_terms`;
    the rest 0) fitted to `values` ((h, w) float32) at the flat indices `at`, reweighting away
    outliers (blobs, films). xx: (1, w), yy: (h, 1) normalised coordinates; see `_surface`."""
    step = max(1, at.size // 2000)  # ~2000 points are plenty for six coefficients
    sampled = at[::step]
    ys, xs = np.divmod(sampled, values.shape[1])
    x, y = xx[0, xs].astype(np.float64), yy[ys, 0].astype(np.float64)
    # all six terms, the unused ones sliced off: the fits see the same (n, 6) layout for any n_terms
    terms = np.empty((x.size, 6))
    terms[:, 0] = 1.0
    terms[:, 1], terms[:, 2] = x, y
    np.multiply(x, x, out=terms[:, 3])
    np.multiply(x, y, out=terms[:, 4])
    np.multiply(y, y, out=terms[:, 5])
    basis = terms[:, :n_terms]
    v = values.reshape(-1)[sampled].astype(np.float64)
    weights = np.ones(v.shape)  # 0 or 1: `inliers` as numbers
    inliers = np.ones(v.shape, bool)
    ridge = 1e-6 * np.eye(n_terms)
    for i in range(n_iter):
        # (all weights 1 at first: a copy, the same numbers; a fresh array, so the product below
        # stays a general one and is not taken as basis.T @ basis)
        weighted = basis.copy() if i == 0 else basis * weights[:, None]
        coeffs = np.linalg.solve(weighted.T @ basis + ridge, weighted.T @ v)
        if i == n_iter - 1:
            break  # no further fit to weight
        resid = np.abs(v - basis @ coeffs)
        scale = 1.4826 * median(resid[inliers]) + 0.5
        kept = resid < 2.5 * scale
        if np.count_nonzero(kept) < 12 or np.array_equal(kept, inliers):
            break  # too few inliers to refit, or converged: the next fit would repeat this one
        inliers, weights = kept, kept.astype(np.float64)
    c = np.zeros(6, np.float32)
    c[:n_terms] = coeffs
    return c


def _surface(c: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The surface with coefficients `c` (from `_robust_surface`) at normalised coordinates x, y
    (float32, broadcast together: (1, w) and (h, 1) for the whole image, or (n,) and (n,) at points)."""
    return c[0] + x * (c[1] + c[3] * x + c[4] * y) + y * (c[2] + c[5] * y)


def _domain_noise(residual: np.ndarray, domains: np.ndarray) -> np.ndarray:
    """Per-pixel robust noise: 1.4826 MAD of the residual in its domain, floor 1 grey.

    A small domain (the core) can be a third covered by one film, which then inflates its own
    MAD: no domain's noise is taken above that of all domains together.
    """

    def mad(values: np.ndarray) -> float:
        return 1.4826 * float(median(np.abs(values - median(values))))

    per_domain = np.ones(256, np.float32)  # index: domain (0 outside; 4.. unused): a cv2.LUT table
    sampled_domains, sampled = domains[::3, ::3], residual[::3, ::3]  # thousands of samples: plenty
    everywhere = sampled_domains > 0
    if everywhere.sum() >= 4:
        overall = mad(sampled[everywhere])
        for d in (1, 2, 3):
            inside = sampled_domains == d
            if inside.sum() >= 4:
                per_domain[d] = max(1.0, min(mad(sampled[inside]), overall))
    return cv2.LUT(domains, per_domain)  # per_domain[domains], 4x faster


def _length_px(mask: np.ndarray) -> float:
    ys, xs = np.nonzero(mask)
    (_, _), (w, h), _ = cv2.minAreaRect(np.column_stack([xs, ys]).astype(np.float32))
    return max(w, h) + 1.0


def _cut_small(own: np.ndarray, signed: np.ndarray, step: int, full_hw: tuple[int, int], peak: float):
    """Half-peak cut of a faint blob at low resolution, upsampled: (box, mask, peak, soft) or None."""
    half = own & (signed >= 0.5 * peak)
    fifth = own & (signed >= 0.2 * peak)
    if not half.any():
        return None
    ys, xs = np.nonzero(own)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    box = (slice(y0 * step, min(full_hw[0], y1 * step)), slice(x0 * step, min(full_hw[1], x1 * step)))
    size = (box[1].stop - box[1].start, box[0].stop - box[0].start)
    mask = cv2.resize(half[y0:y1, x0:x1].astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    return box, mask, peak, fifth.sum() > 1.6 * half.sum()


def _elongated(mask: np.ndarray, max_ratio: float = 3.0) -> bool:
    """Whether a mask is much longer than it is wide (its area over its length, as a scratch is)."""
    ys, xs = np.nonzero(mask)
    (_, _), (w, h), _ = cv2.minAreaRect(np.column_stack([xs, ys]).astype(np.float32))
    length = max(w, h) + 1.0
    return length / max(xs.size / length, 1.0) > max_ratio


def _cut_at_half_peak(own_small: np.ndarray, res_full: _FullResidual, sign: float, step: int, noise: float):
    """The blob at full resolution, in `sign` * `res_full` (the sign applied to its box only):
    (box, mask, peak grey, soft-edged?) or None."""
    ys, xs = np.nonzero(own_small)
    pad = 2
    y0, y1 = max(0, (ys.min() - pad) * step), min(res_full.shape[0], (ys.max() + pad + 1) * step)
    x0, x1 = max(0, (xs.min() - pad) * step), min(res_full.shape[1], (xs.max() + pad + 1) * step)
    box = (slice(y0, y1), slice(x0, x1))
    near = cv2.resize(
        own_small[
            max(0, ys.min() - pad) : ys.max() + pad + 1, max(0, xs.min() - pad) : xs.max() + pad + 1
        ].astype(np.uint8),
        (x1 - x0, y1 - y0),
        interpolation=cv2.INTER_NEAREST,
    )
    near = cv2.dilate(near, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * step + 1, 2 * step + 1))) > 0
    res = cv2.GaussianBlur(sign * res_full[box], (0, 0), 1.0)
    if not near.any():
        return None
    peak = float(percentile(res[near], 99))
    if peak <= 0:
        return None
    half = near & (res >= 0.5 * peak)
    fifth = near & (res >= max(0.2 * peak, 2 * noise))
    if not half.any():
        return None
    # keep the largest connected piece of the half-peak region
    n, comp, stats = components(half.astype(np.uint8))
    biggest = 1 + int(np.argmax(stats[1:, 4])) if n > 1 else 0
    mask = comp == biggest
    soft = fifth.sum() > 1.6 * mask.sum()  # soft edges: the 20 % contour lies far outside the 50 % one
    return box, mask, peak, soft
