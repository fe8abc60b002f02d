"""Fusion: merge what several detectors propose into one list of candidates.

Rules, in order:
1. a blob lying largely (>= 40 %) along a scratch at least 3 times its size (within 4 merge gaps)
   is the scratch's halo;
   a scratch lying mostly (>= 50 %) inside a remaining large blob is that blob's rim;
2. a region lying mostly (>= 60 % of its pixels) in a scratch's band (widened by the blur) is
   part of that scratch (a dig on a scratch, mostly outside its thin band, stays a dig);
3. a region lying mostly in a chip or a large blob is part of it;
4. regions of the same polarity closer than `merge_gap_px` are fragments of one feature
   (the rim of a particle wider than the region detector's window) and are merged;
5. a region that is long and thin is a scratch the line detector did not follow;
6. collinear scratch pieces less than `scratch_join_gap_px` apart are one scratch (residuals
   fail in the guard bands, splitting a scratch that crosses them);
7. a dig, particle or scratch of the opposite polarity to a much stronger candidate, lying
   mostly within its rim (2 merge gaps), is that candidate's halo or rim (bright rims of pits,
   dark fringes of bright particles and scratches): dropped;
8. a chip any scratch's centre line runs into is where that scratch crosses the cladding edge;
9. a chip with a region or blob of the same polarity just across the cladding edge (beyond the
   outer guard band, where nothing else is found) is the inner part of a particle lying over the
   edge: it joins that region or blob, which keeps its kind.
Whatever merges keeps every detector's name in `sources`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from ..records import CandidateMap, DefectKind

__all__ = ["Candidate", "fuse", "BLOB_DETECTORS", "LINE_DETECTORS"]

BLOB_DETECTORS = ("blob.median",)
LINE_DETECTORS = ("scratch.linear",)  # measure a scratch's width across its line


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


def fuse(
    maps: Sequence[CandidateMap],
    *,
    min_scratch_length_px: float,
    merge_gap_px: float = 3.0,
    min_elongation: float = 5.0,
    edge_reach_px: float = 0.0,
    edge_guard_px: float = 0.0,
    scratch_join_gap_px: float = 0.0,
) -> list[Candidate]:
    """Merge candidate maps into one list of candidates (see the module docstring for the rules).

    edge_reach_px: how far past its ends a scratch is extended when testing which chips it
    explains (scratches often stop at the guard band just before the cladding edge).
    edge_guard_px: width of the band outside the cladding edge where regions are not looked for.
    """
    items = [c for m in maps for c in _candidates(m)]
    blobs = [c for c in items if c.sources[0] in BLOB_DETECTORS]
    scratches = [c for c in items if c.kind == DefectKind.SCRATCH and c.sources[0] not in BLOB_DETECTORS]
    chips = [c for c in items if c.kind == DefectKind.CHIP]
    regions = [
        c
        for c in items
        if c.sources[0] not in BLOB_DETECTORS and c.kind not in (DefectKind.SCRATCH, DefectKind.CHIP)
    ]
    scratches, blobs = _scratches_and_blobs(scratches, blobs, merge_gap_px)  # rule 1
    hosts = chips + scratches + blobs
    # a region belongs to a scratch if it lies mostly in its band, widened by the blur
    reach = [
        _dilated(h, max(merge_gap_px, 0.5 * h.width_px if h.width_px == h.width_px else 0.0))
        if h.kind == DefectKind.SCRATCH
        else h
        for h in hosts
    ]
    loose = []
    for r in regions:  # rules 2 and 3
        i = next((k for k in range(len(hosts)) if _belongs(r, hosts[k], reach[k])), None)
        if i is None:
            loose.append(r)
        else:
            hosts[i] = _absorb(hosts[i], r, grow=hosts[i].kind != DefectKind.SCRATCH)
    merged = _merge_fragments(loose, merge_gap_px)  # rule 4
    merged = [_as_scratch_if_thin(c, min_scratch_length_px, min_elongation) for c in merged]  # rule 5
    out = hosts + merged
    lines = _join_collinear([c for c in out if _is_line(c)], scratch_join_gap_px)  # rule 6
    out = _drop_rims([c for c in out if not _is_line(c)] + lines, _RIM_GAPS * merge_gap_px)  # rule 7
    lines = [c for c in out if _is_line(c)]
    rest = [c for c in out if not _is_line(c)]
    # rule 8: scratches often stop at the guard band just before the cladding edge, so their
    # centre lines are carried on to the edge; a chip they touch at all is where they cross it
    centre_lines = [_line_band(replace(s, width_px=1.0), 0.5, extend_px=edge_reach_px) for s in lines]
    chips = [
        c for c in rest if c.kind == DefectKind.CHIP and not any(_overlap(c, b) > 0 for b in centre_lines)
    ]
    rest = [c for c in rest if c.kind != DefectKind.CHIP]
    chips = _lying_over_the_edge(chips, rest, edge_guard_px + merge_gap_px)  # rule 9
    return chips + rest + lines


def _lying_over_the_edge(chips: list[Candidate], others: list[Candidate], gap_px: float) -> list[Candidate]:
    """Rule 9: chips with a same-polarity partner in `others` within `gap_px` are merged into it
    (`others` is updated in place); returns the chips left."""
    kept = []
    for chip in chips:
        reach = _dilated(chip, gap_px)
        partner = next(
            (
                i
                for i, o in enumerate(others)
                if np.sign(o.contrast_grey) == np.sign(chip.contrast_grey) and _overlap(reach, o) > 0
            ),
            None,
        )
        if partner is None:
            kept.append(chip)
        else:
            others[partner] = _absorb(others[partner], chip, grow=True)
    return kept


_RIM_GAPS = 2.0  # how far (in merge gaps) a rim or halo reaches beyond the feature it surrounds
_RIM_CONTRAST = 1.5  # how much stronger than its rim a feature is


def _drop_rims(cands: list[Candidate], rim_px: float) -> list[Candidate]:
    """Rule 7: weakest first, a region or scratch mostly within `rim_px` of a much stronger
    candidate of the opposite polarity is dropped, its detector noted on that candidate."""
    order = sorted(range(len(cands)), key=lambda i: abs(cands[i].contrast_grey))
    reach = {}
    dropped = set()
    for i in order:
        c = cands[i]
        if c.kind not in (DefectKind.DIG, DefectKind.PARTICLE, DefectKind.SCRATCH):
            continue
        for j, h in enumerate(cands):
            if j == i or j in dropped or (h.contrast_grey > 0) == (c.contrast_grey > 0):
                continue
            if abs(h.contrast_grey) < _RIM_CONTRAST * abs(c.contrast_grey) or _apart(c, h, rim_px):
                continue
            if j not in reach:
                reach[j] = _dilated(h, rim_px)
            if _overlap(c, reach[j]) >= 0.5 * c.area:
                cands[j] = _absorb(h, c, grow=False)
                dropped.add(i)
                break
    return [c for i, c in enumerate(cands) if i not in dropped]


def _scratches_and_blobs(
    scratches: list[Candidate], blobs: list[Candidate], merge_gap_px: float
) -> tuple[list[Candidate], list[Candidate]]:
    """Rule 1: a blob lying largely along a much longer scratch is the scratch's halo, the blob
    detector's view of the same line (dropped); a scratch mostly inside a large blob is its rim
    (absorbed). A line detected across a large particle is no longer than the particle."""

    def halo(b: Candidate, s: Candidate, band: Candidate) -> bool:
        long = s.polyline_xy is None or _length(s.polyline_xy) >= 3 * max(b.mask.shape)
        return long and _overlap(b, band) >= 0.4 * b.area

    if not scratches:
        return [], blobs
    bands = [_line_band(s, 4 * merge_gap_px) for s in scratches]
    blobs = [b for b in blobs if not any(halo(b, s, band) for s, band in zip(scratches, bands))]
    reach = [_dilated(b, merge_gap_px) for b in blobs]  # absorbing a scratch leaves a blob's mask as it is
    kept = []
    for s in scratches:
        host = next((i for i, r in enumerate(reach) if _overlap(s, r) >= 0.5 * s.area), None)
        if host is None:
            kept.append(s)
        else:
            blobs[host] = _absorb(blobs[host], s, grow=False)
    return kept, blobs


def _belongs(region: Candidate, host: Candidate, reach: Candidate) -> bool:
    """Whether a region is part of a host: half of it inside a large blob, most of it otherwise."""
    share = 0.5 if host.sources[0] in BLOB_DETECTORS else 0.6
    return _overlap(region, reach) >= share * region.area


def _is_line(c: Candidate) -> bool:
    return c.kind == DefectKind.SCRATCH and c.polyline_xy is not None and len(c.polyline_xy) >= 2


_JOIN_MAX_ANGLE_DEG = 12.0


def _join_collinear(lines: list[Candidate], max_gap_px: float) -> list[Candidate]:
    """Rule 6: join scratch pieces lying on one line (within the blur of each other's extended
    centre line) whose ends are less than `max_gap_px` apart along it; longest first."""
    lines = sorted(lines, key=lambda c: -_span(c.polyline_xy))
    i = 0
    while i < len(lines):
        j = next((j for j in range(i + 1, len(lines)) if _collinear(lines[i], lines[j], max_gap_px)), None)
        if j is None:
            i += 1
        else:
            lines[i] = _joined(lines[i], lines.pop(j))  # test the grown line against all again
    return lines


def _length(polyline: np.ndarray) -> float:
    return float(np.hypot(*np.diff(polyline.astype(np.float64), axis=0).T).sum())


def _span(polyline: np.ndarray) -> float:
    return float(np.hypot(*(polyline[-1] - polyline[0]).astype(np.float64)))


def _collinear(a: Candidate, b: Candidate, max_gap_px: float) -> bool:
    a0, a1 = a.polyline_xy[0].astype(np.float64), a.polyline_xy[-1].astype(np.float64)
    b0, b1 = b.polyline_xy[0].astype(np.float64), b.polyline_xy[-1].astype(np.float64)
    la, lb = _span(a.polyline_xy), _span(b.polyline_xy)
    if la < 1 or lb < 1:
        return False
    u, v = (a1 - a0) / la, (b1 - b0) / lb
    if abs(float(u @ v)) < np.cos(np.radians(_JOIN_MAX_ANGLE_DEG)):
        return False
    # b's ends and middle must lie on a's centre line carried on past its ends
    reach = max_gap_px + lb
    axis = np.vstack([a0 - reach * u, a.polyline_xy.astype(np.float64), a1 + reach * u])
    tol_px = max(5.0, 1.5 * float(np.fmax(a.width_px, b.width_px)))
    mid = b.polyline_xy[len(b.polyline_xy) // 2].astype(np.float64)
    if max(_distance_to_polyline(p, axis) for p in (b0, b1, mid)) > tol_px:
        return False
    tb = sorted([float((b0 - a0) @ u), float((b1 - a0) @ u)])
    gap = max(tb[0] - la, -tb[1], 0.0)
    return gap <= max_gap_px


def _distance_to_polyline(p: np.ndarray, polyline: np.ndarray) -> float:
    s, e = polyline[:-1], polyline[1:]
    d = e - s
    t = np.clip(np.einsum("ij,ij->i", p - s, d) / np.maximum(np.einsum("ij,ij->i", d, d), 1e-9), 0, 1)
    return float(np.hypot(*(s + t[:, None] * d - p).T).min())


def _joined(a: Candidate, b: Candidate) -> Candidate:
    """One scratch from two pieces: centre line through both in order. Its width is the one the
    line detector measured across the line (corrected for blur) when only one piece has such a
    width -- a region's pixel count per step, on a blurred or coarser map, reads wider -- else
    the wider piece's (the safe reading: IEC limits go by width)."""
    a0, a1 = a.polyline_xy[0].astype(np.float64), a.polyline_xy[-1].astype(np.float64)
    pts = np.vstack([a.polyline_xy, b.polyline_xy]).astype(np.float64)
    pts = pts[np.argsort((pts - a0) @ (a1 - a0), kind="stable")]
    measured = [c.width_px for c in (a, b) if c.sources[0] in LINE_DETECTORS]
    width = measured[0] if len(measured) == 1 else float(np.fmax(a.width_px, b.width_px))
    return replace(
        _absorb(a, b, grow=True),
        kind=DefectKind.SCRATCH,
        polyline_xy=pts.astype(np.float32),
        width_px=float(width),
    )


