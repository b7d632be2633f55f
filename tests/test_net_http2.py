"""Micro-stories of HTTP/2: stream limits, flow-control windows, head-of-line blocking, gRPC pings.

Constant one-way latency 1 ms, infinite bandwidth, constant service: every
instant is computed by hand. Losses are scripted through the uniform draws.
"""

from __future__ import annotations

import math

import pytest

from sim.core import Environment
from sim.dists import Constant
from sim.topology import Cluster
from models.net.http1 import GoSettings, GoTransport
from models.net.http2 import H2Pool, H2Settings
from models.net.server import Backend, Upstream
from models.net.tcp import TCP_TIMEOUT_MIN_S, ConnStats, Dialer, TcpSettings

ONE_WAY = 0.001
RTT = 2 * ONE_WAY
SERVICE = 0.010
RTO = RTT + TcpSettings().rto_min_s


class Script:
    def __init__(self, values=()):
        self.values = list(values)

    def __call__(self) -> float:
        return self.values.pop(0) if self.values else 0.999


def upstream(env: Environment, service: float = SERVICE, loss: float = 0.0, script=()) -> Upstream:
    cluster = Cluster(env)
    cluster.add_node("client")
    cluster.add_node("backend")
    cluster.add_link("client", "backend", Constant(ONE_WAY), math.inf, loss)
    dialer = Dialer(
        env, cluster.route("client", "backend"), TcpSettings(), ConnStats(env, "pool"),
        ConnStats(env, "server"), Script(script),
    )
    return Upstream("backend", dialer, Backend(env, "backend", Constant(service)))


def requests(env, pool, up, n, at=0.0, request_bytes=100, response_bytes=100):
    log = []

    def one(index):
        yield env.timeout(at - env.now)
        start = env.now
        yield pool.round_trip(up, request_bytes, response_bytes)
        log.append((index, start, env.now))

    for index in range(n):
        env.process(one(index))
    return log


def test_one_connection_carries_concurrent_streams(env):
    up = upstream(env)
    pool = H2Pool(env, "pool")
    log = requests(env, pool, up, 50)
    env.run()
    assert [end for _, _, end in log] == pytest.approx([RTT + RTT + SERVICE] * 50)
    assert env.metrics.counters["pool.dials"].value == 1
    assert env.metrics.gauges["pool.streams"].max == 50


def test_streams_beyond_max_concurrent_streams_wait(env):
    """SETTINGS_MAX_CONCURRENT_STREAMS = 2: requests 3 and 4 open their streams only
    when 1 and 2 end; request 5 when 3 ends."""
    up = upstream(env)
    pool = H2Pool(env, "pool", H2Settings(max_concurrent_streams=2))
    log = requests(env, pool, up, 5)
    env.run()
    exchange = RTT + SERVICE
    first = RTT + exchange
    assert sorted(end for _, _, end in log) == pytest.approx(
        [first, first, first + exchange, first + exchange, first + 2 * exchange]
    )
    assert env.metrics.gauges["pool.streams"].max == 2
    assert pool.wait_s.max == pytest.approx(first + exchange)


def test_flow_control_window_paces_a_large_response_at_one_window_per_rtt(env):
    """A 4-window response with 65,535-byte windows (frames of a whole window) needs
    three WINDOW_UPDATE round trips after the first window: 3 RTT + one way."""
    window = 65_535
    up = upstream(env, service=0.0)
    pool = H2Pool(env, "pool", H2Settings(max_frame_bytes=window))
    log = requests(env, pool, up, 1, request_bytes=0, response_bytes=4 * window)
    env.run()
    (_, _, end), = log
    dial, request = RTT, ONE_WAY
    assert end == pytest.approx(dial + request + 3 * RTT + ONE_WAY)
    assert pool.flow_wait_s.max == pytest.approx(3 * RTT)


def test_a_window_as_large_as_the_response_does_not_stall(env):
    up = upstream(env, service=0.0)
    size = 4 * 65_535
    pool = H2Pool(env, "pool", H2Settings(initial_window_bytes=size, connection_window_bytes=size))
    log = requests(env, pool, up, 1, request_bytes=0, response_bytes=size)
    env.run()
    assert log[0][2] == pytest.approx(RTT + ONE_WAY + ONE_WAY)
    assert pool.flow_wait_s.max == 0


