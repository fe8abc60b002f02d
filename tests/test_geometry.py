"""Fiber localisation on synthetic end faces with exact truth: centre, radii, µm/px, zones, pixel aspect.

Tolerances are physical: centre within 1 px, cladding radius within 0.5 % (0.3 µm of a 62.5 µm
radius), a multimode core radius within 2 %.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from defectscope import geometry
from defectscope.errors import FiberNotFoundError
from defectscope.geometry import locate_fiber, zones_for
from defectscope.imageio import frame_from_array, read_frame
from defectscope.inspector import Inspector
from defectscope.synth import (
    ChipSpec,
    ScratchSpec,
    default_illumination,
    make_scene,
    random_scene,
    render_scene,
)

OFFSET_PX = (23.4, -17.8)  # fibre off the frame centre


def _side_px(um_per_px: float) -> int:
    """Smallest square frame holding the contact zone (125 µm radius) with the offset and a 12 px margin."""
    return int(np.ceil(2 * (125.0 / um_per_px + max(map(abs, OFFSET_PX)) + 12)))


def _scene(profile: str, style: str, um_per_px: float, **kwargs):
    side = _side_px(um_per_px)
    centre = ((side - 1) / 2 + OFFSET_PX[0], (side - 1) / 2 + OFFSET_PX[1])
    return make_scene(
        profile,
        style=style,
        um_per_px=um_per_px,
        width=side,
        height=side,
        center_xy=centre,
        seed=int(um_per_px * 100),
        **kwargs,
    )


def _locate(pixels, profile, **kwargs):
    return locate_fiber(frame_from_array(pixels, source="synthetic"), profile, **kwargs)


CASES = [
    (p, s, u)
    for p in ("iec-sm-upc", "iec-mm-pc")
    for s in ("bright-ferrule", "dark-ferrule")
    for u in (0.3, 0.45, 0.6)
]


@pytest.fixture(scope="module")
def located(sm_upc, mm_pc):
    """(scene, truth geometry, Geometry) per case, rendered once per module."""
    out = {}
    for profile, style, u in CASES:
        scene = _scene(profile, style, u)
        image = render_scene(scene, profiles=[sm_upc, mm_pc])
        geometry, _ = _locate(image.pixels, sm_upc if profile == "iec-sm-upc" else mm_pc)
        out[profile, style, u] = (scene, image.truth.geometry, geometry)
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_centre_within_1px_and_cladding_radius_within_half_a_percent(located, case):
    _, truth, geometry = located[case]
    assert np.hypot(*np.subtract(geometry.center_xy, truth.center_xy)) <= 1.0
    assert geometry.cladding_radius_px == pytest.approx(truth.cladding_radius_px, rel=0.005)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_um_per_px_comes_from_the_nominal_125um_cladding(located, case):
    scene, _, geometry = located[case]
    assert geometry.calibration == "profile" and geometry.warnings == ()
    assert geometry.um_per_px == pytest.approx(125.0 / (2 * geometry.cladding_radius_px), rel=1e-9)
    assert geometry.um_per_px == pytest.approx(scene.um_per_px, rel=0.005)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_zone_radii_in_px_are_half_the_diameter_over_um_per_px(located, case, sm_upc, mm_pc):
    _, _, geometry = located[case]
    profile = sm_upc if case[0] == "iec-sm-upc" else mm_pc
    assert [z.name for z in geometry.zones] == [z.name for z in profile.zones]
    for zone, rule in zip(geometry.zones, profile.zones):
        assert (zone.inner_um, zone.outer_um) == (rule.inner_um, rule.outer_um)
        assert zone.inner_radius_px == pytest.approx(rule.inner_um / 2 / geometry.um_per_px, rel=1e-9)
        assert zone.outer_radius_px == pytest.approx(rule.outer_um / 2 / geometry.um_per_px, rel=1e-9)


def test_zones_for_converts_diameters_in_um_to_radii_in_px(sm_upc):
    zones = zones_for(sm_upc, 0.5)
    assert [(z.name, z.inner_radius_px, z.outer_radius_px) for z in zones] == [
        ("A", 0.0, 25.0),
        ("B", 25.0, 115.0),
        ("C", 115.0, 135.0),
        ("D", 135.0, 250.0),
    ]


MM_CORE = [c for c in CASES if c[0] == "iec-mm-pc"]
_RING_BIAS = pytest.mark.xfail(
    strict=True,
    reason=(
        "geometry._core_step: the bright ring drawn on a multimode core boundary (bright-ferrule look, "
        "core_ring_grey=6) pulls the core edge ~1.0-1.2 px inward: core radius -2.1 % at 0.45 um/px, "
        "-2.5 % at 0.6 um/px (without the ring the error is < 0.3 %)"
    ),
)


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, marks=_RING_BIAS) if c[1] == "bright-ferrule" and c[2] >= 0.45 else c for c in MM_CORE],
    ids=lambda c: f"{c[1]}-{c[2]}",
)
def test_multimode_core_radius_is_found_within_2_percent(located, case):
    _, truth, geometry = located[case]
    assert geometry.core_radius_px is not None
    assert geometry.core_radius_px == pytest.approx(truth.core_radius_px, rel=0.02)
    assert np.hypot(*np.subtract(geometry.core_center_xy, truth.center_xy)) <= 1.0


def test_multimode_core_without_the_boundary_ring_is_within_half_a_percent(mm_pc):
    ill = dataclasses.replace(default_illumination("bright-ferrule", multimode=True), core_ring_grey=0.0)
    scene = _scene("iec-mm-pc", "bright-ferrule", 0.6, illumination=ill)
    image = render_scene(scene, profiles=[mm_pc])
    geometry, _ = _locate(image.pixels, mm_pc)
    assert geometry.core_radius_px == pytest.approx(image.truth.geometry.core_radius_px, rel=0.005)


@pytest.mark.parametrize("style", ["bright-ferrule", "dark-ferrule"])
def test_invisible_single_mode_core_gives_no_core_radius(sm_upc, style):
    """A core with no contrast is not invented from noise."""
    ill = dataclasses.replace(default_illumination(style), core_delta_grey=0.0)
    scene = _scene("iec-sm-upc", style, 0.45, illumination=ill)
    geometry, _ = _locate(render_scene(scene, profiles=[sm_upc]).pixels, sm_upc)
    assert geometry.core_radius_px is None


def test_random_looks_with_borders_and_vignetting_are_located(synth_dataset, sm_upc):
    """The generator's own looks (dimension scope, vignetted with black borders, dark ferrule), via JPEG."""
    folder, truths = synth_dataset
    for truth in truths:
        geometry, _ = locate_fiber(read_frame(folder / truth.image), sm_upc)
        assert np.hypot(*np.subtract(geometry.center_xy, truth.geometry.center_xy)) <= 1.0, truth.image
        assert geometry.cladding_radius_px == pytest.approx(truth.geometry.cladding_radius_px, rel=0.005)


