"""TCP connections: the handshake, an in-order byte stream with loss and retransmission, TIME_WAIT.

A :class:`TcpConnection` joins a client and a server over a
:class:`sim.topology.Route` (client to server) and its reverse.

* **Dial.** The three-way handshake costs one round trip before the client may
  send (SYN out, SYN-ACK back; the ACK travels with the first data). A lost SYN or
  SYN-ACK is sent again after the initial retransmission timeout, 1 s, doubling
  on every further loss up to ``TCP_RTO_MAX`` = 120 s (RFC 6298 §2.1 and §5.5;
  Linux ``TCP_TIMEOUT_INIT`` and ``TCP_RTO_MAX`` in ``include/net/tcp.h``,
  ``tcp_retransmit_timer`` in ``net/ipv4/tcp_timer.c``). TLS 1.3
  (:meth:`TcpConnection.tls_handshake`) adds one more round trip (ClientHello
  out; ServerHello to Finished back: RFC 8446 §2) and CPU on both ends, which
  the caller gives: no default is assumed.
* **In-order delivery and loss.** Each direction is one byte stream. A
  message is split into segments of at most ``mss_bytes``; each is lost with the
  route's loss probability. A lost segment is sent again by whichever comes
  first: *fast retransmit*, one RTT after three later segments have reached the
  receiver (their duplicate ACKs go back, the retransmission comes forth: RFC
  5681 §3.2), or a timer: Linux's *tail loss probe* (RACK-TLP, RFC 8985;
  ``tcp_schedule_loss_probe``) after 2 SRTT + 2 ms when more than one segment is
  in flight, else the *retransmission timeout* (RTO; the probe would come no
  sooner). A lost retransmission is resent when the RTO timer expires: one RTO
  later after a fast retransmit or probe, twice the last timeout after a
  timeout (back-off, RFC 6298 §5.5), never more than ``TCP_RTO_MAX`` = 120 s
  (without the cap, the doubling at a loss of 0.9 took a run's clock past
  10^13 s, where a float no longer tells a retransmission from the arrival it
  follows). Because TCP delivers bytes in order, a message is never delivered
  before the messages sent before it on the same connection and direction: a
  hole holds back everything behind it on that connection (head-of-line
  blocking), and nothing on other connections. So a lone small request or
  response (one segment in flight) that loses its segment waits a whole RTO,
  about 200 ms, however short the RTT. Not modelled: RACK's reordering window,
  congestion-window reduction after a loss, losses of ACKs, and giving up
  (Linux's ``tcp_syn_retries`` and ``tcp_retries2``: here a connection retries
  for as long as it takes).
* **RTO.** Linux sets RTO = SRTT + RTTVAR with RTTVAR floored at ``TCP_RTO_MIN``
  = 200 ms (``include/net/tcp.h``; ``tcp_rtt_estimator`` and ``__tcp_set_rto`` in
  ``net/ipv4/tcp_input.c``); with a steady RTT that is ``mean RTT + 200 ms``.
* **Close and TIME_WAIT.** The side that closes first holds the socket in
  TIME_WAIT for 2 MSL, 60 s on Linux (``TCP_TIMEWAIT_LEN`` in ``include/net/tcp.h``).
  :class:`ConnStats` counts the sockets of one side in TIME_WAIT as a gauge.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import simpy

from sim.core import Environment
from sim.topology import Route

LINUX_TIME_WAIT_S = 60.0
"""``TCP_TIMEWAIT_LEN`` (60 * HZ), Linux ``include/net/tcp.h``."""
LINUX_RTO_MIN_S = 0.2
"""``TCP_RTO_MIN`` (HZ / 5), Linux ``include/net/tcp.h``."""
LINUX_RTO_MAX_S = 120.0
"""``TCP_RTO_MAX`` (120 * HZ), Linux ``include/net/tcp.h``: the back-off doubles a timeout up to this."""
INITIAL_RTO_S = 1.0
"""Initial RTO before any RTT sample (SYN, SYN-ACK): RFC 6298 §2.1; Linux ``TCP_TIMEOUT_INIT``."""
TCP_TIMEOUT_MIN_S = 0.002
"""``TCP_TIMEOUT_MIN_US`` (2 ms), Linux ``include/net/tcp.h``: added to 2 SRTT for a loss probe."""
DUPACK_THRESHOLD = 3
"""Duplicate ACKs that trigger fast retransmit: RFC 5681 §3.2; Linux ``net.ipv4.tcp_reordering`` = 3."""
ETHERNET_MSS_BYTES = 1460
"""MSS over Ethernet: 1500-byte MTU (RFC 894) less 20-byte IPv4 and 20-byte TCP headers."""

UP: Literal["up"] = "up"  # client to server
DOWN: Literal["down"] = "down"  # server to client
Direction = Literal["up", "down"]


@dataclass(frozen=True)
class TcpSettings:
    """Kernel constants of a TCP connection; the defaults are Linux's (see the module docstring)."""

    mss_bytes: float = ETHERNET_MSS_BYTES
    rto_min_s: float = LINUX_RTO_MIN_S
    initial_rto_s: float = INITIAL_RTO_S
    time_wait_s: float = LINUX_TIME_WAIT_S
    rto_max_s: float = LINUX_RTO_MAX_S


