"""Micro-stories of kube-scheduler's loop (models/k8s/scheduler.py) and node heartbeats (models/k8s/nodes.py)."""

from __future__ import annotations

import pytest

from sim.core import Environment
from models.k8s.nodes import NodeHeartbeats
from models.k8s.scheduler import CLIENT_BURST, CLIENT_QPS, Scheduler


def _call(env: Environment, seconds: float):
    def call(*_args):
        yield env.timeout(seconds)
    return call


def test_scheduling_cycle_cost_follows_the_nodes_evaluated():
    env = Environment()
    # 5,000 nodes: 50 - 5000/125 = 10 % adaptive share, 500 feasible wanted; half the nodes fit -> 1,000 evaluated
    scheduler = Scheduler(env, 5000, _call(env, 0.0), filter_s_per_node=1e-5, score_s_per_node=2e-5,
                          cores=4, feasible_fraction=0.5)
    assert scheduler.nodes_evaluated == 1000
    assert scheduler.cycle_s == pytest.approx((1000 * 1e-5 + 500 * 2e-5) / 4)


def test_binding_rate_is_capped_by_the_client_limit():
    """1,000 pods at once, a free scheduling cycle and instant bindings: the first 100 (the burst)
    bind at once, the rest at 50 a second, as the scheduler's default client QPS allows."""
    env = Environment()
    scheduler = Scheduler(env, 100, _call(env, 0.0), filter_s_per_node=0.0, score_s_per_node=0.0)
    for _ in range(1000):
        scheduler.submit()
    env.run(until=100)
    e2e = env.metrics.histogram("scheduler.e2e_s")
    assert e2e.count == 1000
    assert e2e.max == pytest.approx((1000 - CLIENT_BURST) / CLIENT_QPS, rel=0.01)


def test_scheduling_cycles_are_serial_and_bindings_overlap():
    env = Environment()
    bound = []
    scheduler = Scheduler(env, 10, _call(env, 1.0), filter_s_per_node=0.01, score_s_per_node=0.0)
    for _ in range(5):
        scheduler.submit(on_bound=lambda: bound.append(env.now))
    env.run(until=10)
    # cycles of 10 nodes x 10 ms = 0.1 s, one after another; each binding takes 1 s beside them
    assert bound == pytest.approx([1.1, 1.2, 1.3, 1.4, 1.5])


def test_leases_renew_every_quarter_of_their_duration():
    env = Environment()
    NodeHeartbeats(env, 100, _call(env, 0.01))
    env.run(until=100)
    gaps = env.metrics.histogram("nodes.renewal_gap_s")
    assert gaps.quantile(0.5) == pytest.approx(10.01, rel=1e-3)
    assert env.metrics.counter("nodes.not_ready").value == 0
    # about 100 nodes x 100 s / 10 s renewals
    assert 900 <= env.metrics.counter("nodes.renewals").value <= 1000


def test_slow_renewals_make_nodes_not_ready():
    env = Environment()
    NodeHeartbeats(env, 10, _call(env, 45.0))  # each PUT takes longer than the 40 s grace
    env.run(until=200)
    assert env.metrics.counter("nodes.not_ready").value >= 10


def test_bad_settings_name_the_field():
    env = Environment()
    with pytest.raises(ValueError, match="feasible_fraction"):
        Scheduler(env, 10, _call(env, 0.0), 0.0, 0.0, feasible_fraction=0.0)
    with pytest.raises(ValueError, match="lease_duration"):
        NodeHeartbeats(env, 1, _call(env, 0.0), lease_duration=0.0)


def test_controller_retries_with_back_off_and_deduplicates():
    from models.k8s.controller import Controller

    env = Environment()
    attempts: list[tuple[str, float]] = []

    def reconcile(key):
        attempts.append((key, env.now))
        yield env.timeout(0.001)
        return sum(1 for k, _ in attempts if k == key) > 2  # fails twice, then succeeds

    controller = Controller(env, "rs", reconcile, workers=2)
    controller.enqueue("a")
    controller.enqueue("a")  # deduplicated: still one key
    controller.enqueue("b")
    env.run(until=1)
    times = [at for key, at in attempts if key == "a"]
    assert len(times) == 3
    # retried after the per-item back-off: 5 ms, then 10 ms (DefaultControllerRateLimiter)
    assert times[1] - times[0] == pytest.approx(0.001 + 0.005)
    assert times[2] - times[1] == pytest.approx(0.001 + 0.010)
    assert env.metrics.counter("rs.reconciled").value == 2
    assert env.metrics.counter("rs.failures").value == 4
    assert controller.queue.num_requeues("a") == 0  # forgotten after success


def test_webhook_timeout_follows_the_failure_policy():
    from sim.dists import Constant
    from models.k8s.webhook import Webhook

    env = Environment()
    strict = Webhook(env, "strict", Constant(15.0))  # slower than the 10 s default timeout
    lenient = Webhook(env, "lenient", Constant(15.0), failure_policy="Ignore")
    results = {}

    def call(name, hook):
        start = env.now
        results[name] = (yield from hook.admit()), env.now - start

    env.process(call("strict", strict))
    env.process(call("lenient", lenient))
    env.run()
    assert results == {"strict": (False, 10.0), "lenient": (True, 10.0)}
    with pytest.raises(ValueError, match="timeout"):
        Webhook(env, "bad", Constant(0.0), timeout=31)
