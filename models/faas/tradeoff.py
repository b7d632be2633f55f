"""The cold-start / wasted-memory trade-off of keep-alive policies, as Shahrad et al. plot it (USENIX ATC 2020,
Figures 14 and 15): for each policy, the 3rd quartile over applications of their percentage of cold invocations,
against the memory-time kept loaded while idle, normalised to the fixed 10-minute keep-alive's.

Every policy runs on the same generated workload (:mod:`models.faas.azure`: the same seed and the same named
streams give the same functions and the same invocations), so the comparison is paired replication by
replication. Each function is an Azure application: an instance serves its executions concurrently (Azure
Functions' HTTP ``maxConcurrentRequests`` default, 100 per instance on the Consumption plan,
https://learn.microsoft.com/en-us/azure/azure-functions/functions-bindings-http-webhook-output#hostjson-settings),
so that, as in the paper, an application is loaded or not.
"""

from __future__ import annotations

from dataclasses import dataclass

from sim.run import run_replications
from sim.scenario import load_scenario

AZURE_CONCURRENCY = 100
"""Azure Functions' default maxConcurrentRequests per instance on the Consumption plan (docs above)."""


@dataclass(frozen=True)
class Point:
    """One policy's outcome in one replication."""

    policy: str  # "fixed 10 min", "hybrid"
    replication: int
    cold_pct_p75: float  # 3rd quartile of the functions' cold-start percentage
    wasted_gb_s: float
    requests: float


def policy_template(policy: str) -> dict[str, object]:
    """The function template of ``policy``: ``hybrid`` or ``fixed:SECONDS``."""
    template: dict[str, object] = {"concurrency": AZURE_CONCURRENCY,
                                   "cold_start": {"sandbox": "none", "runtime_start": 0}}
    if policy == "hybrid":
        template["keep_alive_policy"] = "hybrid"
    else:
        kind, _, seconds = policy.partition(":")
        if kind != "fixed" or not seconds:
            raise ValueError(f"policy: {policy!r} is neither 'hybrid' nor 'fixed:SECONDS'")
        template["keep_alive"] = float(seconds)
    return template


def label(policy: str) -> str:
    if policy == "hybrid":
        return "hybrid"
    seconds = float(policy.partition(":")[2])
    return f"fixed {seconds / 3600:g} h" if seconds >= 3600 else f"fixed {seconds / 60:g} min"


def tradeoff(policies: list[str], count: int, days: float, replications: int, seed: int = 5,
             max_rate: float = 1 / 60) -> list[Point]:
    """Each policy's points over ``replications`` runs of ``count`` generated functions for ``days`` days
    (rates clipped at ``max_rate``, once a minute by default: such functions stay loaded under every policy)."""
    points = []
    for policy in policies:
        data = {"model": "faas", "duration": days * 86400, "warmup": 0.0, "seed": seed,
                "replications": replications,
                "azure": {"count": count, "max_rate": max_rate, "template": policy_template(policy)}}
        for index, result in enumerate(run_replications(load_scenario(data)).results):
            points.append(Point(label(policy), index, result.value("functions.cold_pct", "p75"),
                                result.value("instances.wasted_gb_s", "count"),
                                result.value("requests.completed", "count")))
    return points


def below_fixed_curve(hybrid: Point, fixed: list[Point]) -> float:
    """How far (percentage points) ``hybrid`` lies below the piecewise-linear curve through the fixed policies'
    points of the same replication, at its own wasted memory; beyond the curve's ends, against its end point."""
    curve = sorted((p.wasted_gb_s, p.cold_pct_p75) for p in fixed)
    x = hybrid.wasted_gb_s
    if x <= curve[0][0]:
        return curve[0][1] - hybrid.cold_pct_p75
    for (x0, y0), (x1, y1) in zip(curve, curve[1:]):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0) - hybrid.cold_pct_p75
    return curve[-1][1] - hybrid.cold_pct_p75
