"""Batch inspection: many files, both cores, every output written as each image finishes.

Each worker process builds one `Inspector` and writes its own outputs (report JSON, overlay,
legacy JSON), so frames never cross process boundaries; only finished reports come back.
OpenCV is kept to one thread per process: processes scale across cores better than
OpenCV's threads do on images this small.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2

from .errors import DefectscopeError, OutputError
from .inspector import Inspector
from .profile import Profile
from .records import Report, Status

__all__ = ["IMAGE_SUFFIXES", "BatchOptions", "collect_images", "output_names", "inspect_batch", "exit_code"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class BatchOptions:
    """What to run and what to write. out_dir None writes nothing (reports are still returned)."""

    profile: Profile
    um_per_px: float | None = None
    out_dir: Path | None = None
    overlay: bool = True
    legacy: bool = False
    native: bool = True


def collect_images(inputs: Iterable[str | Path]) -> list[Path]:
    """Expand files, folders (recursively) and glob patterns into a sorted list of image files.

    Raises DefectscopeError naming an input that matches nothing.
    """
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += [
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in IMAGE_SUFFIXES
                and not p.name.endswith((".overlay.png", ".mask.png"))
            ]
        elif path.is_file():
            found.append(path)
        else:
            pattern = str(item)
            anchor = Path(pattern).anchor or "."
            matches = (
                sorted(Path(anchor).glob(pattern[len(Path(pattern).anchor) :]))
                if any(ch in pattern for ch in "*?[")
                else []
            )
            files = [p for p in matches if p.is_file()]
            if not files:
                raise DefectscopeError(f"{item}: no such file, folder or matching images")
            found += files
    unique = sorted(dict.fromkeys(p.resolve() for p in found))
    return unique


def output_names(paths: list[Path]) -> list[str]:
    """A distinct output stem per input: its file stem, prefixed by parent folders when stems repeat."""
    names = [p.stem for p in paths]
    depth = 1
    while len(set(names)) < len(names) and depth < 8:
        counts = {n: names.count(n) for n in names}
        names = [
            "_".join([*p.parts[-1 - depth : -1], p.stem]) if counts[n] > 1 else n
            for p, n in zip(paths, names)
        ]
        depth += 1
    seen: dict[str, int] = {}
    out = []
    for n in names:  # still equal (same name at every depth): number them
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}-{seen[n]}")
    return out


def inspect_batch(
    paths: list[Path],
    options: BatchOptions,
    *,
    jobs: int = 0,
    progress: Callable[[Report], None] | None = None,
) -> list[Report]:
    """Inspect `paths` with `jobs` processes (0: one per core); reports come back in input order."""
    names = output_names(paths)
    jobs = jobs or os.cpu_count() or 1
    jobs = max(1, min(jobs, len(paths)))
    reports: list[Report] = []
    if jobs == 1:
        _init_worker(options)
        results: Iterator[Report] = (_inspect_one(item) for item in zip(paths, names))
        for report in results:
            reports.append(report)
            if progress:
                progress(report)
        return reports
    # spawn, not fork: a forked child inherits the locks of a parent's OpenCV worker threads and can
    # hang for ever if the parent used OpenCV with threads before the batch
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=jobs, initializer=_init_worker, initargs=(options,), mp_context=context
    ) as pool:
        for report in pool.map(_inspect_one, zip(paths, names), chunksize=4):
            reports.append(report)
            if progress:
                progress(report)
    return reports


def exit_code(reports: Iterable[Report]) -> int:
    """0 when every part PASSes, 2 when any is UNDETERMINED (or unreadable), else 1 (some FAIL)."""
    statuses = {r.verdict.status for r in reports}
    if Status.UNDETERMINED in statuses:
        return 2
    return 1 if Status.FAIL in statuses else 0


# --- worker side -----------------------------------------------------------------------------

_worker: tuple[Inspector, BatchOptions] | None = None


def _init_worker(options: BatchOptions) -> None:
    global _worker
    cv2.setNumThreads(1)
    _worker = (Inspector(options.profile, um_per_px=options.um_per_px), options)


def _inspect_one(item: tuple[Path, str]) -> Report:
    from . import report as outputs  # drawing code stays out of processes that do not draw

    path, name = item
    inspector, options = _worker
    inspection = inspector.run(path)
    report = inspection.report
    if options.out_dir is not None:
        try:
            if options.native:
                outputs.write_report(report, options.out_dir / f"{name}.json")
            if options.legacy:
                outputs.write_legacy(report, options.profile, options.out_dir / f"{name}.legacy.json")
            if options.overlay and inspection.frame is not None:
                outputs.write_overlay(inspection.frame, report, options.out_dir / f"{name}.overlay.png")
        except OSError as exc:
            raise OutputError(
                f"{options.out_dir}: cannot write the results for {path.name} "
                f"({exc.strerror or exc}); check free space and permissions"
            ) from None
    return report
