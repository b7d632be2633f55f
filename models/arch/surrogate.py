"""Go pods at architecture size: the ``surrogate`` fidelity, each request's time at a pod drawn from the detailed
Go runtime model run once at the pod's load and settings.

Mechanism. A Go service with ``runtime.fidelity: surrogate`` has no runtime of its own in the run. Before it,
its pods' request rate is read off the call graph (:func:`visits`): the workload's mean rate times the
service's expected visits per request (every call of every handler counted with its probability, from the
entry down; retries not counted) over its replicas. The detailed model of one such pod (model kind
``go.service``, :mod:`models.services.go`, at ``fidelity: detailed``: the G/M/P scheduler, netpoll, sysmon, the
collector) runs once under Poisson requests at that rate, its handler the service's CPU steps together
(their CPU, drawn and summed, :data:`MIX_SAMPLES` times: an empirical distribution, and their allocation
with its calibrated CPU), its GOMAXPROCS and collector as the service gives them; its sojourn times'
quantiles (:data:`QUANTILES` levels) are kept. In the run, a request at a pod draws one time from them
(inverse transform, linear between levels) and each CPU step waits its share of it (the step's mean CPU
over the handler's), holding no core; calls are made as the handler says, between them. Pods with the same
handler, settings and rate (to four significant digits) share one detailed run.

What it keeps: the runtime's latency distribution at the pod's mean load (queueing behind the pod's other
requests, the netpoller's batches, the collector's pauses and assists). What it leaves out: the load's
variation in time (bursts, retries and a diurnal curve move the real pod's latency; the draw does not
follow), the correlation between the requests of one pod, and the node's cores (a surrogate pod has
processors of its own, as a fast Go pod on an FCFS node). A drawn time has no parts: the collector's
share is in ``breakdown.runtime_s`` and ``breakdown.gc_s`` is 0 at a surrogate pod (:mod:`models.arch.breakdown`).
Held to the detailed model in ``tests/test_arch.py``: p50 within 5 %, p99 within 10 %.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import networkx as nx
import numpy as np

from sim.core import Environment
from sim.dists import Distribution
from sim.scenario import ScenarioError

if TYPE_CHECKING:
    from models.arch.config import ArchScenario, ServiceConfig

SURROGATE_REQUESTS = 40_000
"""Requests of each detailed run (a tenth of them warm-up): its p99 from 360 requests above it."""
QUANTILES = np.concatenate([np.linspace(0.0, 0.99, 991), np.linspace(0.99, 1.0, 101)[1:]])
"""Levels of the sojourn time kept: every 0.1 % to 99 %, every 0.01 % above."""
DRAW_BLOCK = 1024
"""Draws a pod's sampler makes at a time."""
MIX_SAMPLES = 20_000
"""Draws of the summed CPU steps that make the detailed run's handler."""


def mean_rate(scenario: ArchScenario) -> float:
    """The workload's mean request rate at the edge; ScenarioError for a workload without one (replay, users)."""
    workload = scenario.workload
    if workload.rate is None:
        raise ScenarioError("workload: a surrogate Go pod needs an open workload with a rate (its pods' load is read "
                         "off it)")
    burst = workload.burst
    if burst is None:
        return float(workload.rate)
    on, off = burst.on.mean, burst.off.mean
    return (burst.rate * on + workload.rate * off) / (on + off)


def visits(scenario: ArchScenario) -> dict[str, float]:
    """Expected visits per request at the edge of each service: 1 at the entry, and each call made from a
    service adds the caller's visits times the call's probability (the call graph has no cycle)."""
    graph = scenario.call_graph()
    made: dict[str, float] = dict.fromkeys(scenario.services, 0.0)
    made[scenario.workload.entry] = 1.0
    for caller in nx.topological_sort(graph):
        for step in scenario.services[caller].handler:
            for call in step.calls():
                made[call.service] += made[caller] * call.probability
    return made


