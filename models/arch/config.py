"""The scenario of model kind ``arch``: nodes, services and their handlers, the network, the workload.

A handler is a list of steps, each one of:

* ``cpu``: a draw of CPU work (seconds) done on a core of the pod's node;
* ``call``: a call to another service (``service``), made with ``probability``
  (default 1), carrying ``request`` and ``response`` bytes;
* ``parallel``: a list of calls made at once; the step ends when the last returns.

The services' calls must form no cycle (a request would never end), every
called service must exist, and the workload's entry must be a service.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import networkx as nx
from pydantic import BeforeValidator, Field, model_validator

from sim.dists import Constant, Empirical
from sim.scenario import (MAX_COUNT, Duration, DurationDist, Rate, ScenarioBase, ScenarioPart, Size, SizeDist,
                          calibrated)
from models.arch.balancers import BalancerKind
from models.k8s.autoscaler import ControllerConfig, HPAConfig
from models.k8s.podstart import PodStartConfig
from models.runtime.go.gc import GCConfig


def _cores(value: Any) -> Any:
    """CPU as Kubernetes writes it: cores (``0.5``) or millicores (``"500m"``)."""
    if isinstance(value, str) and value.strip().endswith("m"):
        try:
            return float(value.strip()[:-1]) / 1000
        except ValueError:
            raise ValueError(f"expected cores (0.5) or millicores (\"500m\"), got {value!r}") from None
    return value


Cores = Annotated[float, BeforeValidator(_cores)]
"""CPU in cores, written as cores or millicores."""


class RetryConfig(ScenarioPart):
    """A call's retries (Envoy's route ``retry_policy``; Istio's VirtualService ``retries``): on an error
    response or a per-try timeout, after a jittered exponential back-off (:mod:`models.arch.resilience`)."""

    attempts: int = Field(1, ge=0, le=100, description="retries after the first attempt (num_retries)")
    per_try_timeout: Duration | None = Field(None, gt=0, description="each attempt's timeout; null: none")
    base_interval: Duration = Field(0.025, gt=0, description="back-off base (Envoy's default 25 ms)")
    max_interval: Duration | None = Field(None, gt=0, description="back-off cap; null: 10 x base_interval")


class CallConfig(ScenarioPart):
    """One call to another service."""

    service: str = Field(description="the service called")
    probability: float = Field(1.0, ge=0, le=1, description="chance that a request makes this call")
    request: Size = Field(0.0, ge=0, description="request bytes sent to the callee")
    response: Size = Field(0.0, ge=0, description="response bytes sent back")
    timeout: Duration | None = Field(None, gt=0, description="the whole call's timeout, retries included; null: none")
    retries: RetryConfig | None = Field(None, description="retries of this call; null: none")


class StepConfig(ScenarioPart):
    """One step of a handler: exactly one of ``cpu``, ``call``, ``parallel``."""

    cpu: DurationDist | None = Field(None, description="CPU work on a core of the pod's node, seconds")
    alloc: SizeDist | None = Field(
        None, description="bytes a cpu step allocates (pods on a runtime with a collector only)")
    call: CallConfig | None = Field(None, description="a call to another service, waited for")
    parallel: list[CallConfig] | None = Field(None, min_length=1, description="calls made at once, all waited for")

    @model_validator(mode="after")
    def _one(self) -> StepConfig:
        given = [name for name in ("cpu", "call", "parallel") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"a step is exactly one of cpu, call, parallel (got {', '.join(given) or 'none'})")
        if self.alloc is not None and self.cpu is None:
            raise ValueError("alloc belongs to a cpu step")
        return self

    def calls(self) -> list[CallConfig]:
        return [self.call] if self.call is not None else list(self.parallel or [])


class OutlierConfig(ScenarioPart):
    """Outlier detection by consecutive failures (Envoy's ``outlier_detection``; its defaults)."""

    consecutive_5xx: int = Field(5, ge=1, le=MAX_COUNT, description="failures in a row that eject a pod")
    base_ejection_time: Duration = Field(30.0, gt=0, description="ejection time, times the pod's ejections")
    max_ejection_percent: float = Field(10.0, ge=0, le=100, description="most pods ejected at once, % (at least one)")


class RetryBudgetConfig(ScenarioPart):
    """Envoy's ``retry_budget``: retries in flight capped by a share of the requests in flight."""

    budget_percent: float = Field(20.0, ge=0, le=100, description="retries in flight per request in flight, %")
    min_retry_concurrency: int = Field(3, ge=0, le=MAX_COUNT, description="retries in flight always allowed")


class TimeWindow(ScenarioPart):
    """A stretch of simulated time, from ``start`` to ``end`` (null: to the end of the run)."""

    start: Duration = Field(0.0, ge=0, description="simulated time it begins, seconds")
    end: Duration | None = Field(None, gt=0, description="simulated time it ends; null: never")

    @model_validator(mode="after")
    def _window(self) -> TimeWindow:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end:g} s) must be after start ({self.start:g} s)")
        return self

    def active(self, now: float) -> bool:
        return self.start <= now and (self.end is None or now < self.end)