class ConnStats:
    """Connection metrics of one side (a client pool or a server), under ``prefix``.

    ``PREFIX.open`` (gauge: open connections), ``PREFIX.time_wait`` (gauge:
    sockets this side closed within the last TIME_WAIT interval),
    ``PREFIX.dials`` and ``PREFIX.closed`` (counters; their rate is per second),
    ``PREFIX.retransmits`` (counter: segment retransmissions and SYN resends, of both
    directions of the connections this side opened; a server side's stays 0).
    """

    def __init__(self, env: Environment, prefix: str, time_wait_s: float = LINUX_TIME_WAIT_S) -> None:
        metrics = env.metrics
        self.env = env
        self.prefix = prefix
        self.time_wait_s = time_wait_s
        self.open = metrics.gauge(f"{prefix}.open")
        self.time_wait = metrics.gauge(f"{prefix}.time_wait")
        self.dials = metrics.counter(f"{prefix}.dials")
        self.closed = metrics.counter(f"{prefix}.closed")
        self.retransmits = metrics.counter(f"{prefix}.retransmits")

    def enter_time_wait(self) -> None:
        self.time_wait.add(1)
        self.env.timeout(self.time_wait_s).callbacks.append(lambda _: self.time_wait.add(-1))


_OK, _LOST, _RESENDING = 0, 1, 2


class _Message:
    """One message in one direction of a connection, until it is delivered."""

    __slots__ = ("event", "seq", "segments", "state", "arrived", "later", "fast", "arrival", "probed")

    def __init__(self, event: simpy.Event, seq: int, segments: int) -> None:
        self.event = event
        self.seq = seq
        self.segments = segments
        self.state = _OK
        self.arrived = False
        self.later = 0  # segments received after its lost one: duplicate ACKs
        self.fast = False
        self.arrival = 0.0
        self.probed = False


class _Stream:
    """One direction of a connection: messages in send order, and those with a hole."""

    __slots__ = ("direction", "queue", "holes", "lost", "sent", "in_flight")

    def __init__(self, direction: Direction) -> None:
        self.direction = direction
        self.queue: deque[_Message] = deque()
        self.holes: list[_Message] = []  # arrived with a segment missing
        self.lost: list[_Message] = []  # a segment missing and not yet resent
        self.sent = 0
        self.in_flight = 0  # segments sent and not yet arrived


