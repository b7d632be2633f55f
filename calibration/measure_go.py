"""The Go harnesses: the settings each program runs with and the rows it gives.

What each harness measures is in the docstring of its Go program
(``calibration/harness/go/*/main.go``). This module chooses the settings
(GOGC, GOMAXPROCS, busy goroutines; the GC runs' heap sizes are the campaign's,
:attr:`calibration.campaign.Settings.gc_heaps_mib`) and runs each program
bounded in time. Files (columns are the CSV headers):

* ``gc_pauses.csv``: one row per GC cycle from ``gctrace`` (see
  :mod:`calibration.gctrace`), with the run's heap target, GOGC, GOMAXPROCS and
  phase (``build`` while the live heap is being made, ``steady`` for cycles
  wholly inside the paced allocation, ``done`` for none but a straggler);
* ``gc_runs.csv``: one row per GC run (achieved allocation rate, cycles);
* ``go_alloc.csv``: the mutator's CPU per object by object size and kind, and
  ``go_gc_work.csv``: the collector's CPU by class per steady window, by live
  heap, heap shape, GOGC, GOMAXPROCS and the mutator's busy share, both from
  ``allocgc`` (``runtime/metrics``);
* ``goroutines.csv``, ``channel_handoff.csv``, ``sched_wakeup.csv``, ``json_codec.csv``;
* ``k8s_codec.csv``: one typical Pod encoded and decoded in JSON and in protobuf, from ``k8scodec``;
* ``http_latency.csv`` (one row per request) and ``http_server_cpu.csv`` (the
  server process's CPU time per case and round), from ``httplat``;
* ``go_process.csv``: start-up time and idle RSS of a Go process, from ``procstart``.
"""

from __future__ import annotations

from typing import Any

from calibration import gctrace
from calibration.campaign import Recorder, Settings, _csv_rows

GC_GOGC = (100, 400)
GC_GOMAXPROCS = 2
#: Garbage rate aims at this many cycles per second, within the bounds below (MB/s).
GC_CYCLES_PER_S = 8.0
GC_RATE_BOUNDS_MBPS = (64.0, 1536.0)
#: Heaps this large cycle slowly (GB per cycle): their steady phase is longer, to see a few cycles.
GC_LARGE_HEAP_MIB = 1024
GC_LARGE_HEAP_STEADY_FACTOR = 2
#: allocgc -mode alloc: object sizes (bytes; 32 KiB is the largest small size class, maxSmallSize), kinds,
#: bytes per size and kind (at least ALLOC_OBJECTS objects) and repetitions; full and quick.
ALLOC_SIZES = (16, 64, 256, 1024, 4096, 16384, 32768, 65536, 262144, 1048576)
ALLOC_SIZES_QUICK = (64, 1024, 65536)
ALLOC_KINDS = ("noscan", "scan", "chunk")
#: allocgc -mode alloc: bytes and objects per window, at least (512 MiB: windows of 0.1-1 s; with 64 MiB the
#: large sizes' windows were 6-60 ms and their repetitions spread up to 4x), and repetitions.
ALLOC_BYTES, ALLOC_BYTES_QUICK = 512 * 2**20, 4 * 2**20
ALLOC_OBJECTS, ALLOC_OBJECTS_QUICK = 16000, 200
ALLOC_REPS, ALLOC_REPS_QUICK = 5, 1
#: allocgc -mode mark: each run's (shape, live heap MiB, chunk bytes, GOGC, GOMAXPROCS, MB/s allocated, busy: the
#: share of wall time the mutator computes between its allocations).
GC_WORK_RUNS = tuple(
    [(shape, heap, 1024, 100, procs, 300.0, 0.0) for shape in ("nodes", "chunks") for heap in (16, 64, 256, 512)
     for procs in (1, 2)]
    + [("nodes", 256, 1024, gogc, procs, 300.0, 0.0) for gogc in (50, 400) for procs in (1, 2)]
    + [("nodes", 256, 1024, 100, 1, 100.0, 0.0), ("chunks", 256, 16384, 100, 1, 300.0, 0.0)]
    + [("nodes", 256, 1024, 100, 1, 300.0, busy) for busy in (0.3, 0.6, 0.8)]
    + [("nodes", 64, 1024, 100, 2, 300.0, 0.6)]
)
GC_WORK_RUNS_QUICK = (("nodes", 16, 1024, 100, 1, 100.0, 0.0), ("nodes", 16, 1024, 100, 2, 100.0, 0.5),
                      ("chunks", 16, 1024, 100, 2, 100.0, 0.0))
