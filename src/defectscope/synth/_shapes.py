"""Exact geometry of defect specs in frame pixels, and the truth record each one gives.

Shared by the planner (which needs sizes and zones before any pixel exists) and the
renderer (which draws exactly these shapes), so the truth cannot drift from the pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..records import DefectKind
from ._light import light_at
from .scene import ChipSpec, DefectSpec, DigSpec, OilSpec, ParticleSpec, Scene, ScratchSpec
from .truth import TruthDefect

__all__ = ["Shape", "shape_of", "truth_defect", "footprint"]

_BEND_SEGMENTS = 32
_OIL_LOWRES_RADIUS_PX = 24.0


@dataclass(frozen=True)
class Shape:
    """One defect as drawn, in frame pixels.

    polygon_px: (n, 2) float64 outline (x, y) of a region defect; (0, 2) for scratches.
    polyline_px: (n, 2) float64 centre line of a scratch; (0, 2) otherwise.
    width_px: scratch width. For oil, `field` is its (h, w) float32 profile (peak 1) on the
    patch starting at `origin_xy`, and `field_mask` the >= 50 %-of-peak region it is labelled by.
    """

    kind: DefectKind
    polygon_px: np.ndarray
    polyline_px: np.ndarray
    width_px: float = 0.0
    origin_xy: tuple[int, int] = (0, 0)
    field: np.ndarray | None = None
    field_mask: np.ndarray | None = None


_EMPTY = np.zeros((0, 2), np.float64)


def shape_of(spec: DefectSpec, scene: Scene) -> Shape:
    """The exact shape `spec` is drawn with in `scene`."""
    if isinstance(spec, ScratchSpec):
        width_px = spec.width_um / scene.um_per_px
        return Shape(DefectKind.SCRATCH, _EMPTY, _scratch_polyline(spec, scene), width_px)
    if isinstance(spec, DigSpec):
        return Shape(DefectKind.DIG, _blob_px(spec, scene, n_harmonics=3), _EMPTY)
    if isinstance(spec, ParticleSpec):
        return Shape(DefectKind.PARTICLE, _blob_px(spec, scene, n_harmonics=6), _EMPTY)
    if isinstance(spec, ChipSpec):
        return Shape(DefectKind.CHIP, _chip_px(spec, scene), _EMPTY)
    if isinstance(spec, OilSpec):
        return _oil(spec, scene)
    raise TypeError(f"not a defect spec: {type(spec).__name__}")


def footprint(shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    """Circles covering the shape: centres (n, 2) and radii (n,) in pixels (for overlap checks)."""
    if shape.kind == DefectKind.SCRATCH:
        pts = _densify(shape.polyline_px, step_px=max(1.0, shape.width_px))
        return pts, np.full(len(pts), shape.width_px / 2 + 0.5)
    (cx, cy), r = cv2.minEnclosingCircle(shape.polygon_px.astype(np.float32))
    return np.array([[cx, cy]]), np.array([r])


def truth_defect(spec: DefectSpec, shape: Shape, defect_id: int, scene: Scene) -> TruthDefect:
    """The ground-truth record of a drawn defect (sizes in µm, positions in frame pixels)."""
    u = scene.um_per_px
    cx, cy = scene.fiber_center_xy
    if shape.kind == DefectKind.SCRATCH:
        line = shape.polyline_px
        seg = np.hypot(*np.diff(line, axis=0).T)
        length_px = float(seg.sum())
        mid = _point_at_length(line, seg, length_px / 2)
        half = shape.width_px / 2
        near = max(0.0, _dist_to_polyline((cx, cy), line) - half)
        far = float(np.hypot(line[:, 0] - cx, line[:, 1] - cy).max()) + half
        light = float(light_at(scene, np.array([mid[0]]), np.array([mid[1]]))[0])
        return TruthDefect(
            id=defect_id,
            kind=shape.kind,
            centroid_xy=_r2(mid),
            size_um=_r4(spec.width_um),
            length_um=_r4(length_px * u),
            radial_extent_um=(_r4(near * u), _r4(far * u)),
            polyline_xy=tuple(_r2(p) for p in line),
            contrast_grey=_r2s(spec.contrast_grey * light),
            mask_value=defect_id,
            note=spec.note,
        )
    poly = shape.polygon_px
    (_, _), r_mec = cv2.minEnclosingCircle(poly.astype(np.float32))
    centroid = _inside_centroid(poly)
    inside = cv2.pointPolygonTest(poly.astype(np.float32).reshape(-1, 1, 2), (cx, cy), False) >= 0
    near = 0.0 if inside else _dist_to_polyline((cx, cy), np.vstack([poly, poly[:1]]))
    far = float(np.hypot(poly[:, 0] - cx, poly[:, 1] - cy).max())
    light = float(light_at(scene, np.array([centroid[0]]), np.array([centroid[1]]))[0])
    return TruthDefect(
        id=defect_id,
        kind=shape.kind,
        centroid_xy=_r2(centroid),
        size_um=_r4(2 * r_mec * u),
        radial_extent_um=(_r4(near * u), _r4(far * u)),
        polygon_xy=tuple(_r2(p) for p in poly),
        contrast_grey=_r2s(spec.contrast_grey * light),
        mask_value=defect_id,
        note=spec.note,
    )


# --- shapes -------------------------------------------------------------------------------------------


def _scratch_polyline(spec: ScratchSpec, scene: Scene) -> np.ndarray:
    p0 = np.array(scene.to_px(spec.start_um))
    p1 = np.array(scene.to_px(spec.end_um))
    if spec.bend_um == 0.0:
        return np.vstack([p0, p1])
    d = p1 - p0
    n = np.array([d[1], -d[0]]) / max(np.hypot(*d), 1e-9)  # left of start->end in image axes (y down)
    ctrl = (p0 + p1) / 2 + 2.0 * (spec.bend_um / scene.um_per_px) * n
    t = np.linspace(0.0, 1.0, _BEND_SEGMENTS + 1)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * ctrl + t**2 * p1


def _blob_outline(
    size: float, *, irregularity: float, aspect: float, angle_deg: float, seed: int, n: int, n_harmonics: int
) -> np.ndarray:
    """Closed star-shaped outline, (n, 2), its smallest enclosing circle centred at 0 with diameter `size`."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(2, 2 + n_harmonics):
        r += irregularity * rng.normal() / k**0.9 * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    r = np.maximum(r, 0.45)
    x, y = r * np.cos(t) * max(aspect, 1e-3), r * np.sin(t)
    a = math.radians(angle_deg)
    pts = np.stack([x * math.cos(a) - y * math.sin(a), x * math.sin(a) + y * math.cos(a)], axis=1)
    (mx, my), mr = cv2.minEnclosingCircle(pts.astype(np.float32))
    return (pts - [mx, my]) * (size / 2.0 / mr)


