"""Micro-stories of the watch fan-out (models/k8s/cacher.py) and the reflector (models/k8s/informer.py)."""

from __future__ import annotations

import pytest

from sim.core import Environment
from models.k8s.cacher import Cacher
from models.k8s.informer import Reflector
from models.k8s.watchcache import TimeBudget, WatchCacheHistory


def _emit(env: Environment, cacher: Cacher, gap: float, count: int, trigger=None):
    for _ in range(count):
        cacher.record(trigger)
        yield env.timeout(gap)


def test_a_lagging_watcher_is_closed_and_the_others_are_served():
    env = Environment()
    cacher = Cacher(env)  # the budget starts empty: the first full buffer closes its watcher
    fast = cacher.watch("fast", 1, consume=lambda: 0.001)
    slow = cacher.watch("slow", 1, consume=lambda: 1.0, buffer_events=4)
    env.process(_emit(env, cacher, 0.01, 100))
    env.run(until=5)
    assert slow.closed.triggered and slow.closed.value == "lagging"
    assert fast.active and fast.resource_version == 101
    assert env.metrics.counter("watch.terminated").value == 1
    # the slow client took one event out, then 4 queued filled its buffer and the 6th blocked
    assert slow.resource_version <= 2


def test_the_budget_lets_the_dispatcher_wait_for_a_slightly_slow_watcher():
    env = Environment()
    cacher = Cacher(env, budget=TimeBudget(0.0))
    env.run(until=10)  # 10 s idle: the budget fills to its 100 ms cap
    watcher = cacher.watch("w", 1, consume=lambda: 0.02, buffer_events=1)
    env.process(_emit(env, cacher, 0.0, 3))  # three at once: the third waits for room
    env.run(until=11)
    assert watcher.active and watcher.resource_version == 4
    waits = env.metrics.histogram("watch.dispatch_wait_s")
    assert waits.count == 1 and waits.max == pytest.approx(0.02)


def test_index_routes_events_to_their_watchers_only():
    env = Environment()
    cacher = Cacher(env)
    node1 = cacher.watch("kubelet-1", 1, consume=lambda: 0.0, trigger="node-1")
    node2 = cacher.watch("kubelet-2", 1, consume=lambda: 0.0, trigger="node-2")
    everything = cacher.watch("scheduler", 1, consume=lambda: 0.0)
    env.process(_emit(env, cacher, 0.01, 3, trigger="node-1"))
    env.run(until=1)
    assert (node1.resource_version, node2.resource_version, everything.resource_version) == (4, 1, 4)


def test_reflector_rewatches_from_its_version_and_relists_after_gone():
    env = Environment()
    history = WatchCacheHistory(capacity=5, lower_bound=5, upper_bound=5)
    cacher = Cacher(env, history)
    lists = []

    def list_call():
        lists.append(env.now)
        yield env.timeout(0.1)
        return cacher.resource_version

    # a slow client: closed for lagging; by the time it comes back its version has rotated out
    reflector = Reflector(env, "slow", cacher, list_call, consume=lambda: 0.5)
    env.process(_emit(env, cacher, 0.01, 200))
    env.run(until=30)
    assert reflector.closed_by_server.value >= 1
    assert reflector.relists.value >= 1
    assert len(lists) == reflector.lists.value >= 2


def test_reflector_watch_times_out_and_resumes_without_listing():
    env = Environment()
    cacher = Cacher(env)

    def list_call():
        yield env.timeout(0.1)
        return cacher.resource_version

    reflector = Reflector(env, "ok", cacher, list_call, consume=lambda: 0.0)
    env.process(_emit(env, cacher, 1.0, 3000))
    env.run(until=3000)  # 50 min: watches of 5-10 min each end by timeout, several times
    assert reflector.lists.value == 1
    assert 5 <= reflector.watches.value <= 11
    assert reflector.closed_by_server.value == 0


def test_resync_hands_every_stored_object_to_the_handler_again_without_a_call():
    env = Environment()
    cacher = Cacher(env)
    seen: list[object] = []
    calls = []

    def list_call():
        calls.append(env.now)
        yield env.timeout(0.1)
        return cacher.resource_version

    Reflector(env, "ctl", cacher, list_call, consume=lambda: 0.0, on_event=seen.append,
              resync=30.0, store=lambda: ["a", "b", "c"])
    env.run(until=95)
    assert seen == ["a", "b", "c"] * 3  # at 30, 60 and 90 s
    assert len(calls) == 1  # the first LIST only: a resync asks the server nothing
    with pytest.raises(ValueError, match="resync"):
        Reflector(env, "bad", cacher, list_call, consume=lambda: 0.0, resync=-1)
