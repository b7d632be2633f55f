"""HTTP/2 multiplexing and gRPC channels: streams, concurrency limits, flow control, pings.

One HTTP/2 connection carries many requests at once, each on its own *stream*
(RFC 9113). What limits it, and what this module models:

* **Concurrent streams.** The server's ``SETTINGS_MAX_CONCURRENT_STREAMS`` caps
  the streams open at once on a connection (RFC 9113 §5.1.2). A request beyond
  the cap waits on the client, first come first served, until a stream of that
  connection ends (gRPC's behaviour, and Go's with
  ``StrictMaxConcurrentStreams``; Go's default of opening another connection
  instead is not modelled). Default 100: Node's default, and the least the RFC
  recommends (§6.5.2); Go's server advertises 250.
* **Flow control.** A DATA sender may have at most min(stream window,
  connection window) bytes unacknowledged (RFC 9113 §5.2, §6.9); both windows
  start at 65,535 bytes (§6.9.2). DATA goes in frames of at most
  ``SETTINGS_MAX_FRAME_SIZE`` = 16,384 bytes (§4.2). When the receiver has a
  frame it consumes it; once it has consumed 4 KiB, or what it holds back
  reaches what is left of the window (Go's rule, x/net/http2 ``flow.go``), it
  sends WINDOW_UPDATE frames (13 bytes each, §6.9) for the stream and the
  connection on the reverse byte stream; their arrival reopens the windows. A
  window that runs out stalls the sender (streams stalled on the connection
  window resume first come first served): at most one window crosses per round
  trip, so one connection carries at most ``window / RTT`` bytes per second.
  HEADERS are counted with the DATA of a message.
* **TCP head-of-line blocking.** All streams of a connection share one TCP
  byte stream per direction (:mod:`models.net.tcp`): a lost segment delays
  every frame sent after it on that connection, whatever its stream.
* **gRPC channel.** :class:`H2Pool` spreads streams round-robin over
  ``connections`` HTTP/2 connections, dialled on first use. With
  ``keepalive_time`` set, each connection sends a PING (17 bytes, §6.7) every
  ``keepalive_time`` while it has streams (or always, with
  ``permit_without_stream``) and waits ``keepalive_timeout`` for the ACK; a
  ping not acknowledged in time marks the connection broken and the channel
  dials a replacement for new streams (streams already open finish; gRPC would
  fail them). gRPC's defaults: keepalive off on clients, timeout 20 s
  (grpc/grpc ``doc/keepalive.md``).

Metrics of a pool named ``NAME``: ``NAME.wait_s`` (histogram: time from asking
for a stream to opening it, dial included), ``NAME.reuse_ratio`` (mean: share
of requests on a connection that carried one before), ``NAME.streams``
(gauge: open streams), ``NAME.flow_wait_s`` (histogram, per message: time a
sender was stalled by flow-control windows), ``NAME.ping_rtt_s``,
``NAME.keepalive_timeouts``, and :class:`~models.net.tcp.ConnStats`
(``NAME.open``, ``NAME.time_wait``, ``NAME.dials``, ``NAME.closed``, ``NAME.retransmits``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import partial

import simpy

from sim.core import Environment
from models.net.server import Upstream
from models.net.tcp import DOWN, UP, ConnStats, Direction, TcpConnection

RFC_INITIAL_WINDOW_BYTES = 65_535
"""Initial stream and connection flow-control window, RFC 9113 §6.9.2."""
RFC_MAX_FRAME_BYTES = 16_384
"""Initial SETTINGS_MAX_FRAME_SIZE (2**14), RFC 9113 §4.2 and §6.5.2."""
WINDOW_UPDATE_FRAME_BYTES = 13
"""9-byte frame header (RFC 9113 §4.1) + 4-byte window size increment (§6.9)."""
WINDOW_UPDATE_MIN_BYTES = 4096
"""A receiver returns window only once 4 KiB are consumed, or when what it holds back
reaches what is left of the window: golang.org/x/net/http2 ``flow.go``, ``inflowMinRefresh``."""
PING_FRAME_BYTES = 17
"""9-byte frame header + 8 bytes of opaque data, RFC 9113 §6.7."""
DEFAULT_MAX_CONCURRENT_STREAMS = 100
"""Node's http2 default; RFC 9113 §6.5.2 recommends no fewer than 100."""
GRPC_KEEPALIVE_TIMEOUT_S = 20.0
"""GRPC_ARG_KEEPALIVE_TIMEOUT_MS default 20000, grpc/grpc ``doc/keepalive.md``."""


