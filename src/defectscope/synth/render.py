"""Render a `Scene` into grey pixels, a defect label mask and exact ground truth.

Rendering model, in this order (all float32 grey levels at nominal exposure):

1. the ferrule level with fine grain texture (blurred noise drawn at half resolution);
2. the fiber from a radial profile through a look-up table: core, cladding, a lighter band and
   a thin rim just inside the boundary, a bright halo just outside it (box-filtered, so edges
   are anti-aliased);
3. defects added as signed contrast times their pixel coverage (polygons are supersampled
   inside their own bounding box; scratches use the exact distance to their centre line);
4. the light field (vignetting, gradient, slow mottle, glare, exposure) multiplied in;
5. Gaussian defocus, sensor noise, the black frame-grabber border, rounding to uint8;
6. optionally a JPEG round trip, so the pixels equal what decoding the written file gives.

The label mask is drawn at the nominal shapes (not blurred): a pixel carries a defect's label
when its centre is inside the shape (scratches: within half the width of the centre line,
at least 0.5 px so sub-pixel scratches stay labelled). Later defects overwrite earlier ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..judge import judge
from ..profile import Profile, list_profiles, load_profile
from ..records import DefectKind, Status
from ._light import light_at
from ._shapes import Shape, shape_of, truth_defect
from .scene import DigSpec, OilSpec, ParticleSpec, Scene, ScratchSpec
from .truth import ExpectedVerdict, Truth, TruthConditions, TruthDefect, TruthGeometry

__all__ = ["SynthImage", "render_scene", "expected_verdicts", "shipped_profiles"]

_LUT_STEPS_PER_PX = 8
_LIGHT_STEP_PX = 8
_CHUNK_PX = 24.0
_NO_GEOMETRY = ("no-fiber", "black", "white")


@dataclass(frozen=True)
class SynthImage:
    """One rendered end face.

    pixels: (H, W) uint8 grey image, read-only (after the JPEG round trip when the scene has a
    JPEG quality; `encoded` then holds the exact JPEG bytes, else None).
    mask: (H, W) uint8 defect labels, read-only; 0 background, label = TruthDefect.mask_value.
    truth: the ground truth, including the expected verdict for each profile.
    """

    pixels: np.ndarray
    mask: np.ndarray
    truth: Truth
    scene: Scene
    encoded: bytes | None = None

    def __post_init__(self) -> None:
        for name in ("pixels", "mask"):
            a = getattr(self, name)
            if a.ndim != 2 or a.dtype != np.uint8:
                raise ValueError(f"SynthImage.{name} must be (H, W) uint8, got {a.shape} {a.dtype}")
            a.setflags(write=False)


def shipped_profiles() -> list[Profile]:
    """Every shipped profile, loaded (pass them to `render_scene` to avoid reloading per image)."""
    return [load_profile(name) for name in list_profiles()]


def render_scene(
    scene: Scene, *, profiles: Sequence[Profile] | None = None, name: str = "synth"
) -> SynthImage:
    """Draw `scene`: pixels, label mask and truth (expected verdicts for each of `profiles`).

    profiles: None loads every shipped profile. name: file stem recorded in the truth
    (`<name>.jpg` or `<name>.png`, `<name>.mask.png`). Deterministic: the same scene gives
    the same bytes.
    """
    profiles = list(profiles) if profiles is not None else shipped_profiles()
    # one stream per layer, so adding a defect leaves texture, light and noise unchanged
    grain_rng, light_rng, defect_rng, noise_rng, fiber_rng = (
        np.random.default_rng([scene.seed, 0x51D7, k]) for k in range(5)
    )
    h, w = scene.height, scene.width
    ill = scene.illumination

    grain = _grain(grain_rng, h, w, ill.grain_grey)
    img = np.full((h, w), ill.ferrule_grey, np.float32)
    if scene.fiber_present:
        _draw_fiber(img, grain, scene, fiber_rng)
    img += grain

    mask = np.zeros((h, w), np.uint8)
    shapes: list[tuple[object, Shape]] = []
    has_geometry = scene.fiber_present and scene.degraded not in _NO_GEOMETRY
    if has_geometry:
        for i, spec in enumerate(scene.defects, start=1):
            shape = shape_of(spec, scene)
            _draw_defect(img, mask, spec, shape, i, scene, defect_rng)
            shapes.append((spec, shape))

    img *= _light_field(scene, light_rng)
    if scene.psf_sigma_px > 0.05:
        img = cv2.GaussianBlur(img, (0, 0), scene.psf_sigma_px, borderType=cv2.BORDER_REFLECT)
    noise = noise_rng.standard_normal((h, w), dtype=np.float32)
    img += noise * np.float32(scene.noise_sigma_grey)
    _draw_border(img, noise, ill)
    pixels = np.clip(img + 0.5, 0, 255).astype(np.uint8)

    encoded = None
    if scene.jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, int(scene.jpeg_quality)])
        if not ok:
            raise RuntimeError("OpenCV could not encode the JPEG")  # pragma: no cover - encoder failure
        encoded = buf.tobytes()
        pixels = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)

    truth_defects = tuple(
        truth_defect(spec, shape, i, scene) for i, (spec, shape) in enumerate(shapes, start=1)
    )
    truth = _truth(scene, truth_defects, has_geometry, name)
    truth = truth.model_copy(update={"expected": expected_verdicts(truth, profiles)})
    return SynthImage(pixels=pixels, mask=mask, truth=truth, scene=scene, encoded=encoded)


def expected_verdicts(truth: Truth, profiles: Sequence[Profile]) -> dict[str, ExpectedVerdict]:
    """What a perfect inspector answers for each profile: `judge` on the true defects.

    Degraded frames expect UNDETERMINED with the reason "degraded: <kind>".
    """
    out = {}
    for prof in profiles:
        if truth.degraded is not None:
            out[prof.name] = ExpectedVerdict(
                status=Status.UNDETERMINED, reasons=(f"degraded: {truth.degraded}",)
            )
        else:
            v = judge(truth.defects_for(prof), prof)
            out[prof.name] = ExpectedVerdict(status=v.status, reasons=v.reasons)
    return out


# --- scene layers ---------------------------------------------------------------------------------------


def _grain(rng: np.random.Generator, h: int, w: int, std_grey: float) -> np.ndarray:
    """Fine ferrule grain: white noise at half resolution, blurred, upsampled, scaled to `std_grey`."""
    hh, wh = (h + 1) // 2, (w + 1) // 2
    g = rng.standard_normal((hh, wh), dtype=np.float32)
    g = cv2.GaussianBlur(g, (0, 0), 0.7)
    g *= np.float32(std_grey / 0.40)  # std of unit white noise after a 0.7 px Gaussian is ~0.40
    return cv2.resize(g, (wh * 2, hh * 2), interpolation=cv2.INTER_LINEAR)[:h, :w]


def _radial_profile(scene: Scene) -> tuple[np.ndarray, np.ndarray, float]:
    """Look-up tables over radius (1/8 px steps): grey level and grain weight; and their extent in px."""
    ill = scene.illumination
    u = scene.um_per_px
    rb = scene.cladding_radius_px
    rim, band, halo = ill.rim_width_um / u, ill.band_width_um / u, ill.halo_width_um / u
    r_max = rb + halo + 4.0
    step = 1.0 / _LUT_STEPS_PER_PX
    r = np.arange(0.0, r_max + 2.0, step)
    v = np.full_like(r, ill.cladding_grey)
    if scene.core_radius_px is not None:
        rc = scene.core_radius_px
        soft = max(ill.core_edge_um / u, 0.25)
        v += ill.core_delta_grey / (1.0 + np.exp((r - rc) / (soft / 2.0)))
        if ill.core_ring_grey:
            v += ill.core_ring_grey * np.exp(-0.5 * ((r - rc) / 0.7) ** 2)
    v = np.where((r >= rb - rim - band) & (r < rb - rim), ill.cladding_grey + ill.band_delta_grey, v)
    v = np.where((r >= rb - rim) & (r < rb), ill.cladding_grey + ill.rim_delta_grey, v)
    v = np.where(r >= rb, ill.ferrule_grey + np.where(r < rb + halo, ill.halo_grey, 0.0), v)
    g = np.where(r >= rb, 1.0, ill.fiber_grain_frac)
    k = np.ones(_LUT_STEPS_PER_PX) / _LUT_STEPS_PER_PX  # 1 px box: the pixel's footprint
    v = np.convolve(np.pad(v, (_LUT_STEPS_PER_PX, _LUT_STEPS_PER_PX), mode="edge"), k, mode="same")
    g = np.convolve(np.pad(g, (_LUT_STEPS_PER_PX, _LUT_STEPS_PER_PX), mode="edge"), k, mode="same")
    sl = slice(_LUT_STEPS_PER_PX, -_LUT_STEPS_PER_PX)
    return v[sl].astype(np.float32), g[sl].astype(np.float32), r_max


def _draw_fiber(img: np.ndarray, grain: np.ndarray, scene: Scene, rng: np.random.Generator) -> None:
    lut_v, lut_g, r_max = _radial_profile(scene)
    cx, cy = scene.fiber_center_xy
    h, w = img.shape
    x0, x1 = max(0, int(cx - r_max)), min(w, int(cx + r_max) + 2)
    y0, y1 = max(0, int(cy - r_max)), min(h, int(cy + r_max) + 2)
    if x0 >= x1 or y0 >= y1:
        return
    xs = np.arange(x0, x1, dtype=np.float32) - np.float32(cx)
    ys = np.arange(y0, y1, dtype=np.float32) - np.float32(cy)
    r = np.sqrt(xs[None, :] ** 2 + ys[:, None] ** 2)
    idx = np.minimum((r * _LUT_STEPS_PER_PX + 0.5).astype(np.int32), len(lut_v) - 1)
    img[y0:y1, x0:x1] = lut_v[idx]
    grain[y0:y1, x0:x1] *= lut_g[idx]
    ill = scene.illumination
    rim_px = ill.rim_width_um / scene.um_per_px
    rb = scene.cladding_radius_px
    if ill.rim_ragged_grey and rim_px > 0:  # the rim's level wanders with the angle
        yy, xx = np.nonzero((r > rb - rim_px - 1.0) & (r < rb + 0.5))
        rr = r[yy, xx]
        theta = np.arctan2(ys[yy], xs[xx])
        ks = np.array([3, 7, 13, 23, 41, 67])
        amp = rng.normal(0, 1, len(ks)) / np.sqrt(ks / 3.0)
        phase = rng.uniform(0, 2 * np.pi, len(ks))
        wander = (amp[:, None] * np.sin(ks[:, None] * theta[None, :] + phase[:, None])).sum(axis=0)
        wander /= max(float(np.abs(amp).sum()), 1e-6) / 2.0
        cover = np.clip(np.minimum(rr - (rb - rim_px), rb - rr) + 0.5, 0.0, 1.0)
        wander = np.clip(wander, -1.0, 1.0) * cover * ill.rim_ragged_grey
        img[y0 + yy, x0 + xx] += wander.astype(np.float32)


def _light_field(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    """(H, W) float32 relative light: vignetting, gradient, glare (1 at the fiber centre), mottle,
    exposure."""
    h, w = scene.height, scene.width
    s = _LIGHT_STEP_PX
    hl, wl = -(-h // s), -(-w // s)
    xs = (np.arange(wl) + 0.5) * s - 0.5
    ys = (np.arange(hl) + 0.5) * s - 0.5
    field = light_at(scene, xs[None, :], ys[:, None]).astype(np.float32)
    mottle_frac = scene.illumination.mottle_frac
    m = rng.standard_normal((hl, wl), dtype=np.float32)
    if mottle_frac > 0:
        m = cv2.GaussianBlur(m, (0, 0), 6.0)
        m *= np.float32(mottle_frac / max(float(m.std()), 1e-6))
        field *= 1.0 + m
    field *= np.float32(scene.illumination.exposure)
    return cv2.resize(field, (wl * s, hl * s), interpolation=cv2.INTER_LINEAR)[:h, :w]


def _draw_border(img: np.ndarray, noise: np.ndarray, ill) -> None:
    left, top, right, bottom = ill.border_px
    h, w = img.shape
    for sl in (
        (slice(None), slice(0, left)),
        (slice(0, top), slice(None)),
        (slice(None), slice(w - right, w) if right else slice(0, 0)),
        (slice(h - bottom, h) if bottom else slice(0, 0), slice(None)),
    ):
        img[sl] = ill.border_grey + 0.5 * noise[sl]


# --- defects ----------------------------------------------------------------------------------------------


def _draw_defect(
    img: np.ndarray, mask: np.ndarray, spec, shape: Shape, label: int, scene: Scene, rng: np.random.Generator
) -> None:
    if shape.kind == DefectKind.SCRATCH:
        _draw_scratch(img, mask, shape, spec, label, rng)
    elif shape.kind == DefectKind.OIL:
        _draw_oil(img, mask, shape, spec, label)
    else:
        _draw_region(img, mask, shape, spec, label, scene, rng)


def _window(img: np.ndarray, x0: int, y0: int, x1: int, y1: int):
    """Clip the patch [x0, x1) x [y0, y1) to the frame: frame slices and the matching patch slices."""
    h, w = img.shape
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx0 >= cx1 or cy0 >= cy1:
        return None
    return ((slice(cy0, cy1), slice(cx0, cx1)), (slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0)))


def _draw_scratch(
    img: np.ndarray, mask: np.ndarray, shape: Shape, spec: ScratchSpec, label: int, rng: np.random.Generator
) -> None:
    line = shape.polyline_px
    half = shape.width_px / 2.0
    reach = half + 2.5
    x0, y0 = (np.floor(line.min(axis=0) - reach)).astype(int)
    x1, y1 = (np.ceil(line.max(axis=0) + reach)).astype(int) + 1
    win = _window(img, x0, y0, x1, y1)
    if win is None:
        return
    dist = np.full((y1 - y0, x1 - x0), np.inf, np.float32)
    along = np.zeros_like(dist)
    left = np.zeros(dist.shape, bool)
    s0 = 0.0
    for a, b in zip(line[:-1], line[1:]):
        seg_len = float(np.hypot(*(b - a)))
        n = max(1, int(math.ceil(seg_len / _CHUNK_PX)))
        for k in range(n):
            p = a + (b - a) * (k / n)
            q = a + (b - a) * ((k + 1) / n)
            _segment_distance(dist, along, left, p - [x0, y0], q - [x0, y0], reach, s0 + seg_len * k / n)
        s0 += seg_len
    # contrast varies a little along the scratch (never below the nominal contrast)
    phases = rng.uniform(0, 2 * np.pi, 3)
    waves = rng.uniform(12.0, 60.0, 3)
    mod = sum(np.sin(along * np.float32(2 * np.pi / wl) + np.float32(ph)) for wl, ph in zip(waves, phases))
    mod = 1.0 + 0.12 * (mod / 3.0 + 1.0)
    cover = np.clip(np.minimum(dist + half, 0.5) - np.maximum(dist - half, -0.5), 0.0, 1.0)
    delta = np.float32(spec.contrast_grey) * cover * mod
    if spec.relief_grey:
        fringe = np.clip(1.0 - np.abs(dist - np.float32(half + 1.0)) / np.float32(0.9), 0.0, 1.0) * left
        delta += np.float32(spec.relief_grey) * fringe * (1.0 - cover)
    frame_sl, patch_sl = win
    img[frame_sl] += delta[patch_sl]
    inside = (dist <= max(half, 0.5))[patch_sl]
    mask[frame_sl][inside] = label


def _segment_distance(
    dist: np.ndarray,
    along: np.ndarray,
    left: np.ndarray,
    p: np.ndarray,
    q: np.ndarray,
    reach: float,
    s_start: float,
) -> None:
    """Lower `dist` to the distance from segment p-q (patch coordinates) where that is closer.

    Where it does, `along` gets the arc length of the nearest point and `left` the side.
    """
    h, w = dist.shape
    xa = int(max(0, math.floor(min(p[0], q[0]) - reach)))
    xb = int(min(w, math.ceil(max(p[0], q[0]) + reach) + 1))
    ya = int(max(0, math.floor(min(p[1], q[1]) - reach)))
    yb = int(min(h, math.ceil(max(p[1], q[1]) + reach) + 1))
    if xa >= xb or ya >= yb:
        return
    xs = np.arange(xa, xb, dtype=np.float32)[None, :]
    ys = np.arange(ya, yb, dtype=np.float32)[:, None]
    d = (q - p).astype(np.float32)
    L2 = max(float(d @ d), 1e-12)
    t = np.clip(((xs - np.float32(p[0])) * d[0] + (ys - np.float32(p[1])) * d[1]) / np.float32(L2), 0.0, 1.0)
    dd = np.hypot(xs - np.float32(p[0]) - t * d[0], ys - np.float32(p[1]) - t * d[1])
    sub = dist[ya:yb, xa:xb]
    closer = dd < sub
    sub[closer] = dd[closer]
    along[ya:yb, xa:xb][closer] = (np.float32(s_start) + t * np.float32(math.sqrt(L2)))[closer]
    cross = (xs - np.float32(p[0])) * d[1] - (ys - np.float32(p[1])) * d[0]
    left[ya:yb, xa:xb][closer] = (cross < 0)[closer]


def _coverage(poly_patch: np.ndarray, shape_hw: tuple[int, int], ss: int) -> np.ndarray:
    """Fraction of each pixel inside the polygon (patch coordinates, pixel centres at integers)."""
    h, w = shape_hw
    canvas = np.zeros((h * ss, w * ss), np.uint8)
    pts = np.round(((poly_patch + 0.5) * ss - 0.5) * 16).astype(np.int32)
    cv2.fillPoly(canvas, [pts], 255, cv2.LINE_8, shift=4)
    return cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _draw_region(
    img: np.ndarray, mask: np.ndarray, shape: Shape, spec, label: int, scene: Scene, rng: np.random.Generator
) -> None:
    poly = shape.polygon_px
    (mx, my), mr = cv2.minEnclosingCircle(poly.astype(np.float32))
    ring_px = 0.0
    ring_grey = 0.0
    if isinstance(spec, DigSpec):
        ring_px = 1.0
        ring_grey = 0.25 * abs(spec.contrast_grey) if spec.rim_grey is None else spec.rim_grey
    elif isinstance(spec, ParticleSpec) and spec.halo_grey:
        ring_px, ring_grey = 1.5, spec.halo_grey
    margin = ring_px + 3
    x0, y0 = (np.floor(poly.min(axis=0) - margin)).astype(int)
    x1, y1 = (np.ceil(poly.max(axis=0) + margin)).astype(int) + 1
    win = _window(img, x0, y0, x1, y1)
    if win is None:
        return
    hw = (y1 - y0, x1 - x0)
    ss = 8 if mr < 8 else 4 if mr < 60 else 2
    local = poly - [x0, y0]
    cover = _coverage(local, hw, ss)
    delta = np.float32(spec.contrast_grey) * cover
    if isinstance(spec, ParticleSpec) and mr > 3:  # denser in the middle, mottled, a little out of focus
        core = cv2.GaussianBlur(cover, (0, 0), max(mr / 3.0, 1.0))
        delta *= 1.0 + 0.35 * core / max(float(core.max()), 1e-6)
        if spec.texture:
            grain = cv2.GaussianBlur(rng.standard_normal(hw, dtype=np.float32), (0, 0), 1.2)
            delta *= 1.0 + np.float32(spec.texture / 0.23) * np.abs(grain)
        delta = cv2.GaussianBlur(delta, (0, 0), 0.6)
    if ring_grey:
        centre = np.array([mx - x0, my - y0])
        grown = centre + (local - centre) * ((mr + ring_px) / max(mr, 1e-6))
        delta += np.float32(ring_grey) * np.clip(_coverage(grown, hw, ss) - cover, 0.0, 1.0)
    frame_sl, patch_sl = win
    img[frame_sl] += delta[patch_sl]
    inside = cover >= 0.5
    if not inside.any():
        c = np.clip(np.round([my - y0, mx - x0]).astype(int), 0, [hw[0] - 1, hw[1] - 1])
        inside[c[0], c[1]] = True
    mask[frame_sl][inside[patch_sl]] = label


def _draw_oil(img: np.ndarray, mask: np.ndarray, shape: Shape, spec: OilSpec, label: int) -> None:
    x0, y0 = shape.origin_xy
    h, w = shape.field.shape
    win = _window(img, x0, y0, x0 + w, y0 + h)
    if win is None:
        return
    frame_sl, patch_sl = win
    img[frame_sl] += np.float32(spec.contrast_grey) * shape.field[patch_sl]
    mask[frame_sl][shape.field_mask[patch_sl]] = label


# --- truth ----------------------------------------------------------------------------------------------


def _truth(scene: Scene, defects: tuple[TruthDefect, ...], has_geometry: bool, name: str) -> Truth:
    geometry = None
    if has_geometry:
        core = scene.core_radius_px
        geometry = TruthGeometry(
            center_xy=tuple(round(v, 4) for v in scene.fiber_center_xy),
            cladding_radius_px=round(scene.cladding_radius_px, 4),
            core_radius_px=None if core is None else round(core, 4),
            um_per_px=scene.um_per_px,
        )
    ill = scene.illumination
    conditions = TruthConditions(
        variant=ill.variant,
        psf_sigma_px=round(scene.psf_sigma_px, 3),
        noise_sigma_grey=round(scene.noise_sigma_grey, 3),
        jpeg_quality=scene.jpeg_quality,
        ferrule_grey=round(ill.ferrule_grey * ill.exposure, 2),
        cladding_grey=round(ill.cladding_grey * ill.exposure, 2),
    )
    ext = ".jpg" if scene.jpeg_quality is not None else ".png"
    return Truth(
        image=f"{name}{ext}",
        mask=f"{name}.mask.png",
        width=scene.width,
        height=scene.height,
        seed=scene.seed,
        style=scene.style,
        profile=scene.profile,
        degraded=scene.degraded,
        geometry=geometry,
        defects=defects,
        conditions=conditions,
    )
