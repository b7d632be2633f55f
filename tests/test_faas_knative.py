"""Knative's autoscaler (:mod:`models.faas.knative`) held to knative/serving's own unit tests.

Each case cites its upstream test (``pkg/autoscaler/scaling/autoscaler_test.go`` and
``pkg/autoscaler/aggregation/bucketing_test.go``, knative/serving 98e5ef9); inputs and expected outputs are
upstream's, the form is ours. Upstream's test autoscaler: target utilisation 75 % (total = target / 0.75),
panic threshold 2, max scale-up and scale-down rates 10, stable window 60 s, one ready pod; excess burst
capacity compared within +-1 as upstream (``approxEquateInt32``).
"""

from __future__ import annotations

import math
import re

import pytest

from sim.core import Environment
from sim.scenario import ScenarioError, load_scenario
from models.faas.model import FaasModel
from test_faas import run
from models.faas.knative import (
    MIN_EXPONENT,
    TICK_S,
    Autoscaler,
    DeciderSpec,
    MaxWindow,
    ScaleToZero,
    TimedBuckets,
    WeightedBuckets,
    apply_bounds,
    resolve_target,
    smoothing_coeff,
)

UTILIZATION = 0.75
STABLE_WINDOW = 60.0
NOW = 1_700_000_000.4  # an arbitrary wall-clock time, not on a bucket boundary (upstream uses time.Now())


def spec(target: float, tbc: float, **changes: object) -> DeciderSpec:
    """Upstream's ``newTestAutoscalerWithScalingMetric`` decider spec."""
    fields: dict[str, object] = {
        "target_value": target, "total_value": target / UTILIZATION, "target_burst_capacity": tbc,
        "panic_threshold": 2.0, "max_scale_up_rate": 10.0, "max_scale_down_rate": 10.0,
        "stable_window_s": STABLE_WINDOW, "reachable": True}
    fields.update(changes)
    return DeciderSpec(**fields)  # type: ignore[arg-type]


def ebc(total_per_pod: float, tbc: float, observed: float, pods: float) -> int:
    """Upstream's ``expectedEBC``."""
    return math.floor(total_per_pod / UTILIZATION * pods - tbc - observed)


def check(scaler: Autoscaler, now: float, ready: int, stable: float, panic: float, desired: int,
          excess: int) -> None:
    result = scaler.scale(now, ready, stable, panic)
    assert result.desired == desired
    assert abs(result.excess_burst_capacity - excess) <= 1


# -- autoscaler_test.go: TestAutoscalerScale's table ----------------------------------------------------------

SCALE_TABLE = [
    # (upstream label, target, tbc, stable, panic, ready, spec changes, panic state (seconds ago, max pods),
    #  wanted desired, wanted ebc)
    ("AutoscalerNoDataAtZeroNoAutoscale", 10, 100, 0, 0, 1, {}, None, 0, ebc(10, 100, 0, 1)),
    ("AutoscalerStableModeUnlimitedTBC", 181, -1, 21, 26, 1, {}, None, 1, -1),
    ("Autoscaler0TBC", 10, 0, 50, 49, 1, {}, None, 5, 0),
    ("AutoscalerStableModeNoChange", 10, 100, 50, 50, 1, {}, None, 5, ebc(10, 100, 50, 1)),
    ("AutoscalerPanicStableLargerThanPanic", 1, 100, 50, 30, 5, {}, (5, 5), 50, ebc(1, 100, 30, 5)),
    ("AutoscalerPanicStableLessThanPanic", 1, 100, 20, 30, 5, {}, (5, 5), 30, ebc(1, 100, 30, 5)),
    ("AutoscalerStableModeNoChangeAlreadyScaled", 10, 100, 50, 50, 5, {}, None, 5, ebc(10, 100, 50, 5)),
    ("AutoscalerStableModeIncreaseWithSmallScaleUpRate", 1, 1982, 3, 3.1, 2, {"max_scale_up_rate": 1.1}, None,
     3, ebc(1, 1982, 3.1, 2)),
    ("AutoscalerStableModeDecreaseWithSmallScaleDownRate", 10, 1982, 1, 1, 100, {"max_scale_down_rate": 1.1},
     None, 90, ebc(10, 1982, 1, 100)),
    ("AutoscalerStableModeDecreaseNonReachable", 10, 1982, 1, 1, 100,
     {"max_scale_down_rate": 1.1, "reachable": False}, None, 1, ebc(10, 1982, 1, 100)),
    ("AutoscalerPanicModeDoublePodCount", 10, 84, 50, 100, 1, {}, None, 10, ebc(10, 84, 100, 1)),
]


