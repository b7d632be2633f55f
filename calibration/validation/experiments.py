"""Run the real end-to-end experiments that ``cnsim validate`` holds the simulator to.

Each experiment is one server under open-loop Poisson load for ``duration_s``:

* **Servers.** ``valserver`` (Go ``net/http``, ``calibration/harness/go/valserver``)
  or ``valserver.js`` (Node.js ``http``, ``calibration/harness/node``): per
  request to ``/work`` they burn ``cpu_s`` of CPU (a loop calibrated at
  start-up against the CPU clock, not a wall-clock spin) and allocate
  ``alloc_bytes`` in ``alloc_chunk_bytes`` objects, beside a live heap of
  ``live_heap_mib``. A fresh server per experiment.
* **Load.** ``valload`` (Go, ``calibration/harness/go/valload``): Poisson
  arrivals scheduled in advance from the start time at the experiment's rate,
  each written at its time by a dispatcher thread (``nanosleep``, not Go
  timers) on an idle connection of a pool of ``conns`` keep-alive HTTP/1.1
  connections opened beforehand (a request that finds none is counted in
  ``pool_waits``), the response read by the connection's own goroutine;
  latency runs from the scheduled send time to the end of the response.
  Bounded: it stops ``grace_s`` after sending ends whatever the server does,
  and the runner kills it at twice that.
* **Capacity** is measured first for each group (runtime and GOMAXPROCS), on a
  fresh server, by a closed-loop saturation run: ``capacity_concurrency``
  back-to-back clients for ``capacity_s`` (their throughput, with the load
  generator running where it runs in the experiments). The four rates are
  :data:`RATE_FRACTIONS` of it.
* **Placement** on the 2-core machine (``taskset``, when available): at
  GOMAXPROCS 1 and for Node the server is pinned to CPU 0 and the load
  generator to CPU 1; at GOMAXPROCS 2 both run on CPUs 0-1, so the load
  generator's CPU competes with the server's. Recorded in each ``config.json``.
  The load generator runs with GOMAXPROCS 2 in every case: its dispatcher holds
  one P while it sleeps in ``nanosleep`` (see ``valload``).

Written per experiment under ``<root>/<name>/``: ``config.json`` (every command
line and environment, CPUs, rate, capacity, durations, versions, date, load
average before and after, the cores other processes used during the run
(:class:`~calibration.validation.machine.ForeignLoad`), the server's source
hash), ``summary.json`` (n, mean, p50,
p90, p99, p99.9, max, throughput, errors, dispatch lag, pool waits, the
server's own report) and ``latency.csv.gz`` (``scheduled_us``, ``latency_us``
of every measured request, in microseconds: the raw sample, compressed). The
first ``warmup_s`` of each run (pool, JIT and heap warm-up) is not measured:
6 s, because with 2 s the Node.js server's slowest requests crowded into the
first seconds measured (of its requests above p99 at 20 % and 50 % load, 21 of
24 and 53 of 57 fell in the first third of the 13 s window).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, UTC
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from calibration import harness
from calibration.validation.machine import GIB, ForeignLoad, process_counters, touch_costs, wait_until_quiet

VALIDATION_ROOT = Path(__file__).resolve().parent
NODE_SERVER = Path(harness.__file__).resolve().parent / "node" / "valserver.js"
RATE_FRACTIONS = (0.2, 0.5, 0.7, 0.9)
SERVER_CPUS = {1: "0", 2: "0,1"}
"""CPUs of the server by the number of cores it may use (taskset lists)."""
LOAD_CPUS = {1: "1", 2: "0,1"}
"""CPUs of the load generator by the server's core count: a core of its own beside a 1-core server."""
LOAD_GOMAXPROCS = 2
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
STATS_TIMEOUT_S = 2.0
"""How long a ``GET /stats`` of the server may take before it is recorded as missing."""
GO_GC_CPU_CLASSES = {name: f"/cpu/classes/gc/{path}:cpu-seconds" for name, path in (
    ("assist", "mark/assist"), ("dedicated", "mark/dedicated"), ("idle", "mark/idle"), ("pause", "pause"),
    ("total", "total"))}
"""The Go server's GC CPU by class (``runtime/metrics`` names, as ``valserver``'s ``/stats`` reports them)."""
GO_GC_CYCLES = "/gc/cycles/total:gc-cycles"


