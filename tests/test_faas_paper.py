"""Paper check: Shahrad et al., "Serverless in the Wild" (USENIX ATC 2020), Figures 14 and 15: on a workload
drawn from the paper's published distributions, the hybrid histogram policy lies below the trade-off curve of
fixed keep-alive windows (3rd-quartile application cold-start percentage against wasted memory-time)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from models.faas.tradeoff import below_fixed_curve, tradeoff

REPLICATIONS = 4
CONFIDENCE = 0.99


@pytest.mark.slow
def test_hybrid_policy_lies_below_the_fixed_keep_alive_curve():
    """Paired by replication (every policy sees the same functions and invocations): the hybrid point's distance
    below the fixed curve at its own wasted memory, whose mean must exceed zero by more than its one-sided
    Student-t bound at 99 % over the replications."""
    points = tradeoff(["fixed:600", "fixed:1800", "fixed:7200", "hybrid"], count=100, days=3,
                      replications=REPLICATIONS, seed=11)
    margins = []
    for replication in range(REPLICATIONS):
        mine = [p for p in points if p.replication == replication]
        hybrid = next(p for p in mine if p.policy == "hybrid")
        margins.append(below_fixed_curve(hybrid, [p for p in mine if p.policy != "hybrid"]))
    mean, sd = float(np.mean(margins)), float(np.std(margins, ddof=1))
    bound = stats.t.ppf(CONFIDENCE, REPLICATIONS - 1) * sd / math.sqrt(REPLICATIONS)
    assert mean - bound > 0, f"hybrid below the fixed curve by {margins} percentage points (bound {bound:.1f})"