@dataclass(frozen=True)
class H2Settings:
    """Settings of an HTTP/2 client and its peer; defaults are the RFC's and Node's (see above)."""

    connections: int = 1
    max_concurrent_streams: int = DEFAULT_MAX_CONCURRENT_STREAMS
    initial_window_bytes: float = RFC_INITIAL_WINDOW_BYTES
    connection_window_bytes: float = RFC_INITIAL_WINDOW_BYTES
    max_frame_bytes: float = RFC_MAX_FRAME_BYTES
    keepalive_time_s: float | None = None
    keepalive_timeout_s: float = GRPC_KEEPALIVE_TIMEOUT_S
    permit_without_stream: bool = False

    def __post_init__(self) -> None:
        for field, value, low in (
            ("connections", self.connections, 1),
            ("max_concurrent_streams", self.max_concurrent_streams, 1),
            ("initial_window_bytes", self.initial_window_bytes, 1),
            ("connection_window_bytes", self.connection_window_bytes, 1),
            ("max_frame_bytes", self.max_frame_bytes, 1),
        ):
            if value < low:
                raise ValueError(f"{field}: must be >= {low} (got {value!r})")


class Window:
    """A flow-control window: bytes a sender may still send.

    Senders that find it empty queue first come first served (:meth:`wait`); a
    credit wakes the first, and a sender that leaves bytes in the window wakes
    the next (:meth:`pass_on`), so a credit wakes no more senders than it can serve.
    """

    def __init__(self, env: Environment, size: float) -> None:
        self.env = env
        self.available = float(size)
        self._waiters: deque[simpy.Event] = deque()

    def wait(self) -> simpy.Event:
        event = self.env.event()
        self._waiters.append(event)
        return event

    def credit(self, size: float, _event: object = None) -> None:
        self.available += size
        self.pass_on()

    def pass_on(self) -> None:
        if self._waiters and self.available > 0:
            self._waiters.popleft().succeed()


class Inflow:
    """The receiver's side of a window: it returns consumed bytes in batches (x/net/http2's rule)."""

    __slots__ = ("available", "unsent")

    def __init__(self, size: float) -> None:
        self.available = float(size)
        self.unsent = 0.0

    def consume(self, size: float) -> float:
        """Account ``size`` consumed bytes; the increment to send now in a WINDOW_UPDATE (or 0)."""
        self.available -= size
        self.unsent += size
        if self.unsent < WINDOW_UPDATE_MIN_BYTES and self.unsent < self.available:
            return 0.0
        increment, self.unsent = self.unsent, 0.0
        self.available += increment
        return increment


class H2Connection:
    """One HTTP/2 connection over a TCP connection: stream slots and flow-control windows."""

    def __init__(self, env: Environment, tcp: TcpConnection, settings: H2Settings, pool: H2Pool) -> None:
        self.env = env
        self.tcp = tcp
        self.settings = settings
        self.pool = pool
        self.active = 0
        self.waiting: deque[simpy.Event] = deque()
        self.windows = {d: Window(env, settings.connection_window_bytes) for d in (UP, DOWN)}
        self.inflows = {d: Inflow(settings.connection_window_bytes) for d in (UP, DOWN)}  # by sending direction
        self.broken = False

    def open_stream(self) -> simpy.Event:
        """An event that fires when this connection may open one more stream."""
        event = self.env.event()
        if self.active < self.settings.max_concurrent_streams:
            self.active += 1
            self.pool.streams.add(1)
            event.succeed()
        else:
            self.waiting.append(event)
        return event

    def close_stream(self) -> None:
        if self.waiting:
            self.waiting.popleft().succeed()  # the slot passes on; the count is unchanged
        else:
            self.active -= 1
            self.pool.streams.add(-1)
            self._close_if_drained()

    def send_data(self, direction: Direction, size: float, stream_window: Window):
        """Process: send a message of ``size`` bytes on a stream, within both windows;
        ends when the receiver has all of it."""
        env, tcp = self.env, self.tcp
        if size <= 0:
            yield tcp.send(direction, 0)
            return
        connection_window = self.windows[direction]
        stream_inflow = Inflow(stream_window.available)
        remaining = size
        last: simpy.Event | None = None
        stalled = 0.0
        while remaining > 0:
            since = env.now
            while stream_window.available <= 0 or connection_window.available <= 0:
                if stream_window.available <= 0:
                    yield stream_window.wait()
                else:
                    yield connection_window.wait()
            stalled += env.now - since
            frame = min(remaining, stream_window.available, connection_window.available, self.settings.max_frame_bytes)
            stream_window.available -= frame
            connection_window.available -= frame
            remaining -= frame
            connection_window.pass_on()
            last = tcp.send(direction, frame)
            last.callbacks.append(partial(self._consumed, direction, frame, stream_window, stream_inflow))
        self.pool.flow_wait_s.record(stalled)
        yield last

    def _consumed(
        self, direction: Direction, frame: float, stream_window: Window, stream_inflow: Inflow, _event: object
    ) -> None:
        """The receiver has a frame and consumes it; when its inflows say so it sends
        WINDOW_UPDATE frames (stream, connection) on the reverse byte stream."""
        back: Direction = DOWN if direction == UP else UP
        stream_increment = stream_inflow.consume(frame)
        connection_increment = self.inflows[direction].consume(frame)
        frames = (stream_increment > 0) + (connection_increment > 0)
        if not frames:
            return
        update = self.tcp.send(back, frames * WINDOW_UPDATE_FRAME_BYTES)
        if stream_increment:
            update.callbacks.append(partial(stream_window.credit, stream_increment))
        if connection_increment:
            update.callbacks.append(partial(self.windows[direction].credit, connection_increment))

    def keepalive(self):
        """Process: gRPC keepalive pings until the connection is broken or closed."""
        env, tcp, settings = self.env, self.tcp, self.settings
        assert settings.keepalive_time_s is not None
        while not (self.broken or tcp.closed):
            yield env.timeout(settings.keepalive_time_s)
            if self.active == 0 and not settings.permit_without_stream:
                continue
            sent = env.now
            yield tcp.send(UP, PING_FRAME_BYTES)
            ack = tcp.send(DOWN, PING_FRAME_BYTES)
            deadline = env.timeout(max(0.0, sent + settings.keepalive_timeout_s - env.now))
            outcome = yield ack | deadline
            if ack in outcome:
                self.pool.ping_rtt_s.record(env.now - sent)
            else:
                self.broken = True
                self.pool.keepalive_timeouts.inc()
                self._close_if_drained()

    def _close_if_drained(self) -> None:
        if self.broken and self.active == 0 and not self.tcp.closed:
            self.tcp.close(by="client")


