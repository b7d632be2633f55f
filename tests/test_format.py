"""cnsim.format: the table of `cnsim run` and the scenario of `cnsim scenarios --show`, as people read them."""

from __future__ import annotations

import math
from importlib import metadata

import pytest
import yaml
from pydantic import BaseModel

from cnsim.format import DERIVED, calibrated_note, format_estimate, render_table, show_scenario
from models.runtime.go.gc import MARK_COST_PARAM, calibrated_mark_costs
from models.runtime.node.gc import MARK_CPU_PARAM, V8GCConfig
from models.runtime.node.workers import MESSAGE_PARAM, one_way_message_cost
from sim.params import available, param_value
from sim.run import Replications, RunResult
from sim.scenario import CALIBRATED, ENTRY_POINT_GROUP, builtin_scenarios, load_scenario, resolved, scenario_key
from sim.units import write_quantity


def outcome(rows_of: list[list[tuple[str, str, float]]]) -> Replications:
    results = [RunResult(scenario={}, replication=i, key="", rows=rows, wall_s=0.0, sim_time_s=1.0)
               for i, rows in enumerate(rows_of)]
    return Replications(load_scenario("mmc"), results)


def cells(table: str) -> dict[str, dict[str, str]]:
    """metric -> statistic -> cell of a rendered table (columns cut at the header's offsets)."""
    lines = table.splitlines()
    header = lines[2]
    names = header.split()
    starts = [header.index(f" {name}") + 1 if i else 0 for i, name in enumerate(names)]
    bounds = list(zip(starts, [*starts[1:], None]))
    return {line[: bounds[0][1]].strip(): {name: line[a:b].strip() for name, (a, b) in zip(names[1:], bounds[1:])}
            for line in lines[4:]}


THREE = [
    [("x.latency_s", "mean", 0.0021 + i * 1e-5), ("x.heap_bytes", "mean", 1.238e8 + i),
     ("x.done", "count", 100.0), ("x.done", "rate", 4932.0 + i), ("x.cpu_s", "count", 0.5 + i * 0.01),
     ("x.cpu_s", "rate", 0.05 + i * 0.001), ("x.load", "mean", 0.25)]
    for i in range(3)
]


def test_table_gives_durations_sizes_and_rates_in_units_with_half_widths_alike() -> None:
    table = render_table(outcome(THREE))
    assert table.splitlines()[0].endswith("3 replications, mean ± half-width of the 95 % confidence interval")
    got = cells(table)
    # t(0.975, 2) · 1e-5 / √3 = 24.8 µs: in the mean's unit, to its decimal places
    assert got["x.latency_s"]["mean"] == "2.110 ms ± 0.025 ms"
    assert got["x.heap_bytes"]["mean"] == "118.1 MiB ± 0.0 MiB"
    assert got["x.done"] == {"count": "100", "rate": "4,933/s ± 2/s", "mean": ""}
    assert got["x.cpu_s"]["count"] == "510.0 ms ± 24.8 ms"  # a counter of seconds counts seconds
    assert got["x.cpu_s"]["rate"] == "51.00 ms/s ± 2.48 ms/s"
    assert got["x.load"]["mean"] == "0.2500 ± 0.0000"


def test_one_replication_promises_no_interval() -> None:
    table = render_table(outcome(THREE[:1]))
    assert table.splitlines()[0].endswith("seed 1, 1 replication, no confidence interval")
    assert "±" not in table and "confidence interval half-width" not in table
    assert cells(table)["x.latency_s"]["mean"] == "2.100 ms"


@pytest.mark.parametrize(
    ("mean", "half_width", "unit", "text"),
    [
        (10.43, 1.037, "s", "10.43 s ± 1.04 s"),
        (234.9e-6, 2.304e-6, "s", "234.9 µs ± 2.3 µs"),
        (999.96e-6, 1e-6, "s", "1.000 ms ± 0.001 ms"),  # rounding carries into the next unit
        (1.238e8, 4.833e-07, "bytes", "118.1 MiB ± 0.0 MiB"),
        (8000.0, math.nan, "bytes", "7.812 KiB"),
        (0.8989, 0.003262, "1/s", "0.8989/s ± 0.0033/s"),
        (0.0, 0.0, "1/s", "0/s ± 0/s"),
        (20000.0, 12.3, None, "20,000 ± 12"),
        (math.nan, 1.0, "s", "-"),
    ],
)
def test_format_estimate(mean: float, half_width: float, unit: str | None, text: str) -> None:
    assert format_estimate(mean, half_width, unit) == text