def _blob_px(spec: DigSpec | ParticleSpec, scene: Scene, *, n_harmonics: int) -> np.ndarray:
    size_px = spec.size_um / scene.um_per_px
    n = int(np.clip(math.pi * size_px / 2.0, 24, 160))
    pts = _blob_outline(
        spec.size_um,
        irregularity=spec.irregularity,
        aspect=spec.aspect,
        angle_deg=spec.angle_deg,
        seed=spec.shape_seed,
        n=n,
        n_harmonics=n_harmonics,
    )
    cx, cy = scene.to_px(spec.center_um)
    return pts / scene.um_per_px + [cx, cy]


def _chip_px(spec: ChipSpec, scene: Scene) -> np.ndarray:
    rb = scene.cladding_diameter_um / 2.0
    half = spec.arc_um / 2.0 / rb
    phi = math.radians(spec.angle_deg)
    n = int(np.clip(spec.arc_um / scene.um_per_px / 1.5, 12, 120))
    th = np.linspace(phi - half, phi + half, n)
    s = np.linspace(0.0, 1.0, n)
    rng = np.random.default_rng(spec.shape_seed)
    wobble = np.zeros(n)
    for k in (2, 3, 5):
        wobble += rng.normal() / k * np.sin(k * np.pi * s + rng.uniform(0, 2 * np.pi))
    # a notch with steep walls and an uneven floor, deepest near its middle
    bump = (0.4 + 0.6 * np.sin(np.pi * s) ** 0.5) * np.maximum(1.0 + spec.irregularity * wobble, 0.3)
    depth = spec.depth_um * bump / bump.max()
    outer = np.stack([rb * np.cos(th), rb * np.sin(th)], axis=1)
    inner = np.stack([(rb - depth) * np.cos(th), (rb - depth) * np.sin(th)], axis=1)[::-1]
    pts = np.vstack([outer, inner])
    cx, cy = scene.fiber_center_xy
    return pts / scene.um_per_px + [cx, cy]


def _oil(spec: OilSpec, scene: Scene) -> Shape:
    """Soft film: a blurred irregular blob; its truth outline is the >= 50 %-of-peak contour."""
    u = scene.um_per_px
    radius_um = spec.size_um / 2.0
    shape = None
    for _ in range(2):  # one correction so the measured size matches the requested one
        shape = _oil_once(spec, scene, radius_um)
        (_, _), r = cv2.minEnclosingCircle(shape.polygon_px.astype(np.float32))
        measured_um = 2 * r * u
        if measured_um <= 0 or abs(measured_um - spec.size_um) < 0.5 * u:
            break
        radius_um *= spec.size_um / measured_um
    return shape


