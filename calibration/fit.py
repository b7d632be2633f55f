"""Fit the raw data of one host (``calibration/data/<host>/``) into parameter sets (``calibration/params/``).

Each function below turns one CSV into one or more parameter sets in the format
of :mod:`sim.params`; :data:`FITS` lists them all. Every fit is deterministic:
bootstrap streams come from a ``numpy.random.Generator`` seeded by a stable hash
of the parameter set's name.

GC pauses use the steady phase only (cycles after the live heap was built,
none forced), pooled over heap sizes and GOGC: whether pauses depend on the
heap is what the ``*_vs_heap`` lines show. gctrace rounds times (see
:mod:`calibration.gctrace`); fits use the midpoint of each printed value's
interval, and the bootstrap rounds its replicates the same way. V8's pauses
(Node.js, :mod:`calibration.v8trace`) are treated alike: steady-phase
collections pooled over live sets and survival mixes, each printed pause (to
0.1 ms) taken at the midpoint of its rounding interval.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from calibration import gctrace, v8trace
from calibration.distfit import fit_constant, fit_distribution, fit_linear, step_resolution

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
PARAMS_DIR = PACKAGE_DIR / "params"
DATA_ROOT = PACKAGE_DIR / "data"

STW = {
    "sweep_termination": ("sweep_term_s", "STW sweep termination: the first stop-the-world pause of a cycle"),
    "mark_termination": ("mark_term_s", "STW mark termination: the second stop-the-world pause of a cycle"),
}
HARNESS_OF = {
    "gc_pauses.csv": "gc",
    "goroutines.csv": "goroutines",
    "channel_handoff.csv": "channels",
    "sched_wakeup.csv": "sched",
    "json_codec.csv": "json",
    "http_latency.csv": "http",
    "http_server_cpu.csv": "http",
    "go_process.csv": "go_process",
    "node_process.csv": "node_process",
    "node_isolate.csv": "node_isolate",
    "node_worker.csv": "node_worker",
    "node_gc_pauses.csv": "node_gc",
    "node_http_cpu.csv": "node_http",
}
#: V8 collections: parameter-set stem and the ``kind`` of ``node_gc_pauses.csv``.
NODE_GC_KINDS = {"scavenge": "scavenge", "markcompact": "mark-compact"}
#: httplat's cases (``case`` column): what each measures.
HTTP_CASES = {
    "h1_reused": "HTTP/1.1 cleartext, reused connection",
    "h1_new": "HTTP/1.1 cleartext, new connection per request",
    "h1_tls_new": "HTTP/1.1 over TLS 1.3, new connection (full handshake) per request",
    "h2_tls_reused": "HTTP/2 over TLS 1.3, reused connection",
    "h2_tls_new": "HTTP/2 over TLS 1.3, new connection (full handshake) per request",
}


def seed_of(name: str) -> int:
    """A stable 64-bit seed from a parameter set's name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def default_data_dir() -> Path:
    """The only host folder under ``calibration/data/`` (``--data`` chooses among several)."""
    hosts = sorted(p for p in DATA_ROOT.iterdir() if p.is_dir() and (p / "meta.json").is_file())
    if len(hosts) != 1:
        found = ", ".join(p.name for p in hosts) or "none"
        raise ValueError(f"--data: choose a data folder; calibration/data/ holds {found}")
    return hosts[0]


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path.resolve())


