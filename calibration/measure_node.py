"""The Node.js harnesses: the settings each script runs with and the rows it gives.

The scripts are ``calibration/harness/node/*.js`` (what each measures in its
header comment); their counts and durations, full or quick, are a
:class:`NodeSettings`. They write ``node_process.csv``, ``node_isolate.csv``,
``node_worker.csv``, and ``node_gc_pauses.csv`` (one row per collection from
``--trace-gc-nvp``, see :mod:`calibration.v8trace`, with the run's live set,
allocation rate, survival fractions and phase) with ``node_gc_runs.csv`` (one
row per run); and ``node_http_cpu.csv``: server CPU per round of sequential
requests to Node's ``http`` module, from ``httpcpu.js``; and ``node_alloc.csv``:
the mutator CPU per object allocated, by object size, from ``alloc.js``.
meta.json adds the Node version (``node_version``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from calibration import v8trace
from calibration.campaign import Recorder, Settings, _csv_rows


@dataclass(frozen=True)
class NodeSettings:
    """Counts and durations of the Node.js harnesses, full or quick (from :attr:`Settings.quick`)."""

    process_reps: int
    rss_reps: int
    isolate_samples: int
    module_samples: int
    memory_processes: int
    worker_starts: int
    message_samples: int
    gc_live_mib: tuple[int, ...]
    gc_mixes: tuple[tuple[float, float], ...]
    gc_steady_s: float

    @classmethod
    def of(cls, s: Settings) -> NodeSettings:
        if s.quick:
            return cls(5, 2, 200, 10, 2, 5, 5, NODE_GC_LIVE_MIB_QUICK, NODE_GC_MIXES_QUICK, 1.0)
        return cls(50, 10, 2000, 100, 10, 100, 100, NODE_GC_LIVE_MIB, NODE_GC_MIXES, 6.0)


#: Live sets of the V8 GC runs (MiB) and (survive, promote) fractions of the garbage: a fraction kept
#: for about one scavenge, a fraction kept long enough to be promoted and die in the old generation.
NODE_GC_LIVE_MIB = (16, 64, 256)
NODE_GC_LIVE_MIB_QUICK = (16,)
NODE_GC_MIXES = ((0.01, 0.05), (0.1, 0.2), (0.3, 0.3))
NODE_GC_MIXES_QUICK = ((0.01, 0.05), (0.3, 0.3))
NODE_GC_ALLOC_MBPS = 200
#: Runs with this live set or more are longer, to see a few mark-compacts (each needs ~live bytes promoted).
NODE_GC_LARGE_LIVE_MIB = 256
NODE_GC_LARGE_STEADY_FACTOR = 2
#: ``--max-old-space-size`` = factor x live set + headroom (MiB), as a container limit sets it.
NODE_GC_OLD_SPACE_FACTOR, NODE_GC_OLD_SPACE_HEADROOM_MIB = 2, 64
#: A collection line up to this long after the steady phase ends still counts as steady (gc.js idles 200 ms).
NODE_GC_PHASE_MARGIN_S = 0.1
NODE_MESSAGE_BYTES = (1024, 4096, 16384, 65536, 262144, 1048576)
NODE_CONTEXTS_RETAINED = 200
NODE_WORKERS_IDLE = 8


def measure_node_process(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    """``node -e 0`` spawned and timed from a Node driver (spawnSync), and the RSS of idle processes."""
    n = NodeSettings.of(s)
    result = rec.run_node("node_process", "process.js", ["--reps", str(n.process_reps), "--rss-reps",
                                                         str(n.rss_reps), "--max-seconds", "60"], timeout=90)
    return {"node_process.csv": _csv_rows(result.stdout)}


def measure_node_isolate(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    """Context creation, script runs and module loads in one process; memory per context in fresh ones."""
    n = NodeSettings.of(s)
    timing = rec.run_node("node_isolate", "isolate.js", ["--mode", "timing", "--samples", str(n.isolate_samples),
                                                         "--module-samples", str(n.module_samples),
                                                         "--max-seconds", "60"], timeout=90)
    rows: list[dict[str, Any]] = list(_csv_rows(timing.stdout))
    for process in range(n.memory_processes):
        result = rec.run_node("node_isolate", "isolate.js", ["--mode", "memory", "--contexts",
                                                             str(NODE_CONTEXTS_RETAINED), "--max-seconds", "20"],
                              timeout=30, node_flags=("--expose-gc",))
        rows += [{**row, "sample": process} for row in _csv_rows(result.stdout)]
    return {"node_isolate.csv": rows}


def measure_node_worker(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    """Worker start-up and message round trips in one process; memory per idle worker in fresh ones."""
    n = NodeSettings.of(s)
    timing = rec.run_node("node_worker", "worker.js", ["--mode", "timing", "--starts", str(n.worker_starts),
                                                       "--messages", str(n.message_samples), "--sizes",
                                                       ",".join(map(str, NODE_MESSAGE_BYTES)), "--max-seconds",
                                                       "60"], timeout=90)
    rows: list[dict[str, Any]] = list(_csv_rows(timing.stdout))
    for process in range(n.memory_processes):
        result = rec.run_node("node_worker", "worker.js", ["--mode", "memory", "--workers", str(NODE_WORKERS_IDLE),
                                                           "--max-seconds", "20"], timeout=30,
                              node_flags=("--expose-gc",))
        rows += [{**row, "sample": process} for row in _csv_rows(result.stdout)]
    return {"node_worker.csv": rows}


def measure_node_gc(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    """gc.js per live set and survival mix under ``--trace-gc-nvp``: one row per collection, one per run."""
    n = NodeSettings.of(s)
    pauses, runs = [], []
    for live_mib in n.gc_live_mib:
        old_space_mib = NODE_GC_OLD_SPACE_FACTOR * live_mib + NODE_GC_OLD_SPACE_HEADROOM_MIB
        steady = n.gc_steady_s * (NODE_GC_LARGE_STEADY_FACTOR if live_mib >= NODE_GC_LARGE_LIVE_MIB else 1)
        for survive, promote in n.gc_mixes:
            args = ["--live-mib", str(live_mib), "--alloc-mbps", str(NODE_GC_ALLOC_MBPS), "--survive", str(survive),
                    "--promote", str(promote), "--seconds", str(steady), "--max-seconds", "40"]
            flags = ("--trace-gc-nvp", "--expose-gc", f"--max-old-space-size={old_space_mib}")
            result = rec.run_node("node_gc", "gc.js", args, timeout=60, node_flags=flags)
            base = {"live_target_bytes": live_mib * 2**20, "max_old_space_bytes": old_space_mib * 2**20,
                    "survive": survive, "promote": promote,
                    "alloc_rate_target_bytes_per_s": round(NODE_GC_ALLOC_MBPS * 1e6)}
            (summary,) = _csv_rows(result.stderr.split("cnsim-summary\n", 1)[-1])
            runs.append({**base, **summary, "wall_s": round(result.wall_s, 3)})
            start_s, end_s = float(summary["steady_start_ms"]) / 1e3, float(summary["steady_end_ms"]) / 1e3
            for row in v8trace.parse_stream(result.stdout):
                phase = v8trace.phase_of(row["t_s"], start_s, end_s, NODE_GC_PHASE_MARGIN_S)
                pauses.append({**base, **row, "phase": phase})
    return {"node_gc_pauses.csv": pauses, "node_gc_runs.csv": runs}


#: (rounds, requests per round) of ``httpcpu.js``, quick and full.
NODE_HTTP_ROUNDS_QUICK, NODE_HTTP_ROUNDS = (3, 100), (20, 500)


def measure_node_http(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    """Server CPU per request of Node's ``http`` module, client in another process (httpcpu.js)."""
    rounds, requests = NODE_HTTP_ROUNDS_QUICK if s.quick else NODE_HTTP_ROUNDS
    result = rec.run_node("node_http", "httpcpu.js", ["--rounds", str(rounds), "--requests", str(requests),
                                                      "--max-seconds", "60"], timeout=90)
    return {"node_http_cpu.csv": _csv_rows(result.stdout)}



#: Object sizes of ``alloc.js`` (bytes; the validation server's ``--alloc-chunk`` shapes, 64 B to 64 KiB),
#: bytes allocated per round (full, quick) and rounds per size.
NODE_ALLOC_SIZES = (64, 256, 1024, 4096, 16384, 65536)
NODE_ALLOC_ROUND_BYTES, NODE_ALLOC_ROUND_BYTES_QUICK = 256 * 2**20, 32 * 2**20
NODE_ALLOC_REPS = 3


def measure_node_alloc(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    """Mutator CPU per object allocated, by object size, the collector's pauses taken out (alloc.js)."""
    round_bytes = NODE_ALLOC_ROUND_BYTES_QUICK if s.quick else NODE_ALLOC_ROUND_BYTES
    result = rec.run_node("node_alloc", "alloc.js", ["--sizes", ",".join(map(str, NODE_ALLOC_SIZES)), "--bytes",
                                                     str(round_bytes), "--reps", str(NODE_ALLOC_REPS),
                                                     "--max-seconds", "60"], timeout=90,
                          node_flags=("--expose-gc",))
    return {"node_alloc.csv": _csv_rows(result.stdout)}
