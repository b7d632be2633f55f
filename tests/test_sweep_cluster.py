"""A sweep on a real Dask cluster: a ``dask scheduler`` and two ``dask worker`` processes on loopback.

The cluster is started once for the module from the venv's interpreter
(``python -m distributed.cli.dask_scheduler`` / ``dask_worker``: what the
``dask`` command runs), on random free ports (the scheduler writes its address
to a scheduler file), each worker single-threaded and without a nanny, so that
a worker's pid is the process to kill and a killed worker stays dead. Every
wait is bounded; every process is killed at the end, whatever happened.

The sweep itself runs as ``python -m cnsim sweep ... --scheduler ADDRESS`` in
a subprocess, as a user would run it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sweep_rows import run_files, run_rows
from test_sweep_robust import wait_for

from sim.sweep import expand_grid, load_sweep, parse_grid, run_sweep
from sim.sweep_dask import worker_environment

distributed = pytest.importorskip("distributed")

pytestmark = [
    pytest.mark.slow,  # a cluster takes seconds to start, as the local Dask tests (tests/test_sweep_robust.py)
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals and loopback processes"),
]

ROOT = Path(__file__).resolve().parents[1]
GRID = ["arrival_rate=0.5,0.9"]
REPLICATIONS = 4
RUNS = 8
REQUESTS = 20_000  # about 0.2 s a run on a quiet machine
START_TIMEOUT_S = 60


class Cluster:
    """A scheduler and workers started as subprocesses; :meth:`stop` kills them all."""

    def __init__(self, folder: Path, **environment: str) -> None:
        self.folder = folder
        self.environment = environment
        self.scheduler_file = folder / "scheduler.json"
        self.processes: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []
        self.address = ""

    def _start(self, module: str, *arguments: str) -> subprocess.Popen:
        log = open(self.folder / f"{module.rsplit('.', 1)[1]}-{len(self.processes)}.log", "w")  # noqa: SIM115
        environment = {**os.environ, **self.environment,
                       "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        process = subprocess.Popen(
            [sys.executable, "-m", module, *arguments], cwd=ROOT, env=environment, stdout=log, stderr=log
        )
        log.close()
        self.processes.append(process)
        return process

    def start(self, workers: int) -> None:
        self._start("distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(self.scheduler_file))
        wait_for(lambda: self.scheduler_file.exists() and self.scheduler_file.stat().st_size > 0,
                 START_TIMEOUT_S, "the scheduler's file")
        self.address = json.loads(self.scheduler_file.read_text())["address"]
        for _ in range(workers):
            self.workers.append(self._start(
                "distributed.cli.dask_worker", self.address, "--host", "127.0.0.1", "--nthreads", "1",
                "--no-nanny", "--no-dashboard", "--death-timeout", "30"))
        with distributed.Client(self.address, timeout=START_TIMEOUT_S, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=START_TIMEOUT_S)

    def client(self):
        return distributed.Client(self.address, timeout=START_TIMEOUT_S, set_as_default=False)

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text()[-3000:]}" for path in sorted(self.folder.glob("*.log")))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
        for process in self.processes:
            process.wait(timeout=30)


@contextmanager
def running_cluster(folder: Path, workers: int, **environment: str) -> Iterator[Cluster]:
    folder.mkdir(parents=True, exist_ok=True)
    started = Cluster(folder, **environment)
    try:
        started.start(workers)
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """Workers started as the how-to says: with cnsim's settings (the profiler off) in their environment."""
    with running_cluster(tmp_path_factory.mktemp("cluster"), workers=2, **worker_environment()) as started:
        yield started


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> Path:
    """The same sweep, run serially in this process."""
    out = tmp_path_factory.mktemp("serial")
    run_sweep("mmc", expand_grid(parse_grid(GRID)), {"requests": REQUESTS}, replications=REPLICATIONS,
              out_dir=out, progress=False, executor="serial")
    return out


def sweep_command(out: Path, address: str) -> list[str]:
    grid = [item for key in GRID for item in ("--grid", key)]
    return [sys.executable, "-m", "cnsim", "sweep", "mmc", *grid, "--set", f"requests={REQUESTS}",
            "-r", str(REPLICATIONS), "--executor", "dask", "--scheduler", address, "--out", str(out)]