class TcpConnection:
    """One TCP connection from a client to a server over ``route`` (client to server)."""

    def __init__(
        self,
        env: Environment,
        route: Route,
        settings: TcpSettings,
        client: ConnStats,
        server: ConnStats | None,
        uniform: Callable[[], float],
    ) -> None:
        self.env = env
        self.routes = {UP: route, DOWN: route.reverse()}
        self.settings = settings
        self.client = client
        self.server = server
        self._uniform = uniform  # zero-argument draw of U(0, 1), from the owner's stream
        self._streams = {UP: _Stream(UP), DOWN: _Stream(DOWN)}
        self.loss = {UP: self.routes[UP].loss, DOWN: self.routes[DOWN].loss}
        self.rtt_mean = self.routes[UP].mean_latency + self.routes[DOWN].mean_latency
        self.rto = self.rtt_mean + settings.rto_min_s
        self.is_open = False
        self.closed = False
        self.requests = 0  # requests carried so far
        self.idle_token = 0  # bumped whenever the connection leaves or re-enters an idle pool

    # -- the byte stream -------------------------------------------------------------
    def send(self, direction: Direction, size: float) -> simpy.Event:
        """An event that fires when ``size`` bytes sent now in ``direction`` are delivered,
        in order, lost segments recovered."""
        env = self.env
        stream = self._streams[direction]
        arrival = self.routes[direction].arrival(size)
        segments = max(1, math.ceil(size / self.settings.mss_bytes))
        message = _Message(env.event(), stream.sent, segments)
        stream.sent += 1
        lost_at = self._first_lost(direction, segments)
        stream.in_flight += segments
        self._rearm_probes(stream)
        if lost_at is not None:
            message.state = _LOST
            message.arrival = arrival
            message.later = segments - lost_at - 1  # its own segments behind the hole
            delay, by_timeout = self._timer(stream.in_flight, last=lost_at == segments - 1)
            message.probed = not by_timeout
            self._schedule(stream, message, arrival + delay, by_timeout)
            stream.lost.append(message)
        stream.queue.append(message)
        env.timeout(arrival - env.now).callbacks.append(lambda _: self._arrive(stream, message))
        return message.event

    def _first_lost(self, direction: Direction, segments: int) -> int | None:
        """Index of the first lost segment of a message, or None (no draw at all without loss)."""
        p = self.loss[direction]
        if p <= 0:
            return None
        if self._uniform() >= 1 - (1 - p) ** segments:
            return None
        # the first loss among `segments`, given there is one: inverse of the truncated geometric
        u = self._uniform() * (1 - (1 - p) ** segments)
        return min(segments - 1, int(math.log1p(-u) / math.log1p(-p)))

    def _schedule(self, stream: _Stream, message: _Message, at: float, by_timeout: bool) -> None:
        self.env.timeout(at - self.env.now).callbacks.append(
            lambda _: self._retransmit(stream, message, by_timeout)
        )

    def _rearm_probes(self, stream: _Stream) -> None:
        """Linux re-arms the loss probe at every send: a hole that had one segment in
        flight (so only the RTO) gets a probe once more segments follow it."""
        if not stream.lost or stream.in_flight <= 1:
            return
        for message in stream.lost:
            if not message.probed:
                delay, by_timeout = self._timer(stream.in_flight, last=False)
                if not by_timeout:
                    message.probed = True
                    self._schedule(stream, message, max(message.arrival, self.env.now) + delay, False)

    def _timer(self, packets_out: int, last: bool) -> tuple[float, bool]:
        """When a hole that duplicate ACKs do not repair is repaired, after the arrival of
        its message, and whether that was the RTO (True) or a tail loss probe (False).

        Linux ``tcp_schedule_loss_probe`` (``net/ipv4/tcp_output.c``) probes after
        PTO = 2 SRTT + TCP_RTO_MIN with one segment in flight, 2 SRTT + TCP_TIMEOUT_MIN
        (2 ms) with more, and never later than the RTO. The probe resends the last
        segment: it repairs a lost last segment itself; an earlier hole is then seen
        from the SACK and resent, one RTT more (RACK-TLP, RFC 8985).
        """
        extra = TCP_TIMEOUT_MIN_S if packets_out > 1 else self.settings.rto_min_s
        probe = 2 * self.rtt_mean + extra
        if probe >= self.rto:
            return self.rto, True
        return probe + (0.0 if last else self.rtt_mean), False

    def _arrive(self, stream: _Stream, message: _Message) -> None:
        """A message's segments (all but a lost one) reach the receiver: each is a duplicate
        ACK for every earlier hole; three of them trigger fast retransmit."""
        message.arrived = True
        stream.in_flight -= message.segments
        good = message.segments - (1 if message.state == _LOST else 0)
        for hole in stream.holes:
            if hole.seq < message.seq:
                hole.later += good
                self._check_dupacks(stream, hole)
        if message.state == _LOST:
            stream.holes.append(message)
            self._check_dupacks(stream, message)
        self._deliver(stream)

    def _check_dupacks(self, stream: _Stream, hole: _Message) -> None:
        if hole.state == _LOST and hole.later >= DUPACK_THRESHOLD and not hole.fast:
            hole.fast = True  # dup ACKs travel back, the retransmission forth: one RTT
            self.env.timeout(self.rtt_mean).callbacks.append(
                lambda _: self._retransmit(stream, hole, by_timeout=False)
            )

    def _retransmit(self, stream: _Stream, message: _Message, by_timeout: bool) -> None:
        """Resend a lost segment (first of fast retransmit and RTO wins). A lost
        retransmission waits for the RTO timer: one RTO after a fast retransmit, and
        twice the previous timeout after a timeout (back-off)."""
        if message.state != _LOST:
            return
        message.state = _RESENDING
        stream.lost.remove(message)
        self.client.retransmits.inc()
        extra, backoff, most = 0.0, (2.0 if by_timeout else 1.0), self.settings.rto_max_s
        while self._uniform() < self.loss[stream.direction]:
            extra += min(backoff * self.rto, most)
            backoff *= 2
            self.client.retransmits.inc()

        def recovered(_event: object) -> None:
            message.state = _OK
            stream.holes.remove(message)
            self._deliver(stream)

        self.env.timeout(extra).callbacks.append(recovered)

    def _deliver(self, stream: _Stream) -> None:
        queue = stream.queue
        while queue and queue[0].arrived and queue[0].state == _OK:
            queue.popleft().event.succeed()

    # -- life cycle ------------------------------------------------------------------
    def connect(self):
        """Process: the three-way handshake (one round trip, more if SYN or SYN-ACK is lost)."""
        self.client.dials.inc()
        yield self.env.timeout(self._handshake_leg(UP))  # SYN
        yield self.env.timeout(self._handshake_leg(DOWN))  # SYN-ACK
        self.is_open = True
        self.client.open.add(1)
        if self.server is not None:
            self.server.open.add(1)

    def _handshake_leg(self, direction: Direction) -> float:
        """Delay of a SYN or SYN-ACK: one way, plus the initial RTO, doubled per loss, for each loss."""
        delay = self.routes[direction].arrival(0) - self.env.now
        rto, most = self.settings.initial_rto_s, self.settings.rto_max_s
        while self.loss[direction] > 0 and self._uniform() < self.loss[direction]:
            delay += rto
            rto = min(2 * rto, most)
            self.client.retransmits.inc()
        return delay

    def tls_handshake(self, client_cpu: Callable[[], simpy.Event], server_cpu: Callable[[], simpy.Event]):
        """Process: TLS 1.3 full handshake, one round trip plus CPU on both ends.

        ``client_cpu()`` and ``server_cpu()`` return events (the work of each end:
        key share and certificate verification at the client, key share and
        signature at the server). Handshake messages are taken as one segment each.
        """
        yield self.send(UP, 0)  # ClientHello (+ key share)
        yield server_cpu()
        yield self.send(DOWN, 0)  # ServerHello .. Finished
        yield client_cpu()  # the client's Finished travels with its first request

    def close(self, by: Literal["client", "server"] = "client") -> None:
        """Close now; the side ``by`` closes first and holds the socket in TIME_WAIT."""
        if self.closed:
            raise RuntimeError("connection closed twice")
        self.closed = True
        if self.is_open:
            self.client.open.add(-1)
            if self.server is not None:
                self.server.open.add(-1)
        self.client.closed.inc()
        side = self.client if by == "client" else self.server
        if side is not None:
            side.enter_time_wait()


