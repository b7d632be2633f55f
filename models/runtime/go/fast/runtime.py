"""The Go runtime, fast fidelity: GOMAXPROCS servers fed in netpoll batches, GC as vacations, one calendar.

What it keeps of the detailed model (:mod:`models.runtime.go.detailed.runtime`), mechanism by
mechanism, so that the two agree in mean and p99 (``tests/test_go_fast.py``):

* **Servers and queues.** GOMAXPROCS servers, each with its own FIFO queue
  (a P's local run queue), a global queue and the netpoller's ready list. A
  request arriving (its goroutine readied by the netpoller) takes an idle
  server at once; otherwise it waits in the ready list. A freed server takes,
  in ``schedule`` / ``findRunnable`` order (``runtime/proc.go``): the global
  queue every 61st request it starts, its own queue, a batch of the global
  queue (``globrunqget``), *every* ready request of the netpoller
  (``netpoll(0)``: it runs the first, ``injectglist`` hands one to each idle
  server through the global queue and queues the rest on its own queue), or
  half of another server's queue (``runqsteal``). The netpoller's batch comes
  newest first, as in the detailed model (the shared :mod:`models.runtime.go.policy`).
  So requests woken together
  wait behind each other on one server while a server that polls later serves
  newer ones: the batching that lengthens Go's tail against one shared FIFO
  queue (which, tried first, left p99 5-16 % short at loads 0.5-0.8).
* **Sysmon's poll.** When the ready list has not been polled for 10 ms,
  sysmon moves it to the global queue (``sysmon``, ``netpoll(0)``); here at
  exactly 10 ms after the last poll, where the detailed model's sysmon comes
  round on its own back-off schedule (:mod:`models.runtime.go.detailed.sysmon`).
* **Turns.** A request's CPU runs in turns of at most :data:`TURN_S`; a
  request whose turn is over goes to the global queue (``gopreempt_m``), so
  long requests share the servers round-robin, the processor-sharing limit.
* **The collector as vacations.** The same collector (:class:`~models.runtime.go.gc.GoGC`)
  fed by the same allocations: its stop-the-world pauses stop every server
  and send the requests they interrupt to the global queue; during a mark the
  dedicated workers take whole servers away, fractional workers take bursts of
  a server when it schedules (until its share of mark time exceeds 1.2 times
  the goal, as ``findRunnableGCWorker``), idle servers mark, and mark assists
  lengthen the allocating request's CPU time (:mod:`models.runtime.go.fast.vacations`).
  A request given a :class:`~models.runtime.protocol.RequestTimes` gets its assists and the
  pauses it sat through outside its waits, as in the detailed model.

What it leaves out: ``runnext`` (requests here ready no other goroutine),
goroutine creation, channels, timers, sysmon's cadence (its polls come 10 ms
after the last one; a turn is a fixed length where the detailed model preempts
on sysmon's second sighting), the steal victim's ``runnext``, and the CPU
quota. Requests may contain :class:`~models.runtime.protocol.Compute`,
:class:`~models.runtime.protocol.Wait` and :class:`~models.runtime.protocol.Syscall`
steps only. On a service whose requests never run 10 ms and whose Ps never go
10 ms without polling (go-http-service), it gives the detailed model's
latencies exactly: same queues, same order, same random streams.

**Why it is faster.** No SimPy process or event per request: the runtime
keeps its own calendar (the end of each server's turn or burst, sysmon's next
poll and the next arrival of a :class:`Feed`) and runs it inside one SimPy
callback, moving the clock from one of its events to the next
(:func:`sim.timers.advance_clock`) until a SimPy event (a collector's timer,
a network wait, the end of the run) is due; then one
:class:`~sim.timers.Timer` brings it back. Requests given through
:meth:`FastGoRuntime.execute` work too, at the price of their completion
event. What is left per request is the bookkeeping both models share (the
heap and its collector, the gauges), so it runs about 1.7 times as many
requests per second as the detailed model (``bench/bench_go.py``).

Metrics: ``NAME.goroutines`` and ``NAME.memory_in_use_bytes`` (gauges),
``NAME.procs_busy``, ``NAME.steals`` and the collector's under ``NAME.gc``.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Hashable, Sequence
from itertools import count

import simpy

from sim.core import Environment
from sim.dists import Uniform
from sim.params import param_value
from sim.timers import Timer, advance_clock
from models.runtime.go.constants import (
    ASSIST, FORCE_PREEMPT_S, FRACTIONAL, GLOBAL_QUEUE_EVERY, NETPOLL_STALE_S, RUN, STACK_MIN_BYTES, STACK_PARAM,
    SYSMON_PERIOD_S,
)
from models.runtime.go.fast.servers import Feed, Job, Server
from models.runtime.go.fast.vacations import Vacations
from models.runtime.go.gc import GCConfig, Heap
from models.runtime.go.policy import (
    MarkPhase, ReadyList, inject_global, inject_poll, steal_half, steal_start, take_global_batch,
)
from models.runtime.protocol import Compute, RequestTimes, Step, Syscall, Wait

TURN_S = FORCE_PREEMPT_S
"""The longest a request runs before it goes to the back of the global queue (``forcePreemptNS``)."""

class FastGoRuntime(Vacations):
    """GOMAXPROCS servers, netpoll batches, turns, and the Go collector (see the module docstring)."""

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
        self.servers = [Server() for _ in range(procs)]
        self._runqs = [server.queue for server in self.servers]
        self.global_q: deque[Job] = deque()
        self.netpoll: ReadyList[Job] = ReadyList()
        self.idle: list[Server] = []
        self.frozen = False
        self.mark = MarkPhase()
        self._n_run = 0
        self._n_mark = 0
        self._reported_marking = (0, 0)
        self.alive = 0
        self._calendar: list[tuple[float, int, Server, int]] = []
        self._sequence = count()
        self._timer = Timer(env, self._run_ahead)
        self._feed: Feed | None = None
        self._arrival: tuple[float, Sequence[Step], Hashable] | None = None
        self._poll_at = math.inf
        self._uniform = Uniform(0.0, 1.0).sampler(env.rng(f"{name}.steal"))
        self._resume_after_wait, self._resume_after_syscall = self._back_from_wait, self._back_from_syscall
        """Bound once: what a waiting request is resumed by (it is its own wait's callback, no closure)."""
        metrics = env.metrics
        self.goroutines = metrics.gauge(f"{name}.goroutines")
        self.memory_bytes = metrics.gauge(f"{name}.memory_in_use_bytes")
        self.procs_busy = metrics.gauge(f"{name}.procs_busy")
        self.steals = metrics.counter(f"{name}.steals")
        self.heap = Heap(env, gc, procs, name)
        self.gc = self.heap.gc
        if self.gc is not None:
            self.gc.host = self
        for server in self.servers:
            server.idle = True
            self.idle.append(server)

    # ---------------------------------------------------------------- public
    def execute(self, steps: Sequence[Step], times: RequestTimes | None = None) -> simpy.Event:
        """Run one request; the event's value is its latency. ``times``, if given, gets the mark assists it
        did and the stop-the-world pauses it sat through outside its waits (:class:`RequestTimes`); the time
        mark workers took its server from it stays out of them."""
        done = self.env.event()
        job = Job(steps, done, self.env.now)
        if times is not None:
            job.times = times
            if self.gc is not None:
                times.enter(self.gc.stopped_s())
        self._arrive(job)
        self._arm()
        return done

    def serve(self, feed: Feed) -> None:
        """Pull every request of ``feed`` at its arrival time and report each completion to it."""
        if self._feed is not None:
            raise RuntimeError(f"{self.name}: serve() takes one feed")
        self._feed = feed
        self._arrival = feed.next_request()
        self._arm()

    def roots_bytes(self) -> float:
        return self.alive * self.stack_per_g

    def reachable_bytes(self) -> float:
        return self.heap.reachable

    # ------------------------------------------------------------ calendar
    def _next_time(self) -> float:
        calendar, arrival = self._calendar, self._arrival
        first = calendar[0][0] if calendar else math.inf
        if arrival is not None and arrival[0] < first:
            first = arrival[0]
        return min(first, self._poll_at)

    def _arm(self) -> None:
        at = self._next_time()
        if at < math.inf:
            self._timer.set_no_later(max(at - self.env.now, 0.0))

    def _run_ahead(self) -> None:
        """Run the runtime's own events in time order until a SimPy event is due first."""
        env, calendar = self.env, self._calendar
        while True:
            first = calendar[0][0] if calendar else math.inf
            arrival = self._arrival
            poll = self._poll_at
            if poll < first and (arrival is None or poll <= arrival[0]):
                if not advance_clock(env, poll):
                    break
                self._poll_at = math.inf
                self._sysmon_poll()
                continue
            if arrival is not None and arrival[0] < first:
                if not advance_clock(env, arrival[0]):
                    break
                feed = self._feed
                assert feed is not None
                self._arrival = feed.next_request()
                at, steps, tag = arrival
                feed.arrived(tag)
                self._arrive(Job(steps, None, at, tag))
                continue
            if first == math.inf or not advance_clock(env, first):
                break
            _, _, server, token = heapq.heappop(calendar)
            if token == server.token:
                self._end_of_work(server)
        self._arm()

    # ------------------------------------------------------------- arrivals
    def _arrive(self, job: Job) -> None:
        self.alive += 1
        self._memory_changed()
        self._netpoll_ready(job)

    def _netpoll_ready(self, job: Job) -> None:
        if self.idle and not self.frozen:
            self.netpoll.last_poll = self.env.now
            self._execute(self._take_idle(), job)
        else:
            if not self.netpoll.ready and self._poll_at == math.inf:
                self._plan_sysmon_poll()
            self.netpoll.ready.append(job)

    def _plan_sysmon_poll(self) -> None:
        """Sysmon polls when the poller has gone unpolled for 10 ms (then every 10 ms while the world
        is stopped)."""
        now = self.env.now
        due = self.netpoll.last_poll + NETPOLL_STALE_S
        self._poll_at = due if due > now else now + SYSMON_PERIOD_S

    def _sysmon_poll(self) -> None:
        """``netpoll(0)`` in ``sysmon``: the ready requests go to the global queue, idle servers are woken."""
        netpoll = self.netpoll
        if not netpoll.ready:
            return
        now = self.env.now
        if self.frozen or not netpoll.stale(now):
            self._plan_sysmon_poll()
            return
        for _ in range(inject_global(netpoll.poll(now), self.global_q, len(self.idle))):
            self._wakep()

    def _back_from_wait(self, job: Job) -> None:
        if job.times is not None and self.gc is not None:
            job.times.enter(self.gc.stopped_s())
        self._netpoll_ready(job)
        self._arm()

    def _back_from_syscall(self, job: Job) -> None:
        if self.idle and not self.frozen:
            self._execute(self._take_idle(), job)
        else:
            self.global_q.append(job)
        self._arm()

    # ------------------------------------------------------------- schedule
    def _take_idle(self) -> Server:
        """An idle server, to be given work at once (which reports the change)."""
        server = self.idle.pop()
        server.idle = False
        if self.mark.marking:
            self._n_mark -= 1
        return server

    def _go_idle(self, server: Server) -> None:
        server.idle = True
        self.idle.append(server)
        if self.mark.marking:
            self._n_mark += 1
        self._busy_changed()

    def _wakep(self) -> None:
        if self.idle and not self.frozen:
            self._schedule(self._take_idle())

    def _schedule(self, server: Server) -> None:
        """``schedule``: the server takes what :meth:`_pick` gives it, and the next when that one leaves it
        without using CPU (ends, waits). A loop, not a call per request: a netpoll batch of requests that
        need no CPU would otherwise nest one call each and exceed Python's recursion limit."""
        while True:
            job = self._pick(server)
            if job is None or not self._begin(server, job):
                return

    def _pick(self, server: Server) -> Job | None:
        """``schedule``'s choice for the server: a request, or None when it is frozen, marks or went idle."""
        if self.frozen:
            server.pending = True
            return None
        if self.mark.marking and self._gc_worker(server):
            return None
        global_q = self.global_q
        job: Job | None
        if server.schedtick % GLOBAL_QUEUE_EVERY == 0 and global_q:
            job = global_q.popleft()
        elif server.queue:
            job = server.queue.popleft()
        else:
            job = self._find(server)
        if job is None:
            self._go_idle(server)
        return job

    def _find(self, server: Server) -> Job | None:
        """``findRunnable``: a batch of the global queue, the netpoller's batch, or a steal
        (:mod:`models.runtime.go.policy`)."""
        global_q, queue = self.global_q, server.queue
        if global_q:
            return take_global_batch(global_q, queue, self.procs)
        if self.netpoll.ready:
            ready = self.netpoll.poll(self.env.now)
            for _ in range(inject_poll(ready, queue, global_q, len(self.idle))):
                self._wakep()
            return ready[0]
        if self.procs == 1:
            return None
        stolen = steal_half(self._runqs, queue, steal_start(self._uniform, self.procs))
        if stolen is not None:
            self.steals.inc()
        return stolen

    # ------------------------------------------------------------- execution
    def _execute(self, server: Server, job: Job) -> None:
        """The server runs ``job`` (:meth:`_begin`), and schedules if it left at once."""
        if self._begin(server, job):
            self._schedule(server)

    def _begin(self, server: Server, job: Job) -> bool:
        """``execute``: the server starts ``job``; True if the job has left it already (the server must
        schedule), False if it is on CPU."""
        server.schedtick += 1  # execute(): no request inherits a time slice here
        server.job = job
        server.turn_left = TURN_S
        self._n_run += 1
        self._busy_changed()
        step = job.steps[job.pc] if job.pc < len(job.steps) else None
        if type(step) is Compute and job.remaining is None and job.assist_due <= 0 and step.cpu_s > 0:
            # a request starting its CPU work: what _run would do, without its loop
            job.remaining, job.alloc_left = step.cpu_s, step.alloc_bytes
            server.kind = RUN
            self._start(server, min(step.cpu_s, TURN_S))
            return False
        return self._run(server)

    def _release(self, server: Server) -> None:
        """The server's request leaves it (every caller schedules the server next, which reports)."""
        server.job = None
        server.kind = None
        self._n_run -= 1

    def _run(self, server: Server) -> bool:
        """Advance the server's request through its steps until it needs CPU (False), or blocks, ends or its
        turn is over (True: the server must schedule)."""
        job = server.job
        assert job is not None
        steps = job.steps
        while True:
            if job.assist_due > 0:
                server.kind = ASSIST
                if self.gc is not None:
                    self.gc.add_assisting(1)
                self._start(server, job.assist_due)
                return False
            if job.pc >= len(steps):
                self._exit(server, job)
                return True
            step = steps[job.pc]
            kind = type(step)
            if kind is Compute:
                if job.remaining is None:
                    job.remaining, job.alloc_left = step.cpu_s, step.alloc_bytes
                if job.remaining > 0:
                    if server.turn_left <= 1e-15:  # gopreempt_m: to the global queue
                        self._release(server)
                        self.global_q.append(job)
                        return True
                    server.kind = RUN
                    self._start(server, min(job.remaining, server.turn_left))
                    return False
                if job.alloc_left > 0:
                    self.heap.allocate(job, job.alloc_left)
                    job.alloc_left = 0.0
                job.remaining = None
                job.pc += 1
                continue
            job.pc += 1
            if kind is Wait:
                event = step.until()
                if event.callbacks is None:
                    continue
                if job.times is not None and self.gc is not None:
                    job.times.leave(self.gc.stopped_s())
                job.resume = self._resume_after_wait
                event.callbacks.append(job)
            elif kind is Syscall:
                job.resume = self._resume_after_syscall
                self.env.timeout(step.duration_s).callbacks.append(job)
            else:
                raise TypeError(f"{self.name}: the fast fidelity runs Compute, Wait and Syscall steps, not {step!r}")
            self._release(server)
            return True

    def _exit(self, server: Server, job: Job) -> None:
        """The request is done: it leaves and its completion is reported (the caller schedules the server)."""
        self.alive -= 1
        self.heap.free(job)
        self._memory_changed()
        server.job = None
        server.kind = None
        self._n_run -= 1
        latency = self.env.now - job.born
        if job.times is not None and self.gc is not None:
            job.times.leave(self.gc.stopped_s())
        if job.done is not None:
            job.done.succeed(latency)
        else:
            assert self._feed is not None
            self._feed.finished(job.tag, latency)

    def _start(self, server: Server, work: float) -> None:
        server.token = token = server.token + 1
        server.start = now = self.env.now
        server.work = work
        heapq.heappush(self._calendar, (now + work, next(self._sequence), server, token))

    def _end_of_work(self, server: Server) -> None:
        kind = server.kind
        if kind is RUN:  # the common case, inlined: _consume of a whole slice
            job = server.job
            assert job is not None and job.remaining is not None
            work = server.work
            server.turn_left -= work
            before = job.remaining
            left = before - work
            if left <= 1e-15:
                job.remaining = 0.0
                nbytes = job.alloc_left
                if nbytes > 0:
                    job.alloc_left = 0.0
                    self.heap.allocate(job, nbytes)
                if job.assist_due <= 0 and job.pc + 1 == len(job.steps):
                    job.remaining = None
                    job.pc += 1
                    self._exit(server, job)
                    self._schedule(server)
                    return
            else:
                job.remaining = left
                self.heap.allocate_share(job, before, work)
            if self._run(server):
                self._schedule(server)
        elif kind is FRACTIONAL:
            self._stop_burst(server, server.work)
            self._schedule(server)
        else:
            self._consume(server, server.work)
            if self._run(server):
                self._schedule(server)

    def _consume(self, server: Server, work: float) -> None:
        job = server.job
        assert job is not None
        if server.kind is ASSIST:
            job.assist_due = max(job.assist_due - work, 0.0)
            if job.times is not None:
                job.times.assist_s += work
            if self.gc is not None:
                self.gc.add_assisting(-1)
            return
        server.turn_left -= work
        before = job.remaining
        assert before is not None
        job.remaining = before - work
        if job.remaining <= 1e-15:
            job.remaining = 0.0
        self.heap.allocate_share(job, before, work)

    def _pause(self, server: Server) -> None:
        """Stop what ``server`` runs now, keeping what was done."""
        if server.kind is FRACTIONAL:
            self._stop_burst(server, self.env.now - server.start)
        elif server.kind is not None and server.job is not None:
            server.token += 1
            self._consume(server, self.env.now - server.start)
            server.kind = None

    # ----------------------------------------------------------- accounting
    def _memory_changed(self) -> None:
        self.goroutines.set(self.alive)
        self.memory_bytes.set(self.heap.in_use() + self.alive * self.stack_per_g)

    def _busy_changed(self) -> None:
        """Report a change of what the servers do: to the busy gauge, and to the collector while it marks."""
        if self.frozen:
            busy = 0
            marking = (0, 0)
        else:
            busy = self._n_run + self._n_mark
            marking = (self._n_mark, len(self.idle)) if self.mark.marking else (0, 0)
        if busy != self.procs_busy.level:
            self.procs_busy.set(busy)
        if marking != self._reported_marking and self.gc is not None:
            self._reported_marking = marking
            self.gc.set_mark_cpus(*marking)
