"""Run the Go harnesses and write their raw samples to ``calibration/data/<host>/``.

What each harness measures is in the docstring of its Go program
(``calibration/harness/go/*/main.go``). This module chooses the settings
(heap sizes, GOGC, GOMAXPROCS, busy goroutines), runs each program bounded in
time, and writes one CSV per measurement plus ``meta.json``: host, date, Go
version, cores, every command line with its environment, wall time and the
load average (``os.getloadavg``) before and after it, and the SHA-256 of the
harness sources. A busy machine shows up as a load average above the core count.

Files written (columns are the CSV headers):

* ``gc_pauses.csv``: one row per GC cycle from ``gctrace`` (see
  :mod:`calibration.gctrace`), with the run's heap target, GOGC, GOMAXPROCS and
  phase (``build`` while the live heap is being made, ``steady`` for cycles
  wholly inside the paced allocation, ``done`` for none but a straggler);
* ``gc_runs.csv``: one row per GC run (achieved allocation rate, cycles);
* ``goroutines.csv``, ``channel_handoff.csv``, ``sched_wakeup.csv``, ``json_codec.csv``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from calibration import gctrace, harness

DATA_ROOT = Path(__file__).resolve().parent / "data"

GC_HEAPS_MIB = (16, 64, 256, 1024)
GC_HEAPS_MIB_QUICK = (16, 64)
GC_GOGC = (100, 400)
GC_GOMAXPROCS = 2
#: Garbage rate aims at this many cycles per second, within the bounds below (MB/s).
GC_CYCLES_PER_S = 8.0
GC_RATE_BOUNDS_MBPS = (64.0, 1536.0)
#: Heaps this large cycle slowly (GB per cycle): their steady phase is longer, to see a few cycles.
GC_LARGE_HEAP_MIB = 1024
GC_LARGE_HEAP_STEADY_FACTOR = 2
SCHED_PROCS = (1, 2)
SCHED_BUSY = (0, 1, 2, 4, 16, 64)


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


def host_name(name: str | None = None) -> str:
    """``name`` or this machine's hostname, reduced to ``[a-z0-9._-]``."""
    raw = (name or socket.gethostname() or "host").lower()
    return re.sub(r"[^a-z0-9._-]+", "-", raw).strip("-.") or "host"


def gc_alloc_rate_mbps(heap_mib: int, gogc: int) -> float:
    """Garbage rate for a run: enough for :data:`GC_CYCLES_PER_S` cycles, within :data:`GC_RATE_BOUNDS_MBPS`."""
    wanted = heap_mib * 2**20 * gogc / 100 * GC_CYCLES_PER_S / 1e6
    low, high = GC_RATE_BOUNDS_MBPS
    return min(max(wanted, low), high)


