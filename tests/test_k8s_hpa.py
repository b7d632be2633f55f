"""The HPA algorithm (models/k8s/hpa.py) held to the upstream test tables.

Each case's inputs and expected outputs are those of a test in ``kubernetes/kubernetes``
``pkg/controller/podautoscaler/`` (``replica_calculator_test.go``, ``horizontal_test.go``),
named beside it; the upstream harness's conventions are reproduced by ``upstream_pods``:
two containers per pod, each with the listed request and usage; the Go zero time as 0;
a "hot" pod started now, a "cool" one 3 min ago; metric samples at the zero time with a
1-minute window; the testing tolerance 0.1, CPU initialization period 2 min and
initial-readiness delay 10 s (``defaultTesting*``).
"""

from __future__ import annotations

import pytest

from models.k8s.hpa import (
    CalculatorConfig,
    HPAError,
    HPASpec,
    Pod,
    PodMetric,
    ScaleEvent,
    ScalingPolicy,
    ScalingRules,
    TimedRecommendation,
    apply_rate_limits,
    external_metric_replicas,
    group_pods,
    legacy_bounds,
    legacy_stabilize,
    normalize_with_behaviors,
    object_metric_replicas,
    per_pod_average_replicas,
    pods_metric_replicas,
    resource_replicas,
    scale_down_limit,
    scale_up_limit,
    stabilize,
)

NOW = 1_000_000.0
HOT = NOW  # hotCPUCreationTime
COOL = NOW - 180.0  # coolCPUCreationTime
CONTAINERS = 2  # numContainersPerPod
TESTING = CalculatorConfig(tolerance=0.1, cpu_initialization_period=120.0, initial_readiness_delay=10.0)
T, F = True, False


def upstream_pods(current, requests, readiness=None, start=None, phase=None, deleted=None):
    count = max(current, len(phase or ()))
    pods = []
    for i in range(count):
        pods.append(
            Pod(
                name=f"test-pod-{i}",
                request=CONTAINERS * requests[i] if i < len(requests) else None,
                phase=phase[i] if phase else "Running",
                ready=readiness[i] if readiness and i < len(readiness) else True,
                ready_since=0.0,
                start_time=start[i] if start else 0.0,
                deleted=deleted[i] if deleted else False,
            )
        )
    return pods


def upstream_metrics(levels, names=None, per_container=CONTAINERS):
    return {
        (names[i] if names and i < len(names) else f"test-pod-{i}"): PodMetric(per_container * level, 0.0, 60.0)
        for i, level in enumerate(levels)
    }


