"""The detailed Go runtime's components, each built alone, and the policy both fidelities share.

Deterministic micro-stories: a component is constructed from its typed
dependencies (a :class:`Scheduler` that nothing has connected, or a stand-in
holding only the state a component reads), driven by hand, and its effect
checked against what ``runtime/proc.go`` and ``runtime/mgc.go`` do.
"""

from __future__ import annotations

from collections import deque
from types import SimpleNamespace

import pytest

from models.runtime.go.constants import (
    CFS_PERIOD_S, DEDICATED, DRAIN_CHECK_BYTES, FORCE_PREEMPT_S, FRACTIONAL, FRACTIONAL_OVERSHOOT,
    GLOBAL_BATCH_MAX, LOCAL_RUNQ_SLOTS, NETPOLL_STALE_S, RUN, STACK_MIN_BYTES, CpuKind,
)
from models.runtime.go.detailed.netpoll import Netpoller
from models.runtime.go.detailed.quota import CFSQuota
from models.runtime.go.detailed.sched import Scheduler
from models.runtime.go.detailed.state import G, P
from models.runtime.go.detailed.sysmon import Sysmon
from models.runtime.go.gc import Heap
from models.runtime.go.policy import (
    MarkPhase, ReadyList, inject_global, inject_poll, steal_half, steal_start, take_global_batch,
)

MS = 1e-3


def scheduler(env, procs: int) -> Scheduler:
    """A scheduler with no collector, free goroutines and steals starting at the first P; not connected."""
    return Scheduler(env, procs, Heap(env, None, procs, "go"), spawn=lambda: 0.0, stack_per_g=STACK_MIN_BYTES,
                     uniform=lambda: 0.0)


def goroutines(n: int) -> list[G]:
    return [G(i, [], None, 0.0, None) for i in range(n)]


# ----------------------------------------------------------------------- policy
def test_global_batch_is_len_over_procs_plus_one_capped_at_half_a_local_queue():
    """globrunqget: min(len/GOMAXPROCS + 1, len(runq)/2); the first runs, the rest go to the local queue."""
    global_q, local = deque(range(10)), deque()
    assert take_global_batch(global_q, local, 4) == 0
    assert list(local) == [1, 2] and len(global_q) == 7  # 10 // 4 + 1 = 3 taken
    global_q = deque(range(1000))
    take_global_batch(global_q, local := deque(), 1)
    assert len(local) == GLOBAL_BATCH_MAX - 1 == LOCAL_RUNQ_SLOTS // 2 - 1


def test_steal_takes_half_rounded_up_from_the_first_victim_with_work_after_the_start():
    runqs = [deque(), deque([1, 2, 3]), deque([4, 5, 6, 7, 8])]
    own = runqs[0]
    assert steal_start(lambda: 0.99, 3) == 2
    assert steal_half(runqs, own, 2) == 4  # from P2 (the start), 3 of its 5: one to run, two to own
    assert list(own) == [5, 6] and list(runqs[2]) == [7, 8]
    own.clear()
    runqs[1].clear()
    runqs[2].clear()
    assert steal_half(runqs, own, 1) is None


def test_netpoll_returns_the_batch_newest_first_and_notes_the_poll():
    ready: ReadyList[int] = ReadyList()
    ready.ready.extend([1, 2, 3])
    assert not ready.stale(NETPOLL_STALE_S - 1e-9) and ready.stale(NETPOLL_STALE_S)
    assert ready.poll(0.5) == [3, 2, 1]
    assert ready.ready == [] and ready.last_poll == 0.5


def test_injection_gives_one_to_each_idle_p_and_the_rest_to_the_local_queue():
    """injectglist in findRunnable: the poller runs the first; as many as there are idle Ps go to the global
    queue (those Ps are woken), the rest to the polling P's queue, the global queue once it is full."""
    local, global_q = deque(), deque()
    assert inject_poll([1, 2, 3, 4, 5], local, global_q, idle=2) == 2
    assert list(global_q) == [2, 3] and list(local) == [4, 5]
    full = deque(range(LOCAL_RUNQ_SLOTS))
    assert inject_poll([1, 2], full, global_q := deque(), idle=0) == 0
    assert list(global_q) == [2]
    assert inject_global([1, 2, 3], global_q := deque(), idle=5) == 3 and list(global_q) == [1, 2, 3]


