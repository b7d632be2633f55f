"""A real etcd (Debian's ``etcd-server``, 3.4) as one member and as three members on loopback, measured through
its gRPC gateway by the Go program ``etcdload``. Writes ``etcd_put.csv``, ``etcd_range.csv`` and
``etcd_watch.csv``.

Each member is a process of :func:`calibration.harness.etcd_binary` with its own client and peer port on
127.0.0.1 and its data directory in a fresh temporary folder (on the machine's disk: meta.json names its
file system); fsync is on (``--unsafe-no-fsync`` is not set), snapshots and compaction at etcd's defaults.
In each of :data:`ROUNDS` rounds a fresh cluster of each size is started and measured:

* put (``etcd_put.csv``): ``C`` closed-loop clients of :data:`PUT_CLIENTS`, each putting values of ``V``
  bytes of :data:`PUT_VALUE_BYTES` to new keys for :data:`PUT_SECONDS`: latency quantiles and throughput
  (the cost of the WAL's fsync, of a byte, of a Raft round and how proposals batch under concurrency);
* range (``etcd_range.csv``): ``N`` keys of :data:`RANGE_KEYS` written with values of ``V`` bytes of
  :data:`RANGE_VALUE_BYTES`, then ranges over all of them, one at a time, serializable and linearizable
  alternately: the cost per object and per byte, and the ReadIndex round;
* watch (``etcd_watch.csv``): ``W`` watch streams of :data:`WATCHERS` on the keys' prefix, then
  :data:`WATCH_PUTS` puts of :data:`WATCH_VALUE_BYTES` bytes at :data:`WATCH_RATE` a second: the delivery
  latency from each put's send time to each watcher's receipt of the event.

Writes go to the leader (``etcdload`` finds it). The load generator runs on the same machine as the
members (two cores shared with other work): its own decoding of the watchers' events counts in the
delivery latency, and the rows are medians over rounds in the fit (:mod:`calibration.fitetcd`).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from calibration import harness
from calibration.campaign import Recorder, Settings

MEMBERS = (1, 3)
ROUNDS = 3
PUT_VALUE_BYTES = (100, 1024, 10240, 102400)
PUT_CLIENTS = (1, 8, 32)
PUT_SECONDS = 2.0
PUT_SECONDS_QUICK = 0.5
RANGE_KEYS = (100, 1000, 10000)
RANGE_KEYS_QUICK = (100, 1000)
RANGE_VALUE_BYTES = (100, 1024)
RANGES = 20
WATCHERS = (1, 10, 100, 1000)
WATCHERS_QUICK = (1, 10)
WATCH_PUTS = 40
WATCH_RATE = 20.0
WATCH_VALUE_BYTES = 100
WATCH_GRACE_S = 30.0
"""How long ``etcdload`` waits for the last events: on a loaded machine 1,000 watchers' backlog takes seconds."""
READY_TIMEOUT_S = 30.0
QUANTILES = ("n", "mean_s", "p50_s", "p90_s", "p99_s", "max_s")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def data_filesystem(path: Path) -> str:
    """The device and file system type holding ``path`` (``df --output=source,fstype``), e.g. ``/dev/vda ext4``."""
    done = subprocess.run(["df", "--output=source,fstype", str(path)], capture_output=True, text=True, timeout=10)
    lines = done.stdout.split("\n")
    return " ".join(lines[1].split()) if done.returncode == 0 and len(lines) > 1 else "unknown"


