"""Region defects -- digs, pits, particles -- by min/max-rank residual and a per-zone noise threshold.

1. residuals: how much darker (closing - image) and brighter (image - opening) each pixel is
   than its surroundings within `window_um`; step edges and smooth shading leave none;
2. threshold per zone in robust noise units (median + k * 1.4826 MAD of the residual in
   that zone, with a noise floor and an absolute contrast floor), with hysteresis: seeds at
   `k_sigma`, grown to `k_sigma_low`;
3. each region is cut at half its own peak residual, so its size does not depend on the
   threshold or the contrast (a blurred 5 um pit measures ~5 um, not 5 um plus its blur tail).

The fiber is searched at full resolution and the ferrule apart, at half resolution where the
profile's limits there allow (`RegionDetector.ferrule_smallest_um`). A clean end face gives no
seeds: nothing depends on percentiles of the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..numeric import median, percentile
from ..profile import DetectionParams
from ..records import CandidateMap, DefectKind, Frame, Geometry
from .base import (
    CORE_GUARD,
    GUARD,
    OUTSIDE,
    Window,
    concentric_ring,
    detection_radius_px,
    domain_rank_residuals,
    fiber_guards,
    inspection_window,
    window_about,
    within_radii,
    zone_label_map,
    zone_noise,
)

__all__ = ["RegionDetector"]

_MAX_REGIONS = 400  # a frame this dirty is judged on what was found; more adds time, not information


@dataclass
class _Found:
    """Regions found so far: a label map of the detector's window and per-region lists."""

    labels: np.ndarray
    kinds: list[DefectKind] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    contrasts: list[float] = field(default_factory=list)


# a coarser ferrule pass keeps this many of its pixels across the smallest defect judged there
_PX_ACROSS_SMALLEST = 8


