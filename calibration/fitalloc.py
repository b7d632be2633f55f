"""Fits of the Go allocation and collector-work harness (``allocgc``): what allocating costs, and marking.

* ``go.alloc.<kind>_cpu_s_vs_size`` (kind ``table``), from ``go_alloc.csv``:
  the mutator's CPU per object against object size, the median over
  repetitions at each measured size. The mutator's CPU is the process's CPU
  time (getrusage) less the collector's (``/cpu/classes/gc/total``) over the
  loop; rows of an older harness without ``process_cpu_s`` use the runtime's
  ``/cpu/classes/user`` estimate instead. The harness's kinds map to the
  model's (:mod:`models.runtime.go.alloc`): ``scan`` to ``pointers``,
  ``noscan`` to ``bytes``, ``chunk`` to ``buffers`` (a unit of two objects).
* ``go.alloc.object_bytes`` (constant), from ``json_codec.csv``: bytes per
  operation over allocations per operation of ``encoding/json`` decoding and
  encoding (all rows): the mean object a typical service allocates.
* ``go.gc.mark_cpu_vs_objects`` (kind ``multilinear``), from
  ``go_gc_work.csv``: one cycle's mark CPU (the ``runtime/metrics`` classes
  assist, dedicated and idle, over the window's whole cycles) as a plane
  through the origin in the live heap's objects and pointer words, counted
  from the harness's heap shapes (:func:`heap_shape`), fitted to the relative
  error so that heaps of 16 MiB count as much as heaps of 512 MiB. No intercept: the
  fixed cost of a cycle is its two pauses (``go.gc.stw_*``); the plane with an
  intercept is kept in ``fit`` for comparison.
* ``go.gc.mark_cpu_factor_vs_gomaxprocs`` (kind ``table``, beyond ``flat``),
  from the same runs: the median of measured over the plane's mark CPU among
  the runs of each GOMAXPROCS (the plane's own bias by GOMAXPROCS, which its
  ``goodness_of_fit`` reports: one P marks dearer per cycle than two). The
  collector multiplies the plane's costs by it (:func:`models.runtime.go.gc.calibrated_mark_costs`);
  beyond the largest GOMAXPROCS measured it stays that one's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from calibration.dataset import Dataset
from models.runtime.go.alloc import AllocationShape
from models.runtime.go.gc import LIVE_OBJECT_BYTES, LIVE_POINTERS_PER_OBJECT, MARK_COST_PARAM, MARK_FACTOR_PARAM

ALLOC_KINDS = {"scan": "pointers", "noscan": "bytes", "chunk": "buffers"}
"""The harness's object kinds (``allocgc -kinds``) by the model's name for them."""


def mutator_cpu_s(frame: pd.DataFrame) -> np.ndarray:
    """The mutator's CPU of each row: process CPU less the collector's, or the runtime's user-class estimate."""
    if "process_cpu_s" in frame:
        return (frame["process_cpu_s"] - frame["gc_cpu_s"]).to_numpy(float)
    return frame["user_cpu_s"].to_numpy(float)


def _per_object(data: Dataset) -> pd.DataFrame:
    frame = data.frame("go_alloc.csv")
    return frame.assign(per_object_s=mutator_cpu_s(frame) / frame["objects"])


def observations(name: str, data: Dataset) -> pd.DataFrame:
    """The samples behind one of this module's parameter sets (``y``; ``x`` and ``group`` where useful)."""
    if name in (MARK_COST_PARAM, MARK_FACTOR_PARAM):
        points = mark_observations(data)
        group = points["shape"] + ", GOMAXPROCS " + points["gomaxprocs"].astype(str)
        if name == MARK_FACTOR_PARAM:  # each run's mark CPU over the plane's
            plane = points[["objects", "pointers"]].to_numpy(float) @ mark_plane(points)
            return pd.DataFrame({"x": points["gomaxprocs"].to_numpy(float), "y": points["y"].to_numpy(float) / plane,
                                 "group": group.to_numpy()})
        return points.assign(group=group)
    if name == "go.alloc.object_bytes":
        frame = data.frame("json_codec.csv")
        return pd.DataFrame({"y": (frame["bytes_per_op"] / frame["allocs_per_op"]).to_numpy(float),
                             "group": frame["operation"].to_numpy()})
    harness_kind = {f"go.alloc.{kind}_cpu_s_vs_size": h for h, kind in ALLOC_KINDS.items()}[name]
    rows = _per_object(data)
    rows = rows[rows["kind"] == harness_kind]
    return pd.DataFrame({"x": rows["size_bytes"].to_numpy(float), "y": rows["per_object_s"].to_numpy(float),
                         "group": "repetition " + rows["rep"].astype(str).to_numpy()})


