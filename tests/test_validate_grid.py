"""The generalization grid (calibration/validation/grid.py) and how `cnsim validate` judges repeated
experiments: the spread rule, the one-factor pairs and their ratios, the GC window of the servers' /stats,
the campaign's resume."""

from __future__ import annotations

import io
import json
import math
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from calibration.validation import grid
from calibration.validation.compare import (
    Comparison, Experiment, Row, Simulated, load_experiments, one_factor_pairs, ratio_checks,
)
from calibration.validation.experiments import StatsSnapshots, gc_window, process_window
from calibration.validation.machine import process_counters, touch_costs
from cnsim.cli import main


def _config(name: str = "x", runtime: str = "go", cores: int = 1, fraction: float = 0.6, rate: float = 100.0,
            **settings: float) -> dict:
    base = {"cpu_s": 1e-3, "alloc_bytes": 2**20, "alloc_chunk_bytes": 1024, "live_heap_mib": 256, "gogc": 100}
    return {"name": name, "runtime": runtime, "cores": cores, "rate_fraction": fraction, "rate_rps": rate,
            "settings": {**base, **settings}, "capacity": {"throughput_rps": rate / fraction}}


def _summary(mean: float, p99: float | None = None, gc: dict | None = None, n: int = 1000) -> dict:
    return {"n": n, "mean_s": mean, "p50_s": mean, "p99_s": p99 or 3 * mean, "throughput_rps": 100.0,
            "gc_window": gc}


def _experiment(name: str, config: dict, *summaries: dict) -> Experiment:
    return Experiment(name, Path(name), config, summaries[0], tuple(summaries) if len(summaries) > 1 else ())


def _simulated(mean: float, p99: float) -> Simulated:
    return Simulated(mean_s=mean, p50_s=mean, p99_s=p99, throughput_rps=100.0, fixed_delay_s=0.0, requests=1,
                     replications=1, scenario={})


def test_a_repeated_statistic_is_judged_against_the_widened_real_range():
    experiment = _experiment("p", _config(), _summary(1.0), _summary(1.2), _summary(1.1))
    rows = {sim: Row.of(experiment, "mean", sim, 0.10) for sim in (0.91, 0.89, 1.31, 1.33, 1.1)}
    assert rows[1.1].real == pytest.approx(1.1) and (rows[1.1].real_min, rows[1.1].real_max) == (1.0, 1.2)
    assert rows[1.1].low == pytest.approx(0.9) and rows[1.1].high == pytest.approx(1.32)
    assert [rows[sim].within for sim in (0.91, 0.89, 1.31, 1.33, 1.1)] == [True, False, True, False, True]
    # 1.31 is 19 % above the mean: outside the target around the mean, inside the spread widened by it
    assert abs(rows[1.31].error) > 0.10


def test_a_single_run_keeps_the_relative_error_rule():
    experiment = _experiment("s", _config(), _summary(2.0))
    assert Row.of(experiment, "mean", 2.19, 0.10).within and not Row.of(experiment, "mean", 2.21, 0.10).within
    assert Row.of(experiment, "mean", 1.81, 0.10).within and not Row.of(experiment, "mean", 1.79, 0.10).within


def test_gc_rows_are_reported_not_judged():
    experiment = _experiment("g", _config(), _summary(1.0, gc={"gc_cpu_fraction": 0.2, "cycles_per_s": 4.0}),
                             _summary(1.0, gc={"gc_cpu_fraction": 0.3, "cycles_per_s": 6.0}), _summary(1.0))
    row = Row.of(experiment, "gc_cpu_fraction", 0.25, None)
    assert (row.real, row.real_min, row.real_max, row.repetitions) == (pytest.approx(0.25), 0.2, 0.3, 2)
    assert row.to_json()["verdict"] == "reported" and row.to_json()["within"] is None
    missing = Row.of(_experiment("h", _config(), _summary(1.0)), "gc_cycles_per_s", 5.0, None)
    assert math.isnan(missing.real) and missing.repetitions == 0


