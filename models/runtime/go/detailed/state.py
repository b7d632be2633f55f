"""What the detailed Go runtime keeps per goroutine (:class:`G`) and per processor (:class:`P`).

Plain state, shared by the scheduler (:mod:`models.runtime.go.detailed.sched`) and the components it works
with; the fields follow ``g`` and ``p`` of ``runtime/runtime2.go`` where they have a counterpart there.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import simpy

from sim.timers import Timer
from models.runtime.go.constants import CpuKind
from models.runtime.go.gc import Allocating

if TYPE_CHECKING:
    from models.runtime.go.steps import WaitGroup


class G(Allocating):
    """A goroutine: its steps, the position in them and what the allocation bookkeeping keeps on it.

    Plain state, no SimPy process, and nothing a parked goroutine does not need: it is its own network
    wait's callback (:meth:`Allocating.__call__`), so a million parked goroutines cost a million of these
    objects and the events they wait on, no closures (``bench/bench_go.py`` measures it)."""

    __slots__ = ("id", "wg", "wake_at", "observe")

    def __init__(self, id: int, steps: Sequence[Any], done: simpy.Event | None, born: float,
                 wg: WaitGroup | None) -> None:
        super().__init__(steps, done, born)
        self.id = id
        self.wg = wg
        self.wake_at = 0.0
        self.observe: Callable[[float], None] | None = None


class P:
    """A processor: local run queue, runnext, and what it is running; its ``timer`` ends the current CPU
    slice. Its thread runs at ``rate`` of a core's speed: 1, or 0 while it waits for its turn on a core it
    shares (:mod:`models.machine.cores`)."""

    timer: Timer
    takes_yield = True
    """A thread waiting behind another on its core gets it when that one makes a system call."""

    __slots__ = (
        "id", "runq", "runnext", "schedtick", "g", "kind", "slice_start", "slice_len", "timer",
        "active", "frac_time", "frac_left", "pending", "is_idle", "seen_tick", "seen_when", "expired",
        "core", "rate", "slice_done",
    )

    def __init__(self, id: int) -> None:
        self.id = id
        self.runq: deque[G] = deque()
        self.runnext: G | None = None
        self.schedtick = 0
        self.g: G | None = None
        self.kind: CpuKind | None = None
        self.slice_start = 0.0
        self.slice_len = 0.0
        self.active = False
        self.frac_time = 0.0
        self.frac_left = 0.0
        self.pending = False
        self.is_idle = False
        self.seen_tick = -1
        self.seen_when = 0.0
        self.expired: list[G] = []
        self.core: int | None = None
        self.rate = 1.0
        self.slice_done = 0.0

    def retime(self, rate: float) -> None:
        """Its thread now runs at ``rate`` (1 or 0): the CPU slice ends when its work is done at that rate."""
        if self.active:
            now = self.timer.env.now
            self.slice_done += (now - self.slice_start) * self.rate
            self.slice_start = now
            self.timer.set_at_rate(self.slice_len - self.slice_done, rate)
        self.rate = rate
