"""Textbook service stations: FCFS multi-server and processor sharing, optionally finite.

A station receives :class:`Job` objects through :meth:`Station.accept` and hands
each one, once served, to its ``on_departure`` callback (the network routes it
on). A station whose ``capacity`` (jobs in the station, waiting or in service)
is reached drops the arriving job and hands it to ``on_drop``.

Metrics, under the station's dotted name ``NAME``:
``NAME.wait_s`` and ``NAME.sojourn_s`` (histograms of counted jobs),
``NAME.in_system`` and ``NAME.utilisation`` (time-weighted: jobs present, and
busy servers / servers), ``NAME.completed`` and ``NAME.dropped`` (counters).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from itertools import count

import simpy

from sim.core import Environment
from sim.dists import Distribution
from sim.timers import Timer


class Job:
    """One request travelling through stations; ``counted`` is False during warm-up."""

    __slots__ = ("id", "born", "counted", "arrived")

    def __init__(self, id: int, born: float, counted: bool) -> None:
        self.id = id
        self.born = born
        self.counted = counted
        self.arrived = born


JobHandler = Callable[[Job], None]


class Station:
    """What FCFS and PS stations share: admission, metrics and hand-off."""

    def __init__(
        self,
        env: Environment,
        name: str,
        service: Distribution,
        servers: int = 1,
        capacity: int | None = None,
    ) -> None:
        if servers < 1:
            raise ValueError(f"{name}.servers: must be >= 1 (got {servers})")
        if capacity is not None and capacity < servers:
            raise ValueError(f"{name}.capacity: must be >= servers ({servers}) (got {capacity})")
        self.env = env
        self.name = name
        self.service = service
        self.servers = servers
        self.capacity = capacity
        self.draw_service = service.sampler(env.rng(f"{name}.service"))
        self.on_departure: JobHandler = lambda job: None
        self.on_drop: JobHandler = lambda job: None
        self.present = 0
        metrics = env.metrics
        self.wait_s = metrics.histogram(f"{name}.wait_s")
        self.sojourn_s = metrics.histogram(f"{name}.sojourn_s")
        self.in_system = metrics.gauge(f"{name}.in_system")
        self.utilisation = metrics.gauge(f"{name}.utilisation")
        self.completed = metrics.counter(f"{name}.completed")
        self.dropped = metrics.counter(f"{name}.dropped")

    def accept(self, job: Job) -> None:
        if self.capacity is not None and self.present >= self.capacity:
            if job.counted:
                self.dropped.inc()
            self.on_drop(job)
            return
        job.arrived = self.env.now
        self.present += 1
        self.in_system.set(self.present)
        self.admit(job)

    def admit(self, job: Job) -> None:
        raise NotImplementedError

    def depart(self, job: Job) -> None:
        self.present -= 1
        self.in_system.set(self.present)
        if job.counted:
            self.sojourn_s.record(self.env.now - job.arrived)
            self.completed.inc()
        self.on_departure(job)


class FCFSStation(Station):
    """``servers`` identical servers fed from one first-come-first-served queue (M/G/c)."""

    def __init__(self, env: Environment, name: str, service: Distribution, servers: int = 1,
                 capacity: int | None = None) -> None:
        super().__init__(env, name, service, servers, capacity)
        self.resource = simpy.Resource(env, capacity=servers)

    def admit(self, job: Job) -> None:
        self.env.process(self.serve(job))

    def serve(self, job: Job):
        env, resource, utilisation = self.env, self.resource, self.utilisation
        busy = resource.users
        with resource.request() as request:
            yield request
            if job.counted:
                self.wait_s.record(env.now - job.arrived)
            utilisation.set(len(busy) / self.servers)
            yield env.timeout(self.draw_service())
        utilisation.set(len(busy) / self.servers)
        self.depart(job)


class PSStation(Station):
    """Processor sharing: n jobs present each receive min(1, servers / n) of a server.

    Implemented with a virtual clock V that advances at the per-job service rate;
    a job that needs work w and arrives at V0 leaves when V reaches V0 + w
    (Kleinrock, *Queueing Systems* vol. 2, §4.4). Only the next departure is
    scheduled (:class:`sim.timers.Timer`); an arrival or departure moves it.
    """

    def __init__(self, env: Environment, name: str, service: Distribution, servers: int = 1,
                 capacity: int | None = None) -> None:
        super().__init__(env, name, service, servers, capacity)
        self._heap: list[tuple[float, int, Job]] = []
        self._virtual = 0.0
        self._updated = env.now
        self._timer = Timer(env, self._finish)
        self._sequence = count()

    def _rate(self) -> float:
        n = len(self._heap)
        return min(1.0, self.servers / n) if n else 0.0

    def _advance(self) -> None:
        now = self.env.now
        self._virtual += self._rate() * (now - self._updated)
        self._updated = now

    def admit(self, job: Job) -> None:
        self._advance()
        if job.counted:
            self.wait_s.record(0.0)
        heapq.heappush(self._heap, (self._virtual + self.draw_service(), next(self._sequence), job))
        self._reschedule()

    def _reschedule(self) -> None:
        self.utilisation.set(min(len(self._heap), self.servers) / self.servers)
        if not self._heap:
            self._timer.cancel()
            return
        self._timer.set(max(0.0, (self._heap[0][0] - self._virtual) / self._rate()))

    def _finish(self) -> None:
        self._advance()
        _, _, job = heapq.heappop(self._heap)
        self._reschedule()
        self.depart(job)


DISCIPLINES: dict[str, type[Station]] = {"fcfs": FCFSStation, "ps": PSStation}