def test_the_assist_fraction_is_the_assists_cpu_over_the_windows_cores():
    """Real: the assist class of /cpu/classes/gc over wall time x GOMAXPROCS, per repetition that has it."""
    window = {"gc_cpu_fraction": 0.3, "cycles_per_s": 2.0, "wall_s": 10.0, "cores": 2,
              "gc_cpu_s": {"assist": 1.0, "total": 6.0}}
    no_assist = {**window, "gc_cpu_s": {"assist": None, "total": 6.0}}
    experiment = _experiment("a", _config(), _summary(1.0, gc=window), _summary(1.0, gc=no_assist))
    assert experiment.real_values("gc_assist_fraction") == [pytest.approx(1.0 / 20.0)]


def _comparison(name: str, config: dict, real_mean: float, sim_mean: float) -> Comparison:
    experiment = _experiment(name, config, _summary(real_mean, 4 * real_mean))
    return Comparison(experiment, [], _simulated(sim_mean, 5 * sim_mean))


def test_one_factor_pairs_are_found_only_one_setting_apart_at_the_same_load():
    base = _comparison("base", _config(), 1.0, 1.0)
    gogc = _comparison("gogc400", _config(gogc=400), 0.8, 0.9)
    two = _comparison("two", _config(gogc=400, live_heap_mib=16), 0.7, 0.7)
    cores = _comparison("p2", _config(cores=2), 0.5, 0.5)
    other_load = _comparison("gogc50-85", _config(gogc=50, fraction=0.85), 2.0, 2.0)
    node = _comparison("node", _config(runtime="node"), 1.0, 1.0)
    node_cpu = _comparison("node-cpu", _config(runtime="node", cpu_s=3e-3, gogc=400), 3.0, 3.0)
    pending = Comparison(_experiment("pending", _config(live_heap_mib=64), _summary(1.0)), pending="missing")
    pairs = {(a.experiment.name, b.experiment.name, factor)
             for a, b, factor in one_factor_pairs([gogc, base, two, cores, other_load, node, node_cpu, pending])}
    # GOGC means nothing to Node.js: node and node-cpu differ in the CPU only; a runtime is not a factor
    assert pairs == {("base", "gogc400", "gogc"), ("two", "gogc400", "live_heap_mib"), ("base", "p2", "cores"),
                     ("node", "node-cpu", "cpu_s")}


def test_ratio_check_compares_real_and_simulated_ratios():
    base = _comparison("base", _config(), 2.0, 1.0)
    h16 = _experiment("h16", _config(live_heap_mib=16), _summary(1.0, 4.0), _summary(1.4, 8.0))
    heap = Comparison(h16, [], _simulated(0.5, 2.1))
    rows = {row.statistic: row for row in ratio_checks([base, heap])}
    assert rows["mean"].a == "h16" and rows["mean"].b == "base"  # a has the lower heap
    assert rows["mean"].real_ratio == pytest.approx(2.0 / 1.2)  # means over repetitions
    assert rows["mean"].simulated_ratio == pytest.approx(2.0)
    assert rows["mean"].error == pytest.approx(0.2) and rows["mean"].within and rows["mean"].within_of_means
    # the real ratio's range over repetitions: base 2.0 over h16's 1.4 to base 2.0 over 1.0
    assert (rows["mean"].real_low, rows["mean"].real_high) == (pytest.approx(2.0 / 1.4), pytest.approx(2.0))
    assert rows["p99"].real_ratio == pytest.approx(8.0 / 6.0) and rows["p99"].simulated_ratio == pytest.approx(5 / 2.1)
    assert (rows["p99"].real_low, rows["p99"].real_high) == (pytest.approx(1.0), pytest.approx(2.0))
    # 2.38 is 79 % above the ratio of the means, inside the spread's 2.0 widened by 25 %
    assert rows["p99"].within and not rows["p99"].within_of_means
    (_, p99) = ratio_checks([base, Comparison(h16, [], _simulated(0.5, 1.9))])
    assert p99.simulated_ratio > 2.0 * 1.25 and not p99.within