def fit_alloc(data: Dataset) -> list[dict[str, Any]]:
    frame = _per_object(data)
    out = []
    for harness_kind, kind in ALLOC_KINDS.items():
        rows = frame[frame["kind"] == harness_kind]
        if rows.empty:
            continue
        by_size = rows.groupby("size_bytes")["per_object_s"]
        medians = by_size.median()
        spread = (by_size.max() - by_size.min()) / medians
        what = {"pointers": "objects of pointer words ([]unsafe.Pointer)",
                "bytes": "pointer-free objects ([]byte)",
                "buffers": "buffers: a 32-byte header with a pointer and a []byte of the rest (two objects)"}[kind]
        out.append({
            **data.header(f"go.alloc.{kind}_cpu_s_vs_size",
                          f"The allocating goroutine's CPU per object of a given size, {what}: mallocgc, zeroing, "
                          "span refills and the sweeping allocation pays for (allocgc -mode alloc, GOMAXPROCS 1, "
                          "GOGC 100, 4 MiB live heap); between sizes by linear interpolation",
                          "s", "go_alloc.csv", "table"),
            "x": "size_bytes", "y": "cpu_s_per_object",
            "points": [[float(size), float(value)] for size, value in medians.items()],
            "fit": {"method": "median over repetitions at each size", "n": int(len(rows)),
                    "repetitions": int(by_size.size().min()),
                    "mutator_cpu": "process CPU (getrusage) less /cpu/classes/gc/total" if "process_cpu_s" in rows
                    else "/cpu/classes/user (runtime estimate)"},
            "goodness_of_fit": {"relative_range_by_size": {str(int(k)): float(v) for k, v in spread.items()},
                                "largest_relative_range": float(spread.max())},
        })
    return out


def fit_object_bytes(data: Dataset) -> list[dict[str, Any]]:
    frame = data.frame("json_codec.csv")
    per_row = frame["bytes_per_op"] / frame["allocs_per_op"]
    value = float(frame["bytes_per_op"].sum() / frame["allocs_per_op"].sum())
    return [{
        **data.header("go.alloc.object_bytes", "Mean size of the objects encoding/json allocates decoding and "
                      "encoding an 8 KiB document (bytes per operation over allocations per operation): the "
                      "default object size of a service's allocation", "bytes", "json_codec.csv", "constant"),
        "value": value,
        "fit": {"method": "sum of bytes_per_op over sum of allocs_per_op, all rows", "n": int(len(frame)),
                "by_operation": {str(op): float(g["bytes_per_op"].sum() / g["allocs_per_op"].sum())
                                 for op, g in frame.groupby("operation")}},
        "goodness_of_fit": {"row_min": float(per_row.min()), "row_max": float(per_row.max())},
    }]


def heap_shape(shape: str, live_bytes: float, chunk_bytes: float) -> tuple[float, float]:
    """(objects, pointer words) of the harness's live heap of ``shape`` (``allocgc -shape``), counted as the
    model counts them: ``nodes`` is the collector's default live heap (the node graph; its index slice is one
    object more), ``chunks`` are ``buffers`` (:class:`~models.runtime.go.alloc.AllocationShape`)."""
    if shape == "nodes":
        nodes = live_bytes / LIVE_OBJECT_BYTES
        return nodes + 1, nodes * LIVE_POINTERS_PER_OBJECT
    if shape == "chunks":
        buffers = AllocationShape(chunk_bytes, "buffers", 0.0)
        return buffers.objects(live_bytes), buffers.pointers(live_bytes)
    raise ValueError(f"go_gc_work.csv: unknown heap shape {shape!r}")


def mark_observations(data: Dataset) -> pd.DataFrame:
    """One row per run: objects, pointers, mark CPU per cycle (s) and the run's settings."""
    frame = data.frame("go_gc_work.csv")
    frame = frame[frame["cycles"] > 0]
    shapes = [heap_shape(s, b, c) for s, b, c in zip(frame["shape"], frame["live_target_bytes"],
                                                       frame["chunk_bytes"], strict=True)]
    mark = (frame["assist_cpu_s"] + frame["dedicated_cpu_s"] + frame["idle_mark_cpu_s"]) / frame["cycles"]
    return pd.DataFrame({
        "objects": [o for o, _ in shapes], "pointers": [p for _, p in shapes], "y": mark.to_numpy(float),
        "shape": frame["shape"].to_numpy(), "live_bytes": frame["live_target_bytes"].to_numpy(float),
        "gomaxprocs": frame["gomaxprocs"].to_numpy(int), "gogc": frame["gogc"].to_numpy(int),
    })