@pytest.mark.parametrize("case", SCALE_TABLE, ids=[c[0] for c in SCALE_TABLE])
def test_autoscaler_scale_table(case: tuple) -> None:
    _, target, tbc, stable, panic, ready, changes, panic_state, desired, excess = case
    scaler = Autoscaler(spec(target, tbc, **changes), ready=1, now=NOW)
    if panic_state is not None:
        scaler.panic_time, scaler.max_panic_pods = NOW - panic_state[0], panic_state[1]
    check(scaler, NOW, ready, stable, panic, desired, excess)


# -- autoscaler_test.go: the sequence tests --------------------------------------------------------------------

def test_stable_mode_increase_with_concurrency_default():
    # TestAutoscalerStableModeIncreaseWithConcurrencyDefault
    scaler = Autoscaler(spec(10, 101), ready=1, now=NOW)
    check(scaler, NOW, 1, 50, 10, 5, ebc(10, 101, 10, 1))
    check(scaler, NOW, 1, 100, 10, 10, ebc(10, 101, 10, 1))


def test_unpanic_after_slow_increase():
    # TestAutoscalerUnpanicAfterSlowIncrease
    scaler = Autoscaler(spec(1, 98), ready=1, now=NOW)
    check(scaler, NOW, 10, 11, 25, 25, ebc(1, 98, 25, 10))
    assert scaler.panic_time == NOW
    later = NOW + STABLE_WINDOW / 2
    check(scaler, later, 40, 30, 41, 41, ebc(1, 98, 41, 40))
    assert scaler.panic_time == NOW  # 41 / 40 < 2: not extended
    check(scaler, later + STABLE_WINDOW / 2 + TICK_S, 55, 50, 56, 50, ebc(1, 98, 56, 55))
    assert scaler.panic_time is None


def test_extend_panic_window():
    # TestAutoscalerExtendPanicWindow
    scaler = Autoscaler(spec(1, 98), ready=1, now=NOW)
    check(scaler, NOW, 10, 11, 25, 25, ebc(1, 98, 25, 10))
    later = NOW + STABLE_WINDOW / 2
    check(scaler, later, 40, 30, 80, 80, ebc(1, 98, 80, 40))
    assert scaler.panic_time == later


def test_stable_mode_decrease():
    # TestAutoscalerStableModeDecrease
    scaler = Autoscaler(spec(10, 98), ready=1, now=NOW)
    check(scaler, NOW, 8, 100, 100, 10, ebc(10, 98, 100, 8))
    check(scaler, NOW, 8, 50, 50, 5, ebc(10, 98, 50, 8))


def test_stable_mode_no_traffic_scale_to_zero():
    # TestAutoscalerStableModeNoTrafficScaleToZero
    scaler = Autoscaler(spec(10, 75), ready=1, now=NOW)
    check(scaler, NOW, 1, 1, 0, 1, ebc(10, 75, 0, 1))
    check(scaler, NOW, 1, 0, 0, 0, ebc(10, 75, 0, 1))


def test_activation_scale():
    # TestAutoscalerActivationScale
    scaler = Autoscaler(spec(10, 75, activation_scale=2), ready=1, now=NOW)
    check(scaler, NOW, 1, 0, 0, 0, ebc(10, 75, 0, 1))
    check(scaler, NOW, 1, 1, 0, 2, ebc(10, 75, 0, 1))


