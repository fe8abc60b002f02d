"""Write a synthetic data set: JPEG images, label masks and truth files, reproducible from a seed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from ..profile import Profile, load_profile
from ..records import Status
from .plan import DEGRADATIONS, PASS_FRACTION, random_scene
from .render import render_scene, shipped_profiles

__all__ = ["write_dataset", "image_seed", "planned_target", "planned_degradation"]

_BLOCK = 5  # every block of 5 consecutive images holds exactly round(5 * PASS_FRACTION) PASS scenes


def image_seed(seed: int, index: int) -> int:
    """The seed of image `index` of the data set drawn with `seed` (independent of the set's size)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint32)[0] & 0x7FFFFFFF)


def planned_target(seed: int, index: int) -> Status:
    """PASS or FAIL for image `index`: exactly 2 PASS in every block of 5, at positions drawn from `seed`."""
    block = index // _BLOCK
    order = np.random.default_rng([int(seed), block, 0xB10C]).permutation(_BLOCK)
    n_pass = round(_BLOCK * PASS_FRACTION)
    return Status.PASS if order[index % _BLOCK] < n_pass else Status.FAIL


def planned_degradation(seed: int, index: int):
    """The degradation of image `index` in a degraded set: each kind once per block of len(DEGRADATIONS)."""
    n = len(DEGRADATIONS)
    order = np.random.default_rng([int(seed), index // n, 0xDE6]).permutation(n)
    return DEGRADATIONS[int(order[index % n])]


def write_dataset(
    out_dir: str | Path,
    *,
    n: int,
    seed: int,
    profile: str | Profile = "iec-sm-upc",
    style: Literal["bright-ferrule", "dark-ferrule", "mixed"] = "mixed",
    degraded: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Write `n` synthetic end faces to `out_dir` and return the paths of their truth files.

    Each image i gives ``<stem>.jpg`` (JPEG quality 80-95), ``<stem>.mask.png`` (uint8 defect
    labels) and ``<stem>.truth.json``, where stem is ``synth-s<seed>-<i:05d>`` (``degraded-...``
    with `degraded`). Scenes are planned against `profile`: about 40 % PASS under it (exactly 2
    in every 5 consecutive images). With `degraded`, only uninspectable frames are written
    (each kind once per 6 images), all expected UNDETERMINED.
    The same arguments give byte-identical files; image i depends only on (seed, i).
    progress: called as progress(done, n) after each image.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    profiles = shipped_profiles()
    if prof.name not in {p.name for p in profiles}:
        profiles.append(prof)
    prefix = "degraded" if degraded else "synth"
    written: list[Path] = []
    for i in range(n):
        s = image_seed(seed, i)
        if degraded:
            scene = random_scene(s, prof, style=style, degraded=planned_degradation(seed, i))
        else:
            scene = random_scene(s, prof, style=style, target=planned_target(seed, i))
        stem = f"{prefix}-s{seed}-{i:05d}"
        image = render_scene(scene, profiles=profiles, name=stem)
        (out / image.truth.image).write_bytes(image.encoded)
        ok, png = cv2.imencode(".png", image.mask)
        if not ok:
            raise RuntimeError("OpenCV could not encode the mask PNG")  # pragma: no cover
        (out / image.truth.mask).write_bytes(png.tobytes())
        truth_path = out / f"{stem}.truth.json"
        truth_path.write_text(image.truth.to_json() + "\n", encoding="utf-8")
        written.append(truth_path)
        if progress is not None:
            progress(i + 1, n)
    return written
