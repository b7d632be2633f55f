"""The resumable Parquet store of a sweep: run files, failure records, the invocation history, reading it back.

The store under ``out_dir`` is::

    sweep.json            every invocation: source, overrides, points, replications,
                          the resolved base scenario (the configuration kept with the results),
                          the provenance (cnsim version, parameter sets' hashes: sim.provenance)
    runs/<key>.parquet    one file per finished run: the tidy rows plus run columns;
                          in the file's key-value metadata the resolved scenario, the point,
                          the simulated time, and the version and parameter digest of the
                          worker that ran it; nothing of the machine, so the same run gives
                          the same bytes on every executor
    timings.jsonl         one line per run stored: its key, wall time, the worker's host and
                          pid, and when it was stored (a measurement of the machine, not a
                          result: :func:`load_timings`)
    failed/<key>.json     a run that raised: its point, resolved scenario, error and traceback
    failed/<key>.parquet  a run file found broken when resuming, set aside (the run is redone)
    sweep.lock            locked by the sweep writing to the store; holds its pid

Files are written to a temporary name in the same directory and moved into
place with :func:`os.replace`, which is atomic, so an interrupted sweep leaves
only whole files, and a killed one at most a temporary that the next sweep
removes (:func:`remove_temporaries`). Because runs are keyed by content
(:mod:`sim.sweep_plan`), a rerun skips every run whose file is whole
(:func:`broken_run_file`) and retries the failed ones, and sweeps that share
runs share their files. One sweep at a time writes to a store
(:func:`locked`), and only its parent process writes. :func:`load_sweep` reads
every run file back as one tidy frame.

``timings.jsonl`` is appended to, one line in one ``write``, after the run's
file is in place; a killed sweep leaves at most its last line cut short, which
:func:`load_timings` skips. A run redone (a failure retried, a broken file
replaced) gets another line; the last one counts.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sim.sweep_executors import Outcome
from sim.sweep_plan import Run, _compact

RUNS_DIR = "runs"
FAILED_DIR = "failed"
SWEEP_FILE = "sweep.json"
TIMINGS_FILE = "timings.jsonl"
LOCK_FILE = "sweep.lock"
PARAM_PREFIX = "param."
LEGACY_WALL_COLUMN = "wall_s"
"""A column of run files written before the wall time moved to ``timings.jsonl``."""
SCENARIO_METADATA = b"cnsim.scenario"
POINT_METADATA = b"cnsim.point"
SIM_TIME_METADATA = b"cnsim.sim_time_s"
VERSION_METADATA = b"cnsim.version"
PARAMS_METADATA = b"cnsim.params_sha256"


class StoreInUse(ValueError):
    """Another sweep is writing to this store."""


# --- one sweep at a time ----------------------------------------------------------------


@contextmanager
def locked(out_dir: Path) -> Iterator[None]:
    """Hold the store's lock (an exclusive :func:`fcntl.flock` on ``sweep.lock``) for the block.

    Raises :class:`StoreInUse`, naming the directory and the holder's pid, if
    another sweep holds it. The kernel releases the lock when its holder ends,
    however it ends, so a killed sweep leaves no stale lock; the file stays (it
    is never removed, as removing a lock file lets two processes lock two
    different files). Pool workers do not inherit it (Python opens files
    non-inheritable). On Windows, which has no ``flock``, nothing is locked.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    if sys.platform == "win32":
        yield
        return
    import fcntl

    path = out_dir / LOCK_FILE
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 64).decode(errors="replace").strip() or "unknown"
            raise StoreInUse(
                f"{out_dir}: another sweep (pid {holder}) is writing to it; "
                "wait for it to finish or give another directory"
            ) from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(descriptor)


# --- writing ----------------------------------------------------------------------------


