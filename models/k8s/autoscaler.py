"""The Horizontal Pod Autoscaler's control loop on the simulation clock, and its scenario schema.

Mechanism (upstream ``kubernetes/kubernetes`` ``pkg/controller/podautoscaler/horizontal.go``:
``reconcileAutoscaler``, ``computeReplicasForMetrics``, ``storeScaleEvent``). Every ``sync_period``
(``--horizontal-pod-autoscaler-sync-period``, 15 s: kube-controller-manager's command-line reference,
https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/) from ``phase``,
the controller reads its target's replica count (the scale's ``spec.replicas``) and pods, and the latest
usage samples (:class:`models.k8s.metricsserver.MetricsServer`), then:

* a count of 0 turns autoscaling off; a count above ``max_replicas`` or below ``min_replicas`` is set to
  that bound;
* otherwise each metric's recommendation comes from :func:`models.k8s.hpa.resource_replicas` (tolerance,
  missing and not-ready pods, CPU initialization period: ``--horizontal-pod-autoscaler-tolerance`` 0.1,
  ``-cpu-initialization-period`` 5 min, ``-initial-readiness-delay`` 30 s), and the largest wins; a metric
  the calculator cannot compute (no samples yet) is invalid: with every metric invalid, or some invalid
  and the largest recommendation a scale-down, the controller does not scale;
* the recommendation is normalized: with a ``behavior`` by :func:`models.k8s.hpa.normalize_with_behaviors`
  (stabilization windows, policies, select policy; the scale-down window's default
  ``--horizontal-pod-autoscaler-downscale-stabilization``, 5 min), without one by upstream's older rules
  (:func:`models.k8s.hpa.legacy_stabilize`, :func:`models.k8s.hpa.legacy_bounds`);
* a new count is set on the target; with a behavior the change is stored as a scale event of its direction
  (:func:`store_scale_event`: events older than the direction's longest policy period are marked outdated
  and the last outdated one's place is reused), as are the recommendations the normalization keeps.

Metrics (``<name>`` the target): ``hpa.<name>.replicas`` (the count set, a time-weighted gauge),
``hpa.<name>.desired_replicas`` (the metrics' recommendation, before normalization),
``hpa.<name>.utilization_percent`` (the CPU utilization the calculator saw), ``hpa.<name>.scale_ups`` and
``hpa.<name>.scale_downs`` (scale events), ``hpa.<name>.syncs_skipped`` (syncs without a valid metric).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import Field, field_validator, model_validator

from sim.core import Environment
from sim.scenario import MAX_COUNT, Duration, ScenarioPart
from models.k8s import hpa
from models.k8s.metricsserver import METRIC_RESOLUTION_S

SYNC_PERIOD_S = 15.0
"""``--horizontal-pod-autoscaler-sync-period`` (kube-controller-manager reference, above)."""
DEFAULT_CPU_UTILIZATION = 80
"""The target of an HPA given no metric (upstream ``pkg/apis/autoscaling/v2/defaults.go``)."""


class PolicyConfig(ScenarioPart):
    """One scaling policy (upstream ``HPAScalingPolicy``; its validation's bounds)."""

    type: Literal["Pods", "Percent"] = Field(description="Pods: a number of pods; Percent: of the current count")
    value: int = Field(ge=1, le=MAX_COUNT, description="pods, or percent, allowed per period")
    period_seconds: int = Field(ge=1, le=1800, description="the window the change is counted over")


class RulesConfig(ScenarioPart):
    """One direction's behavior (upstream ``HPAScalingRules``); a field left null takes the direction's
    default (scale-up: no window, max(4 pods, 100 %) per 15 s; scale-down: 300 s window, 100 % per 15 s)."""

    stabilization_window_seconds: int | None = Field(
        None, ge=0, le=3600, description="recommendations of this many past seconds bound the count")
    select_policy: Literal["Max", "Min", "Disabled"] | None = Field(
        None, description="the policy allowing the largest change (Max), the smallest (Min), or none")
    policies: list[PolicyConfig] | None = Field(None, min_length=1, description="rate limits")

    def rules(self) -> hpa.ScalingRules:
        policies = (tuple(hpa.ScalingPolicy(p.type, p.value, p.period_seconds) for p in self.policies)
                    if self.policies is not None else None)
        return hpa.ScalingRules(self.stabilization_window_seconds, self.select_policy, policies)


class BehaviorConfig(ScenarioPart):
    """The HPA's ``behavior``: scale-up and scale-down rules."""

    scale_up: RulesConfig | None = Field(None, description="null: the scale-up defaults")
    scale_down: RulesConfig | None = Field(None, description="null: the scale-down defaults")


class MetricConfig(ScenarioPart):
    """One metric target: the pods' mean CPU use in percent of their request."""

    cpu_utilization: int = Field(gt=0, le=MAX_COUNT, description="target CPU utilization, percent of the "
                                 "pods' cpu_request (60 or \"60%\")")

    @field_validator("cpu_utilization", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().endswith("%"):
            return value.strip()[:-1]
        return value


class HPAConfig(ScenarioPart):
    """A HorizontalPodAutoscaler of a service (upstream ``autoscaling/v2`` field names, snake_case)."""

    min_replicas: int = Field(1, ge=1, le=MAX_COUNT, description="fewest replicas (default 1)")
    max_replicas: int = Field(ge=1, le=MAX_COUNT, description="most replicas")
    metrics: list[MetricConfig] = Field(
        default_factory=lambda: [MetricConfig(cpu_utilization=DEFAULT_CPU_UTILIZATION)], min_length=1,
        description="targets; the largest recommendation wins (default: CPU at 80 %)")
    behavior: BehaviorConfig | None = Field(
        None, description="scaling behavior; null: upstream's rules without one (the downscale window, then at "
        "most max(2 x current, 4))")

    @model_validator(mode="after")
    def _bounds(self) -> HPAConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) must not be above max_replicas "
                             f"({self.max_replicas})")
        return self

    def spec(self) -> hpa.HPASpec:
        behavior = self.behavior
        up = behavior.scale_up.rules() if behavior is not None and behavior.scale_up is not None else None
        down = behavior.scale_down.rules() if behavior is not None and behavior.scale_down is not None else None
        return hpa.HPASpec(self.min_replicas, self.max_replicas, up, down)


