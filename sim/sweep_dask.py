"""Sweeps on Dask: a local cluster started for the sweep, or a running cluster the sweep attaches to.

:func:`connect` attaches to a running scheduler by its address (``cnsim sweep
--executor dask --scheduler tcp://host:8786``), within :data:`CONNECT_TIMEOUT_S`
seconds, and waits up to :data:`WORKERS_TIMEOUT_S` for a worker, so that a bad
address or an empty cluster fails at once with a message naming
``--scheduler`` and the address instead of hanging. From Python a
:class:`distributed.Client` can be passed in as it is.

:func:`on_dask` sends each run as one task of :func:`sim.sweep_executors.execute_run`:
the resolved scenario, its replication index and key travel with the task as
plain data, and the rows come back to this process, which alone writes the
store; so workers need cnsim installed and nothing else, no shared disk.

What a lost worker costs: the scheduler hands the runs a worker was running
when it died to the other workers; the runs only queued on the scheduler (Dask
sends a worker little more than it can run at once) lose nothing. A run whose
workers keep dying (one that exhausts a worker's memory, say) is given up after
the scheduler's ``distributed.scheduler.allowed-failures`` deaths (3 by
default) as ``KilledWorker``, recorded in ``failed/`` with the error and
retried by the next sweep. A task that raises is retried :data:`RETRIES` times
(Dask's ``retries=``): :func:`execute_run` turns every failure of the model
into data, which retrying would only repeat, so what raises is the worker's
own trouble (the task cannot be unpickled there, cnsim missing on that worker,
out of memory), which another attempt, maybe on another worker, can get past.

What Dask costs on a small machine, and what is turned off for it: every
Dask worker runs a statistical profiler for its dashboard, which walks the
stack of the running task every 10 ms; a simulation's stacks are deep (SimPy
generators within generators), and that walk took 10-20 % of a worker's CPU
(16 runs of ``mmc``, 30,000 requests each: 444-463 ms of worker CPU a run without it, 496-549 ms
with it; a serial run takes 410-430 ms). And every Dask server (scheduler,
nannies, workers) checks its event loop every 20 ms: with the profiler, an
idle 2-worker cluster kept 11 % of a core busy, without both 3 %. A
sweep that costs 1.15 times serial's CPU cannot beat 2 / 1.15 = 1.74x on
two cores (Dask was measured at 1.56x there, processes at 1.97x:
``bench/README.md``). The local cluster is therefore started with :data:`WORKER_CONFIG`
(the profiler off, the loop checked every second); a running cluster's
workers are their owner's, so the how-to shows how to start them with the
same settings (``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False``...). The progress
bar's count of runs running is asked of the scheduler at most every
:data:`RUNNING_POLL_S` seconds (two round trips; after every run they cost
the client 6 ms a run).
"""

from __future__ import annotations

import time
from typing import Any

from sim.sweep_executors import Completions, execute_run, outcome_of

CONNECT_TIMEOUT_S = 10.0
"""How long to try to reach a scheduler before giving up."""
WORKERS_TIMEOUT_S = 30.0
"""How long to wait for a running cluster to have at least one worker."""
RETRIES = 2
"""Further attempts of a task that raised on its worker (not of a run that failed: that is data)."""
RUNNING_POLL_S = 1.0
"""How often, at most, the scheduler is asked how many runs are running (for the progress bar)."""
WORKER_CONFIG: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
}
"""The Dask settings a local cluster is started with (see the module docstring); as environment
variables for ``dask worker``: :func:`worker_environment`."""


def worker_environment() -> dict[str, str]:
    """:data:`WORKER_CONFIG` as the environment variables Dask reads (``DASK_DISTRIBUTED__...``)."""
    return {"DASK_" + key.upper().replace(".", "__").replace("-", "_"): str(value)
            for key, value in WORKER_CONFIG.items()}


class SchedulerUnreachable(ValueError):
    """The scheduler given cannot be reached, or has no workers."""


def require_distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise RuntimeError("the dask executor needs the distributed package: pip install cnsim[dask]") from None


