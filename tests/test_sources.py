"""Where the engine reads parameter sets and built-in scenarios: entry points, overridden by a folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sim import sources
from sim.params import (
    PARAMS_VARIABLE,
    available,
    load_params,
    param_value,
    params_folder,
    set_params_source,
)
from sim.scenario import (
    SCENARIOS_VARIABLE,
    ScenarioError,
    builtin_scenarios,
    load_scenario,
    scenarios_folder,
    set_scenarios_source,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def shipped(monkeypatch):
    """Each test starts from the shipped folders and leaves the environment as it found it
    (setenv first: it records the value to restore, which delenv of an unset variable does not)."""
    for variable in (PARAMS_VARIABLE, SCENARIOS_VARIABLE):
        monkeypatch.setenv(variable, "")
        monkeypatch.delenv(variable)


@pytest.fixture
def own_params(tmp_path) -> Path:
    folder = tmp_path / "params"
    folder.mkdir()
    (folder / "my.constant_s.json").write_text(json.dumps({"name": "my.constant_s", "kind": "constant", "value": 0.25}))
    return folder


def test_the_shipped_sources_are_the_registered_packages() -> None:
    assert Path(str(params_folder())) == ROOT / "calibration" / "params"
    assert Path(str(scenarios_folder())) == ROOT / "models" / "scenarios"
    assert "go.gc.mark_cpu_vs_heap" in available()
    assert "mmc" in builtin_scenarios()


def test_set_params_source_replaces_the_shipped_sets_until_reset(own_params) -> None:
    shipped = available()
    set_params_source(own_params)
    assert available() == ["my.constant_s"]
    assert param_value("my.constant_s") == 0.25
    with pytest.raises(KeyError, match=r"no calibrated parameter set 'go\.x' \(available: my\.constant_s\)"):
        load_params("go.x")
    set_params_source(None)
    assert available() == shipped
    with pytest.raises(KeyError, match="no calibrated parameter set 'my.constant_s'"):
        load_params("my.constant_s")


def test_the_environment_variable_wins_and_must_name_a_folder(own_params, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(PARAMS_VARIABLE, str(own_params))
    assert available() == ["my.constant_s"]
    monkeypatch.setenv(PARAMS_VARIABLE, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="CNSIM_PARAMS="):
        available()
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        set_params_source(tmp_path / "missing")


def test_processes_started_afterwards_read_the_same_folder(own_params) -> None:
    set_params_source(own_params)
    code = "from sim.params import available; print(available())"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['my.constant_s']"


def test_set_scenarios_source_replaces_the_built_in_scenarios(tmp_path) -> None:
    (tmp_path / "mine.yaml").write_text("description: one server\nmodel: queueing.station\narrival_rate: 0.5\n")
    set_scenarios_source(tmp_path)
    assert builtin_scenarios() == {"mine": "one server"}
    assert load_scenario("mine").name == "mine"
    with pytest.raises(ScenarioError, match=r"no built-in scenario or scenario file named 'mmc' \(built-in: mine\)"):
        load_scenario("mmc")
    set_scenarios_source(None)
    assert "mmc" in builtin_scenarios()


def test_a_group_must_name_exactly_one_package() -> None:
    with pytest.raises(LookupError, match=r"'cnsim\.nothing' must name one package \(found: none.*set CNSIM_X"):
        sources.folder("cnsim.nothing", "CNSIM_X")