GO_START = {"wall_s": 10.0, "/gc/cycles/total:gc-cycles": 5, "/cpu/classes/gc/total:cpu-seconds": 1.0,
            "/cpu/classes/gc/mark/assist:cpu-seconds": 0.5, "/cpu/classes/gc/pause:cpu-seconds": 0.01}
GO_END = {"wall_s": 20.0, "/gc/cycles/total:gc-cycles": 25, "/cpu/classes/gc/total:cpu-seconds": 5.0,
          "/cpu/classes/gc/mark/assist:cpu-seconds": 2.5, "/cpu/classes/gc/pause:cpu-seconds": 0.03}


def test_gc_window_is_the_difference_of_two_snapshots():
    window, why = gc_window(GO_START, GO_END, "go", 2)
    assert why is None and window is not None
    assert window["cycles"] == 20 and window["cycles_per_s"] == pytest.approx(2.0)
    assert window["gc_cpu_fraction"] == pytest.approx(4.0 / (10.0 * 2))
    assert window["gc_cpu_s"]["assist"] == pytest.approx(2.0) and window["gc_cpu_s"]["idle"] is None
    node_start = {"wall_s": 1.0, "gc_count": 3, "gc_pause_s": 0.1,
                  "gc_by_kind": {"minor": {"count": 3, "pause_s": 0.1}}}
    node_end = {"wall_s": 5.0, "gc_count": 10, "gc_pause_s": 0.5,
                "gc_by_kind": {"minor": {"count": 9, "pause_s": 0.3}, "major": {"count": 1, "pause_s": 0.2}}}
    window, why = gc_window(node_start, node_end, "node", 1)
    assert why is None and window is not None
    assert window["cycles"] == 7 and window["gc_cpu_fraction"] == pytest.approx(0.1)
    assert window["by_kind"]["minor"] == {"count": 6, "pause_s": pytest.approx(0.2)}
    assert window["by_kind"]["major"] == {"count": None, "pause_s": None}  # absent at the start
    assert gc_window(None, GO_END, "go", 1) == (None, "a /stats snapshot is missing")
    assert gc_window(GO_END, GO_START, "go", 1)[0] is None
    assert gc_window({"wall_s": 1.0}, {"wall_s": 2.0}, "go", 1)[0] is None


def test_stats_snapshots_record_what_they_could_not_take():
    class Stats(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"wall_s": 1.5}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Stats)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        addr = f"127.0.0.1:{server.server_address[1]}"
        taken = StatsSnapshots(addr, {"now": 0.0, "later": 60.0})
        threading.Event().wait(0.5)
        result = taken.collect()
    finally:
        server.shutdown()
    assert result["now"] == {"stats": {"wall_s": 1.5}, "error": None, "process": None}
    assert result["later"]["stats"] is None and "not taken" in result["later"]["error"]
    failed = StatsSnapshots("127.0.0.1:9", {"now": 0.0})  # discard port: refused
    threading.Event().wait(0.5)
    assert failed.collect()["now"]["error"]


def test_snapshots_read_the_server_process_counters_and_their_window():
    import os

    own = StatsSnapshots("127.0.0.1:9", {"now": 0.0}, os.getpid())
    threading.Event().wait(0.3)
    process = own.collect()["now"]["process"]
    assert set(process) == {"minor_faults", "user_s", "system_s"} and all(v >= 0 for v in process.values())
    before = process_counters(os.getpid())
    block = bytearray(64 * 2**20)  # zeroed by the kernel as it is first touched: faults
    block[::4096] = b"\1" * len(block[::4096])
    after = process_counters(os.getpid())
    assert after["minor_faults"] - before["minor_faults"] >= 64 * 2**20 / 4096 / 2
    assert process_counters(2**31) is None  # no such process
    window = process_window(before, after, 2.0)
    assert window["minor_faults_per_s"] == pytest.approx((after["minor_faults"] - before["minor_faults"]) / 2)
    assert window["system_cores"] == pytest.approx(window["system_s"] / 2)
    assert process_window(None, after, 2.0) is None


