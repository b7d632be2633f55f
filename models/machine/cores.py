"""The machine's cores under a process: where Linux runs its threads, and in what turn.

A runtime whose Ps (Go) are OS threads does not run on free processors: the
kernel places each thread that wakes up on a core, and threads on one core
take turns. :class:`Cores` models ``n`` cores and the threads on them:

* **Placement on wake-up.** A thread that wakes goes to a core with no thread
  when there is one, except that with probability ``coplace`` (a thread of the
  process) or ``coplace_other`` (another process's) it lands on a core that
  already runs one: Linux's wake-up placement (``select_task_rq_fair`` in
  ``kernel/sched/fair.c``) starts from the waker's or the previous CPU and
  does not always find the idle one. With no core free it goes to one of the
  least occupied.
* **Turns.** A thread that wakes takes its core from the thread running there
  (wake-up preemption: on this machine a handler that starts beside another
  on its CPU runs whole while the other stops, and its request waited no
  longer before it; :mod:`calibration.fitmachine`), except another process's
  thread that landed on a taken core though one was free, which waits for
  its turn (the load generator's late sends). The running thread gives the
  core to the next waiting one when it sleeps, when its time slice
  (``slice_s``, counted from when it got the core) is over, or when it passes
  a point where the kernel picks again (:meth:`Cores.yield_core`: a Go P
  whose goroutine ends makes system calls), so the preempted handler loses
  about one handler of the other (on this machine a median 0.77 ms beside
  0.5 ms handlers, where the slice is 3.3 ms).
* **Migration.** While one core holds two threads more than another, the
  load balancer moves a waiting one after an exponential time of mean
  ``migrate``; then the cores are checked again.
* **Short-lived work** on the same cores (:meth:`Cores.burst`: a load
  generator's CPU per request, a round of the Go runtime's sysmon thread): a
  thread with a CPU amount that takes its turns like the others and leaves
  when it is done. One woken without preempting (sysmon woken by another
  thread's system call) waits for the running thread to sleep or to end its
  slice, not for its system calls: on this machine such a sysmon waited a
  median 1.1 ms beside a handler thread (``perf sched``; see
  ``calibration/validation/README.md``).

The numbers come from the ``machine`` harness (:mod:`calibration.fitmachine`):
``machine.coplace_p``, ``machine.load_coplace_p`` and ``machine.migrate_s``
from a two-core validation server tracing the CPU of each handler beside its
load generator, ``machine.slice_s`` from two threads spinning on one CPU.

A thread is any object with a ``core`` attribute and a ``retime(rate)``
method, called with 1 when it gets its core and 0 when it loses it; one with
``takes_yield`` false is not handed the core at :meth:`Cores.yield_core`.

Metrics under ``NAME`` (``machine.cores`` in a service): ``NAME.coplaced``
(threads that landed on a taken core though one was free) and
``NAME.migrations`` (counters).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Protocol, TypeVar

from sim.dists import Exponential, Uniform
from sim.params import param_value
from sim.timers import Timer


T = TypeVar("T")


class Thread(Protocol):
    core: int | None
    takes_yield: bool

    def retime(self, rate: float) -> None: ...


class Burst:
    """A thread doing ``cpu_s`` of work on the cores, then leaving (and calling ``then``)."""

    __slots__ = ("cores", "core", "left", "rate", "since", "timer", "then", "takes_yield")

    def __init__(self, cores: Cores, cpu_s: float, then: Callable[[], None] | None, takes_yield: bool = True) -> None:
        self.cores = cores
        self.takes_yield = takes_yield
        self.core: int | None = None
        self.left = cpu_s
        self.rate = 0.0
        self.since = cores.env.now
        self.timer = Timer(cores.env, self._done)
        self.then = then

    def retime(self, rate: float) -> None:
        now = self.cores.env.now
        self.left -= (now - self.since) * self.rate
        self.since, self.rate = now, rate
        self.timer.set_at_rate(self.left, rate)

    def _done(self) -> None:
        self.cores.sleep(self)
        if self.then is not None:
            self.then()


class Cores:
    """``n`` cores and the threads placed on them (see the module docstring)."""

    def __init__(self, env: Any, n: int, coplace: float, coplace_other: float, migrate: Callable[[], float],
                 slice_s: float, uniform: Callable[[], float], name: str = "cores") -> None:
        if n < 1:
            raise ValueError(f"{name}: must be >= 1 core (got {n})")
        for field, p in (("coplace", coplace), ("coplace_other", coplace_other)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name}.{field}: must be a probability in [0, 1] (got {p})")
        if slice_s <= 0:
            raise ValueError(f"{name}.slice_s: must be > 0 (got {slice_s})")
        self.env = env
        self.n = n
        self.coplace = {True: coplace, False: coplace_other}
        self.draw_migrate = migrate
        self.slice_s = slice_s
        self.uniform = uniform
        self.on: list[list[Thread]] = [[] for _ in range(n)]
        """Per core, its threads in turn order: the first runs, the others wait."""
        self.running_since = [0.0] * n
        self._slices = [Timer(env, partial(self._slice_over, core)) for core in range(n)]
        self._balancer = Timer(env, self._balance)
        metrics = env.metrics
        self.migrations = metrics.counter(f"{name}.migrations")
        self.coplaced = metrics.counter(f"{name}.coplaced")

    def _pick(self, items: list[T]) -> T:
        """One of ``items``, uniformly."""
        return items[int(self.uniform() * len(items)) % len(items)]

    def wake(self, thread: Thread, own: bool = True, preempt: bool = True) -> None:
        """Place a thread that wakes up: the process's own runs at once on the core it lands on; another
        process's co-placed one, or one that does not ``preempt``, waits for its turn (see the module
        docstring)."""
        free = [core for core in range(self.n) if not self.on[core]]
        if free and len(free) < self.n and self.uniform() < self.coplace[own]:
            core = self._pick([c for c in range(self.n) if self.on[c]])
            self.coplaced.inc()
            self._join(thread, core, first=own and preempt)
            return
        if free:
            core = self._pick(free)
        else:
            fewest = min(len(threads) for threads in self.on)
            core = self._pick([c for c in range(self.n) if len(self.on[c]) == fewest])
        self._join(thread, core, first=preempt)

    def sleep(self, thread: Thread) -> None:
        """A thread blocks (or ends): it leaves its core."""
        core = thread.core
        assert core is not None
        threads = self.on[core]
        was_running = threads[0] is thread
        threads.remove(thread)
        thread.core = None
        if was_running:
            self._run_next(core)
        self._check()

    def yield_core(self, thread: Thread) -> None:
        """The running ``thread`` passes a point where the kernel picks again (a system call): a thread waiting
        on its core gets it, and ``thread`` waits its turn."""
        core = thread.core
        if core is None:
            return
        threads = self.on[core]
        if len(threads) > 1 and threads[0] is thread and threads[1].takes_yield:
            thread.retime(0.0)
            threads.append(threads.pop(0))
            self._run_next(core)

    def burst(self, cpu_s: float, then: Callable[[], None] | None = None, own: bool = False,
              preempt: bool = True) -> None:
        """A thread (another process's unless ``own``) wakes, works ``cpu_s`` on the cores and leaves; then
        ``then()``. One that does not ``preempt`` waits for the thread running on its core to sleep or to end
        its slice, not for its system calls (see the module docstring)."""
        if cpu_s > 0:
            self.wake(Burst(self, cpu_s, then, takes_yield=preempt), own, preempt)
        elif then is not None:
            then()

    def _join(self, thread: Thread, core: int, first: bool) -> None:
        """``thread`` joins ``core``: ``first``, it takes the core from the thread running there (wake-up
        preemption), else it waits behind the others."""
        thread.core = core
        threads = self.on[core]
        if first and threads:
            threads[0].retime(0.0)
            threads.insert(0, thread)
            self._run_next(core)
        else:
            threads.append(thread)
            if len(threads) == 1:
                self._run_next(core)
            else:
                thread.retime(0.0)
                self._arm_slice(core)
        self._check()

    def _run_next(self, core: int) -> None:
        """The first thread in turn gets the core for a slice."""
        self._slices[core].cancel()
        threads = self.on[core]
        if threads:
            self.running_since[core] = self.env.now
            threads[0].retime(1.0)
            self._arm_slice(core)

    def _arm_slice(self, core: int) -> None:
        """With threads waiting, the running one keeps the core until its slice is over."""
        if len(self.on[core]) > 1 and self._slices[core].at is None:
            self._slices[core].set(max(self.running_since[core] + self.slice_s - self.env.now, 0.0))

    def _slice_over(self, core: int) -> None:
        threads = self.on[core]
        if len(threads) > 1:
            threads[0].retime(0.0)
            threads.append(threads.pop(0))
        self._run_next(core)

    def _imbalance(self) -> tuple[int, int] | None:
        counts = [len(threads) for threads in self.on]
        most, least = max(counts), min(counts)
        if most - least < 2:
            return None
        return counts.index(most), counts.index(least)

    def _check(self) -> None:
        if self._balancer.at is None and self._imbalance() is not None:
            self._balancer.set(self.draw_migrate())

    def _balance(self) -> None:
        """The load balancer moves a waiting thread from the fullest core to the emptiest."""
        pair = self._imbalance()
        if pair is not None:
            source, target = pair
            thread = self._pick(self.on[source][1:])
            self.on[source].remove(thread)
            self.migrations.inc()
            self._join(thread, target, first=False)
        self._check()


COPLACE_PARAM = "machine.coplace_p"
LOAD_COPLACE_PARAM = "machine.load_coplace_p"
MIGRATE_PARAM = "machine.migrate_s"
SLICE_PARAM = "machine.slice_s"
CORES_PARAMS = (COPLACE_PARAM, LOAD_COPLACE_PARAM, MIGRATE_PARAM, SLICE_PARAM)
"""Every parameter set :func:`calibrated_cores` loads."""


def calibrated_cores(env: Any, n: int, name: str = "machine.cores") -> Cores:
    """``n`` cores placing threads as measured on this machine (``machine.coplace_p``,
    ``machine.load_coplace_p``, ``machine.migrate_s``: the mean of an exponential time, ``machine.slice_s``)."""
    return Cores(
        env, n, param_value(COPLACE_PARAM), param_value(LOAD_COPLACE_PARAM),
        Exponential(param_value(MIGRATE_PARAM)).sampler(env.rng(f"{name}.migrate")),
        param_value(SLICE_PARAM), Uniform(0.0, 1.0).sampler(env.rng(f"{name}.place")), name,
    )
