"""Allocation's CPU by object size and kind, and marking by objects and pointers (models.runtime.go.alloc, .gc)."""

from __future__ import annotations

import pytest

from sim.core import Environment
from sim.dists import Constant
from sim.params import Table, param_table, param_value
from sim.run import run_replication
from sim.scenario import load_kind, load_scenario
from models.runtime.go.alloc import ALLOC_COST_PARAMS, AllocationShape, default_object_bytes
from models.runtime.go.detailed.runtime import GoRuntime
from models.runtime.go.gc import GCConfig, GoGC

MIB = 2**20
STW = {"stw_sweep_termination": "30us", "stw_mark_termination": "50us"}


def test_table_interpolates_between_points_and_grows_in_proportion_beyond():
    table = Table("size_bytes", (16.0, 64.0, 1024.0), (10.0, 20.0, 100.0))
    assert table.at(8) == 10.0  # below the first point: its value
    assert table.at(40) == pytest.approx(15.0)  # halfway between 16 and 64
    assert table.at(1024) == 100.0
    assert table.at(4096) == pytest.approx(400.0)  # beyond: per-unit cost of the last point
    flat = Table("requests_per_s", (250.0, 2000.0), (3e-4, 1e-4), "flat")
    assert flat.at(100) == 3e-4 and flat.at(1125) == pytest.approx(2e-4) and flat.at(8000) == 1e-4


@pytest.mark.parametrize("kind", sorted(ALLOC_COST_PARAMS))
def test_allocation_cpu_is_units_times_the_calibrated_cost(kind):
    shape = AllocationShape.calibrated(1024, kind)
    per_object = param_table(ALLOC_COST_PARAMS[kind]).at(1024)
    assert shape.unit_cpu_s == per_object
    assert shape.cpu_s(MIB) == pytest.approx(1024 * per_object)
    assert shape.cpu_s(0) == 0.0


def test_object_counts_and_pointers_by_kind():
    assert AllocationShape(1024, "pointers", 0.0).objects(MIB) == 1024
    assert AllocationShape(1024, "pointers", 0.0).pointers(MIB) == MIB / 8
    assert AllocationShape(1024, "bytes", 0.0).pointers(MIB) == 0
    buffers = AllocationShape(1024, "buffers", 0.0)
    assert (buffers.objects(MIB), buffers.pointers(MIB)) == (2048, 2048)


def test_default_object_is_encoding_json_mean_object():
    assert default_object_bytes() == param_value("go.alloc.object_bytes")
    assert 16 <= default_object_bytes() <= 1024


@pytest.mark.parametrize("bad", [0, -64])
def test_a_bad_object_size_names_the_field(bad):
    with pytest.raises(ValueError, match="alloc_object"):
        GCConfig.model_validate({"alloc_object": bad})


def _service(alloc_cpu: bool) -> dict:
    return {
        "model": "go.service", "arrival_rate": 10, "requests": 50, "gomaxprocs": 1, "seed": 3,
        "handler": {"cpu": "1ms", "alloc": "256KiB", "alloc_cpu": alloc_cpu},
        "gc": {"enabled": False, "alloc_object": 1024, "alloc_kind": "bytes"},
    }


def test_a_service_request_pays_its_allocation_cpu():
    with_cost = load_scenario(_service(True))
    without = load_scenario(_service(False))
    extra = 256 * param_table(ALLOC_COST_PARAMS["bytes"]).at(1024)
    assert with_cost.offered_load == pytest.approx(without.offered_load + 10 * extra)
    env = Environment(seed=3, scenario=with_cost)
    service = load_kind("go.service")(env, with_cost)
    (step,) = service.steps()
    assert step.cpu_s == pytest.approx(1e-3 + extra)
    assert step.alloc_bytes == 256 * 1024


def test_mark_cpu_of_a_cycle_is_objects_and_pointers_times_their_costs():
    """An idle process collected once: the mark's CPU is the live heap's objects times the cost per object
    plus its pointer words times the cost per pointer (stacks aside)."""
    env = Environment()
    config = GCConfig.model_validate({**STW, "live_heap": 64 * MIB, "live_object": 64, "live_pointers": 3,
                                      "mark_object_s": 20e-9, "mark_pointer_s": 5e-9})
    go = GoRuntime(env, 1, gc=config, spawn=Constant(0.0), stack_bytes=2048)
    assert go.gc is not None
    go.gc.start_cycle()
    env.run(until=2.0)
    assert go.gc.cycles.value == 1 and go.gc.phase == "idle"
    objects = 64 * MIB / 64
    expected = objects * (20e-9 + 3 * 5e-9)
    marked = go.gc.worker_cpu_s.value + go.gc.idle_cpu_s.value + go.gc.assist_cpu_s.value
    assert marked == pytest.approx(expected, rel=1e-6)
    # ... about ten times what the same bytes cost in 1 KiB pointer-free objects with a 32-byte header.
    cheap = GoGC(Environment(), GCConfig.model_validate({
        **STW, "live_heap": 64 * MIB, "live_object": 512, "live_pointers": 1, "mark_object_s": 20e-9,
        "mark_pointer_s": 5e-9}), 1)
    assert cheap.live_mark_cpu_s < go.gc.live_mark_cpu_s / 5


def test_a_byte_rate_still_counts_bytes():
    env = Environment()
    gc = GoGC(env, GCConfig.model_validate({**STW, "live_heap": 64 * MIB, "mark_rate": 1e9}), 1)
    assert gc.live_scan_bytes == 64 * MIB and gc.live_mark_cpu_s == pytest.approx(64 * MIB / 1e9)
    assert gc.alloc_work_per_byte == pytest.approx(1e-9) and gc.alloc_credit_per_byte == 1.0


def test_a_service_run_reports_gc_cpu_by_class():
    scenario = load_scenario({
        "model": "go.service", "arrival_rate": 400, "requests": 2000, "gomaxprocs": 1, "seed": 5,
        "handler": {"cpu": "1ms", "alloc": "1MiB"},
        "gc": {"live_heap": "64MiB", "alloc_object": 1024, "alloc_kind": "buffers"},
    })
    result = run_replication(scenario)
    rows = {(metric, statistic): value for metric, statistic, value in result.rows}
    total = rows[("go.gc.cpu_s", "count")]
    classes = sum(rows[(f"go.gc.{name}", "count")] for name in ("assist_cpu_s", "worker_cpu_s", "idle_cpu_s",
                                                               "pause_cpu_s"))
    assert rows[("go.gc.cycles", "count")] > 3
    assert classes == pytest.approx(total, rel=1e-9)
