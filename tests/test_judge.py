"""Acceptance by the IEC 61300-3-35 tables of the shipped profiles, at and around every band limit.

Defects are built by hand (size in µm, zone) and judged by `judge`, so each case states one row
of a table: scratches by width, other defects by enclosing diameter; a scratch is judged in
every zone it crosses, any other defect in the innermost zone it touches.
"""

from __future__ import annotations

import re

import pytest

from defectscope.judge import defect_margin, judge, judged_zones, undetermined
from defectscope.profile import load_profile
from defectscope.records import Defect, DefectKind, Status

S, D, P, O, C = DefectKind.SCRATCH, DefectKind.DIG, DefectKind.PARTICLE, DefectKind.OIL, DefectKind.CHIP


def _d(kind: DefectKind, size_um: float, zone: str, zones: tuple[str, ...] = (), id: int = 1) -> Defect:
    return Defect(
        id=id,
        kind=kind,
        zone=zone,
        zones=zones or (zone,),
        centroid_xy=(100.0, 100.0),
        bbox_xywh=(95, 95, 10, 10),
        area_px=50,
        size_um=size_um,
        length_um=40.0 if kind == S else None,
        confidence=0.9,
        source=("test",),
    )


def _many(kind: DefectKind, size_um: float, zone: str, n: int) -> list[Defect]:
    return [_d(kind, size_um, zone, id=i + 1) for i in range(n)]