@dataclass(frozen=True)
class Settings:
    """What every experiment of a campaign shares: the request's cost, the heap and the durations."""

    cpu_s: float = 1e-3
    alloc_bytes: int = 65536
    alloc_chunk_bytes: int = 1024
    live_heap_mib: int = 16
    gogc: int = 100
    duration_s: float = 19.0
    warmup_s: float = 6.0
    """Not measured: the Node.js server's tail is still settling (JIT, heap sizing) in the seconds after 2 s."""
    grace_s: float = 5.0
    conns: int = 128
    capacity_s: float = 3.0
    capacity_concurrency: int = 8
    seed: int = 1
    quiet_cores: float = 0.15
    """Before each run, wait until the machine keeps fewer cores than this busy (other processes)."""
    quiet_wait_s: float = 300.0
    max_foreign_cores: float = 0.05
    """A run during which other processes used more than this many cores on average is run again."""
    attempts: int = 3
    touch_probe_gib: float = 4.0
    """Memory touched and released before the campaign to record what first touches cost on this machine
    (:func:`~calibration.validation.machine.touch_costs`), GiB; at most half of what is available."""

    @classmethod
    def quick(cls) -> Settings:
        """A smoke-size campaign: 1 s runs (for tests of the programs, not for validation)."""
        return cls(duration_s=1.0, warmup_s=0.2, grace_s=2.0, capacity_s=0.5, conns=16, quiet_wait_s=0.0,
                   max_foreign_cores=float("inf"), attempts=1, touch_probe_gib=0.0)


@dataclass(frozen=True)
class Group:
    """Experiments sharing a server configuration: runtime and cores."""

    name: str
    runtime: str  # "go" | "node"
    cores: int  # GOMAXPROCS for Go; the Node process is pinned to this many CPUs

    def experiment_name(self, fraction: float) -> str:
        return f"{self.name}-{round(fraction * 100):02d}pct"


GROUPS = (Group("go-p1", "go", 1), Group("go-p2", "go", 2), Group("node", "node", 1))


def experiment_names(groups: Iterable[Group] = GROUPS) -> list[str]:
    return [group.experiment_name(f) for group in groups for f in RATE_FRACTIONS]


def taskset_prefix(cpus: str) -> list[str]:
    """``taskset -c CPUS`` when the tool exists and the machine has those CPUs; else no pinning."""
    wanted = {int(c) for c in cpus.split(",")}
    if shutil.which("taskset") is None or max(wanted) >= (os.cpu_count() or 1):
        return []
    return ["taskset", "-c", cpus]


def _loadavg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


class Server:
    """A server process started pinned, ready when it prints its JSON line; stopped with SIGTERM."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.argv = argv
        self.env = env
        self.process = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        self.ready = self._read_ready()

    def _read_ready(self) -> dict[str, Any]:
        box: list[str] = []
        stdout = self.process.stdout
        assert stdout is not None
        reader = threading.Thread(target=lambda: box.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(READY_TIMEOUT_S)
        if not box or not box[0].strip():
            self.kill()
            stderr = self.process.stderr.read() if self.process.stderr else ""
            raise RuntimeError(f"{Path(self.argv[-1]).name}: server not ready within {READY_TIMEOUT_S:.0f} s: "
                               f"{stderr.strip()[-500:]}")
        return json.loads(box[0])

    @property
    def url(self) -> str:
        return f"http://{self.ready['addr']}/work"

    def stop(self) -> dict[str, Any]:
        """SIGTERM, then the server's final JSON report (empty if it had to be killed)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            out, _err = self.process.communicate(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            return {}
        lines = [line for line in out.splitlines() if line.strip()]
        return json.loads(lines[-1]) if lines else {}

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start_server(group: Group, settings: Settings, binaries: dict[str, Path], cache: Path,
                 go_args: Sequence[str] = ()) -> Server:
    """The group's server, pinned as the experiments pin it; ``go_args`` are more flags of ``valserver``."""
    cpus = SERVER_CPUS[group.cores]
    if group.runtime == "go":
        argv = [str(binaries["valserver"]), "-addr", "127.0.0.1:0", "-cpu", f"{settings.cpu_s * 1e6:.0f}us",
                "-alloc", str(settings.alloc_bytes), "-alloc-chunk", str(settings.alloc_chunk_bytes),
                "-live-heap-mib", str(settings.live_heap_mib), "-max-seconds", str(_server_bound(settings)),
                *go_args]
        env = harness.go_env(cache, {"GOMAXPROCS": str(group.cores), "GOGC": str(settings.gogc)})
    else:
        argv = [str(harness.node_binary()), str(NODE_SERVER), "--port", "0", "--cpu-ms", f"{settings.cpu_s * 1e3:g}",
                "--alloc", str(settings.alloc_bytes), "--alloc-chunk", str(settings.alloc_chunk_bytes),
                "--live-heap-mib", str(settings.live_heap_mib), "--max-seconds", str(_server_bound(settings))]
        env = harness.node_env()
    return Server([*taskset_prefix(cpus), *argv], env)


