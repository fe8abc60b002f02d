"""A round pattern centred on a multimode core: the fiber's own index pattern (a dip, a bright
centre, rings) or a film centred on the core -- they look alike. Up to `max_core_glow_grey` it is
flattened and passes; deeper, the zones over the core are UNDETERMINED unless they fail anyway,
and what is not concentric is still found and judged."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from defectscope.detect.base import CENTRE_DIG_UM
from defectscope.inspector import Inspector
from defectscope.judge import core_pattern_reasons, judge
from defectscope.records import Status
from defectscope.synth import (
    DigSpec,
    ParticleSpec,
    ScratchSpec,
    default_illumination,
    make_scene,
    render_scene,
    shipped_profiles,
)

PROFILES = shipped_profiles()
CENTER_XY = (299.6, 302.2)
UM_PER_PX = 0.45


@pytest.fixture(scope="module")
def mm():
    return Inspector.from_profile("iec-mm-pc")


def _end_face(defects, *, seed: int = 5, illumination=None) -> tuple[np.ndarray, np.ndarray]:
    """A rendered multimode end face (float grey) and each pixel's distance from its centre in um."""
    scene = make_scene(
        "iec-mm-pc",
        um_per_px=UM_PER_PX,
        width=600,
        height=600,
        seed=seed,
        center_xy=CENTER_XY,
        defects=list(defects),
        illumination=illumination,
    )
    pixels = render_scene(scene, profiles=PROFILES).pixels.astype(np.float64)
    yy, xx = np.mgrid[: pixels.shape[0], : pixels.shape[1]]
    return pixels, np.hypot(xx - CENTER_XY[0], yy - CENTER_XY[1]) * UM_PER_PX


def _with_pattern(kind: str, depth_grey: float, *defects, seed: int = 5) -> np.ndarray:
    """A rendered multimode end face with a concentric pattern added inside its 50 um core."""
    # a core lit well above the cladding, as on the real dimension-scope images
    light = replace(default_illumination("bright-ferrule", multimode=True), core_delta_grey=40.0)
    pixels, r_um = _end_face(defects, seed=seed, illumination=light)
    r = r_um / 25.0  # in core radii
    if kind == "dip":  # graded-index dip: darkest at the centre, gone at 70 % of the core radius
        pattern = -depth_grey * np.clip(1 - (r / 0.7) ** 2, 0, None)
    else:  # rings of the preform's layers, fading out before the core edge
        pattern = depth_grey * np.cos(2 * np.pi * r / 0.3) * np.clip((0.85 - r) / 0.25, 0, 1)
    return np.clip(np.rint(pixels + pattern), 0, 255).astype(np.uint8)


def test_a_faint_index_dip_is_flattened_and_the_clean_fiber_passes(mm):
    report = mm.inspect(_with_pattern("dip", 5.0))
    assert report.verdict.status == Status.PASS, report.verdict.reasons
    assert report.quality.core_pattern_grey == pytest.approx(5.0, abs=1.5)


@pytest.mark.parametrize("kind", ["dip", "rings"])
def test_a_deep_centred_pattern_leaves_the_core_zone_undetermined_not_failed(mm, kind):
    report = mm.inspect(_with_pattern(kind, 16.0))
    v = report.verdict
    assert v.status == Status.UNDETERMINED, (
        v.reasons,
        [(d.kind.value, d.zone, d.size_um) for d in report.defects],
    )
    assert v.action == "clean and re-inspect"
    assert report.quality.ok and report.quality.core_pattern_grey > mm.profile.detection.max_core_glow_grey
    assert v.zones["A"].status == Status.UNDETERMINED and "centred on the core" in v.reasons[0]
    assert all(v.zones[z].status == Status.PASS for z in ("B", "C", "D"))
    # the pattern is flattened, not reported in pieces; only its centre, where a dig would vanish
    # into the median radial profile, may leave a spot (the rings' bright centre, ~3 um here)
    assert not [d for d in report.defects if d.zone == "A" and d.size_um > 2 * CENTRE_DIG_UM], report.defects


