"""Fusion: merge what several detectors propose into one list of candidates.

Rules, in order:
- a region overlapping a scratch (>= 30 % of its pixels in the scratch's band) is that scratch;
- a region that is long and thin is a scratch the line detector did not follow (too short
  for its line filter, say);
- regions overlapping a chip belong to the chip; regions mostly inside an oil film belong to it;
- whatever overlaps keeps every detector's name in `sources`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..records import CandidateMap, DefectKind

__all__ = ["Candidate", "fuse"]


@dataclass(frozen=True)
class Candidate:
    """One fused candidate, its mask cut to its bounding box in frame px."""

    kind: DefectKind
    sources: tuple[str, ...]
    score: float
    contrast_grey: float
    x0: int
    y0: int
    mask: np.ndarray  # (h, w) bool
    width_px: float = float("nan")  # scratches: measured width
    polyline_xy: np.ndarray | None = None  # scratches: (k, 2) centre line in frame px


def fuse(maps: Sequence[CandidateMap], *, min_scratch_length_px: float, min_elongation: float = 5.0) -> list[Candidate]:
    """Merge candidate maps into one list (scratches first, then chips, oil, regions)."""
    order = {DefectKind.SCRATCH: 0, DefectKind.CHIP: 1, DefectKind.OIL: 2}
    items = [c for m in maps for c in _candidates(m)]
    items.sort(key=lambda c: order.get(c.kind, 3))
    kept: list[Candidate] = []
    for cand in items:
        host = _host(cand, kept)
        if host is not None:
            i, merged = host
            kept[i] = merged
            continue
        if cand.kind in (DefectKind.DIG, DefectKind.PARTICLE):
            cand = _as_scratch_if_thin(cand, min_scratch_length_px, min_elongation)
        kept.append(cand)
    return kept


def _candidates(cmap: CandidateMap) -> list[Candidate]:
    if len(cmap) == 0:
        return []
    x0, y0 = cmap.origin_xy
    n = len(cmap) + 1
    ys, xs = np.nonzero(cmap.labels)
    if ys.size == 0:
        return []
    labels = cmap.labels[ys, xs]
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n + 1))
    out = []
    for i in range(1, n):
        sel = order[bounds[i]:bounds[i + 1]]
        if sel.size == 0:
            continue
        bx, by = xs[sel], ys[sel]
        left, top = int(bx.min()), int(by.min())
        mask = np.zeros((int(by.max()) - top + 1, int(bx.max()) - left + 1), bool)
        mask[by - top, bx - left] = True
        poly = cmap.polylines[i - 1]
        out.append(Candidate(cmap.kinds[i - 1], (cmap.detector,), float(cmap.scores[i - 1]),
                             float(cmap.contrast_grey[i - 1]), x0 + left, y0 + top, mask,
                             float(cmap.widths_px[i - 1]),
                             None if poly is None else poly + np.array([x0, y0], np.float32)))
    return out


def _overlap(a: Candidate, b: Candidate) -> int:
    """Number of pixels where two candidates' masks coincide."""
    x0, y0 = max(a.x0, b.x0), max(a.y0, b.y0)
    x1 = min(a.x0 + a.mask.shape[1], b.x0 + b.mask.shape[1])
    y1 = min(a.y0 + a.mask.shape[0], b.y0 + b.mask.shape[0])
    if x1 <= x0 or y1 <= y0:
        return 0
    sa = a.mask[y0 - a.y0:y1 - a.y0, x0 - a.x0:x1 - a.x0]
    sb = b.mask[y0 - b.y0:y1 - b.y0, x0 - b.x0:x1 - b.x0]
    return int(np.count_nonzero(sa & sb))


def _host(cand: Candidate, kept: list[Candidate]) -> tuple[int, Candidate] | None:
    """The kept candidate that absorbs `cand`, merged with it, or None."""
    area = int(cand.mask.sum())
    for i, host in enumerate(kept):
        shared = _overlap(cand, host)
        if shared == 0:
            continue
        if host.kind == DefectKind.SCRATCH and shared < 0.3 * area:
            continue
        if host.kind == DefectKind.OIL and shared < 0.5 * area:
            continue
        if cand.kind == DefectKind.SCRATCH and host.kind != DefectKind.SCRATCH:
            continue
        # a scratch keeps its own band (measured width); chips, oil and regions grow by union
        grown = host if host.kind == DefectKind.SCRATCH else _union(host, cand)
        sources = tuple(dict.fromkeys(host.sources + cand.sources))
        return i, Candidate(host.kind, sources, max(host.score, cand.score), host.contrast_grey, grown.x0,
                            grown.y0, grown.mask, host.width_px, host.polyline_xy)
    return None


def _union(a: Candidate, b: Candidate) -> Candidate:
    x0, y0 = min(a.x0, b.x0), min(a.y0, b.y0)
    x1 = max(a.x0 + a.mask.shape[1], b.x0 + b.mask.shape[1])
    y1 = max(a.y0 + a.mask.shape[0], b.y0 + b.mask.shape[0])
    mask = np.zeros((y1 - y0, x1 - x0), bool)
    for c in (a, b):
        mask[c.y0 - y0:c.y0 - y0 + c.mask.shape[0], c.x0 - x0:c.x0 - x0 + c.mask.shape[1]] |= c.mask
    return Candidate(a.kind, a.sources, a.score, a.contrast_grey, x0, y0, mask, a.width_px, a.polyline_xy)


def _as_scratch_if_thin(cand: Candidate, min_length_px: float, min_elongation: float) -> Candidate:
    """A long, thin region is a scratch: its width is its area over its length."""
    ys, xs = np.nonzero(cand.mask)
    if xs.size < 8:
        return cand
    pts = np.column_stack([xs, ys]).astype(np.float32)
    (_, _), (w, h), _ = cv2.minAreaRect(pts)
    length = max(w, h) + 1.0
    width = xs.size / length
    if length < min_length_px or length / max(width, 1.0) < min_elongation:
        return cand
    # centre line: the principal axis through the region, clipped to its extent
    mean = pts.mean(axis=0)
    _, _, vt = np.linalg.svd(pts - mean, full_matrices=False)
    axis = vt[0]
    proj = (pts - mean) @ axis
    ends = np.stack([mean + proj.min() * axis, mean + proj.max() * axis]) + np.array([cand.x0, cand.y0])
    return Candidate(DefectKind.SCRATCH, cand.sources, cand.score, cand.contrast_grey, cand.x0, cand.y0, cand.mask,
                     width, ends.astype(np.float32))
