"""Invariants of random small station scenarios, checked with hypothesis.

The profile (tests/conftest.py) is derandomized, so these run the same
examples every time. Each example is a whole simulation of a few hundred
requests at most.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.queueing.builders import StationModel, StationScenario
from sim.core import Environment
from sim.run import run_replication
from sim.scenario import load_scenario

SERVICES = st.one_of(
    st.builds(lambda mean: {"dist": "exp", "mean": mean}, st.floats(0.05, 2.0)),
    st.builds(lambda value: {"dist": "const", "value": value}, st.floats(0.0, 2.0)),
    st.builds(lambda median: {"dist": "lognormal", "median": median, "p99": 8 * median}, st.floats(0.05, 1.0)),
    st.builds(lambda mean, cv: {"dist": "gamma", "mean": mean, "cv": cv}, st.floats(0.05, 2.0), st.floats(0.2, 3.0)),
)


@st.composite
def station_scenarios(draw) -> StationScenario:
    servers = draw(st.integers(1, 3))
    capacity = draw(st.one_of(st.none(), st.integers(servers, servers + 4)))
    data = {
        "model": "queueing.station",
        "servers": servers,
        "capacity": capacity,
        "discipline": draw(st.sampled_from(["fcfs", "ps"])),
        "arrival_rate": draw(st.floats(0.1, 5.0)),
        "service": draw(SERVICES),
        "requests": draw(st.integers(1, 300)),
        "warmup": draw(st.sampled_from([0.0, 0.1, 0.5, 0.9])),
        "seed": draw(st.integers(0, 2**32)),
    }
    return load_scenario(data)


def stepped(scenario: StationScenario) -> tuple[Environment, list[float]]:
    """Build the model and advance it one event at a time until it is done."""
    env = Environment(seed=scenario.seed, replication=0, scenario=scenario)
    model = StationModel(env, scenario)
    times = [env.now]
    while not model.done.triggered:
        env.step()
        times.append(env.now)
    return env, times


def table(rows) -> dict[tuple[str, str], float]:
    return {(metric, statistic): value for metric, statistic, value in rows}


@given(station_scenarios())
def test_every_measured_request_is_completed_or_dropped(scenario: StationScenario) -> None:
    rows = table(run_replication(scenario).rows)
    measured = scenario.requests - scenario.warmup_requests
    completed, dropped = rows[("requests.completed", "count")], rows[("requests.dropped", "count")]
    assert completed + dropped == measured
    assert rows[("requests.sojourn_s", "count")] == completed
    assert rows[("station.completed", "count")] == completed
    assert rows[("station.dropped", "count")] == dropped
    if scenario.capacity is None:
        assert dropped == 0


@given(station_scenarios())
def test_time_never_runs_backwards(scenario: StationScenario) -> None:
    env, times = stepped(scenario)
    assert all(later >= earlier for earlier, later in zip(times, times[1:]))
    assert times[0] == 0.0
    # stepping by hand ends where run() ends, with the same metrics
    assert json.dumps(env.metrics.rows()) == json.dumps(run_replication(scenario).rows)


@given(station_scenarios())
def test_times_and_levels_are_never_negative(scenario: StationScenario) -> None:
    rows = table(run_replication(scenario).rows)
    for metric in ("requests.sojourn_s", "station.sojourn_s", "station.wait_s"):
        if rows[(metric, "count")] > 0:
            assert rows[(metric, "min")] >= 0
            assert rows[(metric, "min")] <= rows[(metric, "p50")] <= rows[(metric, "max")]
    if rows[("station.wait_s", "count")] > 0:
        assert rows[("station.wait_s", "max")] <= rows[("station.sojourn_s", "max")] + 1e-12
    if scenario.discipline == "ps":
        assert rows[("station.wait_s", "count")] == 0 or rows[("station.wait_s", "max")] == 0
    assert 0 <= rows[("station.utilisation", "mean")] <= 1 + 1e-12
    assert rows[("requests.in_system", "mean")] >= 0
    if scenario.capacity is not None:
        assert rows[("station.in_system", "max")] <= scenario.capacity


@given(station_scenarios())
def test_littles_law_holds_on_every_sample_path(scenario: StationScenario) -> None:
    """Over the measured window, the area under the number-in-system curve is
    the sum of the measured sojourns plus what the warm-up requests still
    present at the reset spend after it: never less than the sojourns, and
    equal when there is no warm-up."""
    result = run_replication(scenario)
    rows = table(result.rows)
    completed = rows[("requests.completed", "count")]
    if completed == 0 or math.isnan(rows[("requests.completed", "rate")]):
        return
    elapsed = completed / rows[("requests.completed", "rate")]
    area = rows[("requests.in_system", "mean")] * elapsed
    sojourns = rows[("requests.sojourn_s", "mean")] * completed
    assert area >= sojourns * (1 - 1e-9) - 1e-9
    if scenario.warmup_requests == 0:
        assert area == pytest.approx(sojourns, rel=1e-9, abs=1e-9)


@given(station_scenarios())
def test_same_seed_same_result(scenario: StationScenario) -> None:
    first = run_replication(scenario, 1)
    again = run_replication(load_scenario(first.scenario), 1)
    assert json.dumps(first.rows) == json.dumps(again.rows)
