"""Many functions at once, drawn from the published characterisation of the Azure Functions 2019 trace.

Source: Shahrad et al., "Serverless in the Wild: Characterizing and Optimizing the Serverless Workload at a
Large Cloud Provider", USENIX ATC 2020 (arXiv:2003.03423), section 3, and the figures of the released trace's
analysis notebook (github.com/Azure/AzurePublicDataset, ``analysis/AzureFunctionsDataset2019-Trace_Analysis.md``,
which draws the paper's curves beside the released subset's). Each generated function stands for one
application (54 % of applications have a single function, Figure 1), drawn independently:

* **Invocation rate** (Figure 5(a), average daily invocations per application): a piecewise log-linear CDF
  through the points the text states, 45 % of applications invoked at most once per hour and 81 % at most once
  per minute, and points read off the figure (±0.02): 0 % below one invocation in the trace's 14 days, 20 % at
  most one a day, 97 % at most one a second, 100 % at 100 a second (8 orders of magnitude in all, as the text
  says). ``total_rate`` rescales every drawn rate by one factor (the curve shifts along its log axis, keeping its
  skew) so that they add up to it; ``max_rate`` clips the busiest (applied first).
* **Trigger** (Figure 2): a function is timer-triggered with probability 15.6 % (timers' share of functions);
  a timer fires periodically (CV 0), at a whole number of minutes, its rate drawn as above but at most once a
  minute (95 % of timers fire at most once a minute, section 3.2), with a random phase.
* **Inter-arrival variability** (Figure 6, "All Apps" curve, read off the figure ±0.02: 20 % at CV 0, 58 % at
  most 1, 72 % at most 2, 85 % at most 4, 90.5 % at most 6, 93 % at most 8, 94.5 % at most 10; the text: 40 %
  of applications have a CV above 1): the timers take their 15.6 % at CV 0, and every other function's CV is
  drawn from what is left, (F_all(x) - 0.156) / 0.844; the 5.5 % beyond the plotted range are set to 10.
  Arrivals are a renewal process with gamma gaps of that mean and CV (periodic at CV 0).
* **Execution time** (Figure 7): each function's average execution time from the paper's maximum-likelihood
  log-normal fit, log mean -0.38 and sigma 2.36 (seconds), capped at 600 s, the longest timeout of Azure
  Functions' Consumption plan (https://learn.microsoft.com/en-us/azure/azure-functions/functions-scale,
  "Function app timeout duration"). Within a function every execution takes its average unless
  ``service_cv`` is given (the paper does not publish the spread within a function).
* **Memory** (Figure 8): each application's average allocated memory from the paper's Burr (type XII) fit,
  c = 11.652, k = 0.221, lambda = 107.083 MB, capped at 1.5 GB, the Consumption plan's most memory per
  instance (same page, "Service limits").
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field

from sim.scenario import MAX_COUNT, Rate, ScenarioPart

DAY_S = 86400.0
RATE_CDF = ((1 / 14, 0.0), (1.0, 0.20), (24.0, 0.45), (1440.0, 0.81), (86400.0, 0.97), (8.64e6, 1.0))
"""Figure 5(a): (average daily invocations of an application, fraction of applications invoked at most so)."""
TIMER_SHARE = 0.156
"""Figure 2: the share of functions triggered by timers."""
ALL_APPS_CV_CDF = ((0.0, 0.20), (1.0, 0.58), (2.0, 0.72), (4.0, 0.85), (6.0, 0.905), (8.0, 0.93), (10.0, 0.945),
                   (10.0, 1.0))
"""Figure 6, all applications: (IAT coefficient of variation, fraction with at most it)."""
CV_CDF = tuple((cv, max(0.0, (share - TIMER_SHARE) / (1 - TIMER_SHARE))) for cv, share in ALL_APPS_CV_CDF)
"""The non-timer functions' share: the timers (CV 0) taken out of the all-applications curve."""
EXEC_LOG_MEAN, EXEC_LOG_SIGMA = -0.38, 2.36
"""Figure 7: log-normal fit of the functions' average execution time, seconds."""
EXEC_CAP_S = 600.0
"""Azure Functions Consumption plan: the longest timeout, 10 minutes."""
BURR_C, BURR_K, BURR_LAMBDA_MB = 11.652, 0.221, 107.083
"""Figure 8: Burr XII fit of the applications' average allocated memory, MB."""
MEMORY_CAP_MB = 1536.0
"""Azure Functions Consumption plan: 1.5 GB of memory per instance at most."""