def test_mark_phase_starts_dedicated_workers_then_fractional_bursts_within_their_goal():
    """findRunnableGCWorker: dedicated workers while missing, then a fractional burst while the P's share of
    mark time is at most the goal, long enough to reach 1.2 times the goal, at least drainCheckThreshold."""
    mark, rate = MarkPhase(), 1e9
    mark.started(dedicated=1, fractional=0.25, now=1.0)
    assert mark.worker(0.0, 1.0, rate) == (DEDICATED, 0.0)
    assert mark.worker(0.0, 1.0, rate) == (FRACTIONAL, DRAIN_CHECK_BYTES / rate)  # no time yet: the minimum
    kind, burst = mark.worker(0.0, 1.1, rate)
    assert kind is FRACTIONAL
    assert burst / (0.1 + burst) == pytest.approx(FRACTIONAL_OVERSHOOT * 0.25)
    assert mark.worker(0.03, 1.1, rate) is None  # 30 % of 100 ms is over the goal of 25 %
    mark.ended()
    assert not mark.marking and mark.dedicated_left == 0


def test_cpu_kinds_mark_the_mark_workers_only():
    assert {kind for kind in CpuKind if kind.marks} == {CpuKind.DEDICATED, CpuKind.FRACTIONAL, CpuKind.IDLE_MARK}


# ------------------------------------------------------------------- components
def test_netpoller_alone_queues_without_an_idle_p_and_a_poll_runs_the_newest(env):
    """No P is idle (nothing connected the scheduler): readied goroutines wait in the ready list; the P that
    polls runs the newest and keeps the others on its local queue."""
    sched = scheduler(env, 1)
    sysmon = SimpleNamespace(wake=lambda: None, timer_due=lambda: None)
    netpoller = Netpoller(env, sched, sysmon, wakeup_late=lambda: 0.0)
    first, second, third = goroutines(3)
    for g in (first, second, third):
        netpoller.netpoll_ready(g)
    assert sched.netpoll.ready == [first, second, third]
    p = sched.ps[0]
    assert netpoller.poll_network(p) is third
    assert list(p.runq) == [second, first]


def test_netpoller_alone_steals_another_ps_expired_timers(env):
    sched = scheduler(env, 2)
    netpoller = Netpoller(env, sched, SimpleNamespace(wake=lambda: None, timer_due=lambda: None), lambda: 0.0)
    g, = goroutines(1)
    sched.ps[1].expired.append(g)
    assert netpoller.steal_timers(sched.ps[0]) is g
    assert sched.ps[1].expired == [] and sched.ps[0].runnext is None


def test_sysmon_alone_preempts_a_goroutine_seen_running_for_10ms(env):
    """retake: a P whose schedtick is unchanged FORCE_PREEMPT_S after sysmon first saw it is preempted; sysmon
    backs off to 10 ms rounds, so that is between 10 and 20 ms."""
    p = P(0)
    p.kind, p.schedtick = RUN, 1
    preempted: list[float] = []
    sched = SimpleNamespace(ps=[p], idle_ps=[], procs=1, stw=False, frozen=False, netpoll=ReadyList(),
                            global_q=deque(), wakep=lambda: None, preempt=lambda q: preempted.append(env.now))
    sysmon = Sysmon(env, sched, late=lambda: 0.0)
    sysmon.start()
    env.run(until=50 * MS)
    assert len(preempted) >= 1
    assert FORCE_PREEMPT_S <= preempted[0] <= 2 * FORCE_PREEMPT_S + 1e-9


def test_sysmon_alone_sleeps_deeply_while_every_p_is_idle_and_wakes_when_told(env):
    rounds: list[float] = []
    sched = SimpleNamespace(ps=[], idle_ps=[object()], procs=1, stw=False, frozen=False, netpoll=ReadyList(),
                            global_q=deque(), wakep=lambda: None, preempt=lambda p: None)
    sysmon = Sysmon(env, sched, late=lambda: 0.0)
    work = sysmon._work
    sysmon._work = lambda: (rounds.append(env.now), work())[-1]
    sysmon.start()
    env.run(until=1.0)
    assert rounds == []  # the first round found every P idle: a deep sleep
    sysmon.wake()
    assert rounds == [1.0]


def test_quota_alone_throttles_when_the_budget_is_spent_and_thaws_at_the_next_period(env):
    """CFS bandwidth control: 0.5 cores is 50 ms per 100 ms period; two busy Ps spend it in 25 ms, and every
    P waits for the next period."""
    sched = scheduler(env, 2)
    quota = CFSQuota(env, sched, quota_cores=0.5)
    quota.start()
    sched.n_cpu = 2
    quota.schedule()
    env.run(until=0.026)
    assert sched.throttled and quota.throttled_periods.value == 1
    env.run(until=CFS_PERIOD_S + 1e-9)
    assert not sched.throttled
    assert quota.throttled_s.count == 1 and quota.throttled_s.mean == pytest.approx(0.075)


def test_quota_refuses_a_budget_of_zero(env):
    with pytest.raises(ValueError, match="quota_cores"):
        CFSQuota(env, scheduler(env, 1), quota_cores=0.0)
