"""Sysmon and timers of the detailed Go runtime (models/runtime/go/detailed/sysmon.py, netpoll.py).

A deterministic story of sysmon's back-off and its two sightings before a
preemption, and the schedlat experiment of calibration/harness/go/schedlat
simulated and held to its measurement (calibration/data/vm/sched_wakeup.csv).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.core import Environment
from sim.dists import Constant
from models.runtime.go.constants import (
    FORCE_PREEMPT_S, STACK_MIN_BYTES, SYSMON_IDLE_ROUNDS, SYSMON_MIN_DELAY_S, SYSMON_PERIOD_S,
)
from models.runtime.go.detailed.runtime import GoRuntime
from models.runtime.go.steps import Sleep
from models.runtime.go.gc import GCConfig
from models.runtime.protocol import Compute

MS = 1e-3
NO_GC = GCConfig(enabled=False)
DATA = Path(__file__).resolve().parents[1] / "calibration" / "data" / "vm"
SCHED_WAKEUP_CSV = DATA / "sched_wakeup.csv"
SYSMON_CSV = DATA / "machine_sysmon.csv"
Z99 = 2.576


def runtime(env, procs: int, **kwargs) -> GoRuntime:
    return GoRuntime(env, procs, gc=NO_GC, spawn=Constant(0.0), stack_bytes=STACK_MIN_BYTES, **kwargs)


def sysmon_rounds(until_s: float) -> list[float]:
    """Sysmon's round times from a reset, with sleeps that end on time: 51 rounds of 20 µs, then doubling
    to 10 ms (proc.go ``sysmon``)."""
    times, now, delay, idle = [], 0.0, SYSMON_MIN_DELAY_S, 0
    while now < until_s:
        if idle == 0:
            delay = SYSMON_MIN_DELAY_S
        elif idle > SYSMON_IDLE_ROUNDS:
            delay = min(delay * 2, SYSMON_PERIOD_S)
        now += delay
        times.append(now)
        idle += 1
    return times


def test_sysmon_backs_off_and_preempts_on_its_second_sighting(env):
    """Two 15 ms goroutines on one P, sysmon's sleeps on time. Sysmon first sees A at its first round
    (20 µs) and preempts it at the first round 10 ms later: 11.22 ms, after 51 rounds of 20 µs and
    sleeps of 40 µs to 5.12 ms. B starts then; sysmon, now sleeping 10 ms, first sees it at 21.22 ms
    and would preempt it at 31.22 ms, but B is done at 26.22 ms; A's last 3.78 ms end at 30 ms. With a
    preemption 10 ms after the start of a slice, B would be preempted at 21.22 ms and end later."""
    rounds = sysmon_rounds(0.05)
    first_preempt = next(t for t in rounds if t >= rounds[0] + FORCE_PREEMPT_S)
    assert first_preempt == pytest.approx(11.22 * MS)
    go = runtime(env, 1, wakeup_late=Constant(0.0))
    a = go.execute([Compute(15 * MS)])
    b = go.execute([Compute(15 * MS)])
    env.run(until=a)
    assert go.preemptions.value == 1
    assert b.value == pytest.approx(first_preempt + 15 * MS)
    assert a.value == pytest.approx(30 * MS)


def test_a_wake_from_deep_sleep_restarts_sysmon_at_20_us(env):
    """Sysmon backs off to 10 ms behind a 100 ms goroutine, then sleeps deeply while the P is idle. Two
    15 ms requests at 200 ms wake it (``entersyscall``); it starts again at 20 µs (``if syscallWake {
    idle = 0; delay = 20 }``), its wake-up being its first round (the P still idle), so its rounds are
    those from start-up 20 µs earlier: it first sees the first request 20 µs after the wake and
    preempts it at 11.20 ms; the second request is done 26.20 ms after it came. Kept at its
    backed-off 10 ms, sysmon would preempt later (the second request would take 30 ms)."""
    rounds = [t - SYSMON_MIN_DELAY_S for t in sysmon_rounds(0.05)]
    first_preempt = next(t for t in rounds if t >= rounds[1] + FORCE_PREEMPT_S)
    assert first_preempt == pytest.approx(11.20 * MS)
    go = runtime(env, 1, wakeup_late=Constant(0.0))
    go.execute([Compute(100 * MS)])
    later: list = []
    env.timeout(200 * MS).callbacks.append(
        lambda _event: later.extend([go.execute([Compute(15 * MS)]), go.execute([Compute(15 * MS)])]))
    env.run(until=300 * MS)
    first, second = later
    assert first.triggered and second.triggered
    assert second.value == pytest.approx(first_preempt + 15 * MS)


def _on_one_core(env, sysmon_cpu_s: float, slice_s: float):
    """A GOMAXPROCS 1 runtime on one placed core (nothing co-placed, no migration) whose sysmon rounds cost
    ``sysmon_cpu_s`` and whose sleeps end 25 µs late; two 1 ms requests at 10 ms, after sysmon fell into its
    deep sleep: their latencies."""
    from models.machine.cores import Cores

    machine = Cores(env, 1, 0.0, 0.0, lambda: 1.0, slice_s, lambda: 0.5)
    go = runtime(env, 1, wakeup_late=Constant(0.0), cores=machine, sysmon_cpu=Constant(sysmon_cpu_s),
                 sysmon_late=Constant(25e-6))
    later: list = []
    env.timeout(10 * MS).callbacks.append(
        lambda _event: later.extend([go.execute([Compute(1 * MS)]), go.execute([Compute(1 * MS)])]))
    env.run(until=50 * MS)
    return [event.value for event in later]


def test_sysmon_on_a_shared_core_waits_then_takes_the_cpu_at_every_round(env):
    """Woken from its deep sleep by the first request, sysmon (10 µs a round) waits behind the P's thread,
    which is not preempted by a wake-up and does not hand its core over at the end of a goroutine, until the
    thread's 0.5 ms turn ends at 10.5 ms. Then it runs (to 10.51 ms), sleeps 20 µs asked + 25 µs late, and
    woken by its timer takes the core for 10 µs every 55 µs: the P gets 45 µs of every 55. The first
    request's remaining 0.5 ms ends at 10.51 + 11 x 0.055 + 0.005 = 11.12 ms; the second gets the rest of
    that turn (40 µs), then 21 turns and 15 µs: it ends at 11.17 + 21 x 0.055 + 0.015 = 12.34 ms. Rounds
    that cost nothing leave the two at 1 and 2 ms."""
    assert _on_one_core(env, 10e-6, 0.5 * MS) == pytest.approx([1.12 * MS, 2.34 * MS])
    assert _on_one_core(Environment(seed=1), 0.0, 0.5 * MS) == pytest.approx([1 * MS, 2 * MS])


def test_sysmon_woken_behind_a_thread_that_sleeps_costs_its_requests_nothing(env):
    """With a 10 ms turn the P's thread keeps the core through both requests (2 ms) and then sleeps: sysmon,
    woken by the first request, runs only then, and every round after finds the P idle."""
    assert _on_one_core(env, 10e-6, 10 * MS) == pytest.approx([1 * MS, 2 * MS])


def median_half_width(values: np.ndarray) -> float:
    """Half-width of the distribution-free 99 % confidence interval of the median (order statistics
    at ranks n/2 -/+ 2.576 sqrt(n)/2, the normal approximation of the binomial)."""
    ordered = np.sort(values)
    n = len(ordered)
    low = max(int(math.floor(n / 2 - Z99 * math.sqrt(n) / 2)), 0)
    high = min(int(math.ceil(n / 2 + Z99 * math.sqrt(n) / 2)), n - 1)
    median = float(np.median(ordered))
    return max(median - ordered[low], ordered[high] - median)


def schedlat(procs: int, busy: int, seconds: float, seed: int) -> np.ndarray:
    """The harness: one goroutine sleeps 1 ms in a loop (about 1 µs of CPU per turn, time.Now and an
    append) while ``busy`` goroutines spin; GOMAXPROCS ``procs``; lateness of each wake-up."""
    env = Environment(seed=seed)
    go = runtime(env, procs)
    late: list[float] = []
    turns = int(seconds / MS) + 1
    go.go([step for _ in range(turns) for step in (Sleep(1 * MS, late.append), Compute(1e-6))])
    for _ in range(busy):
        go.go([Compute(10 * seconds)])
    env.run(until=seconds)
    return np.asarray(late)


BUSY = (0, 1, 2, 4, 16)


def test_timer_lateness_behind_busy_goroutines_matches_schedlat():
    """Median lateness of a 1 ms sleep, simulated as the harness ran it (1 s per condition), against
    the measured medians, at GOMAXPROCS 1 and 2 with 0-16 busy goroutines.

    The model has two regimes: with a free P the timer wakes an idle P, late by the calibrated
    ``go.sched.wakeup_late_s`` (~85 µs); with every P busy it runs when its P's goroutine is preempted,
    two sysmon rounds of ~10.08 ms after the hog started, less the 1 ms sleep: ~19.17 ms. It does not
    tell apart conditions within a regime, and the data show them differing by more than their
    sampling error (medians 76-85 µs and 19.15-19.26 ms). So the tolerance of each condition is the
    spread of the measured medians of its regime, plus the 99 % interval of the measured median and of
    the simulated one (order statistics). A preemption 10 ms after a slice starts (sysmon without its
    two sightings) gives ~9 ms; timers that wait for any P to schedule give up to tens of ms."""
    data = pd.read_csv(SCHED_WAKEUP_CSV)
    measured = {
        (procs, busy): data[(data.gomaxprocs == procs) & (data.busy == busy)].late_s.to_numpy()
        for procs in (1, 2) for busy in BUSY
    }
    regime = {key: "free P" if key[1] < key[0] else "behind busy" for key in measured}
    medians = {key: float(np.median(values)) for key, values in measured.items()}
    spread = {
        name: max(m for k, m in medians.items() if regime[k] == name)
        - min(m for k, m in medians.items() if regime[k] == name)
        for name in set(regime.values())
    }
    for (procs, busy), values in measured.items():
        simulated = schedlat(procs, busy, seconds=1.0, seed=7)
        assert len(simulated) >= 30
        tolerance = spread[regime[procs, busy]] + median_half_width(values) + median_half_width(simulated)
        assert float(np.median(simulated)) == pytest.approx(medians[procs, busy], abs=tolerance), (procs, busy)


def _spin_stolen_fraction(seeds: int, spin_s: float, idle_s: float) -> np.ndarray:
    """The sysmon harness in the model: a GOMAXPROCS 1 runtime on one placed core with the calibrated sysmon
    and time slice, idle ``idle_s``, then one goroutine computing ``spin_s``: per seed, the share of its wall
    time it was kept off the core."""
    from models.machine.cores import Cores
    from sim.params import param_value

    stolen = []
    for seed in range(seeds):
        env = Environment(seed=seed)
        draws = np.random.default_rng(seed)
        machine = Cores(env, 1, 0.0, 0.0, lambda: 1.0, param_value("machine.slice_s"), draws.random)
        go = runtime(env, 1, cores=machine)
        spin: list = []

        env.timeout(idle_s).callbacks.append(lambda _event: spin.append(go.execute([Compute(spin_s)])))  # noqa: B023
        env.run(until=idle_s + 20 * spin_s)
        stolen.append(1 - spin_s / spin[0].value)
    return np.array(stolen)


@pytest.mark.xfail(strict=True, reason=(
    "the model's sysmon, woken from its deep sleep, waits behind the spinning thread until its time slice ends "
    "(as perf sched showed beside the validation server's handler: a median 1.1 ms), then takes the CPU at every "
    "round; in the harness it mostly ran within ~45 µs of the wake, and per spin it polled regularly (~35-40 % of "
    "the CPU) or hardly got the CPU at all, in shares that varied between three runs of the same day (regular in "
    "39 %, 28 % and 16 % of the spins): the model keeps 7 % of a 5 ms spin, the shipped data 13 %"))
def test_sysmon_keeps_a_spinning_goroutine_off_its_core_as_measured():
    """valserver -sysmon-samples (calibration/data/vm/machine_sysmon.csv): 200 spins of 5 ms on one CPU after
    30 ms idle; the share of each spin's wall time it was off the CPU, against the same in the model over 200
    seeds. Tolerance: 2.576 standard errors of the difference of the two means."""
    frame = pd.read_csv(SYSMON_CSV)
    spins = int(frame["sample"].max()) + 1
    real = frame.groupby("sample")["off_s"].sum().reindex(range(spins), fill_value=0.0).to_numpy() / 5e-3
    model = _spin_stolen_fraction(200, 5e-3, 30e-3)
    tolerance = Z99 * math.sqrt(real.var(ddof=1) / len(real) + model.var(ddof=1) / len(model))
    assert abs(model.mean() - real.mean()) <= tolerance, (real.mean(), model.mean(), tolerance)