def _server_bound(settings: Settings) -> int:
    return int(settings.duration_s + settings.grace_s + settings.capacity_s + 60)


def run_load(
    binary: Path, cores: int, args: list[str], cache: Path, timeout_s: float
) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """Run ``valload`` pinned beside a server of ``cores`` cores; (argv, env added, its JSON summary)."""
    extra = {"GOMAXPROCS": str(LOAD_GOMAXPROCS)}
    argv = [*taskset_prefix(LOAD_CPUS[cores]), str(binary), *args]
    done = harness.run_bounded(argv, display_argv(argv), harness.go_env(cache, extra), extra, timeout_s)
    return done.argv, extra, json.loads(done.stdout.strip().splitlines()[-1])


class SystemUnderTest(Protocol):
    """What an experiment drives and reads: a :class:`Server`, or a chain of services
    (:class:`~calibration.validation.chain.Chain`: its entry's ``url``, its first service's ``ready``,
    ``process`` and ``argv``)."""

    ready: dict[str, Any]
    process: subprocess.Popen[str]
    argv: list[str]

    @property
    def url(self) -> str: ...

    def stop(self) -> dict[str, Any]: ...


ServerStart = Callable[[], SystemUnderTest]
"""Starts the system under test: by default the group's server (:func:`start_server`); a chain of services
(:mod:`calibration.validation.chain`) gives its own."""


def measure_capacity(group: Group, settings: Settings, binaries: dict[str, Path], cache: Path,
                     start: ServerStart | None = None) -> dict[str, Any]:
    """Closed-loop saturation throughput of a fresh server (requests/s), with the commands that gave it."""
    with ForeignLoad() as foreign:
        server: SystemUnderTest = start() if start is not None else start_server(group, settings, binaries, cache)
        try:
            args = ["-url", server.url, "-rate", "0", "-concurrency", str(settings.capacity_concurrency),
                    "-conns", str(settings.capacity_concurrency), "-seconds", str(settings.capacity_s)]
            argv, env, summary = run_load(binaries["valload"], group.cores, args, cache, settings.capacity_s + 60)
        finally:
            server_report = server.stop()
    if summary.get("errors"):
        raise RuntimeError(f"{group.name}: {summary['errors']} failed requests in the capacity run")
    return {
        "method": "closed-loop saturation run: valload -rate 0 with -concurrency back-to-back clients "
        "on a fresh server, placed as in the experiments",
        "throughput_rps": summary["throughput"], "load_argv": argv, "load_env": env, "load_summary": summary,
        "server_argv": display_argv(server.argv), "server_ready": server.ready, "server_report": server_report,
        "foreign_cores": foreign.cores, "loadavg_after": _loadavg(),
    }


def display_argv(argv: Sequence[str]) -> list[str]:
    """A command line with the cache and repository paths reduced to program names."""
    return [Path(a).name if Path(a).is_absolute() and Path(a).exists() else a for a in argv]


def summarize(frame: pd.DataFrame, settings: Settings) -> tuple[dict[str, Any], pd.DataFrame]:
    """(summary, measured rows) of one run's per-request CSV: requests scheduled after the warm-up."""
    measured = frame[frame["scheduled_s"] >= settings.warmup_s]
    ok = measured[measured["status"] == "ok"]
    latency = ok["latency_s"].to_numpy(float)
    ends = ok["scheduled_s"].to_numpy(float) + latency
    window = settings.duration_s - settings.warmup_s
    in_window = int(((ends >= settings.warmup_s) & (ends < settings.duration_s)).sum())
    lag = (ok["sent_s"] - ok["scheduled_s"]).to_numpy(float)
    quantiles = np.quantile(latency, [0.5, 0.9, 0.99, 0.999]) if latency.size else [float("nan")] * 4
    summary = {
        "n": int(latency.size),
        "errors": int(len(measured) - len(ok)),
        "mean_s": float(latency.mean()),
        "p50_s": float(quantiles[0]),
        "p90_s": float(quantiles[1]),
        "p99_s": float(quantiles[2]),
        "p999_s": float(quantiles[3]),
        "max_s": float(latency.max()),
        "throughput_rps": in_window / window,
        "throughput_method": "responses that ended between the warm-up and the end of sending, per second",
        "dispatch_lag_mean_s": float(lag.mean()),
        "dispatch_lag_p99_s": float(np.quantile(lag, 0.99)),
    }
    rows = pd.DataFrame({
        "scheduled_us": np.round(measured["scheduled_s"].to_numpy(float) * 1e6).astype(np.int64),
        "latency_us": pd.array(np.round(measured["latency_s"].to_numpy(float) * 1e6), dtype="Int64"),
    })
    return summary, rows


