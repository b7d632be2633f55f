"""Streaming metrics: tallies into log-bucketed histograms, time-weighted gauges, counters.

Three kinds of measurement, kept apart as salabim's monitors keep them:

* :class:`Histogram` — one value per observation (a request's latency). Values
  fall into logarithmic buckets whose bounds grow by ``gamma = (1+a)/(1-a)``, so
  any quantile is returned within relative error ``a`` of the exact order
  statistic (the DDSketch construction: Masson, Rim and Lee, "DDSketch: a fast
  and fully-mergeable quantile sketch with relative-error guarantees", VLDB 2019).
  Memory grows with the logarithm of the value range, not with the number of
  observations, and two histograms with the same ``a`` merge exactly.
* :class:`Gauge` — a level over time (queue length, busy servers); its mean is
  the time integral divided by the elapsed time.
* :class:`Counter` — a count of events (drops, dials).

Observations are buffered in a list and folded into the buckets with NumPy a
block at a time, which keeps the per-observation cost to a list append.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import numpy as np

RELATIVE_ACCURACY = 0.005
"""Half of the 1 % relative error promised for reported percentiles."""

PERCENTILE_LEVELS: tuple[float, ...] = tuple(float(p) for p in range(1, 100)) + (99.9, 99.99)
"""Percentiles stored for every histogram: enough to draw a CDF from a summary."""

HEADLINE_STATISTICS: tuple[str, ...] = ("count", "mean", "p50", "p90", "p99", "p99.9")

_FLUSH_EVERY = 8192
_SMALLEST = 1e-12


def percentile_name(level: float) -> str:
    """``50.0`` -> ``"p50"``, ``99.9`` -> ``"p99.9"``."""
    return f"p{level:g}"


class Clock(Protocol):
    @property
    def now(self) -> float: ...


class Histogram:
    """A mergeable histogram of non-negative values with relative-error quantiles."""

    def __init__(self, relative_accuracy: float = RELATIVE_ACCURACY) -> None:
        if not 0 < relative_accuracy < 1:
            raise ValueError(f"relative_accuracy must be in (0, 1), got {relative_accuracy}")
        self.relative_accuracy = relative_accuracy
        self.gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self._log_gamma = math.log(self.gamma)
        self._clear()

    def _clear(self) -> None:
        """No observation."""
        self._buffer: list[float] = []
        self._counts = np.zeros(0, dtype=np.int64)
        self._offset = 0
        self._zeros = 0
        self._count = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._min = math.inf
        self._max = -math.inf

    def record(self, value: float) -> None:
        buffer = self._buffer
        buffer.append(value)
        if len(buffer) >= _FLUSH_EVERY:
            self._flush()

    def record_many(self, values: np.ndarray | list[float]) -> None:
        self._flush()
        self._fold(np.asarray(values, dtype=float))

    def _flush(self) -> None:
        if self._buffer:
            values = np.asarray(self._buffer, dtype=float)
            self._buffer.clear()
            self._fold(values)

    def _fold(self, values: np.ndarray) -> None:
        if values.size == 0:
            return
        if np.any(values < 0) or not np.all(np.isfinite(values)):
            bad = values[(values < 0) | ~np.isfinite(values)][0]
            raise ValueError(f"a histogram records finite non-negative values, got {bad!r}")
        positive = values[values > _SMALLEST]
        self._zeros += int(values.size - positive.size)
        if positive.size:
            index = np.ceil(np.log(positive) / self._log_gamma).astype(np.int64)
            self._add_counts(int(index.min()), np.bincount(index - index.min()))
        n, mean, m2 = values.size, float(values.mean()), float(((values - values.mean()) ** 2).sum())
        self._merge_moments(n, mean, m2)
        self._min = min(self._min, float(values.min()))
        self._max = max(self._max, float(values.max()))

    def _merge_moments(self, n: int, mean: float, m2: float) -> None:
        total = self._count + n
        delta = mean - self._mean
        self._m2 += m2 + delta**2 * self._count * n / total
        self._mean += delta * n / total
        self._count = total

    def _add_counts(self, low: int, counts: np.ndarray) -> None:
        if self._counts.size == 0:
            self._offset, self._counts = low, counts.astype(np.int64)
            return
        new_low = min(self._offset, low)
        new_high = max(self._offset + self._counts.size, low + counts.size)
        if new_low != self._offset or new_high != self._offset + self._counts.size:
            grown = np.zeros(new_high - new_low, dtype=np.int64)
            grown[self._offset - new_low : self._offset - new_low + self._counts.size] = self._counts
            self._counts, self._offset = grown, new_low
        self._counts[low - self._offset : low - self._offset + counts.size] += counts

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s observations to this histogram (same accuracy required)."""
        if other.relative_accuracy != self.relative_accuracy:
            raise ValueError("histograms merge only at the same relative accuracy")
        self._flush()
        other._flush()
        if other._count == 0:
            return
        if other._counts.size:
            self._add_counts(other._offset, other._counts)
        self._zeros += other._zeros
        self._merge_moments(other._count, other._mean, other._m2)
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)

    def reset(self) -> None:
        self._clear()

    @property
    def count(self) -> int:
        """Observations recorded so far (buffered ones included)."""
        self._flush()
        return self._count

    @property
    def zeros(self) -> int:
        """Observations too small for a bucket (at most 1e-12), reported as exactly 0."""
        self._flush()
        return self._zeros

    @property
    def min(self) -> float:
        self._flush()
        return self._min

    @property
    def max(self) -> float:
        self._flush()
        return self._max

    @property
    def mean(self) -> float:
        self._flush()
        return self._mean if self._count else math.nan

    @property
    def std(self) -> float:
        self._flush()
        return math.sqrt(self._m2 / (self._count - 1)) if self._count > 1 else math.nan

    def quantile(self, q: float) -> float:
        """The q-quantile (0 <= q <= 1), within relative accuracy of the order statistic
        of rank ``floor(q * (count - 1))``; NaN when empty."""
        return float(self.quantiles([q])[0])

    def quantiles(self, qs: list[float] | tuple[float, ...] | np.ndarray) -> np.ndarray:
        self._flush()
        qs = np.asarray(qs, dtype=float)
        if np.any((qs < 0) | (qs > 1)):
            raise ValueError("quantile levels must be in [0, 1]")
        if self._count == 0:
            return np.full(qs.shape, math.nan)
        ranks = np.floor(qs * (self._count - 1)).astype(np.int64)
        cumulative = self._zeros + np.cumsum(self._counts)
        bucket = np.searchsorted(cumulative, ranks, side="right")
        index = self._offset + bucket
        values = 2 * self.gamma**index / (self.gamma + 1)
        values = np.where(ranks < self._zeros, 0.0, values)
        return np.clip(values, self._min, self._max)

    def cdf_points(self) -> Iterator[tuple[float, float]]:
        """(upper bucket bound, fraction of observations <= it) for every non-empty bucket."""
        self._flush()
        if self._count == 0:
            return
        cumulative = self._zeros
        for position in np.nonzero(self._counts)[0]:
            cumulative += int(self._counts[position])
            yield self.gamma ** (self._offset + int(position)), cumulative / self._count

    def summary(self) -> dict[str, float]:
        self._flush()
        out = {
            "count": float(self._count),
            "mean": self.mean,
            "std": self.std,
            "min": self._min if self._count else math.nan,
            "max": self._max if self._count else math.nan,
        }
        levels = np.asarray(PERCENTILE_LEVELS) / 100
        for level, value in zip(PERCENTILE_LEVELS, self.quantiles(levels)):
            out[percentile_name(level)] = float(value)
        return out


