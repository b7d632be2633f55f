"""Knative Serving's pod autoscaler (KPA): windowed concurrency averages and the scale decision.

Pure and deterministic, as :mod:`models.k8s.hpa`: every method takes the time ``now`` (seconds, any
epoch); :mod:`models.faas.knative_pool` drives it on a simulated platform. Ported from ``knative/serving``
(snapshot 98e5ef9 of August 2026), held to its unit tests in ``tests/test_faas_knative.py``.

**Windows** (``pkg/autoscaler/aggregation/bucketing.go``): the collector records each pod's average
concurrency of every second (``config.BucketSize``, 1 s, ``pkg/autoscaler/config/config.go``) into two
ring buffers of 1-second buckets, one over the stable window (60 s) and one over the panic window (10 % of
it, 6 s) (``pkg/autoscaler/metrics/collector.go``). :class:`TimedBuckets` is the default, linear average:
the sum of the buckets over the window divided by the number of buckets since the first write (a partial
window at the start), dropping the buckets a gap without writes has emptied, 0 after a whole window with
no write, rounded to 6 digits. :class:`WeightedBuckets` (``autoscaling.knative.dev/metric-aggregation-
algorithm: weighted-exponential``) weights the newest bucket by a smoothing coefficient ``m`` and each
older one by a further ``1 - m``, ``m = max(1 - (1 - 0.9999)^(1/buckets), 0.2)``.

**Decision** (``pkg/autoscaler/scaling/autoscaler.go``, ``Scale``), every 2 s (``tickInterval``,
``scaling/multiscaler.go``), from the stable and panic averages and the ready pods (at least 1):

* desired stable / panic pods = ceil(average / target), the target being container concurrency (or
  ``container-concurrency-target-default``, 100) times the target utilisation (70 %), at least 0.01
  (``pkg/reconciler/autoscaling/resources/target.go``, ``ResolveMetricTarget``; :func:`resolve_target`);
* both held within floor(ready / max scale-down rate) (0 when not reachable) .. ceil(max scale-up rate x
  ready) (defaults 2 and 1000);
* panic starts when desired panic pods / ready >= the panic threshold (200 %), and is extended at each tick
  still over it; it ends at the first tick under it more than a stable window after the last tick over it.
  While panicking the desired count is the larger of stable and panic, never below the highest count of
  this panic (no scale-down);
* with a scale-down delay (``scale-down-delay``, default 0: none) and a reachable revision, the desired count
  is the highest of the decisions of the last delay (``pkg/autoscaler/aggregation/max``, a sliding maximum
  over 2 s buckets: :class:`MaxWindow`), so a scale-down waits that long;
* excess burst capacity = floor(ready x total - target burst capacity - panic average) (``total``: the
  per-pod capacity before utilisation); 0 with a target burst capacity of 0, -1 when it is -1 (unlimited).
  Negative: the activator stays in the request path.

**Scale to zero** (``pkg/reconciler/autoscaling/kpa/scaler.go``, ``handleScaleToZero``, simplified in
:class:`ScaleToZero`): a desired 0 is applied only after the revision has been active a stable window and
then inactive (the activator in the path) for ``scale-to-zero-grace-period`` (30 s); until it has been
active a stable window the scale is held at 1. Kept from upstream: the activation scale (``DeciderSpec``).
Not modelled: the activator probes, the last pod's retention period and RPS as the metric; min, max and
initial scale are applied by :mod:`models.faas.knative_pool`.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

GRANULARITY_S = 1.0
"""Bucket width of the averaging windows (``config.BucketSize``, pkg/autoscaler/config/config.go)."""
TICK_S = 2.0
"""The autoscaler decides every 2 s (``tickInterval``, pkg/autoscaler/scaling/multiscaler.go)."""
MIN_EXPONENT = 0.2
WEIGHT_PRECISION = 0.9999
PRECISION_DIGITS = 6
"""``minExponent``, ``weightPrecision``, ``precision`` of pkg/autoscaler/aggregation/bucketing.go."""
TARGET_MIN = 0.01
"""Smallest target (``autoscaling.TargetMin``, pkg/apis/autoscaling/register.go)."""


def smoothing_coeff(buckets: float) -> float:
    """The weighted average's decay for ``buckets`` buckets (``computeSmoothingCoeff``)."""
    return max(1 - (1 - WEIGHT_PRECISION) ** (1 / buckets), MIN_EXPONENT)


def _round(value: float) -> float:
    scale = 10.0**PRECISION_DIGITS
    return math.floor(value * scale + 0.5) / scale  # Go's math.Round: half away from zero (values are >= 0)


