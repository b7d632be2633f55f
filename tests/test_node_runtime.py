"""NodeRuntime: micro-stories of the event loop and the libuv pool, and the loop held to M/G/1.

Statistical method (as in tests/test_queueing_theory.py): R independent
replications with fixed seeds, each of ``REQUESTS`` Poisson arrivals whose first
10 % are a warm-up; the replication means are i.i.d., so the closed form must lie
inside their 99.9 % Student-t interval (Law, *Simulation Modeling and
Analysis*, 5th ed., §9.4.1), and the interval must be narrow: its half-width
below a bound set about 1.5 times above the half-widths measured when the test
was written.
"""

from __future__ import annotations

import pytest

from models.queueing import formulas
from models.runtime.node.loop import NodeRuntime
from models.runtime.node.steps import Await, NextTick, QueueMicrotask
from models.runtime.protocol import Compute, Syscall, Wait
from sim.core import Environment
from sim.dists import Exponential, Gamma

from poisson_load import check_formula, poisson_latencies, replicate



def run_all(env: Environment, runtime: NodeRuntime, requests: list) -> list[float]:
    events = [runtime.execute(steps, label=f"r{i}") for i, steps in enumerate(requests)]
    env.run()
    return [event.value for event in events]


def test_microtasks_run_before_the_next_macrotask(env: Environment) -> None:
    """A's continuation after ``await`` runs before B's first callback, though B was ready first."""
    trace: list = []
    runtime = NodeRuntime(env, trace=trace)
    a = [Compute(1.0), Await(), Compute(1.0)]
    assert run_all(env, runtime, [a, [Compute(1.0)]]) == [2.0, 3.0]
    assert trace == [(0.0, "macro", "r0"), (1.0, "micro", "r0"), (2.0, "macro", "r1")]


def test_nextticks_drain_before_promise_microtasks(env: Environment) -> None:
    """Node's order: the nextTick queue, then every promise microtask (even one queued by a
    microtask), then a nextTick queued by a microtask, then the next macrotask."""
    trace: list = []
    runtime = NodeRuntime(env, trace=trace)
    a = [
        QueueMicrotask([Compute(1.0), QueueMicrotask([Compute(1.0)], "p2"), NextTick([Compute(1.0)], "t2")], "p1"),
        NextTick([Compute(1.0)], "t1"),
        Compute(1.0),
    ]
    run_all(env, runtime, [a, [Compute(1.0)]])
    assert [(time, label) for time, _, label in trace] == [
        (0.0, "r0"), (1.0, "t1"), (2.0, "p1"), (3.0, "p2"), (4.0, "t2"), (5.0, "r1"),
    ]


def test_a_cpu_heavy_handler_delays_a_light_one(env: Environment) -> None:
    runtime = NodeRuntime(env)
    heavy = runtime.execute([Compute(0.1)])
    env.run(until=0.01)
    light = runtime.execute([Compute(0.001)])
    env.run(until=1)
    assert heavy.value == pytest.approx(0.1)
    assert light.value == pytest.approx(0.091)
    assert env.metrics.histogram("node.loop_lag_s").max == pytest.approx(0.09)


def test_io_completions_reenter_in_fifo_order(env: Environment) -> None:
    """B's I/O completes before A's while the loop is busy with C: B's callback runs first."""
    trace: list = []
    runtime = NodeRuntime(env, trace=trace)
    a = [Wait(lambda: env.timeout(2.0)), Compute(1.0)]
    b = [Wait(lambda: env.timeout(1.0)), Compute(1.0)]
    c = [Compute(5.0)]
    assert run_all(env, runtime, [a, b, c]) == [7.0, 6.0, 5.0]
    assert [label for _, kind, label in trace if kind == "macro"][3:] == ["r1", "r0"]


def test_a_wait_does_not_block_the_loop(env: Environment) -> None:
    runtime = NodeRuntime(env)
    assert run_all(env, runtime, [[Wait(lambda: env.timeout(3.0))], [Compute(1.0)]]) == [3.0, 1.0]


def test_the_threadpool_saturates_at_four_and_the_fifth_waits(env: Environment) -> None:
    runtime = NodeRuntime(env)
    latencies = run_all(env, runtime, [[Syscall(1.0)] for _ in range(5)] + [[Compute(0.5)]])
    assert latencies == [1.0, 1.0, 1.0, 1.0, 2.0, 0.5]
    waits = env.metrics.histogram("node.threadpool.wait_s")
    assert (waits.count, waits.max) == (5, 1.0)
    assert env.metrics.gauge("node.threadpool.busy").max == 4


def test_threadpool_size_is_a_parameter(env: Environment) -> None:
    runtime = NodeRuntime(env, threadpool_size=5)
    assert run_all(env, runtime, [[Syscall(1.0)] for _ in range(5)]) == [1.0] * 5
    with pytest.raises(ValueError, match="node.threadpool_size"):
        NodeRuntime(env, threadpool_size=0)


def test_an_unknown_step_is_refused(env: Environment) -> None:
    runtime = NodeRuntime(env)
    runtime.execute(["not a step"])
    with pytest.raises(TypeError, match="unsupported step"):
        env.run()


# ---------------------------------------------------------------- M/G/1
REPLICATIONS = 20
REQUESTS = 20_000
WARMUP = 0.1


def replicate_mg1(arrival_rate: float, service: Gamma, seed: int) -> tuple[list, list]:
    """(mean sojourn, mean loop lag) of each replication of Poisson requests, one CPU-bound callback each."""

    def steps(env: Environment):
        draw_cpu = service.sampler(env.rng("requests.cpu"))
        return lambda: [Compute(draw_cpu())]

    return replicate(NodeRuntime, steps, arrival_rate, REQUESTS, REPLICATIONS, seed, "node.loop_lag_s", WARMUP)


