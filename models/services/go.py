"""Model kind ``go.service``: an HTTP service running on Go, fed by Poisson requests.

Each request is a goroutine readied by the netpoller (the connection's
goroutine woken by the request's bytes) that runs the handler: the calibrated
cost of its codec (``handler.codec``: ``go.json`` decodes the request and
encodes the response with ``encoding/json``, CPU and bytes from
``calibration/params/go.json.*``) plus ``handler.cpu`` seconds of CPU
allocating ``handler.alloc`` bytes (and the CPU of allocating them, by object size
and kind, :mod:`models.runtime.go.alloc`, unless ``handler.alloc_cpu`` is false),
optionally after a
``handler.backend`` call (a :class:`~models.runtime.protocol.Wait` that holds no
CPU), and optionally fanning out to ``handler.fanout`` goroutines that share the CPU
and allocation and are joined with a WaitGroup (detailed fidelity only). The
runtime is :class:`~models.runtime.go.detailed.runtime.GoRuntime` (``fidelity: detailed``) or
:class:`~models.runtime.go.fast.runtime.FastGoRuntime` (``fidelity: fast``).

The run ends when all ``requests`` have completed; the first ``warmup``
fraction of them are served but not measured (every metric is reset when the
first measured request arrives). Metrics: ``requests.sojourn_s`` (histogram of
latency), ``requests.completed``, and the runtime's (``go.*``, ``go.gc.*``).

Nothing here has a default of its own for the runtime: the handler's CPU and
allocation are the scenario's to give; the collector's pauses and mark costs, the CPU of allocating,
the goroutine creation cost and the lateness of timed sleeps come from
calibration (see :mod:`models.runtime.go.gc`, :mod:`models.runtime.go.detailed.runtime` and
:mod:`models.runtime.go.detailed.sysmon`) unless given.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from sim.core import Environment
from sim.dists import Constant
from sim.params import param_value
from sim.scenario import (DurationDist, MAX_COUNT, Rate, ScenarioBase, ScenarioPart, Size, SizeDist,
                          calibrated_field)
from models.runtime.go.constants import SPAWN_PARAM, STACK_MIN_BYTES, STACK_PARAM, WAKEUP_LATE_PARAM
from models.runtime.go.fast.runtime import FastGoRuntime
from models.runtime.go.detailed.runtime import GoRuntime
from models.runtime.go.steps import fan_out
from models.machine.cores import calibrated_cores
from models.runtime.go.gc import GCConfig
from models.runtime.protocol import Compute
from models.machine.config import MachineConfig, machine_field
from models.services.base import PoissonService


def spawn_field() -> Any:
    """The ``spawn`` field of a Go runtime's settings: the CPU of a ``go`` statement (calibrated by default)."""
    return calibrated_field("CPU to create a goroutine", SPAWN_PARAM)


def stack_bytes_field() -> Any:
    """The ``stack_bytes`` field of a Go runtime's settings: each live goroutine's stack (calibrated by default;
    at least Go's smallest stack)."""
    return calibrated_field("stack per goroutine", STACK_PARAM, ge=STACK_MIN_BYTES)


CODECS = {"go.json": ("go.json.unmarshal", "go.json.marshal")}
"""Calibrated codecs: a request is decoded (first set) and its response encoded (second), each with
CPU ``<set>_s`` and allocation ``<set>_alloc_bytes`` (calibration/params, ``encoding/json`` on an
8 KiB object)."""


class HandlerConfig(ScenarioPart):
    """What one request costs: a calibrated codec, the handler's own CPU and allocation, an optional
    backend call and fan-out."""

    model_config = ConfigDict(validate_default=True)

    codec: Literal["go.json"] | None = Field(
        None, description="decode the request and encode the response with this calibrated codec"
    )
    cpu: DurationDist = Field(Constant(0.0), description="CPU seconds per request besides the codec")
    alloc: SizeDist = Field(Constant(0.0), description="bytes allocated per request besides the codec")
    alloc_cpu: bool = Field(
        True, description="add the calibrated CPU of allocating handler.alloc (mallocgc: size classes, zeroing, "
        "sweeping; objects as gc.alloc_object and gc.alloc_kind) to the handler's CPU; false when handler.cpu "
        "already includes it")
    backend: DurationDist | None = Field(
        None, description="duration of a downstream call made before the CPU work, seconds")
    fanout: int = Field(
        0, ge=0, le=MAX_COUNT, description="goroutines the handler fans out to (CPU and alloc split evenly)")

    def codec_costs(self) -> tuple[float, float]:
        """(CPU seconds, bytes allocated) of the codec per request; zeros without a codec."""
        if self.codec is None:
            return 0.0, 0.0
        names = CODECS[self.codec]
        return (
            sum(param_value(f"{name}_s") for name in names),
            sum(param_value(f"{name}_alloc_bytes") for name in names),
        )

    @property
    def mean_cpu_s(self) -> float:
        return self.cpu.mean + self.codec_costs()[0]

    @property
    def mean_alloc_bytes(self) -> float:
        return self.alloc.mean + self.codec_costs()[1]


