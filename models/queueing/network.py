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

from collections.abc import Mapping
from functools import partial

import networkx as nx
import numpy as np

from sim.core import Environment
from sim.dists import Distribution, Uniform
from models.queueing.stations import Job, Station

EXIT = "<exit>"


def check_routing(graph: nx.DiGraph, entry: Mapping[str, float]) -> None:
    """Raise ``ValueError`` unless probabilities are valid and every station can reach the exit."""
    for name, probability in entry.items():
        if name not in graph:
            raise ValueError(f"entry.{name}: no such station (stations: {', '.join(graph.nodes)})")
        if probability < 0:
            raise ValueError(f"entry.{name}: probability must be >= 0 (got {probability})")
    if abs(sum(entry.values()) - 1) > 1e-9:
        raise ValueError(f"entry: probabilities must sum to 1 (got {sum(entry.values())})")
    with_exit = graph.copy()
    for node in graph.nodes:
        out = sum(data["p"] for _, _, data in graph.out_edges(node, data=True))
        if out > 1 + 1e-9:
            raise ValueError(f"routes: probabilities out of {node!r} sum to {out:g}, more than 1")
        if out < 1 - 1e-9:
            with_exit.add_edge(node, EXIT, p=1 - out)
    for node in graph.nodes:
        if not nx.has_path(with_exit, node, EXIT):
            raise ValueError(f"routes: a job at {node!r} can never leave the network")


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
        self._entry = self._choices(list(entry.items()))
        self._routes = {
            node: self._choices([(head, data["p"]) for _, head, data in routing.out_edges(node, data=True)])
            for node in routing.nodes
        }
        metrics = env.metrics
        self.sojourn_s = metrics.histogram(f"{name}.sojourn_s")
        self.in_system = metrics.gauge(f"{name}.in_system")
        self.completed = metrics.counter(f"{name}.completed")
        self.dropped = metrics.counter(f"{name}.dropped")
        self.finished = 0
        self.present = 0
        self.done = env.event()
        for station_name, station in self.stations.items():
            station.on_departure = partial(self._route, station_name)
            station.on_drop = self._drop
        env.process(self.generate())

    @staticmethod
    def _choices(pairs: list[tuple[str, float]]) -> tuple[list[str], np.ndarray]:
        names = [name for name, _ in pairs]
        return names, np.cumsum([p for _, p in pairs])

    def _pick(self, choices: tuple[list[str], np.ndarray]) -> str | None:
        names, cumulative = choices
        if len(names) == 1 and cumulative[0] >= 1 - 1e-12:
            return names[0]
        position = int(np.searchsorted(cumulative, self._uniform(), side="right"))
        return names[position] if position < len(names) else None

    def generate(self):
        env = self.env
        for index in range(self.requests):
            if index:
                yield env.timeout(self.draw_interarrival())
            if index == self.warmup_requests:
                env.metrics.reset()
            job = Job(index, env.now, index >= self.warmup_requests)
            self.present += 1
            self.in_system.set(self.present)
            self.stations[self._pick(self._entry)].accept(job)  # type: ignore[index]

    def _route(self, station_name: str, job: Job) -> None:
        after = self._pick(self._routes[station_name])
        if after is None:
            self._leave(job, completed=True)
        else:
            self.stations[after].accept(job)

    def _drop(self, job: Job) -> None:
        self._leave(job, completed=False)

    def _leave(self, job: Job, completed: bool) -> None:
        self.present -= 1
        self.in_system.set(self.present)
        if job.counted:
            if completed:
                self.sojourn_s.record(self.env.now - job.born)
                self.completed.inc()
            else:
                self.dropped.inc()
        self.finished += 1
        if self.finished == self.requests:
            self.done.succeed()
