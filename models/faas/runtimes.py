"""The runtime models of one function's instances, with ``handler``: a request runs on its instance's runtime.

Each ready instance has a runtime model of its own (:func:`models.runtime.build.build_runtime`: Go at the fast
fidelity with its collector, or Node.js's event loop), from the end of its cold start until it is unloaded, so a
warm request finds the runtime as the requests before it left it (its heap, its collector's pacing). A request is
one :class:`~models.runtime.protocol.Compute` of the handler's CPU and allocation (:func:`~models.runtime.build.
compute_draw`, stream ``faas.NAME.handler``; in a ``gvisor`` sandbox with gVisor's cost of its ``syscalls_per_request``
system calls added, as CPU); concurrent requests on one instance (``concurrency`` > 1) queue for
its Ps or its event loop.

**The CPU the memory buys.** AWS Lambda gives a function memory / 1,769 MB of a vCPU ("At 1,769 MB, a function has
the equivalent of one vCPU", https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html), its duration
falling in proportion as memory grows (the Lambda operator guide's example,
https://docs.aws.amazon.com/lambda/latest/operatorguide/computing-power.html). A fractional vCPU is a bandwidth
limit, a share of each period; how long Lambda's period is, is not published. The project's quota model, the
detailed Go runtime's :class:`~models.runtime.go.detailed.quota.CFSQuota`, uses the kernel's default 100 ms
period, in which a request shorter than its share of the period runs at full speed; measurements on Lambda show
short requests slowed in proportion too (4 ms of CPU taking 38 ms at 192 MB, 10.8 % of a vCPU, and 29 ms at 256 MB:
https://stackoverflow.com/questions/66522916, answer of March 2021), and that quota is the detailed Go runtime's
alone. So the share is taken as a fluid one, the limit of a short period: the CPU of each request is stretched by
1 / min(1, share / threads) (:attr:`~models.faas.config.FunctionConfig.cpu_stretch`), threads being the runtime's
threads running CPU (Go's GOMAXPROCS Ps, Node's one loop). It is exact for one thread, and for GOMAXPROCS Ps all busy;
with some Ps idle, the busy ones would run faster than this lets them (only above 1,769 MB with a fractional
vCPU, GOMAXPROCS ceil(share) by default). Left at a full vCPU's speed: the collector's own work (its pauses, its
mark workers) and the cold start's stages (measured as they are).

**Names.** An instance's runtime is named ``instance.NAME-K.KIND`` (its metrics, e.g.
``instance.NAME-K.go.gc.cycles``, and its random streams): K is a slot, the smallest free one when its cold start
ends, freed when it is unloaded, so names stay as many as the instances alive at once (at most ``max_instances``)
however many start over a run. An unloaded instance's runtime is dropped (an idle runtime has no event pending: its
Ps or loop wait for work, so nothing of it stays alive), its slot's gauges go to 0 and its streams are handed to
the next runtime in the slot (:meth:`sim.rng.Streams.release`), which goes on drawing where it stopped, and whose
gauges start at the levels the slot's first runtime started at (a runtime of the function's settings starts the
same: its heap goal, its live heap), as its own new gauges would.
"""

from __future__ import annotations

import heapq

import simpy

from sim.core import Environment
from sim.stats import Gauge, Histogram
from models.faas.config import FunctionConfig, HandlerConfig
from models.runtime.build import build_runtime, compute_draw
from models.runtime.go.gc import GCConfig
from models.runtime.protocol import Compute, Runtime


class InstanceRuntimes:
    """The runtimes of the instances of function ``name`` (see the module docstring); ``cpu`` receives each
    request's CPU in seconds of a full vCPU."""

    def __init__(self, env: Environment, name: str, config: FunctionConfig, handler: HandlerConfig,
                 cpu: list[Histogram]) -> None:
        self.env = env
        self.name = name
        self.config = config
        self.handler = handler
        self.stretch = config.cpu_stretch
        self.draw = compute_draw(env, handler.cpu, handler.alloc, handler.gc, f"faas.{name}.handler")
        self.gc = (handler.gc or GCConfig()).resolved(config.gomaxprocs) if config.runtime == "go" else None
        """The collector's settings with their calibrated defaults read once, not at every instance's start."""
        self.cpu = cpu
        self.syscalls_s = config.syscalls_per_request * config.cold_start.syscall_overhead_s()
        """gVisor's interception of the request's system calls (0 in other sandboxes): CPU added to its step."""
        self.free: list[int] = []  # heap of free slots below self.slots
        self.slots = 0
        self.gauges: dict[int, list[tuple[Gauge, float]]] = {}  # each slot's runtime gauges, found once, and
        # their levels when its first runtime was built (a new runtime's gauges start there: its own would)

    def prefix(self, slot: int) -> str:
        return f"instance.{self.name}-{slot}"

    def start(self) -> tuple[int, Runtime]:
        """A new runtime for an instance whose cold start ended: (its slot, the runtime)."""
        if self.free:
            slot = heapq.heappop(self.free)
        else:
            slot, self.slots = self.slots, self.slots + 1
        runtime = build_runtime(self.env, self.config.runtime, self.prefix(slot), gomaxprocs=self.config.gomaxprocs,
                                gc=self.gc)
        if slot not in self.gauges:
            under = runtime.name + "."
            self.gauges[slot] = [(gauge, gauge.level) for name, gauge in self.env.metrics.gauges.items()
                                 if name.startswith(under)]
        else:
            for gauge, level in self.gauges[slot]:
                gauge.set(level)
        return slot, runtime

    def stop(self, slot: int) -> None:
        """The instance in ``slot`` is unloaded: its gauges go to 0, its slot and streams are free."""
        for gauge, _ in self.gauges[slot]:
            gauge.set(0.0)
        self.env.streams.release(self.prefix(slot))
        heapq.heappush(self.free, slot)

    def run(self, runtime: Runtime) -> simpy.Event:
        """A request on ``runtime``; the event's value is its time there (the billed duration)."""
        step = self.draw()
        if self.syscalls_s:
            step = Compute(step.cpu_s + self.syscalls_s, step.alloc_bytes)
        for metric in self.cpu:
            metric.record(step.cpu_s)
        if self.stretch != 1.0:
            step = Compute(step.cpu_s * self.stretch, step.alloc_bytes)
        return runtime.execute([step])
