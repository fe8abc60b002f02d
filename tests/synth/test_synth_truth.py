"""The synthetic generator: its truth matches its pixels, and its expected verdicts are right.

Tolerances are in µm or pixels and say what they cover: a mask is sampled at pixel centres,
so sizes measured from it may differ from the nominal outline by about a pixel.
"""

from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np
import pytest

from defectscope.judge import judge
from defectscope.profile import load_profile
from defectscope.records import DefectKind, Status
from defectscope.synth import (
    ChipSpec,
    DigSpec,
    OilSpec,
    ParticleSpec,
    ScratchSpec,
    SynthImage,
    make_scene,
    random_scene,
    render_scene,
    shipped_profiles,
    zones_touched,
)

PROFILES = shipped_profiles()
SM = load_profile("iec-sm-upc")


def _render(scene) -> SynthImage:
    return render_scene(scene, profiles=PROFILES)


def _status(image: SynthImage, profile: str = "iec-sm-upc") -> Status:
    return image.truth.expected[profile].status


# --- expected verdicts of hand-built scenes ---------------------------------------------------------------


def test_clean_bright_ferrule_fiber_passes_every_profile_with_exact_geometry():
    image = _render(make_scene("iec-sm-upc", um_per_px=0.45))
    t = image.truth
    assert t.defects == () and not image.mask.any()
    assert t.geometry.um_per_px == 0.45
    assert t.geometry.cladding_radius_px == pytest.approx(125 / 2 / 0.45, abs=1e-3)
    assert t.geometry.center_xy == ((1152 - 1) / 2, (864 - 1) / 2)
    assert set(t.expected) == {p.name for p in PROFILES}
    assert all(v.status == Status.PASS for v in t.expected.values())


@pytest.mark.parametrize("width_um, status", [(3.5, Status.FAIL), (2.5, Status.PASS)])
def test_scratch_in_zone_b_is_judged_by_its_width(width_um, status):
    scratch = ScratchSpec.chord(distance_um=40, angle_deg=30, half_length_um=25, width_um=width_um)
    image = _render(make_scene("iec-sm-upc", um_per_px=0.45, defects=[scratch]))
    (d,) = image.truth.defects
    assert zones_touched(SM, *d.radial_extent_um) == ("B",)
    assert d.size_um == width_um and d.length_um == pytest.approx(50.0, abs=1e-3)
    assert _status(image) == status
    if status == Status.FAIL:
        reasons = image.truth.expected["iec-sm-upc"].reasons
        assert reasons == ("zone B: 1 scratch over 3 µm (3.5 µm), 0 allowed",)


def test_scratch_through_the_core_fails_single_mode_but_passes_multimode():
    scratch = ScratchSpec.chord(distance_um=3, angle_deg=75, half_length_um=70, width_um=1.5)
    image = _render(make_scene("iec-sm-upc", um_per_px=0.4, defects=[scratch]))
    assert _status(image, "iec-sm-upc") == Status.FAIL
    assert _status(image, "iec-mm-pc") == Status.PASS


@pytest.mark.parametrize("size_um, status", [(4.0, Status.PASS), (6.0, Status.FAIL)])
def test_dig_in_zone_b_is_judged_by_its_enclosing_diameter(size_um, status):
    dig = DigSpec(center_um=(30.0, -20.0), size_um=size_um)
    image = _render(make_scene("iec-sm-upc", um_per_px=0.5, defects=[dig]))
    (d,) = image.truth.defects
    assert d.size_um == pytest.approx(size_um, abs=1e-3)
    assert zones_touched(SM, *d.radial_extent_um)[0] == "B"
    assert _status(image) == status


def test_12um_particle_in_zone_d_is_contamination_to_clean():
    particle = ParticleSpec(center_um=(-90.0, 30.0), size_um=12.0)
    image = _render(make_scene("iec-sm-upc", um_per_px=0.42, defects=[particle]))
    (d,) = image.truth.defects
    assert zones_touched(SM, *d.radial_extent_um) == ("D",)
    expected = image.truth.expected["iec-sm-upc"]
    assert expected.status == Status.FAIL
    assert expected.reasons[-1] == "contamination: clean and re-inspect"
    assert _status(image, "iec-mm-pc") == Status.PASS  # MM allows < 20 µm in D