def test_panic_mode_exponential_track_and_stabilize():
    # TestAutoscalerPanicModeExponentialTrackAndStabilize
    scaler = Autoscaler(spec(1, 101), ready=1, now=NOW)
    check(scaler, NOW, 1, 6, 6, 6, ebc(1, 101, 6, 1))
    t = NOW + 0.25
    check(scaler, t, 6, 36, 36, 36, ebc(1, 101, 36, 6))
    assert scaler.panic_time == t
    t += 1
    check(scaler, t, 36, 216, 216, 216, ebc(1, 101, 216, 36))
    assert scaler.panic_time == t
    check(scaler, t, 216, 1296, 1296, 1296, ebc(1, 101, 1296, 216))
    assert scaler.panic_time == t
    check(scaler, t + 1, 1296, 1296, 1296, 1296, ebc(1, 101, 1296, 1296))


def test_panic_then_unpanic_scale_down():
    # TestAutoscalerPanicThenUnPanicScaleDown
    scaler = Autoscaler(spec(10, 93), ready=1, now=NOW)
    check(scaler, NOW, 1, 100, 100, 10, ebc(10, 93, 100, 1))
    check(scaler, NOW, 10, 100, 1000, 100, ebc(10, 93, 1000, 10))
    check(scaler, NOW + 30, 10, 1, 1, 100, ebc(10, 93, 1, 10))  # still panicking: no scale-down
    check(scaler, NOW + 61, 10, 1, 1, 1, ebc(10, 93, 1, 10))


def test_rate_limit_scale_up():
    # TestAutoscalerRateLimitScaleUp
    scaler = Autoscaler(spec(10, 61), ready=1, now=NOW)
    check(scaler, NOW, 1, 1000, 1001, 10, ebc(10, 61, 1001, 1))
    check(scaler, NOW, 10, 1000, 1001, 100, ebc(10, 61, 1001, 10))


def test_rate_limit_scale_down():
    # TestAutoscalerRateLimitScaleDown
    scaler = Autoscaler(spec(10, 61), ready=1, now=NOW)
    check(scaler, NOW, 100, 1, 1, 10, ebc(10, 61, 1, 100))
    check(scaler, NOW, 10, 1, 1, 1, ebc(10, 61, 1, 10))


def test_use_one_pod_as_minimum_if_endpoints_not_found():
    # TestAutoscalerUseOnePodAsMinimumIfEndpointsNotFound
    scaler = Autoscaler(spec(10, 81), ready=1, now=NOW)
    check(scaler, NOW, 0, 1000, 888, 10, ebc(10, 81, 888, 0))


def test_update_target():
    # TestAutoscalerUpdateTarget
    scaler = Autoscaler(spec(10, 77), ready=1, now=NOW)
    check(scaler, NOW, 1, 100, 101, 10, ebc(10, 77, 101, 1))
    scaler.spec = spec(1, 71)
    check(scaler, NOW, 10, 100, 101, 100, ebc(1, 71, 101, 10))


def test_stable_mode_metrics_case():
    # TestAutoscalerMetrics: stable 50, panic 50, target 10, TBC 100, one pod
    check(Autoscaler(spec(10, 100), ready=1, now=NOW), NOW, 1, 50, 50, 5, ebc(10, 100, 50, 1))


@pytest.mark.parametrize(("ready", "panicking"), [(0, False), (1, False), (2, True)])
def test_start_in_panic_mode(ready: int, panicking: bool):
    # TestStartInPanicMode: created with more than one ready pod, the autoscaler panics
    scaler = Autoscaler(spec(100, 11, total_value=120, panic_threshold=220), ready=ready, now=NOW)
    assert (scaler.panic_time is not None) == panicking
    assert scaler.max_panic_pods == ready


# -- bucketing_test.go ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("buckets", "want"), [(100, MIN_EXPONENT), (60, MIN_EXPONENT), (40, 0.20567),
                                               (6, 0.78456)])
def test_compute_decay_multiplier(buckets: int, want: float):
    # TestComputeDecayMultiplier (upstream's tolerance is weightPrecision, ours the 5 digits given)
    assert smoothing_coeff(buckets) == pytest.approx(want, abs=1e-5)