class Gauge:
    """A level that changes at instants; its mean is weighted by the time spent at each level."""

    def __init__(self, clock: Clock, level: float = 0.0) -> None:
        self._clock = clock
        self.level = float(level)
        self.start = clock.now
        self._last = clock.now
        self._area = 0.0
        self.max = self.level

    def set(self, level: float) -> None:
        now = self._clock.now
        self._area += self.level * (now - self._last)
        self._last = now
        self.level = level
        if level > self.max:
            self.max = level

    def add(self, delta: float) -> None:
        self.set(self.level + delta)

    def reset(self) -> None:
        """Forget the past (end of warm-up): integrate again from now, at the current level."""
        self.start = self._last = self._clock.now
        self._area = 0.0
        self.max = self.level

    def mean(self) -> float:
        now = self._clock.now
        elapsed = now - self.start
        area = self._area + self.level * (now - self._last)
        return area / elapsed if elapsed > 0 else self.level

    def summary(self) -> dict[str, float]:
        return {"mean": self.mean(), "max": float(self.max)}


class Counter:
    """A count of events since the start (or the end of warm-up)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.value: float = 0
        self.start = clock.now

    def inc(self, n: float = 1) -> None:
        self.value += n

    def reset(self) -> None:
        self.value = 0
        self.start = self._clock.now

    def summary(self) -> dict[str, float]:
        elapsed = self._clock.now - self.start
        return {"count": float(self.value), "rate": self.value / elapsed if elapsed > 0 else math.nan}


class Metrics:
    """The metric sink of one simulation: metrics by dotted name, created on first use."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.histograms: dict[str, Histogram] = {}
        self.gauges: dict[str, Gauge] = {}
        self.counters: dict[str, Counter] = {}

    def _check_free(self, name: str, kind: Mapping[str, object]) -> None:
        for other in (self.histograms, self.gauges, self.counters):
            if other is not kind and name in other:
                raise ValueError(f"metric {name!r} already exists as another kind")

    def histogram(self, name: str) -> Histogram:
        if name not in self.histograms:
            self._check_free(name, self.histograms)
            self.histograms[name] = Histogram()
        return self.histograms[name]

    def gauge(self, name: str, level: float = 0.0) -> Gauge:
        if name not in self.gauges:
            self._check_free(name, self.gauges)
            self.gauges[name] = Gauge(self._clock, level)
        return self.gauges[name]

    def counter(self, name: str) -> Counter:
        if name not in self.counters:
            self._check_free(name, self.counters)
            self.counters[name] = Counter(self._clock)
        return self.counters[name]

    def alias(self, alias: str, target: str) -> None:
        """Report metric ``target`` under the name ``alias`` as well (one object, two names).

        For a component whose metric is, in a given wiring, the same quantity as
        another's: it is measured once and appears under both names.
        """
        groups: tuple[dict[str, Any], ...] = (self.histograms, self.gauges, self.counters)
        for group in groups:
            if target in group:
                self._check_free(alias, group)
                if alias in group and group[alias] is not group[target]:
                    raise ValueError(f"metric {alias!r} already exists")
                group[alias] = group[target]
                return
        raise KeyError(f"no metric {target!r} to alias as {alias!r}")

    def reset(self) -> None:
        """End of warm-up: every metric forgets what it saw so far."""
        for group in (self.histograms, self.gauges, self.counters):
            for metric in group.values():
                metric.reset()

    def rows(self) -> list[tuple[str, str, float]]:
        """The tidy table (metric, statistic, value), sorted by metric name."""
        out: list[tuple[str, str, float]] = []
        for group in (self.histograms, self.gauges, self.counters):
            for name, metric in group.items():
                out.extend((name, statistic, value) for statistic, value in metric.summary().items())
        return sorted(out, key=lambda row: row[0])
