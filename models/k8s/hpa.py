"""The Horizontal Pod Autoscaler's algorithm: replica calculation and scaling behaviours.

Pure and deterministic: every function takes the time ``now`` (seconds, any epoch) and
returns new values, nothing is kept between calls, so a control loop (not built yet) owns
the history. Quantities are integers in milli-units, as upstream (a request of 1 CPU is 1000).

**Replica calculator** (upstream ``kubernetes/kubernetes``
``pkg/controller/podautoscaler/replica_calculator.go``: ``GetResourceReplicas``,
``calcPlainMetricReplicas``, ``groupPods``; ratios from ``metrics/utilization.go``):

* The pods are grouped (:func:`group_pods`): deleted and failed pods are dropped; pending
  pods are *ignored*; pods without a metric are *missing*; for CPU, a pod is also ignored
  when it has no Ready condition, or, within ``cpu_initialization_period`` of its start
  (``--horizontal-pod-autoscaler-cpu-initialization-period``, 5 min), when it is unready or
  its metric's window began before it became ready; after that period, when it is unready
  and never was ready (its Ready transition within ``initial_readiness_delay``,
  ``--horizontal-pod-autoscaler-initial-readiness-delay``, 30 s, of its start).
* Utilization is ``int(sum(usage) * 100 / sum(request))`` over the pods with metrics (an
  integer percent, as upstream), the usage ratio is utilization / target; a plain metric's
  ratio is ``int(mean(value)) / target``.
* With nothing ignored or missing: no change within the tolerance (0.1,
  ``--horizontal-pod-autoscaler-tolerance``), else ``ceil(ratio * ready pods)``.
* Otherwise missing pods count as 100 % of their request (plain metric: the target) on a
  scale-down and 0 on a scale-up; ignored pods count as 0 on a scale-up; the ratio is
  recomputed, and the replicas stay put if it is within tolerance or flips direction, else
  ``ceil(new ratio * pods counted)``.

**Behaviours** (upstream ``pkg/controller/podautoscaler/horizontal.go``:
``normalizeDesiredReplicasWithBehaviors``, ``stabilizeRecommendationWithBehaviors``,
``convertDesiredReplicasWithBehaviorRate``, ``calculateScaleUpLimitWithScalingRules``,
``calculateScaleDownLimitWithBehaviors``, ``getReplicasChangePerPeriod``; defaults from
``pkg/apis/autoscaling/v2/defaults.go``):

* Stabilization: the recommendation is held between the lowest recommendation of the
  scale-up window (default 0 s) and the highest of the scale-down window (default 300 s,
  ``--horizontal-pod-autoscaler-downscale-stabilization``), starting from the current count.
* Rate: each policy (``Pods``: a number, ``Percent``: of the count at the period's start)
  allows a change per ``period_seconds``; the count at the period's start is the current
  one minus the scale-ups plus the scale-downs of that period; ``select_policy`` ``Max``
  takes the policy allowing the largest change, ``Min`` the smallest, ``Disabled`` none.
  Defaults: up max(4 pods, 100 %) per 15 s; down 100 % per 15 s.
* Then the count is held within ``min_replicas`` .. ``max_replicas``.

Without behaviours (``behavior: nil``) upstream uses ``normalizeDesiredReplicas``: the
highest recommendation of the downscale window, then at most max(2 x current, 4).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD_S = 300.0
INITIAL_READINESS_DELAY_S = 30.0
DOWNSCALE_STABILIZATION_S = 300
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0

Phase = Literal["Running", "Pending", "Succeeded", "Failed"]
PolicyType = Literal["Pods", "Percent"]
SelectPolicy = Literal["Max", "Min", "Disabled"]


class HPAError(ValueError):
    """The replica count cannot be computed (upstream returns an error and the HPA does not scale)."""


@dataclass(frozen=True)
class Pod:
    """A pod as the calculator sees it. ``request`` is the sum of its containers' requests
    (milli-units), ``None`` when one of them has none; ``ready`` is ``None`` without a Ready
    condition; ``ready_since`` is that condition's last transition; ``start_time`` ``None``
    when the pod has not started."""

    name: str
    request: int | None = None
    phase: Phase = "Running"
    ready: bool | None = True
    ready_since: float = 0.0
    start_time: float | None = 0.0
    deleted: bool = False


@dataclass(frozen=True)
class PodMetric:
    """A pod's metric sample: ``value`` in milli-units, the sample's ``timestamp`` and the
    ``window`` (s) it averages over (metrics-server: the scrape window)."""

    value: int
    timestamp: float = 0.0
    window: float = 60.0


@dataclass(frozen=True)
class CalculatorConfig:
    """The kube-controller-manager flags the calculator reads (upstream defaults)."""

    tolerance: float = TOLERANCE
    cpu_initialization_period: float = CPU_INITIALIZATION_PERIOD_S
    initial_readiness_delay: float = INITIAL_READINESS_DELAY_S

    def __post_init__(self) -> None:
        for name in ("tolerance", "cpu_initialization_period", "initial_readiness_delay"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"CalculatorConfig.{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class Recommendation:
    """A calculator's answer, like upstream's return values: the replicas, the current
    utilization (percent for a resource, milli-units for a metric), the raw average value
    (resources only) and the metrics' timestamp."""

    replicas: int
    utilization: int
    raw_value: int | None = None
    timestamp: float | None = None


