"""The CPU and heap bytes of a Node.js handler's allocation (handler.alloc_object, alloc_cpu, alloc_heap),
and the fit of the node_alloc harness's data into the ``node.alloc`` tables.

The model tests run at a load low enough that requests never meet, with hand-made tables in a parameter
folder of their own (the shipped sets beside them), so every latency is known exactly.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from calibration.dataset import PARAMS_DIR, Dataset
from calibration.fitnode import fit_node_alloc
from models.runtime.node.alloc import CPU_PARAM, HEAP_PARAM, AllocationShape
from models.services.node import NodeServiceModel, NodeServiceScenario
from sim.core import Environment
from sim.params import set_params_source
from sim.scenario import ScenarioError, validate

KIB = 1024
#: Hand-made tables: CPU per object and heap bytes per object at 1 KiB and 4 KiB objects.
CPU_POINTS = [[1024.0, 2e-7], [4096.0, 8e-7]]
HEAP_POINTS = [[1024.0, 2048.0], [4096.0, 4608.0]]


def _table(name: str, y: str, points: list[list[float]]) -> dict[str, Any]:
    return {"name": name, "description": "hand-made for a test", "unit": "s", "dataset": "none", "measured": {},
            "kind": "table", "x": "size_bytes", "y": y, "points": points, "fit": {}, "goodness_of_fit": {}}


@pytest.fixture
def tables(tmp_path: Path):
    folder = tmp_path / "params"
    shutil.copytree(PARAMS_DIR, folder)
    (folder / f"{CPU_PARAM}.json").write_text(json.dumps(_table(CPU_PARAM, "cpu_s_per_object", CPU_POINTS)))
    (folder / f"{HEAP_PARAM}.json").write_text(json.dumps(_table(HEAP_PARAM, "heap_bytes_per_object", HEAP_POINTS)))
    set_params_source(folder)
    yield folder
    set_params_source(None)


FREE = {"message_cost": [0, 0], "startup": {"isolate": 0, "isolate_bytes": "8MiB", "process_bytes": "40MiB"}}


def sojourns(handler: dict[str, Any], **fields: Any) -> Environment:
    config = NodeServiceScenario.model_validate({
        "model": "node.service", "arrival_rate": "1/s", "requests": 50, "warmup": 0, "gc": {"enabled": False},
        **FREE,
        "handler": {"cpu": "1ms", **handler}, **fields})
    env = Environment(seed=1, scenario=config)
    NodeServiceModel(env, config).run()
    return env


@pytest.mark.parametrize("workers", [0, 1])
def test_allocation_adds_its_table_cpu_on_the_thread_that_allocates(tables, workers) -> None:
    """64 KiB in 2 KiB objects: 32 objects at 4e-7 s each (halfway between the points at 1 and 4 KiB, by
    linear interpolation: 2e-7 + 6e-7 / 3), 12.8 us on the loop or on the worker."""
    sojourn = sojourns({"alloc": "64KiB", "alloc_object": "2KiB"}, workers=workers).metrics.histogram(
        "requests.sojourn_s")
    assert sojourn.min == pytest.approx(1e-3 + 32 * 4e-7, rel=1e-9)
    assert sojourn.max == pytest.approx(1e-3 + 32 * 4e-7, rel=1e-9)


def test_allocation_cpu_off_or_no_allocation_leaves_the_handler_alone(tables) -> None:
    for handler in ({"alloc": "64KiB", "alloc_cpu": False}, {"alloc": 0}):
        sojourn = sojourns(handler).metrics.histogram("requests.sojourn_s")
        assert (sojourn.min, sojourn.max) == (pytest.approx(1e-3, rel=1e-12), pytest.approx(1e-3, rel=1e-12))


def test_default_object_is_the_validation_servers_chunk(tables) -> None:
    """No alloc_object: 1 KiB objects, 64 of them in 64 KiB at 2e-7 s each (the table's first point)."""
    sojourn = sojourns({"alloc": "64KiB"}).metrics.histogram("requests.sojourn_s")
    assert sojourn.mean == pytest.approx(1e-3 + 64 * 2e-7, rel=1e-9)


@pytest.mark.parametrize("alloc_heap, scavenges", [(True, 10), (False, 5)])
def test_heap_receives_the_objects_heap_size(tables, alloc_heap, scavenges) -> None:
    """80 requests of 64 KiB in 1 KiB objects, 2048 heap bytes each: 128 KiB per request fill a 1 MiB
    nursery every 8 requests (10 scavenges); with alloc_heap false, 64 KiB each: every 16 (5)."""
    env = sojourns({"alloc": "64KiB", "alloc_heap": alloc_heap, "alloc_cpu": False}, requests=80,
                   gc={"semi_space": "1MiB", "scavenge_pause": [0, 0], "markcompact_pause": [0, 0]})
    assert env.metrics.counter("node.gc.scavenges").value == scavenges


def test_offered_load_counts_the_allocation_cpu(tables) -> None:
    config = NodeServiceScenario.model_validate({"model": "node.service", "arrival_rate": "100/s",
                                                 "handler": {"cpu": "1ms", "alloc": "64KiB"}})
    assert config.offered_load == pytest.approx(100 * (1e-3 + 64 * 2e-7), rel=1e-12)
    config = config.model_copy(update={"handler": config.handler.model_copy(update={"alloc_cpu": False})})
    assert config.offered_load == pytest.approx(0.1, rel=1e-12)


@pytest.mark.parametrize("value, message", [(0, "Input should be greater than 0"),
                                            (-1, "a size must be a finite number >= 0"),
                                            ("-1KiB", "a size must be a finite number >= 0")])
def test_object_size_must_be_positive(value: Any, message: str) -> None:
    data = {"model": "node.service", "arrival_rate": 10, "handler": {"cpu": "1ms", "alloc_object": value}}
    with pytest.raises(ScenarioError, match=rf"handler\.alloc_object: {message}"):
        validate(data)
    with pytest.raises(ValueError, match="handler.alloc_object: must be a positive number of bytes"):
        AllocationShape(0.0, 1e-7, 64.0)


def test_a_missing_table_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "params"
    shutil.copytree(PARAMS_DIR, folder)
    (folder / f"{CPU_PARAM}.json").unlink(missing_ok=True)
    set_params_source(folder)
    try:
        with pytest.raises(KeyError, match=CPU_PARAM):
            sojourns({"alloc": "64KiB"})
    finally:
        set_params_source(None)


def test_fit_takes_the_median_over_repetitions(tmp_path: Path) -> None:
    """Three repetitions at two sizes: the CPU table holds each size's median, the heap table its one value."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps({"host": "test", "node_version": "v20.0.0", "harnesses": {
        "node_alloc": {"quick": True, "commands": [{"argv": ["node"], "env": {}, "loadavg_before": [0.1, 0, 0],
                                                    "loadavg_after": [0.3, 0, 0]}]}}}))
    rows = [(64, rep, cpu, 160.0) for rep, cpu in enumerate([5e-8, 9e-8, 6e-8])]
    rows += [(1024, rep, cpu, 1130.0) for rep, cpu in enumerate([3e-7, 2e-7, 2.5e-7])]
    pd.DataFrame(rows, columns=["size_bytes", "rep", "mutator_cpu_per_object_s", "heap_bytes_per_object"]).assign(
        cpu_source="thread", scavenges=2).to_csv(folder / "node_alloc.csv", index=False)
    fitted = {entry["name"]: entry for entry in fit_node_alloc(Dataset(folder))}
    cpu, heap = fitted[CPU_PARAM], fitted[HEAP_PARAM]
    assert cpu["kind"] == heap["kind"] == "table"
    assert cpu["points"] == [[64.0, 6e-8], [1024.0, 2.5e-7]]
    assert cpu["fit"]["n"] == 6 and cpu["fit"]["repetitions"] == 3
    assert cpu["goodness_of_fit"]["relative_range_by_size"]["64"] == pytest.approx(4e-8 / 6e-8)
    assert heap["points"] == [[64.0, 160.0], [1024.0, 1130.0]] and heap["fit"]["n"] == 2
    assert cpu["measured"]["loadavg_1min_max"] == 0.3 and cpu["measured"]["node_version"] == "v20.0.0"
