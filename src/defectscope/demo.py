"""`make demo`: generate a few synthetic end faces, inspect them, say where the results are.

Needs nothing but the package: the images are drawn by `defectscope.synth` (so the demo
also works on a machine without any sample data), then inspected exactly as
`defectscope inspect` does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .batch import BatchOptions, collect_images, exit_code, inspect_batch
from .profile import load_profile
from .report import summary_line, write_csv
from .synth import write_dataset


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m defectscope.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("demo-out"), help="folder for images and results")
    parser.add_argument("--n", type=int, default=8, help="number of end faces to generate")
    parser.add_argument("--profile", default="iec-sm-upc")
    args = parser.parse_args(argv)

    images, results = args.out / "images", args.out / "results"
    images.mkdir(parents=True, exist_ok=True)
    results.mkdir(parents=True, exist_ok=True)
    write_dataset(images, n=args.n, seed=7, profile=args.profile)
    write_dataset(images, n=1, seed=7, profile=args.profile, degraded=True)  # one that must not PASS
    profile = load_profile(args.profile)
    reports = inspect_batch(collect_images([images]), BatchOptions(profile=profile, out_dir=results))
    write_csv(reports, results / "summary.csv")
    for report in reports:
        print(summary_line(report))
    print(f"\nimages (with ground truth *.truth.json): {images.resolve()}")
    print(f"results (reports *.json, overlays *.overlay.png, summary.csv): {results.resolve()}")
    print(f"score them against the truth: defectscope evaluate --truth {images} --reports {results}")
    return exit_code(reports)


if __name__ == "__main__":
    main()
    sys.exit(0)  # the demo succeeded even when some parts FAIL: that is what it shows
