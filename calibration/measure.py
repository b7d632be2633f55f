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
* ``goroutines.csv``, ``channel_handoff.csv``, ``sched_wakeup.csv``, ``json_codec.csv``;
* ``http_latency.csv`` (one row per request) and ``http_server_cpu.csv`` (the
  server process's CPU time per case and round), from ``httplat``;
* ``go_process.csv``: start-up time and idle RSS of a Go process, from ``procstart``;
* ``node_http_cpu.csv``: server CPU per round of sequential requests to Node's ``http``
  module, from ``httpcpu.js``.

The Node.js harnesses (``calibration/harness/node/*.js``, what each measures
in its header comment) write ``node_process.csv``, ``node_isolate.csv``,
``node_worker.csv``, and ``node_gc_pauses.csv`` (one row per collection from
``--trace-gc-nvp``, see :mod:`calibration.v8trace`, with the run's live set,
allocation rate, survival fractions and phase) with ``node_gc_runs.csv`` (one
row per run); meta.json adds the Node version (``node_version``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import re
import socket
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calibration import gctrace, harness, v8trace

if TYPE_CHECKING:
    from calibration.validation.experiments import Server
    from calibration.validation.experiments import Settings as LoadSettings

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
#: httplat: timed requests per case and rounds (latency), requests per case and round and rounds (CPU).
HTTP_LATENCY_SAMPLES, HTTP_LATENCY_SAMPLES_QUICK = 2000, 300
HTTP_CPU_REQUESTS, HTTP_CPU_REQUESTS_QUICK = 500, 200
HTTP_ROUNDS, HTTP_ROUNDS_QUICK = 20, 3
#: Server CPU is measured on these cases: a reused connection (per request), new connections with and
#: without TLS (their difference is a handshake), HTTP/2 reused.
HTTP_CPU_CASES = ("h1_reused", "h1_new", "h1_tls_new", "h2_tls_reused")


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


def measure_http(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    """Request latency of every case, then server CPU per request; client and server in two processes."""
    samples = HTTP_LATENCY_SAMPLES_QUICK if s.quick else HTTP_LATENCY_SAMPLES
    requests = HTTP_CPU_REQUESTS_QUICK if s.quick else HTTP_CPU_REQUESTS
    rounds = HTTP_ROUNDS_QUICK if s.quick else HTTP_ROUNDS
    env = {"GOMAXPROCS": "2"}
    latency = rec.run("http", "httplat", ["-mode", "latency", "-samples", str(samples), "-rounds", str(rounds),
                                          "-max-seconds", "20"], env, timeout=60)
    cpu = rec.run("http", "httplat", ["-mode", "cpu", "-cases", ",".join(HTTP_CPU_CASES), "-requests",
                                      str(requests), "-rounds", str(rounds), "-max-seconds", "25"], env, timeout=60)
    return {"http_latency.csv": _csv_rows(latency.stdout), "http_server_cpu.csv": _csv_rows(cpu.stdout)}


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
    rows = _csv_rows(timing.stdout)
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
    rows = _csv_rows(timing.stdout)
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


#: (timed starts, idle processes measured) of ``procstart``, quick and full.
GO_PROCESS_REPS_QUICK, GO_PROCESS_REPS = (5, 2), (50, 10)
#: (rounds, requests per round) of ``httpcpu.js``, quick and full.
NODE_HTTP_ROUNDS_QUICK, NODE_HTTP_ROUNDS = (3, 100), (20, 500)


def measure_go_process(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    """A static Go binary started and timed by itself (os/exec), and the RSS of idle Go processes."""
    reps, rss_reps = GO_PROCESS_REPS_QUICK if s.quick else GO_PROCESS_REPS
    result = rec.run("go_process", "procstart", ["-reps", str(reps), "-rss-reps", str(rss_reps),
                                                  "-max-seconds", "60"], {"GOMAXPROCS": "2"}, timeout=90)
    return {"go_process.csv": _csv_rows(result.stdout)}


#: machine: the burn of the validation server (s), its loops and longest idle gap before one (work jitter).
MACHINE_BURN_S = 1e-3
MACHINE_JITTER_LOOPS, MACHINE_JITTER_LOOPS_QUICK = 4000, 200
MACHINE_JITTER_MAX_GAP_MS = 100
#: machine: open-loop rates (requests/s) of an empty request, so that the server's idle gaps before a
#: request span 0.1 ms to seconds, each for this many seconds (full, quick); CPU burnt per empty request.
MACHINE_WAKE_RATES = (3, 10, 30, 100, 300, 1000)
MACHINE_WAKE_SECONDS, MACHINE_WAKE_SECONDS_QUICK = 15.0, 1.0
MACHINE_WAKE_CPU_S = 1e-6
MACHINE_WAKE_RUNTIMES = ("go", "node")
#: machine: a two-core Go server (GOMAXPROCS 2) and its load generator on the same two CPUs, as the
#: GOMAXPROCS 2 experiments place them, but with half their work per request and no heap: each handler's
#: CPUs traced (``valserver -trace``) at these rates (requests/s), this long each (full, quick).
MACHINE_PLACEMENT_CPU_S = 5e-4
MACHINE_PLACEMENT_RATES = (1000, 2000)
MACHINE_PLACEMENT_SECONDS, MACHINE_PLACEMENT_SECONDS_QUICK = 8.0, 1.0
#: machine: two spinning threads on one CPU (``valserver -slice-seconds``), this long (full, quick).
MACHINE_SLICE_SECONDS, MACHINE_SLICE_SECONDS_QUICK = 3.0, 0.3


def measure_machine(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    """How this machine stretches fixed work (:func:`_work_jitter`), how long a request to an idle server
    takes to wake it (:func:`_wake_ups`), and how Linux shares its cores between threads (:func:`_slices`,
    :func:`_placement`)."""
    load_cpu: list[dict[str, Any]] = []
    work = _work_jitter(rec, s)
    wake = _wake_ups(rec, s, load_cpu)
    placement = _placement(rec, s, load_cpu)
    return {"machine_work.csv": work, "machine_wake.csv": wake, "machine_slices.csv": _slices(rec, s),
            "machine_placement.csv": placement, "machine_load_cpu.csv": load_cpu}


def _load_cpu_row(part: str, rate: float, summary: dict[str, Any]) -> dict[str, Any]:
    """The load generator's own CPU over one open-loop run (its JSON summary)."""
    return {"part": part, "rate_rps": rate, "requests": summary["scheduled"], "cpu_s": summary["cpu_s"],
            "wall_s": summary["wall_s"]}


def _work_jitter(rec: Recorder, s: Settings) -> list[dict[str, Any]]:
    """``valserver -jitter-samples``: the validation server's 1 ms burn loop after random idle gaps (wall and
    thread CPU time), pinned as the experiments pin a one-core server."""
    from calibration.validation import experiments

    loops = MACHINE_JITTER_LOOPS_QUICK if s.quick else MACHINE_JITTER_LOOPS
    pin = experiments.taskset_prefix(experiments.SERVER_CPUS[1])
    args = ["-cpu", f"{MACHINE_BURN_S * 1e6:.0f}us", "-alloc", "0", "-live-heap-mib", "0", "-jitter-samples",
            str(loops), "-jitter-max-gap", f"{MACHINE_JITTER_MAX_GAP_MS}ms", "-max-seconds", "120"]
    result = rec.run("machine", "valserver", args, {"GOMAXPROCS": "1"}, timeout=180, prefix=pin)
    return [{**row, "burn_s": MACHINE_BURN_S} for row in _csv_rows(result.stdout)]


def _wake_ups(rec: Recorder, s: Settings, load_cpu: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The validation servers (Go ``valserver`` at GOMAXPROCS 1, Node ``valserver.js``) with a handler that burns
    1 µs and allocates nothing, driven open-loop by ``valload`` at low rates and placed as the experiments place
    one core (server on CPU 0, load generator on CPU 1), a fresh server per runtime and rate: each request's
    round trip with the time the server had been idle before it (and each run's load CPU into ``load_cpu``)."""
    from calibration.validation import experiments

    seconds = MACHINE_WAKE_SECONDS_QUICK if s.quick else MACHINE_WAKE_SECONDS
    settings = experiments.Settings(cpu_s=MACHINE_WAKE_CPU_S, alloc_bytes=0, live_heap_mib=0, duration_s=seconds,
                                    grace_s=2.0, conns=8)
    rows: list[dict[str, Any]] = []
    for runtime, rate in ((runtime, rate) for runtime in MACHINE_WAKE_RUNTIMES for rate in MACHINE_WAKE_RATES):
        server = experiments.start_server(experiments.Group(f"machine-{runtime}", runtime, 1), settings,
                                          rec.binaries, rec.cache)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "latency.csv"
                summary = _open_loop(rec, server, experiments.display_argv(server.argv),
                                     {"GOMAXPROCS": "1"} if runtime == "go" else {}, 1, rate, settings, out)
                load_cpu.append(_load_cpu_row(f"wake-{runtime}", rate, summary))
                rows += [{"runtime": runtime, **row} for row in _idle_gaps(rate, _csv_rows(out.read_text()))]
        finally:
            server.stop()
    return rows


def _open_loop(rec: Recorder, server: Server, server_shown: list[str], server_env: dict[str, str], cores: int,
               rate: float, settings: LoadSettings, out: Path, *extra: str) -> dict[str, Any]:
    """``valload`` open loop at ``rate`` to ``server`` (a validation server of ``cores`` cores, the load generator
    placed as the experiments place it), its per-request CSV to ``out``; the command noted beside the server's
    (``server_shown``, ``server_env``); its summary."""
    from calibration.validation import experiments

    args = experiments.open_loop_args(server.url, str(rate), settings, out, *extra)
    before = os.getloadavg()
    argv, env, summary = experiments.run_load(rec.binaries["valload"], cores, args, rec.cache,
                                              settings.duration_s + 60)
    rec.note("machine", [*argv[:-1], "latency.csv"], env, before, server_argv=server_shown, server_env=server_env)
    return summary


def _slices(rec: Recorder, s: Settings) -> list[dict[str, Any]]:
    """``valserver -slice-seconds``: two spinning threads on one CPU, each time one was kept off it."""
    from calibration.validation import experiments

    seconds = MACHINE_SLICE_SECONDS_QUICK if s.quick else MACHINE_SLICE_SECONDS
    result = rec.run("machine", "valserver", ["-slice-seconds", str(seconds)], {"GOMAXPROCS": "2"},
                     timeout=seconds + 60, prefix=experiments.taskset_prefix(experiments.SERVER_CPUS[1]))
    return _csv_rows(result.stdout)


def _placement(rec: Recorder, s: Settings, load_cpu: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The validation server at GOMAXPROCS 2 tracing its handlers (``-trace``) under ``valload -index-query``,
    both on CPUs 0 and 1, a fresh server per rate: each answered request's load-generator row joined with its
    handler's trace (and each run's load CPU into ``load_cpu``)."""
    from calibration.validation import experiments

    seconds = MACHINE_PLACEMENT_SECONDS_QUICK if s.quick else MACHINE_PLACEMENT_SECONDS
    settings = experiments.Settings(cpu_s=MACHINE_PLACEMENT_CPU_S, alloc_bytes=0, live_heap_mib=0,
                                    duration_s=seconds, grace_s=2.0)
    requests: list[dict[str, Any]] = []
    group = experiments.Group("machine-placement", "go", 2)
    for rate in MACHINE_PLACEMENT_RATES:
        with tempfile.TemporaryDirectory() as tmp:
            trace, out = Path(tmp) / "trace.csv", Path(tmp) / "latency.csv"
            server = experiments.start_server(group, settings, rec.binaries, rec.cache, ["-trace", str(trace)])
            shown = [*experiments.display_argv(server.argv)[:-1], trace.name]  # -trace's file is the last argument
            try:
                summary = _open_loop(rec, server, shown, {"GOMAXPROCS": "2"}, 2, rate, settings, out, "-index-query")
            finally:
                server.stop()
            handlers = {row.pop("query"): row for row in _csv_rows(trace.read_text())}
            for index, row in enumerate(_csv_rows(out.read_text())):
                handler = handlers.get(str(index))
                if row["status"] == "ok" and handler is not None:
                    requests.append({"rate_rps": rate, "index": index, **row, **handler})
            load_cpu.append(_load_cpu_row("placement", rate, summary))
    return requests


def _idle_gaps(rate: float, rows: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Answered requests in the order sent, each with the server's idle time before it: since the latest
    response so far (0 if a request was still in flight; empty for the first)."""
    done = sorted(((float(r["scheduled_s"]), float(r["latency_s"])) for r in rows if r["status"] == "ok"))
    out: list[dict[str, Any]] = []
    busy_until: float | None = None
    for scheduled, latency in done:
        idle = "" if busy_until is None else f"{max(scheduled - busy_until, 0.0):.7f}"  # valload: 0.1 µs steps
        out.append({"rate_rps": rate, "scheduled_s": scheduled, "idle_s": idle, "latency_s": latency})
        busy_until = scheduled + latency if busy_until is None else max(busy_until, scheduled + latency)
    return out


#: sysmon: a goroutine spinning on one CPU (GOMAXPROCS 1) beside a freshly woken sysmon (``valserver
#: -sysmon-samples``): spins (full, quick), the idle time before each and its length.
SYSMON_SAMPLES, SYSMON_SAMPLES_QUICK = 200, 5
SYSMON_IDLE_MS, SYSMON_SPIN_MS = 30, 5


def measure_sysmon(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    """``valserver -sysmon-samples``: a goroutine spinning on CPU 0 (GOMAXPROCS 1, pinned as a one-core server)
    after an idle time ended by a kernel timer, each time it was kept off the CPU (by sysmon, woken from its
    deep sleep and polling every 20 µs, or by an interrupt). A harness of its own, apart from ``machine``, so
    that it can be measured again without the rest."""
    from calibration.validation import experiments

    samples = SYSMON_SAMPLES_QUICK if s.quick else SYSMON_SAMPLES
    args = ["-sysmon-samples", str(samples), "-sysmon-idle", f"{SYSMON_IDLE_MS}ms", "-sysmon-spin",
            f"{SYSMON_SPIN_MS}ms"]
    result = rec.run("sysmon", "valserver", args, {"GOMAXPROCS": "1"}, timeout=120,
                     prefix=experiments.taskset_prefix(experiments.SERVER_CPUS[1]))
    return {"machine_sysmon.csv": _csv_rows(result.stdout)}


def measure_node_http(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    """Server CPU per request of Node's ``http`` module, client in another process (httpcpu.js)."""
    rounds, requests = NODE_HTTP_ROUNDS_QUICK if s.quick else NODE_HTTP_ROUNDS
    result = rec.run_node("node_http", "httpcpu.js", ["--rounds", str(rounds), "--requests", str(requests),
                                                      "--max-seconds", "60"], timeout=90)
    return {"node_http_cpu.csv": _csv_rows(result.stdout)}


#: Harnesses by name, in the order they run, with the programs each needs.
HARNESSES: dict[str, tuple[tuple[str, ...], Callable[[Recorder, Settings], dict[str, list[dict[str, Any]]]]]] = {
    "gc": (("gcpause",), measure_gc),
    "goroutines": (("goroutines",), measure_goroutines),
    "channels": (("chanlat",), measure_channels),
    "sched": (("schedlat",), measure_sched),
    "json": (("jsoncodec",), measure_json),
    "http": (("httplat",), measure_http),
    "go_process": (("procstart",), measure_go_process),
    "node_process": ((), measure_node_process),
    "node_isolate": ((), measure_node_isolate),
    "node_worker": ((), measure_node_worker),
    "node_gc": ((), measure_node_gc),
    "node_http": ((), measure_node_http),
    "machine": (("valserver", "valload"), measure_machine),
    "sysmon": (("valserver",), measure_sysmon),
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

    With ``only``, an existing meta.json keeps the other harnesses' entries; it is read again just before
    it is written, so runs of other harnesses that finished meanwhile keep theirs.
    """
    names = list(only) if only else list(HARNESSES)
    unknown = [n for n in names if n not in HARNESSES]
    if unknown:
        raise ValueError(f"--only: unknown harness {', '.join(unknown)} (known: {', '.join(HARNESSES)})")
    settings = Settings.make(quick)
    cache = harness.cache_dir()
    say = progress or (lambda message: None)
    programs = sorted({p for n in names for p in HARNESSES[n][0]})
    if programs:
        say("building the Go harnesses")
    binaries = harness.build(programs, cache)
    folder = out_root / host_name(host)
    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / "meta.json"
    measured: dict[str, Any] = {}
    load_start = os.getloadavg()
    for name in names:
        say(f"measuring {name}")
        rec = Recorder(binaries, cache)
        files = HARNESSES[name][1](rec, settings)
        for filename, rows in files.items():
            write_csv(folder / filename, rows)
        measured[name] = {"files": sorted(files), "commands": rec.commands, "quick": quick,
                          "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                          "harness_source_sha256": harness.source_hash()}
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if only and meta_path.is_file() else {}
    harness_meta = meta.get("harnesses", {})
    for entry in harness_meta.values():  # entries from before per-harness hashes: the hash of their time
        entry.setdefault("harness_source_sha256", meta.get("harness_source_sha256"))
    harness_meta.update(measured)
    if any(name.startswith("node_") for name in names):
        meta["node_version"] = harness.node_version()
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
