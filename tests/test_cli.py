"""The command line, run in-process via `defectscope.cli.main(argv)` (and once as `python -m defectscope`).

Exit codes: 0 every part PASS, 1 some FAIL, 2 some UNDETERMINED or unreadable, 64 usage errors.
Images come from the session fixtures in conftest.py: two clean end faces that PASS, one with a
10 µm dig in the core (FAIL), a defocused one and a corrupt file (UNDETERMINED).
"""

from __future__ import annotations

import csv
import errno
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

import defectscope
from defectscope.cli import main
from defectscope.records import Report
from defectscope.report import CSV_COLUMNS, report_json_schema
from defectscope.synth import read_truth


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    """Rich wraps tables at the terminal width; a wide one keeps each table row on one line."""
    monkeypatch.setenv("COLUMNS", "220")


def _reports(folder: Path) -> dict[str, Report]:
    return {
        p.stem: Report.from_json(p.read_text())
        for p in sorted(folder.glob("*.json"))
        if not p.name.endswith(".legacy.json")
    }


# --- inspect: outputs ----------------------------------------------------------------------------------


def test_inspect_folder_writes_report_overlay_and_summary_per_image(tmp_path, capsys, synth_dataset):
    folder, truths = synth_dataset
    out = tmp_path / "results"
    code, stdout, _ = run(["inspect", folder, "--out", out, "--jobs", "1"], capsys)
    stems = sorted(Path(t.image).stem for t in truths)
    assert code in (0, 1, 2)
    assert sorted(_reports(out)) == stems
    assert sorted(p.name[: -len(".overlay.png")] for p in out.glob("*.overlay.png")) == stems
    with open(out / "summary.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert sorted(Path(r["path"]).stem for r in rows) == stems
    assert "PASS" in stdout and "results:" in stdout  # the human summary
    assert not list(out.glob("*.legacy.json")) and not list(out.glob("*.mask*"))


def test_no_overlay_writes_no_pictures(tmp_path, capsys, endface_files):
    out = tmp_path / "r"
    code, _, _ = run(["inspect", *endface_files["pass"], "--out", out, "--no-overlay", "--jobs", "1"], capsys)
    assert code == 0
    assert not list(out.glob("*.png"))
    assert sorted(_reports(out)) == ["clean-bright", "clean-dark"]


@pytest.mark.parametrize(
    "fmt, native, legacy", [("native", True, False), ("legacy", False, True), ("both", True, True)]
)
def test_format_chooses_native_and_or_legacy_reports(tmp_path, capsys, endface_files, fmt, native, legacy):
    out = tmp_path / "r"
    code, _, _ = run(["inspect", endface_files["fail"], "--out", out, "--format", fmt, "--jobs", "1"], capsys)
    assert code == 1
    assert (out / "dig-in-core.json").exists() == native
    assert (out / "dig-in-core.legacy.json").exists() == legacy
    if legacy:
        old = json.loads((out / "dig-in-core.legacy.json").read_text())
        assert old["analysis_summary"]["pass_fail_status"] == "FAIL"
    assert (out / "summary.csv").exists()


def test_json_prints_one_valid_report_per_line_and_nothing_else(tmp_path, capsys, endface_files):
    files = [*endface_files["pass"], endface_files["fail"], endface_files["corrupt"]]
    code, stdout, _ = run(["inspect", *files, "--json", "--out", tmp_path / "r", "--jobs", "1"], capsys)
    assert code == 2
    lines = stdout.splitlines()
    assert len(lines) == len(files) and stdout.endswith("\n")
    schema = report_json_schema()
    statuses = {}
    for line in lines:
        data = json.loads(line)
        jsonschema.validate(data, schema)
        statuses[Path(data["image"]["path"]).name] = data["verdict"]["status"]
    assert statuses == {
        "clean-bright.jpg": "PASS",
        "clean-dark.jpg": "PASS",
        "dig-in-core.jpg": "FAIL",
        "corrupt.jpg": "UNDETERMINED",
    }


# --- inspect: exit codes ---------------------------------------------------------------------------------


def test_exit_0_when_every_part_passes(tmp_path, capsys, endface_files):
    code, stdout, _ = run(["inspect", *endface_files["pass"], "--out", tmp_path / "r"], capsys)
    assert code == 0, stdout
    assert "2 PASS" in stdout and "0 FAIL" in stdout


def test_exit_1_when_a_part_fails(tmp_path, capsys, endface_files):
    code, stdout, _ = run(
        ["inspect", *endface_files["pass"], endface_files["fail"], "--out", tmp_path / "r"], capsys
    )
    assert code == 1, stdout
    report = Report.from_json((tmp_path / "r" / "dig-in-core.json").read_text())
    assert report.verdict.reasons[0].startswith("zone A:")


@pytest.mark.parametrize("extra", ["degraded", "corrupt"])
def test_exit_2_when_a_part_is_undetermined(tmp_path, capsys, endface_files, extra):
    files = [*endface_files["pass"], endface_files["fail"], endface_files[extra]]
    code, _, _ = run(["inspect", *files, "--out", tmp_path / "r"], capsys)
    assert code == 2
    reports = _reports(tmp_path / "r")
    stem = endface_files[extra].stem
    assert reports[stem].verdict.status == "UNDETERMINED"
    assert reports["dig-in-core"].verdict.status == "FAIL"  # the batch went on


def test_a_full_disk_exits_74_naming_the_folder_and_leaves_written_reports_whole(
    tmp_path, capsys, endface_files, monkeypatch
):
    import defectscope.report as outputs

    written = []

    def overlay_on_a_full_disk(frame, report, path):
        if written:  # the first image's outputs fit, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(path)
        real_overlay(frame, report, path)

    real_overlay = outputs.write_overlay
    monkeypatch.setattr(outputs, "write_overlay", overlay_on_a_full_disk)
    files = [*endface_files["pass"], endface_files["fail"]]
    code, _, err = run(["inspect", *files, "--out", tmp_path / "r", "--jobs", "1"], capsys)
    assert code == 74
    message = " ".join(err.split())
    assert str(tmp_path / "r") in message and "No space left on device" in message
    assert "check free space" in message
    for report in _reports(tmp_path / "r").values():  # what was written is whole
        assert report.verdict.status in ("PASS", "FAIL")


def test_corrupt_file_in_a_folder_is_an_undetermined_report_not_a_crash(tmp_path, capsys, endface_files):
    out = tmp_path / "r"
    code, stdout, _ = run(["inspect", endface_files["folder"], "--out", out, "--jobs", "1"], capsys)
    assert code == 2
    reports = _reports(out)
    assert len(reports) == 5
    corrupt = reports["corrupt"]
    assert corrupt.verdict.status == "UNDETERMINED" and "corrupt.jpg" in corrupt.verdict.reasons[0]
    assert not (out / "corrupt.overlay.png").exists()  # nothing to draw on
    with open(out / "summary.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {Path(r["path"]).name: r["status"] for r in rows}["corrupt.jpg"] == "UNDETERMINED"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["inspect", "{folder}", "--bogus"], r"No such option: --bogus"),
        (["inspect", "{folder}", "--profile", "iec-sm-upx"], r"Did you mean 'iec-sm-upc'\?"),
        (["inspect", "{folder}/no-such-dir"], r"no-such-dir: no such file, folder or matching images"),
        (["inspect", "{folder}/*.tiff"], r"no such file, folder or matching images"),
        (["inspect", "{folder}", "--format", "xml"], r"--format must be native, legacy or both"),
        (["inspect", "{folder}", "--jobs", "-1"], r"Invalid value for '--jobs'"),
        (["profiles", "iec-sm-upx"], r"Did you mean 'iec-sm-upc'\?"),
        (["evaluate"], r"give --truth"),
        (["frobnicate"], r"No such command"),
    ],
    ids=[
        "unknown-option",
        "unknown-profile",
        "no-such-path",
        "glob-matches-nothing",
        "bad-format",
        "negative-jobs",
        "profiles-unknown",
        "evaluate-nothing",
        "unknown-command",
    ],
)
def test_usage_errors_exit_64_with_a_one_line_explanation(tmp_path, capsys, endface_files, argv, message):
    argv = [a.replace("{folder}", str(endface_files["folder"])) for a in argv]
    code, stdout, stderr = run([*argv, "--out", tmp_path / "r"] if argv[0] == "inspect" else argv, capsys)
    assert code == 64
    assert re.search(message, " ".join(stderr.split())), stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "r" / "summary.csv").exists()


