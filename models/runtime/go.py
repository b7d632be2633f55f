"""The Go runtime, detailed fidelity: G/M/P scheduling of every goroutine, with the collector.

A request handed to :meth:`GoRuntime.execute` becomes a goroutine (a plain
:class:`G` object: its steps and where it is in them); only the clock drives
it, with one SimPy timeout per CPU slice, so 100,000 parked goroutines cost
memory, not events. GOMAXPROCS Ps run the schedule loop of
``runtime/proc.go`` (``schedule`` / ``findRunnable``):

1. during a GC mark, a GC worker first (``findRunnableGCWorker``): the first
   Ps to schedule become the dedicated workers (handing their local queue to
   the global queue, as a preempted dedicated worker does), the others run a
   fractional worker while their share of mark time is below the goal, in
   bursts that end when it exceeds 1.2 times the goal, checked every
   ``drainCheckThreshold`` = 100,000 bytes of scan work (``mgcmark.go``);
2. every 61st schedule, one goroutine from the global run queue;
3. ``runnext``, then the local run queue (256 slots, ``runtime2.go``);
4. ``findRunnable``: a batch from the global queue
   (``min(len/GOMAXPROCS + 1, 128)``), the network poller (all ready
   goroutines: one runs, the others go to idle Ps through the global queue and
   to the local queue, as ``injectglist``), then stealing half of a victim's
   local queue, or its ``runnext`` as a last resort (``runqsteal``), visiting
   the other Ps from a random start;
5. otherwise the P is idle, or, during a mark, an idle mark worker until work
   arrives (``gcMarkWorkerIdleMode``).

A goroutine readied by another (channel, WaitGroup, ``go`` statement) goes to
the readying P's ``runnext``, pushing the old one to the local queue, whose
overflow moves half of it to the global queue (``runqput`` /
``runqputslow``); an idle P is woken (``wakep``). A :class:`~models.runtime.protocol.Wait`
parks the goroutine in the netpoller: when its event fires, an idle P (blocked
in ``netpoll``) takes it at once; if none is idle it waits until a P polls in
``findRunnable`` or sysmon, which polls when nobody has for 10 ms, injects it
into the global queue. A :class:`~models.runtime.protocol.Syscall` hands the P
off at once (``entersyscallblock`` / ``handoffp``); on return the goroutine
takes an idle P or joins the global queue (``exitsyscall``). Sysmon wakes every
10 ms (its back-off ceiling; 20 µs after activity, FIGURES.md, ``sysmon``) and
preempts a goroutine that has run 10 ms since it was scheduled
(``forcePreemptNS``): it goes to the global queue (``gopreempt_m``), so a hog
runs slices of 10-20 ms. A stop-the-world preempts every running goroutine the
same way.

A container CPU quota (``quota_cores``) is a budget of ``quota * 100 ms`` of
CPU per CFS period (100 ms, the kernel's default ``cpu.cfs_period_us``) spent
by every P running a goroutine or a GC worker; when it is spent, every P stops
until the next period, with its goroutine in place: the throttling tail.

Goroutine creation (:class:`Go`) costs the parent CPU (calibration
``go.goroutine.spawn_s``: spawn, first run and exit, amortised) and every live
goroutine holds a stack (calibration ``go.goroutine.stack_bytes``, StackInuse
per blocked goroutine; at least 2 KiB, ``_StackMin`` in ``runtime/stack.go``);
the stacks are GC roots: they are scanned and they raise the heap goal.
Channels and WaitGroups (:mod:`models.runtime.gosteps`) let a handler fan out
and wait (:func:`fan_out`).

Not modelled: Ms as such (a thread is always there for a P), spinning Ms and
the latency of waking one (an idle P starts at once), the 20 µs grace before
sysmon retakes the P of a non-blocking syscall (every Syscall step hands off),
the victim order of stealing (Go walks all Ps in a random coprime order; here
from a random start, in order), timers, and locked threads.

Metrics under ``NAME`` (``go``): ``NAME.goroutines``, ``NAME.stack_bytes``,
``NAME.memory_in_use_bytes`` (heap live + stacks), ``NAME.procs_busy`` (gauges);
``NAME.preemptions``, ``NAME.steals``, ``NAME.throttled_periods`` (counters);
``NAME.throttled_s`` (histogram of stalls); and the collector's (``NAME.gc.*``,
see :mod:`models.runtime.gogc`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

import simpy

from sim.core import Environment
from sim.dists import Constant, Distribution, Uniform
from sim.params import load_params, param_dist, param_value
from models.runtime.gogc import GCConfig, GoGC, HeapAccounting
from models.runtime.gosteps import Chan, Go, Join, Recv, Send, WaitGroup, fan_out
from models.runtime.protocol import Compute, Step, Syscall, Wait

__all__ = ["Chan", "G", "Go", "GoRuntime", "Join", "P", "Recv", "Send", "WaitGroup", "fan_out"]

LOCAL_RUNQ_SLOTS = 256
"""``len(p.runq)`` (runtime2.go)."""
GLOBAL_QUEUE_EVERY = 61
"""``schedule`` checks the global queue when ``schedtick % 61 == 0`` (proc.go)."""
GLOBAL_BATCH_MAX = LOCAL_RUNQ_SLOTS // 2
FORCE_PREEMPT_S = 10e-3
"""``forcePreemptNS`` (proc.go)."""
SYSMON_PERIOD_S = 10e-3
"""sysmon's sleep once backed off (proc.go ``sysmon``: 20 µs doubling to 10 ms)."""
NETPOLL_STALE_S = 10e-3
"""sysmon polls the network if nobody has for 10 ms (proc.go ``sysmon``)."""
STACK_MIN_BYTES = 2048
"""``_StackMin`` (runtime/stack.go): the smallest stack a goroutine starts with."""
CFS_PERIOD_S = 0.1
"""Linux CFS bandwidth control default period, ``cpu.cfs_period_us`` = 100 ms (kernel docs, sched-bwc)."""
DRAIN_CHECK_BYTES = 100_000
"""``drainCheckThreshold`` (mgcmark.go): a fractional worker checks its share every 100,000 bytes of work."""
SPAWN_PARAM = "go.goroutine.spawn_s"
STACK_PARAM = "go.goroutine.stack_bytes"


