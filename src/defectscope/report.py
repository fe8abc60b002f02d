"""Report outputs: JSON (with its schema), overlay picture, CSV, the legacy layout, one-line summaries.

Everything here turns finished `records.Report`s into files and pictures people read. Nothing
here inspects, judges or changes a report: drawing and writing are kept apart from the data.

- `write_report` / `report_json_schema`: the JSON contract. The schema is generated from the
  pydantic model and committed as ``defectscope/schema/report.schema.json``; regenerate it with
  ``python -m defectscope.report --write-schema`` after changing `records.Report`.
- `render_overlay` / `write_overlay`: a BGR picture of the frame with zones, fiber, defects,
  verdict banner and a µm scale bar.
- `write_csv`: one row per image, for spreadsheets.
- `to_legacy` / `write_legacy`: the old research pipeline's final-report layout.
- `summary_line`: one plain-text line per image for terminals.

Every file is written atomically (temporary file in the same folder, then ``os.replace``), so a
crash leaves either the previous file or the new one, never half a file. Parent folders are not
created: the caller chooses where outputs go.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from .judge import defect_margin, judged_zones
from .profile import Profile, SizeBand
from .records import REPORT_SCHEMA, Defect, DefectKind, Frame, Geometry, Report, Status

__all__ = [
    "SCHEMA_ID",
    "CSV_COLUMNS",
    "write_report",
    "report_json_schema",
    "render_overlay",
    "write_overlay",
    "write_csv",
    "to_legacy",
    "write_legacy",
    "summary_line",
]

SCHEMA_ID = "urn:" + REPORT_SCHEMA.replace(".", ":", 1)  # urn:defectscope:report/1
_SCHEMA_RESOURCE = ("schema", "report.schema.json")
_MAX_REASONS = 3  # reasons shown on the overlay banner, in CSV cells


# --------------------------------------------------------------------------------------------
# JSON and its schema
# --------------------------------------------------------------------------------------------


def write_report(report: Report, path: Path) -> None:
    """Write `report` as pretty JSON (UTF-8, 2-space indent) to `path`, atomically.

    The top-level key ``"schema"`` is ``"defectscope.report/1"``; read it back with
    ``Report.from_json(path.read_text())``. The file validates against `report_json_schema()`.
    """
    _atomic_write(Path(path), (report.to_json(indent=2) + "\n").encode("utf-8"))


def report_json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a report file, as committed with the package.

    Read from ``defectscope/schema/report.schema.json`` on every call (no cache); a test keeps
    the file equal to what `records.Report` generates.
    """
    resource = resources.files("defectscope").joinpath(*_SCHEMA_RESOURCE)
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{'/'.join(_SCHEMA_RESOURCE)} is missing from the defectscope package; "
            "regenerate it with: python -m defectscope.report --write-schema"
        ) from None
    return json.loads(text)


# Descriptions for the schema, per model ("" = the model itself) and field, used where
# records.py gives none (Field(description=...) there wins). The generator refuses names that
# no longer exist, so a renamed field cannot leave a stale description.
_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "Report": {
        "": "The result of inspecting one image: where the fiber is, what was found, and the verdict.",
        "schema": "Format tag; changes only when a reader would break.",
        "image": "The inspected image file.",
        "profile": "Name of the profile (zones and acceptance rules) the image was judged with.",
        "um_per_px": "Scale used for every µm value: micrometres per pixel. Null when it is unknown.",
        "geometry": "Fiber position, scale and zones. Null when the fiber could not be located.",
        "quality": "The image quality gate. When it fails the verdict is UNDETERMINED.",
        "defects": "Every measured feature, sizes in µm, positions in pixels of the inspected frame.",
        "verdict": "PASS, FAIL or UNDETERMINED, with reasons per zone and the action for the line.",
        "timing_ms": "Wall time per stage in milliseconds; 'total' is the whole inspection.",
        "version": "defectscope version that produced the report.",
    },
    "ImageInfo": {
        "": "The image as it was read.",
        "path": "Path or caller-given name of the image.",
        "width": "Width of the decoded image in pixels.",
        "height": "Height of the decoded image in pixels.",
        "sha256": "Hex SHA-256 of the encoded bytes; empty when built from an array.",
    },
    "Geometry": {
        "center_xy": "Fiber centre (x, y) in pixels.",
        "cladding_radius_px": "Fitted cladding radius in pixels.",
        "core_radius_px": "Core radius in pixels, when known.",
        "core_center_xy": "Core centre (x, y) in pixels, fitted on the core's own edge; null when not "
        "fitted.",
        "um_per_px": "Micrometres per pixel.",
        "calibration": "Where the scale comes from: the profile's nominal cladding diameter, or the user.",
        "pixel_aspect": "Pixel height over width as measured; when not 1 the frame was resampled to square "
        "pixels and every pixel coordinate refers to that resampled frame.",
        "edge_coverage": "Fraction of directions in which a cladding edge was found, 0-1.",
        "fit_rms_px": "RMS distance of the edge points to the fitted circle, in pixels.",
        "edge_sigma_px": "Blur of the cladding edge as a Gaussian sigma in pixels (the optics' point "
        "spread); null when not measured.",
        "zones": "Inspection zones from the centre outwards.",
        "warnings": "Geometry findings that did not stop the inspection.",
    },
    "Zone": {
        "name": "Zone name from the profile, e.g. A.",
        "label": "Human name, e.g. core, cladding, adhesive, contact.",
        "inner_um": "Inner diameter in µm (IEC convention: diameters).",
        "outer_um": "Outer diameter in µm.",
        "inner_radius_px": "Inner radius in pixels.",
        "outer_radius_px": "Outer radius in pixels.",
    },
    "Defect": {
        "id": "1-based id, unique within the report.",
        "kind": "What the feature is.",
        "zone": (
            "Zone it is judged in; a feature straddling a boundary takes the zone it touches "
            "whose limits are strictest for its size."
        ),
        "zones": "Every zone it touches; a scratch is judged in each.",
        "centroid_xy": "A point on the feature (x, y) in pixels; for a scratch, its midpoint along its "
        "length.",
        "bbox_xywh": "Bounding box: x, y, width, height in pixels.",
        "area_px": "Area in pixels.",
        "size_um": "Scratch: width in µm; other kinds: smallest enclosing circle diameter in µm.",
        "length_um": "Scratch length in µm; null for other kinds.",
        "confidence": "Detector confidence, 0-1.",
        "source": "Detectors that found it.",
        "contrast_grey": "Peak contrast against the background, in grey levels.",
        "polygon_xy": "Simplified outline as (x, y) pixel vertices; empty when not available.",
    },
    "DefectKind": {
        "": "Kind of feature. particle and oil are contamination (clean and re-inspect); "
        "the others are damage."
    },
    "Status": {
        "": "PASS, FAIL, or UNDETERMINED when the part, or a zone of it, could not be judged (never a PASS)."
    },
    "Quality": {
        "ok": "True when the image is good enough to judge.",
        "focus": "Cladding-edge sharpness in 1/µm (1 / 10-90 % rise distance); higher is sharper.",
        "edge_width_um": "10-90 % rise distance of the cladding edge in µm.",
        "clipped_fraction": "Fraction of the contact zone that is saturated or black, 0-1.",
        "contact_zone_in_frame": "Whether the whole contact zone is inside the image.",
        "core_pattern_grey": "Depth in grey levels of the round pattern centred on the core (index "
        "profile or a film on it); deeper than the profile's detection.max_core_glow_grey, the zones "
        "over the core are UNDETERMINED unless they fail anyway. Null without a core.",
        "issues": "Why the gate failed, one sentence each.",
    },
    "ZoneVerdict": {
        "": "The verdict of one zone.",
        "status": "PASS, FAIL or UNDETERMINED for this zone.",
        "n_scratches": "Scratches judged in this zone.",
        "n_defects": "Other features judged in this zone.",
        "reasons": "Why the zone fails, one sentence per broken rule.",
    },
    "Verdict": {
        "": "The decision for the part.",
        "status": "PASS, FAIL or UNDETERMINED.",
        "reasons": "Why, one sentence each, most important first.",
        "zones": "Verdict per zone name.",
        "action": "What the line should do next.",
    },
}