def _check_target(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def _check_replicas(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")


def group_pods(
    pods: Sequence[Pod], metrics: Mapping[str, PodMetric], now: float, cpu: bool, config: CalculatorConfig
) -> tuple[int, set[str], set[str]]:
    """Ready pod count, ignored pods and missing pods (upstream ``groupPods``)."""
    ready, ignored, missing = 0, set(), set()
    for pod in pods:
        if pod.deleted or pod.phase == "Failed":
            continue
        if pod.phase == "Pending":
            ignored.add(pod.name)
            continue
        metric = metrics.get(pod.name)
        if metric is None:
            missing.add(pod.name)
            continue
        if cpu:
            if pod.ready is None or pod.start_time is None:
                ignore = True
            elif pod.start_time + config.cpu_initialization_period > now:
                # within the initialization period: unready, or no full metric window since ready
                ignore = not pod.ready or metric.timestamp < pod.ready_since + metric.window
            else:
                # afterwards: unready and never ready since start
                ignore = not pod.ready and pod.start_time + config.initial_readiness_delay > pod.ready_since
            if ignore:
                ignored.add(pod.name)
                continue
        ready += 1
    return ready, ignored, missing


def _resource_ratio(values: Mapping[str, int], requests: Mapping[str, int], target: int) -> tuple[float, int, int]:
    total, requested, entries = 0, 0, 0
    for name, value in values.items():
        if name not in requests:  # a metric of no known pod
            continue
        total += value
        requested += requests[name]
        entries += 1
    if requested == 0:
        raise HPAError("no metrics returned matched known pods")
    utilization = total * 100 // requested
    return utilization / target, utilization, total // entries


def _plain_ratio(values: Mapping[str, int], target: float) -> tuple[float, int]:
    utilization = sum(values.values()) // len(values)
    return utilization / target, utilization


def resource_replicas(
    current_replicas: int,
    target_utilization: int,
    pods: Sequence[Pod],
    metrics: Mapping[str, PodMetric],
    now: float,
    *,
    cpu: bool = True,
    timestamp: float | None = None,
    config: CalculatorConfig | None = None,
) -> Recommendation:
    """Replicas for a resource utilization target in percent of request (upstream ``GetResourceReplicas``)."""
    _check_replicas("current_replicas", current_replicas)
    _check_target("target_utilization", target_utilization)
    config = config or CalculatorConfig()
    resource = "cpu" if cpu else "resource"
    if not metrics:
        raise HPAError(f"unable to get metrics for resource {resource}: no metrics returned from resource metrics API")
    if not pods:
        raise HPAError("no pods returned by selector while calculating replica count")
    ready_count, ignored, missing = group_pods(pods, metrics, now, cpu, config)
    values = {name: m.value for name, m in metrics.items() if name not in ignored}
    requests: dict[str, int] = {}
    for pod in pods:
        if pod.request is None:
            raise HPAError(f"missing request for {resource}")
        requests[pod.name] = pod.request
    if not values:
        raise HPAError("did not receive metrics for any ready pods")
    ratio, utilization, raw = _resource_ratio(values, requests, target_utilization)

    def answer(replicas: int) -> Recommendation:
        return Recommendation(replicas, utilization, raw, timestamp)

    rebalance_ignored = bool(ignored) and ratio > 1.0
    if not rebalance_ignored and not missing:
        if abs(1.0 - ratio) <= config.tolerance:
            return answer(current_replicas)
        return answer(math.ceil(ratio * ready_count))
    if missing:
        if ratio < 1.0:
            values.update({name: requests[name] for name in missing})
        elif ratio > 1.0:
            values.update(dict.fromkeys(missing, 0))
    if rebalance_ignored:
        values.update(dict.fromkeys(ignored, 0))
    new_ratio, _, _ = _resource_ratio(values, requests, target_utilization)
    if abs(1.0 - new_ratio) <= config.tolerance or (ratio < 1.0 < new_ratio) or (new_ratio < 1.0 < ratio):
        return answer(current_replicas)
    new_replicas = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and new_replicas > current_replicas) or (new_ratio > 1.0 and new_replicas < current_replicas):
        return answer(current_replicas)
    return answer(new_replicas)


def pods_metric_replicas(
    current_replicas: int,
    target_value: int,
    pods: Sequence[Pod],
    metrics: Mapping[str, PodMetric],
    now: float,
    *,
    timestamp: float | None = None,
    config: CalculatorConfig | None = None,
) -> Recommendation:
    """Replicas for a per-pod metric's average target (upstream ``GetMetricReplicas``,
    ``calcPlainMetricReplicas``); readiness is not consulted, only CPU has warm-up."""
    _check_replicas("current_replicas", current_replicas)
    _check_target("target_value", target_value)
    config = config or CalculatorConfig()
    if not pods:
        raise HPAError("no pods returned by selector while calculating replica count")
    ready_count, ignored, missing = group_pods(pods, metrics, now, False, config)
    values = {name: m.value for name, m in metrics.items() if name not in ignored}
    if not values:
        raise HPAError("did not receive metrics for any ready pods")
    ratio, utilization = _plain_ratio(values, target_value)
    rebalance_ignored = bool(ignored) and ratio > 1.0
    if not rebalance_ignored and not missing:
        if abs(1.0 - ratio) <= config.tolerance:
            return Recommendation(current_replicas, utilization, None, timestamp)
        return Recommendation(math.ceil(ratio * ready_count), utilization, None, timestamp)
    if missing:
        values.update(dict.fromkeys(missing, target_value if ratio < 1.0 else 0))
    if rebalance_ignored:
        values.update(dict.fromkeys(ignored, 0))
    new_ratio, _ = _plain_ratio(values, target_value)
    if abs(1.0 - new_ratio) <= config.tolerance or (ratio < 1.0 < new_ratio) or (new_ratio < 1.0 < ratio):
        return Recommendation(current_replicas, utilization, None, timestamp)
    return Recommendation(math.ceil(new_ratio * len(values)), utilization, None, timestamp)


def _ready_running(pods: Sequence[Pod]) -> int:
    if not pods:
        raise HPAError("no pods returned by selector while calculating replica count")
    return sum(1 for p in pods if p.phase == "Running" and p.ready)


def _usage_ratio_replicas(current_replicas: int, ratio: float, pods: Sequence[Pod], config: CalculatorConfig) -> int:
    # upstream getUsageRatioReplicaCount: from zero, no tolerance and no pods to count
    if current_replicas == 0:
        return math.ceil(ratio)
    if abs(1.0 - ratio) <= config.tolerance:
        return current_replicas
    return math.ceil(ratio * _ready_running(pods))


def object_metric_replicas(
    current_replicas: int, target_value: int, value: int, pods: Sequence[Pod], config: CalculatorConfig | None = None
) -> Recommendation:
    """Replicas for one object's metric against a value target (upstream ``GetObjectMetricReplicas``):
    ``ceil(value / target * ready running pods)``."""
    _check_replicas("current_replicas", current_replicas)
    _check_target("target_value", target_value)
    replicas = _usage_ratio_replicas(current_replicas, value / target_value, pods, config or CalculatorConfig())
    return Recommendation(replicas, value)


def external_metric_replicas(
    current_replicas: int,
    target_value: int,
    values: Sequence[int],
    pods: Sequence[Pod],
    config: CalculatorConfig | None = None,
) -> Recommendation:
    """Replicas for an external metric's total against a value target (upstream ``GetExternalMetricReplicas``)."""
    _check_replicas("current_replicas", current_replicas)
    _check_target("target_value", target_value)
    total = sum(values)
    replicas = _usage_ratio_replicas(current_replicas, total / target_value, pods, config or CalculatorConfig())
    return Recommendation(replicas, total)


def per_pod_average_replicas(
    status_replicas: int, target_per_pod: int, total: int, config: CalculatorConfig | None = None
) -> Recommendation:
    """Replicas for an object's or external metric's total against an average-per-pod target
    (upstream ``GetObjectPerPodMetricReplicas``, ``GetExternalPerPodMetricReplicas``)."""
    _check_replicas("status_replicas", status_replicas)
    _check_target("target_per_pod", target_per_pod)
    if status_replicas == 0:
        raise ValueError("status_replicas must be > 0 for an average-per-pod target, got 0")
    config = config or CalculatorConfig()
    replicas = status_replicas
    if abs(1.0 - total / (target_per_pod * status_replicas)) > config.tolerance:
        replicas = math.ceil(total / target_per_pod)
    return Recommendation(replicas, math.ceil(total / status_replicas))


# ---- behaviours -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ScalingPolicy:
    """One rate limit: ``Pods`` (a number of pods) or ``Percent`` (of the count at the
    period's start) per ``period_seconds`` (upstream validation: 1..1800 s, value > 0)."""

    type: PolicyType
    value: int
    period_seconds: int

    def __post_init__(self) -> None:
        if self.type not in ("Pods", "Percent"):
            raise ValueError(f"ScalingPolicy.type must be 'Pods' or 'Percent', got {self.type!r}")
        if not isinstance(self.value, int) or self.value <= 0:
            raise ValueError(f"ScalingPolicy.value must be an integer > 0, got {self.value!r}")
        if not isinstance(self.period_seconds, int) or not 0 < self.period_seconds <= 1800:
            raise ValueError(f"ScalingPolicy.period_seconds must be an integer in 1..1800, got {self.period_seconds!r}")


@dataclass(frozen=True)
class ScalingRules:
    """One direction's behaviour; ``None`` fields take the direction's default
    (upstream ``GenerateHPAScaleUpRules`` / ``GenerateHPAScaleDownRules``)."""

    stabilization_window_seconds: int | None = None
    select_policy: SelectPolicy | None = None
    policies: tuple[ScalingPolicy, ...] | None = None

    def __post_init__(self) -> None:
        window = self.stabilization_window_seconds
        if window is not None and (not isinstance(window, int) or not 0 <= window <= 3600):
            raise ValueError(f"ScalingRules.stabilization_window_seconds must be an integer in 0..3600, got {window!r}")
        if self.select_policy not in (None, "Max", "Min", "Disabled"):
            raise ValueError(
                f"ScalingRules.select_policy must be 'Max', 'Min' or 'Disabled', got {self.select_policy!r}"
            )
        if self.policies is not None and len(self.policies) == 0:
            raise ValueError("ScalingRules.policies must name at least one policy when given, got an empty list")


SCALE_UP_DEFAULT = ScalingRules(0, "Max", (ScalingPolicy("Pods", 4, 15), ScalingPolicy("Percent", 100, 15)))
SCALE_DOWN_DEFAULT = ScalingRules(None, "Max", (ScalingPolicy("Percent", 100, 15),))


def with_defaults(rules: ScalingRules | None, default: ScalingRules) -> ScalingRules:
    """Fill a direction's unset fields from its default (upstream ``copyHPAScalingRules``)."""
    if rules is None:
        return default
    return ScalingRules(
        default.stabilization_window_seconds
        if rules.stabilization_window_seconds is None
        else rules.stabilization_window_seconds,
        rules.select_policy or default.select_policy,
        rules.policies if rules.policies is not None else default.policies,
    )


@dataclass(frozen=True)
class HPASpec:
    """The autoscaler's bounds and behaviours (``None``: the direction's default)."""

    min_replicas: int = 1
    max_replicas: int = 10
    scale_up: ScalingRules | None = None
    scale_down: ScalingRules | None = None

    def __post_init__(self) -> None:
        _check_replicas("HPASpec.min_replicas", self.min_replicas)
        if not isinstance(self.max_replicas, int) or self.max_replicas < 1:
            raise ValueError(f"HPASpec.max_replicas must be an integer >= 1, got {self.max_replicas!r}")
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"HPASpec.min_replicas ({self.min_replicas}) must not be above max_replicas ({self.max_replicas})"
            )


