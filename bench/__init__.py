"""Reproducible benchmarks; each writes JSON under bench/results with the command behind it.

Run a benchmark from the repository root as ``python -m bench.<name>``; see bench/README.md.
The helpers below give every result the same header (command, git sha, machine, start time).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "fiber-real"


def header(name: str, argv: list[str] | None = None) -> dict:
    """The fields every result starts with: bench, command, git_sha, git_dirty, machine, started_utc.

    argv: the options given (default sys.argv[1:]); the command is ``python -m bench.<name> ...``.
    git_dirty: src/ has uncommitted changes, so the figures may not reproduce at git_sha.
    """
    args = sys.argv[1:] if argv is None else argv
    return {
        "bench": name,
        "command": shlex.join(["python", "-m", f"bench.{name}", *args]),
        "git_sha": _git(["rev-parse", "HEAD"]) or "unknown",
        "git_dirty": _git(["status", "--porcelain", "--untracked-files=all", "--", "src"]) not in ("", None),
        "machine": machine(),
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def machine() -> dict:
    """Platform, cores, load and library versions: what the figures depend on."""
    import cv2  # imported here so `bench` itself stays importable without OpenCV

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
    }


def add_data_option(parser: argparse.ArgumentParser) -> None:
    """The `--data` option of every benchmark that reads the real images."""
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="folder holding the real images (default: <repo>/../shared/data/fiber-real)",
    )


def unique_images(data: Path, folders: Sequence[str]) -> tuple[list[Path], list[list[str]]]:
    """The image files of data/<folder> for each of `folders`, in that order and sorted by name,
    keeping the first file of each sha256; also the skipped duplicates as [skipped, kept] paths
    relative to `data`. Stops with exit code 2 when `data` or a folder is missing (never copy the
    real data into the repository; it is licensed for evaluation only).
    """
    if not data.is_dir():
        fail(
            f"{data}: real image folder not found; this benchmark needs ../shared/data/fiber-real next "
            "to the repository (or --data PATH). The images are never copied into the repository."
        )
    missing = [f for f in folders if not (data / f).is_dir()]
    if missing:
        fail(f"{data}: missing sub-folder(s) {', '.join(missing)}; expected {', '.join(folders)}")
    kept: dict[str, str] = {}
    paths: list[Path] = []
    duplicates: list[list[str]] = []
    for folder in folders:
        for path in sorted((data / folder).iterdir()):
            if path.suffix.lower() not in (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"):
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            rel = f"{folder}/{path.name}"
            if digest in kept:
                duplicates.append([rel, kept[digest]])
            else:
                kept[digest] = rel
                paths.append(path)
    if not paths:
        fail(f"{data}: no images in {', '.join(folders)}")
    return paths, duplicates


def write_result(path: Path, result: dict) -> None:
    """Write `result` as indented JSON at `path` (parent folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


def fail(message: str, code: int = 2) -> None:
    """Stop the benchmark with `message` on stderr and a non-zero exit code."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(code)


def mark(ok: bool | None) -> str:
    """A pass/fail marker for a figure against its target ("n/a" when the figure is undefined)."""
    return "n/a" if ok is None else ("ok" if ok else "MISS")


def _git(args: list[str]) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()
