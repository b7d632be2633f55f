"""sim.scenario: built-ins, files, dicts and overrides in; errors that name the
field's path and value out."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, get_args, get_origin

import pytest
from pydantic import BaseModel

from models.queueing.builders import NetworkScenario, StationScenario
from sim.dists import Constant, Distribution, Exponential, Gamma, LogNormal
from sim.scenario import (
    ScenarioError,
    ScenarioPart,
    builtin_scenarios,
    load_kind,
    load_scenario,
    model_kinds,
    parse_override,
    resolved,
    scenario_key,
)


def error_of(source, overrides=()) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(source, overrides)
    return str(info.value)


# --- loading ---


def test_builtin_mmc() -> None:
    scenario = load_scenario("mmc")
    assert isinstance(scenario, StationScenario)
    assert scenario.model == "queueing.station" and scenario.name == "mmc"
    assert scenario.arrival == Exponential(1 / 0.9)
    assert scenario.service == Exponential(1.0)  # the default service rate, 1/s
    assert (scenario.servers, scenario.requests, scenario.replications, scenario.seed) == (1, 100_000, 5, 1)
    assert scenario.offered_load == pytest.approx(0.9)
    assert scenario.warmup_requests == 10_000


def test_builtin_tandem() -> None:
    scenario = load_scenario("tandem")
    assert isinstance(scenario, NetworkScenario)
    assert scenario.entry == {"web": 1.0}
    assert scenario.arrival == Exponential(1 / 80)
    assert set(scenario.stations) == {"web", "app", "db"}
    assert scenario.stations["app"].discipline == "ps" and scenario.stations["app"].servers == 4
    assert scenario.stations["db"].service == Exponential(0.008)
    routing = scenario.routing()
    assert routing["web"]["app"]["p"] == 1.0 and routing["app"]["db"]["p"] == 0.7
    assert not routing.has_edge("db", "web")


def test_builtins_are_listed_with_descriptions() -> None:
    listed = builtin_scenarios()
    assert {"mmc", "tandem"} <= set(listed)
    assert listed["mmc"].startswith("M/M/c station")


def test_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "my-station.yaml"
    path.write_text(
        "model: queueing.station\n"
        "arrival_rate: 50/s\n"
        "service: {dist: gamma, mean: 10ms, cv: 0.5}\n"
        "servers: 2\n"
        "requests: 1000\n"
    )
    scenario = load_scenario(path)
    assert scenario.name == "my-station"  # from the file name
    assert scenario.arrival == Exponential(0.02)
    assert scenario.service == Gamma(4.0, 0.0025)
    assert scenario.offered_load == pytest.approx(0.25)
    assert load_scenario(str(path)) == scenario


def test_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "ps.toml"
    path.write_text(
        'model = "queueing.station"\n'
        'name = "ps-demo"\n'
        'arrival_rate = "2/s"\n'
        'discipline = "ps"\n'
        "capacity = 8\n"
        "[service]\n"
        'dist = "const"\n'
        'value = "250ms"\n'
    )
    scenario = load_scenario(path)
    assert scenario.name == "ps-demo"  # given, not from the file name
    assert scenario.discipline == "ps" and scenario.capacity == 8
    assert scenario.service == Constant(0.25)


def test_json_file(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"model": "queueing.station", "arrival_rate": 0.5}))
    assert load_scenario(path).arrival == Exponential(2.0)


def test_dict_input_with_distribution_objects() -> None:
    scenario = load_scenario(
        {"model": "queueing.station", "arrival": Exponential(2.0), "service": LogNormal(0.0, 0.5), "servers": 3}
    )
    assert scenario.arrival == Exponential(2.0) and scenario.service == LogNormal(0.0, 0.5)
    assert scenario.name == ""


# --- overrides, as `cnsim run --set key=value` gives them ---


def test_overrides_are_read_as_yaml_including_a_distribution() -> None:
    scenario = load_scenario(
        "mmc", ["servers=4", "arrival_rate=3.2", "service={dist: lognormal, median: 0.8, p99: 4}", "requests=2000"]
    )
    assert scenario.servers == 4 and scenario.requests == 2000
    assert scenario.arrival == Exponential(1 / 3.2)
    assert isinstance(scenario.service, LogNormal)
    assert scenario.service.mu == pytest.approx(-0.2231435513, rel=1e-9)  # ln 0.8


def test_overrides_as_a_mapping_reach_nested_keys() -> None:
    scenario = load_scenario("tandem", {"stations.db.servers": 2, "stations.db.service.mean": "4ms"})
    assert scenario.stations["db"].servers == 2
    assert scenario.stations["db"].service == Exponential(0.004)
    assert scenario.stations["web"].servers == 2  # untouched


def test_an_override_can_replace_a_shortcut_by_setting_it_to_null() -> None:
    scenario = load_scenario("mmc", ["arrival_rate=null", "arrival={dist: const, value: 2}"])
    assert scenario.arrival == Constant(2.0)


def test_parse_override() -> None:
    assert parse_override("service.mean=2ms") == ("service.mean", "2ms")
    assert parse_override("servers = 4") == ("servers", 4)
    assert parse_override("capacity=null") == ("capacity", None)
    with pytest.raises(ScenarioError, match="key=value"):
        parse_override("servers")


def test_resolved_scenario_loads_back_to_the_same_scenario() -> None:
    scenario = load_scenario("tandem", ["stations.web.service={dist: gamma, mean: 20ms, cv: 0.5}"])
    data = resolved(scenario)
    json.dumps(data)  # plain JSON
    again = load_scenario(data)
    assert again == scenario
    assert scenario_key(again, 3) == scenario_key(scenario, 3)
    assert scenario_key(scenario, 3) != scenario_key(scenario, 4)
    assert scenario_key(load_scenario("tandem", ["seed=2"]), 3) != scenario_key(scenario, 3)


# --- errors: one line per error, each naming the field's path and value ---


def test_unknown_key_names_its_path() -> None:
    assert error_of("mmc", {"servrs": 4}) == "servrs: unknown key (got 4)"
    assert error_of("tandem", {"stations.web.cores": 2}) == "stations.web.cores: unknown key (got 2)"
    assert error_of("tandem", ["routes=[{from: web, to: db, p: 0.5, weight: 1}]"]).startswith(
        "routes.0.weight: unknown key"
    )


@pytest.mark.parametrize(
    ("override", "path", "value"),
    [
        ("servers=0", "servers:", "0"),
        ("arrival_rate=-1", "arrival_rate:", "-1"),
        ("service_rate=0", "service_rate:", "0"),
        ("service={dist: nope}", "service:", "'nope'"),
        ("service={dist: exp, mean: -2ms}", "service:", "-2ms"),
        ("service={dist: exp, mean: 2 parsecs}", "service: mean:", "'2 parsecs'"),
        ("arrival_rate=fast", "arrival_rate:", "'fast'"),
        ("discipline=lifo", "discipline:", "'lifo'"),
        ("capacity=0", "capacity:", "0"),
        ("warmup=1.5", "warmup:", "1.5"),
        ("requests=many", "requests:", "'many'"),
    ],
)
def test_bad_values_name_the_field_path_and_value(override: str, path: str, value: str) -> None:
    message = error_of("mmc", [override])
    assert "\n" not in message
    assert message.startswith(path)
    assert value in message


def test_nested_bad_value_names_the_full_path() -> None:
    message = error_of("tandem", ["stations.app.servers=0"])
    assert message == "stations.app.servers: Input should be greater than or equal to 1 (got 0)"


def test_one_line_per_error() -> None:
    message = error_of("mmc", ["servers=0", "arrival_rate=-1", "bogus=1"])
    lines = message.splitlines()
    assert len(lines) == 3
    assert sorted(line.split(":")[0] for line in lines) == ["arrival_rate", "bogus", "servers"]


def test_both_service_and_service_rate_is_a_clear_error() -> None:
    message = error_of("mmc", ["service={dist: exp, mean: 1}", "service_rate=2"])
    assert message == "scenario: give either service or service_rate, not both (set service_rate=null to use service)"
    message = error_of("mmc", ["arrival={dist: exp, mean: 1}"])  # mmc sets arrival_rate already
    assert "either arrival or arrival_rate" in message


def test_checks_across_fields() -> None:
    assert error_of("mmc", ["servers=4", "capacity=2"]) == "scenario: capacity must be >= servers (4) (got 2)"
    message = error_of("tandem", ["routes=[{from: web, to: nowhere, p: 1}]"])
    assert "'nowhere'" in message and "\n" not in message
    message = error_of("tandem", ["routes=[{from: web, to: app, p: 1}, {from: app, to: web, p: 1}]"])
    assert "can never leave" in message


def test_missing_or_unknown_model_kind() -> None:
    assert error_of({"servers": 1}).startswith("model: missing")
    assert error_of({"model": "queueing.nope"}).startswith("model: unknown model kind 'queueing.nope'")


def test_missing_files_and_names() -> None:
    assert "does not exist" in error_of("/nonexistent/scenario.yaml")
    message = error_of("no-such-builtin")
    assert "'no-such-builtin'" in message and "mmc" in message


def test_bad_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n")
    message = error_of(broken)
    assert message.startswith("broken.yaml: not a valid scenario file") and "\n" not in message
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    assert "must be a mapping" in error_of(listed)
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("model = \n")
    assert error_of(bad_toml).startswith("bad.toml: not a valid scenario file")


def test_override_into_a_scalar_is_refused() -> None:
    assert error_of("mmc", ["servers.count=2"]).startswith("servers.count: cannot set a key inside 'servers'")


# --- issue 20, scenario input: dimensions, booleans, bounds, duplicate keys, portable files ---

BASES: dict[str, str | dict[str, object]] = {
    "queueing.station": "mmc",
    "queueing.network": "tandem",
    "go.service": "go-http-service",
    "cpubound.compare": "cpu-bound-goroutines-vs-workers",
    "net.fanin": "http1-pool-vs-http2",
    "arch": "three-tier",
    "faas": "faas-cold-start-decomposition",
    "k8s.etcd": "etcd-watch-clients",
    "k8s.cluster": "control-plane-at-scale",
    "k8s.apiserver": "apf-noisy-tenant",
    "node.service": {"model": "node.service", "arrival_rate": 600, "handler": {"cpu": "1ms"}},
    "native.service": {"model": "native.service", "arrival_rate": 600, "handler": {"cpu": "1ms"}, "threads": 2},
}


DICT_KEYS = {"stations": "db", "services": "cart", "tenants": "noisy"}
"""A key of each mapping of parts in the base scenarios (tandem's stations, three-tier's services)."""


def distribution_fields(schema: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted paths of every distribution field of ``schema`` and of the parts it nests, but for parts in
    lists (a handler's steps), which ``--set`` cannot reach (tests/test_arch.py checks those)."""
    paths = []
    for name, field in schema.model_fields.items():
        if get_origin(field.annotation) is list:
            continue
        types = {field.annotation, *get_args(field.annotation)}
        types |= {get_args(part)[0] for part in types if get_origin(part) is Annotated}
        if Distribution in types:
            paths.append(prefix + name)
        if get_origin(field.annotation) is dict and name not in DICT_KEYS:
            continue  # a mapping of plain values (a topology's zones): no part inside
        inner = f"{prefix}{name}.{DICT_KEYS[name]}." if get_origin(field.annotation) is dict else f"{prefix}{name}."
        for part in types:
            if isinstance(part, type) and issubclass(part, ScenarioPart):
                paths += distribution_fields(part, inner)
    return paths