# (upstream test, current, requests (milli-CPU), levels (milli-CPU), target %, expected replicas,
#  expected utilization %, expected raw value, pod options)
RESOURCE_CASES = [
    ("TestReplicaCalcScaleUp", 3, [1000] * 3, [300, 500, 700], 30, 5, 50, CONTAINERS * 500, {}),
    ("TestReplicaCalcScaleUpUnreadyLessScale", 3, [1000] * 3, [300, 500, 700], 30, 4, 60, CONTAINERS * 600,
     {"readiness": [F, T, T]}),
    ("TestReplicaCalcScaleUpHotCpuLessScale", 3, [1000] * 3, [300, 500, 700], 30, 4, 60, CONTAINERS * 600,
     {"start": [HOT, COOL, COOL]}),
    ("TestReplicaCalcScaleUpUnreadyNoScale", 3, [1000] * 3, [400, 500, 700], 30, 3, 40, CONTAINERS * 400,
     {"readiness": [T, F, F]}),
    ("TestReplicaCalcScaleHotCpuNoScale", 3, [1000] * 3, [400, 500, 700], 30, 3, 40, CONTAINERS * 400,
     {"readiness": [T, F, F], "start": [COOL, HOT, HOT]}),
    ("TestReplicaCalcScaleUpIgnoresFailedPods", 2, [1000] * 4, [500, 700], 30, 4, 60, CONTAINERS * 600,
     {"readiness": [T, T, F, F], "phase": ["Running", "Running", "Failed", "Failed"]}),
    ("TestReplicaCalcScaleUpIgnoresDeletionPods", 2, [1000] * 4, [500, 700], 30, 4, 60, CONTAINERS * 600,
     {"readiness": [T, T, F, F], "phase": ["Running"] * 4, "deleted": [F, F, T, T]}),
    ("TestReplicaCalcScaleDown", 5, [1000] * 5, [100, 300, 500, 250, 250], 50, 3, 28, CONTAINERS * 280, {}),
    ("TestReplicaCalcScaleDownIncludeUnreadyPods", 5, [1000] * 5, [100, 300, 500, 250, 250], 50, 2, 30,
     CONTAINERS * 300, {"readiness": [T, T, T, F, F]}),
    ("TestReplicaCalcScaleDownExcludeUnscheduledPods", 5, [1000] * 5, [100], 50, 1, 10, CONTAINERS * 100,
     {"readiness": [T, F, F, F, F], "phase": ["Running"] + ["Pending"] * 4}),
    ("TestReplicaCalcScaleDownIgnoreHotCpuPods", 5, [1000] * 5, [100, 300, 500, 250, 250], 50, 2, 30,
     CONTAINERS * 300, {"start": [COOL, COOL, COOL, HOT, HOT]}),
    ("TestReplicaCalcScaleDownIgnoresFailedPods", 5, [1000] * 7, [100, 300, 500, 250, 250], 50, 3, 28,
     CONTAINERS * 280, {"readiness": [T] * 5 + [F, F], "phase": ["Running"] * 5 + ["Failed"] * 2}),
    ("TestReplicaCalcScaleDownIgnoresDeletionPods", 5, [1000] * 7, [100, 300, 500, 250, 250], 50, 3, 28,
     CONTAINERS * 280, {"readiness": [T] * 5 + [F, F], "phase": ["Running"] * 7, "deleted": [F] * 5 + [T, T]}),
    ("TestReplicaCalcTolerance", 3, [900, 1000, 1100], [1010, 1030, 1020], 100, 3, 102, CONTAINERS * 1020, {}),
    ("TestReplicaCalcSuperfluousMetrics", 4, [1000] * 4, [4000, 9500, 3000, 7000, 3200, 2000], 100, 24, 587,
     CONTAINERS * 5875, {}),
    ("TestReplicaCalcMissingMetrics", 4, [1000] * 4, [400, 95], 100, 3, 24, 495, {}),
    ("TestReplicaCalcMissingMetricsNoChangeEq", 2, [1000] * 2, [1000], 100, 2, 100, CONTAINERS * 1000, {}),
    ("TestReplicaCalcMissingMetricsNoChangeGt", 2, [1000] * 2, [1900], 100, 2, 190, CONTAINERS * 1900, {}),
    ("TestReplicaCalcMissingMetricsNoChangeLt", 2, [1000] * 2, [600], 100, 2, 60, CONTAINERS * 600, {}),
    ("TestReplicaCalcMissingMetricsUnreadyChange", 3, [1000] * 3, [100, 450], 50, 3, 45, CONTAINERS * 450,
     {"readiness": [F, T, T]}),
    ("TestReplicaCalcMissingMetricsHotCpuNoChange", 3, [1000] * 3, [100, 450], 50, 3, 45, CONTAINERS * 450,
     {"start": [HOT, COOL, COOL]}),
    ("TestReplicaCalcMissingMetricsUnreadyScaleUp", 3, [1000] * 3, [100, 2000], 50, 4, 200, CONTAINERS * 2000,
     {"readiness": [F, T, T]}),
    ("TestReplicaCalcMissingMetricsHotCpuScaleUp", 3, [1000] * 3, [100, 2000], 50, 4, 200, CONTAINERS * 2000,
     {"readiness": [F, T, T], "start": [HOT, COOL, COOL]}),
    ("TestReplicaCalcMissingMetricsUnreadyScaleDown", 4, [1000] * 4, [100, 100, 100], 50, 3, 10, CONTAINERS * 100,
     {"readiness": [F, T, T, T]}),
    ("TestReplicaCalcDuringRollingUpdateWithMaxSurge", 2, [1000] * 3, [100, 100], 50, 2, 10, CONTAINERS * 100,
     {"phase": ["Running"] * 3}),
    # TestReplicaCalcComputedToleranceAlgImplementation: its computed target int32(100 * (1/(2*0.9) + .01)) = 56
    # expects ceil(10 * 1500 / (3000 * 0.5656)) = 9; the second half, target 55, expects no change
    ("TestReplicaCalcComputedToleranceAlgImplementation", 10, [400, 200, 310, 290, 302, 298, 301, 299, 300, 300],
     [150] * 10, 56, 9, 50, CONTAINERS * 150, {}),
    ("TestReplicaCalcComputedToleranceAlgImplementation (no scale)", 10,
     [400, 200, 310, 290, 302, 298, 301, 299, 300, 300], [150] * 10, 55, 10, 50, CONTAINERS * 150, {}),
]


