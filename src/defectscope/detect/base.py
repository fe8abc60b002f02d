"""What every detector shares: the protocol, the inspection window, zone maps, residuals, noise.

All functions are pure, work on uint8 where they can (OpenCV's fast paths) and never modify
their inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal, Protocol

import cv2
import numpy as np

from ..geometry import polar_samples
from ..numeric import median, median_rows_uint8
from ..profile import DetectionParams
from ..records import CandidateMap, Frame, Geometry

__all__ = [
    "Detector",
    "Window",
    "detection_radius_px",
    "flatten_core",
    "detection_frame",
    "inspection_window",
    "window_about",
    "fiber_guards",
    "zone_label_map",
    "within_radii",
    "domain_rank_residuals",
    "DomainImages",
    "domain_images",
    "top_hats",
    "rank_residuals",
    "zone_noise",
    "zone_medians",
    "components",
    "concentric_ring",
    "GUARD",
    "CORE_GUARD",
    "OUTSIDE",
]

OUTSIDE = 0  # zone_label_map: not inspected (outside the contact zone or the frame)
GUARD = 255  # zone_label_map: a guard band on the fiber's own circular edges
CORE_GUARD = 253  # zone_label_map: the core's guard band, when asked for apart (see region detection)
# flatten_core: within this radius of the core centre a smooth model, not the median radial
# profile, is subtracted, so a dig on the centre keeps at least 6 um of its diameter (over the
# 5 um a multimode zone A admits) instead of vanishing into the median
CENTRE_DIG_UM = 3.0
_SHIFT = 4  # sub-pixel bits for cv2.circle
_ONE = 1 << _SHIFT


class Detector(Protocol):
    """Configured once from the profile; holds no state between calls. The Inspector calls it
    with the `detection_frame` (the core's concentric structure flattened)."""

    name: str

    def __call__(self, frame: Frame, geometry: Geometry) -> CandidateMap: ...


@dataclass(frozen=True)
class Window:
    """An axis-aligned window of the frame: columns x0..x0+w, rows y0..y0+h."""

    x0: int
    y0: int
    w: int
    h: int

    def crop(self, pixels: np.ndarray) -> np.ndarray:
        return pixels[self.y0 : self.y0 + self.h, self.x0 : self.x0 + self.w]

    def local_xy(self, xy: tuple[float, float]) -> tuple[float, float]:
        return xy[0] - self.x0, xy[1] - self.y0

    def scaled_xy(self, xy: tuple[float, float], scale: float = 1.0) -> tuple[float, float]:
        """`xy` (frame px) as a point of this window resampled by `scale`. Frame pixel i covers
        [i - 0.5, i + 0.5]; scaled pixel j covers [j - 0.5, j + 0.5] / scale."""
        x, y = self.local_xy(xy)
        return (x + 0.5) * scale - 0.5, (y + 0.5) * scale - 0.5

    def fixed_xy(self, xy: tuple[float, float], scale: float = 1.0) -> tuple[int, int]:
        """`scaled_xy` in cv2's fixed point (`shift=4` drawing)."""
        x, y = self.scaled_xy(xy, scale)
        return int(round(x * _ONE)), int(round(y * _ONE))

    def whole_cells(self, factor: int) -> Window:
        """This window cut to whole `factor` x `factor` cells (at least one), so that it shrinks by
        `factor` exactly (OpenCV's integer-factor area path)."""
        return Window(
            self.x0, self.y0, max(factor, self.w - self.w % factor), max(factor, self.h - self.h % factor)
        )


def detection_radius_px(
    geometry: Geometry, params: DetectionParams, *, margin_um: float | None = None
) -> float:
    """How far from the fiber centre detectors look: the last zone plus `outer_margin_um`
    (or `margin_um`, for a detector that needs less: a line is seen where it enters the zone)."""
    margin = params.outer_margin_um if margin_um is None else min(margin_um, params.outer_margin_um)
    return geometry.zones[-1].outer_radius_px + margin / geometry.um_per_px


def inspection_window(
    geometry: Geometry,
    frame_hw: tuple[int, int],
    params: DetectionParams,
    *,
    margin_px: int = 2,
    margin_um: float | None = None,
) -> Window:
    """The frame window holding the detection radius plus `margin_px` (clipped to the frame)."""
    r = detection_radius_px(geometry, params, margin_um=margin_um) + margin_px
    return window_about(geometry.center_xy, r, frame_hw)


def window_about(center_xy: tuple[float, float], radius_px: float, frame_hw: tuple[int, int]) -> Window:
    """The frame window holding the circle of `radius_px` about `center_xy` (clipped to the frame)."""
    cx, cy = center_xy
    x0, y0 = max(0, int(np.floor(cx - radius_px))), max(0, int(np.floor(cy - radius_px)))
    x1 = min(frame_hw[1], int(np.ceil(cx + radius_px)) + 1)
    y1 = min(frame_hw[0], int(np.ceil(cy + radius_px)) + 1)
    return Window(x0, y0, max(1, x1 - x0), max(1, y1 - y0))


Guard = tuple[tuple[float, float], float, float, float]  # centre_xy (frame px), radius, inward, outward px


def fiber_guards(geometry: Geometry, params: DetectionParams) -> tuple[Guard, ...]:
    """Guard annuli on the cladding edge and, when found, the core edge (about the core's own centre)."""
    guards = [
        (
            geometry.center_xy,
            geometry.cladding_radius_px,
            params.edge_guard_inner_um / geometry.um_per_px,
            params.edge_guard_outer_um / geometry.um_per_px,
        )
    ]
    if geometry.core_radius_px:
        guards.append(
            (
                geometry.core_center_xy or geometry.center_xy,
                geometry.core_radius_px,
                params.core_guard_inner_um / geometry.um_per_px,
                params.core_guard_outer_um / geometry.um_per_px,
            )
        )
    return tuple(guards)


def zone_label_map(
    geometry: Geometry,
    window: Window,
    *,
    guards: tuple[Guard, ...] = (),
    outer_radius_px: float | None = None,
    scale: float = 1.0,
    core_rim_label: int | None = None,
    core_guard_label: int = GUARD,
) -> np.ndarray:
    """Zone index + 1 per pixel of `window`, OUTSIDE beyond the last zone, GUARD on guard annuli.

    outer_radius_px: extend the last zone's label out to this radius (the detection margin).
    core_rim_label: label the band inside the core guard (from 75 % of the core radius) with
    this value instead of its zone, so thresholds there follow its own -- structured -- noise.
    core_guard_label: label of the core's guard band (GUARD unless a detector treats it apart).

    guards: (centre_xy, radius px, inward px, outward px) annuli hiding the fiber's own circular edges.
    scale: pixel size of the map relative to the frame (0.5 = half resolution).
    Returns (round(h * scale), round(w * scale)) uint8.
    """
    h, w = max(1, round(window.h * scale)), max(1, round(window.w * scale))
    labels = np.zeros((h, w), np.uint8)

    centre = window.fixed_xy(geometry.center_xy, scale)
    for i in range(len(geometry.zones) - 1, -1, -1):  # outermost first; inner zones paint over
        outer = geometry.zones[i].outer_radius_px
        if i == len(geometry.zones) - 1 and outer_radius_px is not None:
            outer = max(outer, outer_radius_px)
        r = int(round(outer * scale * _ONE))
        cv2.circle(labels, centre, r, i + 1, thickness=-1, lineType=cv2.LINE_8, shift=_SHIFT)
    if core_rim_label is not None and geometry.core_radius_px and len(guards) > 1:
        core_centre, core_r, inward, _ = guards[1]
        rim = (0.75 * core_r + (core_r - inward)) / 2 * scale
        thickness = max(1, int(round(((core_r - inward) - 0.75 * core_r) * scale)))
        cv2.circle(
            labels,
            window.fixed_xy(core_centre, scale),
            int(round(rim * _ONE)),
            core_rim_label,
            thickness=thickness,
            lineType=cv2.LINE_8,
            shift=_SHIFT,
        )
    for i, (guard_centre, radius, inward, outward) in enumerate(guards):
        mid = (radius + (outward - inward) / 2) * scale
        thickness = max(1, int(round((inward + outward) * scale)))
        cv2.circle(
            labels,
            window.fixed_xy(guard_centre, scale),
            int(round(mid * _ONE)),
            GUARD if i == 0 else core_guard_label,
            thickness=thickness,
            lineType=cv2.LINE_8,
            shift=_SHIFT,
        )
    return labels


def within_radii(
    labels: np.ndarray,
    window: Window,
    center_xy: tuple[float, float],
    *,
    inner_px: float = 0.0,
    outer_px: float | None = None,
    scale: float = 1.0,
) -> np.ndarray:
    """`labels` (of `window` at `scale`) with OUTSIDE where the distance from `center_xy` is below
    `inner_px` or beyond `outer_px` (frame px; None: no outer bound). A new array."""
    at = window.fixed_xy(center_xy, scale)
    if outer_px is None:
        out = labels.copy()
    else:
        kept = np.zeros(labels.shape, np.uint8)
        cv2.circle(kept, at, round(outer_px * scale * _ONE), 1, -1, shift=_SHIFT)
        out = cv2.bitwise_and(labels, labels, mask=kept)
    if inner_px > 0:  # OUTSIDE is 0
        cv2.circle(out, at, round(inner_px * scale * _ONE), OUTSIDE, -1, shift=_SHIFT)
    return out


def detection_frame(frame: Frame, geometry: Geometry, params: DetectionParams) -> tuple[Frame, float]:
    """The frame the detectors see: `frame` with the core's concentric structure flattened
    (`flatten_core`), done once per inspection rather than by each detector; and the depth of the
    round pattern centred on the core (grey levels, 0 without a core)."""
    pixels, pattern_grey = flatten_core(
        frame.pixels, geometry, Window(0, 0, frame.width, frame.height), params
    )
    return (frame if pixels is frame.pixels else replace(frame, pixels=pixels)), pattern_grey


def flatten_core(
    roi: np.ndarray, geometry: Geometry, window: Window, params: DetectionParams
) -> tuple[np.ndarray, float]:
    """`roi` with the core's concentric structure removed (a new uint8 array; `roi` if no core),
    and the depth in grey levels of the round pattern centred on the core (0 without a core).

    Multimode cores show a soft central dip or glow, rings or a bright centre (the index profile)
    and bright and dark rings at their edge; to rank, line and blob filters they look like digs,
    scratches and films. About the core's own centre, out to 2 um past the core guard band, the
    median radial profile over all directions is subtracted -- a defect covers only a few of
    them -- except within `CENTRE_DIG_UM` of the centre: there a dig would cover every direction
    and vanish from a median, so a smooth model a + b r^2 + c r^4 is subtracted instead, fitted
    robustly to the profile from there out to 80 % of the core radius: it follows a broad dip or
    glow inwards, not a dig that lies within. The subtracted model's largest departure from the
    core level (its value at 60 % of the core radius), inside 60 % of the core radius, is the
    pattern's depth. A round film centred on the core is flattened the same way, so a pattern
    deeper than `max_core_glow_grey` -- the index pattern or such a film, they look alike --
    must not PASS the zones over the core (`judge.core_pattern_reasons`); what is not
    concentric is still found.
    Each side of the core edge is referred to its own level (core inside, cladding outside);
    the step left at the edge lies in the core guard band.
    """
    if not geometry.core_radius_px:
        return roi, 0.0
    core_r = geometry.core_radius_px
    r_in = 0.6 * core_r
    r_out = core_r + (params.core_guard_outer_um + 2.0) / geometry.um_per_px
    cx, cy = window.local_xy(geometry.core_center_xy or geometry.center_xy)
    x0, y0 = max(0, int(cx - r_out - 1)), max(0, int(cy - r_out - 1))
    x1, y1 = min(roi.shape[1], int(cx + r_out + 2)), min(roi.shape[0], int(cy + r_out + 2))
    if x1 <= x0 or y1 <= y0:
        return roi, 0.0
    n_r = int(np.ceil(r_out)) + 2
    radii = np.arange(n_r, dtype=np.float32)
    rings, _ = polar_samples(roi, (cx, cy), n_r - 1, 0.0, 360, radii_first=True)  # (radius, degree)
    profile = median_rows_uint8(rings)
    r_dig = min(r_in, CENTRE_DIG_UM / geometry.um_per_px)
    inner = _smooth_radial(profile, radii, r_dig, 0.8 * core_r)
    xx = (np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)).astype(np.float64)
    yy = (np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)).astype(np.float64)
    # np.hypot of the float32 offsets, as libm's hypotf computes it (in double, rounded once to
    # float32) but in SIMD passes: 3x faster
    r_sq = xx * xx + yy * yy
    r = np.sqrt(r_sq, out=r_sq).astype(np.float32)
    core_level = float(np.polyval(inner, r_in * r_in))
    along = np.where(radii < r_dig, np.polyval(inner, radii * radii), profile)  # the model per radius
    depth = float(np.abs(along[radii < r_in] - core_level).max(initial=0.0))
    # the correction: the model less each side's reference level, 0 beyond r_out (in place: this
    # box is the one per-pixel float64 pass of the inspection)
    correction = np.interp(r, radii, along)
    correction -= np.where(r < core_r, core_level, float(np.interp(r_out, radii, profile)))
    correction[r > r_out] = 0.0
    out = roi.copy()
    flat = np.subtract(out[y0:y1, x0:x1], correction, out=correction)
    out[y0:y1, x0:x1] = np.clip(np.rint(flat, out=flat), 0, 255, out=flat)
    return out, round(depth, 2)


