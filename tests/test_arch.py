"""Model kind ``arch``: closed forms where they exist, the balancers' documented semantics as small
deterministic stories, the per-request breakdown, and bad input named by its field."""

from __future__ import annotations

import numpy as np
import pytest
from poisson_load import check_formula

from models.arch.balancers import LeastRequest, Random, RingHash, RoundRobin
from models.queueing import formulas
from sim.run import run_replication, run_replications
from sim.scenario import ScenarioError, load_scenario

REPLICATIONS = 30


def scenario(services: dict, **fields) -> dict:
    return {"model": "arch", "requests": 4000, "warmup": 0.1, "workload": {"rate": 500, "entry": "a"},
            "network": {"latency": "0.5ms"}, "nodes": {"count": 1, "cores": 1}, "services": services, **fields}


def cpu(mean: str) -> dict:
    return {"cpu": {"dist": "exp", "mean": mean}}


def means(data: dict, metric: str, seed: int) -> list[float]:
    reps = run_replications(load_scenario({**data, "seed": seed}), REPLICATIONS)
    return [result.value(metric, "mean") for result in reps.results]


def test_one_service_on_one_core_is_an_mm1_queue_plus_the_round_trip():
    """Poisson requests, exponential CPU on one core, a constant hop each way: E[T] = 2d + 1 / (mu - lambda)."""
    data = scenario({"a": {"handler": [cpu("1ms")]}})
    theory = 2 * 0.5e-3 + formulas.mmc_mean_sojourn(500, 1000, 1)
    check_formula(means(data, "requests.sojourn_s", 11), theory, 0.04, "M/M/1 + round trip", REPLICATIONS)


def test_a_chain_on_separate_nodes_is_a_jackson_tandem():
    """a -> b, each on its own single-core node: the sum of two M/M/1 sojourns and two round trips."""
    data = scenario({"a": {"handler": [cpu("1ms"), {"call": {"service": "b"}}]},
                     "b": {"handler": [cpu("0.5ms")]}}, nodes={"count": 2, "cores": 1})
    theory = 4 * 0.5e-3 + formulas.mmc_mean_sojourn(500, 1000, 1) + formulas.mmc_mean_sojourn(500, 2000, 1)
    check_formula(means(data, "requests.sojourn_s", 12), theory, 0.04, "tandem", REPLICATIONS)


def test_the_breakdown_sums_to_the_end_to_end_latency():
    """Network, queueing and CPU along each request's critical path add up to its latency (so do their
    means), with parallel calls and a call made with a probability."""
    data = scenario({
        "a": {"replicas": 2, "balancer": "least_request", "concurrency": 2,
              "handler": [cpu("0.3ms"), {"parallel": [{"service": "b", "request": "4KiB"},
                                                      {"service": "c", "probability": 0.5}]}]},
        "b": {"replicas": 3, "handler": [cpu("0.6ms")]},
        "c": {"replicas": 2, "balancer": "ring_hash", "handler": [cpu("1ms")]},
    }, nodes={"count": 3, "cores": 2}, network={"latency": {"dist": "exp", "mean": "0.2ms"}, "local": "20us",
                                                "bandwidth": "100MB"})
    run = run_replication(load_scenario(data))
    parts = sum(run.value(f"breakdown.{kind}_s", "mean") for kind in ("network", "queue", "cpu"))
    assert parts == pytest.approx(run.value("requests.sojourn_s", "mean"), rel=1e-9)
    assert run.value("breakdown.queue_s", "mean") > 0 and run.value("breakdown.network_s", "mean") > 0
    assert run.value("service.c.requests", "count") == pytest.approx(run.value("service.a.requests", "count") / 2,
                                                                     rel=0.05)


def test_parallel_calls_end_with_the_slowest():
    """Constant times: a fans out to b (1 ms) and c (3 ms) at once; the request takes the slower branch
    (cores enough that even requests close together never queue)."""
    data = scenario({"a": {"handler": [{"parallel": [{"service": "b"}, {"service": "c"}]}]},
                     "b": {"handler": [{"cpu": "1ms"}]}, "c": {"handler": [{"cpu": "3ms"}]}},
                    requests=50, workload={"rate": 1, "entry": "a"}, nodes={"count": 1, "cores": 4},
                    network={"latency": "0.5ms", "local": "0.1ms"})
    run = run_replication(load_scenario(data))
    assert run.value("requests.sojourn_s", "max") == pytest.approx(1e-3 + 2 * 0.1e-3 + 3e-3, rel=1e-9)
    assert run.value("requests.sojourn_s", "min") == pytest.approx(run.value("requests.sojourn_s", "max"))
    assert run.value("breakdown.cpu_s", "mean") == pytest.approx(3e-3)


