"""Speed and memory of the Go runtime models.

Two measurements, reported as a table (and as JSON with ``--json``):

1. **Requests per wall second** of the built-in scenario ``go-http-service``
   (2 Ps, encoding/json-sized handler, load about 0.5, GOGC 100) in both
   fidelities, ``--requests`` requests each, median of ``--repeats`` alternating
   runs, with the mean and p99 latency of each (on this scenario they agree
   exactly: see tests/test_go_fast.py), and the ratio of their speeds.
2. **Goroutines alive at once** in the detailed model (``--goroutines``,
   100,000 by default; ``--goroutines 1000000`` for the million of issue 18): a
   handler fans out to that many goroutines that each do 5 µs of CPU and then
   wait on the network, each on its own timeout, for 1 s or 10 µs per goroutine
   if longer (:data:`WAIT_PER_GOROUTINE_S`: starting a goroutine and running its
   5 µs take at most ~4.5 µs of the run on 2 Ps, so the last one has parked
   before the first wakes), so all of them are parked together; reports the
   wall time, the peak number of goroutines and stack bytes the model counted,
   and the peak resident memory of this Python process (``ru_maxrss``) before
   and after that run (it runs first, so the difference is its own), and that
   difference per goroutine.

The pauses, the mark costs, goroutine creation and stacks come from calibration
(``calibration/params/go.*.json``); on a checkout without them the benchmark
passes the values of ``FALLBACK`` (each with its source there), which change the
speed little. The JSON records which was used.

Not a test: it asserts nothing. ``make bench`` or::

    python -m bench.bench_go                         # 50,000 requests, 3 repeats, 100,000 goroutines
    python -m bench.bench_go --requests 10000 --repeats 1 --goroutines 20000
"""

from __future__ import annotations

import argparse
import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import simpy

from sim.core import Environment
from sim.dists import Constant
from sim.params import available
from sim.run import run_replication
from sim.scenario import load_scenario
from models.runtime.go.constants import SPAWN_PARAM, STACK_PARAM, WAKEUP_LATE_PARAM
from models.runtime.go.detailed.runtime import GoRuntime
from models.runtime.go.steps import fan_out
from models.runtime.go.gc import MARK_COST_PARAM, STW_MARK_PARAM, STW_SWEEP_PARAM, GCConfig
from models.runtime.protocol import Compute, Wait
from bench.output import publish

FALLBACK = {
    # GC pauses "usually under 100 microseconds and often as low as 10 microseconds" (Go 1.8 release notes)
    "gc.stw_sweep_termination": "30us",
    "gc.stw_mark_termination": "50us",
    "gc.mark_rate": 1e9,  # bytes per CPU-second: an assumption, used only without go.gc.mark_cpu_vs_objects
    # ~1-4 µs at 10k-100k goroutines, measured on Go 1.19 before the calibration harness; the harness
    # measures 0.55 µs on Go 1.27 (go.goroutine.spawn_s, 2026-12-04)
    "spawn": "2us",
    # one page: a goroutine starts on a 2 KiB stack (Go 1.4 release notes; runtime/stack.go), and with
    # its g and runtime overhead takes 2,780 B resident when parked (go.goroutine.stack_bytes)
    "stack_bytes": "4KiB",
    "wakeup_late": "80us",  # a timed sleep's overshoot, about the median measured on the calibration host
}
NAMES = {
    "gc.stw_sweep_termination": STW_SWEEP_PARAM,
    "gc.stw_mark_termination": STW_MARK_PARAM,
    "gc.mark_rate": MARK_COST_PARAM,
    "spawn": SPAWN_PARAM,
    "stack_bytes": STACK_PARAM,
    "wakeup_late": WAKEUP_LATE_PARAM,
}


WAIT_PER_GOROUTINE_S = 10e-6
"""The network wait of each fanned-out goroutine lasts this long per goroutine (at least 1 s), so that every
one has started and parked before the first wakes."""


def fallbacks() -> dict[str, Any]:
    """Overrides for the calibrated parameter sets that are not there (none once calibrated)."""
    have = set(available())
    return {key: FALLBACK[key] for key, name in NAMES.items() if name not in have}


def run_service(fidelity: str, requests: int) -> tuple[float, dict[str, float]]:
    scenario = load_scenario("go-http-service", {"fidelity": fidelity, "requests": requests, **fallbacks()})
    started = time.perf_counter()
    result = run_replication(scenario)
    wall = time.perf_counter() - started
    return wall, {
        "mean_s": result.value("requests.sojourn_s", "mean"),
        "p99_s": result.value("requests.sojourn_s", "p99"),
        "gc_cycles_per_s": result.value("go.gc.cycles", "rate"),
    }