@dataclass(frozen=True)
class ScaleEvent:
    """A past change of the replica count (positive), at ``timestamp``."""

    change: int
    timestamp: float


@dataclass(frozen=True)
class TimedRecommendation:
    """A past unstabilized recommendation."""

    replicas: int
    timestamp: float


@dataclass(frozen=True)
class Normalized:
    """The outcome of normalization: the replicas to set, the limiting reason (upstream's
    ScalingLimited condition reason) and the recommendation history to keep."""

    replicas: int
    reason: str
    recommendations: tuple[TimedRecommendation, ...] = field(default=())


def replicas_change_per_period(period_seconds: float, events: Sequence[ScaleEvent], now: float) -> int:
    """Sum of the changes strictly within the last ``period_seconds`` (upstream ``getReplicasChangePerPeriod``)."""
    cutoff = now - period_seconds
    return sum(e.change for e in events if e.timestamp > cutoff)


def _limit(
    current: int, up: Sequence[ScaleEvent], down: Sequence[ScaleEvent], rules: ScalingRules, now: float, sign: int
) -> int:
    if rules.select_policy == "Disabled":
        return current
    # the policy allowing the largest change: for scale-up the highest limit, for scale-down the lowest
    largest = (rules.select_policy or "Max") == "Max"
    choose = max if (largest == (sign > 0)) else min
    proposals = []
    for policy in rules.policies or ():
        start = (
            current
            - replicas_change_per_period(policy.period_seconds, up, now)
            + replicas_change_per_period(policy.period_seconds, down, now)
        )
        if policy.type == "Pods":
            proposals.append(start + sign * policy.value)
        elif sign > 0:  # rounded up, else a small percentage would never add a pod
            proposals.append(math.ceil(start * (1 + policy.value / 100)))
        else:  # truncated toward zero, as Go's int32() conversion
            proposals.append(int(start * (1 - policy.value / 100)))
    return choose(proposals)


