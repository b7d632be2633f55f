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
NOT_THE_COLLECTOR_64K = (
    "64 KiB per request at 85 %: the real mean is 15-30 ms and the p99 109-170 ms while the collector takes 2.9 % of "
    "the CPU with no assists (0.0 %); the model has the same GC share (2.6 %, no assists) and queues to 10 ms and "
    "81 ms: the real tail is not the collector's. (Before the pacer's start-up history the model came nearer for a "
    "wrong reason: its first cycle after the warm-up triggered at 95 % of the way to the goal and met steep "
    "assists.)"
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
    "low load, GC-heavy: 64 KiB objects at 30 % (p99 16.4 against 11.5-12.8 ms) and 512 MiB at 30 % (mean 2.9 "
    "against 2.1-2.4 ms, p99 28 against 14-16 ms): the model's assists take 0.7-1.0 % of the CPU against 0.1-0.2 % "
    "real. With the pacer's history from start-up its triggers are the runtime's (the 0.7 floor of the way to the "
    "goal, about one byte of scan work owed per byte allocated), yet at low load the real server's idle worker "
    "banks the credit before requests allocate much and the model's requests still meet some of the mark's start"
)
TWO_CORES = (
    "GOMAXPROCS 2 (the load generator on the same two CPUs) at 85 %: the real tails are above the model's (mean "
    "16.8-292 against 15.1 ms, median 6.2-205 against 4.5 ms), the GC's share of the CPU agreeing (16.9 % real, "
    "17.7 % simulated): the short bursts of GC_BURSTS_LOW with two Ps (at 60 % the p99 is now within the widened "
    "range: 46 against 54-90 ms)"
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
    "live heap: at 30 % the simulated p99 grows with the heap where the real one does not (16, 64 or 256 to "
    "512 MiB: 1.6-2.5x simulated, 0.3-1.3x real): LOW_LOAD_ASSISTS at 512 MiB; at 60 % from 64 to 256 MiB the "
    "real p99 grows 2.3-5.4x, the simulated 1.45x: GC_BURSTS_LOW at 256 MiB"
)
RATIO_OBJECT = (
    "object size: going from 64 B or 1 KiB to 16 or 64 KiB objects at 60 % the real mean and p99 fall (0.2-1.05x) "
    "and the simulated ones rise (1.1-1.4x): GC_BURSTS_LOW at the 64 B and 1 KiB points, whose bursts the model "
    "makes too short"
)
RATIO_ALLOC = (
    "allocation per request: from 64 KiB to 1 MiB at 60 % the real mean grows 3.5-5.0x and the p99 6-11x, the "
    "simulated 2.3x and 2.7x (the 64 KiB point is within target; GC_BURSTS_LOW at 1 MiB); Node.js from 64 KiB at "
    "30 %: p99 1.9x simulated, 1.1-1.5x real (NODE_SMALL_ALLOC)"
)
RATIO_GOGC = (
    "GOGC: from 100 or 50 to 400 the real mean grows 1.1-25x at 60-85 % (GOGC400_HEAP_GROWTH's burst) where the "
    "model's falls (0.2-0.5x)"
)
KNOWN_MISSES: dict[tuple[str, str], str] = {
    ("go-p1-h16-a1024k-o1024-g100-c1000us-60pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h16-a1024k-o1024-g100-c1000us-85pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "mean"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g400-c1000us-60pct", "mean"): GOGC400_HEAP_GROWTH,
    ("go-p1-h256-a1024k-o1024-g400-c1000us-60pct", "p99"): GOGC400_HEAP_GROWTH,
    ("go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "mean"): GOGC400_HEAP_GROWTH,
    ("go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "p50"): GOGC400_HEAP_GROWTH,
    ("go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "p99"): GOGC400_HEAP_GROWTH,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-60pct", "mean"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-60pct", "p50"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-60pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-85pct", "mean"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-85pct", "p50"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-85pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o64-g100-c1000us-60pct", "mean"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o64-g100-c1000us-60pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o65536-g100-c1000us-30pct", "p99"): LOW_LOAD_ASSISTS,
    ("go-p1-h256-a1024k-o65536-g100-c1000us-85pct", "mean"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o65536-g100-c1000us-85pct", "p50"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o65536-g100-c1000us-85pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a64k-o1024-g100-c1000us-85pct", "mean"): NOT_THE_COLLECTOR_64K,
    ("go-p1-h256-a64k-o1024-g100-c1000us-85pct", "p50"): NOT_THE_COLLECTOR_64K,
    ("go-p1-h256-a64k-o1024-g100-c1000us-85pct", "p99"): NOT_THE_COLLECTOR_64K,
    ("go-p1-h512-a1024k-o1024-g100-c1000us-30pct", "mean"): LOW_LOAD_ASSISTS,
    ("go-p1-h512-a1024k-o1024-g100-c1000us-30pct", "p99"): LOW_LOAD_ASSISTS,
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
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g400-c1000us-60pct", "mean"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g400-c1000us-60pct", "p99"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o16384-g100-c1000us-60pct", "mean"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o65536-g100-c1000us-60pct", "mean"): RATIO_OBJECT,
    ("go-p1-h256-a64k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "mean"): RATIO_ALLOC,
    ("go-p1-h256-a64k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "p99"): RATIO_ALLOC,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "mean"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "p99"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-60pct", "go-p1-h256-a1024k-o1024-g400-c1000us-60pct", "mean"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-60pct", "go-p1-h256-a1024k-o1024-g400-c1000us-60pct", "p99"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-85pct", "go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "mean"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-85pct", "go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "p99"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o64-g100-c1000us-60pct", "go-p1-h256-a1024k-o65536-g100-c1000us-60pct", "mean"): RATIO_OBJECT,
    ("go-p1-h64-a1024k-o1024-g100-c1000us-30pct", "go-p1-h512-a1024k-o1024-g100-c1000us-30pct", "p99"): RATIO_HEAP,
    ("node-p1-h256-a64k-o1024-c1000us-30pct", "node-p1-h256-a1024k-o1024-c1000us-30pct", "p99"): RATIO_ALLOC,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "go-p1-h512-a1024k-o1024-g100-c1000us-30pct", "p99"): RATIO_HEAP,
    ("go-p1-h64-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "p99"): RATIO_HEAP,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o16384-g100-c1000us-60pct", "p99"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o65536-g100-c1000us-60pct", "p99"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o64-g100-c1000us-60pct", "go-p1-h256-a1024k-o16384-g100-c1000us-60pct", "mean"): RATIO_OBJECT,
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
