"""Defects on the cladding edge, iec-mm-pc: there zone B (cladding, radius 57.5 µm) ends 5 µm
inside the edge (radius 62.5 µm), so where a chip or an edge particle reaches decides the verdict."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from defectscope.inspector import Inspector
from defectscope.records import DefectKind, Status
from defectscope.synth import ChipSpec, DigSpec, ParticleSpec, make_scene, render_scene, shipped_profiles
from defectscope.synth.dataset import image_seed, planned_target
from defectscope.synth.plan import random_scene

PROFILES = shipped_profiles()


@pytest.fixture(scope="module")
def inspector():
    return Inspector.from_profile("iec-mm-pc")


def _inspect(inspector, *defects, seed=5, um_per_px=0.45):
    scene = make_scene(
        inspector.profile.name,
        um_per_px=um_per_px,
        width=600,
        height=600,
        seed=seed,
        center_xy=(299.6, 302.2),
        defects=list(defects),
    )
    image = render_scene(scene, profiles=PROFILES)
    return image.truth, inspector.inspect(image.pixels, name="edge.png")


def _at_radius(radius_um: float, angle_deg: float) -> tuple[float, float]:
    a = np.radians(angle_deg)
    return radius_um * np.cos(a), radius_um * np.sin(a)


def test_a_deep_chip_is_reported_as_a_chip_reaching_into_the_cladding_zone(inspector):
    truth, report = _inspect(inspector, ChipSpec(angle_deg=40, arc_um=14, depth_um=8, contrast_grey=-50))
    assert truth.expected["iec-mm-pc"].status == Status.FAIL
    chips = [d for d in report.defects if d.kind == DefectKind.CHIP]
    assert len(chips) == 1, [(d.kind.value, d.zones, d.size_um) for d in report.defects]
    assert chips[0].zones[0] == "B" and chips[0].size_um == pytest.approx(14, abs=3)
    assert report.verdict.status == Status.FAIL


def test_a_particle_lying_over_the_edge_is_one_particle_not_judged_in_the_cladding_zone(inspector):
    # 12 um particle whose inner rim lies 0.8 um outside zone B: the chip detector sees its inner
    # part, the region detector its outer part beyond the guard band; together they are one particle
    truth, report = _inspect(
        inspector, ParticleSpec(center_um=_at_radius(57.5 + 0.8 + 6, 30), size_um=12, contrast_grey=-55)
    )
    assert truth.expected["iec-mm-pc"].status == Status.PASS
    found = [(d.kind.value, d.zones, d.size_um) for d in report.defects]
    assert len(report.defects) == 1, found
    particle = report.defects[0]
    assert particle.kind == DefectKind.PARTICLE and "B" not in particle.zones, found
    assert particle.size_um == pytest.approx(12, abs=1.5)
    assert report.verdict.status == Status.PASS, report.verdict.reasons


def test_a_particle_lying_over_the_edge_and_into_the_cladding_zone_fails(inspector):
    truth, report = _inspect(
        inspector, ParticleSpec(center_um=_at_radius(57.5 - 0.9 + 6, 200), size_um=12, contrast_grey=-55)
    )
    assert truth.expected["iec-mm-pc"].status == Status.FAIL
    assert report.verdict.status == Status.FAIL
    assert any(r.startswith("zone B: 1 defect over 10") for r in report.verdict.reasons), (
        report.verdict.reasons
    )


def test_a_dig_inside_the_edge_guard_band_is_found_and_judged():
    # iec-sm-upc: 6 um dig lying mostly in the band 5 um inside the edge (where region detection
    # does not look), radii 56-62 um: in zone B (to 57.5 um), where nothing over 5 um is allowed
    inspector = Inspector.from_profile("iec-sm-upc")
    truth, report = _inspect(inspector, DigSpec(center_um=_at_radius(59.0, 120), size_um=6))
    assert truth.expected["iec-sm-upc"].status == Status.FAIL
    digs = [d for d in report.defects if d.kind == DefectKind.DIG]
    assert len(digs) == 1, [(d.kind.value, d.zones, d.size_um) for d in report.defects]
    assert digs[0].zone == "B" and digs[0].size_um == pytest.approx(6, abs=1)
    assert report.verdict.status == Status.FAIL


def test_a_particle_reaching_just_into_the_contact_zone_is_judged_there():
    # iec-sm-upc zone D ends at radius 125 um; a 12 um particle reaching 1 um inside it (under
    # two pixels) counts there, where nothing of 10 um or more is allowed, at its full size
    inspector = Inspector.from_profile("iec-sm-upc")
    truth, report = _inspect(
        inspector, ParticleSpec(center_um=_at_radius(125 - 1.0 + 6, 45), size_um=12), um_per_px=0.6
    )
    assert truth.expected["iec-sm-upc"].status == Status.FAIL
    assert report.verdict.status == Status.FAIL, [(d.kind.value, d.zones, d.size_um) for d in report.defects]
    assert report.defects[0].size_um == pytest.approx(12, abs=1)


def test_a_dig_in_the_core_guard_band_is_found_and_fails_the_core_zone():
    # image 10 of the synthetic set drawn with seed 7007 (a false pass found on held-out data),
    # reduced to its 3.4 um dig at radii 4.2-7.3 um: inside the band around the 4.5 um core edge
    # that region detection leaves alone; zone A allows no defect at all
    scene = random_scene(image_seed(7007, 10), "iec-sm-upc", target=planned_target(7007, 10))
    (dig,) = [d for d in scene.defects if isinstance(d, DigSpec) and np.hypot(*d.center_um) < 10]
    image = render_scene(replace(scene, defects=(dig,)), profiles=PROFILES)
    assert image.truth.expected["iec-sm-upc"].status == Status.FAIL
    report = Inspector.from_profile("iec-sm-upc").inspect(image.pixels)
    assert report.verdict.zones["A"].status == Status.FAIL, [(d.kind.value, d.zones) for d in report.defects]
    (found,) = [d for d in report.defects if "A" in d.zones]
    assert found.size_um == pytest.approx(3.4, abs=1)


# --- a closing bridges two bright features: the gap between them is not a dark defect --------------


def _held_out_scene(index: int):
    """mm-new image `index` of the accuracy benchmark (seed 8008), as planned for iec-mm-pc."""
    return random_scene(image_seed(8008, index), "iec-mm-pc", target=planned_target(8008, index))


@pytest.mark.parametrize("index", [90, 152])
def test_the_gap_between_a_bright_feature_and_the_core_is_not_a_dark_particle(inspector, index):
    # a bright scratch (90) or bright pit (152) just outside the core edge: the rank closing filled
    # the gap between it and the brighter core, and the cladding there read as a 12-16 um dark
    # "particle" in zone A (mm-new 199, a third such case, is still reported: README)
    image = render_scene(_held_out_scene(index), profiles=PROFILES)
    assert image.truth.expected["iec-mm-pc"].status == Status.PASS
    report = inspector.inspect(image.pixels)
    dark_in_a = [
        (d.kind.value, d.size_um)
        for d in report.defects
        if d.zone == "A" and d.contrast_grey < 0 and d.size_um > 5
    ]
    assert report.verdict.status == Status.PASS and not dark_in_a, (report.verdict.reasons, dark_in_a)


def test_a_dig_in_that_gap_is_still_found(inspector):
    scene = _held_out_scene(90)
    dig = DigSpec(center_um=(19.2, -20.0), size_um=8.0, contrast_grey=-40)  # where the false particle was
    image = render_scene(replace(scene, defects=(*scene.defects, dig)), profiles=PROFILES)
    assert image.truth.expected["iec-mm-pc"].status == Status.FAIL
    report = inspector.inspect(image.pixels)
    found = [d for d in report.defects if d.zone == "A" and d.contrast_grey < 0 and d.size_um > 5]
    assert found and report.verdict.zones["A"].status == Status.FAIL, report.verdict.reasons
