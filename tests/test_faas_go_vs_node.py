"""The built-in scenario ``faas-go-vs-node``, run at a smoke size: cold starts by runtime, cost per million."""

from __future__ import annotations

import math

from sim.core import Environment
from sim.scenario import load_scenario
from models.faas.model import FaasModel

PRICE_GB_S, PRICE_REQUEST, GB = 0.0000166667, 0.20e-6, 128 / 1024  # Lambda's prices, 128 MiB (the scenario's)


def test_go_vs_node_cost_per_million_and_cold_starts():
    config = load_scenario("faas-go-vs-node", {"duration": 600, "warmup": 0})
    env = Environment(seed=3, scenario=config)
    FaasModel(env, config).run()
    hists, counters = env.metrics.histograms, env.metrics.counters
    # every function's first request starts cold; Go's process starts faster than Node's (measured sets)
    for runtime in ("go", "node"):
        assert counters[f"function.{runtime}-100rps.requests.cold"].value >= 1
    go_start = hists["function.go-100rps.coldstart.runtime_start_s"].mean
    node_start = hists["function.node-100rps.coldstart.runtime_start_s"].mean
    assert go_start < node_start
    # cost per million: the request price plus 128 MiB x the handler's time rounded up to 1 ms. For an exponential
    # of mean 20 ms, E[ceil to 1 ms] = 1 ms / (1 - exp(-1/20)); the estimate's standard deviation is about
    # price x 20 ms / sqrt(n): held within four of them
    billed_s = 0.001 / (1 - math.exp(-1 / 20))
    expected = (PRICE_REQUEST + GB * billed_s * PRICE_GB_S) * 1e6
    for runtime in ("go", "node"):
        n = counters[f"function.{runtime}-100rps.requests.completed"].value
        got = hists[f"function.{runtime}-100rps.cost.usd_per_million_requests"].mean
        assert abs(got - expected) < 4 * GB * PRICE_GB_S * 1e6 * 0.020 / math.sqrt(n)