# --- inspect: inputs and parallelism ----------------------------------------------------------------------


def test_jobs_1_and_jobs_2_give_the_same_reports(tmp_path, capsys, endface_files):
    files = [*endface_files["pass"], endface_files["fail"], endface_files["degraded"]]
    for jobs in (1, 2):
        code, _, _ = run(
            ["inspect", *files, "--out", tmp_path / f"j{jobs}", "--jobs", jobs, "--no-overlay"], capsys
        )
        assert code == 2
    one, two = _reports(tmp_path / "j1"), _reports(tmp_path / "j2")
    assert sorted(one) == sorted(two) == ["clean-bright", "clean-dark", "defocus", "dig-in-core"]
    for stem in one:
        a, b = one[stem].to_dict(), two[stem].to_dict()
        a.pop("timing_ms"), b.pop("timing_ms")
        assert a == b, stem


def test_absolute_glob_selects_matching_images_only(tmp_path, capsys, endface_files):
    pattern = str(endface_files["folder"] / "clean-*.jpg")
    code, _, _ = run(["inspect", pattern, "--out", tmp_path / "r"], capsys)
    assert code == 0
    assert sorted(_reports(tmp_path / "r")) == ["clean-bright", "clean-dark"]


def test_relative_glob_is_expanded_from_the_working_folder(tmp_path, capsys, endface_files, monkeypatch):
    monkeypatch.chdir(endface_files["folder"])
    code, _, _ = run(["inspect", "dig-*.jpg", "--out", tmp_path / "r", "--json"], capsys)
    assert code == 1
    assert sorted(_reports(tmp_path / "r")) == ["dig-in-core"]


