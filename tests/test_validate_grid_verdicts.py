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
    "the real Go server's latency rises from the start of each mark to tens or over a hundred milliseconds; the "
    "model makes the same rise, with the mark costs at GOMAXPROCS 1 (go.gc.mark_cpu_factor_vs_gomaxprocs) nearly "
    "as long, but where the real bursts are longest it stays below: GOGC 50 at 60 % (p99 93 against 117-183 ms), "
    "64-byte objects at 60 % (mean 7.7 against 10.4-20.6 ms), 64 MiB at 30 % (p99 15 against 19.5-39.9 ms: 11-30 "
    "requests a run above 20 ms, 4 simulated). The real GC CPU per cycle is still above the model's at most GOMAXPROCS "
    "1 points (base at 60 %: 17.2 % of the CPU, 15.4-18.7, against 14.7 % at the same cycle rate), and the "
    "calibration harness's own cycle for that heap spans 154-195 ms; not separated from the machine's run-to-run "
    "spread"
)
LARGE_OBJECTS_HIGH = (
    "16 and 64 KiB objects at 60 %: the simulated mean is above the real range (11.3 against 4.4-9.6 ms; 11.8 "
    "against 5.7-10.7 ms) with the p50 and p99 within it: the model's bursts at large objects are as long as at "
    "1 KiB objects (its assists 7.0-7.7 % of the CPU against 5.5-5.8 % real, GC shares agreeing); the real server "
    "with large objects has fewer, shorter bursts; not separated"
)
NOT_THE_COLLECTOR_64K = (
    "64 KiB per request at 85 %: the real mean is 15-30 ms and the median 5.1-7.5 ms while the collector takes "
    "2.8 % of the CPU with no assists; the model has the same GC share (2.8 %, no assists) and queues to 11 and "
    "4.3 ms: the real tail is not the collector's"
)
GOGC400_HEAP_GROWTH = (
    "GOGC 400 at 85 %: runs have one burst of 0.4-1.2 s when the heap first grows past about 1.3 GB inside the "
    "window (mean 13-518 ms over six runs, p99 0.1-2.6 s); measured GC CPU agrees (4.3 % real, 4.4 % simulated). "
    "A property of this VM, not of the server: its host backs guest memory lazily and the guest reports freed "
    "pages back (free page reporting), so a new process's first touches cost 10.5-12.7 us a page of system time "
    "against 1.8-3.0 us where the memory is still backed; beside a rerun the burst came with 0.5-0.7 cores of "
    "system time at 12 us a fault, and the same run after another process had touched 6 GiB had none. Kept as "
    "measured, not modelled (validation README)"
)
LOW_LOAD_ASSISTS = (
    "0.3 ms requests at 30 % (mean 4.3 against 2.2-3.6 ms): the model's assists take 6.0 % of the CPU against "
    "1.8-3.7 % real, with the runtime's triggers (the 0.7 floor of the way to the goal); at low load the real "
    "server's idle worker banks the credit before requests allocate much, and the model's requests still meet "
    "the dear start of its mark (the index scanned first, gc.live_layout indexed)"
)
NODE_LONG_REQUESTS = (
    "Node.js with 3 ms requests: the real median at 30 % (4.1-4.4 ms against 3.7) and p99 at 60 % (20.2-28.5 ms "
    "against 16.0 ms) are above the model's while its GC pauses are twice the measured ones (1.7 % against 0.9 % "
    "at 30 %): the tail does not come from the collector; not yet separated"
)
NODE_SCAVENGE_PAUSE = (
    "Node.js at 85 %: the simulated median is 27 % above the real range (4.0 against 2.4-3.2 ms); the model's GC "
    "pauses take 11 % of the loop against 5 % measured (perf_hooks), its scavenge pause fitted per surviving byte "
    "on 51-byte objects (node.gc.scavenge_pause_vs_survived, 2.9 ms + 0.55 ns/B) where node_alloc measured 0.53 ms "
    "per scavenge for 1 KiB arrays"
)
NODE_SMALL_ALLOC = (
    "Node.js with 64 KiB per request at 30 %: p99 below the real range (3.2 against 4.4-5.6 ms) while the same "
    "settings with a 16 MiB heap (the shipped node-20pct) are within target: the 256 MiB live heap costs the real "
    "loop something the model lacks; not yet separated"
)
RATIO_OBJECT = (
    "object size: from 64-byte to 16 or 64 KiB objects at 60 % the real mean falls (0.21-1.03x) and the simulated "
    "one rises (1.5x): GC_BURSTS_LOW at 64 bytes, LARGE_OBJECTS_HIGH at 16-64 KiB"
)
KNOWN_MISSES: dict[tuple[str, str], str] = {
    ("go-p1-h256-a1024k-o1024-g100-c300us-30pct", "mean"): LOW_LOAD_ASSISTS,
    ("go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "mean"): GOGC400_HEAP_GROWTH,
    ("go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "p99"): GOGC400_HEAP_GROWTH,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-60pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o16384-g100-c1000us-60pct", "mean"): LARGE_OBJECTS_HIGH,
    ("go-p1-h256-a1024k-o64-g100-c1000us-60pct", "mean"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o65536-g100-c1000us-60pct", "mean"): LARGE_OBJECTS_HIGH,
    ("go-p1-h256-a64k-o1024-g100-c1000us-85pct", "mean"): NOT_THE_COLLECTOR_64K,
    ("go-p1-h256-a64k-o1024-g100-c1000us-85pct", "p50"): NOT_THE_COLLECTOR_64K,
    ("go-p1-h64-a1024k-o1024-g100-c1000us-30pct", "p99"): GC_BURSTS_LOW,
    ("node-p1-h256-a1024k-o1024-c1000us-85pct", "p50"): NODE_SCAVENGE_PAUSE,
    ("node-p1-h256-a1024k-o1024-c3000us-30pct", "p50"): NODE_LONG_REQUESTS,
    ("node-p1-h256-a1024k-o1024-c3000us-60pct", "p99"): NODE_LONG_REQUESTS,
    ("node-p1-h256-a64k-o1024-c1000us-30pct", "p99"): NODE_SMALL_ALLOC,
}
"""(point, statistic) -> why the simulator misses it (measured on the shipped grid, both campaigns)."""
KNOWN_RATIO_MISSES: dict[tuple[str, str, str], str] = {
    ("go-p1-h256-a1024k-o64-g100-c1000us-60pct", "go-p1-h256-a1024k-o16384-g100-c1000us-60pct", "mean"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o64-g100-c1000us-60pct", "go-p1-h256-a1024k-o65536-g100-c1000us-60pct", "mean"): RATIO_OBJECT,
}
"""(point a, point b, statistic) -> why the simulated ratio b / a misses the real one."""


@pytest.fixture(scope="module")
def report() -> dict:
    return campaign_report(GRID_ROOT, REPLICATIONS, JOBS)


def test_the_grid_is_shipped_with_six_repetitions_of_every_point():
    points = shipped_points(GRID_ROOT)
    assert len(points) == 54
    for point in points:
        assert len(list((GRID_ROOT / point).glob("rep*/summary.json"))) == 6, point


@pytest.mark.parametrize("point, statistic", statistic_cases(GRID_ROOT, KNOWN_MISSES))
def test_simulated_statistic_within_the_real_spread(report, point, statistic):
    check_statistic(report, point, statistic)


@pytest.mark.parametrize("a, b, statistic", ratio_cases(GRID_ROOT, KNOWN_RATIO_MISSES))
def test_one_factor_ratio_within_25_percent(report, a, b, statistic):
    check_ratio(report, a, b, statistic)