# --- calibration ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sm_image(sm_upc):
    scene = _scene("iec-sm-upc", "bright-ferrule", 0.45)
    return scene, render_scene(scene, profiles=[sm_upc])


def test_user_um_per_px_is_kept_when_it_agrees_with_the_cladding(sm_upc, sm_image):
    _, image = sm_image
    geometry, _ = _locate(image.pixels, sm_upc, um_per_px=0.47)  # implies a 130.6 um cladding: 4.5 % off
    assert geometry.um_per_px == 0.47 and geometry.calibration == "user"
    assert geometry.warnings == ()
    assert geometry.zone("B").outer_radius_px == pytest.approx(115 / 2 / 0.47)


@pytest.mark.parametrize("user_um_per_px", [0.42, 0.48])
def test_user_um_per_px_is_kept_with_a_warning_when_it_disagrees_by_over_5_percent(
    sm_upc, sm_image, user_um_per_px
):
    _, image = sm_image
    geometry, _ = _locate(image.pixels, sm_upc, um_per_px=user_um_per_px)  # 6.7 % off either way
    assert geometry.um_per_px == user_um_per_px and geometry.calibration == "user"
    assert len(geometry.warnings) == 1
    assert "calibration" in geometry.warnings[0] and "125" in geometry.warnings[0]
    assert geometry.zone("D").outer_radius_px == pytest.approx(250 / 2 / user_um_per_px)


def test_inspector_um_per_px_reaches_the_report(sm_upc, sm_image):
    _, image = sm_image
    report = Inspector(sm_upc, um_per_px=0.48).inspect(image.pixels)
    assert report.um_per_px == 0.48 and report.geometry.calibration == "user"
    assert any("calibration" in w for w in report.geometry.warnings)


def test_with_cladding_um_changes_only_the_calibration_reference(sm_upc, sm_image):
    _, image = sm_image
    thick = sm_upc.with_cladding_um(140.0)
    assert thick.fiber.cladding_diameter_um == 140.0 and sm_upc.fiber.cladding_diameter_um == 125.0
    assert thick.zones == sm_upc.zones and thick.fiber.core_diameter_um == sm_upc.fiber.core_diameter_um
    nominal, _ = _locate(image.pixels, sm_upc)
    geometry, _ = _locate(image.pixels, thick)
    assert geometry.cladding_radius_px == pytest.approx(nominal.cladding_radius_px, abs=0.01)
    assert geometry.um_per_px == pytest.approx(140.0 / (2 * geometry.cladding_radius_px), rel=1e-9)
    assert Inspector.from_profile("iec-sm-upc", cladding_um=140.0).profile.fiber.cladding_diameter_um == 140.0


