"""The built-in scenarios ``faas-go-vs-node`` and ``faas-go-vs-node-runtime``, some of their functions run: cost per
million, cold starts by runtime, the handler on the runtime models."""

from __future__ import annotations

import math

import pytest

from sim.core import Environment
from sim.scenario import load_scenario, read_source
from models.faas.model import FaasModel

PRICE_GB_S, PRICE_REQUEST, GB = 0.0000166667, 0.20e-6, 128 / 1024  # Lambda's prices, 128 MiB (the scenario's)


def run_part(functions: list[str], duration: float, seed: int = 3, source: str = "faas-go-vs-node") -> Environment:
    """The scenario's ``functions`` alone, for ``duration`` seconds, no warm-up."""
    data = read_source(source)
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


def test_on_the_runtimes_a_full_vcpu_answers_in_the_cpu_and_128_mib_in_fourteen_times_it():
    # faas-go-vs-node-runtime: 1.447 ms of CPU a request on average (exponential). At 1,769 MiB a warm request takes
    # its CPU (Node's loop, one request per instance), at 128 MiB 1769 / 128 = 13.8 times it (Go's adds the
    # calibrated CPU of allocating 64 KiB); the mean of n draws is within 4 sd / sqrt(n) of 1.447 ms. Billed: the
    # request price plus the memory x E[ceil to 1 ms] = 1 ms / (1 - exp(-1 / 1.447)) at a full vCPU
    names = ["node-1769mib-10rps", "go-128mib-10rps"]
    env = run_part(names, 300, source="faas-go-vs-node-runtime")
    hists, counters = env.metrics.histograms, env.metrics.counters
    fast, slow = "function.node-1769mib-10rps.", "function.go-128mib-10rps."
    cpu = hists[fast + "requests.cpu_s"]
    assert abs(cpu.mean - 0.001447) < 4 * 0.001447 / math.sqrt(cpu.count)
    assert hists[fast + "requests.sojourn_s"].quantile(0.5) == pytest.approx(cpu.quantile(0.5), rel=0.02)
    assert hists[slow + "requests.sojourn_s"].quantile(0.5) == pytest.approx(
        1769 / 128 * hists[slow + "requests.cpu_s"].quantile(0.5), rel=0.02)
    assert hists[slow + "requests.cpu_s"].quantile(0.5) > cpu.quantile(0.5)  # the allocation's CPU
    assert counters[slow + "requests.completed"].value > 2500
    expected = (PRICE_REQUEST + 1769 / 1024 * 0.001 / (1 - math.exp(-1 / 1.447)) * PRICE_GB_S) * 1e6
    got = hists[fast + "cost.usd_per_million_requests"].mean
    assert abs(got - expected) < 4 * 1769 / 1024 * PRICE_GB_S * 1e6 * 0.001447 / math.sqrt(cpu.count)
