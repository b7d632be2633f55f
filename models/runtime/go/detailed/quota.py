"""A container CPU quota (CFS bandwidth control) over the Go scheduler.

A component of the detailed runtime (:class:`models.runtime.go.detailed.runtime.GoRuntime`). A quota
of ``quota_cores`` is a budget of ``quota * 100 ms`` of CPU per CFS period
(100 ms, the kernel's default ``cpu.cfs_period_us``; Documentation/scheduler/
sched-bwc.rst) spent by every P running a goroutine or a GC worker; when it is
spent, every P stops until the next period, with its goroutine in place: the
throttling tail. One timer predicts when the budget runs out at the current
number of busy Ps and is superseded when that number changes.

Metrics under ``NAME``: ``NAME.throttled_periods`` (counter) and
``NAME.throttled_s`` (histogram of stalls); a process without a quota reports
none.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from sim.core import Environment
from sim.timers import Timer
from models.runtime.go.constants import CFS_PERIOD_S
from models.runtime.go.detailed.sched import Scheduler


class CFSQuota:
    """Budget accounting and throttling of every P; ``quota_cores`` None: no quota (:attr:`active` false,
    nothing runs, the metrics stay at zero)."""

    def __init__(self, env: Environment, sched: Scheduler, quota_cores: float | None, name: str = "go") -> None:
        if quota_cores is not None and quota_cores <= 0:
            raise ValueError(f"{name}.quota_cores: must be > 0 (got {quota_cores})")
        self.env = env
        self.sched = sched
        self.quota_cores = quota_cores
        self.active = quota_cores is not None
        self.throttled_periods = env.metrics.counter(f"{name}.throttled_periods")
        self.throttled_s = env.metrics.histogram(f"{name}.throttled_s")
        self._budget = (quota_cores or 0.0) * CFS_PERIOD_S
        self._used = 0.0
        self._acc_t = env.now
        self._period_end = env.now + CFS_PERIOD_S
        self._throttle_started = 0.0
        self._timer = Timer(env, self._throttle)

    def start(self) -> None:
        """Start the CFS periods (a quota only)."""
        if self.active:
            self.env.process(self._periods())

    def advance(self) -> None:
        """Charge the budget with the CPU the busy Ps used since the last call."""
        now = self.env.now
        sched = self.sched
        busy = 0 if sched.frozen else sched.n_cpu
        self._used += busy * (now - self._acc_t)
        self._acc_t = now

    def schedule(self) -> None:
        """Predict when the budget runs out at the current number of busy Ps."""
        self._timer.cancel()
        sched = self.sched
        busy = 0 if sched.frozen else sched.n_cpu
        if busy == 0:
            return
        left = max(self._budget - self._used, 0.0)
        delay = left / busy
        if self.env.now + delay >= self._period_end - 1e-12:
            return
        self._timer.set(delay)

    def _throttle(self) -> None:
        sched = self.sched
        if sched.frozen:
            return
        self.advance()
        sched.throttled = True
        self._throttle_started = self.env.now
        self.throttled_periods.inc()
        for p in sched.ps:
            sched.pause(p)
        sched.cpu_changed()
        sched.mark_changed()

    def _periods(self) -> Generator[Any, Any, None]:
        env = self.env
        while True:
            yield env.timeout(self._period_end - env.now)
            self.advance()
            self._used = 0.0
            self._period_end = env.now + CFS_PERIOD_S
            if self.sched.throttled:
                self.sched.throttled = False
                self.throttled_s.record(env.now - self._throttle_started)
                self.sched.thaw()
            else:
                self.schedule()