class FaultConfig(TimeWindow):
    """Faults injected at a service's pods, between ``start`` and ``end``."""

    error_rate: float = Field(0.0, ge=0, le=1, description="chance that a pod answers a request with an error")
    delay: DurationDist | None = Field(None, description="latency added to each request at the faulty pods")
    down: bool = Field(
        False, description="the faulty pods are down between start and end (a crash, and a restart at end): an "
        "attempt to one is refused at once, the attempts in progress there fail when it goes down")
    slow_replicas: int | None = Field(
        None, ge=1, le=MAX_COUNT, description="the first this many pods are the faulty ones (the errors, the "
        "delay and being down); null: all")


class RuntimeConfig(ScenarioPart):
    """The runtime a service's pods run on: Go (:mod:`models.runtime.go`, fast or detailed fidelity),
    Node.js (:mod:`models.runtime.node`) or native (:mod:`models.runtime.native`: C++ or Rust, worker threads
    on non-blocking event loops, Envoy's threading model, no collector). On a node scheduled ``fcfs`` each pod
    has processors of its own; on a ``linux`` node a detailed Go pod's Ps and sysmon are threads on the node's
    cores. A native pod's CPU steps take their draw on a worker thread: the runtime's copy cost per byte
    (``NativeRuntime.copy_cost_per_byte_s``) stays at its default 0, as nothing has measured it, so a step's
    ``alloc`` would cost nothing there and is refused, as at a pod without a collector."""

    kind: Literal["go", "node", "native"] = Field(description="go, node or native")
    fidelity: Literal["fast", "detailed", "surrogate"] = Field(
        "fast", description="Go: GOMAXPROCS servers with the runtime's queues (fast, models.runtime.go.fast), "
        "every goroutine on the G/M/P scheduler (detailed, models.runtime.go.detailed; needed on linux nodes), or "
        "each request's time at a pod drawn from the detailed model run once at the pod's load (surrogate, "
        "models.arch.surrogate: the fastest, for architectures of thousands of pods); node and native: fast only")
    gomaxprocs: int = Field(1, ge=1, le=MAX_COUNT, description="Go: GOMAXPROCS of each pod")
    gc: GCConfig | None = Field(None, description="Go: the collector (null: its defaults, GOGC 100)")
    threads: int | None = Field(
        None, ge=1, le=MAX_COUNT, description="native: worker threads of each pod; null: the node's cores, "
        "Envoy's default (its --concurrency defaults to the machine's hardware threads, and its threading model "
        "recommends that many workers for most workloads)")

    @model_validator(mode="after")
    def _settings_of_its_kind(self) -> RuntimeConfig:
        if self.threads is not None and self.kind != "native":
            raise ValueError(f"threads: worker threads are a native runtime's (kind is {self.kind!r}"
                             + ("; give gomaxprocs)" if self.kind == "go" else ": one event loop)"))
        if self.kind == "native":
            for field in ("gomaxprocs", "gc"):
                if field in self.model_fields_set:
                    raise ValueError(f"{field}: a Go setting; a native runtime has worker threads (threads) and "
                                     "no collector")
        return self


RUNTIME_NAMES = {"go": "Go", "node": "Node.js", "native": "native"}
"""How errors and documents name each runtime kind."""


class RateLimitConfig(ScenarioPart):
    """Envoy's local rate limit (``local_ratelimit`` filter) at each pod: a token bucket, full at the start."""

    max_tokens: int = Field(ge=1, le=MAX_COUNT, description="the bucket's size")
    tokens_per_fill: int = Field(1, ge=1, le=MAX_COUNT, description="tokens added at each fill")
    fill_interval: Duration = Field(gt=0, description="time between fills")


ENVOY_IDLE_TIMEOUT_S = 3600.0
"""Envoy's upstream connection idle timeout (``common_http_protocol_options.idle_timeout``, default 1 h)."""


ENVOY_MAX_PENDING_REQUESTS = 1024
"""Envoy's ``circuit_breakers.thresholds.max_pending_requests`` default (``CircuitBreakers.Thresholds``)."""


