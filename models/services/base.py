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
the runtime does, each from a calibrated parameter set named in the scenario
(none by default):

* ``stretch``: each request's handler CPU is multiplied by a draw of this
  distribution (``machine.work_stretch``: wall time of fixed work over its CPU
  time on this machine, :mod:`calibration.fitmachine`);
* ``wake``: a request that finds no other request in the service, which has
  then been idle for a time t, first waits a draw of this binned distribution
  at t (``machine.go_wake_s_vs_idle``: the extra round trip of a request to a
  server idle for t). The wait holds no CPU and does not hold the server;
* ``cores`` (``go.service``, detailed fidelity): the runtime's threads run on
  this many cores, placed by Linux (:mod:`models.machine.cores`), instead of
  one free core each;
* ``load_cpu``: the load generator runs on those cores too: a line of its CPU
  per second against its request rate (``machine.load_cpu_vs_rate``) gives
  its CPU per request at the service's rate (slope + intercept / rate), half
  spent when it sends a request and half when it reads the response.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from sim.core import Environment, Model
from sim.dists import Exponential
from sim.params import Binned, param_as_dist, param_binned, param_linear
from models.machine.config import MachineConfig
from models.machine.cores import Cores
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
        machine: MachineConfig = config.machine
        if machine.stretch is not None:
            handler_cpu, stretch = self.draw_cpu, param_as_dist(machine.stretch).sampler(env.rng("machine.stretch"))
            self.draw_cpu = lambda: handler_cpu() * stretch()
        self.wake: Binned | None = param_binned(machine.wake) if machine.wake is not None else None
        if self.wake is not None:
            wake_rng = env.rng("machine.wake")
            self.draw_wake = [dist.sampler(wake_rng) for dist in self.wake.distributions]
        self.load_cores: Cores | None = None
        self.load_cpu_s = 0.0
        if machine.load_cpu is not None:
            intercept, slope = param_linear(machine.load_cpu)
            self.load_cpu_s = max(slope + intercept / config.arrival_rate, 0.0)
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
        if self.wake is not None and self.in_flight == 0:
            delay = self.draw_wake[self.wake.index(self.env.now - self.idle_since)]()
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
