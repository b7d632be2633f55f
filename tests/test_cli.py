"""The command line as a user meets it: output, errors, help."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from cnsim.cli import main

SMALL = ["--set", "requests=3000", "--replications", "2"]


def run_cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, out=out)
    return code, out.getvalue()


def test_run_prints_a_table_with_headline_statistics() -> None:
    code, text = run_cli(["run", "mmc", *SMALL])
    assert code == 0
    header = text.splitlines()[2]
    for column in ("metric", "mean", "p50", "p90", "p99"):
        assert column in header.split()
    assert any(line.startswith("requests.sojourn_s") for line in text.splitlines())


def test_run_json_has_every_metric_with_estimate_and_ci() -> None:
    code, text = run_cli(["run", "mmc", *SMALL, "--json", "--seed", "3"])
    assert code == 0
    document = json.loads(text)
    assert document["scenario"]["seed"] == 3
    assert document["replications"] == 2
    sojourn = document["metrics"]["requests.sojourn_s"]
    for statistic in ("mean", "p50", "p90", "p99"):
        entry = sojourn[statistic]
        assert entry["ci_low"] <= entry["mean"] <= entry["ci_high"]
        assert entry["n"] == 2


def test_same_seed_gives_identical_json() -> None:
    first = run_cli(["run", "tandem", *SMALL, "--json"])[1]
    second = run_cli(["run", "tandem", *SMALL, "--json"])[1]
    assert first == second


def test_run_on_two_processes_prints_the_serial_json() -> None:
    serial = run_cli(["run", "tandem", *SMALL, "--json"])
    assert run_cli(["run", "tandem", *SMALL, "--json", "--jobs", "2"]) == serial


@pytest.mark.parametrize("jobs", ["0", "-3"])
def test_run_refuses_a_bad_jobs_naming_it(jobs: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli(["run", "mmc", *SMALL, "--jobs", jobs])
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("cnsim: error: --jobs: must be between 1 and") and f"(got {jobs})" in error


def test_run_help_explains_jobs() -> None:
    text = subprocess.run([sys.executable, "-m", "cnsim", "run", "--help"], capture_output=True, text=True,
                          check=True).stdout
    assert "--jobs N" in text and "worker processes" in text and "same" in text


def test_bad_input_is_one_line_per_problem_naming_field_and_value(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli(["run", "mmc", "--set", "servers=0", "--set", "colour=red"])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert any("servers" in line and "0" in line for line in lines)
    assert any("colour" in line and "unknown key" in line for line in lines)
    assert all(line.startswith("cnsim: error: ") for line in lines)


def test_unknown_scenario_names_the_built_ins(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli(["run", "no-such-scenario"])
    assert code == 2
    error = capsys.readouterr().err
    assert "no-such-scenario" in error and "mmc" in error and "Traceback" not in error


def test_scenarios_lists_built_ins_and_kinds() -> None:
    assert {"mmc", "tandem"} <= {line.split()[0] for line in run_cli(["scenarios"])[1].splitlines()}
    kinds = run_cli(["scenarios", "--kinds"])[1]
    assert "queueing.station" in kinds and "queueing.network" in kinds
    shown = run_cli(["scenarios", "--show", "mmc"])[1]
    assert "servers: 1" in shown


def test_console_script_help_explains_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cnsim", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("run", "sweep", "plot", "scenarios"):
        assert command in result.stdout
    assert "--set" in result.stdout


def test_interrupting_run_says_nothing_is_kept(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("sim.run.run_replications", interrupted)
    assert run_cli(["run", "mmc"])[0] == 130
    error = capsys.readouterr().err
    assert "nothing is kept" in error and "kept and a rerun" not in error

    monkeypatch.setattr("sim.sweep.run_sweep", interrupted)
    assert run_cli(["sweep", "mmc", "--grid", "servers=1,2", "--out", "unused"])[0] == 130
    assert "finished runs are kept and a rerun resumes from them" in capsys.readouterr().err


def test_calibrate_measure_help_names_every_harness() -> None:
    """The --only help is written out (the parser does not import the harnesses); it must name each of them."""
    from calibration.measure import HARNESSES
    from cnsim.cli import build_parser

    actions = build_parser()._subparsers._group_actions[0].choices["calibrate"]  # type: ignore[union-attr]
    measure = actions._subparsers._group_actions[0].choices["measure"]
    (only,) = [action for action in measure._actions if "--only" in action.option_strings]
    named = {name.strip(" ()") for name in only.help.split("(", 1)[1].split(")")[0].split(",")}
    assert named == set(HARNESSES)