class ConnectionsConfig(ScenarioPart):
    """How every client of a service connects to its pods (the shape of Istio's DestinationRule
    ``trafficPolicy.connectionPool``): a pool per client and service whose hosts are the service's pods
    (:mod:`models.arch.connections`)."""

    protocol: Literal["http1", "http2"] = Field(
        "http1", description="http1: one request at a time on a connection, connections kept alive and reused; "
        "http2: requests multiplexed as streams on one connection per pod")
    max_connections: int | None = Field(
        None, ge=1, le=MAX_COUNT, description="http1: a client's connections to one pod; more requests wait for "
        "one to be free (Istio's tcp.maxConnections); null: unlimited")
    max_concurrent_streams: int = Field(
        100, ge=1, le=MAX_COUNT, description="http2: streams at once on a connection (the pod's "
        "SETTINGS_MAX_CONCURRENT_STREAMS); more wait for a stream to end")
    idle_timeout: Duration | None = Field(
        None, gt=0, description="http1: an idle connection is closed after this long (Istio's http.idleTimeout); "
        "null: the pool owner's default (Envoy 1 h, Go 90 s, Node 5 s)")
    max_pending_requests: int = Field(
        ENVOY_MAX_PENDING_REQUESTS, ge=1, le=MAX_COUNT, description="requests of one client waiting at once for a "
        "connection (http1) or a stream (http2), dials included; one more fails at once, an overflow (Envoy's "
        "max_pending_requests, Istio's http.http1MaxPendingRequests; Envoy's default 1024)")


class AutoscalingConfig(ScenarioPart):
    """A HorizontalPodAutoscaler on the service and how its new pods start (:mod:`models.arch.autoscaling`)."""

    hpa: HPAConfig
    startup: PodStartConfig = Field(default_factory=PodStartConfig, description="a new pod's start-up stages")


class ServiceConfig(ScenarioPart):
    """A service: its replicas (pods), how clients balance between them, what a request does there, and
    what its clients apply to it (Istio's DestinationRule: circuit breaking, retry budget, outliers)."""

    replicas: int = Field(1, ge=1, le=MAX_COUNT, description="pods of the service, placed on the nodes in turn")
    balancer: BalancerKind = Field("round_robin", description="how a client picks one of the replicas")
    concurrency: int | None = Field(
        None, ge=1, le=MAX_COUNT, description="requests a pod handles at once (a thread pool); more wait; "
        "null: unlimited")
    handler: list[StepConfig] = Field(min_length=1, description="what a request does at a pod, step by step")
    runtime: RuntimeConfig | None = Field(
        None, description="run the handler on a Go, Node.js or native runtime model; null: CPU steps on the node's "
        "cores")
    max_requests: int = Field(
        1024, ge=1, le=MAX_COUNT, description="a client's requests in flight to the service; more fail at once "
        "(Envoy's circuit breaker, default 1024)")
    max_retries: int = Field(
        3, ge=0, le=MAX_COUNT, description="a client's retries in flight without a retry budget (Envoy's default 3)")
    retry_budget: RetryBudgetConfig | None = Field(None, description="cap retries by a share of the load instead")
    outlier: OutlierConfig | None = Field(None, description="eject pods that fail in a row; null: never")
    faults: FaultConfig | None = Field(None, description="injected errors and latency; null: none")
    connections: ConnectionsConfig | None = Field(
        None, description="connection pools of its clients (handshakes, pool limits, HTTP/1.1 or HTTP/2); null: "
        "a call is two one-way delays (as network.latency), unless mesh.mtls is on")
    rate_limit: RateLimitConfig | None = Field(
        None, description="each pod answers 429 at once to a request that finds no token (not retried, as "
        "Istio's default retry policy; not a failure for outlier detection); null: none")
    cpu_request: Cores | None = Field(
        None, gt=0, description="each pod's CPU request, cores (0.5) or millicores (\"500m\"): what CPU "
        "utilization is a percentage of; null: none")
    autoscaling: AutoscalingConfig | None = Field(
        None, description="scale the pods with a HorizontalPodAutoscaler (replicas: the count at the start); "
        "null: a fixed count")

    @model_validator(mode="after")
    def _scalable(self) -> ServiceConfig:
        scaling = self.autoscaling
        if scaling is None:
            return self
        if self.cpu_request is None:
            raise ValueError("autoscaling: a CPU utilization target needs the pods' cpu_request")
        if self.runtime is not None:
            raise ValueError("autoscaling: pods on a runtime model cannot be autoscaled yet (their CPU is the "
                             "runtime's); give runtime null")
        if self.replicas > scaling.hpa.max_replicas:
            raise ValueError(f"replicas: {self.replicas} is above autoscaling.hpa.max_replicas "
                             f"({scaling.hpa.max_replicas})")
        return self


class NodeFailureConfig(TimeWindow):
    """A node lost between ``start`` and ``end``: every pod placed on it is down (as ``faults.down``)."""

    node: int = Field(ge=0, le=MAX_COUNT, description="the node, by its index (0 is the first)")


