"""Fits of the machine harness's data (``machine_*.csv``) into ``machine.*`` parameter sets.

* ``machine.work_stretch``: wall time of the validation server's burn loop over
  the CPU time it was calibrated to (``machine_work.csv``): how much longer
  than its CPU time fixed work takes on this machine (the burn's calibration
  error, interrupts, a virtual CPU's steal). A distribution fitted like every
  other (:func:`calibration.distfit.fit_distribution`).
* ``machine.<runtime>_wake_s_vs_idle`` (``go``, ``node``): the round trip of
  an empty request to that runtime's validation server over its median on a
  server that was busy less than :data:`HOT_IDLE_S` before, grouped by how
  long the server had been idle (``machine_wake.csv``): a halted CPU and
  parked threads on both sides of the loopback take longer to wake the longer
  they slept. Kind ``binned``: per range of idle time, the
  delays as :data:`WAKE_QUANTILES` evenly spaced quantiles (an empirical
  distribution; the delay has no parametric family we could defend, and its
  tail is what p99 needs).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from calibration.dataset import Dataset, seed_of
from calibration.distfit import fit_distribution

HOT_IDLE_S = 1e-4
"""Requests that find the server idle for less than this are the reference (a hot path, no wake-up)."""
WAKE_EDGES_S = (0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
"""Ranges of idle time of ``machine.<runtime>_wake_s_vs_idle`` (s); the last range is open."""
WAKE_QUANTILES = 200
WAKE_MIN_SAMPLES = 30
"""A range with fewer requests than this takes the distribution of the range below it."""


def machine_observations(name: str, data: Dataset) -> pd.DataFrame:
    """The samples behind machine parameter set ``name`` (see :func:`calibration.fit.observations`)."""
    if name == "machine.work_stretch":
        frame = data.frame("machine_work.csv")
        return pd.DataFrame({"x": frame["idle_s"].to_numpy(), "y": (frame["wall_s"] / frame["burn_s"]).to_numpy()})
    if name.endswith("_wake_s_vs_idle"):
        runtime = name.removeprefix("machine.").removesuffix("_wake_s_vs_idle")
        frame = _wake_frame(data, runtime)
        delay = np.maximum(frame["latency_s"].to_numpy() - float(_hot(frame, runtime).median()), 0.0)
        return pd.DataFrame({"x": frame["idle_s"].to_numpy(), "y": delay,
                             "group": frame["rate_rps"].astype(str).to_numpy() + " req/s"})
    raise KeyError(f"no observations known for parameter set {name!r}")


def _wake_frame(data: Dataset, runtime: str) -> pd.DataFrame:
    """``runtime``'s requests of ``machine_wake.csv`` that have an idle time (all but each run's first)."""
    frame = data.frame("machine_wake.csv").dropna(subset=["idle_s"])
    return frame[frame["runtime"] == runtime]


def _hot(frame: pd.DataFrame, runtime: str) -> pd.Series:
    """The reference round trips: requests that found the server idle for less than :data:`HOT_IDLE_S`."""
    hot = frame.loc[frame["idle_s"] < HOT_IDLE_S, "latency_s"]
    if hot.size < WAKE_MIN_SAMPLES:
        raise ValueError(f"machine_wake.csv: {hot.size} requests found the {runtime} server idle for less than "
                         f"{HOT_IDLE_S * 1e6:.0f} µs, too few for a reference (need {WAKE_MIN_SAMPLES})")
    return hot


def _idle_ranges(points: pd.DataFrame) -> Iterator[tuple[float, float | None, pd.Series]]:
    """Per range of :data:`WAKE_EDGES_S`: (its start, its end or None for the open last one, the ``y`` in it)."""
    edges = [*WAKE_EDGES_S, np.inf]
    for low, high in zip(edges[:-1], edges[1:]):
        yield low, None if np.isinf(high) else high, points.loc[(points["x"] >= low) & (points["x"] < high), "y"]


def fit_machine_work(data: Dataset) -> list[dict[str, Any]]:
    name = "machine.work_stretch"
    points = machine_observations(name, data)
    frame = data.frame("machine_work.csv")
    result = fit_distribution(points["y"].to_numpy(), np.random.default_rng(seed_of(name)))
    result["fit"].update({
        "bootstrap_seed": seed_of(name),
        "samples": "burn loops after idle gaps drawn log-uniformly up to the harness's longest (a quarter back "
                   "to back), one thread locked to CPU 0",
        "mean_ratio": float(points["y"].mean()),
        "cpu_over_burn_mean": float((frame["cpu_s"] / frame["burn_s"]).mean()),
        "mean_ratio_by_idle": [{"idle_from_s": low, "idle_to_s": high, "n": int(y.size), "mean": float(y.mean()),
                                "p99": float(y.quantile(0.99))} for low, high, y in _idle_ranges(points) if y.size],
    })
    return [{**data.header(name, "Wall time of fixed CPU work (the validation server's burn loop, calibrated "
                           "against the thread CPU clock to take 1 ms) over that 1 ms: what a CPU demand costs "
                           "in wall time on this machine", "1", "machine_work.csv", "distribution"), **result}]


def fit_machine_wake(data: Dataset) -> list[dict[str, Any]]:
    runtimes = sorted(data.frame("machine_wake.csv")["runtime"].unique())
    return [_fit_wake(data, runtime) for runtime in runtimes]


SERVERS = {"go": "Go valserver, GOMAXPROCS 1", "node": "Node.js valserver.js"}


def _fit_wake(data: Dataset, runtime: str) -> dict[str, Any]:
    name = f"machine.{runtime}_wake_s_vs_idle"
    points = machine_observations(name, data)
    levels = (np.arange(WAKE_QUANTILES) + 0.5) / WAKE_QUANTILES
    distributions, bins = [], []
    for low, high, in_range in _idle_ranges(points):
        y = in_range.to_numpy()
        row: dict[str, Any] = {"idle_from_s": low, "idle_to_s": high, "n": int(y.size)}
        if y.size >= WAKE_MIN_SAMPLES:
            values = np.quantile(y, levels)
            row.update({"median_s": float(np.median(y)), "p90_s": float(np.quantile(y, 0.9)),
                        "p99_s": float(np.quantile(y, 0.99)),
                        "ks_statistic": float(scipy_stats.ks_2samp(y, values).statistic)})
            distributions.append({"dist": "empirical", "values": [float(v) for v in values]})
        elif distributions:
            row["note"] = f"fewer than {WAKE_MIN_SAMPLES} requests: the range below's distribution"
            distributions.append(distributions[-1])
        else:
            raise ValueError(f"machine_wake.csv: {y.size} requests with idle time in [{low}, {high}) s, "
                             f"need {WAKE_MIN_SAMPLES}")
        bins.append(row)
    hot = _hot(_wake_frame(data, runtime), runtime)
    return {
        **data.header(name, "Extra round-trip time of a request that finds the server idle, by how long it had "
                      f"been idle: an empty HTTP/1.1 request on a reused loopback connection ({SERVERS[runtime]} "
                      "on CPU 0; open-loop valload on CPU 1) less the median round trip of requests that found "
                      f"it idle for less than {HOT_IDLE_S * 1e6:.0f} µs, floored at 0", "s",
                      "machine_wake.csv", "binned"),
        "x": "idle_s",
        "edges": [float(edge) for edge in WAKE_EDGES_S],
        "distributions": distributions,
        "fit": {"method": f"per range of idle time, {WAKE_QUANTILES} evenly spaced quantiles of the delays "
                          "(an empirical distribution)", "n": int(len(points)),
                "reference_median_s": float(hot.median()), "reference_n": int(hot.size), "bins": bins},
        "goodness_of_fit": {"test": "Kolmogorov-Smirnov distance between each range's delays and its quantiles",
                            "statistic": max(row.get("ks_statistic", 0.0) for row in bins)},
    }