def test_shallow_chip_stays_in_the_adhesive_zone_and_a_deep_one_reaches_the_cladding():
    shallow = _render(make_scene("iec-sm-upc", defects=[ChipSpec(angle_deg=200, arc_um=12, depth_um=3.5)]))
    deep = _render(make_scene("iec-sm-upc", defects=[ChipSpec(angle_deg=200, arc_um=12, depth_um=6.5)]))
    (s,), (d,) = shallow.truth.defects, deep.truth.defects
    assert s.radial_extent_um == pytest.approx((62.5 - 3.5, 62.5), abs=1e-3)
    assert zones_touched(SM, *s.radial_extent_um) == ("C",)
    assert zones_touched(SM, *d.radial_extent_um)[0] == "B"
    assert _status(shallow) == Status.PASS and _status(deep) == Status.FAIL


def test_expected_verdicts_are_judge_on_the_true_defects():
    image = _render(_busy_scene())
    for prof in PROFILES:
        verdict = judge(image.truth.defects_for(prof), prof)
        assert image.truth.expected[prof.name].status == verdict.status
        assert image.truth.expected[prof.name].reasons == verdict.reasons


# --- truth matches pixels ---------------------------------------------------------------------------------


def _busy_scene(style="bright-ferrule", um_per_px=0.43):
    return make_scene(
        "iec-sm-upc",
        style=style,
        um_per_px=um_per_px,
        defects=[
            ScratchSpec.chord(distance_um=40, angle_deg=30, half_length_um=25, width_um=3.5),
            ScratchSpec.chord(
                distance_um=-20, angle_deg=100, half_length_um=110, width_um=1.0, contrast_grey=-25, bend_um=6
            ),
            DigSpec(center_um=(30, -20), size_um=4),
            ParticleSpec(center_um=(-90, 30), size_um=12),
            ParticleSpec(center_um=(90, 60), size_um=40, contrast_grey=30, shape_seed=3),
            OilSpec(center_um=(-60, -90), size_um=50),
            ChipSpec(angle_deg=200, arc_um=12, depth_um=6),
        ],
    )


def _mask_points(mask: np.ndarray, label: int) -> np.ndarray:
    ys, xs = np.nonzero(mask == label)
    return np.stack([xs, ys], axis=1).astype(np.float64)


def _dist_to_polyline(p, line) -> float:
    line = np.asarray(line, float)
    a, b = line[:-1], line[1:]
    d = b - a
    along = (p[0] - a[:, 0]) * d[:, 0] + (p[1] - a[:, 1]) * d[:, 1]
    t = np.clip(along / np.maximum((d**2).sum(1), 1e-12), 0, 1)
    q = a + d * t[:, None]
    return float(np.hypot(q[:, 0] - p[0], q[:, 1] - p[1]).min())


def _check_truth_against_mask(image: SynthImage) -> None:
    t = image.truth
    u = t.geometry.um_per_px
    cx, cy = t.geometry.center_xy
    labels = set(np.unique(image.mask)) - {0}
    assert labels == {d.mask_value for d in t.defects}
    for d in t.defects:
        pts = _mask_points(image.mask, d.mask_value)
        assert len(pts) > 0, d
        r = np.hypot(pts[:, 0] - cx, pts[:, 1] - cy) * u
        px = 1.0 * u  # one pixel, in µm: pixel-centre sampling of the nominal outline
        if d.kind == DefectKind.SCRATCH:
            line = np.asarray(d.polyline_xy)
            assert _dist_to_polyline(d.centroid_xy, line) < 1e-2
            seg = np.hypot(*np.diff(line, axis=0).T)
            assert d.length_um == pytest.approx(seg.sum() * u, rel=1e-4)
            w_px = d.size_um / u
            if w_px >= 1.5:  # mask area = width x length plus the round caps
                est_w = len(pts) / (seg.sum() + math.pi / 4 * w_px)
                assert est_w == pytest.approx(w_px, abs=0.6)
            half = max(w_px / 2, 0.5) * u
            assert r.min() >= d.radial_extent_um[0] - half - px and r.max() <= d.radial_extent_um[1] + px
        else:
            poly = np.asarray(d.polygon_xy, np.float32)
            area = cv2.contourArea(poly)
            perimeter = cv2.arcLength(poly.reshape(-1, 1, 2), True)
            if d.kind == DefectKind.OIL:  # the polygon is the mask's own contour through pixel centres
                assert len(pts) == pytest.approx(area + perimeter / 2 + 1, abs=0.1 * perimeter + 4)
            else:
                assert len(pts) == pytest.approx(area, abs=0.35 * perimeter + 2)
            (_, _), r_mask = cv2.minEnclosingCircle(pts.astype(np.float32))
            assert 2 * r_mask * u == pytest.approx(d.size_um, abs=1.5 * px + 0.02 * d.size_um)
            assert cv2.pointPolygonTest(poly.reshape(-1, 1, 2), d.centroid_xy, False) >= 0
            assert r.min() == pytest.approx(d.radial_extent_um[0], abs=1.2 * px)
            assert r.max() == pytest.approx(d.radial_extent_um[1], abs=1.2 * px)
        # the defect's label sits where the truth says the defect is
        x, y = (int(round(v)) for v in d.centroid_xy)
        window = image.mask[y - 1 : y + 2, x - 1 : x + 2]
        assert (window == d.mask_value).any(), d