class Dataset:
    """One host's data folder: its CSVs (read once) and meta.json."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        meta_path = self.folder / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"no meta.json in {self.folder}")
        self.meta = json.loads(meta_path.read_text())
        self._frames: dict[str, pd.DataFrame] = {}

    def has(self, filename: str) -> bool:
        return (self.folder / filename).is_file()

    def frame(self, filename: str) -> pd.DataFrame:
        if filename not in self._frames:
            self._frames[filename] = pd.read_csv(self.folder / filename)
        return self._frames[filename]

    def measured(self, filename: str) -> dict[str, Any]:
        """Host, date, versions, commands and load of the harness run that wrote ``filename``."""
        run = self.meta.get("harnesses", {}).get(HARNESS_OF[filename], {})
        commands = run.get("commands", [])
        loads = [c["loadavg_before"][0] for c in commands] + [c["loadavg_after"][0] for c in commands]
        version = "node_version" if HARNESS_OF[filename].startswith("node_") else "go_version"
        return {
            "host": self.meta.get("host"),
            "date": run.get("date", self.meta.get("date")),
            version: self.meta.get(version),
            "cores": self.meta.get("cores"),
            "quick": run.get("quick"),
            "harness_source_sha256": run.get("harness_source_sha256", self.meta.get("harness_source_sha256")),
            "loadavg_1min_max": max(loads) if loads else None,
            "commands": [{"argv": c["argv"], "env": c["env"]} for c in commands],
        }

    def header(self, name: str, description: str, unit: str, filename: str, kind: str) -> dict[str, Any]:
        return {
            "name": name,
            "description": description,
            "unit": unit,
            "dataset": _relative(self.folder / filename),
            "measured": self.measured(filename),
            "kind": kind,
        }


def _steady_gc(data: Dataset) -> pd.DataFrame:
    frame = data.frame("gc_pauses.csv")
    return frame[(frame["phase"] == "steady") & (~frame["forced"].astype(bool))]


def _mark_cpu_s(steady: pd.DataFrame) -> np.ndarray:
    return sum(gctrace.midpoint(steady[c].to_numpy()) for c in ("cpu_assist_s", "cpu_background_s", "cpu_idle_s"))


def observations(name: str, data: Dataset) -> pd.DataFrame:
    """The samples behind parameter set ``name``: column ``y``, with ``x`` for a line and ``group`` where useful."""
    if name.startswith("go.gc."):
        steady = _steady_gc(data)
        group = (steady["heap_target_bytes"] // 2**20).astype(str) + " MiB, GOGC " + steady["gogc"].astype(str)
        if name == "go.gc.mark_cpu_vs_heap":
            y = _mark_cpu_s(steady)
        else:
            kind = name.removeprefix("go.gc.stw_").removesuffix("_vs_heap")
            y = gctrace.midpoint(steady[STW[kind][0]].to_numpy())
        return pd.DataFrame({"x": steady["heap_live_bytes"].to_numpy(), "y": y, "group": group.to_numpy()})
    if name.startswith("go.goroutine."):
        frame = data.frame("goroutines.csv")
        if name == "go.goroutine.spawn_s":
            spawn = frame[frame["measurement"] == "spawn"]
            return pd.DataFrame({"y": spawn["ns_per_goroutine"].to_numpy() * 1e-9,
                                 "group": spawn["n"].astype(str).to_numpy() + " goroutines"})
        fresh = frame[(frame["measurement"] == "memory") & (frame["rep"] == 0)]
        return pd.DataFrame({"y": fresh["sys_bytes_per_goroutine"].to_numpy(),
                             "group": fresh["n"].astype(str).to_numpy() + " blocked, fresh process"})
    if name.startswith("go.chan.handoff_"):
        frame = data.frame("channel_handoff.csv")
        channel = name.removeprefix("go.chan.handoff_").removesuffix("_s")
        return pd.DataFrame({"y": frame.loc[frame["channel"] == channel, "latency_s"].to_numpy()})
    if name == "go.sched.wakeup_late_s":
        frame = data.frame("sched_wakeup.csv")
        idle = frame[(frame["gomaxprocs"] == 2) & (frame["busy"] == 0)]
        return pd.DataFrame({"y": idle["late_s"].to_numpy()})
    if name.startswith("go.json."):
        frame = data.frame("json_codec.csv")
        op, _, what = name.removeprefix("go.json.").partition("_")
        rows = frame[frame["operation"] == op]
        column = "ns_per_op" if what == "s" else "bytes_per_op"
        scale = 1e-9 if what == "s" else 1.0
        return pd.DataFrame({"y": rows[column].to_numpy() * scale})
    if name in ("go.http.server_cpu_s", "go.http.tls_handshake_server_cpu_s"):
        per_request = _http_server_cpu_per_request(data)
        if name == "go.http.server_cpu_s":
            y = per_request["h1_reused"]
        else:
            y = per_request["h1_tls_new"] - per_request["h1_new"]
        return pd.DataFrame({"y": y.to_numpy(), "group": "round " + y.index.astype(str)})
    if name.startswith("go.http."):
        frame = data.frame("http_latency.csv")
        case = name.removeprefix("go.http.").removesuffix("_s")
        return pd.DataFrame({"y": frame.loc[frame["case"] == case, "latency_s"].to_numpy()})
    if name.startswith("go.process."):
        frame = data.frame("go_process.csv")
        measurement, column = ("start", "start_s") if name == "go.process.start_s" else ("rss", "rss_bytes")
        return pd.DataFrame({"y": frame.loc[frame["measurement"] == measurement, column].to_numpy()})
    if name == "node.http.server_cpu_s":
        frame = data.frame("node_http_cpu.csv")
        return pd.DataFrame({"y": (frame["server_cpu_s"] / frame["requests"]).to_numpy(),
                             "group": "round " + frame["round"].astype(str).to_numpy()})
    if name.startswith("node."):
        return _node_observations(name, data)
    raise KeyError(f"no observations known for parameter set {name!r}")


def _steady_v8(data: Dataset, kind: str) -> pd.DataFrame:
    frame = data.frame("node_gc_pauses.csv")
    return frame[(frame["phase"] == "steady") & (frame["kind"] == kind)]


def _node_observations(name: str, data: Dataset) -> pd.DataFrame:
    if name == "node.gc.markcompact_mark_cpu_vs_heap":
        rows = _steady_v8(data, "mark-compact")
        return pd.DataFrame({"x": rows["heap_after_bytes"].to_numpy(),
                             "y": (rows["incremental_s"] + rows["background_mark_s"]).to_numpy(),
                             "group": (rows["live_target_bytes"] // 2**20).astype(str).to_numpy() + " MiB live"})
    if name.startswith("node.gc."):
        stem = name.removeprefix("node.gc.").split("_pause")[0]
        rows = _steady_v8(data, NODE_GC_KINDS[stem])
        group = ((rows["live_target_bytes"] // 2**20).astype(str) + " MiB, survive " + rows["survive"].astype(str)
                 + ", promote " + rows["promote"].astype(str))
        out = pd.DataFrame({"y": v8trace.midpoint(rows["pause_s"].to_numpy()), "group": group.to_numpy()})
        if name.endswith("_vs_survived"):
            out.insert(0, "x", rows["survived_bytes"].to_numpy())
        elif name.endswith("_vs_heap"):
            out.insert(0, "x", rows["heap_after_bytes"].to_numpy())
        return out
    filename, measurement, column = {
        "node.process.start_s": ("node_process.csv", "start", "start_s"),
        "node.process.rss_bytes": ("node_process.csv", "rss", "rss_bytes"),
        "node.isolate.context_create_s": ("node_isolate.csv", "context_create", "seconds"),
        "node.isolate.script_run_s": ("node_isolate.csv", "script_run", "seconds"),
        "node.isolate.module_load_s": ("node_isolate.csv", "module_load", "seconds"),
        "node.isolate.context_bytes": ("node_isolate.csv", "context_memory", "rss_bytes_per_context"),
        "node.worker.start_s": ("node_worker.csv", "start", "seconds"),
        "node.worker.memory_bytes": ("node_worker.csv", "memory", "rss_bytes_per_worker"),
        "node.worker.message_s_vs_bytes": ("node_worker.csv", "message", "seconds"),
    }.get(name, (None, None, None))
    if filename is None:
        raise KeyError(f"no observations known for parameter set {name!r}")
    frame = data.frame(filename)
    rows = frame[frame["measurement"] == measurement]
    if name == "node.worker.message_s_vs_bytes":
        return pd.DataFrame({"x": rows["bytes"].to_numpy(), "y": rows[column].to_numpy(),
                             "group": rows["bytes"].astype(int).astype(str).to_numpy() + " bytes"})
    return pd.DataFrame({"y": rows[column].to_numpy()})


def _http_server_cpu_per_request(data: Dataset) -> pd.DataFrame:
    """Server CPU seconds per request, one row per round, one column per case."""
    frame = data.frame("http_server_cpu.csv")
    return (frame.assign(y=frame["server_cpu_s"] / frame["requests"])
            .pivot(index="round", columns="case", values="y").dropna())


def _rounded(values: np.ndarray) -> np.ndarray:
    return gctrace.midpoint(gctrace.quantize(values))


def _clock_fit(name: str, y: np.ndarray) -> dict[str, Any]:
    """A distribution fit of clock-difference samples: bootstrap replicates are rounded to the data's step."""
    step = step_resolution(y, 1e-9)

    def measurement(values: np.ndarray) -> np.ndarray:
        return np.maximum(np.rint(values / step), 1) * step

    result = fit_distribution(y, np.random.default_rng(seed_of(name)), measurement=measurement, resolution=step)
    result["fit"]["bootstrap_seed"] = seed_of(name)
    return result