def calibrated(name: str) -> Distribution:
    """A calibrated parameter set as a distribution (a measured constant becomes a constant)."""
    params = load_params(name)
    if params.get("kind") == "constant":
        return Constant(param_value(name))
    return param_dist(name)

RUN, ASSIST, DEDICATED, FRACTIONAL, IDLE_MARK = "run", "assist", "dedicated", "fractional", "idle_mark"
CPU_KINDS = frozenset({RUN, ASSIST, DEDICATED, FRACTIONAL, IDLE_MARK})
MARK_KINDS = frozenset({DEDICATED, FRACTIONAL, IDLE_MARK})


class G:
    """A goroutine: its steps, the position in them and what it has consumed."""

    __slots__ = (
        "id", "steps", "pc", "remaining", "alloc_left", "heap_bytes", "assist_credit", "assist_due",
        "done", "born", "wg", "cpu_s",
    )

    def __init__(self, id: int, steps: Sequence[Any], done: simpy.Event | None, born: float,
                 wg: WaitGroup | None) -> None:
        self.id = id
        self.steps = steps
        self.pc = 0
        self.remaining: float | None = None
        self.alloc_left = 0.0
        self.heap_bytes = 0.0
        self.assist_credit = 0.0
        self.assist_due = 0.0
        self.done = done
        self.born = born
        self.wg = wg
        self.cpu_s = 0.0