def test_timed_buckets_window_average():
    # TestTimedFloat64BucketsWindowAverage
    now = NOW
    buckets = TimedBuckets(5.0)
    buckets.record(now, 1)
    assert buckets.window_average(now) == 1.0  # the first write counts: not 1/5
    for i in range(1, 5):
        buckets.record(now + i, i + 1)
    assert buckets.window_average(now + 4) == 15 / 5
    assert buckets.window_average(now + 3.6) == 15 / 5  # now lagging behind the last write
    assert buckets.window_average(now + 6) == (15 - 1 - 2) / (5 - 2)  # short hole
    assert buckets.window_average(now + 10) == 0.0  # long hole
    buckets.record(now + 6, 91)
    assert buckets.window_average(now + 6) == (15 - 1 - 2 + 91) / 5
    now += 60
    buckets.record(now, 1984)
    assert buckets.window_average(now) == 1984.0
    buckets.record(now - 3, 4)
    assert buckets.window_average(now) == (4 + 1984) / 4
    now += 1
    buckets.record(now, 5)
    assert buckets.window_average(now) == (4 + 1984 + 5) / 5
    buckets.record(now - 3, 10)
    assert buckets.window_average(now) == (4 + 10 + 1984 + 5) / 5
    buckets.record(now - 6, 10)  # too early: ignored
    assert buckets.window_average(now) == (4 + 10 + 1984 + 5) / 5
    buckets.record(now - 5, 10)  # on the bound: ignored
    assert buckets.window_average(now) == (4 + 10 + 1984 + 5) / 5
    buckets.record(now + 5, 10)  # exactly a window without data: cleared
    assert buckets.window_average(now + 5) == 10.0


def test_descending_record():
    # TestDescendingRecord
    buckets = TimedBuckets(5.0)
    for i in range(8, -1, -1):
        buckets.record(NOW + i, 5)
    assert buckets.window_average(NOW + 5) == 5.0


def test_timed_buckets_holes():
    # TestTimedFloat64BucketsHoles: a write at +8 s zeroes the buckets of +5, +6, +7
    buckets = TimedBuckets(5.0)
    for i in range(5):
        buckets.record(NOW + i, i + 1)
    assert sum(buckets.buckets) == 15 and buckets.window_average(NOW + 4) == 15 / 5
    buckets.record(NOW + 8, 2.0)
    assert sum(buckets.buckets) == 7.0


def test_timed_buckets_many_reps():
    # TestTimedFloat64BucketsManyReps and ...WithNonMonotonicalOrder: five values per bucket, sum 100
    for order in ([1, 2, 3, 4, 5], [0, 3, 2, 1, 4]):
        buckets = TimedBuckets(60.0)
        for p, offset in enumerate(order):
            for t in range(5):
                buckets.record(NOW + offset, float(p + t))
        assert sum(buckets.buckets) == 100.0


def test_timed_buckets_simple_granularity_5s():
    # TestTimedFloat64BucketsSimple, "granularity = 5s": two writes in one 5 s bucket, one in the next
    start = math.floor(NOW / 5) * 5
    buckets = TimedBuckets(120.0, granularity_s=5.0)
    assert buckets.is_empty(start)
    for offset, value in [(0, 1.0), (3, 11.0), (6, 1.0)]:
        buckets.record(start + offset, value)
    assert sorted(b for b in buckets.buckets if b > 0) == [1.0, 12.0]


def test_weighted_buckets_average():
    # TestTimedFloat64BucketsWeightedAverage
    buckets = WeightedBuckets(5.0)
    m = buckets.coeff
    buckets.record(NOW, 2)
    want = 2 * m
    assert buckets.window_average(NOW) == pytest.approx(want, rel=1e-12)
    want *= 1 - m
    assert buckets.window_average(NOW + 1) == pytest.approx(want, rel=1e-12)  # read ahead, no write
    buckets.record(NOW + 1, 2)
    want += 2 * m
    assert buckets.window_average(NOW + 1) == pytest.approx(want, rel=1e-12)
    for i in range(5):
        buckets.record(NOW + 2 + i, i + 2)
    want = sum((6 - k) * m * (1 - m) ** k for k in range(5))
    assert buckets.window_average(NOW + 6) == pytest.approx(want, rel=1e-12)
    assert buckets.window_average(NOW + 16) == 0.0


