"""Run the calibration harnesses and write their raw samples to ``calibration/data/<host>/``.

:func:`measure` builds the Go programs the chosen harnesses need, runs each
harness of :data:`HARNESSES` and writes one CSV per measurement plus
``meta.json``: host, date, Go version, cores, every command line with its
environment, wall time and the load average (``os.getloadavg``) before and
after it, and the SHA-256 of the harness sources. A busy machine shows up as a
load average above the core count.

A harness is a function of a :class:`~calibration.campaign.Recorder` and the
campaign's :class:`~calibration.campaign.Settings` that returns its rows by file
name. The harnesses live beside this module, one module a family, each
docstring naming the files its harnesses write:

* :mod:`calibration.measure_go`: the Go programs (``calibration/harness/go/*/main.go``);
* :mod:`calibration.measure_node`: the Node.js scripts (``calibration/harness/node/*.js``);
* :mod:`calibration.measure_faas`: a function's cold start (Go, Node.js with and without a module graph,
  V8 isolates), ``calibration/harness/faas/`` and two Go programs;
* :mod:`calibration.measure_machine`: the machine and sysmon harnesses, on the
  validation server and load generator;
* :mod:`calibration.measure_proxy`: real proxies (Envoy, a Go reverse proxy)
  as sidecars before the validation server, their CPU against their rate;
* :mod:`calibration.measure_proxy_costs`: the same proxies' CPU against
  payload, new connections, mutual TLS and filters, and their memory against
  the connections they hold;
* :mod:`calibration.measure_etcd`: a real etcd, one and three members on
  loopback: put latency by value size and clients, range cost by object count,
  watch delivery by watchers.

The names other modules use (:data:`DATA_ROOT`, :func:`measure`, the settings
and constants the harness tests check) are importable from here.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import re
import socket
from collections.abc import Callable, Iterable
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

from calibration import harness
from calibration.campaign import GC_HEAPS_MIB_QUICK, Recorder, Settings
from calibration.measure_go import (GC_GOGC, GO_PROCESS_REPS_QUICK, HTTP_CPU_CASES, HTTP_CPU_REQUESTS_QUICK,
                                    HTTP_LATENCY_SAMPLES_QUICK, HTTP_ROUNDS_QUICK, SCHED_BUSY, SCHED_PROCS,
                                    measure_alloc, measure_channels, measure_gc, measure_gc_work,
                                    measure_go_process, measure_goroutines, measure_http, measure_json,
                                    measure_k8s_codec, measure_sched)
from calibration.measure_machine import (MACHINE_BURN_S, MACHINE_JITTER_LOOPS_QUICK, MACHINE_PLACEMENT_RATES,
                                         MACHINE_WAKE_RATES, MACHINE_WAKE_RUNTIMES, SYSMON_SAMPLES_QUICK,
                                         SYSMON_SPIN_MS, _idle_gaps, measure_machine, measure_sysmon,
                                         measure_work_stretch)
from calibration.measure_faas import measure_faas_coldstart
from calibration.measure_proxy import measure_proxy
from calibration.measure_proxy_costs import measure_proxy_costs
from calibration.measure_etcd import measure_etcd
from calibration.measure_node import (NODE_CONTEXTS_RETAINED, NODE_GC_LIVE_MIB_QUICK, NODE_GC_MIXES_QUICK,
                                      NODE_HTTP_ROUNDS_QUICK, NODE_MESSAGE_BYTES, NODE_WORKERS_IDLE, NodeSettings,
                                      measure_node_alloc, measure_node_gc, measure_node_http, measure_node_isolate,
                                      measure_node_process, measure_node_worker)

__all__ = [
    "DATA_ROOT", "HARNESSES", "NodeSettings", "Recorder", "Settings", "host_name", "measure", "write_csv",
    # re-exported for the tests: the harness tests check the settings they ran with, test_machine _idle_gaps
    "GC_GOGC", "GC_HEAPS_MIB_QUICK", "GO_PROCESS_REPS_QUICK", "HTTP_CPU_CASES", "HTTP_CPU_REQUESTS_QUICK",
    "HTTP_LATENCY_SAMPLES_QUICK", "HTTP_ROUNDS_QUICK", "SCHED_BUSY", "SCHED_PROCS",
    "MACHINE_BURN_S", "MACHINE_JITTER_LOOPS_QUICK", "MACHINE_PLACEMENT_RATES", "MACHINE_WAKE_RATES",
    "MACHINE_WAKE_RUNTIMES", "SYSMON_SAMPLES_QUICK", "SYSMON_SPIN_MS", "_idle_gaps",
    "NODE_CONTEXTS_RETAINED", "NODE_GC_LIVE_MIB_QUICK", "NODE_GC_MIXES_QUICK", "NODE_HTTP_ROUNDS_QUICK",
    "NODE_MESSAGE_BYTES", "NODE_WORKERS_IDLE",
]

DATA_ROOT = Path(__file__).resolve().parent / "data"


def host_name(name: str | None = None) -> str:
    """``name`` or this machine's hostname, reduced to ``[a-z0-9._-]``."""
    raw = (name or socket.gethostname() or "host").lower()
    return re.sub(r"[^a-z0-9._-]+", "-", raw).strip("-.") or "host"


