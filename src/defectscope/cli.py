"""defectscope command line: thin -- it parses arguments and calls the library.

Exit codes (every command): 0 success / every part PASS; 1 some part FAIL; 2 some part
UNDETERMINED or an unreadable image; 64 a usage error (bad option, unknown profile, no input);
74 results could not be written (disk full, no permission): what was written is whole.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from . import __version__
from .errors import DefectscopeError, OutputError
from .profile import Profile, list_profiles, load_profile
from .records import Report, Status

EXIT_USAGE = 64
EXIT_OUTPUT = 74  # sysexits.h EX_IOERR

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="Fast, explainable inspection of fiber-optic end faces (IEC 61300-3-35).\n\n"
    "Exit codes: 0 all PASS, 1 any FAIL, 2 any UNDETERMINED or unreadable image, "
    "64 usage error, 74 results could not be written.",
)
err = Console(stderr=True)
_COLOURS = {Status.PASS: "green", Status.FAIL: "red", Status.UNDETERMINED: "yellow"}


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: one line per expected error (tracebacks only with --debug)."""
    debug = "--debug" in (argv if argv is not None else sys.argv)
    try:
        rc = app(args=argv, standalone_mode=False)  # returns the code of typer.Exit
    except typer.TyperException as exc:  # usage: bad option, missing argument, failed validation
        from typer import rich_utils

        rich_utils.rich_format_error(exc)
        rc = EXIT_USAGE
    except typer.Abort:
        err.print("aborted")
        rc = 130
    except DefectscopeError as exc:
        if debug:
            raise
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        rc = EXIT_OUTPUT if isinstance(exc, OutputError) else EXIT_USAGE
    sys.exit(rc or 0)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit(0)


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Log details and show tracebacks")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit"),
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        stream=sys.stderr,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _profile(name: str, cladding_um: float | None) -> Profile:
    profile = load_profile(name)
    return profile.with_cladding_um(cladding_um) if cladding_um else profile