def test_profile_option_takes_a_yaml_path(tmp_path, capsys, endface_files):
    from importlib import resources

    text = (resources.files("defectscope") / "profiles" / "iec-sm-upc.yaml").read_text(encoding="utf-8")
    custom = tmp_path / "line7.yaml"
    custom.write_text(text.replace("name: iec-sm-upc", "name: line7"), encoding="utf-8")
    code, stdout, _ = run(
        ["inspect", endface_files["pass"][0], "--profile", custom, "--json", "--out", tmp_path / "r"], capsys
    )
    assert code == 0
    assert json.loads(stdout)["profile"] == "line7"


# --- profiles, synth, evaluate --------------------------------------------------------------------------


def test_profiles_lists_the_three_shipped_profiles(capsys):
    code, stdout, _ = run(["profiles"], capsys)
    assert code == 0
    for name in ("iec-sm-upc", "iec-sm-apc", "iec-mm-pc"):
        assert re.search(rf"^\s*{name}\s", stdout, re.MULTILINE), stdout


def test_profiles_shows_the_apc_core_scratch_rule(capsys):
    code, stdout, _ = run(["profiles", "iec-sm-apc"], capsys)
    assert code == 0
    zone_a = next(line for line in stdout.splitlines() if re.match(r"\s*A core", line))
    assert "0-25" in zone_a
    assert "<= 3 um: at most 4; none larger" in zone_a  # scratches
    assert "none allowed" in zone_a  # defects


def test_synth_writes_n_images_with_truth(tmp_path, capsys):
    out = tmp_path / "synth"
    code, stdout, _ = run(["synth", "--out", out, "--n", 3, "--seed", 5], capsys)
    assert code == 0 and "3 images with truth" in stdout
    truths = sorted(out.glob("*.truth.json"))
    assert len(truths) == 3 and len(list(out.glob("*.jpg"))) == 3 and len(list(out.glob("*.mask.png"))) == 3
    for path in truths:
        truth = read_truth(path)
        assert (out / truth.image).exists() and truth.seed is not None and "iec-sm-upc" in truth.expected