def open_loop_args(url: str, rate: str, settings: Settings, out: Path, *extra: str) -> list[str]:
    """``valload``'s arguments for an open-loop run of ``settings`` at ``rate`` (as written) to ``url``, its
    per-request CSV to ``out`` (last, so that a shown command line can replace it); ``extra`` flags before."""
    return ["-url", url, "-rate", rate, "-conns", str(settings.conns), "-seconds", str(settings.duration_s),
            "-grace-seconds", str(settings.grace_s), "-seed", str(settings.seed), *extra, "-out", str(out)]


def fetch_stats(addr: str, timeout_s: float = STATS_TIMEOUT_S) -> dict[str, Any]:
    """The server's ``GET /stats`` (GC counters and CPU, see ``valserver`` and ``valserver.js``)."""
    with urllib.request.urlopen(f"http://{addr}/stats", timeout=timeout_s) as response:
        return dict(json.loads(response.read()))


class StatsSnapshots:
    """``GET /stats`` of a server at given times (s) after now, each on a timer thread, with the server
    process's CPU and page faults (:func:`~calibration.validation.machine.process_counters`) when ``pid`` is
    given; :meth:`collect` gives, per label, ``{"stats": ..., "error": None, "process": ...}`` or
    ``{"stats": None, "error": why, ...}``."""

    def __init__(self, addr: str, at_s: dict[str, float], pid: int | None = None,
                 more: Callable[[], dict[str, Any]] | None = None) -> None:
        self._taken: dict[str, dict[str, Any]] = {}
        self._pid = pid
        self._more = more
        self._timers = [threading.Timer(delay, self._take, (addr, label)) for label, delay in at_s.items()]
        self._labels = list(at_s)
        for timer in self._timers:
            timer.daemon = True
            timer.start()

    def _take(self, addr: str, label: str) -> None:
        process = process_counters(self._pid) if self._pid is not None else None
        more = {"processes": self._more()} if self._more is not None else {}
        try:
            self._taken[label] = {"stats": fetch_stats(addr), "error": None, "process": process, **more}
        except Exception as error:
            self._taken[label] = {"stats": None, "error": f"{type(error).__name__}: {error}", "process": process,
                                  **more}

    def collect(self) -> dict[str, dict[str, Any]]:
        for timer in self._timers:
            timer.cancel()  # one still waiting is not taken; one taking its snapshot finishes it
            timer.join(STATS_TIMEOUT_S + 1)
        return {label: self._taken.get(label, {"stats": None, "error": "not taken: the run ended first"})
                for label in self._labels}


def _diff(end: dict[str, Any], start: dict[str, Any], key: str) -> float | None:
    if not isinstance(end.get(key), int | float) or not isinstance(start.get(key), int | float):
        return None
    return float(end[key]) - float(start[key])


