"""`cnsim validate` against the shipped experiments (calibration/validation), and the experiment programs.

The comparison runs once per module (every shipped experiment, three replications
of as many simulated requests as were measured, the same seeds each time, in
two worker processes; the shipped campaign's table in calibration/validation/README.md
is the same run); each
(experiment, statistic) is then one test of its relative error against
:data:`calibration.validation.compare.TARGETS`. A miss whose cause is understood
is listed in :data:`KNOWN_MISSES` with that cause, as a strict xfail: it fails
if the miss goes away, so the list cannot go stale.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from calibration.validation.compare import STATISTICS, TARGETS, load_experiments
from calibration.validation.experiments import GROUPS, RATE_FRACTIONS, experiment_names
from cnsim.cli import main

REPLICATIONS = 3
JOBS = 2

GO_SLOWER_CAMPAIGN = (
    "the real Go server at GOMAXPROCS 2 was slower in the shipped campaign (2026-12-04 19:38) than in the one of "
    "2026-11-25 17:05 at the same capacity: median 1.61 against 1.44 ms at 50 %; the same simulation is high on "
    "the 11-25 campaign (at 90 %: mean +23 %, median +21 %), so the model lies between two campaigns of one "
    "machine. Besides, the "
    "model's sysmon keeps a spinning goroutine off its core less than its harness measured (7 % against 13 % of "
    "a 5 ms spin, tests/test_go_sysmon.py), which would move these statistics up"
)
NODE_SCAVENGE_PAUSE = (
    "the model's scavenge pause, node.gc.scavenge_pause_vs_survived (2.9 ms + 0.55 ns per surviving byte), was "
    "fitted on gc.js's 51-byte objects; the node_alloc harness (2026-12-06) measured 0.53 ms per scavenge "
    "allocating 1 KiB arrays (18 scavenges, 9.6 ms of pauses), about a fifth. With allocation's CPU and V8's "
    "heap bytes per array now calibrated, the loop is a little busier (about 1.5 % more CPU per request) and, "
    "at 90 % load, those overstated pauses tip the mean and median over; the pause should follow the "
    "surviving objects, not bytes"
)
KNOWN_MISSES: dict[tuple[str, str], str] = {
    ("go-p2-50pct", "p50"): GO_SLOWER_CAMPAIGN,
    **{("node-90pct", s): NODE_SCAVENGE_PAUSE for s in ("mean", "p50")},
}
"""(experiment, statistic) -> why the simulator misses it (measured on the shipped data; see
calibration/validation/README.md)."""


@pytest.fixture(scope="module")
def report() -> dict:
    out = io.StringIO()
    main(["validate", "--json", "--replications", str(REPLICATIONS), "--jobs", str(JOBS)], out)
    return {entry["experiment"]: entry for entry in json.loads(out.getvalue())["experiments"]}


def test_every_group_and_rate_is_shipped():
    assert sorted(e.name for e in load_experiments()) == sorted(experiment_names(GROUPS))
    for experiment in load_experiments():
        assert experiment.config["rate_fraction"] in RATE_FRACTIONS
        assert experiment.summary["errors"] == 0 and experiment.summary["n"] > 1000
        assert experiment.summary["pool_waits"] == 0, "a request found no idle connection"


def test_validate_compares_every_shipped_experiment(report):
    assert sorted(report) == sorted(experiment_names(GROUPS))
    for entry in report.values():
        assert entry["pending"] is None
        assert sorted(entry["statistics"]) == sorted(STATISTICS)


def _cases():
    for name in experiment_names(GROUPS):
        for statistic in STATISTICS:
            reason = KNOWN_MISSES.get((name, statistic))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            yield pytest.param(name, statistic, marks=marks, id=f"{name}-{statistic}")


@pytest.mark.parametrize(("name", "statistic"), list(_cases()))
def test_simulated_statistic_within_target(report, name, statistic):
    row = report[name]["statistics"][statistic]
    assert row["target"] == TARGETS[statistic]
    assert abs(row["error"]) <= TARGETS[statistic], (
        f"{name} {statistic}: real {row['real']:.6g}, simulated {row['simulated']:.6g}, error {row['error']:+.1%}"
    )


def _inverted_fraction(scheduled, latency) -> float:
    """Of consecutive requests where the second arrived before the first ended, the fraction it ended first."""
    order = np.argsort(scheduled)
    start, end = np.asarray(scheduled)[order], (np.asarray(scheduled) + np.asarray(latency))[order]
    overlapping = start[1:] < end[:-1]
    return float((end[1:] < end[:-1])[overlapping].mean())


@pytest.mark.parametrize("pct", ["50", "70", "90"])
def test_go_serves_a_netpoll_batch_newest_first_as_the_real_server(pct):
    """The real GOMAXPROCS 1 server often finishes a request before one sent earlier while it was busy (netpoll
    returns a batch newest first, models.runtime.go.detailed.netpoll). The detailed model, fed the experiment's Poisson
    rate with its CPU per request, inverts consecutive overlapping requests as often, within 0.1 (measured at
    50 / 70 / 90 %: real 0.33 / 0.51 / 0.73 on the shipped campaign, 0.31 / 0.49 / 0.70 on the one of
    2026-11-25 17:05; model 0.29 / 0.46 / 0.75; a FIFO model gives 0)."""
    from models.runtime.go.detailed.runtime import GoRuntime
    from models.runtime.go.gc import GCConfig
    from models.runtime.protocol import Compute
    from sim.core import Environment

    experiment = load_experiments(names=[f"go-p1-{pct}pct"])[0]
    with gzip.open(experiment.folder / "latency.csv.gz", "rt") as handle:
        rows = pd.read_csv(handle)
    real = _inverted_fraction(rows["scheduled_us"].to_numpy(), rows["latency_us"].to_numpy())
    env = Environment(seed=1)
    go = GoRuntime(env, 1, gc=GCConfig(enabled=False))
    rng = np.random.default_rng(1)
    cpu = 1.1e-3
    arrivals, done = [], []

    def arrive():
        for _ in range(10_000):
            yield env.timeout(rng.exponential(1 / float(experiment.config["rate_rps"])))
            arrivals.append(env.now)
            done.append(go.execute([Compute(cpu)]))

    env.run(until=env.process(arrive()))
    env.run(until=env.all_of(done))
    simulated = _inverted_fraction(np.array(arrivals), np.array([event.value for event in done]))
    assert abs(simulated - real) < 0.1, (real, simulated)


def test_shared_cores_come_from_the_taskset_lists():
    """The GOMAXPROCS 2 experiments ran the load generator on the server's two CPUs; the others on a CPU of its
    own; an unpinned process shares nothing we know of."""
    from calibration.validation.compare import _taskset_cpus, shared_cores

    configs = {experiment.name: experiment.config for experiment in load_experiments()}
    assert [shared_cores(configs[f"go-p2-{pct}pct"]) for pct in ("20", "50", "70", "90")] == [2] * 4
    assert {shared_cores(configs[name]) for name in configs if not name.startswith("go-p2")} == {None}
    assert _taskset_cpus(["taskset", "-c", "0-2,5", "valload"]) == {0, 1, 2, 5}
    unpinned = {"server": {"argv": ["valserver"]}, "load": {"argv": ["taskset", "-c", "0,1", "valload"]}}
    assert shared_cores(unpinned) is None


def test_table_ends_with_the_tally():
    out = io.StringIO()
    main(["validate", "--experiment", "go-p1-20pct", "--requests", "2000"], out)
    text = out.getvalue()
    assert text.startswith("go-p1-20pct: go, 1 core(s)")
    for statistic in STATISTICS:
        assert f"\n  {statistic} " in text
    assert text.rstrip().splitlines()[-1].endswith("(mean, p50 and throughput ±10 %, p99 ±20 %)")


def test_chart_draws_real_and_simulated_latency(tmp_path):
    from calibration.validation.chart import comparison_frame
    from calibration.validation.compare import compare

    stem = tmp_path / "validation"
    assert main(["validate", "--experiment", "go-p1-20pct", "--experiment", "node-20pct", "--requests", "2000",
                 "--chart", str(stem)], io.StringIO()) in (0, 1)
    assert stem.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stem.with_suffix(".html").stat().st_size > 0
    frame = comparison_frame(compare(load_experiments(names=["go-p1-20pct"]), requests=2000, replications=1))
    assert sorted(frame["statistic"].unique()) == ["mean", "p50", "p99"]
    assert sorted(frame["source"].unique()) == ["real", "simulated"] and len(frame) == 6


def test_unknown_experiment_is_a_clear_error(capsys):
    assert main(["validate", "--experiment", "no-such-experiment"], io.StringIO()) == 2
    err = capsys.readouterr().err
    assert "--experiment" in err and "'no-such-experiment'" in err and "Traceback" not in err


def test_bad_replications_is_a_clear_error(capsys):
    assert main(["validate", "--replications", "0"], io.StringIO()) == 2
    assert "--replications: must be >= 1 (got 0)" in capsys.readouterr().err


def _check_experiment_folder(folder, runtime: str) -> None:
    config = json.loads((folder / "config.json").read_text())
    summary = json.loads((folder / "summary.json").read_text())
    assert config["runtime"] == runtime and config["rate_rps"] > 0
    assert config["capacity"]["throughput_rps"] > 0
    assert len(config["loadavg_before"]) == 3 and len(config["loadavg_after"]) == 3
    assert summary["errors"] == 0 and summary["n"] > 0
    assert 0 < summary["p50_s"] <= summary["p90_s"] <= summary["p99_s"] <= summary["max_s"]
    with gzip.open(folder / "latency.csv.gz", "rt") as handle:
        rows = pd.read_csv(handle)
    assert list(rows.columns) == ["scheduled_us", "latency_us"]
    assert len(rows) == summary["n"] and (rows["latency_us"] > 0).all()


@pytest.mark.harness
@pytest.mark.parametrize("runtime", [
    "go",
    pytest.param("node", marks=pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")),
])
def test_a_quick_run_writes_well_formed_output(tmp_path, runtime):
    """The programs build, and a quick capacity run and experiment of each server write a well-formed folder."""
    from calibration import harness
    from calibration.validation.experiments import Settings, measure_capacity, run_experiment

    settings = Settings.quick()
    cache = harness.cache_dir()
    binaries = harness.build(["valserver", "valload"], cache)
    group = next(g for g in GROUPS if g.runtime == runtime)
    capacity = measure_capacity(group, settings, binaries, cache)
    folder, _foreign = run_experiment(group, 0.5, capacity, settings, binaries, cache, tmp_path)
    _check_experiment_folder(folder, runtime)


def test_worker_processes_give_the_same_numbers():
    """`cnsim validate --jobs 2` simulates in worker processes, one replication each: the same statistics as in
    this process, since each replication's streams come from the scenario's seed and its index."""
    from calibration.validation.compare import compare

    experiments = load_experiments(names=["go-p1-20pct", "node-20pct"])
    here = compare(experiments, requests=1500, replications=2, jobs=1)
    pooled = compare(experiments, requests=1500, replications=2, jobs=2)
    values = lambda comparisons: [(row.statistic, row.simulated) for c in comparisons for row in c.rows]  # noqa: E731
    assert values(here) == values(pooled)
    assert len(values(here)) == 2 * len(STATISTICS)