def scale_up_limit(
    current: int, up: Sequence[ScaleEvent], down: Sequence[ScaleEvent], rules: ScalingRules, now: float
) -> int:
    """Highest count the scale-up policies allow (upstream ``calculateScaleUpLimitWithScalingRules``)."""
    return _limit(current, up, down, rules, now, +1)


def scale_down_limit(
    current: int, up: Sequence[ScaleEvent], down: Sequence[ScaleEvent], rules: ScalingRules, now: float
) -> int:
    """Lowest count the scale-down policies allow (upstream ``calculateScaleDownLimitWithBehaviors``)."""
    return _limit(current, up, down, rules, now, -1)


def apply_rate_limits(
    spec: HPASpec,
    current: int,
    desired: int,
    up_events: Sequence[ScaleEvent] = (),
    down_events: Sequence[ScaleEvent] = (),
    now: float = 0.0,
) -> tuple[int, str]:
    """Bound ``desired`` by the policies and min/max (upstream ``convertDesiredReplicasWithBehaviorRate``)."""
    if desired > current:
        rules = with_defaults(spec.scale_up, SCALE_UP_DEFAULT)
        limit = max(scale_up_limit(current, up_events, down_events, rules, now), current)
        if spec.max_replicas > limit:
            allowed, reason = limit, "ScaleUpLimit"
        else:
            allowed, reason = spec.max_replicas, "TooManyReplicas"
        if desired > allowed:
            return allowed, reason
    elif desired < current:
        rules = with_defaults(spec.scale_down, SCALE_DOWN_DEFAULT)
        limit = min(scale_down_limit(current, up_events, down_events, rules, now), current)
        if spec.min_replicas < limit:
            allowed, reason = limit, "ScaleDownLimit"
        else:
            allowed, reason = spec.min_replicas, "TooFewReplicas"
        if desired < allowed:
            return allowed, reason
    return desired, "DesiredWithinRange"


