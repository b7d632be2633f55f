"""Model kind ``arch`` over pooled connections, mTLS and a topology: small deterministic stories held to
closed forms (constant times, one request at a time or a known few at once), the breakdown's sum, and bad
input named by its field."""

from __future__ import annotations

import pytest

from models.arch.breakdown import KINDS
from sim.run import RunResult, run_replication
from sim.scenario import ScenarioError, load_scenario

D = 0.5e-3
"""The one-way latency of every story (network.latency)."""


def scenario(services: dict, users: int = 1, requests: int = 10, entry: str = "a", **fields) -> dict:
    """``users`` closed-loop users, each a request at a time, a second apart: requests never overlap but the
    first ``users`` ones, which start together."""
    return {"model": "arch", "requests": requests, "warmup": 0,
            "workload": {"entry": entry, "users": {"count": users, "think": "1s"}},
            "network": {"latency": "0.5ms"}, "nodes": {"count": 2, "cores": 8}, "services": services, **fields}


def run(data: dict) -> RunResult:
    return run_replication(load_scenario(data))


def sums_to_latency(result: RunResult) -> bool:
    parts = sum(result.value(f"breakdown.{kind}_s", "mean") for kind in KINDS)
    return parts == pytest.approx(result.value("requests.sojourn_s", "mean"), rel=1e-9)


def test_a_first_call_pays_the_handshake_and_the_next_reuse_its_connection():
    """A lone request: the TCP handshake's round trip, the request's bytes over the bandwidth one way, the
    service time, the response's bytes back: 2d + (d + 1 KB / B) + 1 ms + (d + 10 KB / B). The next requests
    reuse the kept-alive connection and save the round trip."""
    bandwidth = 1e6
    services = {"z": {"handler": [{"call": {"service": "a", "request": 1000, "response": 10_000}}]},
                "a": {"handler": [{"cpu": "1ms"}], "connections": {"protocol": "http1"}}}
    result = run(scenario(services, entry="z", network={"latency": "0.5ms", "bandwidth": bandwidth}))
    exchange = (D + 1000 / bandwidth) + 1e-3 + (D + 10_000 / bandwidth)
    edge = 2 * D  # the edge's call to z: plain delays
    assert result.value("requests.sojourn_s", "max") == pytest.approx(edge + 2 * D + exchange, rel=1e-9)
    assert result.value("requests.sojourn_s", "min") == pytest.approx(edge + exchange, rel=1e-9)
    assert result.value("pool.z-0.a.dials", "count") == 1
    assert result.value("pool.z-0.a.reuse_ratio", "mean") == pytest.approx(9 / 10)
    assert result.value("breakdown.connect_s", "mean") == pytest.approx(2 * D / 10)
    assert result.value("pod.a-0.connections.open", "max") == 1
    assert sums_to_latency(result)


def test_without_connections_a_call_is_two_delays_and_no_pool_exists():
    result = run(scenario({"a": {"handler": [{"cpu": "1ms"}]}}))
    assert result.value("requests.sojourn_s", "max") == pytest.approx(2 * D + 1e-3, rel=1e-9)
    assert not [row for row in result.rows if row[0].startswith(("pool.", "connections."))]
    assert result.value("breakdown.connect_s", "max") == 0


def test_a_pool_limit_makes_requests_wait_for_a_connection():
    """Two requests at once, at most one connection: the second waits for the first's whole exchange (its
    dial 2d, then d + 1 ms + d) and then takes the same connection."""
    one = {"a": {"handler": [{"cpu": "1ms"}], "connections": {"max_connections": 1}}}
    limited = run(scenario(one, users=2, requests=2))
    first = 2 * D + 2 * D + 1e-3
    assert limited.value("pool.edge.a.dials", "count") == 1
    assert limited.value("pool.edge.a.wait_s", "max") == pytest.approx(first, rel=1e-9)
    assert limited.value("requests.sojourn_s", "max") == pytest.approx(first + 2 * D + 1e-3, rel=1e-9)
    free = run(scenario({"a": {**one["a"], "connections": {}}}, users=2, requests=2))
    assert free.value("pool.edge.a.dials", "count") == 2
    assert free.value("requests.sojourn_s", "max") == pytest.approx(first, rel=1e-9)
    assert sums_to_latency(limited)


