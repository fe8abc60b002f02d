"""The scratch follower: what it accepts as a line, and what it leaves to the region detector."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from defectscope.detect.base import Window, domain_rank_residuals
from defectscope.detect.scratch import _follow, _TopHats
from defectscope.inspector import Inspector
from defectscope.profile import DetectionParams, ScratchParams, SizeBand
from defectscope.records import DefectKind, Geometry, Status
from defectscope.synth import ScratchSpec, make_scene, random_scene, render_scene, shipped_profiles
from defectscope.synth.dataset import image_seed, planned_target

UM_PER_PX = 0.45
PSF_PX = 1.0


def _profile(rows: dict[tuple[int, int], tuple[float, float]], guard: tuple[int, int] | None, seed=0):
    """A residual sampled across a candidate line: rows t (1 px apart) x offsets s (0.5 px apart).

    rows: {(first t, last t): (contrast grey, width px)} bars centred on s = 0; guard: rows with no
    data (NaN), as where the line crosses a guard band."""
    t = np.arange(-10.0, 100.0)
    s = np.arange(-17.0, 17.25, 0.5)
    prof = np.random.default_rng(seed).normal(0.0, 1.5, (len(t), len(s))).astype(np.float32)
    for (t0, t1), (contrast, width) in rows.items():
        bar = contrast * (np.abs(s) <= width / 2)
        prof[(t >= t0) & (t <= t1)] += bar.astype(np.float32)
    if guard is not None:
        prof[(t >= guard[0]) & (t <= guard[1])] = np.nan
    return prof, t, s


def test_a_dig_bridged_over_a_guard_band_to_faint_texture_is_not_a_scratch():
    # a 6 um dig (13 px), the guard band, then faint texture: 71 px from end to end, but only
    # 13 + 16 rows of it seen -- once taken for a 3 um scratch, which zone B allows
    prof, t, s = _profile({(0, 12): (55.0, 13.0), (56, 71): (8.0, 3.0)}, guard=(14, 55))
    assert _follow(prof, t, s, PSF_PX, ScratchParams(), UM_PER_PX) is None


def test_a_scratch_crossing_a_guard_band_is_followed_on_both_sides():
    prof, t, s = _profile({(0, 80): (20.0, 3.0)}, guard=(30, 45))
    found = _follow(prof, t, s, PSF_PX, ScratchParams(), UM_PER_PX)
    assert found is not None
    t_lo, t_hi, _, _, width_px, _ = found
    assert t_lo <= 2 and t_hi >= 78  # one scratch across the gap, not two pieces
    assert abs(width_px - 3.0) < 1.0


def test_held_out_6um_dig_beside_the_cladding_guard_band_fails_as_a_dig():
    # seed 7007, image 57 of the held-out set: a line candidate through this dig, bridged over the
    # cladding edge's guard band to faint texture on the ferrule, once absorbed it as a 2.9 um
    # "scratch" (allowed in zone B): a false pass
    scene = random_scene(image_seed(7007, 57), "iec-sm-upc", target=planned_target(7007, 57))
    image = render_scene(scene, profiles=shipped_profiles())
    assert image.truth.expected["iec-sm-upc"].status == Status.FAIL
    report = Inspector.from_profile("iec-sm-upc").inspect(image.pixels)
    assert report.verdict.status == Status.FAIL
    assert [(d.kind, d.zone) for d in report.defects] == [(DefectKind.DIG, "B")]


def _zone_d_scratch_report(profile):
    scratch = ScratchSpec(start_um=(85.0, -25.0), end_um=(85.0, 25.0), width_um=4.0, contrast_grey=-35.0)
    scene = make_scene("iec-sm-upc", um_per_px=0.45, width=600, height=600, seed=8, defects=[scratch])
    return Inspector(profile).inspect(render_scene(scene, profiles=shipped_profiles()).pixels)


def test_lines_are_sought_only_as_far_out_as_the_profile_limits_scratches(sm_upc):
    # IEC: scratches are limited in zones A and B (115 um) only; a customer limiting them in
    # zone D (250 um) has the whole contact zone searched
    zones = [
        z.model_copy(update={"scratches": [SizeBand(up_to_um=3)]}) if z.name == "D" else z
        for z in sm_upc.zones
    ]
    strict = sm_upc.model_copy(update={"name": "strict-d", "zones": tuple(zones)})
    assert [d.search_diameter_um for d in Inspector(sm_upc).detectors if d.name == "scratch.linear"] == [115]
    assert [d.search_diameter_um for d in Inspector(strict).detectors if d.name == "scratch.linear"] == [None]

    lenient, judged = _zone_d_scratch_report(sm_upc), _zone_d_scratch_report(strict)
    assert lenient.verdict.status == Status.PASS  # found in pieces by the region detector: a scratch
    assert judged.verdict.status == Status.FAIL
    (scratch,) = [d for d in judged.defects if d.kind == DefectKind.SCRATCH]
    assert scratch.zone == "D" and scratch.size_um == pytest.approx(4.0, abs=0.8)
    assert scratch.length_um == pytest.approx(50.0, abs=8.0)


def test_top_hats_filled_where_asked_equal_the_whole_images():
    """The scratch refinement filters boxes of the window only: each box's values must be the
    whole-image top-hats', whichever order boxes, the ferrule and explained lines come in."""
    rng = np.random.default_rng(5)
    size_px = 300
    img = np.full((size_px, size_px), 170, np.uint8)
    cv2.circle(img, (150, 152), 100, 90, -1)
    img = cv2.add(img, rng.integers(0, 25, img.shape, dtype=np.uint8))
    cv2.line(img, (40, 60), (260, 230), 40, 2)
    cv2.line(img, (30, 250), (270, 90), 210, 1)
    where = dict(
        window_px=31,
        geometry=Geometry(center_xy=(150.0, 152.0), cladding_radius_px=100, um_per_px=0.5),
        window=Window(0, 0, size_px, size_px),
        params=DetectionParams(),
    )
    fiber = domain_rank_residuals(img, **where, top_hat=0, domain="fiber")
    ferrule = domain_rank_residuals(img, **where, top_hat=0, domain="ferrule")
    lazy = _TopHats(img, **where, polarity=0, explained=np.zeros(img.shape, np.uint8))
    wide = np.zeros(img.shape, np.uint8)
    cv2.line(wide, (40, 60), (260, 230), 1, 9)
    # across the edge, off the fiber, within the fiber only, and the window's edges
    boxes = [(60, 70, 90, 200), (10, 5, 40, 30), (120, 120, 180, 180), (100, 100, 280, 290), (0, 0, 299, 299)]
    for stage in ("fiber", "explained", "both"):
        if stage == "explained":
            lazy.explain(wide)
        if stage == "both":
            lazy.add_ferrule()
        for x0, y0, x1, y1 in boxes:
            ys, xs = np.mgrid[y0:y1:7j, x0:x1:5j].astype(np.float32)
            for sign in (-1, 1):
                got = lazy.covering(xs, ys, sign)[y0:y1, x0:x1]
                want = fiber[sign > 0] if stage != "both" else np.maximum(fiber[sign > 0], ferrule[sign > 0])
                want = np.where(wide > 0, 0, want) if stage != "fiber" else want
                np.testing.assert_array_equal(got, want[y0:y1, x0:x1])
