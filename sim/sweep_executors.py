"""Where a sweep's runs execute: the worker function and the serial, process-pool and Dask executors.

:func:`execute_run` is what a worker runs: it takes plain data (the resolved
scenario as JSON, a replication index and the planned key) and returns plain
data (the tidy rows, or the error as data), so it pickles cheaply and behaves
the same in any process. An executor (:func:`choose_executor`) maps it over the
payloads and yields ``(index, outcome, running)`` as they complete, ``running``
being how many runs it has on workers at that moment: here, in order; on a
spawn-started process pool; or on Dask, a local cluster or a running one
(:mod:`sim.sweep_dask`). Because
workers only take and return plain data and only the parent process writes the
store (:mod:`sim.sweep_store`), the same code runs on each executor, with the
same seed giving the same values on each.

A pool worker dies with the process that started it, however that process
ends (Ctrl-C, SIGTERM, SIGKILL, the out-of-memory killer): see
:func:`_die_with_parent`. A local Dask cluster's worker processes do so by
themselves (each exits when a pipe held open by its parent closes); a running
cluster's workers are not ours and stay.
"""

from __future__ import annotations

import ctypes
import functools
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Generator, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from sim.provenance import worker_provenance
from sim.run import run_replication
from sim.scenario import validate

EXECUTORS = ("serial", "processes", "dask")

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_POLL_S = 1.0  # how often a worker without PR_SET_PDEATHSIG checks that its parent lives

Outcome = dict[str, Any]
Completions = Generator[tuple[int, Outcome, int], None, None]
"""``(index of the payload, its outcome, runs still running on workers)`` as runs complete."""
Executor = Callable[[list[dict[str, Any]], int], Completions]


# --- the worker -------------------------------------------------------------------------


def execute_run(payload: Mapping[str, Any]) -> Outcome:
    """Validate the resolved scenario again and run one replication; failures come back as data.

    This is what a worker runs. It takes and returns plain JSON-like data, so it
    pickles cheaply and behaves the same in any process. The key is recomputed
    from the re-validated scenario and must match the planned one, which holds
    the worker to the scenario the parent resolved. A success carries the
    worker's :func:`sim.provenance.worker_provenance` (on a cluster, the
    worker's installation may not be the parent's), and the run's wall time
    with the worker's host and pid, which the store keeps apart from the rows.
    """
    try:
        scenario = validate(payload["scenario"])
        result = run_replication(scenario, int(payload["replication"]))
        if result.key != payload["key"]:
            raise RuntimeError(
                f"the scenario changed on its way to the worker (key {result.key}, planned {payload['key']})"
            )
        return {
            "rows": [list(row) for row in result.rows],
            "wall_s": result.wall_s,
            "sim_time_s": result.sim_time_s,
            "provenance": worker_provenance(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }
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


def _in_process(payloads: list[dict[str, Any]], jobs: int) -> Completions:
    """Run each payload here, in order."""
    for index, payload in enumerate(payloads):
        yield index, execute_run(payload), 0


def _start_worker(parent: int) -> None:
    """Pool worker initializer: Ctrl-C is the parent's to handle, which then stops the workers;
    and the worker dies with its parent (``parent``, its pid)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    """Make this process end when ``parent`` does, even if the parent is killed outright.

    A pool worker outliving its parent would otherwise wait for work forever.
    On Linux the kernel sends SIGKILL to the process when its parent dies
    (``prctl(PR_SET_PDEATHSIG)``). Strictly, when the parent's *thread* that
    started it ends: the pool starts its *spawn* workers from the thread that
    submits the runs, which here is the thread that runs the sweep to its end,
    so a pool must not be handed to another thread. Elsewhere, or if ``prctl``
    fails, a daemon thread polls :func:`os.getppid` every
    :data:`PARENT_POLL_S` seconds. A parent that died before this was set up is
    caught by the check at the end: the process has been adopted already.
    """
    if not _parent_death_signal(signal.SIGKILL):
        threading.Thread(target=_watch_parent, args=(parent, PARENT_POLL_S), name="watch-parent", daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)


def _parent_death_signal(signum: int) -> bool:
    """Ask Linux to send ``signum`` to this process when its parent dies; ``False`` if not on Linux or refused."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int, interval_s: float) -> None:
    """End this process as soon as its parent is no longer ``parent`` (it died and the process was adopted)."""
    while os.getppid() == parent:
        time.sleep(interval_s)
    os._exit(1)


def outcome_of(future: Any) -> Outcome:
    """The outcome a finished future holds; the error as data if it holds an exception instead."""
    try:
        return future.result()
    except Exception as error:  # the worker died (BrokenProcessPool, KilledWorker) or the result did not unpickle
        return _failure(error)


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    """Stop the workers at once (they ignore SIGINT); Python 3.14 has a method for it."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def _in_processes(payloads: list[dict[str, Any]], jobs: int) -> Completions:
    """A pool of ``jobs`` processes started by *spawn* (a fresh interpreter each; the global
    start method is left alone), results yielded as they complete. If the consumer stops
    early (Ctrl-C, an error) the pending runs are cancelled and the workers terminated."""
    pool = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(os.getpid(),),
    )
    finished = False
    try:
        futures = {pool.submit(execute_run, payload): index for index, payload in enumerate(payloads)}
        for future in as_completed(futures):
            running = min(jobs, sum(1 for other in futures if other.running()))
            yield futures[future], outcome_of(future), running
        finished = True
    finally:
        if not finished:
            _terminate_workers(pool)
        pool.shutdown(wait=finished, cancel_futures=True)


def choose_executor(name: str, jobs: int, client: Any = None) -> Executor:
    """The executor function for ``name``; ``processes`` with one job runs in this process.

    ``client``, a :class:`distributed.Client` connected to a running cluster, is
    for ``dask`` only; without it, ``dask`` starts a local cluster of ``jobs`` workers.
    """
    if name not in EXECUTORS:
        raise ValueError(f"executor: must be one of {', '.join(EXECUTORS)} (got {name!r})")
    if name == "dask":
        from sim.sweep_dask import on_dask, require_distributed

        require_distributed()
        return functools.partial(on_dask, client=client)
    if client is not None:
        raise ValueError(f"executor: a Dask client or scheduler needs executor 'dask' (got {name!r})")
    if name == "serial" or jobs == 1:
        return _in_process
    return _in_processes
