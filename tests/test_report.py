"""Report outputs: JSON and its schema, overlay, CSV, legacy layout, summary line.

Reports are built by hand from records; verdicts come from the real `judge` so they are the
ones the pipeline would give.
"""

from __future__ import annotations

import csv
import json
import math
import os

import cv2
import jsonschema
import numpy as np
import pytest

from defectscope import report as rp
from defectscope.imageio import frame_from_array
from defectscope.judge import judge, undetermined
from defectscope.profile import load_profile
from defectscope.records import (
    Defect,
    DefectKind,
    Geometry,
    ImageInfo,
    Quality,
    Report,
    Status,
    Verdict,
    Zone,
    ZoneVerdict,
)

UM_PER_PX = 0.5
H, W = 480, 640
CENTER_XY = (320.0, 250.0)


@pytest.fixture(scope="module")
def profile():
    return load_profile("iec-sm-upc")


def _geometry(profile) -> Geometry:
    zones = tuple(
        Zone(
            name=z.name,
            label=z.label,
            inner_um=z.inner_um,
            outer_um=z.outer_um,
            inner_radius_px=z.inner_um / 2 / UM_PER_PX,
            outer_radius_px=z.outer_um / 2 / UM_PER_PX,
        )
        for z in profile.zones
    )
    return Geometry(
        center_xy=CENTER_XY,
        cladding_radius_px=62.5 / UM_PER_PX,
        core_radius_px=4.5 / UM_PER_PX,
        um_per_px=UM_PER_PX,
        zones=zones,
    )


def _defect(
    id: int, kind: DefectKind, zone: str, size_um: float, *, xy=(300.0, 200.0), zones=(), polygon_xy=()
) -> Defect:
    side = max(2, round(size_um / UM_PER_PX))
    x, y = round(xy[0] - side / 2), round(xy[1] - side / 2)
    return Defect(
        id=id,
        kind=kind,
        zone=zone,
        zones=zones or (zone,),
        centroid_xy=xy,
        bbox_xywh=(x, y, side, side),
        area_px=side * side,
        size_um=size_um,
        confidence=0.87,
        source=("region",),
        polygon_xy=polygon_xy,
    )


def _report(
    profile,
    defects=(),
    *,
    verdict: Verdict | None = None,
    geometry=True,
    quality_ok=True,
    path="/line/3/endface_01.png",
    timing_ms=None,
) -> Report:
    defects = tuple(defects)
    return Report(
        image=ImageInfo(path=path, width=W, height=H, sha256="ab" * 32),
        profile=profile.name,
        um_per_px=UM_PER_PX if geometry else None,
        geometry=_geometry(profile) if geometry else None,
        quality=Quality(
            ok=quality_ok,
            focus=0.8,
            edge_width_um=1.2,
            clipped_fraction=0.0,
            contact_zone_in_frame=True,
            issues=() if quality_ok else ("cladding edge is blurred",),
        ),
        defects=defects,
        verdict=verdict if verdict is not None else judge(defects, profile),
        timing_ms={"decode": 1.5, "total": 12.34} if timing_ms is None else timing_ms,
        version="0.1.0",
    )


def _pass_report(profile) -> Report:
    return _report(profile, [_defect(1, DefectKind.DIG, "B", 1.5)])


def _fail_report(profile) -> Report:
    scratch_poly = ((250, 180), (330, 140), (333, 146), (253, 186))
    return _report(
        profile,
        [
            _defect(
                1, DefectKind.SCRATCH, "A", 4.0, xy=(291.0, 163.0), zones=("A", "B"), polygon_xy=scratch_poly
            ),
            _defect(2, DefectKind.DIG, "B", 6.0, xy=(380.0, 280.0)),
            _defect(3, DefectKind.PARTICLE, "B", 3.0, xy=(260.0, 300.0)),
        ],
    )


def _undetermined_report(profile) -> Report:
    return _report(
        profile,
        geometry=False,
        quality_ok=False,
        verdict=undetermined(
            ["no cladding edge found; check focus and that the connector is seated, then re-inspect"], profile
        ),
    )


def _frame(grey: int = 120):
    return frame_from_array(np.full((H, W), grey, np.uint8), source="endface_01.png")