def test_the_touch_probe_reports_each_gib_it_touched():
    report = touch_costs(3 * 2**20 + 100)
    assert report["bytes"] == 3 * 2**20 and len(report["by_gib"]) == 1
    assert report["by_gib"][0]["bytes"] == 3 * 2**20 and report["by_gib"][0]["system_us_per_page"] >= 0


def _write_rep(folder: Path, rate: float, mean: float) -> None:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({**_config(rate=rate), "foreign_cores": 0.0}))
    (folder / "summary.json").write_text(json.dumps(_summary(mean, n=900 if rate < 100 else 1000)))


def test_a_grid_folder_loads_as_one_experiment_per_point(tmp_path):
    point = tmp_path / "go-p1-h256-a1024k-o1024-g100-c1000us-60pct"
    _write_rep(point / "rep1", 90.0, 1.0)
    _write_rep(point / "rep2", 110.0, 1.2)
    (point / ".rep3.partial" / "attempt1-disturbed").mkdir(parents=True)  # unfinished: not a repetition
    experiments = load_experiments(tmp_path)
    assert [e.name for e in experiments] == [point.name]
    experiment = experiments[0]
    assert experiment.config["rate_rps"] == pytest.approx(100.0)
    assert experiment.config["rate_rps_repetitions"] == [90.0, 110.0]
    assert experiment.summary["n"] == 950 and len(experiment.summaries) == 2
    assert experiment.real("mean") == pytest.approx(1.1) and experiment.real_values("mean") == [1.0, 1.2]


def test_grid_points_are_one_factor_variations_of_the_base():
    points = grid.grid_points()
    names = [p.name for p in points]
    assert len(set(names)) == len(names) and names[0] == "go-p1-h256-a1024k-o1024-g100-c1000us"
    assert grid.BASE.experiment_name(0.6) == "go-p1-h256-a1024k-o1024-g100-c1000us-60pct"
    for point in points:
        reference = grid.BASE if point.runtime == "go" else grid.NODE_BASE
        changed = [f for f in grid.FACTORS if getattr(point, f) != getattr(reference, f)]
        assert changed == ([] if point.varied == "base" else [point.varied])
        assert point.alloc_chunk_bytes >= 64  # valserver's lower bound
    assert grid.grid_settings().duration_s == 16.0 and grid.grid_settings().conns >= 512
    with pytest.raises(ValueError, match="--only-point"):
        grid.select_points(points, ["no-such-point"])