def _record(
    recommendations: Sequence[TimedRecommendation], old: int | None, desired: int, now: float
) -> tuple[TimedRecommendation, ...]:
    """The history with ``desired`` in place of the sample at ``old`` (outdated), or appended."""
    history = list(recommendations)
    if old is None:
        history.append(TimedRecommendation(desired, now))
    else:
        history[old] = TimedRecommendation(desired, now)
    return tuple(history)


def stabilize(
    recommendations: Sequence[TimedRecommendation],
    current: int,
    desired: int,
    up_window: float,
    down_window: float,
    now: float,
) -> tuple[int, tuple[TimedRecommendation, ...]]:
    """Hold ``desired`` between the lowest recommendation of the scale-up window and the highest
    of the scale-down window, from ``current``; record ``desired`` in place of the last sample
    older than both windows, or appended (upstream ``stabilizeRecommendationWithBehaviors``)."""
    up_cut, down_cut = now - up_window, now - down_window
    up_rec = down_rec = desired
    old = None
    for i, rec in enumerate(recommendations):
        if rec.timestamp > up_cut:
            up_rec = min(up_rec, rec.replicas)
        if rec.timestamp > down_cut:
            down_rec = max(down_rec, rec.replicas)
        if rec.timestamp < up_cut and rec.timestamp < down_cut:
            old = i
    stabilized = min(max(current, up_rec), down_rec)
    return stabilized, _record(recommendations, old, desired, now)


