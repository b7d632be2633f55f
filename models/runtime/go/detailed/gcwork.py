"""The Go scheduler's side of the collector: mark workers and stopping the world.

A component of the detailed runtime (:class:`models.runtime.go.detailed.runtime.GoRuntime`),
and the host of its collector (:class:`models.runtime.go.gc.GoGC`), which calls
it to stop the world and to start and end a mark. During a mark, ``schedule`` first offers the P a GC worker
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

from collections.abc import Callable

from sim.core import Environment
from models.runtime.go.constants import DEDICATED, IDLE_MARK
from models.runtime.go.detailed.quota import CFSQuota
from models.runtime.go.detailed.sched import Scheduler
from models.runtime.go.detailed.state import P
from models.runtime.go.detailed.sysmon import Sysmon
from models.runtime.go.gc import GoGC


class GCWorkers:
    """Mark workers, stop-the-world and start-the-world: the collector's host (:class:`~models.runtime.go.gc.GCHost`)
    in the detailed runtime. ``quota`` is charged up to each stop; ``sysmon`` is woken when the world starts."""

    def __init__(self, env: Environment, sched: Scheduler, sysmon: Sysmon, quota: CFSQuota | None) -> None:
        self.env = env
        self.sched = sched
        self.sysmon = sysmon
        self.quota = quota
        self.gc: GoGC | None = sched.heap.gc
        self.procs = sched.procs
        if self.gc is not None:
            self.gc.host = self

    def gc_worker(self, p: P) -> bool:
        """``findRunnableGCWorker`` (:meth:`~models.runtime.go.policy.MarkPhase.worker`): ``p`` becomes a
        dedicated worker (its queues go to the global queue, as a preempted dedicated worker's do) or runs a
        fractional burst; False if neither."""
        sched = self.sched
        assert self.gc is not None
        work = sched.mark.worker(p.frac_time, self.env.now, self.gc.bytes_per_cpu_s)
        if work is None:
            return False
        kind, burst = work
        if kind is DEDICATED:
            global_q = sched.global_q
            if p.runnext is not None:
                global_q.append(p.runnext)
                p.runnext = None
            global_q.extend(p.runq)
            p.runq.clear()
            sched.set_kind(p, DEDICATED)
            if global_q:
                sched.wakep()
            return True
        p.frac_left = burst
        sched.set_kind(p, kind)
        sched.start_slice(p, burst)
        return True

    # ------------------------------------------------------------ GC host
    def roots_bytes(self) -> float:
        return self.sched.roots_bytes()

    def reachable_bytes(self) -> float:
        return self.sched.heap.reachable

    def stop_the_world(self, duration_s: float, then: Callable[[], None]) -> None:
        """Stop every P for ``duration_s`` (running goroutines go to the global queue), then ``then()``."""
        sched = self.sched
        if self.quota is not None:
            self.quota.advance()
        sched.stw = True
        for p in sched.ps:
            sched.pause(p)
            if p.g is not None:
                sched.global_q.append(p.g)
                p.g = None
            p.pending = True
            p.is_idle = False
            sched.set_kind(p, None)
        sched.idle_ps.clear()
        sched.cpu_changed()
        sched.mark_changed()
        self.env.timeout(duration_s).callbacks.append(lambda _event: self._start_the_world(then))

    def _start_the_world(self, then: Callable[[], None]) -> None:
        then()
        if self.quota is not None:
            self.quota.advance()
        self.sched.stw = False
        self.sysmon.wake()
        self.sched.thaw()

    def mark_started(self, dedicated: int, fractional: float) -> None:
        self.sched.mark.started(dedicated, fractional, self.env.now)
        for p in self.sched.ps:
            p.frac_time = 0.0

    def mark_ended(self) -> None:
        sched = self.sched
        sched.mark.ended()
        for p in sched.ps:
            if p.kind is not None and p.kind.marks:
                sched.pause(p)
                if p.kind is not IDLE_MARK:
                    p.pending = True
                sched.set_kind(p, None)