class TimedBuckets:
    """Values recorded at times, summed per bucket over a sliding window; the linear window average."""

    def __init__(self, window_s: float, granularity_s: float = GRANULARITY_S) -> None:
        self.granularity = granularity_s
        self.window = window_s
        self.buckets = [0.0] * math.ceil(window_s / granularity_s)
        self.first_write: float | None = None
        self.last_write = -math.inf
        self.total = 0.0

    def _truncate(self, t: float) -> float:
        return math.floor(t / self.granularity) * self.granularity

    def _index(self, t: float) -> int:
        return math.floor(t) // int(self.granularity)

    def _steps(self, later: float, earlier: float) -> int:
        """Whole buckets between two truncated times."""
        return round((later - earlier) / self.granularity)

    def is_empty(self, now: float) -> bool:
        """No write for more than a window before ``now``."""
        return self._truncate(now) - self.last_write > self.window

    def record(self, now: float, value: float) -> None:
        """Add ``value`` to the bucket of ``now``; buckets a gap skipped are zeroed, a value older than the
        window is dropped, and after a whole window without writes the window starts again."""
        at = self._truncate(now)
        index = self._index(now)
        if self.last_write != at:
            if not at + self.window > self.last_write:
                return
            if self.first_write is None or self.first_write > at:
                self.first_write = at
            if at > self.last_write:
                if at - self.last_write >= self.window:
                    self.first_write = at
                    self.buckets = [0.0] * len(self.buckets)
                    self.total = 0.0
                else:
                    for i in range(self._index(self.last_write) + 1, index + 1):
                        slot = i % len(self.buckets)
                        self.total -= self.buckets[slot]
                        self.buckets[slot] = 0.0
                self.last_write = at
        self.buckets[index % len(self.buckets)] += value
        self.total += value

    def _valid_buckets(self, limit: int) -> float:
        assert self.first_write is not None
        return min(self._steps(self.last_write, self.first_write) + 1, limit)

    def window_average(self, now: float) -> float:
        """The mean bucket over the valid part of the window (see the module docstring)."""
        now = self._truncate(now)
        gap = now - self.last_write
        if gap <= 0:
            return _round(self.total / self._valid_buckets(len(self.buckets)))
        if gap < self.window:
            start, end = self._index(self.last_write), self._index(now)
            remaining = self.total
            for i in range(start + 1, end + 1):
                remaining -= self.buckets[i % len(self.buckets)]
            return _round(remaining / self._valid_buckets(len(self.buckets) - (end - start)))
        return 0.0


class WeightedBuckets(TimedBuckets):
    """The same buckets, averaged with exponentially decaying weights, newest first."""

    def __init__(self, window_s: float, granularity_s: float = GRANULARITY_S) -> None:
        super().__init__(window_s, granularity_s)
        self.coeff = smoothing_coeff(len(self.buckets))

    def window_average(self, now: float) -> float:
        now = self._truncate(now)
        if self.is_empty(now):
            return 0.0
        n = len(self.buckets)
        count = n
        multiplier = self.coeff
        if now > self.last_write:
            zeros = self._steps(now, self.last_write)
            multiplier *= (1 - self.coeff) ** zeros
            count -= zeros
        start = self._index(self.last_write) + n
        average = 0.0
        for i in range(count):
            average += self.buckets[(start - i) % n] * multiplier
            multiplier *= 1 - self.coeff
        return average


