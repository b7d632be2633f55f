"""Fits of the mesh data plane's proxies (``proxy_sidecar.csv``, :mod:`calibration.measure_proxy`).

* ``proxy.<proxy>.cpu_s_vs_rate`` for ``envoy`` and ``goproxy`` (kind
  ``table``): the proxy process's CPU (user and system, ``/proc/PID/stat``;
  for the Go proxy its collector's included) per request it forwards, against
  the requests per second through it: the median over the rounds at each rate.
  It falls as the rate rises (Envoy on this machine: 280-400 us a request at
  250 a second, 150-160 at 2,000): at a low rate each request
  meets an idle worker whose wake-up, event loop turn and cold caches it pays
  alone. Read between rates by linear interpolation and flat outside them
  (``beyond: flat``, :class:`sim.params.Table`). Beside it, in
  ``goodness_of_fit``, the latency the proxy added: the median over rounds of
  the p50 through it less the p50 straight to the server in the same round.
* ``proxy.goproxy.mutator_cpu_s_vs_rate`` (kind ``table``): the same for the
  Go proxy less what its collector took (``runtime/metrics``
  ``/cpu/classes/gc/total``: mark workers, assists and pauses), for a Go proxy
  whose collector is simulated (on a ``linux`` node, :mod:`models.arch.mesh`):
  about 10 us of its 150-220 us a request.
* ``go.http.server_cpu_s_vs_rate`` (kind ``table``): the Go validation
  server's own CPU per request besides its handler's burn, on the direct path
  (no proxy) at each rate: the median over rounds of the process's CPU (all
  its threads: the HTTP server, the runtime's scheduler and sysmon, its
  collector) over the requests sent, less the burn's CPU. It falls as the
  rate rises as the proxies' does (on this machine about 140 us at 250 a
  second, 80 at 2,000, where ``go.http.server_cpu_s``, measured with requests
  back to back, is 52): a request that finds the process idle pays its
  wake-up (the netpoller's thread, a spinning M looking for work, sysmon
  leaving its deep sleep) alone.
* ``proxy.goproxy.alloc_bytes_per_request`` and
  ``proxy.goproxy.alloc_objects_per_request`` (kind ``constant``): what the Go
  proxy allocated per forwarded request (``runtime/metrics``
  ``/gc/heap/allocs``), the median over its runs, for its collector.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from calibration.dataset import Dataset

PROXIES = {"envoy": "Envoy (one worker thread, --concurrency 1; an HTTP connection manager with the router filter "
                    "only)",
           "goproxy": "a Go reverse proxy (net/http/httputil.ReverseProxy at GOMAXPROCS 1, GOGC 100; its "
                      "collector's CPU included)"}
FILE = "proxy_sidecar.csv"
SERVER_CPU_VS_RATE = "go.http.server_cpu_s_vs_rate"


def per_request(data: Dataset, proxy: str, mutator: bool = False) -> pd.DataFrame:
    """The runs through ``proxy``: rate, round, its CPU per request sent (``mutator``: less its collector's,
    a Go proxy only) and the p50 it added over the direct run of the same round and rate."""
    frame = data.frame(FILE)
    direct = frame[frame["path"] == "direct"].set_index(["round", "rate"])["p50_s"]
    through = frame[frame["path"] == proxy].copy()
    cpu = through["proxy_cpu_s"] - (through["proxy_gc_cpu_s"] if mutator else 0.0)
    through["cpu_s_per_request"] = cpu / through["sent"]
    through["added_p50_s"] = through["p50_s"].to_numpy() - direct.reindex(
        pd.MultiIndex.from_frame(through[["round", "rate"]])).to_numpy()
    return through


def server_per_request(data: Dataset) -> pd.DataFrame:
    """The direct runs (no proxy): rate, round and the server's CPU per request sent less its handler's burn."""
    frame = data.frame(FILE)
    direct = frame[frame["path"] == "direct"].copy()
    direct["cpu_s_per_request"] = direct["server_cpu_s"] / direct["sent"] - direct["app_cpu_s"]
    return direct


def observations(name: str, data: Dataset) -> pd.DataFrame:
    """The samples behind one of this module's parameter sets (``y``; ``x`` and ``group`` where useful)."""
    if name == SERVER_CPU_VS_RATE:
        runs = server_per_request(data)
        return pd.DataFrame({"x": runs["rate"].to_numpy(float), "y": runs["cpu_s_per_request"].to_numpy(float),
                             "group": "round " + runs["round"].astype(str).to_numpy()})
    proxy, _, what = name.removeprefix("proxy.").partition(".")
    if what in ("cpu_s_vs_rate", "mutator_cpu_s_vs_rate"):
        runs = per_request(data, proxy, mutator=what.startswith("mutator"))
        return pd.DataFrame({"x": runs["rate"].to_numpy(float), "y": runs["cpu_s_per_request"].to_numpy(float),
                             "group": "round " + runs["round"].astype(str).to_numpy()})
    go = data.frame(FILE)
    go = go[go["path"] == proxy]
    column = {"alloc_bytes_per_request": "proxy_alloc_bytes", "alloc_objects_per_request": "proxy_alloc_objects"}
    return pd.DataFrame({"y": (go[column[what]] / go["proxy_requests"]).to_numpy(float),
                         "group": go["rate"].astype(str).to_numpy() + " requests/s"})


