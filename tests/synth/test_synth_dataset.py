"""Data sets from the generator: files, determinism, the PASS share, visibility and degraded frames."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from defectscope.profile import load_profile
from defectscope.records import DefectKind, Status
from defectscope.synth import (
    DEGRADATIONS,
    random_scene,
    read_truth,
    render_scene,
    shipped_profiles,
    write_dataset,
    zones_touched,
)

PROFILES = shipped_profiles()
SM = load_profile("iec-sm-upc")


@pytest.fixture(scope="module")
def default_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    paths = write_dataset(out, n=50, seed=7)
    return out, [read_truth(p) for p in paths]


def test_dataset_writes_jpeg_mask_and_truth_per_image(default_set):
    out, truths = default_set
    assert len(truths) == 50
    for t in truths[:5]:
        assert t.image.endswith(".jpg") and (out / t.image).exists()
        pixels = cv2.imread(str(out / t.image), cv2.IMREAD_UNCHANGED)
        mask = cv2.imread(str(out / t.mask), cv2.IMREAD_UNCHANGED)
        assert pixels.shape == mask.shape == (t.height, t.width) and pixels.dtype == mask.dtype == np.uint8
        assert set(np.unique(mask)) - {0} == {d.mask_value for d in t.defects}
        assert 80 <= t.conditions.jpeg_quality <= 95


def test_about_40_percent_of_a_default_set_pass(default_set):
    _, truths = default_set
    passed = sum(t.expected["iec-sm-upc"].status == Status.PASS for t in truths)
    assert passed == 20  # exactly 2 in every 5 by construction
    assert all(t.expected["iec-sm-upc"].status in (Status.PASS, Status.FAIL) for t in truths)


def test_default_set_keeps_the_contact_zone_in_frame_at_the_sampled_scale(default_set):
    _, truths = default_set
    for t in truths:
        g = t.geometry
        assert 0.3 <= g.um_per_px <= 0.6
        assert g.cladding_radius_px == pytest.approx(125 / 2 / g.um_per_px, rel=1e-6)
        contact_px = 125 / g.um_per_px
        cx, cy = g.center_xy
        assert contact_px + 1 <= cx <= t.width - 1 - contact_px - 1
        assert contact_px + 1 <= cy <= t.height - 1 - contact_px - 1
        assert (t.width, t.height) in ((1152, 864), (1024, 768), (800, 600))


def test_default_set_defects_are_visible_and_digs_in_the_core_are_not_tiny(default_set):
    _, truths = default_set
    kinds = set()
    for t in truths:
        for d in t.defects:
            kinds.add(d.kind)
            if d.kind == DefectKind.SCRATCH:
                assert 0.5 <= d.size_um <= 8.0
                assert abs(d.contrast_grey) * min(1.0, d.size_um / t.geometry.um_per_px) >= 12
            elif d.kind == DefectKind.OIL:
                assert 8 <= abs(d.contrast_grey) <= 25
            else:
                assert abs(d.contrast_grey) >= 15
            judged_in = zones_touched(SM, *d.radial_extent_um)[:1]
            if d.kind in (DefectKind.DIG, DefectKind.PARTICLE) and judged_in == ("A",):
                assert d.size_um >= 1.5
    assert kinds == {DefectKind.SCRATCH, DefectKind.DIG, DefectKind.PARTICLE, DefectKind.OIL, DefectKind.CHIP}


def test_default_set_carries_named_borderline_cases(default_set):
    _, truths = default_set
    notes = [d.note for t in truths for d in t.defects if d.note]
    assert len(notes) >= 5 and all(n.startswith("borderline: ") for n in notes)


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = write_dataset(tmp_path / "a", n=3, seed=11)
    b = write_dataset(tmp_path / "b", n=3, seed=11)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir()) and len(names) == 9
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert [p.name for p in a] == [p.name for p in b]
    c = write_dataset(tmp_path / "c", n=1, seed=12)
    assert c[0].read_bytes() != a[0].read_bytes()


def test_image_i_does_not_depend_on_the_set_size(tmp_path):
    short = write_dataset(tmp_path / "short", n=2, seed=5)
    long = write_dataset(tmp_path / "long", n=4, seed=5)
    assert short[1].read_bytes() == long[1].read_bytes()


def test_degraded_set_is_all_undetermined_and_covers_every_kind(tmp_path):
    truths = [read_truth(p) for p in write_dataset(tmp_path, n=6, seed=3, degraded=True)]
    assert sorted(t.degraded for t in truths) == sorted(DEGRADATIONS)
    for t in truths:
        assert t.expected.keys() == {p.name for p in PROFILES}
        for v in t.expected.values():
            assert v.status == Status.UNDETERMINED and v.reasons == (f"degraded: {t.degraded}",)


@pytest.mark.parametrize("kind", DEGRADATIONS)
def test_each_degradation_really_degrades_the_frame(kind):
    scene = random_scene(21, "iec-sm-upc", degraded=kind)
    image = render_scene(scene, profiles=PROFILES)
    px = image.pixels
    t = image.truth
    assert t.degraded == kind and t.expected["iec-sm-upc"].status == Status.UNDETERMINED
    if kind in ("no-fiber", "black", "white"):
        assert t.geometry is None and t.defects == () and not image.mask.any()
    if kind == "black":
        assert np.percentile(px, 99) <= 15
    elif kind == "white":
        assert np.percentile(px, 1) >= 245
    elif kind == "defocus":
        assert scene.psf_sigma_px >= 6
    elif kind == "no-fiber":
        # nothing but ferrule: no step anywhere near a fiber's contrast
        smooth = cv2.GaussianBlur(px, (0, 0), 2.0).astype(np.float32)
        assert np.abs(cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)).max() < 40
    elif kind == "cut-by-border":
        g = t.geometry
        contact_px = 125 / g.um_per_px
        cx, cy = g.center_xy
        assert min(cx, cy, t.width - 1 - cx, t.height - 1 - cy) < contact_px
    elif kind == "saturated":
        g = t.geometry
        yy, xx = np.indices(px.shape)
        fiber = np.hypot(xx - g.center_xy[0], yy - g.center_xy[1]) < g.cladding_radius_px
        assert (px[fiber] >= 250).mean() >= 0.3


def test_random_scene_hits_its_target_under_other_profiles_too():
    for seed in range(6):
        for target in (Status.PASS, Status.FAIL):
            scene = random_scene(seed, "iec-mm-pc", target=target)
            image = render_scene(scene, profiles=PROFILES)
            assert image.truth.expected["iec-mm-pc"].status == target
            g = image.truth.geometry
            assert image.truth.profile == "iec-mm-pc"
            assert g.core_radius_px == pytest.approx(25 / g.um_per_px, abs=1e-3)


def test_scenes_are_reproducible_from_an_int_seed():
    assert random_scene(99, "iec-sm-upc") == random_scene(99, "iec-sm-upc")
    assert random_scene(99, "iec-sm-upc").seed == 99
    assert math.isfinite(random_scene(100, "iec-sm-apc", style="dark-ferrule").um_per_px)
