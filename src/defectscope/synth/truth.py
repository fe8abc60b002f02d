"""Ground truth for one synthetic end face: exact geometry, every defect, expected verdicts.

Written by the generator as ``<stem>.truth.json`` next to ``<stem>.jpg`` (``.png`` when rendered
without JPEG) and its defect mask ``<stem>.mask.png``; read by the evaluator and by tests. Pixel
coordinates are (x, y) in the image; radial extents are in µm from the fiber centre, so zones can
be derived for any profile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import TruthFormatError
from ..judge import strictest_zone
from ..profile import Profile
from ..records import Defect, DefectKind, Status

__all__ = [
    "TRUTH_SCHEMA",
    "TruthGeometry",
    "TruthDefect",
    "TruthConditions",
    "ExpectedVerdict",
    "Truth",
    "read_truth",
    "zones_touched",
]

TRUTH_SCHEMA = "defectscope.truth/1"

Degradation = Literal["defocus", "no-fiber", "cut-by-border", "black", "white", "saturated"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TruthGeometry(_Model):
    center_xy: tuple[float, float]
    cladding_radius_px: float = Field(gt=0)  # the fiber/ferrule boundary
    core_radius_px: float | None = None
    um_per_px: float = Field(gt=0)
    pixel_aspect: float = 1.0


class TruthDefect(_Model):
    id: int = Field(ge=1)
    kind: DefectKind
    centroid_xy: tuple[float, float]  # scratches: the midpoint along the polyline
    size_um: float = Field(
        ge=0
    )  # scratch: width; others: smallest enclosing circle diameter of the drawn shape
    length_um: float | None = None  # scratches only
    radial_extent_um: tuple[float, float]  # nearest and farthest distance of the defect from the fiber centre
    polygon_xy: tuple[tuple[float, float], ...] = ()  # outline of a region defect
    polyline_xy: tuple[tuple[float, float], ...] = ()  # centre line of a scratch
    contrast_grey: float = 0.0  # signed: negative darker than its surroundings
    mask_value: int = Field(ge=0, le=255, default=0)  # its label in the mask PNG (0: not in the mask)
    note: str = ""  # e.g. "borderline: 3.5 um scratch in B"


class TruthConditions(_Model):
    """How the image was made, for slicing accuracy by condition (all optional)."""

    variant: str = ""  # look of the frame: "dimension-scope", "mid-grey-vignetted", "dark-ferrule"
    psf_sigma_px: float | None = None  # Gaussian defocus
    noise_sigma_grey: float | None = None  # sensor noise std
    jpeg_quality: int | None = None  # None: stored losslessly
    ferrule_grey: float | None = None  # nominal levels at the fiber centre, after exposure
    cladding_grey: float | None = None


class ExpectedVerdict(_Model):
    status: Status
    reasons: tuple[str, ...] = ()


class Truth(_Model):
    schema_: Literal["defectscope.truth/1"] = Field(default=TRUTH_SCHEMA, alias="schema")
    image: str  # file name of the image, relative to the truth file
    mask: str | None = None  # file name of the defect mask PNG (uint8 labels = TruthDefect.mask_value)
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    seed: int
    style: Literal["bright-ferrule", "dark-ferrule"]
    profile: str  # the profile the defects were planned for
    degraded: Degradation | None = None
    geometry: TruthGeometry | None = None  # None when there is no usable fiber (degraded)
    defects: tuple[TruthDefect, ...] = ()
    expected: dict[str, ExpectedVerdict] = Field(default_factory=dict)  # per shipped profile name
    conditions: TruthConditions | None = None  # optional: how it was rendered (blur, noise, JPEG, look)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=1)

    def defects_for(self, profile: Profile) -> list[Defect]:
        """The true defects as `Defect` records zoned for `profile`, ready for `judge`.

        Zoned by the engine's own rule (`judge.strictest_zone`), so truth and inspection agree
        on where a straddling defect is judged."""
        out = []
        for t in self.defects:
            touched = zones_touched(profile, *t.radial_extent_um)
            if not touched:
                continue  # entirely outside the inspected area
            zone = strictest_zone(profile, t.kind, t.size_um, touched)
            out.append(
                Defect(
                    id=t.id,
                    kind=t.kind,
                    zone=zone,
                    zones=touched,
                    centroid_xy=t.centroid_xy,
                    bbox_xywh=(0, 0, 0, 0),
                    area_px=0,
                    size_um=t.size_um,
                    length_um=t.length_um,
                    confidence=1.0,
                    source=("truth",),
                )
            )
        return out


def zones_touched(profile: Profile, inner_um: float, outer_um: float) -> tuple[str, ...]:
    """Names of the profile's zones that a radial extent [inner_um, outer_um] (radii, µm) overlaps.

    Innermost first; zone bounds in profiles are diameters, hence the halving.
    """
    return tuple(z.name for z in profile.zones if inner_um < z.outer_um / 2 and outer_um >= z.inner_um / 2)


def read_truth(path: str | Path) -> Truth:
    """Load and validate a ``*.truth.json`` file; TruthFormatError names the file and the field."""
    path = Path(path)
    try:
        return Truth.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise TruthFormatError(f"{path}: cannot read it ({exc.strerror})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise TruthFormatError(
            f"{path}: not a defectscope truth file: field {where}: {first['msg']}"
        ) from None
