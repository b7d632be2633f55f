"""The Go garbage collector: a heap that grows with allocations, a pacer, mark and two pauses.

Mechanism (Go 1.21+; sources below):

* **Heap goal.** After a cycle, ``goal = marked + (marked + roots) * GOGC / 100``
  (the GC guide's "Target heap memory = Live heap + (Live heap + GC roots) *
  GOGC / 100"; roots are goroutine stacks), at least ``4 MiB * GOGC / 100``
  (``defaultHeapMinimum``), and with a memory limit at most
  ``limit - non-heap memory`` less a headroom of max(3 %, 1 MiB)
  (``memoryLimitHeapGoal``, ``memoryLimitHeapGoalHeadroomPercent = 3``), never
  below the marked heap. ``GOGC=off`` (``gogc: null``) leaves only the limit.
* **Trigger.** ``trigger = goal - runway``, where the runway is what the
  mutator is expected to allocate during a mark at 25 % CPU:
  ``consMark * (1 - 0.25) / 0.25 * last scan work``, ``consMark`` the
  maximum of the last cycle's cons/mark ratio and the 4 before it
  (``allocated during mark * (u + u_idle) / (scan work * (1 - u))``, u the
  background workers' 25 %, taken as met, plus the assists' measured share of
  the CPU, u_idle the idle workers'; ``endCycle``); clamped to
  [0.7, 0.95] of the way from the marked heap to the goal
  (``minTriggerRatioNum = 45`` and ``maxTriggerRatioNum = 61`` of
  ``triggerRatioDen = 64``); at the goal when the goal is no more than the
  marked heap. All in ``runtime/mgcpacer.go``. So at ``GOGC=0`` (goal = marked
  heap, the heap minimum 4 MiB x 0 = 0) or with a memory limit below the live
  heap, the first allocation after a cycle starts the next: the collector runs
  back to back, each cycle its two pauses and its mark, and the goroutines run
  between them. The history at the start of a run is that of a process that
  allocated its live heap at start-up (``history: built``,
  :meth:`GoGC._built_history`): with none, the first cycle would trigger at
  95 % of the way to its goal and meet assists several times steeper than the
  runtime's after its start-up.
* **A cycle.** When an allocation takes the live heap to the trigger or past it
  (``gcTrigger.test`` in ``mallocgc``; only an allocation starts a cycle):
  stop-the-world *sweep termination*; concurrent *mark* of the scan work
  (heap reachable at the start plus the stacks) by 25 % of the Ps as dedicated
  workers, fractional when 25 % of GOMAXPROCS is not close to a whole number
  (``gcBackgroundUtilization``, ``maxUtilError = 0.3`` in ``startCycle``), plus
  idle Ps as idle workers; stop-the-world *mark termination*. Objects allocated during mark are
  allocated black, so they count as marked (``gcmarknewobject``).
* **Assists.** A goroutine that allocates during mark owes
  ``bytes * assistWorkPerByte`` of scan work, ``assistWorkPerByte = remaining
  scan work / (goal - live heap)``; it first steals credit the background
  workers flushed (``bgScanCredit``), then does the rest itself, at least
  ``gcOverAssistWork = 64 KiB`` at a time (``gcAssistAlloc`` in
  ``runtime/mgcmark.go``). The time it spends is returned to the scheduler,
  which charges it to the goroutine.

* **Mark work.** The pacer, the assists and the background credit count
  scan work in bytes, as the runtime does (``scanobject``'s scan size: an
  object's bytes up to its last pointer word; stacks' used bytes), and
  ``gcOverAssistWork`` and the other thresholds are those bytes. Its CPU is
  counted by objects greyed and pointer words scanned: the long-lived heap is
  ``live_heap / live_object`` objects of ``live_pointers`` pointer words each,
  what requests keep reachable is counted with their allocation's shape
  (:mod:`models.runtime.go.alloc`), stacks as pointer words; each object costs
  ``mark_object_s`` and each pointer word ``mark_pointer_s`` of CPU. A byte of
  scan work then costs different CPU in different parts of the heap, met in
  order (roots first, then the long-lived heap as ``live_layout`` lays it
  out): :mod:`models.runtime.go.markwork`. With ``mark_rate`` given, every
  heap byte is a byte of scan work costing ``1 / mark_rate`` CPU-seconds, as
  before.

The collector does not know about Ps or goroutines: a *host* (the detailed
runtime's :class:`~models.runtime.go.detailed.gcwork.GCWorkers` or the fast
:class:`~models.runtime.go.fast.runtime.FastGoRuntime`) stops the world, runs the
workers and reports how many CPUs mark (:meth:`GoGC.set_mark_cpus`); the
collector keeps the clock of the seconds the world has been stopped
(:meth:`GoGC.stopped_s`), from which the hosts give a request whose caller
asks (:class:`~models.runtime.protocol.RequestTimes`) the pauses it sat
through, beside the assists it did. Both
fidelities keep the heap with :class:`Heap`, which owns the collector and
does the allocation bookkeeping. Sweeping is paid by allocation
(``deductSweepCredit``): its CPU is in the calibrated allocation cost the
service adds to each request (:mod:`models.runtime.go.alloc`), not here.
Neither the GC CPU limiter (50 % cap under a memory limit) nor the 2-minute
forced cycle is modelled.

Defaults from calibration (``sim.params``), loaded only when a field is left
``None``: ``go.gc.stw_sweep_termination`` and ``go.gc.stw_mark_termination``
(fitted distributions of the two pauses, seconds, measured at GOMAXPROCS 2),
and the mark costs per object and per pointer word, the coefficients of
``go.gc.mark_cpu_vs_objects`` (a plane of one cycle's mark CPU, from
``runtime/metrics``, against the live heap's objects and pointers, over heaps
of two shapes, 16-512 MiB, GOGC 50-400, GOMAXPROCS 1 and 2) times the plane's
bias at the run's GOMAXPROCS (``go.gc.mark_cpu_factor_vs_gomaxprocs``: one P's
marks cost about 9 % more than the plane, two Ps' about 1 %). The live heap's
shape defaults to the calibration harnesses' graph (64-byte objects, three
pointer words each).

Metrics under the component name ``NAME`` (``go.gc`` by default):
``NAME.cycles`` (counter: count and cycles/s), ``NAME.cpu_s`` (counter of GC
CPU-seconds: marking, assists and pauses times GOMAXPROCS; its rate divided by
GOMAXPROCS is the GC CPU fraction), split by class as ``runtime/metrics``
splits ``/cpu/classes/gc``: ``NAME.assist_cpu_s``, ``NAME.worker_cpu_s``
(dedicated and fractional workers), ``NAME.idle_cpu_s`` (idle workers) and
``NAME.pause_cpu_s`` (the pauses times GOMAXPROCS); ``NAME.cpu_fraction``
(time-weighted share of the Ps doing GC work),
``NAME.stw_sweep_termination_s`` and ``NAME.stw_mark_termination_s``
(histograms), ``NAME.heap_goal_bytes`` and ``NAME.heap_live_bytes`` (gauges).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

import simpy
from pydantic import Field

from sim.core import Environment
from sim.params import param_dist, param_multilinear, param_table
from sim.scenario import DurationDist, ScenarioPart, Size, calibrated, calibrated_field
from sim.timers import Timer

from models.runtime.go.alloc import WORD_BYTES, AllocationShape, AllocKind, default_object_bytes
from models.runtime.go.markwork import LiveLayout, MarkProfile, live_segments
from models.runtime.protocol import RequestTimes

BACKGROUND_UTILIZATION = 0.25
"""``gcBackgroundUtilization``: the share of GOMAXPROCS the dedicated mark workers take (mgcpacer.go)."""
MAX_UTIL_ERROR = 0.3
"""``maxUtilError`` in ``startCycle``: beyond this rounding error, use a fractional worker (mgcpacer.go)."""
HEAP_MINIMUM_BYTES = 4 * 2**20
"""``defaultHeapMinimum``: 4 MiB at GOGC=100, scaled by GOGC/100 (mgcpacer.go; GC guide)."""
TRIGGER_RATIO_DEN = 64
MIN_TRIGGER_RATIO_NUM = 45
MAX_TRIGGER_RATIO_NUM = 61
"""Trigger bounds, about 0.7 and 0.95 of the runway from the marked heap to the goal (mgcpacer.go)."""
CONS_MARK_HISTORY = 4
"""``len(lastConsMark)``: consMark is the maximum of the last 4 cycles' ratios (mgcpacer.go, Go 1.21)."""
OVER_ASSIST_BYTES = 64 * 2**10
"""``gcOverAssistWork``: an assist scans at least 64 KiB of work (mgcmark.go)."""
MIN_SCAN_WORK_REMAINING = 1000.0
"""``revise``: the assist ratio counts at least 1000 bytes of scan work left (mgcpacer.go)."""
MEMORY_LIMIT_HEADROOM_PERCENT = 3
MEMORY_LIMIT_MIN_HEADROOM_BYTES = 2**20
"""``memoryLimitHeapGoalHeadroomPercent`` and ``memoryLimitMinHeapGoalHeadroom`` (mgcpacer.go)."""

