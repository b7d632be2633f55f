"""The ``first_request`` cold-start stage: a new instance's first request's extra cost (Node.js JIT warm-up),
the runtime's measured parameter set when it exists, else 0."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from sim.params import available, param_as_dist, set_params_source
from models.faas.config import FIRST_REQUEST as SETS
from test_faas import run, scenario

PARAMS_DIR = Path(__file__).resolve().parents[1] / "calibration" / "params"
MEASURED_S = 0.0123  # a hand-made value for the test's own parameter set
NODE, GO = SETS["node", "none"], SETS["go", "none"]


def first_request_mean(runtime: str, **cold_start: object) -> tuple[float, float, float]:
    """(mean first_request stage, mean cold-start latency, mean of the other stages' sum) over a run."""
    data = scenario(runtime=runtime, keep_alive=1.0, workload={"rate": 0.2},
                    cold_start={"sandbox": 0.1, "runtime_start": 0.02, **cold_start})
    env, _ = run(data)
    hists = env.metrics.histograms
    assert hists["coldstart.latency_s"].count > 20
    return (hists["coldstart.first_request_s"].mean, hists["coldstart.latency_s"].mean,
            hists["coldstart.sandbox_s"].mean + hists["coldstart.runtime_start_s"].mean)


@pytest.mark.parametrize("runtime", ["go", "node"])
def test_each_runtime_reads_its_parameter_set_if_it_exists(runtime):
    """The stage's mean over the run's cold starts is the set's mean, within 4 standard errors."""
    name = SETS[runtime, "none"]
    data = scenario(runtime=runtime, keep_alive=1.0, workload={"rate": 0.2},
                    cold_start={"sandbox": 0.1, "runtime_start": 0.02})
    stage = run(data)[0].metrics.histograms["coldstart.first_request_s"]
    if name not in available():
        assert stage.max == 0.0
        return
    dist = param_as_dist(name)
    assert stage.mean == pytest.approx(dist.mean, abs=4 * math.sqrt(dist.variance / stage.count))


def test_a_given_first_request_cost_is_a_stage_of_the_cold_start():
    stage, latency, others = first_request_mean("node", first_request=0.05)
    assert stage == pytest.approx(0.05)
    assert latency == pytest.approx(others + 0.05)


@pytest.fixture
def measured(tmp_path: Path):
    """Node's set replaced by a hand-made constant, Go's removed."""
    folder = tmp_path / "params"
    shutil.copytree(PARAMS_DIR, folder)
    data = {"name": NODE, "description": "hand-made for a test", "unit": "s", "dataset": "none",
            "measured": {}, "kind": "constant", "value": MEASURED_S}
    (folder / f"{NODE}.json").write_text(json.dumps(data))
    (folder / f"{GO}.json").unlink(missing_ok=True)
    set_params_source(folder)
    yield folder
    set_params_source(None)


def test_node_default_is_the_parameter_set_when_measured(measured: Path):
    assert first_request_mean("node")[0] == pytest.approx(MEASURED_S)
    assert first_request_mean("go")[0] == 0.0
