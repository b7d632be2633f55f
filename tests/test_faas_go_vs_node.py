"""The built-in scenario ``faas-go-vs-node``, some of its functions run: cost per million, cold starts by runtime."""

from __future__ import annotations

import math

from sim.core import Environment
from sim.scenario import load_scenario, read_source
from models.faas.model import FaasModel

PRICE_GB_S, PRICE_REQUEST, GB = 0.0000166667, 0.20e-6, 128 / 1024  # Lambda's prices, 128 MiB (the scenario's)


def run_part(functions: list[str], duration: float, seed: int = 3) -> Environment:
    """The scenario's ``functions`` alone, for ``duration`` seconds, no warm-up."""
    data = read_source("faas-go-vs-node")
    data["functions"] = {name: data["functions"][name] for name in functions}
    data.update(duration=duration, warmup=0)
    config = load_scenario(data)
    env = Environment(seed=seed, scenario=config)
    FaasModel(env, config).run()
    return env


def test_cost_per_million_is_the_request_price_plus_billed_memory_time():
    # the request price plus 128 MiB x the handler's time rounded up to 1 ms. For an exponential of mean 20 ms,
    # E[ceil to 1 ms] = 1 ms / (1 - exp(-1/20)); the estimate's standard deviation is about price x 20 ms / sqrt(n):
    # held within four of them
    names = ["lambda-node-100rps", "knative-go-100rps"]
    env = run_part(names, 300)
    hists, counters = env.metrics.histograms, env.metrics.counters
    expected = (PRICE_REQUEST + GB * 0.001 / (1 - math.exp(-1 / 20)) * PRICE_GB_S) * 1e6
    for name in names:
        n = counters[f"function.{name}.requests.completed"].value
        got = hists[f"function.{name}.cost.usd_per_million_requests"].mean
        assert abs(got - expected) < 4 * GB * PRICE_GB_S * 1e6 * 0.020 / math.sqrt(n)


def test_at_low_traffic_knative_scales_to_zero_and_node_waits_longer_than_go():
    # one request per 100 s: Knative's pod goes about 90 s after a request (stable window, grace period), so a
    # large share of requests start cold and wait in the activator for the whole cold start (Firecracker's 125 ms
    # and the runtime's measured process start); Lambda's 10-minute keep-alive leaves almost none cold
    # (P(gap > 600 s) = exp(-6) = 0.25 %)
    names = ["knative-go-0.01rps", "knative-node-0.01rps", "lambda-go-0.01rps"]
    env = run_part(names, 20_000)
    hists, counters = env.metrics.histograms, env.metrics.counters

    def cold_share(name: str) -> float:
        cold = counters[f"function.{name}.requests.cold"].value
        return cold / (cold + counters[f"function.{name}.requests.warm"].value)

    assert cold_share("knative-go-0.01rps") > 0.2 and cold_share("knative-node-0.01rps") > 0.2
    assert cold_share("lambda-go-0.01rps") < 0.02
    go_wait = hists["function.knative-go-0.01rps.knative.activator.wait_s"]
    node_wait = hists["function.knative-node-0.01rps.knative.activator.wait_s"]
    assert go_wait.mean < node_wait.mean
    for name, wait in (("knative-go-0.01rps", go_wait), ("knative-node-0.01rps", node_wait)):
        # most buffered requests found no pod and waited a whole cold start; a few came during one and waited less
        assert wait.quantile(0.5) > 0.125 and wait.max < 2 * hists[f"function.{name}.coldstart.latency_s"].max