STW_SWEEP_PARAM = "go.gc.stw_sweep_termination"
STW_MARK_PARAM = "go.gc.stw_mark_termination"
MARK_COST_PARAM = "go.gc.mark_cpu_vs_objects"
MARK_FACTOR_PARAM = "go.gc.mark_cpu_factor_vs_gomaxprocs"
LIVE_OBJECT_BYTES = 64
LIVE_POINTERS_PER_OBJECT = 3
"""The default live heap's shape: the calibration harnesses' graph (``allocgc``, ``gcpause``, ``valserver``),
64-byte nodes holding two pointers, each also referenced from an index slice (a third pointer word)."""


def calibrated_mark_costs(procs: int | None = None) -> tuple[float, float]:
    """(CPU-seconds per object marked, per pointer word scanned) from ``go.gc.mark_cpu_vs_objects``, times
    ``go.gc.mark_cpu_factor_vs_gomaxprocs`` at GOMAXPROCS ``procs`` when given.

    That parameter set is a least-squares plane of one cycle's mark CPU (the
    ``runtime/metrics`` classes assist, dedicated and idle) against the objects
    and pointer words of the live heap, over heaps of different shapes (the
    node graph: many small objects, three pointer words each; buffers: a
    header and a pointer-free payload), sizes, GOGC and GOMAXPROCS 1 and 2
    (``allocgc -mode mark``). Marking costs by object and pointer, not by byte:
    256 MiB of 64-byte nodes took about ten times the CPU of 256 MiB of
    1 KiB buffers. The plane's residuals differ by GOMAXPROCS (one P's cycles cost about 9 % more than the
    plane, two Ps' about 1 %): the factor, the median of measured over the plane among each GOMAXPROCS's runs,
    is applied at ``procs`` (interpolated between the measured GOMAXPROCS, that of the largest beyond it).
    """
    _intercept, coefficients = param_multilinear(MARK_COST_PARAM)
    per_object, per_pointer = coefficients["objects"], coefficients["pointers"]
    if per_object < 0 or per_pointer < 0 or per_object + per_pointer <= 0:
        raise ValueError(f"{MARK_COST_PARAM}: costs must be >= 0 and not both 0 (got {coefficients})")
    if procs is None:
        return per_object, per_pointer
    factor = param_table(MARK_FACTOR_PARAM).at(procs)
    if factor <= 0:
        raise ValueError(f"{MARK_FACTOR_PARAM}: the factor must be > 0 (got {factor} at GOMAXPROCS {procs})")
    return per_object * factor, per_pointer * factor