def test_every_model_kind_has_a_base_scenario_here() -> None:
    assert set(BASES) == set(model_kinds())


def _settable(kind: str, path: str) -> bool:
    """Whether ``path``'s parent parts are set in the base scenario (an optional part left null, such as
    three-tier's workload.burst, cannot take one of its fields alone; tests/test_arch.py checks those)."""
    node: object = load_scenario(BASES[kind])
    for name in path.split(".")[:-1]:
        node = node.get(name) if isinstance(node, dict) else getattr(node, name, None)
        if node is None:
            return False
    return True


@pytest.mark.parametrize(
    ("kind", "path"),
    [(kind, path) for kind in sorted(BASES) for path in distribution_fields(load_kind(kind).config_class)
     if _settable(kind, path)],
)
def test_every_distribution_field_refuses_a_rate(kind: str, path: str) -> None:
    """A distribution field is of durations or of sizes: a rate is neither (``service: 2/s`` ran as 2 s)."""
    message = error_of(BASES[kind], {path: "2/s"})
    assert re.fullmatch(rf"{re.escape(path)}: expected a (duration|size), not a rate \('2/s'\)", message), message


@pytest.mark.parametrize(
    ("kind", "path", "value", "expected"),
    [
        ("queueing.station", "service", {"dist": "exp", "mean": "8KiB"}, "duration"),
        ("queueing.network", "stations.db.service", "4KiB", "duration"),
        ("go.service", "handler.cpu", "8KiB", "duration"),
        ("go.service", "handler.alloc", {"dist": "exp", "mean": "2ms"}, "size"),
        ("node.service", "handler.alloc", "2ms", "size"),
        ("cpubound.compare", "job.alloc", "1ms", "size"),
        ("cpubound.compare", "node.startup.isolate", "1MiB", "duration"),
        ("net.fanin", "think", "1KiB", "duration"),
        ("go.service", "gc.live_heap", "2ms", "size"),
        ("net.fanin", "network.rtt", "1KiB", "duration"),
        ("go.service", "arrival_rate", "2ms", "rate"),
    ],
)
def test_a_quantity_of_the_wrong_dimension_names_the_field_and_the_dimension(
    kind: str, path: str, value: object, expected: str
) -> None:
    message = error_of(BASES[kind], {path: value})
    assert "\n" not in message
    assert message.startswith(f"{path}: ") and f"expected a {expected}, not a" in message, message


