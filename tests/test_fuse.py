"""Fusion rules on hand-built candidate maps: what several detectors saw becomes one defect each."""

import cv2
import numpy as np
import pytest

from defectscope.detect.fuse import _candidates, fuse
from defectscope.records import CandidateMap, DefectKind

SIZE_PX = 200


def _map(
    detector: str, shapes: list[tuple[DefectKind, np.ndarray, np.ndarray | None, float]]
) -> CandidateMap:
    """One detector's map from (kind, mask, centre line, width px) tuples over a 200 px frame."""
    labels = np.zeros((SIZE_PX, SIZE_PX), np.int32)
    for i, (_, mask, _, _) in enumerate(shapes, start=1):
        labels[mask] = i
    n = len(shapes)
    return CandidateMap(
        detector,
        (0, 0),
        labels,
        tuple(s[0] for s in shapes),
        np.full(n, 0.9, np.float32),
        np.full(n, -30.0, np.float32),
        np.array([s[3] for s in shapes], np.float32),
        tuple(None if s[2] is None else s[2].astype(np.float32) for s in shapes),
    )


def _line(x0: float, y0: float, x1: float, y1: float, width_px: int = 2):
    mask = np.zeros((SIZE_PX, SIZE_PX), np.uint8)
    cv2.line(mask, (int(x0), int(y0)), (int(x1), int(y1)), 1, width_px)
    return DefectKind.SCRATCH, mask > 0, np.array([[x0, y0], [x1, y1]]), float(width_px)


def _disc(x: int, y: int, r: int, kind: DefectKind = DefectKind.PARTICLE):
    mask = np.zeros((SIZE_PX, SIZE_PX), np.uint8)
    cv2.circle(mask, (x, y), r, 1, -1)
    return kind, mask > 0, None, float("nan")


def _fuse(*maps: CandidateMap, **kw):
    args = {"min_scratch_length_px": 16.0, "merge_gap_px": 3.0, "scratch_join_gap_px": 60.0} | kw
    return fuse(maps, **args)


def test_two_pieces_of_one_scratch_split_by_a_gap_become_one_scratch_with_the_wider_width():
    pieces = _map("scratch.linear", [_line(20, 100, 80, 100, 2), _line(110, 101, 180, 101, 3)])
    (scratch,) = _fuse(pieces)
    assert scratch.kind == DefectKind.SCRATCH
    assert scratch.width_px == 3.0
    xs = scratch.polyline_xy[:, 0]
    assert xs.min() == 20 and xs.max() == 180 and np.all(np.diff(xs) >= 0)  # ordered along the line
    assert scratch.area == pieces.labels.astype(bool).sum()


def test_a_followed_scratch_joined_with_a_thin_region_keeps_the_width_measured_across_its_line():
    # the line detector measures width across the line, corrected for blur; a long thin region
    # (rule 5) reads its width from pixel counts on a blurred, possibly coarser map
    followed = _map("scratch.linear", [_line(20, 100, 80, 100, 2)])
    region = _map("region.rank", [(DefectKind.PARTICLE, _line(110, 101, 180, 101, 4)[1], None, float("nan"))])
    (scratch,) = _fuse(followed, region)
    assert scratch.kind == DefectKind.SCRATCH and scratch.width_px == 2.0
    assert set(scratch.sources) == {"scratch.linear", "region.rank"}


def test_scratch_pieces_further_apart_than_the_join_gap_stay_two_scratches():
    pieces = _map("scratch.linear", [_line(10, 100, 50, 100), _line(150, 100, 190, 100)])
    assert len(_fuse(pieces, scratch_join_gap_px=60.0)) == 2


def test_crossing_and_parallel_scratches_are_not_joined():
    crossing = _map("scratch.linear", [_line(20, 100, 180, 100), _line(100, 20, 100, 90)])
    parallel = _map("scratch.linear", [_line(20, 100, 90, 100), _line(110, 130, 180, 130)])
    assert len(_fuse(crossing)) == 2
    assert len(_fuse(parallel)) == 2


def test_a_blob_lying_along_a_scratch_is_its_halo_and_is_dropped():
    scratch = _map("scratch.linear", [_line(20, 100, 180, 100, 2)])
    halo = np.zeros((SIZE_PX, SIZE_PX), bool)
    halo[96:105, 70:110] = True  # the blob detector's coarse view of part of the line
    blob = _map("blob.median", [(DefectKind.OIL, halo, None, float("nan"))])
    (only,) = _fuse(scratch, blob)
    assert only.kind == DefectKind.SCRATCH and only.sources == ("scratch.linear",)


def test_a_large_particle_a_short_line_was_found_across_stays_a_particle():
    line = _map("scratch.linear", [_line(80, 100, 120, 100, 4)])  # as long as the particle
    blob = _map("blob.median", [_disc(100, 100, 20, DefectKind.PARTICLE)])
    kinds = [c.kind for c in _fuse(line, blob)]
    assert kinds == [DefectKind.PARTICLE]


def test_a_large_blob_a_scratch_crosses_stays_and_the_scratch_stays():
    scratch = _map("scratch.linear", [_line(10, 100, 190, 100, 2)])
    blob = _map("blob.median", [_disc(100, 60, 30, DefectKind.OIL)])  # clear of the line
    kinds = sorted(c.kind.value for c in _fuse(scratch, blob))
    assert kinds == ["oil", "scratch"]


