"""Poisson-fed services: the request loop every service model kind shares.

A :class:`PoissonService` draws exponential inter-arrival times
(``arrival_rate``), builds each request's steps (:meth:`PoissonService.steps`,
the model kind's own) and hands them to its runtime; the first ``warmup``
fraction of the ``requests`` are served but not measured (every metric is reset
when the first measured request arrives), and the run ends when all are done.
Metrics: ``requests.sojourn_s`` (histogram of latency), ``requests.completed``.
The scenario's ``handler`` gives ``cpu``, ``alloc`` and an optional ``backend``
call (a :class:`~models.runtime.protocol.Wait` that holds no CPU).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sim.core import Environment, Model
from sim.dists import Exponential
from sim.scenario import ScenarioBase
from models.runtime.protocol import Runtime, Wait


class PoissonService(Model):
    """Poisson requests, each running ``steps()`` on ``self.runtime``; the run ends when all are done."""

    runtime: Runtime

    def __init__(self, env: Environment, config: ScenarioBase) -> None:
        super().__init__(env, config)
        handler = config.handler
        self.draw_cpu = handler.cpu.sampler(env.rng("requests.cpu"))
        self.draw_alloc = handler.alloc.sampler(env.rng("requests.alloc"))
        self.draw_backend = handler.backend.sampler(env.rng("requests.backend")) if handler.backend else None
        self.draw_interarrival = Exponential(1 / config.arrival_rate).sampler(env.rng("requests.arrivals"))
        self.sojourn_s = env.metrics.histogram("requests.sojourn_s")
        self.completed = env.metrics.counter("requests.completed")
        self.finished_count = 0
        self.warmup_requests = int(config.warmup * config.requests)
        self.done = env.event()

    def start(self) -> None:
        self.env.process(self.generate())

    def steps(self) -> list[Any]:
        raise NotImplementedError

    def backend_steps(self) -> list[Any]:
        if self.draw_backend is None:
            return []
        delay = self.draw_backend()
        env = self.env
        return [Wait(lambda: env.timeout(delay))]

    def generate(self):
        env = self.env
        for index in range(self.config.requests):
            if index:
                yield env.timeout(self.draw_interarrival())
            if index == self.warmup_requests:
                env.metrics.reset()
            event = self.runtime.execute(self.steps())
            event.callbacks.append(self._finisher(index >= self.warmup_requests))

    def request_finished(self) -> None:
        """Hook called as each request ends (after its latency is recorded)."""

    def _finisher(self, counted: bool) -> Callable[[Any], None]:
        return lambda event: self.record_finished(counted, event.value)

    def record_finished(self, counted: bool, latency_s: float) -> None:
        """One request has ended after ``latency_s``: record it if ``counted``; the last one ends the run."""
        if counted:
            self.sojourn_s.record(latency_s)
            self.completed.inc()
        self.request_finished()
        self.finished_count += 1
        if self.finished_count == self.config.requests:
            self.done.succeed()
