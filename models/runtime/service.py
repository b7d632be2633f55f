"""Poisson-fed services: the request loop every service model kind shares.

A :class:`PoissonService` draws exponential inter-arrival times
(``arrival_rate``), builds each request's steps (:meth:`PoissonService.steps`,
the model kind's own) and hands them to its runtime; the first ``warmup``
fraction of the ``requests`` are served but not measured (every metric is reset
when the first measured request arrives), and the run ends when all are done.
Metrics: ``requests.sojourn_s`` (histogram of latency), ``requests.completed``.
The scenario's ``handler`` gives ``cpu``, ``alloc`` and an optional ``backend``
call (a :class:`~models.runtime.protocol.Wait` that holds no CPU).

The scenario's ``machine`` (:class:`MachineConfig`) adds what the machine under
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
  this many cores, placed by Linux (:mod:`models.runtime.gocores`), instead of
  one free core each;
* ``load_cpu``: the load generator runs on those cores too: a line of its CPU
  per second against its request rate (``machine.load_cpu_vs_rate``) gives
  its CPU per request at the service's rate (slope + intercept / rate), half
  spent when it sends a request and half when it reads the response.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sim.core import Environment, Model
from sim.dists import Exponential
from sim.params import Binned, available, load_params, param_as_dist, param_binned, param_linear
from sim.scenario import ScenarioBase
from models.runtime.gocores import Cores
from models.runtime.protocol import Runtime, Wait


class MachineConfig(BaseModel):
    """The machine under the runtime: calibrated parameter sets for its work stretch, its wake-up from idle and
    the load generator's CPU, and the cores its threads are placed on (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    stretch: str | None = Field(
        None, description="parameter set (a distribution) multiplying each request's CPU, e.g. machine.work_stretch"
    )
    wake: str | None = Field(
        None, description="parameter set (binned by idle time) of the delay of a request to an idle service, "
        "e.g. machine.go_wake_s_vs_idle"
    )
    cores: int | None = Field(
        None, ge=1, description="cores the runtime's threads are placed on by Linux (go.service, detailed); "
        "null: a free core per thread"
    )
    load_cpu: str | None = Field(
        None, description="parameter set (a line: cores against requests/s) of the load generator's CPU on those "
        "cores, e.g. machine.load_cpu_vs_rate"
    )

    @model_validator(mode="after")
    def _load_needs_cores(self) -> MachineConfig:
        if self.load_cpu is not None and self.cores is None:
            raise ValueError("load_cpu: the load generator's CPU needs cores (the cores it shares)")
        return self

    @field_validator("stretch", "wake", "load_cpu")
    @classmethod
    def _known(cls, name: str | None, info: Any) -> str | None:
        if name is None:
            return None
        if name not in available():
            raise ValueError(f"no calibrated parameter set {name!r} (machine.* sets: "
                             f"{', '.join(n for n in available() if n.startswith('machine.')) or 'none'})")
        kind = load_params(name).get("kind")
        wanted = {"wake": ("binned",), "load_cpu": ("linear",)}.get(info.field_name, ("distribution", "constant"))
        if kind not in wanted:
            raise ValueError(f"parameter set {name!r} is a {kind!r}, {info.field_name} needs a {' or '.join(wanted)}")
        return name


def machine_field() -> Any:
    """The ``machine`` field of a Poisson service's scenario (none of the machine's effects by default)."""
    return Field(default_factory=MachineConfig, description="the machine's work stretch, wake-up from idle, "
                 "cores and load generator")


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
        :class:`MachineConfig`), the runtime serves, it reads the response (the other half); the latency
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
            self.done.succeed()