def _oil_once(spec: OilSpec, scene: Scene, radius_um: float) -> Shape:
    u = scene.um_per_px
    r_px = radius_um / u
    sigma_px = max(spec.softness * r_px, 0.8)
    n = int(np.clip(math.pi * r_px, 24, 160))
    pts = _blob_outline(
        2 * r_px,
        irregularity=spec.irregularity,
        aspect=1.0,
        angle_deg=0.0,
        seed=spec.shape_seed,
        n=n,
        n_harmonics=4,
    )
    cx, cy = scene.to_px(spec.center_um)
    ext = r_px + 3.5 * sigma_px + 2
    x0, y0 = int(math.floor(cx - ext)), int(math.floor(cy - ext))
    w = h = int(math.ceil(2 * ext)) + 2
    f = max(1, int(r_px / _OIL_LOWRES_RADIUS_PX))
    wl, hl = -(-w // f), -(-h // f)
    ss = 4
    lowres = (pts + [cx - x0, cy - y0] + 0.5) / f - 0.5  # low-res pixel coordinates
    cover = np.zeros((hl * ss, wl * ss), np.uint8)
    fixed_point = np.round(((lowres + 0.5) * ss - 0.5) * 16).astype(np.int32)  # 4 fractional bits
    cv2.fillPoly(cover, [fixed_point], 255, cv2.LINE_8, shift=4)
    cov = cv2.resize(cover, (wl, hl), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    cov = cv2.GaussianBlur(cov, (0, 0), sigma_px / f)
    if f > 1:
        cov = cv2.resize(cov, (wl * f, hl * f), interpolation=cv2.INTER_LINEAR)
    field = cov[:h, :w]
    field = field / max(float(field.max()), 1e-6)
    above = (field >= 0.5).astype(np.uint8)
    _, labels = cv2.connectedComponents(above, connectivity=8)
    peak = np.unravel_index(int(np.argmax(field)), field.shape)
    mask = labels == labels[peak]
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    contour = max(contours, key=len).reshape(-1, 2).astype(np.float64) + [x0, y0]
    return Shape(
        DefectKind.OIL, contour, _EMPTY, origin_xy=(x0, y0), field=field.astype(np.float32), field_mask=mask
    )


# --- geometry helpers ---------------------------------------------------------------------------------


def _densify(line: np.ndarray, *, step_px: float) -> np.ndarray:
    out = [line[:1]]
    for a, b in zip(line[:-1], line[1:]):
        k = max(1, int(math.ceil(np.hypot(*(b - a)) / step_px)))
        t = np.arange(1, k + 1)[:, None] / k
        out.append(a + (b - a) * t)
    return np.vstack(out)


def _dist_to_polyline(p: tuple[float, float], line: np.ndarray) -> float:
    a, b = line[:-1], line[1:]
    d = b - a
    L2 = np.maximum((d**2).sum(axis=1), 1e-12)
    t = np.clip(((p[0] - a[:, 0]) * d[:, 0] + (p[1] - a[:, 1]) * d[:, 1]) / L2, 0.0, 1.0)
    q = a + d * t[:, None]
    return float(np.hypot(q[:, 0] - p[0], q[:, 1] - p[1]).min())


def _point_at_length(line: np.ndarray, seg: np.ndarray, s: float) -> tuple[float, float]:
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    i = int(np.clip(np.searchsorted(cum, s) - 1, 0, len(seg) - 1))
    t = 0.0 if seg[i] == 0 else (s - cum[i]) / seg[i]
    p = line[i] + (line[i + 1] - line[i]) * t
    return (float(p[0]), float(p[1]))


def _inside_centroid(poly: np.ndarray) -> tuple[float, float]:
    """The outline's area centroid if it lies inside the outline, else its most interior grid point."""
    c32 = poly.astype(np.float32).reshape(-1, 1, 2)
    m = cv2.moments(c32)
    if abs(m["m00"]) > 1e-9:
        c = (m["m10"] / m["m00"], m["m01"] / m["m00"])
        if cv2.pointPolygonTest(c32, c, True) >= 0.25 or cv2.pointPolygonTest(c32, c, False) > 0:
            return (float(c[0]), float(c[1]))
    x0, y0 = poly.min(axis=0)
    x1, y1 = poly.max(axis=0)
    best, best_d = (float(poly[0, 0]), float(poly[0, 1])), -np.inf
    for x in np.linspace(x0, x1, 21):
        for y in np.linspace(y0, y1, 21):
            d = cv2.pointPolygonTest(c32, (float(x), float(y)), True)
            if d > best_d:
                best, best_d = (float(x), float(y)), d
    return best


def _r2(p) -> tuple[float, float]:
    return (round(float(p[0]), 3), round(float(p[1]), 3))


def _r4(v: float) -> float:
    return round(float(v), 4)


def _r2s(v: float) -> float:
    return round(float(v), 2)
