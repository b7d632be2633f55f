"""Micro-stories of the detailed Go scheduler (models/runtime/go/detailed/runtime.py), one mechanism each.

Every story is deterministic: goroutine creation costs nothing (spawn=0) and
CPU times are constants, so the expected times follow from the mechanism alone.
"""

from __future__ import annotations

import pytest

from sim.core import Environment
from sim.dists import Constant
from models.runtime.go.constants import (
    FORCE_PREEMPT_S, LOCAL_RUNQ_SLOTS, NETPOLL_STALE_S, STACK_MIN_BYTES, SYSMON_PERIOD_S,
)
from models.runtime.go.detailed.runtime import GoRuntime
from models.runtime.go.steps import Chan, Go, Recv, Send, fan_out
from models.runtime.go.gc import GCConfig
from models.runtime.protocol import Compute, Syscall, Wait

MS = 1e-3
NO_GC = GCConfig(enabled=False)


def runtime(env, procs: int, **kwargs) -> GoRuntime:
    return GoRuntime(env, procs, gc=kwargs.pop("gc", NO_GC), spawn=Constant(0.0), stack_bytes=STACK_MIN_BYTES,
                     **kwargs)


def test_one_goroutine_runs_its_cpu_time(env):
    go = runtime(env, 1)
    done = go.execute([Compute(3 * MS)])
    env.run(until=done)
    assert done.value == pytest.approx(3 * MS)


def test_stealing_moves_work_to_an_idle_p(env):
    """A parent spawns 8 children onto its own P; the other P, woken, steals half and they finish in
    half the time one P would need."""
    go = runtime(env, 2)
    children = [[Compute(1 * MS)] for _ in range(8)]
    done = go.execute(fan_out(children))
    env.run(until=done)
    assert go.steals.value >= 1
    assert done.value == pytest.approx(4 * MS, abs=1.01 * MS)  # 8 ms of work on 2 Ps, one child of slack


def test_without_a_second_p_nothing_is_stolen(env):
    go = runtime(env, 1)
    done = go.execute(fan_out([[Compute(1 * MS)] for _ in range(8)]))
    env.run(until=done)
    assert go.steals.value == 0
    assert done.value == pytest.approx(8 * MS)


def test_preemption_bounds_a_hogs_slice(env):
    """A 100 ms hog and a 1 ms request on one P: sysmon preempts the hog after 10-20 ms, the request
    runs, and the hog's 100 ms take between 100/20 and 100/10 slices."""
    go = runtime(env, 1)
    hog = go.execute([Compute(100 * MS)])
    env.run(until=0.5 * MS)
    short = go.execute([Compute(1 * MS)])
    env.run(until=hog)
    assert short.value <= FORCE_PREEMPT_S + SYSMON_PERIOD_S + 1 * MS
    assert short.value >= FORCE_PREEMPT_S - 0.5 * MS
    assert 100 / 20 - 1 <= go.preemptions.value <= 100 / 10
    assert hog.value == pytest.approx(101 * MS)
    # the hog started once and again after each preemption, the request once: switches in user space
    assert go.sched.goroutine_switches.value == 2 + go.preemptions.value


def test_an_m_parks_and_is_woken_as_its_p_idles_and_gets_work(env):
    """One goroutine on one P: its M is woken for it (a switch in) and parks once it ends (a switch out);
    sysmon's rounds meanwhile count two each (awake, asleep), so the count is even and at least 4."""
    go = runtime(env, 1)
    switches = env.metrics.counter("go.context_switches")
    assert switches.value == 0
    done = go.execute([Compute(3 * MS)])
    env.run(until=done)
    env.run(until=env.now + 1e-9)
    assert go.sched.goroutine_switches.value == 1
    assert switches.value >= 4 and switches.value % 2 == 0


