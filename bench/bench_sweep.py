"""Speed-up of a sweep on local processes and on a Dask cluster, against the same sweep run serially.

The sweep: the built-in M/M/1 ``mmc`` at four loads (arrival rate 0.5, 0.6,
0.7, 0.8) × 16 replications = 64 short runs of ``--requests`` requests each,
run in one invocation, each into a fresh store, by:

* ``serial``: in this process, one run after another (the reference);
* ``processes, 1 job``: what ``--jobs 1`` does, which is to run in this
  process (a pool of one would only add a process start);
* ``processes, 2 jobs``: a pool of two spawn-started processes, their start
  included;
* ``dask, 2 workers``: a local cluster of two single-threaded worker
  processes started beforehand and passed in as a client, as a running
  cluster is (``--scheduler``), so the time is the sweep's alone; the
  cluster's start is reported beside it;
* ``dask, 2 workers, started by the sweep``: ``--executor dask --jobs 2``,
  the cluster's start and stop included.

Each time is the wall time of :func:`sim.sweep.run_sweep`, from planning to
the last run file written; the table gives it and ``speed-up = serial wall s
/ this wall s``. Every variant must store the same values (the wall times
aside), which the last line checks. The target is a speed-up of at least 1.8
on two cores for the two-process variants, which only a quiet machine can show.

Not a test: it asserts nothing. ``make bench`` runs it as is::

    python -m bench.bench_sweep                      # 64 runs of 20,000 requests
    python -m bench.bench_sweep --requests 5000      # quick look
    python -m bench.bench_sweep --json bench-sweep.json
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.output import publish
from sim.sweep import expand_grid, load_sweep, parse_grid, run_sweep

GRID = ["arrival_rate=0.5,0.6,0.7,0.8"]
REPLICATIONS = 16
TARGET_SPEEDUP = 1.8


def timed_sweep(out: Path, requests: int, **options: Any) -> float:
    """Wall seconds of the benchmark's sweep into ``out`` with ``options`` for :func:`run_sweep`."""
    started = time.perf_counter()
    report = run_sweep("mmc", expand_grid(parse_grid(GRID)), {"requests": requests}, replications=REPLICATIONS,
                       out_dir=out, progress=False, **options)
    wall_s = time.perf_counter() - started
    if report.ran != report.total or report.failed:
        raise RuntimeError(f"{out}: {report.ran} of {report.total} runs ran, failed: {report.failed}")
    return wall_s


def run(requests: int, folder: Path) -> dict[str, Any]:
    """Every variant's wall time and speed-up (see the module docstring)."""
    from distributed import Client

    variants: dict[str, Callable[[Path], float]] = {
        "serial": lambda out: timed_sweep(out, requests, executor="serial"),
        "processes, 1 job": lambda out: timed_sweep(out, requests, executor="processes", jobs=1),
        "processes, 2 jobs": lambda out: timed_sweep(out, requests, executor="processes", jobs=2),
    }
    walls = {name: measure(folder / f"{index}") for index, (name, measure) in enumerate(variants.items())}
    started = time.perf_counter()
    with Client(n_workers=2, threads_per_worker=1, processes=True, set_as_default=False) as client:
        client.wait_for_workers(2)
        cluster_start_s = time.perf_counter() - started
        walls["dask, 2 workers"] = timed_sweep(folder / "dask", requests, executor="dask", client=client)
    walls["dask, 2 workers, started by the sweep"] = timed_sweep(folder / "dask-own", requests, executor="dask",
                                                                 jobs=2)
    frames = [load_sweep(out) for out in sorted(folder.iterdir())]
    same = all(frame.equals(frames[0]) for frame in frames[1:])
    return {
        "runs": len(expand_grid(parse_grid(GRID))) * REPLICATIONS,
        "requests": requests,
        "wall_s": walls,
        "speedup": {name: walls["serial"] / wall for name, wall in walls.items()},
        "dask_cluster_start_s": cluster_start_s,
        "same_values": same,
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
        "python": sys.version,
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000, help="requests per run (default 20000)")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cnsim-bench-sweep-") as folder:
        got = run(args.requests, Path(folder))
    lines = [f"sweep of {got['runs']} runs of mmc, {got['requests']:,} requests each; "
             f"{got['cpus']} CPUs, load average {got['load_average'][0]:.1f} at the end",
             f"  {'variant':40} {'wall s':>8} {'speed-up':>9}"]
    lines += [f"  {name:40} {wall:8.1f} {got['speedup'][name]:8.2f}x" for name, wall in got["wall_s"].items()]
    lines += [f"  (the dask cluster took {got['dask_cluster_start_s']:.1f} s to start; "
              f"target speed-up on 2 cores: {TARGET_SPEEDUP}x)",
              f"  same values on every variant: {'yes' if got['same_values'] else 'NO'}"]
    return publish(got, "\n".join(lines), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
