"""sim.run: reproducible replications, Student-t intervals, warm-up deletion."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from sim.core import ModelError
from sim.parallel_runs import failure_of
from sim.run import Estimate, estimate, run_replication, run_replications, t_interval
from sim.scenario import ScenarioError, load_scenario, scenario_key

SMALL = ["requests=3000", "warmup=0.2"]


def rows_json(result) -> str:
    return json.dumps(result.rows)


def test_same_scenario_and_seed_give_byte_identical_rows() -> None:
    for source, overrides in (("mmc", SMALL), ("tandem", ["requests=1500"])):
        scenario = load_scenario(source, overrides)
        first, second = run_replication(scenario, 2), run_replication(load_scenario(source, overrides), 2)
        assert rows_json(first) == rows_json(second)
        assert first.key == second.key == scenario_key(scenario, 2)
        assert first.sim_time_s == second.sim_time_s


def test_rows_do_not_depend_on_the_process() -> None:
    """Same bytes in a fresh interpreter with another hash seed: no stream may
    depend on Python's salted ``hash`` or on anything left over in this process."""
    code = (
        "import json; from sim.scenario import load_scenario; from sim.run import run_replication; "
        "print(json.dumps(run_replication(load_scenario('mmc', ['requests=3000', 'warmup=0.2']), 1).rows))"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root, env=env)
    here = run_replication(load_scenario("mmc", SMALL), 1)
    assert out.stdout.strip() == rows_json(here)


def test_replications_on_processes_equal_serial_ones() -> None:
    scenario = load_scenario("mmc", SMALL)
    serial = run_replications(scenario, 4)
    finished: list[int] = []
    parallel = run_replications(scenario, 4, jobs=2, on_done=lambda result: finished.append(result.replication))
    assert sorted(finished) == [0, 1, 2, 3]
    assert [r.replication for r in parallel.results] == [0, 1, 2, 3]
    assert [rows_json(r) for r in parallel.results] == [rows_json(r) for r in serial.results]
    assert [r.key for r in parallel.results] == [r.key for r in serial.results]
    assert json.dumps(parallel.to_json()) == json.dumps(serial.to_json())


def test_a_worker_failure_is_raised_as_its_kind() -> None:
    done = run_replication(load_scenario("mmc", SMALL), 1)
    bad_input = failure_of({"type": "ScenarioError", "message": "servers: must be >= 1", "traceback": "tb"}, [])
    assert isinstance(bad_input, ScenarioError) and str(bad_input) == "servers: must be >= 1"
    crash = failure_of({"type": "ZeroDivisionError", "message": "division by zero", "traceback": "TB here"}, [done])
    assert isinstance(crash, ModelError)
    assert str(crash).splitlines()[0] == "ZeroDivisionError: division by zero" and "TB here" in str(crash)
    assert crash.completed == [done]
    model = failure_of({"type": "ModelError", "message": "model 'mmc' failed", "traceback": ""}, [])
    assert str(model).splitlines()[0] == "model 'mmc' failed"


def test_jobs_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="jobs: must be >= 1"):
        run_replications(load_scenario("mmc", SMALL), 2, jobs=0)


def test_other_replications_and_seeds_give_other_rows() -> None:
    scenario = load_scenario("mmc", SMALL)
    base = rows_json(run_replication(scenario, 0))
    assert rows_json(run_replication(scenario, 1)) != base
    assert rows_json(run_replication(load_scenario("mmc", [*SMALL, "seed=2"]), 0)) != base


def test_result_rows_and_lookup() -> None:
    result = run_replication(load_scenario("mmc", SMALL), 0)
    assert result.value("requests.sojourn_s", "count") == 3000 - 600
    assert result.scenario["requests"] == 3000 and result.replication == 0
    assert result.sim_time_s > 0 and result.wall_s > 0
    frame = result.to_frame()
    assert list(frame.columns) == ["metric", "statistic", "value", "replication"]
    assert len(frame) == len(result.rows)
    with pytest.raises(KeyError, match="p42.5"):
        result.value("requests.sojourn_s", "p42.5")