# --------------------------------------------------------------------------------------------
# JSON and schema
# --------------------------------------------------------------------------------------------

REPORT_BUILDERS = {"PASS": _pass_report, "FAIL": _fail_report, "UNDETERMINED": _undetermined_report}


@pytest.mark.parametrize("status", list(REPORT_BUILDERS))
def test_json_round_trip_gives_the_same_report(tmp_path, profile, status):
    report = REPORT_BUILDERS[status](profile)
    assert report.verdict.status == status
    path = tmp_path / "r.json"
    rp.write_report(report, path)
    text = path.read_text(encoding="utf-8")
    assert Report.from_json(text) == report
    data = json.loads(text)
    assert next(iter(data)) == "schema" and data["schema"] == "defectscope.report/1"
    assert "\n  " in text  # pretty-printed


@pytest.mark.parametrize("status", list(REPORT_BUILDERS))
def test_written_reports_validate_against_the_committed_schema(tmp_path, profile, status):
    path = tmp_path / "r.json"
    rp.write_report(REPORT_BUILDERS[status](profile), path)
    schema = rp.report_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda d: d.update(schema="defectscope.report/2"),
        lambda d: d["verdict"].update(status="MAYBE"),
        lambda d: d["defects"][0].update(size_um=-1.0),
        lambda d: d["defects"][0].update(colour="red"),
        lambda d: d.pop("verdict"),
    ],
)
def test_schema_rejects_malformed_reports(profile, corrupt):
    data = _fail_report(profile).to_dict()
    corrupt(data)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(rp.report_json_schema()).validate(data)


def test_committed_schema_file_is_up_to_date():
    assert rp.report_json_schema() == rp._build_report_schema(), (
        "src/defectscope/schema/report.schema.json differs from records.Report; regenerate it with: "
        "python -m defectscope.report --write-schema"
    )


def test_schema_has_id_title_and_describes_every_field():
    schema = rp.report_json_schema()
    assert schema["$id"] == rp.SCHEMA_ID and schema["title"] and schema["description"]
    models = {"Report": schema, **schema["$defs"]}
    undocumented = [
        f"{name}.{field}"
        for name, model in models.items()
        for field, spec in model.get("properties", {}).items()
        if not spec.get("description")
    ]
    assert not undocumented, f"add descriptions for {undocumented} to _DESCRIPTIONS in defectscope/report.py"