@pytest.mark.parametrize(
    ("upstream", "current", "requests", "levels", "target", "replicas", "utilization", "raw", "options"),
    RESOURCE_CASES,
    ids=[c[0] for c in RESOURCE_CASES],
)
def test_resource_replicas_match_upstream(upstream, current, requests, levels, target, replicas, utilization, raw,
                                          options):
    pods = upstream_pods(current, requests, **options)
    out = resource_replicas(current, target, pods, upstream_metrics(levels), NOW, timestamp=0.0, config=TESTING)
    assert (out.replicas, out.utilization, out.raw_value, out.timestamp) == (replicas, utilization, raw, 0.0)


# (upstream test, current, requests, levels, metric pod names, expected error)
RESOURCE_ERROR_CASES = [
    ("TestReplicaCalcDisjointResourcesMetrics", 1, [1000], [100], ["an-older-pod-name"],
     "no metrics returned matched known pods"),
    ("TestReplicaCalcEmptyMetrics", 4, [1000] * 3, [], None, "no metrics returned from resource metrics API"),
    ("TestReplicaCalcEmptyCPURequest", 1, [], [200], None, "missing request for"),
]


@pytest.mark.parametrize(("upstream", "current", "requests", "levels", "names", "error"), RESOURCE_ERROR_CASES,
                         ids=[c[0] for c in RESOURCE_ERROR_CASES])
def test_resource_errors_match_upstream(upstream, current, requests, levels, names, error):
    pods = upstream_pods(current, requests)
    with pytest.raises(HPAError, match=error):
        resource_replicas(current, 100, pods, upstream_metrics(levels, names), NOW, config=TESTING)


# Per-pod custom metrics (podMetric): (upstream test, current, levels, target, replicas, utilization, readiness, start)
PODS_METRIC_CASES = [
    ("TestReplicaCalcScaleUpCM", 3, [20000, 10000, 30000], 15000, 4, 20000, None, None),
    ("TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale", 3, [50000, 10000, 30000], 15000, 6, 30000,
     [T, T, F], [COOL, COOL, HOT]),
    ("TestReplicaCalcScaleUpCMUnreadyHotCpuScaleWouldScaleDown", 3, [50000, 15000, 30000], 15000, 7, 31666,
     [F, T, F], [HOT, COOL, HOT]),
    ("TestReplicaCalcScaleUpCMExternal", 1, [8600], 4400, 2, 8600, None, None),
    ("TestReplicaCalcScaleUpCMExternalNoLabels", 1, [8600], 4400, 2, 8600, None, None),
    ("TestReplicaCalcScaleDownCM", 5, [12000] * 5, 20000, 3, 12000, None, None),
    ("TestReplicaCalcToleranceCM", 3, [20000, 21000, 21000], 20000, 3, 20666, None, None),
]


@pytest.mark.parametrize(("upstream", "current", "levels", "target", "replicas", "utilization", "readiness", "start"),
                         PODS_METRIC_CASES, ids=[c[0] for c in PODS_METRIC_CASES])
def test_pods_metric_replicas_match_upstream(upstream, current, levels, target, replicas, utilization, readiness,
                                             start):
    pods = upstream_pods(current, [], readiness=readiness, start=start)
    out = pods_metric_replicas(current, target, pods, upstream_metrics(levels, per_container=1), NOW, config=TESTING)
    assert (out.replicas, out.utilization) == (replicas, utilization)