def gc_window(start: dict[str, Any] | None, end: dict[str, Any] | None, runtime: str,
              cores: int) -> tuple[dict[str, Any] | None, str | None]:
    """(what the server's GC did between two ``/stats`` snapshots, or None; why None).

    Go: GC cycles, GC CPU seconds by class (``runtime/metrics``' estimates), and the GC CPU fraction: GC CPU
    over the window's wall time times GOMAXPROCS (``cores``). Node.js: GC count and pause seconds, in all and
    by kind, and the fraction: pause seconds over the wall time times ``cores`` (the main thread's GC time).
    """
    if start is None or end is None:
        return None, "a /stats snapshot is missing"
    wall = _diff(end, start, "wall_s")
    if wall is None or wall <= 0:
        return None, "the snapshots' wall_s do not give a positive window"
    window: dict[str, Any] = {"wall_s": wall, "cores": cores}
    if runtime == "go":
        cycles = _diff(end, start, GO_GC_CYCLES)
        cpu = {name: _diff(end, start, key) for name, key in GO_GC_CPU_CLASSES.items()}
        if cycles is None or cpu["total"] is None:
            return None, f"the snapshots lack {GO_GC_CYCLES} or {GO_GC_CPU_CLASSES['total']}"
        window.update({"cycles": cycles, "gc_cpu_s": cpu, "gc_cpu_fraction": cpu["total"] / (wall * cores)})
    else:
        cycles, pause = _diff(end, start, "gc_count"), _diff(end, start, "gc_pause_s")
        if cycles is None or pause is None:
            return None, "the snapshots lack gc_count or gc_pause_s"
        kinds = sorted(set(start.get("gc_by_kind", {})) | set(end.get("gc_by_kind", {})))
        by_kind = {kind: {field: _diff(end.get("gc_by_kind", {}).get(kind, {}),
                                       start.get("gc_by_kind", {}).get(kind, {}), field)
                          for field in ("count", "pause_s")} for kind in kinds}
        window.update({"cycles": cycles, "pause_s": pause, "by_kind": by_kind,
                       "gc_cpu_fraction": pause / (wall * cores)})
    window["cycles_per_s"] = window["cycles"] / wall
    return window, None


def process_window(start: dict[str, Any] | None, end: dict[str, Any] | None,
                   wall_s: float) -> dict[str, float] | None:
    """The server process's user and system CPU and minor page faults between two snapshots, and the
    cores they took over ``wall_s``; None when a snapshot lacks them."""
    if not start or not end:
        return None
    window = {key: end[key] - start[key] for key in ("user_s", "system_s", "minor_faults")}
    window.update({"wall_s": wall_s, "system_cores": window["system_s"] / wall_s,
                   "minor_faults_per_s": window["minor_faults"] / wall_s})
    return window


