"""Micro-stories of TCP connections: handshakes, in-order delivery, loss recovery, TIME_WAIT.

Losses are scripted: the connection draws its uniforms from a list, so a test
decides which segment is lost (a draw below the loss probability loses it).
"""

from __future__ import annotations

import math

import pytest

from sim.core import Environment
from sim.dists import Constant
from sim.topology import Cluster
from models.net.tcp import DOWN, TCP_TIMEOUT_MIN_S, UP, ConnStats, Dialer, TcpConnection, TcpSettings, TlsCost

ONE_WAY = 0.005
RTT = 2 * ONE_WAY
SETTINGS = TcpSettings()
RTO = RTT + SETTINGS.rto_min_s


class Script:
    """Uniform draws from a list, then 0.999 (no loss) forever."""

    def __init__(self, values=()):
        self.values = list(values)

    def __call__(self) -> float:
        return self.values.pop(0) if self.values else 0.999


def setup(env: Environment, loss: float = 0.0, script=(), bandwidth: float = math.inf):
    cluster = Cluster(env)
    cluster.add_node("client")
    cluster.add_node("server")
    cluster.add_link("client", "server", Constant(ONE_WAY), bandwidth, loss)
    client, server = ConnStats(env, "pool"), ConnStats(env, "server")
    uniform = Script(script)
    return cluster.route("client", "server"), client, server, uniform


def open_connection(env, loss=0.0, script=(), bandwidth=math.inf) -> TcpConnection:
    route, client, server, uniform = setup(env, loss, script, bandwidth)
    conn = TcpConnection(env, route, SETTINGS, client, server, uniform)
    conn.is_open = True
    return conn


def arrivals(env, events):
    log = {}
    for name, event in events.items():
        event.callbacks.append(lambda _, name=name: log.__setitem__(name, env.now))
    env.run()
    return log


def test_dial_costs_one_round_trip(env):
    route, client, server, uniform = setup(env)
    dialer = Dialer(env, route, SETTINGS, client, server, uniform)
    done = dialer.dial()
    env.run(done)
    assert env.now == pytest.approx(RTT)
    assert done.value.is_open
    assert client.dials.value == 1 and client.open.level == 1 and server.open.level == 1


def test_tls13_adds_a_round_trip_and_cpu_at_both_ends(env):
    route, client, server, uniform = setup(env)
    server_work = []
    dialer = Dialer(
        env, route, SETTINGS, client, server, uniform, TlsCost(client_cpu_s=0.001, server_cpu_s=0.002),
        server_work=lambda s: server_work.append(s) or env.timeout(s),
    )
    env.run(dialer.dial())
    assert env.now == pytest.approx(2 * RTT + 0.001 + 0.002)
    assert server_work == [0.002]


def test_lost_syn_waits_the_initial_rto(env):
    route, client, server, _ = setup(env, loss=0.1, script=[0.05, 0.5])  # SYN lost once, then sent
    dialer = Dialer(env, route, SETTINGS, client, server, Script([0.05, 0.5, 0.5]))
    env.run(dialer.dial())
    assert env.now == pytest.approx(RTT + SETTINGS.initial_rto_s)
    assert client.retransmits.value == 1


def test_messages_are_delivered_in_order_one_way_later(env):
    conn = open_connection(env, bandwidth=1e6)
    log = arrivals(env, {"a": conn.send(UP, 1000), "b": conn.send(UP, 1000), "down": conn.send(DOWN, 0)})
    assert log == pytest.approx({"a": ONE_WAY + 0.001, "b": ONE_WAY + 0.002, "down": ONE_WAY})


def test_a_lone_lost_segment_waits_for_the_rto(env):
    """One message, nothing behind it: no duplicate ACKs, recovery by timeout."""
    conn = open_connection(env, loss=0.1, script=[0.0, 0.5])  # lost; first lost segment index 0
    log = arrivals(env, {"a": conn.send(UP, 100)})
    assert log["a"] == pytest.approx(ONE_WAY + RTO)
    assert conn.client.retransmits.value == 1


def test_lost_segment_holds_back_later_messages_on_its_connection_only(env):
    """Head-of-line blocking: 'b' arrives on time but is delivered after 'a' is repaired;
    a message on another connection over the same link is not held. With 'b' in flight
    behind it, the hole gets a tail loss probe (2 RTT + 2 ms), then the SACK-driven
    retransmission (1 RTT), instead of the RTO."""
    conn = open_connection(env, loss=0.1, script=[0.0, 0.5])
    other = TcpConnection(env, conn.routes[UP], SETTINGS, conn.client, conn.server, Script())
    log = arrivals(env, {"a": conn.send(UP, 100), "b": conn.send(UP, 100), "other": other.send(UP, 100)})
    repaired = ONE_WAY + 3 * RTT + TCP_TIMEOUT_MIN_S
    assert log["a"] == pytest.approx(repaired)
    assert log["b"] == pytest.approx(repaired)
    assert log["other"] == pytest.approx(ONE_WAY)


