"""The HPA's control loop, metrics-server and the pod start-up pipeline (models/k8s/autoscaler.py,
metricsserver.py, podstart.py), and their wiring into the arch kind (models/arch/autoscaling.py).

The loop's stories: a known CPU load -> a known replica sequence, worked out by hand from upstream's rules
(horizontal.go's reconcileAutoscaler, the behaviors' defaults; the arithmetic is in each test's comment)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.core import Environment
from sim.dists import Constant
from sim.run import run_replications
from sim.scenario import ScenarioError, load_scenario
from models.arch.autoscaling import capacity_replicas
from models.arch.balancers import LeastRequest, RingHash, RoundRobin
from models.k8s import hpa
from models.k8s.autoscaler import (ControllerConfig, HorizontalPodAutoscaler, HPAConfig, StoredEvent,
                                   store_scale_event)
from models.k8s.metricsserver import MetricsServer
from models.k8s.podstart import STAGES, PodLife, PodStartConfig, PodStartup, ProbeConfig, first_ready

LONG_AGO = -86_400.0


class Deployment:
    """A scale target whose pods are Ready at once, long ago (no start-up), each 1 CPU requested."""

    def __init__(self, replicas: int) -> None:
        self.count = replicas
        self.history: list[tuple[float, int]] = []
        self.env: Environment | None = None

    @property
    def replicas(self) -> int:
        return self.count

    def pods(self) -> list[hpa.Pod]:
        return [hpa.Pod(f"p{i}", 1000, ready_since=LONG_AGO, start_time=LONG_AGO) for i in range(self.count)]

    def scale(self, replicas: int) -> None:
        assert self.env is not None
        self.count = replicas
        self.history.append((self.env.now, replicas))


class Load:
    """Usage samples: a total CPU load (cores, a function of time) spread evenly over the target's pods."""

    def __init__(self, env: Environment, target: Deployment, cores) -> None:
        self.env, self.target, self.cores = env, target, cores

    def latest(self) -> dict[str, hpa.PodMetric]:
        share = round(1000 * self.cores(self.env.now) / self.target.count)
        return {pod.name: hpa.PodMetric(share, self.env.now, 15.0) for pod in self.target.pods()}


def controlled(env: Environment, replicas: int, cores, **hpa_fields) -> Deployment:
    target = Deployment(replicas)
    target.env = env
    config = HPAConfig(**{"min_replicas": 1, "max_replicas": 10, "metrics": [{"cpu_utilization": 50}],
                          **hpa_fields})
    HorizontalPodAutoscaler(env, "web", config, ControllerConfig(), target, Load(env, target, cores), 0.0)
    return target


def test_scale_up_with_default_behavior_then_down_after_the_stabilization_window(env: Environment) -> None:
    # 4 cores on 2 pods at a 50 % target: 200 % -> recommendation 8. t=0: the scale-up policies allow
    # max(2 + 4 pods, 2 x 100 %) = 6. t=15: 4/6 = 67 % -> ceil(1.33 x 6) = 8; the 6 added at t=0 are not
    # strictly within the last 15 s, so the limit starts from 6 again: 8. t=30, 45: 50 %, no change.
    # From t=60 the load is 1 core: 12.5 % -> 2, held at 8 by the 300 s scale-down window while a
    # recommendation of 8 lies strictly within it (the last, at 45 s, until 345 s); 100 %/15 s allows 2.
    target = controlled(env, 2, lambda t: 4.0 if t < 60 else 1.0, behavior={})
    env.run(until=400)
    assert target.history == [(0.0, 6), (15.0, 8), (345.0, 2)]
    assert env.metrics.counter("hpa.web.scale_ups").value == 2
    assert env.metrics.counter("hpa.web.scale_downs").value == 1