class GoServiceScenario(ScenarioBase):
    """A Go HTTP service: handler costs, Poisson load, GOMAXPROCS, GOGC and the rest."""

    fidelity: Literal["detailed", "fast"] = Field(
        "detailed", description="every goroutine on the G/M/P scheduler, or GOMAXPROCS servers with its queues")
    arrival_rate: Rate = Field(gt=0, description="Poisson requests per second")
    requests: int = Field(20_000, ge=1, description="requests simulated, warm-up included")
    gomaxprocs: int = Field(ge=1, le=MAX_COUNT, description="GOMAXPROCS")
    quota_cores: float | None = Field(None, gt=0, description="container CPU quota in cores (CFS); null: none")
    handler: HandlerConfig
    gc: GCConfig = Field(default_factory=GCConfig)
    spawn: DurationDist | None = spawn_field()
    stack_bytes: Size | None = stack_bytes_field()
    wakeup_late: DurationDist | None = calibrated_field("how late a timed sleep (timers, sysmon) ends",
                                                        WAKEUP_LATE_PARAM)
    machine: MachineConfig = machine_field()

    @model_validator(mode="after")
    def _check(self) -> GoServiceScenario:
        if self.fidelity == "fast":
            detailed_only = {"handler.fanout": self.handler.fanout or None, "quota_cores": self.quota_cores,
                             "machine.wake": self.machine.wake, "machine.cores": self.machine.cores}
            used = [name for name, value in detailed_only.items() if value is not None]
            if used:
                raise ValueError(f"fidelity fast: {', '.join(used)} need fidelity detailed")
        if self.quota_cores is not None and self.machine.cores is not None:
            raise ValueError("quota_cores and machine.cores together are not modelled")
        return self

    @property
    def offered_load(self) -> float:
        """The handler's CPU demand per second over the cores the Ps can use (GOMAXPROCS, fewer with a CPU
        quota or placed cores), before the collector and the machine's work stretch: a lower bound."""
        cores = min(c for c in (self.gomaxprocs, self.quota_cores, self.machine.cores) if c is not None)
        return self.arrival_rate * (self.handler.mean_cpu_s + self.alloc_cpu_s(self.handler.alloc.mean)) / cores

    def alloc_cpu_s(self, nbytes: float) -> float:
        """CPU of allocating ``nbytes`` of the handler's objects (0 when ``handler.alloc_cpu`` is false)."""
        return self.gc.allocation_shape().cpu_s(nbytes) if self.handler.alloc_cpu and nbytes > 0 else 0.0


def build_runtime(env: Environment, config: GoServiceScenario) -> GoRuntime | FastGoRuntime:
    if config.fidelity == "fast":
        return FastGoRuntime(env, config.gomaxprocs, config.gc, config.stack_bytes)
    cores = calibrated_cores(env, config.machine.cores) if config.machine.cores is not None else None
    return GoRuntime(
        env, config.gomaxprocs, config.gc, config.quota_cores, config.spawn, config.stack_bytes,
        wakeup_late=config.wakeup_late, cores=cores,
    )


class GoServiceModel(PoissonService):
    """Model kind ``go.service`` (see the module docstring)."""

    config_class = GoServiceScenario

    def __init__(self, env: Environment, config: GoServiceScenario) -> None:
        super().__init__(env, config)
        self.runtime = build_runtime(env, config)
        if config.machine.load_cpu is not None and isinstance(self.runtime, GoRuntime):
            self.load_cores = self.runtime.cores  # the load generator shares the cores the Ps' threads are on
        self.codec_cpu_s, self.codec_alloc_bytes = config.handler.codec_costs()
        self.alloc_shape = config.gc.allocation_shape() if config.handler.alloc_cpu else None
        if isinstance(self.runtime, FastGoRuntime):
            self._index = 0
            self._next_arrival = env.now
            self.runtime.serve(self)
        else:
            self.start()

    def steps(self) -> list[Any]:
        handler = self.config.handler
        own_alloc = self.draw_alloc()
        cpu = self.draw_cpu() + self.codec_cpu_s
        if self.alloc_shape is not None and own_alloc > 0:
            cpu += self.alloc_shape.cpu_s(own_alloc)
        alloc = own_alloc + self.codec_alloc_bytes
        if handler.fanout:
            share = Compute(cpu / handler.fanout, alloc / handler.fanout)
            body: list[Any] = fan_out([[share] for _ in range(handler.fanout)])
        else:
            body = [Compute(cpu, alloc)]
        return self.backend_steps() + body

    def wait_steps(self, delay: float) -> list[Any]:
        """The goroutine runs (reads the request) before it waits."""
        return [Compute(0.0, 0.0), *super().wait_steps(delay)]

    # The fast runtime pulls requests (models.runtime.go.fast.runtime.Feed) instead: no SimPy event per arrival.
    def next_request(self) -> tuple[float, list[Any], int] | None:
        """The next request for the fast runtime: the same draws, in the same order, as :meth:`generate`."""
        index = self._index
        if index == self.config.requests:
            return None
        if index:
            self._next_arrival += self.draw_interarrival()
        self._index += 1
        return self._next_arrival, self.steps(), index

    def arrived(self, index: int) -> None:
        if index == self.warmup_requests:
            self.env.metrics.reset()

    def finished(self, index: int, latency_s: float) -> None:
        self.record_finished(index >= self.warmup_requests, latency_s)
