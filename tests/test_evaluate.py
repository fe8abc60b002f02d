"""The evaluator: reports built by hand from hand-built truths (no synthetic generator needed).

Frame: 640 x 560 px at 0.5 µm/px, fiber centre (320, 280), cladding radius 125 px (62.5 µm).
iec-sm-upc zones by radius: A < 12.5 µm (25 px), B < 57.5 µm (115 px), C < 67.5 µm (135 px),
D < 125 µm (250 px).
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import pytest

from defectscope.errors import TruthFormatError
from defectscope.evaluate import Evaluation, evaluate_inspection, evaluate_labels, evaluate_reports
from defectscope.judge import judge
from defectscope.profile import load_profile
from defectscope.records import Defect, DefectKind, Geometry, ImageInfo, Quality, Report, Status, Verdict
from defectscope.synth.truth import ExpectedVerdict, Truth, TruthDefect, TruthGeometry, zones_touched

PROFILE = "iec-sm-upc"
UM_PER_PX = 0.5
CX, CY = 320.0, 280.0
RADIUS_PX = 125.0


# ---------------------------------------------------------------------------------------------
# Hand-built truths and reports


@functools.cache
def _profile():
    return load_profile(PROFILE)


def _r_um(x: float, y: float) -> float:
    return math.hypot(x - CX, y - CY) * UM_PER_PX


def region(id: int, kind: DefectKind, x: float, y: float, size_um: float, note: str = "") -> TruthDefect:
    """A square region defect of side size_um centred on (x, y)."""
    half_px = size_um / UM_PER_PX / 2
    r = _r_um(x, y)
    return TruthDefect(
        id=id,
        kind=kind,
        centroid_xy=(x, y),
        size_um=size_um,
        radial_extent_um=(max(0.0, r - size_um / 2), r + size_um / 2),
        polygon_xy=(
            (x - half_px, y - half_px),
            (x + half_px, y - half_px),
            (x + half_px, y + half_px),
            (x - half_px, y + half_px),
        ),
        note=note,
    )


def scratch(id: int, points: list[tuple[float, float]], width_um: float) -> TruthDefect:
    """A scratch along a polyline; its centroid is the midpoint along its length."""
    lengths = [math.dist(a, b) for a, b in zip(points, points[1:])]
    half, centroid = sum(lengths) / 2, points[0]
    for (a, b), seg in zip(zip(points, points[1:]), lengths):
        if half <= seg:
            t = half / seg
            centroid = (a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1]))
            break
        half -= seg
    # nearest/farthest radius, sampled densely along the polyline
    samples = [
        (a[0] + k / 50 * (b[0] - a[0]), a[1] + k / 50 * (b[1] - a[1]))
        for a, b in zip(points, points[1:])
        for k in range(51)
    ]
    radii = [_r_um(*p) for p in samples]
    return TruthDefect(
        id=id,
        kind=DefectKind.SCRATCH,
        centroid_xy=centroid,
        size_um=width_um,
        length_um=sum(lengths) * UM_PER_PX,
        radial_extent_um=(max(0.0, min(radii) - width_um / 2), max(radii) + width_um / 2),
        polyline_xy=tuple(points),
    )


def make_truth(
    stem: str, defects: list[TruthDefect], *, degraded: str | None = None, status: Status | None = None
) -> Truth:
    """A truth whose expected verdicts come from judging its own defects (or `status` when given)."""
    profile = _profile()
    draft = Truth(
        image=f"{stem}.png",
        width=640,
        height=560,
        seed=1,
        style="bright-ferrule",
        profile=PROFILE,
        degraded=degraded,
        geometry=TruthGeometry(center_xy=(CX, CY), cladding_radius_px=RADIUS_PX, um_per_px=UM_PER_PX),
        defects=tuple(defects),
    )
    if status is None:
        verdict = judge(draft.defects_for(profile), profile)
        expected = ExpectedVerdict(status=verdict.status, reasons=verdict.reasons)
    else:
        expected = ExpectedVerdict(status=status, reasons=("set by the test",))
    return draft.model_copy(update={"expected": {PROFILE: expected}})


def report_defect(
    t: TruthDefect,
    *,
    dx: float = 0.0,
    dy: float = 0.0,
    size_um: float | None = None,
    kind: DefectKind | None = None,
    id: int | None = None,
    centroid_xy: tuple[float, float] | None = None,
) -> Defect:
    touched = zones_touched(_profile(), *t.radial_extent_um) or ("D",)
    centroid = centroid_xy or (t.centroid_xy[0] + dx, t.centroid_xy[1] + dy)
    return Defect(
        id=id or t.id,
        kind=kind or t.kind,
        zone=touched[0],
        zones=touched,
        centroid_xy=centroid,
        bbox_xywh=(int(centroid[0]) - 2, int(centroid[1]) - 2, 4, 4),
        area_px=16,
        size_um=t.size_um if size_um is None else size_um,
        confidence=0.9,
        source=("test",),
    )


def make_report(
    truth: Truth,
    defects: list[Defect] | None = None,
    *,
    status: Status | None = None,
    center_xy: tuple[float, float] = (CX, CY),
    radius_px: float = RADIUS_PX,
    geometry: bool = True,
    sha256: str = "",
    image_dir: str = "/line/images",
) -> Report:
    """A report that agrees with `truth` unless told otherwise."""
    if defects is None:
        defects = [report_defect(t) for t in truth.defects if zones_touched(_profile(), *t.radial_extent_um)]
    status = status or truth.expected[PROFILE].status
    return Report(
        image=ImageInfo(
            path=f"{image_dir}/{truth.image}", width=truth.width, height=truth.height, sha256=sha256
        ),
        profile=PROFILE,
        um_per_px=UM_PER_PX,
        geometry=Geometry(center_xy=center_xy, cladding_radius_px=radius_px, um_per_px=UM_PER_PX)
        if geometry
        else None,
        quality=Quality(ok=status != Status.UNDETERMINED),
        defects=tuple(defects),
        verdict=Verdict(status=status, reasons=(f"reported {status.value}",)),
    )


def write_set(tmp_path: Path, pairs: list[tuple[Truth, Report | None]]) -> tuple[Path, Path]:
    truth_dir, reports_dir = tmp_path / "truth", tmp_path / "reports"
    truth_dir.mkdir(exist_ok=True)
    reports_dir.mkdir(exist_ok=True)
    for truth, report in pairs:
        stem = Path(truth.image).stem
        (truth_dir / f"{stem}.truth.json").write_text(truth.to_json())
        if report is not None:
            (reports_dir / f"{stem}.json").write_text(report.to_json())
    return truth_dir, reports_dir


def passing_truth(stem: str = "img_pass") -> Truth:
    """PASS under iec-sm-upc: small features in B, C and D, one particle outside every zone."""
    return make_truth(
        stem,
        [
            region(1, DefectKind.DIG, CX + 60, CY, 4.0),  # B, 2-5 µm
            region(2, DefectKind.PARTICLE, CX - 70, CY, 1.5),  # B, <2 µm
            scratch(3, [(CX - 40, CY - 50), (CX + 40, CY - 50)], 2.0),  # B, 2 µm wide
            region(4, DefectKind.PARTICLE, CX, CY + 180, 8.0),  # D, 5-10 µm
            region(5, DefectKind.DIG, CX, CY - 125, 6.0),  # C, 5-10 µm
            region(6, DefectKind.PARTICLE, CX + 260, CY, 4.0),  # outside D: excluded
        ],
    )


def failing_truth(stem: str = "img_fail") -> Truth:
    """FAIL under iec-sm-upc: a dig in the core and oil too big for D."""
    return make_truth(
        stem,
        [
            region(1, DefectKind.DIG, CX + 4, CY, 6.0),  # A
            region(2, DefectKind.OIL, CX - 190, CY + 20, 12.0),  # D, 10-30 µm
        ],
    )


def profile_scores(ev: Evaluation):
    assert list(ev.profiles) == [PROFILE]
    return ev.profiles[PROFILE]


# ---------------------------------------------------------------------------------------------
# Tests


def test_report_built_from_truth_scores_perfectly(tmp_path):
    pass_t, fail_t = passing_truth(), failing_truth()
    assert pass_t.expected[PROFILE].status == Status.PASS and fail_t.expected[PROFILE].status == Status.FAIL
    ev = evaluate_reports(
        *write_set(tmp_path, [(pass_t, make_report(pass_t)), (fail_t, make_report(fail_t))])
    )
    p = profile_scores(ev)
    assert p.verdict.accuracy == 1.0
    assert p.verdict.false_pass_count == 0 and p.verdict.false_pass_rate == 0.0
    assert p.verdict.confusion["PASS"]["PASS"] == 1 and p.verdict.confusion["FAIL"]["FAIL"] == 1
    d = p.defects
    assert (d.n_truth, d.n_truth_excluded, d.n_found, d.n_false_positive) == (7, 1, 7, 0)
    assert d.precision == 1.0 and d.recall == 1.0
    # A-B >= 2 µm: dig 4, scratch 2, dig 6 in A; C-D >= 5 µm: particle 8, dig 6, oil 12
    assert d.recall_ab_ge_2um.recall == 1.0 and d.recall_ab_ge_2um.n_truth == 3
    assert d.recall_cd_ge_5um.recall == 1.0 and d.recall_cd_ge_5um.n_truth == 3
    assert d.size_error_um["all"].max == 0.0 and d.size_error_um["all"].n == 7
    assert p.geometry.centre_error_px.max == 0.0 and p.geometry.radius_error_pct.max == 0.0
    assert d.kind_confusion["dig"]["dig"] == 3 and d.kind_confusion["scratch"]["scratch"] == 1
    assert ev.disagreements == () and ev.missing_reports == ()
    json.dumps(ev.to_dict())  # plain data
    assert "false-pass rate" in ev.render_table()


def test_dropping_a_defect_lowers_recall_for_its_kind_and_bucket_only(tmp_path):
    truth = passing_truth()
    kept = [report_defect(t) for t in truth.defects if t.id not in (1, 6)]  # drop the 4 µm dig
    ev = evaluate_reports(*write_set(tmp_path, [(truth, make_report(truth, kept))]))
    d = profile_scores(ev).defects
    assert d.by_kind["dig"].recall == 0.5  # 1 of the 2 digs
    assert d.by_size["2-5"].recall == 0.5  # the dig and the 2 µm scratch
    for kind in ("particle", "scratch"):
        assert d.by_kind[kind].recall == 1.0
    for bucket in ("<2", "5-10"):
        assert d.by_size[bucket].recall == 1.0
    assert d.precision == 1.0 and d.n_missed == 1
    [item] = ev.disagreements
    assert item.problem == "defects" and [m.id for m in item.missed] == [1]
    assert item.missed[0].zone == "B" and item.missed[0].size_um == 4.0


def test_shift_beyond_tolerance_is_one_miss_and_one_false_positive(tmp_path):
    truth = passing_truth()
    defects = [report_defect(t, dx=12.0 if t.id == 5 else 0.0) for t in truth.defects if t.id != 6]
    ev = evaluate_reports(*write_set(tmp_path, [(truth, make_report(truth, defects))]))
    d = profile_scores(ev).defects
    assert (d.n_missed, d.n_false_positive) == (1, 1)
    [item] = ev.disagreements
    [missed], [false] = item.missed, item.false_detections
    assert missed.id == 5 and missed.tolerance_px == 8.0  # max(3, 0.5 * 12 px + 2)
    assert missed.nearest_px == pytest.approx(12.0)
    assert false.id == 5 and false.nearest_truth_id == 5


def test_shift_within_tolerance_still_matches(tmp_path):
    truth = passing_truth()
    defects = [report_defect(t, dx=7.5 if t.id == 5 else 0.0) for t in truth.defects if t.id != 6]
    ev = evaluate_reports(*write_set(tmp_path, [(truth, make_report(truth, defects))]))
    assert profile_scores(ev).defects.recall == 1.0 and ev.disagreements == ()


def test_reported_pass_on_expected_fail_is_a_false_pass_sorted_first(tmp_path):
    pass_t, fail_t = passing_truth("a_pass"), failing_truth("z_fail")
    dropped = [d for d in make_report(pass_t).defects if d.id != 1]
    ev = evaluate_reports(
        *write_set(
            tmp_path,
            [(pass_t, make_report(pass_t, dropped)), (fail_t, make_report(fail_t, [], status=Status.PASS))],
        )
    )
    v = profile_scores(ev).verdict
    assert v.false_pass_count == 1 and v.n_expected_not_pass == 1 and v.false_pass_rate == 1.0
    assert v.confusion["FAIL"]["PASS"] == 1 and v.accuracy == 0.5
    assert [d.problem for d in ev.disagreements] == ["false pass", "defects"]
    first = ev.disagreements[0]
    assert first.image == "z_fail.png" and first.expected_status == Status.FAIL
    assert first.reported_status == Status.PASS and {m.id for m in first.missed} == {1, 2}
    assert ev.render_table().index("FALSE PASS") < ev.render_table().index("DEFECTS")


def test_missing_report_is_reported_and_counts_as_wrong(tmp_path):
    pass_t, fail_t = passing_truth(), failing_truth()
    ev = evaluate_reports(*write_set(tmp_path, [(pass_t, make_report(pass_t)), (fail_t, None)]))
    assert ev.missing_reports == ("img_fail.png",) and ev.n_reports == 1
    p = profile_scores(ev)
    assert p.verdict.n_missing == 1 and p.verdict.missing_by_expected["FAIL"] == 1
    assert p.verdict.accuracy == 0.5 and p.verdict.false_pass_count == 0
    assert p.defects.n_missed == 2 and p.geometry.n_expected_missing == 1
    [item] = ev.disagreements
    assert item.problem == "missing report" and item.reported_status is None and "no report" in item.note


def test_geometry_shift_gives_pixel_and_percent_errors(tmp_path):
    a, b = passing_truth("a"), passing_truth("b")
    ev = evaluate_reports(
        *write_set(
            tmp_path,
            [
                (a, make_report(a, center_xy=(CX + 3, CY + 4), radius_px=RADIUS_PX * 1.02)),
                (b, make_report(b, center_xy=(CX, CY), radius_px=RADIUS_PX * 0.99)),
                (failing_truth("c"), make_report(failing_truth("c"), geometry=False)),
            ],
        )
    )
    g = profile_scores(ev).geometry
    assert g.n_compared == 2 and g.n_expected_missing == 1
    assert g.centre_error_px.max == pytest.approx(5.0) and g.centre_error_px.max_image == "a.png"
    assert g.centre_error_px.median == pytest.approx(2.5)
    assert g.radius_error_pct.max == pytest.approx(2.0) and g.radius_error_pct.median == pytest.approx(1.5)
    assert g.radius_error_pct.median_signed == pytest.approx(0.5)


def test_scratch_matches_by_distance_to_its_polyline_off_the_chord(tmp_path):
    # A V-shaped scratch in B: chord along y = CY - 40, apex 30 px below it.
    v = scratch(1, [(CX - 50, CY - 40), (CX, CY - 10), (CX + 50, CY - 40)], 2.0)
    truth = make_truth("curved", [v])
    on_curve = (CX - 25, CY - 25)  # on the first arm: 15 px off the chord, 29 px from the truth centroid
    report = make_report(truth, [report_defect(v, centroid_xy=on_curve)])
    ev = evaluate_reports(*write_set(tmp_path, [(truth, report)]))
    d = profile_scores(ev).defects
    assert d.by_kind["scratch"].recall == 1.0 and d.n_false_positive == 0

    off = (CX - 25, CY - 40)  # on the chord, 12.9 px from the scratch: beyond max(3, 4 + 2) px
    report = make_report(truth, [report_defect(v, centroid_xy=off)])
    ev = evaluate_reports(*write_set(tmp_path, [(truth, report)]))
    d = profile_scores(ev).defects
    assert (d.n_missed, d.n_false_positive) == (1, 1)


def test_polygon_containment_matches_beyond_the_distance_tolerance(tmp_path):
    # A long thin oil streak: the reported centroid lies inside its outline but far from its centroid.
    x, y = CX, CY + 170
    streak = TruthDefect(
        id=1,
        kind=DefectKind.OIL,
        centroid_xy=(x, y),
        size_um=9.0,
        radial_extent_um=(80.0, 90.0),
        polygon_xy=((x - 40, y - 2), (x + 40, y - 2), (x + 40, y + 2), (x - 40, y + 2)),
    )
    truth = make_truth("streak", [streak])
    ev = evaluate_reports(
        *write_set(
            tmp_path,
            [
                (
                    truth,
                    make_report(
                        truth, [report_defect(streak, centroid_xy=(x + 30, y), kind=DefectKind.PARTICLE)]
                    ),
                )
            ],
        )
    )
    d = profile_scores(ev).defects
    assert d.recall == 1.0 and d.precision == 1.0
    assert d.kind_confusion["oil"]["particle"] == 1  # kinds need not agree


def test_size_error_over_matched_pairs(tmp_path):
    truth = passing_truth()
    defects = [
        report_defect(t, size_um=t.size_um + {1: 0.5, 5: 1.5}.get(t.id, 0.0))
        for t in truth.defects
        if t.id != 6
    ]
    ev = evaluate_reports(*write_set(tmp_path, [(truth, make_report(truth, defects))]))
    s = profile_scores(ev).defects.size_error_um
    assert s["dig"].n == 2 and s["dig"].median == pytest.approx(1.0) and s["dig"].max == pytest.approx(1.5)
    assert s["dig"].p95 == pytest.approx(1.45) and s["dig"].median_signed == pytest.approx(1.0)
    assert s["particle"].max == 0.0 and s["all"].n == 5


def test_reported_defect_matching_an_excluded_truth_defect_is_ignored(tmp_path):
    truth = passing_truth()
    defects = [report_defect(t) for t in truth.defects]  # includes #6, outside every zone
    ev = evaluate_reports(*write_set(tmp_path, [(truth, make_report(truth, defects))]))
    d = profile_scores(ev).defects
    assert d.n_ignored == 1 and d.n_false_positive == 0 and d.precision == 1.0 and d.n_truth_excluded == 1


def test_degraded_truth_is_scored_on_its_verdict_only(tmp_path):
    truth = make_truth(
        "blur", [region(1, DefectKind.DIG, CX + 4, CY, 6.0)], degraded="defocus", status=Status.UNDETERMINED
    )
    ev = evaluate_reports(
        *write_set(tmp_path, [(truth, make_report(truth, [], status=Status.FAIL, geometry=False))])
    )
    p = profile_scores(ev)
    assert p.n_degraded == 1 and p.defects.n_truth == 0 and p.geometry.n_expected_missing == 0
    assert p.verdict.safe_disagreements == 1 and p.verdict.false_pass_count == 0
    assert ev.disagreements[0].problem == "verdict" and ev.disagreements[0].missed == ()


def test_inspection_mode_inspects_saves_and_scores(tmp_path):
    truth = passing_truth()
    truth_dir, _ = write_set(tmp_path, [(truth, None)])
    (truth_dir / truth.image).write_bytes(b"not really a png; the fake inspector never reads it")
    seen = []

    def fake_inspect(path: Path) -> Report:
        seen.append(path)
        return make_report(truth)

    out = tmp_path / "out"
    ev = evaluate_inspection(truth_dir, fake_inspect, reports_out=out)
    assert seen == [truth_dir / truth.image] and ev.mode == "inspect"
    assert profile_scores(ev).defects.recall == 1.0 and ev.disagreements == ()
    assert Report.from_json((out / "img_pass.json").read_text()) == make_report(truth)
    assert evaluate_reports(truth_dir, out).profiles[PROFILE] == ev.profiles[PROFILE]


def test_reports_folder_skips_other_schemas_and_rejects_malformed_reports(tmp_path):
    truth = passing_truth()
    truth_dir, reports_dir = write_set(tmp_path, [(truth, make_report(truth))])
    (reports_dir / "eval.json").write_text(json.dumps({"schema": "defectscope.evaluation/1"}))
    assert evaluate_reports(truth_dir, reports_dir).ignored_files == ("eval.json",)
    (reports_dir / "broken.json").write_text(json.dumps({"image": {"path": "x.png"}}))
    with pytest.raises(TruthFormatError, match="broken.json"):
        evaluate_reports(truth_dir, reports_dir)


def test_malformed_truth_file_raises_naming_the_file(tmp_path):
    truth_dir = tmp_path / "truth"
    truth_dir.mkdir()
    (truth_dir / "bad.truth.json").write_text("{not json")
    with pytest.raises(TruthFormatError, match="bad.truth.json"):
        evaluate_reports(truth_dir, tmp_path)
    (truth_dir / "bad.truth.json").write_text(json.dumps({"image": "bad.png"}))
    with pytest.raises(TruthFormatError, match="bad.truth.json"):
        evaluate_reports(truth_dir, tmp_path)


def test_missing_or_empty_truth_dir_raises(tmp_path):
    with pytest.raises(TruthFormatError, match="not found"):
        evaluate_reports(tmp_path / "nope", tmp_path)
    with pytest.raises(TruthFormatError, match="no \\*.truth.json"):
        evaluate_reports(tmp_path, tmp_path)


def test_truth_without_expected_verdict_for_the_profile_raises(tmp_path):
    other = {"iec-mm-pc": ExpectedVerdict(status=Status.PASS)}
    truth = passing_truth().model_copy(update={"expected": other})
    with pytest.raises(TruthFormatError, match="no expected verdict for profile 'iec-sm-upc'"):
        evaluate_reports(*write_set(tmp_path, [(truth, make_report(passing_truth()))]))


def test_label_mode_counts_duplicates_once(tmp_path):
    root = tmp_path / "data"
    (root / "set").mkdir(parents=True)
    csv_path = root / "set" / "labels.csv"
    csv_path.write_text(
        "file,label,raw_folder\n"
        "set/a.png,clean,x\n"
        "set/b.png,clean,x\n"  # byte-identical to a.png
        "set/c.png,clean,x\n"
        "set/d.png,dirty,x\n"  # its report lives elsewhere: matched by base name
        "set/e.png,clean,x\n"  # no report
        "set/f.png,other:smudged,x\n"
    )
    reports_dir = tmp_path / "reports"
    reports_dir.mkdir()
    base = passing_truth()
    here = root / "set"
    for stem, status, sha, folder in (
        ("a", Status.PASS, "s1", here),
        ("b", Status.PASS, "s1", here),
        ("c", Status.FAIL, "s2", here),
        ("d", Status.FAIL, "s3", "/elsewhere"),
        ("f", Status.UNDETERMINED, "s4", here),
        ("g", Status.PASS, "s5", here),
    ):
        truth = base.model_copy(update={"image": f"{stem}.png"})
        report = make_report(truth, [], status=status, sha256=sha, image_dir=str(folder))
        (reports_dir / f"{stem}.json").write_text(report.to_json())
    ev = evaluate_labels(csv_path, reports_dir)
    clean, dirty, other = ev.per_label["clean"], ev.per_label["dirty"], ev.per_label["other:smudged"]
    assert (clean.n_images, clean.n_pass, clean.n_fail, clean.n_missing) == (2, 1, 1, 1)
    assert clean.consistent_rate == 0.5
    assert (dirty.n_fail, dirty.consistent_rate) == (1, 1.0)
    assert other.n_undetermined == 1 and other.consistent_rate is None and other.undetermined_rate == 1.0
    assert (ev.n_rows, ev.n_matched_rows, ev.n_unique_images, ev.n_unlabelled_reports) == (6, 5, 4, 1)
    [dup] = ev.duplicates
    assert dup.sha256 == "s1" and dup.files == ("set/a.png", "set/b.png")
    assert [u.file for u in ev.unmatched] == ["set/e.png"]
    assert [(d.file, d.reported_status) for d in ev.disagreements] == [("set/c.png", Status.FAIL)]
    json.dumps(ev.to_dict())
    assert "clean" in ev.render_table()


def test_label_file_with_unknown_label_raises_naming_the_line(tmp_path):
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("file,label\na.png,clean\nb.png,filthy\n")
    with pytest.raises(TruthFormatError, match="labels.csv:3: unknown label 'filthy'"):
        evaluate_labels(csv_path, tmp_path)


def test_non_square_pixel_truth_is_compared_in_the_square_pixel_frame(tmp_path):
    # Pixels 1.1x taller than wide: the report's frame has its rows stretched by 1.1 (geometry.square_pixels).
    aspect = 1.1
    truth = passing_truth()
    truth = truth.model_copy(update={"geometry": truth.geometry.model_copy(update={"pixel_aspect": aspect})})
    defects = [
        report_defect(t, centroid_xy=(t.centroid_xy[0], t.centroid_xy[1] * aspect))
        for t in truth.defects
        if t.id != 6
    ]
    report = make_report(truth, defects, center_xy=(CX, CY * aspect))
    ev = evaluate_reports(*write_set(tmp_path, [(truth, report)]))
    p = profile_scores(ev)
    assert p.geometry.centre_error_px.max == pytest.approx(0.0, abs=1e-9)
    assert p.defects.recall == 1.0 and p.defects.precision == 1.0


def test_inspection_error_is_a_missing_report_with_its_reason(tmp_path):
    from defectscope.errors import ImageDecodeError

    truth = failing_truth()
    truth_dir, _ = write_set(tmp_path, [(truth, None)])
    (truth_dir / truth.image).write_bytes(b"")

    def broken_inspect(path: Path) -> Report:
        raise ImageDecodeError(f"{path}: empty file")

    ev = evaluate_inspection(truth_dir, broken_inspect)
    assert ev.missing_reports == ("img_fail.png",)
    [item] = ev.disagreements
    assert item.problem == "missing report" and "empty file" in item.note


def test_inspection_mode_requires_the_truth_images(tmp_path):
    truth_dir, _ = write_set(tmp_path, [(passing_truth(), None)])
    with pytest.raises(TruthFormatError, match="img_pass.truth.json"):
        evaluate_inspection(truth_dir, lambda path: make_report(passing_truth()))


def test_two_reports_for_one_image_raise(tmp_path):
    truth = passing_truth()
    truth_dir, reports_dir = write_set(tmp_path, [(truth, make_report(truth))])
    (reports_dir / "again.json").write_text(make_report(truth).to_json())
    with pytest.raises(TruthFormatError, match="again.json"):
        evaluate_reports(truth_dir, reports_dir)