# (profile, zone, kind, size_um, count, expected status, reason pattern when FAIL)
TABLE = [
    # --- iec-sm-upc -------------------------------------------------------------------------------
    # zone A (core, 25 um): nothing at all
    ("iec-sm-upc", "A", S, 0.3, 1, "FAIL", r"zone A: 1 scratch \(0\.3 µm wide\), none allowed"),
    ("iec-sm-upc", "A", D, 0.5, 1, "FAIL", r"zone A: 1 defect \(0\.5 µm across\), none allowed"),
    ("iec-sm-upc", "A", P, 1.0, 2, "FAIL", r"zone A: 2 defects \(1\.0, 1\.0 µm across\), none allowed"),
    # zone B (cladding, 25-115 um): scratches <= 3 um any; defects < 2 any, 2-5 at most 5, none > 5
    ("iec-sm-upc", "B", S, 3.0, 20, "PASS", None),
    ("iec-sm-upc", "B", S, 3.01, 1, "FAIL", r"zone B: 1 scratch over 3 µm \(3\.0 µm\), 0 allowed"),
    ("iec-sm-upc", "B", D, 1.99, 50, "PASS", None),
    ("iec-sm-upc", "B", D, 2.0, 5, "PASS", None),
    ("iec-sm-upc", "B", D, 2.0, 6, "FAIL", r"zone B: 6 defects of 2-5 µm, at most 5 allowed"),
    ("iec-sm-upc", "B", D, 5.0, 5, "PASS", None),
    ("iec-sm-upc", "B", D, 5.0, 6, "FAIL", r"zone B: 6 defects of 2-5 µm, at most 5 allowed"),
    ("iec-sm-upc", "B", D, 5.01, 1, "FAIL", r"zone B: 1 defect over 5 µm \(5\.0 µm\), 0 allowed"),
    ("iec-sm-upc", "B", P, 6.0, 2, "FAIL", r"zone B: 2 defects over 5 µm \(6\.0, 6\.0 µm\), 0 allowed"),
    # zone C (adhesive): not judged
    ("iec-sm-upc", "C", S, 9.0, 10, "PASS", None),
    ("iec-sm-upc", "C", D, 60.0, 10, "PASS", None),
    # zone D (contact, 135-250 um): scratches any; defects < 10 um any, none >= 10
    ("iec-sm-upc", "D", S, 9.0, 10, "PASS", None),
    ("iec-sm-upc", "D", D, 9.99, 40, "PASS", None),
    ("iec-sm-upc", "D", D, 10.0, 1, "FAIL", r"zone D: 1 defect 10 µm or more \(10\.0 µm\), 0 allowed"),
    # --- iec-sm-apc -------------------------------------------------------------------------------
    # zone A: at most 4 scratches <= 3 um; no defects
    ("iec-sm-apc", "A", S, 3.0, 4, "PASS", None),
    ("iec-sm-apc", "A", S, 3.0, 5, "FAIL", r"zone A: 5 scratches of up to 3 µm, at most 4 allowed"),
    ("iec-sm-apc", "A", S, 3.1, 1, "FAIL", r"zone A: 1 scratch over 3 µm \(3\.1 µm\), 0 allowed"),
    ("iec-sm-apc", "A", D, 0.5, 1, "FAIL", r"zone A: 1 defect \(0\.5 µm across\), none allowed"),
    ("iec-sm-apc", "B", S, 3.0, 20, "PASS", None),
    ("iec-sm-apc", "B", S, 3.01, 1, "FAIL", r"zone B: 1 scratch over 3 µm"),
    ("iec-sm-apc", "B", D, 1.99, 50, "PASS", None),
    ("iec-sm-apc", "B", D, 5.0, 5, "PASS", None),
    ("iec-sm-apc", "B", D, 4.0, 6, "FAIL", r"zone B: 6 defects of 2-5 µm, at most 5 allowed"),
    ("iec-sm-apc", "B", D, 5.01, 1, "FAIL", r"zone B: 1 defect over 5 µm"),
    ("iec-sm-apc", "C", D, 60.0, 3, "PASS", None),
    ("iec-sm-apc", "D", D, 9.99, 40, "PASS", None),
    ("iec-sm-apc", "D", D, 10.0, 1, "FAIL", r"zone D: 1 defect 10 µm or more"),
    # --- iec-mm-pc --------------------------------------------------------------------------------
    # zone A (0-65 um): scratches <= 3 any; at most 4 defects <= 5 um, none larger
    ("iec-mm-pc", "A", S, 3.0, 20, "PASS", None),
    ("iec-mm-pc", "A", S, 3.01, 1, "FAIL", r"zone A: 1 scratch over 3 µm"),
    ("iec-mm-pc", "A", D, 5.0, 4, "PASS", None),
    ("iec-mm-pc", "A", D, 5.0, 5, "FAIL", r"zone A: 5 defects of up to 5 µm, at most 4 allowed"),
    ("iec-mm-pc", "A", D, 0.5, 5, "FAIL", r"zone A: 5 defects of up to 5 µm, at most 4 allowed"),
    ("iec-mm-pc", "A", D, 5.01, 1, "FAIL", r"zone A: 1 defect over 5 µm \(5\.0 µm\), 0 allowed"),
    # zone B (65-115 um): scratches <= 5 any; defects < 5 any, 5-10 at most 5, none > 10
    ("iec-mm-pc", "B", S, 5.0, 20, "PASS", None),
    ("iec-mm-pc", "B", S, 5.01, 1, "FAIL", r"zone B: 1 scratch over 5 µm"),
    ("iec-mm-pc", "B", D, 4.99, 50, "PASS", None),
    ("iec-mm-pc", "B", D, 5.0, 5, "PASS", None),
    ("iec-mm-pc", "B", D, 10.0, 6, "FAIL", r"zone B: 6 defects of 5-10 µm, at most 5 allowed"),
    ("iec-mm-pc", "B", D, 10.01, 1, "FAIL", r"zone B: 1 defect over 10 µm"),
    ("iec-mm-pc", "C", D, 60.0, 3, "PASS", None),
    # zone D (135-250 um): scratches any; defects < 20 any, 20-30 at most 5, none > 30
    ("iec-mm-pc", "D", S, 9.0, 10, "PASS", None),
    ("iec-mm-pc", "D", D, 19.99, 40, "PASS", None),
    ("iec-mm-pc", "D", D, 20.0, 5, "PASS", None),
    ("iec-mm-pc", "D", D, 30.0, 5, "PASS", None),
    ("iec-mm-pc", "D", D, 25.0, 6, "FAIL", r"zone D: 6 defects of 20-30 µm, at most 5 allowed"),
    ("iec-mm-pc", "D", D, 30.01, 1, "FAIL", r"zone D: 1 defect over 30 µm \(30\.0 µm\), 0 allowed"),
]


@pytest.fixture(scope="module")
def profiles():
    return {name: load_profile(name) for name in ("iec-sm-upc", "iec-sm-apc", "iec-mm-pc")}