#: Harnesses by name, in the order they run, with the programs each needs.
HARNESSES: dict[str, tuple[tuple[str, ...], Callable[[Recorder, Settings], dict[str, list[dict[str, Any]]]]]] = {
    "gc": (("gcpause",), measure_gc),
    "alloc": (("allocgc",), measure_alloc),
    "gc_work": (("allocgc",), measure_gc_work),
    "goroutines": (("goroutines",), measure_goroutines),
    "channels": (("chanlat",), measure_channels),
    "sched": (("schedlat",), measure_sched),
    "json": (("jsoncodec",), measure_json),
    "k8s_codec": (("k8scodec",), measure_k8s_codec),
    "http": (("httplat",), measure_http),
    "go_process": (("procstart",), measure_go_process),
    "node_process": ((), measure_node_process),
    "node_isolate": ((), measure_node_isolate),
    "node_worker": ((), measure_node_worker),
    "node_gc": ((), measure_node_gc),
    "node_alloc": ((), measure_node_alloc),
    "node_http": ((), measure_node_http),
    "faas_coldstart": (("faasfn", "faasstart"), measure_faas_coldstart),
    "machine": (("valserver", "valload"), measure_machine),
    "work_stretch": (("valserver",), measure_work_stretch),
    "sysmon": (("valserver",), measure_sysmon),
    "proxy": (("valserver", "valload", "goproxy"), measure_proxy),
    "proxy_costs": (("valserver", "valload", "goproxy", "certgen"), measure_proxy_costs),
    "etcd": (("etcdload",), measure_etcd),
}


def write_csv(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    rows = list(rows)
    if not rows:
        raise RuntimeError(f"no rows measured for {path.name}")
    columns = list(rows[0])
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})


def measure(
    out_root: Path = DATA_ROOT,
    host: str | None = None,
    quick: bool = False,
    only: Iterable[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Build and run the harnesses (``only`` some of them, by name), write CSVs and meta.json; the data folder.

    With ``only``, an existing meta.json keeps the other harnesses' entries; it is read again just before
    it is written, so runs of other harnesses that finished meanwhile keep theirs.
    """
    names = list(only) if only else list(HARNESSES)
    unknown = [n for n in names if n not in HARNESSES]
    if unknown:
        raise ValueError(f"--only: unknown harness {', '.join(unknown)} (known: {', '.join(HARNESSES)})")
    settings = Settings.make(quick)
    cache = harness.cache_dir()
    say = progress or (lambda message: None)
    programs = sorted({p for n in names for p in HARNESSES[n][0]})
    if programs:
        say("building the Go harnesses")
    binaries = harness.build(programs, cache)
    folder = out_root / host_name(host)
    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / "meta.json"
    measured: dict[str, Any] = {}
    load_start = os.getloadavg()
    for name in names:
        say(f"measuring {name}")
        rec = Recorder(binaries, cache)
        files = HARNESSES[name][1](rec, settings)
        for filename, rows in files.items():
            write_csv(folder / filename, rows)
        measured[name] = {"files": sorted(files), "commands": rec.commands, "quick": quick,
                          "date": datetime.now(UTC).isoformat(timespec="seconds"),
                          "harness_source_sha256": harness.source_hash()}
    meta: dict[str, Any] = json.loads(meta_path.read_text()) if only and meta_path.is_file() else {}
    harness_meta = meta.get("harnesses", {})
    for entry in harness_meta.values():  # entries from before per-harness hashes: the hash of their time
        entry.setdefault("harness_source_sha256", meta.get("harness_source_sha256"))
    harness_meta.update(measured)
    if any(name.startswith(("node_", "faas_")) for name in names):
        meta["node_version"] = harness.node_version()
    meta.update(
        {
            "host": host_name(host),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "go_version": harness.go_version(cache),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "quick": quick if not only else meta.get("quick", quick),
            "harness_source_sha256": harness.source_hash(),
            "loadavg_start": [round(v, 2) for v in load_start],
            "loadavg_end": [round(v, 2) for v in os.getloadavg()],
            "harnesses": harness_meta,
        }
    )
    meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return folder
