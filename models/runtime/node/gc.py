"""V8's generational collector, one per isolate: scavenges of the young generation, mark-compact of the old.

**The collector** (:class:`V8Heap`, one per isolate). Sources: V8 blog, "Trash
talk: the Orinoco garbage collector" (https://v8.dev/blog/trash-talk) and
"Orinoco: young generation garbage collection"
(https://v8.dev/blog/orinoco-parallel-scavenger); V8 ``src/heap/heap-controller.{h,cc}``.

* The young generation is a nursery and an intermediate semi-space of
  ``semi_space_bytes`` each (Node docs, CLI, ``--max-semi-space-size``: 16 MiB on
  64-bit systems with a memory limit of 2 GiB or more). When the nursery is full
  a *scavenge* copies its live objects to the intermediate space and promotes the
  live objects of the intermediate space, which have survived two scavenges, to
  the old generation (Trash talk, "Minor GC (Scavenger)").
  Its pause is ``intercept + slope * survived bytes``
  (``node.gc.scavenge_pause_vs_survived``): copying is the work of a scavenger.
* Which bytes are live: those allocated by requests still in flight on the
  isolate (a request's objects die when it ends; each request's bytes are
  tracked by where they are, :class:`Allocation`); the service's long-lived data
  is ``live_heap`` bytes in the old generation.
* The old generation is collected by a *mark-compact* when it reaches its
  limit. Marking is incremental and concurrent (Trash talk, "Major GC"), so the
  event loop pays only the final atomic pause, ``intercept + slope * live
  bytes`` (``node.gc.markcompact_pause_vs_heap``, fitted against the heap after
  the collection: the bytes marked). The new limit is
  the live size times V8's dynamic growing factor
  F = R(1-MU) / (R(1-MU) - MU), R = mark-compact speed / old-generation
  allocation speed, MU = 0.97, F clamped to [1.1, 4.0], and at least 8 MiB above
  the live size (``DynamicGrowingFactor``, ``kTargetMutatorUtilization``,
  ``kMin/MaxGrowingFactor``, ``MinimumAllocationLimitGrowingStep``); the speed of
  marking is V8's combined one (incremental and concurrent marking and the
  pause): 1 / slope of the marking CPU against the heap marked
  (``node.gc.markcompact_mark_cpu_vs_heap``; when a scenario gives its own pause
  line instead, 1 / slope of that line); the allocation speed is the bytes
  promoted since the last mark-compact over the time since. A speed that is not
  positive is unknown, and V8's rule for an unknown speed applies: the largest
  factor. The final pause itself hardly grows with the heap in the calibration
  on 2 cores (r² about 0.2, a slightly negative slope): marking happens before it.
* Pause lines are used beyond the range they were fitted on and clamped at 0.
* Every pause blocks the isolate's thread: :meth:`V8Heap.allocate` returns the
  pause seconds, which the runtime adds to the running callback.

Simplifications: the semi-space has its maximum size from the start (V8 grows
it from 1 MiB); the CPU of concurrent marking and of parallel scavenger helpers
runs on other threads and is not charged to any core; pauses are linear in the
bytes, without the scatter of the ``*_pause_s`` distributions; a mark-compact
happens at the limit (V8 starts incremental marking somewhat before it).

Metrics under ``NAME`` (``node.gc``): ``NAME.scavenges``, ``NAME.markcompacts``
(counters), ``NAME.scavenge_pause_s``, ``NAME.markcompact_pause_s``,
``NAME.survived_bytes`` (histograms), ``NAME.heap_bytes`` (gauge: young + old in use;
left out with ``report_heap=False``, for heaps that share their metric names,
whose owner reports the total).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sim.core import Environment
from sim.params import load_params, param_linear
from sim.scenario import ScenarioPart, Size, calibrated

MIB = 2**20

SEMI_SPACE_BYTES = 16 * MIB
"""``--max-semi-space-size`` default on 64-bit with a memory limit of 2 GiB or more (Node docs, CLI)."""
TARGET_MUTATOR_UTILIZATION = 0.97
MIN_GROWING_FACTOR = 1.1
MAX_GROWING_FACTOR = 4.0
"""``kTargetMutatorUtilization``, ``kMinGrowingFactor``, ``kMaxGrowingFactor`` (V8 heap-controller.h)."""
MIN_LIMIT_STEP_BYTES = 8 * MIB
"""``MinimumAllocationLimitGrowingStep``: 8 pages of 1 MiB at least (V8 heap-controller.cc, regular mode)."""

SCAVENGE_PARAM = "node.gc.scavenge_pause_vs_survived"
MARKCOMPACT_PARAM = "node.gc.markcompact_pause_vs_heap"
MARK_CPU_PARAM = "node.gc.markcompact_mark_cpu_vs_heap"


def dynamic_growing_factor(gc_speed: float, mutator_speed: float, max_factor: float = MAX_GROWING_FACTOR) -> float:
    """V8's ``DynamicGrowingFactor``: the heap limit over the live size that keeps the mutator
    utilisation at 97 % given how fast marking is next to allocation (bytes per second each)."""
    if gc_speed <= 0 or mutator_speed <= 0:
        return max_factor
    ratio = gc_speed / mutator_speed
    a = ratio * (1 - TARGET_MUTATOR_UTILIZATION)
    b = a - TARGET_MUTATOR_UTILIZATION
    factor = a / b if a < b * max_factor else max_factor
    return max(min(factor, max_factor), MIN_GROWING_FACTOR)


class V8GCConfig(ScenarioPart):
    """Settings of one isolate's collector; ``None`` for a pause line means the calibrated fit."""

    enabled: bool = Field(True, description="false: no collector modelled (allocation causes no pauses; its own "
                          "CPU is the handler's, handler.alloc_cpu)")
    semi_space: Size = Field(SEMI_SPACE_BYTES, gt=0, description="--max-semi-space-size, bytes")
    live_heap: Size = Field(0.0, ge=0, description="long-lived data in the old generation of each isolate, bytes")
    scavenge_pause: tuple[float, float] | None = Field(
        None, description=f"(intercept s, slope s per survived byte); default {SCAVENGE_PARAM}",
        json_schema_extra=calibrated(SCAVENGE_PARAM),
    )
    markcompact_pause: tuple[float, float] | None = Field(
        None, description=f"(intercept s, slope s per live byte); default {MARKCOMPACT_PARAM}",
        json_schema_extra=calibrated(MARKCOMPACT_PARAM),
    )
    mark_speed: float | None = Field(
        None, ge=0, description=f"marking speed, bytes per CPU second (0: unknown); default 1 / slope of "
        f"{MARK_CPU_PARAM}, or 1 / slope of the mark-compact pause line when that line is given",
        json_schema_extra=calibrated(MARK_CPU_PARAM, derived="1/slope", unless="markcompact_pause"),
    )
    scavenge_x: Literal["survived", "young"] = Field(
        "survived", description="what the scavenge line's x is: survived bytes, or the young generation's size"
    )

    def resolved(self) -> V8GCConfig:
        """A copy with the calibrated pause lines filled in (KeyError names a missing parameter set)."""
        if not self.enabled:
            return self
        updates: dict[str, Any] = {}
        if self.scavenge_pause is None:
            updates["scavenge_pause"] = param_linear(SCAVENGE_PARAM)
            updates["scavenge_x"] = "young" if scavenge_x_is_young_size() else "survived"
        if self.markcompact_pause is None:
            updates["markcompact_pause"] = param_linear(MARKCOMPACT_PARAM)
            if self.mark_speed is None:
                slope = param_linear(MARK_CPU_PARAM)[1]
                updates["mark_speed"] = 1 / slope if slope > 0 else 0.0
        return self.model_copy(update=updates)