def test_a_defect_elsewhere_still_fails_the_part_beside_an_unsettled_core(mm):
    report = mm.inspect(
        _with_pattern("dip", 16.0, DigSpec(center_um=(0.0, 45.0), size_um=12.0, contrast_grey=-50))
    )
    v = report.verdict
    assert v.status == Status.FAIL and v.zones["B"].status == Status.FAIL
    assert v.zones["A"].status == Status.UNDETERMINED
    assert not any("centred on the core" in reason for reason in v.reasons)


def test_a_particle_on_the_core_off_its_centre_is_still_found_on_a_deep_pattern(mm):
    particle = ParticleSpec(center_um=(14.0, -8.0), size_um=9.0, contrast_grey=-45)
    report = mm.inspect(_with_pattern("dip", 16.0, particle))
    found = [d for d in report.defects if d.zone == "A"]
    assert found and max(d.size_um for d in found) == pytest.approx(9.0, abs=2.5), found
    assert report.verdict.status == Status.FAIL and report.verdict.zones["A"].status == Status.FAIL


# --- the rule on its own ------------------------------------------------------------------------------


def test_core_pattern_reasons_name_the_zones_over_the_core_only_beyond_the_limit(mm_pc):
    limit = mm_pc.detection.max_core_glow_grey
    assert core_pattern_reasons(mm_pc, 25.0, limit) == {}
    assert core_pattern_reasons(mm_pc, None, 3 * limit) == {}
    assert set(core_pattern_reasons(mm_pc, 25.0, limit + 1)) == {"A"}  # 50 um core in the 65 um zone A
    assert set(core_pattern_reasons(mm_pc, 45.5, limit + 1)) == {"A", "B"}  # a 91 um core reaches zone B


def test_judge_groups_unsettled_zones_in_one_reason_and_a_failure_outranks_them(mm_pc):
    why = core_pattern_reasons(mm_pc, 45.5, 20.0)
    verdict = judge([], mm_pc, why)
    assert verdict.status == Status.UNDETERMINED and len(verdict.reasons) == 1
    assert verdict.reasons[0].startswith("zones A, B: round pattern 20 grey deep")
    assert judge([], mm_pc).status == Status.PASS


# --- a ring in the cladding (the index trench of a bend-insensitive fiber) ----------------------------


def _with_trench_ring(*defects, contrast_grey: float = 12.0) -> np.ndarray:
    """A multimode end face with a faint ring 3 um wide at 1.5 core radii (37.5 um)."""
    pixels, r_um = _end_face(defects)
    ring = contrast_grey * np.exp(-0.5 * ((r_um - 37.5) / 1.2) ** 2)
    return np.clip(np.rint(pixels + ring), 0, 255).astype(np.uint8)


def test_a_ring_in_the_cladding_is_fiber_structure_not_a_particle(mm):
    # the whole ring read as one 82 um "particle" in zone B; the line detector still reports
    # short tangent pieces of it as scratches (under 5 um wide, within zone B's limit: README)
    report = mm.inspect(_with_trench_ring())
    near_ring = [
        (d.kind.value, d.size_um)
        for d in report.defects
        if d.kind.value != "scratch"
        and abs(np.hypot(d.centroid_xy[0] - CENTER_XY[0], d.centroid_xy[1] - CENTER_XY[1]) * UM_PER_PX - 37.5)
        < 5
    ]
    assert report.verdict.status == Status.PASS and not near_ring, (report.verdict.reasons, near_ring)


def test_a_straight_scratch_across_that_ring_is_still_found(mm):
    scratch = ScratchSpec.chord(
        distance_um=30, angle_deg=20, half_length_um=30, width_um=4.0, contrast_grey=-45
    )
    report = mm.inspect(_with_trench_ring(scratch))
    found = [d for d in report.defects if d.kind.value == "scratch" and d.size_um > 3]
    assert found and report.verdict.status == Status.FAIL, report.verdict.reasons
