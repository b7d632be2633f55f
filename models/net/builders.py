"""Model kind ``net.fanin``: clients calling one backend through HTTP/1.1 pools or HTTP/2.

The cluster (:mod:`sim.topology`) has a node ``backend`` and nodes
``client0``..``client{N-1}``, each joined to the backend by its own link with
the given one-way latency, bandwidth and segment loss; the call graph has one
call from each client service to the backend service. Every client runs
``concurrency`` callers in a closed loop: think for a draw of ``think``, send a
request through the client's pool (a Go ``http.Transport`` or a Node
``http.Agent`` for ``http1``, a gRPC-style HTTP/2 channel for ``http2``), wait
for its response, again. The backend serves each request for a draw of
``backend.service``, on ``backend.workers`` workers (unlimited if unset).

The run ends when ``requests`` requests have completed; the first
``warmup`` fraction of them is not measured (every metric is reset when the
first measured request is issued).

Metrics: ``requests.latency_s`` (histogram: client-observed latency, from
asking the pool for a connection to the last byte of the response),
``requests.completed``; the pool's metrics under ``pool.`` (all clients'
pools together; see :mod:`models.net.http1` and :mod:`models.net.http2`):
``pool.wait_s``, ``pool.reuse_ratio``, ``pool.open``, ``pool.time_wait``,
``pool.dials``, ``pool.closed``, ``pool.retransmits``; for ``http2`` also
``pool.streams``, ``pool.flow_wait_s``, ``pool.ping_rtt_s``,
``pool.keepalive_timeouts``; the server side's ``server.open`` and
``server.time_wait`` (it holds TIME_WAIT when it closes first, as with
``Connection: close``), and ``backend.wait_s`` when workers are limited.

Network, load and backend have no defaults: they are the question being asked.
Pool, TCP and HTTP/2 settings default to the cited values of their modules.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from sim.core import Environment, Model
from sim.dists import Constant, Uniform
from sim.scenario import Duration, DurationDist, MAX_COUNT, ScenarioBase, ScenarioPart, Size
from sim.topology import CallGraph, Cluster
from models.net.http1 import (
    GO_IDLE_CONN_TIMEOUT_S,
    GO_MAX_IDLE_CONNS,
    GO_MAX_IDLE_CONNS_PER_HOST,
    NODE_MAX_FREE_SOCKETS,
    GoSettings,
    GoTransport,
    NodeAgent,
    NodeSettings,
)
from models.net.http2 import (
    DEFAULT_MAX_CONCURRENT_STREAMS,
    GRPC_KEEPALIVE_TIMEOUT_S,
    RFC_INITIAL_WINDOW_BYTES,
    RFC_MAX_FRAME_BYTES,
    H2Pool,
    H2Settings,
)
from models.net.server import Backend, Upstream
from models.net.tcp import (
    ETHERNET_MSS_BYTES,
    INITIAL_RTO_S,
    LINUX_RTO_MIN_S,
    LINUX_TIME_WAIT_S,
    ConnStats,
    Dialer,
    TcpSettings,
    TlsCost,
)


class _Strict(ScenarioPart):
    model_config = ConfigDict(validate_default=True)


class NetworkConfig(_Strict):
    """Each client's link to the backend, and the kernel's TCP constants (Linux's by default)."""

    rtt: Duration | None = Field(None, description="round-trip propagation delay (constant); or give latency")
    latency: DurationDist | None = Field(None, description="one-way propagation delay distribution; or give rtt")
    bandwidth: Size = Field(gt=0, description="link bandwidth in bytes per second, each direction")
    loss: float = Field(0.0, ge=0, lt=1, description="probability that a segment is lost")
    mss: Size = Field(ETHERNET_MSS_BYTES, gt=0, description="TCP maximum segment size, bytes")
    rto_min: Duration = Field(LINUX_RTO_MIN_S, description="Linux TCP_RTO_MIN")
    initial_rto: Duration = Field(INITIAL_RTO_S, description="RTO of SYN and SYN-ACK (RFC 6298)")
    time_wait: Duration = Field(LINUX_TIME_WAIT_S, description="Linux TCP_TIMEWAIT_LEN")

    @model_validator(mode="after")
    def _one_latency(self) -> NetworkConfig:
        if (self.rtt is None) == (self.latency is None):
            raise ValueError(f"give exactly one of rtt or latency (got rtt={self.rtt}, latency={self.latency})")
        if self.rtt is not None:
            self.latency = Constant(self.rtt / 2)
            self.rtt = None
        return self


class GoPoolConfig(_Strict):
    """Go ``http.Transport`` fields (snake_case)."""

    max_idle_conns: int = Field(GO_MAX_IDLE_CONNS, ge=0, description="0: no limit")
    max_idle_conns_per_host: int = Field(GO_MAX_IDLE_CONNS_PER_HOST, ge=0, description="0: Go's default, 2")
    max_conns_per_host: int = Field(0, ge=0, description="0: no limit")
    idle_conn_timeout: Duration = Field(GO_IDLE_CONN_TIMEOUT_S, description="0: never")
    disable_keep_alives: bool = False


class NodePoolConfig(_Strict):
    """Node ``http.Agent`` options (snake_case)."""

    keep_alive: bool = False
    max_sockets: int | None = Field(None, ge=1, description="null: Infinity")
    max_free_sockets: int = Field(NODE_MAX_FREE_SOCKETS, ge=0)
    timeout: Duration | None = Field(None, description="idle socket timeout; null: none")
    scheduling: Literal["lifo", "fifo"] = "lifo"


class Http2Config(_Strict):
    connections: int = Field(1, ge=1, le=MAX_COUNT, description="HTTP/2 connections per client (gRPC channel)")
    max_concurrent_streams: int = Field(DEFAULT_MAX_CONCURRENT_STREAMS, ge=1)
    initial_window: Size = Field(RFC_INITIAL_WINDOW_BYTES, ge=1, description="stream window, bytes")
    connection_window: Size = Field(RFC_INITIAL_WINDOW_BYTES, ge=1, description="connection window, bytes")
    max_frame: Size = Field(RFC_MAX_FRAME_BYTES, ge=1, description="SETTINGS_MAX_FRAME_SIZE, bytes")
    keepalive_time: Duration | None = Field(None, description="gRPC keepalive ping interval; null: off")
    keepalive_timeout: Duration = Field(GRPC_KEEPALIVE_TIMEOUT_S)
    permit_without_stream: bool = False


class TlsConfig(_Strict):
    """CPU of one TLS 1.3 full handshake at each end: measure it, no default is assumed."""

    client_cpu: Duration
    server_cpu: Duration


class BackendConfig(_Strict):
    service: DurationDist = Field(description="service time per request")
    workers: int | None = Field(None, ge=1, le=MAX_COUNT, description="requests served at once; null: unlimited")


class FanInScenario(ScenarioBase):
    """Clients calling one backend over HTTP/1.1 pools or HTTP/2."""

    protocol: Literal["http1", "http2"]
    client: Literal["go", "node"] = Field("go", description="HTTP/1.1 pool semantics")
    go: GoPoolConfig = Field(default_factory=GoPoolConfig)
    node: NodePoolConfig = Field(default_factory=NodePoolConfig)
    http2: Http2Config = Field(default_factory=Http2Config)
    clients: int = Field(1, ge=1, le=MAX_COUNT, description="client instances, each with its own pool and link")
    concurrency: int = Field(ge=1, le=MAX_COUNT, description="callers per client, each in a closed loop")
    think: DurationDist = Field(description="a caller's pause between a response and its next request")
    requests: int = Field(ge=1, description="requests completed in all, warm-up included")
    request_size: Size
    response_size: Size
    network: NetworkConfig
    tls: TlsConfig | None = None
    backend: BackendConfig

    @model_validator(mode="after")
    def _callers_bounded(self) -> FanInScenario:
        callers = self.clients * self.concurrency
        if callers > MAX_COUNT:
            raise ValueError(f"clients × concurrency: at most {MAX_COUNT:,} callers in all (got {callers:,})")
        return self

    @property
    def warmup_requests(self) -> int:
        return int(self.warmup * self.requests)


class FanInModel(Model):
    """Model kind ``net.fanin``."""

    config_class = FanInScenario

    def __init__(self, env: Environment, config: FanInScenario) -> None:
        super().__init__(env, config)
        net = config.network
        assert net.latency is not None
        self.cluster = Cluster(env)
        self.cluster.add_node("backend", zone="server")
        self.calls = CallGraph()
        self.calls.add_service("backend")
        placement = {"backend": "backend"}
        for index in range(config.clients):
            node = f"client{index}"
            self.cluster.add_node(node, zone="clients")
            self.cluster.add_link(node, "backend", net.latency, net.bandwidth, net.loss)
            self.calls.add_service(node)
            self.calls.add_call(node, "backend", 1, config.request_size, config.response_size)
            placement[node] = node
        self.placement = self.calls.place(self.cluster, placement)
        self.backend = Backend(env, "backend", config.backend.service, config.backend.workers)
        tcp = TcpSettings(net.mss, net.rto_min, net.initial_rto, net.time_wait)
        client_stats = ConnStats(env, "pool", net.time_wait)
        server_stats = ConnStats(env, "server", net.time_wait)
        tls = TlsCost(config.tls.client_cpu, config.tls.server_cpu) if config.tls else None
        self.latency_s = env.metrics.histogram("requests.latency_s")
        self.completed = env.metrics.counter("requests.completed")
        self.issued = 0
        self.finished = 0
        self.done = env.event()
        for index in range(config.clients):
            node = f"client{index}"
            uniform = Uniform(0.0, 1.0).sampler(env.rng(f"{node}.tcp"))
            dialer = Dialer(
                env, self.placement.route(node, "backend"), tcp, client_stats, server_stats, uniform, tls,
                self.backend.work,
            )
            upstream = Upstream("backend", dialer, self.backend)
            pool = self._pool(env, config)
            think = config.think.sampler(env.rng(f"{node}.think"))
            for _caller in range(config.concurrency):
                env.process(self.call(pool, upstream, think))

    @staticmethod
    def _pool(env: Environment, config: FanInScenario):
        if config.protocol == "http2":
            h2 = config.http2
            return H2Pool(
                env, "pool",
                H2Settings(
                    h2.connections, h2.max_concurrent_streams, h2.initial_window, h2.connection_window,
                    h2.max_frame, h2.keepalive_time, h2.keepalive_timeout, h2.permit_without_stream,
                ),
            )
        if config.client == "node":
            node = config.node
            return NodeAgent(
                env, "pool",
                NodeSettings(node.keep_alive, node.max_sockets, node.max_free_sockets, node.timeout, node.scheduling),
            )
        go = config.go
        return GoTransport(
            env, "pool",
            GoSettings(
                go.max_idle_conns, go.max_idle_conns_per_host, go.max_conns_per_host, go.idle_conn_timeout,
                go.disable_keep_alives,
            ),
        )

    def call(self, pool, upstream: Upstream, think):
        """Process: one caller's closed loop of think, request, response."""
        env, config = self.env, self.config
        while True:
            yield env.timeout(think())
            if self.issued >= config.requests:
                return
            if self.issued == config.warmup_requests:
                env.metrics.reset()
            counted = self.issued >= config.warmup_requests
            self.issued += 1
            started = env.now
            yield pool.round_trip(upstream, config.request_size, config.response_size)
            if counted:
                self.latency_s.record(env.now - started)
                self.completed.inc()
            self.finished += 1
            if self.finished == config.requests:
                assert self.done is not None
                self.done.succeed()
                return

