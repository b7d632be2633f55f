"""Paper check: Shahrad et al., "Serverless in the Wild" (USENIX ATC 2020), Figures 14 and 15: on a workload
drawn from the paper's published distributions, the hybrid histogram policy lies below the trade-off curve of
fixed keep-alive windows (3rd-quartile application cold-start percentage against wasted memory-time); and the
drawn workload has the characteristics the paper's text states (section 3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from models.faas.azure import AzureConfig, draw_functions
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


# -- the workload: what models/faas/azure.py draws against the characterisation's numbers the text states ---------

STATED = {
    # name: (the paper's number, tolerance); the paper's section 3 as M. Shilkov's review quotes it
    # (mikhail.io/2020/05/serverless-in-the-wild-azure-functions-usage-stats/); the orders of magnitude: the abstract
    "apps invoked at most once an hour": (0.45, 0.025),
    "apps invoked at most once a minute": (0.81, 0.035),
    "apps invoked more than once a second": (0.03, 0.01),
    "invocations of the busiest 19 % of apps": (0.995, 0.005),
    "functions triggered by timers": (0.16, 0.01),
    "functions averaging under 100 ms": (0.20, 0.02),
    "functions averaging under 1 s": (0.50, 0.07),
    "functions averaging over 1 min": (0.04, 0.015),
    "orders of magnitude of daily invocations": (8.0, 0.5),
}


def drawn_characteristics(count: int, seed: int) -> dict[str, float]:
    """The stated characteristics of ``count`` functions drawn as the ``azure`` workload draws them (each standing
    for one application, no rate clipped)."""
    functions = draw_functions(AzureConfig(count=count), np.random.default_rng(seed))
    rate = np.array([f.rate for f in functions])
    daily = rate * 86400
    service = np.array([f.service_s for f in functions])
    busiest = np.sort(rate)[::-1][: int(0.19 * count)]
    return {
        "apps invoked at most once an hour": float(np.mean(daily <= 24)),
        "apps invoked at most once a minute": float(np.mean(daily <= 1440)),
        "apps invoked more than once a second": float(np.mean(rate > 1)),
        "invocations of the busiest 19 % of apps": float(busiest.sum() / rate.sum()),
        "functions triggered by timers": float(np.mean([f.timer for f in functions])),
        "functions averaging under 100 ms": float(np.mean(service < 0.1)),
        "functions averaging under 1 s": float(np.mean(service < 1)),
        "functions averaging over 1 min": float(np.mean(service > 60)),
        "orders of magnitude of daily invocations": float(np.log10(daily.max() / daily.min())),
    }


def test_the_drawn_workload_has_the_characteristics_the_paper_states():
    """docs/background/peer-checks.md lists these side by side; with 50,000 functions a fraction's sampling error is
    about 0.002, well inside each tolerance (which is how close cnsim is, not a confidence bound). The busiest 19 %
    of applications must take more than the stated 99.5 % of invocations. Not reproduced, so not here: timers'
    2 % of invocations (drawn: 0.05 %, timers fire at most once a minute)."""
    drawn = drawn_characteristics(50_000, seed=0)
    for name, (stated, tolerance) in STATED.items():
        if name.startswith("invocations of the busiest"):
            assert drawn[name] > stated, f"{name}: drawn {drawn[name]:.4f}, stated > {stated}"
        else:
            assert abs(drawn[name] - stated) <= tolerance, f"{name}: drawn {drawn[name]:.4f}, stated {stated}"
