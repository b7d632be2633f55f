"""Fit the raw data of one host (``calibration/data/<host>/``) into parameter sets (``calibration/params/``).

Each function below turns one CSV into one or more parameter sets in the format
of :mod:`sim.params`; :data:`FITS` lists them all. Every fit is deterministic:
bootstrap streams come from a ``numpy.random.Generator`` seeded by a stable hash
of the parameter set's name.

GC pauses use the steady phase only (cycles after the live heap was built,
none forced), pooled over heap sizes and GOGC: whether pauses depend on the
heap is what the ``*_vs_heap`` lines show. gctrace rounds times (see
:mod:`calibration.gctrace`); fits use the midpoint of each printed value's
interval, and the bootstrap rounds its replicates the same way. The Node.js
fits are in :mod:`calibration.fitnode`, the FaaS cold start's in :mod:`calibration.fitfaas`, the proxies' in
:mod:`calibration.fitproxy` and :mod:`calibration.fitproxycosts`, etcd's in :mod:`calibration.fitetcd`;
the data folder and what fits share, in :mod:`calibration.dataset`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from calibration import gctrace
from calibration.dataset import PARAMS_DIR, Dataset, clock_fit, seed_of
from calibration.distfit import fit_constant, fit_distribution, fit_linear
from calibration.fitalloc import fit_alloc, fit_mark_cpu, fit_mark_factor, fit_object_bytes
from calibration.fitalloc import observations as alloc_observations
from calibration.fitmachine import (
    fit_machine_load_cpu, fit_machine_placement, fit_machine_slices, fit_machine_sysmon, fit_machine_wake,
    fit_machine_work,
    fit_machine_work_cpu,
    machine_observations,
)
from calibration.fitfaas import faas_observations, fit_faas_isolate, fit_faas_start
from calibration.fitfaas import names as faas_names
from calibration.fitnode import fit_node_alloc
from calibration.fitproxy import SERVER_CPU_VS_RATE, fit_proxy
from calibration.fitetcd import fit_etcd
from calibration.fitetcd import observations as etcd_observations
from calibration.fitk8s import PREFIX as K8S_CODEC_PREFIX
from calibration.fitk8s import fit_k8s_codec
from calibration.fitk8s import observations as k8s_codec_observations
from calibration.fitproxycosts import fit_proxy_costs
from calibration.fitproxycosts import names as proxy_cost_names
from calibration.fitproxycosts import observations as proxy_cost_observations
from models.runtime.go.gc import MARK_COST_PARAM, MARK_FACTOR_PARAM
from calibration.fitproxy import observations as proxy_observations
from calibration.fitnode import (
    fit_node_gc, fit_node_http, fit_node_isolate, fit_node_process, fit_node_worker, node_observations,
)

STW = {
    "sweep_termination": ("sweep_term_s", "STW sweep termination: the first stop-the-world pause of a cycle"),
    "mark_termination": ("mark_term_s", "STW mark termination: the second stop-the-world pause of a cycle"),
}
#: httplat's cases (``case`` column): what each measures.
HTTP_CASES = {
    "h1_reused": "HTTP/1.1 cleartext, reused connection",
    "h1_new": "HTTP/1.1 cleartext, new connection per request",
    "h1_tls_new": "HTTP/1.1 over TLS 1.3, new connection (full handshake) per request",
    "h2_tls_reused": "HTTP/2 over TLS 1.3, reused connection",
    "h2_tls_new": "HTTP/2 over TLS 1.3, new connection (full handshake) per request",
}


def _steady_gc(data: Dataset) -> pd.DataFrame:
    frame = data.frame("gc_pauses.csv")
    return frame[(frame["phase"] == "steady") & (~frame["forced"].astype(bool))]


def _mark_cpu_s(steady: pd.DataFrame) -> np.ndarray:
    assist, background, idle = (gctrace.midpoint(steady[c].to_numpy())
                                for c in ("cpu_assist_s", "cpu_background_s", "cpu_idle_s"))
    return assist + background + idle


def observations(name: str, data: Dataset) -> pd.DataFrame:
    """The samples behind parameter set ``name``: column ``y``, with ``x`` for a line and ``group`` where useful."""
    if name in faas_names():
        return faas_observations(name, data)
    if name.startswith("go.alloc.") or name in (MARK_COST_PARAM, MARK_FACTOR_PARAM):
        return alloc_observations(name, data)
    if name == SERVER_CPU_VS_RATE:  # measured beside the proxies
        return proxy_observations(name, data)
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
    if name == "go.http.client_cpu_s":
        frame = data.frame("http_server_cpu.csv")
        reused = frame[frame["case"] == "h1_reused"]
        return pd.DataFrame({"y": (reused["client_cpu_s"] / reused["requests"]).to_numpy(),
                             "group": "round " + reused["round"].astype(str).to_numpy()})
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
    if name.startswith("node."):
        return node_observations(name, data)
    if name.startswith("machine."):
        return machine_observations(name, data)
    if name.startswith("etcd."):
        return etcd_observations(name, data)
    if name.startswith(K8S_CODEC_PREFIX):
        return k8s_codec_observations(name, data)
    if name.startswith("proxy.") and name in proxy_cost_names(data):
        return proxy_cost_observations(name, data)
    if name.startswith("proxy."):
        return proxy_observations(name, data)
    raise KeyError(f"no observations known for parameter set {name!r}")


def _http_server_cpu_per_request(data: Dataset) -> pd.DataFrame:
    """Server CPU seconds per request besides its sysmon thread's, one row per round, one column per case."""
    frame = data.frame("http_server_cpu.csv")
    return (frame.assign(y=(frame["server_cpu_s"] - frame["server_sysmon_cpu_s"]) / frame["requests"])
            .pivot(index="round", columns="case", values="y").dropna())