def _candidates(cmap: CandidateMap) -> list[Candidate]:
    if len(cmap) == 0:
        return []
    x0, y0 = cmap.origin_xy
    # maps are sparse: SIMD scans find the rows holding candidates, then their pixels. A row's
    # byte sum is nonzero where any label in it is (labels are >= 0); summing the map's bytes
    # reads it once, where comparing it first also wrote a mask the size of the window.
    labels_bytes = np.ascontiguousarray(cmap.labels).view(np.uint8)  # a detector may hand over a slice
    byte_sums = cv2.reduce(labels_bytes, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S)
    rows = np.flatnonzero(byte_sums)
    points = cv2.findNonZero(cv2.compare(cmap.labels[rows], 0, cv2.CMP_GT)) if rows.size else None
    if points is None:
        return []
    points = points.reshape(-1, 2)  # (N, 1, 2) in OpenCV 4, (N, 2) in OpenCV 5
    xs, ys = points[:, 0], rows[points[:, 1]]
    labels = cmap.labels[ys, xs]
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(len(cmap) + 2))
    out = []
    for i in range(1, len(cmap) + 1):
        sel = order[bounds[i] : bounds[i + 1]]
        if sel.size == 0:
            continue
        bx, by = xs[sel], ys[sel]
        left, top = int(bx.min()), int(by.min())
        mask = np.zeros((int(by.max()) - top + 1, int(bx.max()) - left + 1), bool)
        mask[by - top, bx - left] = True
        poly = cmap.polylines[i - 1]
        out.append(
            Candidate(
                cmap.kinds[i - 1],
                (cmap.detector,),
                float(cmap.scores[i - 1]),
                float(cmap.contrast_grey[i - 1]),
                x0 + left,
                y0 + top,
                mask,
                float(cmap.widths_px[i - 1]),
                None if poly is None else poly + np.array([x0, y0], np.float32),
            )
        )
    return out