@pytest.mark.parametrize(
    "profile, zone, kind, size_um, count, status, reason",
    TABLE,
    ids=[f"{p}-{z}-{k.value}-{s}um-x{n}" for p, z, k, s, n, *_ in TABLE],
)
def test_iec_table(profiles, profile, zone, kind, size_um, count, status, reason):
    verdict = judge(_many(kind, size_um, zone, count), profiles[profile])
    assert verdict.status == status, verdict.reasons
    assert verdict.zones[zone].status == status
    others = [z for name, z in verdict.zones.items() if name != zone]
    assert all(z.status == Status.PASS for z in others)
    if status == "FAIL":
        assert any(re.search(reason, r) for r in verdict.reasons), verdict.reasons
        assert verdict.action == ("clean and re-inspect" if kind in (P, O) else "reject")
    else:
        assert verdict.action == "accept"
        assert verdict.reasons[0].startswith("all zones within limits")


def test_the_shipped_tables_are_the_ones_tested():
    """If a shipped profile's zones change, this table must be revisited (and the change reviewed)."""
    zones = {
        name: [(z.name, z.inner_um, z.outer_um) for z in load_profile(name).zones]
        for name in ("iec-sm-upc", "iec-sm-apc", "iec-mm-pc")
    }
    sm = [("A", 0, 25), ("B", 25, 115), ("C", 115, 135), ("D", 135, 250)]
    assert zones == {
        "iec-sm-upc": sm,
        "iec-sm-apc": sm,
        "iec-mm-pc": [("A", 0, 65), ("B", 65, 115), ("C", 115, 135), ("D", 135, 250)],
    }


def test_no_defects_pass_with_every_zone_accepted(profiles):
    for profile in profiles.values():
        verdict = judge([], profile)
        assert verdict.status == Status.PASS and verdict.action == "accept"
        assert verdict.reasons == ("all zones within limits",)
        assert set(verdict.zones) == {z.name for z in profile.zones}


def test_a_pass_with_features_says_how_many_are_within_tolerance(profiles):
    verdict = judge(_many(D, 1.0, "B", 3), profiles["iec-sm-upc"])
    assert verdict.reasons == ("all zones within limits (3 features within tolerance)",)


# --- zones a defect counts in -------------------------------------------------------------------------


def test_scratch_crossing_core_and_cladding_is_judged_in_both_zones(profiles):
    scratch = _d(S, 2.5, "A", zones=("A", "B"))
    assert judged_zones(scratch) == ("A", "B")
    verdict = judge([scratch], profiles["iec-sm-upc"])  # fine in B, but A allows no scratch at all
    assert verdict.status == Status.FAIL
    assert verdict.zones["A"].status == Status.FAIL and verdict.zones["B"].status == Status.PASS
    assert verdict.zones["A"].n_scratches == verdict.zones["B"].n_scratches == 1


def test_wide_scratch_across_three_zones_fails_each_that_limits_it(profiles):
    verdict = judge([_d(S, 4.0, "B", zones=("B", "C", "D"))], profiles["iec-sm-upc"])
    assert [z for z, v in verdict.zones.items() if v.status == Status.FAIL] == ["B"]
    assert verdict.zones["C"].n_scratches == verdict.zones["D"].n_scratches == 1


def test_apc_core_scratch_count_includes_scratches_that_also_cross_the_cladding(profiles):
    crossing = [_d(S, 2.0, "A", zones=("A", "B"), id=i + 1) for i in range(5)]
    verdict = judge(crossing, profiles["iec-sm-apc"])
    assert verdict.zones["A"].status == Status.FAIL and verdict.zones["A"].n_scratches == 5
    assert verdict.zones["B"].status == Status.PASS
    assert judge(crossing[:4], profiles["iec-sm-apc"]).status == Status.PASS


def test_straddling_defect_is_judged_only_in_its_innermost_zone(profiles):
    # 1.5 um dig touching A and B: B would allow it, A allows none -> FAIL in A, not counted in B
    straddler = _d(D, 1.5, "A", zones=("A", "B"))
    assert judged_zones(straddler) == ("A",)
    verdict = judge([straddler], profiles["iec-sm-upc"])
    assert verdict.status == Status.FAIL and verdict.zones["A"].status == Status.FAIL
    assert verdict.zones["B"].n_defects == 0
    # 12 um particle touching C and D is judged in C, which does not judge defects
    assert judge([_d(P, 12.0, "C", zones=("C", "D"))], profiles["iec-sm-upc"]).status == Status.PASS