# -- target resolution, bounds and scale to zero ---------------------------------------------------------------

def test_resolve_target_defaults_and_annotation():
    # ResolveMetricTarget (pkg/reconciler/autoscaling/resources/target.go): containerConcurrency 0 -> 100 x 0.7
    assert resolve_target(0, None, 0.7) == pytest.approx((70.0, 100.0))
    assert resolve_target(10, None, 0.7) == pytest.approx((7.0, 10.0))
    assert resolve_target(10, 50, 0.7) == pytest.approx((7.0, 10.0))  # annotation capped by concurrency
    assert resolve_target(0, 0.001, 0.7) == pytest.approx((0.01, 0.001))  # TargetMin


def test_apply_bounds():
    # applyBounds (pkg/reconciler/autoscaling/kpa/scaler.go): max 0 means no maximum
    assert apply_bounds(2, 0, 1) == 2 and apply_bounds(0, 5, 9) == 5 and apply_bounds(0, 0, 9) == 9


def test_scale_to_zero_waits_a_stable_window_active_then_the_grace_period():
    policy = ScaleToZero(stable_window_s=60, grace_s=30, active_since=0.0)
    assert policy.decide(10, 0) == 1  # active for less than a stable window: keep one pod
    assert policy.decide(60, 0) is None  # deactivated now: the activator goes into the path
    assert policy.decide(89, 0) is None
    assert policy.decide(90, 0) == 0
    assert policy.decide(100, 3) == 3 and policy.active_since == 100  # activated again
    assert ScaleToZero(60, 30, enabled=False, active_since=0.0).decide(500, 0) == 1


# -- the autoscaler on the platform (scaling: knative) ----------------------------------------------------------

def knative_scenario(duration: float = 300.0, warmup: float = 0.0, knative: dict | None = None,
                     **function: object) -> dict[str, object]:
    base: dict[str, object] = {"workload": {"rate": 1.0}, "service": {"dist": "exp", "mean": 0.1},
                               "runtime": "go", "concurrency": 10, "scaling": "knative",
                               "cold_start": {"sandbox": 0.5, "runtime_start": 0}, "knative": knative or {}}
    base.update(function)
    return {"model": "faas", "duration": duration, "warmup": warmup, "functions": {"f": base}}


def replay(times: list[float]) -> dict[str, object]:
    return {"replay": {"dist": "empirical", "values": times}}


def test_scale_from_zero_buffers_requests_for_exactly_the_cold_start():
    # one request every 200 s: the pod goes after ~90 s idle (stable window, then grace), so every request finds
    # none; the activator's poke starts one at once and the request waits exactly its 0.5 s cold start
    times = [100.0 + 200.0 * k for k in range(10)]
    env, _ = run(knative_scenario(duration=2100, workload=replay(times)))
    counters, hists = env.metrics.counters, env.metrics.histograms
    assert counters["requests.cold"].value == 10 and counters["requests.warm"].value == 0
    wait = hists["knative.activator.wait_s"]
    assert wait.count == 10
    assert wait.min == pytest.approx(0.5, rel=0.01) and wait.max == pytest.approx(0.5, rel=0.01)
    assert hists["coldstart.latency_s"].count == 11  # the initial-scale pod and one per request


@pytest.mark.parametrize(("delay", "until", "instances"), [(0, 88.0, 1), (0, 96.0, 0), (120, 205.0, 1),
                                                          (120, 216.0, 0)])
def test_scale_to_zero_after_the_stable_window_and_the_grace_period(delay: float, until: float, instances: int):
    # requests in the first 2 s; the stable average is 0 a window (60 s) after the last, the revision is then
    # made inactive and the pod goes after the 30 s grace period, at a 2 s tick: between 90 s and 96 s. A
    # scale-down delay of 120 s holds the desired 1 that much longer: between 210 s and 216 s
    knative = {"scale_down_delay": delay}
    env, model = run(knative_scenario(duration=until, workload=replay([0.6, 0.9, 1.5]), knative=knative))
    assert len(model.pools["f"].instances) == instances