class RegionDetector:
    """ferrule_smallest_um: the smallest defect that can change a verdict beyond the cladding
    edge (IEC: 10 um in zone D); the ferrule is searched at half resolution where that still
    puts `_PX_ACROSS_SMALLEST` half-resolution pixels across it, else at full resolution."""

    name = "region.rank"

    def __init__(self, params: DetectionParams, *, ferrule_smallest_um: float = 0.0):
        self.params = params.region
        self.detection = params
        self.ferrule_smallest_um = ferrule_smallest_um

    def __call__(self, frame: Frame, geometry: Geometry) -> CandidateMap:
        # features wider than the rank window are the blob detector's, so looking one window
        # beyond the last zone is enough to measure straddlers whole
        p = self.params
        um = geometry.um_per_px
        window_px = max(5, int(round(p.window_um / um)))
        win = inspection_window(
            geometry, frame.pixels.shape, self.detection, margin_px=window_px // 2 + 2, margin_um=p.window_um
        )
        found = _Found(np.zeros((win.h, win.w), np.int32))
        guards = fiber_guards(geometry, self.detection)
        min_area_px = max(1, int(np.pi * (0.5 * p.min_size_um / um) ** 2))
        # the fiber at full resolution: its zones hold the tight limits (zone B: 2-5 um)
        fiber_px = geometry.cladding_radius_px - self.detection.edge_guard_inner_um / um
        fiber_win = window_about(geometry.center_xy, fiber_px + window_px + 2, frame.pixels.shape)
        roi = cv2.GaussianBlur(fiber_win.crop(frame.pixels), (3, 3), 0)
        # (the 3x3 blur is matched to the optics' blur and halves the noise)
        labels = within_radii(
            self._labels(geometry, fiber_win, guards), fiber_win, geometry.center_xy, outer_px=fiber_px
        )
        residuals = domain_rank_residuals(
            roi,
            window_px=window_px,
            geometry=geometry,
            window=fiber_win,
            params=self.detection,
            domain="fiber",
        )
        offset = (fiber_win.y0 - win.y0, fiber_win.x0 - win.x0)
        centre = fiber_win.local_xy(geometry.center_xy)
        self._collect(found, roi, residuals, labels, geometry, centre, 1, offset, min_area_px)
        self._ferrule_pass(found, frame, geometry, win, guards, window_px, min_area_px)
        return CandidateMap(
            self.name,
            (win.x0, win.y0),
            found.labels,
            tuple(found.kinds),
            np.array(found.scores, np.float32),
            np.array(found.contrasts, np.float32),
        )

    def _ferrule_pass(
        self, found: _Found, frame: Frame, geometry: Geometry, win: Window, guards, window_px, min_area_px
    ):
        """Regions beyond the cladding's outer guard band, at half resolution where the profile's
        ferrule limits allow (area-averaged, which also smooths it). A closing there must not reach
        across the cladding edge either: it would fill the gap between a bright defect and the
        bright side of the edge."""
        um = geometry.um_per_px
        factor = 2 if self.ferrule_smallest_um / (2 * um) >= _PX_ACROSS_SMALLEST else 1
        even = win.whole_cells(factor)
        crop = win.crop(frame.pixels)[: even.h, : even.w]
        if factor == 1:
            pixels = cv2.GaussianBlur(crop, (3, 3), 0)
        else:
            pixels = cv2.resize(crop, (even.w // factor, even.h // factor), interpolation=cv2.INTER_AREA)
        outer_guard_px = geometry.cladding_radius_px + self.detection.edge_guard_outer_um / um
        if len(guards) > 1:
            # the core's guard band and rim band lie inside the radius cleared below (by 2 pixels
            # of this scale or more, for the rasteriser's rounding): not drawn (~50 us)
            (core_x, core_y), core_r, _, core_outward = guards[1]
            off_centre = float(np.hypot(core_x - geometry.center_xy[0], core_y - geometry.center_xy[1]))
            if off_centre + core_r + core_outward + 2 * factor < outer_guard_px:
                guards = guards[:1]
        labels = within_radii(
            self._labels(geometry, even, guards, scale=1 / factor),
            even,
            geometry.center_xy,
            inner_px=outer_guard_px,
            scale=1 / factor,
        )
        residuals = domain_rank_residuals(
            pixels,
            window_px=window_px // factor,
            geometry=geometry,
            window=even,
            params=self.detection,
            scale=1 / factor,
            domain="ferrule",
        )
        centre = even.scaled_xy(geometry.center_xy, 1 / factor)
        self._collect(
            found,
            pixels,
            residuals,
            labels,
            geometry,
            centre,
            factor,
            (0, 0),
            max(1, min_area_px // factor**2),
        )

    def _labels(self, geometry: Geometry, window: Window, guards, *, scale: float = 1.0) -> np.ndarray:
        """Zone labels of `window` at `scale`, the core's rim band and guard band apart."""
        n_zones = len(geometry.zones)
        return zone_label_map(
            geometry,
            window,
            guards=guards,
            outer_radius_px=detection_radius_px(geometry, self.detection, margin_um=self.params.window_um),
            core_rim_label=n_zones + 1,
            core_guard_label=CORE_GUARD,
            scale=scale,
        )

    def _collect(
        self,
        found: _Found,
        pixels,
        residuals,
        labels,
        geometry: Geometry,
        centre,
        factor: int,
        offset,
        min_area_px,
    ):
        """Threshold and grow regions in (dark, bright) `residuals` of `pixels` (`factor` times
        coarser than the frame, the fiber centre at `centre` in their coordinates), adding them
        to `found` at `offset` (rows, cols of `found.labels`)."""
        p = self.params
        n_bands = len(geometry.zones) + 1  # the zones and the core's rim band each get their own noise
        sliver_px = p.min_sliver_length_px(geometry) / factor
        judged = cv2.inRange(labels, 1, n_bands)  # the labels a seed may lie on
        for polarity, residual in zip(("dark", "bright"), residuals):
            seeds, low = self._thresholds(residual, labels, n_bands, judged)
            if seeds is None:
                continue
            for box, mask, peak, score in _regions(residual, seeds, labels, low, min_area_px):
                pixels_xy = _pixels_xy(mask)
                if _sliver(pixels_xy, sliver_px) or concentric_ring(
                    mask, (box[1].start, box[0].start), centre
                ):
                    continue
                if polarity == "dark" and not _enclosed(pixels[box], mask, labels[box], peak):
                    continue
                rows = slice(offset[0] + box[0].start * factor, offset[0] + box[0].stop * factor)
                cols = slice(offset[1] + box[1].start * factor, offset[1] + box[1].stop * factor)
                if factor > 1:
                    mask = mask.repeat(factor, axis=0).repeat(factor, axis=1)
                target = found.labels[rows, cols]
                mask = mask[: target.shape[0], : target.shape[1]]
                fresh = mask & (target == 0)  # where a dark and a bright region overlap, the first keeps it
                if not fresh.any():
                    continue
                found.kinds.append(
                    DefectKind.DIG
                    if polarity == "dark" and _is_round(_pixels_xy(fresh))
                    else DefectKind.PARTICLE
                )
                target[fresh] = len(found.kinds)
                found.scores.append(score)
                found.contrasts.append(-peak if polarity == "dark" else peak)
                if len(found.kinds) >= _MAX_REGIONS:
                    return

    def _thresholds(self, residual: np.ndarray, labels: np.ndarray, n_zones: int, judged: np.ndarray):
        """Seed mask (uint8 0/255; None when no pixel passes) and the growth threshold per label
        (uint8 (256,); None with no seed), from each band's noise. judged: uint8 mask of the
        pixels labelled 1 .. n_zones, the only ones a seed may lie on."""
        p = self.params
        # no seed threshold is below the contrast floor (as uint8, truncated like `hi` below): a
        # residual that stays under it there (half the polarity passes on real frames) needs no
        # noise estimate
        top = cv2.minMaxLoc(residual, mask=judged)[1]
        if top <= int(min(max(p.min_contrast_grey, 0), 255)):  # np.clip: ~10 us on a scalar
            return None, None
        level, spread = zone_noise(residual, labels, n_zones)
        noise = np.maximum(spread, p.noise_floor_grey)
        hi = np.full(256, 255, np.uint8)  # OUTSIDE and GUARD (and unused labels) never pass
        lo = np.full(256, 255, np.uint8)
        hi[1 : n_zones + 1] = np.clip(np.maximum(level + p.k_sigma * noise, p.min_contrast_grey), 0, 255)[1:]
        lo[1 : n_zones + 1] = np.clip(level + p.k_sigma_low * noise, 0, 255)[1:]
        # a defect straddling the core's edge grows into its (flattened) guard band, so it is
        # measured whole; nothing starts there
        lo[CORE_GUARD] = lo[1 : n_zones + 1].max()
        if top <= hi.min():  # no per-pixel threshold map is needed
            return None, None
        return cv2.compare(residual, cv2.LUT(labels, hi), cv2.CMP_GT), lo


def _regions(residual: np.ndarray, seeds: np.ndarray, labels: np.ndarray, low: np.ndarray, min_area_px: int):
    """Yield (box, mask in box, peak grey, confidence) per grown region holding a seed, cut at half its peak.

    Regions grow over pixels whose residual exceeds `low` (uint8 (256,) growth threshold per
    label of `labels`). Seeds are labelled once (they are sparse); each is grown within a window
    around it that is doubled until the grown region no longer touches the window's border.
    """
    # seeds are sparse: their outlines are far cheaper to find than a labelling of the window
    contours, _ = cv2.findContours(seeds, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return
    h_img, w_img = residual.shape
    done = np.zeros(residual.shape, bool)
    for contour in contours[:_MAX_REGIONS]:
        x, y, w, h = cv2.boundingRect(contour)
        if done[y : y + h, x : x + w][seeds[y : y + h, x : x + w] > 0].all():
            continue  # grown already from another seed of the same region
        pad = max(8, w, h)
        while True:
            x0, y0 = max(0, x - pad), max(0, y - pad)
            x1, y1 = min(w_img, x + w + pad), min(h_img, y + h + pad)
            box = (slice(y0, y1), slice(x0, x1))
            # the growth mask of this window only: a region's windows cover a small part of the frame
            threshold = cv2.LUT(labels[box], low)
            grow = cv2.compare(residual[box], threshold, cv2.CMP_GT)
            _, comp = cv2.connectedComponents(grow, connectivity=8)
            seed_box = np.zeros(comp.shape, np.uint8)
            cv2.drawContours(seed_box, [contour], -1, 1, thickness=-1, offset=(-x0, -y0))
            ids = _ids_under(comp, cv2.bitwise_and(seed_box, seeds[box]))
            if ids.size == 0:
                break
            own = comp == ids[0] if ids.size == 1 else np.isin(comp, ids)
            touches = own[0].any() or own[-1].any() or own[:, 0].any() or own[:, -1].any()
            if not touches or (x0 == 0 and x1 == w_img) or (y0 == 0 and y1 == h_img):
                break
            pad *= 2
        if ids.size == 0:
            continue
        done[box] |= own
        res = residual[box]
        values = res[own]
        peak = float(values.max())
        # `own` lies above its growth threshold already: the cut is at half the plateau only
        core = own & (res >= 0.5 * _plateau(values, peak))
        if np.count_nonzero(core) < min_area_px:
            continue
        # confidence: how far the peak stands above the threshold, saturating at 2x
        floor = cv2.minMaxLoc(threshold, mask=own.view(np.uint8))[0]
        yield box, core, peak, min(max(0.5 + 0.5 * (peak - floor) / max(floor, 1.0), 0.5), 1.0)


def _ids_under(comp: np.ndarray, under: np.ndarray) -> np.ndarray:
    """The component labels (ascending, 0 left out) of `comp` (int32) where uint8 `under` is
    nonzero: the components under a seed (its outline filled, nested seeds too). Most seeds lie
    in one component, which the lowest and highest label under them tell without a histogram."""
    first, last = cv2.minMaxLoc(comp, mask=under)[:2]  # (0, 0) with nothing under
    if first == last:
        return np.array([int(first)] if first > 0 else [], np.int64)
    ids = np.flatnonzero(np.bincount(comp[under > 0]))
    return ids[ids > 0]


def _enclosed(pixels: np.ndarray, mask: np.ndarray, labels: np.ndarray, peak: float) -> bool:
    """Whether a dark region is darker than what surrounds it, as a pit or dirt is.

    A closing bridges the gap between two bright features closer than its window (a bright
    scratch or pit and a bright multimode core): the gap then reads as dark, though it is darker
    than those two only and lies at the level of the rest of its surroundings. Judged on the
    ring of pixels 2 px out, where the region's own blur has faded, over inspected pixels only
    (not guard bands): not enclosed when half of that ring or more lies within 10 % of its
    contrast (2 grey at least) of its own median level. Too little ring to judge: kept."""
    region = mask.view(np.uint8)  # 0/1
    near = cv2.dilate(region, _RING_KERNEL)
    # the ring: 2 px out (a 5x5 dilation is two 3x3 ones), on inspected pixels (a table: 0 on
    # OUTSIDE and the guard bands)
    ring = cv2.bitwise_and(cv2.subtract(cv2.dilate(region, _FAR_KERNEL), near), cv2.LUT(labels, _RING_LABELS))
    n_ring = cv2.countNonZero(ring)
    if n_ring < 8:
        return True
    level = median(pixels[mask])
    level_with_it = pixels[ring.view(bool)].astype(np.float32) - level <= max(2.0, 0.1 * peak)
    return bool(np.count_nonzero(level_with_it) < 0.5 * n_ring)  # under half the ring


_RING_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
_FAR_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5))
_RING_LABELS = np.ones(256, np.uint8)
_RING_LABELS[[OUTSIDE, GUARD, CORE_GUARD]] = 0


def _plateau(values: np.ndarray, peak: float) -> float:
    """The level a region's size is cut at half of: its peak for small regions; for larger ones
    the 90th percentile, since a particle denser or grainier in the middle than at its rim would
    otherwise be cut inside its outline (undersized, the unsafe way)."""
    return peak if values.size < _PLATEAU_MIN_PX else float(percentile(values, 90))


_PLATEAU_MIN_PX = 50


def _pixels_xy(mask: np.ndarray) -> np.ndarray:
    """(n, 2) float32 (x, y) of a bool mask's pixels, row by row (as np.nonzero orders them)."""
    found = cv2.findNonZero(mask.view(np.uint8))
    return np.empty((0, 2), np.float32) if found is None else found.reshape(-1, 2).astype(np.float32)


def _sliver(pixels_xy: np.ndarray, min_line_length_px: float) -> bool:
    """Under two pixels wide, three times longer than that, yet too short to be a scratch: a
    filter artifact along a curved edge, not a defect anyone could size. (A speck two pixels
    round is not a sliver.) pixels_xy: a region's pixels, from `_pixels_xy`."""
    if len(pixels_xy) < 3:
        return False
    (_, _), (w, h), _ = cv2.minAreaRect(pixels_xy)
    length = max(w, h) + 1.0
    width = len(pixels_xy) / length
    return width < 2.0 and length >= 3 * width and length < min_line_length_px


def _is_round(pixels_xy: np.ndarray) -> bool:
    """Compact and convex: a pit. Irregular outlines are read as particles (dirt).
    pixels_xy: a region's pixels, from `_pixels_xy`."""
    area = len(pixels_xy)
    if area < 12:
        return True  # too small to tell; a dark speck this size is most often a pit
    hull = cv2.convexHull(pixels_xy)
    hull_area = max(cv2.contourArea(hull), 1.0)
    (_, _), r = cv2.minEnclosingCircle(pixels_xy)
    fill = area / (np.pi * (r + 0.5) ** 2)
    return area / hull_area >= 0.85 and fill >= 0.6
