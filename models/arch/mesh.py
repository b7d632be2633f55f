"""The service mesh's data plane: a sidecar proxy beside each pod, or a proxy per node (ambient), and what
every proxy costs a request.

Mechanism (Istio's sidecar mode, a proxy per pod). Every request a pod
sends and every request it receives passes through its sidecar: a call
leaves through the caller's sidecar and enters through the callee's, and
the response comes back the same way (a request from the edge enters
through the entry pod's sidecar only). Each pass takes one of the sidecar's
``workers`` threads (Envoy's ``--concurrency``: a request stays on the worker
that accepted its connection) and then CPU on the pod's node, shared with
every pod and sidecar there (a free core, or on a ``linux`` node a thread the
kernel model places), for half of the proxy's CPU per request: the
request's way in and the response's way out each cost half.

The CPU per request is the calibrated ``proxy.<kind>.cpu_s_vs_rate`` (the
proxy's CPU per forwarded request against the requests per second through
it, measured on a real Envoy and a real Go reverse proxy beside the
validation server, :mod:`calibration.measure_proxy`), read at the sidecar's
own rate: the requests that passed through it over the last
:data:`RATE_WINDOW_S` (both directions). It falls as the rate rises: at a low rate each request meets an
idle worker whose wake-up and event-loop turn it pays alone. A scenario can
give ``request_cpu``, a distribution drawn per request, instead.

Ambient mode (Istio's ztunnel: an L4 proxy per node, carrying mTLS) works the
same way with one proxy per node instead of per pod: a pod's requests and
responses pass its node's proxy, which every pod on that node shares, and its
CPU per request is ``mesh.node_proxy.request_cpu`` (default 60 us, Istio
1.24's published figure for a ztunnel: no ztunnel is measured here).

**A Go proxy's collector.** On a node scheduled ``linux`` a Go-proxy sidecar
(:class:`GoSidecar`) runs on the Go runtime model: a detailed runtime of
GOMAXPROCS ``workers`` whose Ps' threads share the node's cores, each pass a
goroutine of half the proxy's CPU per request less its collector's
(``proxy.goproxy.mutator_cpu_s_vs_rate``, measured beside the total) that
allocates half the calibrated bytes a request
(``proxy.goproxy.alloc_bytes_per_request``, about 40 KB in 76 objects), so the
collector's stop-the-world pauses, mark workers and assists are simulated
and reach the tail (its CPU: ``proxy.NAME.go.gc.cpu_s``, beside
``proxy.NAME.cpu_s``). On an FCFS node its CPU per request is the measured
average, the collector's share included, not its pauses and assists.

**The other data planes and what every proxy adds.** Ambient mode's
waypoints (L7 Envoys between the caller's and the callee's node proxies) are
:mod:`models.arch.waypoint`; an eBPF datapath (Cilium: the kernel's programs,
and a node Envoy for L7 services) is :mod:`models.arch.ebpf`. Every Envoy
(sidecar, waypoint, node Envoy) adds its filters' CPU (Lua, WASM, native) to
each request, and every Envoy or Go proxy its CPU per byte of the request and
response (with ``mesh.mtls``, the encryption's too): :mod:`models.arch.filters`,
drawn with the request's CPU (``request_cpu_s(nbytes)``; no bytes, nothing
added or drawn). A proxy counts its requests in flight (from the first pass to
the ``last``), whose peak is its open connections and, with
``mesh.proxy.memory``, its memory (:mod:`models.arch.memory`).

Connections between proxies, their pools and mTLS handshakes (whose CPU is a
pass through each proxy) are :mod:`models.arch.connections`. Not modelled
yet: the loopback hop's own latency, a per-connection figure for ztunnel's
memory, and a proxy's open connections read from its pools (they are counted
as its peak requests in flight).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from typing import Any, Protocol

from sim.core import Environment
from sim.dists import Distribution
from sim.params import Table, param_table, param_value
from sim.slots import Slots
from models.arch.config import ProxyConfig
from models.arch.filters import Extra
from models.arch.memory import ProxyMemory
from models.machine.cores import Cores
from models.runtime.go.detailed.runtime import GoRuntime
from models.runtime.go.gc import GCConfig
from models.runtime.protocol import Compute

CPU_PARAM = "proxy.{kind}.cpu_s_vs_rate"
GO_MUTATOR_CPU_PARAM = "proxy.goproxy.mutator_cpu_s_vs_rate"
GO_ALLOC_BYTES_PARAM = "proxy.goproxy.alloc_bytes_per_request"
GO_ALLOC_OBJECTS_PARAM = "proxy.goproxy.alloc_objects_per_request"
RATE_WINDOW_S = 1.0
"""How far back a sidecar counts the requests that passed through it, to read its CPU per request."""


class Machine(Protocol):
    """What a sidecar needs of its pod's node: CPU on its cores."""

    def compute(self, seconds: float) -> Generator[Any, Any, float]: ...


class Proxy(Protocol):
    """What a request passes in the data plane (a sidecar, a node proxy, a waypoint pod, a node's eBPF
    programs): its CPU for one request, drawn once, then a pass on the request's way and the response's."""

    def request_cpu_s(self, nbytes: float = 0.0) -> float: ...

    def passing(self, cpu_s: float, last: bool = False) -> Generator[Any, Any, float]: ...