# Object and external metrics: (upstream test, kind, current, value(s), target, replicas, utilization, readiness)
OBJECT_CASES = [
    ("TestReplicaCalcScaleUpCMObject", "object", 3, [20000], 15000, 4, 20000, None),
    ("TestReplicaCalcScaleUpCMObjectIgnoresUnreadyPods", "object", 3, [50000], 10000, 5, 50000, [F, T, F]),
    ("TestReplicaCalcScaleDownCMObject", "object", 5, [12000], 20000, 3, 12000, None),
    ("TestReplicaCalcToleranceCMObject", "object", 3, [20666], 20000, 3, 20666, None),
    ("TestReplicaCalcScaleUpCMExternalIgnoresUnreadyPods", "external", 3, [8600], 4400, 2, 8600, [F, T, F]),
    ("TestReplicaCalcScaleDownCMExternal", "external", 5, [8600], 14334, 3, 8600, None),
    ("TestReplicaCalcToleranceCMExternal", "external", 3, [8600], 8888, 3, 8600, None),
    ("TestReplicaCalcScaleUpCMPerPodObject", "per-pod", 3, [20000], 5000, 4, 6667, None),
    ("TestReplicaCalcScaleDownPerPodCMObject", "per-pod", 5, [6000], 2000, 3, 1200, None),
    ("TestReplicaCalcTolerancePerPodCMObject", "per-pod", 4, [20166], 5000, 4, 5042, None),
    ("TestReplicaCalcScaleUpPerPodCMExternal", "per-pod", 3, [8600], 2150, 4, 2867, None),
    ("TestReplicaCalcScaleDownPerPodCMExternal", "per-pod", 5, [8600], 2867, 3, 1720, None),
    ("TestReplicaCalcTolerancePerPodCMExternal", "per-pod", 3, [8600], 2900, 3, 2867, None),
]


@pytest.mark.parametrize(("upstream", "kind", "current", "values", "target", "replicas", "utilization", "readiness"),
                         OBJECT_CASES, ids=[c[0] for c in OBJECT_CASES])
def test_object_and_external_replicas_match_upstream(upstream, kind, current, values, target, replicas, utilization,
                                                     readiness):
    pods = upstream_pods(current, [], readiness=readiness)
    if kind == "object":
        out = object_metric_replicas(current, target, values[0], pods, TESTING)
    elif kind == "external":
        out = external_metric_replicas(current, target, values, pods, TESTING)
    else:
        out = per_pod_average_replicas(current, target, sum(values), TESTING)
    assert (out.replicas, out.utilization) == (replicas, utilization)


# replica_calculator_test.go: TestGroupPods; times relative to now; (name, pod, metric, cpu, ready, ignored, missing)
GROUP_CASES = [
    ("count in a ready pod - memory", Pod("bentham", phase="Succeeded", ready=None, start_time=None),
     PodMetric(1, NOW, 60), False, 1, set(), set()),
    ("ignore a pod without ready condition - CPU", Pod("lucretius", phase="Succeeded", ready=None, start_time=NOW),
     PodMetric(1), True, 0, {"lucretius"}, set()),
    ("count in a ready pod with fresh metrics during initialization period - CPU",
     Pod("bentham", phase="Succeeded", ready=True, ready_since=NOW - 30, start_time=NOW - 60),
     PodMetric(1, NOW, 30), True, 1, set(), set()),
    ("ignore a ready pod without fresh metrics during initialization period - CPU",
     Pod("bentham", phase="Succeeded", ready=True, ready_since=NOW - 30, start_time=NOW - 60),
     PodMetric(1, NOW, 60), True, 0, {"bentham"}, set()),
    ("ignore an unready pod during initialization period - CPU",
     Pod("lucretius", phase="Succeeded", ready=False, ready_since=NOW - 594, start_time=NOW - 600),
     PodMetric(1, 0.0, 0.0), True, 0, {"lucretius"}, set()),
    ("count in a ready pod without fresh metrics after initialization period - CPU",
     Pod("bentham", phase="Succeeded", ready=True, ready_since=NOW - 180, start_time=NOW - 180),
     PodMetric(1, NOW - 120, 60), True, 1, set(), set()),
    ("count in an unready pod that was ready after initialization period - CPU",
     Pod("lucretius", phase="Succeeded", ready=False, ready_since=NOW - 540, start_time=NOW - 600),
     PodMetric(1, 0.0, 0.0), True, 1, set(), set()),
    ("ignore pod that has never been ready after initialization period - CPU",
     Pod("lucretius", phase="Succeeded", ready=False, ready_since=NOW - 590, start_time=NOW - 600),
     PodMetric(1, 0.0, 0.0), True, 1, set(), set()),
    ("a missing pod", Pod("epicurus", phase="Succeeded", ready=None, start_time=NOW - 180), None, True, 0, set(),
     {"epicurus"}),
    ("pending pods are ignored", Pod("unscheduled", phase="Pending", ready=None, start_time=None), None, True, 0,
     {"unscheduled"}, set()),
]


