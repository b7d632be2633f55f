"""Model kind ``cpubound.compare``: one CPU-bound job stream on Go goroutines and on Node worker threads.

The seed-style benchmark: the same jobs (same arrival times, same CPU costs,
one random stream) are served in one run by two systems, each on its own
machine of ``cores`` cores:

* **Go** — :class:`~models.runtime.go.detailed.runtime.GoRuntime` with ``go.gomaxprocs`` Ps; each
  job is a goroutine (readied by the netpoller, as a request), at most
  ``go.goroutines`` of them alive at once (a bounded group, as ``errgroup``'s
  ``SetLimit``): a job arriving when the limit is reached waits FIFO for one to
  end. Goroutines are multiplexed on the Ps by the Go scheduler; each holds a
  stack of a few KiB (``go.goroutine.stack_bytes``) and allocates on one shared
  heap collected by Go's GC.
* **Node** — the event loop (:class:`~models.runtime.node.loop.NodeRuntime`) receives
  each job and posts it to a pool of ``node.workers`` worker threads
  (:class:`~models.runtime.node.workers.WorkerPool`), copying the job's input
  there and its output back (structured clone); every thread is an OS thread,
  and the loop and workers share ``node.cores`` cores in processor sharing (the
  kernel's time slicing). Each worker is an isolate of several MiB that takes
  milliseconds to start (at time 0, on the shared cores, unless
  ``node.warm_pool``), with a V8 heap of its own.

``arrival_rate``: Poisson arrivals; null: every job arrives at time 0 (a batch:
the literal "start N jobs and wait for all"). Each job is ``job.cpu`` seconds of
CPU allocating ``job.alloc`` bytes with ``job.input_bytes`` in and
``job.output_bytes`` out.

Metrics, for R in ``go`` and ``node``: ``R.jobs.sojourn_s`` (histogram, arrival
to completion), ``R.jobs.completed`` (counter), ``R.jobs.throughput_per_second``
(one observation per run: measured jobs over the time from the first measured
arrival to the last completion), ``R.memory_in_use_bytes`` (gauge: Go process, heap and
stacks, from :mod:`models.runtime.go.detailed.runtime`; Node process, isolates and heaps), plus
each runtime's own (``go.*``, ``go.gc.*``, ``node.*``, ``node.workers.*``,
``node.cores.runnable``), and ``node.workers.ready_s`` (one observation: when the
last worker became ready, from time 0). Context switches come out of each model's threads:
``go.context_switches`` (the Ms parking and woken as Ps go idle and get work, sysmon's rounds) with
``go.goroutine_switches`` (user-space, on the Ps), against ``node.cores.context_switches`` (the loop's and
the workers' threads blocking and woken, and the kernel's time slices while more of them are runnable
than there are cores); their rates are per simulated second. In Poisson mode the first ``warmup`` fraction of jobs
are not measured; in a batch every job is.

Memory on both sides starts from an idle process's measured resident set
(``go.process.rss_bytes``, ``node.process.rss_bytes``), which already holds the
runtime's first heap, so a few hundred KiB (Go) to a few MiB (Node) of heap are
counted twice. Simplifications: the Go and Node sides do
not share cores; the CPU the Go scheduler and the kernel spend switching
threads is counted (above) but not charged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from pydantic import ConfigDict, Field, NonNegativeFloat

from sim.core import Environment, Model
from sim.dists import Constant, Exponential
from sim.params import param_value
from sim.scenario import DurationDist, MAX_COUNT, Rate, ScenarioBase, ScenarioPart, Size, SizeDist, calibrated
from models.services.go import spawn_field, stack_bytes_field
from models.runtime.go.detailed.runtime import GoRuntime
from models.runtime.go.gc import GCConfig
from models.runtime.node.loop import NodeRuntime
from models.runtime.node.workers import MESSAGE_PARAM, SharedCores, WorkerPool
from models.runtime.protocol import Compute, Wait
from models.runtime.node.gc import V8GCConfig, V8Heap
from models.runtime.node.startup import StartupConfig

GO_PROCESS_PARAM = "go.process.rss_bytes"
"""Calibrated resident set of an idle Go process (``calibration/harness/go/procstart``)."""


class JobConfig(ScenarioPart):
    model_config = ConfigDict(validate_default=True)

    cpu: DurationDist = Field(description="CPU seconds per job")
    alloc: SizeDist = Field(Constant(0.0), description="bytes allocated per job")
    input_bytes: Size = Field(0.0, ge=0, description="bytes passed to the job (copied to a Node worker)")
    output_bytes: Size = Field(0.0, ge=0, description="bytes of its result (copied back from a Node worker)")


class GoSide(ScenarioPart):
    gomaxprocs: int = Field(4, ge=1, le=MAX_COUNT, description="GOMAXPROCS (= the cores of the Go machine)")
    goroutines: int = Field(1000, ge=1, le=MAX_COUNT, description="goroutines alive at most; more jobs wait FIFO")
    gc: GCConfig = Field(default_factory=GCConfig)
    spawn: DurationDist | None = spawn_field()
    stack_bytes: Size | None = stack_bytes_field()
    process_bytes: Size | None = Field(
        None, ge=0, description=f"resident memory of the idle Go process; default {GO_PROCESS_PARAM}",
        json_schema_extra=calibrated(GO_PROCESS_PARAM),
    )


class NodeSide(ScenarioPart):
    workers: int = Field(10, ge=1, le=MAX_COUNT, description="worker threads in the pool")
    cores: int = Field(4, ge=1, le=MAX_COUNT, description="cores the loop and the workers share")
    gc: V8GCConfig = Field(default_factory=V8GCConfig)
    startup: StartupConfig = Field(default_factory=StartupConfig)
    message_cost: tuple[NonNegativeFloat, NonNegativeFloat] | None = Field(
        None, description=f"(intercept s, slope s per byte) of one message; default from {MESSAGE_PARAM}",
        json_schema_extra=calibrated(MESSAGE_PARAM, derived="intercept/2"),
    )
    warm_pool: bool = Field(False, description="true: the workers were started before time 0; false: they start at 0")


class CpuBoundScenario(ScenarioBase):
    """One job stream, served by Go goroutines and by Node worker threads."""

    jobs: int = Field(20_000, ge=1, description="jobs simulated (warm-up included in Poisson mode)")
    arrival_rate: Rate | None = Field(None, gt=0, description="Poisson jobs per second; null: all at time 0")
    job: JobConfig
    go: GoSide = Field(default_factory=GoSide)
    node: NodeSide = Field(default_factory=NodeSide)


class JobSink:
    """The measurement of one side: sojourn, completions, throughput over the measured window."""

    def __init__(self, env: Environment, name: str) -> None:
        self.env = env
        self.sojourn_s = env.metrics.histogram(f"{name}.jobs.sojourn_s")
        self.completed = env.metrics.counter(f"{name}.jobs.completed")
        self.throughput = env.metrics.histogram(f"{name}.jobs.throughput_per_second")
        self.measured = 0
        self.last = 0.0

    def finish(self, counted: bool, arrived: float) -> None:
        if counted:
            self.sojourn_s.record(self.env.now - arrived)
            self.completed.inc()
            self.measured += 1
            self.last = self.env.now

    def close(self, window_start: float) -> None:
        if self.measured and self.last > window_start:
            self.throughput.record(self.measured / (self.last - window_start))


class CpuBoundCompare(Model):
    """Model kind ``cpubound.compare`` (see the module docstring)."""

    config_class = CpuBoundScenario

    def __init__(self, env: Environment, config: CpuBoundScenario) -> None:
        super().__init__(env, config)
        go, node = config.go, config.node
        process_bytes = go.process_bytes if go.process_bytes is not None else param_value(GO_PROCESS_PARAM)
        self.go = GoRuntime(env, go.gomaxprocs, gc=go.gc, spawn=go.spawn, stack_bytes=go.stack_bytes, name="go",
                            process_bytes=process_bytes)
        self.go_waiting: deque[tuple[list[Any], Callable[[Any], None]]] = deque()
        self.go_alive = 0
        gc = node.gc.resolved()
        self.cores = SharedCores(env, node.cores, name="node.cores")
        self.loop_heap = V8Heap(env, gc, name="node.gc")
        self.node = NodeRuntime(env, heap=self.loop_heap, cores=self.cores)
        self.pool = WorkerPool(env, node.workers, self.cores, node.startup, node.message_cost, gc,
                               warm=node.warm_pool)
        self.process_bytes = node.startup.memory("process")
        self.node_memory = env.metrics.gauge("node.memory_in_use_bytes")
        self._node_memory_changed()
        job = config.job
        self.draw_cpu = job.cpu.sampler(env.rng("jobs.cpu"))
        self.draw_alloc = job.alloc.sampler(env.rng("jobs.alloc"))
        self.draw_interarrival = (
            Exponential(1 / config.arrival_rate).sampler(env.rng("jobs.arrivals")) if config.arrival_rate else None
        )
        self.sinks = {"go": JobSink(env, "go"), "node": JobSink(env, "node")}
        self.window_start = 0.0
        self.outstanding = 2 * config.jobs
        self.warmup_jobs = int(config.warmup * config.jobs) if self.draw_interarrival else 0
        self.done = env.event()
        env.process(self.generate())

    def run(self) -> None:
        super().run()
        for sink in self.sinks.values():
            sink.close(self.window_start)
        if self.pool.ready_at is not None:
            self.env.metrics.histogram("node.workers.ready_s").record(self.pool.ready_at)

    def generate(self):
        env = self.env
        for index in range(self.config.jobs):
            if index and self.draw_interarrival is not None:
                yield env.timeout(self.draw_interarrival())
            if index == self.warmup_jobs:
                env.metrics.reset()
                self.window_start = env.now
            cpu, alloc = self.draw_cpu(), self.draw_alloc()
            counted = index >= self.warmup_jobs
            self.submit_go(cpu, alloc, counted)
            self.submit_node(cpu, alloc, counted)

    # ------------------------------------------------------------ Go: a bounded group of goroutines
    def submit_go(self, cpu: float, alloc: float, counted: bool) -> None:
        steps = [Compute(cpu, alloc)]
        finish = self._finisher("go", counted, self.env.now)
        if self.go_alive < self.config.go.goroutines:
            self._start_goroutine(steps, finish)
        else:
            self.go_waiting.append((steps, finish))

    def _start_goroutine(self, steps: list[Any], finish: Callable[[Any], None]) -> None:
        self.go_alive += 1

        def ended(event: Any) -> None:
            self.go_alive -= 1
            finish(event)
            if self.go_waiting:
                self._start_goroutine(*self.go_waiting.popleft())

        self.go.execute(steps).callbacks.append(ended)

    # ------------------------------------------------------------ Node: the loop posts to the pool
    def submit_node(self, cpu: float, alloc: float, counted: bool) -> None:
        job, pool = self.config.job, self.pool
        finish = self._finisher("node", counted, self.env.now)
        steps = [
            Compute(pool.message_half_s(job.input_bytes)),
            Wait(lambda: pool.submit(cpu, alloc, job.input_bytes, job.output_bytes)),
            Compute(pool.message_half_s(job.output_bytes)),
        ]

        def ended(event: Any) -> None:
            self._node_memory_changed()
            finish(event)

        self.node.execute(steps).callbacks.append(ended)

    def _node_memory_changed(self) -> None:
        pool = self.pool
        self.node_memory.set(
            self.process_bytes + self.loop_heap.in_use + pool.size * pool.memory_per_worker + pool.heap_bytes()
        )

    def _finisher(self, side: str, counted: bool, arrived: float) -> Callable[[Any], None]:
        sink = self.sinks[side]

        def finish(_event: Any) -> None:
            sink.finish(counted, arrived)
            self.outstanding -= 1
            if self.outstanding == 0:
                assert self.done is not None
                self.done.succeed()

        return finish
