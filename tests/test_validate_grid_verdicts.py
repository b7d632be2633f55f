"""`cnsim validate` against the shipped generalization grid (calibration/validation/grid/): every point's
statistics and every one-factor ratio, each one test.

The comparison runs once per module (one replication of as many simulated
requests as were measured, in two worker processes). A statistic is within
target inside the real range over the repetitions widened by its target; a
ratio inside the real ratio's range over the repetitions widened by 25 %. A miss whose cause is known is listed in
:data:`KNOWN_MISSES` or :data:`KNOWN_RATIO_MISSES` with that cause, as a strict
xfail: it fails if the miss goes away, so the lists cannot go stale. The
causes are in calibration/validation/README.md ("The generalization grid").
"""

from __future__ import annotations

import pytest
from campaign_verdicts import (
    campaign_report, check_ratio, check_statistic, ratio_cases, shipped_points, statistic_cases,
)

from calibration.validation.grid import GRID_ROOT

pytestmark = pytest.mark.slow

REPLICATIONS = 1
JOBS = 2

GC_BURSTS_LOW = (
    "at 60-85 % of capacity the real Go server's latency rises from the start of each mark to tens or over a "
    "hundred milliseconds (the 256 MiB base at 60 %: p99 104-159 ms). With scan work counted in bytes and the "
    "server's indexed heap the model now makes the same rise and about the same assists (base at 60 %: 5.8 % of "
    "the CPU against 7.3 % real) but shorter: the real GC CPU per cycle is above the calibrated one (base at 60 "
    "%: 17.8 % of the CPU at 0.94 cycles/s, about 190 ms a cycle, against 14.8 % at 1.01, about 147 ms; at 85 % "
    "22.0 % against 16.4 %), and the harness's own mark CPU for that heap moved between 125 and 195 ms a cycle "
    "across two calibration campaigns of the same morning. Not separated from the machine's run-to-run spread"
)
RARE_CYCLES = (
    "few cycles in the window (GOGC 400 at 30 %, 64 KiB per request, 512 MiB at 30 %: 0.1-0.4 cycles a second, "
    "one to four in the measured 11 s): the tail is whether and where a mark falls. Real assists are 0.0-0.1 % of "
    "the CPU there (the idle worker banks the credit first), the model's 0.4-0.9 % (its requests meet the dear "
    "start of the mark: 64 KiB at 60 %: p99 49 ms against 14-17 ms; GOGC 400 at 30 %: 33 against 9-11 ms)"
)
GOGC400_HEAP_GROWTH = (
    "GOGC 400: each run has one burst of 0.4-1.2 s, 9.6-10.7 s after its start, when the heap first grows past "
    "about 1.3 GB inside the window; measured GC CPU agrees (4.4 % real, 4.1 % simulated at 60 %). A property of "
    "this VM, not of the server: its host backs guest memory lazily and the guest reports freed pages back "
    "(free page reporting), so a new process's first touches cost 10.5-12.7 us a page of system time against "
    "1.8-3.0 us where the memory is still backed; beside a rerun the burst came with 0.5-0.7 cores of system "
    "time at 12 us a fault, and the same run after another process had touched 6 GiB had none (mean 4.4 ms, "
    "p99 42 ms). Kept as measured, not modelled (validation README)"
)
LOW_LOAD_ASSISTS = (
    "64 KiB objects at 30 %: the simulated p99 is above the real range (16.4 against 11.5-12.8 ms) with the "
    "model's assists 0.7 % of the CPU against 0.2 % real: at low load the real server's idle worker banks the "
    "mark's dear start before the requests allocate much; the model's requests still meet some of it"
)
TWO_CORES = (
    "GOMAXPROCS 2 (the load generator on the same two CPUs) at 60-85 %: the real tails are above the model's (60 "
    "%: p99 54-90 ms against 40 ms; 85 %: median 6.2-205 against 4.4 ms), the GC's share of the CPU agreeing (60 "
    "%: 14.0 % real, 13.7 % simulated): the short bursts of GC_BURSTS_LOW with two Ps"
)
NODE_LONG_REQUESTS = (
    "Node.js with 3 ms requests at 60-85 %: the real p99 is above the model's (60 %: 20.2-26.1 ms against "
    "15.7 ms; 85 %: 47.7-66.4 against 32-33 ms, inside the widened range in some replications) while the model's "
    "GC pauses are twice the measured ones (4.8 % against 2.4 %): the tail does not come from the collector; not "
    "yet separated"
)
NODE_SCAVENGE_PAUSE = (
    "Node.js at 85 %: the simulated median is 30 % above the real range; the model's GC pauses take 11.1 % of "
    "the loop against 5.2 % measured (perf_hooks), its scavenge pause fitted per surviving byte on 51-byte "
    "objects (node.gc.scavenge_pause_vs_survived, 2.9 ms + 0.55 ns/B) where node_alloc measured 0.53 ms per "
    "scavenge for 1 KiB arrays"
)
NODE_SMALL_ALLOC = (
    "Node.js with 64 KiB per request at 30 %: mean and p99 below the real range (1.5 against 1.64-1.77 ms; "
    "3.2 against 4.8-5.6 ms) while the same settings with a 16 MiB heap (the shipped node-20pct) are within "
    "target: the 256 MiB live heap costs the real loop something the model lacks; not yet separated"
)
RATIO_HEAP = (
    "live heap at 30 %: the simulated p99 grows with the heap where the real one does not (16 to 512 MiB: 1.7x "
    "simulated, 0.74-1.32x real; 64 to 512 MiB: 1.05x against 0.34-0.83x): RARE_CYCLES at 512 MiB"
)
RATIO_OBJECT = (
    "object size: going from 64 B or 1 KiB to 16 or 64 KiB objects at 60 % the real mean falls (0.3-0.9x) and the "
    "simulated one rises (1.1-1.4x): GC_BURSTS_LOW at the 64 B and 1 KiB points, whose bursts the model makes too "
    "short"
)
RATIO_ALLOC = (
    "allocation per request: from 64 KiB to 1 MiB at 60 % the real mean grows 3.5-5.0x and the p99 6-11x, the "
    "simulated 2.0x and 1.4x (RARE_CYCLES at 64 KiB, GC_BURSTS_LOW at 1 MiB); from 64 to 256 KiB the simulated "
    "p99 falls (RARE_CYCLES); Node.js from 64 KiB at 30 %: p99 1.9x simulated, 1.1-1.5x real (NODE_SMALL_ALLOC)"
)
RATIO_GOGC = (
    "GOGC: from 100 or 50 to 400 the real mean grows 1.1-25x at 60-85 % (GOGC400_HEAP_GROWTH's burst) where the "
    "model's falls (0.2-0.5x); at 30 % the real p99 falls with GOGC 400 (0.07-0.71x), the simulated one rises or "
    "stays (0.7-1.9x: RARE_CYCLES)"
)
KNOWN_MISSES: dict[tuple[str, str], str] = {
    ("go-p1-h16-a1024k-o1024-g100-c1000us-60pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h16-a1024k-o1024-g100-c1000us-85pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "mean"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g400-c1000us-30pct", "p99"): RARE_CYCLES,
    ("go-p1-h256-a1024k-o1024-g400-c1000us-60pct", "mean"): GOGC400_HEAP_GROWTH,
    ("go-p1-h256-a1024k-o1024-g400-c1000us-60pct", "p99"): GOGC400_HEAP_GROWTH,
    ("go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "mean"): GOGC400_HEAP_GROWTH,
    ("go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "p50"): GOGC400_HEAP_GROWTH,
    ("go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "p99"): GOGC400_HEAP_GROWTH,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-60pct", "p50"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-60pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-85pct", "mean"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-85pct", "p50"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-85pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o64-g100-c1000us-60pct", "mean"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o65536-g100-c1000us-30pct", "p99"): LOW_LOAD_ASSISTS,
    ("go-p1-h256-a1024k-o65536-g100-c1000us-85pct", "mean"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o65536-g100-c1000us-85pct", "p50"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o65536-g100-c1000us-85pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a64k-o1024-g100-c1000us-60pct", "mean"): RARE_CYCLES,
    ("go-p1-h256-a64k-o1024-g100-c1000us-60pct", "p99"): RARE_CYCLES,
    ("go-p1-h256-a64k-o1024-g100-c1000us-85pct", "p50"): RARE_CYCLES,
    ("go-p1-h512-a1024k-o1024-g100-c1000us-30pct", "p99"): RARE_CYCLES,
    ("go-p2-h256-a1024k-o1024-g100-c1000us-60pct", "p99"): TWO_CORES,
    ("go-p2-h256-a1024k-o1024-g100-c1000us-85pct", "mean"): TWO_CORES,
    ("go-p2-h256-a1024k-o1024-g100-c1000us-85pct", "p50"): TWO_CORES,
    ("node-p1-h256-a1024k-o1024-c1000us-85pct", "p50"): NODE_SCAVENGE_PAUSE,
    ("node-p1-h256-a1024k-o1024-c3000us-60pct", "p99"): NODE_LONG_REQUESTS,
    ("node-p1-h256-a64k-o1024-c1000us-30pct", "mean"): NODE_SMALL_ALLOC,
    ("node-p1-h256-a64k-o1024-c1000us-30pct", "p99"): NODE_SMALL_ALLOC,
}
"""(point, statistic) -> why the simulator misses it (measured on the shipped grid)."""
KNOWN_RATIO_MISSES: dict[tuple[str, str, str], str] = {
    ("go-p1-h16-a1024k-o1024-g100-c1000us-30pct", "go-p1-h512-a1024k-o1024-g100-c1000us-30pct", "p99"): RATIO_HEAP,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "go-p1-h256-a1024k-o1024-g400-c1000us-30pct", "p99"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g400-c1000us-60pct", "mean"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g400-c1000us-60pct", "p99"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o16384-g100-c1000us-60pct", "mean"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o65536-g100-c1000us-60pct", "mean"): RATIO_OBJECT,
    ("go-p1-h256-a64k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "mean"): RATIO_ALLOC,
    ("go-p1-h256-a64k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "p99"): RATIO_ALLOC,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "mean"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "p99"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-30pct", "go-p1-h256-a1024k-o1024-g400-c1000us-30pct", "p99"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-60pct", "go-p1-h256-a1024k-o1024-g400-c1000us-60pct", "mean"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-60pct", "go-p1-h256-a1024k-o1024-g400-c1000us-60pct", "p99"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-85pct", "go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "mean"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-85pct", "go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "p99"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o64-g100-c1000us-60pct", "go-p1-h256-a1024k-o65536-g100-c1000us-60pct", "mean"): RATIO_OBJECT,
    ("go-p1-h256-a64k-o1024-g100-c1000us-60pct", "go-p1-h256-a256k-o1024-g100-c1000us-60pct", "p99"): RATIO_ALLOC,
    ("go-p1-h64-a1024k-o1024-g100-c1000us-30pct", "go-p1-h512-a1024k-o1024-g100-c1000us-30pct", "p99"): RATIO_HEAP,
    ("node-p1-h256-a64k-o1024-c1000us-30pct", "node-p1-h256-a1024k-o1024-c1000us-30pct", "p99"): RATIO_ALLOC,
}
"""(point a, point b, statistic) -> why the simulated ratio b / a misses the real one."""


@pytest.fixture(scope="module")
def report() -> dict:
    return campaign_report(GRID_ROOT, REPLICATIONS, JOBS)


def test_the_grid_is_shipped_with_three_repetitions_of_every_point():
    points = shipped_points(GRID_ROOT)
    assert len(points) == 51
    for point in points:
        assert len(list((GRID_ROOT / point).glob("rep*/summary.json"))) >= 3, point


@pytest.mark.parametrize("point, statistic", statistic_cases(GRID_ROOT, KNOWN_MISSES))
def test_simulated_statistic_within_the_real_spread(report, point, statistic):
    check_statistic(report, point, statistic)


@pytest.mark.parametrize("a, b, statistic", ratio_cases(GRID_ROOT, KNOWN_RATIO_MISSES))
def test_one_factor_ratio_within_25_percent(report, a, b, statistic):
    check_ratio(report, a, b, statistic)
