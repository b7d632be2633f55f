"""Model kind node.service: a CPU-bound Node service reduces to M/G/1 on the loop,
to M/M/K with K worker threads, and K > cores workers share the cores (M/M/cores in the mean).

Statistical method (as in tests/test_queueing_theory.py): R independent
replications with fixed seeds, each of ``REQUESTS`` Poisson arrivals whose first
10 % are a warm-up; the closed form must lie inside the 99.9 % Student-t interval
of the replication means (Law, *Simulation Modeling and Analysis*, 5th ed.,
§9.4.1), and the interval must be narrow: its half-width below a bound set about
1.5 times above the largest half-width measured over three seeds when the test
was written (named in each test). The collector is off and copies are free in
these tests, so the formulas apply exactly.
"""

from __future__ import annotations

from typing import Any

import pytest

from models.queueing import formulas
from models.services.node import NodeServiceModel, NodeServiceScenario
from sim.core import Environment
from sim.dists import Gamma
from sim.scenario import ScenarioError, validate

from poisson_load import check_formula

REPLICATIONS = 20
REQUESTS = 20_000
MIB = 2**20
FREE = {"gc": {"enabled": False}, "message_cost": [0, 0],
        "startup": {"isolate": 0, "isolate_bytes": "8MiB", "process_bytes": "40MiB"}}


def scenario(**fields: Any) -> NodeServiceScenario:
    return NodeServiceScenario.model_validate({"model": "node.service", "requests": REQUESTS, **FREE, **fields})


def replicate(config: NodeServiceScenario, seed: int, wait_metric: str) -> tuple[list[float], list[float]]:
    """(mean sojourn, mean of ``wait_metric``) of each replication."""
    sojourns, waits = [], []
    for replication in range(REPLICATIONS):
        env = Environment(seed=seed, replication=replication, scenario=config)
        NodeServiceModel(env, config).run()
        sojourns.append(env.metrics.histogram("requests.sojourn_s").mean)
        waits.append(env.metrics.histogram(wait_metric).mean)
    return sojourns, waits


def check(values: list[float], theory: float, bound: float, what: str) -> None:
    check_formula(values, theory, bound, what, REPLICATIONS)


def test_one_loop_is_mg1() -> None:
    """workers: 0, Gamma service of cv 0.5 at load 0.7: Pollaczek–Khinchine sojourn, and the loop lag is
    the M/G/1 wait. Half-widths over seeds 1, 2, 3141: sojourn 2.6, 2.7, 2.7 %; lag 4.4, 4.3, 4.5 %."""
    service = Gamma.from_mean_cv(1e-3, 0.5)
    rate = 0.7 / service.mean
    sojourns, lags = replicate(scenario(arrival_rate=rate, handler={"cpu": service.spec()}), 3141, "node.loop_lag_s")
    check(sojourns, formulas.mg1_mean_sojourn(rate, service.mean, service.second_moment), 0.041, "P-K sojourn")
    check(lags, formulas.mg1_mean_wait(rate, service.mean, service.second_moment), 0.068, "P-K wait")


def test_k_workers_are_mmk() -> None:
    """workers: 4, a core each, exponential service at load 0.8: Erlang C sojourn and wait for a
    worker. Half-widths over seeds 1, 2, 32: sojourn 4.8, 3.9, 4.0 %; wait 10.6, 8.3, 8.8 %."""
    rate = 0.8 * 4 / 1e-3
    config = scenario(arrival_rate=rate, handler={"cpu": {"dist": "exp", "mean": 1e-3}}, workers=4)
    sojourns, waits = replicate(config, 32, "node.workers.queue_wait_s")
    check(sojourns, formulas.mmc_mean_sojourn(rate, 1e3, 4), 0.073, "Erlang C sojourn")
    check(waits, formulas.mmc_mean_wait(rate, 1e3, 4), 0.16, "Erlang C wait")