class NodesConfig(ScenarioPart):
    """Identical nodes; pods of every service are spread over them in turn."""

    count: int = Field(1, ge=1, le=MAX_COUNT, description="nodes")
    cores: int = Field(4, ge=1, le=MAX_COUNT, description="cores per node, shared by its pods' CPU steps")
    scheduler: Literal["fcfs", "linux"] = Field(
        "fcfs", description="fcfs: a CPU step or a proxy's pass waits for a free core and holds it, first come "
        "first served, and runtime pods have processors of their own; linux: each is a thread the calibrated "
        "kernel model places on the node's cores (models.machine.cores: wake-up placement and preemption, time "
        "slices, migration), and so are a detailed Go pod's Ps and sysmon: pods share their node's cores")
    failures: list[NodeFailureConfig] = Field(default_factory=list, description="nodes lost for a while")

    @model_validator(mode="after")
    def _known_nodes(self) -> NodesConfig:
        for index, failure in enumerate(self.failures):
            if failure.node >= self.count:
                raise ValueError(f"failures.{index}.node: no node {failure.node} (nodes 0 to {self.count - 1})")
        return self


class PartitionConfig(TimeWindow):
    """Two services cut off from each other between ``start`` and ``end``: a call either way cannot connect."""

    between: tuple[str, str] = Field(description="the two services")


class LinkConfig(ScenarioPart):
    """A link of the topology between two machines (:class:`sim.topology.Link`)."""

    between: tuple[str, str] = Field(description="the two machines it joins")
    latency: DurationDist = Field(description="one-way propagation delay, drawn per message")
    bandwidth: Size | None = Field(None, gt=0, description="bytes per second each way (FIFO); null: no limit")
    loss: float = Field(0.0, ge=0, lt=1, description="chance that a TCP segment is lost (pooled connections only)")


class TopologyConfig(ScenarioPart):
    """The cluster as a graph (:class:`sim.topology.Cluster`): machines in zones joined by links. The nodes
    ``node0`` .. ``node{count-1}`` are the ones pods are placed on; other machines (switches, routers) only
    carry traffic. A message between two nodes takes the route of least mean latency."""

    zones: dict[str, list[str]] = Field(min_length=1, description="each zone's machines")
    links: list[LinkConfig] = Field(default_factory=list, description="the links between machines")
    edge: str | None = Field(
        None, description="the machine requests from the edge enter at; null: network.latency from the edge")

    def zone_of(self) -> dict[str, str]:
        return {machine: zone for zone, machines in self.zones.items() for machine in machines}


class NetworkConfig(ScenarioPart):
    """One-way delays of a hop; a message also takes its bytes over the bandwidth. With a ``topology`` a hop
    between two nodes follows the route between them instead."""

    latency: DurationDist = Field(description="one-way latency between two nodes, or between the edge and a node")
    local: DurationDist | None = Field(None, description="one-way latency between pods of one node; null: none")
    bandwidth: Size | None = Field(
        None, gt=0, description="bytes per second of a hop (no contention between messages); null: no limit")
    connect_timeout: Duration = Field(
        10.0, gt=0, description="how long a client tries to connect before the attempt fails (Istio's "
        "DestinationRule connectTimeout, default 10 s)")
    partitions: list[PartitionConfig] = Field(
        default_factory=list, description="pairs of services cut off from each other for a while")
    topology: TopologyConfig | None = Field(
        None, description="the cluster's machines, zones and links; null: network.latency between any two nodes")

    def check_topology(self, nodes: int) -> None:
        """Every node placed in one zone, links between known machines, every node (and the edge) reachable."""
        topology = self.topology
        if topology is None:
            return
        zone_of: dict[str, str] = {}
        for zone, machines in topology.zones.items():
            for machine in machines:
                if machine in zone_of:
                    raise ValueError(f"network.topology.zones.{zone}: machine {machine!r} is already in zone "
                                     f"{zone_of[machine]!r}")
                zone_of[machine] = zone
        known = ", ".join(zone_of)
        for index in range(nodes):
            if f"node{index}" not in zone_of:
                raise ValueError(f"network.topology.zones: node{index} is in no zone (machines: {known})")
        graph = nx.Graph()
        graph.add_nodes_from(zone_of)
        for index, link in enumerate(topology.links):
            for side, machine in enumerate(link.between):
                if machine not in zone_of:
                    raise ValueError(f"network.topology.links.{index}.between.{side}: no machine {machine!r} "
                                     f"(machines: {known})")
            if link.between[0] == link.between[1]:
                raise ValueError(f"network.topology.links.{index}.between: a link joins two different machines")
            graph.add_edge(*link.between)
        if topology.edge is not None and topology.edge not in zone_of:
            raise ValueError(f"network.topology.edge: no machine {topology.edge!r} (machines: {known})")
        ends = [f"node{index}" for index in range(nodes)] + ([topology.edge] if topology.edge is not None else [])
        reached = nx.node_connected_component(graph, ends[0])
        for end in ends:
            if end not in reached:
                raise ValueError(f"network.topology.links: no route from {ends[0]} to {end} (the graph is "
                                 "disconnected)")