def test_round_robin_takes_the_replicas_in_turn():
    balancer = RoundRobin(3)
    assert [balancer.pick(0) for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    data = scenario({"a": {"replicas": 3, "handler": [{"cpu": "1ms"}]}}, requests=30,
                    workload={"rate": 10, "entry": "a"}, warmup=0)
    run = run_replication(load_scenario(data))
    assert [run.value(f"pod.a-{i}.requests", "count") for i in range(3)] == [10, 10, 10]


def test_random_is_uniform():
    balancer = Random(4, np.random.default_rng(4))
    picks = np.bincount([balancer.pick(0) for _ in range(40_000)], minlength=4)
    expected = picks.sum() / 4
    assert np.all(np.abs(picks - expected) < 5 * np.sqrt(expected * 3 / 4))  # five binomial deviations


def test_least_request_never_picks_the_busiest_of_three_and_follows_completions():
    balancer = LeastRequest(3, np.random.default_rng(5))
    balancer.active = [3, 0, 0]
    picks = []
    for _ in range(200):
        choice = balancer.pick(0)
        picks.append(choice)
        balancer.done(choice)  # each ends before the next: the counts stay [3, 0, 0]
    assert 0 not in picks and {1, 2} <= set(picks)
    two = LeastRequest(2, np.random.default_rng(6))
    two.active = [0, 1]
    assert two.pick(0) == 0 and two.active == [1, 1]


def test_ring_hash_is_consistent():
    """One key always reaches one replica; keys spread over the replicas; a fourth replica takes about a
    quarter of the keys, all from the others, and moves no key between the first three."""
    names = ["svc-0", "svc-1", "svc-2"]
    ring = RingHash(names)
    keys = range(20_000)
    before = [ring.pick(key) for key in keys]
    assert before == [ring.pick(key) for key in keys]
    shares = np.bincount(before, minlength=3) / len(before)
    assert np.all(np.abs(shares - 1 / 3) < 0.08)
    after = [RingHash([*names, "svc-3"]).pick(key) for key in keys]
    moved = [(b, a) for b, a in zip(before, after, strict=True) if a != b]
    assert all(a == 3 for _, a in moved)
    assert abs(len(moved) / len(before) - 1 / 4) < 0.08


def test_the_same_seed_gives_the_same_run():
    data = scenario({"a": {"replicas": 2, "balancer": "random", "handler": [cpu("1ms")]}}, requests=500)
    assert run_replication(load_scenario(data)).rows == run_replication(load_scenario(data)).rows


@pytest.mark.parametrize("services, fields, message", [
    ({"a": {"handler": [{"call": {"service": "b"}}]}, "b": {"handler": [{"call": {"service": "a"}}]}}, {},
     "the calls form a cycle (a -> b -> a)"),
    ({"a": {"handler": [{"call": {"service": "x"}}]}}, {}, "services.a.handler.0.call.service: no service 'x'"),
    ({"a": {"handler": [{"parallel": [{"service": "a"}]}]}}, {}, "the calls form a cycle (a -> a)"),
    ({"a": {"replicas": 0, "handler": [{"cpu": "1ms"}]}}, {}, "services.a.replicas"),
    ({"a": {"handler": [{"cpu": "1ms", "call": {"service": "a"}}]}}, {}, "exactly one of cpu, call, parallel"),
    ({"a": {"handler": [{"call": {"service": "a", "probability": 1.5}}]}}, {}, "probability"),
    ({"a": {"handler": []}}, {}, "services.a.handler"),
    ({"a": {"handler": [{"cpu": "1ms"}]}}, {"workload": {"rate": 5, "entry": "b"}},
     "workload.entry: no service 'b'"),
    ({"a": {"balancer": "fastest", "handler": [{"cpu": "1ms"}]}}, {}, "services.a.balancer"),
    ({"a": {"handler": [{"cpu": "2/s"}]}}, {}, "services.a.handler.0.cpu: expected a duration, not a rate"),
    ({"a": {"handler": [{"call": {"service": "a", "request": "2ms"}}]}}, {}, "services.a.handler.0.call.request"),
])
def test_bad_architectures_are_named(services, fields, message):
    with pytest.raises(ScenarioError) as error:
        load_scenario(scenario(services, **fields))
    assert message in str(error.value)


def test_every_pod_shares_its_nodes_cores():
    """Two services' pods on one single-core node: their CPU steps queue for the one core (busy 0.75)."""
    data = scenario({"a": {"handler": [{"cpu": "1ms"}, {"call": {"service": "b"}}]},
                     "b": {"handler": [{"cpu": "0.5ms"}]}}, requests=4000)
    run = run_replication(load_scenario(data))
    assert run.value("node.node0.busy_cores", "mean") == pytest.approx(0.75, rel=0.06)
