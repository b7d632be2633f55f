"""Sysmon: the Go runtime's monitor thread, which preempts long runs and polls a stale network.

Part of the detailed runtime (:class:`models.runtime.go.detailed.runtime.GoRuntime`), after
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
from typing import TYPE_CHECKING, Any

from sim.dists import Distribution
from sim.params import param_as_dist
from sim.timers import Timer
from models.machine.cores import Cores
from models.runtime.go.detailed.sched import ASSIST, RUN

if TYPE_CHECKING:
    from models.runtime.go.detailed.sched import G, P

FORCE_PREEMPT_S = 10e-3
"""``forcePreemptNS`` (proc.go)."""
SYSMON_MIN_DELAY_S = 20e-6
"""sysmon's sleep while busy: ``delay = 20`` µs (proc.go ``sysmon``)."""
SYSMON_PERIOD_S = 10e-3
"""sysmon's sleep once backed off: at most 10 ms (proc.go ``sysmon``)."""
SYSMON_IDLE_ROUNDS = 50
"""sysmon starts doubling its sleep after more than 50 idle rounds (``idle > 50``, proc.go)."""
SYSMON_DEEP_SLEEP_S = 60.0
"""The longest deep sleep: ``forcegcperiod / 2`` (2 min / 2, proc.go)."""
NETPOLL_STALE_S = 10e-3
"""sysmon polls the network if nobody has for 10 ms (proc.go ``sysmon``)."""
WAKEUP_LATE_PARAM = "go.sched.wakeup_late_s"
SYSMON_CPU_PARAM = "machine.sysmon_off_s"
SYSMON_LATE_PARAM = "machine.sysmon_late_s"
SYSMON_CORES_PARAMS = (SYSMON_CPU_PARAM, SYSMON_LATE_PARAM)
"""The parameter sets of sysmon's thread on placed cores."""


class Sysmon:
    """The monitor loop (a part of ``GoRuntime``): one timer, driven by callbacks."""

    env: Any
    ps: list[P]
    procs: int
    netpoll_list: list[G]
    idle_ps: list[P]
    global_q: Any
    _last_poll: float
    _stw: bool
    _wakeup_late: Callable[[], float]
    cores: Cores | None
    name: str

    def _start_sysmon(self, cpu: Distribution | None = None, late: Distribution | None = None) -> None:
        """Start the loop; on placed cores each round costs a draw of ``cpu`` and each sleep ends late by a
        draw of ``late`` (default: the calibrated ``machine.sysmon_*``)."""
        self._sysmon_cpu: Callable[[], float] | None = None
        self._sysmon_late = self._wakeup_late
        if self.cores is not None:
            rng = self.env.rng
            self._sysmon_cpu = (cpu or param_as_dist(SYSMON_CPU_PARAM)).sampler(rng(f"{self.name}.sysmon_cpu"))
            self._sysmon_late = (late or param_as_dist(SYSMON_LATE_PARAM)).sampler(rng(f"{self.name}.sysmon_late"))
        self._sysmon_idle = 0
        self._sysmon_delay = SYSMON_MIN_DELAY_S
        self._sysmon_asleep = False
        self._sysmon_timer = Timer(self.env, self._sysmon_round)
        self._sysmon_sleep()

    def _sysmon_sleep(self) -> None:
        if self._sysmon_idle == 0:
            self._sysmon_delay = SYSMON_MIN_DELAY_S
        elif self._sysmon_idle > SYSMON_IDLE_ROUNDS:
            self._sysmon_delay = min(self._sysmon_delay * 2, SYSMON_PERIOD_S)
        self._sysmon_timer.set(self._sysmon_delay + self._sysmon_late())

    def _sysmon_round(self) -> None:
        if self._sysmon_asleep:  # the deep sleep timed out (no reset)
            self._sysmon_asleep = False
        elif self._stw or len(self.idle_ps) == self.procs:
            self._sysmon_asleep = True
            self._sysmon_timer.set(SYSMON_DEEP_SLEEP_S)
            return
        self._sysmon_run(preempt=True)

    def _sysmon_wake(self) -> None:
        """``notewakeup(&sched.sysmonnote)``: end a deep sleep; sysmon starts again at 20 µs."""
        if self._sysmon_asleep:
            self._sysmon_asleep = False
            self._sysmon_idle = 0
            self._sysmon_delay = SYSMON_MIN_DELAY_S
            self._sysmon_run(preempt=False)

    def _sysmon_run(self, preempt: bool) -> None:
        """A round's work, its thread's CPU on placed cores (taking the core from the thread there if
        ``preempt``), then the sleep."""
        self._sysmon_work()
        self._sysmon_idle += 1
        if self._sysmon_cpu is None or self.cores is None:
            self._sysmon_sleep()
        else:
            self.cores.burst(self._sysmon_cpu(), self._sysmon_sleep, own=True, preempt=preempt)

    def _sysmon_timer_due(self) -> None:
        """A timer expired: a deep sleep bounded by ``timeSleepUntil`` ends now, without a reset."""
        if self._sysmon_asleep:
            self._sysmon_timer.set(0.0)

    def _sysmon_work(self) -> None:
        if self.frozen:  # type: ignore[attr-defined]
            return
        now = self.env.now
        if self.netpoll_list and now - self._last_poll >= NETPOLL_STALE_S:
            ready = self._netpoll()  # type: ignore[attr-defined]
            self.global_q.extend(ready)
            for _ in range(min(len(ready), len(self.idle_ps))):
                self._wakep()  # type: ignore[attr-defined]
        for p in self.ps:
            if p.kind is RUN or p.kind is ASSIST:
                if p.seen_tick != p.schedtick:
                    p.seen_tick = p.schedtick
                    p.seen_when = now
                elif p.seen_when + FORCE_PREEMPT_S <= now:
                    self._preempt(p)  # type: ignore[attr-defined]
