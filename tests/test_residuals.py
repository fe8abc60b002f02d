"""Rank residuals next to the cladding edge: the ferrule's level must not leak onto the fiber."""

import cv2
import numpy as np

from defectscope.detect.base import Window, domain_rank_residuals, rank_residuals
from defectscope.profile import DetectionParams
from defectscope.records import Geometry

SIZE_PX, RADIUS_PX, UM_PER_PX = 240, 90, 0.5
FIBER_GREY, FERRULE_GREY = 100, 180


def _end_face(dig_xy: tuple[int, int] | None = None) -> np.ndarray:
    img = np.full((SIZE_PX, SIZE_PX), FERRULE_GREY, np.uint8)
    cv2.circle(img, (SIZE_PX // 2, SIZE_PX // 2), RADIUS_PX, FIBER_GREY, -1)
    if dig_xy is not None:
        cv2.circle(img, dig_xy, 2, 60, -1)
    return img


def _residuals(img: np.ndarray, window_px: int = 21, domain="both"):
    geometry = Geometry(
        center_xy=(SIZE_PX / 2, SIZE_PX / 2), cladding_radius_px=RADIUS_PX, um_per_px=UM_PER_PX
    )
    window = Window(0, 0, SIZE_PX, SIZE_PX)
    return domain_rank_residuals(
        img, window_px=window_px, geometry=geometry, window=window, params=DetectionParams(), domain=domain
    )


def _fiber_rim(inner_px: float, outer_px: float) -> np.ndarray:
    ys, xs = np.mgrid[:SIZE_PX, :SIZE_PX]
    r = np.hypot(xs - SIZE_PX / 2, ys - SIZE_PX / 2)
    return (r >= inner_px) & (r < outer_px)


def test_the_gap_between_a_bright_scratch_and_the_bright_ferrule_is_not_a_dark_defect():
    img = _end_face()
    centre, line_end_x = SIZE_PX // 2, SIZE_PX // 2 + RADIUS_PX - 18  # stops 18 px short of the edge
    cv2.line(img, (centre, centre), (line_end_x, centre), 150, 3)
    guard_x = SIZE_PX // 2 + RADIUS_PX - int(5 / UM_PER_PX)  # where the 5 um edge guard begins
    gap = (slice(centre - 1, centre + 2), slice(line_end_x + 3, guard_x))
    plain_dark, _ = rank_residuals(img, window_px=21)
    dark, bright = _residuals(img)
    assert plain_dark[gap].min() >= 40  # what this guards against: a closing bridges line and ferrule
    assert dark[gap].max() <= 2
    assert bright[centre, centre + 20 : line_end_x - 2].min() >= 40  # the scratch itself is kept


def test_a_dig_near_the_edge_keeps_its_full_contrast():
    dig_xy = (SIZE_PX // 2 + RADIUS_PX - 16, SIZE_PX // 2)
    dark, _ = _residuals(_end_face(dig_xy))
    assert dark[dig_xy[1], dig_xy[0]] >= FIBER_GREY - 60 - 2
    rest = _fiber_rim(0, RADIUS_PX - 10) & (dark > 0)
    rest[dig_xy[1] - 4 : dig_xy[1] + 5, dig_xy[0] - 4 : dig_xy[0] + 5] = False
    assert not rest.any()


def test_residuals_are_zero_in_the_edge_guard_band():
    dark, bright = _residuals(_end_face())
    band = _fiber_rim(RADIUS_PX - 5 / UM_PER_PX + 1, RADIUS_PX + 3 / UM_PER_PX - 1)
    assert not dark[band].any() and not bright[band].any()


def test_a_window_off_the_fiber_gets_plain_residuals():
    """A window that holds none of the fiber (only ferrule) has one domain; nothing to fill."""
    img = np.full((60, 80), FERRULE_GREY, np.uint8)
    cv2.circle(img, (40, 30), 2, 60, -1)
    geometry = Geometry(center_xy=(500.0, 500.0), cladding_radius_px=RADIUS_PX, um_per_px=UM_PER_PX)
    dark, bright = domain_rank_residuals(
        img, window_px=21, geometry=geometry, window=Window(0, 0, 80, 60), params=DetectionParams()
    )
    plain_dark, plain_bright = rank_residuals(img, window_px=21)
    assert np.array_equal(dark, plain_dark) and np.array_equal(bright, plain_bright)
    assert dark[30, 40] >= FERRULE_GREY - 60 - 2


def test_a_fiber_cut_by_the_window_border_is_filtered_per_domain():
    """Centre near the window's corner: the box about the fiber is clipped, the domains still apart."""
    img = _end_face()
    corner = img[SIZE_PX // 2 - 20 :, SIZE_PX // 2 - 20 :].copy()  # the fiber centre at (20, 20)
    geometry = Geometry(
        center_xy=(SIZE_PX / 2, SIZE_PX / 2), cladding_radius_px=RADIUS_PX, um_per_px=UM_PER_PX
    )
    window = Window(SIZE_PX // 2 - 20, SIZE_PX // 2 - 20, corner.shape[1], corner.shape[0])
    dark, bright = domain_rank_residuals(
        corner, window_px=21, geometry=geometry, window=window, params=DetectionParams()
    )
    assert dark.max() <= 2 and bright.max() <= 2  # a clean step edge leaves nothing on either side


def test_fiber_and_ferrule_computed_apart_add_up_to_both_domains_at_once():
    """The region detector and the scratch follower compute the two domains separately (the
    ferrule at another scale, or only when needed): apart, they are what one call gives."""
    img = _end_face((SIZE_PX // 2 + RADIUS_PX - 16, SIZE_PX // 2))
    cv2.circle(img, (SIZE_PX // 2 + RADIUS_PX + 20, SIZE_PX // 2 + 10), 3, 60, -1)  # a dig on the ferrule
    both = _residuals(img)
    fiber, ferrule = _residuals(img, domain="fiber"), _residuals(img, domain="ferrule")
    assert fiber[0].max() >= 40 and ferrule[0].max() >= 40  # each holds its dig
    for whole, inside, outside in zip(both, fiber, ferrule):
        assert not (inside.astype(bool) & outside.astype(bool)).any()  # the domains do not overlap
        assert np.array_equal(whole, cv2.add(inside, outside))