@pytest.mark.parametrize(("name", "pod", "metric", "cpu", "ready", "ignored", "missing"), GROUP_CASES,
                         ids=[c[0] for c in GROUP_CASES])
def test_group_pods_matches_upstream(name, pod, metric, cpu, ready, ignored, missing):
    metrics = {pod.name: metric} if metric else {}
    assert group_pods([pod], metrics, NOW, cpu, TESTING) == (ready, ignored, missing)


# ---- behaviours (horizontal_test.go) ---------------------------------------------------------


def rules(pods, pods_period, percent, percent_period, window):
    """upstream generateScalingRules: select Max, a Pods and/or a Percent policy."""
    policies = []
    if pods:
        policies.append(ScalingPolicy("Pods", pods, pods_period))
    if percent:
        policies.append(ScalingPolicy("Percent", percent, percent_period))
    return ScalingRules(window, "Max", tuple(policies) or None)


def uniform_events(changes, period):
    """upstream generateEventsUniformDistribution: each event at the centre of its segment of the last period."""
    segment = period / len(changes)
    return [ScaleEvent(c, NOW - (period - segment * (i + 1) + segment / 2)) for i, c in enumerate(changes)]


E159 = [1, 5, 9]
# horizontal_test.go: TestScalingWithRules: (name, up events, down events, min, max, up rules, down rules,
#  current, desired, expected, condition)
SCALING_CASES = [
    ("prenormalized desired replicas within range", [], [], 3, 8, None, None, 5, 7, 7, "DesiredWithinRange"),
    ("prenormalized desired replicas < minReplicas", [], [], 2, 8, None, None, 3, 1, 2, "TooFewReplicas"),
    ("within range when minReplicas is 0", [], [], 0, 10, None, None, 1, 0, 0, "DesiredWithinRange"),
    ("maxReplicas is the limit because maxReplicas < scaleUpLimit", [], [], 1, 10, None, None, 20, 1000, 10,
     "TooManyReplicas"),
    ("desired replica count is more than the maximum replica count", [], [], 100, 150, None, None, 100, 1000, 150,
     "TooManyReplicas"),
    ("scaleUpLimit < maxReplicas with user policies", [], [], 1, 2000, rules(0, 0, 1, 60, 0), None, 3, 1000, 4,
     "ScaleUpLimit"),
    ("scaleDownLimit > minReplicas with user defined policies", [], [], 3, 2000, None, rules(20, 60, 0, 0, 0), 1000, 3,
     980, "ScaleDownLimit"),
    ("scaleUp with default behavior", [], [], 1, 1000, None, None, 10, 50, 20, "ScaleUpLimit"),
    ("scaleUp with pods policy larger than percent policy", [], [], 1, 1000, rules(100, 60, 100, 60, 0), None, 10,
     500, 110, "ScaleUpLimit"),
    ("scaleUp with percent policy larger than pods policy", [], [], 1, 1000, rules(2, 60, 100, 60, 0), None, 10, 500,
     20, "ScaleUpLimit"),
    ("scaleUp with spec MaxReplicas limitation with large pod policy", [], [], 1, 1000, rules(100, 60, 0, 0, 0), None,
     10, 50, 50, "DesiredWithinRange"),
    ("scaleUp with pod policy limitation", [], [], 1, 1000, rules(30, 60, 0, 0, 0), None, 10, 50, 40, "ScaleUpLimit"),
    ("scaleUp with percent policy limitation", [], [], 1, 1000, rules(0, 0, 200, 60, 0), None, 10, 50, 30,
     "ScaleUpLimit"),
    ("scaleDown with percent policy larger than pod policy", [], [], 1, 1000, None, rules(20, 60, 1, 60, 300), 100, 2,
     80, "ScaleDownLimit"),
    ("scaleDown with pod policy larger than percent policy", [], [], 1, 1000, None, rules(2, 60, 1, 60, 300), 100, 2,
     98, "ScaleDownLimit"),
    ("scaleDown with spec MinReplicas limitation with large pod policy", [], [], 1, 1000, None,
     rules(100, 60, 0, 0, 300), 10, 0, 1, "TooFewReplicas"),
    ("scaleDown with spec MinReplicas limitation with large percent policy", [], [], 5, 1000, None,
     rules(0, 0, 100, 60, 300), 10, 2, 5, "TooFewReplicas"),
    ("scaleDown with pod policy limitation", [], [], 1, 1000, None, rules(5, 60, 0, 0, 300), 10, 2, 5,
     "ScaleDownLimit"),
    ("scaleDown with percent policy limitation", [], [], 1, 1000, None, rules(0, 0, 50, 60, 300), 10, 5, 5,
     "DesiredWithinRange"),
    ("scaleUp MaxReplicas limitation with large pod policy and events", uniform_events(E159, 120), [], 1, 200,
     rules(300, 60, 0, 0, 0), None, 100, 500, 200, "TooManyReplicas"),
    ("scaleUp MaxReplicas limitation with large percent policy and events", uniform_events(E159, 120), [], 1, 200,
     rules(0, 0, 10000, 60, 0), None, 100, 500, 200, "TooManyReplicas"),
    ("scaleUp with currentReplicas limitation with a lot of recent scale up events", uniform_events(E159, 120), [], 1,
     1000, rules(5, 120, 0, 0, 0), None, 100, 500, 100, "ScaleUpLimit"),
    ("scaleUp with pod policy and previous scale up events", uniform_events(E159, 120), [], 1, 1000,
     rules(150, 120, 0, 0, 0), None, 100, 500, 235, "ScaleUpLimit"),
    ("scaleUp with percent policy and previous scale up events", uniform_events(E159, 120), [], 1, 1000,
     rules(0, 0, 200, 120, 0), None, 100, 500, 255, "ScaleUpLimit"),
    ("scaleUp with percent policy and previous scale up and down events", uniform_events([4], 120),
     uniform_events([2], 120), 1, 1000, rules(0, 0, 300, 300, 0), None, 6, 24, 16, "ScaleUpLimit"),
    ("scaleDown with default policy and previous events", [], uniform_events(E159, 120), 1, 1000, None, None, 10, 5,
     5, "DesiredWithinRange"),
    ("scaleDown MinReplicas=nil limitation with large pod policy and previous events", [], uniform_events(E159, 120),
     1, 1000, None, rules(115, 120, 0, 0, 300), 100, 0, 1, "TooFewReplicas"),
    ("scaleDown MinReplicas limitation with large pod policy and previous events", [], uniform_events(E159, 120), 5,
     1000, None, rules(130, 120, 0, 0, 300), 100, 0, 5, "TooFewReplicas"),
    ("scaleDown MinReplicas limitation with large percent policy and previous events", [], uniform_events(E159, 120),
     5, 1000, None, rules(0, 0, 100, 120, 300), 100, 2, 5, "TooFewReplicas"),
    ("scaleDown with pod policy limitation and previous events", [], uniform_events(E159, 120), 1, 1000, None,
     rules(5, 120, 0, 0, 300), 100, 2, 100, "ScaleDownLimit"),
    ("scaleDown with percent policy limitation and previous events", [], uniform_events([2, 4, 6], 120), 1, 1000,
     None, rules(0, 0, 50, 120, 300), 100, 0, 56, "ScaleDownLimit"),
    ("scaleDown with percent policy and previous scale up and down events", uniform_events([2], 120),
     uniform_events([4], 120), 1, 1000, None, rules(0, 0, 50, 180, 0), 10, 1, 6, "ScaleDownLimit"),
    ("scaleDown with previous events preventing further scale down", [], uniform_events([10, 10, 10], 120), 1, 1000,
     None, rules(0, 0, 10, 120, 300), 100, 0, 100, "ScaleDownLimit"),
    ("scaleDown with with previous events still allowing more scale down", [], uniform_events([10, 10, 10], 120), 1,
     1000, None, rules(0, 0, 1000, 120, 300), 10, 5, 5, "DesiredWithinRange"),
    ("check 'outdated' flag for events for one behavior for up", uniform_events([8, 12, 9, 11], 120), [], 1, 1000,
     rules(1000, 60, 0, 0, 0), None, 100, 200, 200, "DesiredWithinRange"),
    ("events not 'outdated' for two different policies for up", uniform_events([8, 12, 9, 11], 120), [], 1, 1000,
     rules(1000, 120, 100, 60, 0), None, 100, 200, 200, "DesiredWithinRange"),
    ("events 'outdated' for two different policies for up", uniform_events([8, 12, 9, 11], 120), [], 1, 1000,
     rules(1000, 30, 100, 60, 0), None, 100, 200, 200, "DesiredWithinRange"),
    ("check 'outdated' flag for events for one behavior for down", [], uniform_events([8, 12, 9, 11], 120), 1, 1000,
     None, rules(1000, 60, 0, 0, 300), 100, 5, 5, "DesiredWithinRange"),
    ("events not 'outdated' for two different policies for down", [], uniform_events([8, 12, 9, 11], 120), 1, 1000,
     None, rules(1000, 120, 100, 60, 300), 100, 5, 5, "DesiredWithinRange"),
    ("events 'outdated' for two different policies for down", [], uniform_events([8, 12, 9, 11], 120), 1, 1000, None,
     rules(1000, 30, 100, 60, 300), 100, 5, 5, "DesiredWithinRange"),
]


