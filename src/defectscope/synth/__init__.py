"""Synthetic fiber end faces with exact ground truth.

Build a scene by hand (`make_scene` with `ScratchSpec`, `DigSpec`, `ParticleSpec`, `OilSpec`,
`ChipSpec`; sizes and positions in µm from the fiber centre) or draw one (`random_scene`),
render it (`render_scene` -> `SynthImage` with pixels, label mask and `Truth`), or write a whole
data set (`write_dataset`, behind ``defectscope synth``).
"""

from .dataset import write_dataset
from .plan import DEGRADATIONS, PASS_FRACTION, random_scene
from .render import SynthImage, expected_verdicts, render_scene, shipped_profiles
from .scene import (
    ChipSpec,
    DefectSpec,
    DigSpec,
    Illumination,
    OilSpec,
    ParticleSpec,
    Scene,
    ScratchSpec,
    Style,
    default_illumination,
    make_scene,
)
from .truth import (
    TRUTH_SCHEMA,
    ExpectedVerdict,
    Truth,
    TruthConditions,
    TruthDefect,
    TruthGeometry,
    read_truth,
    zones_touched,
)

__all__ = [
    "Scene",
    "Illumination",
    "Style",
    "ScratchSpec",
    "DigSpec",
    "ParticleSpec",
    "OilSpec",
    "ChipSpec",
    "DefectSpec",
    "make_scene",
    "default_illumination",
    "random_scene",
    "DEGRADATIONS",
    "PASS_FRACTION",
    "render_scene",
    "SynthImage",
    "expected_verdicts",
    "shipped_profiles",
    "write_dataset",
    "TRUTH_SCHEMA",
    "Truth",
    "TruthDefect",
    "TruthGeometry",
    "TruthConditions",
    "ExpectedVerdict",
    "read_truth",
    "zones_touched",
]
