"""The Go runtime, detailed fidelity: G/M/P scheduling of every goroutine, with the collector.

A request handed to :meth:`GoRuntime.execute` becomes a goroutine (a plain
:class:`~models.runtime.go.detailed.sched.G` object: its steps and where it is in them);
only the clock drives it, with one SimPy timeout per CPU slice, so 100,000
parked goroutines cost memory, not events. GOMAXPROCS Ps run the schedule loop
of ``runtime/proc.go``. The runtime is built from one component per mechanism, each in its own
module, each taking what it uses in its constructor (:meth:`GoRuntime.__init__` shows the wiring):

* :mod:`models.runtime.go.detailed.sched` (``Scheduler``): goroutines, Ps, run queues (``runnext``, the
  256-slot local queue, the global queue), ``schedule`` / ``findRunnable``,
  work stealing, execution in CPU slices, channels and WaitGroups;
* :mod:`models.runtime.go.detailed.netpoll` (``Netpoller``): the netpoller (a goroutine whose network
  wait ended is taken by an idle P at once, or waits for a P or sysmon to
  poll; a poll injects the whole ready batch), system calls (the P is handed
  off at once: ``entersyscallblock`` / ``handoffp``; ``exitsyscall``) and the
  timers of ``time.Sleep`` (:class:`~models.runtime.go.steps.Sleep`);
* :mod:`models.runtime.go.detailed.sysmon` (``Sysmon``): sysmon, sleeping 20 µs doubling to 10 ms
  when idle, deep asleep while every P is idle, which preempts a goroutine
  whose P has not scheduled since sysmon first saw it 10 ms before
  (``retake``, ``forcePreemptNS``; it goes to the global queue,
  ``gopreempt_m``), so a CPU-bound goroutine runs ~10-20 ms, and polls the
  network when nobody has for 10 ms;
* :mod:`models.runtime.go.detailed.gcwork` (``GCWorkers``): the collector's mark workers (dedicated,
  fractional, idle) and stop-the-world, the host of :class:`models.runtime.go.gc.GoGC`;
* :mod:`models.runtime.go.detailed.quota` (``CFSQuota``): a container CPU quota (CFS bandwidth control),
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
``NAME.goroutine_switches`` (counter: goroutines a P starts running, ``execute``/``gogo``: switches in
user space, no kernel involved) and ``NAME.context_switches`` (counter: the kernel's switches of the
runtime's threads, in or out: an M parking when its P goes idle (``stopm``), one woken for an idle P
(``wakep``), each round of sysmon's thread (awake, then ``usleep``); on placed cores the kernel's
preemptions of the Ps' threads by other threads (:mod:`models.machine.cores`) are not counted, and an M
spinning before it parks is not modelled, so an M that parks and is woken again counts two);
``NAME.throttled_s`` (histogram of stalls); and the collector's (``NAME.gc.*``,
see :mod:`models.runtime.go.gc`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import simpy

from sim.core import Environment
from sim.dists import Distribution, Uniform
from sim.params import param_as_dist, param_value
from models.machine.cores import Cores
from models.runtime.go.constants import (
    SPAWN_PARAM, STACK_MIN_BYTES, STACK_PARAM, SYSMON_CPU_PARAM, SYSMON_LATE_PARAM, WAKEUP_LATE_PARAM,
)
from models.runtime.go.detailed.gcwork import GCWorkers
from models.runtime.go.detailed.netpoll import Netpoller
from models.runtime.go.detailed.quota import CFSQuota
from models.runtime.go.detailed.sched import Scheduler
from models.runtime.go.detailed.state import G
from models.runtime.go.detailed.sysmon import Sysmon
from models.runtime.go.gc import GCConfig, GoGC, Heap
from models.runtime.go.steps import WaitGroup
from models.runtime.protocol import RequestTimes, Step


class GoRuntime:
    """A Go process: GOMAXPROCS Ps, a collector, an optional CPU quota (see the module docstring).

    ``spawn``, ``stack_bytes`` and ``wakeup_late`` default to the calibrated ``go.goroutine.spawn_s``,
    ``go.goroutine.stack_bytes`` and ``go.sched.wakeup_late_s``; on placed ``cores``, ``sysmon_cpu`` and
    ``sysmon_late`` to ``machine.sysmon_off_s`` and ``machine.sysmon_late_s``. Its components are
    attributes: ``sched``, ``heap``, ``sysmon``, ``netpoller``, ``quota``, ``workers``.
    """

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
        stack_per_g = float(stack_bytes if stack_bytes is not None else param_value(STACK_PARAM))
        if stack_per_g < STACK_MIN_BYTES:
            raise ValueError(f"{name}.stack_bytes: must be >= {STACK_MIN_BYTES} (got {stack_per_g})")
        self.env = env
        self.name = name
        self.procs = procs
        self.cores = cores
        """The machine's cores the Ps' and sysmon's threads are placed on; None: a free core each."""
        rng = env.rng
        spawn_cost = (spawn if spawn is not None else param_as_dist(SPAWN_PARAM)).sampler(rng(f"{name}.spawn"))
        timer_late = (wakeup_late if wakeup_late is not None else param_as_dist(WAKEUP_LATE_PARAM)).sampler(
            rng(f"{name}.wakeup")
        )
        self.heap = Heap(env, gc, procs, name)
        self.sched = Scheduler(
            env, procs, self.heap, spawn_cost, stack_per_g, Uniform(0.0, 1.0).sampler(rng(f"{name}.steal")),
            process_bytes=float(process_bytes), cores=cores, name=name,
        )
        if cores is None:  # sysmon's thread has a processor of its own and sleeps as a timer does
            self.sysmon = Sysmon(env, self.sched, timer_late, name=name)
        else:
            self.sysmon = Sysmon(
                env, self.sched,
                (sysmon_late or param_as_dist(SYSMON_LATE_PARAM)).sampler(rng(f"{name}.sysmon_late")),
                cores=cores, cpu=(sysmon_cpu or param_as_dist(SYSMON_CPU_PARAM)).sampler(rng(f"{name}.sysmon_cpu")),
                name=name,
            )
        self.netpoller = Netpoller(env, self.sched, self.sysmon, timer_late)
        self.quota = CFSQuota(env, self.sched, quota_cores, name)
        active_quota = self.quota if self.quota.active else None
        self.workers = GCWorkers(env, self.sched, self.sysmon, active_quota)
        self.sched.connect(self.netpoller, self.workers, active_quota)
        self.quota.start()
        self.sysmon.start()
        sched = self.sched
        self.goroutines, self.stack_bytes, self.memory_bytes = sched.goroutines, sched.stack_bytes, sched.memory_bytes
        self.procs_busy, self.preemptions, self.steals = sched.procs_busy, sched.preemptions, sched.steals
        self.throttled_periods, self.throttled_s = self.quota.throttled_periods, self.quota.throttled_s

    @property
    def gc(self) -> GoGC | None:
        """The collector, or None when it is off."""
        return self.heap.gc

    # ------------------------------------------------------------ public API
    def execute(self, steps: Sequence[Step | Any], times: RequestTimes | None = None) -> simpy.Event:
        """Run a request as a goroutine readied by the netpoller; the event's value is its latency. ``times``,
        if given, gets the mark assists its goroutine did and the stop-the-world pauses it sat through
        outside its waits (:class:`RequestTimes`); what mark workers took from its P, and the goroutines
        it starts, stay out of them."""
        done = self.env.event()
        self.sysmon.wake()  # serving it reads the connection: entersyscall wakes a sleeping sysmon
        g = self.sched.new_g(steps, done, None)
        if times is not None:
            g.times = times
            gc = self.heap.gc
            if gc is not None:
                times.enter(gc.stopped_s())
        self.netpoller.netpoll_ready(g)
        return done

    def go(self, steps: Sequence[Step | Any], wg: WaitGroup | None = None) -> G:
        """Start a goroutine from outside any goroutine (it joins the global run queue)."""
        g = self.sched.new_g(steps, None, wg)
        self.sched.ready(g, None)
        return g