@pytest.mark.parametrize(("name", "up_events", "down_events", "min_r", "max_r", "up", "down", "current", "desired",
                          "expected", "condition"), SCALING_CASES, ids=[c[0] for c in SCALING_CASES])
def test_rate_limits_match_upstream(name, up_events, down_events, min_r, max_r, up, down, current, desired, expected,
                                    condition):
    spec = HPASpec(min_r, max_r, scale_up=up, scale_down=down)
    assert apply_rate_limits(spec, current, desired, up_events, down_events, NOW) == (expected, condition)


def test_min_select_policy_matches_upstream():
    """horizontal_test.go: TestCalculateScaleUpLimitWithScalingRules, TestCalculateScaleDownLimitWithBehaviors."""
    both = (ScalingPolicy("Pods", 2, 60), ScalingPolicy("Percent", 50, 60))
    min_rules = ScalingRules(300, "Min", both)
    assert scale_up_limit(1, [], [], min_rules, NOW) == 2
    assert scale_down_limit(5, [], [], min_rules, NOW) == 3


def test_disabled_select_policy_holds_the_count():
    spec = HPASpec(1, 100, scale_up=ScalingRules(None, "Disabled"), scale_down=ScalingRules(None, "Disabled"))
    assert apply_rate_limits(spec, 10, 50, now=NOW) == (10, "ScaleUpLimit")
    assert apply_rate_limits(spec, 10, 2, now=NOW) == (10, "ScaleDownLimit")


