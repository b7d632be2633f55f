"""Parameter sweeps: grids and Latin hypercubes, run on an executor into a resumable Parquet store.

A sweep is a list of *points* (mappings of override keys to values, as
``cnsim run --set`` takes them) applied on top of a base scenario. Each point
is validated up front; then each replication of each point is one *run*, keyed
by :func:`sim.scenario.scenario_key` of its resolved scenario and replication.
The store under ``out_dir`` is::

    sweep.json            every invocation: source, overrides, points, replications,
                          the resolved base scenario (the configuration kept with the results)
    runs/<key>.parquet    one file per finished run: the tidy rows plus run columns;
                          the resolved scenario in the file's key-value metadata
    failed/<key>.json     a run that raised: its point, error and traceback

Files are written to a temporary name in the same directory and moved into
place with :func:`os.replace`, which is atomic, so an interrupted sweep leaves
only whole files. Because runs are keyed by content, a rerun skips every run
whose file exists and retries the failed ones, and sweeps that share runs share
their files. Only the parent process writes; workers receive and return plain
data (the resolved scenario as JSON and a replication index), which is what
lets the same code run serially, on a spawn-started process pool or on Dask,
with the same seed giving the same values on each.
"""

from __future__ import annotations

import itertools
import json
import math
import multiprocessing
import os
import secrets
import signal
import sys
import traceback
from collections.abc import Callable, Generator, Iterable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from scipy.stats import qmc
from tqdm.auto import tqdm

from sim.dists import Distribution
from sim.run import run_replication
from sim.scenario import (
    ScenarioBase,
    ScenarioError,
    load_scenario,
    parse_override,
    read_source,
    resolved,
    scenario_key,
    validate,
)

RUNS_DIR = "runs"
FAILED_DIR = "failed"
SWEEP_FILE = "sweep.json"
PARAM_PREFIX = "param."
SCENARIO_METADATA = b"cnsim.scenario"
POINT_METADATA = b"cnsim.point"
SIM_TIME_METADATA = b"cnsim.sim_time_s"
EXECUTORS = ("serial", "processes", "dask")

Point = dict[str, Any]
Outcome = dict[str, Any]
Executor = Callable[[list[dict[str, Any]], int], Generator[tuple[int, Outcome], None, None]]


# --- points -----------------------------------------------------------------------------


def parse_grid(items: Iterable[str]) -> dict[str, list[Any]]:
    """``["servers=1,2,4", "arrival_rate=0.5,0.9"]`` -> ``{"servers": [1, 2, 4], "arrival_rate": [0.5, 0.9]}``.

    The values after ``=`` are read as one YAML flow sequence, so each is a YAML
    scalar as in ``--set`` overrides (``1`` an int, ``0.5`` a float, ``2ms`` a
    string) and a value may itself be a flow mapping
    (``service={dist: exp, mean: 1ms},{dist: const, value: 1ms}``).
    """
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise ScenarioError(f"grid item {item!r} must look like key=v1,v2,... (for example servers=1,2,4)")
        if key in grid:
            raise ScenarioError(f"grid item {item!r}: {key} is swept twice")
        try:
            values = yaml.safe_load(f"[{raw}]")
        except yaml.YAMLError as error:
            first = str(error).strip().splitlines()[0]
            raise ScenarioError(f"grid item {item!r}: values are not a comma-separated YAML list: {first}") from None
        if not values:
            raise ScenarioError(f"grid item {item!r}: no values")
        grid[key] = values
    return grid


def expand_grid(grid: Mapping[str, Iterable[Any]]) -> list[Point]:
    """The cartesian product of the grid, keys in the grid's order, the last key varying fastest.

    An empty grid gives one empty point: the base scenario alone.
    """
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(list(grid[key]) for key in keys))]


