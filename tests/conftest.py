"""Shared fixtures: generated end faces (no committed images), written to pytest's temp folders.

Scenes are rendered at about the smallest frame that holds the contact zone (zone D, 250 µm
across: 600 x 600 px at 0.45 µm/px), so the whole suite stays fast. Everything is built from
`defectscope.synth` with exact ground truth.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from defectscope.profile import load_profile
from defectscope.synth import (
    DigSpec,
    Scene,
    SynthImage,
    make_scene,
    random_scene,
    read_truth,
    render_scene,
    shipped_profiles,
    write_dataset,
)

_PROFILES = shipped_profiles()


def write_image(pixels: np.ndarray, path: Path, params: tuple[int, ...] = ()) -> Path:
    """Encode `pixels` by the suffix of `path` (.jpg, .png, .bmp, .tif) and write it."""
    ok, buf = cv2.imencode(path.suffix, pixels, list(params))
    assert ok, f"OpenCV could not encode {path.suffix}"
    path.write_bytes(buf.tobytes())
    return path


def write_scene(scene: Scene, path: Path) -> SynthImage:
    """Render `scene` and write it to `path` (JPEG bytes as rendered when it has a JPEG quality)."""
    image = render_scene(scene, profiles=_PROFILES)
    if image.encoded is not None and path.suffix.lower() in (".jpg", ".jpeg"):
        path.write_bytes(image.encoded)
    else:
        write_image(image.pixels, path)
    return image


@pytest.fixture(scope="session")
def sm_upc():
    return load_profile("iec-sm-upc")


@pytest.fixture(scope="session")
def mm_pc():
    return load_profile("iec-mm-pc")


@pytest.fixture(scope="session")
def clean_scene() -> Scene:
    """A defect-free single-mode end face, bright ferrule, 0.45 µm/px, 600 x 600 px, JPEG 92."""
    return make_scene(
        "iec-sm-upc", um_per_px=0.45, width=600, height=600, center_xy=(303.2, 296.7), jpeg_quality=92, seed=3
    )


@pytest.fixture(scope="session")
def clean_image(clean_scene) -> SynthImage:
    return render_scene(clean_scene, profiles=_PROFILES)


@pytest.fixture(scope="session")
def endface_files(tmp_path_factory, clean_scene):
    """Small folder set for batch/CLI tests, with verdicts known from the truth.

    pass: two clean end faces (two looks); fail: a 10 µm dig in the core (zone A allows none);
    degraded: a defocused end face; corrupt: JPEG signature then garbage.
    """
    folder = tmp_path_factory.mktemp("endfaces")
    files = {}
    files["pass"] = [folder / "clean-bright.jpg", folder / "clean-dark.jpg"]
    write_scene(clean_scene, files["pass"][0])
    write_scene(
        make_scene(
            "iec-sm-upc", style="dark-ferrule", um_per_px=0.5, width=540, height=540, seed=4, jpeg_quality=90
        ),
        files["pass"][1],
    )
    files["fail"] = folder / "dig-in-core.jpg"
    dig = DigSpec(center_um=(2.0, -1.5), size_um=10.0, contrast_grey=-50)
    failing = write_scene(
        make_scene(
            "iec-sm-upc", um_per_px=0.45, width=600, height=600, seed=5, jpeg_quality=92, defects=[dig]
        ),
        files["fail"],
    )
    assert failing.truth.expected["iec-sm-upc"].status == "FAIL"
    files["degraded"] = folder / "defocus.png"
    scene = random_scene(11, "iec-sm-upc", degraded="defocus")
    write_image(render_scene(scene, profiles=_PROFILES).pixels, files["degraded"])
    files["corrupt"] = folder / "corrupt.jpg"
    files["corrupt"].write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)
    files["folder"] = folder
    return files


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory):
    """`write_dataset(n=4, seed=1)`: (folder, truths) -- JPEGs of random looks with their truth files."""
    folder = tmp_path_factory.mktemp("synth-set")
    paths = write_dataset(folder, n=4, seed=1)
    return folder, [read_truth(p) for p in paths]
