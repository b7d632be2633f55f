"""What every harness runner shares: the campaign's settings, the recorder of commands, the CSV reader.

A harness (see :data:`calibration.measure.HARNESSES`) is a function of a
:class:`Recorder` and the campaign's :class:`Settings` (full or quick) that
returns its rows by file name. The recorder runs each program through
:mod:`calibration.harness` (bounded in time) and keeps its command line,
environment, wall time and the load average before and after it, for
meta.json; :func:`_csv_rows` reads the CSV a program prints.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calibration import harness

#: Live heaps of the Go GC runs (MiB), full and quick: :attr:`Settings.gc_heaps_mib`.
GC_HEAPS_MIB = (16, 64, 256, 1024)
GC_HEAPS_MIB_QUICK = (16, 64)


@dataclass(frozen=True)
class Settings:
    """Durations and counts of one measurement campaign (full or quick)."""

    quick: bool
    gc_heaps_mib: tuple[int, ...]
    gc_steady_s: float
    goroutine_reps: int
    chan_samples: int
    sched_seconds: float
    json_reps: int
    json_benchtime: str

    @classmethod
    def make(cls, quick: bool) -> Settings:
        if quick:
            return cls(True, GC_HEAPS_MIB_QUICK, 1.0, 3, 2000, 0.1, 2, "50ms")
        return cls(False, GC_HEAPS_MIB, 8.0, 30, 5000, 1.0, 5, "1s")


class Recorder:
    """Runs programs and keeps, for meta.json, each command with its environment, wall time and load."""

    def __init__(self, binaries: dict[str, Path], cache: Path) -> None:
        self.binaries = binaries
        self.cache = cache
        self.commands: list[dict[str, Any]] = []

    def run(self, harness_name: str, program: str, args: list[str], env: dict[str, str], timeout: float,
            prefix: list[str] | None = None):
        before = os.getloadavg()
        result = harness.run(self.binaries[program], args, env, timeout, self.cache, prefix or ())
        return self._record(harness_name, result, before)

    def run_node(self, harness_name: str, script: str, args: list[str], timeout: float,
                 node_flags: tuple[str, ...] = ()):
        """Run the Node harness script ``script`` (a file of ``harness/node/``) and record it like :meth:`run`."""
        before = os.getloadavg()
        result = harness.run_node(script, args, timeout, node_flags)
        return self._record(harness_name, result, before)

    def _record(self, harness_name: str, result: harness.RunResult, before: tuple[float, float, float]):
        self.note(harness_name, result.argv, result.env, before, wall_s=round(result.wall_s, 3))
        return result

    def note(self, harness_name: str, argv: list[str], env: dict[str, str], before: tuple[float, float, float],
             **extra: Any) -> None:
        """Keep a command run elsewhere, with the load average ``before`` it and now, and ``extra`` keys."""
        self.commands.append({"harness": harness_name, "argv": argv, "env": env, **extra,
                              "loadavg_before": [round(v, 2) for v in before],
                              "loadavg_after": [round(v, 2) for v in os.getloadavg()]})


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))
