"""Real images: does every one get geometry (or UNDETERMINED with a true reason), and how do the
verdicts agree with the third-party labels?

    python -m bench.realdata [--data ../shared/data/fiber-real] [--out bench/results/realdata.json]
                             [--overlays DIR]

Each folder of ../shared/data/fiber-real is inspected with the profile its fibers need (the
dimension-scope and endface fibers are multimode; the 91 um-core fibers have a 140 um cladding),
byte-identical duplicates counted once. The dark-field scratch crops show no cladding edge, so
UNDETERMINED ("no circular cladding edge") is the right answer for them. Labels: only the 11
images labelled "clean" exist; a clean image must not FAIL.
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter
from pathlib import Path

import cv2

from bench import RESULTS_DIR, add_data_option, header, unique_images, write_result

# folder -> (profile, cladding diameter override, what a correct outcome is)
PLAN = {
    "dimension-scope-50um": ("iec-mm-pc", None, "geometry"),
    "dimension-scope-91um": ("iec-mm-pc", 140.0, "geometry"),
    "endfaces": ("iec-mm-pc", None, "geometry"),
    "scratch-darkfield": ("iec-mm-pc", None, "undetermined: no cladding edge in view"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_option(parser)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "realdata.json")
    parser.add_argument(
        "--overlays", type=Path, default=None, help="write overlays here (never into the repo)"
    )
    args = parser.parse_args(argv)

    from defectscope.inspector import Inspector
    from defectscope.report import write_overlay

    cv2.setNumThreads(1)
    result = header("realdata", argv)
    result["folders"] = {}
    labels = _labels(args.data / "labels_thirdparty.csv")
    verdict_by_file: dict[str, str] = {}
    t0 = time.perf_counter()
    for folder, (profile, cladding_um, expected) in PLAN.items():
        paths, duplicates = unique_images(args.data, [folder])
        inspector = Inspector.from_profile(profile, cladding_um=cladding_um)
        statuses, reasons, radii, aspects = Counter(), Counter(), [], Counter()
        for path in paths:
            inspection = inspector.run(path)
            report = inspection.report
            statuses[report.verdict.status.value] += 1
            verdict_by_file[f"fiber-real/{folder}/{path.name}"] = report.verdict.status.value
            if report.geometry is not None:
                radii.append(report.geometry.cladding_radius_px)
                aspects[round(report.geometry.pixel_aspect, 2)] += 1
            else:
                reasons[_reason_kind(report.verdict.reasons)] += 1
            if args.overlays is not None and inspection.frame is not None:
                args.overlays.mkdir(parents=True, exist_ok=True)
                write_overlay(inspection.frame, report, args.overlays / f"{folder}__{path.stem}.overlay.png")
        n = len(paths)
        result["folders"][folder] = {
            "profile": profile,
            "cladding_um": cladding_um,
            "expected": expected,
            "n_unique": n,
            "n_duplicates_skipped": len(duplicates),
            "with_geometry": len(radii),
            "geometry_rate": round(len(radii) / n, 4) if n else None,
            "cladding_radius_px": {"min": round(min(radii), 1), "max": round(max(radii), 1)}
            if radii
            else None,
            "pixel_aspect": dict(aspects),
            "verdicts": dict(statuses),
            "no_geometry_reasons": dict(reasons),
        }
    result["labels"] = _label_agreement(labels, verdict_by_file)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    write_result(args.out, result)
    _print(result)
    return 0


def _labels(csv_path: Path) -> dict[str, str]:
    if not csv_path.is_file():
        return {}
    with csv_path.open(newline="", encoding="utf-8") as f:
        return {row["file"]: row["label"] for row in csv.DictReader(f)}


def _label_agreement(labels: dict[str, str], verdicts: dict[str, str]) -> dict:
    """Per label, the verdicts of the labelled images that were inspected (duplicates once)."""
    out: dict[str, dict] = {}
    for file, label in labels.items():
        status = verdicts.get(file)
        if status is None:
            continue  # a byte-identical duplicate of an inspected file, or a folder not in the plan
        entry = out.setdefault(label, {"n": 0, "verdicts": Counter(), "files": {}})
        entry["n"] += 1
        entry["verdicts"][status] += 1
        entry["files"][file] = status
    for entry in out.values():
        entry["verdicts"] = dict(entry["verdicts"])
    return out


def _reason_kind(reasons: tuple[str, ...]) -> str:
    text = " ".join(reasons)
    for key in ("exposure", "no circular cladding edge", "found in only", "not circular", "ellipse"):
        if key in text:
            return key
    return text[:60]


def _print(result: dict) -> None:
    print("realdata  (unique images per folder)")
    for folder, r in result["folders"].items():
        print(
            f"  {folder:22s} {r['n_unique']:3d} images  geometry {r['with_geometry']:3d}"
            f"  verdicts {r['verdicts']}"
            f"  no-geometry reasons {r['no_geometry_reasons']}"
        )
    for label, r in result["labels"].items():
        print(f"  label {label!r}: {r['n']} images -> {r['verdicts']}")
    print(f"  ({result['seconds']} s)")


if __name__ == "__main__":
    raise SystemExit(main())
