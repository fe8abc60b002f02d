"""Fusion: merge what several detectors propose into one list of candidates.

Rules, in order:
0. a chip lying mostly on a scratch is where the scratch crosses the cladding edge;
1. a scratch lying mostly (>= 50 %) inside a large blob is that blob's rim, not a scratch;
2. a region overlapping a scratch (>= 30 % of its pixels) is part of that scratch;
3. a region overlapping a chip or a large blob is part of it;
4. regions of the same polarity closer than `merge_gap_px` are fragments of one feature
   (the rim of a particle wider than the region detector's window) and are merged;
5. a region that is long and thin is a scratch the line detector did not follow.
Whatever merges keeps every detector's name in `sources`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from ..records import CandidateMap, DefectKind

__all__ = ["Candidate", "fuse", "BLOB_DETECTORS"]

BLOB_DETECTORS = ("blob.median",)


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

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.mask))


def fuse(maps: Sequence[CandidateMap], *, min_scratch_length_px: float, merge_gap_px: float = 3.0,
         min_elongation: float = 5.0) -> list[Candidate]:
    """Merge candidate maps into one list of candidates (see the module docstring for the rules)."""
    items = [c for m in maps for c in _candidates(m)]
    blobs = [c for c in items if c.sources[0] in BLOB_DETECTORS]
    scratches = [c for c in items if c.kind == DefectKind.SCRATCH and c.sources[0] not in BLOB_DETECTORS]
    chips = [c for c in items if c.kind == DefectKind.CHIP]
    regions = [c for c in items if c.sources[0] not in BLOB_DETECTORS
               and c.kind not in (DefectKind.SCRATCH, DefectKind.CHIP)]

    # a chip lying mostly on a scratch's band is where that scratch crosses the edge
    chips = [c for c in chips if not any(_overlap(c, _dilated(s, merge_gap_px)) >= 0.3 * c.area for s in scratches)]
    kept_scratches = []
    for s in scratches:  # rule 1
        host = next((i for i, b in enumerate(blobs) if _overlap(s, _dilated(b, merge_gap_px)) >= 0.5 * s.area), None)
        if host is None:
            kept_scratches.append(s)
        else:
            blobs[host] = _absorb(blobs[host], s, grow=False)
    hosts = chips + kept_scratches + blobs
    loose = []
    for r in regions:  # rules 2 and 3 (chips first: a region touching a chip is part of it)
        need = lambda h: 0.3 * r.area if h.kind == DefectKind.SCRATCH else 1  # noqa: E731
        i = next((i for i, h in enumerate(hosts) if _overlap(r, h) >= need(h)), None)
        if i is None:
            loose.append(r)
        else:
            hosts[i] = _absorb(hosts[i], r, grow=hosts[i].kind != DefectKind.SCRATCH)
    merged = _merge_fragments(loose, merge_gap_px)  # rule 4
    merged = [_as_scratch_if_thin(c, min_scratch_length_px, min_elongation) for c in merged]  # rule 5
    return hosts + merged


def _candidates(cmap: CandidateMap) -> list[Candidate]:
    if len(cmap) == 0:
        return []
    x0, y0 = cmap.origin_xy
    ys, xs = np.nonzero(cmap.labels)
    if ys.size == 0:
        return []
    labels = cmap.labels[ys, xs]
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(len(cmap) + 2))
    out = []
    for i in range(1, len(cmap) + 1):
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


def _dilated(c: Candidate, by_px: float) -> Candidate:
    r = max(1, int(round(by_px)))
    padded = np.pad(c.mask.astype(np.uint8), r)
    grown = cv2.dilate(padded, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) > 0
    return replace(c, x0=c.x0 - r, y0=c.y0 - r, mask=grown)


def _absorb(host: Candidate, part: Candidate, *, grow: bool) -> Candidate:
    """`host` with `part` merged in: sources joined; the mask grows unless the host is a measured scratch."""
    sources = tuple(dict.fromkeys(host.sources + part.sources))
    merged = _union(host, part) if grow else host
    return replace(merged, sources=sources, score=max(host.score, part.score))


def _union(a: Candidate, b: Candidate) -> Candidate:
    x0, y0 = min(a.x0, b.x0), min(a.y0, b.y0)
    x1 = max(a.x0 + a.mask.shape[1], b.x0 + b.mask.shape[1])
    y1 = max(a.y0 + a.mask.shape[0], b.y0 + b.mask.shape[0])
    mask = np.zeros((y1 - y0, x1 - x0), bool)
    for c in (a, b):
        mask[c.y0 - y0:c.y0 - y0 + c.mask.shape[0], c.x0 - x0:c.x0 - x0 + c.mask.shape[1]] |= c.mask
    strongest = a if abs(a.contrast_grey) >= abs(b.contrast_grey) else b
    return replace(a, x0=x0, y0=y0, mask=mask, contrast_grey=strongest.contrast_grey)


def _merge_fragments(regions: list[Candidate], gap_px: float) -> list[Candidate]:
    """Union regions of the same polarity whose masks come within `gap_px` of each other."""
    merged: list[Candidate] = []
    for r in sorted(regions, key=lambda c: -c.area):
        grown = _dilated(r, gap_px)
        for i, m in enumerate(merged):
            if np.sign(m.contrast_grey) == np.sign(r.contrast_grey) and _overlap(grown, m) > 0:
                kind = m.kind if m.kind == r.kind else DefectKind.PARTICLE
                merged[i] = replace(_absorb(m, r, grow=True), kind=kind)
                break
        else:
            merged.append(r)
    return merged


def _as_scratch_if_thin(cand: Candidate, min_length_px: float, min_elongation: float) -> Candidate:
    """A long, thin region is a scratch: its width is its area over its length."""
    if cand.kind not in (DefectKind.DIG, DefectKind.PARTICLE):
        return cand
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
    return replace(cand, kind=DefectKind.SCRATCH, width_px=width, polyline_xy=ends.astype(np.float32))
