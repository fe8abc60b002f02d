"""Fiber localisation: centre, cladding and core radii, µm/px calibration and zones.

The cladding edge is the outermost strong circular step around the fiber: where the image
reaches the ferrule's level. It is found in three moves, each cheap:

1. coarse: a gradient Hough transform on a ~200 px thumbnail proposes circle centres;
2. radial: around each centre, the image is unwrapped to polar coordinates and the
   median profile over all directions gives the outermost step (not the first strong
   circle: a bright large core is a strong circle too);
3. fit: per direction the step is located to sub-pixel precision, and a circle (or, for
   cameras with non-square pixels, an axis-aligned ellipse) is fitted with outliers --
   scratches crossing the edge, chips, dirt -- rejected.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import FiberNotFoundError
from .numeric import median, median_rows_uint8
from .profile import Profile
from .records import Frame, Geometry, Zone

__all__ = ["locate_fiber", "square_pixels", "zones_for", "polar_unwrap", "polar_samples", "EdgeFit"]

_THUMB_SHORT_SIDE_PX = 144
_N_ANGLES = 360
_COARSE_ANGLES = 180
# Claddings are round to 1 % (ITU-T G.652); fits of damaged or dirty edges scatter a little more.
# Rounder than this is a circle; flatter is a camera with non-square pixels.
_ROUND_TOLERANCE = 0.03


@dataclass(frozen=True)
class EdgeFit:
    """Cladding edge fit in the frame's own pixels.

    center_xy, radius_px: the fitted circle (for an ellipse: x semi-axis).
    pixel_aspect: a pixel's height over its width, from the round cladding's ellipse: its x
    semi-axis over its y semi-axis (1.0 for a circle; 0.917 for a fiber 9 % taller than wide).
    coverage: fraction of directions whose edge point was kept.
    rms_px: RMS radial residual of kept points. contrast_grey: ferrule minus fiber level.
    edge_sigma_px: Gaussian blur of the edge, from its slope and contrast.
    """

    center_xy: tuple[float, float]
    radius_px: float
    pixel_aspect: float
    coverage: float
    rms_px: float
    contrast_grey: float
    edge_sigma_px: float
    residuals_px: np.ndarray  # (n_angles,) edge radius minus fitted radius, NaN where no edge
    angles_rad: np.ndarray  # (n_angles,)


def locate_fiber(
    frame: Frame, profile: Profile, *, um_per_px: float | None = None
) -> tuple[Geometry, EdgeFit]:
    """Find the fiber in `frame` and lay out the profile's zones.

    um_per_px: the user's calibration; None derives it from the fitted cladding and the
    profile's nominal cladding diameter. A user value that disagrees with the fit by more
    than `profile.geometry.calibration_tolerance` is kept, with a warning.
    Returns the geometry and the edge fit behind it (residuals per direction, edge blur).
    Raises FiberNotFoundError when no cladding edge can be trusted.
    """
    params = profile.geometry
    pixels = frame.pixels
    short = min(pixels.shape)
    min_r, max_r = params.min_radius_frac * short, params.max_radius_frac * short
    coarse = _coarse_edge(pixels, min_r, max_r)
    fit = _refine_edge(pixels, *coarse) if coarse is not None else None
    if fit is None:
        raise FiberNotFoundError(
            f"{frame.source}: no circular cladding edge between {min_r:.0f} and {max_r:.0f} px "
            "radius; check that the connector is seated, in focus and lit"
        )
    _check_trust(frame, fit, params)
    return _geometry(pixels, profile, fit, um_per_px), fit


def square_pixels(frame: Frame, pixel_aspect: float) -> Frame:
    """Resample `frame` so its pixels are square, given their height/width ratio.

    Rows are stretched by `pixel_aspect` (or columns by 1/aspect when it is below 1), so no
    detail is lost. The returned frame keeps the source and digest of the original.
    """
    h, w = frame.pixels.shape
    size = (w, round(h * pixel_aspect)) if pixel_aspect >= 1 else (round(w / pixel_aspect), h)
    pixels = cv2.resize(frame.pixels, size, interpolation=cv2.INTER_LINEAR)
    return Frame(
        pixels,
        source=frame.source,
        sha256=frame.sha256,
        bit_depth=frame.bit_depth,
        channels=frame.channels,
        decode_ms=frame.decode_ms,
    )


def zones_for(profile: Profile, um_per_px: float) -> tuple[Zone, ...]:
    """The profile's zones with their radii in pixels (zone bounds are diameters in µm)."""
    return tuple(
        Zone(
            name=z.name,
            label=z.label,
            inner_um=z.inner_um,
            outer_um=z.outer_um,
            inner_radius_px=z.inner_um / 2.0 / um_per_px,
            outer_radius_px=z.outer_um / 2.0 / um_per_px,
        )
        for z in profile.zones
    )