def test_synth_degraded_writes_only_undetermined_frames(tmp_path, capsys):
    out = tmp_path / "bad"
    code, _, _ = run(["synth", "--out", out, "--n", 2, "--seed", 1, "--degraded"], capsys)
    assert code == 0
    truths = [read_truth(p) for p in sorted(out.glob("degraded-*.truth.json"))]
    assert len(truths) == 2 and all(t.expected["iec-sm-upc"].status == "UNDETERMINED" for t in truths)


@pytest.fixture(scope="module")
def dataset_reports(tmp_path_factory, synth_dataset):
    """Reports of the session data set, written by the CLI once for the evaluate tests."""
    folder, _ = synth_dataset
    out = tmp_path_factory.mktemp("dataset-reports")
    with pytest.raises(SystemExit):
        main(["inspect", str(folder), "--out", str(out), "--no-overlay", "--jobs", "1", "--json"])
    return out


def test_evaluate_truth_against_reports_prints_false_pass_rate_and_writes_json(
    tmp_path, capsys, synth_dataset, dataset_reports
):
    folder, truths = synth_dataset
    out = tmp_path / "eval" / "evaluation.json"
    code, stdout, _ = run(["evaluate", "--truth", folder, "--reports", dataset_reports, "--out", out], capsys)
    assert code == 0
    assert re.search(r"false-pass rate\s+\d+\.\d%", stdout), stdout
    result = json.loads(out.read_text())
    assert result["mode"] == "reports" and result["n_truth"] == len(truths) == result["n_reports"]
    verdict = result["profiles"]["iec-sm-upc"]["verdict"]
    assert verdict["false_pass_rate"] is None or 0.0 <= verdict["false_pass_rate"] <= 1.0


def test_evaluate_labels_scores_image_level_labels(tmp_path, capsys, synth_dataset, dataset_reports):
    folder, truths = synth_dataset
    labels = tmp_path / "labels.csv"
    rows = ["file,label"] + [
        f"{t.image},{'clean' if t.expected['iec-sm-upc'].status == 'PASS' else 'dirty'}" for t in truths
    ]
    labels.write_text("\n".join(rows) + "\n", encoding="utf-8")
    code, stdout, _ = run(["evaluate", "--labels", labels, "--reports", dataset_reports], capsys)
    assert code == 0
    assert f"{len(truths)} labelled rows, {len(truths)} with a report" in " ".join(stdout.split())
    assert re.search(r"^\s*clean\s+PASS\s", stdout, re.MULTILINE), stdout


def test_evaluate_labels_without_reports_is_a_usage_error(tmp_path, capsys):
    labels = tmp_path / "l.csv"
    labels.write_text("file,label\na.jpg,clean\n", encoding="utf-8")
    code, _, stderr = run(["evaluate", "--labels", labels], capsys)
    assert code == 64 and "--labels needs --reports" in " ".join(stderr.split())


# --- the installed entry point ------------------------------------------------------------------------------


def test_python_m_defectscope_runs_the_cli(tmp_path, endface_files):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "defectscope",
            "inspect",
            str(endface_files["fail"]),
            "--json",
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["verdict"]["status"] == "FAIL"
    assert (tmp_path / "r" / "dig-in-core.json").exists()


@pytest.mark.parametrize("command", ["inspect", "profiles", "synth", "evaluate"])
def test_every_command_help_has_an_example_and_the_exit_codes_are_documented(capsys, command):
    code, stdout, _ = run([command, "--help"], capsys)
    assert code == 0 and "Example:" in stdout
    code, stdout, _ = run(["--help"], capsys)
    assert code == 0
    documented = (
        "0 all PASS, 1 any FAIL, 2 any UNDETERMINED or unreadable image, 64 usage error, "
        "74 results could not be written"
    )
    assert documented in " ".join(stdout.split())


def test_version_option_prints_the_version_and_exits_0(capsys):
    code, stdout, _ = run(["--version"], capsys)
    assert code == 0 and stdout.strip() == defectscope.__version__