def fit_gc_stw(data: Dataset) -> list[dict[str, Any]]:
    steady = _steady_gc(data)
    out = []
    for kind, (column, what) in STW.items():
        name = f"go.gc.stw_{kind}"
        y = observations(name, data)["y"].to_numpy()
        result = fit_distribution(y, np.random.default_rng(seed_of(name)), measurement=_rounded, resolution=1e-6)
        groups = steady.assign(y=y).groupby(["heap_target_bytes", "gogc"])["y"]
        result["fit"].update(
            {
                "samples": "steady-phase GC cycles (none forced), pooled over heap sizes and GOGC; "
                "each value the midpoint of its gctrace rounding interval",
                "bootstrap_seed": seed_of(name),
                "by_heap_and_gogc": [
                    {"heap_target_bytes": int(h), "gogc": int(g), "n": int(s.size), "median_s": float(s.median()),
                     "p99_s": float(s.quantile(0.99))}
                    for (h, g), s in groups
                ],
            }
        )
        out.append({**data.header(name, f"Go GC {what} (seconds), GOMAXPROCS {int(steady['gomaxprocs'].iloc[0])}",
                                  "s", "gc_pauses.csv", "distribution"), **result})
        points = observations(f"{name}_vs_heap", data)
        line = fit_linear(points["x"].to_numpy(), points["y"].to_numpy())
        out.append({**data.header(f"{name}_vs_heap", f"Go GC {what}, as a line in the live heap", "s",
                                  "gc_pauses.csv", "linear"),
                    "x": "heap_live_bytes", "y": column, **line})
    return out


