"""An eBPF datapath (Cilium): policy and load balancing in the kernel, an Envoy per node for L7 policy.

Mechanism (Cilium's documentation: docs.cilium.io, "eBPF Datapath" and
"Envoy": the agent starts one Envoy per node, which "becomes responsible for
proxying all matching L7 requests on that node"). Cilium replaces
kube-proxy and the iptables path with eBPF programs at the pod's socket and
its veth (service load balancing at ``connect()``, policy as a hash-map
lookup, forwarding by redirect): no proxy process is on an L3/L4 request's
path. A request costs its nodes' kernels a little CPU, ``mesh.ebpf.request_cpu``
(about 0.3 us by default: a lower bound from XDP's published 26 Mpps per core,
see :data:`~models.arch.config.EBPF_REQUEST_CPU_S`; cited, not measured here),
half on the caller's node on the way out and half on the callee's on the way
in, run on the node's cores (softirq work in the packets' path, so it delays
them too); it holds no thread of a proxy. A request to a service with L7 policy
(``mesh.ebpf.l7_services``) is redirected by the callee node's programs to that
node's Envoy (its ``workers``, CPU on the node's cores: the calibrated
``proxy.envoy.cpu_s_vs_rate`` at that Envoy's own rate, its filters and
per-byte CPU), and from there to the pod; the response returns through it.

Metrics: ``proxy.nodeI.ebpf.cpu_s`` and ``.requests`` (the kernel's share),
``proxy.nodeI.envoy.cpu_s`` and ``.requests``; both are in ``mesh.proxy_cpu_s``
(the data plane's CPU) and the kernel's also in ``mesh.ebpf_cpu_s``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from sim.core import Environment
from sim.dists import Distribution
from models.arch.mesh import Machine


class KernelDatapath:
    """One node's eBPF programs: each pass is CPU on the node's cores, no thread of a proxy."""

    def __init__(self, env: Environment, name: str, node: Machine, request_cpu: Distribution) -> None:
        self.env = env
        self.node = node
        self._draw = request_cpu.sampler(env.rng(f"proxy.{name}.cpu"))
        self.peak_in_flight = 0
        metrics = env.metrics
        self.cpu_s = metrics.counter(f"proxy.{name}.cpu_s")
        self.requests = metrics.counter(f"proxy.{name}.requests")
        self.mesh_cpu_s = metrics.counter("mesh.proxy_cpu_s")
        self.ebpf_cpu_s = metrics.counter("mesh.ebpf_cpu_s")

    def request_cpu_s(self, nbytes: float = 0.0) -> float:
        """The kernel CPU of one request on this node (both of its passes), counting the request."""
        self.requests.inc()
        return self._draw()

    def passing(self, cpu_s: float, last: bool = False) -> Generator[Any, Any, float]:
        """One pass of ``cpu_s`` on the node's cores; the seconds it took."""
        began = self.env.now
        yield from self.node.compute(cpu_s)
        self.cpu_s.inc(cpu_s)
        self.mesh_cpu_s.inc(cpu_s)
        self.ebpf_cpu_s.inc(cpu_s)
        return self.env.now - began