@pytest.mark.parametrize("rho, cv, bound, lag_bound", [(0.7, 1.5, 0.075, 0.09)])
def test_one_loop_is_mg1(rho: float, cv: float, bound: float, lag_bound: float) -> None:
    """CPU-bound handlers on one loop are M/G/1 FCFS: Pollaczek–Khinchine mean sojourn, and the
    loop lag of a request's first callback is the M/G/1 wait. Gamma service, cv 1.5. Half-widths
    measured over seeds 1, 2, 2718: sojourn 4.2, 4.9, 4.3 %; lag 5.2, 6.1, 5.2 % (bounds: 1.5 times
    the largest)."""
    service = Gamma.from_mean_cv(1e-3, cv)
    arrival_rate = rho / service.mean
    sojourns, lags = replicate_mg1(arrival_rate, service, seed=2718)
    check_formula(sojourns, formulas.mg1_mean_sojourn(arrival_rate, service.mean, service.second_moment), bound,
                  "P-K sojourn", REPLICATIONS)
    check_formula(lags, formulas.mg1_mean_wait(arrival_rate, service.mean, service.second_moment), lag_bound,
                  "P-K wait against the loop lag", REPLICATIONS)


def test_node_runtime_satisfies_the_runtime_protocol(env: Environment) -> None:
    from models.runtime.protocol import Runtime

    assert isinstance(NodeRuntime(env), Runtime)


def test_same_seed_same_latencies() -> None:
    service = Gamma.from_mean_cv(1e-3, 1.5)
    first = [_one_replication(service, 1.0 / service.mean * 0.7, seed=7) for _ in range(2)]
    assert first[0] == first[1]


def _one_replication(service: Gamma, arrival_rate: float, seed: int) -> list[float]:
    env = Environment(seed=seed)
    draw_cpu = service.sampler(env.rng("requests.cpu"))
    return poisson_latencies(env, NodeRuntime(env), arrival_rate, lambda: [Compute(draw_cpu())], 500)


# ---------------------------------------------------------------- the pool as M/M/c
POOL_REQUESTS = 10_000


def replicate_pool(arrival_rate: float, mean_syscall_s: float, seed: int) -> tuple[list, list]:
    """(mean sojourn, mean pool wait) of each replication of Poisson requests, one Syscall each."""

    def steps(env: Environment):
        draw_syscall = Exponential(mean_syscall_s).sampler(env.rng("requests.syscall"))
        return lambda: [Syscall(draw_syscall())]

    return replicate(
        NodeRuntime, steps, arrival_rate, POOL_REQUESTS, REPLICATIONS, seed, "node.threadpool.wait_s", WARMUP
    )


@pytest.mark.parametrize("rho, bound, wait_bound", [(0.8, 0.095, 0.2)])
def test_the_threadpool_is_mmc(rho: float, bound: float, wait_bound: float) -> None:
    """Syscalls only (the loop does no CPU work): the 4-thread pool is M/M/4, Erlang C.
    Half-widths measured over seeds 1, 2, 1618: sojourn 6.1, 4.4, 5.8 %; pool wait 13.4, 9.5,
    13.0 % (bounds: 1.5 times the largest)."""
    mean_syscall_s = 1e-3
    servers = 4
    arrival_rate = rho * servers / mean_syscall_s
    sojourns, waits = replicate_pool(arrival_rate, mean_syscall_s, seed=1618)
    check_formula(sojourns, formulas.mmc_mean_sojourn(arrival_rate, 1 / mean_syscall_s, servers), bound,
                  "Erlang C sojourn", REPLICATIONS)
    check_formula(waits, formulas.mmc_mean_wait(arrival_rate, 1 / mean_syscall_s, servers), wait_bound,
                  "Erlang C wait for a pool thread", REPLICATIONS)


def test_a_gc_pause_blocks_the_loop(env: Environment) -> None:
    """A's callback fills the 1 MiB nursery: its 10 ms scavenge lengthens that callback, and B, ready
    at the same time, waits for it too."""
    from models.runtime.node.gc import V8GCConfig, V8Heap

    gc = V8GCConfig(semi_space=2**20, scavenge_pause=(0.01, 0.0), markcompact_pause=(0.0, 0.0))
    runtime = NodeRuntime(env, heap=V8Heap(env, gc))
    assert run_all(env, runtime, [[Compute(1.0, alloc_bytes=2**20)], [Compute(1.0)]]) == [
        pytest.approx(1.01), pytest.approx(2.01)]
    assert env.metrics.histogram("node.gc.scavenge_pause_s").count == 1


def test_a_request_is_told_the_pauses_of_its_own_callbacks(env: Environment) -> None:
    """The same story with RequestTimes: A ran the 10 ms scavenge in its callback, so that is its GC time;
    B waited behind it on the loop, which is loop lag, not B's GC."""
    from models.runtime.node.gc import V8GCConfig, V8Heap
    from models.runtime.protocol import RequestTimes

    gc = V8GCConfig(semi_space=2**20, scavenge_pause=(0.01, 0.0), markcompact_pause=(0.0, 0.0))
    runtime = NodeRuntime(env, heap=V8Heap(env, gc))
    a_times, b_times = RequestTimes(), RequestTimes()
    a = runtime.execute([Compute(1.0, alloc_bytes=2**20)], a_times)
    b = runtime.execute([Compute(1.0)], b_times)
    env.run(until=env.all_of([a, b]))
    assert (a.value, b.value) == (pytest.approx(1.01), pytest.approx(2.01))
    assert a_times.gc_s == pytest.approx(0.01) and a_times.assist_s == 0.0
    assert b_times.gc_s == 0.0