class AzureConfig(ScenarioPart):
    """``count`` functions drawn from the Azure Functions 2019 characterisation (module docstring)."""

    count: int = Field(ge=1, le=MAX_COUNT, description="functions (each standing for one application)")
    total_rate: Rate | None = Field(None, gt=0, description="scale the drawn rates to add up to this; null: as drawn")
    max_rate: Rate | None = Field(None, gt=0, description="clip each drawn rate to this (a function this busy "
                                  "stays loaded under any keep-alive policy: clipping saves simulated requests); "
                                  "null: none")
    service_cv: float = Field(0.0, ge=0, description="coefficient of variation of each function's execution "
                              "times around its average (gamma); 0: constant")
    template: dict[str, Any] = Field(
        default_factory=dict, description="settings of every generated function (a function's fields but "
        "workload; service and memory, if given, replace the drawn ones)")


@dataclass(frozen=True)
class DrawnFunction:
    """One generated function: its trigger, its invocations and its resources."""

    name: str
    timer: bool
    rate: float  # invocations per second
    cv: float  # coefficient of variation of its inter-arrival times
    service_s: float  # average execution time
    memory_mb: float


def _from_cdf(points: tuple[tuple[float, float], ...], u: np.ndarray, log: bool) -> np.ndarray:
    """Inverse of a piecewise linear CDF (in log x when ``log``) at probabilities ``u``."""
    xs = np.array([p[0] for p in points], dtype=float)
    ps = np.array([p[1] for p in points], dtype=float)
    if log:
        return np.exp(np.interp(u, ps, np.log(xs)))
    return np.interp(u, ps, xs)


def draw_functions(config: AzureConfig, rng: np.random.Generator) -> list[DrawnFunction]:
    """The generated functions, drawn from ``rng`` in a fixed order."""
    n = config.count
    timer = rng.random(n) < TIMER_SHARE
    u = rng.random(n)
    timer_top = float(np.interp(math.log(1440.0), np.log([p[0] for p in RATE_CDF]), [p[1] for p in RATE_CDF]))
    daily = _from_cdf(RATE_CDF, np.where(timer, u * timer_top, u), log=True)
    rate = daily / DAY_S
    # a timer's period: a whole number of minutes
    rate = np.where(timer, 1 / (np.maximum(1, np.round(1 / rate / 60)) * 60), rate)
    cv = np.where(timer, 0.0, _from_cdf(CV_CDF, rng.random(n), log=False))
    service = np.minimum(EXEC_CAP_S, rng.lognormal(EXEC_LOG_MEAN, EXEC_LOG_SIGMA, n))
    v = rng.random(n)
    memory = BURR_LAMBDA_MB * ((1 - v) ** (-1 / BURR_K) - 1) ** (1 / BURR_C)
    memory = np.minimum(MEMORY_CAP_MB, memory)
    if config.max_rate is not None:
        rate = np.minimum(rate, config.max_rate)
    if config.total_rate is not None:
        rate = rate * (config.total_rate / rate.sum())
    width = len(str(n - 1))
    return [DrawnFunction(f"azure{i:0{width}d}", bool(timer[i]), float(rate[i]), float(cv[i]), float(service[i]),
                          float(memory[i])) for i in range(n)]


def renewal_times(rate: float, cv: float, rng: np.random.Generator, block: int = 256) -> Iterator[float]:
    """Endless arrival times of a renewal process of ``rate`` whose gaps have coefficient of variation ``cv``
    (gamma; periodic at 0), started at a uniformly random phase of the first gap."""
    mean = 1 / rate
    if cv == 0:
        now = rng.random() * mean
        while True:
            yield now
            now += mean
    shape, scale = 1 / cv**2, mean * cv**2
    gaps = rng.gamma(shape, scale, block)
    now = rng.random() * gaps[0]
    index = 1
    while True:
        yield now
        if index == block:
            gaps, index = rng.gamma(shape, scale, block), 0
        now += gaps[index]
        index += 1