class Sidecar:
    """A proxy (a pod's, or in ambient mode its node's): its worker threads, on the cores of its node; its CPU
    per request drawn from ``request_cpu`` or else read from ``table`` at its rate."""

    def __init__(self, env: Environment, name: str, node: Machine, workers: int, request_cpu: Distribution | None,
                 table: Table | None, extra: Extra | None = None) -> None:
        self.env = env
        self.name = name
        self.node = node
        self.workers = Slots(env, workers)
        self._table = table
        self._extra = extra
        """Its filters' and its bytes' CPU (:mod:`models.arch.filters`), if any."""
        self.in_flight = 0
        """Requests between their first pass and their last."""
        self.peak_in_flight = 0
        self.memory: ProxyMemory | None = None
        """Its memory gauges (:mod:`models.arch.memory`), when the scenario reports memory."""
        self._draw = request_cpu.sampler(env.rng(f"proxy.{name}.cpu")) if request_cpu is not None else None
        self._recent: deque[float] = deque()
        metrics = env.metrics
        self.cpu_s = metrics.counter(f"proxy.{name}.cpu_s")
        self.requests = metrics.counter(f"proxy.{name}.requests")
        self.mesh_cpu_s = metrics.counter("mesh.proxy_cpu_s")

    def rate(self) -> float:
        """Requests per second through this sidecar over the last :data:`RATE_WINDOW_S`."""
        now, recent = self.env.now, self._recent
        while recent and recent[0] <= now - RATE_WINDOW_S:
            recent.popleft()
        return len(recent) / RATE_WINDOW_S

    def request_cpu_s(self, nbytes: float = 0.0) -> float:
        """The CPU this sidecar spends on one request of ``nbytes`` (request and response) over both of its
        passes, counting the request (in flight until its ``last`` pass)."""
        self._recent.append(self.env.now)
        self.requests.inc()
        self.in_flight += 1
        if self.in_flight > self.peak_in_flight:
            self.peak_in_flight = self.in_flight
            if self.memory is not None:
                self.memory.update(self)
        if self._draw is not None:
            cpu = self._draw()
        else:
            assert self._table is not None
            cpu = self._table.at(self.rate())
        if self._extra is not None:
            cpu += self._extra.cpu_s(nbytes)
        return cpu

    def passing(self, cpu_s: float, last: bool = False) -> Generator[Any, Any, float]:
        """One pass (a request's way in or a response's way out, its ``last``) of ``cpu_s`` of CPU: a worker,
        then a core; the seconds it took."""
        env = self.env
        began = env.now
        workers = self.workers
        wait = workers.acquire()
        if wait is not None:
            yield wait
        yield from self.node.compute(cpu_s)
        workers.release()
        self.cpu_s.inc(cpu_s)
        self.mesh_cpu_s.inc(cpu_s)
        if last:
            self.in_flight -= 1
        return env.now - began


class GoSidecar(Sidecar):
    """A Go proxy whose goroutines run on the Go runtime model (detailed fidelity, GOMAXPROCS ``workers``) with
    its Ps' threads on its node's cores, so that its collector (pauses, mark workers, assists) is simulated:
    each pass is a goroutine of ``cpu_s`` (its CPU less the collector's) allocating half the calibrated bytes
    a request (``proxy.goproxy.alloc_bytes_per_request``, in objects of the calibrated mean size)."""

    def __init__(self, env: Environment, name: str, node: Machine, workers: int, request_cpu: Distribution | None,
                 table: Table | None, cores: Cores, extra: Extra | None = None) -> None:
        super().__init__(env, name, node, workers, request_cpu, table, extra)
        request_bytes = param_value(GO_ALLOC_BYTES_PARAM)
        self._pass_bytes = request_bytes / 2
        self.runtime = GoRuntime(env, workers, gc=GCConfig(alloc_object=request_bytes / param_value(
            GO_ALLOC_OBJECTS_PARAM)), name=f"proxy.{name}.go", cores=cores)

    def passing(self, cpu_s: float, last: bool = False) -> Generator[Any, Any, float]:
        began = self.env.now
        yield self.runtime.execute([Compute(cpu_s, self._pass_bytes)])
        self.cpu_s.inc(cpu_s)
        self.mesh_cpu_s.inc(cpu_s)
        if last:
            self.in_flight -= 1
        return self.env.now - began


def envoy_cpu_table(request_cpu: Distribution | None) -> Table | None:
    """Envoy's calibrated CPU per request (a waypoint's, a node Envoy's), unless ``request_cpu`` is given."""
    return param_table(CPU_PARAM.format(kind="envoy")) if request_cpu is None else None


def proxy_cpu_table(config: ProxyConfig, simulated_collector: bool = False) -> Table | None:
    """The calibrated CPU per request of ``config``'s proxy (a Go proxy's less its collector's when its
    collector is ``simulated_collector``), unless the scenario gives ``request_cpu``."""
    if config.request_cpu is not None:
        return None
    if simulated_collector:
        return param_table(GO_MUTATOR_CPU_PARAM)
    return param_table(CPU_PARAM.format(kind=config.kind))
