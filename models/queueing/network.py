"""Open networks of stations with probabilistic routing (Jackson networks and their kin).

The routing is a networkx ``DiGraph`` whose nodes are station names and whose
edge attribute ``p`` is the probability that a job leaving the tail station goes
to the head station next; what is left of a station's probabilities is the
chance of leaving the network. External jobs arrive in one stream and enter
station ``s`` with probability ``entry[s]``.

End-to-end metrics: ``requests.sojourn_s`` (histogram), ``requests.in_system``
(time-weighted), ``requests.completed`` and ``requests.dropped`` (counters). The
run ends when every one of ``requests`` external arrivals has left or been
dropped; the first ``warmup_requests`` are served but not measured, and every
metric is reset when the first measured job arrives.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping
from functools import partial
from itertools import accumulate

import networkx as nx
from sim.core import Environment
from sim.dists import Distribution, Uniform
from models.queueing.stations import Job, Station

EXIT = "<exit>"


def check_routing(graph: nx.DiGraph, entry: Mapping[str, float]) -> None:
    """Raise ``ValueError`` unless probabilities are valid and every station can reach the exit by routes of
    positive probability (one line naming every station that cannot)."""
    for name, probability in entry.items():
        if name not in graph:
            raise ValueError(f"entry.{name}: no such station (stations: {', '.join(graph.nodes)})")
        if probability < 0:
            raise ValueError(f"entry.{name}: probability must be >= 0 (got {probability})")
    if abs(sum(entry.values()) - 1) > 1e-9:
        raise ValueError(f"entry: probabilities must sum to 1 (got {sum(entry.values())})")
    with_exit = nx.DiGraph((tail, head) for tail, head, p in graph.edges(data="p") if p > 0)
    with_exit.add_node(EXIT)
    for node in graph.nodes:
        out = sum(data["p"] for _, _, data in graph.out_edges(node, data=True))
        if out > 1 + 1e-9:
            raise ValueError(f"routes: probabilities out of {node!r} sum to {out:g}, more than 1")
        if out < 1 - 1e-9:
            with_exit.add_edge(node, EXIT, p=1 - out)
    leaving = nx.ancestors(with_exit, EXIT)
    trapped = [node for node in graph.nodes if node not in leaving]
    if trapped:
        raise ValueError(
            f"routes: a job at {', '.join(map(repr, trapped))} can never leave the network: "
            "no route from there reaches a station whose routes sum to less than 1"
        )


class Network:
    """Stations wired by a routing graph and fed by one external arrival stream."""

    def __init__(
        self,
        env: Environment,
        stations: Mapping[str, Station],
        routing: nx.DiGraph,
        entry: Mapping[str, float],
        interarrival: Distribution,
        requests: int,
        warmup_requests: int = 0,
        name: str = "requests",
    ) -> None:
        routing = routing.copy()
        routing.add_nodes_from(stations)
        check_routing(routing, entry)
        self.env = env
        self.stations = dict(stations)
        self.requests = requests
        self.warmup_requests = warmup_requests
        self.draw_interarrival = interarrival.sampler(env.rng(f"{name}.arrivals"))
        self._uniform = Uniform(0.0, 1.0).sampler(env.rng(f"{name}.routing"))
        self._enter = self._router(list(entry.items()))
        metrics = env.metrics
        # One station and no routes: the station's metrics are the end-to-end ones.
        self._measure = not (len(self.stations) == 1 and routing.number_of_edges() == 0)
        if not self._measure:
            (station,) = self.stations.values()
            for metric in ("sojourn_s", "in_system", "completed", "dropped"):
                metrics.alias(f"{name}.{metric}", f"{station.name}.{metric}")
        self.sojourn_s = metrics.histogram(f"{name}.sojourn_s")
        self.in_system = metrics.gauge(f"{name}.in_system")
        self.completed = metrics.counter(f"{name}.completed")
        self.dropped = metrics.counter(f"{name}.dropped")
        self.finished = 0
        self.present = 0
        self.done = env.event()
        for station_name, station in self.stations.items():
            routes = [(head, data["p"]) for _, head, data in routing.out_edges(station_name, data=True)]
            station.on_departure = partial(self._forward, self._router(routes)) if routes else self._complete
            station.on_drop = self._drop
        env.process(self.generate())

    def _router(self, pairs: list[tuple[str, float]]) -> Callable[[], Station | None]:
        """A draw of the next station (None: leave the network) from (station, probability) pairs.

        A sure route draws no random number, so a deterministic path consumes nothing
        from the routing stream.
        """
        if len(pairs) == 1 and pairs[0][1] >= 1 - 1e-12:
            station = self.stations[pairs[0][0]]
            return lambda: station
        targets = [self.stations[name] for name, _ in pairs]
        cumulative = list(accumulate(p for _, p in pairs))
        uniform = self._uniform

        def pick() -> Station | None:
            position = bisect_right(cumulative, uniform())
            return targets[position] if position < len(targets) else None

        return pick

    def generate(self):
        env = self.env
        draw_interarrival, enter, in_system = self.draw_interarrival, self._enter, self.in_system
        warmup = self.warmup_requests
        for index in range(self.requests):
            if index:
                yield env.timeout(draw_interarrival())
            if index == warmup:
                env.metrics.reset()
            job = Job(index, env.now, index >= warmup)
            self.present += 1
            if self._measure:
                in_system.set(self.present)
            enter().accept(job)

    def _forward(self, router: Callable[[], Station | None], job: Job) -> None:
        after = router()
        if after is None:
            self._complete(job)
        else:
            after.accept(job)

    def _complete(self, job: Job) -> None:
        if job.counted and self._measure:
            self.sojourn_s.record(self.env.now - job.born)
            self.completed.inc()
        self._leave()

    def _drop(self, job: Job) -> None:
        if job.counted and self._measure:
            self.dropped.inc()
        self._leave()

    def _leave(self) -> None:
        self.present -= 1
        if self._measure:
            self.in_system.set(self.present)
        self.finished += 1
        if self.finished == self.requests:
            self.done.succeed()