def latin_hypercube(ranges: Mapping[str, tuple[float, float]], n: int, seed: int) -> list[Point]:
    """``n`` points of a Latin hypercube over ``ranges`` (``key -> (low, high)``).

    Uses :class:`scipy.stats.qmc.LatinHypercube` driven by its own generator
    seeded with ``seed`` (no global state): each range is cut into ``n`` equal
    strata and every stratum of every key holds exactly one point. A range whose
    bounds are both ints gives ints, ``low..high`` inclusive, by flooring the
    same stratified uniforms over ``high - low + 1`` integers.
    """
    if n < 1:
        raise ValueError(f"latin_hypercube: n must be >= 1 (got {n})")
    if not ranges:
        raise ValueError("latin_hypercube: no ranges given")
    for key, (low, high) in ranges.items():
        if not low < high:
            raise ValueError(f"latin_hypercube: range of {key} must have low < high (got {low}, {high})")
    sampler = qmc.LatinHypercube(d=len(ranges), rng=np.random.default_rng(seed))
    unit = sampler.random(n)
    return [
        {key: _scale(u, low, high) for u, (key, (low, high)) in zip(row, ranges.items())}
        for row in unit
    ]


def _scale(u: float, low: float, high: float) -> float | int:
    if isinstance(low, int) and isinstance(high, int) and not isinstance(low, bool):
        return min(high, low + math.floor(u * (high - low + 1)))
    return float(low + u * (high - low))


def describe_point(point: Mapping[str, Any]) -> str:
    """``{"servers": 2, "arrival_rate": 0.5}`` -> ``"servers=2 arrival_rate=0.5"``."""
    return " ".join(f"{key}={_compact(value)}" for key, value in point.items()) or "(base scenario)"


def _compact(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def _plain(value: Any) -> Any:
    """JSON data from what a point may hold: distributions become their specs, NumPy scalars Python ones."""

    def default(item: object) -> object:
        if isinstance(item, Distribution):
            return item.spec()
        if isinstance(item, np.generic):
            return item.item()
        raise TypeError(f"{item!r} is not a scenario value")

    return json.loads(json.dumps(value, default=default))


# --- planning ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One replication of one point, with everything a worker needs as plain data."""

    point: Point
    replication: int
    key: str
    scenario: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "replication": self.replication, "key": self.key}


def _as_overrides(overrides: Mapping[str, Any] | Iterable[str]) -> dict[str, Any]:
    if isinstance(overrides, Mapping):
        return _plain(dict(overrides))
    return _plain(dict(parse_override(item) for item in overrides))


def resolve_points(
    base: Mapping[str, Any], overrides: Mapping[str, Any], points: list[Point]
) -> list[ScenarioBase]:
    """Validate every point on top of ``base`` and ``overrides``; all errors are raised together.

    Each line of the :class:`ScenarioError` names the point, then the field and
    the value that failed, so a bad value stops the sweep before any run starts.
    """
    scenarios: list[ScenarioBase] = []
    errors: list[str] = []
    for point in points:
        try:
            scenarios.append(load_scenario(base, {**overrides, **point}))
        except ScenarioError as error:
            lines = str(error).splitlines()
            errors.extend(f"grid point {describe_point(point)}: {line}" for line in lines)
    if errors:
        shown = list(dict.fromkeys(errors))
        more = len(shown) - 20
        raise ScenarioError("\n".join(shown[:20] + ([f"... and {more} more"] if more > 0 else [])))
    return scenarios


def plan_runs(
    scenarios: list[ScenarioBase], points: list[Point], replications: int | None
) -> list[Run]:
    """Every (point, replication) run, once per distinct key (identical points run once)."""
    if replications is not None and replications < 1:
        raise ValueError(f"replications: must be >= 1 (got {replications})")
    runs: dict[str, Run] = {}
    for scenario, point in zip(scenarios, points):
        data = resolved(scenario)
        count = scenario.replications if replications is None else replications
        for index in range(count):
            key = scenario_key(scenario, index)
            runs.setdefault(key, Run(point, index, key, data))
    return list(runs.values())


# --- the worker -------------------------------------------------------------------------