def _overlap(a: Candidate, b: Candidate) -> int:
    """Number of pixels where two candidates' masks coincide."""
    x0, y0 = max(a.x0, b.x0), max(a.y0, b.y0)
    x1 = min(a.x0 + a.mask.shape[1], b.x0 + b.mask.shape[1])
    y1 = min(a.y0 + a.mask.shape[0], b.y0 + b.mask.shape[0])
    if x1 <= x0 or y1 <= y0:
        return 0
    sa = a.mask[y0 - a.y0 : y1 - a.y0, x0 - a.x0 : x1 - a.x0]
    sb = b.mask[y0 - b.y0 : y1 - b.y0, x0 - b.x0 : x1 - b.x0]
    return int(np.count_nonzero(sa & sb))


def _apart(a: Candidate, b: Candidate, gap_px: float) -> bool:
    """Whether two candidates' bounding boxes are more than `gap_px` apart (their masks then are too)."""
    gap = int(np.ceil(gap_px))
    return (
        a.x0 > b.x0 + b.mask.shape[1] + gap
        or b.x0 > a.x0 + a.mask.shape[1] + gap
        or a.y0 > b.y0 + b.mask.shape[0] + gap
        or b.y0 > a.y0 + a.mask.shape[0] + gap
    )


def _dilated(c: Candidate, by_px: float) -> Candidate:
    r = max(1, int(round(by_px)))
    # copyMakeBorder pads in C (np.pad costs more than the dilation of a small mask); the 0/1
    # result is read as bool without a comparison pass
    padded = cv2.copyMakeBorder(c.mask.view(np.uint8), r, r, r, r, cv2.BORDER_CONSTANT, value=0)
    grown = cv2.dilate(padded, _disc(r)).view(bool)
    return replace(c, x0=c.x0 - r, y0=c.y0 - r, mask=grown)