class ControllerConfig(ScenarioPart):
    """The cluster's autoscaling settings: kube-controller-manager's HPA flags and metrics-server's
    resolution (defaults: upstream's, cited in :mod:`models.k8s.autoscaler` and
    :mod:`models.k8s.metricsserver`)."""

    sync_period: Duration = Field(SYNC_PERIOD_S, gt=0, description="--horizontal-pod-autoscaler-sync-period")
    tolerance: float = Field(hpa.TOLERANCE, ge=0, description="--horizontal-pod-autoscaler-tolerance")
    cpu_initialization_period: Duration = Field(
        hpa.CPU_INITIALIZATION_PERIOD_S, ge=0, description="--horizontal-pod-autoscaler-cpu-initialization-period")
    initial_readiness_delay: Duration = Field(
        hpa.INITIAL_READINESS_DELAY_S, ge=0, description="--horizontal-pod-autoscaler-initial-readiness-delay")
    downscale_stabilization: int = Field(
        hpa.DOWNSCALE_STABILIZATION_S, ge=0, le=3600,
        description="--horizontal-pod-autoscaler-downscale-stabilization, seconds")
    metric_resolution: Duration = Field(METRIC_RESOLUTION_S, gt=0, description="metrics-server's "
                                        "--metric-resolution: its scrape interval and usage window")

    def calculator(self) -> hpa.CalculatorConfig:
        return hpa.CalculatorConfig(self.tolerance, self.cpu_initialization_period, self.initial_readiness_delay)


class ScaleTarget(Protocol):
    """What the controller scales: a replica count (``spec.replicas``), its pods, a way to set the count."""

    @property
    def replicas(self) -> int: ...

    def pods(self) -> list[hpa.Pod]: ...

    def scale(self, replicas: int) -> None: ...


class UsageSource(Protocol):
    """Where the controller reads pods' usage (:class:`models.k8s.metricsserver.MetricsServer`)."""

    def latest(self) -> dict[str, hpa.PodMetric]: ...


def longest_period(rules: hpa.ScalingRules) -> int:
    """The longest policy period of a direction (upstream ``getLongestPolicyPeriod``)."""
    return max((policy.period_seconds for policy in rules.policies or ()), default=0)


@dataclass
class StoredEvent:
    """A scale event as the controller keeps it: the change, when, and whether it is outdated."""

    change: int
    timestamp: float
    outdated: bool = False


def store_scale_event(events: list[StoredEvent], change: int, now: float, longest: int) -> None:
    """Mark the events older than ``longest`` seconds outdated and put the new one in the place of the last
    outdated event, or after the others (upstream ``storeScaleEvent``, ``markScaleEventsOutdated``)."""
    cutoff = now - longest
    place = None
    for index, event in enumerate(events):
        if event.timestamp < cutoff:
            event.outdated = True
        if event.outdated:
            place = index
    new = StoredEvent(change, now)
    if place is None:
        events.append(new)
    else:
        events[place] = new