class FilterConfig(ScenarioPart):
    """An HTTP filter in every Envoy of the mesh (:mod:`models.arch.filters`): its CPU is added to each request
    passing each Envoy, half on the request's way in and half on the response's way out."""

    name: str = Field(min_length=1, description="the filter's name (its metrics' and its draws' name)")
    kind: Literal["lua", "wasm", "native"] = Field(
        description="lua (Envoy's Lua filter), wasm (a WebAssembly filter in Envoy's V8 runtime) or native (C++)")
    request_cpu: DurationDist | None = Field(
        None, description="CPU the filter adds per request through one Envoy, seconds, both directions; null: "
        "proxy.envoy.filter.lua_cpu_s or proxy.envoy.filter.wasm_cpu_s (a native filter needs it given)")

    @model_validator(mode="after")
    def _native_given(self) -> FilterConfig:
        if self.kind == "native" and self.request_cpu is None:
            raise ValueError(f"request_cpu: filter {self.name!r} is native: give its CPU per request (no "
                             "calibrated default for native filters)")
        return self


class MemoryConfig(ScenarioPart):
    """A proxy's memory (:mod:`models.arch.memory`): its base resident set plus a buffer per open connection."""

    base: Size | None = Field(None, ge=0, description="resident bytes of an idle proxy; null: "
                              "proxy.<kind>.memory_bytes", json_schema_extra=calibrated("proxy.envoy.memory_bytes"))
    per_connection: Size | None = Field(None, ge=0, description="bytes per open connection; null: "
                                        "proxy.<kind>.memory_bytes_per_connection",
                                        json_schema_extra=calibrated("proxy.envoy.memory_bytes_per_connection"))


class ProxyConfig(ScenarioPart):
    """The mesh's proxy (:mod:`models.arch.mesh`): which one, its worker threads and its CPU per request."""

    kind: Literal["envoy", "goproxy"] = Field(
        "envoy", description="envoy, or goproxy (a Go reverse proxy, net/http/httputil)")
    workers: int = Field(
        2, ge=1, le=MAX_COUNT, description="worker threads of each proxy (Envoy's --concurrency, a Go proxy's "
        "GOMAXPROCS; 2, Istio's sidecar default before it followed the CPU limit)")
    request_cpu: DurationDist | None = Field(
        None, description="CPU per request through a proxy, seconds, both directions; null: "
        "proxy.<kind>.cpu_s_vs_rate at the proxy's own request rate",
        json_schema_extra=calibrated("proxy.envoy.cpu_s_vs_rate", derived="table"))
    filters: list[FilterConfig] = Field(
        default_factory=list, description="HTTP filters in every Envoy of the mesh (sidecars, waypoints, "
        "Cilium's node Envoys), each adding its CPU per request")
    cpu_per_byte: float | None = Field(
        None, ge=0, description="CPU per byte of a request and its response through a proxy, s/B; null: "
        "proxy.<kind>.cpu_s_per_byte (read only when some call carries bytes)",
        json_schema_extra=calibrated("proxy.envoy.cpu_s_per_byte"))
    tls_cpu_per_byte: float | None = Field(
        None, ge=0, description="with mesh.mtls, CPU per byte to encrypt and decrypt, s/B; null: "
        "proxy.<kind>.tls_cpu_s_per_byte (read only with mtls and bytes)",
        json_schema_extra=calibrated("proxy.envoy.tls_cpu_s_per_byte"))
    connection_cpu: Duration | None = Field(
        None, ge=0, description="CPU of a new connection at each proxy it joins (accept or connect, first read, "
        "close), seconds, paid when a pool dials; null: proxy.<kind>.new_connection_cpu_s (Envoy's for ambient)",
        json_schema_extra=calibrated("proxy.envoy.new_connection_cpu_s"))
    tls_request_cpu: Duration | None = Field(
        None, ge=0, description="with mesh.mtls, CPU mutual TLS adds to each request through a proxy besides its "
        "bytes (records, the TLS read and write paths), seconds; null: proxy.<kind>.tls_request_cpu_s (read only "
        "with mtls)", json_schema_extra=calibrated("proxy.envoy.tls_request_cpu_s"))
    memory: MemoryConfig | None = Field(
        default_factory=MemoryConfig, description="each proxy's memory (proxy.NAME.memory_bytes, "
        "mesh.proxy_memory_bytes), by default the calibrated sizes; null: not reported")


ZTUNNEL_REQUEST_CPU_S = 60e-6
"""CPU per request of Istio's ztunnel: 0.06 vCPU at 1,000 requests/s of 1 KB (Istio 1.24, "Performance and
Scalability", istio.io/docs/ops/performance-and-scalability); cited, not measured here."""


