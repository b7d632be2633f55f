"""The etcd validation campaign: its shipped experiments load, map to k8s.etcd scenarios and compare."""

from __future__ import annotations

import math

from calibration.validation.compare import compare, load_experiments, ratio_checks, render
from calibration.validation.etcd import ETCD_ROOT, RUNS, etcd_scenario


def test_every_run_was_measured_three_times_as_puts_and_deliveries():
    experiments = {e.name: e for e in load_experiments(ETCD_ROOT)}
    assert set(experiments) == {f"{run.name}-{kind}" for run in RUNS for kind in ("put", "delivery")}
    assert all(len(e.repetitions) == 3 for e in experiments.values())


def test_an_experiment_becomes_its_k8s_etcd_scenario():
    (experiment,) = load_experiments(ETCD_ROOT, ["etcd-m3-r500-w10-delivery"])
    data, fixed = etcd_scenario(experiment, 1000, 2)
    assert fixed == 0.0
    assert (data["model"], data["members"], data["writes"]["rate"], data["watch"]["watchers"]) == \
        ("k8s.etcd", 3, 500.0, 10)
    assert data["duration"] == experiment.config["settings"]["duration_s"]


def test_compare_reads_puts_and_deliveries_from_their_own_metrics():
    experiments = load_experiments(ETCD_ROOT, ["etcd-m1-r100-w10-put", "etcd-m1-r100-w10-delivery"])
    comparisons = compare(experiments, replications=1)
    throughput = {c.experiment.name: c.simulated.throughput_rps for c in comparisons if c.simulated}
    # puts arrive at 100/s for 6 s: about 600, within 4 Poisson standard deviations; each reaches 10 watchers
    assert abs(throughput["etcd-m1-r100-w10-put"] - 100) < 4 * math.sqrt(600) / 6
    assert math.isclose(throughput["etcd-m1-r100-w10-delivery"], 10 * throughput["etcd-m1-r100-w10-put"],
                        rel_tol=1e-3)
    assert ratio_checks(comparisons) == []
    assert "1 member(s), 10 watchers, 100 puts/s" in render(comparisons)
