"""Keep-alive policies: when an instance goes idle, how long it is kept, and whether and when to pre-warm one.

A policy answers :meth:`KeepAlivePolicy.windows` with a :class:`Windows` (``prewarm_s``, ``keep_alive_s``):

* ``prewarm_s == 0``: the idle instance stays loaded for ``keep_alive_s``, then is unloaded (a fixed keep-alive).
* ``prewarm_s > 0``: the idle instance is unloaded at once; ``prewarm_s`` later a new instance is started
  (pre-warmed, off any request's path) and kept loaded for ``keep_alive_s`` from then, unless a request came
  first (:class:`~models.faas.platform.FunctionPool` does the unloading and the pre-warming).

Policies that learn are told every invocation's **idle time** (:meth:`KeepAlivePolicy.observe`): the time from
the end of the function's last execution to the invocation, 0 when an execution was still in progress.

* :class:`FixedKeepAlive`: the same window after every execution (the ``keep_alive`` field, 10 minutes by
  default), no pre-warming.
* :class:`HybridHistogram`: the hybrid histogram policy of Shahrad et al., "Serverless in the Wild:
  Characterizing and Optimizing the Serverless Workload at a Large Cloud Provider", USENIX ATC 2020, section
  4.2 (arXiv:2003.03423): a per-application histogram of idle times in 1-minute bins over a 4-hour range; the
  pre-warm window is the histogram's head (5th percentile, rounded down to its bin's start, less a 10 %
  margin), the keep-alive window reaches the tail (99th percentile, rounded up to its bin's end, plus a 10 %
  margin) from there. Two fallbacks:

  - **not representative**: fewer than ``min_samples`` idle times, or a coefficient of variation of the bin
    counts below ``cv_threshold`` (a flat histogram has no head or tail to learn): the standard keep-alive,
    no pre-warming and the histogram's range (4 hours) as keep-alive.
  - **out of bounds**: more than ``oob_threshold`` of the idle times beyond the range: the paper forecasts the
    next idle time with ARIMA; here an AR(1) model (ARIMA(1,0,0), the family's simplest member) fitted by
    least squares on the whole series of idle times, kept as running sums (constant memory and time per
    invocation, where refitting an ARIMA at each invocation would cost more than the simulation itself and
    needs a dependency cnsim does not have). Pre-warm at the forecast less a 15 % margin, keep alive for 30 %
    of it (the forecast plus or minus 15 %).

  Values the paper does not state are taken from dslab's implementation of the policy
  (``crates/dslab-faas/src/extra/hybrid_histogram.rs`` and ``examples/serverless-in-the-wild/src/main.rs``
  in github.com/osukhoroslov/dslab: ``cv_thr`` 2.0, ``oob_thr`` 0.5, ``arima_margin`` 0.15); ``min_samples``
  20 is 1 / 0.05, the fewest idle times for which the 5th percentile is not simply the smallest one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Windows:
    """A policy's decision for an instance going idle now (seconds)."""

    prewarm_s: float
    keep_alive_s: float


class KeepAlivePolicy(Protocol):
    """What :class:`~models.faas.platform.FunctionPool` asks of a keep-alive policy."""

    learns: bool
    """Whether :meth:`observe` does anything (the pool skips it otherwise)."""

    def observe(self, idle_s: float) -> None:
        """An invocation arrived ``idle_s`` seconds after the function's last execution ended."""

    def windows(self) -> Windows:
        """The pre-warm and keep-alive windows for an instance going idle now."""


class FixedKeepAlive:
    """The same keep-alive after every execution, no pre-warming."""

    learns = False

    def __init__(self, keep_alive_s: float) -> None:
        self.decision = Windows(0.0, keep_alive_s)

    def observe(self, idle_s: float) -> None:
        """A fixed policy learns nothing."""

    def windows(self) -> Windows:
        return self.decision


