"""Chips: pieces missing from the cladding's edge, found in the edge's own profile.

A band just inside the fitted cladding edge is unwrapped into polar coordinates, one sample
per pixel of arc. At each radius, the median over all directions is what an intact edge
looks like there (including its bevel rim); a chip is a run of directions where the band
departs from it by more than `k_sigma` noise units and `min_contrast_grey`, starting at the
edge and reaching at least `min_depth_um` inwards over at least `min_arc_um` of arc. Its depth
is cut at half its peak departure.

A departure that does not reach the edge but lies in the edge guard band, where the region
detector does not look, is reported too: as a dig (darker) or a particle (brighter).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..geometry import polar_unwrap
from ..profile import DetectionParams
from ..records import CandidateMap, DefectKind, Frame, Geometry
from .base import components, inspection_window

__all__ = ["ChipDetector"]

_MIN_INSIDE_AREA_PX = 6  # a defect inside the edge band: smaller is noise


class ChipDetector:
    name = "chip.edge"

    def __init__(self, params: DetectionParams):
        self.params = params.chip
        self.detection = params

    def __call__(self, frame: Frame, geometry: Geometry) -> CandidateMap:
        p = self.params
        win = inspection_window(geometry, frame.pixels.shape, self.detection, margin_px=2)
        shape = (win.h, win.w)
        if not p.enabled:
            return CandidateMap.empty(self.name, shape, (win.x0, win.y0))
        radius = geometry.cladding_radius_px
        depth_px = p.max_depth_um / geometry.um_per_px
        inner = max(1.0, radius - depth_px)
        outer = radius - 0.5  # the edge's own blurred step is the geometry's, not a chip
        n_angles = max(360, int(2 * math.pi * radius))
        polar, valid = polar_unwrap(
            frame.pixels, geometry.center_xy, outer, min_radius_px=inner, n_angles=n_angles
        )
        polar = cv2.GaussianBlur(polar, (0, 0), sigmaX=0.5, sigmaY=1.5)  # along the arc more than across
        deviation = polar - _harmonic_background(polar, valid)
        spread = 1.4826 * np.median(np.abs(deviation[::4]), axis=0)
        noise = np.maximum(spread, 1.0)
        off = (np.abs(deviation) > np.maximum(p.k_sigma * noise, p.min_contrast_grey)) & valid
        labels, kinds, scores, contrasts = np.zeros(shape, np.int32), [], [], []
        if not off.any():
            return CandidateMap(self.name, (win.x0, win.y0), labels)
        # start the unwrapped band where it is quietest, so no chip is cut in two by the seam
        seam = int(np.argmin(off.sum(axis=1)))
        off, deviation = np.roll(off, -seam, axis=0), np.roll(deviation, -seam, axis=0)
        n, comp, stats = components(off.astype(np.uint8))
        rows_edge = off.shape[1] - 1
        min_arc = p.min_arc_um / geometry.um_per_px
        min_depth = p.min_depth_um / geometry.um_per_px
        # columns from here outwards lie in the edge guard band, where the region detector is blind
        guard_col = off.shape[1] - self.detection.edge_guard_inner_um / geometry.um_per_px
        for i in range(1, n):
            x, y, w, h, area = stats[i]
            reaches_edge = x + w - 1 >= rows_edge - 1
            if reaches_edge and (h < min_arc or w < min_depth):
                continue
            if not reaches_edge and (x + w - 1 < guard_col or area < _MIN_INSIDE_AREA_PX):
                continue  # an inside defect the region detector sees
            own = comp[y : y + h, x : x + w] == i
            dev = deviation[y : y + h, x : x + w]
            contrast = float(np.median(dev[own]))
            half = own & (np.abs(dev) >= 0.5 * np.abs(dev[own]).max())  # cut at half its peak
            if reaches_edge:
                kind = DefectKind.CHIP
                col_in, col_out = _chip_columns(own, half), np.full(h, radius - inner - x)  # to the edge
            else:
                kind = DefectKind.DIG if contrast < 0 else DefectKind.PARTICLE
                col_in, col_out = _band_columns(half)
            # column j is radius inner + j
            outline = _outline_xy(geometry, y + seam, inner + x + col_in, inner + x + col_out, n_angles)
            poly = np.round((outline - [win.x0, win.y0]) * 16).astype(np.int32)
            kinds.append(kind)
            cv2.fillPoly(labels, [poly], len(kinds), lineType=cv2.LINE_8, shift=4)
            scores.append(float(np.clip(abs(contrast) / (2 * p.min_contrast_grey), 0.5, 1.0)))
            contrasts.append(contrast)
        return CandidateMap(
            self.name,
            (win.x0, win.y0),
            labels,
            tuple(kinds),
            np.array(scores, np.float32),
            np.array(contrasts, np.float32),
        )


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


def _harmonic_background(polar: np.ndarray, valid: np.ndarray, n_iter: int = 3) -> np.ndarray:
    """Per radius, a robust fit over direction of a constant plus first and second harmonics.

    This is an intact edge: its level, a lighting gradient across the fiber, a slight misfit
    of the circle. A chip spans a small arc and is left out by the reweighting.
    polar: (n_angles, n_radii). Returns the background, same shape.
    """
    n_angles = polar.shape[0]
    theta = np.arange(n_angles) * (2 * np.pi / n_angles)
    basis = np.column_stack(
        [np.ones(n_angles), np.cos(theta), np.sin(theta), np.cos(2 * theta), np.sin(2 * theta)]
    )
    outer = (basis[:, :, None] * basis[:, None, :]).reshape(n_angles, -1)  # (n_angles, 25)
    weights = valid.astype(np.float64)
    for _ in range(n_iter):
        # weighted normal equations for every radius at once, as two matrix products
        normal = (weights.T @ outer).reshape(-1, 5, 5) + 1e-6 * np.eye(5)  # (n_radii, 5, 5)
        rhs = (weights * polar).T @ basis  # (n_radii, 5)
        coeffs = np.linalg.solve(normal, rhs[..., None])[..., 0]
        background = basis @ coeffs.T
        residual = np.abs(polar - background)
        scale = 1.4826 * np.median(residual[::4], axis=0) + 0.5  # every 4th direction is plenty for a spread
        weights = valid * (residual < 3.0 * scale)  # drop outliers (chips, dirt) from the next fit
    return background


def _outline_xy(
    geometry: Geometry, first_angle: int, r_in: np.ndarray, r_out: np.ndarray, n_angles: int
) -> np.ndarray:
    """Polygon (k, 2) in frame px: the outer boundary over the defect's directions, back along
    its inner boundary (NaN radii: directions it does not cover)."""
    angles = (first_angle + np.arange(len(r_in))) * (2 * np.pi / n_angles)
    keep = np.isfinite(r_in) & np.isfinite(r_out)
    angles, r_in, r_out = angles[keep], r_in[keep], r_out[keep]
    r_in = np.minimum(r_in, r_out - 0.5)
    cx, cy = geometry.center_xy
    outside = np.column_stack([cx + r_out * np.cos(angles), cy + r_out * np.sin(angles)])
    inside = np.column_stack([cx + r_in * np.cos(angles), cy + r_in * np.sin(angles)])[::-1]
    return np.vstack([outside, inside])