def execute_run(payload: Mapping[str, Any]) -> Outcome:
    """Validate the resolved scenario again and run one replication; failures come back as data.

    This is what a worker runs. It takes and returns plain JSON-like data, so it
    pickles cheaply and behaves the same in any process. The key is recomputed
    from the re-validated scenario and must match the planned one, which holds
    the worker to the scenario the parent resolved.
    """
    try:
        scenario = validate(payload["scenario"])
        result = run_replication(scenario, int(payload["replication"]))
        if result.key != payload["key"]:
            raise RuntimeError(
                f"the scenario changed on its way to the worker (key {result.key}, planned {payload['key']})"
            )
        return {"rows": [list(row) for row in result.rows], "wall_s": result.wall_s, "sim_time_s": result.sim_time_s}
    except Exception as error:  # a failed run is recorded and the sweep goes on
        return _failure(error)


def _failure(error: BaseException) -> Outcome:
    return {
        "error": {
            "type": type(error).__name__,
            "message": str(error),
            "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__)),
        }
    }


# --- executors --------------------------------------------------------------------------


def _in_process(payloads: list[dict[str, Any]], jobs: int) -> Generator[tuple[int, Outcome], None, None]:
    """Run each payload here, in order."""
    for index, payload in enumerate(payloads):
        yield index, execute_run(payload)


def _ignore_interrupts() -> None:
    """Pool worker initializer: Ctrl-C is the parent's to handle, which then stops the workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _outcome(future: Future) -> Outcome:
    try:
        return future.result()
    except Exception as error:  # the worker died (BrokenProcessPool) or the result did not unpickle
        return _failure(error)


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    """Stop the workers at once (they ignore SIGINT); Python 3.14 has a method for it."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def _in_processes(payloads: list[dict[str, Any]], jobs: int) -> Generator[tuple[int, Outcome], None, None]:
    """A pool of ``jobs`` processes started by *spawn* (a fresh interpreter each; the global
    start method is left alone), results yielded as they complete. If the consumer stops
    early (Ctrl-C, an error) the pending runs are cancelled and the workers terminated."""
    pool = ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_interrupts
    )
    finished = False
    try:
        futures = {pool.submit(execute_run, payload): index for index, payload in enumerate(payloads)}
        for future in as_completed(futures):
            yield futures[future], _outcome(future)
        finished = True
    finally:
        if not finished:
            _terminate_workers(pool)
        pool.shutdown(wait=finished, cancel_futures=True)


def _require_distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise RuntimeError("the dask executor needs the distributed package: pip install cnsim[dask]") from None


def _on_dask(payloads: list[dict[str, Any]], jobs: int) -> Generator[tuple[int, Outcome], None, None]:
    """A local Dask cluster of ``jobs`` single-threaded worker processes, results as they complete."""
    from distributed import Client
    from distributed import as_completed as dask_as_completed

    with Client(n_workers=jobs, threads_per_worker=1, processes=True) as client:
        futures = client.map(execute_run, payloads, pure=False)
        index = {future.key: position for position, future in enumerate(futures)}
        for future in dask_as_completed(futures):
            yield index[future.key], _outcome(future)


def choose_executor(name: str, jobs: int) -> Executor:
    """The executor function for ``name``; ``processes`` with one job runs in this process."""
    if name not in EXECUTORS:
        raise ValueError(f"executor: must be one of {', '.join(EXECUTORS)} (got {name!r})")
    if name == "dask":
        _require_distributed()
        return _on_dask
    if name == "serial" or jobs == 1:
        return _in_process
    return _in_processes