def test_http2_multiplexes_concurrent_requests_on_one_connection_per_pod():
    """Five requests at once on HTTP/2: one connection, five streams, none waits but for the one dial; with
    two streams at most, the others wait for streams to end."""
    services = {"a": {"replicas": 1, "handler": [{"cpu": "1ms"}], "connections": {"protocol": "http2"}}}
    result = run(scenario(services, users=5, requests=5))
    assert result.value("pool.edge.a.dials", "count") == 1
    assert result.value("pool.edge.a.streams", "max") == 5
    assert result.value("requests.sojourn_s", "max") == pytest.approx(4 * D + 1e-3, rel=1e-9)
    narrow = {"a": {**services["a"], "connections": {"protocol": "http2", "max_concurrent_streams": 2}}}
    queued = run(scenario(narrow, users=5, requests=5))
    assert queued.value("pool.edge.a.dials", "count") == 1
    assert queued.value("pool.edge.a.streams", "max") == 2
    # two streams at a time: the fifth request waits for two rounds of 2d + 1 ms
    assert queued.value("requests.sojourn_s", "max") == pytest.approx(2 * D + 3 * (2 * D + 1e-3), rel=1e-9)
    assert sums_to_latency(queued)


def overflowed_at_once(result: RunResult, overflows: int) -> bool:
    """``overflows`` requests to ``a`` from the edge failed at once as pending overflows, with one request
    pending at most and one dial."""
    return (result.value("requests.errors", "count") == overflows and result.value("requests.failed_s", "max") == 0
            and result.value("calls.a.overflows", "count") == overflows
            and result.value("pool.edge.a.pending_overflows", "count") == overflows
            and result.value("pool.edge.a.pending", "max") == 1 and result.value("pool.edge.a.dials", "count") == 1)


@pytest.mark.parametrize("connections", [{"max_connections": 1}, {"protocol": "http2"}])
def test_a_request_waiting_for_a_dial_is_pending_and_the_next_overflows(connections):
    """Three requests at once on a cold pool with one request allowed pending: the first finds no ready
    connection and waits for its dial (pending, as in Envoy, even with no limit on connections), the other two
    fail at once as overflows (nothing sent; no retries configured). The first: its dial 2d, then d + 1 ms + d."""
    services = {"a": {"handler": [{"cpu": "1ms"}], "connections": {**connections, "max_pending_requests": 1}}}
    result = run(scenario(services, users=3, requests=3))
    assert result.value("requests.completed", "count") == 1
    assert result.value("requests.sojourn_s", "max") == pytest.approx(4 * D + 1e-3, rel=1e-9)
    assert overflowed_at_once(result, 2)


@pytest.mark.parametrize("connections", [{"max_connections": 1}, {"protocol": "http2", "max_concurrent_streams": 1}])
def test_at_the_pending_limit_a_request_overflows_at_once(connections):
    """One connection (or one stream), one request allowed pending: a first request warms the pool, then three
    arrive together. The first takes the idle connection at once (2d + 1 ms), the second is pending until it is
    released and then takes it (twice that), the third finds one already pending and fails at once."""
    services = {"a": {"handler": [{"cpu": "1ms"}], "connections": {**connections, "max_pending_requests": 1}}}
    replay = {"dist": "empirical", "values": [0.0, 1.0, 1.0, 1.0]}
    result = run(scenario(services, requests=4, workload={"entry": "a", "replay": replay}))
    exchange = 2 * D + 1e-3
    assert result.value("requests.completed", "count") == 3
    assert result.value("requests.sojourn_s", "max") == pytest.approx(2 * exchange, rel=1e-9)
    assert result.value("requests.sojourn_s", "min") == pytest.approx(exchange, rel=1e-9)
    assert overflowed_at_once(result, 1)
    assert result.value("calls.a.attempts", "count") == 4
    assert result.value("pool.edge.a.wait_s", "max") == pytest.approx(exchange, rel=1e-9)  # the pending one
    # One more allowed pending: the third waits for the second, nothing overflows.
    roomy = {"a": {**services["a"], "connections": {**connections, "max_pending_requests": 2}}}
    queued = run(scenario(roomy, requests=4, workload={"entry": "a", "replay": replay}))
    assert queued.value("requests.errors", "count") == 0
    assert queued.value("requests.sojourn_s", "max") == pytest.approx(3 * exchange, rel=1e-9)
    assert queued.value("pool.edge.a.pending", "max") == 2
    assert queued.value("calls.a.overflows", "count") == 0