def test_a_lost_last_segment_is_repaired_by_the_tail_loss_probe(env):
    """Two segments in flight, the last one lost: no duplicate ACK can come, the probe
    (2 RTT + 2 ms after the send) resends it."""
    conn = open_connection(env, loss=0.01, script=[0.0, 0.999])  # lost; index 1 of 2 (the last)
    log = arrivals(env, {"a": conn.send(UP, 2 * SETTINGS.mss_bytes)})
    assert log["a"] == pytest.approx(ONE_WAY + 2 * RTT + TCP_TIMEOUT_MIN_S)


def test_three_later_segments_trigger_fast_retransmit(env):
    """A 4-segment message whose first segment is lost: its 3 later segments are duplicate
    ACKs, so the hole is repaired one RTT after they arrive, long before the RTO."""
    conn = open_connection(env, loss=0.01, script=[0.0, 0.0])  # lost, first lost index 0
    log = arrivals(env, {"a": conn.send(UP, 4 * SETTINGS.mss_bytes)})
    assert log["a"] == pytest.approx(ONE_WAY + RTT)


def test_fast_retransmit_counts_later_messages_as_duplicate_acks(env):
    conn = open_connection(env, loss=0.01, script=[0.0, 0.0])
    events = {"a": conn.send(UP, 100)}
    for name in "bcd":
        events[name] = conn.send(UP, 100)
    log = arrivals(env, events)
    assert list(log.values()) == pytest.approx([ONE_WAY + RTT] * 4)


def test_a_lost_retransmission_waits_for_the_backed_off_rto(env):
    """Lost, then lost again on its retransmission after a timeout: RTO + 2 RTO."""
    conn = open_connection(env, loss=0.1, script=[0.0, 0.5, 0.05, 0.5])
    log = arrivals(env, {"a": conn.send(UP, 100)})
    assert log["a"] == pytest.approx(ONE_WAY + 3 * RTO)
    assert conn.client.retransmits.value == 2


def test_closing_side_holds_time_wait_for_60_s(env):
    conn = open_connection(env)
    conn.client.open.add(1)
    env.run(until=1.0)
    conn.close(by="client")
    assert conn.client.time_wait.level == 1 and conn.server.time_wait.level == 0
    assert conn.client.closed.value == 1 and conn.client.open.level == 0
    env.run(until=1.0 + 59.999)
    assert conn.client.time_wait.level == 1
    env.run(until=1.0 + 60.001)
    assert conn.client.time_wait.level == 0
    with pytest.raises(RuntimeError):
        conn.close()


def test_server_side_close_puts_time_wait_on_the_server(env):
    conn = open_connection(env)
    conn.close(by="server")
    assert conn.server.time_wait.level == 1 and conn.client.time_wait.level == 0


def test_first_lost_segment_follows_the_truncated_geometric(env):
    """Statistical: given a loss among n segments, the first lost index k has
    P(k) = p (1-p)^k / (1 - (1-p)^n). Fixed seed; 5-sigma binomial tolerance."""
    rng = env.rng("test.first_lost")
    conn = open_connection(env, loss=0.3)
    conn._uniform = lambda: float(rng.random())
    n, p, draws = 4, 0.3, 20_000
    counts = [0] * n
    lost = 0
    for _ in range(draws):
        k = conn._first_lost(UP, n)
        if k is not None:
            counts[k] += 1
            lost += 1
    p_any = 1 - (1 - p) ** n
    sigma = math.sqrt(draws * p_any * (1 - p_any))
    assert abs(lost - draws * p_any) < 5 * sigma
    for k in range(n):
        q = p * (1 - p) ** k / p_any
        assert abs(counts[k] - lost * q) < 5 * math.sqrt(lost * q * (1 - q))


def test_a_retransmission_lost_again_and_again_backs_off_to_at_most_120_s(env):
    """Lost, then its retransmission lost 12 times more: the timeouts double from 2 RTO up to
    TCP_RTO_MAX = 120 s and stay there (the doubling alone would have waited 1720 s)."""
    conn = open_connection(env, loss=0.1, script=[0.0, 0.5] + [0.05] * 12 + [0.5])
    log = arrivals(env, {"a": conn.send(UP, 100)})
    backoff = sum(min(2**k * RTO, 120.0) for k in range(1, 13))
    assert log["a"] == pytest.approx(ONE_WAY + RTO + backoff)
    assert conn.client.retransmits.value == 13


def test_a_syn_lost_ten_times_backs_off_to_at_most_120_s(env):
    route, client, server, _ = setup(env, loss=0.1)
    dialer = Dialer(env, route, SETTINGS, client, server, Script([0.05] * 10 + [0.5, 0.5]))
    env.run(dialer.dial())
    assert env.now == pytest.approx(RTT + 1 + 2 + 4 + 8 + 16 + 32 + 64 + 120 + 120 + 120)
    assert client.retransmits.value == 10
