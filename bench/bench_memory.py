"""Memory of one long run: peak resident memory against the number of requests simulated.

A run's metrics stream into log-bucketed histograms, time-weighted gauges and
counters (:mod:`sim.stats`), and no model on the path of the built-in
queueing scenarios keeps anything per request once it has left, so a run of
10^8 requests should need the memory of a run of 10^5. This benchmark runs
``--scenario`` (default ``mmc``: the built-in M/M/1 at load 0.9) for each of
``--sizes`` requests, one replication each, **each in a fresh Python process**
(``ru_maxrss`` is a high-water mark: only a process of its own gives a size's
peak), and reports per size the wall time, the peak resident memory of that
process, what the run added to it (peak after the run less peak once the
scenario was loaded, imports included), the mean and p99 sojourn time (which
should settle, not drift) and the growth of the peak from the previous size.
Flat memory shows as a growth near zero however many requests were added.

A size runs as one replication in one process, so it takes one core, and
``nice`` or a busy machine stretch its wall time but not its peak memory.

Not a test: it asserts nothing. ``make bench`` runs the default sizes; the claim of
issue 18 is checked with::

    python -m bench.bench_memory                                   # 10^5, 10^6 requests of mmc
    python -m bench.bench_memory --sizes 1e6,1e7,1e8               # the long runs
    nice -n 19 python -m bench.bench_memory --sizes 1e8 --json m.json   # 10^8 alone: 40-80 min of one core
    python -m bench.bench_memory --scenario tandem --scenario go-http-service --sizes 1e4,1e5,1e6
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.output import publish

DEFAULT_SIZES = (100_000, 1_000_000)


def measure_here(scenario_name: str, requests: int) -> dict[str, Any]:
    """One replication of ``scenario_name`` with ``requests`` requests in this process, and its memory."""
    from sim.run import run_replication
    from sim.scenario import load_scenario

    scenario = load_scenario(scenario_name, {"requests": requests})
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    result = run_replication(scenario)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "scenario": scenario_name,
        "requests": requests,
        "wall_s": wall,
        "peak_rss_bytes_before": float(before),
        "peak_rss_bytes": float(peak),
        "run_added_bytes": float(peak - before),
        "recorded": result.value("requests.sojourn_s", "count"),
        "mean_s": result.value("requests.sojourn_s", "mean"),
        "p99_s": result.value("requests.sojourn_s", "p99"),
    }


def measure_in_child(scenario_name: str, requests: int) -> dict[str, Any]:
    """:func:`measure_here` in a fresh interpreter, so that its peak is its own."""
    command = [sys.executable, "-m", "bench.bench_memory", "--child", scenario_name, str(requests)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def measure(scenarios: list[str], sizes: list[int]) -> dict[str, Any]:
    runs = []
    for name in scenarios:
        previous = None
        for requests in sizes:
            row = measure_in_child(name, requests)
            row["growth_from_previous_bytes"] = None if previous is None else row["peak_rss_bytes"] - previous
            previous = row["peak_rss_bytes"]
            runs.append(row)
    return {"runs": runs, "python": sys.version.split()[0], "machine": platform.platform()}


def report(numbers: dict[str, Any]) -> str:
    mib = 2**20
    lines = [
        f"{'scenario':<16} {'requests':>13} {'wall s':>8} {'req/wall s':>11} {'peak RSS MiB':>13} "
        f"{'run added MiB':>14} {'growth MiB':>11} {'mean s':>9} {'p99 s':>9}",
    ]
    for row in numbers["runs"]:
        growth = row["growth_from_previous_bytes"]
        lines.append(
            f"{row['scenario']:<16} {row['requests']:>13,} {row['wall_s']:>8.1f} "
            f"{row['requests'] / row['wall_s']:>11,.0f} {row['peak_rss_bytes'] / mib:>13.1f} "
            f"{row['run_added_bytes'] / mib:>14.1f} {'' if growth is None else f'{growth / mib:+.1f}':>11} "
            f"{row['mean_s']:>9.4g} {row['p99_s']:>9.4g}"
        )
    lines.append("growth: the peak RSS less that of the previous size, same scenario (each size in its own process)")
    return "\n".join(lines)


def _sizes(text: str) -> list[int]:
    sizes = [int(float(item)) for item in text.split(",") if item.strip()]
    if not sizes or min(sizes) < 1000:
        raise argparse.ArgumentTypeError(f"sizes must be >= 1000 (got {text!r})")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", action="append", metavar="NAME",
                        help="built-in scenario or file with a `requests` key; repeatable (default mmc)")
    parser.add_argument("--sizes", type=_sizes, default=list(DEFAULT_SIZES), metavar="N1,N2,...",
                        help="requests per run, comma-separated, 1e7 allowed (default 1e5,1e6)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    parser.add_argument("--child", nargs=2, metavar=("SCENARIO", "REQUESTS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(measure_here(args.child[0], int(args.child[1]))))
        return 0
    numbers = measure(args.scenario or ["mmc"], args.sizes)
    return publish(numbers, report(numbers), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
