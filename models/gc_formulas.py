"""Closed forms of garbage collectors' costs, to hold the collector models to.

Theory, not a model: the tests compare what the simulated collector does with
these (as ``models/queueing/formulas.py`` does for the queueing stations).
Source: "A Guide to the Go Garbage Collector" (go.dev/doc/gc-guide), section
"Understanding costs". Rates are per second, sizes in bytes.
"""

from __future__ import annotations


def guide_cost_model(
    allocation_rate_bytes_per_s: float, live_heap_bytes: float, roots_bytes: float, gogc: float, mark_rate: float
) -> tuple[float, float]:
    """(cycles per second, GC CPU-seconds per second) of the Go GC guide's model ("Understanding costs").

    Heap target = live + (live + roots) * GOGC/100, so a cycle happens every
    (live + roots) * GOGC/100 bytes allocated, and each costs (live + roots) /
    mark_rate CPU-seconds of marking (the fixed per-cycle cost is the pauses,
    left out here).
    """
    runway = (live_heap_bytes + roots_bytes) * gogc / 100
    cycles = allocation_rate_bytes_per_s / runway
    return cycles, cycles * (live_heap_bytes + roots_bytes) / mark_rate