def test_without_behavior_the_older_rules_double_at_most(env: Environment) -> None:
    # behavior null: at most max(2 x current, 4) per sync. t=0: 2 -> 4; t=15: 4 cores on 4 pods, 100 % ->
    # 8 (within max(8, 4)); t=30: 50 %, stays. The load gone at t=60 (0.5 cores: 6.25 % -> 1): the
    # downscale window keeps the highest recommendation of the last 300 s, its edge included (upstream's
    # stabilizeRecommendation drops only samples Before the cutoff): the 8 of t=45 still holds at 345 s.
    target = controlled(env, 2, lambda t: 4.0 if t < 60 else 0.5)
    env.run(until=400)
    assert target.history == [(0.0, 4), (15.0, 8), (360.0, 1)]


def test_sync_period_and_scale_up_window_set_when_it_acts(env: Environment) -> None:
    # A spike of one sync (t=15 only) against a 30 s scale-up window: the lowest recommendation of the
    # window (1 at t=0) holds the count, so the spike never scales; a load lasting past the window does.
    target = controlled(env, 1, lambda t: 2.0 if t == 15 or t >= 60 else 0.5,
                        behavior={"scale_up": {"stabilization_window_seconds": 30}})
    env.run(until=100)
    # t=60: window (30, 60] holds 45 (rec 1) -> 1; t=75: window (45, 75] holds 60 and 75 (rec 4) -> 4.
    assert target.history == [(75.0, 4)]