def test_defect_count_limits_are_per_zone(profiles):
    five_in_b = _many(D, 3.0, "B", 5)
    in_d = [_d(D, 3.0, "D", id=9)]
    assert judge(five_in_b + in_d, profiles["iec-sm-upc"]).status == Status.PASS


# --- action and reasons ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [P, O])
def test_contamination_only_failure_says_clean_and_re_inspect(profiles, kind):
    verdict = judge([_d(kind, 12.0, "D")], profiles["iec-sm-upc"])
    assert verdict.status == Status.FAIL and verdict.action == "clean and re-inspect"
    assert verdict.reasons[-1] == "contamination: clean and re-inspect"


@pytest.mark.parametrize("kind", [S, D, C, DefectKind.CRACK, DefectKind.ANOMALY])
def test_damage_failure_says_reject(profiles, kind):
    verdict = judge([_d(kind, 12.0, "B")], profiles["iec-sm-upc"])
    assert verdict.status == Status.FAIL and verdict.action == "reject"
    assert not any("clean" in r for r in verdict.reasons)


def test_damage_and_dirt_failing_together_is_reject(profiles):
    verdict = judge([_d(P, 12.0, "D", id=1), _d(D, 6.0, "B", id=2)], profiles["iec-sm-upc"])
    assert verdict.action == "reject"


def test_dirt_failing_next_to_tolerated_damage_is_clean_and_re_inspect(profiles):
    verdict = judge(
        [_d(P, 12.0, "D", id=1), _d(D, 1.0, "B", id=2), _d(S, 2.0, "B", id=3)], profiles["iec-sm-upc"]
    )
    assert verdict.action == "clean and re-inspect"


def test_reasons_are_readable_sentences_with_sizes_and_limits(profiles):
    verdict = judge(
        [_d(D, 7.25, "B", id=1), _d(P, 5.5, "B", id=2), _d(D, 1.0, "B", id=3)], profiles["iec-sm-upc"]
    )
    assert verdict.reasons == ("zone B: 2 defects over 5 µm (7.2, 5.5 µm), 0 allowed",)
    assert verdict.zones["B"].reasons == verdict.reasons
    assert verdict.zones["B"].n_defects == 3


def test_reason_lists_the_five_largest_sizes_only(profiles):
    verdict = judge([_d(D, 1.0 + i, "A", id=i + 1) for i in range(7)], profiles["iec-sm-upc"])
    assert verdict.reasons == ("zone A: 7 defects (7.0, 6.0, 5.0, 4.0, 3.0 µm across), none allowed",)


# --- undetermined and margins ---------------------------------------------------------------------------


def test_undetermined_is_never_pass_and_always_has_a_reason(profiles):
    verdict = undetermined([], profiles["iec-sm-upc"])
    assert verdict.status == Status.UNDETERMINED and verdict.action == "re-image"
    assert verdict.reasons == ("inspection could not be completed",)
    assert {z.status for z in verdict.zones.values()} == {Status.UNDETERMINED}
    assert undetermined(["out of focus"]).reasons == ("out of focus",)


@pytest.mark.parametrize(
    "kind, size_um, zone, margin",
    [
        (D, 2.5, "B", 0.5),  # half the largest admitted 5 um
        (D, 5.0, "B", 1.0),
        (S, 1.5, "B", 0.5),
        (D, 30.0, "C", 0.0),  # C does not judge defects
        (D, 5.0, "D", 0.5),  # D admits below 10 um
    ],
)
def test_defect_margin_is_size_over_the_largest_admitted_size(profiles, kind, size_um, zone, margin):
    assert defect_margin(_d(kind, size_um, zone), profiles["iec-sm-upc"]) == pytest.approx(margin)


def test_defect_margin_is_over_one_when_too_big_and_infinite_where_none_is_allowed(profiles):
    assert defect_margin(_d(D, 6.0, "B"), profiles["iec-sm-upc"]) > 1.0
    assert defect_margin(_d(D, 10.0, "D"), profiles["iec-sm-upc"]) > 1.0
    assert defect_margin(_d(D, 0.5, "A"), profiles["iec-sm-upc"]) == float("inf")