@pytest.mark.parametrize("style", ["bright-ferrule", "dark-ferrule"])
def test_hand_built_truth_matches_the_mask(style):
    _check_truth_against_mask(_render(_busy_scene(style)))


def test_random_scene_truth_matches_the_mask():
    for seed in range(8):
        scene = random_scene(seed, "iec-sm-upc" if seed % 2 else "iec-mm-pc", target=Status.FAIL)
        _check_truth_against_mask(_render(replace(scene, jpeg_quality=None)))


def test_defects_show_in_the_pixels_with_their_sign():
    scene = replace(_busy_scene(), noise_sigma_grey=0.0)
    image = _render(scene)
    clean = _render(replace(scene, defects=())).pixels.astype(np.float32)
    diff = image.pixels.astype(np.float32) - clean  # same seed: same texture and light
    for d in image.truth.defects:
        measured = float(np.median(diff[image.mask == d.mask_value]))
        assert np.sign(measured) == np.sign(d.contrast_grey), d
        assert abs(measured) >= 0.4 * abs(d.contrast_grey), (d.kind, measured, d.contrast_grey)


def _steepest_step_offset_px(pixels, center_xy, radius_px) -> float:
    cx, cy = center_xy
    ang = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    rs = np.arange(radius_px - 10, radius_px + 10, 0.05)
    xs = (cx + np.cos(ang)[:, None] * rs).astype(np.float32)
    ys = (cy + np.sin(ang)[:, None] * rs).astype(np.float32)
    profile = np.median(cv2.remap(pixels.astype(np.float32), xs, ys, cv2.INTER_LINEAR), axis=0)
    return float(rs[np.argmax(np.abs(np.gradient(profile)))] - radius_px)


@pytest.mark.parametrize("seed", range(6))
def test_steepest_edge_step_is_the_truth_cladding_radius(seed):
    scene = random_scene(
        seed,
        "iec-mm-pc" if seed % 3 == 0 else "iec-sm-upc",
        style="dark-ferrule" if seed % 2 else "bright-ferrule",
        target=Status.PASS,
    )
    image = _render(replace(scene, defects=()))
    g = image.truth.geometry
    assert abs(_steepest_step_offset_px(image.pixels, g.center_xy, g.cladding_radius_px)) <= 0.5


def test_core_contrast_is_faint_for_single_mode_and_clear_for_multimode():
    def core_contrast(profile):
        scene = make_scene(profile, um_per_px=0.4, noise_sigma_grey=0.0)
        image = _render(scene)
        cx, cy = (int(v) for v in scene.fiber_center_xy)
        rc = scene.core_radius_px
        core = image.pixels[cy - 2 : cy + 3, cx - 2 : cx + 3].mean()
        clad = image.pixels[cy - 2 : cy + 3, int(cx + rc + 12) : int(cx + rc + 17)].mean()
        return core - clad

    assert abs(core_contrast("iec-sm-upc")) <= 6
    assert 5 <= abs(core_contrast("iec-mm-pc")) <= 25


def test_render_is_deterministic_to_the_byte():
    scene = replace(_busy_scene(), jpeg_quality=88)
    a, b = _render(scene), _render(scene)
    assert a.encoded == b.encoded and a.encoded is not None
    assert np.array_equal(a.pixels, b.pixels) and np.array_equal(a.mask, b.mask)
    assert a.truth.to_json() == b.truth.to_json()
    other = _render(replace(scene, seed=1))
    assert other.encoded != a.encoded  # the seed drives texture and noise


def test_pixels_are_the_decoded_jpeg():
    image = _render(replace(_busy_scene(), jpeg_quality=85))
    decoded = cv2.imdecode(np.frombuffer(image.encoded, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(decoded, image.pixels)
    assert image.truth.image.endswith(".jpg") and image.truth.conditions.jpeg_quality == 85