def _build_report_schema() -> dict:
    """Generate the report JSON Schema from `records.Report`, with id, title and descriptions."""
    generated = Report.model_json_schema(by_alias=True, mode="serialization")
    defs = generated.pop("$defs", {})
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **generated,
        "title": "defectscope inspection report",
        "$defs": defs,
    }
    for model, texts in _DESCRIPTIONS.items():
        node = schema if model == "Report" else defs.get(model)
        if node is None:
            raise ValueError(
                f"report schema: _DESCRIPTIONS names model {model!r}, which the Report no "
                "longer uses; update _DESCRIPTIONS in defectscope/report.py"
            )
        for field, text in texts.items():
            if field == "":
                node.setdefault("description", text)  # a docstring in records.py wins
                continue
            props = node.get("properties", {})
            if field not in props:
                raise ValueError(
                    f"report schema: _DESCRIPTIONS names {model}.{field}, which no longer "
                    "exists; update _DESCRIPTIONS in defectscope/report.py"
                )
            props[field].setdefault("description", text)  # a description in records.py wins
    return schema


def _schema_text(schema: dict) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------------
# Overlay
# --------------------------------------------------------------------------------------------

# BGR colours. Kinds are saturated and distinct; zones, fiber and banners are kept apart from them.
_KIND_BGR: dict[DefectKind, tuple[int, int, int]] = {
    DefectKind.SCRATCH: (255, 0, 255),  # magenta
    DefectKind.DIG: (0, 0, 255),  # red
    DefectKind.PARTICLE: (0, 255, 255),  # yellow
    DefectKind.OIL: (255, 144, 30),  # blue
    DefectKind.CHIP: (0, 140, 255),  # orange
    DefectKind.CRACK: (255, 255, 0),  # cyan
    DefectKind.ANOMALY: (180, 105, 255),  # pink
}
_UNKNOWN_KIND_BGR = (255, 255, 255)  # a kind added to records.py before it gets a colour here
_ZONE_BGR = (80, 220, 80)  # green
_FIBER_BGR = (255, 255, 255)  # cladding and core: white, dashed
_HALO_BGR = (0, 0, 0)
_STATUS_BGR: dict[Status, tuple[int, int, int]] = {
    Status.PASS: (50, 150, 30),  # green
    Status.FAIL: (40, 30, 200),  # red
    Status.UNDETERMINED: (0, 175, 255),  # amber
}
_STATUS_TEXT_BGR: dict[Status, tuple[int, int, int]] = {
    Status.PASS: (255, 255, 255),
    Status.FAIL: (255, 255, 255),
    Status.UNDETERMINED: (0, 0, 0),
}
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_BOLD = cv2.FONT_HERSHEY_DUPLEX


@dataclass(frozen=True)
class _Style:
    """Line widths and text sizes, in proportion to one length `unit` (1.0 for a 1000 px frame)."""

    line_px: int  # outline and circle thickness
    font_scale: float  # Hershey scale of ordinary text
    text_px: int  # Hershey stroke thickness
    pad_px: int  # spacing unit

    @classmethod
    def for_frame(cls, height: int, width: int) -> _Style:
        """Scaled to the frame's long side, so the overlay reads at a glance when the picture is
        shown whole on a screen: banner, legend and scale bar use this."""
        return cls._of(max(height, width) / 1000.0)

    @classmethod
    def for_fiber(cls, height: int, width: int, geometry: Geometry) -> _Style:
        """For the marks on the fiber (zone labels, defect rings and ids): the frame's style,
        but never so large that they bury a fiber that fills only a small part of the frame
        (capped at the contact zone's diameter / 350 px, and never below the smallest style)."""
        outer_px = max((z.outer_radius_px for z in geometry.zones), default=2 * geometry.cladding_radius_px)
        return cls._of(min(max(height, width) / 1000.0, max(0.6, 2 * outer_px / 350.0)))

    @classmethod
    def _of(cls, unit: float) -> _Style:
        return cls(
            line_px=max(1, round(2.0 * unit)),
            font_scale=max(0.45, 0.75 * unit),
            text_px=max(1, round(1.6 * unit)),
            pad_px=max(3, round(8 * unit)),
        )


