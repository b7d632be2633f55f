"""Fits of what kube-apiserver pays per object to encode and decode it (``k8s_codec.csv``,
:func:`calibration.measure_go.measure_k8s_codec`).

The harness (``calibration/harness/go/k8scodec``) encodes and decodes one Pod of typical size with
``encoding/json`` and in the protobuf wire format written as generated Kubernetes code writes it.
For each ``FORMAT`` (``json``, ``protobuf``), parameters of kind ``constant`` (mean of the
repetitions, as :mod:`calibration.fit` does for ``go.json.*``):

* ``apiserver.codec.FORMAT.marshal_s``, ``apiserver.codec.FORMAT.unmarshal_s``: CPU per object;
* ``apiserver.codec.FORMAT.object_bytes``: the encoded object's size.

The protobuf decoder copies nested messages below the pod's three parts out whole, so its
``unmarshal_s`` is a lower bound on generated code's (the harness says so).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from calibration.dataset import Dataset
from calibration.distfit import fit_constant

CSV = "k8s_codec.csv"
PREFIX = "apiserver.codec."


def observations(name: str, data: Dataset) -> pd.DataFrame:
    """The repetitions behind ``apiserver.codec.FORMAT.WHAT``."""
    frame = data.frame(CSV)
    format_, _, what = name.removeprefix(PREFIX).partition(".")
    rows = frame[frame["format"] == format_]
    if what == "object_bytes":
        return pd.DataFrame({"y": rows["object_bytes"].to_numpy(dtype=float)})
    operation = what.removesuffix("_s")
    return pd.DataFrame({"y": rows.loc[rows["operation"] == operation, "ns_per_op"].to_numpy() * 1e-9})


def fit_k8s_codec(data: Dataset) -> list[dict[str, Any]]:
    frame = data.frame(CSV)
    out = []
    for format_, group in frame.groupby("format", sort=True):
        size = int(group["object_bytes"].iloc[0])
        for operation in ("marshal", "unmarshal"):
            name = f"{PREFIX}{format_}.{operation}_s"
            timing = fit_constant(observations(name, data)["y"].to_numpy())
            timing["fit"]["allocs_per_op_mean"] = float(group.loc[group["operation"] == operation,
                                                                  "allocs_per_op"].mean())
            out.append({**data.header(name, f"{operation.title()} of one Pod ({size} bytes) in {format_}, CPU per "
                                      "object (testing.Benchmark ns/op)", "s", CSV, "constant"), **timing})
        name = f"{PREFIX}{format_}.object_bytes"
        out.append({**data.header(name, f"Size of one typical Pod encoded in {format_}", "bytes", CSV, "constant"),
                    **fit_constant(observations(name, data)["y"].to_numpy())})
    return out