# --- the store --------------------------------------------------------------------------


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through ``write(temporary path)`` in ``path``'s directory, then rename it over ``path``.

    The temporary name starts with a dot and ends in ``.tmp`` so no reader takes
    it for a result, and is unique to the process; it is removed if writing fails
    or is interrupted. Files get the usual permissions (the umask's).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _write_json(path: Path, data: Any) -> None:
    _atomic_write(path, lambda target: target.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n"))


def _param_value(value: Any) -> Any:
    """A point's value as a Parquet cell: scalars as they are, mappings and lists as compact JSON."""
    return _compact(value) if isinstance(value, (dict, list)) else value


def run_table(run: Run, outcome: Outcome) -> pa.Table:
    """The Parquet table of one finished run (see the module docstring)."""
    rows = outcome["rows"]
    n = len(rows)
    columns: dict[str, pa.Array] = {
        "metric": pa.array([row[0] for row in rows], pa.string()),
        "statistic": pa.array([row[1] for row in rows], pa.string()),
        "value": pa.array([float(row[2]) for row in rows], pa.float64()),
        "replication": pa.array([run.replication] * n, pa.int64()),
        "key": pa.array([run.key] * n, pa.string()),
        "seed": pa.array([int(run.scenario["seed"])] * n, pa.int64()),
        "wall_s": pa.array([float(outcome["wall_s"])] * n, pa.float64()),
    }
    for name, value in run.point.items():
        columns[f"{PARAM_PREFIX}{name}"] = pa.array([_param_value(value)] * n)
    metadata = {
        SCENARIO_METADATA: json.dumps(run.scenario, sort_keys=True),
        POINT_METADATA: json.dumps(run.point, sort_keys=True),
        SIM_TIME_METADATA: repr(float(outcome["sim_time_s"])),
    }
    return pa.table(columns).replace_schema_metadata(metadata)


def run_path(out_dir: Path, key: str) -> Path:
    return out_dir / RUNS_DIR / f"{key}.parquet"


def failure_path(out_dir: Path, key: str) -> Path:
    return out_dir / FAILED_DIR / f"{key}.json"


def store_run(out_dir: Path, run: Run, outcome: Outcome) -> str | None:
    """Write a run's Parquet file (and drop an old failure record), or its failure record.

    Returns the one-line error message of a failed run, ``None`` on success.
    """
    if "error" in outcome:
        error = outcome["error"]
        record = {"key": run.key, "point": run.point, "replication": run.replication, **error}
        _write_json(failure_path(out_dir, run.key), record)
        first = (error["message"].strip().splitlines() or [""])[0]
        return f"{error['type']}: {first}"
    table = run_table(run, outcome)
    _atomic_write(run_path(out_dir, run.key), lambda target: pq.write_table(table, target))
    failure_path(out_dir, run.key).unlink(missing_ok=True)
    return None


def stored_scenario(path: str | Path) -> dict[str, Any]:
    """The resolved scenario kept in a run file's metadata."""
    metadata = pq.read_schema(path).metadata or {}
    if SCENARIO_METADATA not in metadata:
        raise ValueError(f"{path}: not a cnsim run file (no scenario in its metadata)")
    return json.loads(metadata[SCENARIO_METADATA])


def record_invocation(out_dir: Path, invocation: dict[str, Any]) -> None:
    """Add this invocation to ``sweep.json``'s list, or only its time if the same sweep is there.

    Earlier invocations (other sweeps into the same directory) are kept: the
    store is keyed by content, so they can share it.
    """
    path = out_dir / SWEEP_FILE
    history: dict[str, Any] = {"invocations": []}
    if path.exists():
        try:
            history = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error}); move it away to start a new history") from None
        if not isinstance(history, dict) or not isinstance(history.get("invocations"), list):
            raise ValueError(f"{path}: not a cnsim sweep file (no list of invocations)")
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for entry in history["invocations"]:
        if {k: v for k, v in entry.items() if k != "invoked_at"} == invocation:
            entry.setdefault("invoked_at", []).append(now)
            break
    else:
        history["invocations"].append({**invocation, "invoked_at": [now]})
    _write_json(path, history)


def _base_scenario(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any] | None:
    """The resolved base scenario, or ``None`` if it is only complete with a point's values."""
    try:
        return resolved(load_scenario(base, overrides))
    except ScenarioError:
        return None


# --- the sweep --------------------------------------------------------------------------


