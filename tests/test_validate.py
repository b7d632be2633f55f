"""`cnsim validate` against the shipped experiments (calibration/validation), and the experiment programs.

The comparison runs once per module (every shipped experiment, one replication
of as many simulated requests as were measured, the same seed each time); each
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

import pandas as pd
import pytest

from calibration.validation.compare import STATISTICS, TARGETS, load_experiments
from calibration.validation.experiments import GROUPS, RATE_FRACTIONS, experiment_names
from sim.cli import main

REPLICATIONS = 1

IDLE_WAKEUP = (
    "wake-up from idle is not modelled: a request that finds the server idle takes longer the longer the idle "
    "gap before it (go-p1-20pct, median latency 1.14 ms after < 0.1 ms idle, 1.24 ms after 3-10 ms, 1.35 ms "
    "after > 10 ms, on a simulated minimum of 1.11 ms), so the low-load body of the distribution is shifted"
)
COST = (
    "the real CPU per request at saturation, 1/capacity = 1.12 ms, exceeds the model's 1.08 ms (burn + "
    "go.http.server_cpu_s + simulated GC), so at a given rate the real utilisation is ~4 % higher and the "
    "queueing tail longer; together with the wake-ups from idle (they lengthen the service of every request "
    "that starts an idle period) the tail is underestimated"
)
SHARED = (
    "at GOMAXPROCS 2 the load generator shares both cores with the server (its dispatch and response reading "
    "preempt the server's threads) and Linux places the server's threads, so the 2 Ps are not two free "
    "servers: real latency at a given fraction of capacity is close to GOMAXPROCS 1's, where the model's "
    "M/D/2-like queue waits far less; plus the wake-ups from idle"
)
NODE_TAIL = (
    "the real Node tail is heavier than the model's at every load (p99 27-51 % short); its causes are not yet "
    "separated: the wake-ups from idle, the V8 collector's pauses on the loop with a 16 MiB live heap (the "
    "model's pause lines come from a harness with another heap and allocation pattern), and the service's CPU "
    "at saturation"
)
KNOWN_MISSES: dict[tuple[str, str], str] = {
    **{("go-p1-20pct", s): IDLE_WAKEUP for s in ("mean", "p50")},
    **{("go-p1-50pct", s): IDLE_WAKEUP for s in ("mean", "p50")},
    **{(f"go-p1-{pct}pct", "p99"): COST for pct in ("20", "50", "70", "90")},
    **{(f"go-p1-{pct}pct", "mean"): COST for pct in ("70", "90")},
    **{(f"go-p2-{pct}pct", s): SHARED for pct in ("20", "50", "70", "90") for s in ("mean", "p50", "p99")},
    **{("node-20pct", s): IDLE_WAKEUP for s in ("mean", "p50")},
    ("node-50pct", "p50"): IDLE_WAKEUP,
    **{(f"node-{pct}pct", "p99"): NODE_TAIL for pct in ("20", "50", "70", "90")},
}
"""(experiment, statistic) -> why the simulator misses it (measured on the shipped data; see
calibration/validation/README.md)."""


@pytest.fixture(scope="module")
def report() -> dict:
    out = io.StringIO()
    main(["validate", "--json", "--replications", str(REPLICATIONS)], out)
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


def test_table_ends_with_the_tally():
    out = io.StringIO()
    main(["validate", "--experiment", "go-p1-20pct", "--requests", "2000"], out)
    text = out.getvalue()
    assert text.startswith("go-p1-20pct: go, 1 core(s)")
    for statistic in STATISTICS:
        assert f"\n  {statistic} " in text
    assert text.rstrip().splitlines()[-1].endswith("(mean, p50 and throughput ±10 %, p99 ±20 %)")


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
def test_go_programs_build_and_a_quick_run_writes_well_formed_output(tmp_path):
    from calibration import harness
    from calibration.validation.experiments import Settings, measure_capacity, run_experiment

    settings = Settings.quick()
    cache = harness.cache_dir()
    binaries = harness.build(["valserver", "valload"], cache)
    group = next(g for g in GROUPS if g.runtime == "go")
    capacity = measure_capacity(group, settings, binaries, cache)
    folder, _foreign = run_experiment(group, 0.5, capacity, settings, binaries, cache, tmp_path)
    _check_experiment_folder(folder, "go")


@pytest.mark.harness
@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_node_server_quick_run_writes_well_formed_output(tmp_path):
    from calibration import harness
    from calibration.validation.experiments import Settings, measure_capacity, run_experiment

    settings = Settings.quick()
    cache = harness.cache_dir()
    binaries = harness.build(["valserver", "valload"], cache)
    group = next(g for g in GROUPS if g.runtime == "node")
    capacity = measure_capacity(group, settings, binaries, cache)
    folder, _foreign = run_experiment(group, 0.5, capacity, settings, binaries, cache, tmp_path)
    _check_experiment_folder(folder, "node")