def fit_gc_mark_cpu(data: Dataset) -> list[dict[str, Any]]:
    points = observations("go.gc.mark_cpu_vs_heap", data)
    line = fit_linear(points["x"].to_numpy(), points["y"].to_numpy())
    return [{**data.header("go.gc.mark_cpu_vs_heap",
                           "CPU seconds of one GC cycle's concurrent mark (assists + background + idle workers) "
                           "as a line in the live (marked) heap; the slope is mark CPU seconds per live byte",
                           "s", "gc_pauses.csv", "linear"),
             "x": "heap_live_bytes", "y": "cpu_assist_s + cpu_background_s + cpu_idle_s", **line}]


def fit_goroutines(data: Dataset) -> list[dict[str, Any]]:
    from scipy import stats as scipy_stats

    frame = data.frame("goroutines.csv")
    spawn = frame[frame["measurement"] == "spawn"]
    result = fit_constant(observations("go.goroutine.spawn_s", data)["y"].to_numpy())
    sizes = sorted(spawn["n"].unique())
    by_n = {int(n): spawn.loc[spawn["n"] == n, "ns_per_goroutine"].to_numpy() * 1e-9 for n in sizes}
    result["fit"]["by_goroutines"] = [{"n_goroutines": n, "mean_s": float(v.mean()), "reps": int(v.size)}
                                      for n, v in by_n.items()]
    if len(by_n) == 2:
        a, b = by_n.values()
        welch = scipy_stats.ttest_ind(a, b, equal_var=False)
        result["goodness_of_fit"]["same_mean_across_sizes"] = {
            "test": f"Welch t-test, {sizes[0]} vs {sizes[1]} goroutines",
            "statistic": float(welch.statistic), "p_value": float(welch.pvalue)}
    out = [{**data.header("go.goroutine.spawn_s",
                          "Cost of one goroutine's spawn, first run and exit, amortised over rounds of 10k and "
                          "100k goroutines (time of a round / goroutines)", "s", "goroutines.csv", "constant"),
            **result}]
    memory = frame[frame["measurement"] == "memory"]
    fresh, adapted = memory[memory["rep"] == 0], memory[memory["rep"] == 1]
    stack = fit_constant(observations("go.goroutine.stack_bytes", data)["y"].to_numpy())
    stack["fit"].update({
        "samples": "first round of blocked goroutines in a fresh process per repetition",
        "stack_inuse_bytes_per_goroutine_mean": float(fresh["stack_inuse_bytes_per_goroutine"].mean()),
        "heap_inuse_bytes_per_goroutine_mean": float(fresh["heap_inuse_bytes_per_goroutine"].mean()),
        "second_round_stack_inuse_bytes_per_goroutine_mean": float(adapted["stack_inuse_bytes_per_goroutine"].mean())
        if len(adapted) else None,
    })
    out.append({**data.header("go.goroutine.stack_bytes",
                              "Resident memory per blocked goroutine: runtime.MemStats.Sys delta / goroutines, "
                              "10k goroutines blocked on a channel in a fresh process (stack, g structure and "
                              "runtime overhead; StackInuse and HeapInuse shares beside it, and the larger stack "
                              "a second round starts with once the runtime's adaptive stack size has grown)",
                              "bytes", "goroutines.csv", "constant"), **stack})
    return out