def render_overlay(frame: Frame, report: Report) -> np.ndarray:
    """Draw `report` on `frame` for people to read.

    frame: the frame the report's pixel coordinates refer to (the resampled, square-pixel frame
    when ``geometry.pixel_aspect != 1``); not modified. report: any report, including an
    UNDETERMINED one without geometry.

    Returns a new (H, W, 3) uint8 BGR image of the frame's size: zone boundaries (green) named
    'A core', 'B cladding', ...; cladding and core circles (black and white dashes); each defect
    outlined in its kind's colour (polygon, else bounding box; small ones also ringed) with its
    id; a legend of the kinds present; a µm scale bar; and a verdict banner across the top
    (green PASS, red FAIL, amber UNDETERMINED) with the first reasons. Without geometry only the
    banner is drawn. The whole frame is kept. Banner, legend and scale bar scale with the frame
    size so they read at a glance; marks on the fiber scale the same way, but are capped by the
    contact zone's size so they never bury a fiber that is small in its frame. Text is ASCII
    (Hershey fonts): µm is written "um".
    """
    canvas = cv2.cvtColor(frame.pixels, cv2.COLOR_GRAY2BGR)  # a new array; frame.pixels is read-only
    style = _Style.for_frame(frame.height, frame.width)
    geometry = report.geometry
    banner = _banner_layout(report, style, width_px=frame.width, frame_h_px=frame.height)
    if geometry is not None:
        local = _Style.for_fiber(frame.height, frame.width, geometry)
        _draw_zone_circles(canvas, geometry, local)
        _draw_fiber(canvas, geometry, local)
        marks = _defect_marks(report.defects, local, shape_hw=canvas.shape[:2])
        texts = _draw_legend(canvas, report.defects, style)
        texts += _draw_scale_bar(canvas, geometry.um_per_px, style)
        _draw_zone_labels(
            canvas,
            geometry,
            local,
            top_px=banner.height_px,
            outlines=_outline_mask(marks, local, shape_hw=canvas.shape[:2]),
            texts=texts + [m.id_box for m in marks],
        )
        _draw_defects(canvas, marks, local)  # after the zone labels: nothing covers a defect
    _draw_banner(canvas, report.verdict.status, banner, style)
    return canvas


def write_overlay(frame: Frame, report: Report, path: Path) -> None:
    """Render the overlay (`render_overlay`) and write it atomically; the format follows the
    suffix (.png recommended, lossless; .jpg, .bmp, .tif and .webp also work)."""
    path = Path(path)
    suffix = path.suffix.lower() or ".png"
    image = render_overlay(frame, report)
    try:
        ok, encoded = cv2.imencode(suffix, image)
    except cv2.error:
        ok = False
    if not ok:
        raise ValueError(f"{path}: cannot encode an overlay as {suffix!r}; use .png or .jpg")
    _atomic_write(path, encoded.tobytes())


_Box = tuple[int, int, int, int]  # x, y, w, h in pixels

# Where zone labels go, in order of preference: degrees counter-clockwise from the +x axis
# (upper right first, where the eye starts), each just outside its zone's circle.
_LABEL_ANGLES_DEG = (
    45,
    30,
    60,
    15,
    75,
    135,
    150,
    120,
    165,
    105,
    0,
    180,
    90,
    -30,
    -150,
    -60,
    -120,
    -15,
    -165,
    -45,
    -135,
    -75,
    -105,
    -90,
)


def _draw_zone_circles(canvas: np.ndarray, geometry: Geometry, style: _Style) -> None:
    """The outer boundary of each zone (the inner one is the previous zone's outer)."""
    centre = _pt(geometry.center_xy)
    for zone in geometry.zones:
        radius = round(zone.outer_radius_px)
        cv2.circle(canvas, centre, radius, _HALO_BGR, style.line_px + 2, cv2.LINE_AA)
        cv2.circle(canvas, centre, radius, _ZONE_BGR, style.line_px, cv2.LINE_AA)


def _draw_zone_labels(
    canvas: np.ndarray,
    geometry: Geometry,
    style: _Style,
    *,
    top_px: int,
    outlines: np.ndarray,
    texts: list[_Box],
) -> None:
    """'A core'-style labels just outside each zone's circle, inside the frame and below the
    banner, covering no other text (ids, legend, scale bar, other labels) and as little of the
    defect outlines as possible; among equals, the first of `_LABEL_ANGLES_DEG`. A zone whose
    circle lies outside the frame gets no label. outlines: (H, W) mask of the pixels defect
    outlines and rings cover."""
    height, width = canvas.shape[:2]
    gap = style.pad_px
    cx, cy = geometry.center_xy
    texts = list(texts)
    for zone in geometry.zones:
        text = f"{zone.name} {zone.label}".strip()
        w, h = _label_size(text, style)
        candidates = []
        for deg in _LABEL_ANGLES_DEG:
            cos, sin = math.cos(math.radians(deg)), math.sin(math.radians(deg))
            px, py = cx + (zone.outer_radius_px + gap) * cos, cy - (zone.outer_radius_px + gap) * sin
            box = (round(px if cos >= -1e-9 else px - w), round(py - h if sin >= -1e-9 else py), w, h)
            if gap <= box[0] <= width - gap - w and top_px + gap <= box[1] <= height - gap - h:
                candidates.append(box)
        free = [b for b in candidates if not any(_overlap(b, other) for other in texts)]
        if free:
            # Fewest outline pixels covered; among equals, the preferred angle (min is stable).
            box = min(free, key=lambda b: _covered(outlines, b))
            _label(canvas, text, box, _ZONE_BGR, style)
            texts.append(box)


