"""Chips, and defects in the guard bands: found in the profile of the fiber's own circular edges.

A band just inside the fitted cladding edge is unwrapped into polar coordinates, one sample
per pixel of arc. At each radius, the median over all directions is what an intact edge
looks like there (including its bevel rim); a chip is a run of directions where the band
departs from it by more than `k_sigma` noise units and `min_contrast_grey`, starting at the
edge and reaching at least `min_depth_um` inwards over at least `min_arc_um` of arc. Its depth
is cut at half its peak departure.

A departure that does not reach the edge but lies in the edge guard band, where the region
detector does not look, is reported too: as a dig (darker) or a particle (brighter). The core's
edge gets the same scan for its guard band (a band as wide as a small core itself).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ..geometry import polar_samples
from ..numeric import median, median_axis0
from ..profile import DetectionParams
from ..records import CandidateMap, DefectKind, Frame, Geometry
from .base import Window, inspection_window

__all__ = ["ChipDetector"]

_MIN_INSIDE_AREA_PX = 6  # a defect inside a guard band: smaller is noise
_CORE_MARGIN_UM = 3.0  # the core band is scanned this far beyond its guard band on both sides


@dataclass(frozen=True)
class _Found:
    outline_xy: np.ndarray  # (k, 2) polygon in frame px
    kind: DefectKind
    contrast_grey: float


class ChipDetector:
    name = "chip.edge"

    def __init__(self, params: DetectionParams):
        self.params = params.chip
        self.detection = params

    def __call__(self, frame: Frame, geometry: Geometry) -> CandidateMap:
        p = self.params
        win = inspection_window(geometry, frame.pixels.shape, self.detection, margin_px=2)
        if not p.enabled:
            return CandidateMap.empty(self.name, (win.h, win.w), (win.x0, win.y0))
        um = geometry.um_per_px
        radius = geometry.cladding_radius_px
        # the cladding edge: chips, and whatever lies in the guard band inside it
        found = self._scan(
            frame.pixels,
            geometry.center_xy,
            max(1.0, radius - p.max_depth_um / um),
            radius - 0.5,  # the edge's own blurred step is the geometry's, not a chip
            guard_px=(radius - self.detection.edge_guard_inner_um / um, radius),
            um_per_px=um,
            chips=True,
        )
        if geometry.core_radius_px:  # the core's edge: whatever lies in its guard band
            core = geometry.core_radius_px
            guard = (
                core - self.detection.core_guard_inner_um / um,
                core + self.detection.core_guard_outer_um / um,
            )
            margin = _CORE_MARGIN_UM / um  # so what straddles the guard band is measured whole
            found += self._scan(
                frame.pixels,
                geometry.core_center_xy or geometry.center_xy,
                max(1.0, guard[0] - margin),
                guard[1] + margin,
                guard_px=guard,
                um_per_px=um,
                chips=False,
            )
        polys = [np.round((f.outline_xy - [win.x0, win.y0]) * 16).astype(np.int32) for f in found]
        # the map covers the outlines only (within the window): a few thin arcs do not need a
        # window-sized map, which costs ~0.1 ms to allocate here and as much to scan in fuse
        x0, y0, x1, y1 = _extent_px(polys, win)
        labels = np.zeros((y1 - y0, x1 - x0), np.int32)
        for i, poly in enumerate(polys, start=1):
            cv2.fillPoly(labels, [poly - [x0 * 16, y0 * 16]], i, lineType=cv2.LINE_8, shift=4)
        contrasts = np.array([f.contrast_grey for f in found], np.float32)
        return CandidateMap(
            self.name,
            (win.x0 + x0, win.y0 + y0),
            labels,
            tuple(f.kind for f in found),
            np.clip(np.abs(contrasts) / (2 * p.min_contrast_grey), 0.5, 1.0).astype(np.float32),
            contrasts,
        )

    def _scan(
        self,
        pixels: np.ndarray,
        centre_xy: tuple[float, float],
        inner: float,
        outer: float,
        *,
        guard_px: tuple[float, float],
        um_per_px: float,
        chips: bool,
    ) -> list[_Found]:
        """Departures from the band's own concentric profile between radii `inner` and `outer`:
        chips (reaching `outer`, when `chips`) and defects overlapping the guard band `guard_px`
        (radii), where the region detector does not look."""
        p = self.params
        n_angles = max(360, int(2 * math.pi * outer))
        polar, valid = _unwrap_band(pixels, centre_xy, inner, outer, n_angles)
        polar = cv2.GaussianBlur(polar, (0, 0), sigmaX=0.5, sigmaY=1.5)  # along the arc more than across
        background = _harmonic_background(polar, valid)
        deviation = np.subtract(polar, background, out=background)  # in place: see _harmonic_background
        magnitude = np.abs(deviation)
        noise = np.maximum(1.4826 * median_axis0(magnitude[::4]), 1.0)
        off = magnitude > np.maximum(p.k_sigma * noise, p.min_contrast_grey)
        if valid is not None:
            off &= valid
        if not off.any():
            return []
        # start the unwrapped band where it is quietest, so no defect is cut in two by the seam
        seam = int(np.argmin(cv2.reduce(off.view(np.uint8), 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S)))  # 2x .sum
        off = np.concatenate((off[seam:], off[:seam]))  # row j is direction j + seam (np.roll's, 4x faster)
        comp, boxes = _components(off.view(np.uint8))
        last_col = off.shape[1] - 1
        found = []
        for i, (x, y, w, h, area) in enumerate(boxes, start=1):
            r_lo, r_hi = inner + x, inner + x + w - 1
            is_chip = chips and x + w - 1 >= last_col - 1
            if is_chip and (h * um_per_px < p.min_arc_um or w * um_per_px < p.min_depth_um):
                continue
            if not is_chip and (r_hi < guard_px[0] or r_lo > guard_px[1] or area < _MIN_INSIDE_AREA_PX):
                continue  # outside the guard band: the region detector's
            own = comp[y : y + h, x : x + w] == i
            dev = deviation[np.arange(y + seam, y + seam + h) % n_angles, x : x + w]  # as `off` is rolled
            contrast = float(median(dev[own]))
            half = own & (np.abs(dev) >= 0.5 * np.abs(dev[own]).max())  # cut at half its peak
            if is_chip:
                kind = DefectKind.CHIP
                col_in, col_out = _chip_columns(own, half), np.full(h, outer + 0.5 - inner - x)  # to the edge
            else:
                kind = DefectKind.DIG if contrast < 0 else DefectKind.PARTICLE
                col_in, col_out = _band_columns(half)
            # column j is radius inner + j
            outline = _outline_xy(centre_xy, y + seam, inner + x + col_in, inner + x + col_out, n_angles)
            found.append(_Found(outline, kind, contrast))
        return found


def _unwrap_band(
    pixels: np.ndarray, centre_xy: tuple[float, float], inner: float, outer: float, n_angles: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """`geometry.polar_unwrap(pixels, centre_xy, outer, min_radius_px=inner, n_angles=n_angles)`,
    to the bit, but with valid None when every sample lies in the frame (as is usual: the band
    is then used whole, untested). Sampled radii-first and transposed after: remap is faster so."""
    polar_rt, valid_rt = polar_samples(pixels, centre_xy, outer, inner, n_angles, radii_first=True)
    valid = None if valid_rt.all() else np.ascontiguousarray(valid_rt.T)
    return cv2.transpose(polar_rt).astype(np.float32), valid


def _components(mask: np.ndarray) -> tuple[np.ndarray, list[list[int]]]:
    """8-connected components of a uint8 mask, as `base.components` labels them: ((h, w) int32
    labels, per label 1, 2, ... its [x, y, w, h, area]).

    OpenCV's statistics pass costs ~6x its labelling on these long, narrow bands; the boxes
    are taken here from the few set pixels instead.
    """
    n, labels = cv2.connectedComponentsWithAlgorithm(mask, 8, cv2.CV_32S, cv2.CCL_GRANA)
    if n < 2:
        return labels, []
    points = cv2.findNonZero(mask).reshape(-1, 2)  # (x, y), row-major; 6x np.flatnonzero's speed
    owner = labels[points[:, 1], points[:, 0]]
    order = np.argsort(owner, kind="stable")  # by label, each still row-major
    cols, rows = points[order, 0], points[order, 1]
    area = np.bincount(owner, minlength=n)[1:]
    first = np.concatenate(([0], np.cumsum(area)[:-1]))
    x0, x1 = np.minimum.reduceat(cols, first), np.maximum.reduceat(cols, first)
    y0, y1 = rows[first], rows[first + area - 1]
    return labels, np.column_stack([x0, y0, x1 - x0 + 1, y1 - y0 + 1, area]).tolist()


def _extent_px(polys: list[np.ndarray], win: Window) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), window px: a box holding every pixel the polygons (fixed point, shift=4,
    window px) can fill -- their vertices' pixels and one more on each side -- clipped to the
    window; (0, 0, 1, 1) when there are none."""
    if not polys:
        return 0, 0, 1, 1
    points = np.vstack(polys)
    (x0, y0), (x1, y1) = points.min(axis=0) // 16 - 1, points.max(axis=0) // 16 + 2
    return max(0, int(x0)), max(0, int(y0)), min(win.w, int(x1)), min(win.h, int(y1))


