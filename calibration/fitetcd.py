"""Fits of a real etcd's costs (``etcd_put.csv``, ``etcd_range.csv``, ``etcd_watch.csv``,
:mod:`calibration.measure_etcd`) into the parameter sets the model :mod:`models.k8s.etcd` reads.

Every estimate is made within one round (one fresh cluster of each size), from medians (p50) of the
round's runs, then the median over rounds is the parameter (kind ``constant``), as the model spends it:

* ``etcd.request_s``, ``etcd.range.object_s``, ``etcd.range.byte_s``: the plane of a serializable
  range's p50 (one member) against the objects it returns and their bytes, fitted on relative errors
  (the 10,000-object ranges vary by more than a 100-object range takes): its intercept is a request's
  path with no work (client, gateway, gRPC, in and out), its coefficients the cost per object and per byte;
* ``etcd.apply_s``: the slope of a put's p50 against the closed-loop clients, 1 and 8 (one member,
  100-byte values): each client more adds one entry to every batch, applied one at a time; what the
  requests' contention for the cores adds at 8 clients is in it too;
* ``etcd.wal.byte_s``: the slope of a put's p50 against the value's bytes (one member, one client);
* ``etcd.wal.fsync_s``: a lone 100-byte put's p50 (one member, one client) less a request's path, an
  apply and the bytes: the write-ahead log's append with its fsync;
* ``etcd.raft.rtt_s``: a lone 100-byte put's p50 with three members less with one: the leader's
  round trip to a follower (whose fsync runs beside the leader's);
* ``etcd.watch.event_s``: from the mean delivery latency against the watchers (one member, one stream
  per watcher): ``W`` streams' sends share the machine's ``cores``, so the mean grows by
  ``event_s / (2 cores)`` per watcher; ``event_s`` is twice the cores times that slope.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from calibration.dataset import Dataset

PUT = "etcd_put.csv"
RANGE = "etcd_range.csv"
WATCH = "etcd_watch.csv"
SMALL_BYTES = 100
APPLY_CLIENTS_MAX = 8
"""Clients of the runs whose slope is ``etcd.apply_s``: beyond 8, the two cores saturate and the slope is theirs."""


def _line(x: pd.Series, y: pd.Series) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line of ``y`` against ``x``."""
    slope, intercept = np.polyfit(x.to_numpy(float), y.to_numpy(float), 1)
    return float(slope), float(intercept)


def _range_plane(rows: pd.DataFrame) -> tuple[float, float, float]:
    """(intercept, per object, per byte) of a serializable range's p50 against objects and bytes, least squares
    of the relative error (each row weighed by 1 / its p50), so that the 10,000-object ranges, whose noise is
    larger than the 100-object ones' whole latency, do not decide the intercept alone."""
    keys = rows["keys"].to_numpy(float)
    y = rows["p50_s"].to_numpy(float)
    design = np.column_stack([np.ones_like(keys), keys, keys * rows["value_bytes"].to_numpy(float)])
    coef, *_ = np.linalg.lstsq(design / y[:, None], np.ones_like(y), rcond=None)
    return float(coef[0]), float(coef[1]), float(coef[2])


def _lone_put(puts: pd.DataFrame, members: int) -> float:
    row = puts[(puts["members"] == members) & (puts["clients"] == 1) & (puts["value_bytes"] == SMALL_BYTES)]
    return float(row["p50_s"].median())