@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.999])
def test_t_interval_against_scipy(confidence: float) -> None:
    values = [3.1, 2.7, 3.4, 2.9, 3.8, 3.0, 2.5]
    mean, half_width, n = t_interval(values, confidence)
    low, high = scipy_stats.t.interval(
        confidence, len(values) - 1, loc=np.mean(values), scale=scipy_stats.sem(values)
    )
    assert n == 7
    assert mean == pytest.approx((low + high) / 2, rel=1e-12)
    assert half_width == pytest.approx((high - low) / 2, rel=1e-10)


def test_t_interval_by_hand() -> None:
    """Values 1, 2, 3: mean 2, sample std 1. With 2 degrees of freedom the
    Student-t quantile has a closed form, t_p = (2p - 1) / sqrt(2 p (1 - p)),
    so t_{0.975} = 0.95 / sqrt(0.04875) = 4.3027 and the half-width is t / sqrt(3)."""
    mean, half_width, n = t_interval([1.0, 2.0, 3.0], 0.95)
    assert (mean, n) == (2.0, 3)
    t = 0.95 / math.sqrt(2 * 0.975 * 0.025)
    assert half_width == pytest.approx(t / math.sqrt(3), rel=1e-9)


def test_t_interval_edge_cases() -> None:
    assert t_interval([5.0, math.nan, 7.0]) == (6.0, pytest.approx(t_interval([5.0, 7.0])[1]), 2)
    mean, half_width, n = t_interval([4.0])
    assert (mean, n) == (4.0, 1) and math.isnan(half_width)
    mean, half_width, n = t_interval([])
    assert n == 0 and math.isnan(mean) and math.isnan(half_width)


def test_estimates_over_replications() -> None:
    scenario = load_scenario("mmc", [*SMALL, "replications=4"])
    seen: list[int] = []
    reps = run_replications(scenario, confidence=0.99, on_done=lambda r: seen.append(r.replication))
    assert seen == [0, 1, 2, 3]
    sojourn = reps.get("requests.sojourn_s", "mean")
    values = [r.value("requests.sojourn_s", "mean") for r in reps.results]
    assert isinstance(sojourn, Estimate) and sojourn.n == 4 and sojourn.confidence == 0.99
    assert (sojourn.mean, sojourn.half_width, sojourn.n) == t_interval(values, 0.99)
    assert sojourn.low < sojourn.mean < sojourn.high
    assert estimate(reps.results, 0.99) == reps.estimates
    frame = reps.to_frame()
    assert {"metric", "statistic", "mean", "ci_low", "ci_high", "half_width", "n"} <= set(frame.columns)
    data = reps.to_json()
    json.dumps(data)
    assert data["replications"] == 4 and data["metrics"]["requests.sojourn_s"]["mean"]["n"] == 4
    with pytest.raises(KeyError):
        reps.get("nope", "mean")
    with pytest.raises(ValueError, match="replications"):
        run_replications(scenario, 0)


@pytest.mark.parametrize(
    "overrides",
    [
        ["requests=5000", "warmup=0.1"],
        ["requests=4001", "warmup=0.25", "servers=2", "arrival_rate=1.6"],
        ["requests=3000", "warmup=0", "discipline=ps"],
    ],
)
def test_warm_up_requests_are_not_measured(overrides: list[str]) -> None:
    """Exactly requests - floor(warmup * requests) requests are measured,
    end to end and at the station, and every one of them completes."""
    scenario = load_scenario("mmc", overrides)
    result = run_replication(scenario, 0)
    measured = scenario.requests - int(scenario.warmup * scenario.requests)
    assert result.value("requests.completed", "count") == measured
    assert result.value("requests.sojourn_s", "count") == measured
    assert result.value("station.sojourn_s", "count") == measured
    assert result.value("station.wait_s", "count") == measured
    assert result.value("requests.dropped", "count") == 0


def test_warm_up_with_drops_counts_each_measured_request_once() -> None:
    scenario = load_scenario("mmc", ["requests=6000", "warmup=0.2", "capacity=2", "arrival_rate=1.5"])
    result = run_replication(scenario, 0)
    completed = result.value("requests.completed", "count")
    dropped = result.value("requests.dropped", "count")
    assert dropped > 0
    assert completed + dropped == 6000 - 1200
    assert result.value("station.dropped", "count") == dropped
