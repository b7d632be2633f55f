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
"""

from __future__ import annotations

from typing import Any

from sim.sweep_executors import Completions, execute_run, outcome_of

CONNECT_TIMEOUT_S = 10.0
"""How long to try to reach a scheduler before giving up."""
WORKERS_TIMEOUT_S = 30.0
"""How long to wait for a running cluster to have at least one worker."""
RETRIES = 2
"""Further attempts of a task that raised on its worker (not of a run that failed: that is data)."""


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


def on_dask(payloads: list[dict[str, Any]], jobs: int, client: Any = None) -> Completions:
    """Run the payloads on ``client``'s cluster, or on a local cluster of ``jobs`` single-threaded
    worker processes started for them (and stopped after), results as they complete."""
    if client is not None:
        yield from _on_client(client, payloads)
        return
    from distributed import Client

    with Client(n_workers=jobs, threads_per_worker=1, processes=True, set_as_default=False) as local:
        yield from _on_client(local, payloads)


def _on_client(client: Any, payloads: list[dict[str, Any]]) -> Completions:
    """One task per payload (see the module docstring), yielded as they complete. If the consumer stops
    early (Ctrl-C, an error) the runs not finished are cancelled, so the cluster does not go on computing
    runs that nobody will store; the cluster itself is left as it was."""
    from distributed import as_completed

    futures = client.map(execute_run, payloads, pure=False, retries=RETRIES)
    index = {future.key: position for position, future in enumerate(futures)}
    unfinished = set(index)
    try:
        for future in as_completed(futures, loop=client.loop):  # of this client, not the default one
            unfinished.discard(future.key)
            yield index[future.key], outcome_of(future), _running(client, unfinished)
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