def test_netpoll_ready_goroutine_waits_for_a_poll_when_all_ps_are_busy(env):
    """With the only P busy on a 50 ms goroutine, a request sits in the netpoller until sysmon, which
    polls when nobody has for 10 ms, injects it; its 1 ms network wait ends while the hog runs again,
    and it waits for the next poll and the hog's next preemption: it is served before the hog's 50 ms
    are done only because sysmon polls and preempts. Sysmon's sleeps end on time, so its rounds are
    20 µs apart, then back off to 10 ms: it injects the request and preempts the hog at 11.22 ms, injects
    it again at 21.22 ms, sees the hog there and preempts it at 31.22 ms; the request ends 1 ms later."""
    go = runtime(env, 1, wakeup_late=Constant(0.0))
    go.execute([Compute(50 * MS)])
    request = go.execute([Wait(lambda: env.timeout(1 * MS)), Compute(1 * MS)])
    env.run(until=request)
    assert request.value == pytest.approx(32.22 * MS)
    assert request.value > 3 * NETPOLL_STALE_S  # it did not run at once, nor at the first poll


@pytest.mark.parametrize("fidelity", ["detailed", "fast"])
def test_a_netpoll_batch_is_served_newest_first(env, fidelity):
    """Three requests park in the netpoller; the only P is then busy for 5 ms while they become ready
    at 1, 2 and 3 ms. The P's poll at 5 ms takes them as one batch, which netpoll returns newest
    first: the last to arrive finishes at 6 ms, the first at 8 ms."""
    from models.runtime.go.fast.runtime import FastGoRuntime

    go = runtime(env, 1) if fidelity == "detailed" else FastGoRuntime(env, 1, gc=NO_GC, stack_bytes=STACK_MIN_BYTES)
    requests = [go.execute([Wait(lambda k=k: env.timeout(k * MS)), Compute(1 * MS)]) for k in (1, 2, 3)]
    go.execute([Compute(5 * MS)])
    env.run(until=env.all_of(requests))
    assert [r.value for r in requests] == pytest.approx([8 * MS, 7 * MS, 6 * MS])


def test_syscall_hands_off_the_p(env):
    """A goroutine in a 5 ms blocking syscall does not hold its P: another runs meanwhile."""
    go = runtime(env, 1)
    sleeper = go.execute([Syscall(5 * MS), Compute(1 * MS)])
    worker = go.execute([Compute(2 * MS)])
    env.run(until=sleeper)
    assert worker.value == pytest.approx(2 * MS)
    assert sleeper.value == pytest.approx(6 * MS)


def test_local_queue_overflow_goes_to_the_global_queue(env):
    """runqputslow: spawning more than 256 goroutines on one P moves half of the local queue out."""
    go = runtime(env, 1)
    go.execute([Go([Compute(1 * MS)]) for _ in range(LOCAL_RUNQ_SLOTS + 10)] + [Compute(1 * MS)])
    env.run(until=0.5 * MS)
    p = go.sched.ps[0]
    assert len(p.runq) <= LOCAL_RUNQ_SLOTS
    assert len(go.sched.global_q) >= LOCAL_RUNQ_SLOTS // 2


def test_unbuffered_channel_synchronises(env):
    """The receiver cannot finish before the sender has sent (after 3 ms of work)."""
    go = runtime(env, 2)
    chan = Chan(0)
    receiver = go.execute([Recv(chan), Compute(1 * MS)])
    sender = go.execute([Compute(3 * MS), Send(chan)])
    env.run(until=receiver)
    assert sender.processed
    assert receiver.value == pytest.approx(4 * MS)


def test_buffered_channel_blocks_only_when_full(env):
    go = runtime(env, 1)
    chan = Chan(2)
    two = go.execute([Send(chan), Send(chan), Compute(1 * MS)])
    env.run(until=two)
    assert two.value == pytest.approx(1 * MS)
    three = go.execute([Send(chan), Compute(1 * MS)])  # buffer full: waits for a receiver
    env.run(until=5 * MS)
    assert not three.triggered
    go.execute([Recv(chan)])
    env.run(until=three)
    assert three.triggered


