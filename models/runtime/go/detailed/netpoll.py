"""The Go netpoller, system calls and timers: how goroutines blocked outside the process come back.

A component of the detailed runtime (:class:`models.runtime.go.detailed.runtime.GoRuntime`), after
``runtime/proc.go`` and ``runtime/netpoll.go``:

* A :class:`~models.runtime.protocol.Wait` parks the goroutine in the
  netpoller. When its event fires, an idle P (blocked in ``netpoll``) takes it
  at once; if none is idle it waits in the poller's ready list until a P polls
  in ``findRunnable`` (``netpoll(0)``) or sysmon polls because nobody has for
  10 ms (:mod:`models.runtime.go.detailed.sysmon`).
* A P that polls takes every ready goroutine (``netpoll`` returns a list):
  it runs the first, and ``injectglist`` puts the others on the global queue
  for the idle Ps it wakes and the rest on its own local queue; so goroutines
  woken together wait behind each other on one P, while another P that polls
  later serves the newer ones first.
* The list comes newest first: epoll reports descriptors in the order they
  became ready (``ep_poll_callback`` appends to the ready list), and
  ``netpollready`` pushes each goroutine on the head of a ``gList``, a stack;
  ``findRunnable`` runs ``list.pop()``, the newest, and ``injectglist`` keeps
  the order. Within one batch the last request to arrive is served first
  (``runtime/netpoll_epoll.go``, ``runtime/netpoll.go``, ``runtime/proc.go``).
* A :class:`~models.runtime.protocol.Syscall` hands the P off at once
  (``entersyscallblock`` / ``handoffp``); on return the goroutine takes an idle
  P or joins the global queue (``exitsyscall`` / ``exitsyscall0``).
* A :class:`~models.runtime.go.steps.Sleep` (``time.Sleep``) puts a timer on
  the current P (``runtime/time.go``). When it expires, the goroutine is
  readied into ``runnext`` of the P that runs the timer: its own P when it next
  schedules (``checkTimers`` in ``schedule`` / ``findRunnable``), another P
  that steals it (``stealWork``), or an idle P, whose thread was blocked in
  ``netpoll`` until the timer and wakes up late by a draw of
  ``go.sched.wakeup_late_s`` (the measured lateness of a 1 ms sleep on an
  idle runtime). A P busy with a CPU-bound goroutine runs its timers only when
  that goroutine is preempted (:mod:`models.runtime.go.detailed.sysmon`).
"""

from __future__ import annotations

from collections.abc import Callable

from sim.core import Environment
from models.runtime.go.detailed.sched import Scheduler
from models.runtime.go.detailed.state import G, P
from models.runtime.go.detailed.sysmon import Sysmon
from models.runtime.go.policy import inject_poll
from models.runtime.go.steps import Sleep


class Netpoller:
    """The poller's ready list (kept by the scheduler: :attr:`Scheduler.netpoll`), polling, system calls and
    timers. ``wakeup_late`` draws how late an idle P's thread wakes for a timer."""

    def __init__(self, env: Environment, sched: Scheduler, sysmon: Sysmon, wakeup_late: Callable[[], float]) -> None:
        self.env = env
        self.sched = sched
        self.sysmon = sysmon
        self._wakeup_late = wakeup_late
        self.ready_from_net = self.netpoll_ready
        """:meth:`netpoll_ready`, bound once: what a goroutine parked on the network is resumed by."""
        self._ready_from_syscall = self._exitsyscall

    def netpoll_ready(self, g: G) -> None:
        """A network wait of ``g`` ended: an idle P (blocked in ``netpoll``) takes it at once, else it waits in
        the ready list."""
        sched = self.sched
        if sched.idle_ps and not sched.frozen:
            p = sched.take_idle()
            sched.netpoll.last_poll = self.env.now
            sched.execute(p, g)
        else:
            sched.netpoll.ready.append(g)

    def poll_network(self, p: P) -> G:
        """``netpoll(0)`` in ``findRunnable``: run the first ready goroutine; ``injectglist`` the rest."""
        sched = self.sched
        ready = sched.netpoll.poll(self.env.now)
        for _ in range(inject_poll(ready, p.runq, sched.global_q, len(sched.idle_ps))):
            sched.wakep()
        return ready[0]

    def syscall(self, g: G, duration_s: float) -> None:
        """``entersyscallblock``: the P is handed off (the caller parks it); sysmon is woken; ``g`` comes back
        after ``duration_s``."""
        self.sysmon.wake()
        g.resume = self._ready_from_syscall
        self.env.timeout(duration_s).callbacks.append(g)

    def _exitsyscall(self, g: G) -> None:
        sched = self.sched
        if sched.idle_ps and not sched.frozen:
            self.sysmon.wake()  # exitsyscallfast_pidle
            sched.execute(sched.take_idle(), g)
        else:
            sched.global_q.append(g)

    # ------------------------------------------------------------------ timers
    def sleep(self, p: P, g: G, step: Sleep) -> None:
        """``time.Sleep``: a timer on the current P (``resetForSleep``) readies ``g`` when it expires."""
        g.wake_at = self.env.now + step.duration_s
        g.observe = step.observe
        self.env.timeout(step.duration_s).callbacks.append(lambda _event: self._timer_expired(p, g))

    def _timer_expired(self, p: P, g: G) -> None:
        """The timer is due: it runs when its P next schedules (``checkTimers``), when another P steals
        it, or, if a P is idle (blocked in ``netpoll`` until the next timer), when that P wakes up, late
        by a draw of the host's timer lateness."""
        p.expired.append(g)
        self.sysmon.timer_due()
        sched = self.sched
        if sched.idle_ps and not sched.frozen:
            self.env.timeout(self._wakeup_late()).callbacks.append(lambda _event: self._timer_wake())

    def _timer_wake(self) -> None:
        sched = self.sched
        if sched.idle_ps and not sched.frozen and any(p.expired for p in sched.ps):
            sched.schedule(sched.take_idle())

    def run_timers(self, p: P) -> None:
        """``checkTimers`` on ``p``: each expired sleep readies its goroutine into ``runnext`` (``goready``)."""
        expired, p.expired = p.expired, []
        for g in expired:
            self.sched.runqput(p, g)

    def steal_timers(self, p: P) -> G | None:
        """``stealWork``: run the expired timers of another P here, and run what they readied."""
        for victim in self.sched.ps:
            if victim is not p and victim.expired:
                expired, victim.expired = victim.expired, []
                for g in expired:
                    self.sched.runqput(p, g)
                readied, p.runnext = p.runnext, None
                return readied
        return None