def _smooth_radial(profile: np.ndarray, radii: np.ndarray, r_min: float, r_max: float) -> np.ndarray:
    """Coefficients (in r^2) of a + b r^2 + c r^4 fitted robustly to `profile` over r_min <= r < r_max
    (a flat level where fewer than 6 radii lie there: a single-mode core)."""
    use = (radii >= r_min) & (radii < r_max)
    if not use.any():
        use = radii < max(r_max, 1.0)
    x, v = (radii[use] ** 2).astype(np.float64), profile[use].astype(np.float64)
    keep = np.ones(v.shape, bool)
    coeffs = np.array([0.0, 0.0, float(median(v))])
    for _ in range(3):
        if np.count_nonzero(keep) < 6:
            break
        coeffs = np.polyfit(x[keep], v[keep], 2)
        resid = v - np.polyval(coeffs, x)
        keep = np.abs(resid) < 2.5 * (1.4826 * median(np.abs(resid[keep])) + 0.5)  # drop a dig's radii
    return coeffs


def domain_rank_residuals(
    pixels: np.ndarray,
    *,
    window_px: int,
    geometry: Geometry,
    window: Window,
    params: DetectionParams,
    scale: float = 1.0,
    top_hat: int | None = None,
    domain: Literal["both", "fiber", "ferrule"] = "both",
) -> tuple[np.ndarray, np.ndarray]:
    """`rank_residuals` computed separately for the fiber and the ferrule.

    A closing fills every dark gap narrower than its window -- also the gap between a bright
    scratch and the bright ferrule across the cladding edge, or between a particle and the
    fiber -- and an opening does the same with bright gaps. Each domain is therefore filtered on
    an image where everything outside it (the other domain and the edge guard band) is replaced
    by the domain's own level at its edge, direction by direction (`domain_images`); the
    residuals are 0 in the guard band. `pixels` is `window` of the frame, resampled by `scale`.
    top_hat: instead of rank residuals, plain top-hats of one polarity, -1 dark (closing -
    pixels) or +1 bright (pixels - opening), or 0 both; one not asked for comes back all zero.
    A bright line's width is measured on these (a closing first shaves the inner side of a
    curved bright line).
    domain: compute only the fiber's residuals (0 elsewhere; `pixels` need only hold the fiber and
    a window's reach around it) or only the ferrule's (0 on the fiber), e.g. at different scales.
    """
    images = domain_images(
        pixels,
        window_px=window_px,
        geometry=geometry,
        window=window,
        params=params,
        scale=scale,
        domain=domain,
    )
    if images is None:
        return rank_residuals(pixels, window_px=window_px)

    def residuals(filled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if top_hat is None:
            return rank_residuals(filled, window_px=window_px)
        return top_hats(filled, window_px=window_px, polarity=top_hat)

    box = images.box
    if domain == "fiber":
        dark, bright = np.zeros_like(pixels), np.zeros_like(pixels)
    else:  # the ferrule: the whole window, with the fiber and the guard band at the ferrule's level
        dark, bright = residuals(images.ferrule)
        for out in (dark, bright):  # the guard band has no residual (x - x under the mask: a SIMD pass)
            cv2.subtract(out[box], out[box], dst=out[box], mask=images.hole)
    if domain != "ferrule":  # the fiber: its box, with the guard band and the ferrule at the fiber's level
        for out, inside in zip((dark, bright), residuals(images.fiber)):
            cv2.copyTo(inside, images.disc, out[box])
    return dark, bright


@dataclass(frozen=True)
class DomainImages:
    """The images `domain_rank_residuals` filters, one per domain (None: not asked for).

    box: the box about the fiber, (rows, cols) slices of `pixels`.
    fiber: box-shaped uint8, the fiber with the guard band and the ferrule at the fiber's level
    at its edge; its residuals count inside `disc` (box-shaped uint8 mask, 255 on the fiber).
    ferrule: `pixels`-shaped uint8, with the fiber and the guard band at the ferrule's level at
    its edge; its residuals count outside `hole` (box-shaped uint8 mask, 255 inside the guard's
    outer edge).
    """

    box: tuple[slice, slice]
    fiber: np.ndarray | None
    disc: np.ndarray | None
    ferrule: np.ndarray | None
    hole: np.ndarray | None


def domain_images(
    pixels: np.ndarray,
    *,
    window_px: int,
    geometry: Geometry,
    window: Window,
    params: DetectionParams,
    scale: float = 1.0,
    domain: Literal["both", "fiber", "ferrule"] = "both",
) -> DomainImages | None:
    """The filled images of the domains asked for (arguments as `domain_rank_residuals`); None
    when the fiber lies outside `pixels` or an edge band outside the frame: one domain, filtered
    as it is. A caller may filter only parts of them: a closing or an opening at a pixel depends
    on the pixels within one window of it, and on nothing else."""
    h, w = pixels.shape
    cx, cy = window.scaled_xy(geometry.center_xy, scale)
    radius = geometry.cladding_radius_px * scale
    inner = radius - params.edge_guard_inner_um / geometry.um_per_px * scale
    outer = radius + params.edge_guard_outer_um / geometry.um_per_px * scale
    size = max(3, int(window_px) | 1)
    # everything that is filled, and the fiber's filtering, lies in a box about the fiber: the
    # fiber with a window's reach of context, and the ferrule's hole
    reach = int(np.ceil(max(inner + size, outer))) + 1
    x0, y0 = max(0, int(cx) - reach), max(0, int(cy) - reach)
    box = np.s_[y0 : max(y0, min(h, int(cy) + reach + 1)), x0 : max(x0, min(w, int(cx) + reach + 1))]
    local = pixels[box]
    if local.size == 0:  # the fiber lies outside `pixels`: one domain
        return None
    levels = _edge_levels(
        pixels,
        (cx, cy),
        inner,
        outer,
        max(3.0, float(window_px)),
        box,
        step=max(1, min(h, w) // 160),
        sides=(domain != "ferrule", domain != "fiber"),
    )
    if levels is None:
        return None
    at = (round((cx - x0) * _ONE), round((cy - y0) * _ONE))
    fiber = disc = ferrule = hole = None
    if domain != "fiber":
        hole = np.zeros(local.shape, np.uint8)
        cv2.circle(hole, at, round(outer * _ONE), 255, -1, shift=_SHIFT)
        ferrule = pixels.copy()
        cv2.copyTo(levels[1], hole, ferrule[box])
    if domain != "ferrule":
        disc = np.zeros(local.shape, np.uint8)
        cv2.circle(disc, at, max(0, round(inner * _ONE)), 255, -1, shift=_SHIFT)
        fiber = levels[0]
        cv2.copyTo(local, disc, fiber)
    return DomainImages(box, fiber, disc, ferrule, hole)


def top_hats(pixels: np.ndarray, *, window_px: int, polarity: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain top-hats of uint8 `pixels` with a square window: (dark, bright), dark = closing -
    pixels when `polarity` <= 0 and bright = pixels - opening when `polarity` >= 0, else zero."""
    size = max(3, int(window_px) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    zero = np.zeros_like(pixels)
    dark = cv2.subtract(cv2.morphologyEx(pixels, cv2.MORPH_CLOSE, kernel), pixels) if polarity <= 0 else zero
    bright = cv2.subtract(pixels, cv2.morphologyEx(pixels, cv2.MORPH_OPEN, kernel)) if polarity >= 0 else zero
    return dark, bright


_LEVEL_BINS = 72  # 5 degree directions for the edge levels
_LEVEL_RAYS_PER_BIN = 4
_LEVEL_RADII = 8  # samples across each band
_LEVEL_ANGLES = np.linspace(0, 2 * np.pi, _LEVEL_BINS * _LEVEL_RAYS_PER_BIN, endpoint=False)
_LEVEL_COS, _LEVEL_SIN = np.cos(_LEVEL_ANGLES)[:, None], np.sin(_LEVEL_ANGLES)[:, None]


def _edge_levels(
    pixels: np.ndarray,
    centre_xy: tuple[float, float],
    inner: float,
    outer: float,
    band: float,
    box: tuple[slice, slice],
    *,
    step: int,
    sides: tuple[bool, bool] = (True, True),
) -> tuple[np.ndarray | None, np.ndarray | None] | None:
    """(fiber fill, ferrule fill), each uint8 the shape of `pixels[box]`: per direction, the
    median grey of a band `band` px wide just inside the guard (fiber) and just outside it
    (ferrule), smoothed over 25 degrees so a defect in the band does not set it. None when either
    band is outside the frame. The fill is built on a grid `step` px apart and upsampled: levels
    vary slowly with direction. sides: which of the two to compute (the other comes back None)."""
    h, w = pixels.shape
    cx, cy = centre_xy
    grid_bins = _direction_bins(box, (cx, cy), step)
    # every ray lies within the outer band's reach of the centre: when that disc keeps a pixel
    # clear of the frame's edges (most calls; float32 rounding moves a ray far less), no ray
    # leaves the frame and the per-sample bounds test below is not needed
    reach = outer + band if sides[1] else inner
    clear = cx - reach >= 1 and cy - reach >= 1 and cx + reach <= w - 2 and cy + reach <= h - 2
    fills: list[np.ndarray | None] = []
    for wanted, (lo, hi) in zip(sides, ((max(inner - band, 0.0), inner), (outer, outer + band))):
        if not wanted:
            fills.append(None)
            continue
        radii = _band_radii(lo, hi)[None, :]
        xs, ys = (cx + radii * _LEVEL_COS).astype(np.float32), (cy + radii * _LEVEL_SIN).astype(np.float32)
        samples = cv2.remap(pixels, xs, ys, cv2.INTER_NEAREST, borderValue=0)
        if not clear and not (xs.min() >= 0 and ys.min() >= 0 and xs.max() <= w - 1 and ys.max() <= h - 1):
            samples = samples.astype(np.float32)  # rays leaving the frame are not sampled
            samples[(xs < 0) | (ys < 0) | (xs > w - 1) | (ys > h - 1)] = np.nan
        level = _median_by_bin(samples.reshape(_LEVEL_BINS, -1))
        if level is None:
            return None
        grey = np.zeros(256, np.uint8)
        grey[:_LEVEL_BINS] = level.round().clip(0, 255)
        grey[_LEVEL_BINS] = grey[0]  # a phase of exactly 2 pi
        fill = cv2.LUT(grid_bins, grey)
        box_hw = (box[0].stop - box[0].start, box[1].stop - box[1].start)
        fills.append(fill if fill.shape == box_hw else cv2.resize(fill, box_hw[::-1]))  # step 1: as is
    return fills[0], fills[1]


_LEVEL_STEPS = np.arange(_LEVEL_RADII, dtype=np.float64)


def _band_radii(lo: float, hi: float) -> np.ndarray:
    """np.linspace(lo, hi, _LEVEL_RADII), the same arithmetic without its overhead."""
    radii = _LEVEL_STEPS * ((hi - lo) / (_LEVEL_RADII - 1)) + lo
    radii[-1] = hi
    return radii


def _direction_bins(box: tuple[slice, slice], centre_xy: tuple[float, float], step: int) -> np.ndarray:
    """Direction bin (0 .. _LEVEL_BINS, the last one a phase of exactly 2 pi) of each point of a
    grid `step` px apart over `box`, seen from `centre_xy`; uint8, ready for a cv2.LUT."""
    rows, cols = box
    gx = np.arange(cols.start, cols.stop, step, dtype=np.float32) - centre_xy[0]
    gy = np.arange(rows.start, rows.stop, step, dtype=np.float32) - centre_xy[1]
    # contiguous operands: cv2 would copy broadcast views first
    dx, dy = np.empty((gy.size, gx.size), np.float32), np.empty((gy.size, gx.size), np.float32)
    dx[:], dy[:] = gx[None, :], gy[:, None]
    phase = cv2.phase(dx, dy, angleInDegrees=False)
    phase *= _LEVEL_BINS / (2 * np.pi)
    return phase.astype(np.uint8)  # truncation: the phase is >= 0


def _median_by_bin(samples: np.ndarray) -> np.ndarray | None:
    """Per-row median of (n_bins, k) `samples` (uint8: all sampled; float: NaN not sampled), rows
    with too few samples interpolated circularly, then a 5-bin circular median (float64); None
    when no row has enough. An even row takes the lower of its two middle samples."""
    n_bins, k = samples.shape
    if samples.dtype == np.uint8:
        level = np.partition(samples, (k - 1) // 2, axis=1)[:, (k - 1) // 2].astype(np.float64)
    else:
        count = np.count_nonzero(~np.isnan(samples), axis=1)
        ok = count >= 3
        if not ok.any():
            return None
        ordered = np.sort(samples, axis=1)  # NaN sorts last: a row's median is its middle valid sample
        level = ordered[np.arange(n_bins), np.maximum(count - 1, 0) // 2]
        idx = np.arange(n_bins)
        level = np.interp(idx, idx[ok], level[ok], period=n_bins)
    extended = np.concatenate([level[-2:], level, level[:2]])
    # the middle of 5 (no NaN is left) by a min/max network: np.median's answer in 1/4 the time
    # (f, g: the larger pair minimum and the smaller pair maximum of the four outer bins)
    a, b, c, d = (extended[i : i + n_bins] for i in (0, 1, 3, 4))
    f = np.maximum(np.minimum(a, b), np.minimum(c, d))
    g = np.minimum(np.maximum(a, b), np.maximum(c, d))
    return np.maximum(np.minimum(f, g), np.minimum(np.maximum(f, g), level))


def concentric_ring(mask: np.ndarray, origin_xy: tuple[int, int], centre_xy: tuple[float, float]) -> bool:
    """Whether a region (`mask`, its top-left pixel at `origin_xy`) spans a quarter turn or more
    around `centre_xy` (the fiber centre, same coordinates) within a radial band narrower than
    15 % of its radius (10th to 90th percentile): a ring of the fiber's own structure (the index
    trench of a bend-insensitive fiber, a preform layer, a core's rim). No straight scratch
    follows one -- a chord over a quarter turn strays 29 % of the radius from the circle through
    its ends -- and a particle or film spanning a quarter turn is far wider than that."""
    # first from the bounding box alone (most regions: small, or far from the centre): the
    # pixels span no more turn than the box does
    x, y, w, h = cv2.boundingRect(np.asarray(mask, bool).view(np.uint8))
    if w * h < 20:
        return False
    dx_range = (x + origin_xy[0] - centre_xy[0], x + w - 1 + origin_xy[0] - centre_xy[0])
    dy_range = (y + origin_xy[1] - centre_xy[1], y + h - 1 + origin_xy[1] - centre_xy[1])
    if _box_turn_rad(dx_range, dy_range) < np.pi / 2 - 1e-6:  # (the margin: rounding below)
        return False
    ys, xs = np.nonzero(mask)
    if xs.size < 20:
        return False
    dx, dy = xs + origin_xy[0] - centre_xy[0], ys + origin_xy[1] - centre_xy[1]
    angles = np.sort(np.arctan2(dy, dx))
    widest_gap = np.diff(angles, append=angles[0] + 2 * np.pi).max()
    if 2 * np.pi - widest_gap < np.pi / 2:
        return False  # most regions: the percentiles (np.percentile: ~50 us) are not needed
    r10, r50, r90 = np.percentile(np.hypot(dx, dy), (10, 50, 90))
    return bool(r90 - r10 <= 0.15 * r50)


def _box_turn_rad(dx_range: tuple[float, float], dy_range: tuple[float, float]) -> float:
    """The turn (rad) about the origin that the box dx_range x dy_range spans: the widest angle
    between two of its corners when the box lies to one side of the origin; 2 pi when it holds
    the origin."""
    if dx_range[0] <= 0 <= dx_range[1] and dy_range[0] <= 0 <= dy_range[1]:
        return 2 * math.pi
    # all corners lie within half a turn of the box's middle: no wrapping past +-pi
    middle = math.atan2(sum(dy_range) / 2, sum(dx_range) / 2)
    turns = [
        (math.atan2(dy, dx) - middle + math.pi) % (2 * math.pi) - math.pi
        for dx in dx_range
        for dy in dy_range
    ]
    return max(turns) - min(turns)


def rank_residuals(pixels: np.ndarray, *, window_px: int) -> tuple[np.ndarray, np.ndarray]:
    """Min/max-rank residuals: how much darker and brighter each pixel is than its surroundings.

    pixels: (h, w) uint8. window_px: side of the square rank window; features narrower than
    it stand out, wider ones (and step edges) do not.
    Returns (dark, bright), each (h, w) uint8 >= 0 grey levels: closing - pixels, and
    closing - opening of the closing. Bright features are measured after dark ones are
    filled, so the narrow wedge between two crossing dark scratches is not read as a bright
    bump (to a plain opening it is one).
    """
    size = max(3, int(window_px) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    closed = cv2.morphologyEx(pixels, cv2.MORPH_CLOSE, kernel)
    dark = cv2.subtract(closed, pixels)
    bright = cv2.subtract(closed, cv2.morphologyEx(closed, cv2.MORPH_OPEN, kernel))
    return dark, bright


def zone_noise(residual: np.ndarray, labels: np.ndarray, n_zones: int) -> tuple[np.ndarray, np.ndarray]:
    """Robust level and spread of a uint8 residual in each zone: (median, 1.4826 * MAD), each (n_zones + 1,).

    Index i + 1 is zone i; index 0 (outside) is left at zero. Computed from one joint
    histogram of every other row and column (noise is a property of the zone, not of single
    pixels), so a few defects do not move it. A zone with no pixels gets (0, 0).
    """
    hist2d = _zone_histograms(residual, labels, n_zones)
    counted = hist2d.sum(axis=1) > 0
    counted[0] = False
    level = np.where(counted, _hist_quantiles(hist2d, 0.5), 0.0)
    # each zone's histogram of |grey - its rounded median| (at most 256 away: a median of 255.5
    # rounds to 256), all zones in one bincount: row z's deviations land in bins z * 257 + d
    n_rows, span = n_zones + 1, 257
    centre = np.round(level).astype(np.int64)  # as Python's round(): half to even
    deviation = np.abs(np.arange(256)[None, :] - centre[:, None]) + span * np.arange(n_rows)[:, None]
    deviations = np.bincount(deviation.ravel(), weights=hist2d.ravel(), minlength=n_rows * span)
    mad = _hist_quantiles(deviations.reshape(n_rows, span), 0.5)
    spread = np.where(counted, 1.4826 * mad, 0.0).astype(np.float32)
    return level.astype(np.float32), spread


def zone_medians(residual: np.ndarray, labels: np.ndarray, n_zones: int) -> np.ndarray:
    """`zone_noise`'s median alone, (n_zones + 1,) float32: the spread costs as much again."""
    return _histogram_medians(_zone_histograms(residual, labels, n_zones)).astype(np.float32)


def _histogram_medians(hist2d: np.ndarray) -> np.ndarray:
    """(n,) float64 median of each row's histogram but the first; 0 for the first and empty rows."""
    level = np.zeros(len(hist2d))
    for z in range(1, len(hist2d)):
        if hist2d[z].sum() > 0:
            level[z] = _hist_quantile(hist2d[z], 0.5)
    return level


def _zone_histograms(residual: np.ndarray, labels: np.ndarray, n_zones: int) -> np.ndarray:
    """(n_zones + 1, 256) float32 histograms of a uint8 residual per label, over every other row
    and column (labels above n_zones are not counted)."""
    return cv2.calcHist(
        [labels[::2, ::2], residual[::2, ::2]], [0, 1], None, [n_zones + 1, 256], [0, n_zones + 1, 0, 256]
    )


def components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """8-connected components of a uint8 mask: (n including background, (h, w) int32 labels, (n, 5) stats).

    Grana's algorithm: same result as cv2.connectedComponentsWithStats' default, 3x faster here.
    """
    return cv2.connectedComponentsWithStatsWithAlgorithm(mask, 8, cv2.CV_32S, cv2.CCL_GRANA)[:3]


def _hist_quantile(hist: np.ndarray, q: float) -> float:
    """Quantile of integer samples given their histogram, interpolated within the bin."""
    cum = np.cumsum(hist)
    target = q * cum[-1]
    i = int(np.searchsorted(cum, target))
    below = cum[i - 1] if i > 0 else 0.0
    inside = hist[i] if hist[i] > 0 else 1.0
    return float(i + (target - below) / inside - 0.5)


def _hist_quantiles(hist2d: np.ndarray, q: float) -> np.ndarray:
    """`_hist_quantile` of each row of a 2-D histogram in one pass (0 < q < 1), (n,) float64
    holding exactly its per-row values (computed in the histogram's dtype, as it computes
    them). Rows must not be empty (an empty row gives an arbitrary number)."""
    n_rows, n_bins = hist2d.shape
    cum = np.zeros((n_rows, n_bins + 1), hist2d.dtype)  # a 0 before each row: the count below bin 0
    np.cumsum(hist2d, axis=1, out=cum[:, 1:])
    target = q * cum[:, -1]
    i = np.count_nonzero(cum[:, 1:] < target[:, None], axis=1)  # np.searchsorted(row, target)
    rows = np.arange(n_rows)
    # the bin holding the target is not empty (target > 0 in a non-empty row): the 1 in its
    # place only keeps an empty row from dividing by zero
    inside = np.maximum(hist2d[rows, i], 1)
    half = hist2d.dtype.type(0.5)
    return (i.astype(hist2d.dtype) + (target - cum[rows, i]) / inside - half).astype(np.float64)
