"""Parse the Go runtime's ``GODEBUG=gctrace=1`` lines into rows, and model their rounding.

The format (``runtime/extern.go``; printed by ``gcMarkTermination`` in
``runtime/mgc.go``) is::

    gc # @#s #%: #+#+# ms clock, #+#/#/#+# ms cpu, #->#-># MB, # MB goal, # MB stacks, # MB globals, # P

with ``(forced)`` at the end when ``runtime.GC`` started the cycle. The three
clock times are STW sweep termination, concurrent mark and scan, and STW mark
termination; the five CPU times are sweep termination, mark assists, background
mark workers (dedicated + fractional), idle mark workers and mark termination.
The MB figures (really MiB: the runtime shifts bytes right by 20) are the heap
at the start and end of the cycle, the live (marked) heap, the next goal, and
(since Go 1.21) the scannable stacks and globals; Go 1.19 lines lack the last two.

Times are printed by ``fmtNSAsMS``: below 10 ms with two significant digits of
microseconds, truncated (``0.011`` is 11 µs, ``0.13`` is 130–139 µs, ``0`` is
under 1 µs), from 10 ms on in whole milliseconds. :func:`quantize` reproduces
that rounding and :func:`midpoint` maps a printed value to the middle of the
interval it stands for, so a fit can treat the data as what they are.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import numpy as np

MIB = 1 << 20

_NUM = r"(\d+(?:\.\d+)?)"
GCTRACE = re.compile(
    rf"^gc (?P<cycle>\d+) @{_NUM}s (?P<pct>\d+)%(?: \([^)]*\))?: "
    rf"{_NUM}\+{_NUM}\+{_NUM} ms clock, "
    rf"{_NUM}\+{_NUM}/{_NUM}/{_NUM}\+{_NUM} ms cpu, "
    r"(\d+)->(\d+)->(\d+) MB, (\d+) MB goal, "
    r"(?:(\d+) ?MB stacks, )?(?:(\d+) ?MB globals, )?(\d+) P(?P<forced> \(forced\))?\s*$"
)

#: Columns of a parsed line, in CSV order.
FIELDS = (
    "cycle",
    "t_s",
    "gc_cpu_percent",
    "sweep_term_s",
    "mark_s",
    "mark_term_s",
    "cpu_sweep_term_s",
    "cpu_assist_s",
    "cpu_background_s",
    "cpu_idle_s",
    "cpu_mark_term_s",
    "heap_start_bytes",
    "heap_end_bytes",
    "heap_live_bytes",
    "heap_goal_bytes",
    "stacks_bytes",
    "globals_bytes",
    "procs",
    "forced",
)


def parse_line(line: str) -> dict[str, Any] | None:
    """One gctrace line as a row (seconds and bytes), or None if the line is not one.

    ``stacks_bytes`` and ``globals_bytes`` are None for the Go 1.19 format.
    """
    match = GCTRACE.match(line.strip())
    if match is None:
        return None
    g = match.groups()
    ms = [float(Decimal(value) / 1000) for value in g[3:11]]  # exact decimal, then the nearest float
    mib = [None if value is None else int(value) * MIB for value in g[11:17]]
    return {
        "cycle": int(g[0]),
        "t_s": float(g[1]),
        "gc_cpu_percent": int(g[2]),
        "sweep_term_s": ms[0],
        "mark_s": ms[1],
        "mark_term_s": ms[2],
        "cpu_sweep_term_s": ms[3],
        "cpu_assist_s": ms[4],
        "cpu_background_s": ms[5],
        "cpu_idle_s": ms[6],
        "cpu_mark_term_s": ms[7],
        "heap_start_bytes": mib[0],
        "heap_end_bytes": mib[1],
        "heap_live_bytes": mib[2],
        "heap_goal_bytes": mib[3],
        "stacks_bytes": mib[4],
        "globals_bytes": mib[5],
        "procs": int(g[17]),
        "forced": match.group("forced") is not None,
    }


def parse_stream(text: str) -> list[dict[str, Any]]:
    """Every gctrace line of ``text`` as a row (other lines are skipped), with ``interval_s``: the time
    since the previous cycle started (None for the first)."""
    rows: list[dict[str, Any]] = []
    previous: float | None = None
    for line in text.splitlines():
        row = parse_line(line)
        if row is None:
            continue
        row["interval_s"] = None if previous is None else round(row["t_s"] - previous, 6)
        previous = row["t_s"]
        rows.append(row)
    return rows


def phase_of(cycle: int, first_steady: int, last_steady: int) -> str:
    """``build`` before ``first_steady``, ``steady`` up to ``last_steady``, ``done`` after."""
    if cycle < first_steady:
        return "build"
    return "steady" if cycle <= last_steady else "done"


def quantize(seconds: np.ndarray) -> np.ndarray:
    """What ``fmtNSAsMS`` prints for true durations ``seconds``, back in seconds (truncation)."""
    s = np.asarray(seconds, dtype=float)
    us = np.floor(s * 1e6 * (1 + 1e-12))  # the guard keeps exact multiples (11e-6) from flooring below
    digits = np.where(us >= 100, np.floor(np.log10(np.maximum(us, 1))) - 1, 0)
    small = np.floor(us / 10**digits) * 10**digits * 1e-6
    return np.where(s >= 10e-3, np.floor(s * 1e3) * 1e-3, small)


def quantum(printed_s: np.ndarray) -> np.ndarray:
    """Width of the interval a printed duration stands for (1 µs below 100 µs, 10 µs below 1 ms, ...)."""
    p = np.asarray(printed_s, dtype=float)
    return np.select([p < 1e-4 - 1e-12, p < 1e-3 - 1e-12, p < 1e-2 - 1e-12], [1e-6, 1e-5, 1e-4], 1e-3)


def midpoint(printed_s: np.ndarray) -> np.ndarray:
    """The middle of the interval of true durations that print as ``printed_s``."""
    p = np.asarray(printed_s, dtype=float)
    return p + quantum(p) / 2