def test_a_region_joins_a_blob_only_when_half_of_it_lies_inside():
    blob = _map("blob.median", [_disc(100, 100, 20, DefectKind.OIL)])
    inside = _map("region.rank", [_disc(110, 100, 4)])
    touching = _map("region.rank", [_disc(124, 100, 5)])  # mostly outside the blob's rim
    assert len(_fuse(blob, inside)) == 1
    assert len(_fuse(blob, touching)) == 2


def test_a_chip_a_scratch_runs_towards_is_where_it_crosses_the_edge():
    scratch = _map("scratch.linear", [_line(20, 100, 150, 100)])
    chip_on_line = _map("chip.edge", [_disc(170, 100, 4, DefectKind.CHIP)])
    chip_aside = _map("chip.edge", [_disc(170, 140, 4, DefectKind.CHIP)])
    assert [c.kind for c in _fuse(scratch, chip_on_line, edge_reach_px=30.0)] == [DefectKind.SCRATCH]
    assert len(_fuse(scratch, chip_on_line, edge_reach_px=5.0)) == 2  # too far to be its end
    assert len(_fuse(scratch, chip_aside, edge_reach_px=30.0)) == 2


def test_a_chip_with_a_like_particle_just_across_the_edge_guard_is_that_particle():
    chip = _map("chip.edge", [_disc(100, 100, 5, DefectKind.CHIP)])
    outer_part = _map("region.rank", [_disc(100, 114, 4)])  # 5 px gap: the outer guard band
    (particle,) = _fuse(chip, outer_part, edge_guard_px=6.0)
    assert particle.kind == DefectKind.PARTICLE and set(particle.sources) == {"chip.edge", "region.rank"}
    assert particle.area == chip.labels.astype(bool).sum() + outer_part.labels.astype(bool).sum()
    assert len(_fuse(chip, outer_part, edge_guard_px=0.0)) == 2  # too far apart to be one


def test_a_chip_and_an_opposite_polarity_particle_across_the_edge_stay_apart():
    chip = _map("chip.edge", [_disc(100, 100, 5, DefectKind.CHIP)])
    bright = _map("region.rank", [_disc(100, 114, 4)])
    bright = CandidateMap(
        bright.detector, (0, 0), bright.labels, bright.kinds, bright.scores, np.array([40.0], np.float32)
    )
    assert len(_fuse(chip, bright, edge_guard_px=6.0)) == 2


def test_a_thin_region_becomes_a_scratch_as_wide_as_its_middle_not_its_tapered_ends():
    band = np.zeros((SIZE_PX, SIZE_PX), np.uint8)
    # 7 px wide over its middle, its ends cut to points over 40 px each (as by a guard band)
    cv2.fillPoly(band, [np.array([[20, 100], [60, 97], [140, 97], [180, 100], [140, 103], [60, 103]])], 1)
    region = _map("region.rank", [(DefectKind.PARTICLE, band > 0, None, float("nan"))])
    (scratch,) = _fuse(region)
    assert scratch.kind == DefectKind.SCRATCH
    assert scratch.width_px == pytest.approx(7, abs=0.5)
    assert band.sum() / 161 < 6  # what area over length would have said


def _with_contrast(cmap: CandidateMap, contrast_grey: float) -> CandidateMap:
    n = len(cmap)
    return CandidateMap(
        cmap.detector, (0, 0), cmap.labels, cmap.kinds, cmap.scores, np.full(n, contrast_grey, np.float32)
    )


def test_a_faint_rim_of_the_opposite_polarity_around_a_strong_dig_is_part_of_it():
    dig = _with_contrast(_map("region.rank", [_disc(100, 100, 6, DefectKind.DIG)]), -60.0)
    ring = np.zeros((SIZE_PX, SIZE_PX), np.uint8)
    cv2.circle(ring, (100, 100), 8, 1, 2)  # the bright rim just outside it
    rim = _with_contrast(_map("region.rank", [(DefectKind.PARTICLE, ring > 0, None, float("nan"))]), 15.0)
    (only,) = _fuse(dig, rim)
    assert only.kind == DefectKind.DIG and only.area == dig.labels.astype(bool).sum()  # not grown by it


def test_a_bright_particle_beside_a_dark_dig_of_similar_contrast_stays():
    dig = _with_contrast(_map("region.rank", [_disc(100, 100, 6, DefectKind.DIG)]), -40.0)
    particle = _with_contrast(_map("region.rank", [_disc(111, 100, 4)]), 35.0)
    assert len(_fuse(dig, particle)) == 2


def test_a_map_handed_over_as_a_slice_of_a_larger_array_is_read_whole():
    """A detector (a learned one, say) may return a view into a bigger label array, even a
    transposed one."""
    backing = np.zeros((60, 40), np.int32)
    backing[20:30, 10:14] = 1
    labels = backing.T[:, 10:50]  # rows 10-13, columns 10-19 of the map
    one = np.ones(1, np.float32)
    cmap = CandidateMap("test", (5, 7), labels, (DefectKind.DIG,), one, one)
    (cand,) = _candidates(cmap)
    assert (cand.x0, cand.y0, cand.area) == (15, 17, 40)