# --- non-square pixels ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stretch, aspect", [(1 / 0.917, 0.917), (0.917, 1 / 0.917)], ids=["taller", "flatter"]
)
def test_non_square_pixels_are_measured_and_resampled_to_a_round_cladding(sm_upc, sm_image, stretch, aspect):
    """A camera whose pixels are 0.917 as high as wide shows a round fiber 9 % taller than wide."""
    scene, image = sm_image
    h, w = image.pixels.shape
    pixels = cv2.resize(image.pixels, (w, round(h * stretch)), interpolation=cv2.INTER_LINEAR)
    inspection = Inspector(sm_upc).run(pixels)
    geometry = inspection.report.geometry
    assert inspection.report.quality.ok, inspection.report.verdict.reasons
    assert geometry.pixel_aspect == pytest.approx(aspect, abs=0.005)
    # the frame behind the report has square pixels again: the square scene is square, the fiber round
    frame = inspection.frame
    assert frame.height / frame.width == pytest.approx(h / w, abs=0.005)
    again, fit = locate_fiber(frame, sm_upc)
    assert again.pixel_aspect == 1.0 and fit.rms_px < 0.5
    # resampling never drops rows or columns: a squashed frame is stretched back, a tall one widened
    expected_r = scene.cladding_radius_px * (1 / aspect if aspect < 1 else 1.0)
    assert geometry.cladding_radius_px == pytest.approx(expected_r, rel=0.005)


# --- robustness -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "defect",
    [
        ScratchSpec.chord(distance_um=50, angle_deg=10, half_length_um=60, width_um=4, contrast_grey=-60),
        ScratchSpec.chord(distance_um=58, angle_deg=100, half_length_um=70, width_um=6, contrast_grey=70),
        ChipSpec(angle_deg=45, arc_um=20, depth_um=8),
        ChipSpec(angle_deg=200, arc_um=35, depth_um=12, contrast_grey=-70),
    ],
    ids=["dark-scratch-over-edge", "bright-scratch-over-edge", "chip", "deep-chip"],
)
def test_damage_at_the_cladding_edge_does_not_move_the_centre(sm_upc, sm_image, defect):
    scene, _ = sm_image
    image = render_scene(dataclasses.replace(scene, defects=(defect,)), profiles=[sm_upc])
    geometry, _ = _locate(image.pixels, sm_upc)
    assert np.hypot(*np.subtract(geometry.center_xy, image.truth.geometry.center_xy)) <= 1.0
    assert geometry.cladding_radius_px == pytest.approx(image.truth.geometry.cladding_radius_px, rel=0.005)


def test_frame_without_a_fiber_raises_fiber_not_found(sm_upc):
    pixels = render_scene(random_scene(2, "iec-sm-upc", degraded="no-fiber"), profiles=[sm_upc]).pixels
    with pytest.raises(FiberNotFoundError, match="no circular cladding edge") as info:
        locate_fiber(frame_from_array(pixels, source="ferrule-only.jpg"), sm_upc)
    assert "ferrule-only.jpg" in str(info.value)


@pytest.mark.parametrize("level", [0, 128, 255])
def test_flat_frame_raises_fiber_not_found(sm_upc, level):
    with pytest.raises(FiberNotFoundError, match="flat-grey"):
        locate_fiber(frame_from_array(np.full((300, 400), level, np.uint8), source="flat-grey"), sm_upc)


# --- fast paths: each must give what the plain NumPy it replaces gives -----------------------------


@pytest.mark.parametrize(
    "centre_xy, max_radius_px",
    [((200.3, 150.7), 90.0), ((30.2, 150.7), 90.0), ((200.3, 148.5), 148.5)],
    ids=["inside", "cut-by-the-left-border", "touching-the-top-and-bottom"],
)
def test_polar_unwrap_marks_exactly_the_samples_outside_the_frame(centre_xy, max_radius_px):
    pixels = np.random.default_rng(0).integers(0, 256, (300, 400), dtype=np.uint8)
    polar, valid = geometry.polar_unwrap(pixels, centre_xy, max_radius_px, min_radius_px=3.0)
    theta = np.arange(360, dtype=np.float32) * np.float32(2 * np.pi / 360)
    radii = np.float32(3.0) + np.arange(polar.shape[1], dtype=np.float32)
    map_x = centre_xy[0] + np.cos(theta)[:, None] * radii[None, :]
    map_y = centre_xy[1] + np.sin(theta)[:, None] * radii[None, :]
    expected = (map_x >= 0) & (map_x <= 399) & (map_y >= 0) & (map_y <= 299)
    np.testing.assert_array_equal(valid, expected)
    remapped = cv2.remap(pixels, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    np.testing.assert_array_equal(polar, remapped.astype(np.float32))


def test_median_profile_ignores_samples_outside_the_frame():
    rng = np.random.default_rng(1)
    polar_rt = rng.integers(0, 256, (40, 180), dtype=np.uint8)
    valid_rt = np.ones_like(polar_rt, dtype=bool)
    valid_rt[25:, 100:160] = False  # an arc of directions leaves the frame beyond radius 25
    valid_rt[35:, :] = False  # and beyond radius 35, all of them
    expected = [np.median(row[ok]) for row, ok in zip(polar_rt[:35], valid_rt[:35], strict=True)]
    np.testing.assert_array_equal(geometry._median_profile(polar_rt, valid_rt), expected)


@pytest.mark.parametrize("spacing", [1.0, 0.5])
def test_gradient_is_numpys(spacing):
    values = np.random.default_rng(2).normal(size=50).astype(np.float32)
    result = geometry._gradient(values, spacing)
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, np.gradient(values, spacing))