class ArOne:
    """One-step forecast of a series by an AR(1) model, ``x[t+1] = a + b x[t]``, fitted by least squares from
    running sums (so each new value costs O(1)); the mean while fewer than three values are known."""

    __slots__ = ("n", "sum_x", "sum_y", "sum_xx", "sum_xy", "last")

    def __init__(self) -> None:
        self.n = 0  # pairs (x[t], x[t+1]) seen
        self.sum_x = self.sum_y = self.sum_xx = self.sum_xy = 0.0
        self.last: float | None = None

    def add(self, value: float) -> None:
        if self.last is not None:
            self.n += 1
            self.sum_x += self.last
            self.sum_y += value
            self.sum_xx += self.last * self.last
            self.sum_xy += self.last * value
        self.last = value

    def forecast(self) -> float:
        if self.last is None:
            return 0.0
        if self.n < 2:
            return self.sum_y / self.n if self.n else self.last
        n = self.n
        denominator = n * self.sum_xx - self.sum_x**2
        if denominator <= 1e-12 * max(1.0, n * self.sum_xx):
            return self.sum_y / n  # a constant series: its value
        slope = (n * self.sum_xy - self.sum_x * self.sum_y) / denominator
        intercept = (self.sum_y - slope * self.sum_x) / n
        return max(0.0, intercept + slope * self.last)


class HybridHistogram:
    """The hybrid histogram policy (module docstring); one per application (here: per function)."""

    learns = True

    def __init__(self, range_s: float = 4 * 3600.0, bin_s: float = 60.0, head: float = 0.05, tail: float = 0.99,
                 margin: float = 0.10, cv_threshold: float = 2.0, min_samples: int = 20,
                 oob_threshold: float = 0.5, forecast_margin: float = 0.15) -> None:
        self.bins = max(1, round(range_s / bin_s))
        self.bin_s = bin_s
        self.range_s = self.bins * bin_s
        self.head, self.tail, self.margin = head, tail, margin
        self.cv_threshold, self.min_samples = cv_threshold, min_samples
        self.oob_threshold, self.forecast_margin = oob_threshold, forecast_margin
        self.counts = np.zeros(self.bins, dtype=np.int64)
        self.in_range = 0
        self.sum_squares = 0  # sum of the squared bin counts, for their variance
        self.out_of_bounds = 0
        self.series = ArOne()
        self.standard = Windows(0.0, self.range_s)
        self.decision: Windows | None = None  # cached until the next observation
        self.mode = "standard"

    def observe(self, idle_s: float) -> None:
        self.series.add(idle_s)
        self.decision = None
        index = int(idle_s // self.bin_s)
        if index >= self.bins:
            self.out_of_bounds += 1
            return
        count = int(self.counts[index])
        self.counts[index] = count + 1
        self.sum_squares += 2 * count + 1
        self.in_range += 1

    def bin_cv(self) -> float:
        """Coefficient of variation of the bin counts (sample standard deviation over the mean), 0 if empty."""
        if self.in_range == 0:
            return 0.0
        n = self.bins
        mean = self.in_range / n
        variance = max(0.0, (self.sum_squares - n * mean * mean) / (n - 1)) if n > 1 else 0.0
        return math.sqrt(variance) / mean

    def windows(self) -> Windows:
        if self.decision is None:
            self.decision = self._decide()
        return self.decision

    def _decide(self) -> Windows:
        total = self.in_range + self.out_of_bounds
        if total < self.min_samples:
            self.mode = "standard"
            return self.standard
        if self.out_of_bounds > self.oob_threshold * total:
            self.mode = "forecast"
            predicted = self.series.forecast()
            return Windows((1 - self.forecast_margin) * predicted, 2 * self.forecast_margin * predicted)
        if self.bin_cv() < self.cv_threshold:
            self.mode = "standard"
            return self.standard
        self.mode = "histogram"
        cumulative = np.cumsum(self.counts)
        head_bin = int(np.searchsorted(cumulative, self.head * self.in_range, side="left"))
        tail_bin = int(np.searchsorted(cumulative, self.tail * self.in_range, side="left"))
        prewarm = head_bin * self.bin_s * (1 - self.margin)
        tail = (tail_bin + 1) * self.bin_s * (1 + self.margin)
        return Windows(prewarm, tail - prewarm)
