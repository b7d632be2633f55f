"""When requests arrive at the edge: the open workloads' arrival times (:func:`arrival_times`).

* Poisson at ``rate``: exponential gaps.
* ``burst``: the rate switches to ``burst.rate`` during on-periods (draws of
  ``on``) separated by off-periods (draws of ``off``); within a period
  arrivals are Poisson at that period's rate, restarted at each switch (with
  exponential periods: a two-state Markov-modulated Poisson process).
* ``diurnal``: a non-homogeneous Poisson process of rate
  ``rate (1 + a cos(2 pi (t - peak) / T))``, drawn by thinning (Lewis and
  Shedler 1979): candidates at the peak rate ``rate (1 + a)``, each kept with
  probability ``rate(t) / peak rate``.
* ``replay``: the given arrival times, sorted.
* ``step``: Poisson at ``rate`` until ``step.at``, then at ``step.rate`` (restarted at the step: the
  exponential gaps are memoryless, so this is the piecewise-constant Poisson process).

Closed-loop users are driven by the model itself (:class:`~models.arch.model.ArchModel`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from sim.core import Environment
from sim.dists import Empirical
from models.arch.config import WorkloadConfig


def arrival_times(env: Environment, workload: WorkloadConfig, stream: str = "workload") -> Iterator[float]:
    """Absolute arrival times of an open workload, endless (but for a replay), from the stream
    ``STREAM.arrivals`` (and ``STREAM.bursts`` for the periods); ``stream`` names the workload's streams
    when a model has several (default ``workload``)."""
    rng = env.rng(f"{stream}.arrivals")
    if workload.replay is not None:
        assert isinstance(workload.replay, Empirical)
        yield from (float(t) for t in np.sort(workload.replay.values))
        return
    assert workload.rate is not None
    rate = workload.rate
    now = 0.0
    if workload.burst is not None:
        burst = workload.burst
        periods = env.rng(f"{stream}.bursts")
        draw_on, draw_off = burst.on.sampler(periods), burst.off.sampler(periods)
        bursting, switch = False, draw_off()
        while True:
            current = burst.rate if bursting else rate
            candidate = now + rng.exponential(1 / current)
            if candidate < switch:
                now = candidate
                yield now
            else:
                now, bursting = switch, not bursting
                switch = now + (draw_on() if bursting else draw_off())
    if workload.diurnal is not None:
        curve = workload.diurnal
        peak = rate * (1 + curve.amplitude)
        while True:
            now += rng.exponential(1 / peak)
            level = rate * (1 + curve.amplitude * math.cos(2 * math.pi * (now - curve.peak) / curve.period))
            if rng.random() * peak < level:
                yield now
    step = workload.step
    while step is not None and now < step.at:
        candidate = now + rng.exponential(1 / rate)
        if candidate >= step.at:
            now, rate = step.at, step.rate
            break
        now = candidate
        yield now
    else:
        if step is not None:
            rate = step.rate
    while True:
        now += rng.exponential(1 / rate)
        yield now