ZTUNNEL_MEMORY_BYTES = 12e6
"""Resident memory of Istio's ztunnel: 12 MB at 1,000 requests/s of 1 KB (Istio 1.24, "Performance and
Scalability", istio.io/docs/ops/performance-and-scalability); cited, not measured here."""
WAYPOINT_WORKERS = 2
"""Worker threads of an Istio waypoint: 2, the waypoint of Istio 1.24's load test (0.25 vCPU and 60 MB at 1,000
requests/s of 1 KB, istio.io/docs/ops/performance-and-scalability)."""
EBPF_REQUEST_CPU_S = 8 / 26e6
"""Kernel CPU per request of an eBPF datapath (Cilium's policy, load balancing and forwarding in tc/socket
programs), about 0.3 us: a lower bound from a cited figure, not measured here. The cheapest eBPF program, XDP
dropping packets, runs at 26 million packets/s per core (Hoiland-Jorgensen et al., "The eXpress Data Path",
CoNEXT 2018), 38 ns a packet; a small request and its response on a kept-alive connection are about four
packets (request, response and their ACKs), each through Cilium's programs at both ends: 8 runs."""


class NodeProxyConfig(ScenarioPart):
    """Ambient mode's node proxy (Istio's ztunnel: L4, mTLS, one per node), its threads and CPU per request."""

    workers: int = Field(2, ge=1, le=MAX_COUNT, description="worker threads of each node proxy")
    request_cpu: DurationDist = Field(
        default_factory=lambda: Constant(ZTUNNEL_REQUEST_CPU_S), description="CPU per request through a node "
        "proxy, seconds, both directions (default 60 us: Istio 1.24's published 0.06 vCPU for a ztunnel at 1,000 "
        "requests/s of 1 KB; a cited figure, not measured here)")
    memory: Size = Field(
        ZTUNNEL_MEMORY_BYTES, ge=0, description="resident bytes of a node proxy, reported with mesh.proxy.memory "
        "(default 12 MB: Istio 1.24's published figure for a ztunnel; cited, not measured here)")


class WaypointConfig(ScenarioPart):
    """Ambient mode's waypoint (:mod:`models.arch.waypoint`): an Envoy deployment of ``replicas`` pods that
    every call from a meshed pod to one of ``services`` goes through, for L7 policy and routing."""

    services: list[str] | Literal["all"] = Field(
        min_length=1, description="the services whose callers go through the waypoint, or all")
    replicas: int = Field(1, ge=1, le=MAX_COUNT, description="waypoint pods, placed on the nodes after the services'")
    workers: int = Field(WAYPOINT_WORKERS, ge=1, le=MAX_COUNT,
                         description="worker threads of each waypoint pod (2, Istio 1.24's load test)")
    request_cpu: DurationDist | None = Field(
        None, description="CPU per request through a waypoint pod, seconds, both directions; null: "
        "proxy.envoy.cpu_s_vs_rate at the waypoint pod's own rate",
        json_schema_extra=calibrated("proxy.envoy.cpu_s_vs_rate", derived="table"))

    def covers(self, service: str) -> bool:
        return self.services == "all" or service in self.services


class EbpfConfig(ScenarioPart):
    """The eBPF datapath (Cilium, :mod:`models.arch.ebpf`): policy and load balancing in the kernel, and an
    Envoy per node for the services that need L7 policy."""

    request_cpu: DurationDist = Field(
        default_factory=lambda: Constant(EBPF_REQUEST_CPU_S), description="kernel CPU per request, seconds, half "
        "on the caller's node and half on the callee's (default about 0.3 us: a lower bound from XDP's published "
        "26 Mpps per core; cited, not measured here)")
    l7_services: list[str] = Field(
        default_factory=list, description="services with L7 policy: requests to them pass the Envoy of their "
        "pod's node")
    workers: int = Field(2, ge=1, le=MAX_COUNT, description="worker threads of each node's Envoy")
    request_cpu_l7: DurationDist | None = Field(
        None, description="CPU per request through a node's Envoy, seconds, both directions; null: "
        "proxy.envoy.cpu_s_vs_rate at that Envoy's own rate",
        json_schema_extra=calibrated("proxy.envoy.cpu_s_vs_rate", derived="table"))


