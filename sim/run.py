"""Running a scenario: one replication to a tidy result, replications to estimates with CIs.

Each replication builds a fresh :class:`~sim.core.Environment` whose streams
derive from ``SeedSequence(seed, spawn_key=(replication, ...))``, runs the
model to its end and returns a :class:`RunResult`: a tidy table of
(metric, statistic, value) rows. Estimates across replications are the mean of
each row with a Student-t confidence interval, which is valid because
replications are independent and identically distributed (Law, *Simulation
Modeling and Analysis*, 5th ed., §9.4.1).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from sim.core import Environment, ModelError
from sim.scenario import ScenarioBase, ScenarioError, load_kind, resolved, scenario_key

DEFAULT_CONFIDENCE = 0.95


@dataclass
class RunResult:
    """The outcome of one replication."""

    scenario: dict[str, Any]
    replication: int
    key: str
    rows: list[tuple[str, str, float]]
    wall_s: float
    sim_time_s: float

    def value(self, metric: str, statistic: str) -> float:
        for row_metric, row_statistic, value in self.rows:
            if row_metric == metric and row_statistic == statistic:
                return value
        raise KeyError(f"no statistic {statistic!r} of metric {metric!r} in this result")

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=["metric", "statistic", "value"])
        frame["replication"] = self.replication
        return frame


def run_replication(scenario: ScenarioBase, replication: int = 0) -> RunResult:
    """Build the scenario's model on a fresh environment and run it to its end.

    Bad input found on the way is a :class:`~sim.scenario.ScenarioError`, raised as it is; anything
    else the model raises is a bug in it, raised as a :class:`~sim.core.ModelError` naming the model,
    the replication and the simulated time, caused by the original exception.
    """
    kind = load_kind(scenario.model)
    env = Environment(seed=scenario.seed, replication=replication, scenario=scenario)
    started = time.perf_counter()
    try:
        model = kind(env, scenario)
        model.run()
    except (ScenarioError, ModelError):
        raise
    except Exception as error:
        raise ModelError(
            f"model {scenario.model!r} failed in replication {replication} at {env.now:.9g} s of simulated "
            f"time: {type(error).__name__}: {error}"
        ) from error
    return RunResult(
        scenario=resolved(scenario),
        replication=replication,
        key=scenario_key(scenario, replication),
        rows=env.metrics.rows(),
        wall_s=time.perf_counter() - started,
        sim_time_s=float(env.now),
    )


@dataclass(frozen=True)
class Estimate:
    """The mean of one statistic over replications with its confidence interval."""

    metric: str
    statistic: str
    mean: float
    half_width: float
    n: int
    confidence: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def as_dict(self) -> dict[str, float | int]:
        return {
            "mean": self.mean,
            "ci_low": self.low,
            "ci_high": self.high,
            "half_width": self.half_width,
            "n": self.n,
        }


def t_interval(values: Iterable[float], confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float, int]:
    """(mean, half-width, n) of the Student-t interval; half-width NaN for fewer than 2 values."""
    array = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    n = array.size
    if n == 0:
        return math.nan, math.nan, 0
    mean = float(array.mean())
    if n < 2:
        return mean, math.nan, n
    quantile = scipy_stats.t.ppf((1 + confidence) / 2, n - 1)
    return mean, float(quantile * array.std(ddof=1) / math.sqrt(n)), n


def estimate(results: list[RunResult], confidence: float = DEFAULT_CONFIDENCE) -> list[Estimate]:
    """One :class:`Estimate` per (metric, statistic) present in the results, in table order."""
    grouped: dict[tuple[str, str], list[float]] = defaultdict(list)
    for result in results:
        for metric, statistic, value in result.rows:
            grouped[(metric, statistic)].append(value)
    return [
        Estimate(metric, statistic, *t_interval(values, confidence), confidence=confidence)
        for (metric, statistic), values in grouped.items()
    ]


@dataclass
class Replications:
    """Every replication of a scenario and the estimates drawn from them."""

    scenario: ScenarioBase
    results: list[RunResult]
    confidence: float = DEFAULT_CONFIDENCE
    estimates: list[Estimate] = field(init=False)

    def __post_init__(self) -> None:
        self.estimates = estimate(self.results, self.confidence)

    def get(self, metric: str, statistic: str) -> Estimate:
        for item in self.estimates:
            if item.metric == metric and item.statistic == statistic:
                return item
        raise KeyError(f"no statistic {statistic!r} of metric {metric!r} in these results")

    def to_frame(self) -> pd.DataFrame:
        """Tidy table of the estimates: metric, statistic, mean, ci_low, ci_high, half_width, n."""
        return pd.DataFrame([{"metric": e.metric, "statistic": e.statistic, **e.as_dict()} for e in self.estimates])

    def to_json(self) -> dict[str, Any]:
        metrics: dict[str, dict[str, Any]] = defaultdict(dict)
        for item in self.estimates:
            metrics[item.metric][item.statistic] = item.as_dict()
        return {
            "scenario": resolved(self.scenario),
            "replications": len(self.results),
            "confidence": self.confidence,
            "metrics": dict(metrics),
        }


def run_replications(
    scenario: ScenarioBase,
    replications: int | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    on_done: Callable[[RunResult], None] | None = None,
    jobs: int = 1,
) -> Replications:
    """Run replications 0..R-1 (R from the argument or the scenario): in this process, or with
    ``jobs`` > 1 on that many worker processes (:mod:`sim.parallel_runs`), with the same results."""
    count = scenario.replications if replications is None else replications
    if count < 1:
        raise ValueError(f"replications: must be >= 1 (got {count})")
    if jobs < 1:
        raise ValueError(f"jobs: must be >= 1 (got {jobs})")
    if jobs > 1 and count > 1:
        from sim.parallel_runs import run_in_processes  # it imports this module

        return Replications(scenario, run_in_processes(scenario, count, min(jobs, count), on_done), confidence)
    results: list[RunResult] = []
    for index in range(count):
        try:
            result = run_replication(scenario, index)
        except ModelError as error:
            error.completed = list(results)
            raise
        results.append(result)
        if on_done is not None:
            on_done(result)
    return Replications(scenario, results, confidence)