class GCConfig(ScenarioPart):
    """Settings of the collector; ``None`` for a pause or the mark rate means the calibrated default."""

    enabled: bool = Field(True, description="false: no collector at all (GOGC=off and no memory limit)")
    gogc: float | None = Field(100, ge=0, description="GOGC; null means off (only the memory limit triggers)")
    memory_limit: Size | None = Field(None, description="GOMEMLIMIT in bytes; null means none")
    live_heap: Size = Field(0.0, description="long-lived reachable heap of the service, bytes")
    stw_sweep_termination: DurationDist | None = calibrated_field("pause, seconds", STW_SWEEP_PARAM)
    stw_mark_termination: DurationDist | None = calibrated_field("pause, seconds", STW_MARK_PARAM)
    live_object: Size = Field(
        LIVE_OBJECT_BYTES, gt=0, description="mean size of the long-lived heap's objects, bytes (default: the "
        "calibration harnesses' graph of 64-byte nodes)")
    live_pointers: float = Field(
        LIVE_POINTERS_PER_OBJECT, ge=0, description="pointer words per long-lived object (default 3: a node's "
        "two and its slot in an index)")
    live_layout: LiveLayout = Field(
        "graph", description="how the collector reaches the long-lived objects: graph (from each other: each "
        "carries its own greying) or indexed (through a pointer array, an index or cache, scanned first: its "
        "slots, one of each object's live_pointers, carry the greying of every object, so the first scan work "
        "of a mark is the dearest)")
    alloc_object: Size | None = Field(
        None, gt=0, description="mean size of the objects requests allocate, bytes; default "
        "go.alloc.object_bytes (encoding/json's mean object)", json_schema_extra=calibrated("go.alloc.object_bytes"))
    alloc_kind: AllocKind = Field(
        "pointers", description="what requests allocate: pointers (objects of pointer words), bytes "
        "(pointer-free), buffers (a 32-byte header with a pointer and a byte payload: two objects)")
    mark_object_s: float | None = Field(
        None, ge=0, description=f"mark CPU-seconds per object; default from {MARK_COST_PARAM}",
        json_schema_extra=calibrated(MARK_COST_PARAM, derived="coefficients.objects"))
    mark_pointer_s: float | None = Field(
        None, ge=0, description=f"mark CPU-seconds per pointer word; default from {MARK_COST_PARAM}",
        json_schema_extra=calibrated(MARK_COST_PARAM, derived="coefficients.pointers"))
    mark_rate: float | None = Field(
        None, gt=0, description="bytes marked per CPU-second, whatever the heap's shape; null (default): mark "
        "CPU by objects and pointers (mark_object_s, mark_pointer_s)")
    history: Literal["built", "none"] = Field(
        "built", description="the pacer's cons/mark history at the start of the run: built (the process "
        "allocated its live heap at start-up, as the validation servers do, and the cycles of that build are "
        "the history) or none (a process whose pacer has seen no cycle: the first trigger is the latest)")

    def resolved(self, procs: int | None = None) -> GCConfig:
        """A copy with the calibrated defaults filled in (raises KeyError naming a missing parameter set); with
        ``procs``, the mark costs at that GOMAXPROCS (:func:`calibrated_mark_costs`)."""
        if not self.enabled:
            return self
        updates: dict[str, Any] = {}
        if self.stw_sweep_termination is None:
            updates["stw_sweep_termination"] = param_dist(STW_SWEEP_PARAM)
        if self.stw_mark_termination is None:
            updates["stw_mark_termination"] = param_dist(STW_MARK_PARAM)
        if self.mark_rate is None and (self.mark_object_s is None or self.mark_pointer_s is None):
            per_object, per_pointer = calibrated_mark_costs(procs)
            updates["mark_object_s"] = per_object if self.mark_object_s is None else self.mark_object_s
            updates["mark_pointer_s"] = per_pointer if self.mark_pointer_s is None else self.mark_pointer_s
        return self.model_copy(update=updates)

    def allocation_shape(self) -> AllocationShape:
        """The requests' objects (``alloc_object``, ``alloc_kind``) at their calibrated allocation CPU."""
        return AllocationShape.calibrated(self.alloc_object, self.alloc_kind)


