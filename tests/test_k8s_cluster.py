"""The ``k8s.cluster`` kind: the control plane loaded by a small cluster, and its mechanisms one by one."""

from __future__ import annotations

import pytest

from sim.params import param_value
from sim.run import run_replication
from sim.scenario import ScenarioError, load_scenario

SMALL = {"nodes": 50, "pods": 1500, "duration": "60s", "warmup": 0.2}


def _run(overrides):
    result = run_replication(load_scenario("control-plane-at-scale", {**SMALL, **overrides}), 0)
    return {(metric, statistic): value for metric, statistic, value in result.rows}


def test_a_small_cluster_meets_its_slos_and_heartbeats_every_10_s():
    rows = _run({})
    assert rows["nodes.renewals", "rate"] == pytest.approx(50 / 10, rel=0.05)
    assert rows["nodes.not_ready", "count"] == 0
    assert rows["api.mutating.latency_s", "p99"] < 1.0
    # a pod starts once its container has (mean 1 s), plus a few API calls of milliseconds
    assert 0.5 < rows["pod.startup_s", "mean"] < 2.0
    assert rows["scheduler.scheduled", "rate"] == pytest.approx(8, rel=0.35)


def test_a_cluster_list_costs_the_objects_times_the_codec():
    """Alone on idle cores, a LIST of every pod takes its object count times the calibrated JSON encode cost."""
    rows = _run({"churn": 0, "nodes": 10, "pods": 1000, "lists": {"m": {"every": "10s", "format": "json"}}})
    assert rows["api.list.latency_s", "mean"] == pytest.approx(1000 * param_value("apiserver.codec.json.marshal_s"),
                                                               rel=1e-6)


def test_the_controller_manager_client_limit_caps_the_churn():
    """kube-controller-manager's default 20 QPS cannot carry 20 creations and 20 deletions a second: the
    pods it manages to create are about half, and those it creates wait longer and longer to start."""
    rows = _run({"churn": "20/s"})
    assert rows["scheduler.scheduled", "rate"] == pytest.approx(10, rel=0.25)
    assert rows["pod.startup_s", "p99"] > 5.0


def test_bad_input_names_the_field():
    with pytest.raises(ScenarioError, match="pods"):
        load_scenario("control-plane-at-scale", {"nodes": 10, "pods": 5000})
    with pytest.raises(ScenarioError, match="churn"):
        load_scenario("control-plane-at-scale", {"churn": "-1/s"})


def test_a_slow_webhook_on_pods_slows_every_pod_write_and_fail_denies_on_timeout():
    """A webhook answering in 2 s sits inside every pod write; one slower than its 10 s timeout denies every
    pod creation under failurePolicy Fail, and lets them through under Ignore."""
    slow = _run({"apiserver.webhooks": {"policy": {"latency": "2s"}}})
    assert slow["webhook.policy.latency_s", "mean"] == pytest.approx(2.0)
    assert slow["api.mutating.latency_s", "p99"] > 2.0
    dead = _run({"apiserver.webhooks": {"policy": {"latency": "12s"}}})
    assert dead["api.denied", "count"] > 0 and dead.get(("pod.startup_s", "count"), 0) == 0
    ignored = _run({"apiserver.webhooks": {"policy": {"latency": "12s", "failure_policy": "Ignore"}}})
    assert ignored["api.denied", "count"] == 0 and ignored["pod.startup_s", "count"] > 0