def _covered(mask: np.ndarray, box: _Box) -> int:
    x, y, w, h = box
    return int(np.count_nonzero(mask[y : y + h, x : x + w]))


def _draw_fiber(canvas: np.ndarray, geometry: Geometry, style: _Style) -> None:
    """Cladding and core circles in black and white dashes, visible on bright and dark glass.
    The core is drawn where it was fitted, when it was (it can sit off the cladding's centre)."""
    circles = [(geometry.center_xy, geometry.cladding_radius_px)]
    if geometry.core_radius_px:
        circles.append((geometry.core_center_xy or geometry.center_xy, geometry.core_radius_px))
    for centre_xy, radius in circles:
        _dashed_circle(canvas, _pt(centre_xy), radius, _HALO_BGR, style.line_px + 2)
        _dashed_circle(canvas, _pt(centre_xy), radius, _FIBER_BGR, style.line_px)


def _dashed_circle(
    canvas: np.ndarray, centre: tuple[int, int], radius_px: float, colour, thickness: int
) -> None:
    circumference = 2 * math.pi * radius_px
    n_dashes = int(np.clip(circumference / (6 * thickness + 8), 8, 120))
    step = 360.0 / n_dashes
    for k in range(n_dashes):
        start = k * step
        cv2.ellipse(
            canvas,
            centre,
            (round(radius_px), round(radius_px)),
            0.0,
            start,
            start + step * 0.55,
            colour,
            thickness,
            cv2.LINE_AA,
        )


@dataclass(frozen=True)
class _Mark:
    """How one defect is drawn: its outline's box, an optional ring, and where its id goes."""

    defect: Defect
    box: _Box
    ring: tuple[tuple[int, int], int] | None  # centre, radius in px; for defects too small to see
    id_box: _Box


