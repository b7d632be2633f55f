"""Fits of the Node.js harnesses' data (``node_*.csv``) into ``node.*`` parameter sets.

V8's pauses (:mod:`calibration.v8trace`) are treated as Go's are in
:mod:`calibration.fit`: steady-phase collections pooled over live sets and
survival mixes, each printed pause (to 0.1 ms) taken at the midpoint of its
rounding interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from calibration import v8trace
from calibration.dataset import Dataset, clock_fit, seed_of
from calibration.distfit import fit_constant, fit_distribution, fit_linear

#: V8 collections: parameter-set stem and the ``kind`` of ``node_gc_pauses.csv``.
NODE_GC_KINDS = {"scavenge": "scavenge", "markcompact": "mark-compact"}


#: The ``node.alloc`` tables and the column of ``node_alloc.csv`` each takes the median of, by object size.
NODE_ALLOC_COLUMNS = {"node.alloc.cpu_s_vs_size": "mutator_cpu_per_object_s",
                      "node.alloc.heap_bytes_vs_size": "heap_bytes_per_object"}


def _steady_v8(data: Dataset, kind: str) -> pd.DataFrame:
    frame = data.frame("node_gc_pauses.csv")
    return frame[(frame["phase"] == "steady") & (frame["kind"] == kind)]


def node_observations(name: str, data: Dataset) -> pd.DataFrame:
    """The samples behind Node.js parameter set ``name`` (see :func:`calibration.fit.observations`)."""
    if name in NODE_ALLOC_COLUMNS:
        frame = data.frame("node_alloc.csv")
        if name == "node.alloc.heap_bytes_vs_size":  # measured once per size, repeated on each of its rows
            frame = frame.drop_duplicates("size_bytes")
        return pd.DataFrame({"x": frame["size_bytes"].to_numpy(float),
                             "y": frame[NODE_ALLOC_COLUMNS[name]].to_numpy(float),
                             "group": "repetition " + frame["rep"].astype(str).to_numpy()})
    if name == "node.http.server_cpu_s":
        frame = data.frame("node_http_cpu.csv")
        return pd.DataFrame({"y": (frame["server_cpu_s"] / frame["requests"]).to_numpy(),
                             "group": "round " + frame["round"].astype(str).to_numpy()})
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


def _node_dist(data: Dataset, name: str, description: str, filename: str, samples: str) -> dict[str, Any]:
    result = clock_fit(name, node_observations(name, data)["y"].to_numpy())
    result["fit"]["samples"] = samples
    return {**data.header(name, description, "s", filename, "distribution"), **result}


def fit_node_process(data: Dataset) -> list[dict[str, Any]]:
    frame = data.frame("node_process.csv")
    rss = frame[frame["measurement"] == "rss"]
    memory = fit_constant(node_observations("node.process.rss_bytes", data)["y"].to_numpy())
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


def fit_node_http(data: Dataset) -> list[dict[str, Any]]:
    frame = data.frame("node_http_cpu.csv")
    result = fit_constant(node_observations("node.http.server_cpu_s", data)["y"].to_numpy())
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
    memory = fit_constant(node_observations("node.isolate.context_bytes", data)["y"].to_numpy())
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
    memory = fit_constant(node_observations("node.worker.memory_bytes", data)["y"].to_numpy())
    memory["fit"]["samples"] = (f"one fresh process per repetition, {int(memory_rows['workers'].iloc[0])} idle "
                                "workers; RSS growth / workers")
    points = node_observations("node.worker.message_s_vs_bytes", data)
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
        y = node_observations(name, data)["y"].to_numpy()
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
        points = node_observations(f"node.gc.{stem}_pause_{suffix}", data)
        line = fit_linear(points["x"].to_numpy(), points["y"].to_numpy())
        out.append({**data.header(f"node.gc.{stem}_pause_{suffix}", f"V8 {stem} pause as a line in {x_what}",
                                  "s", "node_gc_pauses.csv", "linear"), "x": x_column, "y": "pause_s", **line})
    points = node_observations("node.gc.markcompact_mark_cpu_vs_heap", data)
    line = fit_linear(points["x"].to_numpy(), points["y"].to_numpy())
    out.append({**data.header("node.gc.markcompact_mark_cpu_vs_heap",
                              "CPU seconds of a V8 mark-compact's marking outside its final pause (incremental "
                              "steps on the main thread, between JavaScript, + concurrent marking on helper "
                              "threads) as a line in the heap's object bytes after it; the slope is marking CPU "
                              "seconds per live byte", "s", "node_gc_pauses.csv", "linear"),
                "x": "heap_after_bytes", "y": "incremental_s + background_mark_s", **line})
    return out


def fit_node_alloc(data: Dataset) -> list[dict[str, Any]]:
    """``node.alloc.cpu_s_vs_size`` and ``node.alloc.heap_bytes_vs_size`` (kind ``table``): at each object size,
    the median over repetitions of the mutator CPU per object and of the heap bytes per object."""
    frame = data.frame("node_alloc.csv")
    sources = sorted(set(frame["cpu_source"].astype(str)))
    described = {
        "node.alloc.cpu_s_vs_size": (
            "CPU seconds the allocating thread spends per object of a given size, the shape the validation "
            "server allocates for --alloc-chunk SIZE (new Array(SIZE/8 - 2).fill(i) and a {next, data} link), "
            "short-lived: the thread's CPU over a round less the collector's pauses (PerformanceObserver 'gc' "
            "entries); between sizes by linear interpolation, beyond the largest in proportion to size",
            "s", "cpu_s_per_object"),
        "node.alloc.heap_bytes_vs_size": (
            "V8 heap bytes one such object takes (the array, its backing store of 8-byte elements and the link): "
            "used_heap_size growth over retaining many after gc(), per object; between sizes by linear "
            "interpolation", "bytes", "heap_bytes_per_object"),
    }
    out = []
    for name, (description, unit, y) in described.items():
        points = node_observations(name, data)
        by_size = points.groupby("x")["y"]
        medians = by_size.median()
        spread = (by_size.max() - by_size.min()) / medians
        fit: dict[str, Any] = {"method": "median over repetitions at each size", "n": int(len(points)),
                               "repetitions": int(by_size.size().min())}
        if name == "node.alloc.heap_bytes_vs_size":
            fit["method"] = "one measurement per size (retaining many objects after gc())"
        if name == "node.alloc.cpu_s_vs_size":
            fit["mutator_cpu"] = {"thread": "the main thread's CPU (/proc/thread-self/schedstat) less the GC pauses",
                                  "process": "process.cpuUsage() less the GC pauses"}
            fit["cpu_source"] = sources
            fit["scavenges_per_round_by_size"] = {
                str(int(k)): float(v) for k, v in frame.groupby("size_bytes")["scavenges"].median().items()}
        out.append({
            **data.header(name, description, unit, "node_alloc.csv", "table"),
            "x": "size_bytes", "y": y,
            "points": [[float(size), float(value)] for size, value in medians.items()],
            "fit": fit,
            "goodness_of_fit": {"relative_range_by_size": {str(int(k)): float(v) for k, v in spread.items()},
                                "largest_relative_range": float(spread.max())},
        })
    return out
