"""The quality gate and the Inspector's safety boundary: what was not inspected is UNDETERMINED, never PASS.

Every uninspectable frame -- blurred, saturated, black, white, no fiber, fiber cut by the
border, a corrupt file, a stage that crashes -- must come out UNDETERMINED with action
"re-image" and a reason that names the cause.
"""

from __future__ import annotations

import dataclasses
import logging
import re

import numpy as np
import pytest

from defectscope.errors import FiberNotFoundError
from defectscope.inspector import Inspector
from defectscope.quality import RISE_10_90_PER_SIGMA
from defectscope.records import Status
from defectscope.synth import (
    DEGRADATIONS,
    ScratchSpec,
    default_illumination,
    make_scene,
    random_scene,
    render_scene,
    shipped_profiles,
)

PROFILES = shipped_profiles()
UM_PER_PX = 0.45


@pytest.fixture(scope="module")
def inspector(sm_upc):
    return Inspector(sm_upc)


def _render(**kwargs) -> np.ndarray:
    kwargs.setdefault("um_per_px", UM_PER_PX)
    kwargs.setdefault("width", 600)
    kwargs.setdefault("height", 600)
    return render_scene(make_scene("iec-sm-upc", **kwargs), profiles=PROFILES).pixels


def _assert_undetermined(report, pattern: str):
    verdict = report.verdict
    assert verdict.status == Status.UNDETERMINED, verdict.reasons
    assert verdict.action == "re-image"
    assert not report.quality.ok
    assert all(z.status == Status.UNDETERMINED for z in verdict.zones.values())
    text = " | ".join(verdict.reasons)
    assert re.search(pattern, text, re.IGNORECASE), f"no reason matching {pattern!r} in: {text}"


# --- a clean end face passes the gate ---------------------------------------------------------------


@pytest.mark.parametrize("style", ["bright-ferrule", "dark-ferrule"])
def test_clean_synthetic_end_face_passes_with_quality_ok(inspector, style):
    report = inspector.inspect(_render(style=style, psf_sigma_px=0.9))
    q = report.quality
    assert report.verdict.status == Status.PASS, report.verdict.reasons
    assert report.verdict.action == "accept"
    assert q.ok and q.issues == () and q.contact_zone_in_frame is True
    assert q.clipped_fraction == 0.0
    # a 0.9 px PSF (+ the pixel footprint) at 0.45 um/px rises 10-90 % over ~1.1 um
    assert 0.8 <= q.edge_width_um <= 1.5
    assert q.focus == pytest.approx(1 / q.edge_width_um, rel=0.01)


# --- focus --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("psf_sigma_px", [4.0, 8.0])
def test_blurred_frame_is_undetermined_never_pass(inspector, psf_sigma_px):
    report = inspector.inspect(_render(psf_sigma_px=psf_sigma_px))
    _assert_undetermined(report, r"out of focus.*refocus")
    assert report.quality.edge_width_um > 3.0


def test_blur_that_hides_a_failing_scratch_is_undetermined_not_pass(inspector):
    scratch = ScratchSpec.chord(distance_um=40, angle_deg=30, half_length_um=15, width_um=3.5)
    sharp = inspector.inspect(_render(defects=[scratch]))
    assert sharp.verdict.status == Status.FAIL, sharp.verdict.reasons
    blurred = inspector.inspect(_render(defects=[scratch], psf_sigma_px=5.0))
    _assert_undetermined(blurred, "out of focus")


def _pure_step_illumination():
    """A bare fiber/ferrule step (no band, rim, halo, core or light field), so its blur is well defined."""
    return dataclasses.replace(
        default_illumination("bright-ferrule"),
        band_delta_grey=0.0,
        rim_delta_grey=0.0,
        halo_grey=0.0,
        core_delta_grey=0.0,
        vignette_frac=0.0,
        mottle_frac=0.0,
    )


def _rise_10_90_um(psf_sigma_px: float) -> float:
    """The 10-90 % rise of the cladding edge in µm, measured on the noise-free rendered image."""
    scene = make_scene(
        "iec-sm-upc",
        um_per_px=UM_PER_PX,
        width=600,
        height=600,
        psf_sigma_px=psf_sigma_px,
        illumination=_pure_step_illumination(),
        noise_sigma_grey=0.0,
    )
    pixels = render_scene(scene, profiles=PROFILES).pixels.astype(np.float64)
    yy, xx = np.indices(pixels.shape)
    r = np.hypot(xx - scene.fiber_center_xy[0], yy - scene.fiber_center_xy[1])
    edges = np.arange(scene.cladding_radius_px - 35, scene.cladding_radius_px + 35, 0.25)
    idx = np.digitize(r.ravel(), edges)
    count = np.bincount(idx, minlength=len(edges) + 1)[1 : len(edges)]
    total = np.bincount(idx, weights=pixels.ravel(), minlength=len(edges) + 1)[1 : len(edges)]
    profile = total / np.maximum(count, 1)
    lo, hi = profile[:20].mean(), profile[-20:].mean()
    if hi - lo < 80:
        pytest.fail(f"the rendered step is only {hi - lo:.0f} grey: the fixture no longer draws a clean edge")
    t10 = edges[np.argmax(profile > lo + 0.1 * (hi - lo))]
    t90 = edges[np.argmax(profile > lo + 0.9 * (hi - lo))]
    return float(t90 - t10) * UM_PER_PX


