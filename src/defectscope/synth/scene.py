"""What a synthetic end face shows: a `Scene` and the defect specs it carries.

A scene is plain data that fully describes one image: frame size, illumination style, µm/px,
fiber centre, core and cladding, illumination, noise, blur, JPEG quality and a list of defect
specs. `render.render_scene` turns it into pixels, a label mask and exact ground truth; nothing
random happens there beyond the texture and sensor noise drawn from `Scene.seed`.

Defect positions and sizes are in µm, positions relative to the fiber centre with x to the
right and y down (image axes). Build scenes by hand with `make_scene`, or draw them with
`plan.random_scene`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from ..profile import Profile, load_profile
from .truth import Degradation

__all__ = [
    "Style",
    "Illumination",
    "ScratchSpec",
    "DigSpec",
    "ParticleSpec",
    "OilSpec",
    "ChipSpec",
    "DefectSpec",
    "Scene",
    "default_illumination",
    "make_scene",
]

Style = Literal["bright-ferrule", "dark-ferrule"]


@dataclass(frozen=True)
class Illumination:
    """Grey levels and light field of one image, at nominal exposure, at the fiber centre.

    Levels are grey values (0-255) before vignetting; `*_delta_grey` are relative to the
    cladding level. The cladding boundary (radius `Scene.cladding_radius_px`) is where the
    image steps to `ferrule_grey`: the bright band and the dark rim are drawn inside it, the
    halo outside it, so that after blur the steepest step stays on the boundary.
    """

    ferrule_grey: float = 192.0
    cladding_grey: float = 82.0
    core_delta_grey: float = 3.0  # core minus cladding (SM: 0-6, MM: 5-25 in magnitude)
    core_ring_grey: float = 0.0  # thin ring on the core boundary (seen on MM fibers)
    core_edge_um: float = 0.3  # softness of the core edge (graded-index MM: ~1-2 um)
    band_delta_grey: float = 28.0  # lighter band just inside the rim
    band_width_um: float = 1.2
    rim_delta_grey: float = 2.0  # thin rim at the boundary (adhesive/bevel), relative to cladding
    rim_width_um: float = 0.6  # 0.3-1.2 um, inside the boundary
    rim_ragged_grey: float = 0.0  # how much the rim's level wanders around the fiber (uneven adhesive)
    halo_grey: float = 25.0  # bright overshoot just outside the boundary, relative to ferrule
    halo_width_um: float = 0.7
    grain_grey: float = 2.0  # std of the ferrule's fine grain texture
    fiber_grain_frac: float = 0.25  # glass is smoother than zirconia
    mottle_frac: float = 0.004  # slow relative variation of the light field
    vignette_frac: float = 0.08  # relative darkening at the farthest frame corner
    vignette_center_frac: tuple[float, float] = (0.5, 0.5)  # optical axis, as fractions of width, height
    gradient_frac: tuple[float, float] = (0.0, 0.0)  # relative change of light across the frame in x, y
    border_px: tuple[int, int, int, int] = (0, 0, 0, 0)  # black grabber border: left, top, right, bottom
    border_grey: float = 10.0
    exposure: float = 1.0  # global gain; black and white frames are exposure faults
    glare_gain: float = 0.0  # extra light at the glare spot, relative (saturated frames)
    glare_xy_um: tuple[float, float] = (0.0, 0.0)  # glare spot centre, relative to the fiber centre
    glare_sigma_um: float = 60.0
    variant: str = "dimension-scope"  # free-text name of the look, recorded in the truth


@dataclass(frozen=True)
class ScratchSpec:
    """A scratch along a straight or gently bent centre line.

    start_um, end_um: end points relative to the fiber centre. bend_um: sagitta of the bend,
    the offset of the mid point from the chord (positive to the left of start->end).
    width_um is the truth size; contrast_grey is signed (negative: darker). relief_grey: a thin
    fringe of that contrast just outside its left edge (the relief look of oblique light); it is
    not part of the scratch's mask.
    """

    start_um: tuple[float, float]
    end_um: tuple[float, float]
    width_um: float
    contrast_grey: float = -30.0
    bend_um: float = 0.0
    relief_grey: float = 0.0
    note: str = ""

    @classmethod
    def chord(
        cls,
        *,
        distance_um: float,
        angle_deg: float,
        half_length_um: float,
        width_um: float,
        contrast_grey: float = -30.0,
        shift_um: float = 0.0,
        bend_um: float = 0.0,
        relief_grey: float = 0.0,
        note: str = "",
    ) -> ScratchSpec:
        """A scratch along a line `distance_um` from the fiber centre, running at `angle_deg`.

        The foot of the perpendicular from the centre sits at `shift_um` along the line; the
        scratch runs `half_length_um` to either side of it.
        """
        a = math.radians(angle_deg)
        ux, uy = math.cos(a), math.sin(a)
        nx, ny = -uy, ux
        mx, my = nx * distance_um + ux * shift_um, ny * distance_um + uy * shift_um
        return cls(
            start_um=(mx - ux * half_length_um, my - uy * half_length_um),
            end_um=(mx + ux * half_length_um, my + uy * half_length_um),
            width_um=width_um,
            contrast_grey=contrast_grey,
            bend_um=bend_um,
            relief_grey=relief_grey,
            note=note,
        )


@dataclass(frozen=True)
class DigSpec:
    """A pit: dark, roundish, with a slight bright rim. size_um: enclosing diameter of the pit."""

    center_um: tuple[float, float]
    size_um: float
    contrast_grey: float = -40.0
    rim_grey: float | None = None  # bright rim outside the pit; None: 25 % of |contrast|
    aspect: float = 1.15
    angle_deg: float = 0.0
    irregularity: float = 0.06
    shape_seed: int = 0
    note: str = ""


@dataclass(frozen=True)
class ParticleSpec:
    """Contamination: an irregular blob, mostly dark. size_um: enclosing diameter of its outline."""

    center_um: tuple[float, float]
    size_um: float
    contrast_grey: float = -45.0
    irregularity: float = 0.3
    aspect: float = 1.0
    angle_deg: float = 0.0
    halo_grey: float = 0.0  # thin defocus ring around it (sign of your choice)
    texture: float = 0.25  # relative mottling of its body (only ever darkens a dark particle further)
    shape_seed: int = 0
    note: str = ""


@dataclass(frozen=True)
class OilSpec:
    """A wet film: large, soft, low contrast (8-25 grey at its peak).

    size_um is the target enclosing diameter of the >= 50 %-of-peak region; the truth gives
    the measured one, which matches it to within a pixel or so.
    """

    center_um: tuple[float, float]
    size_um: float
    contrast_grey: float = -14.0
    irregularity: float = 0.25
    softness: float = 0.3  # Gaussian sigma of the film edge as a fraction of its radius
    shape_seed: int = 0
    note: str = ""


@dataclass(frozen=True)
class ChipSpec:
    """A chip: an irregular notch into the fiber from its cladding boundary.

    angle_deg: direction of the chip from the fiber centre (0 = +x, 90 = +y, i.e. down).
    arc_um: its length along the boundary; depth_um: how far it reaches inwards.
    """

    angle_deg: float
    arc_um: float
    depth_um: float
    contrast_grey: float = -45.0
    irregularity: float = 0.25
    shape_seed: int = 0
    note: str = ""


DefectSpec = ScratchSpec | DigSpec | ParticleSpec | OilSpec | ChipSpec


@dataclass(frozen=True)
class Scene:
    """Everything needed to render one end face deterministically.

    center_xy: fiber centre in pixels, (x, y); None means the frame centre.
    um_per_px: scale; the cladding radius in pixels is cladding_diameter_um / 2 / um_per_px.
    core_diameter_um: None draws no core.
    psf_sigma_px: Gaussian defocus; noise_sigma_grey: sensor noise std in grey levels.
    jpeg_quality: None keeps the rendered pixels; otherwise they go through a JPEG round trip.
    fiber_present: False renders a ferrule with no fiber (a degraded "no-fiber" frame).
    seed: texture and sensor noise; the same scene and seed give the same pixels.
    degraded: the label of a deliberately uninspectable frame (the truth expects UNDETERMINED).
    """

    width: int = 1152
    height: int = 864
    style: Style = "bright-ferrule"
    um_per_px: float = 0.45
    center_xy: tuple[float, float] | None = None
    cladding_diameter_um: float = 125.0
    core_diameter_um: float | None = 9.0
    illumination: Illumination = field(default_factory=Illumination)
    noise_sigma_grey: float = 2.0
    psf_sigma_px: float = 0.9
    jpeg_quality: int | None = None
    defects: tuple[DefectSpec, ...] = ()
    seed: int = 0
    profile: str = "iec-sm-upc"
    degraded: Degradation | None = None
    fiber_present: bool = True

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16:
            raise ValueError(f"Scene: frame must be at least 16x16 px, got {self.width}x{self.height}")
        if self.um_per_px <= 0:
            raise ValueError(f"Scene.um_per_px must be > 0, got {self.um_per_px}")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"Scene.jpeg_quality must be 1-100 or None, got {self.jpeg_quality}")
        if len(self.defects) > 255:
            raise ValueError(f"Scene: at most 255 defects fit the uint8 mask, got {len(self.defects)}")
        if not isinstance(self.defects, tuple):
            object.__setattr__(self, "defects", tuple(self.defects))

    @property
    def cladding_radius_px(self) -> float:
        return self.cladding_diameter_um / 2.0 / self.um_per_px

    @property
    def core_radius_px(self) -> float | None:
        return None if self.core_diameter_um is None else self.core_diameter_um / 2.0 / self.um_per_px

    @property
    def fiber_center_xy(self) -> tuple[float, float]:
        if self.center_xy is not None:
            return (float(self.center_xy[0]), float(self.center_xy[1]))
        return ((self.width - 1) / 2.0, (self.height - 1) / 2.0)

    def to_px(self, xy_um: tuple[float, float]) -> tuple[float, float]:
        """A point given in µm from the fiber centre, in frame pixels (x, y)."""
        cx, cy = self.fiber_center_xy
        return (cx + xy_um[0] / self.um_per_px, cy + xy_um[1] / self.um_per_px)


def default_illumination(style: Style, *, multimode: bool = False) -> Illumination:
    """A typical light field for `style`: bright ferrule like a dimension scope, or dark ferrule.

    multimode: give the (50 µm) core a clearly visible contrast instead of a barely visible one.
    """
    if style == "bright-ferrule":
        return Illumination(
            core_delta_grey=-12.0 if multimode else 3.0,
            core_ring_grey=6.0 if multimode else 0.0,
            core_edge_um=1.2 if multimode else 0.3,
        )
    if style == "dark-ferrule":
        return Illumination(
            ferrule_grey=34.0,
            cladding_grey=82.0,
            core_delta_grey=16.0 if multimode else 3.0,
            core_edge_um=1.2 if multimode else 0.3,
            band_delta_grey=0.0,
            rim_delta_grey=-14.0,
            rim_width_um=0.6,
            halo_grey=0.0,
            grain_grey=1.0,
            vignette_frac=0.2,
            variant="dark-ferrule",
        )
    raise ValueError(f"unknown style {style!r}; expected 'bright-ferrule' or 'dark-ferrule'")


def make_scene(
    profile: str | Profile = "iec-sm-upc",
    *,
    style: Style = "bright-ferrule",
    um_per_px: float = 0.45,
    width: int = 1152,
    height: int = 864,
    center_xy: tuple[float, float] | None = None,
    defects: tuple[DefectSpec, ...] | list[DefectSpec] = (),
    seed: int = 0,
    noise_sigma_grey: float = 2.0,
    psf_sigma_px: float = 0.9,
    jpeg_quality: int | None = None,
    illumination: Illumination | None = None,
) -> Scene:
    """A hand-built scene for `profile`'s fiber (cladding and core diameters), no randomness but `seed`.

    Example: a 3.5 µm scratch across zone B of a bright-ferrule SM fiber at 0.45 µm/px::

        scene = make_scene("iec-sm-upc", um_per_px=0.45, defects=[
            ScratchSpec.chord(distance_um=40, angle_deg=30, half_length_um=25, width_um=3.5)])
    """
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    core = prof.fiber.core_diameter_um
    ill = illumination or default_illumination(style, multimode=core is not None and core > 20)
    return Scene(
        width=width,
        height=height,
        style=style,
        um_per_px=um_per_px,
        center_xy=center_xy,
        cladding_diameter_um=prof.fiber.cladding_diameter_um,
        core_diameter_um=core,
        illumination=ill,
        noise_sigma_grey=noise_sigma_grey,
        psf_sigma_px=psf_sigma_px,
        jpeg_quality=jpeg_quality,
        defects=tuple(defects),
        seed=seed,
        profile=prof.name,
    )