def test_steady_load_settles_at_concurrency_over_target():
    # 315 requests/s of 0.1 s: a concurrency of 31.5 against a target of 10 x 0.7 = 7 per pod: ceil(4.5) = 5 pods.
    # The 60 s average of the concurrency has a standard deviation of about sqrt(2 x 31.5 x 0.1 / 60) = 0.32, so
    # 4.5 pods is more than ten deviations from 4 and 5: after the start-up panic the count must be exactly 5.
    env, _ = run(knative_scenario(duration=400, warmup=0.5, workload={"rate": 315.0}))
    gauges = env.metrics.gauges
    assert gauges["knative.pods.desired"].mean() == pytest.approx(5.0)
    assert gauges["knative.pods.ready"].mean() == pytest.approx(5.0)
    assert env.metrics.counters["knative.panic_s"].value == 0


def test_a_load_step_panics_holds_the_pods_then_scales_down_at_the_max_rate():
    # 10/s of 0.1 s, then 300/s from 120 s (a concurrency of 30: ceil(30 / 7) = 5 pods). Checked at every 2 s
    # decision: panic begins within the panic window (6 s) of the step; no pod goes while panicking; panic ends
    # a stable window after the last tick over the threshold; then the count falls by at most half per decision
    # (max scale-down rate 2) and settles at 5.
    step = {"rate": 10.0, "burst": {"rate": 300.0, "on": 1e9, "off": 120.0}}
    config = load_scenario(knative_scenario(duration=300, workload=step))
    env = Environment(seed=1, scenario=config)
    pool = FaasModel(env, config).pools["f"]
    began = ended = None
    previous, last_over = 1, math.nan
    previous_panic_time: float | None = None
    for t in range(2, 300, 2):
        env.run(until=t + 0.001)
        live = len([i for i in pool.instances if i not in pool.draining])
        panic_time = pool.autoscaler.panic_time
        if began is None and panic_time is not None:
            began = t
        if began is not None and ended is None:
            if panic_time is None:
                assert previous_panic_time is not None
                ended, last_over = t, previous_panic_time
            else:
                assert live >= previous  # no scale-down while panicking
        if ended is not None:
            assert live >= previous // 2
        previous, previous_panic_time = live, panic_time
    assert began is not None and 120 < began <= 126
    assert ended is not None and last_over + 60 < ended <= last_over + 60 + 2
    assert previous == 5


@pytest.mark.parametrize("concurrency", [1, 4])
def test_container_concurrency_bounds_requests_per_instance(concurrency: int):
    # 20/s of 0.1 s from one pod: checked every 50 ms, no instance ever serves more than its containerConcurrency
    # (first available up to 3, round robin above); the requests beyond wait in the activator
    config = load_scenario(knative_scenario(concurrency=concurrency, workload={"rate": 20.0}, duration=120))
    env = Environment(seed=1, scenario=config)
    pool = FaasModel(env, config).pools["f"]
    for step in range(1, 2400):
        env.run(until=step * 0.05)
        assert all(instance.busy <= concurrency for instance in pool.instances)
    assert env.metrics.histograms["knative.activator.wait_s"].count > 0


@pytest.mark.parametrize(("knative", "function", "message"), [
    ({"target": 0}, {}, "knative.target"),
    ({"target": -5}, {}, "knative.target"),
    ({"panic_threshold_percentage": 90}, {}, "knative.panic_threshold_percentage"),
    ({"min_scale": 5, "max_scale": 2}, {}, "min_scale: 5 is more than max_scale (2)"),
    ({}, {"concurrency": 0}, "concurrency"),
    ({}, {"provisioned": 2}, "provisioned: 2 with scaling knative"),
    ({"target_utilization": 0}, {}, "knative.target_utilization"),
    ({"scale_down_delay": -1}, {}, "knative.scale_down_delay"),
])
def test_bad_knative_input_names_the_field(knative: dict, function: dict, message: str):
    with pytest.raises(ScenarioError, match=re.escape(message)):
        load_scenario(knative_scenario(knative=knative, **function))


