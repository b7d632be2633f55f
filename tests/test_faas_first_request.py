"""The ``first_request`` cold-start stage: a new instance's first request's extra cost (Node.js JIT warm-up)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sim.params import available, param_as_dist, set_params_source
from models.faas.config import FIRST_REQUEST
from test_faas import run, scenario

PARAMS_DIR = Path(__file__).resolve().parents[1] / "calibration" / "params"
MEASURED_S = 0.0123  # a hand-made value for the test's own parameter set


def first_request_mean(runtime: str, **cold_start: object) -> tuple[float, float, float]:
    """(mean first_request stage, mean cold-start latency, mean of the other stages' sum) over a run."""
    data = scenario(runtime=runtime, keep_alive=1.0, workload={"rate": 0.2},
                    cold_start={"sandbox": 0.1, "runtime_start": 0.02, **cold_start})
    env, _ = run(data)
    hists = env.metrics.histograms
    assert hists["coldstart.latency_s"].count > 20
    return (hists["coldstart.first_request_s"].mean, hists["coldstart.latency_s"].mean,
            hists["coldstart.sandbox_s"].mean + hists["coldstart.runtime_start_s"].mean)


def test_go_has_no_first_request_cost_and_node_reads_the_parameter_set_if_it_exists():
    assert first_request_mean("go")[0] == 0.0
    expected = param_as_dist(FIRST_REQUEST).mean if FIRST_REQUEST in available() else 0.0
    assert first_request_mean("node")[0] == pytest.approx(expected)


def test_a_given_first_request_cost_is_a_stage_of_the_cold_start():
    stage, latency, others = first_request_mean("node", first_request=0.05)
    assert stage == pytest.approx(0.05)
    assert latency == pytest.approx(others + 0.05)


@pytest.fixture
def measured(tmp_path: Path):
    folder = tmp_path / "params"
    shutil.copytree(PARAMS_DIR, folder)
    data = {"name": FIRST_REQUEST, "description": "hand-made for a test", "unit": "s", "dataset": "none",
            "measured": {}, "kind": "constant", "value": MEASURED_S}
    (folder / f"{FIRST_REQUEST}.json").write_text(json.dumps(data))
    set_params_source(folder)
    yield folder
    set_params_source(None)


def test_node_default_is_the_parameter_set_when_measured(measured: Path):
    assert first_request_mean("node")[0] == pytest.approx(MEASURED_S)
    assert first_request_mean("go")[0] == 0.0