@functools.cache
def _disc(radius: int) -> np.ndarray:
    """The (2r + 1)-square elliptical structuring element of a dilation by `radius` px."""
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _line_band(s: Candidate, pad_px: float, *, extend_px: float = 0.0) -> Candidate:
    """A scratch's band drawn from its centre line (width + 2 pad), ignoring guard-band gaps,
    its ends carried on straight for `extend_px`."""
    if s.polyline_xy is None:
        return _dilated(s, pad_px)
    line = s.polyline_xy.astype(np.float64)
    if extend_px > 0 and len(line) >= 2:
        start = line[0] - extend_px * _unit(line[0] - line[1])
        end = line[-1] + extend_px * _unit(line[-1] - line[-2])
        line = np.vstack([start, line, end])
    s = replace(s, polyline_xy=line)
    width = (s.width_px if s.width_px == s.width_px else 1.0) + 2 * pad_px
    r = int(np.ceil(width / 2)) + 1
    x0, y0 = int(np.floor(s.polyline_xy[:, 0].min())) - r, int(np.floor(s.polyline_xy[:, 1].min())) - r
    x1, y1 = int(np.ceil(s.polyline_xy[:, 0].max())) + r, int(np.ceil(s.polyline_xy[:, 1].max())) + r
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    pts = np.round((s.polyline_xy - [x0, y0]) * 16).astype(np.int32)
    cv2.polylines(mask, [pts], False, 1, thickness=max(1, int(round(width))), shift=4)
    return replace(s, x0=x0, y0=y0, mask=mask > 0)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.hypot(*v))
    return v / n if n > 0 else v


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
        mask[c.y0 - y0 : c.y0 - y0 + c.mask.shape[0], c.x0 - x0 : c.x0 - x0 + c.mask.shape[1]] |= c.mask
    strongest = a if abs(a.contrast_grey) >= abs(b.contrast_grey) else b
    return replace(a, x0=x0, y0=y0, mask=mask, contrast_grey=strongest.contrast_grey)


