"""The Go scheduler's side of the collector: mark workers and stopping the world.

Part of the detailed runtime (:class:`models.runtime.go.detailed.runtime.GoRuntime`); the
collector itself is :class:`models.runtime.go.gc.GoGC`, which calls these as its
host. During a mark, ``schedule`` first offers the P a GC worker
(``findRunnableGCWorker``, ``runtime/mgc.go``): the first Ps to schedule become
the dedicated workers (handing their local queue to the global queue, as a
preempted dedicated worker does); the others run a fractional worker while
their share of mark time is below the goal, in bursts that end when it exceeds
1.2 times the goal, checked every ``drainCheckThreshold`` = 100,000 bytes of
scan work (``mgcmark.go``); a P with nothing to run becomes an idle mark
worker until work arrives (``gcMarkWorkerIdleMode``). A stop-the-world pauses
every P and sends the running goroutines to the global queue, as a preemption
does; when the world starts again the Ps resume and schedule.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from models.runtime.go.detailed.sched import DEDICATED, DRAIN_CHECK_BYTES, FRACTIONAL, IDLE_MARK, MARK_KINDS, RUN, ASSIST

if TYPE_CHECKING:
    from models.runtime.go.gc import GoGC
    from models.runtime.go.detailed.sched import G, P


class GCWorkers:
    """Mark workers, stop-the-world and start-the-world (a part of ``GoRuntime``)."""

    env: Any
    ps: list[P]
    global_q: deque[G]
    gc: GoGC | None
    quota_cores: float | None

    def _gc_worker(self, p: P) -> bool:
        if self._dedicated_left > 0:
            self._dedicated_left -= 1
            if p.runnext is not None:
                self.global_q.append(p.runnext)
                p.runnext = None
            self.global_q.extend(p.runq)
            p.runq.clear()
            self._set_kind(p, DEDICATED)
            if self.global_q:
                self._wakep()
            return True
        goal = self._fractional
        if goal <= 0:
            return False
        delta = self.env.now - self._mark_start
        if delta > 0 and p.frac_time / delta > goal:
            return False
        burst = (1.2 * goal * delta - p.frac_time) / (1 - 1.2 * goal)
        assert self.gc is not None
        burst = max(burst, DRAIN_CHECK_BYTES / self.gc.mark_rate)
        p.frac_left = burst
        self._set_kind(p, FRACTIONAL)
        self._start_slice(p, burst)
        return True

    def _mark_changed(self) -> None:
        if self.gc is not None:
            if self.frozen:
                self.gc.set_mark_cpus(0)
            else:
                self.gc.set_mark_cpus(self._n_mark, self._n_idle_mark)

    def stop_the_world(self, duration_s: float, then) -> None:
        """Stop every P for ``duration_s`` (running goroutines go to the global queue), then ``then()``."""
        if self.quota_cores is not None:
            self._quota_advance()
        self._stw = True
        for p in self.ps:
            self._pause(p)
            if p.g is not None:
                self.global_q.append(p.g)
                p.g = None
            p.pending = True
            p.is_idle = False
            self._set_kind(p, None)
        self.idle_ps.clear()
        self._cpu_changed()
        self._mark_changed()
        self.env.timeout(duration_s).callbacks.append(lambda _event: self._start_the_world(then))

    def _start_the_world(self, then) -> None:
        then()
        if self.quota_cores is not None:
            self._quota_advance()
        self._stw = False
        self._sysmon_wake()
        self._thaw()

    def mark_started(self, dedicated: int, fractional: float) -> None:
        self.marking = True
        self._dedicated_left = dedicated
        self._fractional = fractional
        self._mark_start = self.env.now
        for p in self.ps:
            p.frac_time = 0.0

    def mark_ended(self) -> None:
        self.marking = False
        self._dedicated_left = 0
        for p in self.ps:
            if p.kind in MARK_KINDS:
                self._pause(p)
                if p.kind is not IDLE_MARK:
                    p.pending = True
                self._set_kind(p, None)

    def _thaw(self) -> None:
        if self.frozen:
            return
        self._cpu_changed()
        self._mark_changed()
        for p in self.ps:
            if p.active is False and p.kind in (RUN, ASSIST, FRACTIONAL):
                self._resume(p)
        for p in self.ps:
            if p.pending:
                p.pending = False
                if p.kind is None and not p.is_idle:
                    self._schedule(p)
        while self.idle_ps and (self.global_q or self.netpoll_list):
            p = self._take_idle()
            self._schedule(p)