def mark_plane(points: pd.DataFrame) -> np.ndarray:
    """(CPU-seconds per object, per pointer word): the plane through the origin of :func:`mark_observations`'
    mark CPU per cycle, least squares of the relative error."""
    x = points[["objects", "pointers"]].to_numpy(float)
    y = points["y"].to_numpy(float)
    if len(points) < 3 or np.linalg.matrix_rank(x) < 2:
        raise ValueError("go_gc_work.csv: the plane needs at least three runs of two heap shapes")
    coefficients, *_ = np.linalg.lstsq(x / y[:, None], np.ones(len(y)), rcond=None)
    return coefficients


def fit_mark_cpu(data: Dataset) -> list[dict[str, Any]]:
    points = mark_observations(data)
    x = points[["objects", "pointers"]].to_numpy(float)
    y = points["y"].to_numpy(float)
    coefficients = mark_plane(points)
    with_intercept, *_ = np.linalg.lstsq(np.column_stack([np.ones(len(y)), x]), y, rcond=None)
    predicted = x @ coefficients
    relative = (predicted - y) / y
    by_shape = {f"{shape}, GOMAXPROCS {procs}": float(np.median(relative[(points["shape"] == shape).to_numpy()
                                                                         & (points["gomaxprocs"] == procs).to_numpy()]))
                for shape, procs in sorted(set(zip(points["shape"], points["gomaxprocs"], strict=True)))}
    return [{
        **data.header(MARK_COST_PARAM,
                      "CPU seconds of one GC cycle's concurrent mark (runtime/metrics: assist + dedicated, which "
                      "includes the fractional worker, + idle) as a plane through the origin in the live heap's "
                      "objects and pointer words (allocgc -mode mark: node graphs and buffers of 16-512 MiB, "
                      "GOGC 50-400, GOMAXPROCS 1 and 2, a mutator idle or busy 30-80 % of the time)", "s",
                      "go_gc_work.csv", "multilinear"),
        "y": "mark_cpu_s_per_cycle", "intercept": 0.0,
        "coefficients": {"objects": float(coefficients[0]), "pointers": float(coefficients[1])},
        "fit": {"method": "least squares through the origin of the relative error (each run weighted by 1 / its "
                "mark CPU, so that small and large heaps count alike)", "n": int(len(y)),
                "with_intercept": {"intercept": float(with_intercept[0]), "objects": float(with_intercept[1]),
                                   "pointers": float(with_intercept[2])}},
        "goodness_of_fit": {"median_relative_error_by_shape": by_shape,
                            "largest_relative_error": float(np.abs(relative).max()),
                            "median_absolute_relative_error": float(np.median(np.abs(relative)))},
    }]


def fit_mark_factor(data: Dataset) -> list[dict[str, Any]]:
    """The plane's bias by GOMAXPROCS: the median of its observations (each run's mark CPU over the plane's)."""
    by_procs = observations(MARK_FACTOR_PARAM, data).groupby("x")["y"]
    factors = by_procs.median()
    return [{
        **data.header(MARK_FACTOR_PARAM,
                      f"Mark CPU per cycle measured over {MARK_COST_PARAM}' plane, by GOMAXPROCS (the median "
                      "over that GOMAXPROCS's runs of allocgc -mode mark): the factor the collector applies to the "
                      "plane's costs; between measured GOMAXPROCS by linear interpolation, beyond the largest that "
                      "one's", "1", "go_gc_work.csv", "table"),
        "x": "gomaxprocs", "y": "mark_cpu_factor", "beyond": "flat",
        "points": [[float(procs), float(value)] for procs, value in factors.items()],
        "fit": {"method": "median of measured / plane over the runs of each GOMAXPROCS",
                "n": int(by_procs.size().sum()),
                "runs_by_gomaxprocs": {str(int(k)): int(v) for k, v in by_procs.size().items()}},
        "goodness_of_fit": {"ratio_range_by_gomaxprocs": {str(int(k)): [float(g.min()), float(g.max())]
                                                          for k, g in by_procs},
                            "largest_relative_range": float(((by_procs.max() - by_procs.min()) / factors).max())},
    }]