def test_the_right_dimension_still_loads_and_bare_numbers_are_base_units() -> None:
    scenario = load_scenario("go-http-service", {"handler.alloc": {"dist": "exp", "mean": "8KiB"}, "handler.cpu": 1e-4})
    assert scenario.handler.alloc == Exponential(8192.0) and scenario.handler.cpu == Constant(1e-4)


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("queueing.station", "servers", True),
        ("queueing.station", "warmup", False),
        ("queueing.station", "seed", True),
        ("queueing.network", "entry", {"web": True}),
        ("queueing.network", "routes", [{"from": "web", "to": "app", "p": True}]),
        ("go.service", "gc.gogc", True),
        ("go.service", "quota_cores", True),
        ("node.service", "message_cost", [True, 1e-9]),
        ("net.fanin", "http2.connections", True),
    ],
)
def test_booleans_are_not_numbers(kind: str, path: str, value: object) -> None:
    """Pydantic reads ``servers: true`` as 1; here it names the field."""
    message = error_of(BASES[kind], {path: value})
    assert "\n" not in message
    assert re.match(r"[\w.]+: expected a number, not true or false", message), message
    assert message.split(":")[0] in (path, "routes.0.p")


def test_booleans_stay_booleans_where_the_field_is_one() -> None:
    scenario = load_scenario("go-http-service", {"gc.enabled": False})
    assert scenario.gc.enabled is False


