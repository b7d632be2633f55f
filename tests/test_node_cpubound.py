"""Model kind cpubound.compare: the same CPU-bound jobs on Go goroutines and on Node worker threads.

Batches (every job at time 0) have exact answers: both sides keep their 4 cores
busy, so the makespan is the total CPU over 4, and what Node adds (message
copies, worker start-up) shows up in it exactly. Parameters are explicit except
where a test runs the built-in scenario.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from models.services.cpubound import CpuBoundCompare, CpuBoundScenario
from sim.core import Environment
from sim.scenario import ScenarioError, apply_overrides, load_scenario, validate

MIB = 2**20
CPU_S = 5e-3
STACK = 4096.0


def config(**overrides: Any) -> CpuBoundScenario:
    data = {
        "model": "cpubound.compare", "jobs": 1000, "arrival_rate": None,
        "job": {"cpu": CPU_S, "input_bytes": 1000, "output_bytes": 1000},
        "go": {"gomaxprocs": 4, "goroutines": 1000, "gc": {"enabled": False}, "spawn": 0, "stack_bytes": STACK,
               "process_bytes": "4MiB"},
        "node": {"workers": 10, "cores": 4, "gc": {"enabled": False}, "message_cost": [0, 0],
                 "startup": {"isolate": 0, "process_bytes": "40MiB", "isolate_bytes": "8MiB"}},
    }
    return CpuBoundScenario.model_validate(apply_overrides(data, overrides))


def run(scenario: CpuBoundScenario, seed: int = 1) -> Environment:
    env = Environment(seed=seed, scenario=scenario)
    CpuBoundCompare(env, scenario).run()
    return env


def throughput(env: Environment, side: str) -> float:
    return env.metrics.histogram(f"{side}.jobs.throughput_per_second").mean


def test_a_batch_keeps_both_sides_busy_on_four_cores() -> None:
    env = run(config())
    assert env.now == pytest.approx(1000 * CPU_S / 4)
    for side in ("go", "node"):
        assert throughput(env, side) == pytest.approx(4 / CPU_S)
        assert env.metrics.counter(f"{side}.jobs.completed").value == 1000


def test_message_copies_cost_node_throughput() -> None:
    """Each job's 1000-byte input and output cost 50 us + 1 ns per byte each, half on the loop and
    half on a worker, all on the same 4 cores: Node's makespan is the total CPU, 1000 (5 ms + 2 x 51 us),
    over 4 cores, plus at most one job's worth at the end, when fewer than 4 threads are left to run."""
    env = run(config(**{"node.message_cost": [50e-6, 1e-9]}))
    assert throughput(env, "go") == pytest.approx(4 / CPU_S)
    per_job = CPU_S + 2 * 51e-6
    makespan = 1000 / throughput(env, "node")
    assert 1000 * per_job / 4 <= makespan <= 1000 * per_job / 4 + per_job


def test_worker_start_up_delays_the_batch() -> None:
    """Ten workers of 15 ms start-up CPU on 4 cores are all ready at 37.5 ms; the batch ends that much later."""
    env = run(config(**{"node.startup.isolate": "15ms"}))
    assert env.metrics.histogram("node.workers.ready_s").mean == pytest.approx(0.0375)
    assert 1000 / throughput(env, "node") == pytest.approx(1000 * CPU_S / 4 + 0.0375)


def test_a_warm_pool_does_not_delay_the_batch() -> None:
    env = run(config(**{"node.startup.isolate": "15ms", "node.warm_pool": True}))
    assert throughput(env, "node") == pytest.approx(4 / CPU_S)


def test_memory_goroutine_stacks_against_isolates() -> None:
    env = run(config())
    assert env.metrics.gauge("go.memory_in_use_bytes").max == pytest.approx(4 * MIB + 1000 * STACK)
    assert env.metrics.gauge("node.memory_in_use_bytes").max == pytest.approx(40 * MIB + 10 * 8 * MIB)


def test_goroutines_are_bounded() -> None:
    env = run(config(**{"go.goroutines": 100}))
    assert env.metrics.gauge("go.goroutines").max == 100
    assert throughput(env, "go") == pytest.approx(4 / CPU_S)


def test_a_poisson_stream_is_served_by_both_and_reproducible() -> None:
    scenario = config(jobs=3000, arrival_rate="640/s")
    first, second = run(scenario, seed=5), run(scenario, seed=5)
    assert json.dumps(first.metrics.rows()) == json.dumps(second.metrics.rows())
    completed = [first.metrics.counter(f"{side}.jobs.completed").value for side in ("go", "node")]
    assert completed == [2700, 2700]


def test_the_built_in_scenario_is_the_seed_comparison() -> None:
    scenario = load_scenario("cpu-bound-goroutines-vs-workers")
    assert (scenario.go.gomaxprocs, scenario.go.goroutines) == (4, 1000)
    assert (scenario.node.workers, scenario.node.cores) == (10, 4)


def test_bad_fields_are_named() -> None:
    with pytest.raises(ScenarioError, match="node.workers: Input should be greater than or equal to 1"):
        validate({"model": "cpubound.compare", "job": {"cpu": "1ms"}, "node": {"workers": 0}})


def test_the_built_in_scenario_runs_on_calibrated_defaults() -> None:
    """A small run of the shipped scenario: Node's memory is the calibrated process plus ten calibrated
    idle workers (the jobs allocate nothing), Go's the calibrated idle Go process plus the calibrated stack of
    each goroutine alive."""
    from sim.params import param_value
    from sim.run import run_replication

    scenario = load_scenario("cpu-bound-goroutines-vs-workers", {"jobs": 2000})
    result = run_replication(scenario)
    node = param_value("node.process.rss_bytes") + 10 * param_value("node.worker.memory_bytes")
    assert result.value("node.memory_in_use_bytes", "max") == pytest.approx(node)
    go_max = result.value("go.memory_in_use_bytes", "max")
    stacks = result.value("go.goroutines", "max") * param_value("go.goroutine.stack_bytes")
    assert go_max == pytest.approx(param_value("go.process.rss_bytes") + stacks)
    for side in ("go", "node"):
        assert result.value(f"{side}.jobs.completed", "count") == 1800
