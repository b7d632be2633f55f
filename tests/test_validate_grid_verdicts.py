"""`cnsim validate` against the shipped generalization grid (calibration/validation/grid/): every point's
statistics and every one-factor ratio, each one test.

The comparison runs once per module (one replication of as many simulated
requests as were measured, in two worker processes). A statistic is within
target inside the real range over the repetitions widened by its target; a
ratio within 25 % of the real one. A miss whose cause is known is listed in
:data:`KNOWN_MISSES` or :data:`KNOWN_RATIO_MISSES` with that cause, as a strict
xfail: it fails if the miss goes away, so the lists cannot go stale. The
causes are in calibration/validation/README.md ("The generalization grid").
"""

from __future__ import annotations

import io
import json

import pytest

from calibration.validation.compare import STATISTICS
from calibration.validation.grid import GRID_ROOT
from cnsim.cli import main

pytestmark = pytest.mark.slow

REPLICATIONS = 1
JOBS = 2

GC_BURSTS_LOW = (
    "at 60-85 % of capacity the real Go server's latency comes in bursts, one per GC cycle (the 256 MiB base at "
    "60 %: 5-8 bursts over 50 ms in the 11 s window, up to 233 ms); the model makes them smaller (its p99 38 ms "
    "against 104-159 ms real). Measured beside it: the real mark assists take about twice the model's share of "
    "the CPU at these points (base at 60 %: 7.3 % against 3.1 %; GOGC 50 at 60 %: 16.9 % against 12.7 %) while "
    "the GC's whole share agrees within a few points (17.8 % against 15.4 %): the pacer model gives the "
    "mutator's allocation less assist debt than the runtime does. Not yet separated"
)
FREQUENT_CYCLES_LOW = (
    "at 30 % of capacity with frequent cycles (16-64 MiB heaps, GOGC 50, 0.3 ms requests; 3-15 cycles per "
    "second) the real p99 is 2-7x the model's (64 MiB: 19.5-39.9 ms against 10.5 ms; GOGC 50: 38-132 ms "
    "against 19 ms); measured beside it: real assists 2.9-4.9 % of the CPU, the model's 0.3-1.4 %: the "
    "same assist shortfall as GC_BURSTS_LOW"
)
LOW_LOAD_TAIL_HIGH = (
    "at 30 % of capacity (and the 64 and 256 KiB allocations at 60 %) with a 256-512 MiB heap the model's "
    "tail is the longer one: p99 42 ms against 16-19 ms real at the base, 110 ms against 14-16 ms at 512 MiB. "
    "Measured beside it: the real assists are 0.0-0.5 % of the CPU there, the model's 0.7-1.8 %: the real "
    "server, idle most of the time, marks in its idle worker; the model's requests meet assists and the "
    "fractional worker during a long mark. Not yet separated"
)
GOGC400_HEAP_GROWTH = (
    "GOGC 400: each run has one burst of 0.4-1.2 s, 9.6-10.7 s after its start (528-1721 requests over "
    "50 ms), when the heap first grows to five times the live heap (1.3 GB) inside the window, which holds only "
    "2-3 cycles; measured GC CPU agrees (4.4 % real, 5.6 % simulated at 60 %). The first touch of that much new "
    "heap (page faults, zeroing) is a transient the model has no mechanism for"
)
OBJECTS_16K = (
    "16 KiB objects: the simulated median is above the real range at every load; the calibrated cost of a "
    "16 KiB buffer (go.alloc.buffers_cpu_s_vs_size) is 4.49 us against 3.16 us for a 32 KiB one, not "
    "monotonic, and its three repetitions spread 172 % of their median (the table's largest): the "
    "calibration point, not the model, is suspect"
)
TWO_CORES = (
    "GOMAXPROCS 2 (the load generator on the same two CPUs): the real mean and p99 are 1.5-5x the model's "
    "(60 %: p99 54-90 ms against 22 ms); measured beside it: real assists 5.6 % of the CPU against the model's "
    "1.8 % at 60 %, the assist shortfall of GC_BURSTS_LOW with two Ps"
)
NODE_SCAVENGE_PAUSE = (
    "Node.js at 85 %: the simulated median is 30 % above the real range; the model's GC pauses take 11.1 % of "
    "the loop against 5.2 % measured (perf_hooks), its scavenge pause fitted per surviving byte on 51-byte "
    "objects (node.gc.scavenge_pause_vs_survived, 2.9 ms + 0.55 ns/B) where node_alloc measured 0.53 ms per "
    "scavenge for 1 KiB arrays"
)
NODE_LONG_REQUESTS = (
    "Node.js with 3 ms requests at 60-85 %: the real p99 is above the model's (85 %: 47.7-66.4 ms against "
    "32.3 ms) while the model's GC pauses are twice the measured ones (4.8 % against 2.4 %): the tail does not "
    "come from the collector; not yet separated"
)
NODE_SMALL_ALLOC = (
    "Node.js with 64 KiB per request at 30 %: mean and p99 below the real range (1.46 against 1.64-1.77 ms; "
    "3.5 against 4.8-5.6 ms) while the same settings with a 16 MiB heap (the shipped node-20pct) are within "
    "target: the 256 MiB live heap costs the real loop something the model lacks; not yet separated"
)
RATIO_HEAP = (
    "live heap: the ratios follow the level misses (GC_BURSTS_LOW, LOW_LOAD_TAIL_HIGH): at 30 % the simulated "
    "p99 grows 11.5x from 16 to 512 MiB where the real one stays (0.98x); at 60-85 % the real latency grows faster "
    "with the heap than the model's (16 to 256 MiB at 85 %: mean 5.7x real, 2.05x simulated)"
)
RATIO_OBJECT = (
    "object size: the ratios follow the level misses (LOW_LOAD_TAIL_HIGH, GC_BURSTS_LOW, OBJECTS_16K): going "
    "from 1 KiB to 16 or 64 KiB objects the real mean falls (0.5-0.8x) and the simulated one rises (1.3-2.3x)"
)
RATIO_ALLOC = (
    "allocation per request: from 64 or 256 KiB to 1 MiB the real mean grows 2-4x at 60-85 %, the simulated "
    "one 0.8-1.3x (GC_BURSTS_LOW); at 30 % the simulated p99 grows more (LOW_LOAD_TAIL_HIGH)"
)
RATIO_CPU = (
    "CPU per request: the ratios follow the level misses of the 0.3 ms and 1 ms points (FREQUENT_CYCLES_LOW, "
    "GC_BURSTS_LOW, LOW_LOAD_TAIL_HIGH); Node.js from 1 to 3 ms at 85 %: real mean 2.8x, simulated 2.0x "
    "(NODE_LONG_REQUESTS, NODE_SCAVENGE_PAUSE)"
)
RATIO_GOGC = (
    "GOGC: from 100 to 400 the real mean grows 8-10x at 60-85 % (GOGC400_HEAP_GROWTH's burst) where the model's "
    "falls (0.7-0.9x); from 50 to 100 the real mean falls about 2x, the simulated about 3x (GC_BURSTS_LOW)"
)
RATIO_CORES = (
    "GOMAXPROCS 1 to 2: the real mean stays or grows (1.0x at 30 %, 2.4x at 85 %), the simulated one falls "
    "(0.6-0.8x) (TWO_CORES)"
)
KNOWN_MISSES: dict[tuple[str, str], str] = {
    ("go-p1-h16-a1024k-o1024-g100-c1000us-30pct", "p99"): FREQUENT_CYCLES_LOW,
    ("go-p1-h256-a1024k-o1024-g100-c300us-30pct", "mean"): FREQUENT_CYCLES_LOW,
    ("go-p1-h256-a1024k-o1024-g100-c300us-30pct", "p99"): FREQUENT_CYCLES_LOW,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-30pct", "mean"): FREQUENT_CYCLES_LOW,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-30pct", "p99"): FREQUENT_CYCLES_LOW,
    ("go-p1-h256-a64k-o1024-g100-c1000us-30pct", "mean"): FREQUENT_CYCLES_LOW,
    ("go-p1-h256-a64k-o1024-g100-c1000us-30pct", "p99"): FREQUENT_CYCLES_LOW,
    ("go-p1-h64-a1024k-o1024-g100-c1000us-30pct", "mean"): FREQUENT_CYCLES_LOW,
    ("go-p1-h64-a1024k-o1024-g100-c1000us-30pct", "p99"): FREQUENT_CYCLES_LOW,
    ("go-p1-h16-a1024k-o1024-g100-c1000us-60pct", "mean"): GC_BURSTS_LOW,
    ("go-p1-h16-a1024k-o1024-g100-c1000us-60pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h16-a1024k-o1024-g100-c1000us-85pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "mean"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "mean"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g100-c300us-60pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-60pct", "mean"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-60pct", "p50"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-60pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-85pct", "mean"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-85pct", "p50"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-85pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o64-g100-c1000us-60pct", "mean"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o64-g100-c1000us-60pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o65536-g100-c1000us-85pct", "mean"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o65536-g100-c1000us-85pct", "p99"): GC_BURSTS_LOW,
    ("go-p1-h512-a1024k-o1024-g100-c1000us-60pct", "mean"): GC_BURSTS_LOW,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "p99"): LOW_LOAD_TAIL_HIGH,
    ("go-p1-h256-a1024k-o1024-g100-c3000us-30pct", "p99"): LOW_LOAD_TAIL_HIGH,
    ("go-p1-h256-a1024k-o64-g100-c1000us-30pct", "mean"): LOW_LOAD_TAIL_HIGH,
    ("go-p1-h256-a1024k-o64-g100-c1000us-30pct", "p99"): LOW_LOAD_TAIL_HIGH,
    ("go-p1-h256-a1024k-o65536-g100-c1000us-30pct", "mean"): LOW_LOAD_TAIL_HIGH,
    ("go-p1-h256-a1024k-o65536-g100-c1000us-30pct", "p99"): LOW_LOAD_TAIL_HIGH,
    ("go-p1-h256-a256k-o1024-g100-c1000us-30pct", "p99"): LOW_LOAD_TAIL_HIGH,
    ("go-p1-h256-a256k-o1024-g100-c1000us-60pct", "p99"): LOW_LOAD_TAIL_HIGH,
    ("go-p1-h256-a64k-o1024-g100-c1000us-60pct", "mean"): LOW_LOAD_TAIL_HIGH,
    ("go-p1-h256-a64k-o1024-g100-c1000us-60pct", "p99"): LOW_LOAD_TAIL_HIGH,
    ("go-p1-h512-a1024k-o1024-g100-c1000us-30pct", "mean"): LOW_LOAD_TAIL_HIGH,
    ("go-p1-h512-a1024k-o1024-g100-c1000us-30pct", "p99"): LOW_LOAD_TAIL_HIGH,
    ("go-p1-h256-a1024k-o1024-g400-c1000us-60pct", "mean"): GOGC400_HEAP_GROWTH,
    ("go-p1-h256-a1024k-o1024-g400-c1000us-60pct", "p99"): GOGC400_HEAP_GROWTH,
    ("go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "mean"): GOGC400_HEAP_GROWTH,
    ("go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "p50"): GOGC400_HEAP_GROWTH,
    ("go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "p99"): GOGC400_HEAP_GROWTH,
    ("go-p1-h256-a1024k-o16384-g100-c1000us-30pct", "p50"): OBJECTS_16K,
    ("go-p1-h256-a1024k-o16384-g100-c1000us-60pct", "p50"): OBJECTS_16K,
    ("go-p1-h256-a1024k-o16384-g100-c1000us-85pct", "p50"): OBJECTS_16K,
    ("go-p2-h256-a1024k-o1024-g100-c1000us-30pct", "mean"): TWO_CORES,
    ("go-p2-h256-a1024k-o1024-g100-c1000us-30pct", "p99"): TWO_CORES,
    ("go-p2-h256-a1024k-o1024-g100-c1000us-60pct", "mean"): TWO_CORES,
    ("go-p2-h256-a1024k-o1024-g100-c1000us-60pct", "p50"): TWO_CORES,
    ("go-p2-h256-a1024k-o1024-g100-c1000us-60pct", "p99"): TWO_CORES,
    ("go-p2-h256-a1024k-o1024-g100-c1000us-85pct", "mean"): TWO_CORES,
    ("go-p2-h256-a1024k-o1024-g100-c1000us-85pct", "p50"): TWO_CORES,
    ("go-p2-h256-a1024k-o1024-g100-c1000us-85pct", "p99"): TWO_CORES,
    ("node-p1-h256-a1024k-o1024-c1000us-85pct", "p50"): NODE_SCAVENGE_PAUSE,
    ("node-p1-h256-a1024k-o1024-c3000us-60pct", "p99"): NODE_LONG_REQUESTS,
    ("node-p1-h256-a1024k-o1024-c3000us-85pct", "p99"): NODE_LONG_REQUESTS,
    ("node-p1-h256-a64k-o1024-c1000us-30pct", "mean"): NODE_SMALL_ALLOC,
    ("node-p1-h256-a64k-o1024-c1000us-30pct", "p99"): NODE_SMALL_ALLOC,
}
"""(point, statistic) -> why the simulator misses it (measured on the shipped grid)."""
KNOWN_RATIO_MISSES: dict[tuple[str, str, str], str] = {
    ("go-p1-h16-a1024k-o1024-g100-c1000us-30pct", "go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "mean"): RATIO_HEAP,
    ("go-p1-h16-a1024k-o1024-g100-c1000us-30pct", "go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "p99"): RATIO_HEAP,
    ("go-p1-h16-a1024k-o1024-g100-c1000us-30pct", "go-p1-h512-a1024k-o1024-g100-c1000us-30pct", "mean"): RATIO_HEAP,
    ("go-p1-h16-a1024k-o1024-g100-c1000us-30pct", "go-p1-h512-a1024k-o1024-g100-c1000us-30pct", "p99"): RATIO_HEAP,
    ("go-p1-h16-a1024k-o1024-g100-c1000us-30pct", "go-p1-h64-a1024k-o1024-g100-c1000us-30pct", "p99"): RATIO_HEAP,
    ("go-p1-h16-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "mean"): RATIO_HEAP,
    ("go-p1-h16-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "p99"): RATIO_HEAP,
    ("go-p1-h16-a1024k-o1024-g100-c1000us-60pct", "go-p1-h512-a1024k-o1024-g100-c1000us-60pct", "mean"): RATIO_HEAP,
    ("go-p1-h16-a1024k-o1024-g100-c1000us-60pct", "go-p1-h512-a1024k-o1024-g100-c1000us-60pct", "p99"): RATIO_HEAP,
    ("go-p1-h16-a1024k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "mean"): RATIO_HEAP,
    ("go-p1-h16-a1024k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "p99"): RATIO_HEAP,
    ("go-p1-h16-a1024k-o1024-g100-c1000us-85pct", "go-p1-h64-a1024k-o1024-g100-c1000us-85pct", "p99"): RATIO_HEAP,
    ("go-p1-h256-a1024k-o1024-g100-c300us-30pct", "go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "mean"): RATIO_CPU,
    ("go-p1-h256-a1024k-o1024-g100-c300us-30pct", "go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "p99"): RATIO_CPU,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "go-p1-h256-a1024k-o1024-g400-c1000us-30pct", "mean"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "go-p1-h256-a1024k-o1024-g400-c1000us-30pct", "p99"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-30pct", "go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "mean"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-30pct", "go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "p99"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "go-p1-h256-a1024k-o65536-g100-c1000us-30pct", "mean"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "go-p1-h256-a1024k-o65536-g100-c1000us-30pct", "p99"): RATIO_OBJECT,
    ("go-p1-h256-a256k-o1024-g100-c1000us-30pct", "go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "p99"): RATIO_ALLOC,
    ("go-p1-h256-a64k-o1024-g100-c1000us-30pct", "go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "mean"): RATIO_ALLOC,
    ("go-p1-h256-a64k-o1024-g100-c1000us-30pct", "go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "p99"): RATIO_ALLOC,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "go-p1-h512-a1024k-o1024-g100-c1000us-30pct", "mean"): RATIO_HEAP,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "go-p1-h512-a1024k-o1024-g100-c1000us-30pct", "p99"): RATIO_HEAP,
    ("go-p1-h64-a1024k-o1024-g100-c1000us-30pct", "go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "mean"): RATIO_HEAP,
    ("go-p1-h64-a1024k-o1024-g100-c1000us-30pct", "go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "p99"): RATIO_HEAP,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "go-p2-h256-a1024k-o1024-g100-c1000us-30pct", "mean"): RATIO_CORES,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-30pct", "go-p2-h256-a1024k-o1024-g100-c1000us-30pct", "p99"): RATIO_CORES,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g100-c3000us-60pct", "mean"): RATIO_CPU,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g100-c3000us-60pct", "p99"): RATIO_CPU,
    ("go-p1-h256-a1024k-o1024-g100-c300us-60pct", "go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "mean"): RATIO_CPU,
    ("go-p1-h256-a1024k-o1024-g100-c300us-60pct", "go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "p99"): RATIO_CPU,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g400-c1000us-60pct", "mean"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g400-c1000us-60pct", "p99"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-60pct", "go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "mean"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-60pct", "go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "p99"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o16384-g100-c1000us-60pct", "mean"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o16384-g100-c1000us-60pct", "p99"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o65536-g100-c1000us-60pct", "mean"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o65536-g100-c1000us-60pct", "p99"): RATIO_OBJECT,
    ("go-p1-h256-a256k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "mean"): RATIO_ALLOC,
    ("go-p1-h256-a256k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "p99"): RATIO_ALLOC,
    ("go-p1-h256-a64k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "mean"): RATIO_ALLOC,
    ("go-p1-h256-a64k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "p99"): RATIO_ALLOC,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h512-a1024k-o1024-g100-c1000us-60pct", "mean"): RATIO_HEAP,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "go-p1-h512-a1024k-o1024-g100-c1000us-60pct", "p99"): RATIO_HEAP,
    ("go-p1-h64-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "mean"): RATIO_HEAP,
    ("go-p1-h64-a1024k-o1024-g100-c1000us-60pct", "go-p1-h256-a1024k-o1024-g100-c1000us-60pct", "p99"): RATIO_HEAP,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o1024-g100-c3000us-85pct", "mean"): RATIO_CPU,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o1024-g100-c3000us-85pct", "p99"): RATIO_CPU,
    ("go-p1-h256-a1024k-o1024-g100-c300us-85pct", "go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "mean"): RATIO_CPU,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "mean"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "p99"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-85pct", "go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "mean"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o16384-g100-c1000us-85pct", "mean"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o16384-g100-c1000us-85pct", "p99"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o64-g100-c1000us-85pct", "go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "mean"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o64-g100-c1000us-85pct", "go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "p99"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o65536-g100-c1000us-85pct", "mean"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o65536-g100-c1000us-85pct", "p99"): RATIO_OBJECT,
    ("go-p1-h256-a256k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "mean"): RATIO_ALLOC,
    ("go-p1-h256-a256k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "p99"): RATIO_ALLOC,
    ("go-p1-h256-a64k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "mean"): RATIO_ALLOC,
    ("go-p1-h256-a64k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "p99"): RATIO_ALLOC,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "go-p1-h512-a1024k-o1024-g100-c1000us-85pct", "mean"): RATIO_HEAP,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "go-p1-h512-a1024k-o1024-g100-c1000us-85pct", "p99"): RATIO_HEAP,
    ("go-p1-h64-a1024k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "mean"): RATIO_HEAP,
    ("go-p1-h64-a1024k-o1024-g100-c1000us-85pct", "go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "p99"): RATIO_HEAP,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "go-p2-h256-a1024k-o1024-g100-c1000us-85pct", "mean"): RATIO_CORES,
    ("go-p1-h256-a1024k-o1024-g100-c1000us-85pct", "go-p2-h256-a1024k-o1024-g100-c1000us-85pct", "p99"): RATIO_CORES,
    ("go-p1-h256-a1024k-o1024-g100-c300us-30pct", "go-p1-h256-a1024k-o1024-g100-c3000us-30pct", "mean"): RATIO_CPU,
    ("go-p1-h256-a1024k-o1024-g100-c300us-30pct", "go-p1-h256-a1024k-o1024-g100-c3000us-30pct", "p99"): RATIO_CPU,
    ("go-p1-h256-a1024k-o1024-g100-c300us-60pct", "go-p1-h256-a1024k-o1024-g100-c3000us-60pct", "mean"): RATIO_CPU,
    ("go-p1-h256-a1024k-o1024-g100-c300us-60pct", "go-p1-h256-a1024k-o1024-g100-c3000us-60pct", "p99"): RATIO_CPU,
    ("go-p1-h256-a1024k-o1024-g100-c300us-85pct", "go-p1-h256-a1024k-o1024-g100-c3000us-85pct", "mean"): RATIO_CPU,
    ("go-p1-h256-a1024k-o1024-g100-c300us-85pct", "go-p1-h256-a1024k-o1024-g100-c3000us-85pct", "p99"): RATIO_CPU,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-30pct", "go-p1-h256-a1024k-o1024-g400-c1000us-30pct", "mean"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-30pct", "go-p1-h256-a1024k-o1024-g400-c1000us-30pct", "p99"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-60pct", "go-p1-h256-a1024k-o1024-g400-c1000us-60pct", "mean"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-60pct", "go-p1-h256-a1024k-o1024-g400-c1000us-60pct", "p99"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-85pct", "go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "mean"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o1024-g50-c1000us-85pct", "go-p1-h256-a1024k-o1024-g400-c1000us-85pct", "p99"): RATIO_GOGC,
    ("go-p1-h256-a1024k-o16384-g100-c1000us-30pct", "go-p1-h256-a1024k-o65536-g100-c1000us-30pct", "p99"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o64-g100-c1000us-60pct", "go-p1-h256-a1024k-o16384-g100-c1000us-60pct", "mean"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o64-g100-c1000us-60pct", "go-p1-h256-a1024k-o16384-g100-c1000us-60pct", "p99"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o64-g100-c1000us-85pct", "go-p1-h256-a1024k-o16384-g100-c1000us-85pct", "mean"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o16384-g100-c1000us-85pct", "go-p1-h256-a1024k-o65536-g100-c1000us-85pct", "mean"):
        RATIO_OBJECT,
    ("go-p1-h256-a1024k-o16384-g100-c1000us-85pct", "go-p1-h256-a1024k-o65536-g100-c1000us-85pct", "p99"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o64-g100-c1000us-30pct", "go-p1-h256-a1024k-o65536-g100-c1000us-30pct", "p99"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o64-g100-c1000us-60pct", "go-p1-h256-a1024k-o65536-g100-c1000us-60pct", "mean"): RATIO_OBJECT,
    ("go-p1-h256-a1024k-o64-g100-c1000us-60pct", "go-p1-h256-a1024k-o65536-g100-c1000us-60pct", "p99"): RATIO_OBJECT,
    ("go-p1-h256-a64k-o1024-g100-c1000us-30pct", "go-p1-h256-a256k-o1024-g100-c1000us-30pct", "p99"): RATIO_ALLOC,
    ("go-p1-h64-a1024k-o1024-g100-c1000us-30pct", "go-p1-h512-a1024k-o1024-g100-c1000us-30pct", "mean"): RATIO_HEAP,
    ("go-p1-h64-a1024k-o1024-g100-c1000us-30pct", "go-p1-h512-a1024k-o1024-g100-c1000us-30pct", "p99"): RATIO_HEAP,
    ("go-p1-h64-a1024k-o1024-g100-c1000us-60pct", "go-p1-h512-a1024k-o1024-g100-c1000us-60pct", "mean"): RATIO_HEAP,
    ("node-p1-h256-a64k-o1024-c1000us-30pct", "node-p1-h256-a1024k-o1024-c1000us-30pct", "p99"): RATIO_ALLOC,
    ("node-p1-h256-a1024k-o1024-c1000us-85pct", "node-p1-h256-a1024k-o1024-c3000us-85pct", "mean"): RATIO_CPU,
    ("node-p1-h256-a1024k-o1024-c1000us-85pct", "node-p1-h256-a1024k-o1024-c3000us-85pct", "p99"): RATIO_CPU,
    ("node-p1-h256-a64k-o1024-c1000us-85pct", "node-p1-h256-a1024k-o1024-c1000us-85pct", "mean"): RATIO_ALLOC,
}
"""(point a, point b, statistic) -> why the simulated ratio b / a misses the real one."""


def _points() -> list[str]:
    return sorted(path.parent.parent.name for path in GRID_ROOT.glob("*/rep1/summary.json"))


@pytest.fixture(scope="module")
def report() -> dict:
    out = io.StringIO()
    main(["validate", "--data", str(GRID_ROOT), "--json", "--replications", str(REPLICATIONS),
          "--jobs", str(JOBS)], out)
    return json.loads(out.getvalue())


def test_the_grid_is_shipped_with_three_repetitions_of_every_point():
    points = _points()
    assert len(points) == 51
    for point in points:
        assert len(list((GRID_ROOT / point).glob("rep*/summary.json"))) >= 3, point


def _cases():
    for point in _points():
        for statistic in STATISTICS:
            reason = KNOWN_MISSES.get((point, statistic))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(point, statistic, marks=marks, id=f"{point}-{statistic}")


@pytest.mark.parametrize("point, statistic", list(_cases()))
def test_simulated_statistic_within_the_real_spread(report, point, statistic):
    by_name = {e["experiment"]: e for e in report["experiments"]}
    row = by_name[point]["statistics"][statistic]
    assert row["within"], (f"{point} {statistic}: simulated {row['simulated']:.6g} outside "
                           f"[{row['low']:.6g}, {row['high']:.6g}] (real {row['real_min']:.6g}-{row['real_max']:.6g})")


def _ratio_cases():
    from calibration.validation.compare import Comparison, load_experiments, one_factor_pairs

    experiments = load_experiments(GRID_ROOT) if _points() else []
    for a, b, _factor in one_factor_pairs([Comparison(e) for e in experiments]):
        for statistic in ("mean", "p99"):
            key = (a.experiment.name, b.experiment.name, statistic)
            reason = KNOWN_RATIO_MISSES.get(key)
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(*key, marks=marks, id="-".join(key))


@pytest.mark.parametrize("a, b, statistic", list(_ratio_cases()))
def test_one_factor_ratio_within_25_percent(report, a, b, statistic):
    (ratio,) = [r for r in report["ratios"] if (r["a"], r["b"], r["statistic"]) == (a, b, statistic)]
    assert ratio["within"], (f"{b} / {a} {statistic}: simulated {ratio['simulated_ratio']:.3g} against real "
                             f"{ratio['real_ratio']:.3g}")
