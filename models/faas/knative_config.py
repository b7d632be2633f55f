"""Scenario schema of a function scaled by Knative's autoscaler (``scaling: knative``).

Defaults are Knative Serving's ``config-autoscaler`` ConfigMap defaults, as ``defaultConfig`` in
``knative/serving`` ``pkg/autoscaler/config/config.go`` sets them (and ``config/core/configmaps/
autoscaler.yaml`` documents them): target utilisation 70 %, container-concurrency target default 100,
stable window 60 s, panic window 10 % of it, panic threshold 200 %, max scale-up rate 1000, max scale-down
rate 2, scale-down delay 0, target burst capacity 211 (200 in older releases' documentation), scale-to-zero
grace period 30 s, initial scale 1, min scale 0, max scale 0 (no maximum). The checks on them are
``validate``'s in the same file and the bounds of ``pkg/apis/autoscaling/register.go`` (window 6 s .. 1 h,
panic window 1 .. 100 %, panic threshold 110 .. 1000 %) and ``annotation_validation.go`` (scale-down delay
0 .. 1 h).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sim.scenario import MAX_COUNT, Duration, ScenarioPart


class KnativeConfig(ScenarioPart):
    """Knative's pod autoscaler (KPA) and activator for one function (``models.faas.knative``)."""

    target: float | None = Field(
        None, gt=0, description="target concurrency per pod (autoscaling.knative.dev/target); null: the "
        "function's concurrency (containerConcurrency)")
    target_utilization: float = Field(
        0.7, gt=0, le=1, description="fraction of the target the autoscaler aims at "
        "(container-concurrency-target-percentage, 70 %)")
    stable_window: Duration = Field(60.0, ge=6, le=3600, description="the stable averaging window (6 s .. 1 h)")
    panic_window_percentage: float = Field(
        10.0, ge=1, le=100, description="the panic window as a percentage of the stable window")
    panic_threshold_percentage: float = Field(
        200.0, ge=110, le=1000, description="panic when the panic window wants this percentage of the ready pods "
        "(110 .. 1000, upstream's PanicThresholdPercentageMin/Max)")
    max_scale_up_rate: float = Field(1000.0, gt=1, description="at most this many times the ready pods per decision")
    max_scale_down_rate: float = Field(2.0, gt=1, description="at least the ready pods divided by this per decision")
    target_burst_capacity: float = Field(
        211.0, ge=-1, description="spare concurrency below which the activator stays in the request path; "
        "-1: always in it")
    scale_to_zero_grace_period: Duration = Field(
        30.0, gt=0, description="inactive (activator in the path) this long before the last pod goes")
    scale_down_delay: Duration = Field(
        0.0, ge=0, le=3600, description="a scale-down waits until the count has been lower this long (0 .. 1 h)")
    enable_scale_to_zero: bool = Field(True, description="false: never fewer than one pod")
    initial_scale: int = Field(1, ge=0, le=MAX_COUNT, description="pods started at time 0")
    min_scale: int = Field(0, ge=0, le=MAX_COUNT, description="never fewer pods (autoscaling.knative.dev/min-scale)")
    max_scale: int = Field(0, ge=0, le=MAX_COUNT, description="never more pods; 0: no maximum but max_instances")
    aggregation: Literal["linear", "weighted-exponential"] = Field(
        "linear", description="how a window's per-second buckets are averaged (metric-aggregation-algorithm)")

    @model_validator(mode="after")
    def _check(self) -> KnativeConfig:
        if self.max_scale and self.min_scale > self.max_scale:
            raise ValueError(f"min_scale: {self.min_scale} is more than max_scale ({self.max_scale})")
        if self.target_burst_capacity < 0 and self.target_burst_capacity != -1:
            raise ValueError(f"target_burst_capacity: {self.target_burst_capacity} must be at least 0, or -1 "
                             "(unlimited)")
        return self