def test_a_pending_overflow_is_retried_like_any_overflow_and_holds_nothing():
    """The model's overflows are retried after their back-off (Envoy never retries an overflow: this keeps the
    model's one rule for every breaker). The overflowing attempt released its in-flight count: with
    max_requests 2 the retry is not refused by that breaker while the other request is still in flight. An
    overflow is the client's, not the pod's: it does not count for outlier detection."""
    services = {"a": {"handler": [{"cpu": "1ms"}], "max_requests": 2, "outlier": {"consecutive_5xx": 1},
                      "connections": {"max_connections": 1, "max_pending_requests": 1}}}
    call = {"service": "a", "retries": {"attempts": 3, "base_interval": "10ms"}}
    services = {"z": {"handler": [{"call": call}]}, **services}
    result = run(scenario(services, users=2, requests=2, entry="z"))
    assert result.value("requests.errors", "count") == 0
    assert result.value("calls.a.overflows", "count") == 1
    assert result.value("calls.a.retries", "count") == 1
    assert result.value("calls.a.ejections", "count") == 0


def _mesh(mtls: bool) -> dict:
    return {"dataplane": "sidecar", "mtls": mtls, "tls_handshake_cpu": "0.3ms",
            "proxy": {"request_cpu": "0.2ms", "connection_cpu": "0.05ms", "tls_request_cpu": 0}}


def test_mtls_adds_a_round_trip_and_the_handshake_cpu_to_new_connections_only():
    """edge -> a -> b with sidecars, b over pooled connections: with mTLS a's first call to b does TLS 1.3
    after TCP, one more round trip and 0.3 ms of CPU at b's sidecar and then at a's; later calls reuse the
    connection and cost what they did without mTLS. The edge's connection to a is plain TCP. With or without
    mTLS the pooled connection costs each sidecar its new connection's CPU once."""
    services = {"a": {"handler": [{"call": {"service": "b"}}]},
                "b": {"handler": [{"cpu": "1ms"}], "connections": {}}}
    plain = run(scenario(services, mesh=_mesh(False)))
    secure = run(scenario(services, mesh=_mesh(True)))
    handshake = 2 * D + 2 * 0.3e-3
    assert secure.value("requests.sojourn_s", "max") == pytest.approx(
        plain.value("requests.sojourn_s", "max") + 2 * D + handshake, rel=1e-9)  # mtls: a pool for the edge too
    assert secure.value("requests.sojourn_s", "min") == pytest.approx(plain.value("requests.sojourn_s", "min"),
                                                                      rel=1e-9)
    assert secure.value("connections.handshakes", "count") == 1
    assert secure.value("pool.a-0.b.handshakes", "count") == 1
    assert secure.value("pool.edge.a.handshakes", "count") == 0
    assert secure.value("mesh.proxy_cpu_s", "count") == pytest.approx(
        plain.value("mesh.proxy_cpu_s", "count") + 2 * 0.3e-3, rel=1e-9)
    # Ten requests, three passes each, and the one pooled connection's CPU at both sidecars.
    assert plain.value("mesh.proxy_cpu_s", "count") == pytest.approx(10 * 3 * 0.2e-3 + 2 * 0.05e-3, rel=1e-9)
    assert sums_to_latency(secure)


