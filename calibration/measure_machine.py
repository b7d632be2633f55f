"""The machine harnesses: what this machine adds to a request, and sysmon beside a spinning goroutine.

Both run the Go validation server (``valserver``), and ``machine`` its load
generator (``valload``), pinned as the validation experiments pin them (the
placement helpers of :mod:`calibration.validation.experiments`, imported when a
harness runs). ``machine`` (:func:`measure_machine`) writes
``machine_work.csv``, ``machine_wake.csv``, ``machine_slices.csv``,
``machine_placement.csv`` and ``machine_load_cpu.csv``; ``sysmon``
(:func:`measure_sysmon`), a harness of its own so that it can be measured again
without the rest, writes ``machine_sysmon.csv``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calibration.campaign import Recorder, Settings, _csv_rows

if TYPE_CHECKING:
    from calibration.validation.experiments import Server
    from calibration.validation.experiments import Settings as LoadSettings

#: machine: the burn of the validation server (s), its loops and longest idle gap before one (work jitter).
MACHINE_BURN_S = 1e-3
MACHINE_JITTER_LOOPS, MACHINE_JITTER_LOOPS_QUICK = 4000, 200
MACHINE_JITTER_MAX_GAP_MS = 100
#: work_stretch: burns over the range of request CPU the validation covers (s), loops of each (full, quick).
STRETCH_BURNS_S = (3e-4, 1e-3, 3e-3)
STRETCH_LOOPS, STRETCH_LOOPS_QUICK = 3000, 100
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


def _work_jitter(rec: Recorder, s: Settings, burn_s: float = MACHINE_BURN_S, loops: int | None = None,
                 harness_name: str = "machine") -> list[dict[str, Any]]:
    """``valserver -jitter-samples``: the validation server's burn loop of ``burn_s`` (1 ms) after random idle
    gaps (wall and thread CPU time), pinned as the experiments pin a one-core server."""
    from calibration.validation import experiments

    if loops is None:
        loops = MACHINE_JITTER_LOOPS_QUICK if s.quick else MACHINE_JITTER_LOOPS
    pin = experiments.taskset_prefix(experiments.SERVER_CPUS[1])
    args = ["-cpu", f"{burn_s * 1e6:.0f}us", "-alloc", "0", "-live-heap-mib", "0", "-jitter-samples",
            str(loops), "-jitter-max-gap", f"{MACHINE_JITTER_MAX_GAP_MS}ms", "-max-seconds", "120"]
    result = rec.run(harness_name, "valserver", args, {"GOMAXPROCS": "1"}, timeout=180, prefix=pin)
    return [{**row, "burn_s": burn_s} for row in _csv_rows(result.stdout)]


def measure_work_stretch(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    """The burn loop's stretch at each of :data:`STRETCH_BURNS_S`, in turn: whether the wall time over the CPU
    time of fixed work depends on how long the work is (the validation covers 0.3 to 3 ms per request)."""
    loops = STRETCH_LOOPS_QUICK if s.quick else STRETCH_LOOPS
    rows = [row for burn in STRETCH_BURNS_S for row in _work_jitter(rec, s, burn, loops, "work_stretch")]
    return {"machine_work_cpu.csv": rows}


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
    done = sorted((float(r["scheduled_s"]), float(r["latency_s"])) for r in rows if r["status"] == "ok")
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