def test_frame_blurred_just_past_the_focus_limit_is_undetermined(inspector):
    true_rise_um = _rise_10_90_um(2.8)
    if not 3.1 < true_rise_um < 3.5:
        pytest.fail(f"fixture: expected a true rise just over the 3 um limit, got {true_rise_um:.2f} um")
    scene = make_scene(
        "iec-sm-upc",
        um_per_px=UM_PER_PX,
        width=600,
        height=600,
        psf_sigma_px=2.8,
        illumination=_pure_step_illumination(),
    )
    report = inspector.inspect(render_scene(scene, profiles=PROFILES).pixels)
    assert report.verdict.status == Status.UNDETERMINED, (
        f"true edge rise {true_rise_um:.2f} um > 3 um limit, gate read {report.quality.edge_width_um} um"
    )


@pytest.mark.parametrize(
    "psf_sigma_px",
    [
        0.9,
        1.5,
        2.8,
        4.0,
    ],
)
def test_edge_width_never_reads_a_blurred_edge_sharper_than_it_is(inspector, psf_sigma_px):
    """Reading blur low lets a blurred frame through the gate; reading sharp edges a little high is safe."""
    true_rise_um = _rise_10_90_um(psf_sigma_px)
    scene = make_scene(
        "iec-sm-upc",
        um_per_px=UM_PER_PX,
        width=600,
        height=600,
        psf_sigma_px=psf_sigma_px,
        illumination=_pure_step_illumination(),
    )
    report = inspector.inspect(render_scene(scene, profiles=PROFILES).pixels)
    assert 0.9 * true_rise_um <= report.quality.edge_width_um <= 1.3 * true_rise_um, (
        f"true 10-90 % rise {true_rise_um:.2f} um, read {report.quality.edge_width_um} um"
    )
    assert pytest.approx(2.563, abs=1e-3) == RISE_10_90_PER_SIGMA


# --- exposure, contrast, framing ---------------------------------------------------------------------


def test_saturated_fiber_is_undetermined_naming_exposure_and_the_zone(inspector):
    ill = dataclasses.replace(default_illumination("dark-ferrule"), exposure=3.3)  # fiber 82 grey -> 270
    report = inspector.inspect(_render(style="dark-ferrule", illumination=ill))
    _assert_undetermined(report, r"exposure: \d+% of zone [AB] is saturated or black")
    assert report.quality.clipped_fraction > 0.5
    assert report.geometry is not None  # located, then refused by the gate


def test_glare_spot_over_the_core_is_undetermined_naming_exposure(inspector):
    ill = dataclasses.replace(default_illumination("bright-ferrule"), glare_gain=3.0, glare_sigma_um=30.0)
    _assert_undetermined(inspector.inspect(_render(illumination=ill)), r"exposure: .*zone A")


def test_black_fiber_is_undetermined_naming_exposure(inspector):
    ill = dataclasses.replace(
        default_illumination("bright-ferrule"),
        cladding_grey=0.0,
        band_delta_grey=0.0,
        rim_delta_grey=0.0,
        core_delta_grey=0.0,
    )
    _assert_undetermined(inspector.inspect(_render(illumination=ill)), r"exposure: .*saturated or black")


def test_low_contrast_fiber_is_undetermined_naming_contrast(inspector):
    ill = dataclasses.replace(
        default_illumination("bright-ferrule"),
        ferrule_grey=100.0,
        cladding_grey=90.0,
        band_delta_grey=0.0,
        rim_delta_grey=0.0,
        halo_grey=0.0,
    )
    _assert_undetermined(inspector.inspect(_render(illumination=ill)), r"low contrast.*check illumination")


def test_contact_zone_running_off_the_frame_is_undetermined(inspector):
    report = inspector.inspect(_render(center_xy=(200.0, 300.0)))  # zone D reaches 78 px past the left edge
    _assert_undetermined(report, r"contact zone not in view: it extends \d+ px beyond the frame")
    assert report.quality.contact_zone_in_frame is False


def test_contact_zone_just_inside_the_frame_is_inspected(inspector):
    report = inspector.inspect(_render(center_xy=(285.0, 300.0)))  # zone D (278 px) ends 7 px from the edge
    assert report.quality.ok and report.quality.contact_zone_in_frame is True


# --- the generator's degraded frames -------------------------------------------------------------------