GC_WORK_SECONDS, GC_WORK_SECONDS_QUICK = 5.0, 1.0
SCHED_PROCS = (1, 2)
SCHED_BUSY = (0, 1, 2, 4, 16, 64)
#: httplat: timed requests per case and rounds (latency), requests per case and round and rounds (CPU).
HTTP_LATENCY_SAMPLES, HTTP_LATENCY_SAMPLES_QUICK = 2000, 300
HTTP_CPU_REQUESTS, HTTP_CPU_REQUESTS_QUICK = 500, 200
HTTP_ROUNDS, HTTP_ROUNDS_QUICK = 20, 3
#: Server CPU is measured on these cases: a reused connection (per request), new connections with and
#: without TLS (their difference is a handshake), HTTP/2 reused.
HTTP_CPU_CASES = ("h1_reused", "h1_new", "h1_tls_new", "h2_tls_reused")


def gc_alloc_rate_mbps(heap_mib: int, gogc: int) -> float:
    """Garbage rate for a run: enough for :data:`GC_CYCLES_PER_S` cycles, within :data:`GC_RATE_BOUNDS_MBPS`."""
    wanted = heap_mib * 2**20 * gogc / 100 * GC_CYCLES_PER_S / 1e6
    low, high = GC_RATE_BOUNDS_MBPS
    return min(max(wanted, low), high)


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


def measure_alloc(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    """The mutator's CPU per object (allocgc -mode alloc) at GOMAXPROCS 1, GOGC 100, beside a 4 MiB live heap."""
    sizes, nbytes, objects, reps = ((ALLOC_SIZES_QUICK, ALLOC_BYTES_QUICK, ALLOC_OBJECTS_QUICK, ALLOC_REPS_QUICK)
                                    if s.quick else (ALLOC_SIZES, ALLOC_BYTES, ALLOC_OBJECTS, ALLOC_REPS))
    args = ["-mode", "alloc", "-sizes", ",".join(map(str, sizes)), "-kinds", ",".join(ALLOC_KINDS),
            "-bytes", str(nbytes), "-objects", str(objects), "-reps", str(reps), "-live-mib", "4",
            "-max-seconds", "240"]
    result = rec.run("alloc", "allocgc", args, {"GOMAXPROCS": "1", "GOGC": "100"}, timeout=300)
    return {"go_alloc.csv": _csv_rows(result.stdout)}


def measure_gc_work(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    """The collector's CPU by class over a steady window of whole cycles (allocgc -mode mark), per run."""
    rows: list[dict[str, Any]] = []
    runs, seconds = (GC_WORK_RUNS_QUICK, GC_WORK_SECONDS_QUICK) if s.quick else (GC_WORK_RUNS, GC_WORK_SECONDS)
    for shape, heap_mib, chunk, gogc, procs, mbps, busy in runs:
        args = ["-mode", "mark", "-shape", shape, "-live-mib", str(heap_mib), "-chunk", str(chunk),
                "-alloc-mbps", f"{mbps:g}", "-busy", f"{busy:g}", "-seconds", str(seconds), "-max-seconds", "90"]
        result = rec.run("gc_work", "allocgc", args, {"GOMAXPROCS": str(procs), "GOGC": str(gogc)}, timeout=120)
        rows += _csv_rows(result.stdout)
    return {"go_gc_work.csv": rows}


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


def measure_k8s_codec(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    """One typical Pod encoded and decoded in JSON and in protobuf, as kube-apiserver does per object."""
    args = ["-reps", str(s.json_reps), "-benchtime", s.json_benchtime]
    result = rec.run("k8s_codec", "k8scodec", args, {"GOMAXPROCS": "2"}, timeout=180)
    return {"k8s_codec.csv": _csv_rows(result.stdout)}


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


#: (timed starts, idle processes measured) of ``procstart``, quick and full.
GO_PROCESS_REPS_QUICK, GO_PROCESS_REPS = (5, 2), (50, 10)


def measure_go_process(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    """A static Go binary started and timed by itself (os/exec), and the RSS of idle Go processes."""
    reps, rss_reps = GO_PROCESS_REPS_QUICK if s.quick else GO_PROCESS_REPS
    result = rec.run("go_process", "procstart", ["-reps", str(reps), "-rss-reps", str(rss_reps),
                                                  "-max-seconds", "60"], {"GOMAXPROCS": "2"}, timeout=90)
    return {"go_process.csv": _csv_rows(result.stdout)}
