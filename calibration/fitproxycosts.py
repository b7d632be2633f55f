"""Fits of what a sidecar proxy's CPU and memory depend on besides its rate (``proxy_costs.csv`` and
``proxy_memory.csv``, :mod:`calibration.measure_proxy_costs`).

Every CPU estimate is paired within a round: a variant's CPU per request sent
less the baseline's (or another variant's) of the same round, then the median
over rounds, so that what moves between rounds (the machine's state, the
proxy's wake-ups at the rate of the campaign) cancels. For each proxy
(``envoy``, ``goproxy``), parameters of kind ``constant``:

* ``proxy.<p>.cpu_s_per_byte``: CPU per byte of payload through it (request
  and response bodies together), the least-squares slope of CPU per request
  against bytes per request over the baseline and the 8 and 64 KiB payloads;
* ``proxy.<p>.new_connection_cpu_s``: CPU of accepting a downstream connection
  and closing it, ``new-conn`` less ``base``;
* ``proxy.<p>.tls_request_cpu_s``: what mutual TLS adds to a request on a
  kept-alive connection besides its bytes (records, the read and write paths),
  ``tls`` less ``base``;
* ``proxy.<p>.tls_cpu_s_per_byte``: what it adds per byte (encryption and
  decryption): ``tls-payload-64k`` less ``tls``, less ``payload-64k`` less
  ``base``, over the bytes;
* ``proxy.<p>.tls_handshake_cpu_s``: a TLS 1.3 handshake as the server (RSA
  2048 certificates, the client's verified): ``tls-new-conn`` less ``tls``,
  less ``new-conn`` less ``base``;
* ``proxy.envoy.filter.lua_cpu_s``, ``proxy.envoy.filter.wasm_cpu_s``: an HTTP
  filter's CPU per request (reading a header, adding a request and a response
  header), ``lua`` or ``wasm`` less ``base``;
* ``proxy.<p>.memory_bytes`` and ``proxy.<p>.memory_bytes_per_connection``: in
  each round, the least-squares line of each run's growth (its resident set
  holding the connections less its own resident set before any request)
  against the connections held; its slope, and the round's mean idle
  resident set plus its intercept; the median over rounds. Growth within one
  process, not resident sets across processes: a fresh Envoy's idle resident
  set moves by several MB from one process to the next (67-69 MB in the
  campaign, 76-84 MB in a later quick run), as much as 50 connections add.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from calibration.dataset import Dataset

COSTS = "proxy_costs.csv"
MEMORY = "proxy_memory.csv"
PROXIES = ("envoy", "goproxy")
PAYLOAD_VARIANTS = ("base", "payload-8k", "payload-64k")
DESCRIPTIONS = {
    "cpu_s_per_byte": ("s", "CPU per byte of payload (request and response bodies together) it forwards, on "
                            "kept-alive plain HTTP/1.1: the slope of CPU per request against bytes per request "
                            "(empty, 8 KiB and 64 KiB each way)"),
    "new_connection_cpu_s": ("s", "CPU of a downstream connection accepted, carrying one request and closed "
                                  "(Connection: close), beyond a request on a kept-alive connection"),
    "tls_request_cpu_s": ("s", "CPU mutual TLS 1.3 adds to an empty request on a kept-alive connection"),
    "tls_cpu_s_per_byte": ("s", "CPU mutual TLS 1.3 adds per byte of payload (encryption and decryption)"),
    "tls_handshake_cpu_s": ("s", "CPU of one TLS 1.3 handshake as the server of mutual TLS (RSA 2048 "
                                 "certificates, the client's certificate verified), beyond a plain connection's"),
    "memory_bytes": ("bytes", "resident set (VmRSS) with no connection held: the idle resident set plus the "
                              "intercept of its growth "
                              "against connections held"),
    "memory_bytes_per_connection": ("bytes", "resident set per connection held (a downstream connection that "
                                             "carried requests, with the upstream ones opened for it): the slope "
                                             "of VmRSS's growth in one process against connections held"),
}
FILTERS = {"lua": "a Lua HTTP filter (envoy.filters.http.lua)",
           "wasm": "a proxy-wasm HTTP filter on Envoy's V8 runtime (envoy.filters.http.wasm, AssemblyScript)"}
WHAT = {"envoy": "Envoy (one worker, --concurrency 1)", "goproxy": "the Go reverse proxy (GOMAXPROCS 1, GOGC 100)"}


def cpu_per_request(data: Dataset, proxy: str) -> pd.DataFrame:
    """CPU per request sent through ``proxy``: one row per round, one column per variant."""
    frame = data.frame(COSTS)
    runs = frame[frame["path"] == proxy]
    per_request = runs.assign(y=runs["proxy_cpu_s"] / runs["sent"])
    return per_request.pivot_table(index="round", columns="variant", values="y", aggfunc="median")


def _slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept of ``y`` against ``x``."""
    slope, intercept = np.polyfit(x.astype(float), y.astype(float), 1)
    return float(slope), float(intercept)


