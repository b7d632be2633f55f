"""The model kind ``net.fanin`` and the built-in scenario ``http1-pool-vs-http2``:
runs, closed forms at fixed seeds, churn, TLS, bad input."""

from __future__ import annotations

import math

import pytest

from sim.run import run_replication
from sim.scenario import ScenarioError, load_scenario

FAST = {"requests": 4000, "replications": 1}


def run(**overrides):
    return run_replication(load_scenario("http1-pool-vs-http2", {**FAST, **overrides}))


@pytest.mark.parametrize(
    "overrides",
    [{}, {"client": "node"}, {"client": "node", "node": {"keep_alive": True}}, {"protocol": "http2"}],
)
def test_builtin_scenario_runs_and_reports_its_metrics(overrides):
    result = run(**overrides)
    assert result.value("requests.completed", "count") == 4000 * 0.9
    latency = result.value("requests.latency_s", "p50")
    assert 0.001 < latency < 0.05  # at least one RTT (1 ms)
    for metric, statistic in [
        ("pool.wait_s", "p99"), ("pool.reuse_ratio", "mean"), ("pool.open", "mean"),
        ("pool.time_wait", "mean"), ("pool.dials", "rate"), ("server.time_wait", "max"),
    ]:
        assert not math.isnan(result.value(metric, statistic))


def test_same_seed_same_result():
    assert repr(run().rows) == repr(run().rows)  # repr: NaN equals NaN


def test_without_loss_latency_is_rtt_plus_service():
    """HTTP/2, no loss, streams unlimited in effect, bandwidth huge: every request costs one
    RTT plus its service time, so the mean latency is RTT + E[S] within 4 standard errors."""
    result = run(
        protocol="http2", requests=20_000, **{"http2.max_concurrent_streams": 1000, "network.bandwidth": 1e15}
    )
    n = result.value("requests.latency_s", "count")
    mean, std = result.value("requests.latency_s", "mean"), result.value("requests.latency_s", "std")
    expected = 0.001 + 0.001  # rtt 1 ms, exp service with mean 1 ms
    assert abs(mean - expected) < 4 * std / math.sqrt(n)
    assert result.value("pool.dials", "count") == 0  # the one connection was dialled in warm-up


def test_loss_adds_the_expected_retransmission_delay():
    """HTTP/1.1 with a pool as large as the callers: one message at a time per connection,
    single-segment messages, so a loss is repaired by the RTO (no duplicate ACKs), a lost
    retransmission by a doubled RTO: E[extra] per message = p RTO / (1 - 2p); two per request."""
    p, rtt = 0.02, 0.001
    rto = rtt + 0.2
    result = run(
        requests=20_000, concurrency=4, response_size=1000,
        **{"go.max_idle_conns_per_host": 4, "network.loss": p, "network.bandwidth": 1e15},
    )
    assert result.value("pool.dials", "count") == 0  # no dial (nor SYN loss) after warm-up
    n = result.value("requests.latency_s", "count")
    mean, std = result.value("requests.latency_s", "mean"), result.value("requests.latency_s", "std")
    expected = rtt + 0.001 + 2 * p * rto / (1 - 2 * p)
    assert abs(mean - expected) < 4 * std / math.sqrt(n)


def test_go_default_idle_pool_churns_where_a_large_one_does_not():
    churn = run()
    steady = run(**{"go.max_idle_conns_per_host": 64})
    assert churn.value("pool.dials", "rate") > 100 * max(steady.value("pool.dials", "rate"), 1.0)
    assert churn.value("pool.time_wait", "max") > 100
    assert steady.value("pool.time_wait", "max") == 0
    assert churn.value("pool.reuse_ratio", "mean") < 0.9 < 0.99 < steady.value("pool.reuse_ratio", "mean")


def test_http2_uses_one_connection():
    result = run(protocol="http2")
    assert result.value("pool.open", "max") == 1
    assert result.value("pool.streams", "max") > 1


def test_tls13_on_every_request_costs_two_round_trips_and_the_cpu():
    """DisableKeepAlives: each request dials (1 RTT), runs TLS 1.3 (1 RTT + CPU at both
    ends), then its exchange (1 RTT + service); constant times make every latency equal."""
    result = run(
        backend={"service": "1ms"}, tls={"client_cpu": "0.5ms", "server_cpu": "1ms"},
        **{"go.disable_keep_alives": True, "network.bandwidth": 1e15},
    )
    expected = 0.001 + (0.001 + 0.0005 + 0.001) + (0.001 + 0.001)
    assert result.value("requests.latency_s", "min") == pytest.approx(expected)
    assert result.value("requests.latency_s", "max") == pytest.approx(expected)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"protocol": "http3"}, "protocol: Input should be 'http1' or 'http2'"),
        ({"network": {"bandwidth": "1GB"}}, "network: Value error, give exactly one of rtt or latency"),
        ({"network.loss": 1.5}, "network.loss: Input should be less than 1"),
        ({"go.max_conns_per_host": -1}, "go.max_conns_per_host: Input should be greater than or equal to 0"),
        ({"tls": {"client_cpu": "1ms"}}, "tls.server_cpu: Field required"),
        ({"http2.window": 10}, "http2.window: unknown key"),
    ],
)
def test_bad_input_names_the_field(overrides, message):
    with pytest.raises(ScenarioError) as error:
        load_scenario("http1-pool-vs-http2", overrides)
    assert message.replace("Value error, ", "") in str(error.value)
