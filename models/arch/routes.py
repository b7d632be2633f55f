"""Where a message between two pods (or from the edge) goes: plain one-way delays, or a route of the topology.

Mechanism. Without ``network.topology`` every hop is a draw of
``network.latency`` (between two nodes, or from the edge) or of
``network.local`` (between pods of one node), plus its bytes over
``network.bandwidth`` with no contention between messages: a
:class:`DelayRoute`. With a topology (:class:`sim.topology.Cluster`: machines
in zones joined by links), a message between two nodes takes the route of
least mean latency between them, crossing each link's FIFO transmitter
(``size / bandwidth``, queued behind other messages on that link) and its
propagation delay; between pods of one node it is still ``network.local``, and
from the edge it enters at ``topology.edge`` (else ``network.latency``). A
link's ``loss`` matters to pooled connections only (TCP's retransmissions,
:mod:`models.net.tcp`): a hop without a connection is a delay.

Both kinds are :class:`sim.topology.Route` objects, so a TCP connection of
:mod:`models.net.tcp` can be laid on either: its handshake is one round trip
of the route, its messages the route's arrival times.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

from sim.core import Environment
from sim.topology import Cluster, Route
from models.arch.config import NetworkConfig

EDGE_MACHINE = "edge"
"""The name of the edge in routes without a topology machine of its own."""


class Placed(Protocol):
    """What routing needs of a node: its name (a machine of the topology)."""

    name: str


class DelayRoute(Route):
    """A route that is a draw of ``draw`` one way plus ``size / bandwidth`` (no link, no contention, no loss)."""

    def __init__(self, env: Environment, source: str, target: str, draw: Callable[[], float], mean: float,
                 bandwidth: float) -> None:
        super().__init__(env, source, target, [])
        self._draw = draw
        self._mean = mean
        self._bandwidth = bandwidth

    @property
    def loss(self) -> float:
        return 0.0

    @property
    def mean_latency(self) -> float:
        return self._mean

    @property
    def bandwidth(self) -> float:
        return self._bandwidth

    def arrival(self, size: float) -> float:
        return self.env.now + self._draw() + size / self._bandwidth

    def reverse(self) -> Route:
        return DelayRoute(self.env, self.target, self.source, self._draw, self._mean, self._bandwidth)


class Routes:
    """The routes between the arch's nodes (and from the edge), built once per pair and cached."""

    def __init__(self, env: Environment, network: NetworkConfig, remote: Callable[[], float],
                 local: Callable[[], float]) -> None:
        self.env = env
        self.network = network
        bandwidth = network.bandwidth or math.inf
        self._remote = (remote, network.latency.mean, bandwidth)
        self._local = (local, network.local.mean if network.local is not None else 0.0, bandwidth)
        self.cluster: Cluster | None = None
        """The topology's cluster (None without ``network.topology``)."""
        topology = network.topology
        if topology is not None:
            cluster = self.cluster = Cluster(env)
            for machine, zone in topology.zone_of().items():
                cluster.add_node(machine, zone=zone)
            for link in topology.links:
                cluster.add_link(*link.between, latency=link.latency, bandwidth=link.bandwidth or math.inf,
                                 loss=link.loss)
        self._routes: dict[tuple[str, str], Route] = {}
        self._back: dict[tuple[str, str], Route] = {}

    def route(self, source: Placed | None, target: Placed) -> Route:
        """The route from ``source``'s node (None: the edge) to ``target``'s."""
        name = source.name if source is not None else EDGE_MACHINE
        key = (name, target.name)
        route = self._routes.get(key)
        if route is None:
            route = self._routes[key] = self._build(source, target)
        return route

    def _build(self, source: Placed | None, target: Placed) -> Route:
        env = self.env
        if source is target:
            return DelayRoute(env, target.name, target.name, *self._local)
        edge = self.network.topology.edge if self.network.topology is not None else None
        start = source.name if source is not None else edge
        if self.cluster is None or start is None:
            return DelayRoute(env, start or EDGE_MACHINE, target.name, *self._remote)
        return self.cluster.route(start, target.name)

    def back(self, source: Placed | None, target: Placed) -> Route:
        """The route from ``target``'s node back to ``source``'s (None: the edge)."""
        key = (source.name if source is not None else EDGE_MACHINE, target.name)
        route = self._back.get(key)
        if route is None:
            route = self._back[key] = self.route(source, target).reverse()
        return route

    def hop(self, source: Placed | None, target: Placed, size: float) -> float:
        """Seconds for ``size`` bytes sent now from ``source`` (None: the edge) to reach ``target``."""
        return self.route(source, target).arrival(size) - self.env.now

    def hop_back(self, source: Placed | None, target: Placed, size: float) -> float:
        """Seconds for ``size`` bytes sent now from ``target`` back to ``source`` (None: the edge)."""
        return self.back(source, target).arrival(size) - self.env.now
