"""The Go runtime, fast fidelity: GOMAXPROCS servers sharing one queue, GC as vacations.

What it keeps of :mod:`models.runtime.go`: GOMAXPROCS servers; a request's CPU
runs in turns of at most 10 ms (``forcePreemptNS``) and a preempted request
goes to the back of the one queue, so short requests are served first come
first served and long ones share the CPUs round-robin, the processor-sharing
limit; the same collector (:class:`~models.runtime.gogc.GoGC`), fed by the
same allocations, whose stop-the-world pauses stop every server (vacations)
and send the requests they interrupt to the back of the queue, and whose mark takes the dedicated workers' servers away and slows the others
by the fractional share, with idle servers marking; mark assists lengthen the
allocating request's CPU time.

What it leaves out: per-P run queues, ``runnext``, stealing, the netpoller's
10 ms poll under load, sysmon's 10-20 ms slices (a turn is exactly 10 ms),
goroutine creation, channels, and the CPU quota. Requests may contain
:class:`~models.runtime.protocol.Compute`, :class:`~models.runtime.protocol.Wait`
and :class:`~models.runtime.protocol.Syscall` steps only. The tests hold its
mean and p99 latency to the detailed model's (``tests/test_go_fast.py``).

Metrics: ``NAME.goroutines`` and ``NAME.memory_in_use_bytes`` (gauges),
``NAME.procs_busy``, and the collector's under ``NAME.gc``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import simpy

from sim.core import Environment
from sim.params import param_value
from models.runtime.go import DRAIN_CHECK_BYTES, FORCE_PREEMPT_S, STACK_MIN_BYTES, STACK_PARAM
from models.runtime.gogc import GCConfig, GoGC, HeapAccounting
from models.runtime.protocol import Compute, Step, Syscall, Wait


class Job:
    """One request: its steps, position, remaining CPU and heap it keeps reachable."""

    __slots__ = ("steps", "pc", "remaining", "alloc_left", "heap_bytes", "assist_credit", "assist_due",
                 "done", "born")

    def __init__(self, steps: Sequence[Any], done: simpy.Event, born: float) -> None:
        self.steps = steps
        self.pc = 0
        self.remaining: float | None = None
        self.alloc_left = 0.0
        self.heap_bytes = 0.0
        self.assist_credit = 0.0
        self.assist_due = 0.0
        self.done = done
        self.born = born


class Server:
    __slots__ = ("job", "start", "work", "token", "active", "turn_left", "just_freed", "frac_time", "burst",
                 "assisting")

    def __init__(self) -> None:
        self.assisting = False
        self.just_freed = False
        self.frac_time = 0.0
        self.burst = False
        self.job: Job | None = None
        self.start = 0.0
        self.work = 0.0
        self.token = 0
        self.active = False
        self.turn_left = 0.0


class FastGoRuntime(HeapAccounting):
    """GOMAXPROCS servers, one queue, 10 ms turns, and the Go collector (see the module docstring)."""

    def __init__(
        self, env: Environment, procs: int, gc: GCConfig | None = None, stack_bytes: float | None = None,
        name: str = "go",
    ) -> None:
        if procs < 1:
            raise ValueError(f"{name}.procs: must be >= 1 (got {procs})")
        self.stack_per_g = float(stack_bytes if stack_bytes is not None else param_value(STACK_PARAM))
        if self.stack_per_g < STACK_MIN_BYTES:
            raise ValueError(f"{name}.stack_bytes: must be >= {STACK_MIN_BYTES} (got {self.stack_per_g})")
        self.env = env
        self.name = name
        self.procs = procs
        self.queue: deque[Job] = deque()
        self.servers = [Server() for _ in range(procs)]
        self.free = list(self.servers)
        self.available = procs
        self.frozen = False
        self.marking = False
        self._dedicated = 0
        self._fractional = 0.0
        self._bursting = 0
        self._mark_start = 0.0
        self.alive = 0
        self._reachable = 0.0
        metrics = env.metrics
        self.goroutines = metrics.gauge(f"{name}.goroutines")
        self.memory_bytes = metrics.gauge(f"{name}.memory_in_use_bytes")
        self.procs_busy = metrics.gauge(f"{name}.procs_busy")
        self.gc: GoGC | None = None
        if gc is not None and gc.enabled:
            self.gc = GoGC(env, gc, procs, name=f"{name}.gc")
            self.gc.host = self
            if not self.gc.enabled:
                self.gc = None

    # ---------------------------------------------------------------- public
    def execute(self, steps: Sequence[Step]) -> simpy.Event:
        done = self.env.event()
        self.alive += 1
        self._memory_changed()
        self._enqueue(Job(steps, done, self.env.now))
        return done

    def roots_bytes(self) -> float:
        return self.alive * self.stack_per_g

    def reachable_bytes(self) -> float:
        return self._reachable

    # ----------------------------------------------------------- the queue
    @property
    def busy(self) -> int:
        return self.procs - len(self.free)

    def _memory_changed(self) -> None:
        self.goroutines.set(self.alive)
        heap = self.gc.heap_live if self.gc is not None else self._reachable
        self.memory_bytes.set(heap + self.alive * self.stack_per_g)

    def _busy_changed(self) -> None:
        self.procs_busy.set(0 if self.frozen else self.busy)
        if self.gc is not None and self.marking:
            idle = 0.0 if self.frozen else self._idle_servers()
            self.gc.set_mark_cpus(self._mark_cpus(), idle)

    def _mark_cpus(self) -> float:
        if self.frozen:
            return 0.0
        return self._dedicated + self._bursting + self._idle_servers()

    def _idle_servers(self) -> float:
        return max(self.available - self.busy, 0)

    def _enqueue(self, job: Job) -> None:
        self.queue.append(job)
        self._dispatch()

    def _dispatch(self) -> None:
        changed = False
        while not self.frozen and self.free and self.busy < self.available:
            server = self.free.pop()
            if server.just_freed:
                server.just_freed = False
                if self._fractional > 0 and self._start_burst(server):
                    changed = True
                    continue
            if not self.queue:
                self.free.append(server)
                break
            server.job = self.queue.popleft()
            server.turn_left = FORCE_PREEMPT_S
            changed = True
            self._run(server)
        if changed:
            self._busy_changed()

    def _release(self, server: Server) -> None:
        server.job = None
        server.active = False
        server.just_freed = True
        self.free.append(server)
        self._busy_changed()

    # -------------------------------------------------- fractional workers
    def _start_burst(self, server: Server) -> bool:
        """As in the detailed model: a freed server whose share of mark time is at most the goal
        runs a fractional worker until its share exceeds 1.2 times the goal."""
        goal = self._fractional
        delta = self.env.now - self._mark_start
        if delta > 0 and server.frac_time / delta > goal:
            return False
        assert self.gc is not None
        burst = max((1.2 * goal * delta - server.frac_time) / (1 - 1.2 * goal), DRAIN_CHECK_BYTES / self.gc.mark_rate)
        server.burst = True
        server.token += 1
        server.start = self.env.now
        server.work = burst
        server.active = True
        self._bursting += 1
        token = server.token
        self.env.timeout(burst).callbacks.append(lambda _event: self._end_burst(server, token))
        return True

    def _end_burst(self, server: Server, token: int) -> None:
        if token != server.token or not server.burst:
            return
        self._stop_burst(server, server.work)
        self._dispatch()

    def _stop_burst(self, server: Server, done: float) -> None:
        server.burst = False
        server.active = False
        server.token += 1
        server.frac_time += done
        self._bursting -= 1
        self.free.append(server)
        self._busy_changed()

    def _run(self, server: Server) -> None:
        job = server.job
        assert job is not None
        steps = job.steps
        while True:
            if job.pc >= len(steps):
                self.alive -= 1
                self._reachable -= job.heap_bytes
                self._memory_changed()
                self._release(server)
                job.done.succeed(self.env.now - job.born)
                self._dispatch()
                return
            step = steps[job.pc]
            kind = type(step)
            if kind is Compute:
                if job.remaining is None:
                    job.remaining, job.alloc_left = step.cpu_s, step.alloc_bytes
                work = job.remaining + job.assist_due
                if work > 1e-15:
                    if server.turn_left <= 1e-15:  # turn over: to the back of the queue
                        self._release(server)
                        self._enqueue(job)
                        return
                    if job.assist_due > 1e-15:  # the assist first, as its own turn (GC CPU)
                        server.assisting = True
                        if self.gc is not None:
                            self.gc.add_assisting(1)
                        self._start(server, min(job.assist_due, server.turn_left))
                    else:
                        self._start(server, min(job.remaining, server.turn_left))
                    return
                if job.alloc_left > 0:
                    self._allocate(job, job.alloc_left)
                    job.alloc_left = 0.0
                    if job.assist_due > 0:
                        continue
                job.remaining = None
                job.pc += 1
                continue
            job.pc += 1
            if kind is Wait:
                event = step.until()
                if event.callbacks is None:
                    continue
                event.callbacks.append(lambda _event, job=job: self._enqueue(job))
            elif kind is Syscall:
                self.env.timeout(step.duration_s).callbacks.append(lambda _event, job=job: self._enqueue(job))
            else:
                raise TypeError(f"{self.name}: the fast fidelity runs Compute, Wait and Syscall steps, not {step!r}")
            self._release(server)
            self._dispatch()
            return

    # ---------------------------------------------------------------- turns
    def _start(self, server: Server, work: float) -> None:
        server.token += 1
        server.active = True
        server.start = self.env.now
        server.work = work
        token = server.token
        self.env.timeout(work).callbacks.append(lambda _event: self._end(server, token))

    def _end(self, server: Server, token: int) -> None:
        if token != server.token or not server.active:
            return
        server.active = False
        self._consume(server, server.work)
        self._run(server)

    def _consume(self, server: Server, work: float) -> None:
        if server.assisting:
            server.assisting = False
            if self.gc is not None:
                self.gc.add_assisting(-1)
        job = server.job
        assert job is not None and job.remaining is not None
        server.turn_left -= work
        if job.assist_due > 0:
            paid = min(job.assist_due, work)
            job.assist_due -= paid
            work -= paid
        if work <= 0:
            return
        before = job.remaining
        job.remaining = max(before - work, 0.0)
        self._allocate_share(job, before, work)

    def _pause_all(self) -> None:
        now = self.env.now
        for server in self.servers:
            if server.burst:
                self._stop_burst(server, now - server.start)
            elif server.active:
                server.active = False
                server.token += 1
                self._consume(server, now - server.start)

    def _resume_all(self) -> None:
        for server in self.servers:
            if server.job is not None and not server.active:
                self._run(server)

    # ------------------------------------------------------------ GC host
    def stop_the_world(self, duration_s: float, then) -> None:
        """Every server stops; running requests go to the back of the queue, as Go's preempted
        goroutines go to the global run queue (``gopreempt_m``)."""
        self._pause_all()
        self.frozen = True
        for server in self.servers:
            if server.job is not None:
                job = server.job
                server.job = None
                self.free.append(server)
                self.queue.append(job)
        self._busy_changed()
        self.env.timeout(duration_s).callbacks.append(lambda _event: self._restart(then))

    def _restart(self, then) -> None:
        then()
        self.frozen = False
        self._resume_all()
        self._dispatch()
        self._busy_changed()

    def mark_started(self, dedicated: int, fractional: float) -> None:
        """Called with the world stopped: the dedicated workers' servers go; the others run
        fractional bursts when freed."""
        self.marking = True
        self._dedicated = dedicated
        self._fractional = fractional
        self._mark_start = self.env.now
        for server in self.servers:
            server.frac_time = 0.0
            server.just_freed = True
        self.available = self.procs - dedicated
        # Requests on servers beyond the available ones go back to the head of the queue.
        over = self.busy - self.available
        for server in self.servers:
            if over <= 0:
                break
            if server.job is not None:
                job = server.job
                self._release(server)
                self.queue.appendleft(job)
                over -= 1

    def mark_ended(self) -> None:
        self.marking = False
        self._pause_all()
        self._dedicated = 0
        self._fractional = 0.0
        self.available = self.procs
        self._resume_all()
        self._dispatch()
