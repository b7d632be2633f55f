"""HTTP/1.1 connection pools: Go's ``http.Transport`` and Node's ``http.Agent``.

HTTP/1.1 carries one request at a time on a connection: the request goes up,
the server serves it, the response comes down (:func:`exchange`), and only then
may the connection carry another request. A pool decides, for each request,
whether it reuses an idle connection, dials a new one, or waits; and, when a
request is done, whether its connection stays idle or is closed. The pool's
queueing and its dial/close churn come out of those rules, which are the real
ones, step for step:

**Go** (``GoTransport``; ``src/net/http/transport.go``: ``getConn``,
``queueForIdleConn``, ``queueForDial``, ``dialConnFor``, ``tryPutIdleConn``,
``decConnsPerHost``):

* a request takes the most recently used idle connection of its host (LIFO).
  Otherwise it joins the host's idle-wait queue *and* asks to dial: at once if
  ``MaxConnsPerHost`` is 0 (unlimited) or the host has fewer connections,
  otherwise it joins the host's dial-wait queue.
* whichever comes first serves the request: a connection another request
  returns (handed to the oldest idle waiter), or its own dial. A dial that
  completes after its request was served is not wasted: its connection is put
  back as if returned (``putOrCloseIdleConn``).
* a returned connection goes to the oldest idle waiter; else to the idle list
  unless the host already has ``MaxIdleConnsPerHost`` idle connections
  (default 2), in which case it is **closed** (``errTooManyIdleHost``): this
  client side then holds it in TIME_WAIT. Above ``MaxIdleConns`` idle
  connections in all (default 100) the least recently used is closed.
* an idle connection is closed after ``IdleConnTimeout`` (default 90 s).
* when a connection closes and requests wait to dial, the first one still
  waiting dials in its place.

Defaults: ``MaxIdleConns`` 100, ``MaxIdleConnsPerHost`` 2
(``DefaultMaxIdleConnsPerHost``), ``MaxConnsPerHost`` 0, ``IdleConnTimeout``
90 s (``DefaultTransport`` in ``transport.go``).

**Node** (``NodeAgent``; ``lib/_http_agent.js``: ``addRequest``, the ``free``
handler, ``removeSocket``; ``lib/_http_client.js`` for ``shouldKeepAlive``):

* a request takes a free socket (``scheduling`` ``lifo``, the default, takes
  the most recently freed; ``fifo`` the oldest); else creates a socket if the
  host has fewer than ``maxSockets``; else waits in the host's queue.
* a finished socket goes to the first waiting request; else it is destroyed
  unless ``keepAlive`` is set, the host has fewer than ``maxFreeSockets`` free
  sockets and no more than ``maxSockets`` sockets; a free socket is destroyed
  after ``timeout`` of inactivity if a timeout is set.
* without ``keepAlive`` and with ``maxSockets`` unlimited, requests carry
  ``Connection: close``: the server closes after its response (the TIME_WAIT is
  the server's) and the socket is never reused.
* when a socket is destroyed and requests wait, a socket is created for the first.

Defaults (Node ``http.Agent`` docs): ``keepAlive`` false, ``maxSockets`` and
``maxTotalSockets`` Infinity, ``maxFreeSockets`` 256, ``scheduling`` 'lifo', no
``timeout``. Node >= 19's ``http.globalAgent`` has ``keepAlive: true`` and
``timeout: 5000``.

Metrics of a pool named ``NAME``: ``NAME.wait_s`` (histogram: time from asking
for a connection to holding one, dial included), ``NAME.reuse_ratio``
(histogram of 1 for a request on a connection that carried one before, 0 on a
fresh one: its mean is the connection reuse ratio), and the
:class:`~models.net.tcp.ConnStats` of the client side: ``NAME.open``,
``NAME.time_wait``, ``NAME.dials`` (rate: dials/s), ``NAME.closed``,
``NAME.retransmits``.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict, deque
from dataclasses import dataclass

import simpy

from sim.core import Environment
from models.net.server import Upstream
from models.net.tcp import DOWN, UP, ConnStats, TcpConnection

GO_MAX_IDLE_CONNS = 100
GO_MAX_IDLE_CONNS_PER_HOST = 2
GO_IDLE_CONN_TIMEOUT_S = 90.0
NODE_MAX_FREE_SOCKETS = 256


def exchange(conn: TcpConnection, upstream: Upstream, request_bytes: float, response_bytes: float):
    """Process: one HTTP/1.1 request and its response on ``conn``."""
    yield conn.send(UP, request_bytes)
    yield upstream.backend.serve()
    yield conn.send(DOWN, response_bytes)


class _Want:
    """A request waiting for a connection (Go's ``wantConn``): delivered at most once."""

    __slots__ = ("event", "done", "upstream")

    def __init__(self, env: Environment, upstream: Upstream) -> None:
        self.event = env.event()
        self.done = False
        self.upstream = upstream

    def try_deliver(self, conn: TcpConnection) -> bool:
        if self.done:
            return False
        self.done = True
        self.event.succeed(conn)
        return True


class _Pool:
    """What both pools share: metrics and the life of one request."""

    def __init__(self, env: Environment, name: str) -> None:
        self.env = env
        self.name = name
        self.stats = ConnStats(env, name)
        self.wait_s = env.metrics.histogram(f"{name}.wait_s")
        self.reuse_ratio = env.metrics.histogram(f"{name}.reuse_ratio")

    def round_trip(self, upstream: Upstream, request_bytes: float, response_bytes: float) -> simpy.Event:
        """A process that fires when the response of one request to ``upstream`` is in."""
        return self.env.process(self._round_trip(upstream, request_bytes, response_bytes))

    def _round_trip(self, upstream: Upstream, request_bytes: float, response_bytes: float):
        asked = self.env.now
        conn = yield self.get_conn(upstream)
        self.wait_s.record(self.env.now - asked)
        self.reuse_ratio.record(1.0 if conn.requests else 0.0)
        conn.requests += 1
        yield self.env.process(exchange(conn, upstream, request_bytes, response_bytes))
        self.release(conn, upstream)

    def get_conn(self, upstream: Upstream) -> simpy.Event:
        raise NotImplementedError

    def has_ready(self, upstream: Upstream) -> bool:
        """Whether :meth:`get_conn` would hand a connection to ``upstream`` at once (an idle one: no dial, no
        wait). Changes nothing."""
        raise NotImplementedError

    def release(self, conn: TcpConnection, upstream: Upstream) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class GoSettings:
    """``http.Transport`` fields; defaults are Go's (see the module docstring)."""

    max_idle_conns: int = GO_MAX_IDLE_CONNS
    max_idle_conns_per_host: int = GO_MAX_IDLE_CONNS_PER_HOST
    max_conns_per_host: int = 0
    idle_conn_timeout_s: float = GO_IDLE_CONN_TIMEOUT_S
    disable_keep_alives: bool = False


class GoTransport(_Pool):
    """Go's ``net/http.Transport`` connection pool for HTTP/1.1 (see the module docstring)."""

    def __init__(self, env: Environment, name: str, settings: GoSettings = GoSettings()) -> None:
        super().__init__(env, name)
        self.settings = settings
        self.idle: dict[str, list[TcpConnection]] = defaultdict(list)  # most recently used last
        self.idle_lru: OrderedDict[TcpConnection, str] = OrderedDict()
        self.idle_wait: dict[str, deque[_Want]] = defaultdict(deque)
        self.conns_per_host: dict[str, int] = defaultdict(int)
        self.conns_wait: dict[str, deque[_Want]] = defaultdict(deque)
        self.upstreams: dict[str, Upstream] = {}

    @property
    def max_idle_per_host(self) -> int:
        """``maxIdleConnsPerHost()``: 0 means the default, 2."""
        return self.settings.max_idle_conns_per_host or GO_MAX_IDLE_CONNS_PER_HOST

    def get_conn(self, upstream: Upstream) -> simpy.Event:
        self.upstreams[upstream.name] = upstream
        want = _Want(self.env, upstream)
        if not self._queue_for_idle(want):
            self._queue_for_dial(want)
        return want.event

    def has_ready(self, upstream: Upstream) -> bool:
        return not self.settings.disable_keep_alives and bool(self.idle.get(upstream.name))

    def _queue_for_idle(self, want: _Want) -> bool:
        host = want.upstream.name
        if not self.settings.disable_keep_alives:
            idle = self.idle[host]
            if idle:
                conn = idle.pop()
                del self.idle_lru[conn]
                conn.idle_token += 1
                return want.try_deliver(conn)
        self.idle_wait[host].append(want)
        return False

    def _queue_for_dial(self, want: _Want) -> None:
        host = want.upstream.name
        limit = self.settings.max_conns_per_host
        if limit <= 0:
            self._start_dial(want)
        elif self.conns_per_host[host] < limit:
            self.conns_per_host[host] += 1
            self._start_dial(want)
        else:
            self.conns_wait[host].append(want)

    def _start_dial(self, want: _Want) -> None:
        self.env.process(self._dial_for(want))

    def _dial_for(self, want: _Want):
        conn = yield want.upstream.dialer.dial()
        if not want.try_deliver(conn):
            self._put_or_close(conn, want.upstream.name)

    def release(self, conn: TcpConnection, upstream: Upstream) -> None:
        self._put_or_close(conn, upstream.name)

    def _put_or_close(self, conn: TcpConnection, host: str) -> None:
        if not self._try_put_idle(conn, host):
            self._close(conn, host)

    def _try_put_idle(self, conn: TcpConnection, host: str) -> bool:
        if self.settings.disable_keep_alives:
            return False
        waiting = self.idle_wait[host]
        while waiting:
            if waiting.popleft().try_deliver(conn):
                return True
        idle = self.idle[host]
        if len(idle) >= self.max_idle_per_host:
            return False  # errTooManyIdleHost
        idle.append(conn)
        self.idle_lru[conn] = host
        if self.settings.max_idle_conns and len(self.idle_lru) > self.settings.max_idle_conns:
            oldest, oldest_host = self.idle_lru.popitem(last=False)  # errTooManyIdle
            self.idle[oldest_host].remove(oldest)
            oldest.idle_token += 1
            self._close(oldest, oldest_host)
        conn.idle_token += 1
        if self.settings.idle_conn_timeout_s > 0:
            token = conn.idle_token
            timer = self.env.timeout(self.settings.idle_conn_timeout_s)
            timer.callbacks.append(lambda _: self._close_if_still_idle(conn, host, token))
        return True

    def _close_if_still_idle(self, conn: TcpConnection, host: str, token: int) -> None:
        if conn.idle_token != token or conn not in self.idle_lru:
            return
        del self.idle_lru[conn]
        self.idle[host].remove(conn)
        self._close(conn, host)

    def _close(self, conn: TcpConnection, host: str) -> None:
        conn.close(by="client")
        self._dec_conns_per_host(host)

    def _dec_conns_per_host(self, host: str) -> None:
        if self.settings.max_conns_per_host <= 0:
            return
        waiting = self.conns_wait[host]
        while waiting:
            want = waiting.popleft()
            if not want.done:
                self._start_dial(want)  # hand this connection's slot to a request still waiting
                return
        self.conns_per_host[host] -= 1


@dataclass(frozen=True)
class NodeSettings:
    """``http.Agent`` options; defaults are Node's ``new http.Agent()`` (see the module docstring).

    ``max_sockets=None`` is Infinity; ``timeout_s=None`` sets no socket timeout.
    """

    keep_alive: bool = False
    max_sockets: int | None = None
    max_free_sockets: int = NODE_MAX_FREE_SOCKETS
    timeout_s: float | None = None
    scheduling: str = "lifo"

    @property
    def should_keep_alive(self) -> bool:
        """``ClientRequest.shouldKeepAlive``: false only without keepAlive and with maxSockets Infinity."""
        return self.keep_alive or self.max_sockets is not None


class NodeAgent(_Pool):
    """Node's ``http.Agent`` socket pool (see the module docstring)."""

    def __init__(self, env: Environment, name: str, settings: NodeSettings = NodeSettings()) -> None:
        super().__init__(env, name)
        if settings.scheduling not in ("lifo", "fifo"):
            raise ValueError(f"{name}.scheduling: must be 'lifo' or 'fifo' (got {settings.scheduling!r})")
        self.settings = settings
        self.sockets: dict[str, int] = defaultdict(int)  # in use or being created
        self.free: dict[str, list[TcpConnection]] = defaultdict(list)  # most recently freed last
        self.requests: dict[str, deque[_Want]] = defaultdict(deque)

    def get_conn(self, upstream: Upstream) -> simpy.Event:
        host = upstream.name
        want = _Want(self.env, upstream)
        free = self.free[host]
        limit = self.settings.max_sockets
        if free:
            conn = free.pop() if self.settings.scheduling == "lifo" else free.pop(0)
            conn.idle_token += 1
            self.sockets[host] += 1
            want.try_deliver(conn)
        elif limit is None or self.sockets[host] < limit:
            self._create_socket(want)
        else:
            self.requests[host].append(want)
        return want.event

    def has_ready(self, upstream: Upstream) -> bool:
        return bool(self.free.get(upstream.name))

    def _create_socket(self, want: _Want) -> None:
        self.sockets[want.upstream.name] += 1
        self.env.process(self._connect_for(want))

    def _connect_for(self, want: _Want):
        conn = yield want.upstream.dialer.dial()
        want.try_deliver(conn)

    def release(self, conn: TcpConnection, upstream: Upstream) -> None:
        """The ``free`` event of a socket whose response is complete."""
        host = upstream.name
        settings = self.settings
        if not settings.should_keep_alive:
            conn.close(by="server")  # Connection: close
            self._remove_socket(host)
            return
        waiting = self.requests[host]
        if waiting:
            waiting.popleft().try_deliver(conn)
            return
        free = self.free[host]
        count = len(free) + self.sockets[host]
        if (
            not settings.keep_alive
            or len(free) >= settings.max_free_sockets
            or (settings.max_sockets is not None and count > settings.max_sockets)
        ):
            conn.close(by="client")
            self._remove_socket(host)
            return
        self.sockets[host] -= 1
        free.append(conn)
        conn.idle_token += 1
        if settings.timeout_s is not None:
            token = conn.idle_token
            timer = self.env.timeout(settings.timeout_s)
            timer.callbacks.append(lambda _: self._time_out(conn, host, token))

    def _time_out(self, conn: TcpConnection, host: str, token: int) -> None:
        if conn.idle_token != token or conn not in self.free[host]:
            return
        self.free[host].remove(conn)
        conn.close(by="client")
        self._maybe_create_for_waiting(host)

    def _remove_socket(self, host: str) -> None:
        self.sockets[host] -= 1
        self._maybe_create_for_waiting(host)

    def _maybe_create_for_waiting(self, host: str) -> None:
        waiting = self.requests[host]
        limit = self.settings.max_sockets
        if waiting and (limit is None or self.sockets[host] < limit):
            self._create_socket(waiting.popleft())
