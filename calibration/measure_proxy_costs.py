"""What a sidecar proxy's CPU and memory depend on besides its request rate: payload, new connections, mutual
TLS, HTTP filters and open connections. Writes ``proxy_costs.csv`` and ``proxy_memory.csv``.

The set-up is :mod:`calibration.measure_proxy`'s (the Go validation server at
GOMAXPROCS 1 burning :data:`~calibration.measure_proxy.PROXY_APP_CPU_S` a
request, the proxy beside it on one CPU, ``valload`` open-loop from the other),
at one rate, :data:`COSTS_RATE`. In each of :data:`COSTS_ROUNDS` rounds every
:class:`~calibration.measure_proxy.Variant` of :data:`VARIANTS` runs once
through each proxy with fresh processes (in a shuffled order, the same for
every round), so that a fit compares a variant with the baseline of the same
round:

* ``base``: an empty GET on kept-alive connections (the rate table's own point);
* ``payload-8k``, ``payload-64k``: a POST of 8 or 64 KiB whose response is as
  large (``valload -body``, ``valserver -response-bytes``): CPU per byte;
* ``new-conn``: each request on a new connection, closed after its response
  (the proxy keeps its upstream connections): CPU per new connection;
* ``tls``, ``tls-payload-64k``, ``tls-new-conn``: the same over mutual TLS 1.3
  terminated by the proxy (RSA 2048 certificates, ``certgen``): its crypto per
  byte and its handshake;
* ``lua``, ``wasm`` (Envoy only): an HTTP filter before the router that reads a
  header and adds one to the request and one to the response, in Lua or as a
  proxy-wasm module on Envoy's V8 (:mod:`calibration.harness.envoy_filters`).

Memory (``proxy_memory.csv``): a fresh proxy, ``valload`` closed-loop with
``C`` connections of :data:`MEMORY_CONNECTIONS` for a second, then holding them
open and idle while the proxy's resident set (``VmRSS``) is read: the
resident set against the connections it holds (a downstream connection each,
and the upstream ones it opened for them).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from calibration import harness
from calibration.campaign import Recorder, Settings
from calibration.measure_proxy import (PROXY_APP_CPU_S, PROXY_CONNS, Certificates, Envoy, Variant, _proxy_run,
                                       envoy_version)

COSTS_RATE = 300
COSTS_SECONDS = 8.0
COSTS_SECONDS_QUICK = 1.0
COSTS_ROUNDS = 3
VARIANTS = (
    Variant("base"),
    Variant("payload-8k", body_bytes=8192),
    Variant("payload-64k", body_bytes=65536),
    Variant("new-conn", new_conn=True),
    Variant("tls", tls=True),
    Variant("tls-payload-64k", body_bytes=65536, tls=True),
    Variant("tls-new-conn", new_conn=True, tls=True),
    Variant("lua", filter="lua"),
    Variant("wasm", filter="wasm"),
)
PROXIES = ("envoy", "goproxy")
MEMORY_CONNECTIONS = (1, 250, 1000)
MEMORY_CONNECTIONS_QUICK = (1, 250)
MEMORY_LOAD_SECONDS = 1.0
MEMORY_HOLD_SECONDS = 1.5
MEMORY_SETTLE_SECONDS = 0.5
SHUFFLE_SEED = 20261206


def measure_proxy_costs(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    from calibration.harness import envoy_filters
    from calibration.validation import experiments

    seconds = COSTS_SECONDS_QUICK if s.quick else COSTS_SECONDS
    settings = experiments.Settings(cpu_s=PROXY_APP_CPU_S, alloc_bytes=0, live_heap_mib=0, duration_s=seconds,
                                    warmup_s=min(1.0, seconds / 4), grace_s=2.0, conns=PROXY_CONNS)
    rounds = 1 if s.quick else COSTS_ROUNDS
    versions = {"envoy": f"envoy {envoy_version()}", "goproxy": harness.go_version(rec.cache)}
    runs = [(path, variant) for variant in VARIANTS for path in PROXIES
            if not (path == "goproxy" and variant.filter is not None)]
    random.Random(SHUFFLE_SEED).shuffle(runs)
    with tempfile.TemporaryDirectory(prefix="cnsim-certs-") as folder:
        rec.run("proxy_costs", "certgen", ["-dir", folder], {}, 60)
        certs = Certificates(Path(folder))
        filters = {"lua": envoy_filters.lua_filter(),
                   "wasm": envoy_filters.wasm_filter(envoy_filters.build_wasm_filter(rec.cache / "wasm"))}
        rows = [{"path": path, "proxy_version": versions[path], "variant": variant.name, "round": round_,
                 "rate": COSTS_RATE, "seconds": seconds, "app_cpu_s": PROXY_APP_CPU_S,
                 "body_bytes": variant.body_bytes, "new_conn": variant.new_conn, "tls": variant.tls,
                 "filter": variant.filter or "",
                 **_proxy_run(rec, settings, COSTS_RATE, path, variant, certs, filters)}
                for round_ in range(1, rounds + 1) for path, variant in runs]
    connections = MEMORY_CONNECTIONS_QUICK if s.quick else MEMORY_CONNECTIONS
    memory = [{"path": path, "proxy_version": versions[path], "round": round_, "connections": count,
               **_memory_run(rec, path, count)}
              for round_ in range(1, rounds + 1) for count in connections for path in PROXIES]
    return {"proxy_costs.csv": rows, "proxy_memory.csv": memory}


def resident_bytes(pid: int) -> int:
    """The resident set size of process ``pid`` (``VmRSS`` of ``/proc/PID/status``), bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def _memory_run(rec: Recorder, path: str, connections: int) -> dict[str, Any]:
    """A fresh server and proxy of ``path``; the proxy's resident set before any request and while ``connections``
    kept-alive connections that each carried requests for a second are held open and idle."""
    from calibration.validation import experiments

    settings = experiments.Settings(cpu_s=PROXY_APP_CPU_S, alloc_bytes=0, live_heap_mib=0, duration_s=30.0)
    server = experiments.start_server(experiments.Group("proxy", "go", 1), settings, rec.binaries, rec.cache)
    prefix = experiments.taskset_prefix(experiments.SERVER_CPUS[1])
    envoy: Envoy | None = None
    goproxy: experiments.Server | None = None
    load: subprocess.Popen[str] | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="cnsim-proxy-") as scratch:
            if path == "envoy":
                envoy = Envoy(int(server.ready["addr"].rsplit(":", 1)[1]), prefix, Path(scratch))
                url, pid = f"http://127.0.0.1:{envoy.port}/work", envoy.process.pid
            else:
                goproxy = experiments.Server(
                    [*prefix, str(rec.binaries["goproxy"]), "-upstream", f"http://{server.ready['addr']}",
                     "-idle-conns", str(max(connections, 1)), "-max-seconds", "60"],
                    harness.go_env(rec.cache, {"GOMAXPROCS": "1", "GOGC": "100"}))
                url, pid = f"http://{goproxy.ready['addr']}/work", goproxy.process.pid
            idle = resident_bytes(pid)
            extra = {"GOMAXPROCS": str(experiments.LOAD_GOMAXPROCS)}
            argv = [*experiments.taskset_prefix(experiments.LOAD_CPUS[1]), str(rec.binaries["valload"]), "-url", url,
                    "-concurrency", str(connections), "-seconds", str(MEMORY_LOAD_SECONDS),
                    "-hold-seconds", str(MEMORY_HOLD_SECONDS)]
            before = os.getloadavg()
            load = subprocess.Popen(argv, env=harness.go_env(rec.cache, extra), stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            assert load.stdout is not None
            summary = load.stdout.readline()  # written when the run ends and the hold begins
            if not summary:
                raise RuntimeError(f"valload ended without a summary: {load.communicate()[1].strip()[-300:]}")
            time.sleep(MEMORY_SETTLE_SECONDS)
            held = resident_bytes(pid)
            load.wait(MEMORY_HOLD_SECONDS + 30)
            rec.note("proxy_memory", experiments.display_argv(argv), extra, before,
                     proxy_argv=envoy.argv if envoy else experiments.display_argv(goproxy.argv) if goproxy else None)
            done = json.loads(summary)
            return {"idle_rss_bytes": idle, "rss_bytes": held, "requests": int(done["ok"]),
                    "errors": int(done["errors"])}
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.wait()
        if envoy is not None:
            envoy.stop()
        if goproxy is not None:
            goproxy.stop()
        server.stop()