def mark_workers(procs: int) -> tuple[int, float]:
    """(dedicated workers, fractional utilisation goal per P) for GOMAXPROCS ``procs``.

    As ``gcControllerState.startCycle``: round 25 % of the Ps; if that is off by
    more than 30 %, round down and let each P run a fractional worker for the rest.
    """
    goal = procs * BACKGROUND_UTILIZATION
    dedicated = int(goal + 0.5)
    error = dedicated / goal - 1
    if -MAX_UTIL_ERROR <= error <= MAX_UTIL_ERROR:
        return dedicated, 0.0
    if dedicated > goal:
        dedicated -= 1
    return dedicated, (goal - dedicated) / procs


class Assistable(Protocol):
    """What the collector keeps on an allocating goroutine: its assist credit in bytes (gcAssistBytes)."""

    assist_credit: float


class Allocating:
    """A request (a goroutine, or a job of the fast fidelity) on its way through its steps, with what the
    allocation bookkeeping keeps on it: the CPU left of the step in progress and the bytes it has yet to
    allocate, the heap it keeps reachable, its assist credit and the assist CPU it owes."""

    __slots__ = ("steps", "pc", "remaining", "alloc_left", "heap_bytes", "assist_credit", "assist_due", "done",
                 "born", "times", "resume")

    def __init__(self, steps: Sequence[Any], done: simpy.Event | None, born: float) -> None:
        self.steps = steps
        self.pc = 0
        self.remaining: float | None = None
        self.alloc_left = 0.0
        self.heap_bytes = 0.0
        self.assist_credit = 0.0
        self.assist_due = 0.0
        self.done = done
        self.born = born
        self.times: RequestTimes | None = None
        """Where the scheduler records the collector's share of the request's time, if its caller asked."""
        self.resume: Callable[[Any], None] | None = None
        """What takes the task back when the event it waits for fires (the task is that event's callback)."""

    def __call__(self, _event: simpy.Event) -> None:
        """The event the task waits on has fired: ``resume(task)``. A task is its own wait's callback, so a
        parked one costs the scheduler no closure (about 240 bytes each, a million goroutines parked at once)."""
        assert self.resume is not None
        self.resume(self)


class Heap:
    """The heap of one Go process as both schedulers see it: allocation bookkeeping, and the collector.

    A Compute step allocates its bytes evenly over its CPU time, and whatever is
    left when the step ends; each allocation grows the reachable heap and, while
    the collector marks, adds the mark assist it owes (``GoGC.allocate``).
    ``gc`` is None when ``config`` is None or leaves the collector off; the
    scheduler that owns the heap sets ``gc.host`` (:class:`GCHost`).
    """

    __slots__ = ("gc", "reachable")

    def __init__(self, env: Environment, config: GCConfig | None, procs: int, name: str) -> None:
        self.gc: GoGC | None = None
        self.reachable = 0.0
        """Bytes the live requests keep reachable (what the collector marks besides the long-lived heap)."""
        if config is not None and config.enabled:
            gc = GoGC(env, config, procs, name=f"{name}.gc")
            if gc.enabled:
                self.gc = gc

    def allocate(self, task: Allocating, nbytes: float) -> None:
        task.heap_bytes += nbytes
        self.reachable += nbytes
        if self.gc is not None:
            task.assist_due += self.gc.allocate(task, nbytes)

    def allocate_share(self, task: Allocating, before_s: float, worked_s: float) -> None:
        """Allocate the share of ``task``'s bytes that ``worked_s`` of its ``before_s`` seconds carry."""
        if task.alloc_left > 0:
            assert task.remaining is not None
            portion = task.alloc_left if task.remaining <= 1e-15 else task.alloc_left * worked_s / before_s
            task.alloc_left -= portion
            self.allocate(task, portion)

    def in_use(self) -> float:
        """The heap in use: the collector's live heap, or without one what the requests keep reachable."""
        return self.gc.heap_live if self.gc is not None else self.reachable

    def free(self, task: Allocating) -> None:
        """``task`` has ended: what it kept reachable no longer is."""
        self.reachable -= task.heap_bytes