def _chip_columns(own: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Per direction, the inner boundary of a chip (columns of its box): its innermost pixel, no
    deeper than its half-peak extent (the detection threshold lies in the blur's skirt and would
    carry a particle lying on the edge into the zone inside it)."""
    w = own.shape[1]
    innermost = np.where(own.any(axis=1), np.argmax(own, axis=1), w)
    deepest_half = int(np.argmax(half.any(axis=0)))
    return np.maximum(innermost, deepest_half) - 0.5


def _band_columns(half: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per direction, the inner and outer boundary (columns of its box) of a defect lying inside
    the band, at half its peak; NaN in directions it does not cover."""
    w = half.shape[1]
    rows = half.any(axis=1)
    first = np.argmax(half, axis=1)
    last = w - 1 - np.argmax(half[:, ::-1], axis=1)
    return np.where(rows, first - 0.5, np.nan), np.where(rows, last + 0.5, np.nan)


def _harmonic_background(polar: np.ndarray, valid: np.ndarray | None, n_iter: int = 3) -> np.ndarray:
    """Per radius, a robust fit over direction of a constant plus first and second harmonics.

    This is an intact edge: its level, a lighting gradient across the fiber, a slight misfit
    of the circle. A chip spans a small arc and is left out by the reweighting.
    polar: (n_angles, n_radii); valid: where it holds data (None: everywhere). Returns the
    background, same shape.
    """
    basis, outer, normal_all = _harmonic_basis(polar.shape[0])
    # float64 once (every product and difference below is float64 anyway: the same values), and
    # work arrays filled in place: a fresh ~200 kB array per step costs more in page faults
    # than the arithmetic on it
    values = polar.astype(np.float64)
    background, residual, weights = np.empty_like(values), np.empty_like(values), np.empty_like(values)
    inliers = valid
    ridge = 1e-6 * np.eye(5)
    if valid is not None:
        np.copyto(weights, valid)  # inliers as 0/1, float64: the matrix products then run in BLAS
    for i in range(n_iter):
        if i == 0 and (valid is None or valid.all()):
            # every radius has the same weights, hence the same normal matrix: one solve for all
            coeffs = np.linalg.solve(normal_all, basis.T @ values).T
        else:
            # weighted normal equations for every radius at once, as two matrix products
            normal = (weights.T @ outer).reshape(-1, 5, 5) + ridge  # (n_radii, 5, 5)
            rhs = np.multiply(weights, values, out=residual).T @ basis  # (n_radii, 5)
            coeffs = np.linalg.solve(normal, rhs[..., None])[..., 0]
        np.matmul(basis, coeffs.T, out=background)
        if i == n_iter - 1:
            break  # no further fit to weight
        np.abs(np.subtract(values, background, out=residual), out=residual)
        scale = 1.4826 * median_axis0(residual[::4]) + 0.5  # every 4th direction is plenty for a spread
        kept = residual < 3.0 * scale  # drop outliers (chips, dirt) from the next fit
        if valid is not None:
            kept &= valid
        if kept.all() if inliers is None else np.array_equal(kept, inliers):
            break  # converged: the next fit would repeat this one exactly
        inliers = kept
        np.copyto(weights, kept)
    return background


@lru_cache(maxsize=16)
def _harmonic_basis(n_angles: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_harmonic_background`'s design for `n_angles` directions: the basis (n_angles, 5) -- 1,
    cos, sin, cos 2x, sin 2x --, all products of two basis functions (n_angles, 25), and the
    normal matrix of equal weights (5, 5), ridge included. Cached (the next image of the same
    fiber has the same directions); read-only."""
    theta = np.arange(n_angles) * (2 * np.pi / n_angles)
    rows = np.array([np.ones(n_angles), np.cos(theta), np.sin(theta), np.cos(2 * theta), np.sin(2 * theta)])
    basis = np.ascontiguousarray(rows.T)
    # einsum writes the products straight in the layout the matrix products read (4x faster
    # than forming them along the long axis and copying the transpose)
    outer = np.einsum("ta,tb->tab", basis, basis).reshape(n_angles, 25)
    normal_all = basis.T @ basis + 1e-6 * np.eye(5)
    for array in (basis, outer, normal_all):
        array.flags.writeable = False
    return basis, outer, normal_all


def _outline_xy(
    centre_xy: tuple[float, float], first_angle: int, r_in: np.ndarray, r_out: np.ndarray, n_angles: int
) -> np.ndarray:
    """Polygon (k, 2) in frame px: the outer boundary over the defect's directions, back along
    its inner boundary (NaN radii: directions it does not cover)."""
    angles = (first_angle + np.arange(len(r_in))) * (2 * np.pi / n_angles)
    keep = np.isfinite(r_in) & np.isfinite(r_out)
    angles, r_in, r_out = angles[keep], r_in[keep], r_out[keep]
    r_in = np.minimum(r_in, r_out - 0.5)
    cx, cy = centre_xy
    cos, sin = np.cos(angles), np.sin(angles)
    k = len(angles)
    outline = np.empty((2 * k, 2))
    outline[:k, 0], outline[:k, 1] = cx + r_out * cos, cy + r_out * sin  # outside, in order
    outline[k:, 0], outline[k:, 1] = (cx + r_in * cos)[::-1], (cy + r_in * sin)[::-1]  # inside, back
    return outline
