"""Model kinds ``node.service`` and ``native.service``: an HTTP service fed by Poisson requests.

``node.service`` runs on :class:`~models.runtime.node.loop.NodeRuntime`. Each
request's handler costs ``handler.cpu`` seconds of CPU allocating
``handler.alloc`` bytes, optionally after a ``handler.backend`` call (a
:class:`~models.runtime.protocol.Wait`). The allocation is ``handler.alloc /
handler.alloc_object`` objects of ``handler.alloc_object`` bytes each, of the
shape the validation server allocates (an array of 8-byte elements and a
link; :mod:`models.runtime.node.alloc`): allocating them costs the thread that
runs the handler (the loop or a worker) their calibrated CPU
(``node.alloc.cpu_s_vs_size``; left out with ``handler.alloc_cpu: false``,
when ``handler.cpu`` already includes it), and the heap receives their
calibrated size in V8's heap, headers included
(``node.alloc.heap_bytes_vs_size``; ``handler.alloc`` bytes as given with
``handler.alloc_heap: false``). With ``workers: 0`` the handler runs on
the event loop (one callback, run to completion: M/G/1 when CPU-bound); with
``workers: N`` the loop posts it to a pool of N ``worker_threads``
(:class:`~models.runtime.node.workers.WorkerPool`: M/G/N when the copies are
free), paying half of the copy of the ``request_bytes`` message before and half
of the ``response_bytes`` reply after (the workers pay the other halves). The
loop and the workers run on ``cores`` shared cores (processor sharing when more
threads are runnable than cores), or each on a core of its own when ``cores`` is
null. The loop's isolate and each worker's have a V8 heap (``gc``,
:class:`~models.runtime.node.gc.V8Heap`) whose pauses block their thread. ``reuse``
sets what each request pays before its handler, on the thread that runs it
(:meth:`~models.runtime.node.startup.V8Startup.invocation_steps`): ``context`` nothing
(the usual service), ``isolate`` a fresh context and the script ("warm isolate,
fresh context", as a multi-tenant runtime would), ``none`` a fresh isolate.

``native.service`` runs the same handler on
:class:`~models.runtime.native.NativeRuntime`: ``threads`` worker threads, one per
core, no collector, copying ``request_bytes + response_bytes`` per request at
``copy_cost_per_byte_s``.

The run ends when all ``requests`` have completed; the first ``warmup`` fraction
are served but not measured (every metric is reset when the first measured
request arrives). Metrics: ``requests.sojourn_s`` (histogram), ``requests.completed``
(counter), and the runtime's: ``node.*`` (loop), ``node.gc.*`` (the loop's heap),
``node.workers.*`` (pool, its heaps under ``node.workers.gc.*``), ``cores.runnable``,
and ``node.memory_in_use_bytes`` (gauge: the process's resident set,
``node.process.rss_bytes``, plus the workers' isolates, ``node.worker.memory_bytes``
each, plus what every heap holds, updated as requests finish; the measured
resident sets include the initial heaps, which are thus counted twice, a few MiB);
or ``native.*``. ``handler.alloc`` is ignored by ``native.service`` (no collector).

Defaults not given in a scenario come from calibration: worker start-up and
memory, message copy cost, process memory, the collector's pause lines (see
:mod:`models.runtime.node.gc`, :mod:`models.runtime.node.startup` and :mod:`models.runtime.node.workers`).
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, NonNegativeFloat, field_validator

from sim.core import Environment
from sim.dists import Constant
from sim.scenario import DurationDist, MAX_COUNT, Rate, ScenarioBase, ScenarioPart, Size, SizeDist, calibrated
from models.runtime.native import NativeRuntime
from models.runtime.node.alloc import VALSERVER_CHUNK_BYTES, AllocationShape
from models.runtime.node.loop import UV_THREADPOOL_SIZE, NodeRuntime
from models.runtime.node.workers import MESSAGE_PARAM, SharedCores, WorkerPool
from models.runtime.protocol import Compute, Wait
from models.machine.config import MachineConfig, machine_field
from models.services.base import PoissonService
from models.runtime.node.gc import V8GCConfig, V8Heap
from models.runtime.node.startup import ReusePolicy, StartupConfig, V8Startup


class ServiceHandler(ScenarioPart):
    """What one request costs: CPU, allocation, an optional backend call, and message sizes."""

    model_config = ConfigDict(validate_default=True)

    cpu: DurationDist = Field(description="CPU seconds per request")
    alloc: SizeDist = Field(Constant(0.0), description="bytes allocated per request")
    backend: DurationDist | None = Field(
        None, description="duration of a downstream call made before the CPU work, seconds")
    request_bytes: Size = Field(0.0, ge=0, description="size of the request passed to a worker (copied)")
    response_bytes: Size = Field(0.0, ge=0, description="size of the reply passed back (copied)")


class NodeHandler(ServiceHandler):
    """A Node.js handler: its allocation cut into objects, and what allocating them costs."""

    alloc_object: Size = Field(
        VALSERVER_CHUNK_BYTES, gt=0, description="bytes per object allocated (the validation server's "
        "--alloc-chunk shape: an array of 8-byte elements and a link); default valserver.js's --alloc-chunk")
    alloc_cpu: bool = Field(
        True, description="add the calibrated CPU of allocating handler.alloc in handler.alloc_object objects "
        "(node.alloc.cpu_s_vs_size) to the handler's CPU; false when handler.cpu already includes it")
    alloc_heap: bool = Field(
        True, description="the heap receives the objects' calibrated V8 size, headers included "
        "(node.alloc.heap_bytes_vs_size); false: handler.alloc bytes as given")

    def allocation_shape(self) -> AllocationShape | None:
        """The calibrated shape of the allocation, or None when neither its CPU nor its heap size is used."""
        if not (self.alloc_cpu or self.alloc_heap):
            return None
        return AllocationShape.calibrated(self.alloc_object, cpu=self.alloc_cpu, heap=self.alloc_heap)


class PoissonServiceScenario(ScenarioBase):
    arrival_rate: Rate = Field(gt=0, description="Poisson requests per second")
    requests: int = Field(20_000, ge=1, description="requests simulated, warm-up included")
    handler: ServiceHandler
    machine: MachineConfig = machine_field()

    @field_validator("machine")
    @classmethod
    def _no_placed_cores(cls, machine: MachineConfig) -> MachineConfig:
        if machine.cores is not None:
            raise ValueError("cores: threads placed on cores by Linux are modelled for go.service only "
                             f"(got {machine.cores})")
        return machine


class NodeServiceScenario(PoissonServiceScenario):
    """A Node.js service: the loop, optional worker threads, cores, V8 heaps and start-up."""

    handler: NodeHandler

    workers: int = Field(
        0, ge=0, le=MAX_COUNT, description="worker threads the loop posts the handler to; 0: run on the loop")
    cores: int | None = Field(None, ge=1, le=MAX_COUNT, description="cores the threads share; null: a core per thread")
    threadpool_size: int = Field(UV_THREADPOOL_SIZE, ge=1, le=MAX_COUNT, description="UV_THREADPOOL_SIZE")
    gc: V8GCConfig = Field(default_factory=V8GCConfig)
    startup: StartupConfig = Field(default_factory=StartupConfig)
    message_cost: tuple[NonNegativeFloat, NonNegativeFloat] | None = Field(
        None, description=f"(intercept s, slope s per byte) of one message; default from {MESSAGE_PARAM}",
        json_schema_extra=calibrated(MESSAGE_PARAM, derived="intercept/2"),
    )
    reuse: ReusePolicy = Field(
        "context", description="per request: context (all warm), isolate (a fresh context), none (a fresh isolate)"
    )

    @property
    def offered_load(self) -> float:
        """The handler's CPU demand per second (its own and, with ``handler.alloc_cpu``, its allocation's) over
        the threads that run it (the loop alone, or the workers on at most ``cores``), before start-up,
        messages, the collector and the work stretch: a lower bound."""
        threads = self.workers or 1
        alloc_s = 0.0
        if self.handler.alloc_cpu and self.handler.alloc.mean > 0:
            alloc_s = AllocationShape.calibrated(self.handler.alloc_object, heap=False).cpu_s(self.handler.alloc.mean)
        return self.arrival_rate * (self.handler.cpu.mean + alloc_s) / min(threads, self.cores or threads)


class NativeServiceScenario(PoissonServiceScenario):
    """A native service: a thread per core, no collector."""

    threads: int = Field(ge=1, le=MAX_COUNT, description="worker threads (one per core)")
    copy_cost_per_byte_s: float = Field(0.0, ge=0, description="CPU seconds per byte of request and response copied")

    @property
    def offered_load(self) -> float:
        """CPU demand per second (the handler's and the copies') over the threads, before the work stretch."""
        copies_s = self.copy_cost_per_byte_s * (self.handler.request_bytes + self.handler.response_bytes)
        return self.arrival_rate * (self.handler.cpu.mean + copies_s) / self.threads


class NodeServiceModel(PoissonService):
    """Model kind ``node.service`` (see the module docstring)."""

    config_class = NodeServiceScenario

    def __init__(self, env: Environment, config: NodeServiceScenario) -> None:
        super().__init__(env, config)
        self.cores = SharedCores(env, config.cores) if config.cores is not None else None
        gc = config.gc.resolved()
        self.heap = V8Heap(env, gc, name="node.gc")
        self.runtime = NodeRuntime(env, threadpool_size=config.threadpool_size, heap=self.heap, cores=self.cores)
        self.pool = (
            WorkerPool(env, config.workers, self.cores, config.startup, config.message_cost, gc)
            if config.workers else None
        )
        self.startup = V8Startup(env, config.startup)
        handler = config.handler
        self.alloc_shape = handler.allocation_shape() if handler.alloc.mean > 0 else None
        self.process_bytes = config.startup.memory("process")
        self.memory_bytes = env.metrics.gauge("node.memory_in_use_bytes")
        self.request_finished()
        self.start()

    def steps(self) -> list[Any]:
        cpu, alloc = self.draw_cpu(), self.draw_alloc()
        if self.alloc_shape is not None and alloc > 0:
            cpu += self.alloc_shape.cpu_s(alloc)
            alloc = self.alloc_shape.heap_bytes(alloc)
        setup = self.startup.invocation_steps(self.config.reuse)
        pool = self.pool
        if pool is None:
            return self.backend_steps() + setup + [Compute(cpu, alloc)]
        cpu += sum(step.cpu_s for step in setup)
        handler = self.config.handler
        post = lambda: pool.submit(cpu, alloc, handler.request_bytes, handler.response_bytes)  # noqa: E731
        return self.backend_steps() + [
            Compute(pool.message_half_s(handler.request_bytes)),
            Wait(post),
            Compute(pool.message_half_s(handler.response_bytes)),
        ]

    def request_finished(self) -> None:
        memory = self.process_bytes + self.heap.in_use
        if self.pool is not None:
            memory += self.pool.size * self.pool.memory_per_worker + self.pool.heap_bytes()
        self.memory_bytes.set(memory)


class NativeServiceModel(PoissonService):
    """Model kind ``native.service`` (see the module docstring)."""

    config_class = NativeServiceScenario

    def __init__(self, env: Environment, config: NativeServiceScenario) -> None:
        super().__init__(env, config)
        self.runtime = NativeRuntime(env, config.threads, config.copy_cost_per_byte_s)
        handler = config.handler
        self.copied_bytes = handler.request_bytes + handler.response_bytes
        self.start()

    def steps(self) -> list[Any]:
        return self.backend_steps() + [Compute(self.draw_cpu(), self.copied_bytes)]
