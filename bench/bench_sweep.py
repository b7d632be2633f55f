"""Speed-up of a sweep on local processes and on a Dask cluster, against the same sweep run serially.

The sweep: the built-in M/M/1 ``mmc`` at four loads (arrival rate 0.5, 0.6,
0.7, 0.8) × 16 replications = 64 short runs of ``--requests`` requests each,
run in one invocation, each into a fresh store, by:

* ``serial``: in this process, one run after another (the reference);
* ``processes, 1 job``: what ``--jobs 1`` does, which is to run in this
  process (a pool of one would only add a process start);
* ``processes, 2 jobs``: a pool of two spawn-started processes, their start
  included;
* ``dask, 2 workers``: a cluster of two single-threaded worker processes
  started beforehand, as the how-to says to start a running cluster's
  workers (with :data:`sim.sweep_dask.WORKER_CONFIG`: Dask's profiler off),
  and passed in as a client, as a running cluster is (``--scheduler``): the
  use case of issue 18, attaching to a cluster that is up. So the time is the
  sweep's alone; the cluster's start is reported beside it;
* ``dask, 2 workers, Dask's defaults``: the same, its workers started with
  Dask's default settings (the profiler on), to show what they cost;
* ``dask, 2 workers, started by the sweep``: ``--executor dask --jobs 2``,
  the cluster's start and stop included.

Each time is the wall time of :func:`sim.sweep.run_sweep`, from planning to
the last run file written; the table gives it and ``speed-up = serial wall s
/ this wall s``. With ``--rounds N`` every variant runs N times, the variants
interleaved round by round (so a change in the machine's load falls on all of
them), and the table gives each variant's median and every round's speed-up
(against that round's serial time) and their median. Beside the time, the
CPU seconds the sweep cost: this process's and its children's that ended
(the pool's workers, their start included; a cluster started by the sweep),
and for the clusters started beforehand the workers' during the sweep; and
that CPU over serial's. On a busy machine the CPU is the steadier figure: a
variant that needs 1.1 times serial's CPU cannot beat 2 / 1.1 = 1.8x on two
cores. Every variant must store the same run files, byte for byte, which the
last line checks. The target is a speed-up of
at least 1.8 on two cores for the two-process variants, which only a quiet
machine can show.

Not a test: it asserts nothing. ``make bench`` runs it as is::

    python -m bench.bench_sweep                      # 64 runs of 20,000 requests
    python -m bench.bench_sweep --requests 5000      # quick look
    python -m bench.bench_sweep --requests 100000 --rounds 3   # the figures in bench/README.md
    python -m bench.bench_sweep --json bench-sweep.json
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.output import publish
from sim.sweep import expand_grid, parse_grid, run_sweep
from sim.sweep_dask import WORKER_CONFIG

GRID = ["arrival_rate=0.5,0.6,0.7,0.8"]
REPLICATIONS = 16
TARGET_SPEEDUP = 1.8


def cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    """CPU seconds (user and system) of this process, or of its children that ended (``RUSAGE_CHILDREN``)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def timed_sweep(out: Path, requests: int, cpu: list[float], **options: Any) -> float:
    """Wall seconds of the benchmark's sweep into ``out`` with ``options`` for :func:`run_sweep`; the CPU
    seconds of this process and of the processes it started and stopped in that time appended to ``cpu``."""
    cpu_before = cpu_s() + cpu_s(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    report = run_sweep("mmc", expand_grid(parse_grid(GRID)), {"requests": requests}, replications=REPLICATIONS,
                       out_dir=out, progress=False, **options)
    wall_s = time.perf_counter() - started
    cpu.append(cpu_s() + cpu_s(resource.RUSAGE_CHILDREN) - cpu_before)
    if report.ran != report.total or report.failed:
        raise RuntimeError(f"{out}: {report.ran} of {report.total} runs ran, failed: {report.failed}")
    return wall_s


def attached_sweep(out: Path, requests: int, cpu: list[float], config: dict[str, Any], starts: list[float]) -> float:
    """Wall seconds of the sweep on a local cluster of two single-threaded workers started with ``config``
    beforehand and passed in as a client; the cluster's start (not in the time) is appended to ``starts``,
    the CPU seconds of this process (client, scheduler, nannies) and the workers during the sweep to ``cpu``.
    The cluster is up for this variant only, so its idle work does not slow the others."""
    import dask
    from distributed import Client

    started = time.perf_counter()
    with dask.config.set(config):
        client = Client(n_workers=2, threads_per_worker=1, processes=True, set_as_default=False)
    with client:
        client.wait_for_workers(2)
        starts.append(time.perf_counter() - started)
        workers_before = client.run(cpu_s)
        wall_s = timed_sweep(out, requests, cpu, executor="dask", client=client)
        workers_after = client.run(cpu_s)
        cpu[-1] += sum(workers_after[worker] - workers_before[worker] for worker in workers_after)
        return wall_s


def run_files(out: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((out / "runs").glob("*.parquet"))}


def run(requests: int, folder: Path, rounds: int = 1) -> dict[str, Any]:
    """Every variant's wall times and speed-ups, ``rounds`` times, interleaved (see the module docstring)."""
    starts: dict[str, list[float]] = {"tuned": [], "default": []}
    variants: dict[str, Callable[[Path, list[float]], float]] = {
        "serial": lambda out, cpu: timed_sweep(out, requests, cpu, executor="serial"),
        "processes, 1 job": lambda out, cpu: timed_sweep(out, requests, cpu, executor="processes", jobs=1),
        "processes, 2 jobs": lambda out, cpu: timed_sweep(out, requests, cpu, executor="processes", jobs=2),
        "dask, 2 workers": lambda out, cpu: attached_sweep(out, requests, cpu, WORKER_CONFIG, starts["tuned"]),
        "dask, 2 workers, Dask's defaults": lambda out, cpu: attached_sweep(out, requests, cpu, {},
                                                                            starts["default"]),
        "dask, 2 workers, started by the sweep": lambda out, cpu: timed_sweep(out, requests, cpu, executor="dask",
                                                                              jobs=2),
    }
    walls: dict[str, list[float]] = {name: [] for name in variants}
    cpus: dict[str, list[float]] = {name: [] for name in variants}
    loads: list[float] = []
    same = True
    for round_ in range(rounds):
        stores = []
        for index, (name, measure) in enumerate(variants.items()):
            out = folder / f"{round_}-{index}"
            walls[name].append(measure(out, cpus[name]))
            stores.append(run_files(out))
        same = same and all(store == stores[0] for store in stores[1:])
        loads.append(os.getloadavg()[0])
    speedups = {name: [serial / value for serial, value in zip(walls["serial"], values)]
                for name, values in walls.items()}
    return {
        "runs": len(expand_grid(parse_grid(GRID))) * REPLICATIONS,
        "requests": requests,
        "rounds": rounds,
        "wall_s": {name: statistics.median(values) for name, values in walls.items()},
        "wall_s_all": walls,
        "speedup": {name: statistics.median(values) for name, values in speedups.items()},
        "speedup_all": speedups,
        "cpu_s": {name: statistics.median(values) for name, values in cpus.items()},
        "cpu_s_all": cpus,
        "dask_cluster_start_s": statistics.median(starts["tuned"]),
        "dask_defaults_cluster_start_s": statistics.median(starts["default"]),
        "same_run_files": same,
        "load_average_after_each_round": loads,
        "cpus": os.cpu_count(),
        "python": sys.version,
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000, help="requests per run (default 20000)")
    parser.add_argument("--rounds", type=int, default=1, help="times each variant runs, interleaved (default 1)")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds: must be >= 1 (got {args.rounds})")
    with tempfile.TemporaryDirectory(prefix="cnsim-bench-sweep-") as folder:
        got = run(args.requests, Path(folder), args.rounds)
    loads = ", ".join(f"{load:.1f}" for load in got["load_average_after_each_round"])
    lines = [f"sweep of {got['runs']} runs of mmc, {got['requests']:,} requests each, {got['rounds']} round(s); "
             f"{got['cpus']} CPUs, load average after each round: {loads}",
             f"  {'variant':40} {'wall s':>8} {'speed-up':>9} {'CPU s':>7} {'CPU/serial':>10}   each round's speed-up"]
    lines += [f"  {name:40} {wall:8.1f} {got['speedup'][name]:8.2f}x {got['cpu_s'][name]:7.1f} "
              f"{got['cpu_s'][name] / got['cpu_s']['serial']:10.2f}   "
              + " ".join(f"{value:.2f}x" for value in got["speedup_all"][name])
              for name, wall in got["wall_s"].items()]
    lines += [f"  (wall s: the median; the dask clusters took {got['dask_cluster_start_s']:.1f} s and "
              f"{got['dask_defaults_cluster_start_s']:.1f} s to start; target speed-up on 2 cores: {TARGET_SPEEDUP}x)",
              f"  same run files, byte for byte, on every variant: {'yes' if got['same_run_files'] else 'NO'}"]
    return publish(got, "\n".join(lines), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
