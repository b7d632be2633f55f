"""NativeRuntime: micro-stories of its threads, and the runtime held to M/M/K (Erlang C).

Statistical method (as in tests/test_queueing_theory.py): R independent
replications with fixed seeds, each of ``REQUESTS`` Poisson arrivals whose first
10 % are a warm-up; the replication means are i.i.d., so the closed form must lie
inside their 99.9 % Student-t interval (Law, *Simulation Modeling and
Analysis*, 5th ed., §9.4.1), and the interval must be narrow: its half-width
below a bound set about 1.5 times above the half-widths measured when the test
was written, so the check cannot pass by being vague.
"""

from __future__ import annotations

import pytest

from models.queueing import formulas
from models.runtime.native import NativeRuntime
from models.runtime.protocol import Compute, Syscall, Wait
from sim.core import Environment
from sim.dists import Exponential

from poisson_load import check_formula, replicate



def latencies(env: Environment, runtime: NativeRuntime, requests: list) -> list[float]:
    events = [runtime.execute(steps) for steps in requests]
    env.run()
    return [event.value for event in events]


def test_requests_beyond_the_threads_wait_fcfs(env: Environment) -> None:
    runtime = NativeRuntime(env, threads=2)
    assert latencies(env, runtime, [[Compute(1.0)], [Compute(1.0)], [Compute(1.0)]]) == [1.0, 1.0, 2.0]
    waits = env.metrics.histogram("native.queue_wait_s")
    assert (waits.count, waits.max) == (3, 1.0)
    assert env.metrics.gauge("native.threads_busy").max == 2


def test_a_wait_does_not_hold_the_thread(env: Environment) -> None:
    """A worker multiplexes connections: while A waits on I/O, B runs on the only thread."""
    runtime = NativeRuntime(env, threads=1)
    a = [Compute(1.0), Wait(lambda: env.timeout(5.0)), Compute(1.0)]
    assert latencies(env, runtime, [a, [Compute(1.0)]]) == [7.0, 2.0]


def test_a_syscall_blocks_its_thread(env: Environment) -> None:
    runtime = NativeRuntime(env, threads=1)
    assert latencies(env, runtime, [[Syscall(2.0)], [Compute(1.0)]]) == [2.0, 3.0]


def test_consecutive_compute_steps_run_without_requeueing(env: Environment) -> None:
    """A's second Compute continues on its thread; it does not queue behind B."""
    runtime = NativeRuntime(env, threads=1)
    assert latencies(env, runtime, [[Compute(1.0), Compute(1.0)], [Compute(1.0)]]) == [2.0, 3.0]
    assert env.metrics.histogram("native.queue_wait_s").count == 2


def test_copy_cost_is_charged_per_byte(env: Environment) -> None:
    runtime = NativeRuntime(env, threads=1, copy_cost_per_byte_s=1e-9)
    assert latencies(env, runtime, [[Compute(1.0, alloc_bytes=1e6)]]) == [pytest.approx(1.001)]


@pytest.mark.parametrize("field, kwargs", [("threads", {"threads": 0}),
                                           ("copy_cost_per_byte_s", {"threads": 1, "copy_cost_per_byte_s": -1})])
def test_bad_arguments_name_the_field(env: Environment, field: str, kwargs: dict) -> None:
    with pytest.raises(ValueError, match=f"native.{field}"):
        NativeRuntime(env, **kwargs)


# ---------------------------------------------------------------- M/M/K
REPLICATIONS = 20
REQUESTS = 20_000
WARMUP = 0.1


def replicate_mmk(threads: int, arrival_rate: float, mean_service_s: float, seed: int) -> tuple[list, list]:
    """(mean sojourn, mean wait) of each replication of Poisson arrivals on the runtime."""

    def steps(env: Environment):
        service = Exponential(mean_service_s).sampler(env.rng("requests.cpu"))
        return lambda: [Compute(service())]

    return replicate(
        lambda env: NativeRuntime(env, threads), steps, arrival_rate, REQUESTS, REPLICATIONS, seed,
        "native.queue_wait_s", WARMUP,
    )


@pytest.mark.parametrize("threads, rho, bound, wait_bound", [(4, 0.8, 0.075, 0.16)])
def test_native_runtime_is_mmk(threads: int, rho: float, bound: float, wait_bound: float) -> None:
    """Sojourn and wait against Erlang C. Half-widths measured over seeds 1, 2, 4242:
    sojourn 4.8, 3.9, 3.3 %; wait 10.6, 8.3, 7.2 % (the bounds are 1.5 times the largest)."""
    mean_service_s = 1e-3
    arrival_rate = rho * threads / mean_service_s
    sojourns, waits = replicate_mmk(threads, arrival_rate, mean_service_s, seed=4242)
    check_formula(sojourns, formulas.mmc_mean_sojourn(arrival_rate, 1 / mean_service_s, threads), bound,
                  "Erlang C sojourn", REPLICATIONS)
    check_formula(waits, formulas.mmc_mean_wait(arrival_rate, 1 / mean_service_s, threads), wait_bound,
                  "Erlang C wait", REPLICATIONS)


def test_native_runtime_satisfies_the_runtime_protocol(env: Environment) -> None:
    from models.runtime.protocol import Runtime

    assert isinstance(NativeRuntime(env, threads=1), Runtime)


# ---------------------------------------------------------------- model kind native.service
def test_native_service_charges_the_copies() -> None:
    """At 1 request/s requests never meet: 1 ms of CPU plus 200 kB copied at 1 ns per byte."""
    from models.services.node import NativeServiceModel
    from sim.scenario import load_scenario

    config = load_scenario({
        "model": "native.service", "arrival_rate": "1/s", "requests": 50, "threads": 2,
        "copy_cost_per_byte_s": 1e-9, "handler": {"cpu": "1ms", "request_bytes": 1e5, "response_bytes": 1e5}})
    env = Environment(seed=1, scenario=config)
    NativeServiceModel(env, config).run()
    sojourn = env.metrics.histogram("requests.sojourn_s")
    assert (sojourn.count, sojourn.min, sojourn.max) == (45, pytest.approx(1.2e-3), pytest.approx(1.2e-3))


def test_native_service_names_a_bad_field() -> None:
    from sim.scenario import ScenarioError, validate

    with pytest.raises(ScenarioError, match="threads: Input should be greater than or equal to 1"):
        validate({"model": "native.service", "arrival_rate": 10, "threads": 0, "handler": {"cpu": "1ms"}})