class MaxWindow:
    """The maximum of the values recorded in the last ``size`` buckets (``pkg/autoscaler/aggregation/max``,
    ``window.go``): a deque of decreasing maxima, the oldest first; a bucket recorded twice keeps its larger."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.maxima: deque[tuple[int, int]] = deque()  # (bucket index, value)

    def record(self, index: int, value: int) -> None:
        while self.maxima and value >= self.maxima[-1][1]:
            self.maxima.pop()
        while self.maxima and index - self.maxima[0][0] >= self.size:
            self.maxima.popleft()
        if self.maxima and self.maxima[-1][0] == index:
            value = max(value, self.maxima.pop()[1])
        self.maxima.append((index, value))

    def current(self) -> int:
        return self.maxima[0][1]


def resolve_target(container_concurrency: int, target: float | None, utilization: float) -> tuple[float, float]:
    """(target per pod, total per pod) of the concurrency metric (``ResolveMetricTarget``): total is the
    container concurrency, or 100 (``container-concurrency-target-default``) when it is 0 (unlimited), or the
    ``target`` annotation (at most the container concurrency); target = max(0.01, total x utilisation)."""
    total = float(container_concurrency) if container_concurrency else 100.0
    if target is not None:
        total = min(target, container_concurrency) if container_concurrency else target
    return max(TARGET_MIN, total * utilization), total


@dataclass(frozen=True)
class DeciderSpec:
    """What the decision needs (upstream ``DeciderSpec``); the panic threshold is a ratio (2.0 = 200 %)."""

    target_value: float
    total_value: float
    target_burst_capacity: float
    panic_threshold: float
    max_scale_up_rate: float
    max_scale_down_rate: float
    stable_window_s: float
    reachable: bool = True
    activation_scale: int = 0
    scale_down_delay_s: float = 0.0


@dataclass(frozen=True)
class ScaleResult:
    """One decision: the desired pods, the excess burst capacity, and whether the autoscaler panics."""

    desired: int
    excess_burst_capacity: int
    panicking: bool


class Autoscaler:
    """The KPA's decision with its panic state (see the module docstring). Created with more than one
    ready pod it starts in panic mode, so that a restart with no metric history does not scale down."""

    def __init__(self, spec: DeciderSpec, ready: int, now: float) -> None:
        self.spec = spec
        self.panic_time: float | None = now if ready > 1 else None
        self.max_panic_pods = ready
        delay = spec.scale_down_delay_s
        self.delay = MaxWindow(math.ceil(delay / TICK_S)) if delay > 0 else None

    def scale(self, now: float, ready: int, stable: float, panic: float) -> ScaleResult:
        """The decision at ``now`` with ``ready`` pods and the stable and panic window averages."""
        spec = self.spec
        pods = max(1.0, float(ready))
        max_up = math.ceil(spec.max_scale_up_rate * pods)
        max_down = math.floor(pods / spec.max_scale_down_rate) if spec.reachable else 0
        stable_pods = math.ceil(stable / spec.target_value)
        panic_pods = math.ceil(panic / spec.target_value)
        desired_stable = int(min(max(stable_pods, max_down), max_up))
        desired_panic = int(min(max(panic_pods, max_down), max_up))
        if spec.activation_scale > 1:
            if stable_pods > 0 and spec.activation_scale > desired_stable:
                desired_stable = spec.activation_scale
            if panic_pods > 0 and spec.activation_scale > desired_panic:
                desired_panic = spec.activation_scale
        over = panic_pods / pods >= spec.panic_threshold
        if over:
            self.panic_time = now
        elif self.panic_time is not None and self.panic_time + spec.stable_window_s < now:
            self.panic_time, self.max_panic_pods = None, 0
        desired = desired_stable
        if self.panic_time is not None:
            self.max_panic_pods = max(self.max_panic_pods, desired, desired_panic)
            desired = self.max_panic_pods
        if spec.reachable and self.delay is not None:
            self.delay.record(math.floor(now) // int(TICK_S), desired)
            desired = self.delay.current()
        if spec.target_burst_capacity == 0:
            excess = 0.0
        elif spec.target_burst_capacity > 0:
            excess = math.floor(ready * spec.total_value - spec.target_burst_capacity - panic)
        else:
            excess = -1.0
        return ScaleResult(desired, int(excess), self.panic_time is not None)


def apply_bounds(low: int, high: int, desired: int) -> int:
    """``desired`` within min scale ``low`` and max scale ``high`` (0: no maximum) (``applyBounds``)."""
    if desired < low:
        return low
    if high and desired > high:
        return high
    return desired


class ScaleToZero:
    """When a desired 0 may be applied (``handleScaleToZero``, simplified: see the module docstring).

    ``decide`` returns the scale to apply, or None to leave the current scale as it is."""

    def __init__(self, stable_window_s: float, grace_s: float, enabled: bool = True,
                 active_since: float | None = None) -> None:
        self.stable_window = stable_window_s
        self.grace = grace_s
        self.enabled = enabled
        self.active_since = active_since
        self.inactive_since: float | None = None if active_since is not None else -math.inf

    def decide(self, now: float, desired: int) -> int | None:
        if desired != 0:
            if self.active_since is None:
                self.active_since, self.inactive_since = now, None
            return desired
        if not self.enabled:
            return 1
        if self.active_since is not None:
            if now - self.active_since < self.stable_window:
                return 1
            self.active_since, self.inactive_since = None, now  # deactivated: the activator takes the path
            return None
        assert self.inactive_since is not None
        return 0 if now - self.inactive_since >= self.grace else None