def connect(address: str) -> Any:
    """A :class:`distributed.Client` of the running scheduler at ``address`` that has a worker.

    Raises :class:`SchedulerUnreachable` (a ``ValueError``, naming ``--scheduler``
    and the address) if the address is malformed, nothing answers within
    :data:`CONNECT_TIMEOUT_S`, or no worker joins within :data:`WORKERS_TIMEOUT_S`.
    """
    timeout_s, workers_timeout_s = CONNECT_TIMEOUT_S, WORKERS_TIMEOUT_S
    require_distributed()
    from distributed import Client
    from distributed.comm import resolve_address

    try:  # checked first: a Client given a malformed address fails, then hangs at exit closing itself
        resolve_address(address)
    except (ValueError, OSError) as error:  # malformed, an unknown scheme, a host name that does not resolve
        raise SchedulerUnreachable(f"--scheduler {address!r}: not a scheduler address ({_first_line(error)})") from None
    try:
        client = Client(address, timeout=timeout_s, set_as_default=False)
    except Exception as error:  # no answer (OSError), or something else than a scheduler on that port
        raise SchedulerUnreachable(
            f"--scheduler {address!r}: no Dask scheduler answered within {timeout_s:g} s ({_first_line(error)})"
        ) from None
    try:
        client.wait_for_workers(1, timeout=workers_timeout_s)
    except (TimeoutError, OSError):
        client.close()
        raise SchedulerUnreachable(
            f"--scheduler {address!r}: the scheduler answers but no worker joined it within {workers_timeout_s:g} s"
        ) from None
    return client


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def local_cluster(workers: int) -> Any:
    """A :class:`distributed.Client` of a new local cluster of ``workers`` single-threaded worker
    processes, started with :data:`WORKER_CONFIG`; closing the client stops the cluster."""
    import dask
    from distributed import Client

    with dask.config.set(WORKER_CONFIG):  # read as the servers start; the nannies pass it to their workers
        return Client(n_workers=workers, threads_per_worker=1, processes=True, set_as_default=False)


def on_dask(payloads: list[dict[str, Any]], jobs: int, client: Any = None) -> Completions:
    """Run the payloads on ``client``'s cluster, or on a :func:`local_cluster` of ``jobs`` workers
    started for them (and stopped after), results as they complete."""
    if client is not None:
        yield from _on_client(client, payloads)
        return
    with local_cluster(jobs) as local:
        yield from _on_client(local, payloads)


def _on_client(client: Any, payloads: list[dict[str, Any]]) -> Completions:
    """One task per payload (see the module docstring), yielded as they complete. If the consumer stops
    early (Ctrl-C, an error) the runs not finished are cancelled, so the cluster does not go on computing
    runs that nobody will store; the cluster itself is left as it was."""
    from distributed import as_completed

    futures = client.map(execute_run, payloads, pure=False, retries=RETRIES)
    index = {future.key: position for position, future in enumerate(futures)}
    unfinished = set(index)
    running, asked_at = 0, -RUNNING_POLL_S
    try:
        for future in as_completed(futures, loop=client.loop):  # of this client, not the default one
            unfinished.discard(future.key)
            now = time.monotonic()
            if now - asked_at >= RUNNING_POLL_S or not unfinished:
                running, asked_at = _running(client, unfinished), now
            yield index[future.key], outcome_of(future), min(running, len(unfinished))
            future.release()
    finally:
        if unfinished:
            client.cancel([future for future in futures if future.key in unfinished])


def _running(client: Any, keys: set[Any]) -> int:
    """How many of ``keys`` are running on workers now, asked of the scheduler; 0 if it cannot say.

    The scheduler counts as processing on a worker a task sent to it, which may
    wait there for a thread, so the count is capped at the workers' threads.
    """
    if not keys:
        return 0
    try:
        processing = client.processing()
        threads = sum(client.nthreads().values())
    except (OSError, TimeoutError):
        return 0
    return min(threads, sum(1 for tasks in processing.values() for key in tasks if key in keys))
