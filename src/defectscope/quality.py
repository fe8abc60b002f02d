"""The quality gate: can this frame be inspected at all?

Checked on the fiber itself, after it is found:
- focus: the 10-90 % rise of the cladding edge, in µm (a blurred frame hides small defects);
- edge contrast: the fiber must stand out from the ferrule;
- framing: the whole contact zone (the profile's outermost zone) must lie inside the frame;
- exposure: the fraction of saturated (>= 254) or black (<= 1) pixels in each inspected zone.
Any failure makes the verdict UNDETERMINED with the reason -- never PASS.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .geometry import EdgeFit
from .profile import QualityParams
from .records import Frame, Geometry, Quality

__all__ = ["assess_quality", "frame_exposure_issues", "RISE_10_90_PER_SIGMA"]

RISE_10_90_PER_SIGMA = 2.563  # 10-90 % rise of a Gaussian-blurred step, in sigmas


def assess_quality(frame: Frame, geometry: Geometry, fit: EdgeFit, params: QualityParams) -> Quality:
    """Measure focus, contrast, framing and exposure of a located fiber; ok=False lists why."""
    issues: list[str] = []
    edge_width_um = RISE_10_90_PER_SIGMA * fit.edge_sigma_px * geometry.um_per_px
    if not math.isfinite(edge_width_um) or edge_width_um > params.max_edge_width_um:
        issues.append(
            f"out of focus: the cladding edge rises over {edge_width_um:.1f} um "
            f"(limit {params.max_edge_width_um:g} um); refocus and re-inspect"
        )
    if abs(fit.contrast_grey) < params.min_edge_contrast_grey:
        issues.append(
            f"low contrast: fiber and ferrule differ by {abs(fit.contrast_grey):.0f} grey levels "
            f"(need {params.min_edge_contrast_grey:g}); check illumination"
        )
    in_frame, overshoot_px = _contact_zone_in_frame(frame, geometry)
    if not in_frame:
        issues.append(
            f"contact zone not in view: it extends {overshoot_px:.0f} px beyond the frame; "
            "centre the connector and re-inspect"
        )
    clipped = _clipped_fraction_per_zone(frame, geometry)
    worst_zone, worst = max(clipped.items(), key=lambda kv: kv[1], default=("", 0.0))
    if worst > params.max_clipped_fraction:
        issues.append(
            f"exposure: {worst:.0%} of zone {worst_zone} is saturated or black "
            f"(limit {params.max_clipped_fraction:.0%}); adjust exposure and re-inspect"
        )
    focus = 1.0 / edge_width_um if math.isfinite(edge_width_um) and edge_width_um > 0 else 0.0
    return Quality(
        ok=not issues,
        focus=round(focus, 4),
        edge_width_um=round(edge_width_um, 3) if math.isfinite(edge_width_um) else None,
        clipped_fraction=round(worst, 4),
        contact_zone_in_frame=in_frame,
        issues=tuple(issues),
    )


def frame_exposure_issues(frame: Frame, params: QualityParams) -> list[str]:
    """Exposure problems of a whole frame, to explain why no fiber could be found in it.

    Saturated (>= 254) or black (<= 1) pixels over `max_clipped_fraction` of the frame, or a
    frame whose median grey is nearly black or nearly white.
    """
    hist = cv2.calcHist([frame.pixels], [0], None, [256], [0, 256]).ravel()
    total = hist.sum()
    saturated, black = hist[254:].sum() / total, hist[:2].sum() / total
    median = int(np.searchsorted(np.cumsum(hist), total / 2))
    issues = []
    if saturated > params.max_clipped_fraction:
        issues.append(
            f"exposure: {saturated:.0%} of the frame is saturated; reduce exposure or glare and re-inspect"
        )
    if black > max(params.max_clipped_fraction, 0.5) or median <= 10:
        issues.append(f"exposure: the frame is nearly black (median grey {median}); check illumination")
    elif median >= 245:
        issues.append(f"exposure: the frame is nearly white (median grey {median}); reduce exposure")
    return issues


def _contact_zone_in_frame(frame: Frame, geometry: Geometry) -> tuple[bool, float]:
    r = geometry.zones[-1].outer_radius_px
    cx, cy = geometry.center_xy
    overshoot = max(r - cx, r - cy, cx + r - (frame.width - 1), cy + r - (frame.height - 1))
    return overshoot <= 0.5, max(0.0, overshoot)


def _clipped_fraction_per_zone(frame: Frame, geometry: Geometry) -> dict[str, float]:
    """Fraction of saturated or black pixels in each zone (over the part of it inside the frame)."""
    cx, cy = geometry.center_xy
    r_out = geometry.zones[-1].outer_radius_px
    x0, y0 = max(0, int(cx - r_out)), max(0, int(cy - r_out))
    x1, y1 = min(frame.width, int(cx + r_out) + 2), min(frame.height, int(cy + r_out) + 2)
    # every other pixel: a fraction does not need them all (copied: calcHist needs unit steps)
    roi = np.ascontiguousarray(frame.pixels[y0:y1:2, x0:x1:2])
    labels = np.zeros(roi.shape, np.uint8)
    centre = (int(round((cx - x0) / 2 * 16)), int(round((cy - y0) / 2 * 16)))
    n = len(geometry.zones)
    for i in range(n - 1, -1, -1):
        cv2.circle(labels, centre, int(round(geometry.zones[i].outer_radius_px / 2 * 16)), i + 1, -1, shift=4)
    # one joint histogram of zone label and grey level: cheaper than first marking the clipped
    # pixels in a map of their own (the counts are exact in float32 up to 2^24 pixels)
    hist = cv2.calcHist([labels, roi], [0, 1], None, [n + 1, 256], [0, n + 1, 0, 256])
    counts = hist.sum(axis=1)
    hits = hist[:, :2].sum(axis=1) + hist[:, 254:].sum(axis=1)  # black (<= 1) and saturated (>= 254)
    return {
        z.name: float(hits[i + 1] / counts[i + 1]) for i, z in enumerate(geometry.zones) if counts[i + 1] > 0
    }