def _merge_fragments(regions: list[Candidate], gap_px: float) -> list[Candidate]:
    """Union regions of the same polarity whose masks come within `gap_px` of each other."""
    merged: list[Candidate] = []
    for r in sorted(regions, key=lambda c: -c.area):
        grown = None
        for i, m in enumerate(merged):
            if (m.contrast_grey > 0) != (r.contrast_grey > 0) or _apart(r, m, gap_px):
                continue
            grown = _dilated(r, gap_px) if grown is None else grown
            if _overlap(grown, m) > 0:
                kind = m.kind if m.kind == r.kind else DefectKind.PARTICLE
                merged[i] = replace(_absorb(m, r, grow=True), kind=kind)
                break
        else:
            merged.append(r)
    return merged


def _as_scratch_if_thin(cand: Candidate, min_length_px: float, min_elongation: float) -> Candidate:
    """A long, thin region is a scratch. Its width is the median of its cross-sections over the
    middle half of its length: a band cut obliquely at its ends (where it enters a guard band)
    has less area than its width times its length."""
    if cand.kind not in (DefectKind.DIG, DefectKind.PARTICLE):
        return cand
    n = np.count_nonzero(cand.mask)
    longest = math.hypot(*cand.mask.shape) + _MAX_LENGTH_SLACK_PX
    if n < 8 or longest < min_length_px or _elongation(longest, n) < min_elongation:
        return cand  # not even its bounding box's diagonal would make it a line: skip the fit
    ys, xs = np.nonzero(cand.mask)
    pts = np.column_stack([xs, ys]).astype(np.float32)
    (_, _), (w, h), _ = cv2.minAreaRect(pts)
    length = max(w, h) + 1.0
    if length < min_length_px or _elongation(length, xs.size) < min_elongation:
        return cand
    # centre line: the principal axis through the region, clipped to its extent
    mean = pts.mean(axis=0)
    _, _, vt = np.linalg.svd(pts - mean, full_matrices=False)
    axis = vt[0]
    proj = (pts - mean) @ axis
    ends = np.stack([mean + proj.min() * axis, mean + proj.max() * axis]) + np.array([cand.x0, cand.y0])
    width = _mid_cross_section(proj)
    return replace(cand, kind=DefectKind.SCRATCH, width_px=width, polyline_xy=ends.astype(np.float32))


# The longer side of a region's minimal rectangle, plus the pixel added above, is at most the
# diagonal of its bounding box (which spans its pixels' extents plus one); a pixel more covers the
# rectangle's rounding.
_MAX_LENGTH_SLACK_PX = 1.0


def _elongation(length: float, area: int) -> float:
    """Length over width (area / length, at least 1): never less for a longer band of `area` px."""
    return length / max(area / length, 1.0)


def _mid_cross_section(proj: np.ndarray) -> float:
    """Median pixel count per 1 px step along a band's axis (`proj`: each pixel's position along
    it), over the middle half of its extent: its width, ignoring how its ends are cut."""
    steps = np.floor(proj - proj.min()).astype(int)
    counts = np.bincount(steps)
    quarter = len(counts) // 4
    return float(np.median(counts[quarter : len(counts) - quarter]))