class MeshConfig(ScenarioPart):
    """The service mesh's data plane: none, a sidecar proxy beside every pod, a proxy per node (ambient, with
    optional waypoints) or an eBPF datapath (Cilium)."""

    dataplane: Literal["none", "sidecar", "ambient", "ebpf"] = Field(
        "none", description="none (pods call each other directly), sidecar (a proxy beside each pod), ambient "
        "(a proxy per node that every pod placed there goes through) or ebpf (Cilium: the kernel's programs, "
        "and a node Envoy for L7 services)")
    proxy: ProxyConfig = Field(default_factory=ProxyConfig, description="the sidecars' proxy")
    node_proxy: NodeProxyConfig = Field(default_factory=NodeProxyConfig, description="ambient mode's node proxy")
    waypoint: WaypointConfig | None = Field(None, description="ambient mode's waypoint (L7); null: none")
    ebpf: EbpfConfig = Field(default_factory=EbpfConfig, description="the eBPF datapath (dataplane ebpf)")
    mtls: bool = Field(
        False, description="mutual TLS between the proxies: every new connection between two proxies makes a TLS "
        "1.3 handshake (one more round trip, CPU on both proxies), and each request through a proxy costs the "
        "encryption's CPU besides (per request and per byte); services without connections get the default "
        "pool (proxies keep connections alive, so handshakes happen only when a pool dials)")
    tls_handshake_cpu: DurationDist | None = Field(
        None, description="CPU of one TLS handshake at each proxy, seconds; null: proxy.<kind>.tls_handshake_cpu_s "
        "(envoy's for ambient's node proxies), read only when mtls is on",
        json_schema_extra=calibrated("proxy.envoy.tls_handshake_cpu_s"))

    @model_validator(mode="after")
    def _fits_dataplane(self) -> MeshConfig:
        if self.mtls and self.dataplane in ("none", "ebpf"):
            raise ValueError(f"mtls: mutual TLS is done by the proxies; give dataplane sidecar or ambient (got "
                             f"{self.dataplane!r})")
        if self.waypoint is not None and self.dataplane != "ambient":
            raise ValueError(f"waypoint: waypoints belong to ambient mode (dataplane is {self.dataplane!r})")
        if self.proxy.filters and self.dataplane == "sidecar" and self.proxy.kind != "envoy":
            raise ValueError(f"proxy.filters: filters run in Envoy (proxy.kind is {self.proxy.kind!r})")
        names = [item.name for item in self.proxy.filters]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise ValueError(f"proxy.filters.{index}.name: {name!r} is given twice")
        return self


class BurstConfig(ScenarioPart):
    """On/off bursts: during ``on`` periods requests arrive at ``rate`` instead of the workload's rate;
    with exponential ``on`` and ``off`` the arrivals are a two-state Markov-modulated Poisson process."""

    rate: Rate = Field(gt=0, description="requests per second during a burst")
    on: DurationDist = Field(description="length of a burst, seconds")
    off: DurationDist = Field(description="time between bursts, seconds")


class DiurnalConfig(ScenarioPart):
    """A daily curve: the rate is ``rate x (1 + amplitude x cos(2 pi (t - peak) / period))``."""

    period: Duration = Field(86_400.0, gt=0, description="length of the cycle (a day)")
    amplitude: float = Field(0.5, ge=0, le=1, description="swing around the mean rate, as a share of it")
    peak: Duration = Field(0.0, ge=0, description="time of the highest rate within the period")


class UsersConfig(ScenarioPart):
    """Closed-loop users: each sends a request, waits for its answer, thinks, and sends the next."""

    count: int = Field(ge=1, le=MAX_COUNT, description="users")
    think: DurationDist = Field(description="think time between an answer and the user's next request")


class LoadStepConfig(ScenarioPart):
    """A load step: from ``at`` on, Poisson arrivals at ``rate`` instead of the workload's rate."""

    at: Duration = Field(ge=0, description="when the rate changes, seconds from the start")
    rate: Rate = Field(gt=0, description="requests per second from then on")


class WorkloadConfig(ScenarioPart):
    """Requests at the edge into one service: Poisson at ``rate`` (optionally in ``burst``s or along a
    ``diurnal`` curve), the timestamps of a ``replay``, or closed-loop ``users``."""

    rate: Rate | None = Field(None, gt=0, description="mean requests per second of an open workload")
    entry: str = Field(description="the service every request enters")
    keys: int = Field(
        1_000_000, ge=1, le=2**62, description="distinct request keys (users, sessions), drawn uniformly; a "
        "ring_hash balancer sends one key to one replica")
    burst: BurstConfig | None = Field(None, description="on/off bursts at a higher rate; null: none")
    diurnal: DiurnalConfig | None = Field(None, description="a daily rate curve; null: constant")
    replay: DurationDist | None = Field(
        None, description="arrival times, seconds from the start: the values of an empirical distribution "
        "(a CSV column), in order")
    users: UsersConfig | None = Field(None, description="closed-loop users instead of an open workload")
    step: LoadStepConfig | None = Field(None, description="a step of the Poisson rate; null: none")

    @model_validator(mode="after")
    def _one_kind(self) -> WorkloadConfig:
        closed = [name for name in ("replay", "users") if getattr(self, name) is not None]
        open_loop = [name for name in ("rate", "burst", "diurnal") if getattr(self, name) is not None]
        if self.step is not None and (closed or self.burst is not None or self.diurnal is not None):
            raise ValueError("step: a load step changes a plain Poisson rate (give rate without burst, diurnal, "
                             "replay or users)")
        if len(closed) > 1 or (closed and open_loop):
            raise ValueError(f"give rate (with burst or diurnal), replay or users, one of them (got "
                             f"{', '.join(closed + open_loop)})")
        if not closed and self.rate is None:
            raise ValueError("needs rate (Poisson requests per second), replay or users")
        if self.replay is not None and not isinstance(self.replay, Empirical):
            raise ValueError("replay: give the arrival times as {dist: empirical, file: ..., column: ...} or values")
        return self