def test_schema_command_checks_and_writes(tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        rp._main(["--check-schema"])
    assert exit_info.value.code == 0
    out = tmp_path / "s.json"
    with pytest.raises(SystemExit) as exit_info:
        rp._main(["--write-schema", "--out", str(out)])
    assert exit_info.value.code == 0
    assert json.loads(out.read_text(encoding="utf-8")) == rp.report_json_schema()
    out.write_text("{}", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        rp._main(["--check-schema", "--out", str(out)])
    assert exit_info.value.code == 1


def test_write_report_replaces_the_file_and_leaves_no_temp_files(tmp_path, profile):
    path = tmp_path / "r.json"
    rp.write_report(_pass_report(profile), path)
    rp.write_report(_fail_report(profile), path)
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    assert Report.from_json(path.read_text(encoding="utf-8")).verdict.status == Status.FAIL
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # like open(path, "w"), not 0600


def test_a_failed_write_keeps_the_old_file_whole_and_cleans_up(tmp_path, profile, monkeypatch):
    path = tmp_path / "r.json"
    rp.write_report(_pass_report(profile), path)
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("disk pulled")

    monkeypatch.setattr(rp.os, "replace", crash)
    with pytest.raises(OSError, match="disk pulled"):
        rp.write_report(_fail_report(profile), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


# --------------------------------------------------------------------------------------------
# Overlay
# --------------------------------------------------------------------------------------------


def _near_colour(
    image: np.ndarray, xy: tuple[int, int], bgr: tuple[int, int, int], *, radius: int = 1
) -> bool:
    """Whether a pixel within `radius` of `xy` has the hue of `bgr` at 60 % of its brightness or more
    (thin anti-aliased lines blend with what is under them)."""
    x, y = xy
    patch = image[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1].reshape(-1, 3)
    patch = patch.astype(float)
    colour = np.asarray(bgr, float)
    bright = patch.max(axis=1)
    same_hue = np.abs(patch / np.maximum(bright, 1)[:, None] - colour / colour.max()).max(axis=1) < 0.12
    return bool((same_hue & (bright >= 0.6 * colour.max())).any())


def test_overlay_is_a_new_bgr_image_and_leaves_the_frame_alone(profile):
    frame = _frame()
    before = frame.pixels.copy()
    image = rp.render_overlay(frame, _fail_report(profile))
    assert image.shape == (H, W, 3) and image.dtype == np.uint8
    assert not np.shares_memory(image, frame.pixels)
    np.testing.assert_array_equal(frame.pixels, before)
    assert (image != 120).any(axis=2).mean() > 0.05  # something was drawn


def test_defect_outlines_take_their_kinds_colour(profile):
    report = _fail_report(profile)
    image = rp.render_overlay(_frame(), report)
    scratch, dig, particle = report.defects
    # Scratch: drawn from its polygon; every vertex lies on the outline.
    for vertex in scratch.polygon_xy:
        assert _near_colour(image, vertex, rp._KIND_BGR[DefectKind.SCRATCH]), vertex
    # Dig and particle have no polygon: their bounding box edges are drawn.
    for d in (dig, particle):
        x, y, w, h = d.bbox_xywh
        assert _near_colour(image, (x, y + h // 2), rp._KIND_BGR[d.kind]), d.kind
        assert not _near_colour(image, (x, y + h // 2), rp._KIND_BGR[DefectKind.SCRATCH], radius=0)
    assert rp._KIND_BGR[DefectKind.DIG] != rp._KIND_BGR[DefectKind.PARTICLE]


@pytest.mark.parametrize("status, dominant", [("PASS", "g"), ("FAIL", "r"), ("UNDETERMINED", "rg")])
def test_banner_colour_follows_the_status(profile, status, dominant):
    image = rp.render_overlay(_frame(), REPORT_BUILDERS[status](profile))
    b, g, r = (int(c) for c in image[2, W - 3])  # top-right corner: banner, no text there
    if dominant == "g":
        assert g > 120 and g > r + 60 and g > b + 60
    elif dominant == "r":
        assert r > 150 and r > g + 100 and r > b + 100
    else:  # amber
        assert r > 200 and g > 120 and b < 60


def test_overlay_without_geometry_draws_only_the_banner(profile):
    report = _undetermined_report(profile)
    image = rp.render_overlay(_frame(), report)
    banner_rows = np.flatnonzero((image != 120).any(axis=(1, 2)))
    assert banner_rows.size and banner_rows[0] == 0
    assert (np.diff(banner_rows) == 1).all()  # one block at the top, nothing below
    assert banner_rows[-1] < H // 3


def test_overlay_draws_zones_fiber_and_scale_bar_where_expected(profile):
    image = rp.render_overlay(_frame(), _report(profile))
    cx, cy = (round(c) for c in CENTER_XY)
    r_b = round(115 / 2 / UM_PER_PX)  # zone B outer boundary, below the centre (away from labels)
    assert _near_colour(image, (cx, cy + r_b), rp._ZONE_BGR, radius=2)
    bottom_right = image[H - 60 :, W - 200 :]
    assert (bottom_right == 255).all(axis=2).sum() > 50  # the white scale bar


def test_banner_wraps_long_reasons_and_counts_the_ones_left_out(profile):
    style = rp._Style.for_frame(H, W)
    long = _report(profile, verdict=Verdict(status=Status.UNDETERMINED, reasons=("word " * 60,)))
    lines = rp._banner_layout(long, style, width_px=W, frame_h_px=H).lines
    assert len(lines) == 2 and lines[-1].endswith("...")
    many = _report(
        profile, verdict=Verdict(status=Status.FAIL, reasons=tuple(f"reason {i}" for i in range(6)))
    )
    lines = rp._banner_layout(many, style, width_px=W, frame_h_px=H).lines
    assert lines == ("reason 0", "reason 1", "reason 2", "reason 3 (+2 more)")


def test_every_kind_has_its_own_colour():
    colours = [rp._KIND_BGR[kind] for kind in DefectKind]
    assert len(set(colours)) == len(colours)
    assert not set(colours) & {rp._ZONE_BGR, rp._FIBER_BGR, rp._UNKNOWN_KIND_BGR}


def test_line_widths_grow_with_the_frame_but_marks_do_not_bury_a_small_fiber(profile):
    small, big = rp._Style.for_frame(480, 640), rp._Style.for_frame(1944, 2592)
    assert big.line_px > small.line_px and big.font_scale > small.font_scale
    geometry = _geometry(profile)  # contact zone 500 px across
    assert rp._Style.for_fiber(1944, 2592, geometry) == rp._Style._of(500 / 350)
    assert rp._Style.for_fiber(480, 640, geometry) == small


@pytest.mark.parametrize("target, expected", [(106.7, 100), (53.3, 50), (7.3, 5), (2.5, 2), (0.26, 0.2)])
def test_scale_bar_uses_a_round_length(target, expected):
    assert rp._round_length(target) == pytest.approx(expected)


def test_text_for_hershey_fonts_is_ascii():
    assert rp._ascii("zone B: 2 defects of 2–5 µm") == "zone B: 2 defects of 2-5 um"
    assert rp._ascii("Ω").isascii()


def test_write_overlay_writes_a_png_of_the_frame_size(tmp_path, profile):
    path = tmp_path / "overlay.png"
    rp.write_overlay(_frame(), _fail_report(profile), path)
    decoded = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert decoded.shape == (H, W, 3)
    with pytest.raises(ValueError, match="cannot encode"):
        rp.write_overlay(_frame(), _fail_report(profile), tmp_path / "overlay.xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["overlay.png"]


# --------------------------------------------------------------------------------------------
# CSV
# --------------------------------------------------------------------------------------------


def test_csv_has_one_row_per_report_with_the_documented_columns(tmp_path, profile):
    reports = [_pass_report(profile), _fail_report(profile), _undetermined_report(profile)]
    path = tmp_path / "batch.csv"
    rp.write_csv(iter(reports), path)
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with path.open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert tuple(header) == rp.CSV_COLUMNS
    assert all(
        f"- {column}" in rp.write_csv.__doc__ or f", {column}" in rp.write_csv.__doc__
        for column in rp.CSV_COLUMNS
    ), "document every column in write_csv's docstring"
    assert [r["status"] for r in rows] == ["PASS", "FAIL", "UNDETERMINED"]
    fail = rows[1]
    assert fail["path"] == "/line/3/endface_01.png" and fail["action"] == "reject"
    assert (fail["n_defects"], fail["n_scratch"], fail["n_dig"], fail["n_particle"], fail["n_oil"]) == (
        "3",
        "1",
        "1",
        "1",
        "0",
    )
    assert float(fail["um_per_px"]) == UM_PER_PX and float(fail["center_x_px"]) == CENTER_XY[0]
    assert float(fail["cladding_radius_px"]) == pytest.approx(125.0) and fail["quality_ok"] == "true"
    verdict = reports[1].verdict
    assert fail["reasons"].startswith(" | ".join(verdict.reasons[:3]))
    assert fail["total_ms"] == "12.3"
    undet = rows[2]
    assert undet["um_per_px"] == undet["center_x_px"] == undet["cladding_radius_px"] == ""
    assert undet["quality_ok"] == "false"


def test_csv_counts_every_kind():
    missing = [k.value for k in DefectKind if f"n_{k.value}" not in rp.CSV_COLUMNS]
    assert not missing, f"add n_<kind> columns for {missing} at the end of CSV_COLUMNS (and document them)"


def test_csv_of_no_reports_is_just_the_header(tmp_path):
    path = tmp_path / "empty.csv"
    rp.write_csv([], path)
    assert path.read_text(encoding="utf-8") == ",".join(rp.CSV_COLUMNS) + "\n"


def test_csv_counts_more_reasons_than_it_shows(tmp_path, profile):
    verdict = Verdict(status=Status.FAIL, action="reject", reasons=tuple(f"reason {i}" for i in range(5)))
    path = tmp_path / "r.csv"
    rp.write_csv([_report(profile, verdict=verdict)], path)
    row = next(csv.DictReader(path.open(newline="", encoding="utf-8")))
    assert row["reasons"] == "reason 0 | reason 1 | reason 2 (+2 more)"


# --------------------------------------------------------------------------------------------
# Legacy layout
# --------------------------------------------------------------------------------------------


def _legacy_defect(legacy: dict, id: int) -> dict:
    return next(d for d in legacy["defects"] if d["defect_id"].endswith(f"_{id:04d}"))


def test_legacy_layout_has_the_old_keys_and_types(profile):
    legacy = rp.to_legacy(_fail_report(profile), profile)
    assert set(legacy) == {"analysis_summary", "defects"}
    summary = legacy["analysis_summary"]
    assert set(summary) == {"pass_fail_status", "quality_score", "total_merged_defects", "failure_reasons"}
    assert summary["pass_fail_status"] == "FAIL" and isinstance(summary["quality_score"], float)
    assert summary["total_merged_defects"] == 3
    assert all(isinstance(r, str) for r in summary["failure_reasons"])
    keys = {
        "defect_id",
        "defect_type",
        "location_xy",
        "bbox",
        "area_px",
        "confidence",
        "severity",
        "zone",
        "size_um",
    }
    for d in legacy["defects"]:
        assert set(d) == keys
        assert d["defect_type"] in {k.value.upper() for k in DefectKind}
        assert d["defect_id"].startswith(d["defect_type"] + "_")
        assert len(d["location_xy"]) == 2 and all(isinstance(v, int) for v in d["location_xy"])
        assert len(d["bbox"]) == 4 and all(isinstance(v, int) for v in d["bbox"])
        assert isinstance(d["area_px"], int) and isinstance(d["confidence"], float)
        assert isinstance(d["size_um"], float) and isinstance(d["zone"], str)
        assert d["severity"] in {"NEGLIGIBLE", "LOW", "MEDIUM", "HIGH", "CRITICAL"}
    json.dumps(legacy, allow_nan=False)  # strict JSON: no inf or NaN


def test_legacy_pass_without_defects_scores_100(profile):
    legacy = rp.to_legacy(_report(profile), profile)
    assert legacy["analysis_summary"] == {
        "pass_fail_status": "PASS",
        "quality_score": 100.0,
        "total_merged_defects": 0,
        "failure_reasons": [],
    }


@pytest.mark.parametrize(
    "zone, size_um, severity, score",
    [
        ("B", 1.5, "LOW", 85.0),  # m = 1.5 / 5 = 0.3: 100 * (1 - 0.3 / 2)
        ("B", 4.0, "MEDIUM", 60.0),  # m = 0.8
        ("B", 5.0, "MEDIUM", 50.0),  # at the limit: m = 1, still a PASS
        ("C", 40.0, "NEGLIGIBLE", 100.0),  # zone C does not judge defects: m = 0
    ],
)
def test_legacy_pass_severity_and_score_follow_the_margin(profile, zone, size_um, severity, score):
    report = _report(profile, [_defect(1, DefectKind.DIG, zone, size_um)])
    assert report.verdict.status == Status.PASS
    legacy = rp.to_legacy(report, profile)
    assert legacy["defects"][0]["severity"] == severity
    assert legacy["analysis_summary"]["quality_score"] == score


def test_legacy_fail_in_the_core_is_critical_and_scores_0(profile):
    report = _report(profile, [_defect(1, DefectKind.DIG, "A", 1.0), _defect(2, DefectKind.DIG, "B", 1.0)])
    assert report.verdict.status == Status.FAIL
    legacy = rp.to_legacy(report, profile)
    assert _legacy_defect(legacy, 1)["severity"] == "CRITICAL"
    assert _legacy_defect(legacy, 1)["zone"] == "core"
    assert _legacy_defect(legacy, 2)["severity"] == "LOW"  # m = 0.2, its zone passes
    assert legacy["analysis_summary"]["quality_score"] == 0.0  # zone A admits none: m = inf
    assert legacy["analysis_summary"]["failure_reasons"] == list(report.verdict.reasons)


def test_legacy_scratch_crossing_the_core_is_critical(profile):
    scratch = _defect(1, DefectKind.SCRATCH, "A", 2.0, zones=("A", "B"))
    legacy = rp.to_legacy(_report(profile, [scratch]), profile)
    assert legacy["defects"][0]["severity"] == "CRITICAL"


def test_legacy_oversize_defect_outside_the_core_is_high(profile):
    report = _report(profile, [_defect(1, DefectKind.DIG, "B", 6.0)])  # m = 6 / 5 = 1.2
    legacy = rp.to_legacy(report, profile)
    assert legacy["defects"][0]["severity"] == "HIGH"
    assert legacy["analysis_summary"]["quality_score"] == round(50 / 1.2, 1)  # 41.7


def test_legacy_count_failure_makes_the_whole_band_high(profile):
    # Zone B allows at most 5 defects of 2-5 um; six of 3 um (m = 0.6 each) fail it by count.
    digs = [_defect(i, DefectKind.DIG, "B", 3.0, xy=(260.0 + 20 * i, 200.0)) for i in range(1, 7)]
    small = _defect(7, DefectKind.DIG, "B", 1.0, xy=(300.0, 300.0))  # band < 2 um, any number
    report = _report(profile, [*digs, small])
    assert report.verdict.status == Status.FAIL
    legacy = rp.to_legacy(report, profile)
    assert [_legacy_defect(legacy, i)["severity"] for i in range(1, 7)] == ["HIGH"] * 6
    assert _legacy_defect(legacy, 7)["severity"] == "LOW"
    assert legacy["analysis_summary"]["quality_score"] == round(50 / (6 / 5), 1)  # 41.7


def test_legacy_fail_always_scores_below_50(profile):
    report = _report(profile, [_defect(1, DefectKind.DIG, "B", 5.0001)])  # barely over the limit
    assert report.verdict.status == Status.FAIL
    assert rp.to_legacy(report, profile)["analysis_summary"]["quality_score"] == 49.9


def test_legacy_undetermined_scores_0(profile):
    report = _undetermined_report(profile)
    summary = rp.to_legacy(report, profile)["analysis_summary"]
    assert summary["pass_fail_status"] == "UNDETERMINED" and summary["quality_score"] == 0.0
    assert summary["failure_reasons"] == list(report.verdict.reasons)


def test_legacy_count_failure_needs_the_zones_verdict(profile):
    # Six 3 um digs, but a verdict (e.g. from another profile) that passes zone B: not HIGH.
    digs = [_defect(i, DefectKind.DIG, "B", 3.0) for i in range(1, 7)]
    verdict = Verdict(
        status=Status.PASS,
        action="accept",
        reasons=("all zones within limits",),
        zones={"B": ZoneVerdict(status=Status.PASS, n_defects=6)},
    )
    legacy = rp.to_legacy(_report(profile, digs, verdict=verdict), profile)
    assert {d["severity"] for d in legacy["defects"]} == {"MEDIUM"}


def test_write_legacy_writes_the_same_dict_as_json(tmp_path, profile):
    report = _fail_report(profile)
    path = tmp_path / "final_report.json"
    rp.write_legacy(report, profile, path)
    assert json.loads(path.read_text(encoding="utf-8")) == rp.to_legacy(report, profile)


def test_legacy_scores_are_finite_for_every_status(profile):
    for build in REPORT_BUILDERS.values():
        score = rp.to_legacy(build(profile), profile)["analysis_summary"]["quality_score"]
        assert math.isfinite(score) and 0.0 <= score <= 100.0


# --------------------------------------------------------------------------------------------
# Summary line
# --------------------------------------------------------------------------------------------


def test_summary_line_for_a_pass():
    profile = load_profile("iec-sm-upc")
    assert rp.summary_line(_report(profile)) == "PASS  endface_01.png  0 defects  12.3 ms"
    assert rp.summary_line(_pass_report(profile)) == "PASS  endface_01.png  1 defect  12.3 ms"


def test_summary_line_for_a_fail_shows_the_first_reason_and_how_many_more(profile):
    report = _fail_report(profile)
    line = rp.summary_line(report)
    n_more = len(report.verdict.reasons) - 1
    assert line == f"FAIL  endface_01.png  {report.verdict.reasons[0]} (+{n_more} more)  12.3 ms"
    assert "\n" not in line


def test_summary_line_leaves_out_an_unrecorded_time(profile):
    report = _report(profile, path=r"C:\line\x.png", timing_ms={})
    assert rp.summary_line(report) == "PASS  x.png  0 defects"