@pytest.mark.parametrize(("tbc", "in_path_share"), [(-1, 1.0), (0, 0.0)])
def test_activator_in_the_path_follows_the_target_burst_capacity(tbc: float, in_path_share: float):
    # excess burst capacity is -1 with an unlimited target burst capacity (always in the path) and 0 with a target
    # of 0 (never, once a pod is ready): the time in the path is the whole run or nothing after the first pod
    env, _ = run(knative_scenario(duration=300, warmup=0.1, knative={"target_burst_capacity": tbc}))
    assert env.metrics.counters["knative.activator.in_path_s"].value == pytest.approx(270 * in_path_share, abs=2)


def test_min_and_max_scale_bound_the_pods():
    # no traffic: min_scale 2 keeps two pods; 315/s wants 5 pods but max_scale 3 holds it at 3
    idle, _ = run(knative_scenario(duration=300, workload={"rate": 1e-6}, knative={"min_scale": 2}))
    assert idle.metrics.gauges["knative.pods.ready"].level == 2
    assert idle.metrics.gauges["instances.count"].max == 2
    busy, _ = run(knative_scenario(duration=200, workload={"rate": 315.0}, knative={"max_scale": 3}))
    assert busy.metrics.gauges["instances.count"].max == 3
    assert busy.metrics.gauges["knative.pods.ready"].level == 3


def test_weighted_aggregation_settles_at_the_same_count():
    # the weighted-exponential average of a steady concurrency is the same 31.5 (weights sum to about 1)
    env, _ = run(knative_scenario(duration=400, warmup=0.5, workload={"rate": 315.0},
                                  knative={"aggregation": "weighted-exponential"}))
    assert env.metrics.gauges["knative.pods.ready"].mean() == pytest.approx(5.0)


def test_initial_scale_starts_pods_that_go_once_initialised_without_traffic():
    # initial_scale 3 with no traffic: three pods start at 0; once ready the revision is initialised, the
    # autoscaler wants 0, the rate limit halves (3 -> 1) and one pod stays until a stable window active, then goes
    # after the grace period
    config = load_scenario(knative_scenario(duration=200, workload={"rate": 1e-6}, knative={"initial_scale": 3}))
    env = Environment(seed=1, scenario=config)
    pool = FaasModel(env, config).pools["f"]
    env.run(until=0.1)
    assert len(pool.instances) == 3
    env.run(until=10)
    assert len(pool.instances) == 1
    env.run(until=120)
    assert len(pool.instances) == 0


# -- scale-down delay: aggregation/max/*_test.go and autoscaler_test.go -------------------------------------------

WINDOW_MAX_TABLE = [
    # (upstream TestWindowMax case, values, indices (None: 0, 1, 2...), expected maxima), window of 5 buckets
    ("single value", [1], None, [1]),
    ("ascending values", [1, 2], None, [1, 2]),
    ("descending values", [2, 1], None, [2, 2]),
    ("up, down, up", [1, 2, 1], None, [1, 2, 2]),
    ("windowing out", [5, 6, 5, 5, 5, 5, 5], None, [5, 6, 6, 6, 6, 6, 5]),
    ("windowing out with gaps", [6, 5, 2, 1], [0, 1, 2, 6], [6, 6, 6, 2]),
    ("windowing out 2", [5, 6, 5, 7, 5, 5, 1], None, [5, 6, 6, 7, 7, 7, 7]),
    ("windowing out 3", [5, 8, 5, 7, 5, 5], None, [5, 8, 8, 8, 8, 8]),
    ("windowing out 4", [5, 8, 5, 7, 5, 5, 1], None, [5, 8, 8, 8, 8, 8, 7]),
    ("windowing out 5", [5, 8, 5, 7, 5, 5, 1, 4, 4, 4], None, [5, 8, 8, 8, 8, 8, 7, 7, 5, 5]),
    ("windowing out 6", [5, 8, 5, 7, 5, 5, 1, 4, 4, 4, 4], None, [5, 8, 8, 8, 8, 8, 7, 7, 5, 5, 4]),
    ("windowing out 7", [5, 8, 5, 7, 5, 5, 1, 4, 4, 4, 4, 9], None, [5, 8, 8, 8, 8, 8, 7, 7, 5, 5, 4, 9]),
    ("windowing out 8", [5, 8, 5, 7, 5, 5, 1, 4, 4, 4, 4, 9, 3, 4, 2, 1, 0], None,
     [5, 8, 8, 8, 8, 8, 7, 7, 5, 5, 4, 9, 9, 9, 9, 9, 4]),
    ("multiple with same index, ascending", [1, 2, 3, 4, 5, 6, 7], [1] * 7, [1, 2, 3, 4, 5, 6, 7]),
    ("multiple with same index, descending", [7, 6, 5, 4, 3, 2, 1], [1] * 7, [7] * 7),
]


