"""sim.stats: histogram quantiles against exact order statistics, merging,
moments, time-weighted gauges, counters and the warm-up reset."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.core import Environment
from sim.stats import (
    HEADLINE_STATISTICS,
    RELATIVE_ACCURACY,
    Counter,
    Gauge,
    Histogram,
    percentile_name,
)

LEVELS = (0.5, 0.9, 0.99, 0.999)


def data(kind: str, n: int = 200_000, seed: int = 12) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "lognormal":
        return rng.lognormal(np.log(2e-3), 0.9, n)
    if kind == "exponential":
        return rng.exponential(0.05, n)
    if kind == "pareto":  # Lomax (Pareto II) with tail index 1.5: infinite variance
        return 1e-3 * rng.pareto(1.5, n)
    if kind == "spread":  # nine decades of values
        return 10 ** rng.uniform(-6, 3, n)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["lognormal", "exponential", "pareto", "spread"])
def test_quantiles_within_one_percent_of_the_exact_order_statistic(kind: str) -> None:
    """The histogram reports the order statistic of rank floor(q (n-1)), which
    is NumPy's ``method="lower"``, within its relative accuracy (0.5 %); the
    promise checked here is the 1 % of the documentation."""
    values = data(kind)
    histogram = Histogram()
    for value in values[:50_000]:
        histogram.record(float(value))  # the buffered path
    histogram.record_many(values[50_000:])  # the bulk path
    for q in LEVELS:
        exact = np.quantile(values, q, method="lower")
        assert histogram.quantile(q) == pytest.approx(exact, rel=0.01)
        assert abs(histogram.quantile(q) / exact - 1) <= RELATIVE_ACCURACY * (1 + 1e-9)


def test_quantile_rank_is_floor_q_n_minus_1() -> None:
    """Five well separated values: the q-quantile is the sorted value at
    index floor(q * 4), whatever the relative accuracy does inside a bucket."""
    histogram = Histogram()
    values = [1.0, 10.0, 100.0, 1000.0, 10000.0]
    histogram.record_many(values)
    for q, index in [(0.0, 0), (0.24, 0), (0.25, 1), (0.5, 2), (0.74, 2), (0.75, 3), (0.99, 3), (1.0, 4)]:
        assert histogram.quantile(q) == pytest.approx(values[index], rel=RELATIVE_ACCURACY)


def test_zeros_are_counted_and_extremes_kept() -> None:
    histogram = Histogram()
    histogram.record_many([0.0, 0.0, 0.0, 2.0, 3.0])
    assert histogram.quantile(0.0) == 0.0
    assert histogram.quantile(0.5) == 0.0  # rank 2 is the third zero
    assert histogram.quantile(0.75) == pytest.approx(2.0, rel=RELATIVE_ACCURACY)
    assert histogram.quantile(1.0) == pytest.approx(3.0, rel=RELATIVE_ACCURACY)
    assert histogram.quantile(1.0) <= histogram.max
    assert histogram.min == 0.0 and histogram.max == 3.0


def test_merge_equals_the_histogram_of_the_union() -> None:
    a_values, b_values = data("lognormal", 30_000, seed=1), data("pareto", 20_000, seed=2)
    a, b, union = Histogram(), Histogram(), Histogram()
    a.record_many(a_values)
    for value in b_values:
        b.record(float(value))  # left partly in b's buffer on purpose
    union.record_many(np.concatenate([a_values, b_values]))
    a.merge(b)
    levels = np.linspace(0, 1, 1001)
    assert np.array_equal(a.quantiles(levels), union.quantiles(levels))
    assert list(a.cdf_points()) == list(union.cdf_points())
    assert a.count == union.count == 50_000
    assert a.zeros == union.zeros
    assert a.min == union.min and a.max == union.max
    assert a.mean == pytest.approx(union.mean, rel=1e-12)
    assert a.std == pytest.approx(union.std, rel=1e-9)
    assert b.count == 20_000  # the merged-in histogram is unchanged


def test_merge_into_and_from_empty_histograms() -> None:
    values = data("exponential", 1000)
    full, empty = Histogram(), Histogram()
    full.record_many(values)
    before = full.summary()
    full.merge(Histogram())
    assert full.summary() == before
    empty.merge(full)
    assert empty.summary() == before


def test_merge_refuses_another_accuracy() -> None:
    with pytest.raises(ValueError, match="accuracy"):
        Histogram(0.01).merge(Histogram(0.02))


def test_mean_and_std_are_exact() -> None:
    """Moments are kept exactly (Chan et al.'s pairwise update), not from buckets."""
    values = data("lognormal", 100_003)
    histogram = Histogram()
    for chunk in np.array_split(values, 7):
        histogram.record_many(chunk)
    for value in values[:1234]:
        histogram.record(float(value))
    everything = np.concatenate([values, values[:1234]])
    assert histogram.count == everything.size
    assert histogram.mean == pytest.approx(everything.mean(), rel=1e-12)
    assert histogram.std == pytest.approx(everything.std(ddof=1), rel=1e-10)


def test_empty_and_single_value_histograms() -> None:
    histogram = Histogram()
    assert histogram.count == 0
    assert math.isnan(histogram.mean) and math.isnan(histogram.std) and math.isnan(histogram.quantile(0.5))
    histogram.record(0.25)
    assert histogram.mean == 0.25 and math.isnan(histogram.std)
    assert histogram.quantile(0.99) == 0.25


@pytest.mark.parametrize("bad", [-1.0, math.inf, math.nan])
def test_histogram_refuses_negative_and_non_finite_values(bad: float) -> None:
    histogram = Histogram()
    with pytest.raises(ValueError, match="non-negative"):
        histogram.record_many([1.0, bad])


def test_summary_has_the_headline_statistics() -> None:
    histogram = Histogram()
    histogram.record_many(data("exponential", 10_000))
    summary = histogram.summary()
    for name in HEADLINE_STATISTICS + ("std", "min", "max", "p1", "p99.99"):
        assert name in summary
    assert percentile_name(99.9) == "p99.9" and percentile_name(50.0) == "p50"
    assert summary["p50"] <= summary["p90"] <= summary["p99"] <= summary["p99.9"] <= summary["max"]


# --- time-weighted gauges and counters: hand-made stories ---


def test_gauge_mean_is_weighted_by_time(env: Environment, log: list) -> None:
    """Level 0 on [0, 1), 2 on [1, 4), 1 on [4, 5), 3 on [5, 10):
    area 0 + 6 + 1 + 15 = 22 over 10 s, mean 2.2, max 3."""
    gauge = Gauge(env)

    def story(env: Environment):
        yield env.timeout(1)
        gauge.set(2)
        yield env.timeout(3)
        gauge.add(-1)
        yield env.timeout(1)
        gauge.add(2)
        log.append((env.now, gauge.mean()))
        yield env.timeout(5)

    env.process(story(env))
    env.run()
    assert env.now == 10
    assert log == [(5, pytest.approx(7 / 5))]
    assert gauge.mean() == pytest.approx(2.2)
    assert gauge.summary() == {"mean": pytest.approx(2.2), "max": 3.0}


def test_gauge_reset_integrates_again_from_the_current_level(env: Environment) -> None:
    """Level 5 on [0, 2); reset at 2; then 5 on [2, 3) and 1 on [3, 6): mean (5 + 3) / 4."""
    gauge = Gauge(env)

    def story(env: Environment):
        gauge.set(5)
        yield env.timeout(2)
        gauge.reset()
        yield env.timeout(1)
        gauge.set(1)
        yield env.timeout(3)

    env.process(story(env))
    env.run()
    assert gauge.mean() == pytest.approx(8 / 4)
    assert gauge.max == 5


def test_gauge_before_time_passes_reports_its_level(env: Environment) -> None:
    assert Gauge(env, level=3).mean() == 3


def test_counter_rate_is_count_over_elapsed_time(env: Environment) -> None:
    """Four events in 8 s: rate 0.5/s; after a reset at 8, two events in 2 s: 1/s."""
    counter = Counter(env)

    def story(env: Environment):
        for _ in range(4):
            yield env.timeout(2)
            counter.inc()
        assert counter.summary() == {"count": 4.0, "rate": 0.5}
        counter.reset()
        yield env.timeout(1)
        counter.inc(2)
        yield env.timeout(1)

    env.process(story(env))
    env.run()
    assert counter.summary() == {"count": 2.0, "rate": 1.0}


def test_metrics_reset_at_warm_up_forgets_everything_before(env: Environment) -> None:
    """A warm-up of 3 s: what was recorded before the reset does not count."""
    metrics = env.metrics
    latency, busy, drops = metrics.histogram("a.latency_s"), metrics.gauge("a.busy"), metrics.counter("a.drops")

    def story(env: Environment):
        latency.record(100.0)
        busy.set(10)
        drops.inc(7)
        yield env.timeout(3)
        metrics.reset()
        latency.record(1.0)
        latency.record(3.0)
        drops.inc()
        yield env.timeout(2)
        busy.set(0)
        yield env.timeout(2)

    env.process(story(env))
    env.run()
    rows = {(metric, statistic): value for metric, statistic, value in metrics.rows()}
    assert rows[("a.latency_s", "count")] == 2
    assert rows[("a.latency_s", "mean")] == 2.0
    assert rows[("a.latency_s", "max")] == 3.0
    assert rows[("a.busy", "mean")] == pytest.approx(10 * 2 / 4)
    assert rows[("a.drops", "count")] == 1
    assert rows[("a.drops", "rate")] == pytest.approx(1 / 4)


def test_metrics_are_created_once_and_kinds_do_not_collide(env: Environment) -> None:
    metrics = env.metrics
    assert metrics.histogram("x") is metrics.histogram("x")
    with pytest.raises(ValueError, match="'x'"):
        metrics.counter("x")
    with pytest.raises(ValueError, match="'x'"):
        metrics.gauge("x")


def test_rows_are_a_tidy_table_sorted_by_metric(env: Environment) -> None:
    metrics = env.metrics
    metrics.counter("b.count").inc()
    metrics.histogram("a.latency_s").record(1.0)
    rows = metrics.rows()
    assert all(isinstance(m, str) and isinstance(s, str) and isinstance(v, float) for m, s, v in rows)
    names = [m for m, _, _ in rows]
    assert names == sorted(names) and names[0] == "a.latency_s" and names[-1] == "b.count"