def fit_channels(data: Dataset) -> list[dict[str, Any]]:
    frame = data.frame("channel_handoff.csv")
    out = []
    for channel, group in frame.groupby("channel", sort=True):
        name = f"go.chan.handoff_{channel}_s"
        result = _clock_fit(name, observations(name, data)["y"].to_numpy())
        capacity = int(group["capacity"].iloc[0])
        out.append({**data.header(name, f"Go channel hand-off latency, {channel} channel (capacity {capacity}): "
                                  "send to a parked receiver until it runs, GOMAXPROCS "
                                  f"{int(group['gomaxprocs'].iloc[0])}", "s", "channel_handoff.csv",
                                  "distribution"), **result})
    return out


def fit_sched(data: Dataset) -> list[dict[str, Any]]:
    frame = data.frame("sched_wakeup.csv")
    name = "go.sched.wakeup_late_s"
    result = _clock_fit(name, observations(name, data)["y"].to_numpy())
    result["fit"]["by_gomaxprocs_and_busy"] = [
        {"gomaxprocs": int(p), "busy": int(b), "n": int(s.size), "median_s": float(s.median()),
         "p99_s": float(s.quantile(0.99))}
        for (p, b), s in frame.groupby(["gomaxprocs", "busy"])["late_s"]
    ]
    return [{**data.header(name, "How late a goroutine sleeping 1 ms resumes on an otherwise idle runtime "
                           "(GOMAXPROCS 2, no busy goroutines); the fit also lists the lateness with busy "
                           "goroutines", "s", "sched_wakeup.csv", "distribution"), **result}]


def fit_json(data: Dataset) -> list[dict[str, Any]]:
    frame = data.frame("json_codec.csv")
    out = []
    for op, group in frame.groupby("operation", sort=True):
        size = int(group["object_bytes"].iloc[0])
        timing = fit_constant(observations(f"go.json.{op}_s", data)["y"].to_numpy())
        timing["fit"]["allocs_per_op_mean"] = float(group["allocs_per_op"].mean())
        out.append({**data.header(f"go.json.{op}_s", f"encoding/json {op.title()} of a {size}-byte object, "
                                  "per call (testing.Benchmark ns/op)", "s", "json_codec.csv", "constant"),
                    **timing})
        alloc = fit_constant(observations(f"go.json.{op}_alloc_bytes", data)["y"].to_numpy())
        out.append({**data.header(f"go.json.{op}_alloc_bytes", f"Bytes allocated by one encoding/json "
                                  f"{op.title()} of a {size}-byte object (testing.Benchmark B/op)", "bytes",
                                  "json_codec.csv", "constant"), **alloc})
    return out


def fit_http_latency(data: Dataset) -> list[dict[str, Any]]:
    frame = data.frame("http_latency.csv")
    out = []
    for case, what in HTTP_CASES.items():
        rows = frame[frame["case"] == case]
        if rows.empty:
            continue
        name = f"go.http.{case}_s"
        result = _clock_fit(name, observations(name, data)["y"].to_numpy())
        result["fit"].update({"samples": "sequential requests (one at a time), after untimed warm-up ones; the "
                              "cases take turns in rounds", "protocols": sorted(rows["protocol"].unique()),
                              "median_s": float(rows["latency_s"].median()),
                              "p99_s": float(rows["latency_s"].quantile(0.99))})
        out.append({**data.header(name, f"Go net/http request latency, {what}: GET of a 13-byte body on "
                                  "127.0.0.1, client and server in two processes, from just before Client.Do "
                                  f"until the body is closed, GOMAXPROCS {int(rows['gomaxprocs'].iloc[0])}", "s",
                                  "http_latency.csv", "distribution"), **result})
    return out