class EtcdCluster:
    """``members`` etcd processes on loopback forming one cluster, data in ``folder``; ready when each is healthy.

    Use as a context manager; :meth:`stop` ends the processes it started (by their own handles) and removes
    nothing (the caller's temporary folder does).
    """

    def __init__(self, members: int, folder: Path, prefix: tuple[str, ...] = ()) -> None:
        ports = _free_ports(2 * members)
        self.client_urls = [f"http://127.0.0.1:{ports[2 * i]}" for i in range(members)]
        peers = [f"http://127.0.0.1:{ports[2 * i + 1]}" for i in range(members)]
        initial = ",".join(f"m{i}={peer}" for i, peer in enumerate(peers))
        binary = harness.etcd_binary()
        self.argvs: list[list[str]] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        for i in range(members):
            argv = [*prefix, str(binary), "--name", f"m{i}", "--data-dir", str(folder / f"m{i}"),
                    "--listen-client-urls", self.client_urls[i], "--advertise-client-urls", self.client_urls[i],
                    "--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
                    "--initial-cluster", initial, "--initial-cluster-state", "new",
                    "--initial-cluster-token", f"cnsim-{ports[0]}", "--logger", "zap", "--log-level", "error"]
            self.argvs.append(argv)
            self.processes.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        for url, process in zip(self.client_urls, self.processes):
            while True:
                if process.poll() is not None:
                    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
                    raise RuntimeError(f"etcd exited ({process.returncode}): {stderr.strip()[-500:]}")
                try:
                    with urllib.request.urlopen(url + "/health", timeout=2) as response:
                        if json.loads(response.read()).get("health") == "true":
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"etcd at {url}: not healthy within {READY_TIMEOUT_S:.0f} s")
                time.sleep(0.1)

    @property
    def endpoints(self) -> str:
        return ",".join(self.client_urls)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stderr:
                process.stderr.close()

    def __enter__(self) -> EtcdCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def load(rec: Recorder, cluster: EtcdCluster, args: list[str], timeout: float) -> dict[str, Any]:
    """Run ``etcdload`` against ``cluster`` with ``args``; its JSON summary."""
    result = rec.run("etcd", "etcdload", ["-endpoints", cluster.endpoints, *args], {"GOMAXPROCS": "2"}, timeout)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _stats(summary: dict[str, Any], kind: str, prefix: str = "") -> dict[str, Any]:
    stats = summary.get(kind, {})
    return {prefix + key: (round(stats[key], 9) if key != "n" else stats[key]) if key in stats else None
            for key in QUANTILES}


def measure_etcd(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    version = harness.etcd_version()
    seconds = PUT_SECONDS_QUICK if s.quick else PUT_SECONDS
    rounds = 1 if s.quick else ROUNDS
    sizes = PUT_VALUE_BYTES[:2] if s.quick else PUT_VALUE_BYTES
    clients = PUT_CLIENTS[:2] if s.quick else PUT_CLIENTS
    range_keys = RANGE_KEYS_QUICK if s.quick else RANGE_KEYS
    watchers = WATCHERS_QUICK if s.quick else WATCHERS
    puts: list[dict[str, Any]] = []
    ranges: list[dict[str, Any]] = []
    watches: list[dict[str, Any]] = []
    for round_index in range(rounds):
        for members in MEMBERS:
            scratch = Path(tempfile.mkdtemp(prefix="cnsim-etcd-"))
            try:
                before, load_before = time.monotonic(), os.getloadavg()
                with EtcdCluster(members, scratch) as cluster:
                    shown = ["etcd", *cluster.argvs[0][1:]]  # no local path in meta.json
                    rec.note("etcd", shown, {}, load_before, members=members, etcd=version,
                             data_fs=data_filesystem(scratch), start_s=round(time.monotonic() - before, 3))
                    base = {"members": members, "round": round_index, "etcd": version}
                    for size in sizes:
                        for c in clients:
                            summary = load(rec, cluster, ["-mode", "put", "-value-bytes", str(size), "-clients",
                                                          str(c), "-seconds", str(seconds),
                                                          "-prefix", f"put/{size}/{c}/"], seconds + 60)
                            n = summary["put"]["n"]
                            puts.append({**base, "value_bytes": size, "clients": c, **_stats(summary, "put"),
                                         "throughput_per_s": round(n / summary["elapsed_s"], 3)})
                    for size in RANGE_VALUE_BYTES:
                        for keys in range_keys:
                            summary = load(rec, cluster, ["-mode", "range", "-keys", str(keys), "-value-bytes",
                                                          str(size), "-ranges", str(RANGES),
                                                          "-prefix", f"range/{size}/{keys}/"], 120)
                            for consistency in ("serializable", "linearizable"):
                                ranges.append({**base, "keys": keys, "value_bytes": size,
                                               "consistency": consistency,
                                               **_stats(summary, f"range_{consistency}")})
                    for w in watchers:
                        summary = load(rec, cluster, ["-mode", "watch", "-watchers", str(w), "-puts",
                                                      str(WATCH_PUTS), "-rate", str(WATCH_RATE), "-value-bytes",
                                                      str(WATCH_VALUE_BYTES), "-grace-seconds", str(WATCH_GRACE_S),
                                                      "-prefix", f"watch/{w}/"], 120 + WATCH_GRACE_S)
                        watches.append({**base, "watchers": w, "puts": WATCH_PUTS, "rate_per_s": WATCH_RATE,
                                        "value_bytes": WATCH_VALUE_BYTES, **_stats(summary, "put", "put_"),
                                        **_stats(summary, "delivery")})
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
    return {"etcd_put.csv": puts, "etcd_range.csv": ranges, "etcd_watch.csv": watches}
