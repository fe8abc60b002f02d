"""The pipeline: decode -> locate -> gate -> detect -> fuse -> measure -> judge -> Report.

`Inspector` is the only object that holds state (the loaded profile and the configured
detectors). `inspect()` leaves it unchanged, so one Inspector serves a whole batch or a
service. It is also the one place where a failed stage becomes UNDETERMINED with a reason:
a `DefectscopeError` says why in its message; anything else is logged with its traceback and
reported as an internal error. Never PASS what was not inspected.
"""

from __future__ import annotations

import ctypes
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from . import __version__
from .detect.base import Detector, detection_frame
from .detect.blob import BlobDetector
from .detect.chip import ChipDetector
from .detect.fuse import fuse
from .detect.region import RegionDetector
from .detect.scratch import ScratchDetector
from .errors import DefectscopeError, FiberNotFoundError
from .geometry import EdgeFit, locate_fiber, square_pixels
from .imageio import decode_frame, frame_from_array, read_frame
from .judge import core_pattern_reasons, judge, undetermined
from .measure import measure
from .profile import Profile, load_profile
from .quality import assess_quality, frame_exposure_issues
from .records import Frame, Geometry, ImageInfo, Quality, Report

__all__ = ["Inspector", "Inspection", "keep_freed_memory"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inspection:
    """A report and the frame it refers to (resampled to square pixels when the camera's are not)."""

    report: Report
    frame: Frame | None


class Inspector:
    """Inspects end faces against one profile.

    >>> report = Inspector.from_profile("iec-sm-upc").inspect("endface.png")   # doctest: +SKIP
    """

    def __init__(
        self,
        profile: Profile,
        *,
        um_per_px: float | None = None,
        detectors: list[Detector] | None = None,
        single_thread_blas: bool = True,
        keep_heap: bool = True,
    ):
        """single_thread_blas: limit the process's BLAS to one thread (process-wide, once). The
        pipeline solves many tiny least-squares problems, which multi-threaded BLAS makes 10-20x
        slower; parallelism comes from inspecting several images at once (batch, service).
        keep_heap: keep freed memory in the process for the next image (process-wide, see
        `keep_freed_memory`)."""
        if um_per_px is not None and not um_per_px > 0:
            raise ValueError(f"um_per_px must be > 0, got {um_per_px}")
        if single_thread_blas:
            threadpool_limits(limits=1, user_api="blas")
        if keep_heap:
            keep_freed_memory()
        self.profile = profile
        self.um_per_px = um_per_px
        self.detectors: list[Detector] = detectors if detectors is not None else _default_detectors(profile)

    @classmethod
    def from_profile(
        cls,
        name_or_path: str | Path = "iec-sm-upc",
        *,
        um_per_px: float | None = None,
        cladding_um: float | None = None,
    ) -> Inspector:
        """An Inspector for a shipped profile name or a YAML path.

        um_per_px: calibrate from the user's value instead of the nominal cladding diameter
        (it is still checked against the fitted cladding). cladding_um: override the profile's
        nominal cladding diameter (e.g. 140 for a 140 um fiber).
        """
        profile = load_profile(name_or_path)
        if cladding_um is not None:
            profile = profile.with_cladding_um(cladding_um)
        return cls(profile, um_per_px=um_per_px)

    def inspect(self, source: str | Path | bytes | np.ndarray | Frame, *, name: str | None = None) -> Report:
        """Inspect an image file path, encoded bytes, a (H, W[, C]) array or a Frame."""
        return self.run(source, name=name).report

    def run(self, source: str | Path | bytes | np.ndarray | Frame, *, name: str | None = None) -> Inspection:
        """Like `inspect`, also returning the frame the report's coordinates refer to."""
        t0 = time.perf_counter()
        label = name or (
            str(source) if isinstance(source, (str, Path)) else getattr(source, "source", "<array>")
        )
        try:
            frame = _to_frame(source, label)
        except DefectscopeError as exc:
            report = self._undetermined(
                ImageInfo(path=label, width=0, height=0), [str(exc)], {"total": _ms(t0)}
            )
            return Inspection(report, None)
        try:
            return self._inspect_frame(frame, t0)
        except FiberNotFoundError as exc:  # say whether exposure is why: it is the usual cause on a line
            reasons = frame_exposure_issues(frame, self.profile.quality) + [str(exc)]
        except DefectscopeError as exc:
            reasons = [str(exc)]
        except Exception as exc:  # the single boundary: log it, never let it become a PASS
            log.exception("inspection.internal_error", extra={"source": frame.source})
            reasons = [f"internal error ({type(exc).__name__}: {exc}); the part was not inspected"]
        report = self._undetermined(
            _image_info(frame), reasons, {"decode": frame.decode_ms, "total": _ms(t0)}
        )
        return Inspection(report, frame)

    def _inspect_frame(self, frame: Frame, t0: float) -> Inspection:
        timing = {"decode": round(frame.decode_ms, 3)}
        info = _image_info(frame)
        t = time.perf_counter()
        geometry, fit = self._locate(frame)
        if geometry.pixel_aspect != 1.0:
            aspect = geometry.pixel_aspect
            frame = square_pixels(frame, aspect)
            geometry, fit = self._locate(frame)
            geometry = geometry.model_copy(update={"pixel_aspect": round(aspect, 4)})
        timing["locate"] = _ms(t)

        quality = assess_quality(frame, geometry, fit, self.profile.quality)
        if not quality.ok:
            timing["total"] = _ms(t0)
            report = self._undetermined(
                info, list(quality.issues), timing, geometry=geometry, quality=quality
            )
            return Inspection(report, frame)

        t = time.perf_counter()
        seen, core_pattern_grey = detection_frame(frame, geometry, self.profile.detection)
        maps = [detector(seen, geometry) for detector in self.detectors]
        timing["detect"] = _ms(t)
        t = time.perf_counter()
        params = self.profile.detection
        candidates = fuse(
            maps,
            min_scratch_length_px=params.scratch.min_length_um / geometry.um_per_px,
            merge_gap_px=params.merge_gap_um / geometry.um_per_px,
            scratch_join_gap_px=params.scratch.max_join_gap_um / geometry.um_per_px,
            edge_reach_px=(params.chip.max_depth_um + params.edge_guard_outer_um) / geometry.um_per_px,
            edge_guard_px=params.edge_guard_outer_um / geometry.um_per_px,
        )
        defects = measure(candidates, geometry, self.profile)
        timing["measure"] = _ms(t)
        core_radius_um = geometry.core_radius_px * geometry.um_per_px if geometry.core_radius_px else None
        if core_radius_um:
            quality = quality.model_copy(update={"core_pattern_grey": core_pattern_grey})
        verdict = judge(
            defects, self.profile, core_pattern_reasons(self.profile, core_radius_um, core_pattern_grey)
        )
        timing["total"] = _ms(t0)
        report = Report(
            image=info,
            profile=self.profile.name,
            um_per_px=geometry.um_per_px,
            geometry=geometry,
            quality=quality,
            defects=tuple(defects),
            verdict=verdict,
            timing_ms=timing,
            version=__version__,
        )
        log.debug(
            "inspection.done",
            extra={
                "source": frame.source,
                "status": verdict.status.value,
                "n_defects": len(defects),
                "latency_ms": timing["total"],
            },
        )
        return Inspection(report, frame)

    def _locate(self, frame: Frame) -> tuple[Geometry, EdgeFit]:
        return locate_fiber(frame, self.profile, um_per_px=self.um_per_px)

    def _undetermined(
        self,
        info: ImageInfo,
        reasons: list[str],
        timing: dict[str, float],
        *,
        geometry: Geometry | None = None,
        quality: Quality | None = None,
    ) -> Report:
        quality = quality or Quality(ok=False, issues=tuple(reasons))
        verdict = undetermined(reasons, self.profile)
        return Report(
            image=info,
            profile=self.profile.name,
            um_per_px=geometry.um_per_px if geometry else None,
            geometry=geometry,
            quality=quality,
            verdict=verdict,
            timing_ms=timing,
            version=__version__,
        )


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of returning it to the system.

    An inspection allocates and frees dozens of 0.3-2 MB arrays. By default glibc serves blocks
    that size with fresh mmaps and unmaps them when freed (its dynamic threshold adapts only
    partly), so an image page-faults much of its working set in again: ~2 of ~28 ms per 1152x864
    image on our 2-core benchmark machine (7 interleaved runs each way; batch workers showed no
    difference). With the mmap threshold fixed at 64 MB and trimming above 512 MB, the working
    set (tens of MB) stays mapped across images. Process-wide; a no-op returning False where the C library has
    no `mallopt` (not glibc) or refuses the settings.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = ((_M_MMAP_THRESHOLD, 64 << 20), (_M_TRIM_THRESHOLD, 512 << 20), (_M_TOP_PAD, 16 << 20))
    return all(mallopt(option, value) == 1 for option, value in settings)


def _default_detectors(profile: Profile) -> list[Detector]:
    # beyond the cladding's outer guard band the region detector may look at a coarser scale
    ferrule_from_um = profile.fiber.cladding_diameter_um + 2 * profile.detection.edge_guard_outer_um
    ferrule_smallest_um = min(
        (z.smallest_judged_um("defects") for z in profile.zones if z.outer_um > ferrule_from_um), default=0.0
    )
    detectors: list[Detector] = [RegionDetector(profile.detection, ferrule_smallest_um=ferrule_smallest_um)]
    if profile.detection.scratch.enabled:
        # lines are sought out to the last zone that limits scratches (where none does: everywhere)
        limited = [z.outer_um for z in profile.zones if z.scratches != "unlimited"]
        search = max(limited) if limited and max(limited) < profile.contact_diameter_um else None
        detectors.append(ScratchDetector(profile.detection, search_diameter_um=search))
    if profile.detection.oil.enabled:
        detectors.append(BlobDetector(profile.detection))
    if profile.detection.chip.enabled:
        detectors.append(ChipDetector(profile.detection))
    return detectors


def _to_frame(source, label: str) -> Frame:
    if isinstance(source, Frame):
        return source
    if isinstance(source, (str, Path)):
        return read_frame(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_frame(bytes(source), source=label)
    if isinstance(source, np.ndarray):
        return frame_from_array(source, source=label)
    raise TypeError(f"cannot inspect a {type(source).__name__}; give a path, bytes, an array or a Frame")


def _image_info(frame: Frame) -> ImageInfo:
    return ImageInfo(path=frame.source, width=frame.width, height=frame.height, sha256=frame.sha256)


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1e3, 3)
