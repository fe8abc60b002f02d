"""Typed records that flow through the pipeline and leave the process.

Records that leave the process (JSON, API, database) are frozen pydantic models with
``extra="forbid"``; records that carry arrays (`Frame`, `CandidateMap`) are frozen
dataclasses that check shape and dtype and mark their arrays read-only.

Conventions: arrays are indexed ``[row, col]``; points are ``*_xy`` = (x, y) in pixels of
the frame; zone bounds ``inner_um``/``outer_um`` are *diameters* in µm, as in the IEC tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "REPORT_SCHEMA",
    "DefectKind",
    "Status",
    "CONTAMINATION_KINDS",
    "Frame",
    "CandidateMap",
    "Zone",
    "Geometry",
    "Defect",
    "Quality",
    "ZoneVerdict",
    "Verdict",
    "ImageInfo",
    "Report",
]

REPORT_SCHEMA = "defectscope.report/1"


class DefectKind(StrEnum):
    SCRATCH = "scratch"
    DIG = "dig"
    PARTICLE = "particle"
    OIL = "oil"
    CHIP = "chip"
    CRACK = "crack"
    ANOMALY = "anomaly"


# Dirt, not damage: a part failing only for these is cleaned and re-inspected, not rejected.
CONTAMINATION_KINDS = frozenset({DefectKind.PARTICLE, DefectKind.OIL})


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    UNDETERMINED = "UNDETERMINED"


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class Frame:
    """One decoded image, grey, ready for inspection.

    pixels: (H, W) uint8 grey levels, read-only. 16-bit inputs are scaled by their full
    range (/257); colour inputs are converted with the ITU-R BT.601 luma weights.
    source: where it came from (path or caller-given name), for messages and reports.
    sha256: hex digest of the encoded bytes ("" when built from an array).
    """

    pixels: np.ndarray
    source: str = "<array>"
    sha256: str = ""
    bit_depth: int = 8
    channels: int = 1
    decode_ms: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.pixels, np.ndarray) or self.pixels.ndim != 2:
            raise ValueError(
                f"Frame.pixels must be a (H, W) array, got {getattr(self.pixels, 'shape', None)}"
            )
        if self.pixels.dtype != np.uint8:
            raise ValueError(f"Frame.pixels must be uint8, got {self.pixels.dtype}")
        _readonly(self.pixels)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


@dataclass(frozen=True)
class CandidateMap:
    """What one detector proposes: labelled regions in a window of the frame.

    labels: (h, w) int32, 0 = nothing, i = candidate i (1-based), window starts at `origin_xy`.
    kinds: kind of candidate i at index i-1.
    scores: (n,) float32 in [0, 1], detector confidence per candidate.
    contrast_grey: (n,) float32, signed peak residual per candidate in grey levels (< 0: darker).
    widths_px: (n,) float32, measured width of line-like candidates (NaN where not measured).
    polylines: per candidate, (k, 2) float32 centre line in window px for scratches, else None.
    """

    detector: str
    origin_xy: tuple[int, int]
    labels: np.ndarray
    kinds: tuple[DefectKind, ...] = ()
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    contrast_grey: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    widths_px: np.ndarray | None = None
    polylines: tuple[np.ndarray | None, ...] | None = None

    def __post_init__(self) -> None:
        if self.labels.ndim != 2 or self.labels.dtype != np.int32:
            raise ValueError(
                f"CandidateMap.labels must be (h, w) int32, got {self.labels.shape} {self.labels.dtype}"
            )
        n = len(self.kinds)
        if self.widths_px is None:
            object.__setattr__(self, "widths_px", np.full(n, np.nan, np.float32))
        if self.polylines is None:
            object.__setattr__(self, "polylines", (None,) * n)
        if (
            any(a.shape != (n,) for a in (self.scores, self.contrast_grey, self.widths_px))
            or len(self.polylines) != n
        ):
            raise ValueError(
                f"CandidateMap: {n} kinds but scores {self.scores.shape}, contrast "
                f"{self.contrast_grey.shape}, widths {self.widths_px.shape}, "
                f"{len(self.polylines)} polylines; expected {n} of each"
            )
        for array in (self.labels, self.scores, self.contrast_grey, self.widths_px):
            _readonly(array)

    def __len__(self) -> int:
        return len(self.kinds)

    @classmethod
    def empty(cls, detector: str, shape_hw: tuple[int, int] = (1, 1), origin_xy: tuple[int, int] = (0, 0)):
        return cls(detector, origin_xy, np.zeros(shape_hw, np.int32))


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Zone(_Record):
    """An annular inspection zone. inner_um/outer_um are diameters in µm (IEC convention)."""

    name: str
    label: str = ""
    inner_um: float = Field(ge=0)
    outer_um: float = Field(gt=0)
    inner_radius_px: float = Field(ge=0)
    outer_radius_px: float = Field(gt=0)


class Geometry(_Record):
    """Where the fiber is and how big a pixel is."""

    center_xy: tuple[float, float]
    cladding_radius_px: float = Field(gt=0)
    core_radius_px: float | None = None
    core_center_xy: tuple[float, float] | None = None  # fitted on the core's own edge
    um_per_px: float = Field(gt=0)
    calibration: Literal["profile", "user"] = "profile"
    # Height of a pixel over its width, measured from the cladding ellipse. Frames with
    # pixel_aspect != 1 are resampled to square pixels before detection; every pixel
    # coordinate in the report then refers to that square-pixel frame.
    pixel_aspect: float = 1.0
    edge_coverage: float = Field(ge=0, le=1, default=1.0)  # fraction of directions with a cladding edge
    edge_sigma_px: float | None = None  # blur of the cladding edge (Gaussian sigma): the optics' point spread
    fit_rms_px: float = Field(ge=0, default=0.0)  # RMS distance of edge points to the fitted circle
    zones: tuple[Zone, ...] = ()
    warnings: tuple[str, ...] = ()

    def zone(self, name: str) -> Zone:
        for z in self.zones:
            if z.name == name:
                return z
        raise KeyError(name)


class Defect(_Record):
    """One measured feature. Sizes in µm, positions in frame pixels."""

    id: int = Field(ge=1)
    kind: DefectKind
    zone: str  # where it is judged; a straddler takes the zone it touches with the strictest limits
    zones: tuple[str, ...] = ()  # every zone it touches (a scratch is judged in each)
    centroid_xy: tuple[float, float]  # a point on the defect itself (scratch: its midpoint along its length)
    bbox_xywh: tuple[int, int, int, int]
    area_px: int = Field(ge=0)
    size_um: float = Field(ge=0)  # scratch: width; others: smallest enclosing circle diameter
    length_um: float | None = None  # scratches only
    confidence: float = Field(ge=0, le=1)
    source: tuple[str, ...]
    contrast_grey: float = 0.0
    polygon_xy: tuple[tuple[int, int], ...] = ()  # simplified outline, for overlays and evaluation


class Quality(_Record):
    """The quality gate. When ok is False the verdict is UNDETERMINED with these issues."""

    ok: bool
    focus: float | None = (
        None  # cladding-edge sharpness in 1/µm (1 / 10-90 % rise distance); higher is sharper
    )
    edge_width_um: float | None = None
    clipped_fraction: float | None = None  # of the contact zone, saturated or black
    contact_zone_in_frame: bool | None = None
    # depth of the round pattern centred on the core (index profile or a film on it), grey levels
    core_pattern_grey: float | None = None
    issues: tuple[str, ...] = ()


class ZoneVerdict(_Record):
    status: Status
    n_scratches: int = 0
    n_defects: int = 0
    reasons: tuple[str, ...] = ()


class Verdict(_Record):
    status: Status
    reasons: tuple[str, ...] = ()
    zones: dict[str, ZoneVerdict] = Field(default_factory=dict)
    # What the line should do next: accept, clean and re-inspect, reject, re-image.
    action: Literal["accept", "clean and re-inspect", "reject", "re-image"] = "re-image"


class ImageInfo(_Record):
    path: str
    width: int = Field(ge=0)
    height: int = Field(ge=0)
    sha256: str = ""


class Report(_Record):
    schema_: Literal["defectscope.report/1"] = Field(default=REPORT_SCHEMA, alias="schema")
    image: ImageInfo
    profile: str
    um_per_px: float | None = None
    geometry: Geometry | None = None
    quality: Quality
    defects: tuple[Defect, ...] = ()
    verdict: Verdict
    timing_ms: dict[str, float] = Field(default_factory=dict)
    version: str = ""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def to_json(self, **kwargs) -> str:
        return self.model_dump_json(by_alias=True, **kwargs)

    def to_dict(self) -> dict:
        return self.model_dump(mode="json", by_alias=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> Report:
        return cls.model_validate_json(text)
