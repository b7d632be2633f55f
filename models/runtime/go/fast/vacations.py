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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from models.runtime.go.constants import DEDICATED, FRACTIONAL
from models.runtime.go.fast.servers import Job, Server
from models.runtime.go.gc import GoGC
from models.runtime.go.policy import MarkPhase, ReadyList


class Vacations:
    """Mark workers and stop-the-world (a part of ``FastGoRuntime``)."""

    env: Any
    servers: list[Server]
    global_q: deque[Job]
    idle: list[Server]
    gc: GoGC | None
    frozen: bool
    mark: MarkPhase
    netpoll: ReadyList[Job]
    _n_mark: int

    if TYPE_CHECKING:  # what the runtime this mixes into provides (FastGoRuntime)
        def _busy_changed(self) -> None: ...
        def _wakep(self) -> None: ...
        def _start(self, server: Server, work: float) -> None: ...
        def _pause(self, server: Server) -> None: ...
        def _release(self, server: Server) -> None: ...
        def _schedule(self, server: Server) -> None: ...
        def _take_idle(self) -> Server: ...
        def _arm(self) -> None: ...

    # --------------------------------------------------------- mark workers
    def _gc_worker(self, server: Server) -> bool:
        """``findRunnableGCWorker`` (:meth:`~models.runtime.go.policy.MarkPhase.worker`): a dedicated worker,
        a fractional burst, or nothing."""
        assert self.gc is not None
        work = self.mark.worker(server.frac_time, self.env.now, self.gc.bytes_per_cpu_s)
        if work is None:
            return False
        kind, burst = work
        server.kind = kind
        self._n_mark += 1
        self._busy_changed()
        if kind is DEDICATED:
            self.global_q.extend(server.queue)
            server.queue.clear()
            if self.global_q:
                self._wakep()
        else:
            self._start(server, burst)
        return True

    def _stop_burst(self, server: Server, done: float) -> None:
        server.token += 1
        server.frac_time += done
        server.kind = None
        self._n_mark -= 1
        self._busy_changed()

    # ------------------------------------------------------------ GC host
    def stop_the_world(self, duration_s: float, then: Callable[[], None]) -> None:
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
                if self.mark.marking:
                    self._n_mark -= 1
            server.pending = True
        self.idle.clear()
        self.frozen = True
        self._busy_changed()
        self.env.timeout(duration_s).callbacks.append(lambda _event: self._start_the_world(then))

    def _start_the_world(self, then: Callable[[], None]) -> None:
        then()
        self.frozen = False
        for server in self.servers:
            if server.pending:
                server.pending = False
                self._schedule(server)
        while self.idle and (self.global_q or self.netpoll.ready):
            self._schedule(self._take_idle())
        self._busy_changed()
        self._arm()

    def mark_started(self, dedicated: int, fractional: float) -> None:
        """Called with the world stopped: the first servers to schedule become dedicated workers;
        the others run fractional bursts."""
        self.mark.started(dedicated, fractional, self.env.now)
        for server in self.servers:
            server.frac_time = 0.0

    def mark_ended(self) -> None:
        self.mark.ended()
        for server in self.servers:
            if server.kind is FRACTIONAL or server.kind is DEDICATED:
                if server.kind is FRACTIONAL:
                    self._stop_burst(server, self.env.now - server.start)
                else:
                    server.kind = None
                    self._n_mark -= 1
                server.pending = True
            elif server.idle:
                self._n_mark -= 1
        self._busy_changed()
