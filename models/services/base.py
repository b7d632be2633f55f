"""Poisson-fed services: the request loop every service model kind shares.

A :class:`PoissonService` draws exponential inter-arrival times
(``arrival_rate``), builds each request's steps (:meth:`PoissonService.steps`,
the model kind's own) and hands them to its runtime; the first ``warmup``
fraction of the ``requests`` are served but not measured (every metric is reset
when the first measured request arrives), and the run ends when all are done.
Metrics: ``requests.sojourn_s`` (histogram of latency), ``requests.completed``.
The scenario's ``handler`` gives ``cpu``, ``alloc`` and an optional ``backend``
call (a :class:`~models.runtime.protocol.Wait` that holds no CPU).

The scenario's ``machine`` (:class:`~models.machine.config.MachineConfig`) adds what the machine under
the runtime does (:class:`~models.machine.effects.MachineEffects`): each
request's handler CPU stretched (``stretch``), a wake-up delay for a request
that finds the service idle (``wake``: it holds no CPU and not the server),
the runtime's threads on placed cores (``cores``, ``go.service`` detailed
fidelity: :mod:`models.machine.cores`) and the load generator's CPU per
request on those cores (``load_cpu``), half spent when it sends a request and
half when it reads the response.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from sim.core import Environment, Model
from sim.dists import Exponential
from models.machine.config import MachineConfig
from models.machine.cores import Cores
from models.machine.effects import MachineEffects
from models.runtime.protocol import Runtime, Wait


class ServiceScenario(Protocol):
    """What a Poisson service reads of its scenario (``go.service``, ``node.service`` and ``native.service``
    scenarios have these fields)."""

    handler: Any
    """With ``cpu`` and ``alloc`` distributions and an optional ``backend`` one."""
    arrival_rate: float
    requests: int
    warmup: float
    machine: MachineConfig


class PoissonService(Model):
    """Poisson requests, each running ``steps()`` on ``self.runtime``; the run ends when all are done."""

    runtime: Runtime

    def __init__(self, env: Environment, config: ServiceScenario) -> None:
        super().__init__(env, config)
        handler = config.handler
        self.draw_cpu = handler.cpu.sampler(env.rng("requests.cpu"))
        self.draw_alloc = handler.alloc.sampler(env.rng("requests.alloc"))
        self.draw_backend = handler.backend.sampler(env.rng("requests.backend")) if handler.backend else None
        self.draw_interarrival = Exponential(1 / config.arrival_rate).sampler(env.rng("requests.arrivals"))
        self.machine = MachineEffects(env, config.machine, config.arrival_rate)
        self.draw_cpu = self.machine.stretched(self.draw_cpu)
        self.load_cores: Cores | None = None
        """The cores the load generator shares with the runtime (a model kind with placed cores sets it)."""
        self.load_cpu_s = self.machine.load_cpu_s
        self.in_flight = 0
        self.idle_since = env.now
        self.sojourn_s = env.metrics.histogram("requests.sojourn_s")
        self.completed = env.metrics.counter("requests.completed")
        self.finished_count = 0
        self.warmup_requests = int(config.warmup * config.requests)
        self.done = env.event()

    def start(self) -> None:
        self.env.process(self.generate())

    def steps(self) -> list[Any]:
        raise NotImplementedError

    def wait_steps(self, delay: float) -> list[Any]:
        """Steps that wait ``delay`` seconds holding no CPU (a runtime may need a step before the wait)."""
        env = self.env
        return [Wait(lambda: env.timeout(delay))]

    def backend_steps(self) -> list[Any]:
        if self.draw_backend is None:
            return []
        return self.wait_steps(self.draw_backend())

    def arriving(self) -> list[Any]:
        """A request arrives: its steps, after the wake-up delay if it finds the service idle."""
        steps = self.steps()
        if self.machine.wake is not None and self.in_flight == 0:
            delay = self.machine.wake_delay(self.env.now - self.idle_since)
            if delay > 0:
                steps = self.wait_steps(delay) + steps
        self.in_flight += 1
        return steps

    def generate(self):
        env = self.env
        for index in range(self.config.requests):
            if index:
                yield env.timeout(self.draw_interarrival())
            if index == self.warmup_requests:
                env.metrics.reset()
            if self.load_cores is None:
                event = self.runtime.execute(self.arriving())
                event.callbacks.append(self._finisher(index >= self.warmup_requests))
            else:
                self._send(index >= self.warmup_requests)

    def _send(self, counted: bool) -> None:
        """Through the load generator on the runtime's cores: it sends (half its CPU per request, see
        :class:`~models.machine.config.MachineConfig`), the runtime serves, it reads the response (the other half);
        the latency
        counts the time its threads wait for a core, not their CPU, which the fixed client delay holds."""
        cores, env, steps = self.load_cores, self.env, self.arriving()
        assert cores is not None
        arrived, half = env.now, self.load_cpu_s / 2

        def served(_event: Any) -> None:
            cores.burst(half, lambda: self.record_finished(counted, env.now - arrived - 2 * half))

        cores.burst(half, lambda: self.runtime.execute(steps).callbacks.append(served))

    def request_finished(self) -> None:
        """Hook called as each request ends (after its latency is recorded)."""

    def _finisher(self, counted: bool) -> Callable[[Any], None]:
        return lambda event: self.record_finished(counted, event.value)

    def record_finished(self, counted: bool, latency_s: float) -> None:
        """One request has ended after ``latency_s``: record it if ``counted``; the last one ends the run."""
        if counted:
            self.sojourn_s.record(latency_s)
            self.completed.inc()
        self.in_flight -= 1
        if self.in_flight == 0:
            self.idle_since = self.env.now
        self.request_finished()
        self.finished_count += 1
        if self.finished_count == self.config.requests:
            assert self.done is not None
            self.done.succeed()
