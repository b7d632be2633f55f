"""Replications of one scenario on the sweep's process pool, results identical to a serial run.

A replication is independent of every other (its streams derive from
``SeedSequence(seed, spawn_key=(replication, ...))``, :mod:`sim.rng`), so it
gives the same rows whichever process runs it. This module sends each
replication as the sweep's plain-data payload (:func:`payload`: the resolved
scenario, the index and the planned key) to the sweep's spawn-started pool
(:func:`sim.sweep_executors.choose_executor`, which also makes the workers die
with this process and stops them when the caller stops early), turns each
outcome back into a :class:`~sim.run.RunResult` (:func:`result_of`) and
returns the results in replication order, so the estimates drawn from them are
the serial ones, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sim.core import ModelError
from sim.run import RunResult
from sim.scenario import ScenarioBase, ScenarioError, resolved, scenario_key
from sim.sweep_executors import choose_executor


def payload(scenario: ScenarioBase, replication: int) -> dict[str, Any]:
    """What a worker needs to run one replication: plain data that pickles cheaply."""
    return {"scenario": resolved(scenario), "replication": replication, "key": scenario_key(scenario, replication)}


def result_of(sent: Mapping[str, Any], outcome: Mapping[str, Any]) -> RunResult:
    """The :class:`~sim.run.RunResult` of a worker's successful ``outcome`` for the payload ``sent``."""
    return RunResult(
        scenario=sent["scenario"], replication=int(sent["replication"]), key=sent["key"],
        rows=[(str(metric), str(statistic), float(value)) for metric, statistic, value in outcome["rows"]],
        wall_s=float(outcome["wall_s"]), sim_time_s=float(outcome["sim_time_s"]),
    )


def failure_of(error: Mapping[str, str], completed: list[RunResult]) -> Exception:
    """The exception a worker's failure stands for: bad input stays a :class:`~sim.scenario.ScenarioError`;
    anything else is a :class:`~sim.core.ModelError` carrying the worker's traceback and, as
    ``completed``, the replications that finished before it."""
    if error["type"] == "ScenarioError":
        return ScenarioError(error["message"])
    head = error["message"] if error["type"] in ("ModelError", "StandstillError") else (
        f"{error['type']}: {error['message']}")
    failed = ModelError(f"{head}\n\nin a worker process:\n{error['traceback']}")
    failed.completed = sorted(completed, key=lambda result: result.replication)
    return failed


def run_in_processes(
    scenario: ScenarioBase, count: int, jobs: int, on_done: Callable[[RunResult], None] | None = None
) -> list[RunResult]:
    """Replications 0..count-1 on ``jobs`` worker processes, in replication order; ``on_done`` is
    called here as each finishes. The first failure stops the pool and is raised (:func:`failure_of`)."""
    sent = [payload(scenario, replication) for replication in range(count)]
    results: list[RunResult] = []
    outcomes = choose_executor("processes", jobs)(sent, jobs)
    try:
        for index, outcome, _running in outcomes:
            if "error" in outcome:
                raise failure_of(outcome["error"], results)
            results.append(result_of(sent[index], outcome))
            if on_done is not None:
                on_done(results[-1])
    finally:
        outcomes.close()
    return sorted(results, key=lambda result: result.replication)
