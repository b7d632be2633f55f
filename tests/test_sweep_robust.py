"""Sweeps that end badly: killed (SIGKILL, SIGTERM) with their workers, broken run files, two at once.

The processes are watched through ``/proc`` (Linux): a process is alive while
``/proc/<pid>/stat`` shows it with the start time it had, in a state other than
zombie.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import sim.sweep_store as sweep_store
from cnsim.cli import main
from sim.sweep import SweepReport, expand_grid, load_sweep, parse_grid, run_sweep

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="watches processes through /proc")

LONG = 30_000  # requests: about 0.3 s a run, so that a sweep of 2 jobs still runs when a run file appears
SHORT = 2_000
GRID = ["arrival_rate=0.5,0.7,0.9"]
REPLICATIONS = 2
RUNS = 6


def sweep_here(out: Path, requests: int = SHORT) -> SweepReport:
    """The sweep of these tests, in this process, serially."""
    points = expand_grid(parse_grid(GRID))
    return run_sweep(
        "mmc", points, {"requests": requests}, replications=REPLICATIONS, out_dir=out, progress=False, executor="serial"
    )


def cli_arguments(out: Path, requests: int = SHORT) -> list[str]:
    grid = [item for key in GRID for item in ("--grid", key)]
    return ["sweep", "mmc", *grid, "--set", f"requests={requests}", "-r", str(REPLICATIONS), "--out", str(out),
            "--no-progress"]


def values(out: Path) -> pd.DataFrame:
    return load_sweep(out)


def stray_files(out: Path) -> list[Path]:
    return [path for path in out.rglob("*") if path.name.startswith(".") or path.suffix == ".tmp"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> pd.DataFrame:
    """The values of a clean serial sweep of long runs."""
    out = tmp_path_factory.mktemp("reference")
    sweep_here(out, LONG)
    return values(out)


# --- processes, through /proc ---------------------------------------------------------------


def process_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` from the state on (field 3), or ``None`` if there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def children(parent: int) -> dict[int, str]:
    """The processes whose parent is ``parent``: pid -> start time."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = process_stat(int(entry.name))
            if stat is not None and int(stat[1]) == parent:
                found[int(entry.name)] = stat[19]
    return found


def alive(pid: int, started: str) -> bool:
    stat = process_stat(pid)
    return stat is not None and stat[19] == started and stat[0] not in "ZX"


def still_alive(processes: dict[int, str], within_s: float) -> list[int]:
    """The processes alive after waiting up to ``within_s`` seconds for them all to end."""
    deadline = time.monotonic() + within_s
    while True:
        living = [pid for pid, started in processes.items() if alive(pid, started)]
        if not living or time.monotonic() > deadline:
            return living
        time.sleep(0.05)


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


