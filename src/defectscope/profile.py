"""Inspection profiles: zones in µm, acceptance rules per zone, detector and gate parameters.

A profile is YAML validated into frozen pydantic models (unknown keys are errors). Shipped
profiles live in ``defectscope/profiles/*.yaml``; a user profile is any YAML path.
"""

from __future__ import annotations

import difflib
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ProfileError

__all__ = [
    "SizeBand",
    "ZoneRule",
    "Profile",
    "load_profile",
    "list_profiles",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SizeBand(_Model):
    """Features up to a size limit, and how many of them a zone allows.

    Exactly one of `below_um` (size < limit) or `up_to_um` (size <= limit). Bands are listed
    smallest first; a feature bigger than the last band is not allowed at all.
    """

    below_um: float | None = Field(default=None, gt=0)
    up_to_um: float | None = Field(default=None, gt=0)
    max_count: int | None = Field(default=None, ge=0)  # None: any number

    @model_validator(mode="after")
    def _one_limit(self) -> SizeBand:
        if (self.below_um is None) == (self.up_to_um is None):
            raise ValueError("give exactly one of below_um (size < limit) or up_to_um (size <= limit)")
        return self

    @property
    def limit_um(self) -> float:
        return self.below_um if self.below_um is not None else self.up_to_um  # type: ignore[return-value]

    def admits(self, size_um: float) -> bool:
        return size_um < self.below_um if self.below_um is not None else size_um <= self.up_to_um  # type: ignore[operator]


Rule = list[SizeBand] | Literal["unlimited"]


class ZoneRule(_Model):
    """One annular zone, bounds as diameters in µm, with its scratch and defect limits.

    scratches are sized by width, other defects by enclosing diameter. An empty list means
    none allowed; "unlimited" means the zone is not judged for that class.
    """

    name: str = Field(min_length=1)
    label: str = ""
    inner_um: float = Field(ge=0)
    outer_um: float = Field(gt=0)
    scratches: Rule
    defects: Rule

    @model_validator(mode="after")
    def _check(self) -> ZoneRule:
        if self.outer_um <= self.inner_um:
            raise ValueError(
                f"zone {self.name}: outer_um ({self.outer_um}) must exceed inner_um ({self.inner_um})"
            )
        for what, rule in (("scratches", self.scratches), ("defects", self.defects)):
            if rule != "unlimited":
                limits = [b.limit_um for b in rule]
                if limits != sorted(limits):
                    raise ValueError(f"zone {self.name}: {what} bands must be listed smallest limit first")
        return self

    def smallest_judged_um(self, what: Literal["scratches", "defects"]) -> float:
        """The smallest size of that class that can change this zone's verdict: the limit of a
        leading band that admits any number (features below it are never counted), else 0
        (every feature counts); infinite when the class is unlimited here. Detectors may look
        at the zone with pixels as coarse as this allows."""
        rule = getattr(self, what)
        if rule == "unlimited":
            return float("inf")
        if rule and rule[0].max_count is None:
            return rule[0].limit_um
        return 0.0


class FiberSpec(_Model):
    cladding_diameter_um: float = Field(default=125.0, gt=0)
    core_diameter_um: float | None = Field(default=None, gt=0)


class GeometryParams(_Model):
    """How the cladding edge is searched and when a fit is trusted."""

    min_radius_frac: float = Field(default=0.04, gt=0, lt=0.5)  # of the frame's short side
    max_radius_frac: float = Field(default=0.48, gt=0, le=0.5)
    min_edge_coverage: float = Field(default=0.55, gt=0, le=1)  # of directions with a clear edge
    max_fit_rms_px: float = Field(default=2.0, gt=0)
    max_pixel_aspect_deviation: float = Field(default=0.15, ge=0)  # beyond this the ellipse is not a fiber
    calibration_tolerance: float = Field(default=0.05, gt=0)  # user um/px vs fitted cladding, relative


class RegionParams(_Model):
    """Digs, pits, particles and contamination: rank-filter residual with a noise threshold."""

    def min_sliver_length_px(self, geometry) -> float:
        """Regions one pixel thin and shorter than a scratch's minimum length are dropped."""
        return _SCRATCH_MIN_LENGTH_UM / geometry.um_per_px

    k_sigma: float = Field(default=6.0, gt=0)  # seed threshold in robust noise units
    k_sigma_low: float = Field(default=3.0, gt=0)  # region growing threshold
    noise_floor_grey: float = Field(default=2.0, gt=0)
    min_contrast_grey: float = Field(default=12.0, ge=0)  # a seed must differ this much from its background
    window_um: float = Field(default=14.0, gt=0)  # rank-filter window; features wider are found by `oil`
    min_size_um: float = Field(default=1.0, ge=0)


_SCRATCH_MIN_LENGTH_UM = 8.0


class ScratchParams(_Model):
    """Scratches: oriented line filters (box averages along n_angles directions) on the residual."""

    enabled: bool = True
    n_angles: int = Field(default=12, ge=4, le=36, multiple_of=2)  # each warp serves theta and theta + 90
    line_length_um: float = Field(
        default=16.0, gt=0
    )  # averaging length: longer finds fainter, straighter lines
    window_um: float = Field(default=20.0, gt=0)  # rank window: must exceed the widest scratch
    k_sigma: float = Field(default=8.0, gt=0)  # line response threshold in noise units of the line average
    min_contrast_grey: float = Field(default=4.0, ge=0)  # peak contrast across a thin line
    wide_um: float = Field(default=2.0, gt=0)
    min_contrast_wide_grey: float = Field(default=10.0, ge=0)  # for lines at least `wide_um` wide
    min_length_um: float = Field(default=_SCRATCH_MIN_LENGTH_UM, gt=0)
    min_elongation: float = Field(default=4.0, gt=1)  # length over width
    max_width_um: float = Field(default=10.0, gt=0)
    # collinear scratch pieces this close are one scratch (residuals fail in the guard bands and
    # where a line crosses a particle, splitting one scratch into pieces)
    max_join_gap_um: float = Field(default=30.0, ge=0)


class OilParams(_Model):
    """Large features -- big particles, oil and wet films -- against a per-domain median background."""

    enabled: bool = True
    window_um: float = Field(default=250.0, gt=0)  # local correction of the shading surface
    k_sigma: float = Field(default=6.0, gt=0)
    min_contrast_grey: float = Field(default=6.0, ge=0)
    min_size_um: float = Field(default=10.0, gt=0)  # smaller ones are the region detector's
    max_oil_contrast_grey: float = Field(default=35.0, gt=0)  # fainter and soft-edged: oil, else a particle
    max_scratch_width_um: float = Field(default=10.0, gt=0)  # long blobs narrower than this are scratches


class ChipParams(_Model):
    """Chips: pieces missing from the cladding edge, against the edge's median profile."""

    enabled: bool = True
    max_depth_um: float = Field(default=12.0, gt=0)  # how far inside the edge to look
    min_depth_um: float = Field(default=0.8, gt=0)
    min_arc_um: float = Field(default=2.0, gt=0)
    k_sigma: float = Field(default=5.0, gt=0)
    min_contrast_grey: float = Field(default=10.0, ge=0)


class DetectionParams(_Model):
    # Bands along the fiber's own circular edges that region and line detectors leave alone:
    # the cladding edge's bevel and adhesive rings are fiber structure, not defects (for 125 um
    # fibers both bands lie in the adhesive zone C); chips there are found by the chip detector.
    edge_guard_inner_um: float = Field(default=5.0, ge=0)
    edge_guard_outer_um: float = Field(default=3.0, ge=0)
    # multimode cores carry a bright ring inside their edge, which a core edge off round by a
    # fraction of a pixel leaves in arcs: at 1.5 um, 56 such "scratches" on 26 of 81 real cores
    core_guard_inner_um: float = Field(default=2.0, ge=0)
    core_guard_outer_um: float = Field(default=3.0, ge=0)  # multimode cores carry a dark ring outside
    # A round pattern centred on the core up to this depth (a multimode core's soft index dip or
    # glow) is flattened and passes; a deeper one -- the index pattern, or a film centred on the
    # core, which looks the same -- leaves the zones over the core UNDETERMINED unless they fail.
    # 8 grey: deeper than most faint dips of clean real cores (<= 7.9 here, one at 8.1), fainter
    # than the faintest synthetic film centred on a core (drawn at 8.8 grey, measured 8.1).
    max_core_glow_grey: float = Field(default=8.0, ge=0)
    merge_gap_um: float = Field(default=1.5, ge=0)  # region fragments closer than this are one feature
    # A feature straddling the outer edge of the last zone is judged there at its full size, so
    # detectors look this far beyond it; measurement keeps only what touches a zone.
    outer_margin_um: float = Field(default=30.0, ge=0)
    region: RegionParams = RegionParams()
    scratch: ScratchParams = ScratchParams()
    oil: OilParams = OilParams()
    chip: ChipParams = ChipParams()


class QualityParams(_Model):
    """The gate: when any limit is broken the verdict is UNDETERMINED, never PASS."""

    max_edge_width_um: float = Field(default=3.0, gt=0)  # 10-90 % rise of the cladding edge
    max_clipped_fraction: float = Field(default=0.02, ge=0, le=1)  # saturated or black, per inspected zone
    min_edge_contrast_grey: float = Field(default=15.0, ge=0)


class Profile(_Model):
    name: str = Field(min_length=1)
    title: str = ""
    source: str = ""
    fiber: FiberSpec = FiberSpec()
    zones: tuple[ZoneRule, ...] = Field(min_length=1)
    geometry: GeometryParams = GeometryParams()
    detection: DetectionParams = DetectionParams()
    quality: QualityParams = QualityParams()

    @model_validator(mode="after")
    def _zones_contiguous(self) -> Profile:
        names = [z.name for z in self.zones]
        if len(set(names)) != len(names):
            raise ValueError(f"zone names must be unique, got {names}")
        for a, b in zip(self.zones, self.zones[1:]):
            if abs(a.outer_um - b.inner_um) > 1e-9:
                raise ValueError(
                    f"zones must be contiguous and ordered from the centre: zone {a.name} ends at "
                    f"{a.outer_um} um but zone {b.name} starts at {b.inner_um} um"
                )
        return self

    @cached_property
    def contact_diameter_um(self) -> float:
        """Outer diameter of the outermost zone: everything inspected lies inside it."""
        return self.zones[-1].outer_um

    def with_cladding_um(self, cladding_diameter_um: float) -> Profile:
        """A copy whose nominal cladding diameter (the µm/px reference) is changed."""
        fiber = self.fiber.model_copy(update={"cladding_diameter_um": cladding_diameter_um})
        return self.model_copy(update={"fiber": FiberSpec.model_validate(fiber.model_dump())})


def list_profiles() -> list[str]:
    """Names of the shipped profiles, sorted."""
    folder = resources.files("defectscope") / "profiles"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a shipped profile by name, or a user profile from a YAML path.

    Raises ProfileError naming the file and the field when the profile is unknown or invalid.
    """
    text, origin = _read_profile_text(name_or_path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"profile {origin}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ProfileError(
            f"profile {origin}: expected a mapping of keys (name, zones, ...), got {type(data).__name__}"
        )
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(f"profile {origin}: {_explain(exc)}") from None


def _read_profile_text(name_or_path: str | Path) -> tuple[str, str]:
    path = Path(name_or_path)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise ProfileError(f"profile {path}: cannot read it ({exc.strerror})") from None
    name = str(name_or_path)
    shipped = resources.files("defectscope") / "profiles" / f"{name}.yaml"
    if shipped.is_file():
        return shipped.read_text(encoding="utf-8"), name
    known = list_profiles()
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ProfileError(
        f"unknown profile {name!r}.{hint} Shipped profiles: {', '.join(known)}; "
        "or give the path of a YAML file"
    )


def _explain(exc: ValidationError) -> str:
    errors = exc.errors()
    # A band list may also be the word "unlimited": pydantic then reports both union members.
    # When the list member has a specific complaint, the "should be 'unlimited'" one is noise.
    specific = any(
        not _is_union_tag(p) for e in errors if e["type"] != "literal_error" for p in e["loc"][-1:]
    )
    parts = []
    for err in errors:
        if specific and err["type"] == "literal_error" and any(_is_union_tag(p) for p in err["loc"]):
            continue
        loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
        where = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field" + _did_you_mean(loc)
        parts.append(f"field {where}: {msg}")
    return "; ".join(dict.fromkeys(parts))


def _is_union_tag(part) -> bool:
    """Pydantic names the member of a union it tried in the error location (`list[...]`, `literal[...]`)."""
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _did_you_mean(loc: tuple) -> str:
    """Suggest the closest valid key for a mistyped one, walking the model tree along `loc`."""
    model: type[BaseModel] | None = Profile
    for part in loc[:-1]:
        if model is None or isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        model = _model_of(field.annotation) if field else None
    if model is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_of(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