class Recorder:
    """Runs programs and keeps, for meta.json, each command with its environment, wall time and load."""

    def __init__(self, binaries: dict[str, Path], cache: Path) -> None:
        self.binaries = binaries
        self.cache = cache
        self.commands: list[dict[str, Any]] = []

    def run(self, harness_name: str, program: str, args: list[str], env: dict[str, str], timeout: float):
        before = os.getloadavg()
        result = harness.run(self.binaries[program], args, env, timeout, self.cache)
        self.commands.append(
            {
                "harness": harness_name,
                "argv": result.argv,
                "env": result.env,
                "wall_s": round(result.wall_s, 3),
                "loadavg_before": [round(v, 2) for v in before],
                "loadavg_after": [round(v, 2) for v in os.getloadavg()],
            }
        )
        return result


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def measure_gc(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    pauses, runs = [], []
    for heap_mib in s.gc_heaps_mib:
        for gogc in GC_GOGC:
            rate = gc_alloc_rate_mbps(heap_mib, gogc)
            env = {"GODEBUG": "gctrace=1", "GOGC": str(gogc), "GOMAXPROCS": str(GC_GOMAXPROCS)}
            steady = s.gc_steady_s * (GC_LARGE_HEAP_STEADY_FACTOR if heap_mib >= GC_LARGE_HEAP_MIB else 1)
            args = ["-heap-mib", str(heap_mib), "-alloc-mbps", f"{rate:.0f}", "-seconds", str(steady),
                    "-max-seconds", "25"]
            result = rec.run("gc", "gcpause", args, env, timeout=60)
            base = {"heap_target_bytes": heap_mib * 2**20, "gogc": gogc, "gomaxprocs": GC_GOMAXPROCS,
                    "alloc_rate_target_bytes_per_s": round(rate * 1e6)}
            (summary,) = _csv_rows(result.stdout)
            runs.append({**base, **summary, "wall_s": round(result.wall_s, 3)})
            first, last = int(summary["first_steady_cycle"]), int(summary["last_steady_cycle"])
            for row in gctrace.parse_stream(result.stderr):
                pauses.append({**base, **row, "phase": gctrace.phase_of(row["cycle"], first, last)})
    return {"gc_pauses.csv": pauses, "gc_runs.csv": runs}


def measure_goroutines(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    """Spawn cost in one process; memory per blocked goroutine in a fresh process per repetition
    (each runs two rounds: the first on fresh memory, the second after the runtime adapted)."""
    args = ["-mode", "spawn", "-sizes", "10000,100000", "-reps", str(s.goroutine_reps), "-max-seconds", "20"]
    rows = [{**row, "process": 0} for row in _csv_rows(rec.run("goroutines", "goroutines", args,
                                                               {"GOMAXPROCS": "2"}, timeout=60).stdout)]
    for process in range(s.goroutine_reps):
        args = ["-mode", "memory", "-reps", "2", "-blocked", "10000", "-max-seconds", "10"]
        result = rec.run("goroutines", "goroutines", args, {"GOMAXPROCS": "2"}, timeout=30)
        rows += [{**row, "process": process} for row in _csv_rows(result.stdout)]
    return {"goroutines.csv": rows}


def measure_channels(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    args = ["-samples", str(s.chan_samples), "-buffer", "64", "-max-seconds", "10"]
    result = rec.run("channels", "chanlat", args, {"GOMAXPROCS": "2"}, timeout=60)
    return {"channel_handoff.csv": _csv_rows(result.stdout)}


def measure_sched(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    for procs in SCHED_PROCS:
        for busy in SCHED_BUSY:
            args = ["-busy", str(busy), "-sleep", "1ms", "-seconds", str(s.sched_seconds)]
            result = rec.run("sched", "schedlat", args, {"GOMAXPROCS": str(procs)}, timeout=30)
            rows += _csv_rows(result.stdout)
    return {"sched_wakeup.csv": rows}


def measure_json(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    args = ["-reps", str(s.json_reps), "-bytes", "8192", "-benchtime", s.json_benchtime]
    result = rec.run("json", "jsoncodec", args, {"GOMAXPROCS": "2"}, timeout=120)
    return {"json_codec.csv": _csv_rows(result.stdout)}


#: Harnesses by name, in the order they run, with the programs each needs.
HARNESSES: dict[str, tuple[tuple[str, ...], Callable[[Recorder, Settings], dict[str, list[dict[str, Any]]]]]] = {
    "gc": (("gcpause",), measure_gc),
    "goroutines": (("goroutines",), measure_goroutines),
    "channels": (("chanlat",), measure_channels),
    "sched": (("schedlat",), measure_sched),
    "json": (("jsoncodec",), measure_json),
}


def write_csv(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    rows = list(rows)
    if not rows:
        raise RuntimeError(f"no rows measured for {path.name}")
    columns = list(rows[0])
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})


def measure(
    out_root: Path = DATA_ROOT,
    host: str | None = None,
    quick: bool = False,
    only: Iterable[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Build and run the harnesses (``only`` some of them, by name), write CSVs and meta.json; the data folder.

    With ``only``, an existing meta.json keeps the other harnesses' entries.
    """
    names = list(only) if only else list(HARNESSES)
    unknown = [n for n in names if n not in HARNESSES]
    if unknown:
        raise ValueError(f"--only: unknown harness {', '.join(unknown)} (known: {', '.join(HARNESSES)})")
    settings = Settings.make(quick)
    cache = harness.cache_dir()
    say = progress or (lambda message: None)
    say("building the Go harnesses")
    binaries = harness.build(sorted({p for n in names for p in HARNESSES[n][0]}), cache)
    folder = out_root / host_name(host)
    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / "meta.json"
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if only and meta_path.is_file() else {}
    harness_meta = meta.get("harnesses", {})
    load_start = os.getloadavg()
    for name in names:
        say(f"measuring {name}")
        rec = Recorder(binaries, cache)
        files = HARNESSES[name][1](rec, settings)
        for filename, rows in files.items():
            write_csv(folder / filename, rows)
        harness_meta[name] = {"files": sorted(files), "commands": rec.commands, "quick": quick,
                              "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    meta.update(
        {
            "host": host_name(host),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "go_version": harness.go_version(cache),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "quick": quick if not only else meta.get("quick", quick),
            "harness_source_sha256": harness.source_hash(),
            "loadavg_start": [round(v, 2) for v in load_start],
            "loadavg_end": [round(v, 2) for v in os.getloadavg()],
            "harnesses": harness_meta,
        }
    )
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return folder
