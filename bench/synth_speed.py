"""How fast the synthetic generator writes data sets: images per second on one core.

Run from the repository root:
    python -m bench.synth_speed [--n 50] [--seed 0] [--out bench/results/synth_speed.json]

Times `write_dataset` end to end (scene planning, rendering, JPEG and PNG encoding, truth JSON)
for 1152x864-class default sets, with OpenCV limited to one thread. A warm-up of a few images
runs first and is reported separately.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

from defectscope.synth import write_dataset

_ROOT = Path(__file__).resolve().parent.parent


def _git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, cwd=_ROOT
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src/defectscope/synth"],
            capture_output=True,
            text=True,
            cwd=_ROOT,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="images to time (default 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/synth_speed.json"))
    args = parser.parse_args(argv)

    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_dataset(Path(tmp) / "warmup", n=args.warmup, seed=args.seed + 1)
        warmup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        write_dataset(Path(tmp) / "timed", n=args.n, seed=args.seed)
        elapsed_s = time.perf_counter() - t0
        n_bytes = sum(p.stat().st_size for p in (Path(tmp) / "timed").iterdir())
    result = {
        "bench": "synth_speed",
        "command": shlex.join(["python", "-m", "bench.synth_speed", *(argv or sys.argv[1:])]),
        "git_sha": _git_sha(),
        "machine": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "opencv_threads": cv2.getNumThreads(),
        "n_images": args.n,
        "seed": args.seed,
        "elapsed_s": round(elapsed_s, 3),
        "images_per_s": round(args.n / elapsed_s, 2),
        "ms_per_image": round(1000 * elapsed_s / args.n, 2),
        "warmup_images": args.warmup,
        "warmup_s": round(warmup_s, 3),
        "bytes_written": n_bytes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