class GCHost(Protocol):
    """What a scheduler offers the collector."""

    procs: int

    def stop_the_world(self, duration_s: float, then: Callable[[], None]) -> None: ...

    def mark_started(self, dedicated: int, fractional: float) -> None: ...

    def mark_ended(self) -> None: ...

    def roots_bytes(self) -> float: ...

    def reachable_bytes(self) -> float: ...


class GoGC:
    """The collector of one Go process (see the module docstring)."""

    def __init__(self, env: Environment, config: GCConfig, procs: int, name: str = "go.gc") -> None:
        config = config.resolved(procs)
        self.env = env
        self.name = name
        self.config = config
        self.procs = procs
        self.enabled = config.enabled and (config.gogc is not None or config.memory_limit is not None)
        self.host: GCHost | None = None
        self.phase = "idle"  # idle | sweep_termination | mark | mark_termination
        self.alloc_work_per_byte = 1.0
        """Mark CPU-seconds per byte of what requests keep reachable (per heap byte with ``mark_rate``)."""
        self.alloc_credit_per_byte = self._root_cpu_per_byte = 1.0
        self._live_segments: list[tuple[float, float]] = []
        """(scan bytes, mark CPU-seconds) of the long-lived heap in mark order (set when the collector is on)."""
        if self.enabled:
            assert config.stw_sweep_termination is not None and config.stw_mark_termination is not None
            self._draw_sweep_stw = config.stw_sweep_termination.sampler(env.rng(f"{name}.stw_sweep_termination"))
            self._draw_mark_stw = config.stw_mark_termination.sampler(env.rng(f"{name}.stw_mark_termination"))
            if config.mark_rate is not None:
                # Work counted in heap bytes, each costing 1 / mark_rate CPU-seconds.
                rate = float(config.mark_rate)
                self.alloc_work_per_byte = self._root_cpu_per_byte = 1.0 / rate
                self._live_segments = [(config.live_heap, config.live_heap / rate)]
            else:
                assert config.mark_object_s is not None and config.mark_pointer_s is not None  # resolved()
                per_object, per_pointer = config.mark_object_s, config.mark_pointer_s
                self._live_segments = live_segments(
                    config.live_heap / config.live_object, config.live_pointers, config.live_layout,
                    per_object, per_pointer, WORD_BYTES)
                size = default_object_bytes() if config.alloc_object is None else float(config.alloc_object)
                shape = AllocationShape(size, config.alloc_kind, 0.0)
                self.alloc_work_per_byte = shape.objects(1.0) * per_object + shape.pointers(1.0) * per_pointer
                self.alloc_credit_per_byte = shape.pointers(1.0) * WORD_BYTES
                self._root_cpu_per_byte = per_pointer / WORD_BYTES
        self.dedicated, self.fractional = mark_workers(procs)
        self.heap_live = config.live_heap
        self.heap_marked = config.live_heap
        self.last_scan_work = 0.0
        self._cons_mark: list[float] = []
        """``lastConsMark``: the ratios of the last :data:`CONS_MARK_HISTORY` cycles, oldest first."""
        self._cons_mark_estimate = 0.0
        """``consMark``: the largest of the last cycle's ratio and the history before it."""
        if self.enabled and config.history == "built" and config.live_heap > 0:
            self._built_history()
        self.goal, self.trigger = self._goal_and_trigger(roots=0.0)
        # Mark state.
        self._remaining = 0.0
        self._scan_work = 0.0
        self._bg_credit = 0.0
        self._mark_cpus = 0.0
        self._idle_cpus = 0.0
        self._mark_idle_cpu = 0.0
        self._updated = 0.0
        self._timer = Timer(env, self._maybe_done)
        self._mark_start = 0.0
        self._heap_at_mark = 0.0
        self._reachable_at_mark = 0.0
        self._profile = MarkProfile([])
        self._mark_assist_cpu = 0.0
        self.assist_work_per_byte = 0.0
        metrics = env.metrics
        self.cycles = metrics.counter(f"{name}.cycles")
        self.cpu_s = metrics.counter(f"{name}.cpu_s")
        self.assist_cpu_s = metrics.counter(f"{name}.assist_cpu_s")
        self.worker_cpu_s = metrics.counter(f"{name}.worker_cpu_s")
        self.idle_cpu_s = metrics.counter(f"{name}.idle_cpu_s")
        self.pause_cpu_s = metrics.counter(f"{name}.pause_cpu_s")
        self.cpu_fraction = metrics.gauge(f"{name}.cpu_fraction")
        self.stw_sweep_s = metrics.histogram(f"{name}.stw_sweep_termination_s")
        self.stw_mark_s = metrics.histogram(f"{name}.stw_mark_termination_s")
        self.goal_gauge = metrics.gauge(f"{name}.heap_goal_bytes", self.goal)
        self.live_gauge = metrics.gauge(f"{name}.heap_live_bytes", self.heap_live)
        self._gc_cpus = 0.0  # CPUs doing GC work now (for cpu_fraction)
        self._assisting = 0
        self._starting = False
        self._stopped_before = 0.0
        self._stop_start = self._stop_end = 0.0

    def _built_history(self) -> None:
        """The pacer as a process leaves it that allocated its live heap at start-up (``history: built``).

        One goroutine allocates the long-lived objects back to back while the heap grows from the minimum
        goal (``4 MiB * GOGC / 100``) to ``live_heap``, a cycle each time it reaches a goal ``1 + GOGC / 100``
        times the last marked heap. In each of those cycles the mutator's bytes over the mark's scan work, as
        ``endCycle`` measures it (background at 25 %, idle workers in the numerator), come to
        ``a * m_cpu / (0.75 * p * s)``: ``a`` the builder's bytes per CPU-second (the calibrated allocation
        cost of the long-lived objects' size), ``s`` the scan work per CPU-second of marking the live heap,
        ``m_cpu`` the CPUs the builder keeps of its P (0.75 beside a fractional worker, 1 when dedicated workers
        run on other Ps) and ``p`` GOMAXPROCS; assists cancel out at GOMAXPROCS 1. Those cycles (at most the
        :data:`CONS_MARK_HISTORY` last) are the history, and the last of them is taken to have scanned the whole
        live heap (``lastHeapScan``; exact after a forced ``runtime.GC()``, which adds no ratio: nothing is
        allocated during its mark). Without this the first cycle of a run has no history and triggers at 95 %
        of the way to the goal, where its assists are several times the heap's scan work per byte.
        """
        config = self.config
        scan, cpu = self.live_scan_bytes, self.live_mark_cpu_s
        gogc = config.gogc
        if scan <= 0 or cpu <= 0 or gogc is None:
            return
        if gogc > 0:
            first_goal = HEAP_MINIMUM_BYTES * gogc / 100
            cycles = (0 if config.live_heap <= first_goal else
                      math.ceil(math.log(config.live_heap / first_goal) / math.log(1 + gogc / 100)))
        else:
            cycles = CONS_MARK_HISTORY  # GOGC=0: a cycle after every allocation
        if cycles == 0:
            return
        kind: AllocKind = "pointers" if config.live_pointers > 0 else "bytes"
        builder = AllocationShape.calibrated(config.live_object, kind)
        alloc_per_cpu_s = config.live_object / builder.cpu_s(config.live_object)
        mutator = 1.0 if self.dedicated > 0 else 1.0 - self.fractional
        ratio = alloc_per_cpu_s * mutator / ((1 - BACKGROUND_UTILIZATION) * self.procs * (scan / cpu))
        self._cons_mark = [ratio] * min(cycles, CONS_MARK_HISTORY)
        self._cons_mark_estimate = ratio
        self.last_scan_work = scan

    @property
    def live_scan_bytes(self) -> float:
        """Scan work (bytes) of the long-lived heap in one mark."""
        return sum(credit for credit, _ in self._live_segments)

    @property
    def live_mark_cpu_s(self) -> float:
        """Mark CPU-seconds of the long-lived heap in one mark."""
        return sum(cpu for _, cpu in self._live_segments)

    @property
    def bytes_per_cpu_s(self) -> float:
        """Bytes of scan work a CPU-second does where the mark in progress (or the last) stands, for checks
        the runtime counts in scan work (infinite where marking costs nothing)."""
        return self._profile.credit_per_cpu_s(self._scan_work - self._remaining)

    def _cpu_for(self, work: float) -> float:
        """CPU-seconds of the next ``work`` bytes of this mark's scan work."""
        return self._profile.cpu(self._scan_work - self._remaining, work)

    # ----------------------------------------------------------------- pacing
    def _goal_and_trigger(self, roots: float) -> tuple[float, float]:
        config, marked = self.config, self.heap_marked
        goal = math.inf
        if config.gogc is not None:
            growth = config.gogc / 100
            goal = max(marked + (marked + roots) * growth, HEAP_MINIMUM_BYTES * growth)
        if config.memory_limit is not None:
            limit_goal = config.memory_limit - roots
            headroom = max(limit_goal * MEMORY_LIMIT_HEADROOM_PERCENT / 100, MEMORY_LIMIT_MIN_HEADROOM_BYTES)
            goal = min(goal, max(limit_goal - headroom, marked))
        if not math.isfinite(goal):
            return goal, goal
        if marked >= goal:
            return goal, goal
        cons_mark = self._cons_mark_estimate
        runway = cons_mark * (1 - BACKGROUND_UTILIZATION) / BACKGROUND_UTILIZATION * self.last_scan_work
        distance = goal - marked
        low = marked + distance * MIN_TRIGGER_RATIO_NUM / TRIGGER_RATIO_DEN
        high = marked + distance * MAX_TRIGGER_RATIO_NUM / TRIGGER_RATIO_DEN
        return goal, min(max(goal - runway, low), high)

    # ------------------------------------------------------------- allocation
    def allocate(self, owner: Assistable, nbytes: float) -> float:
        """Account ``nbytes`` allocated by ``owner``; returns the CPU-seconds of assist it owes now."""
        self.heap_live += nbytes
        self.live_gauge.set(self.heap_live)
        if not self.enabled:
            return 0.0
        if self.phase == "idle":
            if nbytes > 0 and self.heap_live >= self.trigger and not self._starting:
                # gcStart runs on the allocating goroutine (mallocgc's trigger test); here one
                # zero-delay event later, so that the scheduler is not re-entered in the middle of
                # its accounting. Only an allocation starts a cycle, never the end of the last one.
                self._starting = True
                self.env.timeout(0).callbacks.append(lambda _event: self._retrigger())
            return 0.0
        if self.phase != "mark" or nbytes <= 0:
            return 0.0
        owner.assist_credit -= nbytes
        if owner.assist_credit >= 0:
            return 0.0
        self._advance()
        self._update_assist_ratio()
        ratio = self.assist_work_per_byte
        debt = -owner.assist_credit * ratio
        stolen = min(self._bg_credit, debt)
        self._bg_credit -= stolen
        debt -= stolen
        owner.assist_credit += stolen / ratio if ratio > 0 else -owner.assist_credit
        if debt <= 0 or self._remaining <= 0:
            owner.assist_credit = max(owner.assist_credit, 0.0)
            return 0.0
        work = min(max(debt, OVER_ASSIST_BYTES), self._remaining)
        owner.assist_credit += work / ratio
        cpu = self._cpu_for(work)
        self._remaining -= work
        self.assist_cpu_s.inc(cpu)
        self.cpu_s.inc(cpu)
        self._mark_assist_cpu += cpu
        self._reschedule()
        return cpu

    def _update_assist_ratio(self) -> None:
        distance = self.goal - self.heap_live
        if distance <= 0:
            distance = max(self.goal * 0.1, 1.0)  # the hard goal: 1.1 x goal (mgcpacer.go revise)
        self.assist_work_per_byte = max(self._remaining, MIN_SCAN_WORK_REMAINING) / distance

    # ------------------------------------------------------------------ cycle
    def start_cycle(self) -> None:
        assert self.host is not None, "GoGC.host must be set by the scheduler"
        self._starting = False
        self.phase = "sweep_termination"
        self._set_gc_cpus()
        self.cycles.inc()
        pause = self._draw_sweep_stw()
        self.stw_sweep_s.record(pause)
        self._stw_cpu(pause)
        self.host.stop_the_world(pause, self._begin_mark)

    def _stw_cpu(self, pause: float) -> None:
        """A stop-the-world of ``pause`` seconds starts now: its CPU, and the stopped-world clock."""
        self.cpu_s.inc(pause * self.procs)
        self.pause_cpu_s.inc(pause * self.procs)
        now = self.env.now
        # The two pauses of a cycle, and the cycles, never overlap: the last window is over.
        self._stopped_before += self._stop_end - self._stop_start
        self._stop_start, self._stop_end = now, now + pause

    def stopped_s(self) -> float:
        """Seconds the world has been stopped, from the start of the run to now (each stop-the-world is the
        window ``stop_the_world`` is given: the pause drawn here). A request's pauses are the advance of this
        clock over its time in the runtime (:class:`~models.runtime.protocol.RequestTimes`)."""
        return self._stopped_before + min(self.env.now - self._stop_start, self._stop_end - self._stop_start)

    def _begin_mark(self) -> None:
        assert self.host is not None
        self.phase = "mark"
        self._mark_start = self._updated = self.env.now
        roots = self.host.roots_bytes()
        # The hosts keep a running sum of what requests hold; rounding may leave it a hair below zero.
        reachable = max(self.host.reachable_bytes(), 0.0)
        self._reachable_at_mark = self.config.live_heap + reachable
        # Roots first (stacks, and what requests keep reachable from them), then the long-lived heap.
        self._profile = MarkProfile([
            (roots + reachable * self.alloc_credit_per_byte,
             roots * self._root_cpu_per_byte + reachable * self.alloc_work_per_byte),
            *self._live_segments,
        ])
        self._scan_work = self._remaining = self._profile.total_credit
        self._heap_at_mark = self.heap_live
        self._bg_credit = 0.0
        self._mark_assist_cpu = 0.0
        self._mark_idle_cpu = 0.0
        self._update_assist_ratio()
        self.host.mark_started(self.dedicated, self.fractional)
        self._reschedule()

    def set_mark_cpus(self, cpus: float, idle_cpus: float = 0.0) -> None:
        """The host reports how many CPUs run mark workers from now on, ``idle_cpus`` of them idle workers."""
        if self.phase != "mark":  # workers run only while marking
            cpus = idle_cpus = 0.0
        else:
            self._advance()
        self._mark_cpus = cpus
        self._idle_cpus = idle_cpus
        self._set_gc_cpus()
        if self.phase == "mark":
            self._reschedule()

    def add_assisting(self, delta: int) -> None:
        """The host reports goroutines starting (+1) or ending (-1) an assist, for cpu_fraction."""
        self._assisting += delta
        self._set_gc_cpus()

    def _set_gc_cpus(self) -> None:
        level = self._mark_cpus + self._assisting
        if self.phase in ("sweep_termination", "mark_termination"):
            level = self.procs
        if level != self._gc_cpus:
            self._gc_cpus = level
            self.cpu_fraction.set(level / self.procs)

    def _advance(self) -> None:
        now = self.env.now
        if self._mark_cpus > 0 and now > self._updated:
            cpu = self._mark_cpus * (now - self._updated)
            work = min(self._profile.credit(self._scan_work - self._remaining, cpu), self._remaining)
            self._remaining -= work
            self._bg_credit += work
            idle = self._idle_cpus * (now - self._updated)
            self.cpu_s.inc(cpu)
            self.worker_cpu_s.inc(cpu - idle)
            self.idle_cpu_s.inc(idle)
            self._mark_idle_cpu += idle
        self._updated = now

    def _reschedule(self) -> None:
        """Keep a timer at the predicted end of the mark. A pending timer that would fire no later
        than the new prediction is kept (it re-checks when it fires), so a change of rate costs
        no event unless it brings the end forward."""
        if self._remaining <= 0:
            delay = 0.0
        elif self._mark_cpus > 0:
            delay = self._cpu_for(self._remaining) / self._mark_cpus
        else:
            return
        self._timer.set_no_later(delay)

    def _maybe_done(self) -> None:
        if self.phase != "mark":
            return
        self._advance()
        left_s = self._cpu_for(self._remaining) / self._mark_cpus if self._mark_cpus > 0 else math.inf
        # A remainder shorter than the clock can resolve (now + left_s == now) would re-arm the
        # timer at the same instant forever: the mark is done.
        if self._remaining > 1e-9 * max(self._scan_work, 1.0) and self.env.now + left_s > self.env.now:
            self._reschedule()
            return
        self._mark_done()

    def _mark_done(self) -> None:
        assert self.host is not None
        now = self.env.now
        self._timer.cancel()  # no pending timer of this mark may fire into the next one
        self._advance()
        self._mark_cpus = 0.0
        self.host.mark_ended()
        allocated = self.heap_live - self._heap_at_mark
        duration = now - self._mark_start
        if duration > 0 and self._scan_work > 0 and allocated > 0:
            # endCycle in mgcpacer.go: the background workers are assumed to have hit their 25 %, the assists
            # are measured; idle workers count in the numerator only. No allocation during the mark: no update.
            utilisation = min(BACKGROUND_UTILIZATION + self._mark_assist_cpu / (duration * self.procs), 0.99)
            idle = self._mark_idle_cpu / (duration * self.procs)
            ratio = allocated * (utilisation + idle) / (self._scan_work * (1 - utilisation))
            self._cons_mark_estimate = max([ratio, *self._cons_mark])
            self._cons_mark = (self._cons_mark + [ratio])[-CONS_MARK_HISTORY:]
        self.phase = "mark_termination"
        self._set_gc_cpus()
        pause = self._draw_mark_stw()
        self.stw_mark_s.record(pause)
        self._stw_cpu(pause)
        self.host.stop_the_world(pause, lambda: self._end_cycle(allocated))

    def _end_cycle(self, allocated_during_mark: float) -> None:
        assert self.host is not None
        roots = self.host.roots_bytes()
        self.heap_marked = self._reachable_at_mark + allocated_during_mark
        self.heap_live = self.heap_marked + (self.heap_live - self._heap_at_mark - allocated_during_mark)
        self.last_scan_work = self._scan_work
        self.goal, self.trigger = self._goal_and_trigger(roots)
        self.goal_gauge.set(self.goal)
        self.live_gauge.set(self.heap_live)
        self.phase = "idle"
        self._set_gc_cpus()

    def _retrigger(self) -> None:
        self._starting = False
        if self.phase == "idle" and self.heap_live >= self.trigger:
            self.start_cycle()