@settings(max_examples=60, deadline=None)
@given(loads=st.lists(st.floats(0.0, 20.0), min_size=1, max_size=40), start=st.integers(1, 10))
def test_the_loop_keeps_the_bounds_the_sync_instants_and_the_scale_up_policies(loads, start) -> None:
    # A load (cores) per sync period: counts stay in 1..10, change only at syncs, and a scale-up adds at most
    # max(4 pods, 100 %) of the count it starts from (the default policies; one sync per 15 s period).
    env = Environment(seed=1, replication=0)
    target = controlled(env, start, lambda t: loads[min(int(t // 15), len(loads) - 1)], behavior={})
    env.run(until=15 * len(loads))
    counts = [start] + [count for _, count in target.history]
    assert all(1 <= count <= 10 for count in counts)
    assert all(at % 15 == 0 for at, _ in target.history)
    assert all(new <= max(old + 4, 2 * old) for old, new in zip(counts, counts[1:]))


def test_no_metrics_no_scaling(env: Environment) -> None:
    target = Deployment(3)
    target.env = env

    class Nothing:
        def latest(self) -> dict[str, hpa.PodMetric]:
            return {}

    HorizontalPodAutoscaler(env, "web", HPAConfig(max_replicas=10), ControllerConfig(), target, Nothing(), 0.0)
    env.run(until=60)
    assert target.history == []
    assert env.metrics.counter("hpa.web.syncs_skipped").value == 4  # t = 0, 15, 30, 45


def test_count_outside_the_bounds_goes_to_the_bound(env: Environment) -> None:
    target = controlled(env, 12, lambda t: 6.0)  # 6 cores on 12 pods: 50 %, yet 12 > max 10
    env.run(until=1)
    assert target.history == [(0.0, 10)]


# Upstream horizontal_test.go, TestStoreScaleEvents (the cases with a behavior; without one the controller
# stores nothing): a scale-up of 5 stored at now=0 among the events before it (change, seconds before now),
# with the policies' longest period; the events kept after it (change, outdated), and the change of the
# events before it within the last 60 s (upstream's expectedReplicasChange).
STORE_CASES = [
    ("empty entries with two-policy-behavior", 60, [], [(5, False)], 0),
    ("one outdated entry to be replaced with behavior", 60, [(7, 61)], [(5, False)], 0),
    ("one actual entry to be not touched with behavior", 60, [(7, 58)], [(7, False), (5, False)], 7),
    ("two entries, one of them to be replaced", 60, [(7, 61), (6, 59)], [(5, False), (6, False)], 6),
    ("replace one entry, use policies with different periods", 60, [(8, 29), (6, 59), (7, 61), (9, 61)],
     [(8, False), (6, False), (7, True), (5, False)], 14),
    ("two entries, both actual", 120, [(7, 58), (6, 59)], [(7, False), (6, False), (5, False)], 13),
]


@pytest.mark.parametrize(("name", "longest", "before", "after", "change"), STORE_CASES, ids=[c[0] for c in STORE_CASES])
def test_scale_events_are_stored_as_upstream_stores_them(name, longest, before, after, change) -> None:
    events = [StoredEvent(replicas, -ago) for replicas, ago in before]
    assert hpa.replicas_change_per_period(60, [hpa.ScaleEvent(e.change, e.timestamp) for e in events], 0.0) == change
    store_scale_event(events, 5, 0.0, longest)
    assert [(event.change, event.outdated) for event in events] == after


# ---- metrics-server -----------------------------------------------------------------------------------


def test_metrics_server_serves_the_rate_between_the_last_two_scrapes(env: Environment) -> None:
    # Scrapes at 5, 20, 35, 50 (15 s resolution). a: 0.3 CPU, running long before. b: started at 20, scraped
    # at once (0 s old): no sample until its second scrape. c: started at 8, 12 s old at the scrape at 20,
    # within one resolution and at least 10 s: a sample from its start (upstream's fresh container point).
    # d: started at 13, 7 s old at 20: too young for a point at its start, so that scrape is its first point
    # and its first sample comes at 35.
    def read():
        now = env.now
        pods = [("a", 0.3 * now, -100.0)]
        pods += [(name, rate * (now - start), start) for name, rate, start in
                 (("b", 0.9, 20.0), ("c", 0.5, 8.0), ("d", 0.2, 13.0)) if now >= start]
        return pods

    server = MetricsServer(env, read, 15.0, phase=5.0)
    env.run(until=21)
    assert server.latest() == {"a": hpa.PodMetric(300, 20.0, 15.0), "c": hpa.PodMetric(500, 20.0, 12.0)}
    env.run(until=36)
    assert server.latest() == {"a": hpa.PodMetric(300, 35.0, 15.0), "b": hpa.PodMetric(900, 35.0, 15.0),
                               "c": hpa.PodMetric(500, 35.0, 15.0), "d": hpa.PodMetric(200, 35.0, 15.0)}


# ---- pod start-up -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("admitted", "running", "app_ready", "probe", "ready"),
    [
        (0.0, 3.0, 3.0, {}, 3.0),  # the run at the container's start succeeds
        (0.0, 3.1, 4.1, {}, 10.0),  # the app answers 1 s later: the next tick of the admission's ticker
        (0.0, 3.1, 4.1, {"success_threshold": 3}, 30.0),  # three ticks in a row
        (0.0, 3.0, 3.0, {"initial_delay_seconds": 5}, 10.0),  # the run at 3 s is skipped, so is none after 8 s
        (0.0, 10.0, 10.0, {}, 10.0),  # a tick at the container's start is that run
        (0.5, 2.0, 2.5, {"period_seconds": 1}, 2.5),  # ticks at 1.5, 2.5, ...
    ],
)
def test_readiness_follows_the_probe_worker(admitted, running, app_ready, probe, ready) -> None:
    assert first_ready(admitted, running, app_ready, ProbeConfig(**probe)) == pytest.approx(ready)


def test_pipeline_stages_sum_to_the_total_and_a_node_pulls_once(env: Environment) -> None:
    config = PodStartConfig(scheduling=Constant(0.1), sandbox=Constant(1.0), container_start=Constant(0.05),
                            image={"pre_pulled": False, "size": 2e8, "pull_bandwidth": 1e8},
                            readiness={"app_ready": Constant(1.0)})
    startup = PodStartup(env, config, "web", "podstart.web")
    lives = [PodLife("a", "n0", 0.0), PodLife("b", "n0", 0.0), PodLife("c", "n1", 0.0)]
    for life in lives:
        env.process(startup.start(life))
    env.run(until=1)
    late = PodLife("d", "n0", env.now)
    env.process(startup.start(late))
    env.run()
    # a, b, c admitted at 0.1; n0 and n1 pull 2 s (b waits for a's pull), sandbox 1 s, start 0.05 s: running
    # at 3.15, the app answers at 4.15, the ticker (from 0.1) ticks at 10.1. d on n0 at 1.0: admitted 1.1,
    # waits for n0's pull (until 2.1), running 3.15 again, ready at its tick 11.1.
    assert [life.ready for life in lives + [late]] == pytest.approx([10.1, 10.1, 10.1, 11.1])
    assert startup.stage_s["image_pull"].max == pytest.approx(2.0)
    assert startup.stage_s["image_pull"].min == pytest.approx(1.0)
    stage_sum = sum(startup.stage_s[stage].mean * startup.stage_s[stage].count for stage in STAGES)
    total = startup.total_s.mean * startup.total_s.count
    assert stage_sum == pytest.approx(total)


def test_container_start_defaults_to_the_calibrated_process_start() -> None:
    from sim.params import param_dist

    assert PodStartConfig().container_start_time() == param_dist("go.process.start_s")
    assert PodStartConfig(process="node").container_start_time() == param_dist("node.process.start_s")


# ---- balancers over a changing host set ---------------------------------------------------------------------


def test_balancers_pick_only_their_hosts() -> None:
    robin = RoundRobin(5)
    robin.set_hosts([1, 3])
    assert [robin.pick(0) for _ in range(4)] == [1, 3, 1, 3]
    least = LeastRequest(5, np.random.default_rng(1))
    least.set_hosts([0, 4])
    assert {least.pick(0) for _ in range(50)} == {0, 4}
    ring = RingHash([f"web-{i}" for i in range(4)])
    before = {key: ring.pick(key) for key in range(500)}
    ring.set_hosts([0, 1, 2])
    after = {key: ring.pick(key) for key in range(500)}
    assert set(after.values()) == {0, 1, 2}
    assert all(after[key] == owner for key, owner in before.items() if owner != 3)  # only web-3's keys move


# ---- the arch wiring and the scenario ---------------------------------------------------------------------------


def test_capacity_is_the_count_the_hpa_settles_on() -> None:
    # 400 requests/s x 10 ms = 4 CPUs; at 60 % of 1 CPU each: ceil(6.67) = 7.
    assert capacity_replicas(load_scenario("hpa-reaction-time"), "api") == 7


def test_hpa_reaction_time_scales_to_capacity_and_new_pods_serve_only_once_ready() -> None:
    scenario = load_scenario("hpa-reaction-time", {"requests": 40_000, "replications": 1})
    outcome = run_replications(scenario)
    took = outcome.get("hpa.api.time_to_capacity_s", "mean").mean
    # at least a scrape window, a sync and a pod's start-up (0.1 + 1 s sandbox + 1 s app): more than 2 s
    assert 2.0 < took < 200.0
    assert outcome.get("hpa.api.replicas", "max").mean <= 12
    assert outcome.get("hpa.api.scale_ups", "count").mean >= 1
    assert outcome.get("podstart.api.total_s", "count").mean >= 5  # 2 -> 7 at least


FAST = {"kubernetes.sync_period": 1, "kubernetes.metric_resolution": 1, "kubernetes.downscale_stabilization": 0,
        "services.api.autoscaling.startup.image.pre_pulled": True,
        "services.api.autoscaling.startup.readiness.period_seconds": 1,
        "services.api.autoscaling.hpa.behavior": {"scale_up": {"policies": [
            {"type": "Percent", "value": 900, "period_seconds": 1}]}}}
"""The settings docs/reference/scenarios.md gives for a fast reaction (hpa-reaction-time)."""


def test_fast_settings_react_sooner_and_flap() -> None:
    # Documented: 85 s +- 23 s and 3 scale events with the defaults, 10.4 s +- 3.0 s and 38 with these.
    def outcome(overrides: dict):
        scenario = load_scenario("hpa-reaction-time", {"requests": 40_000, "replications": 1, **overrides})
        return run_replications(scenario)

    default, fast = outcome({}), outcome(FAST)

    def events(result) -> float:
        return result.get("hpa.api.scale_ups", "count").mean + result.get("hpa.api.scale_downs", "count").mean

    took = fast.get("hpa.api.time_to_capacity_s", "mean").mean
    assert took < default.get("hpa.api.time_to_capacity_s", "mean").mean / 3
    assert events(fast) > 3 * events(default)


def arrivals_at_pods(overrides: dict) -> tuple:
    """Run hpa-reaction-time with ``overrides``, recording when requests reach each pod: the model, and
    {pod: [arrival times]}."""
    from models.arch.model import ArchModel

    scenario = load_scenario("hpa-reaction-time", overrides)
    env = Environment(seed=1, replication=0, scenario=scenario)
    model = ArchModel(env, scenario)
    seen: dict[str, list[float]] = {}
    handle = model._handle

    def recording(pod, key):
        seen.setdefault(pod.name, []).append(env.now)
        return (yield from handle(pod, key))

    model._handle = recording  # type: ignore[method-assign]
    env.run(until=model.done)
    return model, seen


def test_a_new_pod_serves_only_once_ready_and_a_slot_never_started_serves_nothing() -> None:
    model, seen = arrivals_at_pods({"requests": 20_000})
    # No scale-down within the 300 s window: pods took slots 0, 1, 2... in turn, one name each.
    scaled = model.scaled["api"]
    started = scaled._made
    assert 2 < started < 12
    assert sorted(seen) == sorted(f"api-{i}" for i in range(started))
    for index in range(2, started):
        life = scaled.lives[index]
        assert life is not None and life.ready is not None
        assert min(seen[f"api-{index}"]) >= life.ready


def test_a_deleted_pod_gets_no_new_request() -> None:
    # 7 pods at 400/s, then 50/s from 30 s (0.5 CPU: min_replicas 2), no downscale window: pods are deleted.
    model, seen = arrivals_at_pods({"requests": 14_000, "services.api.replicas": 7, "workload.rate": 400,
                                    "workload.step": {"at": 30, "rate": 50}, "kubernetes.downscale_stabilization": 0})
    scaled = model.scaled["api"]
    gone = [index for index, life in enumerate(scaled.lives) if life is None and scaled._freed[index] > 0]
    assert gone
    hop = 2 * 0.25e-3  # a request picked just before the deletion still crosses the network
    for index in gone:
        assert max(seen[f"api-{index}"]) <= scaled._freed[index] + hop


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"services.api.autoscaling.hpa.min_replicas": 20},
         "services.api.autoscaling.hpa: min_replicas (20) must not be above max_replicas (12)"),
        ({"services.api.autoscaling.hpa.metrics": [{"cpu_utilization": "0%"}]},
         "services.api.autoscaling.hpa.metrics.0.cpu_utilization: Input should be greater than 0 (got '0')"),
        ({"kubernetes.sync_period": "-1s"},
         "kubernetes.sync_period: a duration must be a finite number >= 0, got '-1s'"),
        ({"kubernetes.metric_resolution": 0}, "kubernetes.metric_resolution: Input should be greater than 0 (got 0.0)"),
        ({"services.api.autoscaling.startup.readiness.period_seconds": -10},
         "services.api.autoscaling.startup.readiness.period_seconds: Input should be greater than or equal to 1 "
         "(got -10)"),
        ({"services.api.autoscaling.hpa.behavior": {"scale_up": {"stabilization_window_seconds": -5}}},
         "services.api.autoscaling.hpa.behavior.scale_up.stabilization_window_seconds: Input should be greater "
         "than or equal to 0 (got -5)"),
        ({"services.api.cpu_request": None}, "services.api: autoscaling: a CPU utilization target needs the pods' "
         "cpu_request"),
        ({"services.api.replicas": 13}, "services.api: replicas: 13 is above autoscaling.hpa.max_replicas (12)"),
        ({"services.api.cpu_request": "lotsm"}, "services.api.cpu_request: expected cores (0.5) or millicores"),
        ({"workload.burst": {"rate": 10, "on": 1, "off": 1}}, "workload: step: a load step changes a plain Poisson"),
    ],
)
def test_bad_autoscaling_input_names_the_field_and_value(override, message) -> None:
    with pytest.raises(ScenarioError, match=re.escape(message)):
        load_scenario("hpa-reaction-time", override)