def estimates(name: str, data: Dataset) -> pd.Series:
    """The per-round estimates behind parameter set ``name`` (indexed by round)."""
    proxy, _, what = name.removeprefix("proxy.").partition(".")
    if what.startswith("memory_bytes"):
        frame = data.frame(MEMORY)
        runs = frame[frame["path"] == proxy]
        fits = {round_: _slope(group["connections"].to_numpy(),
                               (group["rss_bytes"] - group["idle_rss_bytes"]).to_numpy())
                for round_, group in runs.groupby("round")}
        idle = runs.groupby("round")["idle_rss_bytes"].mean()
        return pd.Series({r: fit[0] if what.endswith("per_connection") else idle[r] + fit[1]
                          for r, fit in fits.items()})
    v = cpu_per_request(data, proxy)
    sizes = data.frame(COSTS).drop_duplicates("variant").set_index("variant")["body_bytes"].astype(float)
    if what == "cpu_s_per_byte":
        x = 2 * sizes[list(PAYLOAD_VARIANTS)].to_numpy()
        return pd.Series({r: _slope(x, v.loc[r, list(PAYLOAD_VARIANTS)].to_numpy())[0] for r in v.index})
    if what == "new_connection_cpu_s":
        return v["new-conn"] - v["base"]
    if what == "tls_request_cpu_s":
        return v["tls"] - v["base"]
    if what == "tls_cpu_s_per_byte":
        return ((v["tls-payload-64k"] - v["tls"]) - (v["payload-64k"] - v["base"])) / (2 * sizes["payload-64k"])
    if what == "tls_handshake_cpu_s":
        return (v["tls-new-conn"] - v["tls"]) - (v["new-conn"] - v["base"])
    if what.startswith("filter."):
        return v[what.removeprefix("filter.").removesuffix("_cpu_s")] - v["base"]
    raise KeyError(f"no observations known for parameter set {name!r}")


def names(data: Dataset) -> list[str]:
    """The parameter sets these data support."""
    out = []
    if data.has(COSTS):
        frame = data.frame(COSTS)
        for proxy in PROXIES:
            variants = set(frame.loc[frame["path"] == proxy, "variant"])
            out += [f"proxy.{proxy}.{what}" for what in DESCRIPTIONS if not what.startswith("memory")]
            out += [f"proxy.{proxy}.filter.{f}_cpu_s" for f in FILTERS if f in variants]
    if data.has(MEMORY):
        out += [f"proxy.{proxy}.{what}" for proxy in PROXIES for what in DESCRIPTIONS if what.startswith("memory")]
    return out


def observations(name: str, data: Dataset) -> pd.DataFrame:
    """The samples behind one of this module's parameter sets: its per-round estimates."""
    values = estimates(name, data)
    return pd.DataFrame({"y": values.to_numpy(float), "group": "round " + values.index.astype(str)})


def _param(data: Dataset, name: str) -> dict[str, Any]:
    proxy, _, what = name.removeprefix("proxy.").partition(".")
    if what.startswith("filter."):
        kind = what.removeprefix("filter.").removesuffix("_cpu_s")
        unit, description = "s", f"CPU per request of {FILTERS[kind]} that reads a header and adds one to the " \
                                  "request and one to the response, beyond the router alone"
        filename = COSTS
    else:
        unit, description = DESCRIPTIONS[what]
        filename = MEMORY if what.startswith("memory") else COSTS
    values = estimates(name, data).astype(float)
    return {
        **data.header(name, f"{WHAT[proxy]} as a sidecar beside the Go validation server: {description}", unit,
                      filename, "constant"),
        "value": float(values.median()),
        "fit": {"method": "median over rounds of the estimate paired within each round", "n": int(values.size)},
        "goodness_of_fit": {"rounds": {str(r): float(v) for r, v in values.items()},
                            "row_min": float(values.min()), "row_max": float(values.max())},
    }


def fit_proxy_costs(data: Dataset) -> list[dict[str, Any]]:
    return [_param(data, name) for name in names(data)]