def test_connection_window_is_shared_by_streams(env):
    """Two streams each sending one window's worth on a 65,535-byte connection window:
    the second waits one RTT for the connection's WINDOW_UPDATE."""
    window = 65_535
    up = upstream(env, service=0.0)
    pool = H2Pool(env, "pool", H2Settings(max_frame_bytes=window, initial_window_bytes=10 * window))
    log = requests(env, pool, up, 2, request_bytes=0, response_bytes=window)
    env.run()
    ends = sorted(end for _, _, end in log)
    assert ends == pytest.approx([RTT + ONE_WAY + ONE_WAY, RTT + ONE_WAY + RTT + ONE_WAY])


def test_a_lost_segment_delays_every_stream_of_the_connection(env):
    """HTTP/2: the first response loses its segment; the other responses, sent on the same
    connection, arrive on time but wait behind the hole (TCP head-of-line blocking)."""
    # Draws: SYN, SYN-ACK, 3 requests up (no loss: 0.999 each; 100-byte requests send no
    # WINDOW_UPDATE), then the first response lost (0.0; its first lost segment 0.5 -> index 0).
    up = upstream(env, loss=0.01, script=[0.999] * 5 + [0.0, 0.5])
    pool = H2Pool(env, "pool")
    log = requests(env, pool, up, 3)
    env.run()
    on_time = RTT + RTT + SERVICE
    # two later responses are only two duplicate ACKs: the hole waits for the tail loss
    # probe (2 RTT + 2 ms), then the SACK-driven retransmission (1 RTT)
    assert [end for _, _, end in log] == pytest.approx([on_time + 3 * RTT + TCP_TIMEOUT_MIN_S] * 3)


def test_a_lost_segment_on_http1_delays_only_its_own_connection(env):
    up = upstream(env, loss=0.01, script=[0.999] * 6 + [0.999] * 3 + [0.0, 0.5])
    pool = GoTransport(env, "pool", GoSettings(max_idle_conns_per_host=10))
    log = requests(env, pool, up, 3)
    env.run()
    ends = sorted(end for _, _, end in log)
    on_time = RTT + RTT + SERVICE
    assert ends == pytest.approx([on_time, on_time, on_time + RTO])


def test_grpc_channel_spreads_streams_round_robin_over_its_connections(env):
    up = upstream(env)
    pool = H2Pool(env, "pool", H2Settings(connections=2, max_concurrent_streams=1))
    log = requests(env, pool, up, 4)
    env.run()
    exchange = RTT + SERVICE
    assert sorted(end for _, _, end in log) == pytest.approx(
        [RTT + exchange, RTT + exchange, RTT + 2 * exchange, RTT + 2 * exchange]
    )
    assert env.metrics.counters["pool.dials"].value == 2


def test_grpc_keepalive_pings_measure_the_round_trip(env):
    up = upstream(env, service=1.0)
    pool = H2Pool(env, "pool", H2Settings(keepalive_time_s=0.1))
    requests(env, pool, up, 1)
    env.run(until=0.95)
    assert pool.ping_rtt_s.count == 9
    assert pool.ping_rtt_s.mean == pytest.approx(RTT)


def test_grpc_keepalive_timeout_marks_the_connection_broken_and_redials(env):
    """The PING ACK is lost: its RTO (202 ms) exceeds a 50 ms keepalive timeout.
    Draws: SYN, SYN-ACK, request, PING (kept), PING ACK (lost)."""
    up = upstream(env, service=1.0, loss=0.01, script=[0.999] * 4 + [0.0, 0.5])
    pool = H2Pool(env, "pool", H2Settings(keepalive_time_s=0.1, keepalive_timeout_s=0.05))
    requests(env, pool, up, 1)
    requests(env, pool, up, 1, at=0.5)
    env.run(until=0.6)
    assert pool.keepalive_timeouts.value == 1
    assert env.metrics.counters["pool.dials"].value == 2


def test_receiver_returns_window_in_batches_of_4_kib():
    """x/net/http2's rule: WINDOW_UPDATE once 4 KiB are consumed, or once what is held
    back reaches what is left of the window."""
    from models.net.http2 import Inflow

    inflow = Inflow(65_535)
    assert [inflow.consume(1000) for _ in range(5)] == [0, 0, 0, 0, 5000]
    small = Inflow(3000)
    assert [small.consume(1000) for _ in range(2)] == [0, 2000]  # 2000 held back >= 1000 left


def test_bad_http2_settings_are_rejected():
    with pytest.raises(ValueError, match="max_concurrent_streams: must be >= 1"):
        H2Settings(max_concurrent_streams=0)
