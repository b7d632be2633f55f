"""Speed of the control-plane model at the size of the upstream scalability envelope.

The built-in scenario ``control-plane-at-scale`` is a cluster of 5,000 nodes and 150,000 pods: 5,000
kubelets renewing their Leases every 10 s and watching their pods, pods created and deleted at the
scenario's churn through kube-scheduler, and clients listing every pod. The issue's target is that it
runs in minutes on one core. The benchmark simulates ``--seconds`` of it (the scenario's 5 minutes by
default) and reports:

* the wall and CPU time of the run (building the model, its 150,000 pods and 5,000 informers included);
* API calls served per wall second, and simulated seconds per wall second;
* the peak resident memory of this process (``ru_maxrss``).

Not a test: it asserts nothing. ``make bench`` runs a short one; for the figure in ``bench/README.md``::

    python -m bench.bench_k8s
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

from bench.output import publish
from sim.run import run_replication
from sim.scenario import load_scenario

SCENARIO = "control-plane-at-scale"
TARGET_WALL_S = 300.0
"""What "in minutes on one core" is taken to mean: the scenario's 5 simulated minutes in at most 5."""


def run(seconds: float | None) -> dict[str, Any]:
    overrides: dict[str, Any] = {} if seconds is None else {"duration": seconds}
    scenario = load_scenario(SCENARIO, overrides)
    cpu_before = time.process_time()
    started = time.perf_counter()
    result = run_replication(scenario)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    rows = {(metric, statistic): value for metric, statistic, value in result.rows}
    measured = scenario.duration * (1 - scenario.warmup)
    calls = (rows.get(("api.mutating.latency_s", "count"), 0.0) + rows.get(("api.list.latency_s", "count"), 0.0))
    calls_total = calls * scenario.duration / measured  # the warm-up's calls, at the same rate
    return {"nodes": scenario.nodes, "pods": scenario.pods, "simulated_s": result.sim_time_s, "wall_s": wall,
            "cpu_s": cpu, "api_calls": calls_total, "api_calls_per_wall_s": calls_total / wall,
            "simulated_s_per_wall_s": result.sim_time_s / wall,
            "mutating_p99_s": rows.get(("api.mutating.latency_s", "p99")),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=None,
                        help="simulated seconds (default: the scenario's duration, 300)")
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    got = run(args.seconds)
    table = (f"{SCENARIO}: {got['nodes']:,} nodes, {got['pods']:,} pods, {got['simulated_s']:.0f} s simulated\n"
             f"  {got['wall_s']:.1f} s of wall time ({got['cpu_s']:.1f} s of CPU, target {TARGET_WALL_S:.0f} s): "
             f"{got['api_calls']:,.0f} API calls, {got['api_calls_per_wall_s']:,.0f} per wall second, "
             f"{got['simulated_s_per_wall_s']:.1f} simulated seconds per wall second\n"
             f"  peak memory {got['peak_rss_mib']:,.0f} MiB")
    numbers = {**got, "args": {"seconds": args.seconds}, "python": sys.version, "platform": platform.platform()}
    return publish(numbers, table, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
