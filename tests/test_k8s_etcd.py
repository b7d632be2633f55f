"""The ``k8s.etcd`` model: the write path's arithmetic, batching, quorum, reads, watch buffers, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import simpy
from scipy import stats

from sim.core import Environment
from sim.run import run_replication, run_replications
from sim.scenario import ScenarioError, load_scenario
from models.k8s.etcd import (STREAM_WINDOW_BYTES, WATCH_CHANNEL_EVENTS, EtcdCosts, RaftGroup, WatchHub,
                             WatchStream)
from models.k8s.etcd_model import EtcdModel

COSTS = EtcdCosts(request_s=0.001, fsync_s=0.004, byte_s=1e-8, apply_s=0.0002, rtt_s=0.0006,
                  range_object_s=2e-6, range_byte_s=1e-9, watch_event_s=0.0001)


def group(env: Environment, members: int, on_apply=None) -> RaftGroup:
    return RaftGroup(env, members, COSTS, simpy.Resource(env, capacity=2), on_apply)


def lone_put(members: int, size: float = 100.0) -> float:
    env = Environment()
    raft = group(env, members)
    entry = raft.propose(size, 0.0)
    env.run(until=entry.applied)
    return env.now


@pytest.mark.parametrize("members", [1, 3, 5])
def test_a_lone_put_is_its_wal_write_a_round_trip_with_followers_and_its_apply(members):
    disk = COSTS.fsync_s + 100 * COSTS.byte_s
    rtt = COSTS.rtt_s if members > 1 else 0.0
    assert lone_put(members) == pytest.approx(disk + rtt + COSTS.apply_s, rel=1e-12)


def test_proposals_queued_during_an_fsync_go_out_as_one_batch():
    env = Environment()
    raft = group(env, 1)
    first = raft.propose(100, 0.0)

    def later():
        yield env.timeout(COSTS.fsync_s / 2)
        return [raft.propose(100, env.now) for _ in range(10)]

    queued = env.process(later())
    env.run(until=first.applied)
    env.run(until=queued.value[-1].applied)
    assert raft.batch_entries.count == 2 and raft.batch_entries.max == 10
    # the ten waited for the first batch's disk, then shared one fsync, then applied one after another
    disk = COSTS.fsync_s + 100 * COSTS.byte_s
    assert env.now == pytest.approx(disk + (COSTS.fsync_s + 1000 * COSTS.byte_s) + 10 * COSTS.apply_s, rel=1e-9)


def test_commit_waits_for_a_quorum_not_for_the_slowest_follower():
    env = Environment()
    raft = group(env, 3)
    slow = raft.disks[2].request()  # follower 2's disk busy for a long time

    def hold():
        yield slow
        yield env.timeout(1.0)
        raft.disks[2].release(slow)

    env.process(hold())
    entry = raft.propose(100, 0.0)
    env.run(until=entry.applied)
    assert env.now == pytest.approx(lone_put(3), rel=1e-12)
    five = Environment()
    group5 = group(five, 5)
    held = [group5.disks[i].request() for i in (3, 4)]  # two of four followers stalled: quorum 3 still there
    del held
    late = group5.propose(100, 0.0)
    five.run(until=late.applied)
    assert five.now == pytest.approx(lone_put(5), rel=1e-12)


def test_linearizable_reads_take_a_round_trip_with_followers_and_serializable_ones_do_not():
    def read(members: int, linearizable: bool) -> float:
        env = Environment()
        raft = group(env, members)
        env.process(raft.read(100, 1000.0, linearizable))
        env.run()
        return env.now

    local = 100 * (COSTS.range_object_s + 1000 * COSTS.range_byte_s)
    assert read(3, False) == pytest.approx(local)
    assert read(1, True) == pytest.approx(local)
    assert read(3, True) == pytest.approx(local + COSTS.rtt_s)


def watch_run(consume_s: float, puts: int, flush_share: float = 0.0, shared: bool = False, watchers: int = 4):
    env = Environment()
    hub = WatchHub(env)
    raft = group(env, 1, hub.notify)
    cores = raft.cores
    got: dict[int, list[float]] = {i: [] for i in range(watchers)}
    stream = None
    for i in range(watchers):
        if stream is None or not shared:
            stream = WatchStream(env, COSTS, cores, consume_s if i == 0 else 0.0, flush_share)
        hub.add(stream, got[i].append)
    for _ in range(puts):
        raft.propose(1000, 0.0)
    env.run(until=60.0)
    return hub, got


def test_every_watcher_gets_every_event_once():
    hub, got = watch_run(0.0, 50)
    assert [len(v) for v in got.values()] == [50, 50, 50, 50]
    assert hub.victim_events.value == 0


def test_a_slow_watcher_fills_its_window_then_its_channel_and_becomes_a_victim_alone():
    puts = WATCH_CHANNEL_EVENTS + 500
    hub, got = watch_run(0.02, puts)
    window_events = STREAM_WINDOW_BYTES // (1000 + 64)
    assert hub.victim_events.value > 0
    # nothing is lost: the victim's events were retried until they fit
    assert [len(v) for v in got.values()] == [puts] * 4
    # the fast watchers had theirs long before the slow one
    assert max(got[1]) < 1.0 < max(got[0])
    assert window_events < puts


def test_one_flush_for_several_waiting_events_is_what_a_shared_stream_saves():
    _, separate = watch_run(0.0, 1, watchers=8)
    _, shared = watch_run(0.0, 1, flush_share=0.5, shared=True, watchers=8)
    _, shared_no_saving = watch_run(0.0, 1, flush_share=0.0, shared=True, watchers=8)
    last = {name: max(max(v) for v in got.values())
            for name, got in (("separate", separate), ("shared", shared), ("plain", shared_no_saving))}
    commit = lone_put(1, 1000)
    half = COSTS.request_s / 2
    # eight streams on two cores: four sends in a row; one stream: eight in one flush
    assert last["separate"] == pytest.approx(commit + 4 * COSTS.watch_event_s + half, rel=1e-9)
    assert last["plain"] == pytest.approx(commit + 8 * COSTS.watch_event_s + half, rel=1e-9)
    assert last["shared"] == pytest.approx(commit + (8 - 0.5 * 7) * COSTS.watch_event_s + half, rel=1e-9)


def scenario(**fields: object) -> dict[str, object]:
    data: dict[str, object] = {"model": "k8s.etcd", "writes": {"rate": 50}, "duration": 4,
                               "costs": {"request": 0.001, "fsync": 0.004, "per_byte": 1e-8, "apply": 0.0002,
                                         "rtt": 0.0006, "range_object": 2e-6, "range_byte": 1e-9,
                                         "watch_event": 0.0001}}
    data.update(fields)
    return data


def test_the_model_kind_runs_puts_reads_and_watches():
    config = load_scenario(scenario(members=3, reads={"rate": 20, "objects": 10}, watch={"watchers": 5}))
    env = Environment(seed=3, scenario=config)
    model = EtcdModel(env, config)
    model.run()
    h = env.metrics.histograms
    assert h["put.latency_s"].count > 100
    assert h["put.latency_s"].min >= lone_put(3, 1024) + COSTS.request_s - 1e-12
    assert h["watch.delivery_s"].count == 5 * h["put.latency_s"].count
    assert h["range.latency_s"].count > 30


@pytest.mark.parametrize("fields, field, value", [
    ({"members": 0}, "members", "0"),
    ({"writes": {"rate": 10, "value_size": "2MiB"}}, "writes.value_size", "2097152"),
    ({"watch": {"watchers": 2, "slow": 3}}, "watch", "3"),
    ({"watch": {"watchers": 2, "clients": "pooled"}}, "watch.clients", "pooled"),
    ({"reads": {"rate": 1, "linearizable": 1.5}}, "reads.linearizable", "1.5"),
])
def test_bad_input_names_the_field_and_the_value(fields, field, value):
    with pytest.raises(ScenarioError) as error:
        load_scenario(scenario(**fields))
    assert field in str(error.value) and value in str(error.value)


def p99_by_replication(**overrides: object) -> list[float]:
    scenario = load_scenario("etcd-watch-clients", {"replications": 8, **overrides})
    return [run.value("watch.delivery_s", "p99") for run in run_replications(scenario).results]


@pytest.mark.slow
@pytest.mark.parametrize("cores, flush_share, lower", [(2, 0.8, True), (8, 0.8, False), (2, 0.0, False)])
def test_the_shared_client_is_42_percent_lower_at_p99_only_on_few_cores_with_a_large_flush_share(
        cores, flush_share, lower):
    """etcd-watch-clients: the same puts (same seed) to 100 watchers on streams of their own or one shared
    stream, each replication paired with its counterpart; the ratio's 95 % Student-t interval over 8 pairs."""
    common = {"cores": cores, "watch.flush_share": flush_share}
    separate = p99_by_replication(**common, **{"watch.clients": "per-watch"})
    shared = p99_by_replication(**common, **{"watch.clients": "shared"})
    ratios = np.array(shared) / np.array(separate)
    half = stats.t.ppf(0.975, ratios.size - 1) * ratios.std(ddof=1) / np.sqrt(ratios.size)
    if lower:
        assert ratios.mean() + half < 1 and ratios.mean() <= 1 - 0.42, ratios
    else:
        assert ratios.mean() - half > 1, ratios


def test_compaction_cancels_a_watcher_that_fell_behind_it():
    """A slow watcher falls behind as a victim; the first compaction at a revision it has not received
    cancels it (ErrCompacted), and the fast watchers go on. Without compaction it is never cancelled."""
    base = {"model": "k8s.etcd", "duration": 20, "writes": {"rate": 200, "value_size": 1024},
            "watch": {"watchers": 3, "slow": 1, "slow_consume": "50ms"}}
    compacted = run_replication(load_scenario({**base, "compaction": "5s"}), 0)
    never = run_replication(load_scenario(base), 0)
    rows = {(m, s): v for m, s, v in compacted.rows}
    assert rows["watch.compacted", "count"] == 1
    assert {(m, s): v for m, s, v in never.rows}["watch.compacted", "count"] == 0
