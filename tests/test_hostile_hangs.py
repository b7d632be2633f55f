"""Hostile input, issue 20 (hangs): scenarios that used to hang or crash, the engine's standstill
guard, and the command line telling bad input (exit 2) from a bug (exit 70).

The scenario files are in ``tests/data/hostile/hangs-*.yaml``; each says what it used to do.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from cnsim.cli import EXIT_INTERNAL, EXIT_USAGE, main
from models.queueing.builders import StationModel
from sim.core import Environment, StandstillError
from sim.scenario import load_scenario

HOSTILE = Path(__file__).resolve().parent / "data" / "hostile"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def crash_files_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that fails through the internal-error path leaves its crash file here, not in /tmp."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


def run_json(argv: list[str]) -> dict:
    out = subprocess.run(  # bounded: a hang fails the test instead of stalling the suite
        [sys.executable, "-m", "cnsim", "run", *argv, "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, env={**os.environ, "TMPDIR": tempfile.gettempdir()},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# --- GOGC=0 with an empty long-lived heap ---


@pytest.mark.parametrize("fidelity", ["detailed", "fast"])
def test_gogc_zero_with_an_empty_heap_finishes_collecting_back_to_back(fidelity: str) -> None:
    metrics = run_json([str(HOSTILE / "hangs-gogc0.yaml"), "--set", f"fidelity={fidelity}"])["metrics"]
    completed = metrics["requests.completed"]["count"]["mean"]
    assert completed == 180  # 200 requests less the 10 % warm-up
    # Go at GOGC=0: the first allocation after a cycle starts the next one, about one per request here
    # (at GOGC=100 these 1.6 MB of allocations stay under the 4 MiB heap minimum: no cycle at all).
    assert metrics["go.gc.cycles"]["count"]["mean"] >= completed / 2


# --- 90 % segment loss ---


def test_loss_of_90_percent_runs_to_the_end(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert main(["run", str(HOSTILE / "hangs-loss.yaml"), "--json"], out=out) == 0
    metrics = json.loads(out.getvalue())["metrics"]
    assert metrics["requests.completed"]["count"]["mean"] == 270
    assert metrics["pool.retransmits"]["count"]["mean"] > 0
    assert capsys.readouterr().err == ""


# --- a route that never leaves ---


def test_a_station_routed_to_itself_for_sure_is_rejected_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(HOSTILE / "hangs-self-route.yaml")], out=io.StringIO()) == EXIT_USAGE
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("cnsim: error: ") and "routes:" in lines[0] and "'a'" in lines[0]
    assert "never leave" in lines[0]


def test_every_station_that_cannot_leave_is_named_and_a_route_of_probability_0_is_no_way_out() -> None:
    with pytest.raises(ValueError, match=r"'b', 'c' can never leave") as info:
        load_scenario(HOSTILE / "hangs-self-route.yaml", [
            "stations={a: {service_rate: 2}, b: {service_rate: 2}, c: {service_rate: 2}}",
            "routes=[{from: a, to: b, p: 0.5}, {from: b, to: c, p: 1}, {from: c, to: b, p: 1}]",
        ])
    assert "'a'" not in str(info.value)
    with pytest.raises(ValueError, match=r"a job at 'a' can never leave"):
        load_scenario(HOSTILE / "hangs-self-route.yaml", [
            "stations={a: {service_rate: 2}, b: {service_rate: 2}}",
            "routes=[{from: a, to: a, p: 1}, {from: a, to: b, p: 0}]",
        ])


# --- offered load at or above capacity ---


def test_an_overloaded_station_runs_and_warns_on_stderr_not_in_the_results(
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = io.StringIO()
    assert main(["run", str(HOSTILE / "hangs-overload.yaml"), "--json"], out=out) == 0
    document = json.loads(out.getvalue())
    assert set(document) == {"scenario", "replications", "confidence", "metrics"}
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("cnsim: warning: offered load ρ = 1.2 ≥ 1") and "unstable" in lines[0]


def test_a_stable_or_bounded_station_does_not_warn(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "mmc", "--set", "requests=500", "-r", "1"], out=io.StringIO()) == 0  # rho 0.9
    assert main(["run", str(HOSTILE / "hangs-overload.yaml"), "--set", "capacity=5"], out=io.StringIO()) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("source", "overrides", "rho"),
    [
        ("tandem", ["arrival_rate=200/s"], 2.0),  # web and app at 200 x 20 ms / 2 and 200 x 40 ms / 4
        ("tandem", ["arrival_rate=200/s", "stations.web.capacity=9", "stations.app.capacity=9"], 200 * 0.7 * 0.008),
        ("go-http-service", ["quota_cores=0.5", "handler.codec=null", "handler.cpu=100us", "handler.alloc_cpu=false"],
         5000 * 1e-4 / 0.5),
        ("go-http-service", ["machine.cores=1", "handler.codec=null", "handler.cpu=100us", "handler.alloc_cpu=false"],
         5000 * 1e-4 / 1),
    ],
)
def test_offered_load_of_networks_and_go_services(source: str, overrides: list[str], rho: float) -> None:
    assert load_scenario(source, overrides).offered_load == pytest.approx(rho)


# --- the engine's standstill guard ---


def spin(env: Environment, at: float, events: int):
    """Wait until ``at``, then ``events`` zero-delay timeouts: the clock stands still meanwhile."""
    yield env.timeout(at)
    for _ in range(events):
        yield env.timeout(0)


def test_events_at_one_instant_without_end_stop_the_run_naming_the_instant_and_the_model() -> None:
    env = Environment(scenario=load_scenario("mmc"))
    env.standstill_events = 50_000
    env.process(spin(env, 1.5, 200_000))
    with pytest.raises(StandstillError, match=r"stood still at 1\.5 s: [\d,]+ events .* model 'queueing\.station'"):
        env.run()


def test_many_events_at_one_instant_below_the_bound_and_a_moving_clock_are_fine() -> None:
    env = Environment()
    env.standstill_events = 50_000
    env.process(spin(env, 1.5, 40_000))

    def tick():
        for _ in range(200_000):
            yield env.timeout(1e-6)

    env.process(tick())
    assert env.run(until=env.timeout(1.0, value="done")) == "done"  # SimPy's run: the until event's value
    env.run()
    assert env.now == pytest.approx(1.5)


# --- a bug is not bad input ---


def test_a_model_failing_mid_run_is_an_internal_error_with_a_crash_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """Replication 0 finishes, replication 1 raises a bare ValueError deep inside: one line saying it
    is a bug, the traceback (and replication 0's rows) in a file, exit status 70."""
    run = StationModel.run

    def failing(self: StationModel) -> None:
        if self.env.streams.replication == 1:
            raise ValueError("list.remove(x): x not in list")
        run(self)

    monkeypatch.setattr(StationModel, "run", failing)
    assert main(["run", "mmc", "--set", "requests=200", "-r", "2"], out=io.StringIO()) == EXIT_INTERNAL
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("cnsim: internal error (a bug in cnsim, not in your input): ")
    assert "model 'queueing.station' failed in replication 1" in lines[0]
    (crash,) = tmp_path.glob("cnsim-crash-*.txt")
    assert str(crash) in lines[0] and "report" in lines[0]
    report = crash.read_text()
    assert "command: cnsim run mmc --set requests=200 -r 2" in report
    assert "Traceback" in report and "ValueError: list.remove(x): x not in list" in report
    assert "replication 0 finished before the failure" in report and "requests.sojourn_s" in report


def test_a_bad_field_found_while_building_the_model_is_still_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "go-http-service", "--set", "stack_bytes=100"], out=io.StringIO()) == EXIT_USAGE
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("cnsim: error: stack_bytes: ") and "100" in line
