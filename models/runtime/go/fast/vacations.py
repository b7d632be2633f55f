"""The fast Go fidelity's side of the collector: mark workers and stop-the-world as server vacations.

Part of :class:`models.runtime.go.fast.runtime.FastGoRuntime`, the host of
:class:`models.runtime.go.gc.GoGC` there, as :mod:`models.runtime.go.detailed.gcwork`
is in the detailed model, and doing what it does (``findRunnableGCWorker``,
``runtime/mgc.go``; ``stopTheWorld`` / ``startTheWorld``, ``runtime/proc.go``):
during a mark the first servers to schedule become dedicated workers (their
queues go to the global queue) until the mark ends; the others run fractional
bursts while their share of mark time is at most the goal, until it exceeds
1.2 times the goal (at least ``drainCheckThreshold`` of scan work); idle
servers mark. A stop-the-world stops every server, sends the requests they run
to the global queue and, when the world starts again, lets every server
schedule.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from models.runtime.go.detailed.sched import DRAIN_CHECK_BYTES

if TYPE_CHECKING:
    from models.runtime.go.fast.runtime import Job, Server
    from models.runtime.go.gc import GoGC

BURST, DEDICATED = "burst", "dedicated"
"""What a server runs for the collector: a fractional worker's burst, or a dedicated worker."""


class Vacations:
    """Mark workers and stop-the-world (a part of ``FastGoRuntime``)."""

    env: Any
    servers: list[Server]
    global_q: deque[Job]
    idle: list[Server]
    gc: GoGC | None
    frozen: bool
    marking: bool
    _dedicated_left: int
    _fractional: float
    _mark_start: float
    _n_mark: int

    # --------------------------------------------------------- mark workers
    def _gc_worker(self, server: Server) -> bool:
        """``findRunnableGCWorker``: a dedicated worker while some are missing, else a fractional burst
        while the server's share of mark time is at most the goal."""
        if self._dedicated_left > 0:
            self._dedicated_left -= 1
            self.global_q.extend(server.queue)
            server.queue.clear()
            server.kind = DEDICATED
            self._n_mark += 1
            self._busy_changed()
            if self.global_q:
                self._wakep()
            return True
        goal = self._fractional
        if goal <= 0:
            return False
        delta = self.env.now - self._mark_start
        if delta > 0 and server.frac_time / delta > goal:
            return False
        assert self.gc is not None
        burst = max((1.2 * goal * delta - server.frac_time) / (1 - 1.2 * goal), DRAIN_CHECK_BYTES / self.gc.mark_rate)
        server.kind = BURST
        self._n_mark += 1
        self._busy_changed()
        self._start(server, burst)
        return True

    def _stop_burst(self, server: Server, done: float) -> None:
        server.token += 1
        server.frac_time += done
        server.kind = None
        self._n_mark -= 1
        self._busy_changed()

    # ------------------------------------------------------------ GC host
    def stop_the_world(self, duration_s: float, then) -> None:
        """Every server stops; running requests go to the global queue (``gopreempt_m``)."""
        for server in self.servers:
            self._pause(server)
            if server.job is not None:
                self.global_q.append(server.job)
                self._release(server)
            if server.kind is DEDICATED:
                server.kind = None
                self._n_mark -= 1
            if server.idle:
                server.idle = False
                if self.marking:
                    self._n_mark -= 1
            server.pending = True
        self.idle.clear()
        self.frozen = True
        self._busy_changed()
        self.env.timeout(duration_s).callbacks.append(lambda _event: self._start_the_world(then))

    def _start_the_world(self, then) -> None:
        then()
        self.frozen = False
        for server in self.servers:
            if server.pending:
                server.pending = False
                self._schedule(server)
        while self.idle and (self.global_q or self.netpoll):
            self._schedule(self._take_idle())
        self._busy_changed()
        self._arm()

    def mark_started(self, dedicated: int, fractional: float) -> None:
        """Called with the world stopped: the first servers to schedule become dedicated workers;
        the others run fractional bursts."""
        self.marking = True
        self._dedicated_left = dedicated
        self._fractional = fractional
        self._mark_start = self.env.now
        for server in self.servers:
            server.frac_time = 0.0

    def mark_ended(self) -> None:
        self.marking = False
        self._dedicated_left = 0
        self._fractional = 0.0
        for server in self.servers:
            if server.kind is BURST or server.kind is DEDICATED:
                if server.kind is BURST:
                    self._stop_burst(server, self.env.now - server.start)
                else:
                    server.kind = None
                    self._n_mark -= 1
                server.pending = True
            elif server.idle:
                self._n_mark -= 1
        self._busy_changed()