def fit_http_server_cpu(data: Dataset) -> list[dict[str, Any]]:
    frame = data.frame("http_server_cpu.csv")
    per_request = _http_server_cpu_per_request(data)
    reused = frame[frame["case"] == "h1_reused"]
    result = fit_constant(observations("go.http.server_cpu_s", data)["y"].to_numpy())
    result["fit"].update({
        "samples": f"rounds of {int(reused['requests'].iloc[0])} sequential requests: the server process's "
        "getrusage user + system time over the round / requests",
        "user_share": float(reused["server_user_s"].sum() / reused["server_cpu_s"].sum()),
        "client_cpu_per_request_mean_s": float((reused["client_cpu_s"] / reused["requests"]).mean()),
        "server_cpu_per_request_mean_s_by_case": {c: float(per_request[c].mean()) for c in per_request.columns},
    })
    out = [{**data.header("go.http.server_cpu_s",
                          "Server CPU seconds per request of Go net/http on a reused HTTP/1.1 cleartext "
                          "connection with a handler that writes a 13-byte body (what a model adds to a handler's "
                          "own CPU): the server process's user + system CPU time (getrusage, including its GC "
                          "and runtime) over a round of sequential requests from a client in another process, "
                          "divided by the requests", "s", "http_server_cpu.csv", "constant"), **result}]
    if {"h1_new", "h1_tls_new"} <= set(per_request.columns):
        handshake = fit_constant(observations("go.http.tls_handshake_server_cpu_s", data)["y"].to_numpy())
        handshake["fit"]["samples"] = ("per round: server CPU per request on new HTTP/1.1 connections over TLS 1.3 "
                                       "minus the same without TLS")
        out.append({**data.header("go.http.tls_handshake_server_cpu_s",
                                  "Server CPU seconds of one full TLS 1.3 handshake in Go crypto/tls (self-signed "
                                  "ECDSA P-256 certificate, Go's default key exchange, no resumption), plus the "
                                  "record encryption of one small request: CPU per request on new TLS connections "
                                  "minus on new cleartext ones, paired by round", "s", "http_server_cpu.csv",
                                  "constant"), **handshake})
    return out


def _node_dist(data: Dataset, name: str, description: str, filename: str, samples: str) -> dict[str, Any]:
    result = _clock_fit(name, observations(name, data)["y"].to_numpy())
    result["fit"]["samples"] = samples
    return {**data.header(name, description, "s", filename, "distribution"), **result}


def fit_node_process(data: Dataset) -> list[dict[str, Any]]:
    frame = data.frame("node_process.csv")
    rss = frame[frame["measurement"] == "rss"]
    memory = fit_constant(observations("node.process.rss_bytes", data)["y"].to_numpy())
    memory["fit"].update({"samples": "one fresh process per repetition",
                          "heap_used_bytes_mean": float(rss["heap_used_bytes"].mean()),
                          "heap_total_bytes_mean": float(rss["heap_total_bytes"].mean())})
    return [
        _node_dist(data, "node.process.start_s", "Wall time of `node -e 0` from spawn to exit (fork/exec, V8 and "
                   "Node.js bootstrap, an empty script, exit), spawned with child_process.spawnSync from a Node "
                   "driver and timed with process.hrtime", "node_process.csv",
                   "sequential spawns after one unrecorded warm-up spawn"),
        {**data.header("node.process.rss_bytes", "Resident set size of an idle Node.js process: "
                       "process.memoryUsage().rss 100 ms after `node -e` started (V8 heap used and total beside "
                       "it)", "bytes", "node_process.csv", "constant"), **memory},
    ]


def fit_go_process(data: Dataset) -> list[dict[str, Any]]:
    rss = data.frame("go_process.csv")
    rss = rss[rss["measurement"] == "rss"]
    memory = fit_constant(observations("go.process.rss_bytes", data)["y"].to_numpy())
    memory["fit"].update({"samples": "one fresh process per repetition",
                          "memstats_sys_bytes_mean": float(rss["sys_bytes"].mean())})
    start = _clock_fit("go.process.start_s", observations("go.process.start_s", data)["y"].to_numpy())
    start["fit"]["samples"] = "sequential starts after one unrecorded warm-up start"
    return [
        {**data.header("go.process.start_s", "Wall time of a static Go binary that returns from main at once, "
                       "from exec.Cmd.Start to Wait (fork/exec, runtime start-up, exit), timed by its parent",
                       "s", "go_process.csv", "distribution"), **start},
        {**data.header("go.process.rss_bytes", "Resident set size (VmRSS) of an idle Go process 100 ms after it "
                       "started (runtime.MemStats.Sys beside it)", "bytes", "go_process.csv", "constant"), **memory},
    ]