def test_infinite_numbers_are_refused() -> None:
    message = error_of("go-http-service", {"gc.gogc": float("inf")})
    assert message == "gc.gogc: Input should be a finite number (got inf)"


def test_many_errors_show_twenty_lines_and_a_count() -> None:
    lines = error_of("mmc", {f"key{i:04d}": i for i in range(1000)}).splitlines()
    assert len(lines) == 21
    assert lines[0] == "key0000: unknown key (got 0)"
    assert lines[-1] == "... and 980 more"


def test_duplicate_yaml_keys_are_refused_naming_the_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("model: queueing.station\narrival_rate: 0.5\nservice:\n  dist: exp\n  mean: 1ms\n  mean: 2ms\n")
    assert error_of(path) == "twice.yaml: line 6: key 'mean' given twice (also on line 5)"
    assert error_of("mmc", ["service={dist: exp, dist: const}"]) == (
        "--set service: line 1: key 'dist' given twice (also on line 1)"
    )


def test_yaml_anchors_merge_keys_and_shared_aliases_still_load(tmp_path: Path) -> None:
    path = tmp_path / "anchors.yaml"
    path.write_text(
        "model: queueing.network\narrival_rate: 1\nentry: a\n"
        "stations:\n"
        "  a: &station {servers: 2, service: &slow {dist: exp, mean: 100ms}}\n"
        "  b: {<<: *station, servers: 3}\n"  # a merge key, then a key of its own: not a duplicate
        "  c: {service: *slow}\n"
        "routes: [{from: a, to: b, p: 0.5}, {from: b, to: c, p: 0.5}]\n"
    )
    scenario = load_scenario(path)
    assert scenario.stations["b"].servers == 3 and scenario.stations["b"].service == Exponential(0.1)
    assert scenario.stations["c"].service == Exponential(0.1)


def test_json_that_nests_too_deep_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"model": "queueing.station", "x": ' + "[" * 5000 + "]" * 5000 + "}")
    assert error_of(path) == "deep.json: nested more than 64 deep"


def test_an_empirical_file_is_read_from_the_scenario_files_folder(tmp_path: Path, monkeypatch) -> None:
    """A relative ``file:`` was read from the working directory, so a scenario worked only where it was written."""
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "samples.csv").write_text("latency_s\n1ms\n3ms\n")
    (folder / "station.yaml").write_text(
        "model: queueing.station\narrival_rate: 1\n"
        "service: {dist: mixture, components: [{dist: empirical, file: samples.csv, column: latency_s, weight: 1}]}\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    scenario = load_scenario(Path("..") / "scenarios" / "station.yaml")
    assert scenario.service is not None and scenario.service.mean == pytest.approx(0.002)