@app.command()
def inspect(
    paths: Annotated[
        list[str], typer.Argument(help="Image files, folders (searched recursively) or glob patterns")
    ],
    profile: Annotated[str, typer.Option("--profile", "-p", help="Profile name or YAML path")] = "iec-sm-upc",
    um_per_px: Annotated[
        float | None,
        typer.Option("--um-per-px", min=0.01, max=100.0, help="Calibration; default: from the cladding"),
    ] = None,
    cladding_um: Annotated[
        float | None,
        typer.Option(
            "--cladding-um", min=10.0, max=2000.0, help="Nominal cladding diameter, overrides the profile"
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for reports, overlays and summary.csv")
    ] = Path("defectscope-results"),
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=0, help="Processes; 0 = one per core")] = 0,
    no_overlay: Annotated[bool, typer.Option("--no-overlay", help="Do not draw overlay PNGs")] = False,
    fmt: Annotated[str, typer.Option("--format", help="native | legacy | both")] = "native",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON report per line on stdout")] = False,
) -> None:
    """Inspect end-face images and judge them by the profile.

    Example: [bold]defectscope inspect images/ --profile iec-sm-upc --out results[/bold]
    """
    from .batch import BatchOptions, collect_images, exit_code, inspect_batch
    from .report import write_csv

    if fmt not in ("native", "legacy", "both"):
        raise typer.BadParameter(f"--format must be native, legacy or both, not {fmt!r}")
    prof = _profile(profile, cladding_um)
    files = collect_images(paths)
    if not files:
        raise DefectscopeError(
            f"no images found in {' '.join(paths)} (looked for {', '.join(sorted(_suffixes()))})"
        )
    out.mkdir(parents=True, exist_ok=True)
    options = BatchOptions(
        profile=prof,
        um_per_px=um_per_px,
        out_dir=out,
        overlay=not no_overlay,
        legacy=fmt in ("legacy", "both"),
        native=fmt in ("native", "both"),
    )
    t0 = time.perf_counter()
    with Progress(
        TextColumn("[bold]inspecting"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=len(files) < 2,
    ) as bar:
        task = bar.add_task("inspect", total=len(files))

        def advance(report: Report) -> None:
            bar.advance(task)
            if as_json:
                sys.stdout.write(report.to_json() + "\n")
                sys.stdout.flush()

        reports = inspect_batch(files, options, jobs=jobs, progress=advance)
    elapsed = time.perf_counter() - t0
    try:
        write_csv(reports, out / "summary.csv")
    except OSError as exc:
        raise OutputError(
            f"{out}: cannot write summary.csv ({exc.strerror or exc}); the reports are written, "
            "check free space and permissions"
        ) from None
    if not as_json:
        _print_summary(reports, elapsed, out)
    raise typer.Exit(exit_code(reports))


def _suffixes() -> tuple[str, ...]:
    from .batch import IMAGE_SUFFIXES

    return IMAGE_SUFFIXES


def _print_summary(reports: list[Report], elapsed_s: float, out: Path) -> None:
    console = Console()
    table = Table(show_edge=False, header_style="bold")
    for column in ("status", "image", "defects", "reason", "ms"):
        table.add_column(
            column,
            justify="right" if column in ("defects", "ms") else "left",
            overflow="fold" if column == "reason" else "ellipsis",
        )
    shown = sorted(
        reports, key=lambda r: [Status.UNDETERMINED, Status.FAIL, Status.PASS].index(r.verdict.status)
    )
    for r in shown[:40]:
        status = r.verdict.status
        table.add_row(
            f"[{_COLOURS[status]}]{status.value}[/]",
            Path(r.image.path).name,
            str(len(r.defects)),
            "; ".join(r.verdict.reasons[:2]),
            f"{r.timing_ms.get('total', 0):.1f}",
        )
    console.print(table)
    if len(reports) > 40:
        console.print(f"... {len(reports) - 40} more in {out / 'summary.csv'}")
    counts = {s: sum(r.verdict.status == s for r in reports) for s in Status}
    rate = len(reports) / elapsed_s if elapsed_s > 0 else 0.0
    console.print(
        f"[green]{counts[Status.PASS]} PASS[/]  [red]{counts[Status.FAIL]} FAIL[/]  "
        f"[yellow]{counts[Status.UNDETERMINED]} UNDETERMINED[/]  in {elapsed_s:.1f} s "
        f"({rate:.0f} images/s)"
    )
    console.print(f"results: {out.resolve()}  (reports *.json, overlays *.overlay.png, summary.csv)")


@app.command()
def profiles(
    name: Annotated[str | None, typer.Argument(help="Show this profile (name or YAML path)")] = None,
) -> None:
    """List the shipped profiles, or show one in full.

    Example: [bold]defectscope profiles iec-sm-upc[/bold]
    """
    console = Console()
    if name is None:
        table = Table(show_edge=False, header_style="bold")
        for column in ("name", "title", "cladding", "zones (diameter, um)"):
            table.add_column(column)
        for n in list_profiles():
            p = load_profile(n)
            zones = ", ".join(f"{z.name} {z.inner_um:g}-{z.outer_um:g}" for z in p.zones)
            table.add_row(n, p.title, f"{p.fiber.cladding_diameter_um:g} um", zones)
        console.print(table)
        console.print("Show one: defectscope profiles NAME; use your own: --profile my-profile.yaml")
        return
    p = load_profile(name)
    console.print(
        f"[bold]{p.name}[/bold]  {p.title}\nsource: {p.source}\ncladding {p.fiber.cladding_diameter_um:g} um"
        + (f", core {p.fiber.core_diameter_um:g} um" if p.fiber.core_diameter_um else "")
    )
    table = Table(show_edge=False, header_style="bold")
    for column in ("zone", "diameter um", "scratches (by width)", "defects (by diameter)"):
        table.add_column(column)
    for z in p.zones:
        table.add_row(
            f"{z.name} {z.label}",
            f"{z.inner_um:g}-{z.outer_um:g}",
            _rule_text(z.scratches),
            _rule_text(z.defects),
        )
    console.print(table)


def _rule_text(rule) -> str:
    if rule == "unlimited":
        return "no limit"
    if not rule:
        return "none allowed"
    parts = []
    for band in rule:
        size = f"< {band.below_um:g} um" if band.below_um is not None else f"<= {band.up_to_um:g} um"
        parts.append(f"{size}: {'any' if band.max_count is None else f'at most {band.max_count}'}")
    return "; ".join(parts) + "; none larger"


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for images, masks and truth files")],
    n: Annotated[int, typer.Option("--n", min=1, max=100_000, help="Number of images")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same files")] = 0,
    profile: Annotated[
        str, typer.Option("--profile", "-p", help="Profile the defects are planned for")
    ] = "iec-sm-upc",
    style: Annotated[str, typer.Option("--style", help="bright-ferrule | dark-ferrule | mixed")] = "mixed",
    degraded: Annotated[bool, typer.Option("--degraded", help="Only frames that must never PASS")] = False,
) -> None:
    """Generate synthetic end faces with exact ground truth.

    Example: [bold]defectscope synth --out synth --n 100 --seed 1[/bold]
    """
    from .synth import write_dataset

    if style not in ("bright-ferrule", "dark-ferrule", "mixed"):
        raise typer.BadParameter(f"--style must be bright-ferrule, dark-ferrule or mixed, not {style!r}")
    load_profile(profile)  # a clear error before any work
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with Progress(
        TextColumn("[bold]generating"), BarColumn(), MofNCompleteColumn(), console=err, transient=True
    ) as bar:
        task = bar.add_task("synth", total=n)
        truths = write_dataset(
            out,
            n=n,
            seed=seed,
            profile=profile,
            style=style,
            degraded=degraded,
            progress=lambda done, total: bar.update(task, completed=done),
        )
    elapsed = time.perf_counter() - t0
    Console().print(
        f"{len(truths)} images with truth in {out.resolve()} ({len(truths) / elapsed:.0f} images/s)"
    )


@app.command()
def evaluate(
    truth: Annotated[
        Path | None, typer.Option("--truth", help="Folder of *.truth.json (from `synth`)")
    ] = None,
    reports: Annotated[
        Path | None, typer.Option("--reports", help="Folder of report *.json to score")
    ] = None,
    run: Annotated[
        bool, typer.Option("--inspect", help="Inspect the truth images now (reports go to --reports)")
    ] = False,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="CSV file,label of image-level labels")
    ] = None,
    profile: Annotated[str, typer.Option("--profile", "-p", help="Profile for --inspect")] = "iec-sm-upc",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the evaluation JSON here")] = None,
) -> None:
    """Score inspections against ground truth (or image-level labels); false passes first.

    Example: [bold]defectscope evaluate --truth synth --inspect --reports synth-reports[/bold]
    """
    from . import evaluate as ev

    if labels is not None:
        if reports is None:
            raise typer.BadParameter("--labels needs --reports (a folder of reports for the labelled images)")
        result = ev.evaluate_labels(labels, reports)
    elif truth is None:
        raise typer.BadParameter(
            "give --truth DIR (with --reports DIR or --inspect) or --labels CSV --reports DIR"
        )
    elif run:
        from .inspector import Inspector
        from .report import write_report

        inspector = Inspector(load_profile(profile))
        if reports is not None:
            reports.mkdir(parents=True, exist_ok=True)
        result = ev.evaluate_inspection(
            truth, inspector.inspect, reports_out=reports, write_report=write_report
        )
    elif reports is not None:
        result = ev.evaluate_reports(truth, reports)
    else:
        raise typer.BadParameter("with --truth, give --reports DIR to score, or --inspect to inspect first")
    Console().print(result.render_table(), markup=False, highlight=False)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(result.to_json(indent=2))
        Console().print(f"evaluation: {out.resolve()}")


if __name__ == "__main__":  # python -m defectscope.cli
    main()
