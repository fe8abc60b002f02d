"""Synthetic end faces next to real ones, and a gallery of synthetic ones with their truth outlined.

Run from the repository root:
    python -m bench.side_by_side [--data PATH] [--seed 0] [--picture PATH] [--gallery PATH]
                                 [--out bench/results/side_by_side.json]

Writes two pictures and a JSON record of what is in them:

- side by side (default bench/results/local/side_by_side.png, git-ignored): row 1, four real
  1152x864 dimension-scope captures; row 2, four synthetic dimension-scope frames planned for
  iec-mm-pc (the real ones are 50/91 um-core multimode fibers); row 3, two real 720x576 end faces
  and two synthetic frames of the mid-grey-vignetted and dark-ferrule looks. Real tiles show the
  grey frame the Inspector sees. The real images are licensed for evaluation only: this picture
  is refused anywhere git would not ignore it.
- gallery (default bench/results/synthetic_gallery.png, committed): eight synthetic frames across
  looks and profiles, cropped to the fiber, truth defects outlined by kind.

Real images are chosen with --seed among the sha256-unique files; synthetic scenes are the first
seeds (from fixed bases) whose scene has the wanted look, size and planned verdict.
"""

from __future__ import annotations

import argparse
import subprocess
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from defectscope.imageio import read_frame
from defectscope.profile import load_profile
from defectscope.records import Status
from defectscope.synth import SynthImage, random_scene, render_scene, shipped_profiles

from . import REPO_ROOT, RESULTS_DIR, add_data_option, fail, header, unique_images, write_result

TILE_WH = (384, 288)  # side-by-side tiles: 1152x864 at 1/3
CROP_PX = 340  # gallery tiles: square crops around the fiber
LABEL_PX = 22
GAP_PX = 4
MAX_TRIES = 500
KIND_BGR = {
    "scratch": (40, 40, 255),
    "dig": (0, 150, 255),
    "particle": (0, 230, 255),
    "oil": (255, 200, 0),
    "chip": (255, 0, 255),
    "crack": (0, 255, 0),
    "anomaly": (255, 120, 120),
}


@dataclass(frozen=True)
class Slot:
    """A synthetic frame wanted: its look (Illumination.variant), profile, planned verdict, width."""

    variant: str
    profile: str
    target: Status
    width: int | None = None


