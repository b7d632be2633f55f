"""Client connection pools between services: TCP handshakes, pool limits, HTTP/1.1 or HTTP/2, mTLS.

Mechanism. A service with ``connections`` (the shape of Istio's
DestinationRule ``trafficPolicy.connectionPool``, applied by every client of
the service) is called over pooled TCP connections (:mod:`models.net.tcp`)
laid on the route between the two nodes (:mod:`models.arch.routes`). Each
client (a pod, or the edge) keeps one :class:`ClientPool` per service it
calls, whose hosts are the service's pods. An attempt takes a connection to
the pod its balancer picked (an idle one, or a new one dialled with the
three-way handshake's round trip, or it waits at the pool's limit), sends the
request's bytes over it, the pod handles the request, the response's bytes
come back, and the connection is released to the pool.

Who owns the pool, and whose rules it follows (the pools are those of
:mod:`models.net.http1` and :mod:`models.net.http2`, not re-implemented):

* **with sidecars**, the caller's sidecar (the app to its own sidecar is
  loopback, not modelled): an Envoy keeps an HTTP/1.1 pool per upstream host
  that "acquires connections as needed ... (up to the circuit breaking
  limit)" and binds a request to whichever connection becomes available first,
  a freed one or a newly dialled one (Envoy, "Connection pooling",
  envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/connection_pooling);
  connections are kept alive until ``idle_timeout`` (Envoy's default 1 h).
  That is :class:`~models.net.http1.GoTransport`'s rule with every idle
  connection kept and ``max_connections`` as its per-host limit (Istio's
  ``tcp.maxConnections``, "maximum number of HTTP1/TCP connections to a
  destination host"; Envoy's own circuit breaker counts the whole cluster). A
  Go-proxy sidecar (``net/http/httputil.ReverseProxy``) uses Go's
  ``http.Transport`` with Go's defaults (2 idle connections per host kept,
  the rest closed after their response, 90 s idle timeout).
* **without a mesh** (and in ambient mode, where ztunnel carries the app's
  connections), the calling app's client: Go's ``http.Transport`` defaults for
  a pod on the Go runtime, Node's ``http.globalAgent`` (Node >= 19: keep-alive,
  5 s idle timeout) for a Node.js pod, and for a pod without a runtime, and
  the edge, a client that keeps every connection alive (the Envoy rule above).
* **HTTP/2** (``protocol: http2``), whoever owns it: one connection per pod
  (Envoy's default, "with no limits, this will be only a single connection")
  carrying requests as streams (:class:`~models.net.http2.H2Pool`, with its
  flow-control windows); beyond ``max_concurrent_streams`` a request waits for
  a stream to end (Envoy would open a second connection).

**Pending requests** (``max_pending_requests``, default 1024). Envoy's
circuit breaker on "the maximum number of requests that will be queued while
waiting for a ready connection pool connection": a request is pending
"whenever there aren't enough upstream connections available to immediately
dispatch the request", so also while its connection is being dialled, and on
HTTP/2 the breaker is hit only while no connection is established or every
stream is taken; beyond the limit it fails at once, counted in
``upstream_rq_pending_overflow`` (Envoy, "Circuit breaking",
envoyproxy.io/docs/envoy/latest/intro/arch_overview/upstream/circuit_breaking;
the default 1024 is ``CircuitBreakers.Thresholds.max_pending_requests``'s).
Istio sets it as the DestinationRule's ``connectionPool.http.http1MaxPendingRequests``
(whose own default, left unset, is 2^32-1: the model keeps Envoy's). Envoy
counts it per cluster of one proxy, every worker thread together (its
thresholds bound "the sum ... across all workers threads"): here per
:class:`ClientPool`, one client's pool to one service, over all the
service's pods. :meth:`ClientPool.acquire` asks the pool whether a
connection (HTTP/1.1: an idle one) or a stream (HTTP/2: an established
connection below ``max_concurrent_streams``) is ready at once
(``has_ready`` of :mod:`models.net`'s pools, which changes nothing); if not,
the request is pending until it is granted one, and if ``max_pending_requests``
requests already are, it fails at once: an overflow (``calls.SERVICE.overflows``
and ``pool.CLIENT.SERVICE.pending_overflows``), nothing sent, its in-flight
count for ``max_requests`` released, the caller's proxy passing the local
reply back. The model retries it as it retries every overflow and every
failed attempt (Envoy never retries an overflow, ``RetryStateImpl::wouldRetry``;
kept as the model's one rule for its breakers), and, as in Envoy, it is no
failure of the pod for outlier detection (the router ignores an overflow's
reset there: "cluster-wise, not upstream-related", envoyproxy/envoy#25487).
The limit applies to whoever owns the pool (Go's and Node's clients have no
such limit of their own; with the default, ``max_requests``' 1024 in flight
is reached first, as a pending request is in flight).

**mTLS** (``mesh.mtls``). Every new connection between two proxies (the
caller's and the callee's sidecars, or in ambient mode their nodes'
ztunnels) does a TLS 1.3 full handshake after TCP's: one more round trip
(:meth:`models.net.tcp.TcpConnection.tls_handshake`) and the handshake's CPU
at each proxy, a pass through the proxy (:meth:`models.arch.mesh.Sidecar.passing`:
one of its workers, then a core of its node), so handshakes compete with
requests. Its CPU is ``mesh.tls_handshake_cpu`` or the calibrated
``proxy.<kind>.tls_handshake_cpu_s`` (Envoy's for ztunnel).

**A new connection's CPU at the proxies.** Besides TLS, every connection a
pool dials between two proxies costs each of them a pass of
``mesh.proxy.connection_cpu`` (null: the calibrated
``proxy.<kind>.new_connection_cpu_s``, Envoy's for ztunnel): accepting or
connecting the socket, its first read and its close, measured on the real
proxies as a request on a new connection less one on a kept-alive connection
(:mod:`calibration.fitproxycosts`), paid after TCP's handshake. The edge's
connections are plain TCP (the edge is outside the mesh). With ``mtls`` a
service without ``connections`` gets the default pool (HTTP/1.1, unlimited,
kept alive): handshakes happen only when a pool dials. In ambient mode every
new app connection pays a handshake (ztunnel's pooling of its HBONE tunnels
is not modelled, so this counts handshakes high).

Not modelled: a pod going down does not close its connections (a refused or
reset attempt returns its connection to the pool); an abandoned attempt keeps
its connection until its response is in, and one abandoned while pending stays
pending until it is granted one (Envoy cancels it); ``maxRequestsPerConnection``.

Metrics of the pool of ``CLIENT`` (a pod's name, or ``edge``) to ``SERVICE``,
named ``pool.CLIENT.SERVICE``: ``.wait_s`` (from asking for a connection to
holding one: dials and handshakes included), ``.reuse_ratio``, ``.open``,
``.dials``, ``.closed``, ``.time_wait``, ``.retransmits`` (:mod:`models.net.http1`),
for HTTP/2 ``.streams`` and ``.flow_wait_s`` (:mod:`models.net.http2`),
``.handshakes`` (TLS), ``.pending`` (gauge: requests pending, Envoy's
``upstream_rq_pending_active``) and ``.pending_overflows``; each pod's server
side ``pod.POD.connections.open`` and ``.time_wait``; over every pool
``connections.wait_s``, ``connections.dials`` and ``connections.handshakes``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any, Literal, Protocol, cast

import simpy

from sim.core import Environment
from sim.dists import Constant, Uniform
from sim.params import param_value
from sim.stats import Counter, Histogram
from sim.topology import Route
from models.arch.config import ENVOY_IDLE_TIMEOUT_S, ConnectionsConfig, MeshConfig
from models.net.http1 import GO_IDLE_CONN_TIMEOUT_S, GoSettings, GoTransport, NodeAgent, NodeSettings
from models.net.http2 import H2Connection, H2Pool, H2Settings, Window
from models.net.server import Upstream
from models.net.tcp import ConnStats, Dialer, Direction, TcpConnection, TcpSettings

TLS_HANDSHAKE_CPU_PARAM = "proxy.{kind}.tls_handshake_cpu_s"
NEW_CONNECTION_CPU_PARAM = "proxy.{kind}.new_connection_cpu_s"
NODE_GLOBAL_AGENT_TIMEOUT_S = 5.0
"""Node >= 19's ``http.globalAgent``: ``keepAlive: true``, ``timeout: 5000`` (Node's http docs)."""
KEEP_ALL_IDLE = 2**31
"""A per-host idle limit no pool reaches: every idle connection is kept (Envoy's pool)."""
Owner = Literal["envoy", "go", "node"]
"""Whose pool rules a client follows (see the module docstring)."""


class Proxy(Protocol):
    """What a handshake needs of a proxy: a pass of some CPU through it (:meth:`models.arch.mesh.Sidecar.passing`)."""

    def passing(self, cpu_s: float) -> Generator[Any, Any, float]: ...


class Totals:
    """Connection metrics over every pool, and the draw of a TLS handshake's CPU (None: no mTLS)."""

    def __init__(self, env: Environment, mesh: MeshConfig) -> None:
        metrics = env.metrics
        self.wait_s: Histogram = metrics.histogram("connections.wait_s")
        self.dials: Counter = metrics.counter("connections.dials")
        self.handshakes: Counter = metrics.counter("connections.handshakes")
        self.handshake_cpu: Callable[[], float] | None = None
        self.connection_cpu = 0.0
        """CPU of a new connection at each proxy besides TLS (0 without proxies)."""
        kind = mesh.proxy.kind if mesh.dataplane == "sidecar" else "envoy"
        if mesh.dataplane in ("sidecar", "ambient"):
            given = mesh.proxy.connection_cpu
            self.connection_cpu = (given if given is not None
                                   else param_value(NEW_CONNECTION_CPU_PARAM.format(kind=kind)))
        if mesh.mtls:
            cost = mesh.tls_handshake_cpu
            if cost is None:  # read only now: the parameter file is needed only with mtls and no override
                cost = Constant(param_value(TLS_HANDSHAKE_CPU_PARAM.format(kind=kind)))
            self.handshake_cpu = cost.sampler(env.rng("mesh.tls_handshake"))


class ProxyDialer(Dialer):
    """TCP's handshake over ``route``, then, between two proxies, a pass of a new connection's CPU through the
    server's proxy and then the client's, and with mTLS, TLS 1.3's: a round trip and a pass of the handshake's
    CPU through each."""

    def __init__(self, env: Environment, route: Route, client: ConnStats, server: ConnStats,
                 uniform: Callable[[], float], totals: Totals, handshakes: Counter,
                 proxies: tuple[Proxy, Proxy] | None) -> None:
        super().__init__(env, route, TcpSettings(), client, server, uniform)
        self.totals = totals
        self.handshakes = handshakes
        self.proxies = proxies

    def _dial(self) -> Generator[Any, Any, TcpConnection]:
        env = self.env
        conn = TcpConnection(env, self.route, self.settings, self.client, self.server, self.uniform)
        self.totals.dials.inc()
        yield env.process(conn.connect())
        connection_cpu = self.totals.connection_cpu
        if self.proxies is not None and connection_cpu > 0:
            client, server = self.proxies
            yield from server.passing(connection_cpu)
            yield from client.passing(connection_cpu)
        draw = self.totals.handshake_cpu
        if self.proxies is not None and draw is not None:
            client, server = self.proxies
            yield env.process(conn.tls_handshake(lambda: env.process(client.passing(draw())),
                                                 lambda: env.process(server.passing(draw()))))
            self.handshakes.inc()
            self.totals.handshakes.inc()
        return conn


class Lease:
    """A request's hold on a connection (HTTP/1.1) or a stream (HTTP/2) until its response is in."""

    __slots__ = ("pool", "upstream", "conn", "waited")

    def __init__(self, pool: ClientPool, upstream: Upstream, conn: TcpConnection | H2Connection,
                 waited: float) -> None:
        self.pool = pool
        self.upstream = upstream
        self.conn = conn
        self.waited = waited
        """Seconds from asking for the connection to holding it."""

    def send(self, direction: Direction, size: float) -> simpy.Event:
        """An event that fires when ``size`` bytes sent now (up: the request; down: the response) are in."""
        conn = self.conn
        if isinstance(conn, TcpConnection):
            return conn.send(direction, size)
        env = self.pool.env
        return env.process(conn.send_data(direction, size, Window(env, conn.settings.initial_window_bytes)))

    def release(self) -> None:
        conn, pool = self.conn, self.pool.pool
        if isinstance(conn, TcpConnection):
            assert not isinstance(pool, H2Pool)
            pool.release(conn, self.upstream)
        else:
            conn.close_stream()


Http1Pool = GoTransport | NodeAgent


class ClientPool:
    """One client's pool of connections to one service's pods (see the module docstring)."""

    def __init__(self, env: Environment, name: str, config: ConnectionsConfig, owner: Owner,
                 routes: Sequence[tuple[Route, ConnStats, Proxy | None]], client_proxy: Proxy | None,
                 totals: Totals) -> None:
        """``routes``: per pod of the service, the route to it, its server-side stats and its proxy."""
        self.env = env
        self.totals = totals
        self.pool: Http1Pool | H2Pool = make_pool(env, name, config, owner)
        self.max_pending = config.max_pending_requests
        self.waiting = 0
        """Acquires not yet granted that found no ready connection or stream (Envoy's pending requests)."""
        self.pending = env.metrics.gauge(f"{name}.pending")
        self.pending_overflows = env.metrics.counter(f"{name}.pending_overflows")
        handshakes = env.metrics.counter(f"{name}.handshakes")
        uniform = Uniform(0.0, 1.0).sampler(env.rng(f"tcp.{name}"))
        self.upstreams = [
            Upstream(f"{name}.{index}", ProxyDialer(
                env, route, self.pool.stats, server, uniform, totals, handshakes,
                (client_proxy, proxy) if client_proxy is not None and proxy is not None else None))
            for index, (route, server, proxy) in enumerate(routes)]

    def acquire(self, replica: int) -> Generator[Any, Any, Lease | None]:
        """Take a connection (HTTP/1.1) or a stream (HTTP/2) to pod ``replica``, waiting as the pool says; None
        (at once) if it would have to wait and ``max_pending_requests`` requests already wait (an overflow)."""
        env, pool = self.env, self.pool
        upstream = self.upstreams[replica]
        asked = env.now
        pending = not pool.has_ready(upstream)
        if pending:
            if self.waiting >= self.max_pending:
                self.pending_overflows.inc()
                return None
            self.waiting += 1
            self.pending.add(1)
        conn: TcpConnection | H2Connection
        if isinstance(pool, H2Pool):
            got = pool.connection(upstream)
            if not got.triggered:  # being dialled (an established one: its stream is asked for now, before
                yield got          # another request of this instant asks whether one is ready)
            h2 = cast(H2Connection, got.value)
            yield h2.open_stream()
            conn, tcp = h2, h2.tcp
        else:
            conn = tcp = yield pool.get_conn(upstream)
        if pending:
            self.waiting -= 1
            self.pending.add(-1)
        waited = env.now - asked
        pool.wait_s.record(waited)
        self.totals.wait_s.record(waited)
        pool.reuse_ratio.record(1.0 if tcp.requests else 0.0)
        tcp.requests += 1
        return Lease(self, upstream, conn, waited)


def make_pool(env: Environment, name: str, config: ConnectionsConfig, owner: Owner) -> Http1Pool | H2Pool:
    """The pool of :mod:`models.net` that ``owner`` keeps, set as ``config`` says."""
    if config.protocol == "http2":
        return H2Pool(env, name, H2Settings(connections=1, max_concurrent_streams=config.max_concurrent_streams))
    limit = config.max_connections
    if owner == "node":
        return NodeAgent(env, name, NodeSettings(keep_alive=True, max_sockets=limit,
                                                 timeout_s=config.idle_timeout or NODE_GLOBAL_AGENT_TIMEOUT_S))
    if owner == "go":
        return GoTransport(env, name, GoSettings(max_conns_per_host=limit or 0,
                                                 idle_conn_timeout_s=config.idle_timeout or GO_IDLE_CONN_TIMEOUT_S))
    return GoTransport(env, name, GoSettings(max_idle_conns=0, max_idle_conns_per_host=KEEP_ALL_IDLE,
                                             max_conns_per_host=limit or 0,
                                             idle_conn_timeout_s=config.idle_timeout or ENVOY_IDLE_TIMEOUT_S))


def pool_owner(mesh: MeshConfig, runtime_kind: str | None) -> Owner:
    """Whose rules a pod's pool follows: its sidecar's, else its app's (``runtime_kind``: go, node, native or
    None). A native app (C++, Rust) and a pod without a runtime keep Envoy's: every connection kept alive, 1 h."""
    if mesh.dataplane == "sidecar":
        return "go" if mesh.proxy.kind == "goproxy" else "envoy"
    if runtime_kind == "go":
        return "go"
    if runtime_kind == "node":
        return "node"
    return "envoy"


def pooled_services(services: dict[str, ConnectionsConfig | None], mesh: MeshConfig) -> dict[str, ConnectionsConfig]:
    """The services called over pools, with their settings: those with ``connections``, and with mTLS all
    (the default pool for the others)."""
    return {name: config if config is not None else ConnectionsConfig() for name, config in services.items()
            if config is not None or mesh.mtls}