def _atomic_write(path: Path, write: Callable[[Path], object]) -> None:
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
    }
    for name, value in run.point.items():
        columns[f"{PARAM_PREFIX}{name}"] = pa.array([_param_value(value)] * n)
    metadata = {
        SCENARIO_METADATA: json.dumps(run.scenario, sort_keys=True),
        POINT_METADATA: json.dumps(run.point, sort_keys=True),
        SIM_TIME_METADATA: repr(float(outcome["sim_time_s"])),
        VERSION_METADATA: outcome["provenance"]["cnsim_version"],
        PARAMS_METADATA: outcome["provenance"]["params_sha256"],
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
        record = {"key": run.key, "point": run.point, "replication": run.replication, "scenario": run.scenario, **error}
        _write_json(failure_path(out_dir, run.key), record)
        first = (error["message"].strip().splitlines() or [""])[0]
        return f"{error['type']}: {first}"
    table = run_table(run, outcome)
    _atomic_write(run_path(out_dir, run.key), lambda target: pq.write_table(table, target))
    failure_path(out_dir, run.key).unlink(missing_ok=True)
    record_timing(out_dir, run.key, outcome)
    return None


def record_timing(out_dir: Path, key: str, outcome: Outcome) -> None:
    """Append run ``key``'s wall time, the worker's host and pid and the time now to ``timings.jsonl``."""
    line = json.dumps({
        "key": key,
        "wall_s": float(outcome["wall_s"]),
        "host": outcome.get("host"),
        "pid": outcome.get("pid"),
        "stored_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }) + "\n"
    descriptor = os.open(out_dir / TIMINGS_FILE, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(descriptor).st_size
        if size and os.pread(descriptor, 1, size - 1) != b"\n":  # a line cut short: end it, keep ours whole
            line = "\n" + line
        os.write(descriptor, line.encode())
    finally:
        os.close(descriptor)


def broken_run_file(path: Path, key: str) -> str | None:
    """Why ``path`` is not the whole run file of run ``key``, or ``None`` if it is.

    A whole file (as :func:`store_run` writes it) has a readable footer that
    declares at least one row, and its ``key`` column reads back with that many
    rows, each holding ``key``. A file cut short (a full disk, a crash of the
    file system, a copy interrupted) has no footer; a file of another run or
    program fails the rest.
    """
    try:
        parquet = pq.ParquetFile(path)
        declared = parquet.metadata.num_rows
        if "key" not in parquet.schema_arrow.names:
            return "no key column"
        keys = parquet.read(columns=["key"]).column("key")
    except (OSError, pa.ArrowException) as error:
        return (str(error).strip().splitlines() or [type(error).__name__])[0]
    if declared < 1:
        return "no rows"
    if len(keys) != declared:
        return f"{len(keys)} rows where its footer declares {declared}"
    others = [other for other in keys.unique().to_pylist() if other != key]
    if others:
        return f"rows of another run (key {others[0]})"
    return None


def set_aside(out_dir: Path, key: str) -> None:
    """Move run ``key``'s broken file to ``failed/<key>.parquet``, replacing an older one."""
    target = out_dir / FAILED_DIR / f"{key}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(run_path(out_dir, key), target)


def remove_temporaries(out_dir: Path) -> None:
    """Remove the temporaries a killed sweep left (see :func:`_atomic_write`); call it holding the lock."""
    for folder in (out_dir, out_dir / RUNS_DIR, out_dir / FAILED_DIR):
        for path in folder.glob(".*.tmp"):
            path.unlink(missing_ok=True)


def stored_scenario(path: str | Path) -> dict[str, Any]:
    """The resolved scenario kept in a run file's metadata."""
    return json.loads(_run_metadata(path, SCENARIO_METADATA))


def stored_provenance(path: str | Path) -> dict[str, str]:
    """The cnsim version and parameter digest of the worker that ran a run, kept in its file's metadata."""
    return {
        "cnsim_version": _run_metadata(path, VERSION_METADATA).decode(),
        "params_sha256": _run_metadata(path, PARAMS_METADATA).decode(),
    }


def _run_metadata(path: str | Path, name: bytes) -> bytes:
    metadata = pq.read_schema(path).metadata or {}
    if name not in metadata:
        raise ValueError(f"{path}: not a cnsim run file (no {name.decode()} in its metadata)")
    return metadata[name]


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
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for entry in history["invocations"]:
        if {k: v for k, v in entry.items() if k != "invoked_at"} == invocation:
            entry.setdefault("invoked_at", []).append(now)
            break
    else:
        history["invocations"].append({**invocation, "invoked_at": [now]})
    _write_json(path, history)


# --- reading ----------------------------------------------------------------------------


def param_columns(frame: pd.DataFrame) -> list[str]:
    """The ``param.*`` columns of a sweep frame, in their order."""
    return [column for column in frame.columns if column.startswith(PARAM_PREFIX)]


def load_sweep(out_dir: str | Path) -> pd.DataFrame:
    """Every run in ``out_dir/runs`` as one tidy frame, sorted by parameters and replication.

    Columns: metric, statistic, value, replication, key, seed and one
    ``param.<key>`` per swept key (missing where a run's sweep did not set it).
    The runs' wall times are in :func:`load_timings` (join on ``key``); the
    ``wall_s`` column of run files written before cnsim kept them apart is
    dropped, so old and new run files read as one frame.
    """
    files = sorted((Path(out_dir) / RUNS_DIR).glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{out_dir}: no runs found (no {RUNS_DIR}/*.parquet); run a sweep into it first")
    frame = _concat([pq.read_table(path) for path in files])
    frame = frame.drop(columns=[LEGACY_WALL_COLUMN], errors="ignore")
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


def load_timings(out_dir: str | Path) -> pd.DataFrame:
    """The wall time of each stored run: one row per key of ``runs/`` with a line in ``timings.jsonl``.

    Columns: key, wall_s (the run's, on its worker, from building the model to
    its end), host and pid (the worker's), stored_at (UTC, ISO 8601). Of a run
    timed more than once (redone) the last line counts; a line cut short (a
    killed sweep) is skipped, and so are the lines of runs whose file is gone.
    Empty (with these columns) if nothing was timed.
    """
    folder = Path(out_dir)
    path = folder / TIMINGS_FILE
    latest: dict[str, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("key"), str):
                latest[entry["key"]] = entry
    stored = {path.stem for path in (folder / RUNS_DIR).glob("*.parquet")}
    rows = [latest[key] for key in sorted(latest) if key in stored]
    return pd.DataFrame(rows, columns=["key", "wall_s", "host", "pid", "stored_at"])
