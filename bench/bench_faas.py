"""Speed of the ``faas`` kind on a day of many functions.

The issue's target: a 24-hour workload of 1,000 functions at an average of 50 requests a second in total
simulates in minutes on one core. The workload is the Azure Functions 2019 characterisation
(:mod:`models.faas.azure`: rates, triggers, inter-arrival variability, execution times and memory from
Shahrad et al.'s published distributions), its rates scaled to 50 a second in total (``total_rate``), one
request per instance (Lambda's), the default 10-minute fixed keep-alive or the hybrid histogram policy. The
benchmark reports requests simulated, wall time (building the model included), requests per wall second and
the peak resident memory (``ru_maxrss``).

Not a test: it asserts nothing. For the figure in ``bench/README.md``::

    python -m bench.bench_faas                     # 24 h, fixed keep-alive
    python -m bench.bench_faas --policy hybrid
    python -m bench.bench_faas --hours 1           # a quick look
"""

from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from pathlib import Path

from bench.output import publish
from sim.run import run_replication
from sim.scenario import load_scenario

FUNCTIONS = 1000
TOTAL_RATE = 50.0
TARGET_WALL_S = 600.0
"""'Minutes' read as at most ten."""


def scenario(hours: float, policy: str) -> dict[str, object]:
    return {"model": "faas", "duration": hours * 3600, "warmup": 0.0, "seed": 1,
            "azure": {"count": FUNCTIONS, "total_rate": TOTAL_RATE,
                      "template": {"keep_alive_policy": policy}}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    parser.add_argument("--policy", choices=["fixed", "hybrid"], default="fixed")
    parser.add_argument("--json", type=Path, help="write the numbers to this file")
    args = parser.parse_args(argv)
    config = load_scenario(scenario(args.hours, args.policy))
    started = time.perf_counter()
    result = run_replication(config)
    wall = time.perf_counter() - started
    requests = result.value("requests.completed", "count")
    numbers = {
        "functions": FUNCTIONS, "total_rate": TOTAL_RATE, "hours": args.hours, "policy": args.policy,
        "requests": requests, "cold": result.value("requests.cold", "count"), "wall_s": wall,
        "requests_per_wall_s": requests / wall,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "target_wall_s": TARGET_WALL_S, "python": sys.version.split()[0], "platform": platform.platform(),
    }
    table = "\n".join(f"{key:20} {value:,.1f}" if isinstance(value, float) else f"{key:20} {value}"
                      for key, value in numbers.items())
    return publish(numbers, table, args.json)


if __name__ == "__main__":
    raise SystemExit(main())