# --- a killed sweep -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("executor", "signum", "status"),
    [
        pytest.param("processes", signal.SIGKILL, -signal.SIGKILL, id="processes-SIGKILL"),
        pytest.param("processes", signal.SIGTERM, 130, id="processes-SIGTERM"),
        # Dask's workers exit by themselves when their parent dies; its cluster takes seconds to start
        pytest.param("dask", signal.SIGKILL, -signal.SIGKILL, id="dask-SIGKILL", marks=pytest.mark.slow),
        pytest.param("dask", signal.SIGTERM, 130, id="dask-SIGTERM", marks=pytest.mark.slow),
    ],
)
def test_a_killed_sweep_takes_its_workers_along_and_a_rerun_completes_it(
    tmp_path, reference, executor, signum, status
):
    if executor == "dask":
        pytest.importorskip("distributed")
    out = tmp_path / "sweep"
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        sweep = subprocess.Popen(
            [sys.executable, "-m", "cnsim", *cli_arguments(out, LONG), "--jobs", "2", "--executor", executor],
            stdout=subprocess.DEVNULL, stderr=stderr,
        )
    workers: dict[int, str] = {}
    try:
        def running_with_a_run_done() -> bool:
            assert sweep.poll() is None, f"the sweep ended before it was killed: {log.read_text()}"
            workers.update(children(sweep.pid))
            return len(workers) >= 2 and any((out / "runs").glob("*.parquet"))

        wait_for(running_with_a_run_done, 120, "two workers and a finished run")
        os.kill(sweep.pid, signum)
        assert sweep.wait(timeout=60) == status, log.read_text()
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    left = still_alive(workers, within_s=5)
    for pid in left:  # do not leave them running if the test fails
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"{len(left)} of the sweep's {len(workers)} child processes outlived it"
    if signum == signal.SIGTERM:
        assert "interrupted; finished runs are kept" in log.read_text()
        assert stray_files(out) == []

    finished = len(list((out / "runs").glob("*.parquet")))
    assert 1 <= finished < RUNS, "killed mid-sweep"
    report = sweep_here(out, LONG)
    assert (report.skipped, report.ran, report.failed, report.broken) == (finished, RUNS - finished, [], [])
    assert stray_files(out) == []
    frame = values(out)
    assert (frame.groupby("key").size() == len(reference) // RUNS).all() and frame["key"].nunique() == RUNS
    pd.testing.assert_frame_equal(frame, reference)


CHILD = """
import os, sys, time
import sim.sweep_executors as executors
if sys.argv[1] == "watchdog":
    executors._parent_death_signal = lambda signum: False
    executors.PARENT_POLL_S = 0.05
else:
    executors.PARENT_POLL_S = 3600  # a watchdog, if started, would not save the test
executors._die_with_parent(os.getppid())
print(os.getpid(), flush=True)
time.sleep(60)
"""

PARENT = """
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]])
time.sleep(60)
"""


@pytest.mark.parametrize("mechanism", ["prctl", "watchdog"])
def test_a_worker_dies_with_its_killed_parent(tmp_path, mechanism):
    """Either way a worker learns that its parent died: Linux's parent-death signal, or polling."""
    pid_file = tmp_path / "child.pid"
    with open(pid_file, "w") as stdout:
        parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD, mechanism], stdout=stdout)
    try:
        wait_for(lambda: pid_file.read_text().strip() != "", 60, "the child to start")
        child = int(pid_file.read_text())
        started = process_stat(child)
        assert started is not None
        parent.kill()
        parent.wait()
        left = still_alive({child: started[19]}, within_s=3)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert left == []
    finally:
        parent.kill()
        parent.wait()


def test_a_worker_whose_parent_died_before_it_started_exits():
    code = "import os, sim.sweep_executors as e; e._die_with_parent(os.getppid() + 1); print('alive')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (1, "")


# --- broken run files -----------------------------------------------------------------------


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def another_runs(path: Path) -> None:
    other = next(p for p in sorted(path.parent.glob("*.parquet")) if p != path)
    shutil.copyfile(other, path)


@pytest.mark.parametrize("breaking", [truncate, empty, another_runs])
def test_a_broken_run_file_is_set_aside_and_redone(tmp_path, breaking):
    sweep_here(tmp_path)
    whole = values(tmp_path)
    victim = sorted((tmp_path / "runs").glob("*.parquet"))[2]
    breaking(victim)
    broken = victim.read_bytes()

    out = io.StringIO()
    assert main([*cli_arguments(tmp_path), "--executor", "serial"], out=out) == 0
    text = out.getvalue()
    assert f"{RUNS} runs: 1 ran, {RUNS - 1} already done, 0 failed" in text
    assert f"redone {victim.stem}: its run file was broken (" in text
    assert (tmp_path / "failed" / victim.name).read_bytes() == broken
    pd.testing.assert_frame_equal(values(tmp_path), whole)
    assert main(["plot", str(tmp_path)], out=io.StringIO()) == 0



def test_temporaries_of_a_killed_sweep_are_removed(tmp_path):
    sweep_here(tmp_path)
    leftovers = [tmp_path / "runs" / ".abc.parquet.123.0a1b2c3d.tmp", tmp_path / ".sweep.json.123.0a1b2c3d.tmp"]
    for path in leftovers:
        path.write_bytes(b"PAR1 half")
    report = sweep_here(tmp_path)
    assert report.skipped == RUNS
    assert stray_files(tmp_path) == []


# --- two sweeps at once ---------------------------------------------------------------------


def test_a_second_sweep_into_a_locked_store_is_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "sweep"
    with sweep_store.locked(out):
        assert main(cli_arguments(out)) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("cnsim: error: ")
    assert str(out) in error and f"pid {os.getpid()}" in error
    assert sorted(path.name for path in out.iterdir()) == ["sweep.lock"]  # nothing written, nothing run
    assert main([*cli_arguments(out), "--executor", "serial"], out=io.StringIO()) == 0  # released: runs now
