"""Fits of the FaaS cold-start harness's data (``faas_*.csv``, :mod:`calibration.measure_faas`).

Every set is a distribution of clock differences (:func:`calibration.dataset.clock_fit`):

* ``go.function.start_s``, ``node.function.start_s``, ``node.function.start_typical_s``: exec of the
  function's process until it listens and says so (``ready`` rows), for the Go binary, the Node function with
  no dependencies and the one on Express's module graph: a platform's runtime start, before the first request
  (its extra is the set below, its steady latency the handler's; the three add up to the ``first_response``
  rows, whose median each set lists);
* ``*.function.first_request_s``: the first request's latency less the median of the same process's steady
  requests (the second half of them), one value per start: what the first request costs more than a warm
  one (lazy initialisation of the runtime's and libraries' code paths, and on Node, JIT warm-up: V8 runs new
  code in its interpreter first and compiles hot functions later);
* ``node.function.module_load_typical_s``: ``require('express')`` in the Express function;
* ``node.ivm.sandbox_s``, ``node.ivm.function_load_s``, ``node.ivm.first_call_s``: a new V8 isolate with a
  context (isolated-vm), the function's code compiled and run in it, and the first call's latency less the
  median of the later calls of the same sample.

Each set's ``fit`` adds the medians that show where the numbers come from: by round (the machine's drift),
by request index (how fast the first request's extra fades), and for the isolate the other engines
(vm contexts, worker threads) side by side.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from calibration.dataset import Dataset, clock_fit

#: Function start sets by name: (variant of ``faas_start.csv``, what the function is).
START_SETS = {
    "go.function.start_s": ("go", "a static Go binary serving net/http (handler: encoding/json of a small reply)"),
    "node.function.start_s": ("node", "node running a script on Node's http module, no dependencies"),
    "node.function.start_typical_s": ("node-express", "node running an Express 4 app (express.json() mounted, "
                                      "one route): Express's module graph loaded with require"),
}
#: First-request sets by name: the start set of the same function.
FIRST_REQUEST_SETS = {"go.function.first_request_s": "go.function.start_s",
                      "node.function.first_request_s": "node.function.start_s",
                      "node.function.first_request_typical_s": "node.function.start_typical_s"}
MODULE_LOAD_SET = "node.function.module_load_typical_s"
#: Isolate sets by name: the column of ``faas_isolate.csv`` (isolated-vm rows) or how it is made.
ISOLATE_SETS = {"node.ivm.sandbox_s": "isolate_s + context_s", "node.ivm.function_load_s": "load_s",
                "node.ivm.first_call_s": "first_call_s - call_s"}
IVM = "isolated-vm"
#: The request indexes whose medians the first-request sets list (1 is the first request).
SHOWN_INDEXES = (1, 2, 3, 5, 10, 20, 50, 100)


def names() -> list[str]:
    """Every set this module fits."""
    return [*START_SETS, *FIRST_REQUEST_SETS, MODULE_LOAD_SET, *ISOLATE_SETS]


def _starts(data: Dataset, variant: str, measurement: str) -> pd.DataFrame:
    frame = data.frame("faas_start.csv")
    return frame[(frame["variant"] == variant) & (frame["measurement"] == measurement)]


def _first_request_extra(data: Dataset, variant: str) -> pd.DataFrame:
    """Per start: the first request's latency, the median of the steady requests (index above half of the
    most), and the difference; indexed by (round, rep)."""
    frame = data.frame("faas_requests.csv")
    rows = frame[frame["variant"] == variant]
    steady = rows[rows["index"] > rows["index"].max() / 2].groupby(["round", "rep"])["seconds"].median()
    first = rows[rows["index"] == 1].set_index(["round", "rep"])["seconds"]
    return pd.DataFrame({"first_s": first, "steady_s": steady, "extra_s": first - steady}).dropna()


def _ivm(data: Dataset) -> pd.DataFrame:
    frame = data.frame("faas_isolate.csv")
    return frame[frame["engine"] == IVM]


def faas_observations(name: str, data: Dataset) -> pd.DataFrame:
    """The samples behind set ``name`` (see :func:`calibration.fit.observations`)."""
    if name in START_SETS:
        rows = _starts(data, START_SETS[name][0], "ready")
        return pd.DataFrame({"y": rows["seconds"].to_numpy(), "group": "round " + rows["round"].astype(str)})
    if name in FIRST_REQUEST_SETS:
        extra = _first_request_extra(data, START_SETS[FIRST_REQUEST_SETS[name]][0])
        rounds = extra.index.get_level_values("round").astype(str)
        return pd.DataFrame({"y": extra["extra_s"].to_numpy(), "group": "round " + rounds})
    if name == MODULE_LOAD_SET:
        rows = _starts(data, "node-express", "ready")
        return pd.DataFrame({"y": rows["module_load_s"].to_numpy(), "group": "round " + rows["round"].astype(str)})
    if name in ISOLATE_SETS:
        rows = _ivm(data)
        y = {"node.ivm.sandbox_s": rows["isolate_s"] + rows["context_s"], "node.ivm.function_load_s": rows["load_s"],
             "node.ivm.first_call_s": rows["first_call_s"] - rows["call_s"]}[name]
        return pd.DataFrame({"y": y.to_numpy()})
    raise KeyError(f"no observations known for parameter set {name!r}")


def _by_round(data: Dataset, name: str) -> dict[str, float]:
    obs = faas_observations(name, data)
    return {group: float(values.median()) for group, values in obs.groupby("group")["y"]}


def _distribution(data: Dataset, name: str, description: str, filename: str) -> dict[str, Any]:
    result = clock_fit(name, faas_observations(name, data)["y"].to_numpy())
    return {**data.header(name, description, "s", filename, "distribution"), **result}


def fit_faas_start(data: Dataset) -> list[dict[str, Any]]:
    """The function start, first-request and module-load sets (``faas_start.csv``, ``faas_requests.csv``)."""
    requests = data.frame("faas_requests.csv")
    per_start = int(requests["index"].max())
    out = []
    for name, (variant, what) in START_SETS.items():
        entry = _distribution(data, name, f"Start of a small HTTP function's process until it serves: {what}; "
                              "from just before exec until the function printed that it listens on 127.0.0.1 "
                              "(read by the driver faasstart through a pipe)", "faas_start.csv")
        ready = _starts(data, variant, "ready")
        entry["fit"].update({
            "samples": "one per start: the variants take turns in rounds, each round's starts after one "
            "unrecorded start",
            "first_response_median_s": float(_starts(data, variant, "first_response")["seconds"].median()),
            "modules_loaded_median": float(ready["modules"].median()),
            "median_by_round_s": _by_round(data, name)})
        out.append(entry)
    for name, start in FIRST_REQUEST_SETS.items():
        variant, what = START_SETS[start]
        entry = _distribution(data, name, f"The first request's extra latency in a freshly started function ({what}): "
                              "the first GET's latency less the median of the same process's steady requests (the "
                              "second half), every request on a new loopback connection", "faas_requests.csv")
        extra = _first_request_extra(data, variant)
        rows = requests[requests["variant"] == variant]
        medians = rows.groupby("index")["seconds"].median()
        entry["fit"].update({
            "samples": f"one per start, {per_start} sequential requests each",
            "first_median_s": float(extra["first_s"].median()),
            "steady_median_s": float(extra["steady_s"].median()),
            "median_by_index_s": {str(i): float(medians[i]) for i in SHOWN_INDEXES if i in medians.index},
            "median_by_round_s": _by_round(data, name)})
        out.append(entry)
    entry = _distribution(data, MODULE_LOAD_SET, "require('express') in a fresh Node.js process: resolving, "
                          "reading, compiling and running Express 4's module graph (performance.now around the "
                          "call)", "faas_start.csv")
    ready = _starts(data, "node-express", "ready")
    entry["fit"].update({"samples": "one per start of the Express function",
                         "modules_loaded_median": float(ready["modules"].median())})
    out.append(entry)
    return out


def fit_faas_isolate(data: Dataset) -> list[dict[str, Any]]:
    """The isolated-vm sets (``faas_isolate.csv``); none when isolated-vm did not build (no such rows)."""
    frame = data.frame("faas_isolate.csv")
    if _ivm(data).empty:
        return []
    engines = {engine: {column: float(rows[column].median()) for column in
                        ("isolate_s", "context_s", "load_s", "first_call_s", "call_s", "dispose_s")
                        if rows[column].notna().any()}
               for engine, rows in frame.groupby("engine")}
    described = {
        "node.ivm.sandbox_s": "A new V8 isolate with a context in a running Node.js process (isolated-vm: new "
        "ivm.Isolate with a 128 MB limit, then createContextSync): the sandbox of an isolate-based platform",
        "node.ivm.function_load_s": "Compiling and running a function's code in a fresh isolated-vm context: a "
        "bundled library (lodash.min.js in a CommonJS wrapper, about 73 KB) and a handler; every source unique, "
        "so V8's compilation cache never answers",
        "node.ivm.first_call_s": "The first call of the handler in a fresh isolated-vm isolate, less the median "
        "of its later calls: lazy compilation and the interpreter's first run",
    }
    out = []
    for name, description in described.items():
        entry = _distribution(data, name, description, "faas_isolate.csv")
        entry["fit"].update({"samples": "one per isolate, the engines taking turns; rows of engine isolated-vm",
                             "y": ISOLATE_SETS[name], "source_bytes": float(_ivm(data)["source_bytes"].median()),
                             "median_by_engine_s": engines})
        out.append(entry)
    return out