def recs(*pairs):
    return [TimedRecommendation(r, NOW - ago) for r, ago in pairs]


# horizontal_test.go: TestNormalizeDesiredReplicasWithBehavior (stabilizeRecommendationWithBehaviors):
# (name, history (replicas, seconds ago), current, desired, up window, down window, expected, stored replicas)
STABILIZE_CASES = [
    ("simple scale down stabilization", recs((4, 120), (5, 60)), 100, 3, 0, 180, 5, [4, 5, 3]),
    ("simple scale up stabilization", recs((4, 120), (5, 60)), 1, 7, 300, 0, 4, [4, 5, 7]),
    ("no scale down stabilization", recs((1, 120), (2, 60)), 100, 3, 300, 0, 3, [1, 2, 3]),
    ("no scale up stabilization", recs((4, 120), (5, 60)), 1, 3, 0, 300, 3, [4, 5, 3]),
    ("no scale down stabilization, reuse recommendation element", recs((10, 600), (9, 540)), 100, 3, 0, 0, 3,
     [10, 3]),
    ("no scale up stabilization, reuse recommendation element", recs((10, 600), (9, 540)), 1, 100, 0, 0, 100,
     [10, 100]),
    ("scale down stabilization, reuse one of obsolete recommendation element",
     recs((10, 600), (4, 60), (5, 120), (9, 540)), 100, 3, 0, 180, 5, [10, 4, 5, 3]),
    ("scale up stabilization, reuse one of obsolete recommendation element",
     recs((10, 6000), (6, 60), (5, 120), (9, 180)), 1, 100, 300, 0, 5, [100, 6, 5, 9]),
    ("do not scale up when prenormalized rec goes down", recs((2, 6000), (3, 180)), 2, 1, 300, 300, 2, None),
    ("do not scale down when prenormalized rec goes up", recs((2, 6000), (1, 180)), 2, 3, 300, 300, 2, None),
]