def test_fan_out_joins_in_parallel(env):
    go = runtime(env, 4)
    done = go.execute(fan_out([[Compute(2 * MS)] for _ in range(4)]))
    env.run(until=done)
    assert done.value == pytest.approx(2 * MS, rel=0.01)


def test_goroutine_creation_costs_cpu_and_stack(env):
    go = GoRuntime(env, 1, gc=NO_GC, spawn=Constant(3e-6), stack_bytes=STACK_MIN_BYTES)
    parked = [go.execute([Wait(lambda: env.timeout(1.0))]) for _ in range(1000)]
    env.run(until=0.5)
    assert go.stack_bytes.level == 1000 * STACK_MIN_BYTES
    assert go.goroutines.level == 1000
    spawner = go.execute([Go([]) for _ in range(100)])
    env.run(until=spawner)
    assert spawner.value == pytest.approx(100 * 3e-6)
    env.run(until=parked[-1])
    env.run(until=env.now + 1e-3)
    assert go.goroutines.level == 0


def test_quota_throttles_all_ps_when_spent(env):
    """4 Ps, a 1-core quota, 4 goroutines of 200 ms: 0.8 CPU-s at 0.1 s per 100 ms period take
    8 periods, not 200 ms, and every period ends throttled."""
    go = runtime(env, 4, quota_cores=1.0)
    hogs = [go.execute([Compute(200 * MS)]) for _ in range(4)]
    env.run(until=env.all_of(hogs))
    assert env.now == pytest.approx(0.8 - 0.075, abs=1e-6)  # the last period's 25 ms of each P
    assert go.throttled_periods.value == 7
    assert go.throttled_s.max == pytest.approx(75 * MS)


def test_without_quota_no_throttling(env):
    go = runtime(env, 4)
    hogs = [go.execute([Compute(200 * MS)]) for _ in range(4)]
    env.run(until=env.all_of(hogs))
    assert env.now == pytest.approx(0.2)
    assert go.throttled_periods.value == 0


def test_defaults_come_from_calibration(env):
    """Left out, goroutine creation and stack size are the calibrated parameter sets."""
    from sim.params import param_value

    go = GoRuntime(env, 1, gc=NO_GC)
    assert go.sched.stack_per_g == param_value("go.goroutine.stack_bytes")
    assert go.sched.spawn_cost() == param_value("go.goroutine.spawn_s")
    with pytest.raises(ValueError, match="stack_bytes"):
        GoRuntime(Environment(), 1, gc=NO_GC, stack_bytes=1000)


def test_both_fidelities_are_runtimes(env):
    from models.runtime.go.fast.runtime import FastGoRuntime
    from models.runtime.protocol import Runtime

    assert isinstance(runtime(env, 1), Runtime)
    assert isinstance(FastGoRuntime(Environment(), 1, gc=NO_GC, stack_bytes=STACK_MIN_BYTES), Runtime)


@pytest.mark.parametrize("last", ["exit", "park"])
def test_a_long_run_of_goroutines_that_need_no_cpu_does_not_nest(env, last: str):
    """20,000 goroutines park on the same network event; woken together, one P runs them one after the other
    without a CPU slice between them, each ending (or parking again on a system call): the P goes from one
    to the next in a loop, so the run is not limited by Python's recursion depth, and the parent's Join
    ends when the last one does, at the instant they were woken."""
    go = runtime(env, 1)
    wake = env.timeout(1 * MS)
    tail = [] if last == "exit" else [Syscall(1 * MS)]
    done = go.execute(fan_out([[Wait(lambda: wake), *tail]] * 20_000))
    env.run(until=done)
    assert done.value == pytest.approx(2 * MS if tail else 1 * MS)
    assert go.goroutines.max == 20_001
