"""Parameter sweeps: grids and Latin hypercubes, run on an executor into a resumable Parquet store.

A sweep is a list of *points* (mappings of override keys to values, as
``cnsim run --set`` takes them) applied on top of a base scenario. Each point
is validated up front; then each replication of each point is one *run*, keyed
by :func:`sim.scenario.scenario_key` of its resolved scenario and replication.
:func:`run_sweep` runs every run not yet in the store and writes each as it
finishes, so a rerun skips finished runs and retries failed ones. Only the
parent process writes; workers receive and return plain data (the resolved
scenario as JSON and a replication index), which is what lets the same code run
serially, on a spawn-started process pool or on Dask, with the same seed giving
the same run files, byte for byte, on each (the runs' wall times, which are the
machine's and not results, are kept apart in ``timings.jsonl``).

This module is the public entry; the parts live beside it, one purpose each:

* :mod:`sim.sweep_plan`: points (:func:`parse_grid`, :func:`expand_grid`,
  :func:`latin_hypercube`), their validation and the runs they expand to;
* :mod:`sim.sweep_executors`: the worker function and the serial and
  process-pool executors; :mod:`sim.sweep_dask`: Dask, a local cluster or a
  running one;
* :mod:`sim.sweep_store`: the store's layout (``sweep.json``, ``runs/<key>.parquet``,
  ``failed/<key>.json``, ``timings.jsonl``), its atomic writes, and
  :func:`load_sweep` and :func:`load_timings` to read it.

The names other modules use are importable from here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from sim.dists import Distribution
from sim.provenance import provenance
from sim.scenario import ScenarioError, load_scenario, parse_override, read_source, resolved
from sim.sweep_executors import Executor, choose_executor
from sim.sweep_plan import Point, Run, expand_grid, latin_hypercube, parse_grid, plan_runs, resolve_points
from sim.sweep_store import (
    PARAM_PREFIX,
    StoreInUse,
    broken_run_file,
    load_sweep,
    load_timings,
    locked,
    param_columns,
    record_invocation,
    remove_temporaries,
    run_path,
    set_aside,
    store_run,
    stored_provenance,
    stored_scenario,
)

__all__ = [
    "PARAM_PREFIX",
    "Point",
    "StoreInUse",
    "SweepReport",
    "expand_grid",
    "latin_hypercube",
    "load_sweep",
    "load_timings",
    "param_columns",
    "parse_grid",
    "run_sweep",
    "stored_provenance",
    "stored_scenario",
]


@dataclass
class SweepReport:
    """What a sweep did: runs in the sweep, run now, found done, failed (key, message), and
    found broken in the store, set aside under ``failed/`` and redone (key, why)."""

    total: int
    ran: int
    skipped: int
    failed: list[tuple[str, str]] = field(default_factory=list)
    out_dir: Path = Path(".")
    broken: list[tuple[str, str]] = field(default_factory=list)


def run_sweep(
    source: str | Path | Mapping[str, Any],
    points: list[Point],
    overrides: Mapping[str, Any] | Iterable[str] = (),
    replications: int | None = None,
    jobs: int = 1,
    out_dir: str | Path = "sweep",
    progress: bool = True,
    executor: str = "processes",
    scheduler: str | None = None,
    client: Any = None,
) -> SweepReport:
    """Run every replication of every point that is not already in ``out_dir``.

    ``overrides`` (``key=value`` strings or a mapping) apply to every point;
    ``replications`` defaults to each point's scenario's own. All points are
    validated before anything runs. Runs found whole in the store are skipped;
    a run file found broken (cut short, say) is moved to ``failed/`` and its run
    redone; a run that raises is recorded in ``failed/`` and retried by the next
    invocation. Each finished run is written as soon as it completes, so an
    interrupted sweep keeps what it finished. The store is locked for the
    sweep's life: :class:`StoreInUse` if another sweep is writing to it.

    With ``executor="dask"`` the runs go to a local cluster of ``jobs`` workers
    started for the sweep, or to a running cluster: ``scheduler``, its address
    (connected to, and disconnected from at the end; see
    :func:`sim.sweep_dask.connect`), or ``client``, a
    :class:`distributed.Client` already connected (left open).
    """
    if jobs < 1:
        raise ValueError(f"jobs: must be >= 1 (got {jobs})")
    if scheduler is not None and client is not None:
        raise ValueError("scheduler: give a scheduler's address or a client, not both")
    if scheduler is not None and executor != "dask":
        raise ValueError(f"--scheduler {scheduler!r}: only with --executor dask (got --executor {executor})")
    choose_executor(executor, jobs, client)  # a bad executor fails before anything else
    out = Path(out_dir)
    base = read_source(source)
    base_overrides = _as_overrides(overrides)
    points = [_plain(dict(point)) for point in points]
    runs = plan_runs(resolve_points(base, base_overrides, points), points, replications)
    with ExitStack() as stack:
        if scheduler is not None:
            from sim.sweep_dask import connect

            client = stack.enter_context(connect(scheduler))
        execute = choose_executor(executor, jobs, client)
        stack.enter_context(locked(out))
        record_invocation(out, _invocation(source, base, base_overrides, points, replications, runs))
        remove_temporaries(out)
        broken = _set_aside_broken(out, runs)
        pending = [run for run in runs if not run_path(out, run.key).exists()]
        report = SweepReport(total=len(runs), ran=0, skipped=len(runs) - len(pending), out_dir=out, broken=broken)
        if pending:
            _run_pending(out, pending, execute, jobs, report, progress)
    return report


def _set_aside_broken(out: Path, runs: list[Run]) -> list[tuple[str, str]]:
    """Move each stored run file that is not whole to ``failed/``, so that its run is redone; (key, why) of each."""
    broken = []
    for run in runs:
        path = run_path(out, run.key)
        if not path.exists():
            continue
        reason = broken_run_file(path, run.key)
        if reason is not None:
            set_aside(out, run.key)
            broken.append((run.key, reason))
    return broken


def _as_overrides(overrides: Mapping[str, Any] | Iterable[str]) -> dict[str, Any]:
    if isinstance(overrides, Mapping):
        return _plain(dict(overrides))
    return _plain(dict(parse_override(item) for item in overrides))


def _plain(value: Any) -> Any:
    """JSON data from what a point may hold: distributions become their specs, NumPy scalars Python ones."""

    def default(item: object) -> object:
        if isinstance(item, Distribution):
            return item.spec()
        if isinstance(item, np.generic):
            return item.item()
        raise TypeError(f"{item!r} is not a scenario value")

    return json.loads(json.dumps(value, default=default))


def _invocation(
    source: str | Path | Mapping[str, Any],
    base: dict[str, Any],
    overrides: dict[str, Any],
    points: list[Point],
    replications: int | None,
    runs: list[Run],
) -> dict[str, Any]:
    return {
        "source": base if isinstance(source, Mapping) else str(source),
        "overrides": overrides,
        "points": points,
        "replications": replications,
        "runs": len(runs),
        "base_scenario": _base_scenario(base, overrides),
        "provenance": provenance(),
    }


def _base_scenario(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any] | None:
    """The resolved base scenario, or ``None`` if it is only complete with a point's values."""
    try:
        return resolved(load_scenario(base, overrides))
    except ScenarioError:
        return None


def _run_pending(
    out: Path, pending: list[Run], execute: Executor, jobs: int, report: SweepReport, progress: bool
) -> None:
    """Feed the pending runs to the executor and store each outcome as it arrives."""
    outcomes = execute([run.payload() for run in pending], jobs)
    with tqdm(
        total=report.total, initial=report.skipped, unit="run", desc="sweep", file=sys.stderr, disable=not progress
    ) as bar:
        _show_status(bar, report, running=0)
        try:
            for index, outcome, running in outcomes:
                run = pending[index]
                message = store_run(out, run, outcome)
                if message is None:
                    report.ran += 1
                else:
                    report.failed.append((run.key, message))
                _show_status(bar, report, running)
                bar.update()
        finally:
            outcomes.close()


def _show_status(bar: tqdm, report: SweepReport, running: int) -> None:
    """After the progress bar (which counts runs done, failed included): the runs running on workers,
    the failed ones and the broken run files being redone."""
    counts = {"running": running, "failed": len(report.failed), "broken": len(report.broken)}
    bar.set_postfix({name: count for name, count in counts.items() if count}, refresh=False)
