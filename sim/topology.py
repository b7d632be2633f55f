"""Cluster graphs and service call graphs, on networkx.

Two graphs describe where requests go:

* a :class:`Cluster` is an undirected networkx graph of *nodes* (machines, each in
  a *zone*) joined by *links*. A link has a one-way propagation latency (a
  distribution, drawn per message), a bandwidth in bytes per second and a loss
  probability per segment. Each direction of a link is a FIFO transmitter: a
  message occupies it for ``size / bandwidth`` seconds, so messages that meet on
  a link queue behind one another (link contention), then propagate for the
  latency. A message crosses a path of links store-and-forward.
* a :class:`CallGraph` is a directed networkx graph of *services*: an edge
  ``a -> b`` says that serving one request at ``a`` makes ``calls`` calls to
  ``b``, with request and response sizes; a service's calls run one after the
  other (``sequential``) or all at once (``parallel``). Services are *placed* on
  cluster nodes, which gives every call a network :class:`Route`.

The transmit queue is computed, not simulated with a process: a direction of a
link remembers when it will next be free, which is exactly a FIFO single server
whose service time is the serialisation time. On a path of several links the
message reserves each later link at send time, in send order (an approximation
of FIFO at the later hops that is exact when messages enter a path in the order
they reach its later links, as on a path of one link).

Nothing here knows about TCP or HTTP: :mod:`models.net` builds those on a
:class:`Route`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import networkx as nx
import simpy

from sim.core import Environment
from sim.dists import Constant, Distribution  # noqa: F401  (Constant: in the doctest)


class Link:
    """Both directions of one link: FIFO transmitters and a propagation latency.

    ``latency`` is the one-way propagation delay (drawn once per message, from the
    stream ``link.<a>-<b>``), ``bandwidth`` bytes per second (``math.inf``: no
    serialisation time) and ``loss`` the probability that a segment is lost.
    """

    def __init__(
        self,
        env: Environment,
        a: str,
        b: str,
        latency: Distribution,
        bandwidth: float = math.inf,
        loss: float = 0.0,
    ) -> None:
        if not bandwidth > 0:
            raise ValueError(f"link {a}-{b}.bandwidth: must be > 0 bytes/s (got {bandwidth!r})")
        if not 0 <= loss < 1:
            raise ValueError(f"link {a}-{b}.loss: must be in [0, 1) (got {loss!r})")
        self.env = env
        self.ends = (a, b)
        self.name = f"link.{a}-{b}"
        self.latency = latency
        self.bandwidth = float(bandwidth)
        self.loss = float(loss)
        self.draw_latency = latency.sampler(env.rng(self.name))
        self._free_at = {a: 0.0, b: 0.0}  # keyed by the sending end
        self.bytes_sent = 0.0

    def reserve(self, sender: str, size: float, ready: float) -> float:
        """Queue ``size`` bytes from ``sender`` that reach the link at ``ready``;
        return when they arrive at the other end."""
        if sender not in self._free_at:
            raise ValueError(f"{sender!r} is not an end of {self.name}")
        start = max(ready, self._free_at[sender])
        done = start + size / self.bandwidth if size else start
        self._free_at[sender] = done
        self.bytes_sent += size
        return done + self.draw_latency()


@dataclass
class Route:
    """The links a message crosses from ``source`` to ``target`` (none on one node)."""

    env: Environment
    source: str
    target: str
    hops: list[tuple[Link, str]] = field(default_factory=list)  # (link, sending end)

    @property
    def loss(self) -> float:
        """Probability that a segment is lost somewhere on the route."""
        keep = 1.0
        for link, _ in self.hops:
            keep *= 1 - link.loss
        return 1 - keep

    @property
    def mean_latency(self) -> float:
        """Mean one-way propagation delay, serialisation left out."""
        return sum(link.latency.mean for link, _ in self.hops)

    @property
    def bandwidth(self) -> float:
        return min((link.bandwidth for link, _ in self.hops), default=math.inf)

    def arrival(self, size: float) -> float:
        """Reserve the route for ``size`` bytes sent now; the time they reach ``target``."""
        at = self.env.now
        for link, sender in self.hops:
            at = link.reserve(sender, size, at)
        return at

    def transmit(self, size: float) -> simpy.Event:
        """An event that fires when ``size`` bytes sent now reach ``target`` (no loss)."""
        return self.env.timeout(self.arrival(size) - self.env.now)

    def reverse(self) -> Route:
        return Route(self.env, self.target, self.source, [(link, _other(link, s)) for link, s in reversed(self.hops)])


def _other(link: Link, end: str) -> str:
    a, b = link.ends
    return b if end == a else a


class Cluster:
    """Nodes in zones joined by links; routes follow the least mean latency.

    >>> env = Environment()
    >>> cluster = Cluster(env)
    >>> cluster.add_node("n0", zone="a"); cluster.add_node("n1", zone="b")
    >>> _ = cluster.add_link("n0", "n1", latency=Constant(0.001))
    >>> cluster.route("n0", "n1").mean_latency
    0.001
    """

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.graph = nx.Graph()
        self._routes: dict[tuple[str, str], Route] = {}

    def add_node(self, name: str, zone: str = "default", **attributes: Any) -> None:
        if name in self.graph:
            raise ValueError(f"node {name!r} already exists")
        self.graph.add_node(name, zone=zone, **attributes)

    def add_link(
        self, a: str, b: str, latency: Distribution, bandwidth: float = math.inf, loss: float = 0.0
    ) -> Link:
        for end in (a, b):
            if end not in self.graph:
                raise ValueError(f"link {a}-{b}: no node {end!r} (nodes: {', '.join(self.graph.nodes)})")
        if a == b:
            raise ValueError(f"link {a}-{b}: a link joins two different nodes")
        if self.graph.has_edge(a, b):
            raise ValueError(f"link {a}-{b} already exists")
        link = Link(self.env, a, b, latency, bandwidth, loss)
        self.graph.add_edge(a, b, link=link, weight=latency.mean)
        self._routes.clear()
        return link

    def zone(self, node: str) -> str:
        return self.graph.nodes[node]["zone"]

    def nodes_in(self, zone: str) -> list[str]:
        return [n for n, data in self.graph.nodes(data=True) if data["zone"] == zone]

    def route(self, source: str, target: str) -> Route:
        """The route of least mean latency from ``source`` to ``target`` (cached)."""
        key = (source, target)
        if key not in self._routes:
            for end in key:
                if end not in self.graph:
                    raise ValueError(f"no node {end!r} (nodes: {', '.join(self.graph.nodes)})")
            try:
                path = nx.shortest_path(self.graph, source, target, weight="weight")
            except nx.NetworkXNoPath:
                raise ValueError(f"no route from {source!r} to {target!r}") from None
            hops = [(self.graph.edges[u, v]["link"], u) for u, v in zip(path, path[1:])]
            self._routes[key] = Route(self.env, source, target, hops)
        return self._routes[key]

    def send(self, source: str, target: str, size: float) -> simpy.Event:
        """An event that fires when ``size`` bytes sent now from ``source`` reach ``target``."""
        return self.route(source, target).transmit(size)


@dataclass(frozen=True)
class Call:
    """One edge of a call graph: ``calls`` calls from ``caller`` to ``callee`` per request."""

    caller: str
    callee: str
    calls: int = 1
    request_bytes: float = 0.0
    response_bytes: float = 0.0


class CallGraph:
    """Who calls whom: services, their calls (fan-out), and how the calls are issued.

    Call order at a service is the order in which its calls were added.
    """

    def __init__(self) -> None:
        self.graph = nx.DiGraph()

    def add_service(self, name: str, mode: Literal["sequential", "parallel"] = "sequential") -> None:
        if mode not in ("sequential", "parallel"):
            raise ValueError(f"service {name}.mode: must be 'sequential' or 'parallel' (got {mode!r})")
        if name in self.graph:
            raise ValueError(f"service {name!r} already exists")
        self.graph.add_node(name, mode=mode, order=[])

    def add_call(
        self, caller: str, callee: str, calls: int = 1, request_bytes: float = 0.0, response_bytes: float = 0.0
    ) -> None:
        for end in (caller, callee):
            if end not in self.graph:
                raise ValueError(f"call {caller}->{callee}: no service {end!r}")
        if calls < 1:
            raise ValueError(f"call {caller}->{callee}.calls: must be >= 1 (got {calls})")
        if self.graph.has_edge(caller, callee):
            raise ValueError(f"call {caller}->{callee} already exists")
        call = Call(caller, callee, calls, request_bytes, response_bytes)
        self.graph.add_edge(caller, callee, call=call)
        if not nx.is_directed_acyclic_graph(self.graph):
            self.graph.remove_edge(caller, callee)
            raise ValueError(f"call {caller}->{callee} would make a cycle of calls")
        self.graph.nodes[caller]["order"].append(call)

    def calls_of(self, service: str) -> list[Call]:
        return list(self.graph.nodes[service]["order"])

    def mode(self, service: str) -> str:
        return self.graph.nodes[service]["mode"]

    def fan_out(self, service: str) -> int:
        """Calls one request at ``service`` makes directly."""
        return sum(call.calls for call in self.calls_of(service))

    def place(self, cluster: Cluster, placement: dict[str, str]) -> Placement:
        """Bind every service to a cluster node; fails naming the first unplaced service."""
        for service in self.graph.nodes:
            if service not in placement:
                raise ValueError(f"placement: service {service!r} is not placed on a node")
            if placement[service] not in cluster.graph:
                raise ValueError(f"placement.{service}: no node {placement[service]!r} in the cluster")
        return Placement(cluster, self, dict(placement))


Invoke = Callable[[Call, Route], simpy.Event]
"""How one call is carried: given the call and its route, an event that fires on the reply."""


@dataclass
class Placement:
    """A call graph placed on a cluster: every call has a route."""

    cluster: Cluster
    calls: CallGraph
    nodes: dict[str, str]

    def route(self, caller: str, callee: str) -> Route:
        return self.cluster.route(self.nodes[caller], self.nodes[callee])

    def serve(self, service: str, invoke: Invoke, work: Callable[[str], simpy.Event] | None = None):
        """Process: serve one request at ``service``: its own ``work``, then its calls.

        ``invoke(call, route)`` returns the event of one call (the request's trip,
        the callee's service, which may itself be ``serve(callee, ...)``, and the
        response's trip); calls run one after the other or all at once by the
        service's mode.
        """
        env = self.cluster.env
        if work is not None:
            yield work(service)
        calls: Sequence[Call] = self.calls.calls_of(service)
        events: Iterable[simpy.Event] = (
            invoke(call, self.route(call.caller, call.callee)) for call in calls for _ in range(call.calls)
        )
        if self.calls.mode(service) == "parallel":
            yield env.all_of(list(events))
        else:
            for event in events:  # noqa: UP028 - SimPy sends each event's value in; a list iterator takes no send()
                yield event