@dataclass(frozen=True)
class TlsCost:
    """CPU seconds of one TLS 1.3 full handshake at each end.

    No default: the cost depends on the key exchange, the certificate's key type
    and the CPU; measure it (for example ``openssl speed ecdhx25519 ecdsap256``)
    and give it here.
    """

    client_cpu_s: float
    server_cpu_s: float


class Dialer:
    """Opens connections from one client to one server: TCP, then TLS 1.3 if ``tls`` is given.

    ``server_work(seconds)`` returns the event of CPU work at the server (so a
    handshake competes with requests for the server's workers); client CPU is a
    plain delay.
    """

    def __init__(
        self,
        env: Environment,
        route: Route,
        settings: TcpSettings,
        client: ConnStats,
        server: ConnStats | None,
        uniform: Callable[[], float],
        tls: TlsCost | None = None,
        server_work: Callable[[float], simpy.Event] | None = None,
    ) -> None:
        if tls is not None and server_work is None:
            raise ValueError("a TLS dialer needs server_work, the server's CPU")
        self.env = env
        self.route = route
        self.settings = settings
        self.client = client
        self.server = server
        self.uniform = uniform
        self.tls = tls
        self.server_work = server_work

    def dial(self) -> simpy.Event:
        """A process whose value is a new, open connection."""
        return self.env.process(self._dial())

    def _dial(self):
        conn = TcpConnection(self.env, self.route, self.settings, self.client, self.server, self.uniform)
        yield self.env.process(conn.connect())
        if self.tls is not None:
            tls = self.tls
            yield self.env.process(
                conn.tls_handshake(
                    lambda: self.env.timeout(tls.client_cpu_s),
                    lambda: self.server_work(tls.server_cpu_s),
                )
            )
        return conn