def polar_unwrap(
    pixels: np.ndarray,
    center_xy: tuple[float, float],
    max_radius_px: float,
    *,
    min_radius_px: float = 0.0,
    n_angles: int = _N_ANGLES,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample `pixels` on rays from `center_xy`: returns (polar, valid).

    polar: (n_angles, n_radii) float32; row i is the direction 2*pi*i/n_angles (x right, y
    down), column j the radius min_radius_px + j px. valid: same shape, bool, False where
    the ray has left the frame (those samples repeat the border).
    """
    polar, valid = polar_samples(pixels, center_xy, max_radius_px, min_radius_px, n_angles)
    return polar.astype(np.float32), valid


@functools.lru_cache(maxsize=8)
def _directions(n_angles: int) -> tuple[np.ndarray, np.ndarray]:
    """(cos, sin) of the directions 2*pi*i/n_angles, float32 and read-only: every unwrap with
    the same number of directions shares them."""
    theta = np.arange(n_angles, dtype=np.float32) * np.float32(2 * np.pi / n_angles)
    cos, sin = np.cos(theta), np.sin(theta)
    cos.flags.writeable = sin.flags.writeable = False
    return cos, sin


@functools.lru_cache(maxsize=8)
def _edge_directions(n_angles: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(angles rad, cos, sin) of the directions 2*pi*i/n_angles in float64, read-only: the edge
    fits of every image share them."""
    angles = np.arange(n_angles) * (2 * np.pi / n_angles)
    cos, sin = np.cos(angles), np.sin(angles)
    for table in (angles, cos, sin):
        table.flags.writeable = False
    return angles, cos, sin


def polar_samples(
    pixels: np.ndarray,
    center_xy: tuple[float, float],
    max_radius_px: float,
    min_radius_px: float,
    n_angles: int,
    *,
    radii_first: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """polar_unwrap's samples in the image's own dtype (uint8: remap rounds to grey levels).

    radii_first: lay them out (n_radii, n_angles) instead, so that a median over directions
    runs along contiguous rows (and cv2.remap, faster on wide outputs than on tall narrow ones,
    takes ~30 % less time). The sample at each (direction, radius) is the same either way.
    """
    n_r = max(2, int(math.ceil(max_radius_px - min_radius_px)) + 1)
    cos, sin = _directions(n_angles)
    radii = np.float32(min_radius_px) + np.arange(n_r, dtype=np.float32)
    if radii_first:
        map_x = np.multiply(radii[:, None], cos[None, :])
        map_y = np.multiply(radii[:, None], sin[None, :])
    else:
        map_x = np.multiply(cos[:, None], radii[None, :])
        map_y = np.multiply(sin[:, None], radii[None, :])
    map_x += center_xy[0]  # in place: the same float32 sums without a second array
    map_y += center_xy[1]
    h, w = pixels.shape
    reach = float(radii[-1])
    cx, cy = center_xy
    if 1 + reach <= cx <= w - 2 - reach and 1 + reach <= cy <= h - 2 - reach:
        # the whole disc is inside the frame, by a margin far above float32 rounding
        valid = np.ones(map_x.shape, dtype=bool)
    else:
        valid = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    polar = cv2.remap(pixels, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return polar, valid


# --- coarse ----------------------------------------------------------------------------------------


def _coarse_edge(
    pixels: np.ndarray, min_r: float, max_r: float
) -> tuple[tuple[float, float], float, float] | None:
    """Best (centre_xy, outermost step radius px, signed contrast) among Hough centres on a thumbnail."""
    h, w = pixels.shape
    scale = max(1, round(min(h, w) / _THUMB_SHORT_SIDE_PX))
    thumb = (
        cv2.resize(pixels, (w // scale, h // scale), interpolation=cv2.INTER_AREA) if scale > 1 else pixels
    )
    best, best_score = None, 0.0
    for cx, cy in _hough_centres(thumb, min_r / scale, max_r / scale):
        polar_rt, valid_rt = polar_samples(
            thumb, (cx, cy), max_r / scale, 0.0, _COARSE_ANGLES, radii_first=True
        )
        step = _outermost_step(_median_profile(polar_rt, valid_rt), min_r / scale)
        if step is None:
            continue
        polar, valid = np.ascontiguousarray(polar_rt.T, dtype=np.float32), np.ascontiguousarray(valid_rt.T)
        r, contrast = step
        # Hough centres can be several thumbnail px off (more for elliptical fibers): fit the
        # step itself, with a window wide enough to catch it
        points = _edge_points(
            polar, valid, np.full(_COARSE_ANGLES, float(r)), 1.0 if contrast >= 0 else -1.0, max(3.0, 0.3 * r)
        )
        fit = _robust_fit(points, (cx, cy))
        if fit is None:
            continue
        (cx, cy), r_fit, aspect, kept, _ = fit
        coverage = np.count_nonzero(kept) / len(kept)
        if coverage * abs(contrast) > best_score:
            best_score = coverage * abs(contrast)
            best = (((cx + 0.5) * scale - 0.5, (cy + 0.5) * scale - 0.5), r_fit * scale, contrast)
        if coverage >= 0.9:  # Hough ranks by votes: a clean edge all round needs no second opinion
            break
    return best


def _hough_centres(
    thumb: np.ndarray, min_r: float, max_r: float, max_centres: int = 3
) -> list[tuple[float, float]]:
    """Distinct circle centres (thumbnail px) proposed by a Hough transform on a stretched thumbnail."""
    cumulative = np.bincount(thumb.ravel(), minlength=256).cumsum()
    lo, hi = np.searchsorted(cumulative, (0.005 * cumulative[-1], 0.995 * cumulative[-1]))
    if hi - lo < 4:  # a flat frame holds no fiber
        return []
    stretched = cv2.convertScaleAbs(thumb, alpha=255.0 / (hi - lo), beta=-lo * 255.0 / (hi - lo))
    stretched = cv2.GaussianBlur(stretched, (0, 0), 1.2)
    found = cv2.HoughCircles(
        stretched,
        cv2.HOUGH_GRADIENT,
        dp=1.0,
        minDist=2,
        param1=80,
        param2=15,
        minRadius=max(3, int(min_r)),
        maxRadius=int(max_r) + 1,
    )
    if found is None:
        return []
    centres: list[tuple[float, float, float]] = []
    for x, y, r in found[0]:
        if all(math.hypot(x - cx, y - cy) > 0.1 * max(r, cr) for cx, cy, cr in centres):
            centres.append((float(x), float(y), float(r)))
        if len(centres) == max_centres:
            break
    return [(x, y) for x, y, _ in centres]


# --- radial ----------------------------------------------------------------------------------------


def _outermost_step(profile_grey: np.ndarray, min_r: float) -> tuple[int, float] | None:
    """Radius (px) and signed contrast of the outermost strong step of a radial profile.

    A step is a local extremum of the smoothed derivative; strong means at least 35 % of the
    largest one beyond `min_r`. The sign says whether the ferrule is brighter (+) or darker.
    """
    smooth = cv2.GaussianBlur(profile_grey.reshape(1, -1), (0, 0), 1.5).ravel()
    deriv = _gradient(smooth)
    lo = max(2, int(min_r * 0.8))
    hi = len(deriv) - 4
    if hi - lo < 8:
        return None
    mag = np.abs(deriv[lo:hi])
    peak = mag.max()
    if peak < 1.0:
        return None
    ring = np.concatenate((mag[-1:], mag, mag[:1]))  # neighbours as np.roll gives them: wrapped
    strong = np.flatnonzero((mag >= 0.35 * peak) & (mag >= ring[:-2]) & (mag >= ring[2:]))
    if strong.size == 0:
        return None
    r = int(strong[-1] + lo)
    # levels just either side of the step: wide enough to average noise, narrow enough to
    # stay off the next structure (a bright core inside a dark cladding ring, say)
    half = max(2, int(0.08 * r))
    outside = float(median(smooth[r + 2 : r + 2 + half])) if r + 2 < len(smooth) else float(smooth[-1])
    inside = float(median(smooth[max(0, r - 1 - half) : r - 1]))
    if np.sign(outside - inside) != np.sign(deriv[r]):
        return None
    return r, outside - inside


def _edge_points(
    polar: np.ndarray, valid: np.ndarray, expected_r: np.ndarray, sign: float, window_px: float
) -> np.ndarray:
    """Per direction, the sub-pixel radius of the strongest step of the given sign near `expected_r`.

    polar: (A, R); expected_r: (A,) px. Returns (A,) float, NaN where no usable step.
    """
    n_a, n_r = polar.shape
    smooth = cv2.GaussianBlur(polar, (0, 0), sigmaX=1.0, sigmaY=0.7)
    deriv = np.zeros_like(smooth)
    np.subtract(smooth[:, 2:], smooth[:, :-2], out=deriv[:, 1:-1])
    deriv *= 0.5 * sign
    half = int(window_px)
    n_w = 2 * half + 1
    first = np.rint(expected_r).astype(np.intp) - half  # (A,) first column of each direction's window
    first_lo, first_hi = int(first.min()), int(first.max())
    row_start = np.arange(n_a) * n_r
    flat_deriv = deriv.ravel()
    # When every window lies in the polar image and the image in the frame (the usual case: the
    # refining passes size the image about the windows), no sample needs masking.
    unmasked = first_lo >= 1 and first_hi + n_w - 1 <= n_r - 2 and valid.all()
    if unmasked and first_lo == first_hi:  # a circle about the unwrap centre: one column slice
        k = np.argmax(deriv[:, first_lo : first_lo + n_w], axis=1)
        col = first_lo + k
        at = row_start + col
        best = flat_deriv.take(at)
    else:  # gathers on flat indices (np.take): 3x faster than [rows, cols]
        cols = first[:, None] + np.arange(n_w)
        if unmasked:
            band = flat_deriv.take(cols + row_start[:, None])
        else:
            inside = (cols >= 1) & (cols <= n_r - 2)
            cols = np.clip(cols, 1, n_r - 2)
            flat = cols + row_start[:, None]
            band = np.where(inside & valid.ravel().take(flat), flat_deriv.take(flat), -np.inf)
        k = np.argmax(band, axis=1)
        pick = np.arange(n_a) * n_w + k
        best = band.ravel().take(pick)
        col = cols.ravel().take(pick)
        at = row_start + col
    left = flat_deriv.take(at - 1)
    right = flat_deriv.take(at + 1)
    denom = left - 2 * best + right
    # parabola through the peak and its neighbours; a flat or inverted one stays on the sample
    frac = np.divide(0.5 * (left - right), denom, out=np.zeros_like(denom), where=denom < 0)
    radius = col + np.minimum(np.maximum(frac, -0.5), 0.5)  # np.clip, without its wrapper
    finite = np.isfinite(best)
    strength_floor = 0.25 * median(best[finite]) if finite.any() else np.inf
    ok = finite & (best > max(strength_floor, 1.0)) & (k > 0) & (k < n_w - 1)
    return np.where(ok, radius, np.nan)


def _refine_edge(
    pixels: np.ndarray,
    centre_xy: tuple[float, float],
    radius_px: float,
    contrast: float,
    *,
    window_px: float | None = None,
    measure_blur: bool = True,
) -> EdgeFit | None:
    """Sub-pixel circular edge fit at full resolution around a coarse circle; None when untrustworthy.

    contrast: outside minus inside level (its sign picks rising or falling steps).
    window_px: how far from the coarse radius the first pass looks (default 10 % of it).
    """
    sign = 1.0 if contrast >= 0 else -1.0
    angles = _edge_directions(_N_ANGLES)[0]
    (cx, cy), aspect = centre_xy, 1.0
    expected = np.full(_N_ANGLES, radius_px)
    window = window_px if window_px is not None else max(6.0, 0.1 * radius_px)
    for _ in range(2):  # a wide pass from the coarse circle, then a narrow one about the fit
        r_lo = max(0.0, float(expected.min()) - window - 4)
        polar, valid = polar_unwrap(pixels, (cx, cy), float(expected.max()) + window + 4, min_radius_px=r_lo)
        points_r = r_lo + _edge_points(polar, valid, expected - r_lo, sign, window)
        fit = _robust_fit(points_r, (cx, cy))
        if fit is None:
            return None
        (cx, cy), radius_px, aspect, kept, residual = fit
        expected = _ellipse_radius(radius_px, aspect, _N_ANGLES)  # per direction, for the next, narrower pass
        window = 3.0
    kept_resid = residual[kept]
    rms = math.sqrt(float((kept_resid**2).sum()) / kept_resid.size) if kept_resid.size else float("inf")
    sigma, contrast = (
        _edge_blur(pixels, (cx, cy), expected, sign) if measure_blur else (float("nan"), contrast)
    )
    return EdgeFit(
        (float(cx), float(cy)),
        float(radius_px),
        1.0 / float(aspect),
        np.count_nonzero(kept) / len(kept),
        rms,
        float(contrast),
        float(sigma),
        np.where(kept, residual, np.nan).astype(np.float32),
        angles.astype(np.float32),
    )


def _median_profile(polar_rt: np.ndarray, valid_rt: np.ndarray) -> np.ndarray:
    """Median over directions of a radii-first uint8 polar image (n_radii, n_angles), ignoring
    samples outside the frame; float32, cut after the last radius that is mostly inside it.

    Invalid samples are replaced by alternating 0 and 255 -- at or beyond every valid value --
    which leaves the median of the valid ones unchanged where at least half are valid. The
    median runs on OpenCV's uint8 row sort, several times faster than a float partition.
    """
    if valid_rt.all():  # the usual case: the whole disc is inside the frame
        return median_rows_uint8(polar_rt).astype(np.float32)
    filler = np.where(np.arange(polar_rt.shape[1]) % 2 == 0, 0, 255).astype(np.uint8)
    prof = median_rows_uint8(np.where(valid_rt, polar_rt, filler)).astype(np.float32)
    usable = valid_rt.mean(axis=1) >= 0.5
    last = int(np.flatnonzero(usable)[-1]) + 1 if usable.any() else 0
    return prof[:last]


def _step_coverage(polar: np.ndarray, valid: np.ndarray, r: int, contrast: float) -> float:
    """Fraction of directions where the image crosses the step's mid level within 2 px of radius r."""
    n_r = polar.shape[1]
    lo, hi = max(0, r - 3), min(n_r - 1, r + 3)
    if hi - lo < 2:
        return 0.0
    inner, outer = polar[:, lo], polar[:, hi]
    ok = valid[:, lo] & valid[:, hi]
    crosses = (outer - inner) * np.sign(contrast) > 0.4 * abs(contrast)
    return float((crosses & ok).sum() / max(1, ok.sum()))


def _edge_blur(
    pixels: np.ndarray, centre_xy: tuple[float, float], edge_r: np.ndarray, sign: float
) -> tuple[float, float]:
    """Blur (Gaussian sigma, px) and contrast (outside minus inside, grey) of the fitted edge.

    From the median, over all directions, of the profile across the edge (each direction
    aligned on its fitted radius): sigma = contrast / (sqrt(2 pi) * steepest slope). The
    plateaus either side are read far enough out that a blurred edge has levelled off -- the
    window widens until it is at least four sigmas -- so a blurred edge is not read as sharp.
    """
    half = 12.0
    sigma = contrast = float("nan")
    _, cos, sin = _edge_directions(len(edge_r))
    max_edge_r = float(edge_r.max())
    h, w = pixels.shape
    for _ in range(4):
        offsets = np.arange(-half, half + 0.5, 0.5, dtype=np.float32)
        # offsets first, directions along rows: the median over directions runs on contiguous rows
        radii = offsets[:, None] + edge_r[None, :].astype(np.float32)
        map_x = (centre_xy[0] + cos[None, :] * radii).astype(np.float32)
        map_y = (centre_xy[1] + sin[None, :] * radii).astype(np.float32)
        reach = max_edge_r + half  # no sample is farther from the centre
        if not (1 + reach <= centre_xy[0] <= w - 2 - reach and 1 + reach <= centre_xy[1] <= h - 2 - reach):
            # drop the directions whose band leaves the frame
            valid = ((map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)).all(axis=0)
            if np.count_nonzero(valid) < 8:
                return float("inf"), 0.0
            map_x, map_y = map_x[:, valid], map_y[:, valid]
        band = cv2.remap(pixels, map_x, map_y, cv2.INTER_LINEAR)
        profile = median_rows_uint8(band).astype(np.float32)  # exact: halves of grey levels
        quarter = len(offsets) // 4
        contrast = float(median(profile[-quarter:]) - median(profile[:quarter]))
        slope = float(np.max(sign * _gradient(profile, 0.5)[quarter:-quarter]))
        sigma = abs(contrast) / (math.sqrt(2 * math.pi) * slope) if slope > 0 else float("inf")
        if not math.isfinite(sigma) or 4.0 * sigma <= half or half >= 96:
            break
        half = min(96.0, 2 * half)  # blurred: the plateaus were still on the slope
    return sigma, contrast


def _gradient(values: np.ndarray, spacing: float = 1.0) -> np.ndarray:
    """np.gradient(values, spacing) of a 1-D array (at least 2 long), without its ~20 us wrapper:
    central differences inside, one-sided ones at the two ends, computed as NumPy does."""
    out = np.empty_like(values)
    np.subtract(values[2:], values[:-2], out=out[1:-1])
    out[1:-1] /= 2.0 * spacing
    out[0] = (values[1] - values[0]) / spacing
    out[-1] = (values[-1] - values[-2]) / spacing
    return out


def _ellipse_radius(radius_px: float, aspect: float, n_angles: int) -> np.ndarray:
    """Radius along each of the n_angles directions 2*pi*i/n_angles of an axis-aligned ellipse
    with x semi-axis `radius_px`, y = aspect * x."""
    _, cos, sin = _edge_directions(n_angles)
    a, b = radius_px, radius_px * aspect
    return a * b / np.sqrt((b * cos) ** 2 + (a * sin) ** 2)


def _robust_fit(points_r: np.ndarray, centre_xy: tuple[float, float]):
    """Fit a circle, or an axis-aligned ellipse when clearly better, to polar edge points: points_r
    (n,) px from centre_xy along the directions 2*pi*i/n, NaN where there is none.

    Returns ((cx, cy), x semi-axis px, y/x aspect, kept mask, radial residual px) or None
    with too few points.
    """
    ok = np.isfinite(points_r)
    min_kept = 0.25 * len(points_r)
    if np.count_nonzero(ok) < min_kept:
        return None
    _, cos, sin = _edge_directions(len(points_r))
    x = centre_xy[0] + points_r * cos
    y = centre_xy[1] + points_r * sin
    # Every point's terms of the ellipse equation, once, in coordinates (u, v) about centre_xy
    # (near the centre: well conditioned); each rejection pass takes its kept columns.
    u, v = x - centre_xy[0], y - centre_xy[1]
    terms = np.empty((5, len(u)))
    np.multiply(u, u, out=terms[0])
    np.multiply(v, v, out=terms[1])
    terms[2], terms[3], terms[4] = u, v, 1.0
    kept = ok
    cx = cy = rx = ry = 0.0
    for _ in range(4):
        cx, cy, rx, ry = _fit_axis_ellipse(terms[:, kept])
        resid = _radial_residual(u, v, cx, cy, rx, ry)
        resid_kept = resid[kept]
        spread = 1.4826 * median(np.abs(resid_kept - median(resid_kept)))
        new_kept = ok & (np.abs(resid) <= max(3.0 * spread, 0.75))
        if np.count_nonzero(new_kept) < min_kept:
            return None
        if (new_kept == kept).all():
            break
        kept = new_kept
    aspect = ry / rx
    if abs(aspect - 1.0) <= _ROUND_TOLERANCE:  # a circle: one radius is better determined than two
        cx, cy, rx = _fit_circle(x[kept], y[kept])
        ry = rx
        aspect = 1.0
        return (cx, cy), rx, aspect, kept, _radial_residual(x, y, cx, cy, rx, ry)
    residual = _radial_residual(u, v, cx, cy, rx, ry)
    return (cx + centre_xy[0], cy + centre_xy[1]), rx, aspect, kept, residual


def _radial_residual(x, y, cx, cy, rx, ry):
    """Approximate signed distance of points to an axis-aligned ellipse, in px (positive outside).

    NaN for NaN points and for a point exactly on the centre, which no tolerance keeps.
    """
    dx, dy = x - cx, y - cy
    rho = np.hypot(dx / rx, dy / ry)
    r_pt = np.hypot(dx, dy)
    with np.errstate(divide="ignore", invalid="ignore"):  # the point on the centre: 0 * inf
        return r_pt * (1 - 1 / rho)


# The fits solve their small normal equations directly, by OpenCV's LU (a third of the call
# overhead of np.linalg.solve; a general least-squares solver costs ~10x more on 3-4 unknowns).
# Each system [A | b] comes from one matrix product of stacked rows [basis..., right-hand side],
# and the Gauss-Newton loop refills one preallocated array: on ~350 points the per-call overhead,
# not the arithmetic, is the cost.


def _solve(system: np.ndarray) -> list[float]:
    """Solution x of A x = b for system = [A | b], (n, n + 1) float64."""
    solved, x = cv2.solve(system[:, :-1], system[:, -1:], flags=cv2.DECOMP_LU)
    if not solved:
        raise np.linalg.LinAlgError("singular normal equations")
    return x.ravel().tolist()


def _fit_circle(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Least-squares circle: algebraic start, then Gauss-Newton on the geometric distance."""
    x0, y0 = float(x.sum()) / len(x), float(y.sum()) / len(y)
    u, v = x - x0, y - y0
    rows = np.empty((4, len(u)))
    rows[0], rows[1], rows[2] = u, v, 1.0
    np.add(u * u, v * v, out=rows[3])
    d, e, f = _solve(rows[:3] @ rows.T)
    cx, cy = d / 2, e / 2
    r = math.sqrt(max(f + cx * cx + cy * cy, 1e-9))
    du, dv, _, misfit = rows  # views: rows 0, 1 and 3 are refilled each step, row 2 stays 1
    for _ in range(5):
        np.subtract(u, cx, out=du)
        np.subtract(v, cy, out=dv)
        dist = np.hypot(du, dv)
        dist[dist == 0] = 1e-9
        np.subtract(dist, r, out=misfit)
        du /= dist  # rows 0-2: minus the Jacobian
        dv /= dist
        dcx, dcy, dr = _solve(rows[:3] @ rows.T)
        cx, cy, r = cx + dcx, cy + dcy, r + dr
        if max(abs(dcx), abs(dcy), abs(dr)) < 1e-4:
            break
    return cx + x0, cy + y0, r


def _fit_axis_ellipse(terms: np.ndarray) -> tuple[float, float, float, float]:
    """Least-squares axis-aligned ellipse A u^2 + C v^2 + D u + E v = 1 through points given by
    their terms (5, n): rows u^2, v^2, u, v, 1. Returns (cx, cy, rx, ry) in (u, v)."""
    a, c, d, e = _solve(terms[:4] @ terms.T)
    cx, cy = -d / (2 * a), -e / (2 * c)
    g = 1 + a * cx * cx + c * cy * cy
    return cx, cy, math.sqrt(abs(g / a)), math.sqrt(abs(g / c))


def _check_trust(frame: Frame, fit: EdgeFit, params) -> None:
    if fit.coverage < params.min_edge_coverage:
        raise FiberNotFoundError(
            f"{frame.source}: the cladding edge was found in only {fit.coverage:.0%} of "
            f"directions (need {params.min_edge_coverage:.0%}); the fiber may be cut by the "
            "frame, hidden by contamination or out of focus"
        )
    if fit.rms_px > params.max_fit_rms_px:
        raise FiberNotFoundError(
            f"{frame.source}: the cladding edge is not circular (RMS {fit.rms_px:.1f} px, "
            f"limit {params.max_fit_rms_px} px); check for heavy contamination or damage"
        )
    if abs(fit.pixel_aspect - 1.0) > params.max_pixel_aspect_deviation:
        raise FiberNotFoundError(
            f"{frame.source}: the cladding edge is an ellipse of aspect "
            f"{fit.pixel_aspect:.2f}; this is not a fiber seen face-on"
        )


def _geometry(pixels: np.ndarray, profile: Profile, fit: EdgeFit, um_per_px: float | None) -> Geometry:
    """Calibrate µm/px, find the core, lay out zones."""
    warnings: list[str] = []
    fitted_um_per_px = profile.fiber.cladding_diameter_um / (2.0 * fit.radius_px)
    if um_per_px is None:
        um_per_px, calibration = fitted_um_per_px, "profile"
    else:
        calibration = "user"
        implied_um = 2.0 * fit.radius_px * um_per_px
        if (
            abs(implied_um / profile.fiber.cladding_diameter_um - 1.0)
            > profile.geometry.calibration_tolerance
        ):
            warnings.append(
                f"calibration: at {um_per_px:.4f} um/px the fitted cladding is {implied_um:.1f} um across, "
                f"not the nominal {profile.fiber.cladding_diameter_um:g} um; check --um-per-px or the "
                "profile's cladding diameter"
            )
    core_centre, core_radius = _core_circle(pixels, fit)
    return Geometry(
        center_xy=fit.center_xy,
        cladding_radius_px=fit.radius_px,
        core_radius_px=core_radius,
        core_center_xy=core_centre,
        um_per_px=um_per_px,
        calibration=calibration,
        pixel_aspect=fit.pixel_aspect,
        edge_coverage=fit.coverage,
        edge_sigma_px=fit.edge_sigma_px if math.isfinite(fit.edge_sigma_px) else None,
        fit_rms_px=fit.rms_px,
        zones=zones_for(profile, um_per_px),
        warnings=tuple(warnings),
    )


def _core_circle(pixels: np.ndarray, fit: EdgeFit) -> tuple[tuple[float, float] | None, float | None]:
    """Centre and radius of the core, fitted on its own edge (cores sit up to ~1 um off the cladding's
    centre); (None, None) when no core edge stands out of the noise."""
    step = _core_step(pixels, fit)
    if step is None:
        return None, None
    radius, contrast = step
    core = _refine_edge(
        pixels, fit.center_xy, radius, contrast, window_px=max(3.0, 0.08 * radius), measure_blur=False
    )
    if core is None or core.coverage < 0.5 or core.rms_px > 1.5 or abs(core.radius_px - radius) > 3:
        return fit.center_xy, radius  # visible in the median profile but not fittable: assume concentric
    return (round(core.center_xy[0], 3), round(core.center_xy[1], 3)), core.radius_px


def _core_step(pixels: np.ndarray, fit: EdgeFit) -> tuple[float, float] | None:
    """(radius px, signed contrast) of the circular step inside the cladding with the largest level
    change, if any stands out of the noise.

    Ranked by the level difference across the step, not by its slope: a thin sharp ring
    (a reflection) changes the level little, the core boundary changes it most.
    """
    polar_rt, valid_rt = polar_samples(pixels, fit.center_xy, fit.radius_px * 0.9, 0.0, 180, radii_first=True)
    prof = _median_profile(polar_rt, valid_rt)
    smooth = cv2.GaussianBlur(prof.reshape(1, -1), (0, 0), 1.0).ravel()
    deriv = _gradient(smooth)
    lo, hi = max(10, int(0.03 * fit.radius_px)), min(int(0.85 * fit.radius_px), len(prof) - 10)
    if hi - lo < 5:
        return None
    noise = 1.4826 * median(np.abs(np.diff(prof[lo:hi]))) + 0.5
    mag = np.abs(deriv)
    i = np.arange(lo, hi)
    peaks = i[(mag[i] >= mag[i - 1]) & (mag[i] > mag[i + 1])]
    # level change across each slope peak: mean 3-8 px outside minus mean 3-8 px inside
    csum = np.concatenate([[0.0], np.cumsum(smooth)])
    steps = (csum[peaks + 9] - csum[peaks + 3]) / 6 - (csum[peaks - 2] - csum[peaks - 8]) / 6
    ok = (np.abs(steps) > max(4.0, 6.0 * noise)) & (np.sign(steps) == np.sign(deriv[peaks]))
    if not ok.any():
        return None
    k = int(np.argmax(np.where(ok, np.abs(steps), -1.0)))
    best, best_step = int(peaks[k]), float(steps[k])
    l, c, r = mag[best - 1], mag[best], mag[best + 1]  # parabola through the slope peak
    denom = l - 2 * c + r
    frac = 0.5 * (l - r) / denom if denom < 0 else 0.0
    return float(best + np.clip(frac, -0.5, 0.5)), best_step