def test_mtls_needs_no_calibrated_handshake_cpu_until_a_run_without_an_override():
    mesh = {"dataplane": "ambient", "mtls": True}
    load_scenario(scenario({"a": {"handler": [{"cpu": "1ms"}]}}, mesh=mesh))  # validates without the parameter


def _topology(**fields) -> dict:
    """node0 and node1 in two zones, joined directly (5 ms) and through a switch (1 ms + 1 ms, 1 MB/s)."""
    return {"zones": {"z0": ["node0"], "z1": ["node1", "switch"]},
            "links": [{"between": ["node0", "node1"], "latency": "5ms"},
                      {"between": ["node0", "switch"], "latency": "1ms", "bandwidth": 1e6},
                      {"between": ["switch", "node1"], "latency": "1ms", "bandwidth": 1e6}], **fields}


def test_a_hop_follows_the_topologys_route_of_least_latency():
    """a on node0 calls b on node1: the route through the switch (2 ms one way, less than the direct 5 ms),
    each of its two links taking the response's 2 KB at 1 MB/s (store and forward); over a pooled connection
    the first call adds the route's round trip."""
    services = {"a": {"handler": [{"call": {"service": "b", "response": 2000}}]}, "b": {"handler": [{"cpu": "1ms"}]}}
    routed = run(scenario(services, network={"latency": "0.5ms", "topology": _topology()}))
    call = 2e-3 + 1e-3 + 2e-3 + 2 * 2000 / 1e6
    assert routed.value("requests.sojourn_s", "max") == pytest.approx(2 * D + call, rel=1e-9)
    pooled = {**services, "b": {**services["b"], "connections": {}}}
    first = run(scenario(pooled, network={"latency": "0.5ms", "topology": _topology()}))
    assert first.value("requests.sojourn_s", "max") == pytest.approx(2 * D + 4e-3 + call, rel=1e-9)
    assert first.value("requests.sojourn_s", "min") == pytest.approx(2 * D + call, rel=1e-9)
    from_edge = run(scenario(services, network={"latency": "0.5ms", "topology": _topology(edge="node1")}))
    assert from_edge.value("requests.sojourn_s", "max") == pytest.approx(2 * 2e-3 + call, rel=1e-9)


def test_the_breakdown_sums_to_the_latency_under_load_over_connections():
    """Poisson load, random latencies, a pool limit, HTTP/2, mTLS and a lossy topology at once."""
    links = [{"between": ["node0", "node1"], "latency": {"dist": "exp", "mean": "0.2ms"}, "bandwidth": "100MB",
              "loss": 0.01}]
    data = {"model": "arch", "requests": 1500, "warmup": 0.1, "workload": {"rate": 400, "entry": "a"},
            "nodes": {"count": 2, "cores": 2},
            "network": {"latency": "0.3ms", "local": "20us",
                        "topology": {"zones": {"z": ["node0", "node1"]}, "links": links}},
            "mesh": {**_mesh(True), "proxy": {"request_cpu": "0.05ms"}},
            "services": {"a": {"replicas": 2, "handler": [{"cpu": {"dist": "exp", "mean": "0.3ms"}},
                                                          {"parallel": [{"service": "b", "response": "8KiB"},
                                                                        {"service": "c"}]}]},
                         "b": {"replicas": 2, "handler": [{"cpu": {"dist": "exp", "mean": "0.5ms"}}],
                               "connections": {"max_connections": 2}},
                         "c": {"handler": [{"cpu": {"dist": "exp", "mean": "0.2ms"}}],
                               "connections": {"protocol": "http2"}}}}
    result = run(data)
    assert sums_to_latency(result)
    assert result.value("breakdown.connect_s", "mean") > 0
    assert result.value("connections.handshakes", "count") > 0


