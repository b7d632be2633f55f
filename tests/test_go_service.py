"""The go.service model kind: M/G/1 reduction, the built-in scenario (fast against detailed: test_go_fast.py).

Every runtime parameter is given explicitly (pauses, mark rate, goroutine creation,
stack size, timer lateness), so these checks do not move when the calibration is re-measured.

Statistical checks follow tests/test_queueing_theory.py: independent
replications, a Student-t interval at 99.9 %, fixed seeds.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models.queueing import formulas
from sim.run import run_replication, run_replications
from sim.scenario import load_scenario

MS = 1e-3
STW = {"stw_sweep_termination": "30us", "stw_mark_termination": "50us"}
SERVICE = {"dist": "gamma", "mean": "1ms", "cv": 0.5}
WAKEUP_LATE = "80us"  # sysmon's and timers' sleep overshoot: about the median measured (go.sched.wakeup_late_s)


def test_one_p_without_gc_is_mg1():
    """GOMAXPROCS=1, no collector, free goroutine creation: the Go service is an M/G/1 queue
    (work-conserving, order blind to service times, requests far below the 10 ms slice), so
    its mean latency is Pollaczek-Khinchine's. 20 replications of 20,000 requests at rho = 0.7;
    the formula must lie in the 99.9 % interval, and the interval must be narrower than 4 %
    (half-widths of 1.6-2.2 % were seen), so the check can fail."""
    rho = 0.7
    scenario = load_scenario(
        {
            "model": "go.service",
            "arrival_rate": rho / MS,
            "requests": 20_000,
            "gomaxprocs": 1,
            "spawn": 0,
            "stack_bytes": "2KiB",
            "wakeup_late": WAKEUP_LATE,
            "handler": {"cpu": SERVICE, "alloc": 0},
            "gc": {"enabled": False},
            "seed": 11,
        }
    )
    outcome = run_replications(scenario, 20, confidence=0.999)
    estimate = outcome.get("requests.sojourn_s", "mean")
    service = scenario.handler.cpu
    theory = formulas.mg1_mean_sojourn(rho / MS, service.mean, service.second_moment)
    assert estimate.low <= theory <= estimate.high
    assert estimate.half_width / theory < 0.04


def reference(fidelity: str, load: float, seed: int) -> dict:
    """The reference service of the fast-fidelity check: 2 Ps, gamma 1 ms CPU, 64 KiB per request,
    32 MiB live heap, GOGC 100."""
    return {
        "model": "go.service",
        "fidelity": fidelity,
        "arrival_rate": load * 2 / MS,
        "requests": 40_000,
        "gomaxprocs": 2,
        "spawn": 0,
        "stack_bytes": "2KiB",
        "wakeup_late": WAKEUP_LATE,
        "handler": {"cpu": SERVICE, "alloc": "64KiB"},
        "gc": {"live_heap": "32MiB", "mark_rate": 1e9, **STW},
        "seed": seed,
    }


def test_builtin_scenario_runs_and_gogc_moves_cycles():
    """go-http-service runs by name; a smaller GOGC means more cycles and more GC CPU, and a handler
    that allocates twice as much means more cycles and more GC CPU: through the heap, not a
    constant. (Not twice the cycles: at hundreds of MB/s against a 1 GB/s mark, what is allocated
    during mark is marked too and grows the next goal.) Handler costs are given here, not taken
    from the codec's calibration, so that re-measuring it does not move this check."""
    small = {
        "requests": 4000, **{f"gc.{k}": v for k, v in STW.items()}, "gc.mark_rate": 1e9, "spawn": 0,
        "stack_bytes": "2KiB", "wakeup_late": WAKEUP_LATE, "handler.codec": None,
        "handler.cpu": {"dist": "exp", "mean": "200us"},
    }
    results = {}
    for name, overrides in {
        "gogc50": {"gc.gogc": 50, "handler.alloc": "56KB"},
        "gogc200": {"gc.gogc": 200, "handler.alloc": "56KB"},
        "gogc200_heavy": {"gc.gogc": 200, "handler.alloc": "112KB"},
    }.items():
        results[name] = run_replication(load_scenario("go-http-service", {**small, **overrides}))
    cycles = {name: result.value("go.gc.cycles", "rate") for name, result in results.items()}
    gc_cpu = {name: result.value("go.gc.cpu_s", "rate") for name, result in results.items()}
    assert cycles["gogc50"] > 2 * cycles["gogc200"]
    assert gc_cpu["gogc50"] > 1.5 * gc_cpu["gogc200"]
    assert cycles["gogc200_heavy"] > 1.2 * cycles["gogc200"]
    assert gc_cpu["gogc200_heavy"] > 1.2 * gc_cpu["gogc200"]


