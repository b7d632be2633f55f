"""Micro-stories of HTTP/1.1 pools: Go's http.Transport and Node's http.Agent.

Constant one-way latency 1 ms (dial = 2 ms), no loss, infinite bandwidth,
constant service time, so every instant is computed by hand.
"""

from __future__ import annotations

import math

import pytest

from sim.core import Environment
from sim.dists import Constant
from sim.topology import Cluster
from models.net.http1 import GoSettings, GoTransport, NodeAgent, NodeSettings
from models.net.server import Backend, Upstream
from models.net.tcp import ConnStats, Dialer, TcpSettings

ONE_WAY = 0.001
RTT = 2 * ONE_WAY
SERVICE = 0.010
EXCHANGE = RTT + SERVICE  # request up, service, response down


def upstream(env: Environment, name: str = "backend", service: float = SERVICE) -> Upstream:
    cluster = Cluster(env)
    cluster.add_node("client")
    cluster.add_node(name)
    cluster.add_link("client", name, Constant(ONE_WAY), math.inf, 0.0)
    dialer = Dialer(
        env, cluster.route("client", name), TcpSettings(), ConnStats(env, "pool"), ConnStats(env, "server"),
        lambda: 0.999,
    )
    return Upstream(name, dialer, Backend(env, name, Constant(service)))


def burst(env, pool, up, n: int, at: float = 0.0, log: list | None = None):
    """n requests issued at once at time `at`; log (start, end) of each."""

    def one():
        yield env.timeout(at - env.now)
        start = env.now
        yield pool.round_trip(up, 100, 100)
        if log is not None:
            log.append((start, env.now))

    for _ in range(n):
        env.process(one())


def metric(env, name):
    metrics = env.metrics
    if name in metrics.counters:
        return metrics.counters[name].value
    return metrics.gauges[name].level


# -- Go http.Transport ---------------------------------------------------------------


def test_go_first_request_dials_then_reuses_the_idle_connection(env):
    up = upstream(env)
    pool = GoTransport(env, "pool")
    log = []
    burst(env, pool, up, 1, at=0.0, log=log)
    burst(env, pool, up, 1, at=1.0, log=log)
    env.run(until=2.0)
    assert log == [(0.0, pytest.approx(RTT + EXCHANGE)), (1.0, pytest.approx(1.0 + EXCHANGE))]
    assert metric(env, "pool.dials") == 1
    assert pool.reuse_ratio.mean == 0.5


def test_go_idle_conn_timeout_closes_the_connection(env):
    """IdleConnTimeout 90 s: idle at t0 = 12 ms, closed at t0 + 90 s, then in TIME_WAIT."""
    up = upstream(env)
    pool = GoTransport(env, "pool")
    burst(env, pool, up, 1)
    idle_at = RTT + EXCHANGE
    env.run(until=idle_at + 89.9)
    assert metric(env, "pool.open") == 1 and len(pool.idle["backend"]) == 1
    env.run(until=idle_at + 90.1)
    assert metric(env, "pool.open") == 0 and metric(env, "pool.closed") == 1
    assert metric(env, "pool.time_wait") == 1 and not pool.idle["backend"]
    burst(env, pool, up, 1, at=100.0)
    env.run(until=101.0)
    assert metric(env, "pool.dials") == 2


def test_go_reuse_before_the_timeout_restarts_the_idle_clock(env):
    up = upstream(env)
    pool = GoTransport(env, "pool")
    burst(env, pool, up, 1, at=0.0)
    burst(env, pool, up, 1, at=80.0)  # reused; idle again at 80.012
    env.run(until=80.0 + EXCHANGE + 89.0)  # past the first timer (90.014), before the second
    assert metric(env, "pool.open") == 1 and metric(env, "pool.closed") == 0
    env.run(until=80.0 + EXCHANGE + 91.0)
    assert metric(env, "pool.closed") == 1


def test_go_max_conns_per_host_makes_requests_queue(env):
    """MaxConnsPerHost 2, five requests at once: two dials; the others wait for a
    returned connection (first-come first-served) and reuse it."""
    up = upstream(env)
    pool = GoTransport(env, "pool", GoSettings(max_conns_per_host=2))
    log = []
    burst(env, pool, up, 5, log=log)
    env.run()
    ends = sorted(end for _, end in log)
    first = RTT + EXCHANGE
    assert ends == pytest.approx([first, first, first + EXCHANGE, first + EXCHANGE, first + 2 * EXCHANGE])
    assert metric(env, "pool.dials") == 2
    assert env.metrics.gauges["pool.open"].max == 2
    assert sorted(pool.wait_s.quantiles([0, 1])) == pytest.approx([RTT, first + EXCHANGE], rel=0.01)


def test_go_max_idle_conns_per_host_2_churns_under_a_burst_of_100(env):
    """The churn users report: 100 concurrent requests open 100 connections; when they
    finish only 2 may stay idle, 98 are closed into TIME_WAIT; the next burst dials 98 again."""
    up = upstream(env)
    pool = GoTransport(env, "pool")  # MaxIdleConnsPerHost 2 (Go's default)
    burst(env, pool, up, 100, at=0.0)
    env.run(until=1.0)
    assert metric(env, "pool.dials") == 100
    assert metric(env, "pool.closed") == 98 and metric(env, "pool.time_wait") == 98
    assert len(pool.idle["backend"]) == 2
    burst(env, pool, up, 100, at=1.0)
    env.run(until=2.0)
    assert metric(env, "pool.dials") == 198
    assert metric(env, "pool.time_wait") == 196
    assert pool.reuse_ratio.mean == pytest.approx(2 / 200)