def scavenge_x_is_young_size() -> bool:
    """Whether the calibrated scavenge line is fitted against the young generation's size, not survivors."""
    return "surviv" not in str(load_params(SCAVENGE_PARAM).get("x", "survived"))


class Allocation:
    """The bytes one request has allocated on a heap, by where they now are."""

    __slots__ = ("nursery", "intermediate", "old")

    def __init__(self) -> None:
        self.nursery = 0.0
        self.intermediate = 0.0
        self.old = 0.0


class V8Heap:
    """One isolate's heap and collector (see the module docstring); disabled, it records nothing."""

    def __init__(self, env: Environment, config: V8GCConfig | None = None, name: str = "node.gc",
                 report_heap: bool = True) -> None:
        config = (config or V8GCConfig()).resolved()
        self.env = env
        self.name = name
        self.enabled = config.enabled
        self.semi_space = float(config.semi_space)
        self.live_heap = float(config.live_heap)
        self.nursery = 0.0
        self.intermediate = 0.0
        self.old = self.live_heap
        self.live: set[Allocation] = set()
        self.promoted_since = 0.0
        self.last_markcompact = env.now
        if not self.enabled:
            return
        assert config.scavenge_pause is not None and config.markcompact_pause is not None  # resolved() fills both
        self.scavenge_line: tuple[float, float] = config.scavenge_pause
        self.markcompact_line: tuple[float, float] = config.markcompact_pause
        self.scavenge_x_young = config.scavenge_x == "young"
        if config.mark_speed is not None:
            self.mark_speed = config.mark_speed
        else:
            slope = self.markcompact_line[1]
            self.mark_speed = 1 / slope if slope > 0 else 0.0
        self.limit = max(self.live_heap * MAX_GROWING_FACTOR, self.live_heap + MIN_LIMIT_STEP_BYTES)
        metrics = env.metrics
        self.scavenges = metrics.counter(f"{name}.scavenges")
        self.markcompacts = metrics.counter(f"{name}.markcompacts")
        self.scavenge_pause_s = metrics.histogram(f"{name}.scavenge_pause_s")
        self.markcompact_pause_s = metrics.histogram(f"{name}.markcompact_pause_s")
        self.survived_bytes = metrics.histogram(f"{name}.survived_bytes")
        self.heap_bytes = metrics.gauge(f"{name}.heap_bytes", self.in_use) if report_heap else None

    @property
    def in_use(self) -> float:
        """Bytes in the young and old generations, live or not yet collected."""
        return self.nursery + self.intermediate + self.old

    def allocate(self, nbytes: float, owner: Allocation) -> float:
        """Request ``owner`` allocates ``nbytes``, live until :meth:`release`; returns the pause seconds
        it caused (scavenges each time the nursery fills, then a mark-compact if the old generation
        reached its limit)."""
        if not self.enabled or nbytes <= 0:
            return 0.0
        self.live.add(owner)
        pause = 0.0
        left = nbytes
        while left >= self.semi_space - self.nursery:
            room = self.semi_space - self.nursery
            owner.nursery += room
            left -= room
            self.nursery = self.semi_space
            pause += self._scavenge()
        self.nursery += left
        owner.nursery += left
        if self.old >= self.limit:
            pause += self._markcompact()
        if self.heap_bytes is not None:
            self.heap_bytes.set(self.in_use)
        return pause

    def release(self, owner: Allocation) -> None:
        """The request ended: what it allocated is garbage, wherever it is."""
        self.live.discard(owner)

    def _scavenge(self) -> float:
        survived = promoted = 0.0
        for owner in self.live:
            survived += owner.nursery + owner.intermediate
            promoted += owner.intermediate
            owner.old += owner.intermediate
            owner.intermediate, owner.nursery = owner.nursery, 0.0
        self.old += promoted
        self.promoted_since += promoted
        self.intermediate = survived - promoted
        self.nursery = 0.0
        intercept, slope = self.scavenge_line
        pause = max(0.0, intercept + slope * (2 * self.semi_space if self.scavenge_x_young else survived))
        self.scavenges.inc()
        self.scavenge_pause_s.record(pause)
        self.survived_bytes.record(survived)
        return pause

    def _markcompact(self) -> float:
        live_old = self.live_heap + sum(owner.old for owner in self.live)
        intercept, slope = self.markcompact_line
        pause = max(0.0, intercept + slope * live_old)
        elapsed = self.env.now - self.last_markcompact
        mutator_speed = self.promoted_since / elapsed if elapsed > 0 else 0.0
        factor = dynamic_growing_factor(self.mark_speed, mutator_speed)
        self.old = live_old
        self.limit = max(live_old * factor, live_old + MIN_LIMIT_STEP_BYTES)
        self.promoted_since = 0.0
        self.last_markcompact = self.env.now
        self.markcompacts.inc()
        self.markcompact_pause_s.record(pause)
        return pause
