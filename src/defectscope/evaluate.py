"""Score inspection reports against ground truth: verdicts first, then geometry, defects and sizes.

Three entry points, one result type each:

- `evaluate_reports(truth_dir, reports_dir)`: ``<stem>.truth.json`` files against ``<stem>.json``
  reports already on disk.
- `evaluate_inspection(truth_dir, inspect)`: calls ``inspect(image_path) -> Report`` on every
  truth's image (the CLI passes ``Inspector.inspect``), optionally saves the reports, then scores
  them exactly like `evaluate_reports`.
- `evaluate_labels(labels_csv, reports_dir)`: image-level labels (clean, dirty, ...) against reports.

The first two return an `Evaluation`, the third a `LabelEvaluation`; both have ``to_dict()`` (plain
JSON data) and ``render_table()`` (plain text for a terminal).

Pairing
-------
A report belongs to the truth whose image file has the same stem as the report's ``image.path``
(``.../img_0007.png`` <-> ``img_0007.truth.json`` naming ``img_0007.png``). A truth without a report
is a *missing report*: it is listed, counts as a wrong verdict, its defects count as missed, and it
never disappears from a figure. Reports without a truth are listed as unmatched and not scored.
The report's ``profile`` selects ``Truth.expected[profile]`` and the zones used below; a missing
report takes the profile shared by all present reports, or else the truth's own ``profile``.

Degraded truths (``Truth.degraded`` set: defocus, no fiber, ...) are scored on their verdict only;
geometry and defect figures use the other images.

Coordinates
-----------
Distances are in pixels of the report's frame. Truth coordinates are in the image's own pixels; a
truth with ``geometry.pixel_aspect`` = a != 1 (pixel height / width) is first mapped to the
square-pixel frame the way `geometry.square_pixels` resamples it: y *= a when a >= 1, else x /= a.
A truth defect's size in pixels is ``size_um / um_per_px`` with the truth's exact ``um_per_px``
(the report's when the truth has no geometry).

Defect matching (exact rule)
----------------------------
Per image, every (reported defect r, truth defect t) pair is *eligible* when:

- t is a scratch (kind ``scratch``): the distance from r's centroid to t's polyline (nearest point
  on any segment; to t's centroid when it has no polyline) is <= max(3 px, t.width_px + 2 px),
  where t.width_px = t.size_um / um_per_px;
- t is any other kind: the distance between r's and t's centroids is <= max(3 px, 0.5 *
  t.size_px + 2 px), where t.size_px = t.size_um / um_per_px (enclosing diameter);
- either kind, also: t's polygon (>= 3 vertices, boundary included) contains r's centroid.

The rule is chosen by the *truth* kind; the reported kind does not matter (kinds need not agree;
`DefectScores.kind_confusion` counts truth kind x reported kind over matches). The distance of a
pair is the one measured above (point-to-polyline for a truth scratch, centroid-to-centroid
otherwise), also for pairs eligible only by polygon containment. Eligible pairs are then matched
greedily one-to-one by ascending distance (ties: lower truth id, then lower report id): a pair is
taken when neither member is taken yet.

Truth defects entirely outside the profile's zones (``zones_touched(profile, *radial_extent_um)``
is empty) are excluded from recall; they still take part in matching, and a reported defect matched
to one is *ignored*: neither a true nor a false positive (counted in ``n_ignored``). Every other
reported defect that matches nothing is a false positive, listed per image.

Zones of a truth defect come from ``zones_touched`` with the report's profile: a scratch is judged
in every zone it touches, another defect in the innermost one. "In A-B" means a judged zone is
named A or B (likewise C-D); the headline recalls cover every kind. Size buckets (µm; truth size
for recall, reported size for precision; scratches by width): <2, 2-5, 5-10, 10-30, >=30, lower
bound included.

Statistics: medians and p95 use NumPy's linear-interpolation percentile; a rate or statistic over
nothing is None (shown as "n/a"), never 0.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import DefectscopeError, TruthFormatError
from .profile import Profile, load_profile
from .records import Defect, DefectKind, Report, Status
from .synth.truth import Truth, TruthDefect, read_truth, zones_touched

__all__ = [
    "evaluate_reports",
    "evaluate_inspection",
    "evaluate_labels",
    "Evaluation",
    "ProfileEvaluation",
    "VerdictScores",
    "GeometryScores",
    "DefectScores",
    "DetectionScores",
    "RecallFigure",
    "ErrorStats",
    "ImageDisagreement",
    "MissedDefect",
    "FalseDetection",
    "LabelEvaluation",
    "LabelAgreement",
    "LabelDisagreement",
    "UnmatchedLabel",
    "DuplicateGroup",
    "SIZE_BUCKETS_UM",
    "LABELS",
]

log = logging.getLogger(__name__)

EVALUATION_SCHEMA = "defectscope.evaluation/1"
LABEL_EVALUATION_SCHEMA = "defectscope.label-evaluation/1"

MATCH_FLOOR_PX = 3.0  # no tolerance is smaller than this
MATCH_MARGIN_PX = 2.0  # added to half the truth size (regions) or the truth width (scratches)

# (label, lower bound included, upper bound excluded), µm.
SIZE_BUCKETS_UM: tuple[tuple[str, float, float], ...] = (
    ("<2", 0.0, 2.0),
    ("2-5", 2.0, 5.0),
    ("5-10", 5.0, 10.0),
    ("10-30", 10.0, 30.0),
    (">=30", 30.0, math.inf),
)

# Image-level labels and the verdict consistent with each; other:<raw> has no expectation.
LABELS: dict[str, Status] = {
    "clean": Status.PASS,
    "dirty": Status.FAIL,
    "scratched": Status.FAIL,
    "dirty+scratched": Status.FAIL,
}

_STATUSES = (Status.PASS, Status.FAIL, Status.UNDETERMINED)
_KINDS = tuple(k.value for k in DefectKind)
_HEADLINES = (("recall_ab_ge_2um", ("A", "B"), 2.0), ("recall_cd_ge_5um", ("C", "D"), 5.0))

ReportWriter = Callable[[Report, Path], object]


# ---------------------------------------------------------------------------------------------
# Result records


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def to_dict(self) -> dict:
        """Plain JSON-ready data (str keys, no enums, None for undefined figures)."""
        return self.model_dump(mode="json", by_alias=True)


class ErrorStats(_Result):
    """Absolute errors over n items: median, p95, max (and the image holding the max).

    median_signed: median of the signed error (reported minus truth), the bias; None for
    distances, which have no sign.
    """

    n: int = 0
    median: float | None = None
    p95: float | None = None
    max: float | None = None
    max_image: str | None = None
    median_signed: float | None = None


class VerdictScores(_Result):
    """Expected (truth) vs reported status.

    confusion[expected][reported]: counts over inspected images (3x3, every cell present).
    missing_by_expected[expected]: images of that expected status without a report.
    accuracy: exact matches / all images; a missing report counts as wrong.
    false_pass_rate: reported PASS / inspected images whose expected status is FAIL or
    UNDETERMINED (degraded ones included). The worst error this product can make.
    safe_disagreements: expected UNDETERMINED, reported FAIL (wrong, but never ships a bad part).
    false_reject_rate: reported FAIL or UNDETERMINED / inspected images expected PASS.
    """

    n_images: int
    n_inspected: int
    n_missing: int
    confusion: dict[str, dict[str, int]]
    missing_by_expected: dict[str, int]
    n_correct: int
    accuracy: float | None
    n_expected_not_pass: int
    false_pass_count: int
    false_pass_rate: float | None
    safe_disagreements: int
    n_expected_pass: int
    false_reject_count: int
    false_reject_rate: float | None


class GeometryScores(_Result):
    """Centre and cladding radius errors over non-degraded images with truth and reported geometry.

    n_expected_missing: non-degraded images with truth geometry whose report has none (a missing
    report included). radius_error_pct: 100 * (reported - truth) / truth cladding radius, px.
    """

    n_compared: int
    n_expected_missing: int
    centre_error_px: ErrorStats
    radius_error_pct: ErrorStats


class DetectionScores(_Result):
    """Recall over truth defects and precision over reported defects of one kind or size bucket.

    Recall groups truth defects by the truth kind/size, precision groups reported defects by the
    reported kind/size. n_found: truth defects matched; n_correct: reported defects matched.
    """

    n_truth: int = 0
    n_found: int = 0
    recall: float | None = None
    n_reported: int = 0
    n_correct: int = 0
    precision: float | None = None


class RecallFigure(_Result):
    n_truth: int
    n_found: int
    recall: float | None


class DefectScores(_Result):
    """Defect-level figures over the non-degraded images (missing reports included: all missed).

    n_truth: truth defects inside the profile's zones; n_truth_excluded: outside every zone.
    n_reported: reported defects on scored images; n_ignored of them matched an excluded truth
    defect and count nowhere; n_false_positive = n_reported - n_correct - n_ignored.
    size_error_um[kind | "all"]: |reported - truth size_um| over matched pairs by truth kind
    (scratches by width).
    """

    n_images: int
    n_truth: int
    n_truth_excluded: int
    n_reported: int
    n_found: int
    n_missed: int
    n_correct: int
    n_false_positive: int
    n_ignored: int
    recall: float | None
    precision: float | None
    recall_ab_ge_2um: RecallFigure
    recall_cd_ge_5um: RecallFigure
    by_kind: dict[str, DetectionScores]
    by_size: dict[str, DetectionScores]
    kind_confusion: dict[str, dict[str, int]]  # truth kind -> reported kind -> matches
    size_error_um: dict[str, ErrorStats]


class ProfileEvaluation(_Result):
    profile: str
    n_images: int
    n_degraded: int
    verdict: VerdictScores
    geometry: GeometryScores
    defects: DefectScores


class MissedDefect(_Result):
    """A truth defect no report matched. zone: innermost touched; zones: all touched.

    nearest_px: distance (by this truth defect's rule) to the nearest reported defect, any kind,
    None when the image has none; tolerance_px: the distance it had to be within.
    """

    id: int
    kind: str
    size_um: float
    zone: str
    zones: tuple[str, ...]
    note: str = ""
    nearest_px: float | None = None
    tolerance_px: float


class FalseDetection(_Result):
    """A reported defect that matched no truth defect; nearest truth defect for context."""

    id: int
    kind: str
    size_um: float
    zone: str
    zones: tuple[str, ...] = ()
    nearest_truth_id: int | None = None
    nearest_truth_px: float | None = None


class ImageDisagreement(_Result):
    """One image whose verdict differs from the truth, whose report is missing, or with defect errors.

    problem: "false pass" | "missing report" | "verdict" | "defects" (sorted in that order).
    report / overlay: paths relative to the reports directory (None when absent).
    """

    image: str
    truth_file: str
    report: str | None
    overlay: str | None
    profile: str
    problem: Literal["false pass", "missing report", "verdict", "defects"]
    expected_status: Status
    expected_reasons: tuple[str, ...]
    reported_status: Status | None
    reported_reasons: tuple[str, ...]
    degraded: str | None = None
    missed: tuple[MissedDefect, ...] = ()
    false_detections: tuple[FalseDetection, ...] = ()
    note: str = ""


_PROBLEM_ORDER = {"false pass": 0, "missing report": 1, "verdict": 2, "defects": 3}


class Evaluation(_Result):
    """Accuracy of reports against ground truth, per profile, with every disagreement listed."""

    schema_: Literal["defectscope.evaluation/1"] = Field(default=EVALUATION_SCHEMA, alias="schema")
    mode: Literal["reports", "inspect"]
    truth_dir: str
    reports_dir: str | None
    n_truth: int
    n_reports: int
    missing_reports: tuple[str, ...]  # truth image names without a report
    unmatched_reports: tuple[str, ...]  # report files without a truth
    ignored_files: tuple[str, ...]  # *.json in the reports dir that are not reports (truth, other schema)
    profiles: dict[str, ProfileEvaluation]
    disagreements: tuple[ImageDisagreement, ...]

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def render_table(self, *, max_disagreements: int = 25) -> str:
        """Plain-text summary: per profile verdicts, geometry, defects; then the first disagreements."""
        return _render_evaluation(self, max_disagreements)


class LabelAgreement(_Result):
    """Reported statuses for the unique images carrying one label.

    consistent: clean -> PASS, dirty/scratched/dirty+scratched -> FAIL (None for other:*).
    consistent_rate: n_consistent / (n_pass + n_fail); UNDETERMINED is counted apart
    (undetermined_rate over all reported images of the label). n_missing: rows without a report.
    """

    label: str
    expected: Status | None
    n_images: int
    n_pass: int
    n_fail: int
    n_undetermined: int
    n_missing: int
    n_consistent: int | None
    consistent_rate: float | None
    undetermined_rate: float | None


class UnmatchedLabel(_Result):
    file: str
    label: str
    reason: str


class DuplicateGroup(_Result):
    """Byte-identical images (same sha256 in their reports), counted once."""

    sha256: str
    files: tuple[str, ...]
    labels: tuple[str, ...]


class LabelDisagreement(_Result):
    file: str
    label: str
    report: str
    overlay: str | None
    reported_status: Status
    reported_reasons: tuple[str, ...]


class LabelEvaluation(_Result):
    """Image-level labels vs reported verdicts, duplicates (same sha256) counted once."""

    schema_: Literal["defectscope.label-evaluation/1"] = Field(
        default=LABEL_EVALUATION_SCHEMA, alias="schema"
    )
    labels_csv: str
    reports_dir: str
    n_rows: int
    n_matched_rows: int
    n_unique_images: int
    n_unlabelled_reports: int
    profiles: tuple[str, ...]
    per_label: dict[str, LabelAgreement]
    duplicates: tuple[DuplicateGroup, ...]
    unmatched: tuple[UnmatchedLabel, ...]
    disagreements: tuple[LabelDisagreement, ...]
    notes: tuple[str, ...] = ()

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def render_table(self, *, max_disagreements: int = 25) -> str:
        return _render_labels(self, max_disagreements)


# ---------------------------------------------------------------------------------------------
# Public entry points


def evaluate_reports(truth_dir: str | Path, reports_dir: str | Path) -> Evaluation:
    """Score the ``<stem>.json`` reports in `reports_dir` against the ``*.truth.json`` in `truth_dir`.

    Both directories are read flat (no sub-folders). In `reports_dir`, ``*.truth.json`` files and
    JSON files declaring another ``schema`` (e.g. a saved evaluation) are skipped and listed in
    `Evaluation.ignored_files`; any other ``*.json`` must be a valid report.

    Raises TruthFormatError naming the file for a missing or empty truth directory, a missing
    reports directory, a malformed truth or report, or two files claiming the same image stem;
    ProfileError when a report names a profile that cannot be loaded.
    """
    truth_dir, reports_dir = Path(truth_dir), Path(reports_dir)
    truths = _read_truths(truth_dir)
    reports, ignored = _read_reports(reports_dir)
    cases: list[_Case] = []
    for stem, (truth_path, truth) in truths.items():
        found = reports.get(stem)
        if found is None:
            cases.append(
                _Case(
                    truth_path, truth, None, None, None, f"no report for image stem {stem!r} in {reports_dir}"
                )
            )
            continue
        report_path, report = found
        cases.append(_Case(truth_path, truth, report, report_path.name, _overlay_for(report_path), ""))
    unmatched = tuple(sorted(path.name for stem, (path, _) in reports.items() if stem not in truths))
    return _evaluate(
        cases,
        mode="reports",
        truth_dir=truth_dir,
        reports_dir=reports_dir,
        unmatched=unmatched,
        ignored=tuple(ignored),
    )


def evaluate_inspection(
    truth_dir: str | Path,
    inspect: Callable[[Path], Report],
    *,
    reports_out: Path | None = None,
    write_report: ReportWriter | None = None,
) -> Evaluation:
    """Inspect every truth's image with `inspect`, optionally save the reports, and score them.

    inspect: ``inspect(image_path) -> Report``, e.g. ``Inspector.inspect``. A DefectscopeError it
    raises makes that image a missing report with the error as reason (a failure to inspect);
    anything else propagates.
    reports_out: folder for the reports, written as ``<image stem>.json`` (created if needed), so
    the same folder can later be scored with `evaluate_reports`. Overlays found there as
    ``<stem>.overlay.png`` are linked from the disagreements.
    write_report: ``write_report(report, json_path)`` saves one report (and may write its overlay
    next to it); default writes ``report.to_json(indent=1)``. Ignored without `reports_out`.

    Raises TruthFormatError for a missing/empty/malformed truth directory or a truth whose image
    file does not exist.
    """
    truth_dir = Path(truth_dir)
    truths = _read_truths(truth_dir)
    if reports_out is not None:
        reports_out = Path(reports_out)
        reports_out.mkdir(parents=True, exist_ok=True)
    cases: list[_Case] = []
    for stem, (truth_path, truth) in truths.items():
        image_path = truth_path.parent / truth.image
        if not image_path.is_file():
            raise TruthFormatError(
                f"{truth_path}: its image {truth.image!r} does not exist at {image_path}; "
                "regenerate the truth set or copy the images next to the truth files"
            )
        try:
            report = inspect(image_path)
        except DefectscopeError as exc:
            log.warning("evaluate.inspect_failed", extra={"image": str(image_path), "error": str(exc)})
            cases.append(_Case(truth_path, truth, None, None, None, f"inspection failed: {exc}"))
            continue
        if not isinstance(report, Report):
            raise TypeError(f"inspect({image_path}) returned {type(report).__name__}, expected a Report")
        report_name = overlay = None
        if reports_out is not None:
            json_path = reports_out / f"{stem}.json"
            if write_report is None:
                json_path.write_text(report.to_json(indent=1), encoding="utf-8")
            else:
                write_report(report, json_path)
            report_name, overlay = json_path.name, _overlay_for(json_path)
        cases.append(_Case(truth_path, truth, report, report_name, overlay, ""))
    return _evaluate(
        cases, mode="inspect", truth_dir=truth_dir, reports_dir=reports_out, unmatched=(), ignored=()
    )


def evaluate_labels(labels_csv: str | Path, reports_dir: str | Path) -> LabelEvaluation:
    """Compare image-level labels (CSV ``file,label[,...]``) with the verdicts of the reports.

    labels: clean | dirty | scratched | dirty+scratched | other:<raw>. A row's ``file`` is found
    among the reports' ``image.path`` in this order: (1) the same file, taking ``file`` relative to
    the CSV's parent's parent (the layout of shared/data: ``fiber-real/labels_thirdparty.csv`` lists
    ``fiber-real/...``); (2) a report path ending with the same path components as ``file``;
    (3) the same base name, when exactly one report has it or all reports with it share one
    sha256. Otherwise the row is listed as unmatched with the reason. Images with the same sha256
    are counted once per label (groups listed in `LabelEvaluation.duplicates`).

    Raises TruthFormatError naming the file and line for a missing/malformed CSV or an unknown
    label, and for malformed reports (see `evaluate_reports`).
    """
    labels_csv, reports_dir = Path(labels_csv), Path(reports_dir)
    rows = _read_labels(labels_csv)
    reports, _ = _read_reports(reports_dir)
    entries = sorted(reports.values(), key=lambda e: e[0].name)
    return _score_labels(rows, entries, labels_csv=labels_csv, reports_dir=reports_dir)


# ---------------------------------------------------------------------------------------------
# Reading inputs


@dataclass(frozen=True)
class _Case:
    truth_path: Path
    truth: Truth
    report: Report | None
    report_file: str | None  # relative to the reports dir
    overlay: str | None  # relative to the reports dir
    missing_reason: str


def _image_stem(path: str) -> str:
    """Stem of a report's image path, whether written with / or \\ separators."""
    return PureWindowsPath(path).stem


def _read_truths(truth_dir: Path) -> dict[str, tuple[Path, Truth]]:
    if not truth_dir.is_dir():
        raise TruthFormatError(
            f"{truth_dir}: truth directory not found; give the folder holding the "
            "*.truth.json files written by the synthetic generator"
        )
    files = sorted(truth_dir.glob("*.truth.json"))
    if not files:
        raise TruthFormatError(
            f"{truth_dir}: no *.truth.json files in this folder; generate a truth set first"
        )
    truths: dict[str, tuple[Path, Truth]] = {}
    for path in files:
        truth = read_truth(path)
        if truth.geometry is not None and truth.geometry.pixel_aspect <= 0:
            raise TruthFormatError(
                f"{path}: geometry.pixel_aspect must be > 0, got {truth.geometry.pixel_aspect}"
            )
        stem = _image_stem(truth.image)
        if stem in truths:
            raise TruthFormatError(
                f"{path}: its image stem {stem!r} is also claimed by "
                f"{truths[stem][0].name}; each truth must name a different image"
            )
        truths[stem] = (path, truth)
    return truths


def _read_reports(reports_dir: Path) -> tuple[dict[str, tuple[Path, Report]], list[str]]:
    if not reports_dir.is_dir():
        raise TruthFormatError(f"{reports_dir}: reports directory not found")
    reports: dict[str, tuple[Path, Report]] = {}
    ignored: list[str] = []
    for path in sorted(reports_dir.glob("*.json")):
        if path.name.endswith(".truth.json"):
            ignored.append(path.name)
            continue
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise TruthFormatError(f"{path}: cannot read it ({exc.strerror})") from None
        try:
            report = Report.from_json(raw)
        except ValidationError as exc:
            if _declares_other_schema(raw):
                ignored.append(path.name)  # e.g. a saved evaluation: not a report, not malformed
                continue
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise TruthFormatError(
                f"{path}: not a defectscope report: field {where}: {first['msg']}"
            ) from None
        stem = _image_stem(report.image.path)
        if stem in reports:
            raise TruthFormatError(
                f"{path}: reports the image stem {stem!r} like {reports[stem][0].name}; "
                "keep one report per image in a reports folder"
            )
        reports[stem] = (path, report)
    return reports, ignored


def _declares_other_schema(raw: bytes) -> bool:
    """True for a JSON object whose "schema" names something other than a defectscope report."""
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    schema = data.get("schema") if isinstance(data, dict) else None
    return isinstance(schema, str) and not schema.startswith("defectscope.report/")


def _overlay_for(report_path: Path) -> str | None:
    overlay = report_path.with_name(f"{report_path.stem}.overlay.png")
    return overlay.name if overlay.is_file() else None


# ---------------------------------------------------------------------------------------------
# Geometry helpers


@dataclass(frozen=True)
class _Frame:
    """Maps truth image pixels to the report's square-pixel frame (see geometry.square_pixels)."""

    sx: float = 1.0
    sy: float = 1.0

    @classmethod
    def for_truth(cls, truth: Truth) -> _Frame:
        a = truth.geometry.pixel_aspect if truth.geometry is not None else 1.0
        return cls(1.0, a) if a >= 1.0 else cls(1.0 / a, 1.0)

    def points(self, xy: Sequence[Sequence[float]]) -> np.ndarray:
        pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return pts * np.array([self.sx, self.sy])


def _point_to_polyline_px(points: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    """Shortest distance from each of points (n, 2) to a polyline (k, 2), k >= 1; returns (n,) px."""
    if len(polyline) == 1:
        return np.hypot(*(points - polyline[0]).T)
    a, b = polyline[:-1], polyline[1:]  # (s, 2) segments
    ab = b - a
    length2 = np.einsum("ij,ij->i", ab, ab)
    ap = points[:, None, :] - a[None, :, :]  # (n, s, 2)
    t = np.clip(np.einsum("nsj,sj->ns", ap, ab) / np.where(length2 > 0, length2, 1.0), 0.0, 1.0)
    offset = ap - t[..., None] * ab[None, :, :]
    return np.hypot(offset[..., 0], offset[..., 1]).min(axis=1)


def _polygon_contains(polygon: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Even-odd rule for each of points (n, 2); points on the boundary (within 1e-6 px) are inside."""
    if len(polygon) < 3:
        return np.zeros(len(points), dtype=bool)
    on_edge = _point_to_polyline_px(points, np.vstack([polygon, polygon[:1]])) <= 1e-6
    x, y = points[:, :1], points[:, 1:]  # (n, 1)
    xi, yi = polygon[:, 0], polygon[:, 1]
    xj, yj = np.roll(xi, 1), np.roll(yi, 1)
    crosses = (yi > y) != (yj > y)  # (n, m)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = xi + (y - yi) * (xj - xi) / (yj - yi)
    inside = np.count_nonzero(crosses & (x < x_at), axis=1) % 2 == 1
    return on_edge | inside


@dataclass(frozen=True)
class _TruthItem:
    defect: TruthDefect
    zones: tuple[str, ...]  # every zone touched, innermost first
    judged: tuple[str, ...]  # scratch: all touched; others: innermost
    included: bool
    centroid: np.ndarray
    polyline: np.ndarray | None
    polygon: np.ndarray | None
    tolerance_px: float

    @property
    def is_scratch(self) -> bool:
        return self.defect.kind == DefectKind.SCRATCH

    def distance_px(self, points: np.ndarray) -> np.ndarray:
        """(n,) distances of points (n, 2) by this defect's rule, px."""
        if self.is_scratch and self.polyline is not None:
            return _point_to_polyline_px(points, self.polyline)
        return np.hypot(*(points - self.centroid).T)

    def eligible(self, points: np.ndarray, distance_px: np.ndarray) -> np.ndarray:
        ok = distance_px <= self.tolerance_px
        if self.polygon is not None:
            ok |= _polygon_contains(self.polygon, points)
        return ok


def _truth_items(truth: Truth, profile: Profile, um_per_px: float | None) -> list[_TruthItem]:
    frame = _Frame.for_truth(truth)
    items = []
    for t in sorted(truth.defects, key=lambda d: d.id):
        touched = zones_touched(profile, *t.radial_extent_um)
        judged = touched if t.kind == DefectKind.SCRATCH else touched[:1]
        size_px = t.size_um / um_per_px if um_per_px else 0.0
        if t.kind == DefectKind.SCRATCH:
            tolerance = max(MATCH_FLOOR_PX, size_px + MATCH_MARGIN_PX)
        else:
            tolerance = max(MATCH_FLOOR_PX, 0.5 * size_px + MATCH_MARGIN_PX)
        items.append(
            _TruthItem(
                defect=t,
                zones=touched,
                judged=judged,
                included=bool(touched),
                centroid=frame.points([t.centroid_xy])[0],
                polyline=frame.points(t.polyline_xy) if t.polyline_xy else None,
                polygon=frame.points(t.polygon_xy) if len(t.polygon_xy) >= 3 else None,
                tolerance_px=tolerance,
            )
        )
    return items


def _match(items: Sequence[_TruthItem], reported: Sequence[Defect]) -> tuple[dict[int, int], np.ndarray]:
    """Greedy one-to-one matching; returns {report index: truth index} and the (n_rep, n_truth) distances."""
    points = np.array([d.centroid_xy for d in reported], dtype=np.float64).reshape(-1, 2)
    dist = np.full((len(reported), len(items)), np.inf)
    pairs = []
    for ti, item in enumerate(items):
        dist[:, ti] = item.distance_px(points)
        for ri in np.flatnonzero(item.eligible(points, dist[:, ti])):
            pairs.append((float(dist[ri, ti]), item.defect.id, reported[ri].id, int(ri), ti))
    pairs.sort()
    taken_r: dict[int, int] = {}
    taken_t: set[int] = set()
    for _, _, _, ri, ti in pairs:
        if ri not in taken_r and ti not in taken_t:
            taken_r[ri] = ti
            taken_t.add(ti)
    return taken_r, dist


# ---------------------------------------------------------------------------------------------
# Scoring


def _bucket(size_um: float) -> str:
    for label, lo, hi in SIZE_BUCKETS_UM:
        if lo <= size_um < hi:
            return label
    return SIZE_BUCKETS_UM[-1][0]


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def _stats(values: Sequence[tuple[float, str]], signed: Sequence[float] | None = None) -> ErrorStats:
    """values: (absolute error, image) pairs."""
    if not values:
        return ErrorStats()
    arr = np.array([v for v, _ in values], dtype=np.float64)
    worst = int(np.argmax(arr))
    return ErrorStats(
        n=len(arr),
        median=float(np.median(arr)),
        p95=float(np.percentile(arr, 95)),
        max=float(arr[worst]),
        max_image=values[worst][1],
        median_signed=float(np.median(signed)) if signed else None,
    )


@dataclass
class _Tally:
    """Accumulates one profile's figures while images are scored."""

    n_images: int = 0
    n_degraded: int = 0
    verdict: Counter = field(default_factory=Counter)  # (expected, reported) -> images
    missing: Counter = field(default_factory=Counter)  # expected -> images without a report
    geometry_centre: list = field(default_factory=list)  # (error px, image)
    geometry_radius: list = field(default_factory=list)  # (|error| %, image)
    geometry_radius_signed: list = field(default_factory=list)
    geometry_missing: int = 0
    n_defect_images: int = 0
    n_truth_excluded: int = 0
    n_ignored: int = 0
    truth_kind: Counter = field(default_factory=Counter)
    found_kind: Counter = field(default_factory=Counter)
    rep_kind: Counter = field(default_factory=Counter)
    correct_kind: Counter = field(default_factory=Counter)
    truth_size: Counter = field(default_factory=Counter)
    found_size: Counter = field(default_factory=Counter)
    rep_size: Counter = field(default_factory=Counter)
    correct_size: Counter = field(default_factory=Counter)
    headline_truth: Counter = field(default_factory=Counter)
    headline_found: Counter = field(default_factory=Counter)
    confusion: Counter = field(default_factory=Counter)  # (truth kind, reported kind) -> matches
    size_err: defaultdict = field(default_factory=lambda: defaultdict(list))  # kind -> [(|error| µm, image)]
    size_err_signed: defaultdict = field(default_factory=lambda: defaultdict(list))


def _evaluate(
    cases: list[_Case],
    *,
    mode: str,
    truth_dir: Path,
    reports_dir: Path | None,
    unmatched: tuple[str, ...],
    ignored: tuple[str, ...],
) -> Evaluation:
    present = {c.report.profile for c in cases if c.report is not None}
    default_profile = next(iter(present)) if len(present) == 1 else None
    profiles: dict[str, Profile] = {}
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    disagreements: list[ImageDisagreement] = []

    for case in cases:
        name = case.report.profile if case.report is not None else (default_profile or case.truth.profile)
        if name not in profiles:
            profiles[name] = load_profile(name)
        disagreement = _score_image(case, name, profiles[name], tallies[name])
        if disagreement is not None:
            disagreements.append(disagreement)

    disagreements.sort(key=lambda d: (_PROBLEM_ORDER[d.problem], d.image))
    result = Evaluation(
        mode=mode,
        truth_dir=str(truth_dir),
        reports_dir=str(reports_dir) if reports_dir is not None else None,
        n_truth=len(cases),
        n_reports=sum(c.report is not None for c in cases),
        missing_reports=tuple(sorted(c.truth.image for c in cases if c.report is None)),
        unmatched_reports=unmatched,
        ignored_files=ignored,
        profiles={name: _profile_evaluation(name, tallies[name]) for name in sorted(tallies)},
        disagreements=tuple(disagreements),
    )
    for name, p in result.profiles.items():
        log.info(
            "evaluate.done",
            extra={
                "profile": name,
                "n_images": p.n_images,
                "false_pass_rate": p.verdict.false_pass_rate,
                "accuracy": p.verdict.accuracy,
                "recall": p.defects.recall,
                "precision": p.defects.precision,
            },
        )
    return result


def _score_image(case: _Case, profile_name: str, profile: Profile, tally: _Tally) -> ImageDisagreement | None:
    truth, report = case.truth, case.report
    expected = truth.expected.get(profile_name)
    if expected is None:
        known = ", ".join(sorted(truth.expected)) or "none"
        raise TruthFormatError(
            f"{case.truth_path}: no expected verdict for profile {profile_name!r} "
            f"(it has: {known}); regenerate the truth set with that profile or inspect "
            "with one of those"
        )
    tally.n_images += 1
    reported_status = report.verdict.status if report is not None else None
    if report is None:
        tally.missing[expected.status] += 1
    else:
        tally.verdict[(expected.status, reported_status)] += 1

    missed: list[MissedDefect] = []
    false_detections: list[FalseDetection] = []
    if truth.degraded is not None:
        tally.n_degraded += 1
    else:
        _score_geometry(case, tally)
        missed, false_detections = _score_defects(case, profile, tally)

    if report is None:
        problem = "missing report"
    elif expected.status != Status.PASS and reported_status == Status.PASS:
        problem = "false pass"
    elif expected.status != reported_status:
        problem = "verdict"
    elif missed or false_detections:
        problem = "defects"
    else:
        return None
    return ImageDisagreement(
        image=truth.image,
        truth_file=case.truth_path.name,
        report=case.report_file,
        overlay=case.overlay,
        profile=profile_name,
        problem=problem,
        expected_status=expected.status,
        expected_reasons=expected.reasons,
        reported_status=reported_status,
        reported_reasons=report.verdict.reasons if report is not None else (),
        degraded=truth.degraded,
        missed=tuple(missed),
        false_detections=tuple(false_detections),
        note=case.missing_reason,
    )


def _score_geometry(case: _Case, tally: _Tally) -> None:
    truth, report = case.truth, case.report
    if truth.geometry is None:
        return
    if report is None or report.geometry is None:
        tally.geometry_missing += 1
        return
    frame = _Frame.for_truth(truth)
    true_centre = frame.points([truth.geometry.center_xy])[0]
    true_radius_px = truth.geometry.cladding_radius_px * frame.sx  # truth radius is along x
    centre_error = float(np.hypot(*(np.asarray(report.geometry.center_xy) - true_centre)))
    radius_error = 100.0 * (report.geometry.cladding_radius_px - true_radius_px) / true_radius_px
    tally.geometry_centre.append((centre_error, truth.image))
    tally.geometry_radius.append((abs(radius_error), truth.image))
    tally.geometry_radius_signed.append(radius_error)


def _truth_um_per_px(case: _Case) -> float | None:
    if case.truth.geometry is not None:
        return case.truth.geometry.um_per_px / _Frame.for_truth(case.truth).sx
    if case.report is not None and case.report.geometry is not None:
        return case.report.geometry.um_per_px
    return None


def _score_defects(
    case: _Case, profile: Profile, tally: _Tally
) -> tuple[list[MissedDefect], list[FalseDetection]]:
    tally.n_defect_images += 1
    items = _truth_items(case.truth, profile, _truth_um_per_px(case))
    reported = list(case.report.defects) if case.report is not None else []
    matches, dist = _match(items, reported)
    matched_truth = {ti: ri for ri, ti in matches.items()}

    for ti, item in enumerate(items):
        t = item.defect
        if not item.included:
            tally.n_truth_excluded += 1
            continue
        found = ti in matched_truth
        tally.truth_kind[t.kind.value] += 1
        tally.found_kind[t.kind.value] += found
        bucket = _bucket(t.size_um)
        tally.truth_size[bucket] += 1
        tally.found_size[bucket] += found
        for headline, zone_names, min_um in _HEADLINES:
            if t.size_um >= min_um and any(z in zone_names for z in item.judged):
                tally.headline_truth[headline] += 1
                tally.headline_found[headline] += found
        if found:
            r = reported[matched_truth[ti]]
            tally.confusion[(t.kind.value, r.kind.value)] += 1
            err = r.size_um - t.size_um
            for key in (t.kind.value, "all"):
                tally.size_err[key].append((abs(err), case.truth.image))
                tally.size_err_signed[key].append(err)

    missed = []
    for ti, item in enumerate(items):
        if item.included and ti not in matched_truth:
            column = dist[:, ti] if len(reported) else np.zeros(0)
            missed.append(
                MissedDefect(
                    id=item.defect.id,
                    kind=item.defect.kind.value,
                    size_um=item.defect.size_um,
                    zone=item.zones[0],
                    zones=item.zones,
                    note=item.defect.note,
                    nearest_px=round(float(column.min()), 2) if column.size else None,
                    tolerance_px=round(item.tolerance_px, 2),
                )
            )

    false_detections = []
    for ri, r in enumerate(reported):
        ti = matches.get(ri)
        if ti is not None and not items[ti].included:
            tally.n_ignored += 1
            continue
        correct = ti is not None
        tally.rep_kind[r.kind.value] += 1
        tally.correct_kind[r.kind.value] += correct
        bucket = _bucket(r.size_um)
        tally.rep_size[bucket] += 1
        tally.correct_size[bucket] += correct
        if not correct:
            nearest = int(np.argmin(dist[ri])) if items else None
            false_detections.append(
                FalseDetection(
                    id=r.id,
                    kind=r.kind.value,
                    size_um=r.size_um,
                    zone=r.zone,
                    zones=r.zones,
                    nearest_truth_id=items[nearest].defect.id if nearest is not None else None,
                    nearest_truth_px=round(float(dist[ri, nearest]), 2) if nearest is not None else None,
                )
            )
    return missed, false_detections


def _profile_evaluation(name: str, t: _Tally) -> ProfileEvaluation:
    confusion = {e.value: {r.value: t.verdict[(e, r)] for r in _STATUSES} for e in _STATUSES}
    n_missing = sum(t.missing.values())
    n_inspected = sum(t.verdict.values())
    n_correct = sum(t.verdict[(s, s)] for s in _STATUSES)
    not_pass = [s for s in _STATUSES if s != Status.PASS]
    n_expected_not_pass = sum(t.verdict[(e, r)] for e in not_pass for r in _STATUSES)
    false_pass = sum(t.verdict[(e, Status.PASS)] for e in not_pass)
    n_expected_pass = sum(t.verdict[(Status.PASS, r)] for r in _STATUSES)
    false_reject = n_expected_pass - t.verdict[(Status.PASS, Status.PASS)]
    verdict = VerdictScores(
        n_images=t.n_images,
        n_inspected=n_inspected,
        n_missing=n_missing,
        confusion=confusion,
        missing_by_expected={s.value: t.missing[s] for s in _STATUSES},
        n_correct=n_correct,
        accuracy=_rate(n_correct, t.n_images),
        n_expected_not_pass=n_expected_not_pass,
        false_pass_count=false_pass,
        false_pass_rate=_rate(false_pass, n_expected_not_pass),
        safe_disagreements=t.verdict[(Status.UNDETERMINED, Status.FAIL)],
        n_expected_pass=n_expected_pass,
        false_reject_count=false_reject,
        false_reject_rate=_rate(false_reject, n_expected_pass),
    )

    geometry = GeometryScores(
        n_compared=len(t.geometry_centre),
        n_expected_missing=t.geometry_missing,
        centre_error_px=_stats(t.geometry_centre),
        radius_error_pct=_stats(t.geometry_radius, t.geometry_radius_signed),
    )

    def detection(truth_n, found_n, rep_n, correct_n, key) -> DetectionScores:
        return DetectionScores(
            n_truth=truth_n[key],
            n_found=found_n[key],
            recall=_rate(found_n[key], truth_n[key]),
            n_reported=rep_n[key],
            n_correct=correct_n[key],
            precision=_rate(correct_n[key], rep_n[key]),
        )

    n_truth = sum(t.truth_kind.values())
    n_found = sum(t.found_kind.values())
    n_reported = sum(t.rep_kind.values())
    n_correct_rep = sum(t.correct_kind.values())
    headlines = {
        h: RecallFigure(
            n_truth=t.headline_truth[h],
            n_found=t.headline_found[h],
            recall=_rate(t.headline_found[h], t.headline_truth[h]),
        )
        for h, _, _ in _HEADLINES
    }
    defects = DefectScores(
        n_images=t.n_defect_images,
        n_truth=n_truth,
        n_truth_excluded=t.n_truth_excluded,
        n_reported=n_reported + t.n_ignored,
        n_found=n_found,
        n_missed=n_truth - n_found,
        n_correct=n_correct_rep,
        n_false_positive=n_reported - n_correct_rep,
        n_ignored=t.n_ignored,
        recall=_rate(n_found, n_truth),
        precision=_rate(n_correct_rep, n_reported),
        **headlines,
        by_kind={k: detection(t.truth_kind, t.found_kind, t.rep_kind, t.correct_kind, k) for k in _KINDS},
        by_size={
            b: detection(t.truth_size, t.found_size, t.rep_size, t.correct_size, b)
            for b, _, _ in SIZE_BUCKETS_UM
        },
        kind_confusion={a: {b: t.confusion[(a, b)] for b in _KINDS} for a in _KINDS},
        size_error_um={k: _stats(t.size_err[k], t.size_err_signed[k]) for k in (*_KINDS, "all")},
    )
    return ProfileEvaluation(
        profile=name,
        n_images=t.n_images,
        n_degraded=t.n_degraded,
        verdict=verdict,
        geometry=geometry,
        defects=defects,
    )


# ---------------------------------------------------------------------------------------------
# Image-level labels


@dataclass(frozen=True)
class _LabelRow:
    line: int
    file: str
    label: str


def _read_labels(labels_csv: Path) -> list[_LabelRow]:
    try:
        text = labels_csv.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise TruthFormatError(f"{labels_csv}: cannot read the labels file ({exc.strerror})") from None
    reader = csv.DictReader(text.splitlines())
    fields = [f.strip() for f in (reader.fieldnames or [])]
    if "file" not in fields or "label" not in fields:
        raise TruthFormatError(
            f"{labels_csv}: expected a header with columns file,label[,...], got "
            f"{','.join(fields) or 'nothing'}"
        )
    rows = []
    for record in reader:
        record = {(k or "").strip(): v.strip() if isinstance(v, str) else v for k, v in record.items()}
        line = reader.line_num
        file, label = record.get("file") or "", record.get("label") or ""
        if not file:
            raise TruthFormatError(f"{labels_csv}:{line}: empty file name")
        if label not in LABELS and not (label.startswith("other:") and len(label) > len("other:")):
            raise TruthFormatError(
                f"{labels_csv}:{line}: unknown label {label!r}; use one of {', '.join(LABELS)} or other:<raw>"
            )
        rows.append(_LabelRow(line, file, label))
    if not rows:
        raise TruthFormatError(f"{labels_csv}: no labelled rows")
    return rows


def _path_parts(path: str) -> tuple[str, ...]:
    return tuple(p for p in PureWindowsPath(path).parts if p not in ("/", "\\"))


def _find_report(
    row: _LabelRow, root: Path, entries: Sequence[tuple[Path, Report]]
) -> tuple[tuple[Path, Report] | None, str]:
    """The report for a label row, by same file, then path suffix, then base name (see evaluate_labels)."""
    target = os.path.normpath(os.path.abspath(root / row.file))
    same = [e for e in entries if os.path.normpath(os.path.abspath(e[1].image.path)) == target]
    if same:
        return same[0], ""
    parts = _path_parts(row.file)
    suffix = [e for e in entries if _path_parts(e[1].image.path)[-len(parts) :] == parts]
    if len(suffix) == 1 or (suffix and _one_content(suffix)):
        return suffix[0], ""
    name = parts[-1]
    by_name = [e for e in entries if _path_parts(e[1].image.path)[-1:] == (name,)]
    if not by_name:
        return None, "no report for this file"
    if len(by_name) == 1 or _one_content(by_name):
        return by_name[0], ""
    return None, (
        f"ambiguous: {len(by_name)} reports of different images named {name} "
        f"({', '.join(e[0].name for e in by_name)})"
    )


def _one_content(entries: Sequence[tuple[Path, Report]]) -> bool:
    shas = {e[1].image.sha256 for e in entries}
    return len(shas) == 1 and "" not in shas


def _score_labels(
    rows: list[_LabelRow], entries: list[tuple[Path, Report]], *, labels_csv: Path, reports_dir: Path
) -> LabelEvaluation:
    root = labels_csv.parent.parent
    unmatched: list[UnmatchedLabel] = []
    missing_files: dict[str, set[str]] = defaultdict(set)
    # one image = one key: its sha256, or its report file when the report has no digest
    images: dict[str, dict] = {}
    used_reports: set[Path] = set()
    for row in rows:
        entry, reason = _find_report(row, root, entries)
        if entry is None:
            unmatched.append(UnmatchedLabel(file=row.file, label=row.label, reason=reason))
            missing_files[row.label].add(row.file)
            continue
        path, report = entry
        used_reports.add(path)
        key = report.image.sha256 or f"report:{path.name}"
        image = images.setdefault(key, {"files": [], "labels": [], "reports": []})
        image["files"].append(row.file)
        image["labels"].append(row.label)
        image["reports"].append(entry)

    notes: list[str] = []
    per_label_status: dict[str, Counter] = defaultdict(Counter)
    duplicates: list[DuplicateGroup] = []
    disagreements: list[LabelDisagreement] = []
    for key, image in sorted(images.items()):
        reports_here = sorted({e[0]: e for e in image["reports"]}.values(), key=lambda e: e[0].name)
        path, report = reports_here[0]
        statuses = {e[1].verdict.status for e in reports_here}
        if len(statuses) > 1:
            notes.append(
                f"identical images got different verdicts ({', '.join(sorted(statuses))}) in "
                f"{', '.join(e[0].name for e in reports_here)}; counted with {path.name}"
            )
        labels = sorted(set(image["labels"]))
        if len(labels) > 1:
            notes.append(
                f"identical images carry different labels ({', '.join(labels)}): "
                f"{', '.join(sorted(set(image['files'])))}; counted once under each label"
            )
        if len(set(image["files"])) > 1 and not key.startswith("report:"):
            duplicates.append(
                DuplicateGroup(sha256=key, files=tuple(sorted(set(image["files"]))), labels=tuple(labels))
            )
        status = report.verdict.status
        for label in labels:
            per_label_status[label][status] += 1
            expected = LABELS.get(label)
            if expected is not None and status != expected:
                disagreements.append(
                    LabelDisagreement(
                        file=sorted(set(image["files"]))[0],
                        label=label,
                        report=path.name,
                        overlay=_overlay_for(path),
                        reported_status=status,
                        reported_reasons=report.verdict.reasons,
                    )
                )

    per_label: dict[str, LabelAgreement] = {}
    for label in sorted(set(per_label_status) | set(missing_files), key=_label_order):
        counts = per_label_status[label]
        expected = LABELS.get(label)
        n_pass, n_fail, n_und = counts[Status.PASS], counts[Status.FAIL], counts[Status.UNDETERMINED]
        n_consistent = counts[expected] if expected is not None else None
        per_label[label] = LabelAgreement(
            label=label,
            expected=expected,
            n_images=n_pass + n_fail + n_und,
            n_pass=n_pass,
            n_fail=n_fail,
            n_undetermined=n_und,
            n_missing=len(missing_files[label]),
            n_consistent=n_consistent,
            consistent_rate=_rate(n_consistent, n_pass + n_fail) if n_consistent is not None else None,
            undetermined_rate=_rate(n_und, n_pass + n_fail + n_und),
        )
    disagreements.sort(key=lambda d: (d.label, d.file))
    return LabelEvaluation(
        labels_csv=str(labels_csv),
        reports_dir=str(reports_dir),
        n_rows=len(rows),
        n_matched_rows=len(rows) - len(unmatched),
        n_unique_images=len(images),
        n_unlabelled_reports=sum(1 for p, _ in entries if p not in used_reports),
        profiles=tuple(sorted({r.profile for _, r in entries})),
        per_label=per_label,
        duplicates=tuple(duplicates),
        unmatched=tuple(unmatched),
        disagreements=tuple(disagreements),
        notes=tuple(notes),
    )


def _label_order(label: str) -> tuple[int, str]:
    order = list(LABELS)
    return (order.index(label), label) if label in LABELS else (len(order), label)


# ---------------------------------------------------------------------------------------------
# Rendering


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100.0 * value:.1f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], indent: str = "    ") -> list[str]:
    rows = [list(map(str, r)) for r in rows]
    widths = [max([len(str(h))] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]

    def fmt(cells: Sequence[str]) -> str:
        return indent + "  ".join(
            (c.ljust(w) if i == 0 else c.rjust(w)) for i, (c, w) in enumerate(zip(cells, widths))
        )

    return [fmt(list(header)), indent + "  ".join("-" * w for w in widths), *(fmt(r) for r in rows)]


def _error_line(label: str, s: ErrorStats, unit: str) -> str:
    if not s.n:
        return f"    {label:<18} n/a (nothing to compare)"
    bias = f"  bias {s.median_signed:+.2f}{unit}" if s.median_signed is not None else ""
    return (
        f"    {label:<18} median {_num(s.median)}{unit}  p95 {_num(s.p95)}{unit}  max {_num(s.max)}{unit}"
        f" ({s.max_image}){bias}  n={s.n}"
    )


def _render_evaluation(ev: Evaluation, max_disagreements: int) -> str:
    out = [
        f"defectscope evaluate ({ev.mode}): {ev.n_truth} truth images, {ev.n_reports} reports, "
        f"{len(ev.missing_reports)} missing",
        f"  truth: {ev.truth_dir}" + (f"   reports: {ev.reports_dir}" if ev.reports_dir else ""),
    ]
    if ev.unmatched_reports:
        out.append(
            f"  {len(ev.unmatched_reports)} report(s) without a truth, not scored: "
            + ", ".join(ev.unmatched_reports[:5])
            + (" ..." if len(ev.unmatched_reports) > 5 else "")
        )
    for p in ev.profiles.values():
        v, g, d = p.verdict, p.geometry, p.defects
        degraded = f" ({p.n_degraded} degraded: scored on the verdict only)" if p.n_degraded else ""
        out += ["", f"Profile {p.profile}: {p.n_images} images{degraded}", "  Verdict"]
        out.append(
            f"    false-pass rate   {_pct(v.false_pass_rate):>7}  {v.false_pass_count} of "
            f"{v.n_expected_not_pass} expected FAIL/UNDETERMINED reported PASS"
        )
        out.append(
            f"    accuracy          {_pct(v.accuracy):>7}  {v.n_correct} of {v.n_images} exact "
            f"(missing reports count as wrong)"
        )
        out.append(f"    safe disagreements {v.safe_disagreements:>6}  expected UNDETERMINED, reported FAIL")
        out.append(
            f"    false-reject rate {_pct(v.false_reject_rate):>7}  {v.false_reject_count} of "
            f"{v.n_expected_pass} expected PASS not reported PASS"
        )
        out.append("    confusion, rows expected, columns reported:")
        out += _table(
            ["expected", "PASS", "FAIL", "UNDETERMINED", "missing"],
            (
                [e, *(str(v.confusion[e][r]) for r in v.confusion[e]), str(v.missing_by_expected[e])]
                for e in v.confusion
            ),
            indent="      ",
        )
        out.append(f"  Geometry: {g.n_compared} compared, {g.n_expected_missing} expected but missing")
        out.append(_error_line("centre error", g.centre_error_px, " px"))
        out.append(_error_line("radius error", g.radius_error_pct, " %"))
        out.append(
            f"  Defects: {d.n_truth} truth in zones ({d.n_truth_excluded} outside, excluded), "
            f"{d.n_reported} reported over {d.n_images} images"
        )
        for label, fig in (
            ("recall >=2 µm A-B", d.recall_ab_ge_2um),
            ("recall >=5 µm C-D", d.recall_cd_ge_5um),
        ):
            out.append(f"    {label:<18} {_pct(fig.recall):>7}  {fig.n_found} of {fig.n_truth}")
        out.append(
            f"    {'recall':<18} {_pct(d.recall):>7}  {d.n_found} of {d.n_truth} ({d.n_missed} missed)"
        )
        out.append(
            f"    {'precision':<18} {_pct(d.precision):>7}  {d.n_correct} of "
            f"{d.n_correct + d.n_false_positive} "
            f"({d.n_false_positive} false, {d.n_ignored} ignored: matched a defect outside the zones)"
        )
        kinds = [k for k, s in d.by_kind.items() if s.n_truth or s.n_reported]
        if kinds:
            out.append(
                "    by kind (recall by truth kind, precision by reported kind; size error over matches):"
            )
            out += _table(
                [
                    "kind",
                    "truth",
                    "found",
                    "recall",
                    "reported",
                    "correct",
                    "precision",
                    "size err med µm",
                    "p95 µm",
                ],
                (
                    [
                        k,
                        s.n_truth,
                        s.n_found,
                        _pct(s.recall),
                        s.n_reported,
                        s.n_correct,
                        _pct(s.precision),
                        _num(d.size_error_um[k].median),
                        _num(d.size_error_um[k].p95),
                    ]
                    for k, s in ((k, d.by_kind[k]) for k in kinds)
                ),
                indent="      ",
            )
            out.append("    by size (µm; recall by truth size, precision by reported size):")
            out += _table(
                ["size", "truth", "found", "recall", "reported", "correct", "precision"],
                (
                    [b, s.n_truth, s.n_found, _pct(s.recall), s.n_reported, s.n_correct, _pct(s.precision)]
                    for b, s in d.by_size.items()
                ),
                indent="      ",
            )
        rows_k = [a for a in _KINDS if any(d.kind_confusion[a].values())]
        cols_k = [b for b in _KINDS if any(d.kind_confusion[a][b] for a in _KINDS)]
        if rows_k:
            out.append("    kind confusion over matches, rows truth, columns reported:")
            out += _table(
                ["truth", *cols_k],
                ([a, *(d.kind_confusion[a][b] for b in cols_k)] for a in rows_k),
                indent="      ",
            )
    out += [
        "",
        f"Disagreements: {len(ev.disagreements)} image(s)"
        + (
            f", first {max_disagreements} shown (all in the JSON)"
            if len(ev.disagreements) > max_disagreements
            else ""
        ),
    ]
    for item in ev.disagreements[:max_disagreements]:
        reported = f"reported {item.reported_status.value}" if item.reported_status else "no report"
        line = (
            f"  {item.problem.upper():<15} {item.image}  [{item.profile}]  "
            f"expected {item.expected_status.value}, {reported}"
        )
        if item.degraded:
            line += f"  (degraded: {item.degraded})"
        if item.overlay:
            line += f"  overlay: {item.overlay}"
        out.append(line)
        if item.note:
            out.append(f"      note: {item.note}")
        if item.expected_reasons:
            out.append(f"      expected: {'; '.join(item.expected_reasons)}")
        if item.reported_reasons:
            out.append(f"      reported: {'; '.join(item.reported_reasons)}")
        for m in item.missed:
            near = f"nearest report {m.nearest_px:.1f} px" if m.nearest_px is not None else "no report defect"
            note = f'  "{m.note}"' if m.note else ""
            out.append(
                f"      missed #{m.id} {m.kind} {m.size_um:.1f} µm zone {'+'.join(m.zones)} "
                f"({near}, tolerance {m.tolerance_px:.1f} px){note}"
            )
        for f in item.false_detections:
            near = (
                f"nearest truth #{f.nearest_truth_id} at {f.nearest_truth_px:.1f} px"
                if f.nearest_truth_id is not None
                else "no truth defect"
            )
            out.append(f"      false  #{f.id} {f.kind} {f.size_um:.1f} µm zone {f.zone} ({near})")
    return "\n".join(out)


def _render_labels(ev: LabelEvaluation, max_disagreements: int) -> str:
    out = [
        f"defectscope evaluate (labels): {ev.n_rows} labelled rows, {ev.n_matched_rows} with a report, "
        f"{ev.n_unique_images} unique images ({len(ev.duplicates)} duplicate group(s) counted once)",
        f"  labels: {ev.labels_csv}   reports: {ev.reports_dir}   "
        f"profiles: {', '.join(ev.profiles) or 'none'}",
        f"  {ev.n_unlabelled_reports} report(s) carry no label and are not scored",
        "",
    ]
    out += _table(
        [
            "label",
            "expected",
            "images",
            "PASS",
            "FAIL",
            "UNDETERMINED",
            "no report",
            "consistent",
            "undetermined",
        ],
        (
            [
                a.label,
                a.expected.value if a.expected else "-",
                a.n_images,
                a.n_pass,
                a.n_fail,
                a.n_undetermined,
                a.n_missing,
                _pct(a.consistent_rate),
                _pct(a.undetermined_rate),
            ]
            for a in ev.per_label.values()
        ),
        indent="  ",
    )
    out.append("  consistent = expected verdict / (PASS + FAIL); UNDETERMINED is counted apart")
    for note in ev.notes:
        out.append(f"  note: {note}")
    if ev.unmatched:
        out += ["", f"Rows without a report: {len(ev.unmatched)}"]
        out += [f"  {u.file} [{u.label}]: {u.reason}" for u in ev.unmatched[:max_disagreements]]
    if ev.disagreements:
        out += ["", f"Inconsistent with the label: {len(ev.disagreements)}"]
        for d in ev.disagreements[:max_disagreements]:
            overlay = f"  overlay: {d.overlay}" if d.overlay else ""
            out.append(f"  {d.file} [{d.label}] reported {d.reported_status.value} ({d.report}){overlay}")
            if d.reported_reasons:
                out.append(f"      {'; '.join(d.reported_reasons)}")
    return "\n".join(out)
