"""defectscope: fast, explainable visual inspection; fiber end faces by IEC 61300-3-35.

from defectscope import Inspector
report = Inspector.from_profile("iec-sm-upc").inspect("endface.png")
print(report.verdict.status, report.verdict.reasons)
"""

import os

# Decoders refuse frames beyond this many pixels (decompression bombs); read before cv2 loads.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(64_000_000))

__version__ = "0.1.0"

__all__ = ["Inspector", "__version__"]


def __getattr__(name: str):
    # Lazy, so `import defectscope.records` stays light and the CLI starts fast.
    if name == "Inspector":
        from .inspector import Inspector

        return Inspector
    raise AttributeError(name)
