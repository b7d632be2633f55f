"""The mark's work as the pacer counts it (scan bytes) and as the CPU pays it, in order (models.runtime.go.markwork)."""

from __future__ import annotations

import pytest

from sim.core import Environment
from models.runtime.go.gc import OVER_ASSIST_BYTES, GCConfig, GoGC
from models.runtime.go.markwork import MarkProfile, live_segments

MIB = 2**20
STW = {"stw_sweep_termination": "50us", "stw_mark_termination": "50us"}
COSTS = {"mark_object_s": 24e-9, "mark_pointer_s": 4e-9}


def test_cpu_and_credit_are_inverse_across_segments():
    profile = MarkProfile([(100.0, 1.0), (300.0, 0.5)])
    assert profile.total_credit == 400.0 and profile.total_cpu == 1.5
    assert profile.cpu(0.0, 100.0) == pytest.approx(1.0)
    assert profile.cpu(50.0, 100.0) == pytest.approx(0.5 + 50 * 0.5 / 300)
    for done, cpu in ((0.0, 0.3), (80.0, 0.7), (120.0, 0.2), (0.0, 1.5)):
        credit = profile.credit(done, cpu)
        assert profile.cpu(done, credit) == pytest.approx(cpu)
    assert profile.credit(0.0, 10.0) == 400.0  # never more than the mark holds
    assert profile.credit_per_cpu_s(10.0) == pytest.approx(100.0)
    assert profile.credit_per_cpu_s(500.0) == pytest.approx(600.0)  # past the end: the last segment's rate


def test_segments_without_credit_or_cpu_are_merged_into_the_next():
    profile = MarkProfile([(0.0, 0.2), (100.0, 0.8), (50.0, 0.0)])
    assert profile.total_credit == 150.0 and profile.total_cpu == pytest.approx(1.0)
    assert profile.cpu(0.0, 150.0) == pytest.approx(1.0)
    assert profile.credit_per_cpu_s(0.0) == pytest.approx(150.0)
    with pytest.raises(ValueError, match="must be >= 0"):
        MarkProfile([(-1.0, 0.0)])


def test_an_indexed_heap_front_loads_the_cpu_of_its_credit():
    """The validation server's heap: 64-byte nodes (two pointers) each in an index slot. The index's slots
    are a third of the scan bytes and carry every node's greying: about 80 % of the CPU."""
    nodes = 1e6
    graph = live_segments(nodes, 3, "graph", 24e-9, 4e-9, 8)
    indexed = live_segments(nodes, 3, "indexed", 24e-9, 4e-9, 8)
    assert sum(c for c, _ in graph) == sum(c for c, _ in indexed) == nodes * 24
    assert sum(t for _, t in graph) == pytest.approx(sum(t for _, t in indexed))
    (index_credit, index_cpu), _ = indexed
    assert index_credit / (nodes * 24) == pytest.approx(1 / 3)
    assert index_cpu / sum(t for _, t in indexed) == pytest.approx(28 / 36)
    with pytest.raises(ValueError, match="live_pointers >= 1"):
        live_segments(nodes, 0.5, "indexed", 24e-9, 4e-9, 8)


class _Host:
    """A host with no goroutines: no stacks, nothing reachable from requests, no workers running."""

    procs = 1

    def __init__(self, env: Environment) -> None:
        self.env = env

    def stop_the_world(self, duration_s, then):
        self.env.timeout(duration_s).callbacks.append(lambda _event: then())

    def mark_started(self, dedicated, fractional):
        pass

    def mark_ended(self):
        pass

    def roots_bytes(self):
        return 0.0

    def reachable_bytes(self):
        return 0.0


def _first_assist(layout: str, nbytes: float) -> tuple[GoGC, float]:
    """The collector, and the CPU a goroutine's first allocation of ``nbytes`` owes at the start of a mark,
    nothing banked yet."""
    env = Environment()
    gc = GoGC(env, GCConfig.model_validate({**STW, **COSTS, "live_heap": 64 * MIB, "live_layout": layout}), 1)
    gc.host = _Host(env)
    gc.start_cycle()
    env.run(until=1e-3)  # past sweep termination: marking, no worker has run
    assert gc.phase == "mark"

    class Owner:
        assist_credit = 0.0

    return gc, gc.allocate(Owner(), nbytes)


def test_assists_at_the_start_of_a_mark_pay_the_dear_part_of_an_indexed_heap():
    """Same heap, same total mark CPU; through an index the first scan bytes cost 28/8 ns against 36/24 on
    average, so the same allocation owes about 2.3x the assist CPU."""
    (graph_gc, graph), (indexed_gc, indexed) = _first_assist("graph", MIB), _first_assist("indexed", MIB)
    assert graph_gc.live_mark_cpu_s == pytest.approx(indexed_gc.live_mark_cpu_s)
    assert indexed / graph == pytest.approx((28 / 8) / (36 / 24), rel=0.02)


def test_an_assist_does_at_least_64_kib_of_scan_work():
    """gcOverAssistWork is bytes of scan work: a one-byte allocation at the start of a mark does 64 KiB."""
    gc, cpu = _first_assist("graph", 1)
    assert OVER_ASSIST_BYTES == 64 * 1024
    per_scan_byte = gc.live_mark_cpu_s / gc.live_scan_bytes
    assert per_scan_byte == pytest.approx((24e-9 + 3 * 4e-9) / 24)
    assert cpu == pytest.approx(OVER_ASSIST_BYTES * per_scan_byte, rel=0.01)