def fit_node_http(data: Dataset) -> list[dict[str, Any]]:
    frame = data.frame("node_http_cpu.csv")
    result = fit_constant(observations("node.http.server_cpu_s", data)["y"].to_numpy())
    result["fit"].update({
        "samples": f"rounds of {int(frame['requests'].iloc[0])} sequential requests: the server process's "
        "process.cpuUsage() (user + system) over the round / requests",
        "user_share": float(frame["server_user_s"].sum() / frame["server_cpu_s"].sum()),
    })
    return [{**data.header("node.http.server_cpu_s",
                           "Server CPU seconds per request of Node.js's http module on a reused HTTP/1.1 keep-alive "
                           "connection with a handler that writes a 13-byte body (what a model adds to a handler's "
                           "own CPU): the server process's user + system CPU time over a round of sequential "
                           "requests from a client in another process, divided by the requests", "s",
                           "node_http_cpu.csv", "constant"), **result}]


def fit_node_isolate(data: Dataset) -> list[dict[str, Any]]:
    frame = data.frame("node_isolate.csv")
    memory_rows = frame[frame["measurement"] == "context_memory"]
    module_bytes = frame.loc[frame["measurement"] == "module_load", "source_bytes"]
    module = _node_dist(data, "node.isolate.module_load_s",
                        f"Compiling (new vm.Script) and running a generated module-sized script of about "
                        f"{int(module_bytes.mean()) if len(module_bytes) else 0} bytes (300 functions, lazily "
                        "compiled, a few called, an exports object built) in a fresh vm context: the module-loading "
                        "stage of a cold start", "node_isolate.csv",
                        "every sample's source differs, so V8's compilation cache never answers")
    module["fit"]["source_bytes_mean"] = float(module_bytes.mean())
    memory = fit_constant(observations("node.isolate.context_bytes", data)["y"].to_numpy())
    memory["fit"].update({
        "samples": f"one fresh process per repetition, {int(memory_rows['contexts'].iloc[0])} contexts retained; "
        "RSS growth after two full collections / contexts",
        "heap_bytes_per_context_mean": float(memory_rows["heap_bytes_per_context"].mean())})
    return [
        _node_dist(data, "node.isolate.context_create_s", "vm.createContext({}) per call: a new V8 context (from "
                   "the snapshot) with Node's contextify wrapper, timed with process.hrtime", "node_isolate.csv",
                   "sequential calls in one process after 20 unrecorded ones; contexts dropped at once"),
        _node_dist(data, "node.isolate.script_run_s", "One runInContext of a precompiled vm.Script in an existing "
                   "context, the script calling a function that sums a 16-field object (a small handler body)",
                   "node_isolate.csv", "sequential calls in one process after 20 unrecorded ones"),
        module,
        {**data.header("node.isolate.context_bytes", "Resident memory per retained vm context (RSS growth over "
                       "retained contexts after full collections; the V8 heap growth per context beside it)",
                       "bytes", "node_isolate.csv", "constant"), **memory},
    ]


def fit_node_worker(data: Dataset) -> list[dict[str, Any]]:
    frame = data.frame("node_worker.csv")
    memory_rows = frame[frame["measurement"] == "memory"]
    memory = fit_constant(observations("node.worker.memory_bytes", data)["y"].to_numpy())
    memory["fit"]["samples"] = (f"one fresh process per repetition, {int(memory_rows['workers'].iloc[0])} idle "
                                "workers; RSS growth / workers")
    points = observations("node.worker.message_s_vs_bytes", data)
    line = fit_linear(points["x"].to_numpy(), points["y"].to_numpy())
    line["fit"]["by_bytes"] = [{"bytes": int(b), "n": int(v.size), "median_s": float(v.median()),
                                "p99_s": float(v.quantile(0.99))} for b, v in points.groupby("x")["y"]]
    return [
        _node_dist(data, "node.worker.start_s", "new Worker() (worker_threads, eval'd code that posts a message at "
                   "once) until the first message arrives on the main thread: a new isolate, Node bootstrap in "
                   "it, the script", "node_worker.csv",
                   "sequential starts in one process, each worker terminated before the next, after 3 unrecorded"),
        {**data.header("node.worker.memory_bytes", "Resident memory per live idle worker_threads Worker (RSS "
                       "growth / workers)", "bytes", "node_worker.csv", "constant"), **memory},
        {**data.header("node.worker.message_s_vs_bytes", "postMessage round trip to a worker that answers with a "
                       "tiny ack, as a line in the message size (bytes of the object's JSON text; an object of "
                       "small records, structured clone, no ArrayBuffer): the slope is the copy cost per byte",
                       "s", "node_worker.csv", "linear"), "x": "bytes", "y": "seconds", **line},
    ]