def test_go_large_idle_pool_has_no_churn(env):
    up = upstream(env)
    pool = GoTransport(env, "pool", GoSettings(max_idle_conns_per_host=100))
    burst(env, pool, up, 100, at=0.0)
    burst(env, pool, up, 100, at=1.0)
    env.run(until=2.0)
    assert metric(env, "pool.dials") == 100 and metric(env, "pool.closed") == 0
    assert len(pool.idle["backend"]) == 100


def test_go_returned_connection_beats_a_slower_dial_which_then_goes_idle(env):
    """Late binding: a request that started dialing takes a connection returned first;
    its dial still completes and the new connection joins the idle list."""
    up = upstream(env)
    pool = GoTransport(env, "pool")
    log = []
    burst(env, pool, up, 1, at=0.0, log=log)  # holds conn A until 14 ms
    late = RTT + EXCHANGE - 0.0005  # asks 0.5 ms before A returns; its dial would take 2 ms
    burst(env, pool, up, 1, at=late, log=log)
    env.run(until=1.0)
    assert log[1] == (pytest.approx(late), pytest.approx(late + 0.0005 + EXCHANGE))
    assert metric(env, "pool.dials") == 2 and metric(env, "pool.closed") == 0
    assert len(pool.idle["backend"]) == 2


def test_go_max_idle_conns_evicts_the_least_recently_used_across_hosts(env):
    first, second = upstream(env, "one"), upstream(env, "two")
    pool = GoTransport(env, "pool", GoSettings(max_idle_conns=1))
    burst(env, pool, first, 1, at=0.0)
    burst(env, pool, second, 1, at=1.0)
    env.run(until=2.0)
    assert pool.idle["one"] == [] and len(pool.idle["two"]) == 1
    assert metric(env, "pool.closed") == 1


def test_go_disable_keep_alives_dials_every_request(env):
    up = upstream(env)
    pool = GoTransport(env, "pool", GoSettings(disable_keep_alives=True))
    for at in (0.0, 1.0, 2.0):
        burst(env, pool, up, 1, at=at)
    env.run(until=3.0)
    assert metric(env, "pool.dials") == 3 and metric(env, "pool.closed") == 3


# -- Node http.Agent -----------------------------------------------------------------


def test_node_default_agent_opens_a_socket_per_request_and_the_server_closes(env):
    """keepAlive false, maxSockets Infinity: Connection: close, the TIME_WAIT is the server's."""
    up = upstream(env)
    pool = NodeAgent(env, "pool")
    burst(env, pool, up, 3, at=0.0)
    burst(env, pool, up, 3, at=1.0)
    env.run(until=2.0)
    assert metric(env, "pool.dials") == 6 and pool.reuse_ratio.mean == 0
    assert metric(env, "server.time_wait") == 6 and metric(env, "pool.time_wait") == 0


def test_node_max_sockets_queues_and_keep_alive_keeps_free_sockets(env):
    up = upstream(env)
    pool = NodeAgent(env, "pool", NodeSettings(keep_alive=True, max_sockets=2))
    log = []
    burst(env, pool, up, 5, log=log)
    env.run(until=1.0)
    first = RTT + EXCHANGE
    assert sorted(end for _, end in log) == pytest.approx(
        [first, first, first + EXCHANGE, first + EXCHANGE, first + 2 * EXCHANGE]
    )
    assert metric(env, "pool.dials") == 2 and metric(env, "pool.closed") == 0
    assert len(pool.free["backend"]) == 2


def test_node_without_keep_alive_but_max_sockets_reuses_for_queued_requests_only(env):
    up = upstream(env)
    pool = NodeAgent(env, "pool", NodeSettings(keep_alive=False, max_sockets=1))
    burst(env, pool, up, 3)
    env.run(until=1.0)
    assert metric(env, "pool.dials") == 1  # the queued requests took the same socket
    assert metric(env, "pool.closed") == 1 and metric(env, "pool.time_wait") == 1  # then the client destroyed it
    assert pool.free["backend"] == []


def test_node_timeout_destroys_a_free_socket(env):
    up = upstream(env)
    pool = NodeAgent(env, "pool", NodeSettings(keep_alive=True, timeout_s=5.0))
    burst(env, pool, up, 1)
    free_at = RTT + EXCHANGE
    env.run(until=free_at + 4.9)
    assert len(pool.free["backend"]) == 1
    env.run(until=free_at + 5.1)
    assert pool.free["backend"] == [] and metric(env, "pool.time_wait") == 1


def test_node_max_free_sockets_destroys_the_excess(env):
    up = upstream(env)
    pool = NodeAgent(env, "pool", NodeSettings(keep_alive=True, max_free_sockets=1))
    burst(env, pool, up, 3)
    env.run(until=1.0)
    assert len(pool.free["backend"]) == 1 and metric(env, "pool.closed") == 2


@pytest.mark.parametrize("scheduling, expected", [("lifo", "b"), ("fifo", "a")])
def test_node_scheduling_picks_the_newest_or_oldest_free_socket(env, scheduling, expected):
    up = upstream(env)
    pool = NodeAgent(env, "pool", NodeSettings(keep_alive=True, scheduling=scheduling))
    got = {}

    def request(name, at, service_end=None):
        yield env.timeout(at - env.now)
        conn = yield pool.get_conn(up)
        got[name] = conn
        yield env.timeout(0.001 if name == "a" else 0.002)
        pool.release(conn, up)

    env.process(request("a", 0.0))
    env.process(request("b", 0.0))
    env.process(request("c", 1.0))
    env.run(until=2.0)
    assert got["c"] is got[expected]


def test_node_bad_scheduling_is_rejected():
    with pytest.raises(ValueError, match="scheduling"):
        NodeAgent(Environment(), "pool", NodeSettings(scheduling="random"))
