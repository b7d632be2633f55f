"""Ambient mode's waypoint: an Envoy deployment that calls to its services go through, for L7 policy.

Mechanism (Istio's ambient data plane, istio.io/docs/ambient/architecture/data-plane:
"if the destination has a waypoint, the request is forwarded to the waypoint"
by the source's node ztunnel over HBONE, and the waypoint forwards it to the
chosen endpoint, whose node ztunnel delivers it). A call from a meshed pod to a
service of ``mesh.waypoint.services`` thus goes: the caller's node proxy, the
network to a waypoint pod's node, the waypoint (an Envoy: one of its
``workers``, then CPU on its node's cores: the calibrated
``proxy.envoy.cpu_s_vs_rate`` at the waypoint pod's own rate, its filters and
per-byte CPU, half on the request's way and half on the response's), the
network to the callee's node, its node proxy, the pod; the response comes back
the same way. Requests from the edge skip the waypoint: a client outside the
mesh knows nothing of waypoints and sends straight to the destination (the
same page). The waypoint pods are placed on the nodes in turn after the
services' pods and picked round robin.

Metrics: ``proxy.waypoint-I.cpu_s`` and ``.requests``, in ``mesh.proxy_cpu_s``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sim.core import Environment
from sim.params import Table
from models.arch.config import WaypointConfig
from models.arch.filters import Extra
from models.arch.mesh import Machine, Sidecar


class Waypoints:
    """The waypoint's pods, each an Envoy on a node; which services they serve; the next one to pick."""

    def __init__(self, env: Environment, config: WaypointConfig, nodes: Sequence[Machine], first: int,
                 table: Table | None, extra: Callable[[str], Extra | None]) -> None:
        """``first``: the placement index of the first pod (pods go on ``nodes[index mod count]``); ``extra``:
        what a pod of that name adds per request (:class:`~models.arch.filters.ProxyCosts`)."""
        self.config = config
        self.pods = [Sidecar(env, f"waypoint-{index}", nodes[(first + index) % len(nodes)], config.workers,
                             config.request_cpu, table, extra(f"waypoint-{index}"))
                     for index in range(config.replicas)]
        self._next = 0

    def covers(self, service: str) -> bool:
        return self.config.covers(service)

    def pick(self) -> Sidecar:
        """The next waypoint pod, round robin."""
        pod = self.pods[self._next]
        self._next = (self._next + 1) % len(self.pods)
        return pod
