"""Scratches: oriented line filters on a rank residual, refined at full resolution.

1. find: at half resolution (area-averaged, so a 1 px line keeps its integrated contrast), the
   min/max-rank residual is rotated to each of `n_angles` directions, averaged along rows over
   `line_length_um` and the average across (along columns) subtracted -- an oriented line
   filter that costs three cheap passes per angle and ignores blobs and crossing lines.
   Averaging along a line multiplies a faint scratch's signal-to-noise by about sqrt(length);
   blobs and noise average away. Runs above `k_sigma` line-noise units become line candidates;
   duplicates from neighbouring angles are merged.
2. refine: at full resolution the residual is sampled across each line; the scratch's centre
   offset is followed along its length (gentle curves are fitted with a parabola), its ends
   are where its contrast drops into the noise, and its width comes from the ratio of the
   across-profile's area to its peak, corrected for the optics' blur (measured on the
   cladding edge) -- so a 3.5 um scratch measures 3.5 um, not its blurred 4.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..numeric import median, median_axis0, percentile
from ..profile import DetectionParams
from ..records import CandidateMap, DefectKind, Frame, Geometry
from .base import (
    GUARD,
    OUTSIDE,
    DomainImages,
    Window,
    detection_radius_px,
    domain_images,
    domain_rank_residuals,
    fiber_guards,
    inspection_window,
    top_hats,
    window_about,
    within_radii,
    zone_label_map,
    zone_medians,
)

__all__ = ["ScratchDetector", "width_from_profile"]

_DEFAULT_PSF_SIGMA_PX = 1.0
_PRE_BLUR_SIGMA_PX = 0.8  # sigma OpenCV uses for a 3x3 Gaussian kernel
_MAX_LINES = 60
_FIXED = 16.0  # fixed-point scale of the rotated line filters
_OFFSET = 4096  # fixed-point value of a zero residual
_MARGIN_UM = 5.0  # beyond the last zone: a scratch is judged where it crosses the zones, not past them
_MIN_LINENESS = 0.5  # oriented response over along-line average: ~1 on a line, ~0 on a blob


@dataclass(frozen=True)
class _Line:
    p0: np.ndarray  # (2,) x, y in full-resolution window px
    p1: np.ndarray
    snr: float
    sign: float = 0.0  # -1 darker, +1 brighter than the background; 0 when not known


class ScratchDetector:
    """search_diameter_um: lines are looked for within this diameter (plus a 5 um margin) and
    followed wherever they lead in the contact zone; None looks everywhere. The Inspector passes
    the outermost zone whose scratch rule is limited: beyond it a scratch changes no verdict, and
    the region detector's long thin regions (fusion rule 5) still show what is there."""

    name = "scratch.linear"

    def __init__(self, params: DetectionParams, *, search_diameter_um: float | None = None):
        self.params = params.scratch
        self.detection = params
        self.search_diameter_um = search_diameter_um

    def __call__(self, frame: Frame, geometry: Geometry) -> CandidateMap:
        p = self.params
        um = geometry.um_per_px
        length_px = max(6, int(round(p.line_length_um / um)))
        win = inspection_window(
            geometry, frame.pixels.shape, self.detection, margin_px=4, margin_um=_MARGIN_UM
        )
        roi = win.crop(frame.pixels)
        if not p.enabled:
            return CandidateMap.empty(self.name, roi.shape, (win.x0, win.y0))
        guards = fiber_guards(geometry, self.detection)
        lines = self._seek(frame, geometry, win, guards, length_px)
        if not lines:
            return CandidateMap.empty(self.name, roi.shape, (win.x0, win.y0))
        # lines are followed on plain top-hats of the polarities found (a closing first shaves the
        # inner side of a curved bright line), per domain so nothing reaches across the cladding
        # edge; the ferrule's only once a line reaches towards it (most candidates lie inside);
        # each only where a line is followed
        blurred = cv2.GaussianBlur(roi, (3, 3), 0)
        signs = {line.sign for line in lines}
        explained = np.zeros(roi.shape, np.uint8)
        residuals = _TopHats(
            blurred,
            window_px=int(p.window_um / um),
            geometry=geometry,
            window=win,
            params=self.detection,
            polarity=int(signs.pop()) if len(signs) == 1 else 0,
            explained=explained,
        )
        centre = np.array(win.local_xy(geometry.center_xy))
        fiber_px = geometry.cladding_radius_px - self.detection.edge_guard_inner_um / um
        pad_px = p.line_length_um / um  # how far `_refine` looks beyond a candidate's ends at first
        labels_full = zone_label_map(
            geometry,
            win,
            guards=guards,
            outer_radius_px=detection_radius_px(geometry, self.detection, margin_um=_MARGIN_UM),
        )
        usable = cv2.inRange(labels_full, OUTSIDE + 1, GUARD - 1)  # 255 in the zones, off the guards
        # blur of the residual: the optics' (measured on the cladding edge) and our 3x3 Gaussian's
        psf = math.hypot(geometry.edge_sigma_px or _DEFAULT_PSF_SIGMA_PX, _PRE_BLUR_SIGMA_PX)

        out = np.zeros(roi.shape, np.int32)
        scores, contrasts, widths, polylines = [], [], [], []
        # strongest first, each followed on what stronger scratches left: weaker candidates along
        # a strong scratch's sides or through its crossings are its echoes, not scratches
        for line in lines:
            mid = np.rint((line.p0 + line.p1) / 2).astype(int)
            if explained[np.clip(mid[1], 0, roi.shape[0] - 1), np.clip(mid[0], 0, roi.shape[1] - 1)]:
                continue
            if not residuals.with_ferrule and _reach_px(line, centre, pad_px) > fiber_px:
                residuals.add_ferrule()
            found = _refine(line, residuals, usable, psf, p, um)
            if found is None:
                continue
            polyline, width_px, contrast, snr = found
            band = np.zeros(roi.shape, np.uint8)
            cv2.polylines(
                band,
                [np.round(polyline * 16).astype(np.int32)],
                False,
                1,
                thickness=max(1, int(round(width_px))),
                lineType=cv2.LINE_8,
                shift=4,
            )
            fresh = (band > 0) & (out == 0) & (usable > 0)
            if not fresh.any():
                continue
            out[fresh] = len(scores) + 1
            scores.append(float(np.clip(snr / (2 * p.k_sigma), 0.5, 1.0)))
            contrasts.append(contrast)
            widths.append(width_px)
            polylines.append(polyline.astype(np.float32))
            wide = cv2.dilate(band, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9)))
            residuals.explain(wide)
        n = len(scores)
        return CandidateMap(
            self.name,
            (win.x0, win.y0),
            out,
            (DefectKind.SCRATCH,) * n,
            np.array(scores, np.float32),
            np.array(contrasts, np.float32),
            np.array(widths, np.float32),
            tuple(polylines),
        )

    def _seek(self, frame: Frame, geometry: Geometry, win: Window, guards, length_px: int) -> list[_Line]:
        """Line candidates within the search diameter (plus a margin), ends in `win` px."""
        radius_px = detection_radius_px(geometry, self.detection, margin_um=_MARGIN_UM)
        if self.search_diameter_um is not None:
            radius_px = min(radius_px, (self.search_diameter_um / 2 + _MARGIN_UM) / geometry.um_per_px)
        seek = window_about(geometry.center_xy, radius_px + 4, frame.pixels.shape)
        found = self._find(seek.crop(frame.pixels), geometry, seek, guards, length_px, radius_px)
        offset = np.array([seek.x0 - win.x0, seek.y0 - win.y0], np.float64)  # to `win` px
        return [replace(line, p0=line.p0 + offset, p1=line.p1 + offset) for line in found]

    def _find(
        self, roi: np.ndarray, geometry: Geometry, win: Window, guards, length_px: int, radius_px: float
    ) -> list[_Line]:
        """Line candidates within `radius_px` of the fiber centre (`roi` is `win` of the frame),
        from oriented box averages of the half-resolution residual; ends in `win` px."""
        p = self.params
        scale = 0.5
        even = win.whole_cells(2)
        labels = zone_label_map(geometry, even, guards=guards, scale=scale, outer_radius_px=radius_px)
        labels = within_radii(labels, even, geometry.center_xy, outer_px=radius_px, scale=scale)
        half = cv2.resize(roi[: even.h, : even.w], labels.shape[::-1], interpolation=cv2.INTER_AREA)
        dark, bright = domain_rank_residuals(
            half,
            window_px=int(p.window_um / geometry.um_per_px * scale),
            geometry=geometry,
            window=even,
            params=self.detection,
            scale=scale,
        )
        # each polarity centred on its zone's median; nothing outside the zones or on the guards.
        # The rotated filters run in unsigned 16-bit fixed point (1/16 grey, offset so 0 grey is
        # _OFFSET): OpenCV's fastest warp and box filter; the subtraction saturates at 0, which
        # keeps exactly the line-like (positive) part of the response
        n_zones = len(geometry.zones)
        levels = []  # per label, each polarity's level (0 outside the zones)
        at = labels.astype(np.intp) << 8  # (label, grey) -> index of a table row and column
        fixed = None
        for res in (dark, bright):
            level = np.zeros(256, np.float32)
            level[1 : n_zones + 1] = zone_medians(res, labels, n_zones)[1:]
            levels.append(level)
            # the larger polarity by tables of every (zone, grey): the fixed-point map is monotone
            # in the residual, so it commutes with the maximum (the same bits, a third of the passes)
            table = np.full((256, 256), _OFFSET, np.uint16)  # outside and guards: a zero residual
            centred = np.arange(256, dtype=np.float32)[None, :] - level[1 : n_zones + 1, None]
            table[1 : n_zones + 1] = np.clip(np.rint(centred * _FIXED + _OFFSET), 0, 65535)
            this = np.take(table, at | res)
            fixed = this if fixed is None else np.maximum(fixed, this, out=fixed)
        half_len = max(3, int(length_px * scale))
        # rotate about the fiber centre into a square that just holds the inspected circle: the
        # circle turns onto itself, so no pixel of it is lost and no corner is wasted
        centre = win.scaled_xy(geometry.center_xy, scale)
        side = 2 * int(math.ceil(radius_px * scale)) + 3
        line_noise = None
        min_run = max(3, int(p.min_length_um / geometry.um_per_px * scale))
        # in each rotated frame a scratch along the rows is a long horizontal run: opening with a
        # row segment keeps it and cuts away lines crossing it at other angles
        run_kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (min_run, 1))
        n = p.n_angles
        responses = np.empty((n, side, side), np.uint16)
        alongs = np.empty((n, side, side), np.uint16)
        turns: list[np.ndarray] = [np.zeros((2, 3))] * n  # window -> turned frame of each direction
        # one warp serves two directions: in the frame turned by theta a line at theta runs along
        # the rows and a line at theta + 90 deg along the columns (k >= n / 2; read transposed)
        for k in range(n // 2):
            rot = cv2.getRotationMatrix2D(centre, 180.0 * k / n, 1.0)
            rot[:, 2] += (side / 2 - centre[0], side / 2 - centre[1])
            turned = cv2.warpAffine(fixed, rot, (side, side), flags=cv2.INTER_LINEAR, borderValue=_OFFSET)
            # along-row average minus across average: a line along the rows keeps most of its
            # contrast, a blob or a line crossing at another angle cancels
            along_rows = cv2.blur(turned, (half_len, 1), borderType=cv2.BORDER_CONSTANT, dst=alongs[k])
            along_cols = cv2.blur(
                turned, (1, half_len), borderType=cv2.BORDER_CONSTANT, dst=alongs[k + n // 2]
            )
            cv2.subtract(along_rows, along_cols, dst=responses[k])
            cv2.subtract(along_cols, along_rows, dst=responses[k + n // 2])
            turns[k] = turns[k + n // 2] = rot
            if line_noise is None:
                # response >= 0 keeps half of symmetric noise: its 75th percentile is 0.674 sigma
                inside = responses[k][::2, ::2][turned[::2, ::2] != _OFFSET].astype(np.float64)
                quartile = float(percentile(inside, 75)) if inside.size else 0.0
                line_noise = max(quartile / 0.674 / _FIXED, 0.25)
        # integer responses above the threshold are those above its floor
        threshold = math.floor(max(p.k_sigma * line_noise, p.min_contrast_grey / 2) * _FIXED)
        angle_of, ends, boxes = _line_runs(responses, threshold, run_kernel, min_run)
        # ends found in a transposed view are (row, col) of the turned frame: swap the rotation's rows
        rotations = [rot[[1, 0], :] if k >= n // 2 else rot for k, rot in enumerate(turns)]
        inverses = np.stack([cv2.invertAffineTransform(rot) for rot in rotations])  # (n_angles, 2, 3)
        back = np.einsum("nij,nkj->nki", inverses[angle_of, :, :2], ends) + inverses[angle_of, None, :, 2]
        # each test below keeps or drops a run on its own: the cheap one first, the others on what
        # is left (most runs lie along the edges of the turned frames, outside the inspected area).
        # A line whose across-profile never lies wholly in the inspected area runs along a guard
        # band (the fiber's own edge): nothing to follow there
        usable_half = (labels != OUTSIDE) & (labels != GUARD)
        reach_half = (p.max_width_um / geometry.um_per_px / 2 + 3) * scale
        kept = np.flatnonzero(_followable(back, usable_half, reach_half))
        if not kept.size:
            return []  # as on most images
        peaks, along_at_peak = _box_peaks(responses, alongs, angle_of[kept], *(edge[kept] for edge in boxes))
        # about as strong across as along: a blob, the region detector's
        line_like = peaks >= _MIN_LINENESS * (along_at_peak - _OFFSET)
        kept, peaks = kept[line_like], peaks[line_like]
        strongest = _strongest_angle(angle_of[kept], back[kept].mean(axis=1), responses, np.stack(turns))
        kept, peaks = kept[strongest], peaks[strongest]
        signs = _polarity_along((dark, bright), levels, labels, back[kept])
        full = (back[kept] + 0.5) / scale - 0.5  # to full-resolution window px
        lines = [
            _Line(ends[0], ends[1], peak / _FIXED / line_noise, sign)
            for ends, peak, sign in zip(full, peaks.tolist(), signs)
        ]
        return _merge(sorted(lines, key=lambda ln: -ln.snr))[:_MAX_LINES]


class _TopHats:
    """The plain top-hats `domain_rank_residuals(blurred, ..., top_hat=polarity)` gives per
    domain -- the fiber's, and the ferrule's too once `add_ferrule` is called -- with 0 wherever
    `explained` is set, filled in only where `covering` asks for them, one polarity at a time.

    Most of the window holds no line, and at full resolution the filters' window is ~46 px:
    filtering the whole fiber box and window cost more than following every line. A closing or
    an opening at a pixel depends only on the pixels within one window of it, so a box filtered
    with that margin holds the whole image's values. A domain that cannot be split
    (`domain_images` is None) is filtered whole, as `domain_rank_residuals` does it.
    """

    def __init__(
        self,
        blurred: np.ndarray,
        *,
        window_px: int,
        geometry: Geometry,
        window: Window,
        params: DetectionParams,
        polarity: int,
        explained: np.ndarray,
    ):
        self._blurred = blurred
        self._where = {"window_px": window_px, "geometry": geometry, "window": window, "params": params}
        self._window_px = window_px
        self._polarity = polarity
        # a closing reaches (size - 1) px: its dilation, then its erosion
        self._margin_px = max(3, int(window_px) | 1)
        self.explained = explained  # uint8, nonzero where a found scratch explains the residual
        self.with_ferrule = False
        self._ferrule: DomainImages | None = None
        self._fiber = domain_images(blurred, **self._where, domain="fiber")
        self._lazy = self._fiber is not None
        if self._lazy:
            self._residuals = {-1: np.zeros_like(blurred), 1: np.zeros_like(blurred)}
            self._done = {sign: np.zeros(blurred.shape, np.uint8) for sign in (-1, 1)}  # 1: holds its value
        else:
            dark, bright = domain_rank_residuals(blurred, **self._where, top_hat=polarity, domain="fiber")
            self._residuals = {-1: dark, 1: bright}

    def add_ferrule(self) -> None:
        """From now on the ferrule's top-hats count too (the domains do not overlap)."""
        self.with_ferrule = True
        if self._lazy:
            self._ferrule = domain_images(self._blurred, **self._where, domain="ferrule")
            if self._ferrule is not None:
                for done in self._done.values():
                    done[:] = 0  # filled again, with both domains, where asked for
                return
            h, w = self._blurred.shape
            for sign in (-1, 1):  # the fiber's, everywhere
                self._fill(0, 0, w, h, sign)
            self._lazy = False
        more = domain_rank_residuals(self._blurred, **self._where, top_hat=self._polarity, domain="ferrule")
        for have, extra in zip((self._residuals[-1], self._residuals[1]), more):
            cv2.subtract(extra, extra, dst=extra, mask=self.explained)
            cv2.max(have, extra, dst=have)  # nor do they add up in a fallback

    def explain(self, wide: np.ndarray) -> None:
        """Nothing is left where `wide` (uint8, 1 on a found scratch and its sides) is set."""
        for residual in self._residuals.values():
            cv2.subtract(residual, residual, dst=residual, mask=wide)
        cv2.bitwise_or(self.explained, wide * 255, dst=self.explained)

    def covering(self, map_x: np.ndarray, map_y: np.ndarray, sign: float) -> np.ndarray:
        """The dark (`sign` -1) or bright (+1) top-hat, window-sized, with its values wherever a
        bilinear `cv2.remap` on these (affine) maps reads: the box of the maps' corners, a pixel
        wider on each side."""
        key = -1 if sign < 0 else 1
        if self._lazy:
            h, w = self._blurred.shape
            xs, ys = map_x[[0, 0, -1, -1], [0, -1, 0, -1]], map_y[[0, 0, -1, -1], [0, -1, 0, -1]]
            x0, x1 = max(0, int(np.floor(xs.min())) - 1), min(w, int(np.floor(xs.max())) + 3)
            y0, y1 = max(0, int(np.floor(ys.min())) - 1), min(h, int(np.floor(ys.max())) + 3)
            if x1 > x0 and y1 > y0:
                todo = self._done[key][y0:y1, x0:x1] == 0
                if todo.any():  # only what is not there yet: the box of the missing pixels
                    bx, by, bw, bh = cv2.boundingRect(todo.view(np.uint8))
                    self._fill(x0 + bx, y0 + by, x0 + bx + bw, y0 + by + bh, key)
        return self._residuals[key]

    def _fill(self, x0: int, y0: int, x1: int, y1: int, sign: int) -> None:
        """Filter columns x0..x1, rows y0..y1 of the window for one polarity (each domain on that
        box plus a margin of one window within its image) and mark them done."""
        out = self._residuals[sign][y0:y1, x0:x1]
        out[:] = 0
        if sign != self._polarity and self._polarity != 0:
            self._done[sign][y0:y1, x0:x1] = 1  # a polarity not asked for stays zero
            return
        fiber = self._fiber
        inside = self._in_box(fiber, x0, y0, x1, y1)
        if inside is not None and cv2.countNonZero(fiber.disc[inside[1]]):  # the fiber's, in its disc
            here, local = inside
            cv2.copyTo(self._filtered(fiber.fiber, local, sign), fiber.disc[local], out[here])
        ferrule = self._ferrule
        inside = self._in_box(ferrule, x0, y0, x1, y1) if ferrule is not None else None
        hole = ferrule.hole[inside[1]] if inside is not None else None
        in_hole = hole is not None and hole.size == out.size and cv2.countNonZero(hole) == hole.size
        if ferrule is not None and not in_hole:  # the ferrule's, on the window image, outside its hole
            part = self._filtered(ferrule.ferrule, np.s_[y0:y1, x0:x1], sign)
            if hole is not None:
                cv2.subtract(part[inside[0]], part[inside[0]], dst=part[inside[0]], mask=hole)
            cv2.max(out, part, dst=out)
        cv2.subtract(out, out, dst=out, mask=self.explained[y0:y1, x0:x1])
        self._done[sign][y0:y1, x0:x1] = 1

    @staticmethod
    def _in_box(images: DomainImages, x0: int, y0: int, x1: int, y1: int):
        """The part of window box x0..x1, y0..y1 within the domains' box: (slices of the asked-for
        box, slices of the domains' box), or None when they do not meet."""
        rows, cols = images.box
        ix0, ix1 = max(x0, cols.start), min(x1, cols.stop)
        iy0, iy1 = max(y0, rows.start), min(y1, rows.stop)
        if ix1 <= ix0 or iy1 <= iy0:
            return None
        here = (slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0))
        local = (slice(iy0 - rows.start, iy1 - rows.start), slice(ix0 - cols.start, ix1 - cols.start))
        return here, local

    def _filtered(self, image: np.ndarray, part: tuple[slice, slice], sign: int) -> np.ndarray:
        """The top-hat of one polarity of `image` on `part` (slices within it): filtered with a
        window's margin (clipped to the image, whose own edges are treated alike either way)."""
        rows, cols = part
        m = self._margin_px
        r0, c0 = max(0, rows.start - m), max(0, cols.start - m)
        r1, c1 = min(image.shape[0], rows.stop + m), min(image.shape[1], cols.stop + m)
        dark, bright = top_hats(image[r0:r1, c0:c1], window_px=self._window_px, polarity=sign)
        return (dark if sign < 0 else bright)[
            rows.start - r0 : rows.stop - r0, cols.start - c0 : cols.stop - c0
        ]


def _line_runs(
    responses: np.ndarray, threshold: int, run_kernel: np.ndarray, min_run: int
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """Runs of line response above `threshold` in every direction, long and thin enough:
    (direction k (m,), ends (m, 2, 2) as (col, row) of its turned frame -- transposed for
    k >= n/2 --, boxes (x0, x1, y0, y1) each (m,): the columns and rows each run spans there).

    responses: (n, D, D) fixed-point maps; in the frames of the second half the lines run along
    columns. All directions are thresholded, opened and traced at once, stacked into one image
    (their frames kept apart by an empty first and last row), each run along its rows.
    """
    n, side = responses.shape[0], responses.shape[1]
    hits = cv2.compare(responses.reshape(n * side, side), threshold, cv2.CMP_GT).reshape(n, side, side)
    for frame in hits[n // 2 :]:
        cv2.transpose(frame, dst=frame)  # square: OpenCV transposes in place, 3x NumPy's copy
    hits[:, 0] = 0
    hits[:, -1] = 0
    runs = cv2.morphologyEx(hits.reshape(n * side, side), cv2.MORPH_OPEN, run_kernel)
    contours, _ = cv2.findContours(runs, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        none = np.zeros(0, np.int64)
        return none, np.zeros((0, 2, 2)), (none, none, none, none)
    lengths = np.array([len(c) for c in contours])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pts = np.concatenate(contours)[:, 0, :]  # (N, 2) x, stacked y
    owner = np.repeat(np.arange(len(contours)), lengths)
    x_min, x_max = np.minimum.reduceat(pts[:, 0], starts), np.maximum.reduceat(pts[:, 0], starts)
    y_min, y_max = np.minimum.reduceat(pts[:, 1], starts), np.maximum.reduceat(pts[:, 1], starts)
    cw, ch = x_max - x_min + 1, y_max - y_min + 1
    # ends: each run's first outline point in its leftmost and in its rightmost column
    ends = []
    for x_end in (x_min, x_max):
        at = np.flatnonzero(pts[:, 0] == x_end[owner])
        first = at[np.flatnonzero(np.diff(owner[at], prepend=-1))]  # owners come in order
        ends.append(pts[first])
    candidates = np.flatnonzero((cw >= min_run) & (ch <= np.maximum(4, 0.3 * cw)))
    block = y_min[candidates] // side
    top = y_min[candidates] - block * side
    xy = np.stack([ends[0][candidates], ends[1][candidates]], axis=1).astype(np.float64)
    xy[:, :, 1] -= (block * side)[:, None]
    return block, xy, (x_min[candidates], x_max[candidates] + 1, top, top + ch[candidates])


def _box_peaks(
    responses: np.ndarray,
    alongs: np.ndarray,
    k: np.ndarray,
    x0: np.ndarray,
    x1: np.ndarray,
    y0: np.ndarray,
    y1: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The peak response within each box (columns x0..x1, rows y0..y1 of turned frame k, read
    transposed for k >= n/2) and the along-line average there: (peaks, alongs) int64, each at the
    box's first maximum in stored row order (argmax's). A loop over plain ints: the ~30 boxes
    hold ~26k pixels, which gathered all at once cost 6x more."""
    n = responses.shape[0]
    peaks = np.zeros(len(k), np.int64)
    along_at_peak = np.zeros(len(k), np.int64)
    boxes = zip(k.tolist(), x0.tolist(), x1.tolist(), y0.tolist(), y1.tolist())
    for j, (frame, c0, c1, r0, r1) in enumerate(boxes):
        if frame >= n // 2:  # the frame is stored untransposed: rows and columns swap
            c0, c1, r0, r1 = r0, r1, c0, c1
        row, col = divmod(int(responses[frame, r0:r1, c0:c1].argmax()), c1 - c0)
        peaks[j] = responses[frame, r0 + row, c0 + col]
        along_at_peak[j] = alongs[frame, r0 + row, c0 + col]
    return peaks, along_at_peak


def _reach_px(line: _Line, centre: np.ndarray, pad_px: float) -> float:
    """How far from `centre` a line candidate's chord, carried on `pad_px` past both ends, reaches."""
    direction = line.p1 - line.p0
    unit = direction / max(float(np.hypot(*direction)), 1e-9)
    ends = (line.p0 - pad_px * unit, line.p1 + pad_px * unit)
    return max(float(np.hypot(*(end - centre))) for end in ends)


_STATIONS = np.linspace(0.0, 1.0, 16)[None, :, None]  # along each segment, for `_followable`


def _followable(segments: np.ndarray, usable: np.ndarray, reach: float) -> np.ndarray:
    """For (n, 2, 2) segments (half-res px): whether somewhere along each the profile across it
    is wholly usable (at 2 of 16 stations at least). Returns (n,) bool."""
    a, b = segments[:, 0], segments[:, 1]
    direction = b - a
    length = np.hypot(direction[:, 0], direction[:, 1])
    norm = np.maximum(length, 1e-9)
    normal = (-direction[:, 1] / norm, direction[:, 0] / norm)
    across = _across(reach)
    h, w = usable.shape
    grids = []
    for i in (0, 1):  # x and y apart: contiguous passes
        along = a[:, i, None, None] + _STATIONS * direction[:, i, None, None]
        grids.append(np.rint(along + across * normal[i][:, None, None]).astype(np.int64))  # (n, 16, 5)
    xs, ys = grids
    inside = (xs.view(np.uint64) < w) & (ys.view(np.uint64) < h)  # as unsigned, a negative is beyond too
    ok = np.take(usable, np.where(inside, ys * w + xs, 0)) & inside
    return (ok.all(axis=2).sum(axis=1) >= 2) & (length > 0)


@lru_cache(maxsize=8)
def _across(reach: float) -> np.ndarray:
    """np.linspace(-reach, reach, 5) as (1, 1, 5): `_followable`'s offsets across a segment
    (the same for every image at one scale). Read-only."""
    offsets = np.linspace(-reach, reach, 5)[None, None, :]
    offsets.flags.writeable = False
    return offsets


def _strongest_angle(
    angle_of: np.ndarray, points_xy: np.ndarray, responses: np.ndarray, rotations: np.ndarray
) -> np.ndarray:
    """For each candidate, whether its own angle gives the strongest line response at its midpoint.

    points_xy: (n, 2) half-res window px; responses: (n_angles, D, D); rotations: (n_angles, 2, 3).
    A candidate failing this is a side lobe of a line at another angle. Returns (n,) bool.
    """
    n_angles, size = responses.shape[0], responses.shape[1]
    turned = np.einsum("aij,nj->nai", rotations[:, :, :2], points_xy) + rotations[None, :, :, 2]  # (n, A, 2)
    cols = np.clip(np.rint(turned[..., 0]).astype(int), 1, size - 2)
    rows = np.clip(np.rint(turned[..., 1]).astype(int), 1, size - 2)
    # 3x3 neighbourhood max, vectorised over candidates and angles (np.take on flat indices:
    # a third of the time of 3-D fancy indexing)
    at = (np.arange(n_angles)[None, :] * size + rows) * size + cols
    best = np.full(cols.shape, -np.inf, np.float32)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            best = np.maximum(best, np.take(responses, at + (dy * size + dx)))
    own = best[np.arange(len(angle_of)), angle_of]
    return own >= 0.9 * best.max(axis=1)


def _polarity_along(
    residuals: tuple[np.ndarray, np.ndarray],
    levels: list[np.ndarray],
    labels: np.ndarray,
    segments: np.ndarray,
) -> np.ndarray:
    """Majority polarity (-1 dark, +1 bright: the larger residual less its zone's level) at five
    points along each of the (n, 2, 2) segments (half-res px). residuals: (dark, bright) uint8;
    levels: each one's float32 level per label. Returns (n,) float."""
    a, b = segments[:, None, 0], segments[:, None, 1]
    pts = np.rint(a + np.linspace(0.1, 0.9, 5)[None, :, None] * (b - a)).astype(int)  # (n, 5, 2)
    h, w = labels.shape
    ok = (pts[..., 0] >= 0) & (pts[..., 0] < w) & (pts[..., 1] >= 0) & (pts[..., 1] < h)
    at = np.clip(pts[..., 1], 0, h - 1) * w + np.clip(pts[..., 0], 0, w - 1)
    zone = np.take(labels, at)
    dark, bright = (
        np.take(res, at).astype(np.float32) - level[zone] for res, level in zip(residuals, levels)
    )
    votes = np.where(ok, np.where(bright > dark, 1.0, -1.0), 0.0)
    return np.where(votes.sum(axis=1) > 0, 1.0, -1.0)


def _merge(lines: list[_Line]) -> list[_Line]:
    """Drop lines that lie along a stronger one (the same scratch seen at a neighbouring angle),
    extending the stronger one to cover both. `lines` strongest first."""
    kept: list[_Line] = []
    a = np.empty((len(lines), 2))  # ends of the kept lines, row i = kept[i]
    b = np.empty((len(lines), 2))
    cos_limit = math.cos(math.radians(20))
    for line in lines:
        direction = line.p1 - line.p0
        length = float(np.hypot(*direction))
        n = len(kept)
        if n and length > 0:
            ab = b[:n] - a[:n]
            lens = np.hypot(ab[:, 0], ab[:, 1])
            cos = np.abs(ab @ direction) / np.maximum(lens * length, 1e-9)
            mid = (line.p0 + line.p1) / 2
            t = np.clip(np.einsum("ij,ij->i", mid - a[:n], ab) / np.maximum(lens**2, 1e-9), 0.0, 1.0)
            dist = np.hypot(*(a[:n] + t[:, None] * ab - mid).T)
            same = np.flatnonzero((cos >= cos_limit) & (dist <= 6.0) & (lens > 0))
            if same.size:
                i = int(same[0])
                unit = ab[i] / lens[i]
                ts = [float(np.dot(q - a[i], unit)) for q in (line.p0, line.p1, a[i], b[i])]
                kept[i] = _Line(a[i] + unit * min(ts), a[i] + unit * max(ts), kept[i].snr, kept[i].sign)
                a[i], b[i] = kept[i].p0, kept[i].p1
                continue
        a[n], b[n] = line.p0, line.p1
        kept.append(line)
    return kept


def _point_segment_distance(q: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    t = float(np.clip(np.dot(q - a, ab) / max(float(np.dot(ab, ab)), 1e-9), 0.0, 1.0))
    return float(np.hypot(*(a + t * ab - q)))


def _refine(
    line: _Line,
    residuals: _TopHats,
    usable: np.ndarray,
    psf_sigma_px: float,
    p,
    um_per_px: float,
):
    """Follow a line candidate at full resolution: (polyline (k, 2), width px, signed contrast, snr) or None.

    The half-resolution candidate may cover only part of a scratch (its contrast can change
    from fiber to ferrule): while the scratch is still seen at an end of the sampled stretch,
    the stretch is extended along the scratch's own fitted chord.
    """
    pad = p.line_length_um / um_per_px  # the half-res ends are blurred by the line filter: look beyond them
    p0, p1 = line.p0.astype(np.float64), line.p1.astype(np.float64)
    before = after = pad
    found = None
    for _ in range(8):
        attempt = _follow_chord(
            p0, p1, before, after, residuals, usable, psf_sigma_px, p, um_per_px, line.sign
        )
        if attempt is None:
            break
        found = attempt
        pts, _, _, _, grow_lo, grow_hi = attempt
        if not (grow_lo or grow_hi):
            break
        p0, p1 = pts[0], pts[-1]
        span = float(np.hypot(*(p1 - p0)))
        before = max(pad, 0.5 * span) if grow_lo else pad
        after = max(pad, 0.5 * span) if grow_hi else pad
    if found is None:
        return None
    pts, width_px, contrast, snr, _, _ = found
    return pts, width_px, contrast, snr


def _follow_chord(
    p0: np.ndarray,
    p1: np.ndarray,
    before: float,
    after: float,
    residuals: _TopHats,
    usable: np.ndarray,
    psf_sigma_px: float,
    p,
    um_per_px: float,
    sign_hint: float = 0.0,
):
    """Sample across the chord p0-p1 (extended by `before`/`after` px) and follow the line: in the
    polarity `sign_hint` when known (-1 dark, +1 bright), else in the stronger of the two.

    Returns (polyline, width px, signed contrast, snr, still seen at start, still seen at end) or None.
    """
    direction = p1 - p0
    length = float(np.hypot(*direction))
    if length < 2:
        return None
    unit = direction / length
    normal = np.array([-unit[1], unit[0]])
    reach = p.max_width_um / um_per_px / 2 + 3 * psf_sigma_px + 3  # half-width of the across-profile window
    t = np.arange(-before, length + after + 0.5, 1.0)
    s = np.arange(-reach, reach + 0.25, 0.5)
    map_x = (p0[0] + t[:, None] * unit[0] + s[None, :] * normal[0]).astype(np.float32)
    map_y = (p0[1] + t[:, None] * unit[1] + s[None, :] * normal[1]).astype(np.float32)
    inside = cv2.remap(usable, map_x, map_y, cv2.INTER_NEAREST, borderValue=0)
    if np.count_nonzero(inside.all(axis=1)) < 4:
        return None  # runs along a guard band or out of the inspected area: nothing to follow
    best = None
    for sign in (sign_hint,) if sign_hint else (-1.0, 1.0):
        residual = residuals.covering(map_x, map_y, sign)
        prof = cv2.remap(residual, map_x, map_y, cv2.INTER_LINEAR, borderValue=0).astype(np.float32)
        prof[inside == 0] = np.nan
        found = _follow(prof, t, s, psf_sigma_px, p, um_per_px)
        if found is not None and (best is None or found[3] > best[1][3]):
            best = (sign, found)
    if best is None:
        return None
    sign, (t_lo, t_hi, offsets, snr, width_px, peak) = best
    # polyline: centre offsets along the kept stretch, as frame-window points
    ts = np.linspace(t_lo, t_hi, max(2, min(12, int((t_hi - t_lo) / 8) + 2)))
    off = np.polyval(offsets, ts)
    pts = p0[None, :] + ts[:, None] * unit[None, :] + off[:, None] * normal[None, :]
    margin = max(4.0, 0.25 * p.line_length_um / um_per_px)
    seen = inside.any(axis=1)  # rows that reach data at all: beyond the window there is nothing to follow
    grow_lo = t_lo <= t[0] + margin and seen[0]
    grow_hi = t_hi >= t[-1] - margin and seen[-1]
    return pts, width_px, sign * peak, snr, grow_lo, grow_hi


def _follow(prof: np.ndarray, t: np.ndarray, s: np.ndarray, psf_sigma_px: float, p, um_per_px: float):
    """Along-line extent, centre path, width and contrast of one polarity; None if it is not a line.

    prof: (n_t, n_s) residual sampled along (rows, 1 px apart) and across (columns, 0.5 px
    apart) the candidate line; NaN outside the inspected area.
    """
    valid_rows = np.isfinite(prof).all(axis=1)
    if valid_rows.sum() < 4:
        return None
    filled = np.where(np.isfinite(prof), prof, 0.0).astype(np.float32)
    # background level and per-sample noise: the profile's outer columns, away from the line
    edge_cols = np.concatenate([filled[valid_rows, :4].ravel(), filled[valid_rows, -4:].ravel()])
    level = float(median(edge_cols))
    noise = max(1.4826 * float(median(np.abs(edge_cols - level))), 0.5)
    centred = filled - level
    # average along the line first, so the centre is followed on signal, not on noise
    along_px = max(5, int(p.line_length_um / um_per_px / 2))
    along = cv2.blur(centred, (1, along_px), borderType=cv2.BORDER_REFLECT)
    reach = p.max_width_um / um_per_px / 2 + 2 * psf_sigma_px + 2
    band = np.flatnonzero(np.abs(s) <= reach)
    peak_col = band[np.argmax(along[:, band], axis=1)]
    peak_val = along[np.arange(len(t)), peak_col]
    # the centre line is fitted on rows where the line clearly stands out; elsewhere the
    # argmax would sit on the largest noise bump and bias every later measurement upwards
    strong = valid_rows & (peak_val > max(6.0 * noise / math.sqrt(along_px), 0.5 * p.min_contrast_grey))
    if strong.sum() < 3:
        return None
    deg = 2 if np.ptp(t[strong]) >= 3 * along_px else 1
    coeffs = np.polyfit(t[strong], s[peak_col[strong]], deg, w=peak_val[strong])
    step = float(s[1] - s[0])
    centre_col = (np.polyval(coeffs, t) - s[0]) / step
    # presence: a running median of the contrast on the fitted line (unbiased: off the line it
    # is noise around zero); a mean would let one strong blob stretch a "scratch" beyond it
    near = np.clip(np.rint(centre_col).astype(int), 1, len(s) - 2)
    rows_all = np.arange(len(t))
    on_line = (centred[rows_all, near - 1] + centred[rows_all, near] + centred[rows_all, near + 1]) / 3.0
    on_line = np.where(valid_rows, on_line, 0.0)
    raw = _running_median(on_line, along_px)
    floor = max(3.0 * 1.25 * noise / math.sqrt(3 * along_px), 0.5 * p.min_contrast_grey)
    inside_fit = (centre_col >= 0) & (centre_col <= len(s) - 1)
    present = valid_rows & inside_fit & (raw > floor)
    if present.sum() < 3:
        return None
    # rows without data (a guard band, the frame's edge) do not break a scratch: bridge them
    bridged = present | ~valid_rows
    idx = np.flatnonzero(bridged)
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > along_px) + 1)  # short gaps are allowed too
    runs = [r[present[r]] for r in runs]  # each run starts and ends where the scratch is seen
    rows = max(runs, key=len)
    if rows.size < 3:
        return None
    # the running median reaches half its window past each end: trim to where a short running
    # mean of the contrast falls below half the line's typical contrast
    typical = float(median(on_line[rows]))
    short = _running_mean(on_line, 5)
    ends = np.flatnonzero(short[rows] >= 0.5 * typical)
    if ends.size < 3:
        return None
    rows = rows[ends[0] : ends[-1] + 1]
    seen = valid_rows[rows]  # rows without data (guard bands) neither help nor hurt
    # judged row by row where single rows are well above the noise, else on the running mean
    per_row = on_line if typical >= 6.0 * noise / math.sqrt(3.0) else short
    covered = per_row[rows][seen] >= 0.5 * typical
    if covered.size and (covered.mean() < 0.85 or _longest_run(~covered) * um_per_px > 1.5):
        return None  # contrast comes and goes: a row of blobs (two digs, dirt specks), not a scratch
    t_lo, t_hi = float(t[rows[0]]), float(t[rows[-1]])
    # length and elongation count only what was seen: a blob next to a guard band, bridged over
    # it to some faint texture beyond, is not a line
    measured = rows[seen]
    if measured.size * um_per_px < p.min_length_um:
        return None
    # straighten: shift each row so the fitted centre sits at s = 0, then average across rows
    shift_cols = (np.polyval(coeffs, t[measured]) / step).astype(np.float32)
    map_x = np.arange(len(s), dtype=np.float32)[None, :] + shift_cols[:, None]
    map_y = np.repeat(measured.astype(np.float32)[:, None], len(s), axis=1)
    aligned = cv2.remap(centred, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mean_prof = median_axis0(aligned)  # the median ignores where another scratch crosses
    width_px, peak = width_from_profile(mean_prof, s, psf_sigma_px)
    if width_px is None or width_px * um_per_px > p.max_width_um:
        return None
    if measured.size < p.min_elongation * max(width_px, 2.0 * psf_sigma_px):
        return None  # a blob, however irregular, is the region detector's
    typical = float(median(on_line[measured]))  # robust to the bright spot where another scratch crosses
    snr = typical / noise * math.sqrt(measured.size)
    # a wide line must also be a contrasty one: wide, faint bands are shading and texture
    min_contrast = p.min_contrast_wide_grey if width_px * um_per_px >= p.wide_um else p.min_contrast_grey
    if snr < p.k_sigma or peak < min_contrast:
        return None
    return t_lo, t_hi, coeffs, snr, width_px, peak


def _longest_run(flags: np.ndarray) -> int:
    """Length of the longest run of True in a 1-D bool array."""
    if not flags.any():
        return 0
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


def width_from_profile(profile: np.ndarray, s: np.ndarray, psf_sigma_px: float) -> tuple[float | None, float]:
    """Width (px) of a bar from its blurred across-profile: (width, peak) or (None, peak).

    A bar of width w and contrast c blurred by a Gaussian of sigma has area c * w and peak
    c * erf(w / (2 sqrt(2) sigma)); their ratio depends on w alone and is solved for it.
    profile: samples at offsets `s` (px, uniform step) with the background level at 0.
    """
    step = float(s[1] - s[0])
    peak_i = int(np.argmax(profile))
    peak = float(profile[peak_i])
    if peak <= 0:
        return None, peak
    # integrate the contiguous positive lobe around the peak
    lo = peak_i
    while lo > 0 and profile[lo - 1] > 0:
        lo -= 1
    hi = peak_i
    while hi < len(profile) - 1 and profile[hi + 1] > 0:
        hi += 1
    area = float(profile[lo : hi + 1].sum() * step)
    ratio = area / peak
    ratios = _bar_ratios(max(psf_sigma_px, 0.3))
    if ratio < 0.85 * ratios[0]:
        return None, peak  # narrower than the optics can draw a line: noise, not a bar
    return float(np.interp(ratio, ratios, _BAR_WIDTHS_PX)), peak


_BAR_WIDTHS_PX = np.linspace(0.05, 60.0, 1200)
_erf = np.frompyfunc(math.erf, 1, 1)


@lru_cache(maxsize=8)
def _bar_ratios(sigma_px: float) -> np.ndarray:
    """Area over peak of a bar of each of `_BAR_WIDTHS_PX` blurred by a Gaussian of `sigma_px`
    (an image's lines share one blur, hence one table)."""
    return _BAR_WIDTHS_PX / _erf(_BAR_WIDTHS_PX / (2 * math.sqrt(2) * sigma_px)).astype(np.float64)


# 1-D running filters with the edge sample repeated beyond the ends (as scipy.ndimage's
# mode="nearest", without importing it: a worker process starts 0.2 s sooner)


def _running_median(values: np.ndarray, size: int) -> np.ndarray:
    """Median of each `size` samples about each sample (for an even size, the upper median)."""
    before = size // 2
    padded = _pad_edge(values, before, size - 1 - before)
    windows = as_strided(padded, (values.size, size), (padded.strides[0],) * 2, writeable=False)
    return np.partition(windows, before, axis=1)[:, before]


def _running_mean(values: np.ndarray, size: int) -> np.ndarray:
    """Mean of each `size` samples about each sample, in the values' dtype."""
    before = size // 2
    padded = _pad_edge(values.astype(np.float64), before, size - 1 - before)
    cumulative = np.concatenate([[0.0], np.cumsum(padded)])
    return ((cumulative[size:] - cumulative[:-size]) / size).astype(values.dtype)


def _pad_edge(values: np.ndarray, before: int, after: int) -> np.ndarray:
    """np.pad(values, (before, after), mode="edge") of a 1-D array, without its overhead."""
    return np.concatenate((values[:1].repeat(before), values, values[-1:].repeat(after)))