SIDE_BY_SIDE_SYNTH = (
    Slot("dimension-scope", "iec-mm-pc", Status.PASS, 1152),
    Slot("dimension-scope", "iec-mm-pc", Status.FAIL, 1152),
    Slot("dimension-scope", "iec-mm-pc", Status.FAIL, 1152),
    Slot("dimension-scope", "iec-mm-pc", Status.PASS, 1152),
)
SIDE_BY_SIDE_ENDFACE_SYNTH = (
    Slot("mid-grey-vignetted", "iec-sm-upc", Status.FAIL),
    Slot("dark-ferrule", "iec-sm-upc", Status.FAIL),
)
GALLERY = (
    Slot("dimension-scope", "iec-sm-upc", Status.FAIL),
    Slot("dimension-scope", "iec-mm-pc", Status.FAIL),
    Slot("mid-grey-vignetted", "iec-sm-upc", Status.FAIL),
    Slot("mid-grey-vignetted", "iec-mm-pc", Status.PASS),
    Slot("dark-ferrule", "iec-sm-upc", Status.FAIL),
    Slot("dark-ferrule", "iec-mm-pc", Status.FAIL),
    Slot("dimension-scope", "iec-sm-apc", Status.FAIL),
    Slot("dark-ferrule", "iec-sm-upc", Status.PASS),
)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_option(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed for choosing scenes and real images")
    parser.add_argument(
        "--picture",
        type=Path,
        default=RESULTS_DIR / "local" / "side_by_side.png",
        help="real + synthetic picture, git-ignored (default under bench/results/local/)",
    )
    parser.add_argument(
        "--gallery",
        type=Path,
        default=RESULTS_DIR / "synthetic_gallery.png",
        help="synthetic-only gallery (default bench/results/synthetic_gallery.png)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "side_by_side.json")
    args = parser.parse_args(argv)
    _refuse_committable(args.picture)

    result = header("side_by_side", argv)
    result.update({"seed": args.seed, "gallery": _display(args.gallery), "picture": _display(args.picture)})
    profiles = shipped_profiles()

    gallery = [_synthetic(slot, 10_000 * (i + 1) + args.seed, profiles) for i, slot in enumerate(GALLERY)]
    grid = _grid([_gallery_tile(img) for img in gallery], columns=4)
    _write_png(args.gallery, np.vstack([grid, _legend(grid.shape[1])]))
    result["gallery_frames"] = [_describe(img) for img in gallery]
    print(f"wrote {args.gallery}: {len(gallery)} synthetic frames, truth defects outlined")

    rng = np.random.default_rng(args.seed)
    scopes, _ = unique_images(args.data, ("dimension-scope-50um", "dimension-scope-91um"))
    endfaces, _ = unique_images(args.data, ("endfaces",))
    real_scopes = [scopes[i] for i in sorted(rng.choice(len(scopes), 4, replace=False))]
    real_endfaces = [endfaces[i] for i in sorted(rng.choice(len(endfaces), 2, replace=False))]
    synth_scopes = [
        _synthetic(s, 1_000 * (i + 1) + args.seed, profiles) for i, s in enumerate(SIDE_BY_SIDE_SYNTH)
    ]
    synth_ends = [
        _synthetic(s, 5_000 * (i + 1) + args.seed, profiles) for i, s in enumerate(SIDE_BY_SIDE_ENDFACE_SYNTH)
    ]
    tiles = (
        [_real_tile(p) for p in real_scopes]
        + [_synth_tile(img) for img in synth_scopes]
        + [_real_tile(p) for p in real_endfaces]
        + [_synth_tile(img) for img in synth_ends]
    )
    _write_png(args.picture, _grid(tiles, columns=4))
    result["real_images"] = [f"{p.parent.name}/{p.name}" for p in real_scopes + real_endfaces]
    result["synthetic_frames"] = [_describe(img) for img in synth_scopes + synth_ends]
    write_result(args.out, result)
    print(f"wrote {args.picture}: 6 real and 6 synthetic frames (real images: evaluation only, never commit)")
    print(f"wrote {args.out}")
    return result


# --- choosing and rendering ------------------------------------------------------------------------


def _synthetic(slot: Slot, first_seed: int, profiles) -> SynthImage:
    """Render the first scene from `first_seed` on that matches `slot`."""
    profile = load_profile(slot.profile)
    style = "dark-ferrule" if slot.variant == "dark-ferrule" else "bright-ferrule"
    for seed in range(first_seed, first_seed + MAX_TRIES):
        scene = random_scene(seed, profile, style=style, target=slot.target)
        if scene.illumination.variant == slot.variant and slot.width in (None, scene.width):
            return render_scene(scene, profiles=profiles, name=f"synth-{seed}")
    fail(
        f"no scene matching {slot} in seeds {first_seed}..{first_seed + MAX_TRIES - 1}; "
        "has the generator changed its looks?",
        code=1,
    )


def _describe(img: SynthImage) -> dict:
    t = img.truth
    return {
        "seed": t.seed,
        "profile": t.profile,
        "variant": img.scene.illumination.variant,
        "size": [t.width, t.height],
        "expected": t.expected[t.profile].status.value,
        "defects": [d.kind.value for d in t.defects],
    }


# --- drawing ---------------------------------------------------------------------------------------


def _real_tile(path: Path) -> np.ndarray:
    frame = read_frame(path)  # the grey frame the Inspector sees
    return _labelled(_fit(frame.pixels, TILE_WH), f"REAL {path.parent.name}/{path.name}", (80, 220, 80))


def _synth_tile(img: SynthImage) -> np.ndarray:
    text = f"SYNTHETIC {img.scene.illumination.variant} {img.truth.profile} s{img.truth.seed}"
    return _labelled(_fit(img.pixels, TILE_WH), text, (80, 200, 255))


def _gallery_tile(img: SynthImage) -> np.ndarray:
    """A square crop around the fiber (the inspected zones) with each truth defect outlined."""
    t, g = img.truth, img.truth.geometry
    profile = load_profile(t.profile)
    half_px = 1.1 * max(z.outer_um for z in profile.zones) / 2 / g.um_per_px
    half_px = min(half_px, t.height / 2, t.width / 2)
    x0 = int(round(min(max(g.center_xy[0] - half_px, 0), t.width - 2 * half_px)))
    y0 = int(round(min(max(g.center_xy[1] - half_px, 0), t.height - 2 * half_px)))
    side = int(round(2 * half_px))
    scale = CROP_PX / side
    tile = cv2.cvtColor(
        cv2.resize(
            img.pixels[y0 : y0 + side, x0 : x0 + side], (CROP_PX, CROP_PX), interpolation=cv2.INTER_AREA
        ),
        cv2.COLOR_GRAY2BGR,
    )

    def to_tile(xy) -> np.ndarray:
        return np.round((np.asarray(xy, np.float64).reshape(-1, 2) - (x0, y0)) * scale).astype(np.int32)

    for d in t.defects:
        colour = KIND_BGR.get(d.kind.value, (255, 255, 255))
        if d.polyline_xy:
            cv2.polylines(tile, [to_tile(d.polyline_xy)], False, colour, 1, cv2.LINE_AA)
        if len(d.polygon_xy) >= 3:
            cv2.polylines(tile, [to_tile(d.polygon_xy)], True, colour, 1, cv2.LINE_AA)
        if d.kind.value != "scratch" and d.size_um / g.um_per_px * scale < 6:  # too small to see: ring it
            cv2.circle(tile, tuple(int(v) for v in to_tile(d.centroid_xy)[0]), 7, colour, 1, cv2.LINE_AA)
    status = t.expected[t.profile].status.value
    text = f"{img.scene.illumination.variant} {t.profile} {status} s{t.seed}"
    return _labelled(tile, text, (80, 200, 255))


def _legend(width_px: int) -> np.ndarray:
    """A strip naming the outline colour of each defect kind."""
    strip = np.zeros((LABEL_PX + 4, width_px, 3), np.uint8)
    items = [
        ("truth outlines:", (220, 220, 220), 120),
        *((k, c, 90) for k, c in KIND_BGR.items()),
        ("(small ones ringed)", (220, 220, 220), 0),
    ]
    x = 5
    for text, colour, advance_px in items:
        cv2.putText(strip, text, (x, LABEL_PX - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.42, colour, 1, cv2.LINE_AA)
        x += advance_px
    return strip


def _fit(grey: np.ndarray, wh: tuple[int, int]) -> np.ndarray:
    """`grey` scaled to fit (w, h), centred on a dark background, as BGR."""
    w, h = wh
    scale = min(w / grey.shape[1], h / grey.shape[0])
    size = (round(grey.shape[1] * scale), round(grey.shape[0] * scale))
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    out = np.full((h, w), 24, np.uint8)
    y, x = (h - size[1]) // 2, (w - size[0]) // 2
    out[y : y + size[1], x : x + size[0]] = small
    return cv2.cvtColor(out, cv2.COLOR_GRAY2BGR)


def _labelled(tile: np.ndarray, text: str, colour: tuple[int, int, int]) -> np.ndarray:
    strip = np.zeros((LABEL_PX, tile.shape[1], 3), np.uint8)
    cv2.putText(strip, text, (5, LABEL_PX - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.42, colour, 1, cv2.LINE_AA)
    return np.vstack([strip, tile])


def _grid(tiles: list[np.ndarray], *, columns: int) -> np.ndarray:
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    out = np.zeros((rows * h + (rows - 1) * GAP_PX, columns * w + (columns - 1) * GAP_PX, 3), np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        out[r * (h + GAP_PX) : r * (h + GAP_PX) + h, c * (w + GAP_PX) : c * (w + GAP_PX) + w] = tile
    return out


# --- files -----------------------------------------------------------------------------------------


def _refuse_committable(path: Path) -> None:
    """Stop (exit 2) if git would track `path`: the picture holds evaluation-only real images."""
    try:
        done = subprocess.run(
            ["git", "check-ignore", "-q", str(path.resolve())], cwd=REPO_ROOT, capture_output=True
        )
    except OSError:
        return
    if done.returncode == 1:  # inside the repository and not ignored
        fail(
            f"{path}: git would track this file, but the picture contains real images licensed for "
            "evaluation only; write it under bench/results/local/ (git-ignored) instead"
        )


def _write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
        fail(f"{path}: OpenCV could not write the PNG", code=1)


def _display(path: Path) -> str:
    """`path` relative to the repository when inside it (results stay machine-independent)."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    main()
