"""The Go runtime, detailed fidelity: G/M/P scheduling of every goroutine, with the collector.

A request handed to :meth:`GoRuntime.execute` becomes a goroutine (a plain
:class:`~models.runtime.go.detailed.sched.G` object: its steps and where it is in them);
only the clock drives it, with one SimPy timeout per CPU slice, so 100,000
parked goroutines cost memory, not events. GOMAXPROCS Ps run the schedule loop
of ``runtime/proc.go``. The runtime is assembled from one module per mechanism:

* :mod:`models.runtime.go.detailed.sched`: goroutines, Ps, run queues (``runnext``, the
  256-slot local queue, the global queue), ``schedule`` / ``findRunnable``,
  work stealing, execution in CPU slices, channels and WaitGroups;
* :mod:`models.runtime.go.detailed.netpoll`: the netpoller (a goroutine whose network
  wait ended is taken by an idle P at once, or waits for a P or sysmon to
  poll; a poll injects the whole ready batch), system calls (the P is handed
  off at once: ``entersyscallblock`` / ``handoffp``; ``exitsyscall``) and the
  timers of ``time.Sleep`` (:class:`~models.runtime.go.steps.Sleep`);
* :mod:`models.runtime.go.detailed.sysmon`: sysmon, sleeping 20 µs doubling to 10 ms
  when idle, deep asleep while every P is idle, which preempts a goroutine
  whose P has not scheduled since sysmon first saw it 10 ms before
  (``retake``, ``forcePreemptNS``; it goes to the global queue,
  ``gopreempt_m``), so a CPU-bound goroutine runs ~10-20 ms, and polls the
  network when nobody has for 10 ms;
* :mod:`models.runtime.go.detailed.gcwork`: the collector's mark workers (dedicated,
  fractional, idle) and stop-the-world, for :class:`models.runtime.go.gc.GoGC`;
* :mod:`models.runtime.go.detailed.quota`: a container CPU quota (CFS bandwidth control),
  which stops every P when the period's budget is spent;
* optionally, :mod:`models.machine.cores`: the machine's cores under the
  Ps' threads (a P that starts running wakes its thread, which Linux places on
  a core, possibly beside another; a P that goes idle puts it to sleep) and
  under sysmon's thread, whose rounds then take CPU from the thread on their
  core (``sysmon_cpu``, ``sysmon_late``; :mod:`models.runtime.go.detailed.sysmon`).

Goroutine creation (:class:`~models.runtime.go.steps.Go`) costs the parent CPU
(calibration ``go.goroutine.spawn_s``: spawn, first run and exit, amortised)
and every live goroutine holds a stack (calibration
``go.goroutine.stack_bytes``, StackInuse per blocked goroutine; at least
2 KiB, ``_StackMin`` in ``runtime/stack.go``); the stacks are GC roots: they
are scanned and they raise the heap goal. Channels and WaitGroups
(:mod:`models.runtime.go.steps`) let a handler fan out and wait
(:func:`fan_out`).

Not modelled: Ms as such (a thread is always there for a P; without ``cores``
it runs on a core of its own), spinning Ms and
the latency of waking one (an idle P starts at once), the 20 µs grace before
sysmon retakes the P of a non-blocking syscall (every Syscall step hands off),
the victim order of stealing (Go walks all Ps in a random coprime order; here
from a random start, in order), timers other than ``time.Sleep``'s, and locked
threads.

Metrics under ``NAME`` (``go``): ``NAME.goroutines``, ``NAME.stack_bytes``,
``NAME.memory_in_use_bytes`` (heap live + stacks, plus ``process_bytes`` if given: the
process's own resident memory), ``NAME.procs_busy`` (gauges);
``NAME.preemptions``, ``NAME.steals``, ``NAME.throttled_periods`` (counters);
``NAME.throttled_s`` (histogram of stalls); and the collector's (``NAME.gc.*``,
see :mod:`models.runtime.go.gc`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from functools import partial
from typing import Any

import simpy

from sim.core import Environment
from sim.dists import Distribution, Uniform
from sim.params import param_as_dist, param_value
from sim.timers import Timer
from models.machine.cores import Cores
from models.runtime.go.gc import GCConfig, HeapAccounting
from models.runtime.go.detailed.gcwork import GCWorkers
from models.runtime.go.detailed.netpoll import Netpoller
from models.runtime.go.detailed.quota import CFS_PERIOD_S, CFSQuota
from models.runtime.go.detailed.sched import (
    DRAIN_CHECK_BYTES, GLOBAL_BATCH_MAX, GLOBAL_QUEUE_EVERY, LOCAL_RUNQ_SLOTS, SPAWN_PARAM, STACK_MIN_BYTES,
    STACK_PARAM, G, P, Scheduler,
)
from models.runtime.go.steps import Chan, Go, Join, Recv, Send, Sleep, WaitGroup, fan_out
from models.runtime.go.detailed.sysmon import (
    FORCE_PREEMPT_S, NETPOLL_STALE_S, SYSMON_IDLE_ROUNDS, SYSMON_MIN_DELAY_S, SYSMON_PERIOD_S, WAKEUP_LATE_PARAM,
    Sysmon,
)
from models.runtime.protocol import Step

__all__ = [
    "CFS_PERIOD_S", "DRAIN_CHECK_BYTES", "FORCE_PREEMPT_S", "GLOBAL_BATCH_MAX", "GLOBAL_QUEUE_EVERY",
    "LOCAL_RUNQ_SLOTS", "NETPOLL_STALE_S", "SPAWN_PARAM", "STACK_MIN_BYTES", "STACK_PARAM", "SYSMON_IDLE_ROUNDS",
    "SYSMON_MIN_DELAY_S", "SYSMON_PERIOD_S", "WAKEUP_LATE_PARAM", "Chan", "G", "Go", "GoRuntime", "Join", "P",
    "Recv", "Send", "Sleep", "WaitGroup", "fan_out",
]


class GoRuntime(Scheduler, Netpoller, GCWorkers, CFSQuota, Sysmon, HeapAccounting):
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
        wakeup_late: Distribution | None = None,
        process_bytes: float = 0.0,
        cores: Cores | None = None,
        sysmon_cpu: Distribution | None = None,
        sysmon_late: Distribution | None = None,
    ) -> None:
        if procs < 1:
            raise ValueError(f"{name}.procs: must be >= 1 (got {procs})")
        if quota_cores is not None and quota_cores <= 0:
            raise ValueError(f"{name}.quota_cores: must be > 0 (got {quota_cores})")
        if quota_cores is not None and cores is not None:
            raise ValueError(f"{name}: a CPU quota and placed cores together are not modelled")
        self.env = env
        self.cores = cores
        self.name = name
        self.procs = procs
        self.ps = [P(i) for i in range(procs)]
        for p in self.ps:
            p.timer = Timer(env, partial(self._slice_end, p))
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
        self.spawn_cost = (spawn if spawn is not None else param_as_dist(SPAWN_PARAM)).sampler(
            env.rng(f"{name}.spawn")
        )
        self._wakeup_late = (wakeup_late if wakeup_late is not None else param_as_dist(WAKEUP_LATE_PARAM)).sampler(
            env.rng(f"{name}.wakeup")
        )
        self.process_bytes = float(process_bytes)
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
        self._start_collector(env, gc, procs, name)
        for p in self.ps:
            self._idle(p)
        self._init_quota(quota_cores)
        self._start_sysmon(sysmon_cpu, sysmon_late)

    # ------------------------------------------------------------ public API
    def execute(self, steps: Sequence[Step | Any]) -> simpy.Event:
        """Run a request as a goroutine readied by the netpoller; the event's value is its latency."""
        done = self.env.event()
        self._sysmon_wake()  # serving it reads the connection: entersyscall wakes a sleeping sysmon
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
