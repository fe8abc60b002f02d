"""Accuracy on the fixed synthetic set: verdicts, geometry, defect recall/precision and sizes.

Run from the repository root (no external data needed):
    python -m bench.accuracy [--workdir DIR] [--overlays] [--jobs 2] [--out bench/results/accuracy.json]

The set, generated with `defectscope.synth.write_dataset` (deterministic, mixed styles):

    subset     profile      seed  images
    sm-upc     iec-sm-upc   1001  150
    mm-pc      iec-mm-pc    2002  150
    degraded   iec-sm-upc   3003   60   (uninspectable frames, all expected UNDETERMINED)
    sm-new     iec-sm-upc   7007  200   (held out: first scored after the engine was tuned on the
    mm-new     iec-mm-pc    8008  200    sets above; fixes they led to are in the git log)

Each subset is inspected with the profile it was planned for (`inspect_batch`, reports written)
and scored with `defectscope.evaluate.evaluate_reports`. "combined" sums the counts of the
subsets and recomputes the rates from them; its percentiles and medians (centre/radius/size
errors) are the worst subset's, because evaluate reports them per subset and they cannot be
pooled. Without --workdir everything is generated in a temporary folder and deleted afterwards.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import cv2

from defectscope.batch import BatchOptions, inspect_batch
from defectscope.evaluate import Evaluation, ProfileEvaluation, evaluate_reports
from defectscope.profile import load_profile
from defectscope.records import DefectKind
from defectscope.synth import read_truth, write_dataset

from . import RESULTS_DIR, fail, header, mark, write_result

N_LISTED = 20  # disagreements listed per subset and combined
KINDS = tuple(k.value for k in DefectKind)


@dataclass(frozen=True)
class Subset:
    name: str
    profile: str
    seed: int
    n: int
    degraded: bool = False


SUBSETS = (
    Subset("sm-upc", "iec-sm-upc", 1001, 150),
    Subset("mm-pc", "iec-mm-pc", 2002, 150),
    Subset("degraded", "iec-sm-upc", 3003, 60, degraded=True),
    Subset("sm-new", "iec-sm-upc", 7007, 200),
    Subset("mm-new", "iec-mm-pc", 8008, 200),
)

# (label, key in the summary, unit/format, target text, test); tests take the summary figure.
TARGETS = (
    ("false-pass rate", ("verdict", "false_pass_rate"), "pct", "= 0", lambda v: v == 0),
    ("verdict accuracy", ("verdict", "accuracy"), "pct", ">= 98 %", lambda v: v >= 0.98),
    ("recall >=2 um A-B", ("defects", "recall_ab_ge_2um", "recall"), "pct", ">= 95 %", lambda v: v >= 0.95),
    ("recall >=5 um C-D", ("defects", "recall_cd_ge_5um", "recall"), "pct", ">= 95 %", lambda v: v >= 0.95),
    ("precision", ("defects", "precision"), "pct", ">= 95 %", lambda v: v >= 0.95),
    ("recall (all)", ("defects", "recall"), "pct", "", None),
    ("centre error p95", ("geometry", "centre_error_p95_px"), "px", "<= 1 px", lambda v: v <= 1.0),
    ("radius error p95", ("geometry", "radius_error_p95_pct"), "%", "<= 0.5 %", lambda v: v <= 0.5),
    ("size error median", ("defects", "size_error_median_um", "all"), "um", "<= 1 um", lambda v: v <= 1.0),
    ("safe disagreements", ("verdict", "safe_disagreements"), "n", "", None),
    ("disagreements", ("n_disagreements",), "n", "", None),
)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep images, truths, reports in this new or empty folder (default: a temp one)",
    )
    parser.add_argument("--overlays", action="store_true", help="also write overlay PNGs next to the reports")
    parser.add_argument("--jobs", type=int, default=2, help="inspection processes (default 2)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "accuracy.json")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        fail("--jobs must be >= 1")

    # One OpenCV thread in this process: inspect_batch forks its workers, and a fork taken while
    # OpenCV's thread pool exists (generation would start it) deadlocks the workers.
    cv2.setNumThreads(1)
    result = header("accuracy", argv)
    result["subsets_planned"] = [
        {
            "name": s.name,
            "profile": s.profile,
            "seed": s.seed,
            "n": s.n,
            "degraded": s.degraded,
            "style": "mixed",
        }
        for s in SUBSETS
    ]
    result["jobs"] = args.jobs
    if args.workdir is not None:
        if args.workdir.exists() and (not args.workdir.is_dir() or any(args.workdir.iterdir())):
            fail(
                f"{args.workdir}: exists and is not an empty folder; give a new or empty --workdir "
                "so that old files cannot mix in"
            )
        args.workdir.mkdir(parents=True, exist_ok=True)
        evaluations, timing, problems = _run(args.workdir, overlays=args.overlays, jobs=args.jobs)
        result["workdir"] = str(args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="defectscope-accuracy-") as tmp:
            evaluations, timing, problems = _run(Path(tmp), overlays=args.overlays, jobs=args.jobs)
        result["workdir"] = None

    summaries = {name: _summarize(ev) for name, ev in evaluations.items()}
    summaries["combined"] = _combine(summaries)
    result["timing_s"] = timing
    result["results"] = _rounded(summaries)
    result["targets"] = _targets(summaries["combined"])
    problems += [
        f"{name}: {s['n_missing_reports']} images have no report"
        for name, s in summaries.items()
        if name != "combined" and s["n_missing_reports"]
    ]
    result["problems"] = problems
    write_result(args.out, result)
    print(_table(result))
    print(f"wrote {args.out}")
    if problems:
        fail("; ".join(problems), code=1)
    return result


# --- running ---------------------------------------------------------------------------------------


def _run(workdir: Path, *, overlays: bool, jobs: int) -> tuple[dict[str, Evaluation], dict, list[str]]:
    """Generate, inspect and evaluate each subset; also returns signs of a broken setup."""
    evaluations: dict[str, Evaluation] = {}
    timing: dict[str, dict] = {}
    problems: list[str] = []
    for s in SUBSETS:
        data_dir, reports_dir = workdir / s.name / "images", workdir / s.name / "reports"
        reports_dir.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        truths = write_dataset(
            data_dir, n=s.n, seed=s.seed, profile=s.profile, style="mixed", degraded=s.degraded
        )
        generate_s = time.perf_counter() - t
        images = [p.parent / read_truth(p).image for p in truths]
        options = BatchOptions(profile=load_profile(s.profile), out_dir=reports_dir, overlay=overlays)
        t = time.perf_counter()
        reports = inspect_batch(images, options, jobs=jobs)
        inspect_s = time.perf_counter() - t
        if len(reports) != len(images):
            fail(f"{s.name}: inspect_batch returned {len(reports)} reports for {len(images)} images", code=1)
        internal = [
            Path(r.image.path).name
            for r in reports
            if any("internal error" in reason for reason in r.verdict.reasons)
        ]
        if internal:
            problems.append(f"{s.name}: internal error inspecting {len(internal)} images, e.g. {internal[0]}")
        evaluations[s.name] = evaluate_reports(data_dir, reports_dir)
        timing[s.name] = {"generate_s": round(generate_s, 2), "inspect_s": round(inspect_s, 2)}
        print(
            f"  {s.name}: generated {s.n} in {generate_s:.1f} s, inspected in {inspect_s:.1f} s "
            f"(jobs={jobs})",
            file=sys.stderr,
        )
    return evaluations, timing, problems


# --- summaries -------------------------------------------------------------------------------------


def _summarize(ev: Evaluation) -> dict:
    if len(ev.profiles) != 1:
        fail(f"{ev.reports_dir}: expected reports of one profile, got {sorted(ev.profiles)}", code=1)
    p: ProfileEvaluation = next(iter(ev.profiles.values()))
    v, g, d = p.verdict, p.geometry, p.defects
    return {
        "profile": p.profile,
        "n_images": p.n_images,
        "n_degraded": p.n_degraded,
        "n_missing_reports": len(ev.missing_reports),
        "verdict": {
            "n_images": v.n_images,
            "n_correct": v.n_correct,
            "accuracy": v.accuracy,
            "n_expected_not_pass": v.n_expected_not_pass,
            "false_pass_count": v.false_pass_count,
            "false_pass_rate": v.false_pass_rate,
            "safe_disagreements": v.safe_disagreements,
            "n_expected_pass": v.n_expected_pass,
            "false_reject_count": v.false_reject_count,
            "false_reject_rate": v.false_reject_rate,
            "confusion": v.confusion,
        },
        "geometry": {
            "n_compared": g.n_compared,
            "n_expected_missing": g.n_expected_missing,
            "centre_error_median_px": g.centre_error_px.median,
            "centre_error_p95_px": g.centre_error_px.p95,
            "centre_error_max_px": g.centre_error_px.max,
            "radius_error_median_signed_pct": g.radius_error_pct.median_signed,
            "radius_error_p95_pct": g.radius_error_pct.p95,
            "radius_error_max_pct": g.radius_error_pct.max,
        },
        "defects": {
            "n_truth": d.n_truth,
            "n_found": d.n_found,
            "n_reported": d.n_correct + d.n_false_positive,
            "n_correct": d.n_correct,
            "n_false_positive": d.n_false_positive,
            "n_ignored": d.n_ignored,
            "recall": d.recall,
            "precision": d.precision,
            "recall_ab_ge_2um": d.recall_ab_ge_2um.to_dict(),
            "recall_cd_ge_5um": d.recall_cd_ge_5um.to_dict(),
            "size_error_median_um": {k: s.median for k, s in d.size_error_um.items()},
            "size_error_n": {k: s.n for k, s in d.size_error_um.items()},
            "by_kind": {k: s.to_dict() for k, s in d.by_kind.items()},
        },
        "n_disagreements": len(ev.disagreements),
        "disagreements_by_problem": dict(Counter(x.problem for x in ev.disagreements)),
        "disagreements": [_disagreement(x) for x in ev.disagreements[:N_LISTED]],
    }


def _disagreement(x) -> dict:
    return {
        "image": x.image,
        "problem": x.problem,
        "expected": x.expected_status.value,
        "reported": x.reported_status.value if x.reported_status is not None else None,
        "reported_reasons": list(x.reported_reasons[:2]),
        "degraded": x.degraded,
        "n_missed": len(x.missed),
        "n_false": len(x.false_detections),
    }


def _combine(subsets: dict[str, dict]) -> dict:
    """Counts summed, rates recomputed from them; percentiles and medians: the worst subset's."""
    parts = list(subsets.values())

    def total(*key):
        return sum(_get(p, key) for p in parts)

    def worst(*key):
        values = [_get(p, key) for p in parts if _get(p, key) is not None]
        return max(values) if values else None

    def rate(num, den):
        return num / den if den else None

    statuses = parts[0]["verdict"]["confusion"].keys()
    confusion = {
        e: {r: sum(p["verdict"]["confusion"][e][r] for p in parts) for r in statuses} for e in statuses
    }
    headline = {
        h: {"n_truth": total("defects", h, "n_truth"), "n_found": total("defects", h, "n_found")}
        for h in ("recall_ab_ge_2um", "recall_cd_ge_5um")
    }
    for h in headline.values():
        h["recall"] = rate(h["n_found"], h["n_truth"])
    by_kind = {}
    for k in KINDS:
        c = {f: total("defects", "by_kind", k, f) for f in ("n_truth", "n_found", "n_reported", "n_correct")}
        c["recall"], c["precision"] = rate(c["n_found"], c["n_truth"]), rate(c["n_correct"], c["n_reported"])
        by_kind[k] = c
    # each subset lists its first N_LISTED by (problem, image), so these hold the first N_LISTED overall
    listed = sorted(
        ((i, name, x) for i, (name, p) in enumerate(subsets.items()) for x in p["disagreements"]),
        key=lambda ix: (_PROBLEM_ORDER[ix[2]["problem"]], ix[0], ix[2]["image"]),
    )
    v = {
        f: total("verdict", f)
        for f in (
            "n_images",
            "n_correct",
            "n_expected_not_pass",
            "false_pass_count",
            "safe_disagreements",
            "n_expected_pass",
            "false_reject_count",
        )
    }
    problems = sum((Counter(p["disagreements_by_problem"]) for p in parts), Counter())
    return {
        "note": "counts summed over subsets, rates recomputed; p95s and medians are the worst subset's",
        "n_images": total("n_images"),
        "n_degraded": total("n_degraded"),
        "n_missing_reports": total("n_missing_reports"),
        "verdict": {
            **v,
            "accuracy": rate(v["n_correct"], v["n_images"]),
            "false_pass_rate": rate(v["false_pass_count"], v["n_expected_not_pass"]),
            "false_reject_rate": rate(v["false_reject_count"], v["n_expected_pass"]),
            "confusion": confusion,
        },
        "geometry": {
            "n_compared": total("geometry", "n_compared"),
            "n_expected_missing": total("geometry", "n_expected_missing"),
            "centre_error_p95_px": worst("geometry", "centre_error_p95_px"),
            "centre_error_max_px": worst("geometry", "centre_error_max_px"),
            "radius_error_p95_pct": worst("geometry", "radius_error_p95_pct"),
            "radius_error_max_pct": worst("geometry", "radius_error_max_pct"),
        },
        "defects": {
            **{
                f: total("defects", f)
                for f in ("n_truth", "n_found", "n_reported", "n_correct", "n_false_positive", "n_ignored")
            },
            "recall": rate(total("defects", "n_found"), total("defects", "n_truth")),
            "precision": rate(total("defects", "n_correct"), total("defects", "n_reported")),
            **headline,
            "size_error_median_um": {k: worst("defects", "size_error_median_um", k) for k in (*KINDS, "all")},
            "size_error_n": {k: total("defects", "size_error_n", k) for k in (*KINDS, "all")},
            "by_kind": by_kind,
        },
        "n_disagreements": total("n_disagreements"),
        "disagreements_by_problem": dict(problems),
        "disagreements": [{"subset": name, **x} for _, name, x in listed[:N_LISTED]],
    }