def normalize_with_behaviors(
    spec: HPASpec,
    current: int,
    desired: int,
    recommendations: Sequence[TimedRecommendation] = (),
    up_events: Sequence[ScaleEvent] = (),
    down_events: Sequence[ScaleEvent] = (),
    now: float = 0.0,
    downscale_stabilization: int = DOWNSCALE_STABILIZATION_S,
) -> Normalized:
    """Stabilize, then rate-limit and bound (upstream ``normalizeDesiredReplicasWithBehaviors``)."""
    _check_replicas("current", current)
    _check_replicas("desired", desired)
    up = with_defaults(spec.scale_up, SCALE_UP_DEFAULT)
    down = with_defaults(spec.scale_down, SCALE_DOWN_DEFAULT)
    up_window = up.stabilization_window_seconds or 0
    down_window = (
        downscale_stabilization if down.stabilization_window_seconds is None else down.stabilization_window_seconds
    )
    stabilized, history = stabilize(recommendations, current, desired, up_window, down_window, now)
    replicas, reason = apply_rate_limits(spec, current, stabilized, up_events, down_events, now)
    return Normalized(replicas, reason, history)


def legacy_scale_up_limit(current: int) -> int:
    """At most max(2 x current, 4) without behaviours (upstream ``calculateScaleUpLimit``)."""
    return int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))


def legacy_bounds(spec: HPASpec, current: int, desired: int) -> tuple[int, str]:
    """Bound without behaviours (upstream ``convertDesiredReplicasWithRules``)."""
    limit = legacy_scale_up_limit(current)
    if spec.max_replicas > limit:
        maximum, reason = limit, "ScaleUpLimit"
    else:
        maximum, reason = spec.max_replicas, "TooManyReplicas"
    if desired < spec.min_replicas:
        return spec.min_replicas, "TooFewReplicas"
    if desired > maximum:
        return maximum, reason
    return desired, "DesiredWithinRange"


def legacy_stabilize(
    recommendations: Sequence[TimedRecommendation], desired: int, window: float, now: float
) -> tuple[int, tuple[TimedRecommendation, ...]]:
    """The highest recommendation of the downscale window, without behaviours (upstream
    ``stabilizeRecommendation``); the last sample older than the window is reused."""
    highest, old = desired, None
    for i, rec in enumerate(recommendations):
        if rec.timestamp < now - window:
            old = i
        elif rec.replicas > highest:
            highest = rec.replicas
    return highest, _record(recommendations, old, desired, now)