def _default_ctrl_c() -> None:
    """In the sweep's process before it starts: Ctrl-C as a terminal gives it. A Python started with SIGINT
    ignored (inherited from a parent that ignores it) keeps ignoring it and never raises KeyboardInterrupt;
    in the full suite the sweep ran to its end (exit 0) with the Ctrl-C sent after its first run."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_sweep(out: Path, address: str, log: Path) -> subprocess.Popen:
    with open(log, "w") as stream:
        return subprocess.Popen(sweep_command(out, address), cwd=ROOT, stdout=stream, stderr=stream,
                                preexec_fn=_default_ctrl_c)


def finished(out: Path) -> int:
    return len(list((out / "runs").glob("*.parquet")))


def busy_worker(cluster: Cluster, sweep: subprocess.Popen) -> subprocess.Popen:
    """One of the cluster's live worker processes with a run of ``sweep`` on it, by the pid it reports."""
    found: list[subprocess.Popen] = []

    def look() -> bool:
        assert sweep.poll() is None, "the sweep ended before a worker was killed"
        with cluster.client() as client:
            processing = client.processing()
            pids = client.run(os.getpid)
        busy = {pids[address] for address, keys in processing.items() if keys and address in pids}
        found[:] = [worker for worker in cluster.workers if worker.pid in busy and worker.poll() is None]
        return bool(found)

    wait_for(look, START_TIMEOUT_S, "a worker with a run on it")
    return found[0]


def test_a_sweep_through_scheduler_survives_a_killed_worker_and_equals_serial(cluster, serial, tmp_path):
    out = tmp_path / "sweep"
    log = tmp_path / "sweep.log"
    sweep = start_sweep(out, cluster.address, log)
    try:
        victim = busy_worker(cluster, sweep)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=10)
        killed_at = finished(out)
        assert sweep.wait(timeout=120) == 0, log.read_text() + cluster.logs()
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    assert killed_at < RUNS, "the worker was killed mid-sweep"
    text = log.read_text()
    assert f"{RUNS} runs: {RUNS} ran, 0 already done, 0 failed" in text, text
    assert not (out / "failed").exists()
    frame = load_sweep(out)
    assert frame["key"].nunique() == RUNS and (frame.groupby("key").size() == len(frame) // RUNS).all()
    assert run_rows(out) == run_rows(serial)
    assert run_files(out) == run_files(serial)


def test_workers_started_with_the_how_tos_environment_run_without_the_profiler(cluster):
    with cluster.client() as client:
        got = client.run(lambda dask_worker: (  # a lambda travels by value; this module is not on the worker
            "profile" in dask_worker.periodic_callbacks, dask_worker.periodic_callbacks["tick"].callback_time))
    assert got and set(got.values()) == {(False, 1000)}  # a test before may have killed a worker


def test_ctrl_c_keeps_the_finished_runs_and_cancels_the_rest_and_a_client_resumes(cluster, serial, tmp_path):
    out = tmp_path / "sweep"
    log = tmp_path / "sweep.log"
    sweep = start_sweep(out, cluster.address, log)
    try:
        wait_for(lambda: sweep.poll() is not None or finished(out) >= 1, START_TIMEOUT_S, "a finished run")
        sweep.send_signal(signal.SIGINT)
        assert sweep.wait(timeout=60) == 130, log.read_text()
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    assert "interrupted; finished runs are kept" in log.read_text()
    kept = finished(out)
    assert 1 <= kept < RUNS
    assert [path for path in out.rglob("*") if path.suffix == ".tmp"] == []
    with cluster.client() as client:  # the cluster stops computing runs nobody will store
        wait_for(lambda: not any(client.processing().values()), 30, "the cluster to drop the cancelled runs")

    with cluster.client() as client:  # the rerun from Python, through a client of the running cluster
        report = run_sweep("mmc", expand_grid(parse_grid(GRID)), {"requests": REQUESTS}, replications=REPLICATIONS,
                           out_dir=out, progress=False, executor="dask", client=client)
        assert client.status == "running"  # a client passed in is left open
    assert (report.total, report.ran, report.skipped, report.failed) == (RUNS, RUNS - kept, kept, [])
    assert run_rows(out) == run_rows(serial)
    assert run_files(out) == run_files(serial)


def test_a_run_whose_workers_keep_dying_is_recorded_as_failed_and_rerun(serial, tmp_path):
    """With the scheduler's allowed-failures at 0, the first worker death gives a run up as KilledWorker."""
    out = tmp_path / "sweep"
    log = tmp_path / "sweep.log"
    with running_cluster(tmp_path / "cluster", workers=2, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0") as strict:
        sweep = start_sweep(out, strict.address, log)
        try:
            victim = busy_worker(strict, sweep)
            os.kill(victim.pid, signal.SIGKILL)
            assert sweep.wait(timeout=120) == 1, log.read_text()
        finally:
            if sweep.poll() is None:
                sweep.kill()
                sweep.wait()
        records = [json.loads(path.read_text()) for path in (out / "failed").glob("*.json")]
        assert records and all(record["type"] == "KilledWorker" for record in records), records
        assert all(record["scenario"]["requests"] == REQUESTS for record in records)
        assert finished(out) + len(records) == RUNS
        assert f"{len(records)} failed" in log.read_text()

        rerun = subprocess.run(sweep_command(out, strict.address), cwd=ROOT, capture_output=True, text=True,
                               timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{RUNS} runs: {len(records)} ran, {RUNS - len(records)} already done, 0 failed" in rerun.stdout
    assert list((out / "failed").glob("*.json")) == []
    assert run_rows(out) == run_rows(serial)
    assert run_files(out) == run_files(serial)
