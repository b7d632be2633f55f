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

The class here is one part of :class:`models.runtime.go.detailed.runtime.GoRuntime`; the
collector's workers, the netpoller, sysmon and the CPU quota are the others.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import simpy

from sim.timers import Timer
from models.machine.cores import Cores
from models.runtime.go.gc import Allocating
from models.runtime.go.steps import Chan, Go, Join, Recv, Send, Sleep, WaitGroup
from models.runtime.protocol import Compute, Syscall, Wait

LOCAL_RUNQ_SLOTS = 256
"""``len(p.runq)`` (runtime2.go)."""
GLOBAL_QUEUE_EVERY = 61
"""``schedule`` checks the global queue when ``schedtick % 61 == 0`` (proc.go)."""
GLOBAL_BATCH_MAX = LOCAL_RUNQ_SLOTS // 2
STACK_MIN_BYTES = 2048
"""``_StackMin`` (runtime/stack.go): the smallest stack a goroutine starts with."""
DRAIN_CHECK_BYTES = 100_000
"""``drainCheckThreshold`` (mgcmark.go): a fractional worker checks its share every 100,000 bytes of work."""
SPAWN_PARAM = "go.goroutine.spawn_s"
STACK_PARAM = "go.goroutine.stack_bytes"


RUN, ASSIST, DEDICATED, FRACTIONAL, IDLE_MARK = "run", "assist", "dedicated", "fractional", "idle_mark"
CPU_KINDS = frozenset({RUN, ASSIST, DEDICATED, FRACTIONAL, IDLE_MARK})
MARK_KINDS = frozenset({DEDICATED, FRACTIONAL, IDLE_MARK})


class G(Allocating):
    """A goroutine: its steps, the position in them and what it has consumed."""

    __slots__ = ("id", "wg", "cpu_s", "wake_at", "observe")

    def __init__(self, id: int, steps: Sequence[Any], done: simpy.Event | None, born: float,
                 wg: WaitGroup | None) -> None:
        super().__init__(steps, done, born)
        self.id = id
        self.wg = wg
        self.cpu_s = 0.0
        self.wake_at = 0.0
        self.observe: Callable[[float], None] | None = None


class P:
    """A processor: local run queue, runnext, and what it is running; its ``timer``, which ends the
    current CPU slice, is set by the runtime. Its thread runs at ``rate`` of a core's speed: 1, or 0 while it
    waits for its turn on a core it shares (:mod:`models.machine.cores`)."""

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
        self.kind: str | None = None
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


