"""Speed of cnsim against a plain SimPy program simulating the same M/M/c queue.

Both sides simulate M/M/16 at utilisation 0.9 (service rate 1/s, arrival rate
0.9 * 16 / s) for ``--requests`` customers, leave the first 10 % out of the
statistics, and report the mean and percentiles of the sojourn time. cnsim runs
through its public API (``load_scenario("mmc", ...)`` and
``run_replication``), with its metrics on: sojourn and wait histograms,
time-weighted in-system and utilisation gauges, counters. The plain SimPy side
is what a competent SimPy user would write: exponential draws generated up front
with NumPy, one process per customer holding a ``simpy.Resource``, sojourn times
appended to a list, NumPy percentiles at the end.

The two are timed alternately in one process (``--repeats`` each, median wall
time) so that machine noise hits both alike. The figure of merit is the ratio
cnsim / plain SimPy of wall seconds; the target is at most 1.3.

This is a benchmark, not a test: it asserts nothing and is run by ``make bench``::

    python -m bench.bench_mmc                     # 200,000 requests, 3 repeats
    python -m bench.bench_mmc --requests 20000 --repeats 1 --json bench.json
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import simpy

from models.queueing import formulas
from sim.run import run_replication
from sim.scenario import load_scenario
from bench.output import publish

SERVERS = 16
LOAD = 0.9
SERVICE_RATE = 1.0
ARRIVAL_RATE = LOAD * SERVERS * SERVICE_RATE
WARMUP = 0.1
TARGET_RATIO = 1.3
SEED = 1


def run_cnsim(requests: int) -> dict[str, float]:
    """One replication through cnsim's public API; returns the sojourn summary."""
    scenario = load_scenario(
        "mmc",
        {
            "servers": SERVERS,
            "arrival_rate": ARRIVAL_RATE,
            "service_rate": SERVICE_RATE,
            "requests": requests,
            "warmup": WARMUP,
            "seed": SEED,
        },
    )
    result = run_replication(scenario, 0)
    return {
        "mean_sojourn_s": result.value("requests.sojourn_s", "mean"),
        "p99_sojourn_s": result.value("requests.sojourn_s", "p99"),
        "measured": result.value("requests.sojourn_s", "count"),
    }


def run_plain_simpy(requests: int) -> dict[str, float]:
    """The same M/M/c, written directly against SimPy."""
    rng = np.random.default_rng(SEED)
    interarrivals = rng.exponential(1 / ARRIVAL_RATE, requests).tolist()
    services = rng.exponential(1 / SERVICE_RATE, requests).tolist()
    sojourns: list[float] = []

    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=SERVERS)

    warmup = int(WARMUP * requests)

    def customer(index: int, service: float):
        arrived = env.now
        with servers.request() as request:
            yield request
            yield env.timeout(service)
        if index >= warmup:
            sojourns.append(env.now - arrived)

    def source():
        for index in range(requests):
            if index:
                yield env.timeout(interarrivals[index])
            env.process(customer(index, services[index]))

    env.process(source())
    env.run()
    measured = np.asarray(sojourns)
    return {
        "mean_sojourn_s": float(measured.mean()),
        "p99_sojourn_s": float(np.percentile(measured, 99)),
        "measured": float(measured.size),
    }


def time_once(function: Callable[[int], dict[str, float]], requests: int) -> tuple[float, dict[str, float]]:
    started = time.perf_counter()
    out = function(requests)
    return time.perf_counter() - started, out


def measure(requests: int, repeats: int) -> dict[str, Any]:
    sides: dict[str, Callable[[int], dict[str, float]]] = {"cnsim": run_cnsim, "plain simpy": run_plain_simpy}
    # One small untimed run of each: imports, entry points and caches are paid here.
    for function in sides.values():
        function(min(requests, 2000))
    walls: dict[str, list[float]] = {name: [] for name in sides}
    outputs: dict[str, dict[str, float]] = {}
    for _ in range(repeats):
        for name, function in sides.items():
            wall, outputs[name] = time_once(function, requests)
            walls[name].append(wall)
    rows = {}
    for name in sides:
        median = statistics.median(walls[name])
        rows[name] = {
            "wall_s": median,
            "wall_s_all": walls[name],
            "requests_per_s": requests / median,
            **outputs[name],
        }
    return {
        "system": {"servers": SERVERS, "load": LOAD, "arrival_rate": ARRIVAL_RATE, "service_rate": SERVICE_RATE},
        "requests": requests,
        "repeats": repeats,
        "sides": rows,
        "ratio": rows["cnsim"]["wall_s"] / rows["plain simpy"]["wall_s"],
        "target_ratio": TARGET_RATIO,
        "erlang_c_mean_sojourn_s": formulas.mmc_mean_sojourn(ARRIVAL_RATE, SERVICE_RATE, SERVERS),
        "erlang_c_p99_wait_s": formulas.mmc_wait_quantile(ARRIVAL_RATE, SERVICE_RATE, SERVERS, 0.99),
        "python": sys.version.split()[0],
        "simpy": simpy.__version__,
        "machine": platform.platform(),
    }


def report(numbers: dict[str, Any]) -> str:
    lines = [
        f"M/M/{SERVERS} at rho = {LOAD}, {numbers['requests']:,} requests, "
        f"median of {numbers['repeats']} alternating repeats",
        "",
        f"{'':<12} {'wall s':>8} {'requests/s':>11} {'mean sojourn s':>15} {'p99 sojourn s':>14}",
    ]
    for name, row in numbers["sides"].items():
        lines.append(
            f"{name:<12} {row['wall_s']:>8.3f} {row['requests_per_s']:>11,.0f} "
            f"{row['mean_sojourn_s']:>15.4f} {row['p99_sojourn_s']:>14.3f}"
        )
    lines.append(f"{'Erlang C':<12} {'':>8} {'':>11} {numbers['erlang_c_mean_sojourn_s']:>15.4f} {'':>14}")
    ratio, target = numbers["ratio"], numbers["target_ratio"]
    verdict = "meets" if ratio <= target else "misses"
    lines += ["", f"ratio cnsim / plain simpy = {ratio:.2f} ({verdict} the target <= {target})"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=200_000, help="customers per run (default 200,000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side (default 3)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    if args.requests < 10 or args.repeats < 1:
        parser.error("--requests must be >= 10 and --repeats >= 1")
    numbers = measure(args.requests, args.repeats)
    return publish(numbers, report(numbers), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