_PROBLEM_ORDER = {"false pass": 0, "missing report": 1, "verdict": 2, "defects": 3}


def _targets(combined: dict) -> dict:
    """Each targeted figure of the combined set: value, target and whether it is met (None: undefined)."""
    out = {}
    for label, key, _, text, test in TARGETS:
        if test is not None:
            value = _get(combined, key)
            out[label] = {"target": text, "value": value, "met": None if value is None else bool(test(value))}
    return out


def _rounded(value, digits: int = 5):
    """`value` with every float rounded, for a readable JSON."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: _rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, digits) for v in value]
    return value


def _get(d: dict, key: tuple):
    for k in key:
        if d is None:
            return None
        d = d.get(k)
    return d


# --- printing --------------------------------------------------------------------------------------


def _fmt(value, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "pct":
        return f"{100 * value:.1f} %"
    if unit == "n":
        return str(value)
    return f"{value:.2f} {unit}"


def _table(result: dict) -> str:
    res = result["results"]
    names = [s.name for s in SUBSETS] + ["combined"]
    width = 11
    lines = [
        f"accuracy  git {result['git_sha'][:10]}{' (dirty src)' if result['git_dirty'] else ''}; "
        + ", ".join(f"{s.name}: {s.n} x {s.profile} seed {s.seed}" for s in SUBSETS),
        f"{'':20}" + "".join(f"{n:>{width}}" for n in names) + "   target",
    ]
    for label, key, unit, text, test in TARGETS:
        cells = "".join(f"{_fmt(_get(res[n], key), unit):>{width}}" for n in names)
        verdict = ""
        if test is not None:
            verdict = f"   {text:9} {mark(result['targets'][label]['met'])}"
        lines.append(f"{label:20}{cells}{verdict}")
    fp = res["combined"]["verdict"]
    lines.append(
        f"false passes: {fp['false_pass_count']} of {fp['n_expected_not_pass']} images expected "
        "not PASS; combined p95/medians are the worst subset's"
    )
    kinds = res["combined"]["defects"]["by_kind"]
    lines.append(
        "per kind (combined) recall/precision: "
        + ", ".join(
            f"{k} {_fmt(c['recall'], 'pct')}/{_fmt(c['precision'], 'pct')} (n={c['n_truth']})"
            for k, c in kinds.items()
            if c["n_truth"] or c["n_reported"]
        )
    )
    for x in res["combined"]["disagreements"][:8]:
        lines.append(
            f"  {x['subset']:9} {x['image']:28} {x['problem']:14} expected {x['expected']:12} "
            f"reported {x['reported']}"
        )
    if res["combined"]["n_disagreements"] > 8:
        lines.append(
            f"  ... {res['combined']['n_disagreements']} disagreements in all "
            f"{res['combined']['disagreements_by_problem']}; the JSON lists the first {N_LISTED} "
            "per subset and combined"
        )
    timing = result["timing_s"]
    lines.append(
        "time: "
        + ", ".join(
            f"{n} generate {t['generate_s']} s + inspect {t['inspect_s']} s" for n, t in timing.items()
        )
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