def many_goroutines(count: int) -> dict[str, float]:
    env = Environment(seed=1)
    extra = fallbacks()
    gc = GCConfig.model_validate(
        {
            "live_heap": 0,
            **{k.removeprefix("gc."): v for k, v in extra.items() if k.startswith("gc.")},
        }
    )
    spawn = Constant(2e-6) if "spawn" in extra else None
    stack = 4096.0 if "stack_bytes" in extra else None
    wakeup_late = Constant(80e-6) if "wakeup_late" in extra else None
    go = GoRuntime(env, 2, gc=gc, spawn=spawn, stack_bytes=stack, wakeup_late=wakeup_late)
    wait_s = max(1.0, WAIT_PER_GOROUTINE_S * count)
    branch = [Compute(5e-6, 256.0), Wait(lambda: env.timeout(wait_s))]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    done = go.execute(fan_out([branch] * count))
    env.run(until=done)
    wall = time.perf_counter() - started
    peak_rss = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {
        "goroutines": count,
        "wait_s": wait_s,
        "wall_s": wall,
        "peak_goroutines": go.goroutines.max,
        "peak_stack_bytes": go.stack_bytes.max,
        "peak_rss_bytes_before": float(rss_before),
        "peak_rss_bytes": peak_rss,
        "rss_bytes_per_goroutine": (peak_rss - rss_before) / count,
        "simulated_s": float(env.now),
    }


def measure(requests: int, repeats: int, goroutines: int) -> dict[str, Any]:
    many = many_goroutines(goroutines)  # first, so that the peak RSS is its own
    for fidelity in ("detailed", "fast"):  # untimed warm-up: imports, entry points
        run_service(fidelity, 2000)
    walls: dict[str, list[float]] = {"detailed": [], "fast": []}
    outputs: dict[str, dict[str, float]] = {}
    for _ in range(repeats):
        for fidelity in walls:
            wall, outputs[fidelity] = run_service(fidelity, requests)
            walls[fidelity].append(wall)
    sides = {
        fidelity: {
            "wall_s": statistics.median(values),
            "wall_s_all": values,
            "requests_per_wall_s": requests / statistics.median(values),
            **outputs[fidelity],
        }
        for fidelity, values in walls.items()
    }
    return {
        "requests": requests,
        "repeats": repeats,
        "fidelities": sides,
        "speedup": sides["fast"]["requests_per_wall_s"] / sides["detailed"]["requests_per_wall_s"],
        "many_goroutines": many,
        "fallbacks_used": fallbacks(),
        "python": sys.version.split()[0],
        "simpy": simpy.__version__,
        "machine": platform.platform(),
    }


def report(numbers: dict[str, Any]) -> str:
    lines = [
        f"go-http-service, {numbers['requests']:,} requests, median of {numbers['repeats']} alternating runs",
        "",
        f"{'fidelity':<10} {'wall s':>8} {'requests/wall s':>16} {'mean ms':>9} {'p99 ms':>8} {'GC cycles/s':>12}",
    ]
    for name, row in numbers["fidelities"].items():
        lines.append(
            f"{name:<10} {row['wall_s']:>8.2f} {row['requests_per_wall_s']:>16,.0f} "
            f"{row['mean_s'] * 1e3:>9.3f} {row['p99_s'] * 1e3:>8.3f} {row['gc_cycles_per_s']:>12.2f}"
        )
    lines.append(f"fast / detailed requests per wall second: {numbers['speedup']:.2f}")
    many = numbers["many_goroutines"]
    lines += [
        "",
        f"{many['goroutines']:,} goroutines alive at once (detailed): {many['wall_s']:.2f} wall s, "
        f"peak {many['peak_goroutines']:,.0f} goroutines, {many['peak_stack_bytes'] / 2**20:.0f} MiB of "
        f"simulated stacks; this process: peak RSS {many['peak_rss_bytes'] / 2**20:.0f} MiB "
        f"({many['peak_rss_bytes_before'] / 2**20:.0f} MiB before this run: "
        f"{many['rss_bytes_per_goroutine']:,.0f} B per goroutine)",
    ]
    if numbers["fallbacks_used"]:
        lines.append(f"(calibration missing, used: {numbers['fallbacks_used']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=50_000, help="requests per run (default 50,000)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each fidelity (default 3)")
    parser.add_argument("--goroutines", type=int, default=100_000, help="goroutines alive at once (default 100,000)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    if args.requests < 100 or args.repeats < 1 or args.goroutines < 1:
        parser.error("--requests must be >= 100, --repeats and --goroutines >= 1")
    numbers = measure(args.requests, args.repeats, args.goroutines)
    return publish(numbers, report(numbers), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
