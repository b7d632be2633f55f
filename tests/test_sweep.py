"""Sweeps: grids, the resumable Parquet store, failures, interruption, executors."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import sim.sweep as sweep
import sim.sweep_executors as sweep_executors
import sim.sweep_store as sweep_store
from tqdm import tqdm

from cnsim.cli import main
from sim.provenance import params_digest
from sim.run import run_replication
from sim.scenario import ScenarioError, load_scenario, resolved
from sweep_rows import run_files, run_rows

from sim.sweep import (
    expand_grid,
    latin_hypercube,
    load_sweep,
    load_timings,
    parse_grid,
    run_sweep,
    stored_provenance,
    stored_scenario,
)

BASE = {"requests": 2000}
GRID = ["arrival_rate=0.5,0.8", "servers=1,2"]
REPLICATIONS = 2


def small_sweep(out: Path, **kwargs) -> sweep.SweepReport:
    options = {"replications": REPLICATIONS, "progress": False, "executor": "serial", **kwargs}
    return run_sweep("mmc", expand_grid(parse_grid(GRID)), BASE, out_dir=out, **options)


def stray_files(out: Path) -> list[Path]:
    return [path for path in out.rglob("*") if path.name.startswith(".") or path.suffix == ".tmp"]


# --- points -------------------------------------------------------------------------------


def test_parse_grid_reads_yaml_scalars():
    grid = parse_grid(["servers=1,2,4", "arrival_rate=0.5, 0.9", "service={dist: exp, mean: 1ms},2ms", "x=fcfs,ps"])
    assert grid == {
        "servers": [1, 2, 4],
        "arrival_rate": [0.5, 0.9],
        "service": [{"dist": "exp", "mean": "1ms"}, "2ms"],
        "x": ["fcfs", "ps"],
    }
    assert all(isinstance(v, int) for v in grid["servers"])
    assert all(isinstance(v, float) for v in grid["arrival_rate"])


@pytest.mark.parametrize("item", ["servers", "servers=", "=1,2", "servers=1,,2", "servers=[1,2"])
def test_parse_grid_bad_item_names_it_in_one_line(item):
    with pytest.raises(ScenarioError) as caught:
        parse_grid([item])
    message = str(caught.value)
    assert repr(item) in message
    assert "\n" not in message


def test_parse_grid_rejects_a_key_given_twice():
    with pytest.raises(ScenarioError, match="swept twice"):
        parse_grid(["servers=1", "servers=2"])


def test_expand_grid_is_the_product_with_the_last_key_fastest():
    assert expand_grid({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"},
    ]
    assert expand_grid({}) == [{}]


def test_latin_hypercube_fills_each_stratum_once_and_is_seeded():
    n = 10
    points = latin_hypercube({"arrival_rate": (0.1, 0.9), "servers": (1, 10)}, n, seed=7)
    assert points == latin_hypercube({"arrival_rate": (0.1, 0.9), "servers": (1, 10)}, n, seed=7)
    assert points != latin_hypercube({"arrival_rate": (0.1, 0.9), "servers": (1, 10)}, n, seed=8)
    rates = np.array([p["arrival_rate"] for p in points])
    strata = np.floor((rates - 0.1) / 0.8 * n).astype(int)
    assert sorted(strata) == list(range(n))
    assert sorted(p["servers"] for p in points) == list(range(1, 11))
    assert all(isinstance(p["servers"], int) for p in points)


# --- running and the store ----------------------------------------------------------------


def test_a_bad_point_fails_before_anything_runs(tmp_path):
    with pytest.raises(ScenarioError) as caught:
        run_sweep("mmc", [{"servers": 1}, {"servers": 0}], BASE, out_dir=tmp_path, progress=False)
    message = str(caught.value)
    assert "servers=0" in message and "servers:" in message and "(got 0)" in message
    assert not (tmp_path / "runs").exists()


def test_sweep_writes_one_file_per_run_and_resumes(tmp_path):
    first = small_sweep(tmp_path)
    assert (first.total, first.ran, first.skipped, first.failed) == (8, 8, 0, [])
    assert len(list((tmp_path / "runs").glob("*.parquet"))) == 8
    second = small_sweep(tmp_path)
    assert (second.total, second.ran, second.skipped) == (8, 0, 8)
    more = small_sweep(tmp_path, replications=3)  # the third replication of each point is new
    assert (more.total, more.ran, more.skipped) == (12, 4, 8)
    assert stray_files(tmp_path) == []


def test_a_failing_run_is_recorded_the_others_finish_and_it_is_retried(tmp_path, monkeypatch):
    def flaky(scenario, replication=0):
        if scenario.servers == 2 and scenario.arrival.mean == pytest.approx(2.0):
            raise ZeroDivisionError("simulated model bug")
        return run_replication(scenario, replication)

    monkeypatch.setattr(sweep_executors, "run_replication", flaky)
    report = small_sweep(tmp_path)
    assert report.ran == 6 and len(report.failed) == 2
    assert all(message == "ZeroDivisionError: simulated model bug" for _, message in report.failed)
    records = [json.loads(path.read_text()) for path in (tmp_path / "failed").glob("*.json")]
    assert len(records) == 2
    assert {r["replication"] for r in records} == {0, 1}
    assert all(r["point"] == {"arrival_rate": 0.5, "servers": 2} for r in records)
    assert all(r["scenario"]["servers"] == 2 and r["scenario"]["requests"] == 2000 for r in records)
    assert all(r["type"] == "ZeroDivisionError" and "simulated model bug" in r["traceback"] for r in records)

    monkeypatch.undo()
    retry = small_sweep(tmp_path)
    assert (retry.ran, retry.skipped, retry.failed) == (2, 6, [])
    assert list((tmp_path / "failed").glob("*.json")) == []


def test_an_interrupted_sweep_keeps_finished_runs_and_no_partial_files(tmp_path, monkeypatch):
    calls = []

    def interrupted(scenario, replication=0):
        calls.append(replication)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return run_replication(scenario, replication)

    monkeypatch.setattr(sweep_executors, "run_replication", interrupted)
    with pytest.raises(KeyboardInterrupt):
        small_sweep(tmp_path)
    assert len(list((tmp_path / "runs").glob("*.parquet"))) == 2
    assert stray_files(tmp_path) == []
    monkeypatch.undo()
    report = small_sweep(tmp_path)
    assert (report.ran, report.skipped) == (6, 2)


def test_an_interrupted_write_leaves_nothing(tmp_path):
    target = tmp_path / "runs" / "abc.parquet"

    def write_half(path: Path) -> None:
        path.write_bytes(b"PAR1 half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep_store._atomic_write(target, write_half)
    assert list(target.parent.iterdir()) == []


def test_run_files_hold_the_rows_params_and_resolved_scenario(tmp_path):
    small_sweep(tmp_path)
    frame = load_sweep(tmp_path)
    scenario = load_scenario("mmc", {**BASE, "arrival_rate": 0.8, "servers": 2})
    rows_per_run = len(run_replication(scenario, 0).rows)
    assert len(frame) == 8 * rows_per_run
    assert list(frame.columns) == [
        "metric", "statistic", "value", "replication", "key", "seed", "param.arrival_rate", "param.servers",
    ]
    assert frame["key"].nunique() == 8
    assert frame.groupby(["param.arrival_rate", "param.servers"])["replication"].unique().map(sorted).tolist() == [
        [0, 1]
    ] * 4
    one = frame[(frame["param.arrival_rate"] == 0.8) & (frame["param.servers"] == 2) & (frame["replication"] == 1)]
    expected = run_replication(scenario, 1)
    assert list(one[["metric", "statistic", "value"]].itertuples(index=False, name=None)) == [
        tuple(row) for row in expected.rows
    ]
    assert stored_scenario(tmp_path / "runs" / f"{expected.key}.parquet") == resolved(scenario)


def test_load_sweep_of_an_empty_directory_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no runs"):
        load_sweep(tmp_path)


def test_sweep_json_keeps_every_invocation(tmp_path):
    small_sweep(tmp_path)
    small_sweep(tmp_path)
    run_sweep("mmc", [{"servers": 3}], BASE, replications=1, out_dir=tmp_path, progress=False, executor="serial")
    history = json.loads((tmp_path / "sweep.json").read_text())["invocations"]
    assert len(history) == 2
    first, second = history
    assert first["source"] == "mmc" and first["overrides"] == BASE and first["replications"] == REPLICATIONS
    assert first["points"] == expand_grid(parse_grid(GRID))
    assert first["base_scenario"] == resolved(load_scenario("mmc", BASE))
    assert len(first["invoked_at"]) == 2
    assert second["points"] == [{"servers": 3}]


def file_hashes(folder: Path) -> dict[str, str]:
    return {path.stem: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.glob("*.json"))}


def test_a_sweep_records_the_version_and_parameter_sets_that_produced_it(tmp_path, monkeypatch):
    shipped = file_hashes(Path(sweep_store.__file__).parents[1] / "calibration" / "params")
    assert len(shipped) > 10
    small_sweep(tmp_path / "shipped")
    recorded = json.loads((tmp_path / "shipped" / "sweep.json").read_text())["invocations"][0]["provenance"]
    assert recorded["cnsim_version"] == metadata.version("cnsim")
    assert recorded["params"] == shipped
    assert recorded["params_sha256"] == params_digest(shipped)
    runs = sorted((tmp_path / "shipped" / "runs").glob("*.parquet"))
    assert [stored_provenance(path) for path in runs] == [
        {"cnsim_version": metadata.version("cnsim"), "params_sha256": params_digest(shipped)}
    ] * len(runs)

    own = tmp_path / "params"  # the user's own parameter sets, one of them changed
    shutil.copytree(Path(sweep_store.__file__).parents[1] / "calibration" / "params", own)
    changed = sorted(own.glob("*.json"))[0]
    changed.write_text(changed.read_text().replace("{", '{"note": "changed", ', 1))
    monkeypatch.setenv("CNSIM_PARAMS", str(own))
    small_sweep(tmp_path / "own")
    digest = params_digest(file_hashes(own))
    assert digest != params_digest(shipped)
    assert {stored_provenance(path)["params_sha256"] for path in (tmp_path / "own" / "runs").glob("*.parquet")} == {
        digest
    }


def test_the_progress_bar_shows_runs_running_and_failed():
    stream = io.StringIO()
    report = sweep.SweepReport(total=10, ran=3, skipped=2, failed=[("k", "ZeroDivisionError: x")])
    with tqdm(total=10, initial=6, file=stream) as bar:
        sweep._show_status(bar, report, running=2)
    assert "6/10" in stream.getvalue() and "running=2, failed=1" in stream.getvalue()


def test_serial_and_processes_give_identical_values(tmp_path):
    small_sweep(tmp_path / "serial")
    report = small_sweep(tmp_path / "processes", executor="processes", jobs=2)
    assert report.ran == 8 and report.failed == []
    serial = load_sweep(tmp_path / "serial")
    parallel = load_sweep(tmp_path / "processes")
    pd.testing.assert_frame_equal(serial, parallel)
    assert serial["value"].to_numpy().tobytes() == parallel["value"].to_numpy().tobytes()


def test_unknown_executor_and_missing_dask_are_clear(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="serial, processes, dask"):
        small_sweep(tmp_path, executor="threads")
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(RuntimeError, match=r"pip install cnsim\[dask\]"):
        small_sweep(tmp_path, executor="dask")
    assert not (tmp_path / "runs").exists()


def test_serial_processes_and_dask_write_byte_identical_run_files(tmp_path):
    """Every run file's table (all columns, their types, the metadata) and the file itself, byte for byte,
    on each executor; the wall times, which differ, are kept apart."""
    pytest.importorskip("distributed")
    small_sweep(tmp_path / "serial")
    expected_rows, expected_files = run_rows(tmp_path / "serial"), run_files(tmp_path / "serial")
    assert len(expected_rows) == len(expected_files) == 8
    for executor in ("processes", "dask"):
        report = small_sweep(tmp_path / executor, executor=executor, jobs=2)
        assert report.ran == 8 and report.failed == []
        assert run_rows(tmp_path / executor) == expected_rows, executor
        assert run_files(tmp_path / executor) == expected_files, executor
        timings = load_timings(tmp_path / executor)
        assert sorted(timings["key"]) == sorted(expected_files) and (timings["wall_s"] > 0).all(), executor
    pd.testing.assert_frame_equal(load_sweep(tmp_path / "serial"), load_sweep(tmp_path / "dask"))


def test_wall_times_are_kept_apart_from_the_rows(tmp_path):
    small_sweep(tmp_path)
    timings = load_timings(tmp_path)
    assert list(timings.columns) == ["key", "wall_s", "host", "pid", "stored_at"]
    assert sorted(timings["key"]) == sorted(path.stem for path in (tmp_path / "runs").glob("*.parquet"))
    assert (timings["wall_s"] > 0).all() and (timings["pid"] == os.getpid()).all()  # serial: this process
    assert "wall_s" not in pq.read_schema(next((tmp_path / "runs").glob("*.parquet"))).names


def test_timings_survive_a_line_cut_short_and_keep_the_last_of_a_redone_run(tmp_path):
    small_sweep(tmp_path)
    lines = (tmp_path / "timings.jsonl").read_text().splitlines()
    first, second = (json.loads(line)["key"] for line in lines[:2])
    (tmp_path / "runs" / f"{first}.parquet").unlink()  # redone by the next sweep
    with (tmp_path / "timings.jsonl").open("a") as log:
        log.write('{"key": "cut sho')  # what a sweep killed in mid-write could leave
    small_sweep(tmp_path)
    timings = load_timings(tmp_path).set_index("key")
    assert len(timings) == 8
    redone = [json.loads(line) for line in (tmp_path / "timings.jsonl").read_text().splitlines()[len(lines) + 1:]]
    assert [entry["key"] for entry in redone] == [first]
    assert timings.loc[first, "stored_at"] == redone[0]["stored_at"]
    assert timings.loc[second, "stored_at"] == json.loads(lines[1])["stored_at"]


def test_load_sweep_drops_the_wall_time_column_of_older_run_files(tmp_path):
    small_sweep(tmp_path)
    path = next((tmp_path / "runs").glob("*.parquet"))
    table = pq.read_table(path)
    pq.write_table(table.append_column("wall_s", pa.array([1.5] * len(table))), path)  # as cnsim wrote it before
    frame = load_sweep(tmp_path)
    assert "wall_s" not in frame.columns and len(frame) == 8 * len(table)


def test_a_local_dask_cluster_runs_its_workers_without_the_profiler():
    """The profiler's stack walks cost a simulation 10-20 % of its worker's CPU (sim/sweep_dask.py)."""
    pytest.importorskip("distributed")
    import dask

    import sim.sweep_dask as sweep_dask

    with sweep_dask.local_cluster(1) as client:
        got = client.run(lambda dask_worker: (  # a lambda travels by value; this module is not on the worker
            "profile" in dask_worker.periodic_callbacks, dask_worker.periodic_callbacks["tick"].callback_time))
    assert list(got.values()) == [(False, 1000)]
    assert dask.config.get("distributed.worker.profile.enabled") is True  # this process's settings are left alone
    environment = sweep_dask.worker_environment()  # what the how-to tells a running cluster's workers
    assert environment == {"DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
                           "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s"}
    collected = dask.config.collect_env(environment)
    assert collected["distributed"]["worker"]["profile"]["enabled"] is False
    assert collected["distributed"]["admin"]["tick"]["interval"] == "1s"


def test_a_scheduler_needs_the_dask_executor(tmp_path):
    with pytest.raises(ValueError, match=r"--scheduler 'tcp://127.0.0.1:8786': only with --executor dask"):
        small_sweep(tmp_path, executor="processes", scheduler="tcp://127.0.0.1:8786")
    assert not tmp_path.joinpath("runs").exists()


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("nonsense::::", "not a scheduler address"),
        ("http://127.0.0.1:8786", "not a scheduler address"),
        ("tcp://127.0.0.1", "not a scheduler address"),
        ("tcp://127.0.0.1:{port}", "no Dask scheduler answered within 1 s"),
    ],
)
def test_a_bad_scheduler_address_is_one_clear_error_within_its_timeout(tmp_path, monkeypatch, capsys, address, why):
    pytest.importorskip("distributed")
    import socket

    import sim.sweep_dask as sweep_dask

    monkeypatch.setattr(sweep_dask, "CONNECT_TIMEOUT_S", 1.0)
    with socket.socket() as closed:  # a free port, nothing listening on it once closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    address = address.format(port=port)
    started = time.monotonic()
    status = main(["sweep", "mmc", "--grid", "arrival_rate=0.5", "--executor", "dask", "--scheduler", address,
                   "--out", str(tmp_path / "out")], out=io.StringIO())
    assert time.monotonic() - started < 15
    assert status == 2
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and f"--scheduler {address!r}: {why}" in message, message
    assert not (tmp_path / "out").exists()  # refused before the store is touched
