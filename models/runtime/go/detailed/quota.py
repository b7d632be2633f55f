"""A container CPU quota (CFS bandwidth control) over the Go scheduler.

Part of the detailed runtime (:class:`models.runtime.go.detailed.runtime.GoRuntime`). A quota
of ``quota_cores`` is a budget of ``quota * 100 ms`` of CPU per CFS period
(100 ms, the kernel's default ``cpu.cfs_period_us``; Documentation/scheduler/
sched-bwc.rst) spent by every P running a goroutine or a GC worker; when it is
spent, every P stops until the next period, with its goroutine in place: the
throttling tail. One timer predicts when the budget runs out at the current
number of busy Ps and is superseded when that number changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sim.timers import Timer

if TYPE_CHECKING:
    from models.runtime.go.detailed.sched import P

CFS_PERIOD_S = 0.1
"""Linux CFS bandwidth control default period, ``cpu.cfs_period_us`` = 100 ms (kernel docs, sched-bwc)."""


class CFSQuota:
    """Budget accounting and throttling of every P (a part of ``GoRuntime``)."""

    env: Any
    ps: list[P]

    def _init_quota(self, quota_cores: float | None) -> None:
        self.quota_cores = quota_cores
        if quota_cores is not None:
            self._budget = quota_cores * CFS_PERIOD_S
            self._used = 0.0
            self._acc_t = self.env.now
            self._period_end = self.env.now + CFS_PERIOD_S
            self._throttle_started = 0.0
            self._quota_timer = Timer(self.env, self._throttle)
            self.env.process(self._cfs_periods())

    def _quota_advance(self) -> None:
        now = self.env.now
        busy = 0 if self.frozen else self._n_cpu
        self._used += busy * (now - self._acc_t)
        self._acc_t = now

    def _quota_schedule(self) -> None:
        self._quota_timer.cancel()
        busy = 0 if self.frozen else self._n_cpu
        if busy == 0:
            return
        left = max(self._budget - self._used, 0.0)
        delay = left / busy
        if self.env.now + delay >= self._period_end - 1e-12:
            return
        self._quota_timer.set(delay)

    def _throttle(self) -> None:
        if self.frozen:
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