def _rounded(values: np.ndarray) -> np.ndarray:
    return gctrace.midpoint(gctrace.quantize(values))


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
        result = clock_fit(name, observations(name, data)["y"].to_numpy())
        capacity = int(group["capacity"].iloc[0])
        out.append({**data.header(name, f"Go channel hand-off latency, {channel} channel (capacity {capacity}): "
                                  "send to a parked receiver until it runs, GOMAXPROCS "
                                  f"{int(group['gomaxprocs'].iloc[0])}", "s", "channel_handoff.csv",
                                  "distribution"), **result})
    return out


def fit_sched(data: Dataset) -> list[dict[str, Any]]:
    frame = data.frame("sched_wakeup.csv")
    name = "go.sched.wakeup_late_s"
    result = clock_fit(name, observations(name, data)["y"].to_numpy())
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
        result = clock_fit(name, observations(name, data)["y"].to_numpy())
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
        "getrusage user + system time over the round less its sysmon thread's time on a CPU, / requests",
        "user_share": float(reused["server_user_s"].sum() / reused["server_cpu_s"].sum()),
        "sysmon_cpu_per_request_mean_s": float((reused["server_sysmon_cpu_s"] / reused["requests"]).mean()),
        "client_cpu_per_request_mean_s": float((reused["client_cpu_s"] / reused["requests"]).mean()),
        "server_cpu_per_request_mean_s_by_case": {c: float(per_request[c].mean()) for c in per_request.columns},
    })
    out = [{**data.header("go.http.server_cpu_s",
                          "Server CPU seconds per request of Go net/http on a reused HTTP/1.1 cleartext "
                          "connection with a handler that writes a 13-byte body (what a model adds to a handler's "
                          "own CPU): the server process's user + system CPU time (getrusage, including its GC "
                          "and runtime) over a round of sequential requests from a client in another process, "
                          "less what its monitor thread sysmon ran (woken by each request, it runs beside the "
                          "handler, on another core or, on a shared one, as modelled by "
                          "models.runtime.go.detailed.sysmon), divided by the requests", "s", "http_server_cpu.csv",
                          "constant"), **result}]
    client = fit_constant(observations("go.http.client_cpu_s", data)["y"].to_numpy())
    client["fit"]["samples"] = (f"rounds of {int(reused['requests'].iloc[0])} sequential requests on a reused "
                                "connection: the client process's getrusage user + system time over the round, / "
                                "requests")
    out.append({**data.header("go.http.client_cpu_s",
                              "Client CPU seconds per call of a Go net/http client (http.Client, GET of a 13-byte "
                              "body) on a reused HTTP/1.1 cleartext connection to a server in another process: "
                              "write the request, read and parse the response, the connection goroutine's "
                              "netpoll wake-up; the client process's whole CPU (its runtime's threads included) "
                              "over a round of sequential calls, divided by the calls", "s", "http_server_cpu.csv",
                              "constant"), **client})
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


def fit_go_process(data: Dataset) -> list[dict[str, Any]]:
    rss = data.frame("go_process.csv")
    rss = rss[rss["measurement"] == "rss"]
    memory = fit_constant(observations("go.process.rss_bytes", data)["y"].to_numpy())
    memory["fit"].update({"samples": "one fresh process per repetition",
                          "memstats_sys_bytes_mean": float(rss["sys_bytes"].mean())})
    start = clock_fit("go.process.start_s", observations("go.process.start_s", data)["y"].to_numpy())
    start["fit"]["samples"] = "sequential starts after one unrecorded warm-up start"
    return [
        {**data.header("go.process.start_s", "Wall time of a static Go binary that returns from main at once, "
                       "from exec.Cmd.Start to Wait (fork/exec, runtime start-up, exit), timed by its parent",
                       "s", "go_process.csv", "distribution"), **start},
        {**data.header("go.process.rss_bytes", "Resident set size (VmRSS) of an idle Go process 100 ms after it "
                       "started (runtime.MemStats.Sys beside it)", "bytes", "go_process.csv", "constant"), **memory},
    ]


#: Every fit with the CSV it needs.
FITS: list[tuple[str, Callable[[Dataset], list[dict[str, Any]]]]] = [
    ("gc_pauses.csv", fit_gc_stw),
    ("gc_pauses.csv", fit_gc_mark_cpu),
    ("go_alloc.csv", fit_alloc),
    ("go_gc_work.csv", fit_mark_cpu),
    ("go_gc_work.csv", fit_mark_factor),
    ("json_codec.csv", fit_object_bytes),
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
    ("node_alloc.csv", fit_node_alloc),
    ("node_http_cpu.csv", fit_node_http),
    ("faas_start.csv", fit_faas_start),
    ("faas_isolate.csv", fit_faas_isolate),
    ("machine_work.csv", fit_machine_work),
    ("machine_work_cpu.csv", fit_machine_work_cpu),
    ("machine_wake.csv", fit_machine_wake),
    ("machine_slices.csv", fit_machine_slices),
    ("machine_placement.csv", fit_machine_placement),
    ("machine_load_cpu.csv", fit_machine_load_cpu),
    ("machine_sysmon.csv", fit_machine_sysmon),
    ("proxy_sidecar.csv", fit_proxy),
    ("proxy_costs.csv", fit_proxy_costs),
    ("etcd_put.csv", fit_etcd),
    ("k8s_codec.csv", fit_k8s_codec),
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