class P:
    """A processor: local run queue, runnext, and what it is running."""

    __slots__ = (
        "id", "runq", "runnext", "schedtick", "g", "kind", "slice_start", "slice_len", "token",
        "active", "sched_when", "frac_time", "frac_left", "pending", "is_idle",
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
        self.token = 0
        self.active = False
        self.sched_when = 0.0
        self.frac_time = 0.0
        self.frac_left = 0.0
        self.pending = False
        self.is_idle = False


class GoRuntime(HeapAccounting):
    """A Go process: GOMAXPROCS Ps, a collector, an optional CPU quota (see the module docstring)."""

    def __init__(
        self,
        env: Environment,
        procs: int,
        gc: GCConfig | None = None,
        quota_cores: float | None = None,
        spawn: Distribution | None = None,
        stack_bytes: float | None = None,
        name: str = "go",
    ) -> None:
        if procs < 1:
            raise ValueError(f"{name}.procs: must be >= 1 (got {procs})")
        if quota_cores is not None and quota_cores <= 0:
            raise ValueError(f"{name}.quota_cores: must be > 0 (got {quota_cores})")
        self.env = env
        self.name = name
        self.procs = procs
        self.ps = [P(i) for i in range(procs)]
        self.global_q: deque[G] = deque()
        self.netpoll_list: list[G] = []
        self.idle_ps: list[P] = []
        self._last_poll = 0.0
        self._next_id = 0
        self.alive = 0
        self._reachable = 0.0
        self._n_cpu = 0
        self._n_mark = 0
        self._n_idle_mark = 0
        self._stw = False
        self._throttled = False
        self.marking = False
        self._dedicated_left = 0
        self._fractional = 0.0
        self._mark_start = 0.0
        self.spawn_cost = (spawn if spawn is not None else calibrated(SPAWN_PARAM)).sampler(
            env.rng(f"{name}.spawn")
        )
        self.stack_per_g = float(stack_bytes if stack_bytes is not None else param_value(STACK_PARAM))
        if self.stack_per_g < STACK_MIN_BYTES:
            raise ValueError(f"{name}.stack_bytes: must be >= {STACK_MIN_BYTES} (got {self.stack_per_g})")
        self._uniform = Uniform(0.0, 1.0).sampler(env.rng(f"{name}.steal"))
        metrics = env.metrics
        self.goroutines = metrics.gauge(f"{name}.goroutines")
        self.stack_bytes = metrics.gauge(f"{name}.stack_bytes")
        self.memory_bytes = metrics.gauge(f"{name}.memory_in_use_bytes")
        self.procs_busy = metrics.gauge(f"{name}.procs_busy")
        self.preemptions = metrics.counter(f"{name}.preemptions")
        self.steals = metrics.counter(f"{name}.steals")
        self.throttled_periods = metrics.counter(f"{name}.throttled_periods")
        self.throttled_s = metrics.histogram(f"{name}.throttled_s")
        self.gc: GoGC | None = None
        if gc is not None and gc.enabled:
            self.gc = GoGC(env, gc, procs, name=f"{name}.gc")
            self.gc.host = self
            if not self.gc.enabled:
                self.gc = None
        for p in self.ps:
            self._idle(p)
        self.quota_cores = quota_cores
        if quota_cores is not None:
            self._budget = quota_cores * CFS_PERIOD_S
            self._used = 0.0
            self._acc_t = env.now
            self._period_end = env.now + CFS_PERIOD_S
            self._throttle_started = 0.0
            self._qtoken = 0
            env.process(self._cfs_periods())
        env.process(self._sysmon())

    # ------------------------------------------------------------ public API
    def execute(self, steps: Sequence[Step | Any]) -> simpy.Event:
        """Run a request as a goroutine readied by the netpoller; the event's value is its latency."""
        done = self.env.event()
        self._netpoll_ready(self._new_g(steps, done, None))
        return done

    def go(self, steps: Sequence[Step | Any], wg: WaitGroup | None = None) -> G:
        """Start a goroutine from outside any goroutine (it joins the global run queue)."""
        g = self._new_g(steps, None, wg)
        self._ready(g, None)
        return g

    def roots_bytes(self) -> float:
        return self.alive * self.stack_per_g

    def reachable_bytes(self) -> float:
        return self._reachable

    @property
    def frozen(self) -> bool:
        return self._stw or self._throttled

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
        self.memory_bytes.set(heap + stacks)

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
        p = self.idle_ps.pop()
        p.is_idle = False
        if p.kind is IDLE_MARK:
            self._set_kind(p, None)
        return p

    def _idle(self, p: P) -> None:
        p.is_idle = True
        self.idle_ps.append(p)
        self._set_kind(p, IDLE_MARK if self.marking else None)

    def _netpoll_ready(self, g: G) -> None:
        if self.idle_ps and not self.frozen:
            p = self._take_idle()
            self._last_poll = self.env.now
            self._execute(p, g)
        else:
            self.netpoll_list.append(g)

    def _exitsyscall(self, g: G) -> None:
        if self.idle_ps and not self.frozen:
            self._execute(self._take_idle(), g)
        else:
            self.global_q.append(g)

    # -------------------------------------------------------------- schedule
    def _schedule(self, p: P) -> None:
        if self.frozen:
            p.pending = True
            self._set_kind(p, None)
            return
        if self.marking and self._gc_worker(p):
            return
        p.schedtick += 1
        g = None
        if p.schedtick % GLOBAL_QUEUE_EVERY == 0 and self.global_q:
            g = self.global_q.popleft()
        if g is None:
            if p.runnext is not None:
                g, p.runnext = p.runnext, None
            elif p.runq:
                g = p.runq.popleft()
            else:
                g = self._findrunnable(p)
        if g is None:
            self._idle(p)
        else:
            self._execute(p, g)

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

    def _findrunnable(self, p: P) -> G | None:
        gq = self.global_q
        if gq:
            n = min(len(gq), len(gq) // self.procs + 1, GLOBAL_BATCH_MAX)
            g = gq.popleft()
            for _ in range(n - 1):
                p.runq.append(gq.popleft())
            return g
        if self.netpoll_list:
            ready, self.netpoll_list = self.netpoll_list, []
            self._last_poll = self.env.now
            g = ready[0]
            rest = ready[1:]
            spare = min(len(self.idle_ps), len(rest))
            gq.extend(rest[:spare])
            for other in rest[spare:]:
                if len(p.runq) < LOCAL_RUNQ_SLOTS:
                    p.runq.append(other)
                else:
                    gq.append(other)
            for _ in range(spare):
                self._wakep()
            return g
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
        for offset in range(self.procs):
            victim = ps[(start + offset) % self.procs]
            if victim is not p and victim.runnext is not None and victim.kind is RUN:
                g, victim.runnext = victim.runnext, None
                self.steals.inc()
                return g
        return None

    # ------------------------------------------------------------- execution
    def _execute(self, p: P, g: G) -> None:
        p.g = g
        p.sched_when = self.env.now
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
                self.env.timeout(step.duration_s).callbacks.append(lambda _event, g=g: self._exitsyscall(g))
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
        p.token += 1
        p.active = True
        p.slice_start = self.env.now
        p.slice_len = length
        token = p.token
        self.env.timeout(length).callbacks.append(lambda _event: self._slice_end(p, token))

    def _slice_end(self, p: P, token: int) -> None:
        if token != p.token or not p.active:
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
        p.token += 1
        self._consume(p, self.env.now - p.slice_start)

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

    def _mark_changed(self) -> None:
        if self.gc is not None:
            if self.frozen:
                self.gc.set_mark_cpus(0)
            else:
                self.gc.set_mark_cpus(self._n_mark, self._n_idle_mark)

    # ------------------------------------------------------ preempt and STW
    def _preempt(self, p: P) -> None:
        """``gopreempt_m``: the running goroutine goes to the global queue; the P schedules."""
        self._pause(p)
        g = p.g
        assert g is not None
        p.g = None
        self.global_q.append(g)
        self.preemptions.inc()
        self._schedule(p)

    def _sysmon(self):
        env = self.env
        while True:
            yield env.timeout(SYSMON_PERIOD_S)
            if self.frozen:
                continue
            now = env.now
            if self.netpoll_list and now - self._last_poll >= NETPOLL_STALE_S:
                ready, self.netpoll_list = self.netpoll_list, []
                self._last_poll = now
                self.global_q.extend(ready)
                for _ in range(min(len(ready), len(self.idle_ps))):
                    self._wakep()
            for p in self.ps:
                if (p.kind is RUN or p.kind is ASSIST) and now - p.sched_when >= FORCE_PREEMPT_S:
                    self._preempt(p)

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

    # ---------------------------------------------------------- CPU quota
    def _quota_advance(self) -> None:
        now = self.env.now
        busy = 0 if self.frozen else self._n_cpu
        self._used += busy * (now - self._acc_t)
        self._acc_t = now

    def _quota_schedule(self) -> None:
        self._qtoken += 1
        busy = 0 if self.frozen else self._n_cpu
        if busy == 0:
            return
        left = max(self._budget - self._used, 0.0)
        delay = left / busy
        if self.env.now + delay >= self._period_end - 1e-12:
            return
        token = self._qtoken
        self.env.timeout(delay).callbacks.append(lambda _event: self._throttle(token))

    def _throttle(self, token: int) -> None:
        if token != self._qtoken or self.frozen:
            return
        self._quota_advance()
        self._throttled = True
        self._throttle_started = self.env.now
        self.throttled_periods.inc()
        for p in self.ps:
            self._pause(p)
        self._cpu_changed()
        self._mark_changed()

    def _cfs_periods(self):
        env = self.env
        while True:
            yield env.timeout(self._period_end - env.now)
            self._quota_advance()
            self._used = 0.0
            self._period_end = env.now + CFS_PERIOD_S
            if self._throttled:
                self._throttled = False
                self.throttled_s.record(env.now - self._throttle_started)
                self._thaw()
            else:
                self._quota_schedule()