SHOWN: list[str | dict[str, object]] = [
    *builtin_scenarios(),
    {"model": "node.service", "arrival_rate": "1500/s", "workers": 4, "handler": {"cpu": "1ms", "alloc": "64KiB"},
     "startup": {"process": {"dist": "lognormal", "median": "20ms", "p99": "30ms"}}},
    {"model": "native.service", "arrival_rate": "1500/s", "threads": 2, "handler": {"cpu": "1ms"}},
]


@pytest.mark.parametrize("source", SHOWN)
def test_shown_scenario_loads_back_as_the_same_scenario(source: str | dict[str, object]) -> None:
    scenario = load_scenario(source)
    back = load_scenario(yaml.safe_load(show_scenario(scenario)))
    assert resolved(back) == resolved(scenario)
    assert scenario_key(back, 0) == scenario_key(scenario, 0)


def test_show_writes_quantities_with_units_and_calibrated_defaults_with_their_sets() -> None:
    lines = show_scenario(load_scenario("go-http-service")).splitlines()
    assert "  cpu: {dist: exp, mean: 50us}" in lines  # 4.9999999999999996e-05 in the resolved data
    assert "  live_heap: 64MiB" in lines and "arrival_rate: 5000/s" in lines
    spawn = write_quantity(param_value("go.goroutine.spawn_s"), "s", 4)
    assert f"spawn: null  # calibrated: go.goroutine.spawn_s = {spawn}" in lines
    assert any(line.startswith("  stw_sweep_termination: null  # calibrated: go.gc.stw_sweep_termination = {dist: ")
               for line in lines)
    assert "machine:" in lines and "  stretch: null" in lines  # null that means none: no comment

    startup = show_scenario(load_scenario("cpu-bound-goroutines-vs-workers")).splitlines()
    for stage, name in (("process", "node.process.start_s"), ("modules", "node.isolate.module_load_s")):
        assert any(line.startswith(f"    {stage}: null  # calibrated: {name} = ") for line in startup)


def test_derived_calibrated_values_are_those_the_models_use() -> None:
    assert (DERIVED["coefficients.objects"][1](MARK_COST_PARAM),
            DERIVED["coefficients.pointers"][1](MARK_COST_PARAM)) == calibrated_mark_costs()
    assert DERIVED["1/slope"][1](MARK_CPU_PARAM) == V8GCConfig().resolved().mark_speed
    assert DERIVED["intercept/2"][1](MESSAGE_PARAM) == list(one_way_message_cost())


def config_classes() -> set[type[BaseModel]]:
    """Every pydantic model reachable from the installed model kinds' scenario classes."""
    found: set[type[BaseModel]] = set()
    pending = [entry.load().config_class for entry in metadata.entry_points(group=ENTRY_POINT_GROUP)]
    while pending:
        cls = pending.pop()
        if cls in found:
            continue
        found.add(cls)
        for field in cls.model_fields.values():
            stack = [field.annotation]
            while stack:
                item = stack.pop()
                if isinstance(item, type) and issubclass(item, BaseModel):
                    pending.append(item)
                stack.extend(getattr(item, "__args__", ()))
    return found


def test_every_field_whose_null_is_a_parameter_set_is_marked_and_shows_its_value() -> None:
    sets = set(available())
    for cls in config_classes():
        instance = cls.model_construct()
        for name, field in cls.model_fields.items():
            named = [s for s in sets if f"default {s}" in (field.description or "")
                     or f"of {s}" in (field.description or "") or f"from {s}" in (field.description or "")]
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            if field.default is None and named:
                assert extra.get(CALIBRATED) in named, f"{cls.__name__}.{name}: no calibrated({named[0]!r})"
            if CALIBRATED in extra:
                note = calibrated_note(instance, field)
                assert note is not None and "unavailable" not in note, f"{cls.__name__}.{name}: {note}"