class H2Pool:
    """A gRPC-style channel: ``connections`` HTTP/2 connections per upstream, streams round-robin."""

    def __init__(self, env: Environment, name: str, settings: H2Settings = H2Settings()) -> None:
        self.env = env
        self.name = name
        self.settings = settings
        self.stats = ConnStats(env, name)
        metrics = env.metrics
        self.wait_s = metrics.histogram(f"{name}.wait_s")
        self.reuse_ratio = metrics.histogram(f"{name}.reuse_ratio")
        self.streams = metrics.gauge(f"{name}.streams")
        self.flow_wait_s = metrics.histogram(f"{name}.flow_wait_s")
        self.ping_rtt_s = metrics.histogram(f"{name}.ping_rtt_s")
        self.keepalive_timeouts = metrics.counter(f"{name}.keepalive_timeouts")
        self._slots: dict[str, list[H2Connection | simpy.Event | None]] = {}
        self._next: dict[str, int] = {}

    def connection(self, upstream: Upstream) -> simpy.Event:
        """An event whose value is the next connection in round-robin order (dialled if needed)."""
        slots = self._slots.setdefault(upstream.name, [None] * self.settings.connections)
        index = self._next.get(upstream.name, 0)
        self._next[upstream.name] = (index + 1) % len(slots)
        slot = slots[index]
        if isinstance(slot, H2Connection) and slot.broken:
            slot = None
        if slot is None:
            slot = slots[index] = self.env.process(self._dial(upstream, index))
        if isinstance(slot, H2Connection):
            event = self.env.event()
            event.succeed(slot)
            return event
        return slot

    def has_ready(self, upstream: Upstream) -> bool:
        """Whether a stream to ``upstream`` would open at once: the next connection in round-robin order is
        established, not broken, and below ``max_concurrent_streams``. Changes nothing."""
        slots = self._slots.get(upstream.name)
        if slots is None:
            return False
        slot = slots[self._next.get(upstream.name, 0)]
        return (isinstance(slot, H2Connection) and not slot.broken
                and slot.active < self.settings.max_concurrent_streams)

    def _dial(self, upstream: Upstream, index: int):
        tcp = yield upstream.dialer.dial()
        conn = H2Connection(self.env, tcp, self.settings, self)
        self._slots[upstream.name][index] = conn
        if self.settings.keepalive_time_s is not None:
            self.env.process(conn.keepalive())
        return conn

    def round_trip(self, upstream: Upstream, request_bytes: float, response_bytes: float) -> simpy.Event:
        """A process that fires when the response of one request to ``upstream`` is in."""
        return self.env.process(self._round_trip(upstream, request_bytes, response_bytes))

    def _round_trip(self, upstream: Upstream, request_bytes: float, response_bytes: float):
        env = self.env
        asked = env.now
        conn: H2Connection = yield self.connection(upstream)
        yield conn.open_stream()
        self.wait_s.record(env.now - asked)
        self.reuse_ratio.record(1.0 if conn.tcp.requests else 0.0)
        conn.tcp.requests += 1
        initial = self.settings.initial_window_bytes
        yield env.process(conn.send_data(UP, request_bytes, Window(env, initial)))
        yield upstream.backend.serve()
        yield env.process(conn.send_data(DOWN, response_bytes, Window(env, initial)))
        conn.close_stream()