class Surrogates:
    """The sojourn-time quantiles of every surrogate Go service of a scenario (one detailed run per distinct
    handler, settings and rate), and a sampler per pod."""

    def __init__(self, scenario: ArchScenario) -> None:
        self._quantiles: dict[str, np.ndarray] = {}
        self.rates: dict[str, float] = {}
        """Each surrogate service's requests per second per pod."""
        chosen = {name: service for name, service in scenario.services.items()
                  if service.runtime is not None and service.runtime.fidelity == "surrogate"}
        if not chosen:
            return
        edge = mean_rate(scenario)
        made = visits(scenario)
        runs: dict[str, np.ndarray] = {}
        for name, service in chosen.items():
            rate = edge * made[name] / service.replicas
            if rate <= 0:
                raise ScenarioError(f"services.{name}: no request reaches it; a surrogate needs its pods' load")
            self.rates[name] = rate
            data = detailed_scenario(name, service, float(f"{rate:.4g}"), scenario.seed)
            key = json.dumps({**data, "name": None}, sort_keys=True, default=str)  # pods alike share a run
            if key not in runs:
                runs[key] = sojourn_quantiles(name, data)
            self._quantiles[name] = runs[key]

    def sampler(self, service: str, env: Environment, stream: str) -> Callable[[], float]:
        """Draws of ``service``'s sojourn time at a pod (inverse transform of its quantiles)."""
        levels = self._quantiles[service]
        rng = env.rng(stream)

        def blocks() -> Iterator[float]:
            while True:
                yield from np.interp(rng.random(DRAW_BLOCK), QUANTILES, levels).tolist()

        return blocks().__next__


def _summed(distributions: list[Distribution], rng: np.random.Generator) -> Any:
    """One distribution's spec, or the empirical distribution of :data:`MIX_SAMPLES` draws of their sum."""
    if len(distributions) == 1:
        return distributions[0].spec()
    total = sum(d.sample(rng, MIX_SAMPLES) for d in distributions)
    return {"dist": "empirical", "values": np.asarray(total).tolist()}


def detailed_scenario(name: str, service: ServiceConfig, rate: float, seed: int) -> dict[str, Any]:
    """The ``go.service`` scenario of one pod of ``service`` at ``rate`` (see the module docstring)."""
    runtime = service.runtime
    assert runtime is not None
    cpu_steps = [step for step in service.handler if step.cpu is not None]
    if not cpu_steps:
        raise ScenarioError(f"services.{name}.handler: a surrogate Go pod needs a cpu step (its time at the pod)")
    rng = np.random.default_rng(seed)
    allocs = [step.alloc for step in cpu_steps if step.alloc is not None]
    handler: dict[str, Any] = {"cpu": _summed([step.cpu for step in cpu_steps if step.cpu is not None], rng)}
    if allocs:
        handler["alloc"] = _summed(allocs, rng)
    data: dict[str, Any] = {
        "name": f"surrogate-{name}", "model": "go.service", "fidelity": "detailed", "seed": seed,
        "arrival_rate": rate, "requests": SURROGATE_REQUESTS, "warmup": 0.1, "gomaxprocs": runtime.gomaxprocs,
        "handler": handler,
    }
    if runtime.gc is not None:
        data["gc"] = runtime.gc.model_dump(exclude_defaults=True)
    return data


def sojourn_quantiles(name: str, data: dict[str, Any]) -> np.ndarray:
    """The sojourn-time quantiles (:data:`QUANTILES`) of one detailed run of ``data``."""
    from sim.scenario import load_kind, load_scenario  # the model kinds import models.arch

    scenario = load_scenario(data)
    if getattr(scenario, "offered_load", 0.0) >= 1.0:
        raise ScenarioError(f"services.{name}: its pods' {data['arrival_rate']:.4g} requests/s ask "
                         f"{scenario.offered_load:.2f} of their GOMAXPROCS {data['gomaxprocs']}: a surrogate needs "
                         "a load the pod can carry")
    env = Environment(seed=scenario.seed, replication=0, scenario=scenario)
    model = load_kind(scenario.model)(env, scenario)
    model.run()
    levels = env.metrics.histogram("requests.sojourn_s").quantiles(QUANTILES)
    if not np.all(np.isfinite(levels)):
        raise ScenarioError(f"services.{name}: the detailed run measured no request")
    return np.maximum.accumulate(levels)