def test_the_json_codec_costs_come_from_calibration():
    from sim.params import param_value

    handler = load_scenario("go-http-service").handler
    cpu, alloc = handler.codec_costs()
    assert cpu == param_value("go.json.unmarshal_s") + param_value("go.json.marshal_s")
    assert alloc == param_value("go.json.unmarshal_alloc_bytes") + param_value("go.json.marshal_alloc_bytes")
    assert handler.mean_cpu_s == pytest.approx(cpu + handler.cpu.mean)


def test_gomaxprocs_above_the_quota_shows_the_throttling_tail():
    """A 1-core CFS quota, the collector on, load 0.5 of the quota: with GOMAXPROCS=4 a GC mark
    puts idle workers on every P, the 4 Ps spend the period's 100 ms budget in about 25 ms and
    every P stalls the rest of the period. So, against GOMAXPROCS=1 (which cannot use more than
    the quota and is never throttled): a lower median (more parallelism) and a much longer p99.9. A
    stall lasts at most 75 ms: 4 Ps need at least 25 ms to spend a 100 ms budget. The p99.9 ratio
    varies with the seed (6 seeds, 2026-12-06: 1.9-2.9, mean 2.6; after the pacer took endCycle's
    cons/mark, 1.9-2.8, mean 2.3): one seed's ratio above 2 was a coin with a 1-in-6 side, so the
    check is that the mean ratio over 6 seeds is above 1.5 at one-sided 99 % confidence."""
    base = {
        "model": "go.service",
        "arrival_rate": 500,
        "requests": 20_000,
        "spawn": 0,
        "stack_bytes": "2KiB",
        "quota_cores": 1.0,
        "wakeup_late": WAKEUP_LATE,
        "handler": {"cpu": SERVICE, "alloc": "64KiB"},
        "gc": {"live_heap": "64MiB", "mark_rate": 1e9, **STW},
    }
    ratios = []
    for seed in range(1, 7):
        wide = run_replication(load_scenario({**base, "seed": seed, "gomaxprocs": 4}))
        narrow = run_replication(load_scenario({**base, "seed": seed, "gomaxprocs": 1}))
        assert narrow.value("go.throttled_periods", "count") == 0
        assert wide.value("go.throttled_periods", "count") > 0
        assert 0 < wide.value("go.throttled_s", "max") <= 0.075 + 1e-9
        assert wide.value("requests.sojourn_s", "p50") < narrow.value("requests.sojourn_s", "p50")
        ratios.append(wide.value("requests.sojourn_s", "p99.9") / narrow.value("requests.sojourn_s", "p99.9"))
    mean, sd = float(np.mean(ratios)), float(np.std(ratios, ddof=1))
    assert mean - stats.t.ppf(0.99, len(ratios) - 1) * sd / np.sqrt(len(ratios)) > 1.5, ratios


@pytest.mark.parametrize("fidelity", ["detailed", "fast"])
def test_gc_cpu_fraction_is_the_gc_cpu_seconds_per_second(fidelity):
    """The time-weighted share of Ps doing GC work (workers, assists, pauses) equals the GC CPU
    seconds per second over GOMAXPROCS: two accountings of the same CPU, kept separately."""
    scenario = load_scenario(
        reference(fidelity, 0.5, seed=2),
        {"requests": 5000, "warmup": 0.0},
    )
    result = run_replication(scenario)
    fraction = result.value("go.gc.cpu_fraction", "mean")
    assert fraction > 0.01
    assert fraction == pytest.approx(result.value("go.gc.cpu_s", "rate") / 2, rel=1e-6)