class HorizontalPodAutoscaler:
    """The control loop of one HPA named ``name`` (see the module docstring); starts syncing at ``phase``."""

    def __init__(self, env: Environment, name: str, config: HPAConfig, controller: ControllerConfig,
                 target: ScaleTarget, metrics: UsageSource, phase: float) -> None:
        self.env = env
        self.config = config
        self.controller = controller
        self.spec = config.spec()
        self.calculator = controller.calculator()
        self.target = target
        self.metrics = metrics
        self.recommendations: tuple[hpa.TimedRecommendation, ...] = ()
        self.up_events: list[StoredEvent] = []
        self.down_events: list[StoredEvent] = []
        sink = env.metrics
        self.replicas = sink.gauge(f"hpa.{name}.replicas", target.replicas)
        self.desired = sink.gauge(f"hpa.{name}.desired_replicas", target.replicas)
        self.utilization = sink.gauge(f"hpa.{name}.utilization_percent")
        self.scale_ups = sink.counter(f"hpa.{name}.scale_ups")
        self.scale_downs = sink.counter(f"hpa.{name}.scale_downs")
        self.skipped = sink.counter(f"hpa.{name}.syncs_skipped")
        env.process(self._loop(phase))

    def _loop(self, phase: float) -> Generator[Any, Any, None]:
        yield self.env.timeout(phase)
        while True:
            self.sync()
            yield self.env.timeout(self.controller.sync_period)

    def recommend(self, current: int, now: float) -> int | None:
        """The metrics' recommendation (the largest), or None when the controller must not scale
        (upstream ``computeReplicasForMetrics``)."""
        pods = self.target.pods()
        samples = self.metrics.latest()
        timestamp = max((sample.timestamp for sample in samples.values()), default=None)
        best: int | None = None
        invalid = 0
        for metric in self.config.metrics:
            try:
                answer = hpa.resource_replicas(current, metric.cpu_utilization, pods, samples, now, cpu=True,
                                               timestamp=timestamp, config=self.calculator)
            except hpa.HPAError:
                invalid += 1
                continue
            self.utilization.set(answer.utilization)
            best = answer.replicas if best is None else max(best, answer.replicas)
        if best is None or (invalid and best < current):
            return None
        return best

    def sync(self) -> None:
        """One reconciliation now (upstream ``reconcileAutoscaler``)."""
        now = self.env.now
        current = self.target.replicas
        spec = self.spec
        if current == 0:
            return
        if current > spec.max_replicas:
            desired = spec.max_replicas
        elif current < spec.min_replicas:
            desired = spec.min_replicas
        else:
            recommended = self.recommend(current, now)
            if recommended is None:
                self.skipped.inc()
                return
            self.desired.set(recommended)
            desired = self._normalize(current, recommended, now)
        if desired == current:
            return
        self.target.scale(desired)
        self.replicas.set(desired)
        if desired > current:
            self.scale_ups.inc()
        else:
            self.scale_downs.inc()
        if self.config.behavior is not None:
            self._store_event(current, desired, now)

    def _normalize(self, current: int, recommended: int, now: float) -> int:
        spec, window = self.spec, self.controller.downscale_stabilization
        if self.config.behavior is None:
            stabilized, self.recommendations = hpa.legacy_stabilize(self.recommendations, recommended, window, now)
            return hpa.legacy_bounds(spec, current, stabilized)[0]
        up = [hpa.ScaleEvent(event.change, event.timestamp) for event in self.up_events]
        down = [hpa.ScaleEvent(event.change, event.timestamp) for event in self.down_events]
        normalized = hpa.normalize_with_behaviors(spec, current, recommended, self.recommendations, up, down, now,
                                                  window)
        self.recommendations = normalized.recommendations
        return normalized.replicas

    def _store_event(self, previous: int, new: int, now: float) -> None:
        """Keep the change as a scale event of its direction (upstream ``storeScaleEvent``)."""
        if new > previous:
            rules = hpa.with_defaults(self.spec.scale_up, hpa.SCALE_UP_DEFAULT)
            store_scale_event(self.up_events, new - previous, now, longest_period(rules))
        else:
            rules = hpa.with_defaults(self.spec.scale_down, hpa.SCALE_DOWN_DEFAULT)
            store_scale_event(self.down_events, previous - new, now, longest_period(rules))