@pytest.mark.parametrize("case", WINDOW_MAX_TABLE, ids=[c[0] for c in WINDOW_MAX_TABLE])
def test_window_max(case: tuple) -> None:
    # TestWindowMax (pkg/autoscaler/aggregation/max/window_test.go)
    _, values, indices, expected = case
    window = MaxWindow(5)
    seen = []
    for i, value in enumerate(values):
        window.record(indices[i] if indices else i, value)
        seen.append(window.current())
    assert seen == expected


@pytest.mark.parametrize(("records", "expected"), [
    ([(0.0, 5)], 5),  # single value
    ([(0.0, 6), (0.5, 5)], 6),  # two values in the same second
    ([(0.0, 5), (1.0, 8)], 8),  # two values
    ([(0.0, 5), (6.0, 4)], 4),  # time gap
])
def test_timed_window_max(records: list[tuple[float, int]], expected: int) -> None:
    # TestTimedWindowMax (max/timewindow_test.go): 5 s of 1 s buckets, indexed by whole seconds
    window = MaxWindow(5)
    for offset, value in records:
        window.record(math.floor(NOW + offset), value)
    assert window.current() == expected


def delay_spec(**changes: object) -> DeciderSpec:
    """Upstream's spec of the scale-down delay tests: target 10, rates 10, panic threshold 100 (never), 5 min."""
    fields: dict[str, object] = {"target_value": 10, "total_value": 0, "target_burst_capacity": 0,
                                 "panic_threshold": 100, "max_scale_up_rate": 10, "max_scale_down_rate": 10,
                                 "stable_window_s": STABLE_WINDOW, "scale_down_delay_s": 300.0}
    fields.update(changes)
    return DeciderSpec(**fields)  # type: ignore[arg-type]


EPOCH = 1_700_000_000.0  # upstream starts these at time.Time{}; any even second will do (2 s buckets)


def test_scale_down_delay():
    # TestAutoscalerScaleDownDelay, "simple" then "gradual" on the same autoscaler; no ready pods
    scaler = Autoscaler(delay_spec(), ready=0, now=EPOCH)
    steps = [(2, 40, 4), (300, 0, 4), (302, 0, 0),  # simple
             (540, 40, 4), (600, 30, 4), (660, 0, 4), (840, 0, 3), (900, 0, 0)]  # gradual (minutes 9 .. 15)
    for offset, concurrency, desired in steps:
        check(scaler, EPOCH + offset, 0, concurrency, concurrency, desired, 0)


def test_scale_down_delay_not_reachable():
    # TestAutoscalerScaleDownDelayNotReachable: once unreachable, the delay no longer holds the count
    scaler = Autoscaler(delay_spec(), ready=0, now=EPOCH)
    check(scaler, EPOCH + 2, 0, 40, 40, 4, 0)
    check(scaler, EPOCH + 60, 0, 0, 0, 4, 0)
    scaler.spec = delay_spec(reachable=False)
    check(scaler, EPOCH + 2, 0, 0, 0, 0, 0)


def test_scale_down_delay_zero():
    # TestAutoscalerScaleDownDelayZero: no delay window, so a decision half a second later scales down at once
    scaler = Autoscaler(delay_spec(scale_down_delay_s=0.0), ready=0, now=EPOCH)
    check(scaler, EPOCH, 0, 40, 40, 4, 0)
    check(scaler, EPOCH + 0.5, 0, 20, 20, 2, 0)