@dataclass
class SweepReport:
    """What a sweep did: runs in the sweep, run now, found done, and failed (key, message)."""

    total: int
    ran: int
    skipped: int
    failed: list[tuple[str, str]] = field(default_factory=list)
    out_dir: Path = Path(".")


def run_sweep(
    source: str | Path | Mapping[str, Any],
    points: list[Point],
    overrides: Mapping[str, Any] | Iterable[str] = (),
    replications: int | None = None,
    jobs: int = 1,
    out_dir: str | Path = "sweep",
    progress: bool = True,
    executor: str = "processes",
) -> SweepReport:
    """Run every replication of every point that is not already in ``out_dir``.

    ``overrides`` (``key=value`` strings or a mapping) apply to every point;
    ``replications`` defaults to each point's scenario's own. All points are
    validated before anything runs. Runs found in the store are skipped; a run
    that raises is recorded in ``failed/`` and retried by the next invocation.
    Each finished run is written as soon as it completes, so an interrupted
    sweep keeps what it finished.
    """
    if jobs < 1:
        raise ValueError(f"jobs: must be >= 1 (got {jobs})")
    execute = choose_executor(executor, jobs)
    out = Path(out_dir)
    base = read_source(source)
    base_overrides = _as_overrides(overrides)
    points = [_plain(dict(point)) for point in points]
    runs = plan_runs(resolve_points(base, base_overrides, points), points, replications)
    record_invocation(out, _invocation(source, base, base_overrides, points, replications, runs))
    pending = [run for run in runs if not run_path(out, run.key).exists()]
    report = SweepReport(total=len(runs), ran=0, skipped=len(runs) - len(pending), out_dir=out)
    if pending:
        _run_pending(out, pending, execute, jobs, report, progress)
    return report


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
    }


def _run_pending(
    out: Path, pending: list[Run], execute: Executor, jobs: int, report: SweepReport, progress: bool
) -> None:
    """Feed the pending runs to the executor and store each outcome as it arrives."""
    outcomes = execute([run.payload() for run in pending], jobs)
    with tqdm(
        total=report.total, initial=report.skipped, unit="run", desc="sweep", file=sys.stderr, disable=not progress
    ) as bar:
        try:
            for index, outcome in outcomes:
                run = pending[index]
                message = store_run(out, run, outcome)
                if message is None:
                    report.ran += 1
                else:
                    report.failed.append((run.key, message))
                    bar.set_postfix(failed=len(report.failed))
                bar.update()
        finally:
            outcomes.close()


# --- reading ----------------------------------------------------------------------------


def param_columns(frame: pd.DataFrame) -> list[str]:
    """The ``param.*`` columns of a sweep frame, in their order."""
    return [column for column in frame.columns if column.startswith(PARAM_PREFIX)]


def load_sweep(out_dir: str | Path) -> pd.DataFrame:
    """Every run in ``out_dir/runs`` as one tidy frame, sorted by parameters and replication.

    Columns: metric, statistic, value, replication, key, seed, wall_s and one
    ``param.<key>`` per swept key (missing where a run's sweep did not set it).
    """
    files = sorted((Path(out_dir) / RUNS_DIR).glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{out_dir}: no runs found (no {RUNS_DIR}/*.parquet); run a sweep into it first")
    frame = _concat([pq.read_table(path) for path in files])
    order = [*param_columns(frame), "replication"]
    try:
        return frame.sort_values(order, kind="stable", ignore_index=True)
    except TypeError:  # a parameter holding values that do not compare (numbers and strings)
        return frame


def _concat(tables: list[pa.Table]) -> pd.DataFrame:
    """One frame from run tables whose parameter columns may differ: Arrow unifies the schemas
    (a column missing from a run, or null in it, becomes missing values of the others' type);
    parameters of conflicting types (a number here, a string there) fall back to object columns."""
    bare = [table.replace_schema_metadata(None) for table in tables]
    try:
        return pa.concat_tables(bare, promote_options="permissive").to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.concat([table.to_pandas() for table in bare], ignore_index=True)
