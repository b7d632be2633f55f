"""Model kind ``arch``: requests through a graph of services whose pods share their nodes' cores.

Mechanism. Requests arrive at the edge (:mod:`models.arch.workloads`: Poisson,
in bursts, along a daily curve, replayed, or from closed-loop users), each
with a key drawn uniformly from ``workload.keys``. A client (the edge, or the pod making a
call) keeps one :class:`~models.arch.resilience.Upstream` per service it calls:
its balancer (:mod:`models.arch.balancers`), circuit breaker, retry limits and
outlier detection. A call's attempt goes to the pod the balancer picks, over
the network (one-way ``network.latency`` between nodes or from the edge,
``network.local`` between pods of one node, plus its bytes over
``network.bandwidth``); the pod waits for one of its ``concurrency`` slots
(held until the response leaves), adds an injected delay if it is faulty, and
runs the handler's steps in order. With ``mesh.dataplane: sidecar`` the
request leaves through the caller's sidecar and enters through the callee's,
and the response comes back through both; with ``ambient`` the same through
the callers' and callees' nodes' proxies (:mod:`models.arch.mesh`), and a call from a meshed pod to a
service with a waypoint also through a waypoint pod, one more hop each way (:mod:`models.arch.waypoint`);
with ``ebpf`` through the kernel's programs of both nodes and, to a service with L7 policy, its node's Envoy
(:mod:`models.arch.ebpf`). A service with ``connections`` (and, with
``mesh.mtls``, every service) is called over pooled connections instead of
plain delays (:mod:`models.arch.connections`: the handshakes, the pool's
limits, HTTP/1.1 or HTTP/2, mTLS between proxies; a call through a waypoint
travels as plain hops), and with
``network.topology`` a hop follows the route between the two pods' nodes
(:mod:`models.arch.routes`). A CPU step waits for a core of the pod's
node (FCFS, shared by every pod placed there) and holds it for its draw, or,
on a node with ``scheduler: linux``, is a thread of that much work placed on
the node's cores by the calibrated kernel model (:mod:`models.machine.cores`:
a thread that wakes takes its core from the running one, which waits its
turn); on a service with a ``runtime``, each pod runs the steps on its own
runtime model instead (Go, fast or detailed fidelity, Node.js, or native:
:mod:`models.runtime.native`, worker threads that a call's wait does not hold;
CPU steps as ``Compute`` with their allocation and, on Go, the calibrated CPU of
allocating it, calls as ``Wait``), so the runtime's scheduling and collector reach the
latency: with processors of its own on an FCFS node, with its Ps' and
sysmon's threads on the node's cores on a linux node (detailed Go only); a call
is made with its probability and waited for; parallel calls are all made at
once and waited for. A failed call fails the handler at once (the rest of its
steps are not run), and a pod answers with an error with its fault's
``error_rate``. A failed attempt (an error, or no answer within the per-try
timeout; the pod goes on with an abandoned attempt) is retried after a
back-off while retries and the call's timeout allow, on another pod than
those the call tried if the balancer finds one. A pod that is down (its
service's ``faults.down`` window, or its node lost: ``nodes.failures``)
refuses an attempt at once, and an attempt in progress there fails when it
goes down (the client hears of it one hop later; what the pod was doing goes
on unanswered). A call between two services of ``network.partitions`` in
their window cannot connect: the attempt fails after
``network.connect_timeout`` (10 s, Istio's default), or at its per-try
timeout if that comes first. A pod with a ``rate_limit`` answers 429 at once
to a request that finds its token bucket empty; the call is not retried.
Pods are placed on the nodes in turn (the ``k``-th pod overall on node
``k mod count``). A service with ``autoscaling`` has ``hpa.max_replicas`` pod slots placed so, and a
HorizontalPodAutoscaler sets how many run (:mod:`models.arch.autoscaling`): a new pod starts through the
start-up pipeline and joins its clients' balancers once Ready, a deleted one leaves them at once and drains.

Metrics: ``requests.sojourn_s`` (end-to-end latency of successful requests),
``requests.completed``, ``requests.errors`` and ``requests.failed_s`` (the
latency of failed ones); ``service.<name>.latency_s`` (from a request reaching
a pod to its response leaving it), ``service.<name>.requests``,
``service.<name>.errors`` (error responses) and ``service.<name>.cpu_s`` (its
CPU steps on node cores; a runtime pod's CPU is in the runtime's metrics); ``calls.<name>.calls``,
``.attempts``, ``.retries``, ``.timeouts``, ``.overflows`` (``max_requests``, and a pool's
``max_pending_requests``: :mod:`models.arch.connections`),
``.ejections`` and ``.limited`` (what clients did calling the service:
attempts over calls is
the retry amplification); ``pod.<service>-<i>.requests``, ``.refused``,
``.reset`` and ``.unreachable``; along each
successful request's critical path (:mod:`models.arch.breakdown`)
``breakdown.network_s``, ``.queue_s``, ``.connect_s``, ``.cpu_s``,
``.runtime_s``, ``.gc_s``, ``.proxy_s``, ``.delay_s`` and ``.retry_s`` (histograms; for
every request they sum to its latency); over pooled connections the pools'
metrics (``pool.<client>.<service>.*``, ``connections.*``: see
:mod:`models.arch.connections`); ``node.<name>.cpu_s`` (CPU run on its cores: its rate is the mean of its busy
cores); with a
mesh (:mod:`models.arch.mesh`), ``proxy.<name>.cpu_s`` and ``.requests`` (a pod's sidecar, a node's
``ztunnel``, ``ebpf`` or ``envoy``, a ``waypoint-I``) and ``mesh.proxy_cpu_s`` (the data plane's CPU), with
filters ``mesh.filter_cpu_s``, with ebpf ``mesh.ebpf_cpu_s``, with ``mesh.proxy.memory``
``proxy.<name>.memory_bytes`` and ``mesh.proxy_memory_bytes`` (gauges); with autoscaling
``hpa.<service>.*`` and ``podstart.<service>.*`` (:mod:`models.k8s.autoscaler`,
:mod:`models.arch.autoscaling`, :mod:`models.k8s.podstart`). The first ``warmup`` fraction of the requests
is not measured.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Generator
from typing import Any, cast

import simpy

from sim.core import Environment, Model
from sim.dists import Constant, Distribution, Uniform
from sim.stats import Counter
from models.arch.autoscaling import ScaledService, capacity_replicas
from models.arch.balancers import make_balancer
from models.arch.breakdown import KINDS, Spent
from models.arch.config import (
    ArchScenario, CallConfig, MeshConfig, NodesConfig, ServiceConfig, StepConfig, TimeWindow,
)
from models.arch.connections import ClientPool, Lease, Totals, pool_owner, pooled_services
from models.arch.ebpf import KernelDatapath
from models.arch.filters import ProxyCosts
from models.arch.memory import ProxyMemory, memory_sizes
from models.arch.mesh import GoSidecar, Proxy, Sidecar, envoy_cpu_table, proxy_cpu_table
from models.arch.waypoint import Waypoints
from models.arch.resilience import TokenBucket, Upstream
from models.arch.routes import Routes
from models.arch.surrogate import Surrogates
from models.arch.workloads import arrival_times
from models.k8s.autoscaler import HorizontalPodAutoscaler
from models.k8s.metricsserver import MetricsServer
from models.machine.cores import Cores, calibrated_cores
from models.runtime.build import build_runtime, compute_draw
from models.runtime.protocol import RequestTimes, Runtime, Step, Wait
from models.net.tcp import DOWN, UP, ConnStats

EDGE = "edge"
CALL_COUNTS = ("calls", "attempts", "retries", "timeouts", "overflows", "ejections", "limited")
Outcome = tuple[bool, Spent]
"""(succeeded, where its time went) of a call, an attempt or a handling."""
StepFunction = Callable[["Pod", int], Generator[Any, Any, Outcome]]
"""A handler step of a pod without a runtime: (pod, request key) to the generator that runs it."""
RuntimeStep = Callable[["Pod", int, list[tuple[float, Outcome]]], Step]
"""A handler step for a pod on a runtime model, made per request (pod, key, the request's call list)."""


class AttemptState:
    """What one attempt's two sides tell each other: the client gave up on it (``abandoned``), the pod
    answered it 429 (``limited``), the client's pool had too many requests pending (``overflowed``)."""

    __slots__ = ("abandoned", "limited", "overflowed")

    def __init__(self) -> None:
        self.abandoned = False
        self.limited = False
        self.overflowed = False


class Node:
    """A machine: its cores, shared by the pods placed on it (and, in ambient mode, by its proxy): free slots
    taken first come first served (``fcfs``), or threads placed by the calibrated kernel model (``linux``,
    :attr:`kernel`)."""

    def __init__(self, env: Environment, index: int, nodes: NodesConfig, mesh: MeshConfig) -> None:
        self.env = env
        self.index = index
        self.name = name = f"node{index}"
        self._free_at = [0.0] * nodes.cores
        """When each core is next free (a heap; fcfs)."""
        self.kernel: Cores | None = (calibrated_cores(env, nodes.cores, f"node.{name}.cores")
                                     if nodes.scheduler == "linux" else None)
        """The kernel model placing this node's threads (``linux``), else None."""
        self.cpu_s = env.metrics.counter(f"node.{name}.cpu_s")
        self.proxy = (Sidecar(env, f"{name}.ztunnel", self, mesh.node_proxy.workers, mesh.node_proxy.request_cpu,
                              None) if mesh.dataplane == "ambient" else None)
        """Ambient mode's proxy of this node, which its pods' requests pass."""
        self.ebpf = (KernelDatapath(env, f"{name}.ebpf", self, mesh.ebpf.request_cpu)
                     if mesh.dataplane == "ebpf" else None)
        """The eBPF datapath's programs on this node (dataplane ebpf)."""
        self.envoy: Sidecar | None = None
        """The eBPF datapath's Envoy on this node, for L7 services (made with the first such pod here)."""

    def compute(self, seconds: float) -> Generator[Any, Any, float]:
        """``seconds`` of CPU on this node's cores: the first core free, first come first served (fcfs), or a
        thread of that much work placed by the kernel model (linux); the seconds it waited for a core.

        FCFS with every demand known when it arrives needs no event to start or to end one: the
        Kiefer-Wolfowitz recursion (each arrival starts on the core free first, when it is free) gives both
        at once, so a demand costs one timeout."""
        env = self.env
        asked = env.now
        self.cpu_s.inc(seconds)
        if self.kernel is not None:
            done = env.event()

            def finished() -> None:
                done.succeed()

            self.kernel.burst(seconds, finished, own=True)
            yield done
            return max(env.now - asked - seconds, 0.0)  # clock rounding can leave a hair below zero
        start = max(asked, heapq.heappop(self._free_at))
        heapq.heappush(self._free_at, start + seconds)
        yield env.timeout(start + seconds - asked)
        return start - asked


class Pod:
    """One replica of a service on a node, with its concurrency slots and a balancer per service it calls."""

    def __init__(self, arch: ArchModel, service: str, index: int, node: Node) -> None:
        env = arch.env
        config = arch.config.services[service]
        self.name = f"{service}-{index}"
        self.service = service
        self.node = node
        self.slots = simpy.Resource(env, capacity=config.concurrency) if config.concurrency else None
        self.requests = env.metrics.counter(f"pod.{self.name}.requests")
        self.cpu_s = 0.0
        """CPU its handler's steps ran on the node's cores, counted as each ends (what its kubelet reports)."""
        faults = config.faults
        if faults is not None and faults.slow_replicas is not None and index >= faults.slow_replicas:
            faults = None  # not one of the faulty pods
        self.faults = faults
        """The service's injected faults if this pod is one of the faulty ones, else None."""
        self.delay = (faults.delay.sampler(env.rng(f"faults.{self.name}.delay"))
                      if faults is not None and faults.delay is not None else None)
        self.down: list[TimeWindow] = [failure for failure in arch.config.nodes.failures if failure.node == node.index]
        """When this pod is down: its service's ``faults.down`` window, its node's failures."""
        if faults is not None and faults.down:
            self.down.append(faults)
        self.refused = env.metrics.counter(f"pod.{self.name}.refused")
        self.reset = env.metrics.counter(f"pod.{self.name}.reset")
        self.unreachable = env.metrics.counter(f"pod.{self.name}.unreachable")
        self.bucket = TokenBucket(config.rate_limit) if config.rate_limit is not None else None
        runtime = config.runtime
        self.runtime: Runtime | None = None
        self.surrogate: Callable[[], float] | None = None
        """A surrogate Go pod's draw of its time there (:mod:`models.arch.surrogate`), else None."""
        if runtime is not None and runtime.fidelity == "surrogate":
            self.surrogate = arch.surrogates.sampler(service, env, f"surrogate.{self.name}")
        elif runtime is not None:
            assert runtime.fidelity != "surrogate"
            # Envoy's --concurrency default: as many workers as the machine has hardware threads.
            threads = runtime.threads if runtime.threads is not None else arch.config.nodes.cores
            self.runtime = build_runtime(env, runtime.kind, f"pod.{self.name}", fidelity=runtime.fidelity,
                                         gomaxprocs=runtime.gomaxprocs, gc=runtime.gc, threads=threads,
                                         cores=node.kernel)
        self.upstreams: dict[str, Upstream] = {}
        """One per service this pod calls (set once every pod exists: :meth:`ArchModel.upstreams_for`)."""
        mesh = arch.config.mesh
        sidecar: Sidecar | None = None
        if arch.go_proxy_runtime:
            assert node.kernel is not None
            sidecar = GoSidecar(env, self.name, node, mesh.proxy.workers, mesh.proxy.request_cpu,
                                arch.proxy_table, node.kernel, arch.extra(self.name, mesh.proxy.kind))
        elif mesh.dataplane == "sidecar":
            sidecar = Sidecar(env, self.name, node, mesh.proxy.workers, mesh.proxy.request_cpu,
                              arch.proxy_table, arch.extra(self.name, mesh.proxy.kind))
        elif mesh.dataplane == "ambient":
            sidecar = node.proxy
        self.sidecar = sidecar
        """The proxy this pod's requests and responses pass: its own (sidecar mode), its node's (ambient)."""
        self.out: Proxy | None = sidecar if sidecar is not None else node.ebpf
        """What this pod's calls pass on their way out and their responses on the way back: its sidecar
        (sidecar mode), its node's proxy (ambient), its node's eBPF programs (ebpf); None without a mesh."""
        self.inbound: list[Proxy] = [self.out] if self.out is not None else []
        """What requests to this pod pass on their way in (its responses on the way out, in reverse): the same,
        and with ebpf its node's Envoy if its service has L7 policy."""
        if node.ebpf is not None and service in mesh.ebpf.l7_services:
            self.inbound.append(arch.node_envoy(node))

    def is_down(self, now: float) -> bool:
        return any(window.active(now) for window in self.down)

    def next_down(self, now: float) -> float:
        """When this pod next goes down after ``now`` (infinite if it does not)."""
        return min((window.start for window in self.down if window.start > now), default=math.inf)


class ArchModel(Model):
    """Model kind ``arch`` (see the module docstring)."""

    config_class = ArchScenario

    def __init__(self, env: Environment, config: ArchScenario) -> None:
        super().__init__(env, config)
        mesh = config.mesh
        self.go_proxy_runtime = (mesh.dataplane == "sidecar" and mesh.proxy.kind == "goproxy"
                                 and config.nodes.scheduler == "linux")
        """Go-proxy sidecars on the Go runtime model, their collector simulated (linux nodes)."""
        self.proxy_table = (proxy_cpu_table(mesh.proxy, simulated_collector=self.go_proxy_runtime)
                            if mesh.dataplane == "sidecar" else None)
        self.costs = ProxyCosts(config) if mesh.dataplane != "none" else None
        """What every proxy adds per request: filters, bytes (:mod:`models.arch.filters`)."""
        self.surrogates = Surrogates(config)
        self.nodes = [Node(env, i, config.nodes, config.mesh) for i in range(config.nodes.count)]
        self.pods: dict[str, list[Pod]] = {}
        """Every service's pods; an autoscaled service's are its slots, running or not
        (:mod:`models.arch.autoscaling`)."""
        self._clients: dict[str, list[Upstream]] = {name: [] for name in config.services}
        """Every client's upstream of each service (an autoscaled service's hosts change as it scales)."""
        placed = 0
        for service, service_config in config.services.items():
            self.pods[service] = []
            scaling = service_config.autoscaling
            for index in range(scaling.hpa.max_replicas if scaling is not None else service_config.replicas):
                self.pods[service].append(Pod(self, service, index, self.nodes[placed % len(self.nodes)]))
                placed += 1
        self.waypoints = (Waypoints(env, mesh.waypoint, self.nodes, placed, envoy_cpu_table(mesh.waypoint.request_cpu),
                                    lambda name: self.extra(name, "envoy"))
                          if mesh.waypoint is not None else None)
        """Ambient mode's waypoint pods (:mod:`models.arch.waypoint`), placed after the services' pods."""
        if mesh.proxy.memory is not None:
            self._report_memory()
        for service, pods in self.pods.items():
            for pod in pods:
                pod.upstreams = self.upstreams_for(pod.name, config.services[service])
        self._steps: dict[str, list[StepFunction]] = {
            name: [self._step(step_config, f"cpu.{name}.{index}") for index, step_config in enumerate(service.handler)]
            for name, service in config.services.items() if service.runtime is None}
        self._runtime_steps: dict[str, list[RuntimeStep]] = {
            name: [self._runtime_step(name, step_config, f"cpu.{name}.{index}")
                   for index, step_config in enumerate(service.handler)]
            for name, service in config.services.items()
            if service.runtime is not None and service.runtime.fidelity != "surrogate"}
        self._surrogate_steps: dict[str, list[tuple[float | None, StepFunction | None]]] = {
            name: self._surrogate_step_list(name, service) for name, service in config.services.items()
            if service.runtime is not None and service.runtime.fidelity == "surrogate"}
        network = config.network
        self._remote = network.latency.sampler(env.rng("network.latency"))
        self._local = (network.local or Constant(0.0)).sampler(env.rng("network.local"))
        self._bandwidth = network.bandwidth or math.inf
        self.routes = Routes(env, network, self._remote, self._local)
        self._there: Callable[[Node | None, Node, float], float] = self._hop
        """A hop's seconds from the client's node to the pod's: plain delays, or the topology's route."""
        self._back: Callable[[Node | None, Node, float], float] = self._hop
        if network.topology is not None:
            self._there, self._back = self.routes.hop, self.routes.hop_back
        self._coin = Uniform(0.0, 1.0).sampler(env.rng("calls.probability"))
        self._edge = self.upstreams_for(EDGE, None)
        self._pools: dict[Upstream, ClientPool] = self._build_pools()
        """The pool behind each (client, service) upstream called over connections (none: plain delays)."""
        self._edge_call = CallConfig(service=config.workload.entry)
        metrics = env.metrics
        self.sojourn_s = metrics.histogram("requests.sojourn_s")
        self.failed_s = metrics.histogram("requests.failed_s")
        self.completed = metrics.counter("requests.completed")
        self.errors = metrics.counter("requests.errors")
        self.spent = {kind: metrics.histogram(f"breakdown.{kind}_s") for kind in KINDS}
        self.latency = {name: metrics.histogram(f"service.{name}.latency_s") for name in config.services}
        self.served = {name: metrics.counter(f"service.{name}.requests") for name in config.services}
        self.service_cpu = {name: metrics.counter(f"service.{name}.cpu_s") for name in config.services}
        self.answered_errors = {name: metrics.counter(f"service.{name}.errors") for name in config.services}
        self.calls = {name: {what: metrics.counter(f"calls.{name}.{what}") for what in CALL_COUNTS}
                      for name in config.services}
        self._finished = 0
        self._all_done = env.event()
        self.done = self._all_done
        self._issued_count = 0
        self._warmup = int(config.warmup * config.requests)
        self._keys = env.rng("workload.keys")
        users = config.workload.users
        env.process(self._users(users.think, users.count) if users is not None else self._arrivals())
        self.scaled = {name: self._autoscale(name, service) for name, service in config.services.items()
                       if service.autoscaling is not None}
        """Each autoscaled service's scale target (:mod:`models.arch.autoscaling`)."""

    # ------------------------------------------------------------------ building
    def _autoscale(self, name: str, service: ServiceConfig) -> ScaledService:
        """The HPA of service ``name``, its metrics-server and its scale target; the controller's and the
        scrapes' first instants are uniform over their periods (started at times unrelated to the run)."""
        env, settings = self.env, self.config.kubernetes
        step = self.config.workload.step
        target = ScaledService(env, name, service, self.pods[name], self._clients[name],
                               capacity_replicas(self.config, name), step.at if step is not None else 0.0)
        phases = env.rng(f"hpa.{name}.phase")
        metrics = MetricsServer(env, target.cpu_readings, settings.metric_resolution,
                                float(phases.uniform(0.0, settings.metric_resolution)))
        assert service.autoscaling is not None
        HorizontalPodAutoscaler(env, name, service.autoscaling.hpa, settings, target, metrics,
                                float(phases.uniform(0.0, settings.sync_period)))
        return target

    def extra(self, name: str, kind: str):
        """What proxy ``name`` of ``kind`` adds per request beyond its base (:mod:`models.arch.filters`)."""
        return self.costs.extra(self.env, name, kind) if self.costs is not None else None

    def node_envoy(self, node: Node) -> Sidecar:
        """The eBPF datapath's Envoy on ``node`` (made on first use)."""
        if node.envoy is None:
            ebpf = self.config.mesh.ebpf
            node.envoy = Sidecar(self.env, f"{node.name}.envoy", node, ebpf.workers, ebpf.request_cpu_l7,
                                 envoy_cpu_table(ebpf.request_cpu_l7), self.extra(f"{node.name}.envoy", "envoy"))
        return node.envoy

    def _report_memory(self) -> None:
        """Give every proxy its memory gauges (:mod:`models.arch.memory`): sidecars of ``mesh.proxy.kind``,
        waypoints and node Envoys of Envoy's sizes, ztunnels of their cited base."""
        mesh = self.config.mesh
        assert mesh.proxy.memory is not None
        proxies: list[tuple[Sidecar, str]] = [(node.proxy, "ztunnel") for node in self.nodes if node.proxy is not None]
        proxies += [(node.envoy, "envoy") for node in self.nodes if node.envoy is not None]
        if mesh.dataplane == "sidecar":
            proxies += [(pod.out, mesh.proxy.kind) for pods in self.pods.values() for pod in pods
                        if isinstance(pod.out, Sidecar)]
        if self.waypoints is not None:
            proxies += [(pod, "envoy") for pod in self.waypoints.pods]
        sizes = {kind: memory_sizes(mesh.proxy.memory, kind) for kind in {kind for _, kind in proxies}
                 if kind != "ztunnel"}
        sizes["ztunnel"] = (mesh.node_proxy.memory, 0.0)
        for proxy, kind in proxies:
            base, per_connection = sizes[kind]
            proxy.memory = ProxyMemory(self.env, proxy.name, base, per_connection)

    def upstreams_for(self, client: str, config: ServiceConfig | None) -> dict[str, Upstream]:
        """What ``client`` (a pod, or the edge when ``config`` is None) keeps per service it calls."""
        called = ({call.service for step in config.handler for call in step.calls()} if config is not None
                  else {self.config.workload.entry})
        upstreams = {}
        for service in sorted(called):
            target = self.config.services[service]
            balancer = make_balancer(target.balancer, [pod.name for pod in self.pods[service]],
                                     self.env.rng(f"lb.{client}.{service}"))
            upstreams[service] = upstream = Upstream(balancer, target, self.env.rng(f"retry.{client}.{service}"))
            self._clients[service].append(upstream)
        return upstreams

    def _build_pools(self) -> dict[Upstream, ClientPool]:
        """A :class:`ClientPool` per client and service called over connections (:mod:`models.arch.connections`)."""
        config = self.config
        pooled = pooled_services({name: service.connections for name, service in config.services.items()},
                                 config.mesh)
        if not pooled:
            return {}
        env = self.env
        totals = Totals(env, config.mesh)
        servers = {pod.name: ConnStats(env, f"pod.{pod.name}.connections")
                   for pods in self.pods.values() for pod in pods}
        clients: list[tuple[str, Pod | None, dict[str, Upstream]]] = [(EDGE, None, self._edge)]
        clients += [(pod.name, pod, pod.upstreams) for pods in self.pods.values() for pod in pods]
        pools = {}
        for name, pod, upstreams in clients:
            runtime = config.services[pod.service].runtime if pod is not None else None
            owner = pool_owner(config.mesh, runtime.kind if runtime is not None else None) if pod else "envoy"
            source = pod.node if pod is not None else None
            proxy = pod.sidecar if pod is not None else None
            for service, upstream in upstreams.items():
                if service in pooled:
                    routes = [(self.routes.route(source, callee.node), servers[callee.name], callee.sidecar)
                              for callee in self.pods[service]]
                    pools[upstream] = ClientPool(env, f"pool.{name}.{service}", pooled[service], owner, routes, proxy,
                                                 totals)
        return pools

    def _surrogate_step_list(self, name: str, service: ServiceConfig) -> list[tuple[float | None, StepFunction | None]]:
        """A surrogate pod's steps: (share of its drawn time, None) for a CPU step (its mean CPU over the
        handler's), (None, the step) for a call."""
        total = sum(step.cpu.mean for step in service.handler if step.cpu is not None)
        return [(step.cpu.mean / total if total > 0 else 0.0, None) if step.cpu is not None
                else (None, self._step(step, f"cpu.{name}.{index}")) for index, step in enumerate(service.handler)]

    def _step(self, step: StepConfig, stream: str) -> StepFunction:
        """A step as a function of (pod, request key) to the generator that runs it; ``stream``: its draws."""
        if step.cpu is not None:
            draw = step.cpu.sampler(self.env.rng(stream))
            return lambda pod, key: self._cpu(pod, draw())
        calls = step.calls()
        if step.call is not None:
            (call,) = calls
            return lambda pod, key: self._maybe_call(pod, call, key)
        return lambda pod, key: self._parallel(pod, calls, key)

    def _runtime_step(self, service: str, step: StepConfig, stream: str) -> RuntimeStep:
        """A step for a pod of ``service`` on a runtime model: a :class:`Compute` for CPU (with the calibrated CPU
        of allocating its bytes, :mod:`models.runtime.go.alloc`), a :class:`Wait` on its calls (their (elapsed
        seconds, outcome) appended to the request's list)."""
        env = self.env
        if step.cpu is not None:
            runtime = self.config.services[service].runtime
            draw = compute_draw(env, step.cpu, step.alloc, runtime.gc if runtime is not None else None, stream)
            return lambda pod, key, calls: draw()
        configs = step.calls()
        if step.call is not None:
            (call,) = configs
            return lambda pod, key, calls: Wait(lambda: env.process(self._recorded(
                self._maybe_call(pod, call, key), calls)))
        return lambda pod, key, calls: Wait(lambda: env.process(self._recorded(
            self._parallel(pod, configs, key), calls)))

    def _recorded(self, path: Generator[Any, Any, Outcome],
                  calls: list[tuple[float, Outcome]]) -> Generator[Any, Any, None]:
        started = self.env.now
        outcome = yield from path
        calls.append((self.env.now - started, outcome))

    # ------------------------------------------------------------------ requests
    def _arrivals(self):
        """An open workload: a request at each arrival time (:mod:`models.arch.workloads`)."""
        env = self.env
        times = arrival_times(env, self.config.workload)
        for _index in range(self.config.requests):
            at = next(times)
            if at > env.now:
                yield env.timeout(at - env.now)
            env.process(self._issued())

    def _users(self, think: Distribution, count: int):
        """Closed-loop users: each sends a request, waits for its answer, thinks, and so on."""
        env = self.env
        draw = think.sampler(env.rng("workload.think"))

        def user():
            while self._issued_count < self.config.requests:
                yield from self._issued()
                yield env.timeout(draw())

        for _ in range(count):
            env.process(user())
        yield env.timeout(0)

    def _issued(self):
        """The next request at the edge (the first measured one resets every metric)."""
        index = self._issued_count
        self._issued_count += 1
        if index == self._warmup:
            self.env.metrics.reset()
        yield from self._request(int(self._keys.integers(self.config.workload.keys)), index >= self._warmup)

    def _request(self, key: int, counted: bool):
        env = self.env
        born = env.now
        entry = self.config.workload.entry
        ok, spent = yield from self._call(None, self._edge[entry], self._edge_call, key)
        if counted:
            if ok:
                self.sojourn_s.record(env.now - born)
                self.completed.inc()
                for kind, histogram in self.spent.items():
                    histogram.record(getattr(spent, kind))
            else:
                self.failed_s.record(env.now - born)
                self.errors.inc()
        self._finished += 1
        if self._finished == self.config.requests:
            self._all_done.succeed()

    def _partitioned(self, caller: str, callee: str) -> bool:
        now = self.env.now
        return any(set(partition.between) == {caller, callee} and partition.active(now)
                   for partition in self.config.network.partitions)

    def _hop(self, source: Node | None, target: Node, size: float) -> float:
        delay = self._local() if source is target else self._remote()
        return delay + size / self._bandwidth

    def _call(self, caller: Pod | None, upstream: Upstream, call: CallConfig,
              key: int) -> Generator[Any, Any, Outcome]:
        """One call from ``caller`` (None: the edge) with its retries and timeouts (see the module docstring)."""
        env = self.env
        counts = self.calls[call.service]
        counts["calls"].inc()
        started = env.now
        deadline = started + call.timeout if call.timeout is not None else math.inf
        retries = call.retries
        per_try = retries.per_try_timeout if retries is not None and retries.per_try_timeout is not None else math.inf
        tries = 1 + (retries.attempts if retries is not None else 0)
        tried: set[int] = set()
        for attempt in range(tries):
            if attempt:
                if not upstream.may_retry():
                    break
                backoff = upstream.backoff(attempt, call)
                if env.now + backoff >= deadline:
                    break
                counts["retries"].inc()
                upstream.retrying += 1
                yield env.timeout(backoff)
            began = env.now
            state = AttemptState()
            ok, spent = yield from self._attempt(caller, upstream, call, key, min(per_try, deadline - began), counts,
                                                 tried, state)
            if attempt:
                upstream.retrying -= 1
            if ok:
                spent.retry += began - started
                return True, spent
            if env.now >= deadline or state.limited:
                break
        return False, Spent(retry=env.now - started)

    def _attempt(self, caller: Pod | None, upstream: Upstream, call: CallConfig, key: int, limit: float,
                 counts: dict[str, Counter], tried: set[int], state: AttemptState) -> Generator[Any, Any, Outcome]:
        """One attempt, waited for at most ``limit`` seconds (an abandoned attempt goes on without its client);
        its pod is added to ``tried``, the pods this call's retries avoid."""
        env = self.env
        counts["attempts"].inc()
        if upstream.overflowing():
            counts["overflows"].inc()
            return False, Spent()
        replica = upstream.pick(key, env.now, tried)
        tried.add(replica)
        exchange = self._exchange(caller, upstream, replica, call, key, state)
        if math.isfinite(limit):
            attempt = env.process(exchange)
            yield attempt | env.timeout(limit)
            if not attempt.triggered:
                # The client resets the stream: it no longer counts the attempt; the pod goes on with it.
                state.abandoned = True
                upstream.finished(replica)
                counts["timeouts"].inc()
                if upstream.outcome(replica, False, env.now):
                    counts["ejections"].inc()
                return False, Spent()
            ok, spent = cast(Outcome, attempt.value)
        else:  # nothing to race: no process of its own
            ok, spent = yield from exchange
        if state.overflowed:  # a circuit breaker's, not the pod's: no outcome for outlier detection
            counts["overflows"].inc()
            return False, spent
        if state.limited:
            counts["limited"].inc()
        if upstream.outcome(replica, ok or state.limited, env.now):  # a 429 is no 5xx
            counts["ejections"].inc()
        return ok, spent

    def _exchange(self, caller: Pod | None, upstream: Upstream, replica: int, call: CallConfig, key: int,
                  state: AttemptState) -> Generator[Any, Any, Outcome]:
        """The request's trip to the pod, its handling there and the response's trip back (``state``: its
        client gave up on it; the pod rate-limited it)."""
        env = self.env
        pod = self.pods[call.service][replica]
        source = caller.node if caller is not None else None
        if caller is not None and self._partitioned(caller.service, call.service):
            # No connection can be made: the client gives up after its connect timeout (or sooner, its
            # per-try timeout); the pod never sees the request.
            pod.unreachable.inc()
            yield env.timeout(self.config.network.connect_timeout)
            if not state.abandoned:
                upstream.finished(replica)
            return False, Spent(network=self.config.network.connect_timeout)
        # The caller's side of the data plane (its sidecar, its node's proxy or eBPF programs; nothing without a
        # mesh) passes the request out and the response in, each pass half its CPU for the request; the
        # callee's does the same inside _served. A waypoint in between (ambient) adds a hop and its passes.
        out = caller.out if caller is not None else None
        nbytes = call.request + call.response
        if out is not None:
            half = out.request_cpu_s(nbytes) / 2
            proxied = yield from out.passing(half)
        else:
            proxied = 0.0
        waypoint = (self.waypoints.pick() if self.waypoints is not None and caller is not None
                    and self.waypoints.covers(call.service) else None)
        pool = self._pools.get(upstream) if self._pools and waypoint is None else None
        lease: Lease | None = None
        if waypoint is not None:
            via = cast(Node, waypoint.node)
            via_half = waypoint.request_cpu_s(nbytes) / 2
            there = self._there(source, via, call.request)
            yield env.timeout(there)
            proxied += yield from waypoint.passing(via_half)
            onward = self._there(via, pod.node, call.request)
            yield env.timeout(onward)
            there += onward
        elif pool is None:
            there = self._there(source, pod.node, call.request)
            yield env.timeout(there)
        else:  # over a pooled connection: take one (connect), then its bytes
            lease = yield from pool.acquire(replica)
            if lease is None:
                # Too many requests pending for a connection: the caller's side answers 503 at once (Envoy's
                # upstream_rq_pending_overflow); the request never leaves, nothing is held.
                state.overflowed = True
                if out is not None:
                    proxied += yield from out.passing(half, last=True)
                if not state.abandoned:
                    upstream.finished(replica)
                return False, Spent(proxy=proxied)
            sent = env.now
            yield lease.send(UP, call.request)
            there = env.now - sent
        answered = False
        ok, spent = False, Spent()
        if pod.is_down(env.now):
            pod.refused.inc()  # the connection is refused: the reset comes straight back
        elif pod.bucket is not None and not pod.bucket.take(env.now):
            state.limited = True  # answered 429 at once, unhandled
        else:
            crash = pod.next_down(env.now)
            if math.isfinite(crash):
                handling = env.process(self._served(pod, key, nbytes))
                yield handling | env.timeout(crash - env.now)
                answered = handling.triggered
                if answered:
                    ok, spent = cast(Outcome, handling.value)
                else:
                    # The pod went down with the attempt in progress: the client sees the reset (what the pod
                    # was doing goes on unanswered, and frees what it holds as it ends).
                    pod.reset.inc()
            else:  # nothing to race: no process of its own
                ok, spent = yield from self._served(pod, key, nbytes)
                answered = True
        returned = call.response if answered else 0.0
        if waypoint is not None:
            back = self._back(via, pod.node, returned)
            yield env.timeout(back)
            proxied += yield from waypoint.passing(via_half, last=True)
            home = self._back(source, via, returned)
            yield env.timeout(home)
            back += home
        elif lease is None:
            back = self._back(source, pod.node, returned)
            yield env.timeout(back)
        else:
            sent = env.now
            yield lease.send(DOWN, returned)
            back = env.now - sent
            lease.release()
            spent.connect += lease.waited
        if out is not None:
            proxied += yield from out.passing(half, last=True)
        if not state.abandoned:
            upstream.finished(replica)
        spent.network += there + back
        spent.proxy += proxied
        return ok, spent

    def _served(self, pod: Pod, key: int, nbytes: float) -> Generator[Any, Any, Outcome]:
        """A request of ``nbytes`` (request and response) at a pod: in through its side of the data plane (if
        any), handled, out the same way in reverse."""
        ins = pod.inbound
        if not ins:
            return (yield from self._handle(pod, key))
        if len(ins) == 1:
            (proxy,) = ins
            half = proxy.request_cpu_s(nbytes) / 2
            proxied = yield from proxy.passing(half)
            ok, spent = yield from self._handle(pod, key)
            proxied += yield from proxy.passing(half, last=True)
            spent.proxy += proxied
            return ok, spent
        halves = [proxy.request_cpu_s(nbytes) / 2 for proxy in ins]
        proxied = 0.0
        for proxy, half in zip(ins, halves):
            proxied += yield from proxy.passing(half)
        ok, spent = yield from self._handle(pod, key)
        for proxy, half in zip(reversed(ins), reversed(halves)):
            proxied += yield from proxy.passing(half, last=True)
        spent.proxy += proxied
        return ok, spent

    def _handle(self, pod: Pod, key: int) -> Generator[Any, Any, Outcome]:
        env = self.env
        arrived = env.now
        pod.requests.inc()
        self.served[pod.service].inc()
        slots, slot = pod.slots, None
        spent = Spent()
        if slots is not None:
            slot = slots.request()
            yield slot
            spent.queue += env.now - arrived
        faults = pod.faults if pod.faults is not None and pod.faults.active(env.now) else None
        if pod.delay is not None and faults is not None:
            delay = pod.delay()
            yield env.timeout(delay)
            spent.delay += delay
        ok = True
        if pod.surrogate is not None:
            took = pod.surrogate()
            for share, call_step in self._surrogate_steps[pod.service]:
                if call_step is None:
                    assert share is not None
                    yield env.timeout(took * share)
                    spent.runtime += took * share
                    continue
                ok, step_spent = yield from call_step(pod, key)
                spent.add(step_spent)
                if not ok:
                    break
        elif pod.runtime is not None:
            # The runtime runs every step; a failed call fails the response but not the steps after it.
            calls: list[tuple[float, Outcome]] = []
            began = env.now
            times = RequestTimes()
            yield pod.runtime.execute([make(pod, key, calls) for make in self._runtime_steps[pod.service]], times)
            for _elapsed, (call_ok, call_spent) in calls:
                ok = ok and call_ok
                spent.add(call_spent)
            # The collector's share of the request's time in the runtime outside its calls (assists, pauses);
            # 0 at a native pod, which has no collector, and at a Node.js pod (no V8 heap here).
            gc = times.gc_s
            spent.gc += gc
            spent.runtime += env.now - began - sum(elapsed for elapsed, _ in calls) - gc
        else:
            for step in self._steps[pod.service]:
                ok, step_spent = yield from step(pod, key)
                spent.add(step_spent)
                if not ok:
                    break
        if ok and faults is not None and faults.error_rate > 0 and self._coin() < faults.error_rate:
            ok = False
        if not ok:
            self.answered_errors[pod.service].inc()
        if slots is not None and slot is not None:
            slots.release(slot)
        self.latency[pod.service].record(env.now - arrived)
        return ok, spent

    def _cpu(self, pod: Pod, seconds: float) -> Generator[Any, Any, Outcome]:
        waited = yield from pod.node.compute(seconds)
        self.service_cpu[pod.service].inc(seconds)
        pod.cpu_s += seconds
        return True, Spent(queue=waited, cpu=seconds)

    def _maybe_call(self, pod: Pod, call: CallConfig, key: int) -> Generator[Any, Any, Outcome]:
        if call.probability < 1 and self._coin() >= call.probability:
            return True, Spent()
        return (yield from self._call(pod, pod.upstreams[call.service], call, key))

    def _parallel(self, pod: Pod, calls: list[CallConfig], key: int) -> Generator[Any, Any, Outcome]:
        env = self.env
        # Each call's coin first, so that a call not made costs no process (a wide fan-out of unlikely calls).
        made = [call for call in calls if call.probability >= 1 or self._coin() < call.probability]
        if not made:
            return True, Spent()
        if len(made) == 1:  # one branch: no process of its own, no condition to wait on
            return (yield from self._call(pod, pod.upstreams[made[0].service], made[0], key))
        branches = [env.process(self._timed(self._call(pod, pod.upstreams[call.service], call, key)))
                    for call in made]
        yield env.all_of(branches)
        ended = [cast(tuple[float, Outcome], branch.value) for branch in branches]
        ok = all(outcome[0] for _, outcome in ended)
        return ok, Spent.slowest((end, outcome[1]) for end, outcome in ended)

    def _timed(self, path: Generator[Any, Any, Outcome]) -> Generator[Any, Any, tuple[float, Outcome]]:
        outcome = yield from path
        return self.env.now, outcome