@pytest.mark.parametrize("fields, message", [
    ({"network": {"latency": "1ms", "topology": {"zones": {"z": ["node0"]}}}},
     "network.topology.zones: node1 is in no zone"),
    ({"network": {"latency": "1ms", "topology": {"zones": {"z": ["node0", "node1"]},
                                                 "links": [{"between": ["node0", "nodeX"], "latency": "1ms"}]}}},
     "network.topology.links.0.between.1: no machine 'nodeX'"),
    ({"network": {"latency": "1ms", "topology": {"zones": {"z": ["node0", "node1"]}}}},
     "no route from node0 to node1 (the graph is disconnected)"),
    ({"network": {"latency": "1ms", "topology": {"zones": {"z": ["node0", "node1"]}, "edge": "gw",
                                                 "links": [{"between": ["node0", "node1"], "latency": "1ms"}]}}},
     "network.topology.edge: no machine 'gw'"),
    ({"network": {"latency": "1ms", "topology": {"zones": {"a": ["node0", "node1"], "b": ["node1"]}}}},
     "network.topology.zones.b: machine 'node1' is already in zone 'a'"),
    ({"network": {"latency": "1ms", "topology": {"zones": {"z": ["node0", "node1"]},
                                                 "links": [{"between": ["node0", "node1"], "latency": "1ms",
                                                            "loss": 1}]}}},
     "network.topology.links.0.loss"),
    ({"mesh": {"mtls": True}}, "mesh: mtls: mutual TLS is done by the proxies"),
    ({"mesh": {"dataplane": "sidecar", "mtls": True, "tls_handshake_cpu": "3/s"}},
     "mesh.tls_handshake_cpu: expected a duration, not a rate"),
])
def test_bad_networks_are_named(fields, message):
    with pytest.raises(ScenarioError) as error:
        load_scenario(scenario({"a": {"handler": [{"cpu": "1ms"}]}}, **fields))
    assert message in str(error.value)


@pytest.mark.parametrize("connections, message", [
    ({"protocol": "http3"}, "services.a.connections.protocol"),
    ({"max_connections": 0}, "services.a.connections.max_connections"),
    ({"max_concurrent_streams": 0}, "services.a.connections.max_concurrent_streams"),
    ({"max_pending_requests": 0}, "services.a.connections.max_pending_requests"),
    ({"max_pending_requests": -1}, "services.a.connections.max_pending_requests"),
    ({"idle_timeout": "2/s"}, "services.a.connections.idle_timeout: expected a duration, not a rate"),
])
def test_bad_connection_settings_are_named(connections, message):
    with pytest.raises(ScenarioError) as error:
        load_scenario(scenario({"a": {"handler": [{"cpu": "1ms"}], "connections": connections}}))
    assert message in str(error.value)


@pytest.mark.parametrize("kind, dials, closed", [("envoy", 4, 0), ("goproxy", 4 + 2 + 2, 2 + 2 + 2)])
def test_the_callers_proxy_owns_the_pool_and_follows_its_rules(kind, dials, closed):
    """Three rounds of four calls at once from a's sidecar to b's one pod. An Envoy dials four connections
    and keeps them all alive; a Go reverse proxy (Go's http.Transport defaults) keeps two idle per host and
    closes the other two as their responses come in (holding them in TIME_WAIT, 60 s), so each later round
    dials two again."""
    services = {"a": {"handler": [{"call": {"service": "b"}}]},
                "b": {"handler": [{"cpu": "1ms"}], "connections": {}}}
    mesh = {"dataplane": "sidecar", "proxy": {"kind": kind, "request_cpu": "0.1ms", "workers": 4}}
    result = run(scenario(services, users=4, requests=12, mesh=mesh))
    assert result.value("pool.a-0.b.dials", "count") == dials
    assert result.value("pool.a-0.b.closed", "count") == closed
    assert result.value("pool.a-0.b.time_wait", "max") == closed
    assert result.value("pool.a-0.b.open", "max") == 4