def fit_node_gc(data: Dataset) -> list[dict[str, Any]]:
    out = []
    what = {"scavenge": "scavenge (young-generation copying collection)",
            "markcompact": "mark-compact (full collection; the final atomic pause, incremental marking steps "
            "and concurrent marking are not in it)"}
    for stem, kind in NODE_GC_KINDS.items():
        rows = _steady_v8(data, kind)
        name = f"node.gc.{stem}_pause_s"
        y = observations(name, data)["y"].to_numpy()
        result = fit_distribution(y, np.random.default_rng(seed_of(name)),
                                  measurement=lambda v: v8trace.midpoint(v8trace.quantize(v)),
                                  resolution=v8trace.PAUSE_STEP_MS / 1e3)
        runs = rows.assign(y=y).groupby(["live_target_bytes", "survive", "promote"])["y"]
        result["fit"].update({
            "samples": "collections inside the steady phase of every run, pooled over live sets and survival "
            "mixes; pauses printed to 0.1 ms, each value the midpoint of its rounding interval",
            "bootstrap_seed": seed_of(name),
            "by_run": [{"live_target_bytes": int(live), "survive": float(sv), "promote": float(pr),
                        "n": int(v.size), "median_s": float(v.median()), "p99_s": float(v.quantile(0.99))}
                       for (live, sv, pr), v in runs],
        })
        out.append({**data.header(name, f"V8 {what[stem]} pause (seconds) in Node.js, from --trace-gc-nvp",
                                  "s", "node_gc_pauses.csv", "distribution"), **result})
        suffix, x_column, x_what = (("vs_survived", "survived_bytes", "the bytes that survived it (copied within "
                                     "the young generation + promoted)") if stem == "scavenge" else
                                    ("vs_heap", "heap_after_bytes", "the heap's object bytes after it (the live "
                                     "heap marked)"))
        points = observations(f"node.gc.{stem}_pause_{suffix}", data)
        line = fit_linear(points["x"].to_numpy(), points["y"].to_numpy())
        out.append({**data.header(f"node.gc.{stem}_pause_{suffix}", f"V8 {stem} pause as a line in {x_what}",
                                  "s", "node_gc_pauses.csv", "linear"), "x": x_column, "y": "pause_s", **line})
    points = observations("node.gc.markcompact_mark_cpu_vs_heap", data)
    line = fit_linear(points["x"].to_numpy(), points["y"].to_numpy())
    out.append({**data.header("node.gc.markcompact_mark_cpu_vs_heap",
                              "CPU seconds of a V8 mark-compact's marking outside its final pause (incremental "
                              "steps on the main thread, between JavaScript, + concurrent marking on helper "
                              "threads) as a line in the heap's object bytes after it; the slope is marking CPU "
                              "seconds per live byte", "s", "node_gc_pauses.csv", "linear"),
                "x": "heap_after_bytes", "y": "incremental_s + background_mark_s", **line})
    return out


#: Every fit with the CSV it needs.
FITS: list[tuple[str, Callable[[Dataset], list[dict[str, Any]]]]] = [
    ("gc_pauses.csv", fit_gc_stw),
    ("gc_pauses.csv", fit_gc_mark_cpu),
    ("goroutines.csv", fit_goroutines),
    ("channel_handoff.csv", fit_channels),
    ("sched_wakeup.csv", fit_sched),
    ("json_codec.csv", fit_json),
    ("http_latency.csv", fit_http_latency),
    ("http_server_cpu.csv", fit_http_server_cpu),
    ("go_process.csv", fit_go_process),
    ("node_process.csv", fit_node_process),
    ("node_isolate.csv", fit_node_isolate),
    ("node_worker.csv", fit_node_worker),
    ("node_gc_pauses.csv", fit_node_gc),
    ("node_http_cpu.csv", fit_node_http),
]


def fit_all(folder: Path) -> list[dict[str, Any]]:
    """Every parameter set the data in ``folder`` support (fits whose CSV is missing are skipped)."""
    data = Dataset(folder)
    params: list[dict[str, Any]] = []
    for filename, fit in FITS:
        if data.has(filename):
            params += fit(data)
    return params


def dumps(params: dict[str, Any]) -> str:
    return json.dumps(params, indent=2) + "\n"


def write_params(params: list[dict[str, Any]], out_dir: Path = PARAMS_DIR) -> list[Path]:
    """Write each parameter set to ``out_dir/<name>.json``; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for entry in params:
        path = out_dir / f"{entry['name']}.json"
        path.write_text(dumps(entry))
        paths.append(path)
    return paths
