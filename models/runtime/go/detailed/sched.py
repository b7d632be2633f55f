"""The Go scheduler's core: goroutines, Ps, run queues, ``schedule`` and execution in CPU slices.

The part of the detailed runtime (:mod:`models.runtime.go.detailed.runtime`) that decides
which goroutine a P runs next and runs it, following ``runtime/proc.go``:

* ``runqput(pp, gp, next=true)``: a readied goroutine takes ``runnext``; the
  old one goes to the tail of the local queue (256 slots, ``runtime2.go``),
  whose overflow moves half of it to the global queue (``runqputslow``); an
  idle P is woken (``wakep``).
* ``schedule``: every 61st schedule one goroutine from the global queue, then
  ``runnext``, then the local queue, then ``findRunnable``: a batch from the
  global queue (``globrunqget``: ``min(len/GOMAXPROCS + 1, 128)``), the
  network poller (:mod:`models.runtime.go.detailed.netpoll`), then stealing half of a
  victim's local queue, then its expired timers, then its ``runnext`` as a
  last resort (``stealWork``, ``runqsteal``), visiting the other Ps from a
  random start; otherwise the P goes idle. Expired timers of the P itself run
  first (``checkTimers``), readying their goroutines into ``runnext``.
* ``execute``: ``schedtick`` counts the goroutines a P starts, except one
  taken from ``runnext``, which inherits the time slice (sysmon preempts by
  it, :mod:`models.runtime.go.detailed.sysmon`).
* A running goroutine advances through its steps; CPU work runs as one SimPy
  timeout per slice, cut short by a preemption (``gopreempt_m``: to the global
  queue), a stop-the-world or a CPU-quota stall, and resumed with what was
  done kept. Channel operations and WaitGroups (:mod:`models.runtime.go.steps`)
  ready the goroutine they unblock into the current P's ``runnext``.

:class:`Scheduler` holds the state the runtime's mechanisms share (the Ps, the
queues, the netpoller's ready list, whether the world is stopped or throttled,
how many Ps use CPU and mark) and runs the schedule loop. The other mechanisms
are components that take it in their constructors: the netpoller
(:class:`~models.runtime.go.detailed.netpoll.Netpoller`), sysmon
(:class:`~models.runtime.go.detailed.sysmon.Sysmon`), the CPU quota
(:class:`~models.runtime.go.detailed.quota.CFSQuota`) and the collector's
workers (:class:`~models.runtime.go.detailed.gcwork.GCWorkers`); the scheduler
calls the netpoller, the quota and the workers back once
:meth:`Scheduler.connect` has given it them (:class:`~models.runtime.go.detailed.runtime.GoRuntime`
builds and connects them all). The policy it shares with the fast fidelity
(the global queue's batch, stealing, the netpoll batch, the mark worker's
choice) is :mod:`models.runtime.go.policy`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import simpy

from sim.core import Environment
from sim.timers import Timer
from models.machine.cores import Cores
from models.runtime.go.constants import (
    ASSIST, FRACTIONAL, GLOBAL_QUEUE_EVERY, IDLE_MARK, LOCAL_RUNQ_SLOTS, RUN, CpuKind,
)
from models.runtime.go.detailed.state import G, P
from models.runtime.go.gc import GoGC, Heap
from models.runtime.go.policy import MarkPhase, ReadyList, steal_half, steal_start, take_global_batch
from models.runtime.go.steps import Go, Join, Recv, Send, Sleep, WaitGroup
from models.runtime.protocol import Compute, RequestTimes, Syscall, Wait

if TYPE_CHECKING:
    from models.runtime.go.detailed.gcwork import GCWorkers
    from models.runtime.go.detailed.netpoll import Netpoller
    from models.runtime.go.detailed.quota import CFSQuota


class Scheduler:
    """GOMAXPROCS Ps, the run queues and the schedule loop, and every goroutine (see the module docstring).

    ``spawn`` draws the CPU of a ``go`` statement, ``stack_per_g`` is each live goroutine's stack,
    ``process_bytes`` the process's own memory (for ``NAME.memory_in_use_bytes``), ``uniform`` draws where
    stealing starts, ``cores`` (optional) places the Ps' threads on the machine's cores.
    """

    def __init__(self, env: Environment, procs: int, heap: Heap, spawn: Callable[[], float],
                 stack_per_g: float, uniform: Callable[[], float], process_bytes: float = 0.0,
                 cores: Cores | None = None, name: str = "go") -> None:
        self.env = env
        self.procs = procs
        self.heap = heap
        self.spawn_cost = spawn
        self.stack_per_g = stack_per_g
        self.process_bytes = process_bytes
        self.cores = cores
        self.name = name
        self._uniform = uniform
        self.ps = [P(i) for i in range(procs)]
        for p in self.ps:
            p.timer = Timer(env, partial(self._slice_end, p))
        self._runqs = [p.runq for p in self.ps]
        self.global_q: deque[G] = deque()
        self.netpoll: ReadyList[G] = ReadyList()
        """The netpoller's ready list (:class:`~models.runtime.go.detailed.netpoll.Netpoller` fills it)."""
        self.idle_ps: list[P] = []
        self.mark = MarkPhase()
        self.stw = False
        """The world is stopped (:class:`~models.runtime.go.detailed.gcwork.GCWorkers`)."""
        self.throttled = False
        """The CPU quota is spent (:class:`~models.runtime.go.detailed.quota.CFSQuota`)."""
        self.n_cpu = 0
        """Ps using CPU (running a goroutine, an assist or a mark worker)."""
        self.n_mark = 0
        self.n_idle_mark = 0
        self._next_id = 0
        self.alive = 0
        metrics = env.metrics
        self.goroutines = metrics.gauge(f"{name}.goroutines")
        self.stack_bytes = metrics.gauge(f"{name}.stack_bytes")
        self.memory_bytes = metrics.gauge(f"{name}.memory_in_use_bytes")
        self.procs_busy = metrics.gauge(f"{name}.procs_busy")
        self.preemptions = metrics.counter(f"{name}.preemptions")
        self.steals = metrics.counter(f"{name}.steals")
        self.goroutine_switches = metrics.counter(f"{name}.goroutine_switches")
        self.context_switches = metrics.counter(f"{name}.context_switches")
        self.netpoller: Netpoller | None = None
        self.workers: GCWorkers | None = None
        self.quota: CFSQuota | None = None

    def connect(self, netpoller: Netpoller, workers: GCWorkers, quota: CFSQuota | None) -> None:
        """The components the schedule loop calls: the netpoller (network waits, system calls, timers), the
        collector's workers and, if the process has one, the CPU quota. Then every P goes idle."""
        self.netpoller = netpoller
        self.workers = workers
        self.quota = quota
        for p in self.ps:  # idle from the start: no M has run yet, so none is switched out
            p.is_idle = True
            self.idle_ps.append(p)

    @property
    def frozen(self) -> bool:
        """No P may run: the world is stopped or the quota is spent."""
        return self.stw or self.throttled

    # ------------------------------------------------------------ goroutines
    def new_g(self, steps: Sequence[Any], done: simpy.Event | None, wg: WaitGroup | None) -> G:
        self._next_id += 1
        g = G(self._next_id, steps, done, self.env.now, wg)
        self.alive += 1
        self._memory_changed()
        return g

    def roots_bytes(self) -> float:
        """The collector's roots: every live goroutine's stack."""
        return self.alive * self.stack_per_g

    def _memory_changed(self) -> None:
        stacks = self.alive * self.stack_per_g
        self.goroutines.set(self.alive)
        self.stack_bytes.set(stacks)
        self.memory_bytes.set(self.process_bytes + self.heap.in_use() + stacks)

    def _exit(self, p: P, g: G) -> None:
        """``goexit``: ``g`` ends on ``p``; ``p``'s caller schedules next (:meth:`run`)."""
        self.alive -= 1
        self.heap.free(g)
        self._memory_changed()
        p.g = None
        wg = g.wg
        if wg is not None:
            wg.count -= 1
            if wg.count == 0:
                waiters, wg.waiters = wg.waiters, []
                for waiter in waiters:
                    self.runqput(p, waiter)
                self.wakep()
        if g.done is not None:
            if g.times is not None and self.heap.gc is not None:
                g.times.leave(self.heap.gc.stopped_s())
            g.done.succeed(self.env.now - g.born)
        if self.cores is not None:
            self.cores.yield_core(p)

    # ------------------------------------------------------------ run queues
    def runqput(self, p: P, g: G) -> None:
        """``runqput(pp, gp, next=true)``: into runnext, the old one to the tail of the local queue."""
        old, p.runnext = p.runnext, g
        if old is None:
            return
        if len(p.runq) < LOCAL_RUNQ_SLOTS:
            p.runq.append(old)
            return
        # runqputslow: half of the local queue and the kicked goroutine go to the global queue.
        for _ in range(LOCAL_RUNQ_SLOTS // 2):
            self.global_q.append(p.runq.popleft())
        self.global_q.append(old)

    def ready(self, g: G, p: P | None) -> None:
        """``goready``: into ``p``'s runnext, or the global queue without a P; an idle P is woken."""
        if p is not None:
            self.runqput(p, g)
        else:
            self.global_q.append(g)
        self.wakep()

    def wakep(self) -> None:
        if self.idle_ps and not self.frozen:
            self.schedule(self.take_idle())

    def take_idle(self) -> P:
        """An idle P, to schedule now; one running the idle mark worker stops it, its thread still awake (the M
        goes from the worker to ``schedule`` without sleeping: on placed cores it keeps its core)."""
        p = self.idle_ps.pop()
        p.is_idle = False
        if p.kind is IDLE_MARK:
            self.set_kind(p, RUN)
        else:  # its M was parked (stopm): the kernel switches the thread in
            self.context_switches.inc()
        return p

    def idle(self, p: P) -> None:
        """``p`` has nothing to run: its M parks (``stopm``: a futex sleep, the thread switched out), or during
        a mark runs the idle mark worker, awake."""
        p.is_idle = True
        self.idle_ps.append(p)
        marking = self.mark.marking
        if not marking:
            self.context_switches.inc()
        self.set_kind(p, IDLE_MARK if marking else None)

    # -------------------------------------------------------------- schedule
    def schedule(self, p: P) -> None:
        """``schedule``: ``p`` runs what :meth:`pick` gives it."""
        if self.pick(p):
            self.run(p)

    def pick(self, p: P) -> bool:
        """``schedule``'s choice for ``p``: True when ``p`` has a goroutine to run (``p.g``, started by
        :meth:`start`); False when it is frozen, runs a mark worker or went idle."""
        if self.frozen:
            p.pending = True
            self.set_kind(p, None)
            return False
        netpoller = self.netpoller
        assert netpoller is not None and self.workers is not None, f"{self.name}: Scheduler.connect() first"
        if p.expired:
            netpoller.run_timers(p)
        if self.mark.marking and self.workers.gc_worker(p):
            return False
        g = None
        inherit = False
        if p.schedtick % GLOBAL_QUEUE_EVERY == 0 and self.global_q:
            g = self.global_q.popleft()
        if g is None:
            if p.runnext is not None:
                g, p.runnext = p.runnext, None
                inherit = True
            elif p.runq:
                g = p.runq.popleft()
            else:
                g = self._findrunnable(p, netpoller)
        if g is None:
            self.idle(p)
            return False
        self.start(p, g, inherit)
        return True

    def _findrunnable(self, p: P, netpoller: Netpoller) -> G | None:
        """``findRunnable``: the global queue's batch, the network, stealing half a queue, another P's expired
        timers, another P's runnext (:mod:`models.runtime.go.policy`)."""
        if self.global_q:
            return take_global_batch(self.global_q, p.runq, self.procs)
        if self.netpoll.ready:
            return netpoller.poll_network(p)
        if self.procs == 1:
            return None
        start = steal_start(self._uniform, self.procs)
        g = steal_half(self._runqs, p.runq, start)
        if g is not None:
            self.steals.inc()
            return g
        g = netpoller.steal_timers(p)
        if g is not None:
            return g
        ps = self.ps
        for offset in range(self.procs):
            victim = ps[(start + offset) % self.procs]
            if victim is not p and victim.runnext is not None and victim.kind is RUN:
                g, victim.runnext = victim.runnext, None
                self.steals.inc()
                return g
        return None

    # ------------------------------------------------------------- execution
    def execute(self, p: P, g: G, inherit: bool = False) -> None:
        """``execute``: ``p`` starts ``g`` (:meth:`start`) and runs it."""
        self.start(p, g, inherit)
        self.run(p)

    def start(self, p: P, g: G, inherit: bool = False) -> None:
        """``schedtick`` counts the goroutines started without inheriting the time slice."""
        if not inherit:
            p.schedtick += 1
        if g.observe is not None:
            g.observe(self.env.now - g.wake_at)
            g.observe = None
        self.goroutine_switches.inc()
        p.g = g
        self.set_kind(p, RUN)

    def run(self, p: P) -> None:
        """Run ``p``'s goroutine (:meth:`advance`) until it needs CPU time; each time it blocks or ends,
        ``p`` schedules (:meth:`pick`) and goes on with the next one here. A loop, not a call per
        goroutine: a run of goroutines that end or park without using CPU (a netpoll batch of them) would
        otherwise nest one call each, and a million would exceed Python's recursion limit."""
        g = p.g
        assert g is not None
        while self.advance(p, g):
            if not self.pick(p):
                return
            g = p.g
            assert g is not None

    def advance(self, p: P, g: G) -> bool:
        """Take ``g`` through its steps on ``p``: False once it is on CPU (a slice is running), True once it
        has blocked or ended and ``p`` must schedule."""
        steps, netpoller = g.steps, self.netpoller
        while True:
            if g.assist_due > 0:
                self.set_kind(p, ASSIST)
                gc = self.heap.gc
                if gc is not None:
                    gc.add_assisting(1)
                self.start_slice(p, g.assist_due)
                return False
            if p.kind is not RUN:
                self.set_kind(p, RUN)
            if g.pc >= len(steps):
                self._exit(p, g)
                return True
            step = steps[g.pc]
            kind = type(step)
            if kind is Compute or kind is Go:
                if g.remaining is None:
                    if kind is Compute:
                        g.remaining, g.alloc_left = step.cpu_s, step.alloc_bytes
                    else:
                        g.remaining, g.alloc_left = self.spawn_cost(), 0.0
                if g.remaining > 0:
                    self.start_slice(p, g.remaining)
                    return False
                if g.alloc_left > 0:
                    self.heap.allocate(g, g.alloc_left)
                    g.alloc_left = 0.0
                self._cpu_step_done(p, g, step)
                continue
            g.pc += 1
            if kind is Wait:
                event = step.until()
                if event.callbacks is None:  # already processed: no need to park
                    continue
                assert netpoller is not None
                if g.times is not None and self.heap.gc is not None:
                    self._waits(g, g.times, self.heap.gc, event, netpoller)
                else:
                    g.resume = netpoller.ready_from_net
                    event.callbacks.append(g)
                p.g = None
                return True
            if kind is Syscall:
                assert netpoller is not None
                netpoller.syscall(g, step.duration_s)
                p.g = None
                return True
            if kind is Sleep:
                assert netpoller is not None
                netpoller.sleep(p, g, step)
                p.g = None
                return True
            if kind is Send or kind is Recv:
                op = step.chan.send if kind is Send else step.chan.recv
                if op(g, lambda other, p=p: self.ready(other, p)):
                    continue
                p.g = None
                return True
            if kind is Join:
                if step.wg.count <= 0:
                    continue
                step.wg.waiters.append(g)
                p.g = None
                return True
            raise TypeError(f"{self.name}: unknown step {step!r}")

    @staticmethod
    def _waits(g: G, times: RequestTimes, gc: GoGC, event: simpy.Event, netpoller: Netpoller) -> None:
        """``g`` waits on ``event`` out of the runtime: the pauses meanwhile are not its
        (:class:`~models.runtime.protocol.RequestTimes`)."""
        times.leave(gc.stopped_s())

        def back(_event: simpy.Event) -> None:
            times.enter(gc.stopped_s())
            netpoller.netpoll_ready(g)

        event.callbacks.append(back)

    def _cpu_step_done(self, p: P, g: G, step: Any) -> None:
        g.remaining = None
        g.pc += 1
        if type(step) is Go:
            child = self.new_g(step.steps, None, step.wg)
            self.runqput(p, child)
            self.wakep()

    # ----------------------------------------------------------------- slices
    def start_slice(self, p: P, length: float) -> None:
        """``p`` works ``length`` seconds of CPU (at its thread's rate) unless paused first."""
        p.active = True
        p.slice_start = self.env.now
        p.slice_len = length
        p.slice_done = 0.0
        if p.rate == 1.0:  # the hot path: the P's thread has its core
            p.timer.set(length)
        else:
            p.timer.set_at_rate(length, p.rate)

    def _slice_end(self, p: P) -> None:
        if not p.active:
            return
        p.active = False
        self._consume(p, p.slice_len)
        if p.kind is FRACTIONAL:
            self.schedule(p)
            return
        g = p.g
        assert g is not None
        if p.kind is RUN and g.remaining is not None and g.remaining <= 1e-15:
            step = g.steps[g.pc]
            self._cpu_step_done(p, g, step)
        self.run(p)

    def _consume(self, p: P, dt: float) -> None:
        """Account ``dt`` seconds of the current slice of ``p``."""
        kind = p.kind
        if kind is FRACTIONAL:
            p.frac_time += dt
            p.frac_left -= dt
            return
        g = p.g
        assert g is not None
        if kind is ASSIST:
            g.assist_due = max(g.assist_due - dt, 0.0)
            if g.times is not None:
                g.times.assist_s += dt
            gc = self.heap.gc
            if gc is not None:
                gc.add_assisting(-1)
            return
        before = g.remaining
        assert before is not None
        g.remaining = before - dt
        self.heap.allocate_share(g, before, dt)

    def pause(self, p: P) -> None:
        """Stop ``p``'s running slice now, keeping what was done."""
        if not p.active:
            return
        p.active = False
        p.timer.cancel()
        self._consume(p, p.slice_done + (self.env.now - p.slice_start) * p.rate)

    def resume(self, p: P) -> None:
        if p.kind is FRACTIONAL:
            self.start_slice(p, max(p.frac_left, 0.0))
        elif p.kind is RUN or p.kind is ASSIST:
            self.run(p)

    def set_kind(self, p: P, kind: CpuKind | None) -> None:
        """``p`` now runs ``kind`` (None: nothing); the counts of Ps using CPU and marking follow, and so do
        its thread on placed cores and the quota's budget."""
        old = p.kind
        if old is kind:
            return
        quota = self.quota
        if quota is not None:
            quota.advance()
        p.kind = kind
        d_cpu = (kind is not None) - (old is not None)
        if d_cpu and self.cores is not None:
            if d_cpu > 0:
                self.cores.wake(p)
            else:
                self.cores.sleep(p)
        d_mark = (kind is not None and kind.marks) - (old is not None and old.marks)
        d_idle = (kind is IDLE_MARK) - (old is IDLE_MARK)
        self.n_idle_mark += d_idle
        if d_cpu:
            self.n_cpu += d_cpu
            self.cpu_changed()
        if d_mark or d_idle:
            self.n_mark += d_mark
            self.mark_changed()

    def cpu_changed(self) -> None:
        busy = 0 if self.frozen else self.n_cpu
        self.procs_busy.set(busy)
        if self.quota is not None:
            self.quota.schedule()

    def mark_changed(self) -> None:
        """Tell the collector how many Ps mark now (none while frozen), and how many of them are idle workers."""
        gc = self.heap.gc
        if gc is not None:
            if self.frozen:
                gc.set_mark_cpus(0)
            else:
                gc.set_mark_cpus(self.n_mark, self.n_idle_mark)

    def preempt(self, p: P) -> None:
        """``gopreempt_m``: the running goroutine goes to the global queue; the P schedules."""
        self.pause(p)
        g = p.g
        assert g is not None
        p.g = None
        self.global_q.append(g)
        self.preemptions.inc()
        self.schedule(p)

    def thaw(self) -> None:
        """The world starts again or the quota is refilled: Ps resume what they ran, those that wanted to
        schedule do, and idle Ps take queued work."""
        if self.frozen:
            return
        self.cpu_changed()
        self.mark_changed()
        for p in self.ps:
            if p.active is False and p.kind in (RUN, ASSIST, FRACTIONAL):
                self.resume(p)
        for p in self.ps:
            if p.pending:
                p.pending = False
                if p.kind is None and not p.is_idle:
                    self.schedule(p)
        while self.idle_ps and (self.global_q or self.netpoll.ready):
            p = self.take_idle()
            self.schedule(p)