class Scheduler:
    """Run queues, ``schedule`` / ``findRunnable``, and running goroutines (a part of ``GoRuntime``)."""

    env: Any
    name: str
    procs: int
    ps: list[P]
    global_q: deque[G]
    idle_ps: list[P]
    marking: bool
    quota_cores: float | None
    cores: Cores | None

    # ------------------------------------------------------------ goroutines
    def _new_g(self, steps: Sequence[Any], done: simpy.Event | None, wg: WaitGroup | None) -> G:
        self._next_id += 1
        g = G(self._next_id, steps, done, self.env.now, wg)
        self.alive += 1
        self._memory_changed()
        return g

    def _memory_changed(self) -> None:
        stacks = self.alive * self.stack_per_g
        self.goroutines.set(self.alive)
        self.stack_bytes.set(stacks)
        heap = self.gc.heap_live if self.gc is not None else self._reachable
        self.memory_bytes.set(self.process_bytes + heap + stacks)

    def _exit(self, p: P, g: G) -> None:
        self.alive -= 1
        self._reachable -= g.heap_bytes
        self._memory_changed()
        p.g = None
        wg = g.wg
        if wg is not None:
            wg.count -= 1
            if wg.count == 0:
                waiters, wg.waiters = wg.waiters, []
                for waiter in waiters:
                    self._runqput(p, waiter)
                self._wakep()
        if g.done is not None:
            g.done.succeed(self.env.now - g.born)
        if self.cores is not None:
            self.cores.yield_core(p)
        self._schedule(p)

    # ------------------------------------------------------------ run queues
    def _runqput(self, p: P, g: G) -> None:
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

    def _ready(self, g: G, p: P | None) -> None:
        if p is not None:
            self._runqput(p, g)
        else:
            self.global_q.append(g)
        self._wakep()

    def _wakep(self) -> None:
        if self.idle_ps and not self.frozen:
            self._schedule(self._take_idle())

    def _take_idle(self) -> P:
        """An idle P, to schedule now; one running the idle mark worker stops it, its thread still awake (the M
        goes from the worker to ``schedule`` without sleeping: on placed cores it keeps its core)."""
        p = self.idle_ps.pop()
        p.is_idle = False
        if p.kind is IDLE_MARK:
            self._set_kind(p, RUN)
        return p

    def _idle(self, p: P) -> None:
        p.is_idle = True
        self.idle_ps.append(p)
        self._set_kind(p, IDLE_MARK if self.marking else None)

    # -------------------------------------------------------------- schedule
    def _schedule(self, p: P) -> None:
        if self.frozen:
            p.pending = True
            self._set_kind(p, None)
            return
        if p.expired:
            self._run_timers(p)
        if self.marking and self._gc_worker(p):
            return
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
                g = self._findrunnable(p)
        if g is None:
            self._idle(p)
        else:
            self._execute(p, g, inherit)

    def _findrunnable(self, p: P) -> G | None:
        gq = self.global_q
        if gq:
            n = min(len(gq), len(gq) // self.procs + 1, GLOBAL_BATCH_MAX)
            g = gq.popleft()
            for _ in range(n - 1):
                p.runq.append(gq.popleft())
            return g
        if self.netpoll_list:
            return self._poll_network(p)
        if self.procs == 1:
            return None
        start = int(self._uniform() * self.procs)
        ps = self.ps
        for offset in range(self.procs):
            victim = ps[(start + offset) % self.procs]
            if victim is p or not victim.runq:
                continue
            take = len(victim.runq) - len(victim.runq) // 2
            g = victim.runq.popleft()
            for _ in range(take - 1):
                p.runq.append(victim.runq.popleft())
            self.steals.inc()
            return g
        g = self._steal_timers(p)
        if g is not None:
            return g
        for offset in range(self.procs):
            victim = ps[(start + offset) % self.procs]
            if victim is not p and victim.runnext is not None and victim.kind is RUN:
                g, victim.runnext = victim.runnext, None
                self.steals.inc()
                return g
        return None

    # ------------------------------------------------------------- execution
    def _execute(self, p: P, g: G, inherit: bool = False) -> None:
        """``execute``: ``schedtick`` counts the goroutines started without inheriting the time slice."""
        if not inherit:
            p.schedtick += 1
        if g.observe is not None:
            g.observe(self.env.now - g.wake_at)
            g.observe = None
        p.g = g
        self._set_kind(p, RUN)
        self._run(p)

    def _run(self, p: P) -> None:
        """Advance ``p``'s goroutine through its steps until it needs CPU time, blocks or ends."""
        g = p.g
        assert g is not None
        steps = g.steps
        while True:
            if g.assist_due > 0:
                self._set_kind(p, ASSIST)
                if self.gc is not None:
                    self.gc.add_assisting(1)
                self._start_slice(p, g.assist_due)
                return
            if p.kind is not RUN:
                self._set_kind(p, RUN)
            if g.pc >= len(steps):
                self._exit(p, g)
                return
            step = steps[g.pc]
            kind = type(step)
            if kind is Compute or kind is Go:
                if g.remaining is None:
                    if kind is Compute:
                        g.remaining, g.alloc_left = step.cpu_s, step.alloc_bytes
                    else:
                        g.remaining, g.alloc_left = self.spawn_cost(), 0.0
                if g.remaining > 0:
                    self._start_slice(p, g.remaining)
                    return
                if g.alloc_left > 0:
                    self._allocate(g, g.alloc_left)
                    g.alloc_left = 0.0
                self._cpu_step_done(p, g, step)
                continue
            g.pc += 1
            if kind is Wait:
                event = step.until()
                if event.callbacks is None:  # already processed: no need to park
                    continue
                event.callbacks.append(lambda _event, g=g: self._netpoll_ready(g))
                self._park(p)
                return
            if kind is Syscall:
                self._sysmon_wake()
                self.env.timeout(step.duration_s).callbacks.append(lambda _event, g=g: self._exitsyscall(g))
                self._park(p)
                return
            if kind is Sleep:
                self._sleep(p, g, step)
                self._park(p)
                return
            if kind is Send:
                if self._send(p, g, step.chan):
                    continue
                self._park(p)
                return
            if kind is Recv:
                if self._recv(p, g, step.chan):
                    continue
                self._park(p)
                return
            if kind is Join:
                if step.wg.count <= 0:
                    continue
                step.wg.waiters.append(g)
                self._park(p)
                return
            raise TypeError(f"{self.name}: unknown step {step!r}")

    def _cpu_step_done(self, p: P, g: G, step: Any) -> None:
        g.remaining = None
        g.pc += 1
        if type(step) is Go:
            child = self._new_g(step.steps, None, step.wg)
            self._runqput(p, child)
            self._wakep()

    def _park(self, p: P) -> None:
        p.g = None
        self._schedule(p)

    def _send(self, p: P, g: G, chan: Chan) -> bool:
        """True if the send completes now; otherwise ``g`` waits in the channel's send queue."""
        if chan.recvq:
            self._ready(chan.recvq.popleft(), p)
            return True
        if chan.buffered < chan.capacity:
            chan.buffered += 1
            return True
        chan.sendq.append(g)
        return False

    def _recv(self, p: P, g: G, chan: Chan) -> bool:
        if chan.buffered > 0:
            chan.buffered -= 1
            if chan.sendq:  # a blocked sender's value takes the freed slot
                chan.buffered += 1
                self._ready(chan.sendq.popleft(), p)
            return True
        if chan.sendq:
            self._ready(chan.sendq.popleft(), p)
            return True
        chan.recvq.append(g)
        return False

    # ----------------------------------------------------------------- slices
    def _start_slice(self, p: P, length: float) -> None:
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
            self._schedule(p)
            return
        g = p.g
        assert g is not None
        if p.kind is RUN and g.remaining is not None and g.remaining <= 1e-15:
            step = g.steps[g.pc]
            self._cpu_step_done(p, g, step)
        self._run(p)

    def _consume(self, p: P, dt: float) -> None:
        """Account ``dt`` seconds of the current slice of ``p``."""
        kind = p.kind
        if kind is FRACTIONAL:
            p.frac_time += dt
            p.frac_left -= dt
            return
        g = p.g
        assert g is not None
        g.cpu_s += dt
        if kind is ASSIST:
            g.assist_due = max(g.assist_due - dt, 0.0)
            if self.gc is not None:
                self.gc.add_assisting(-1)
            return
        before = g.remaining
        assert before is not None
        g.remaining = before - dt
        self._allocate_share(g, before, dt)

    def _pause(self, p: P) -> None:
        """Stop ``p``'s running slice now, keeping what was done."""
        if not p.active:
            return
        p.active = False
        p.timer.cancel()
        self._consume(p, p.slice_done + (self.env.now - p.slice_start) * p.rate)

    def _resume(self, p: P) -> None:
        if p.kind is FRACTIONAL:
            self._start_slice(p, max(p.frac_left, 0.0))
        elif p.kind is RUN or p.kind is ASSIST:
            self._run(p)

    def _set_kind(self, p: P, kind: str | None) -> None:
        old = p.kind
        if old is kind:
            return
        if self.quota_cores is not None:
            self._quota_advance()
        p.kind = kind
        d_cpu = (kind in CPU_KINDS) - (old in CPU_KINDS)
        if d_cpu and self.cores is not None:
            if d_cpu > 0:
                self.cores.wake(p)
            else:
                self.cores.sleep(p)
        d_mark = (kind in MARK_KINDS) - (old in MARK_KINDS)
        d_idle = (kind is IDLE_MARK) - (old is IDLE_MARK)
        self._n_idle_mark += d_idle
        if d_cpu:
            self._n_cpu += d_cpu
            self._cpu_changed()
        if d_mark or d_idle:
            self._n_mark += d_mark
            self._mark_changed()

    def _cpu_changed(self) -> None:
        busy = 0 if self.frozen else self._n_cpu
        self.procs_busy.set(busy)
        if self.quota_cores is not None:
            self._quota_schedule()

    def _preempt(self, p: P) -> None:
        """``gopreempt_m``: the running goroutine goes to the global queue; the P schedules."""
        self._pause(p)
        g = p.g
        assert g is not None
        p.g = None
        self.global_q.append(g)
        self.preemptions.inc()
        self._schedule(p)