class ArchScenario(ScenarioBase):
    """An architecture: services in a call graph, their pods on nodes, a network, a workload."""

    requests: int = Field(20_000, ge=1, description="requests at the edge, warm-up included")
    workload: WorkloadConfig
    services: dict[str, ServiceConfig] = Field(min_length=1)
    nodes: NodesConfig = Field(default_factory=NodesConfig)
    network: NetworkConfig
    mesh: MeshConfig = Field(default_factory=MeshConfig)
    kubernetes: ControllerConfig = Field(
        default_factory=ControllerConfig, description="the HPA controller's and metrics-server's settings "
        "(services with autoscaling)")

    @model_validator(mode="after")
    def _graph(self) -> ArchScenario:
        replay = self.workload.replay
        if isinstance(replay, Empirical) and replay.values.size < self.requests:
            raise ValueError(f"requests: {self.requests} is more than the {replay.values.size} arrival times of "
                             "workload.replay")
        names = ", ".join(self.services)
        for name, service in self.services.items():
            runtime = service.runtime
            what = RUNTIME_NAMES[runtime.kind] if runtime is not None else ""
            if runtime is not None and runtime.kind != "go" and runtime.fidelity != "fast":
                raise ValueError(f"services.{name}.runtime.fidelity: {what} pods have one fidelity, fast (got "
                                 f"{runtime.fidelity!r})")
            if self.nodes.scheduler == "linux" and runtime is not None and (
                    runtime.kind != "go" or runtime.fidelity != "detailed"):
                what = what if runtime.kind != "go" else f"{runtime.fidelity} Go"
                raise ValueError(f"services.{name}.runtime: {what} pods have processors of their own; on nodes "
                                 "with scheduler linux give kind go, fidelity detailed (or nodes.scheduler fcfs)")
            if runtime is None or runtime.kind != "go":
                for index, step in enumerate(service.handler):
                    if step.alloc is not None:
                        on = f"a {what} pod has none" if runtime is not None else "this pod has no runtime"
                        raise ValueError(f"services.{name}.handler.{index}.alloc: allocation needs a runtime with a "
                                         f"collector ({on}; services.{name}.runtime.kind: go)")
        self.network.check_topology(self.nodes.count)
        if self.workload.entry not in self.services:
            raise ValueError(f"workload.entry: no service {self.workload.entry!r} (services: {names})")
        for index, partition in enumerate(self.network.partitions):
            for side, cut_off in enumerate(partition.between):
                if cut_off not in self.services:
                    raise ValueError(f"network.partitions.{index}.between.{side}: no service {cut_off!r} "
                                     f"(services: {names})")
        mesh = self.mesh
        named = [(f"mesh.ebpf.l7_services.{i}", name) for i, name in enumerate(mesh.ebpf.l7_services)]
        if mesh.waypoint is not None and mesh.waypoint.services != "all":
            named += [(f"mesh.waypoint.services.{i}", name) for i, name in enumerate(mesh.waypoint.services)]
        for field, name in named:
            if name not in self.services:
                raise ValueError(f"{field}: no service {name!r} (services: {names})")
        graph = self.call_graph()
        for caller, service in self.services.items():
            for index, step in enumerate(service.handler):
                for call in step.calls():
                    if call.service not in self.services:
                        kind = "call" if step.call is not None else "parallel"
                        raise ValueError(f"services.{caller}.handler.{index}.{kind}.service: no service "
                                         f"{call.service!r} (services: {names})")
        try:
            cycle = nx.find_cycle(graph)
        except nx.NetworkXNoCycle:
            return self
        path = " -> ".join([edge[0] for edge in cycle] + [cycle[0][0]])
        raise ValueError(f"services: the calls form a cycle ({path}): a request there would never end")

    def call_graph(self) -> nx.DiGraph:
        """Services and who calls whom (edges only for calls to known services)."""
        graph = nx.DiGraph()
        graph.add_nodes_from(self.services)
        for caller, service in self.services.items():
            for step in service.handler:
                for call in step.calls():
                    if call.service in self.services:
                        graph.add_edge(caller, call.service)
        return graph