@pytest.mark.parametrize(("name", "history", "current", "desired", "up_w", "down_w", "expected", "stored"),
                         STABILIZE_CASES, ids=[c[0] for c in STABILIZE_CASES])
def test_stabilization_matches_upstream(name, history, current, desired, up_w, down_w, expected, stored):
    replicas, kept = stabilize(history, current, desired, up_w, down_w, NOW)
    assert replicas == expected
    if stored is not None:
        assert [r.replicas for r in kept] == stored


# horizontal_test.go: TestNormalizeDesiredReplicas (stabilizeRecommendation, no behaviours; 5-minute window):
# (name, history, desired, expected, log length)
LEGACY_STABILIZE_CASES = [
    ("empty log", [], 5, 5, 1),
    ("stabilize", recs((4, 120), (5, 60)), 3, 5, 3),
    ("no stabilize", recs((1, 120), (2, 60)), 3, 3, 3),
    ("no stabilize - old recommendations", recs((10, 600), (9, 540)), 3, 3, 2),
    ("stabilize - old recommendations", recs((10, 600), (4, 60), (5, 120), (9, 540)), 3, 5, 4),
]


@pytest.mark.parametrize(("name", "history", "desired", "expected", "length"), LEGACY_STABILIZE_CASES,
                         ids=[c[0] for c in LEGACY_STABILIZE_CASES])
def test_legacy_stabilization_matches_upstream(name, history, desired, expected, length):
    replicas, kept = legacy_stabilize(history, desired, 300, NOW)
    assert (replicas, len(kept)) == (expected, length)


# horizontal_test.go: TestConvertDesiredReplicasWithRules (no behaviours): (current, desired, min, max, expected, cond)
LEGACY_BOUNDS_CASES = [
    (5, 7, 3, 8, 7, "DesiredWithinRange"),
    (3, 1, 2, 8, 2, "TooFewReplicas"),
    (1, 0, 0, 10, 0, "DesiredWithinRange"),
    (20, 1000, 1, 10, 10, "TooManyReplicas"),
    (3, 1000, 1, 2000, 6, "ScaleUpLimit"),  # calculateScaleUpLimit(3) = max(2 * 3, 4)
]


@pytest.mark.parametrize(("current", "desired", "min_r", "max_r", "expected", "condition"), LEGACY_BOUNDS_CASES)
def test_legacy_bounds_match_upstream(current, desired, min_r, max_r, expected, condition):
    assert legacy_bounds(HPASpec(min_r, max_r), current, desired) == (expected, condition)


def test_normalize_with_behaviors_stabilizes_then_limits():
    """A scale-down inside the default 300 s window is held at the window's highest recommendation,
    and the new recommendation is recorded."""
    spec = HPASpec(1, 10)
    out = normalize_with_behaviors(spec, 8, 2, recs((6, 100)), now=NOW)
    assert (out.replicas, out.reason) == (6, "DesiredWithinRange")
    assert [r.replicas for r in out.recommendations] == [6, 2]
    # the default scale-up: max(4 pods, 100 %) per 15 s from 3 is 7
    assert normalize_with_behaviors(spec, 3, 10, now=NOW).replicas == 7


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: HPASpec(min_replicas=5, max_replicas=3), "min_replicas"),
        (lambda: HPASpec(min_replicas=-1), "min_replicas"),
        (lambda: ScalingPolicy("Pods", 4, 0), "period_seconds"),
        (lambda: ScalingPolicy("Percent", -10, 15), "value"),
        (lambda: ScalingPolicy("Nodes", 1, 15), "type"),  # type: ignore[arg-type]
        (lambda: ScalingRules(stabilization_window_seconds=-1), "stabilization_window_seconds"),
        (lambda: ScalingRules(select_policy="Fastest"), "select_policy"),  # type: ignore[arg-type]
        (lambda: CalculatorConfig(tolerance=-0.1), "tolerance"),
        (lambda: resource_replicas(3, -50, [Pod("a", 1000)], {"a": PodMetric(1)}, NOW), "target_utilization"),
        (lambda: pods_metric_replicas(3, 0, [Pod("a")], {"a": PodMetric(1)}, NOW), "target_value"),
    ],
)
def test_bad_input_names_the_field(build, field):
    with pytest.raises(ValueError, match=field):
        build()