EXPECTED_CAUSE = {
    "defocus": r"out of focus",
    "no-fiber": r"no circular cladding edge",
    "cut-by-border": r"contact zone not in view|cut by the frame",
    "black": r"no circular cladding edge.*lit|exposure",
    "white": r"no circular cladding edge.*lit|exposure",
    "saturated": r"exposure|saturat",
}
DEGRADED_CASES = [pytest.param(kind, seed) for kind in DEGRADATIONS for seed in range(4)]


@pytest.mark.parametrize("kind, seed", DEGRADED_CASES)
def test_degraded_frame_is_undetermined_with_a_reason_naming_the_cause(inspector, kind, seed):
    scene = random_scene(seed, "iec-sm-upc", degraded=kind)
    report = inspector.inspect(render_scene(scene, profiles=PROFILES).pixels, name=f"frame-{seed}.jpg")
    assert report.verdict.status == Status.UNDETERMINED  # first, outside any pattern: never PASS
    _assert_undetermined(report, EXPECTED_CAUSE[kind])


@pytest.mark.parametrize("kind", DEGRADATIONS)
def test_degraded_frame_is_never_pass_for_multimode_either(mm_pc, kind):
    inspector = Inspector(mm_pc)
    for seed in (5, 6):
        report = inspector.inspect(
            render_scene(random_scene(seed, "iec-mm-pc", degraded=kind), profiles=PROFILES).pixels
        )
        assert report.verdict.status == Status.UNDETERMINED, (kind, seed, report.verdict.reasons)
        assert report.verdict.reasons and report.verdict.action == "re-image"


# --- inputs that are not end faces, and stages that fail -----------------------------------------------


def test_corrupt_file_is_undetermined_naming_the_file(tmp_path, inspector):
    path = tmp_path / "endface-17.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200)
    report = inspector.inspect(path)
    _assert_undetermined(report, r"endface-17\.png: corrupt or truncated PNG")
    assert report.image.path == str(path) and report.geometry is None


def test_flat_grey_frame_is_undetermined_naming_the_missing_cladding_edge(inspector):
    report = inspector.inspect(np.full((480, 640), 120, np.uint8), name="lens-cap.png")
    _assert_undetermined(report, r"lens-cap\.png: no circular cladding edge")


class _Crashing:
    name = "crashing"

    def __call__(self, frame, geometry):
        raise ZeroDivisionError("division by zero in the tuning branch")


class _Refusing:
    name = "refusing"

    def __call__(self, frame, geometry):
        raise FiberNotFoundError("refusing: the core is hidden, re-inspect")


class _Broken:
    name = "broken"

    def __call__(self, frame, geometry):
        return None  # not a CandidateMap


def test_detector_crash_is_undetermined_internal_error_and_logged(sm_upc, clean_image, caplog):
    inspector = Inspector(sm_upc, detectors=[_Crashing()])
    with caplog.at_level(logging.ERROR, logger="defectscope.inspector"):
        report = inspector.inspect(clean_image.pixels, name="part-9.png")
    _assert_undetermined(
        report,
        r"internal error \(ZeroDivisionError: division by zero in the tuning "
        r"branch\)",
    )
    records = [r for r in caplog.records if r.getMessage() == "inspection.internal_error"]
    assert len(records) == 1 and records[0].exc_info is not None, "the traceback must be logged"


def test_detector_defectscope_error_is_undetermined_with_its_message(sm_upc, clean_image, caplog):
    with caplog.at_level(logging.ERROR, logger="defectscope.inspector"):
        report = Inspector(sm_upc, detectors=[_Refusing()]).inspect(clean_image.pixels)
    _assert_undetermined(report, r"^refusing: the core is hidden, re-inspect$")
    assert not any(r.getMessage() == "inspection.internal_error" for r in caplog.records)


def test_detector_returning_garbage_is_undetermined(sm_upc, clean_image):
    report = Inspector(sm_upc, detectors=[_Broken()]).inspect(clean_image.pixels)
    _assert_undetermined(report, r"internal error")


def test_one_crashing_detector_among_good_ones_still_gives_undetermined(sm_upc, clean_image):
    good = Inspector(sm_upc).detectors
    report = Inspector(sm_upc, detectors=[*good[:1], _Crashing(), *good[1:]]).inspect(clean_image.pixels)
    _assert_undetermined(report, r"internal error")


def test_unsupported_input_type_is_refused_loudly(inspector):
    with pytest.raises(TypeError, match="cannot inspect a dict"):
        inspector.inspect({"pixels": []})


def test_fiber_cut_by_the_border_is_refused_without_numpy_warnings(inspector):
    import warnings

    pixels = render_scene(random_scene(3, "iec-sm-upc", degraded="cut-by-border"), profiles=PROFILES).pixels
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = inspector.inspect(pixels)
    assert report.verdict.status == Status.UNDETERMINED
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