def test_the_grid_runs_in_interleaved_rounds_and_resumes(tmp_path, monkeypatch):
    """With the measurements replaced by fakes: rounds run every point once each, a repetition already
    present is skipped, and so is the capacity run of a configuration whose repetitions are all there."""
    runs, capacities = [], []

    def fake_repetition(point, fraction, repetition, capacity, settings, binaries, cache, out_root, say, start):
        runs.append((repetition, point.name, fraction))
        folder = out_root / point.experiment_name(fraction) / f"rep{repetition}"
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text("{}")
        return folder

    def fake_capacity(group, settings, binaries, cache, start):
        capacities.append(group.name)
        return {"throughput_rps": 100.0, "foreign_cores": 0.0}

    monkeypatch.setattr(grid, "run_repetition", fake_repetition)
    monkeypatch.setattr(grid, "measure_capacity", fake_capacity)
    monkeypatch.setattr(grid.harness, "build", lambda programs, cache: {})
    monkeypatch.setattr(grid, "wait_until_quiet", lambda *args: 0.0)
    points = grid.quick_points()
    settings = replace(grid.quick_settings(), quiet_wait_s=0.0)
    (tmp_path / points[0].experiment_name(0.3) / "rep1").mkdir(parents=True)
    (tmp_path / points[0].experiment_name(0.3) / "rep1" / "summary.json").write_text("{}")
    (tmp_path / points[0].experiment_name(0.6) / "rep1").mkdir(parents=True)
    (tmp_path / points[0].experiment_name(0.6) / "rep1" / "summary.json").write_text("{}")
    skipped = []
    written = grid.run_grid(tmp_path, points, settings, (0.3, 0.6), 2, on_done=lambda f: skipped.append(f is None))
    assert runs == [(1, points[1].name, 0.3), (1, points[1].name, 0.6),
                    (2, points[0].name, 0.3), (2, points[0].name, 0.6),
                    (2, points[1].name, 0.3), (2, points[1].name, 0.6)]
    assert capacities == [points[1].name, points[0].name, points[1].name]
    assert len(written) == 6 and skipped.count(True) == 2
    runs.clear()
    assert grid.run_grid(tmp_path, points, settings, (0.3, 0.6), 2) == [] and runs == []
    assert json.loads((tmp_path / "grid.json").read_text())["repetitions"] == 2


@pytest.mark.harness
def test_a_quick_grid_run_writes_well_formed_output(tmp_path):
    """`cnsim validate run --grid --quick` builds the programs, writes a repetition of two points with the
    servers' GC window, and a second run skips them."""
    from tests.test_validate import _check_experiment_folder

    out = io.StringIO()
    assert main(["validate", "run", "--grid", "--quick", "--out", str(tmp_path)], out) == 0
    assert out.getvalue().startswith("2 repetitions written")
    folders = sorted(tmp_path.glob("*/rep1"))
    assert [f.parent.name for f in folders] == sorted(p.experiment_name(0.6) for p in grid.quick_points())
    for folder in folders:
        _check_experiment_folder(folder, "go")
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["gc_window_missing"] is None and summary["gc_window"]["wall_s"] > 0
        assert summary["gc_window"]["cycles"] >= 0 and 0 <= summary["gc_window"]["gc_cpu_fraction"] <= 1
        assert "new_conns" in summary and json.loads((folder / "config.json").read_text())["grid"]["attempt"] == 1
        assert summary["server_process_window"]["minor_faults"] >= 0
    out = io.StringIO()
    assert main(["validate", "run", "--grid", "--quick", "--out", str(tmp_path)], out) == 0
    assert out.getvalue().startswith("0 repetitions written")
    assert len(load_experiments(tmp_path)) == 2


@pytest.mark.harness
def test_valserver_calls_the_next_service_of_a_chain():
    """valserver -next: A answers after B did, B counts the request; with B gone A answers 502."""
    import urllib.error
    import urllib.request

    from calibration import harness
    from calibration.validation.experiments import Server

    cache = harness.cache_dir()
    binary = str(harness.build(["valserver"], cache)["valserver"])
    env = harness.go_env(cache, {"GOMAXPROCS": "1"})
    common = ["-addr", "127.0.0.1:0", "-cpu", "50us", "-alloc", "1024", "-live-heap-mib", "1", "-max-seconds", "60"]
    b = Server([binary, *common], env)
    a = Server([binary, *common, "-next", f"http://{b.ready['addr']}/work"], env)
    try:
        with urllib.request.urlopen(f"http://{a.ready['addr']}/work?i=1", timeout=10) as answer:
            assert answer.status == 200 and answer.read() == b"ok\n"
        assert b.stop()["requests"] == 1
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://{a.ready['addr']}/work?i=2", timeout=10)
        assert refused.value.code == 502
    finally:
        a.stop()
        b.kill()
