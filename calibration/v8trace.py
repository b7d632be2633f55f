"""Parse V8's ``--trace-gc-nvp`` lines (Node.js) into rows, and model their rounding.

Node 20 (V8 11.3) prints, with ``--trace-gc``, one line per collection::

    [2824:0x21b24c00]       22 ms: Scavenge 3.9 (4.0) -> 3.7 (5.0) MB, 2.00 / 0.00 ms  (average mu = 1.000,
    current mu = 1.000) allocation failure;

(on one line: pid and isolate address, ms since the isolate started, the
collector, heap used (committed) before -> after in MB with one decimal, the
pause / external callback time in ms, mutator utilisation and the reason).
That line has no byte counts of survivors, so the harness uses
``--trace-gc-nvp`` instead (``GCTracer::PrintNVP`` in ``src/heap/gc-tracer.cc``;
when both flags are given only this one is printed), one line of
``name=value`` pairs per collection after the same prefix::

    [2851:0x2bf50c00]       15 ms: pause=1.2 mutator=11.4 gc=s reduce_memory=0 time_to_safepoint=0.00
    ... scavenge=1.08 ... total_size_before=4074344 total_size_after=3885672 ... allocated=4074344
    promoted=0 new_space_survived=772160 ... promotion_ratio=0.0% ...

Fields used here (times in ms, sizes in bytes):

* ``gc``: ``s`` scavenge, ``mc`` mark-compact (full collection), ``mmc``/``ms``
  the minor mark-compact/mark-sweep collectors (not on by default);
* ``pause``: the main thread's pause for this collection, ``%.1f`` (rounded to
  0.1 ms: ``1.2`` stands for 1.15–1.25 ms, ``0.0`` for under 0.05 ms). For a
  mark-compact it is the final atomic pause only: incremental marking steps
  before it run on the main thread interleaved with JavaScript
  (``incremental``: their total ms, ``incremental_steps_count``) and
  concurrent marking on helper threads (``background.mark``);
* ``mutator``: ms of JavaScript since the previous collection;
* ``total_size_before``, ``total_size_after``: the heap's object bytes (all
  spaces) before and after;
* scavenges: ``new_space_survived`` (bytes copied within the young generation)
  and ``promoted`` (bytes moved to the old generation); their sum is what
  survived the scavenge, the work a copying collector does;
* ``reduce_memory``: 1 for a collection that shrinks the heap (memory pressure,
  idle), ``time_to_safepoint`` (``%.2f``) before the pause.

:func:`quantize` reproduces the rounding of ``pause`` and :func:`midpoint`
maps a printed value to the middle of the interval it stands for.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import numpy as np

#: ms, the step of ``pause=%.1f``.
PAUSE_STEP_MS = 0.1

KINDS = {"s": "scavenge", "mc": "mark-compact", "mmc": "minor-mark-compact", "ms": "minor-mark-sweep"}

_PREFIX = re.compile(r"^\[(?P<pid>\d+):(?P<isolate>0x[0-9a-f]+)\]\s+(?P<t>\d+(?:\.\d+)?) ms: (?P<pairs>pause=.*)$")
_PAIR = re.compile(r"([A-Za-z_.]+)=(\S*)")

#: Columns of a parsed line, in CSV order.
FIELDS = (
    "t_s",
    "isolate",
    "kind",
    "pause_s",
    "mutator_s",
    "time_to_safepoint_s",
    "reduce_memory",
    "heap_before_bytes",
    "heap_after_bytes",
    "allocated_bytes",
    "promoted_bytes",
    "new_space_survived_bytes",
    "survived_bytes",
    "incremental_s",
    "incremental_steps",
    "background_mark_s",
)


def _ms(pairs: dict[str, str], key: str) -> float | None:
    return float(Decimal(pairs[key]) / 1000) if key in pairs else None  # exact decimal, then the nearest float


def _int(pairs: dict[str, str], key: str) -> int | None:
    return int(pairs[key]) if key in pairs else None


def parse_line(line: str) -> dict[str, Any] | None:
    """One ``--trace-gc-nvp`` line as a row (seconds and bytes), or None if the line is not one.

    ``survived_bytes`` (promoted + new_space_survived) is None except for
    scavenges; the incremental-marking columns are None except for mark-compacts.
    """
    match = _PREFIX.match(line.strip())
    if match is None:
        return None
    pairs = dict(_PAIR.findall(match.group("pairs")))
    if "gc" not in pairs or "pause" not in pairs or "total_size_before" not in pairs:
        return None
    kind = KINDS.get(pairs["gc"], pairs["gc"])
    scavenge = kind == "scavenge"
    full = kind == "mark-compact"
    promoted, survived = _int(pairs, "promoted"), _int(pairs, "new_space_survived")
    return {
        "t_s": float(Decimal(match.group("t")) / 1000),
        "isolate": match.group("isolate"),
        "kind": kind,
        "pause_s": _ms(pairs, "pause"),
        "mutator_s": _ms(pairs, "mutator"),
        "time_to_safepoint_s": _ms(pairs, "time_to_safepoint"),
        "reduce_memory": pairs.get("reduce_memory") == "1",
        "heap_before_bytes": _int(pairs, "total_size_before"),
        "heap_after_bytes": _int(pairs, "total_size_after"),
        "allocated_bytes": _int(pairs, "allocated"),
        "promoted_bytes": promoted,
        "new_space_survived_bytes": survived,
        "survived_bytes": promoted + survived if scavenge and promoted is not None and survived is not None else None,
        "incremental_s": _ms(pairs, "incremental") if full else None,
        "incremental_steps": _int(pairs, "incremental_steps_count") if full else None,
        "background_mark_s": _ms(pairs, "background.mark") if full else None,
    }


def parse_stream(text: str) -> list[dict[str, Any]]:
    """Every ``--trace-gc-nvp`` line of ``text`` as a row, numbered per isolate in ``index``; other lines skipped."""
    rows: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for line in text.splitlines():
        row = parse_line(line)
        if row is None:
            continue
        row["index"] = counts.get(row["isolate"], 0)
        counts[row["isolate"]] = row["index"] + 1
        rows.append(row)
    return rows


def phase_of(t_s: float, steady_start_s: float, steady_end_s: float, margin_s: float) -> str:
    """``build`` before ``steady_start_s``, ``steady`` up to ``steady_end_s + margin_s``, ``done`` after.

    A line's time is taken when the collection has finished, and the harness's
    clock for the phase boundaries is an estimate of the trace's: the margin
    (well inside the idle gap the harness leaves after the steady phase) covers both.
    """
    if t_s < steady_start_s:
        return "build"
    return "steady" if t_s <= steady_end_s + margin_s else "done"


def quantize(seconds: np.ndarray) -> np.ndarray:
    """What ``pause=%.1f`` prints for true pauses ``seconds``, back in seconds (rounded to 0.1 ms)."""
    return np.rint(np.asarray(seconds, dtype=float) * 1e3 / PAUSE_STEP_MS) * PAUSE_STEP_MS / 1e3


def midpoint(printed_s: np.ndarray) -> np.ndarray:
    """The middle of the interval of true pauses that print as ``printed_s``: the value itself,
    except ``0.0``, which stands for [0, 0.05) ms."""
    p = np.asarray(printed_s, dtype=float)
    return np.where(p < PAUSE_STEP_MS / 2e3, PAUSE_STEP_MS / 4e3, p)
