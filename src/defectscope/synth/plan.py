"""Draw random but controlled scenes: realistic looks, defects planned against a profile.

`random_scene` picks a look (dimension-scope bright ferrule, mid-grey vignetted, dark ferrule),
frame size, µm/px, centre, blur, noise and JPEG quality, then plans defects so the scene has
the verdict it was asked for under the generation profile: a PASS scene gets only defects
within the limits (or none), a FAIL scene gets at least one that breaks a rule. Some scenes
carry a deliberate borderline case (width or size just either side of a limit, or a defect
just either side of a zone boundary), named in the defect's `note`.

Every defect respects the visibility floor: scratches |contrast| x min(1, width_px) >= 12
grey, digs and particles |contrast| >= 15 (more for ones the blur would wash out), oil 8-25.
Planning uses the exact shapes the renderer draws, so the verdict it aims for is the one the
truth records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from ..judge import judge
from ..profile import Profile, ZoneRule, load_profile
from ..records import Status
from ._light import light_at
from ._shapes import footprint, shape_of, truth_defect
from .scene import ChipSpec, DefectSpec, DigSpec, Illumination, OilSpec, ParticleSpec, Scene, ScratchSpec
from .truth import Degradation, Truth, TruthDefect

__all__ = ["random_scene", "PASS_FRACTION", "DEGRADATIONS"]

PASS_FRACTION = 0.4  # share of default scenes planned to PASS under the generation profile
DEGRADATIONS: tuple[Degradation, ...] = (
    "defocus",
    "no-fiber",
    "cut-by-border",
    "black",
    "white",
    "saturated",
)

_SIZES = ((1152, 864, 0.7), (1024, 768, 0.2), (800, 600, 0.1))
_CONTACT_MARGIN_UM = 5.0
_UM_PER_PX = (0.3, 0.6)
_KIND_SIZE_UM = {"dig": (1.0, 30.0), "particle": (2.0, 60.0), "oil": (15.0, 120.0)}
_MIN_SIZE_IN_CORE_UM = 1.5
_MAX_TRIES = 40


@dataclass(frozen=True)
class _Zone:
    name: str
    r_in: float  # radii, µm
    r_out: float
    rule: ZoneRule


def random_scene(
    rng: np.random.Generator | int,
    profile: str | Profile = "iec-sm-upc",
    *,
    style: Literal["bright-ferrule", "dark-ferrule", "mixed"] = "mixed",
    degraded: Degradation | None = None,
    target: Status | None = None,
) -> Scene:
    """A random scene planned against `profile`.

    rng: a generator, or an int seed (then `Scene.seed` is that int). style: "mixed" draws
    bright-ferrule (dimension-scope or mid-grey vignetted) or dark-ferrule looks.
    degraded: one of DEGRADATIONS for an uninspectable frame (expected UNDETERMINED).
    target: Status.PASS or Status.FAIL under `profile`; None draws PASS with PASS_FRACTION.
    """
    if isinstance(rng, (int, np.integer)):
        seed = int(rng)
        rng = np.random.default_rng(seed)
    else:
        seed = int(rng.integers(0, 2**31 - 1))
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    if degraded is not None and degraded not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {degraded!r}; expected one of {', '.join(DEGRADATIONS)}")
    if style not in ("bright-ferrule", "dark-ferrule", "mixed"):
        raise ValueError(f"unknown style {style!r}; expected bright-ferrule, dark-ferrule or mixed")

    variant = _pick_variant(rng, style)
    width, height = _pick_size(rng)
    core_um = prof.fiber.core_diameter_um
    ill = _illumination(rng, variant, multimode=core_um is not None and core_um > 20)
    contact_um = max(z.outer_um for z in prof.zones) / 2.0 + _CONTACT_MARGIN_UM
    bl, bt, br, bb = ill.border_px
    usable = min(width - bl - br, height - bt - bb) - 6
    lo = max(_UM_PER_PX[0], 2 * contact_um / usable)
    um_per_px = float(rng.uniform(lo, max(lo, _UM_PER_PX[1])))
    center = _pick_center(
        rng, width, height, ill.border_px, contact_um / um_per_px, prof, um_per_px, degraded
    )
    scene = Scene(
        width=width,
        height=height,
        style="dark-ferrule" if variant == "dark-ferrule" else "bright-ferrule",
        um_per_px=round(um_per_px, 5),
        center_xy=center,
        cladding_diameter_um=prof.fiber.cladding_diameter_um,
        core_diameter_um=core_um,
        illumination=ill,
        noise_sigma_grey=round(float(rng.uniform(1.5, 3.0)), 3),
        psf_sigma_px=round(0.6 + 0.7 * float(rng.random()) ** 2.5, 3),  # mostly sharp
        jpeg_quality=int(rng.integers(80, 96)),
        seed=seed,
        profile=prof.name,
        degraded=degraded,
    )
    if degraded is not None:
        scene = _degrade(rng, scene, degraded)
        if degraded in ("defocus", "cut-by-border", "saturated"):
            n = int(rng.integers(0, 4))
            scene = replace(scene, defects=_Planner(rng, scene, prof).benign(n))
        return scene
    if target is None:
        target = Status.PASS if rng.random() < PASS_FRACTION else Status.FAIL
    if target not in (Status.PASS, Status.FAIL):
        raise ValueError(f"target must be PASS, FAIL or None, got {target!r}")
    return replace(scene, defects=_Planner(rng, scene, prof).plan(target))


# --- look ---------------------------------------------------------------------------------------------


def _pick_variant(rng: np.random.Generator, style: str) -> str:
    if style == "dark-ferrule":
        return "dark-ferrule"
    if style == "bright-ferrule":
        return "dimension-scope" if rng.random() < 0.55 else "mid-grey-vignetted"
    x = rng.random()
    return "dimension-scope" if x < 0.42 else "mid-grey-vignetted" if x < 0.75 else "dark-ferrule"


def _pick_size(rng: np.random.Generator) -> tuple[int, int]:
    x, acc = rng.random(), 0.0
    for w, h, p in _SIZES:
        acc += p
        if x < acc:
            return w, h
    return _SIZES[0][:2]


def _illumination(rng: np.random.Generator, variant: str, *, multimode: bool) -> Illumination:
    u = rng.uniform
    if multimode:
        core_delta = float(u(5, 25) * rng.choice([-1.0, 1.0], p=[0.45, 0.55]))
        core_ring = float(u(0, 8)) if variant == "dimension-scope" else 0.0
        core_edge = float(u(0.8, 2.5))
    else:
        core_delta, core_ring, core_edge = float(u(-6, 6)), 0.0, float(u(0.2, 0.6))
    common = dict(
        core_delta_grey=round(core_delta, 2),
        core_ring_grey=round(core_ring, 2),
        core_edge_um=round(core_edge, 3),
        rim_width_um=round(float(u(0.3, 1.2)), 3),
        vignette_center_frac=(round(float(u(0.4, 0.6)), 3), round(float(u(0.4, 0.6)), 3)),
        gradient_frac=(round(float(u(-0.06, 0.06)), 4), round(float(u(-0.06, 0.06)), 4)),
        mottle_frac=round(float(u(0.002, 0.006)), 4),
        variant=variant,
    )
    if variant == "dimension-scope":
        ferrule = float(u(180, 205))
        cladding = float(u(64, 95))
        return Illumination(
            ferrule_grey=round(ferrule, 2),
            cladding_grey=round(cladding, 2),
            band_delta_grey=round(float(u(15, 40)) if rng.random() < 0.75 else 0.0, 2),
            band_width_um=round(float(u(0.8, 1.6)), 3),
            rim_delta_grey=round(max(float(u(-50, 8)), 15.0 - cladding), 2),
            rim_ragged_grey=round(float(u(0, 18)), 2),
            halo_grey=round(float(u(12, 40)), 2),
            halo_width_um=round(float(u(0.4, 0.9)), 3),
            grain_grey=round(float(u(1.2, 2.5)), 3),
            vignette_frac=round(float(u(0.04, 0.15)), 3),
            **common,
        )
    if variant == "mid-grey-vignetted":
        ferrule = float(u(140, 180))
        cladding = float(u(85, min(125, ferrule - 35)))
        border = tuple(int(rng.integers(lo, hi)) for lo, hi in ((4, 15), (0, 7), (0, 10), (0, 5)))
        return Illumination(
            ferrule_grey=round(ferrule, 2),
            cladding_grey=round(cladding, 2),
            band_delta_grey=round(float(u(0, 15)), 2),
            band_width_um=round(float(u(0.6, 1.4)), 3),
            rim_delta_grey=round(float(u(-12, 4)), 2),
            halo_grey=round(float(u(0, 20)), 2),
            halo_width_um=round(float(u(0.4, 0.9)), 3),
            grain_grey=round(float(u(1.5, 3.0)), 3),
            vignette_frac=round(float(u(0.25, 0.45)), 3),
            border_px=border,
            border_grey=round(float(u(2, 20)), 2),
            **common,
        )
    ferrule = float(u(18, 50))
    cladding = float(u(ferrule + 30, min(ferrule + 70, 110)))
    border = (int(rng.integers(0, 12)), int(rng.integers(0, 5)), 0, 0) if rng.random() < 0.5 else (0, 0, 0, 0)
    return Illumination(
        ferrule_grey=round(ferrule, 2),
        cladding_grey=round(cladding, 2),
        band_delta_grey=round(float(u(0, 8)), 2),
        band_width_um=round(float(u(0.6, 1.2)), 3),
        rim_delta_grey=round(-float(u(0, 0.15)) * (cladding - ferrule), 2),
        halo_grey=0.0,
        halo_width_um=0.5,
        grain_grey=round(float(u(0.7, 1.5)), 3),
        fiber_grain_frac=0.5,
        vignette_frac=round(float(u(0.1, 0.35)), 3),
        border_px=border,
        border_grey=2.0,
        **common,
    )


def _pick_center(
    rng: np.random.Generator,
    width: int,
    height: int,
    border: tuple[int, int, int, int],
    contact_px: float,
    prof: Profile,
    um_per_px: float,
    degraded: Degradation | None,
) -> tuple[float, float]:
    bl, bt, br, bb = border
    lo_x, hi_x = bl + contact_px + 2, width - br - contact_px - 3
    lo_y, hi_y = bt + contact_px + 2, height - bb - contact_px - 3
    if degraded == "cut-by-border":
        fiber_px = prof.fiber.cladding_diameter_um / 2 / um_per_px
        d = float(rng.uniform(max(0.3 * contact_px, 0.6 * fiber_px), 0.85 * contact_px))
        side = int(rng.integers(0, 4))
        x = float(rng.uniform(min(lo_x, hi_x), max(lo_x, hi_x)))
        y = float(rng.uniform(min(lo_y, hi_y), max(lo_y, hi_y)))
        if side == 0:
            x = bl + d
        elif side == 1:
            x = width - br - 1 - d
        elif side == 2:
            y = bt + d
        else:
            y = height - bb - 1 - d
        return (round(x, 3), round(y, 3))

    def pick(lo: float, hi: float) -> float:
        if hi <= lo:
            return (lo + hi) / 2
        mid, half = (lo + hi) / 2, (hi - lo) / 2
        return float(np.clip(mid + rng.normal(0, 0.45) * half, lo, hi))

    return (round(pick(lo_x, hi_x), 3), round(pick(lo_y, hi_y), 3))


def _degrade(rng: np.random.Generator, scene: Scene, kind: Degradation) -> Scene:
    ill = scene.illumination
    lo_level = min(ill.ferrule_grey, ill.cladding_grey + min(0.0, ill.core_delta_grey))
    hi_level = max(ill.ferrule_grey, ill.cladding_grey + max(0.0, ill.core_delta_grey))
    if kind == "defocus":
        return replace(scene, psf_sigma_px=round(float(rng.uniform(6, 12)), 3))
    if kind == "no-fiber":
        return replace(scene, fiber_present=False)
    if kind == "black":
        exposure = float(rng.uniform(0.005, 6.0 / hi_level))  # the brightest level ends below ~6 grey
        return replace(scene, illumination=replace(ill, exposure=round(exposure, 4)))
    if kind == "white":
        gain = 270.0 / lo_level * float(rng.uniform(1.1, 1.6))
        return replace(scene, illumination=replace(ill, exposure=round(gain, 4)))
    if kind == "saturated":
        gain = 270.0 / ill.cladding_grey * float(rng.uniform(1.3, 2.2)) - 1.0
        a = rng.uniform(0, 2 * np.pi)
        off = rng.uniform(0, 30)
        glare_xy = (round(off * math.cos(a), 3), round(off * math.sin(a), 3))
        return replace(
            scene,
            illumination=replace(
                ill,
                glare_gain=round(gain, 4),
                glare_xy_um=glare_xy,
                glare_sigma_um=round(float(rng.uniform(45, 90)), 3),
            ),
        )
    return scene  # cut-by-border: placed by _pick_center


# --- defect planning -------------------------------------------------------------------------------------


class _Planner:
    """Adds defects one at a time, keeping the verdict under the generation profile in check."""

    def __init__(self, rng: np.random.Generator, scene: Scene, prof: Profile) -> None:
        self.rng = rng
        self.scene = scene
        self.prof = prof
        self.zones = [_Zone(z.name, z.inner_um / 2, z.outer_um / 2, z) for z in prof.zones]
        self.rb = scene.cladding_diameter_um / 2
        self.contact = self.zones[-1].r_out
        self.specs: list[DefectSpec] = []
        self.truths: list[TruthDefect] = []
        self.circles: list[tuple[np.ndarray, np.ndarray]] = []

    # public moves

    def plan(self, target: Status) -> tuple[DefectSpec, ...]:
        rng = self.rng
        clean = target == Status.PASS and rng.random() < 0.3
        if not clean:
            if rng.random() < 0.35:
                self._borderline(target)
            if rng.random() < 0.2:
                self._debris(int(rng.integers(5, 20)))
            n = int(min(rng.poisson(2.2 if target == Status.PASS else 1.6), 9))
            self.benign(n)
        if target == Status.FAIL and self._status() != Status.FAIL:
            for _ in range(_MAX_TRIES):
                if self._violation():
                    break
            else:  # pragma: no cover - every shipped profile has a breakable rule
                raise RuntimeError(f"could not plan a failing scene for profile {self.prof.name}")
            if rng.random() < 0.15:
                self._violation()
        return tuple(self.specs)

    def benign(self, n: int) -> tuple[DefectSpec, ...]:
        for _ in range(n):
            for _ in range(_MAX_TRIES):
                spec = self._benign_one()
                if spec is not None and self._try_add(spec, want=Status.PASS):
                    break
        return tuple(self.specs)

    # verdict and bookkeeping

    def _status(self, extra: list[TruthDefect] = ()) -> Status:
        truth = Truth(
            image="-",
            width=self.scene.width,
            height=self.scene.height,
            seed=0,
            style=self.scene.style,
            profile=self.prof.name,
            defects=tuple(self.truths) + tuple(extra),
        )
        return judge(truth.defects_for(self.prof), self.prof).status

    def _try_add(self, spec: DefectSpec, *, want: Status | None) -> bool:
        """Add `spec` if it fits in the frame, overlaps nothing and leaves the verdict at `want`."""
        shape = shape_of(spec, self.scene)
        if not self._in_frame(shape):
            return False
        centres, radii = footprint(shape)
        for c2, r2 in self.circles:
            d = np.hypot(centres[:, None, 0] - c2[None, :, 0], centres[:, None, 1] - c2[None, :, 1])
            if (d < radii[:, None] + r2[None, :] + 3.0).any():
                return False
        td = truth_defect(spec, shape, len(self.truths) + 1, self.scene)
        if want is not None and self._status([td]) != want:
            return False
        self.specs.append(spec)
        self.truths.append(td)
        self.circles.append((centres, radii))
        return True

    def _in_frame(self, shape) -> bool:
        pts = shape.polyline_px if len(shape.polyline_px) else shape.polygon_px
        pad = shape.width_px / 2 + 3
        if shape.field is not None:
            ys, xs = np.nonzero(shape.field > 0.05)
            pts = np.stack([xs + shape.origin_xy[0], ys + shape.origin_xy[1]], axis=1)
            pad = 1
        bl, bt, br, bb = self.scene.illumination.border_px
        return bool(
            pts[:, 0].min() - pad >= bl
            and pts[:, 1].min() - pad >= bt
            and pts[:, 0].max() + pad <= self.scene.width - 1 - br
            and pts[:, 1].max() + pad <= self.scene.height - 1 - bb
        )

    # levels and contrast

    def _level(self, r_um: float) -> float:
        ill = self.scene.illumination
        if r_um >= self.rb:
            return ill.ferrule_grey
        core = self.scene.core_diameter_um
        return ill.cladding_grey + (ill.core_delta_grey if core and r_um < core / 2 else 0.0)

    def _light(self, xy_um: tuple[float, float]) -> float:
        x, y = self.scene.to_px(xy_um)
        return float(light_at(self.scene, np.array([x]), np.array([y]))[0])

    def _contrast(
        self, *, levels: list[float], floor: float, light: float, dark_p: float, cap: float = 70.0
    ) -> float | None:
        """Signed contrast at nominal light whose visible size (times `light`) is >= floor.

        None when neither sign has room between the local grey levels and black or white.
        """
        light = max(light, 0.3)
        floor = floor / light * 1.05
        room_dark = min(levels) - 8.0
        room_bright = 248.0 / light - max(levels)
        signs = [-1.0, 1.0] if self.rng.random() < dark_p else [1.0, -1.0]
        for s in signs:
            room = min(room_dark if s < 0 else room_bright, cap)
            if room >= floor:
                return round(
                    s * float(self.rng.uniform(floor, max(floor, room)))
                    if room > floor * 1.6
                    else s * floor * 1.05,
                    2,
                )
        return None

    def _scratch_floor(self, width_um: float) -> float:
        w_px = width_um / self.scene.um_per_px
        sigma = self.scene.psf_sigma_px
        att = math.erf(w_px / (2 * math.sqrt(2) * sigma))
        return max(12.0 / min(1.0, w_px), 8.0 / max(att, 0.05))

    def _region_floor(self, size_um: float) -> float:
        d_px = size_um / self.scene.um_per_px
        sigma = self.scene.psf_sigma_px
        att = 1.0 - math.exp(-d_px * d_px / (8 * sigma * sigma))
        return max(18.0, 14.0 / max(att, 0.05))

    def _dark_p(self, kind: str, r_um: float) -> float:
        dark_style = self.scene.style == "dark-ferrule"
        on_ferrule = r_um >= self.rb
        if kind == "scratch":
            return 0.5 if dark_style else 0.8
        if kind == "particle":
            return (0.3 if on_ferrule else 0.6) if dark_style else 0.85
        if kind == "oil":
            return 0.4 if dark_style else 0.8
        return 1.0

    # specs

    def _scratch(
        self,
        *,
        distance_um: float,
        width_um: float,
        half_length_um: float,
        shift_um: float = 0.0,
        bend: bool | None = None,
        note: str = "",
    ) -> ScratchSpec | None:
        rng = self.rng
        angle = float(rng.uniform(0, 360))
        bend_um = 0.0
        if bend if bend is not None else rng.random() < 0.45:
            bend_um = float(rng.uniform(-1, 1)) * 0.04 * 2 * half_length_um
        a = math.radians(angle)
        ux, uy = math.cos(a), math.sin(a)
        nx, ny = -uy, ux
        mx, my = nx * distance_um + ux * shift_um, ny * distance_um + uy * shift_um
        t0, t1 = self._clip_line((mx, my), (ux, uy), -half_length_um, half_length_um)
        if t1 - t0 < 6.0:
            return None
        start, end = (mx + ux * t0, my + uy * t0), (mx + ux * t1, my + uy * t1)
        ts = np.linspace(t0, t1, 25)
        rs = [math.hypot(mx + ux * t, my + uy * t) for t in ts]
        levels = [self._level(r) for r in rs]
        cx, cy = self.scene.fiber_center_xy
        u = self.scene.um_per_px
        light = float(light_at(self.scene, cx + (mx + ux * ts) / u, cy + (my + uy * ts) / u).min())
        c = self._contrast(
            levels=levels,
            floor=self._scratch_floor(width_um),
            light=light,
            dark_p=self._dark_p("scratch", min(rs)),
            cap=55.0,
        )
        if c is None:
            return None
        relief = round(-0.35 * c * float(rng.uniform(0.6, 1.0)), 2) if rng.random() < 0.35 else 0.0
        return ScratchSpec(
            start_um=_r(start),
            end_um=_r(end),
            width_um=round(width_um, 3),
            contrast_grey=c,
            bend_um=round(bend_um, 3),
            relief_grey=relief,
            note=note,
        )

    def _clip_line(self, p, d, t0: float, t1: float) -> tuple[float, float]:
        """Clip p + t d, t in [t0, t1] (µm from the fiber centre) to the frame inside its border."""
        sc = self.scene
        u = sc.um_per_px
        cx, cy = sc.fiber_center_xy
        bl, bt, br, bb = sc.illumination.border_px
        lo = ((bl + 6 - cx) * u, (bt + 6 - cy) * u)
        hi = ((sc.width - 1 - br - 6 - cx) * u, (sc.height - 1 - bb - 6 - cy) * u)
        for k in range(2):
            if abs(d[k]) < 1e-12:
                if not lo[k] <= p[k] <= hi[k]:
                    return (0.0, 0.0)
                continue
            a, b = (lo[k] - p[k]) / d[k], (hi[k] - p[k]) / d[k]
            t0, t1 = max(t0, min(a, b)), min(t1, max(a, b))
        return (t0, t1)

    def _blob(self, kind: str, *, center_um, size_um: float, note: str = "") -> DefectSpec | None:
        rng = self.rng
        r = math.hypot(*center_um)
        levels = [self._level(max(0.0, r - size_um / 2)), self._level(r), self._level(r + size_um / 2)]
        light = self._light(center_um)
        seed = int(rng.integers(0, 2**31 - 1))
        if kind == "oil":
            c = self._contrast(levels=levels, floor=8.0, light=light, dark_p=self._dark_p("oil", r), cap=25.0)
            if c is None or abs(c) * light > 25.0:
                return None
            return OilSpec(
                center_um=_r(center_um),
                size_um=round(size_um, 3),
                contrast_grey=c,
                irregularity=round(float(rng.uniform(0.1, 0.35)), 3),
                softness=round(float(rng.uniform(0.2, 0.4)), 3),
                shape_seed=seed,
                note=note,
            )
        c = self._contrast(
            levels=levels,
            floor=self._region_floor(size_um),
            light=light,
            dark_p=self._dark_p(kind, r),
            cap=75.0,
        )
        if c is None:
            return None
        if kind == "dig":
            return DigSpec(
                center_um=_r(center_um),
                size_um=round(size_um, 3),
                contrast_grey=c,
                aspect=round(float(rng.uniform(1.0, 1.4)), 3),
                angle_deg=round(float(rng.uniform(0, 180)), 2),
                irregularity=round(float(rng.uniform(0.02, 0.1)), 3),
                shape_seed=seed,
                note=note,
            )
        small = size_um / self.scene.um_per_px < 20  # a few pixels: no room for thin tips
        return ParticleSpec(
            center_um=_r(center_um),
            size_um=round(size_um, 3),
            contrast_grey=c,
            irregularity=round(float(rng.uniform(0.1, 0.25 if small else 0.45)), 3),
            aspect=round(float(rng.uniform(1.0, 1.3 if small else 1.8)), 3),
            angle_deg=round(float(rng.uniform(0, 180)), 2),
            halo_grey=round(-0.2 * c, 2) if rng.random() < 0.3 else 0.0,
            texture=round(float(rng.uniform(0.1, 0.4)), 3),
            shape_seed=seed,
            note=note,
        )

    def _chip(self, *, depth_um: float, arc_um: float, note: str = "") -> ChipSpec | None:
        ill = self.scene.illumination
        room = ill.cladding_grey - 8.0
        if self.scene.style == "dark-ferrule":
            room = min(room, (ill.cladding_grey - ill.ferrule_grey) * 0.95)
        floor = max(15.0, self._region_floor(min(depth_um, arc_um)))
        if room < floor:
            return None
        c = -float(self.rng.uniform(floor, max(floor, min(room, 65.0))))
        return ChipSpec(
            angle_deg=round(float(self.rng.uniform(0, 360)), 2),
            arc_um=round(arc_um, 3),
            depth_um=round(depth_um, 3),
            contrast_grey=round(c, 2),
            irregularity=round(float(self.rng.uniform(0.1, 0.4)), 3),
            shape_seed=int(self.rng.integers(0, 2**31 - 1)),
            note=note,
        )

    def _polar(self, r_um: float) -> tuple[float, float]:
        a = float(self.rng.uniform(0, 2 * math.pi))
        return (r_um * math.cos(a), r_um * math.sin(a))

    # benign defects: within every limit they touch

    def _benign_one(self) -> DefectSpec | None:
        rng = self.rng
        kind = rng.choice(["scratch", "dig", "particle", "oil", "chip"], p=[0.28, 0.22, 0.32, 0.08, 0.10])
        if kind == "scratch":
            return self._benign_scratch()
        if kind == "chip":
            return self._benign_chip()
        zone = None if kind == "oil" and rng.random() < 0.6 else self._pick_zone()
        lo, hi = _KIND_SIZE_UM[kind]
        if zone is None:  # outside the contact zone: anything goes
            size = float(rng.uniform(lo, min(hi, 40.0)))
            r = float(rng.uniform(self.contact + size / 2 + 1, self.contact + size / 2 + 60))
            return self._blob(kind, center_um=self._polar(r), size_um=size)
        size = self._allowed_size(zone, lo, hi)
        if size is None:
            return None
        if zone.r_in < 1e-9 and kind in ("dig", "particle"):
            size = max(size, _MIN_SIZE_IN_CORE_UM)
        return self._blob(kind, center_um=self._polar(self._radius_in(zone, size)), size_um=size)

    def _pick_zone(self) -> _Zone | None:
        """A zone for a benign region defect, or None for outside the contact zone."""
        w = []
        for i, z in enumerate(self.zones):
            if i == 0:
                w.append(0.06)
            elif i == len(self.zones) - 1:
                w.append(0.40)
            else:
                w.append(0.12 if z.r_out - z.r_in < 15.0 else 0.30)
        w.append(0.15)
        p = np.array(w) / sum(w)
        i = int(self.rng.choice(len(p), p=p))
        return None if i == len(self.zones) else self.zones[i]

    def _allowed_size(self, zone: _Zone, lo: float, hi: float) -> float | None:
        rule = zone.rule.defects
        rng = self.rng
        if rule == "unlimited":
            width = zone.r_out - zone.r_in
            return float(rng.uniform(lo, max(lo, min(hi, 1.5 * width, 25.0))))
        bands = [b for b in rule if b.max_count != 0]
        if not bands:
            return None
        limits = [b.limit_um for b in rule]
        i = int(rng.choice(len(bands), p=_first_heavy(len(bands))))
        band = bands[i]
        k = rule.index(band)
        b_lo = limits[k - 1] if k > 0 else 0.0
        b_hi = band.limit_um - (0.2 if band.below_um is not None else 0.0)
        a, b = max(lo, b_lo + 0.2), min(hi, b_hi - 0.05)
        if b <= a:
            return None
        return float(rng.uniform(a, b))

    def _radius_in(self, zone: _Zone, size: float) -> float:
        """A centre radius that keeps a defect of `size` from touching any zone inside `zone`."""
        lo = zone.r_in + size / 2 + 0.4 if zone.r_in > 0 else 0.0
        hi = zone.r_out - size / 2 - 0.4
        if hi <= lo:
            return lo
        return float(self.rng.uniform(lo, hi))

    def _benign_scratch(self) -> ScratchSpec | None:
        rng = self.rng
        forbidden = [
            z
            for z in self.zones
            if z.rule.scratches != "unlimited" and not any(b.max_count != 0 for b in z.rule.scratches)
        ]
        d_min = max((z.r_out for z in forbidden), default=0.0) + 0.5
        if rng.random() < 0.85:
            d = float(rng.uniform(d_min + 4.0, max(d_min + 5.0, self.contact * 1.05)))
        else:
            d = float(rng.uniform(d_min + 4.0, d_min + 15.0))
        limit = 8.0
        for z in self.zones:
            if d < z.r_out and z.rule.scratches != "unlimited":
                admitted = [b.limit_um for b in z.rule.scratches if b.max_count != 0]
                limit = min(limit, max(admitted, default=0.0))
        if limit < 0.6:
            return None
        width = 0.5 + (limit - 0.55) * float(rng.random()) ** 1.6
        d = max(d, d_min + width / 2 + 0.5)
        return self._scratch(
            distance_um=d,
            width_um=width,
            half_length_um=float(rng.uniform(12, 160)),
            shift_um=float(rng.normal(0, 30)),
        )

    def _benign_chip(self) -> ChipSpec | None:
        strict = [z for z in self.zones if z.r_out <= self.rb and z.rule.defects != "unlimited"]
        max_depth = self.rb - max((z.r_out for z in strict), default=0.0) - 0.3
        if max_depth < 1.0:
            return None
        depth = float(self.rng.uniform(1.0, min(max_depth, 10.0)))
        return self._chip(depth_um=depth, arc_um=float(self.rng.uniform(max(3.0, depth), 25.0)))

    def _debris(self, n: int) -> None:
        """Many small particles on the ferrule, as on a connector that was never cleaned."""
        ferrule_zones = [z for z in self.zones if z.r_in >= self.rb]
        for _ in range(n):
            for _ in range(8):
                zone = ferrule_zones[-1] if ferrule_zones and self.rng.random() < 0.7 else None
                if zone is not None:
                    size = self._allowed_size(zone, 2.0, 8.0)
                    if size is None:
                        continue
                    r = self._radius_in(zone, size)
                else:
                    size = float(self.rng.uniform(2.0, 8.0))
                    r = float(self.rng.uniform(self.contact + size / 2 + 1, self.contact + 70))
                spec = self._blob("particle", center_um=self._polar(r), size_um=size)
                if spec is not None and self._try_add(spec, want=Status.PASS):
                    break

    # violations: at least one broken rule

    def _violation(self) -> bool:
        rng = self.rng
        modes = []
        for z in self.zones:
            sr, dr = z.rule.scratches, z.rule.defects
            if sr == []:
                modes.append(("scratch-any", z, 0.0, 0.10))
            elif sr != "unlimited":
                top = max(b.limit_um for b in sr)
                if top < 7.5:
                    modes.append(("scratch-wide", z, top, 0.30))
            if dr == []:
                modes.append(("defect-any", z, 0.0, 0.10))
            elif dr != "unlimited":
                modes.append(("defect-big", z, max(b.limit_um for b in dr), 0.45))
                for i, b in enumerate(dr):
                    if b.max_count:
                        modes.append((f"count-{i}", z, b.limit_um, 0.05))
        if not modes:
            return False
        p = np.array([m[3] for m in modes])
        mode, zone, limit, _ = modes[int(rng.choice(len(modes), p=p / p.sum()))]
        for _ in range(_MAX_TRIES):
            if mode.startswith("count-"):
                if self._count_violation(zone, int(mode.split("-")[1])):
                    return True
                break
            spec = self._violating_spec(mode, zone, limit)
            if spec is not None and self._try_add(spec, want=Status.FAIL):
                return True
        return False

    def _violating_spec(self, mode: str, zone: _Zone, limit: float) -> DefectSpec | None:
        rng = self.rng
        if mode in ("scratch-any", "scratch-wide"):
            width = (
                float(rng.uniform(0.5, 3.0))
                if mode == "scratch-any"
                else float(rng.uniform(limit + 0.3, min(8.0, limit + 4.0)))
            )
            d = float(rng.uniform(max(0.0, zone.r_in - 3.0), zone.r_out - 1.0))
            half = float(rng.uniform(max(10.0, math.sqrt(max(zone.r_in**2 - d**2, 0.0)) + 5), 150))
            return self._scratch(
                distance_um=d, width_um=width, half_length_um=half, shift_um=float(rng.normal(0, 5))
            )
        if mode == "defect-any":
            kind = "dig" if rng.random() < 0.5 else "particle"
            size = float(rng.uniform(_MIN_SIZE_IN_CORE_UM, min(8.0, 2 * zone.r_out)))
            centre = self._polar(self._radius_in(zone, min(size, zone.r_out)))
            return self._blob(kind, center_um=centre, size_um=size)
        # defect-big
        options = ["particle", "particle", "dig", "oil"]
        if zone.r_out > self.rb - 10.0 and zone.r_in < self.rb:
            options += ["chip"]
        kind = str(rng.choice(options))
        if kind == "chip":
            depth = float(rng.uniform(max(1.0, self.rb - zone.r_out + 0.5), min(12.0, self.rb - zone.r_in)))
            arc = float(rng.uniform(max(limit + 1.0, depth), max(limit + 1.5, 30.0)))
            return self._chip(depth_um=depth, arc_um=arc)
        lo, hi = _KIND_SIZE_UM[kind]
        lo = max(lo, limit + 0.4)
        hi = min(hi, max(limit * 3.0, lo + 5.0))
        if hi <= lo:
            return None
        size = float(rng.uniform(lo, hi))
        return self._blob(kind, center_um=self._polar(self._radius_in(zone, size)), size_um=size)

    def _count_violation(self, zone: _Zone, band_index: int) -> bool:
        rule = zone.rule.defects
        band = rule[band_index]
        lo_limit = rule[band_index - 1].limit_um if band_index > 0 else 0.0
        hi = band.limit_um - (0.2 if band.below_um is not None else 0.0)
        lo = max(lo_limit + 0.2, 1.0)
        if hi <= lo:
            return False
        added = 0
        for _ in range((band.max_count + 1) * 6):
            size = float(self.rng.uniform(lo, hi))
            spec = self._blob("dig", center_um=self._polar(self._radius_in(zone, size)), size_um=size)
            if spec is not None and self._try_add(spec, want=None):
                added += 1
                if self._status() == Status.FAIL:
                    return True
        return added > 0 and self._status() == Status.FAIL

    # borderline cases

    def _borderline(self, target: Status) -> None:
        moves = [self._border_scratch_width, self._border_defect_size, self._border_zone_edge]
        for i in self.rng.permutation(len(moves)):
            if moves[i](target):
                return

    def _border_scratch_width(self, target: Status) -> bool:
        rng = self.rng
        zones = [
            z
            for z in self.zones
            if z.rule.scratches not in ("unlimited", [])
            and z.r_in > 0
            and max(b.limit_um for b in z.rule.scratches) < 7.5
        ]
        if not zones:
            return False
        z = zones[int(rng.integers(len(zones)))]
        limit = max(b.limit_um for b in z.rule.scratches)
        width = limit - 0.5 if target == Status.PASS else limit + 0.5
        for _ in range(_MAX_TRIES):
            d = float(rng.uniform(z.r_in + width / 2 + 1.0, z.r_out - 3.0))
            reach = math.sqrt(max((z.r_out - width / 2 - 1.0) ** 2 - d * d, 0.0))
            if reach < 6.0:
                continue
            note = f"borderline: {width:g} um scratch in {z.name} (limit {limit:g} um)"
            half = float(rng.uniform(0.5, 0.95)) * reach
            spec = self._scratch(distance_um=d, width_um=width, half_length_um=half, note=note)
            if spec is not None and self._try_add(spec, want=target if target == Status.PASS else None):
                return True
        return False

    def _border_defect_size(self, target: Status) -> bool:
        rng = self.rng
        zones = [z for z in self.zones if z.rule.defects not in ("unlimited", [])]
        if not zones:
            return False
        z = zones[int(rng.integers(len(zones)))]
        limit = max(b.limit_um for b in z.rule.defects)
        step = 1.0 if limit <= 6 else 2.0
        size = limit - step if target == Status.PASS else limit + step
        kind = "dig" if z.r_out <= self.rb else "particle"
        name = "dig" if kind == "dig" else "particle"
        note = f"borderline: {size:g} um {name} in {z.name} (limit {limit:g} um)"
        for _ in range(_MAX_TRIES):
            spec = self._blob(kind, center_um=self._polar(self._radius_in(z, size)), size_um=size, note=note)
            if spec is not None and self._try_add(spec, want=target if target == Status.PASS else None):
                return True
        return False

    def _border_zone_edge(self, target: Status) -> bool:
        """A defect just inside or just outside a zone boundary, sized so the side decides the verdict."""
        rng = self.rng
        bounds = [(self.zones[i], self.zones[i + 1]) for i in range(len(self.zones) - 1)]
        bounds.append((self.zones[-1], None))
        for i in rng.permutation(len(bounds)):
            inner, outer = bounds[i]
            b = inner.r_out
            for size in (3.0, 4.0, 6.0, 8.0, 12.0, 14.0):
                kind = "dig" if b <= self.rb and size <= 8 else "particle"
                delta = float(rng.uniform(0.3, 1.0))
                sides = {}
                for side, gap in (("inside", -delta), ("outside", delta)):
                    spec = self._placed_blob(kind, boundary=b, gap=gap, size=size)
                    if spec is None:
                        break
                    td = truth_defect(spec, shape_of(spec, self.scene), 1, self.scene)
                    alone = Truth(
                        image="-",
                        width=1,
                        height=1,
                        seed=0,
                        style=self.scene.style,
                        profile=self.prof.name,
                        defects=(td,),
                    )
                    sides[side] = (spec, judge(alone.defects_for(self.prof), self.prof).status)
                if len(sides) < 2 or sides["inside"][1] == sides["outside"][1]:
                    continue
                side = next(s for s, (_, st) in sides.items() if st == target)
                spec = sides[side][0]
                where = (
                    f"zone {inner.name}"
                    if side == "inside"
                    else (f"zone {inner.name}, in {outer.name}" if outer is not None else "the contact zone")
                )
                note = f"borderline: {size:g} um {kind} {delta:.1f} um {side} {where}"
                spec = replace(spec, note=note)
                if self._try_add(spec, want=target if target == Status.PASS else None):
                    return True
        return False

    def _placed_blob(self, kind: str, *, boundary: float, gap: float, size: float) -> DefectSpec | None:
        """A blob whose nearest point to the fiber centre is `gap` µm outside `boundary` (< 0: inside)."""
        spec = self._blob(kind, center_um=self._polar(boundary + gap + size / 2), size_um=size)
        if spec is None:
            return None
        for _ in range(3):
            near = truth_defect(spec, shape_of(spec, self.scene), 1, self.scene).radial_extent_um[0]
            err = boundary + gap - near
            if abs(err) < 0.02:
                break
            cx, cy = spec.center_um
            r = math.hypot(cx, cy)
            spec = replace(spec, center_um=_r((cx * (r + err) / r, cy * (r + err) / r)))
        return spec


def _first_heavy(n: int) -> np.ndarray:
    p = np.array([2.0**-i for i in range(n)])
    return p / p.sum()


def _r(p) -> tuple[float, float]:
    return (round(float(p[0]), 3), round(float(p[1]), 3))