def test_more_workers_than_cores_share_them() -> None:
    """workers: 10 on cores: 4, exponential service at load 0.8 of the cores: with n jobs present the
    cores serve min(n, 4) jobs' worth of work per second, as M/M/4, so the mean sojourn is Erlang C's
    (though each job is time-shared). Half-widths over seeds 1, 2, 1729: 4.9, 3.8, 3.7 %."""
    rate = 0.8 * 4 / 1e-3
    config = scenario(arrival_rate=rate, handler={"cpu": {"dist": "exp", "mean": 1e-3}}, workers=10, cores=4)
    sojourns, _ = replicate(config, 1729, "node.workers.queue_wait_s")
    check(sojourns, formulas.mmc_mean_sojourn(rate, 1e3, 4), 0.073, "M/M/4 sojourn")


def run_once(config: NodeServiceScenario) -> Environment:
    env = Environment(seed=1, scenario=config)
    NodeServiceModel(env, config).run()
    return env


def test_copies_lengthen_each_request_on_both_threads() -> None:
    """At a load low enough that requests never meet: 1 ms of CPU, plus a 1000-byte request and a
    3000-byte reply at 10 us + 10 ns per byte, each message half on the loop and half on a worker:
    1 ms + (20 + 40) us."""
    config = scenario(arrival_rate="1/s", requests=200, workers=2, message_cost=[10e-6, 10e-9],
                      handler={"cpu": "1ms", "request_bytes": 1000, "response_bytes": 3000})
    sojourn = run_once(config).metrics.histogram("requests.sojourn_s")
    assert sojourn.min == pytest.approx(1.06e-3, rel=1e-6)
    assert sojourn.max == pytest.approx(1.06e-3, rel=1e-6)


def test_memory_counts_the_process_the_isolates_and_the_heaps() -> None:
    config = scenario(arrival_rate="100/s", requests=100, workers=3, handler={"cpu": "1ms"},
                      gc={"live_heap": "2MiB", "scavenge_pause": [0, 0], "markcompact_pause": [0, 0]})
    memory = run_once(config).metrics.gauge("node.memory_in_use_bytes")
    assert memory.level == pytest.approx(40 * MIB + 3 * 8 * MIB + 4 * 2 * MIB)


@pytest.mark.parametrize("field, value, message", [
    ("workers", -1, "workers: Input should be greater than or equal to 0"),
    ("cores", 0, "cores: Input should be greater than or equal to 1"),
    ("handler", {"cpu": "1ms", "colour": 1}, "handler.colour: unknown key"),
])
def test_bad_fields_are_named(field: str, value: Any, message: str) -> None:
    data = {"model": "node.service", "arrival_rate": 10, "handler": {"cpu": "1ms"}, field: value}
    with pytest.raises(ScenarioError, match=message):
        validate(data)


@pytest.mark.parametrize("reuse, workers, extra_s", [("context", 0, 0.0), ("isolate", 0, 250e-6),
                                                      ("isolate", 2, 250e-6), ("none", 0, 20.05e-3)])
def test_reuse_policy_adds_its_start_up_to_each_request(reuse: str, workers: int, extra_s: float) -> None:
    """Requests that never meet (the workers started long before the first measured one): 1 ms of
    handler plus what the policy costs (context 200 us and script 50 us for a fresh context; isolate
    15 ms, script and modules 5 ms for a fresh isolate)."""
    startup = {**FREE["startup"], "isolate": "15ms", "context": "200us", "script": "50us", "modules": "5ms"}
    config = scenario(arrival_rate="1/s", requests=50, workers=workers, reuse=reuse, startup=startup,
                      handler={"cpu": "1ms"})
    sojourn = run_once(config).metrics.histogram("requests.sojourn_s")
    assert (sojourn.min, sojourn.max) == (pytest.approx(1e-3 + extra_s), pytest.approx(1e-3 + extra_s))