def round_estimates(data: Dataset, cores: int) -> pd.DataFrame:
    """Every parameter's estimate in each round: one row per round, one column per parameter set."""
    puts, ranges = data.frame(PUT), data.frame(RANGE)
    watches = data.frame(WATCH) if data.has(WATCH) else None
    out: dict[int, dict[str, float]] = {}
    for round_, put_rows in puts.groupby("round"):
        one = put_rows[put_rows["members"] == 1]
        serial = ranges[(ranges["round"] == round_) & (ranges["members"] == 1)
                        & (ranges["consistency"] == "serializable")]
        request, per_object, per_byte = _range_plane(serial)
        small = one[(one["value_bytes"] == SMALL_BYTES) & (one["clients"] <= APPLY_CLIENTS_MAX)]
        apply, _ = _line(small["clients"], small["p50_s"])
        lone = one[one["clients"] == 1]
        byte, _ = _line(lone["value_bytes"], lone["p50_s"])
        # a residual: below 0 when the WAL's append is smaller than the other estimates' errors (a disk that
        # acknowledges an fsync in microseconds, as this VM's does); a duration is not negative
        fsync = max(0.0, _lone_put(one, 1) - request - apply - SMALL_BYTES * byte)
        est = {"etcd.request_s": request, "etcd.range.object_s": per_object, "etcd.range.byte_s": per_byte,
               "etcd.apply_s": apply, "etcd.wal.byte_s": byte, "etcd.wal.fsync_s": fsync,
               "etcd.raft.rtt_s": _lone_put(put_rows, 3) - _lone_put(put_rows, 1)}
        if watches is not None:
            w = watches[(watches["round"] == round_) & (watches["members"] == 1)]
            slope, _ = _line(w["watchers"], w["mean_s"])
            est["etcd.watch.event_s"] = 2 * cores * slope
        out[int(str(round_))] = est
    return pd.DataFrame.from_dict(out, orient="index").sort_index()


DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "etcd.request_s": (RANGE, "a request's path with no work in it (client, gRPC gateway, gRPC, in and out): "
                              "the intercept of a serializable range's p50 against objects and bytes "
                              "(relative errors)"),
    "etcd.range.object_s": (RANGE, "a range's cost per object returned (the plane's coefficient of objects)"),
    "etcd.range.byte_s": (RANGE, "a range's cost per byte of the values returned (the plane's coefficient)"),
    "etcd.apply_s": (PUT, "a put's cost on the serial path per entry of a batch: the slope of a put's p50 "
                          "against closed-loop clients, 1 and 8 (one member, 100-byte values)"),
    "etcd.wal.byte_s": (PUT, "a put's cost per byte of its value (one member, one client): the slope of its "
                             "p50 against the value's bytes (100 B to 100 KiB)"),
    "etcd.wal.fsync_s": (PUT, "the write-ahead log's append with its fsync (one member): a lone 100-byte put's "
                              "p50 less etcd.request_s, etcd.apply_s and its bytes, at least 0"),
    "etcd.raft.rtt_s": (PUT, "the leader's round trip to a follower on loopback: a lone 100-byte put's p50 with "
                             "three members less with one"),
    "etcd.watch.event_s": (WATCH, "sending one event on a watch stream (one stream per watcher, through the "
                                  "gRPC gateway): twice the cores times the slope of the mean delivery latency "
                                  "against the watchers (one member, 1 to 1,000 watchers)"),
}


def _param(data: Dataset, name: str, values: pd.Series, version: str) -> dict[str, Any]:
    filename, description = DESCRIPTIONS[name]
    values = values.dropna().astype(float)
    return {
        **data.header(name, f"etcd {version} on loopback, fsync on, data on the machine's disk: {description}",
                      "s", filename, "constant"),
        "value": float(values.median()),
        "fit": {"method": "median over rounds of the estimate made within each round from p50s", "n": int(values.size)},
        "goodness_of_fit": {"rounds": {str(r): float(v) for r, v in values.items()},
                            "row_min": float(values.min()), "row_max": float(values.max())},
    }


def names(data: Dataset) -> list[str]:
    """The parameter sets these data support."""
    if not (data.has(PUT) and data.has(RANGE)):
        return []
    return [n for n, (f, _) in DESCRIPTIONS.items() if data.has(f)]


def observations(name: str, data: Dataset) -> pd.DataFrame:
    """The samples behind one of this module's parameter sets: its per-round estimates."""
    values = round_estimates(data, int(data.meta.get("cores") or 1))[name].dropna()
    return pd.DataFrame({"y": values.to_numpy(float), "group": "round " + values.index.astype(str)})


def fit_etcd(data: Dataset) -> list[dict[str, Any]]:
    estimates = round_estimates(data, int(data.meta.get("cores") or 1))
    version = str(data.frame(PUT)["etcd"].iloc[0]).removeprefix("etcd Version: ")
    return [_param(data, name, estimates[name], version) for name in names(data)]