def _rate_table(data: Dataset, name: str, description: str, runs: pd.DataFrame, method: str) -> dict[str, Any]:
    """A ``table`` parameter set of the median over rounds of ``runs``' CPU per request at each rate."""
    by_rate = runs.groupby("rate")
    medians = by_rate["cpu_s_per_request"].median()
    spread = (by_rate["cpu_s_per_request"].max() - by_rate["cpu_s_per_request"].min()) / medians
    return {
        **data.header(name, description, "s", FILE, "table"),
        "x": "requests_per_s", "y": "cpu_s_per_request", "beyond": "flat",
        "points": [[float(rate), float(value)] for rate, value in medians.items()],
        "fit": {"method": method, "n": int(len(runs)), "rounds": int(by_rate.size().min())},
        "goodness_of_fit": {
            "relative_range_by_rate": {str(int(rate)): float(value) for rate, value in spread.items()},
            "largest_relative_range": float(spread.max()),
        },
    }


def fit_proxy(data: Dataset) -> list[dict[str, Any]]:
    out = []
    for proxy, what in PROXIES.items():
        runs = per_request(data, proxy)
        if runs.empty:
            continue
        table = _rate_table(
            data, f"proxy.{proxy}.cpu_s_vs_rate",
            f"CPU (user and system) per request of {what} forwarding as a sidecar, against the requests per second "
            "through it: HTTP/1.1 on kept-alive loopback connections, sharing one CPU with the Go validation server; "
            "between rates by linear interpolation, flat outside them", runs,
            "median over rounds at each rate of the proxy's CPU over the requests sent")
        table["goodness_of_fit"]["added_p50_s_by_rate"] = {
            str(int(rate)): float(value) for rate, value in runs.groupby("rate")["added_p50_s"].median().items()}
        out.append(table)
    runs = per_request(data, "goproxy", mutator=True)
    if not runs.empty:
        out.append(_rate_table(
            data, "proxy.goproxy.mutator_cpu_s_vs_rate",
            "CPU per request of a Go reverse proxy (net/http/httputil.ReverseProxy at GOMAXPROCS 1, GOGC 100) "
            "forwarding as a sidecar, less its "
            "collector's (runtime/metrics /cpu/classes/gc/total: mark workers, assists, pauses), against the "
            "requests per second through it, measured as proxy.goproxy.cpu_s_vs_rate; for a Go proxy whose "
            "collector is simulated", runs,
            "median over rounds at each rate of the proxy's CPU less its collector's over the requests sent"))
    direct = server_per_request(data)
    if not direct.empty:
        out.append(_rate_table(
            data, SERVER_CPU_VS_RATE,
            "CPU (user and system, every thread of the process: the HTTP server, the runtime's scheduler and sysmon, "
            "the collector) per request of the Go validation server (GOMAXPROCS 1, no allocation) besides its "
            "handler's burn, against the requests per second it serves: open-loop Poisson load from another CPU on "
            "kept-alive HTTP/1.1 loopback connections; between rates by linear interpolation, flat outside them",
            direct, "median over rounds at each rate of the server's CPU over the requests sent, less the burn"))
    for unit in ("bytes", "objects"):
        name = f"proxy.goproxy.alloc_{unit}_per_request"
        values = observations(name, data)["y"]
        if values.empty:
            break
        out.append({
            **data.header(name,
                          f"{unit.capitalize()} the Go reverse proxy allocates per forwarded request "
                          "(runtime/metrics /gc/heap/allocs over the requests it counted)",
                          unit, FILE, "constant"),
            "value": float(values.median()),
            "fit": {"method": "median over its runs (all rates and rounds)", "n": int(len(values))},
            "goodness_of_fit": {"row_min": float(values.min()), "row_max": float(values.max()),
                                "relative_range": float((values.max() - values.min()) / values.median())},
        })
    return out
