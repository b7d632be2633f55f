"""Sysmon: the Go runtime's monitor thread, which preempts long runs and polls a stale network.

A component of the detailed runtime (:class:`models.runtime.go.detailed.runtime.GoRuntime`), after
``sysmon`` and ``retake`` in ``runtime/proc.go``:

* **Cadence.** Sysmon sleeps ``usleep(delay)`` between rounds: ``delay`` is
  20 µs while it has been busy lately (``idle == 0``), stays 20 µs for 50
  idle rounds, then doubles every round up to 10 ms
  (``if idle == 0 { delay = 20 } else if idle > 50 { delay *= 2 }; if delay >
  10*1000 { delay = 10 * 1000 }``). A round is idle unless ``retake`` took a
  P back from a system call; the model's system calls hand their P off
  themselves (``entersyscallblock``), so only a wake-up from the deep sleep
  resets the delay. Each sleep ends late by a draw of the host's timer
  lateness (calibration ``go.sched.wakeup_late_s``, measured on a 1 ms
  ``time.Sleep`` of an idle runtime: the same kernel timer slack and thread
  wake-up).
* **Deep sleep.** A round that finds every P idle, or the world stopped
  (``sched.npidle == gomaxprocs || sched.gcwaiting``), sleeps on
  ``sched.sysmonnote`` until woken, at most ``forcegcperiod / 2`` = 60 s or
  until the next timer (``timeSleepUntil``). It is woken by a goroutine
  entering a system call (``entersyscall_sysmon``; in the model a request
  readied by the netpoller counts, as serving it reads its connection with a
  system call, and so does a :class:`~models.runtime.protocol.Syscall` step),
  by one leaving a system call onto an idle P (``exitsyscallfast_pidle``) and
  by ``startTheWorld``; then ``idle = 0`` and the delay is 20 µs again.
* **Preemption** (``retake``). Sysmon keeps, per P, the ``schedtick`` it last
  saw and when it first saw it; a P running a goroutine whose ``schedtick``
  is unchanged 10 ms (``forcePreemptNS``) after sysmon first saw it is
  preempted (``preemptone``; the goroutine goes to the global queue,
  ``gopreempt_m``). ``schedtick`` counts the goroutines a P starts without
  inheriting the time slice (``execute``; one taken from ``runnext`` inherits
  it). So a CPU-bound goroutine runs until the second round after the one that
  first sees it: between 10 ms and 10 ms plus a round, and with sysmon backed
  off to 10 ms, ~20 ms when it was scheduled just after a round (the
  measured ~19.2 ms lateness of a timer behind busy goroutines,
  ``calibration/data/vm/sched_wakeup.csv``).
* **Network.** If nobody has polled the network for 10 ms and goroutines are
  ready, sysmon injects them into the global queue (``netpoll(0)``,
  ``injectglist``).
* **Its thread on placed cores** (a runtime with ``cores``,
  :mod:`models.machine.cores`). Each round is a burst of CPU of its thread
  on the cores, a draw of ``machine.sysmon_off_s``: the time a goroutine
  spinning on sysmon's CPU is kept off it at each round (the switch to
  sysmon, its round, its ``usleep`` and the switch back), measured by the
  ``sysmon`` harness (``valserver -sysmon-samples``). Woken by its timer,
  sysmon takes the core from the thread running there; woken from its deep
  sleep by a system call it waits for that thread to sleep or to end its
  slice (``perf sched`` on this machine: a median 1.1 ms beside a handler).
  Its next sleep starts when the burst is done, and ends late by a draw of
  ``machine.sysmon_late_s`` (the time the spinning goroutine ran between two
  rounds less the 20 µs asked: the kernel's 50 µs timer slack, less what the
  round itself takes) instead of ``go.sched.wakeup_late_s``. Without cores
  sysmon's thread has a processor of its own and its rounds cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from sim.core import Environment
from sim.timers import Timer
from models.machine.cores import Cores
from models.runtime.go.constants import (
    ASSIST, FORCE_PREEMPT_S, RUN, SYSMON_DEEP_SLEEP_S, SYSMON_IDLE_ROUNDS, SYSMON_MIN_DELAY_S, SYSMON_PERIOD_S,
)
from models.runtime.go.detailed.sched import Scheduler
from models.runtime.go.policy import inject_global


class Sysmon:
    """The monitor loop: one timer, driven by callbacks (see the module docstring).

    Each sleep ends late by a draw of ``late``; on placed ``cores`` each round also costs its thread a draw
    of ``cpu`` there (without cores, ``cpu`` is None: its thread has a processor of its own).
    """

    def __init__(self, env: Environment, sched: Scheduler, late: Callable[[], float],
                 cores: Cores | None = None, cpu: Callable[[], float] | None = None, name: str = "go") -> None:
        if (cores is None) != (cpu is None):
            raise ValueError("sysmon: the CPU of its rounds is drawn on placed cores, and only there")
        self.env = env
        self.sched = sched
        self.cores = cores
        self._cpu = cpu
        self._late = late
        self._idle = 0
        self._delay = SYSMON_MIN_DELAY_S
        self._asleep = False
        self._timer = Timer(env, self._round)
        # the runtime's counter (the scheduler's Ms count into it too): two per round
        self.context_switches = env.metrics.counter(f"{name}.context_switches")

    def start(self) -> None:
        """The first sleep."""
        self._sleep()

    def _sleep(self) -> None:
        if self._idle == 0:
            self._delay = SYSMON_MIN_DELAY_S
        elif self._idle > SYSMON_IDLE_ROUNDS:
            self._delay = min(self._delay * 2, SYSMON_PERIOD_S)
        self._timer.set(self._delay + self._late())

    def _round(self) -> None:
        sched = self.sched
        self.context_switches.inc(2)  # its thread woke (a switch in) and will sleep again (a switch out)
        if self._asleep:  # the deep sleep timed out (no reset)
            self._asleep = False
        elif sched.stw or len(sched.idle_ps) == sched.procs:
            self._asleep = True
            self._timer.set(SYSMON_DEEP_SLEEP_S)
            return
        self._run(preempt=True)

    def wake(self) -> None:
        """``notewakeup(&sched.sysmonnote)``: end a deep sleep; sysmon starts again at 20 µs."""
        if self._asleep:
            self._asleep = False
            self.context_switches.inc(2)
            self._idle = 0
            self._delay = SYSMON_MIN_DELAY_S
            self._run(preempt=False)

    def _run(self, preempt: bool) -> None:
        """A round's work, its thread's CPU on placed cores (taking the core from the thread there if
        ``preempt``), then the sleep."""
        self._work()
        self._idle += 1
        if self._cpu is None or self.cores is None:
            self._sleep()
        else:
            self.cores.burst(self._cpu(), self._sleep, own=True, preempt=preempt)

    def timer_due(self) -> None:
        """A timer expired: a deep sleep bounded by ``timeSleepUntil`` ends now, without a reset."""
        if self._asleep:
            self._timer.set(0.0)

    def _work(self) -> None:
        """``retake`` and the network poll of one round."""
        sched = self.sched
        if sched.frozen:
            return
        now = self.env.now
        netpoll = sched.netpoll
        if netpoll.ready and netpoll.stale(now):
            for _ in range(inject_global(netpoll.poll(now), sched.global_q, len(sched.idle_ps))):
                sched.wakep()
        for p in sched.ps:
            if p.kind is RUN or p.kind is ASSIST:
                if p.seen_tick != p.schedtick:
                    p.seen_tick = p.schedtick
                    p.seen_when = now
                elif p.seen_when + FORCE_PREEMPT_S <= now:
                    sched.preempt(p)