def _defect_marks(defects: Iterable[Defect], style: _Style, *, shape_hw: tuple[int, int]) -> list[_Mark]:
    """Lay out every defect's marks. Defects smaller than a few line widths get a ring so they
    are seen at a glance. Each id goes beside its outline or ring (right, left, above, below:
    the first place inside the frame that covers no other id or outline)."""
    height, width = shape_hw
    ring_min_px = 6 * style.line_px + 4
    boxes: list[_Box] = []
    rings: list[tuple[tuple[int, int], int] | None] = []
    defects = tuple(defects)
    for d in defects:
        x, y, w, h = d.bbox_xywh
        ring = None
        if max(w, h) < ring_min_px:
            radius = round(max(w, h) / 2 + 3 * style.line_px + 2)
            centre = (round(x + w / 2), round(y + h / 2))
            ring = (centre, radius)
            reach = radius + style.line_px
            x, y, w, h = centre[0] - reach, centre[1] - reach, 2 * reach, 2 * reach
        boxes.append((x, y, w, h))
        rings.append(ring)
    marks: list[_Mark] = []
    for i, (d, (x, y, w, h)) in enumerate(zip(defects, boxes)):
        lw, lh = _label_size(str(d.id), style)
        gap = style.line_px
        if rings[i] is None and len(d.polygon_xy) >= 2:  # beside the outline's right end, not its box
            end_x, end_y = max(d.polygon_xy)
            x, y, w, h = end_x - gap, end_y - gap, 2 * gap, 2 * gap
        places = [
            (x + w + gap, y + h // 2 - lh // 2),
            (x - gap - lw, y + h // 2 - lh // 2),
            (x + w // 2 - lw // 2, y - gap - lh),
            (x + w // 2 - lw // 2, y + h + gap),
        ]
        placed = [
            (int(np.clip(px, 0, max(0, width - lw))), int(np.clip(py, 0, max(0, height - lh))), lw, lh)
            for px, py in places
        ]
        others = [m.id_box for m in marks] + boxes[:i] + boxes[i + 1 :]
        free = [b for b in placed if not any(_overlap(b, other) for other in others)]
        marks.append(_Mark(d, boxes[i], rings[i], (free or placed)[0]))
    return marks


def _outline_mask(marks: list[_Mark], style: _Style, *, shape_hw: tuple[int, int]) -> np.ndarray:
    """(H, W) uint8, non-zero where defect outlines and rings will be drawn (with a margin)."""
    mask = np.zeros(shape_hw, np.uint8)
    thickness = style.line_px + 2 * style.pad_px
    for m in marks:
        _outline(mask, m.defect, 1, thickness)
        if m.ring is not None:
            cv2.circle(mask, m.ring[0], m.ring[1], 1, thickness)
    return mask


def _draw_defects(canvas: np.ndarray, marks: list[_Mark], style: _Style) -> None:
    """Each defect's outline (polygon, else bounding box) in its kind's colour, ring and id."""
    # Dark halos first, so no defect's halo covers another defect's colour.
    for m in marks:
        _outline(canvas, m.defect, _HALO_BGR, style.line_px + 2)
        if m.ring is not None:
            cv2.circle(canvas, m.ring[0], m.ring[1], _HALO_BGR, style.line_px + 2, cv2.LINE_AA)
    for m in marks:
        colour = _KIND_BGR.get(m.defect.kind, _UNKNOWN_KIND_BGR)
        _outline(canvas, m.defect, colour, style.line_px)
        if m.ring is not None:
            cv2.circle(canvas, m.ring[0], m.ring[1], colour, style.line_px, cv2.LINE_AA)
    for m in marks:
        _label(canvas, str(m.defect.id), m.id_box, _KIND_BGR.get(m.defect.kind, _UNKNOWN_KIND_BGR), style)


def _outline(canvas: np.ndarray, d: Defect, colour, thickness: int) -> None:
    if len(d.polygon_xy) >= 2:
        points = np.asarray(d.polygon_xy, dtype=np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [points], True, colour, thickness, cv2.LINE_AA)
    else:
        x, y, w, h = d.bbox_xywh
        cv2.rectangle(canvas, (x, y), (x + max(w, 1) - 1, y + max(h, 1) - 1), colour, thickness, cv2.LINE_AA)


def _draw_legend(canvas: np.ndarray, defects: Iterable[Defect], style: _Style) -> list[_Box]:
    """Bottom-left box: one entry per kind present, e.g. 'scratch (2)'; nothing without defects."""
    counts = Counter(d.kind for d in defects)
    if not counts:
        return []
    height = canvas.shape[0]
    entries = [(kind, f"{kind.value} ({counts[kind]})") for kind in DefectKind if counts[kind]]
    sizes = [cv2.getTextSize(text, _FONT, style.font_scale, style.text_px) for _, text in entries]
    line_h = max(h + b for (_, h), b in sizes) + style.pad_px
    swatch = line_h - style.pad_px
    box_w = swatch + 3 * style.pad_px + max(w for (w, _), _ in sizes)
    box_h = line_h * len(entries) + style.pad_px
    x0, y0 = style.pad_px, height - style.pad_px - box_h
    _shade(canvas, (x0, y0, box_w, box_h))
    for i, (kind, text) in enumerate(entries):
        top = y0 + style.pad_px + i * line_h
        cv2.rectangle(
            canvas,
            (x0 + style.pad_px, top),
            (x0 + style.pad_px + swatch, top + swatch),
            _KIND_BGR.get(kind, _UNKNOWN_KIND_BGR),
            -1,
        )
        cv2.putText(
            canvas,
            _ascii(text),
            (x0 + 2 * style.pad_px + swatch, top + swatch),
            _FONT,
            style.font_scale,
            (255, 255, 255),
            style.text_px,
            cv2.LINE_AA,
        )
    return [(x0, y0, box_w, box_h)]


def _draw_scale_bar(canvas: np.ndarray, um_per_px: float, style: _Style) -> list[_Box]:
    """Bottom-right: a bar of a round length (1, 2 or 5 x 10^k µm) about a sixth of the frame wide."""
    height, width = canvas.shape[:2]
    length_um = _round_length(width * um_per_px / 6.0)
    length_px = round(length_um / um_per_px)
    if length_px < 4 * style.line_px:
        return []
    label = f"{length_um:g} um"
    (tw, th), base = cv2.getTextSize(label, _FONT, style.font_scale, style.text_px)
    bar_h = max(3, 2 * style.line_px)
    box_w = max(length_px, tw) + 2 * style.pad_px
    box_h = th + base + bar_h + 3 * style.pad_px
    x0, y0 = width - style.pad_px - box_w, height - style.pad_px - box_h
    _shade(canvas, (x0, y0, box_w, box_h))
    bar_x = x0 + (box_w - length_px) // 2
    bar_y = y0 + box_h - style.pad_px - bar_h
    cv2.rectangle(canvas, (bar_x, bar_y), (bar_x + length_px - 1, bar_y + bar_h - 1), (255, 255, 255), -1)
    cv2.putText(
        canvas,
        label,
        (x0 + (box_w - tw) // 2, y0 + style.pad_px + th),
        _FONT,
        style.font_scale,
        (255, 255, 255),
        style.text_px,
        cv2.LINE_AA,
    )
    return [(x0, y0, box_w, box_h)]


def _round_length(target_um: float) -> float:
    """Largest 1, 2 or 5 x 10^k not above `target_um` (at least 1e-3)."""
    target_um = max(target_um, 1e-3)
    exponent = math.floor(math.log10(target_um))
    for mantissa in (5, 2, 1):
        value = mantissa * 10.0**exponent
        if value <= target_um * (1 + 1e-9):
            return float(f"{value:.6g}")
    return float(f"{10.0**exponent:.6g}")


@dataclass(frozen=True)
class _Banner:
    title: str
    lines: tuple[str, ...]  # reason lines, wrapped and fitted to the frame width
    title_scale: float
    title_px: int
    title_h: int  # title line height, px
    line_h: int  # reason line height, px
    height_px: int


_BANNER_REASON_LINES = 4  # at most this many lines of reasons (each reason wraps onto up to 2)


def _banner_layout(report: Report, style: _Style, *, width_px: int, frame_h_px: int) -> _Banner:
    """The verdict banner's text: 'FAIL  reject  |  3 defects  |  profile', then the first
    reasons word-wrapped to the frame width, '(+N more)' when some are left out."""
    verdict = report.verdict
    n = len(report.defects)
    title_scale = style.font_scale * 1.5
    title_px = max(1, round(style.text_px * 1.5))
    max_w = width_px - 2 * style.pad_px
    title = _fit(
        _ascii(
            f"{verdict.status.value}  {verdict.action}  |  {n} defect{'s' * (n != 1)}  |  {report.profile}"
        ),
        max_w,
        _FONT_BOLD,
        title_scale,
        title_px,
    )
    lines: list[str] = []
    shown = 0
    for reason in verdict.reasons:
        room = _BANNER_REASON_LINES - len(lines)
        if room <= 0:
            break
        lines += _wrap(_ascii(reason), max_w, max_lines=min(2, room), style=style)
        shown += 1
    if shown < len(verdict.reasons):
        more = f" (+{len(verdict.reasons) - shown} more)"
        lines[-1] = _fit(lines[-1] + more, max_w, _FONT, style.font_scale, style.text_px, keep_end=more)
    (_, th), tb = cv2.getTextSize("Ag", _FONT_BOLD, title_scale, title_px)
    (_, rh), rb = cv2.getTextSize("Ag", _FONT, style.font_scale, style.text_px)
    title_h, line_h = th + tb + style.pad_px, rh + rb + style.pad_px // 2
    height_px = min(frame_h_px, style.pad_px + title_h + line_h * len(lines) + style.pad_px)
    return _Banner(title, tuple(lines), title_scale, title_px, title_h, line_h, height_px)


def _draw_banner(canvas: np.ndarray, status: Status, banner: _Banner, style: _Style) -> None:
    """Fill the top `banner.height_px` rows with the status colour and write the banner text."""
    canvas[: banner.height_px] = _STATUS_BGR[status]
    ink = _STATUS_TEXT_BGR[status]
    y = banner.title_h
    cv2.putText(
        canvas,
        banner.title,
        (style.pad_px, y),
        _FONT_BOLD,
        banner.title_scale,
        ink,
        banner.title_px,
        cv2.LINE_AA,
    )
    y += style.pad_px // 2
    for line in banner.lines:
        y += banner.line_h
        cv2.putText(
            canvas,
            line,
            (style.pad_px, y - style.pad_px // 2),
            _FONT,
            style.font_scale,
            ink,
            style.text_px,
            cv2.LINE_AA,
        )


def _wrap(text: str, max_w: int, *, max_lines: int, style: _Style) -> list[str]:
    """Greedy word wrap of `text` into at most `max_lines` lines of at most `max_w` pixels;
    the last line is cut with '...' when the text does not fit."""

    def width(t: str) -> int:
        return cv2.getTextSize(t, _FONT, style.font_scale, style.text_px)[0][0]

    words = text.split()
    lines: list[str] = []
    current = ""
    for i, word in enumerate(words):
        candidate = f"{current} {word}" if current else word
        if width(candidate) <= max_w or not current:
            current = candidate
            continue
        lines.append(current)
        current = word
        if len(lines) == max_lines - 1:
            current = " ".join(words[i:])
            break
    lines.append(current)
    return [_fit(line, max_w, _FONT, style.font_scale, style.text_px) for line in lines[:max_lines]]


def _label_size(text: str, style: _Style) -> tuple[int, int]:
    """Width and height of a `_label` box for `text`, in pixels."""
    (w, h), base = cv2.getTextSize(_ascii(text), _FONT, style.font_scale, style.text_px)
    pad = max(2, style.pad_px // 2)
    return w + 2 * pad, h + base + 2 * pad


def _label(canvas: np.ndarray, text: str, box: _Box, colour, style: _Style) -> None:
    """`text` in `colour` on a darkened box (readable on any background); box from `_label_size`."""
    _shade(canvas, box)
    (_, h), _ = cv2.getTextSize(_ascii(text), _FONT, style.font_scale, style.text_px)
    pad = max(2, style.pad_px // 2)
    cv2.putText(
        canvas,
        _ascii(text),
        (box[0] + pad, box[1] + pad + h),
        _FONT,
        style.font_scale,
        colour,
        style.text_px,
        cv2.LINE_AA,
    )


def _fit(text: str, max_w: int, font: int, scale: float, thickness: int, *, keep_end: str = "") -> str:
    """`text`, cut and ended with '...' so that it is at most `max_w` pixels wide. `keep_end`, a
    suffix of `text`, is kept whole after the '...'."""
    if cv2.getTextSize(text, font, scale, thickness)[0][0] <= max_w:
        return text
    head = text[: len(text) - len(keep_end)] if keep_end and text.endswith(keep_end) else text
    tail = "..." + (keep_end if head is not text else "")
    lo, hi = 0, len(head)
    while lo < hi:  # longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if cv2.getTextSize(head[:mid] + tail, font, scale, thickness)[0][0] <= max_w:
            lo = mid
        else:
            hi = mid - 1
    return head[:lo].rstrip() + tail


def _shade(canvas: np.ndarray, box: _Box) -> None:
    """Darken a rectangle to 30 % so that text on it reads; clipped to the canvas."""
    height, width = canvas.shape[:2]
    x, y, w, h = box
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if x1 > x0 and y1 > y0:
        region = canvas[y0:y1, x0:x1]
        region[...] = (region.astype(np.uint16) * 3 // 10).astype(np.uint8)


def _overlap(a: _Box, b: _Box) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _pt(xy: tuple[float, float]) -> tuple[int, int]:
    return round(xy[0]), round(xy[1])


_ASCII = {
    "µ": "u",
    "μ": "u",
    "–": "-",
    "—": "-",
    "…": "...",
    "×": "x",
    "≤": "<=",
    "≥": ">=",
    "°": " deg",
    "±": "+/-",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
}


def _ascii(text: str) -> str:
    """Hershey fonts draw ASCII only: µ becomes u, other symbols their ASCII spelling, the rest '?'."""
    text = "".join(_ASCII.get(ch, ch) for ch in text)
    text = re.sub(r"\s+", " ", text)
    return text.encode("ascii", "replace").decode("ascii")


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------

# Spelled out, not derived from DefectKind, so the order never moves: a new kind gets a new
# column at the end (a test fails until it has one).
_CSV_KINDS = (
    DefectKind.SCRATCH,
    DefectKind.DIG,
    DefectKind.PARTICLE,
    DefectKind.OIL,
    DefectKind.CHIP,
    DefectKind.CRACK,
    DefectKind.ANOMALY,
)
CSV_COLUMNS: tuple[str, ...] = (
    "path",
    "status",
    "action",
    "n_defects",
    *(f"n_{kind.value}" for kind in _CSV_KINDS),
    "um_per_px",
    "center_x_px",
    "center_y_px",
    "cladding_radius_px",
    "quality_ok",
    "reasons",
    "total_ms",
)


def write_csv(reports: Iterable[Report], path: Path) -> None:
    """Write one row per report to `path` (UTF-8, header row, written atomically).

    Columns, in this order (`CSV_COLUMNS`):

    - path: image path as given to the inspector
    - status: PASS, FAIL or UNDETERMINED
    - action: accept, clean and re-inspect, reject or re-image
    - n_defects: number of defects
    - n_scratch, n_dig, n_particle, n_oil, n_chip, n_crack, n_anomaly: defects per kind
    - um_per_px: micrometres per pixel (6 significant digits)
    - center_x_px, center_y_px: fiber centre in pixels (0.1 px)
    - cladding_radius_px: fitted cladding radius in pixels (0.1 px)
    - quality_ok: true or false
    - reasons: the first three verdict reasons joined with " | ", then "(+N more)" if there are more
    - total_ms: ``timing_ms["total"]`` (0.1 ms)

    Unknown values (no geometry, no recorded total) are empty cells. Columns are only ever
    added at the end, so readers that go by name or position keep working.
    """
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for report in reports:
        writer.writerow(_csv_row(report))
    _atomic_write(Path(path), buffer.getvalue().encode("utf-8"))


def _csv_row(report: Report) -> list[str]:
    geometry = report.geometry
    counts = Counter(d.kind for d in report.defects)
    um_per_px = report.um_per_px
    if um_per_px is None and geometry is not None:
        um_per_px = geometry.um_per_px
    total_ms = _total_ms(report)
    return [
        report.image.path,
        report.verdict.status.value,
        report.verdict.action,
        str(len(report.defects)),
        *(str(counts[kind]) for kind in _CSV_KINDS),
        "" if um_per_px is None else f"{um_per_px:.6g}",
        "" if geometry is None else f"{geometry.center_xy[0]:.1f}",
        "" if geometry is None else f"{geometry.center_xy[1]:.1f}",
        "" if geometry is None else f"{geometry.cladding_radius_px:.1f}",
        "true" if report.quality.ok else "false",
        _first_reasons(report.verdict.reasons, " | "),
        "" if total_ms is None else f"{total_ms:.1f}",
    ]


def _first_reasons(reasons: tuple[str, ...], sep: str) -> str:
    text = sep.join(" ".join(r.split()) for r in reasons[:_MAX_REASONS])
    extra = len(reasons) - _MAX_REASONS
    return text + (f" (+{extra} more)" if extra > 0 else "")


def _total_ms(report: Report) -> float | None:
    """The whole inspection's wall time, as the Inspector recorded it under ``timing_ms["total"]``."""
    return report.timing_ms.get("total")


# --------------------------------------------------------------------------------------------
# Legacy layout
# --------------------------------------------------------------------------------------------


def to_legacy(report: Report, profile: Profile) -> dict:
    """The report in the old research pipeline's final-report layout, for teams migrating from it.

    profile: the profile the report was judged with (its zones give the margins).

    Returns a JSON-ready dict::

        {"analysis_summary": {"pass_fail_status": "PASS" | "FAIL" | "UNDETERMINED",
                              "quality_score": float,            # 0-100, 1 decimal
                              "total_merged_defects": int,
                              "failure_reasons": [str]},         # [] for a PASS
         "defects": [{"defect_id": "SCRATCH_0003",  # upper-case kind and the defectscope id
                      "defect_type": "SCRATCH", "location_xy": [x, y],  # int px, a point on the defect
                      "bbox": [x, y, w, h], "area_px": int, "confidence": float,
                      "severity": "NEGLIGIBLE" | "LOW" | "MEDIUM" | "HIGH" | "CRITICAL",
                      "zone": "core",                # the zone's label (its name when it has none)
                      "size_um": float}]}

    Severity and score come from the IEC margins, not from pixel areas. The margin of a defect
    is m = size / largest size its zone admits for its class (scratch width, or diameter for
    other kinds), from `judge.defect_margin`: 0 where the zone does not judge that class, above
    1 (infinite when the zone allows none) when it is not admitted.

    A defect *fails* a zone it is judged in when it is bigger than the zone admits (m > 1 there)
    or when the zone's verdict is FAIL and the defect lies in a size band holding more defects
    than the band allows. Severity:

    - CRITICAL: it fails the innermost zone (the core, A);
    - HIGH: it fails another zone;
    - otherwise NEGLIGIBLE if m == 0, LOW if m <= 0.5, MEDIUM if m <= 1 (within limits but at
      more than half the allowed size).

    quality_score: UNDETERMINED scores 0. A PASS scores 100 * (1 - min(1, worst m) / 2), from
    100 (no defect, or none the rules care about) down to 50 (a defect exactly at its limit).
    A FAIL scores 50 / worst excess, where the worst excess is the largest m, or, for a count
    failure, count / allowed; an infinite excess (something in a zone that allows none) scores
    0, and a FAIL never scores 50 or more (capped at 49.9). So score >= 50 means PASS.
    """
    defects = report.defects
    status = report.verdict.status
    margins = {d.id: defect_margin(d, profile) for d in defects}
    failing, count_excess = _failing_zones(report, profile)
    innermost = profile.zones[0].name
    labels = {z.name: (z.label or z.name) for z in profile.zones}
    legacy_defects = []
    for d in defects:
        kind = d.kind.value.upper()
        legacy_defects.append(
            {
                "defect_id": f"{kind}_{d.id:04d}",
                "defect_type": kind,
                "location_xy": [round(d.centroid_xy[0]), round(d.centroid_xy[1])],
                "bbox": list(d.bbox_xywh),
                "area_px": int(d.area_px),
                "confidence": round(float(d.confidence), 3),
                "severity": _severity(margins[d.id], failing.get(d.id, set()), innermost),
                "zone": labels.get(d.zone, d.zone),
                "size_um": round(float(d.size_um), 2),
            }
        )
    return {
        "analysis_summary": {
            "pass_fail_status": status.value,
            "quality_score": _quality_score(status, list(margins.values()), count_excess),
            "total_merged_defects": len(defects),
            "failure_reasons": [] if status == Status.PASS else list(report.verdict.reasons),
        },
        "defects": legacy_defects,
    }


def write_legacy(report: Report, profile: Profile, path: Path) -> None:
    """Write `to_legacy(report, profile)` as pretty JSON (UTF-8), atomically."""
    text = json.dumps(to_legacy(report, profile), indent=2, ensure_ascii=False, allow_nan=False)
    _atomic_write(Path(path), (text + "\n").encode("utf-8"))


def _severity(margin: float, failing_zones: set[str], innermost: str) -> str:
    if failing_zones:
        return "CRITICAL" if innermost in failing_zones else "HIGH"
    if margin == 0:
        return "NEGLIGIBLE"
    if margin <= 0.5:
        return "LOW"
    return "MEDIUM"  # m <= 1 here: m > 1 always fails its zone


def _quality_score(status: Status, margins: list[float], count_excess: float) -> float:
    worst_m = max(margins, default=0.0)
    if status == Status.PASS:
        return round(100.0 * (1.0 - min(1.0, worst_m) / 2.0), 1)
    if status == Status.FAIL:
        excess = max(worst_m, count_excess)
        if math.isinf(excess):
            return 0.0
        return min(49.9, round(50.0 / max(1.0, excess), 1))
    return 0.0


def _failing_zones(report: Report, profile: Profile) -> tuple[dict[int, set[str]], float]:
    """Zones each defect fails (by defect id), and the worst count / allowed over count failures.

    Size: the margin in that zone alone is above 1. Count: the zone's verdict is FAIL and the
    defect's size band in that zone holds more defects than the band's max_count.
    """
    rules = {z.name: z for z in profile.zones}
    failing: dict[int, set[str]] = defaultdict(set)
    members: dict[tuple[str, bool, int], list[int]] = defaultdict(list)  # (zone, is scratch, band) -> ids
    for d in report.defects:
        is_scratch = d.kind == DefectKind.SCRATCH
        for zone_name in judged_zones(d):
            rule = rules.get(zone_name)
            if rule is None:
                continue
            if defect_margin(_judged_only_in(d, zone_name), profile) > 1.0:
                failing[d.id].add(zone_name)
            bands = rule.scratches if is_scratch else rule.defects
            band = _band_index(bands, d.size_um)
            if band is not None:
                members[(zone_name, is_scratch, band)].append(d.id)
    worst_excess = 0.0
    for (zone_name, is_scratch, band), ids in members.items():
        zone_verdict = report.verdict.zones.get(zone_name)
        if zone_verdict is None or zone_verdict.status != Status.FAIL:
            continue
        rule = rules[zone_name]
        allowed = (rule.scratches if is_scratch else rule.defects)[band].max_count
        if allowed is not None and len(ids) > allowed:
            worst_excess = max(worst_excess, len(ids) / allowed if allowed else math.inf)
            for defect_id in ids:
                failing[defect_id].add(zone_name)
    return dict(failing), worst_excess


def _judged_only_in(defect: Defect, zone_name: str) -> Defect:
    """The same defect as if it touched only `zone_name` (for its margin in that zone alone)."""
    return defect.model_copy(update={"zone": zone_name, "zones": (zone_name,)})


def _band_index(bands: list[SizeBand] | str, size_um: float) -> int | None:
    if bands == "unlimited":
        return None
    return next((i for i, band in enumerate(bands) if band.admits(size_um)), None)


# --------------------------------------------------------------------------------------------
# Terminal
# --------------------------------------------------------------------------------------------


def summary_line(report: Report) -> str:
    """One plain-text line for a terminal (the CLI adds colour), e.g.

    ``PASS  endface_01.png  0 defects  12.3 ms``
    ``FAIL  x.png  zone B: 2 defects of 2-5 µm, at most 1 allowed (+1 more)  11.8 ms``

    PASS shows the defect count; FAIL and UNDETERMINED show the first reason and how many more
    there are. The time is ``timing_ms["total"]`` and is left out when not recorded.
    """
    status = report.verdict.status
    name = re.split(r"[\\/]", report.image.path.rstrip("\\/"))[-1] or report.image.path
    parts = [status.value, name]
    reasons = report.verdict.reasons
    if status == Status.PASS or not reasons:
        n = len(report.defects)
        parts.append(f"{n} defect{'s' * (n != 1)}")
    else:
        more = f" (+{len(reasons) - 1} more)" if len(reasons) > 1 else ""
        parts.append(" ".join(reasons[0].split()) + more)
    total_ms = _total_ms(report)
    if total_ms is not None:
        parts.append(f"{total_ms:.1f} ms")
    return "  ".join(parts)


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same folder and ``os.replace``.

    The temporary file is fsynced before the rename, so after a crash `path` holds either its
    previous content or `data`, never part of it. The new file gets the usual permissions
    (0o666 minus the umask), like a file opened with ``open(path, "wb")``.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------------
# python -m defectscope.report --write-schema
# --------------------------------------------------------------------------------------------


def _main(argv: list[str] | None = None) -> int:
    import argparse

    default = Path(__file__).resolve().parent.joinpath(*_SCHEMA_RESOURCE)
    parser = argparse.ArgumentParser(
        prog="python -m defectscope.report",
        description="Maintain the committed report JSON Schema. "
        "Example: python -m defectscope.report --write-schema",
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write-schema", action="store_true", help=f"regenerate the schema file ({default})")
    action.add_argument(
        "--check-schema", action="store_true", help="exit 1 when the schema file is out of date"
    )
    parser.add_argument("--out", type=Path, default=default, help="schema file path (default: the package's)")
    args = parser.parse_args(argv)
    text = _schema_text(_build_report_schema())
    if args.check_schema:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if json.loads(current or "null") != json.loads(text):
            parser.exit(1, f"{args.out} is out of date; run: python -m defectscope.report --write-schema\n")
        parser.exit(0, f"{args.out} is up to date\n")
    _atomic_write(args.out, text.encode("utf-8"))
    parser.exit(0, f"wrote {args.out}\n")
    return 0


if __name__ == "__main__":
    _main()