def run_experiment(
    group: Group, fraction: float, capacity: dict[str, Any], settings: Settings, binaries: dict[str, Path],
    cache: Path, out_root: Path, busy_before: float | None = None, earlier_attempts: Sequence[str] = (),
    folder: Path | None = None, extra_config: dict[str, Any] | None = None, start: ServerStart | None = None,
) -> tuple[Path, float | None]:
    """One experiment: a fresh server, the open-loop run, its three files under ``out_root/<name>`` (or
    ``folder``); (the folder, the cores other processes used meanwhile). The server's ``/stats`` is read at
    the end of the warm-up and when sending ends (``summary.json``'s ``gc_stats`` and ``gc_window``);
    ``extra_config`` is added to ``config.json``; ``start`` starts the system under test (default: the group's
    server)."""
    name = group.experiment_name(fraction)
    rate = fraction * capacity["throughput_rps"]
    loadavg_before = _loadavg()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="cnsim-val-") as scratch, ForeignLoad() as foreign:
        server: SystemUnderTest = start() if start is not None else start_server(group, settings, binaries, cache)
        csv_path = Path(scratch) / "latency.csv"
        try:
            args = open_loop_args(server.url, f"{rate:.3f}", settings, csv_path)
            snapshots = StatsSnapshots(server.ready["addr"], {"warmup_end": settings.warmup_s,
                                                              "sending_end": settings.duration_s},
                                       server.process.pid, getattr(server, "counters", None))
            try:
                load_argv, load_env, load_summary = run_load(
                    binaries["valload"], group.cores, args, cache, 2 * (settings.duration_s + settings.grace_s) + 30
                )
            finally:
                gc_stats = snapshots.collect()
        finally:
            server_report = server.stop()
        frame = pd.read_csv(csv_path, dtype={"status": str})
    summary, rows = summarize(frame, settings)
    summary.update({"pool_waits": load_summary["pool_waits"], "new_conns": load_summary["new_conns"],
                    "timed_out": load_summary["timed_out"], "server_report": server_report,
                    "load_summary": load_summary})
    window, missing = gc_window(gc_stats["warmup_end"]["stats"], gc_stats["sending_end"]["stats"], group.runtime,
                                group.cores)
    summary.update({
        "gc_stats": {**gc_stats, "method": "GET /stats of the server (runtime/metrics for Go, perf_hooks 'gc' "
                     "entries for Node.js) on timers started with the load generator, at warmup_s and duration_s"},
        "gc_window": window, "gc_window_missing": missing,
        "server_process_window": process_window(gc_stats["warmup_end"].get("process"),
                                                gc_stats["sending_end"].get("process"),
                                                settings.duration_s - settings.warmup_s),
    })
    if "processes" in gc_stats["warmup_end"] and "processes" in gc_stats["sending_end"]:
        first, last = gc_stats["warmup_end"]["processes"], gc_stats["sending_end"]["processes"]
        summary["processes_window"] = {name: process_window(first[name], last.get(name),
                                                            settings.duration_s - settings.warmup_s)
                                       for name in first}
    load_argv = [a if a != str(csv_path) else "latency.csv" for a in load_argv]
    config = {
        "name": name,
        "runtime": group.runtime,
        "cores": group.cores,
        "gomaxprocs": group.cores if group.runtime == "go" else None,
        "rate_fraction": fraction,
        "rate_rps": rate,
        "capacity": capacity,
        "settings": asdict(settings),
        "server": {"argv": display_argv(server.argv), "env": _server_env(group, settings), "ready": server.ready,
                   "cpus": SERVER_CPUS[group.cores]},
        "load": {"argv": display_argv(load_argv), "env": load_env, "cpus": LOAD_CPUS[group.cores]},
        "placement": _placement(group),
        "date": started,
        "host": socket.gethostname(),
        "cores_online": os.cpu_count(),
        "platform": platform.platform(),
        "go_version": harness.go_version(cache),
        "node_version": harness.node_version() if group.runtime == "node" else None,
        "harness_source_sha256": harness.source_hash(),
        "server_source_sha256": hashlib.sha256(_server_source(group).read_bytes()).hexdigest(),
        "loadavg_before": loadavg_before,
        "loadavg_after": _loadavg(),
        "foreign_cores": foreign.cores,
        "foreign_cores_method": "machine busy CPU time (/proc/stat) less the server's and load generator's, "
        "over the run's wall time: what other processes used while the experiment ran",
        "busy_cores_before": busy_before,
        "earlier_attempts": list(earlier_attempts),
        **(extra_config or {}),
    }
    folder = folder or out_root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (folder / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    rows.to_csv(folder / "latency.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
    return folder, foreign.cores


def _server_env(group: Group, settings: Settings) -> dict[str, str]:
    return {"GOMAXPROCS": str(group.cores), "GOGC": str(settings.gogc)} if group.runtime == "go" else {}


def _placement(group: Group) -> str:
    pinned = bool(taskset_prefix("0"))
    if not pinned:
        return "not pinned (taskset unavailable or a single CPU): server and load generator share every CPU"
    if group.cores == 1:
        return "taskset: server on CPU 0, load generator on CPU 1 (its own core)"
    return "taskset: server and load generator both on CPUs 0-1 (the load generator's CPU competes with the server's)"


def _server_source(group: Group) -> Path:
    return NODE_SERVER if group.runtime == "node" else harness.source_dir() / "valserver" / "main.go"


def select_groups(names: Iterable[str] | None) -> list[Group]:
    """The groups named (``go-p1``, ``go-p2``, ``node``), all by default; ValueError naming an unknown one."""
    if not names:
        return list(GROUPS)
    known = {group.name: group for group in GROUPS}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"--only: unknown group {', '.join(unknown)} (known: {', '.join(known)})")
    return [known[name] for name in names]


def run_campaign(
    out_root: Path = VALIDATION_ROOT,
    groups: Iterable[Group] = GROUPS,
    settings: Settings | None = None,
    fractions: Sequence[float] = RATE_FRACTIONS,
    progress: Callable[[str], None] | None = None,
    on_done: Callable[[Path], None] | None = None,
) -> list[Path]:
    """Capacity then one experiment per rate fraction, for each group; the experiment folders written.

    Before each run it waits for a quiet machine (``settings.quiet_cores``, at most
    ``settings.quiet_wait_s``); a run during which other processes used more than
    ``settings.max_foreign_cores``, or in which a request found no idle connection
    (the pool is sized so that only a stall exhausts it), is run again, up to
    ``settings.attempts`` times; the last attempt is kept, and config.json lists
    why the earlier ones were not (``earlier_attempts``).
    ``progress`` receives messages, ``on_done`` each experiment folder written.
    """
    settings = settings or Settings()
    groups = list(groups)
    say = progress or (lambda message: None)
    cache = harness.cache_dir()
    say("building valserver and valload")
    binaries = harness.build(["valserver", "valload"], cache)
    touched = {"memory_touch": memory_touch(settings, say)}
    folders = []
    for group in groups:
        capacity = _attempts(
            f"{group.name}: capacity (closed loop, {settings.capacity_s:g} s)", settings, say,
            lambda _busy, _earlier: _capacity_problem(
                measure_capacity(group, settings, binaries, cache), settings))  # noqa: B023 - called in this iteration
        for fraction in fractions:
            folders.append(_run_with_attempts(group, fraction, capacity, settings, binaries, cache, out_root, say,
                                              touched))
            if on_done is not None:
                on_done(folders[-1])
    return folders


def memory_touch(settings: Settings, say: Callable[[str], None]) -> dict[str, Any] | None:
    """What touching ``settings.touch_probe_gib`` of fresh memory costs now (see
    :mod:`calibration.validation.machine`); the report, or None when the settings ask for none."""
    if settings.touch_probe_gib <= 0:
        return None
    report = touch_costs(int(settings.touch_probe_gib * GIB), say)
    costs = [entry["system_us_per_page"] for entry in report["by_gib"]]
    if costs:
        say(f"touched {report['bytes'] / GIB:.1f} GiB of memory: {max(costs):.1f} us a page at most, "
            f"{min(costs):.1f} at least")
    return report


def rerun_experiment(name: str, out_root: Path = VALIDATION_ROOT, settings: Settings | None = None,
                     progress: Callable[[str], None] | None = None) -> Path:
    """Run one experiment again at the rate fraction and group capacity in its config.json."""
    config = json.loads((out_root / name / "config.json").read_text())
    group = next((g for g in GROUPS if g.name == name.rsplit("-", 1)[0]), None)
    if group is None:
        raise ValueError(f"experiment {name!r}: no group of that name (known: {', '.join(g.name for g in GROUPS)})")
    cache = harness.cache_dir()
    binaries = harness.build(["valserver", "valload"], cache)
    settings = settings or Settings()
    say = progress or (lambda message: None)
    return _run_with_attempts(group, float(config["rate_fraction"]), config["capacity"], settings,
                              binaries, cache, out_root, say, {"memory_touch": memory_touch(settings, say)})


def _run_with_attempts(group: Group, fraction: float, capacity: dict[str, Any], settings: Settings,
                       binaries: dict[str, Path], cache: Path, out_root: Path, say: Callable[[str], None],
                       extra_config: dict[str, Any] | None = None) -> Path:
    rate = fraction * capacity["throughput_rps"]
    label = f"{group.experiment_name(fraction)}: {rate:.0f} req/s for {settings.duration_s:g} s"

    def run(busy: float | None, earlier: list[str]) -> tuple[Path, str | None]:
        folder, foreign = run_experiment(group, fraction, capacity, settings, binaries, cache, out_root, busy,
                                         earlier, extra_config=extra_config)
        summary = json.loads((folder / "summary.json").read_text())
        if foreign is not None and foreign > settings.max_foreign_cores:
            return folder, f"other processes used {foreign:.2f} cores meanwhile"
        if summary["pool_waits"] and settings.attempts > 1:
            return folder, (f"{summary['pool_waits']} requests found no idle connection: the server stalled "
                            f"(max latency {summary['max_s'] * 1e3:.0f} ms)")
        return folder, None

    return _attempts(label, settings, say, run)


def _attempts(label: str, settings: Settings, say: Callable[[str], None],
              run: Callable[[float | None, list[str]], tuple[Any, str | None]]) -> Any:
    """Run until a run is undisturbed or ``settings.attempts`` ran (the last is kept), each after a quiet wait."""
    earlier: list[str] = []
    for number in range(1, settings.attempts + 1):
        busy = wait_until_quiet(settings.quiet_cores, settings.quiet_wait_s, say)
        say(label)
        result, problem = run(busy, earlier)
        if problem is None or number == settings.attempts:
            return result
        say(f"{label}: {problem}; running it again")
        earlier.append(problem)
    raise AssertionError("unreachable")


def _capacity_problem(capacity: dict[str, Any], settings: Settings) -> tuple[dict[str, Any], str | None]:
    foreign = capacity["foreign_cores"]
    if foreign is not None and foreign > settings.max_foreign_cores:
        return capacity, f"other processes used {foreign:.2f} cores meanwhile"
    return capacity, None
