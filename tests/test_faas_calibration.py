"""The FaaS cold-start harness (``faas_coldstart``) and its fits.

The shipped data must show what the harness is for (the orders between runtimes, module graphs and the
first request); the ``harness`` tests run the real functions in --quick mode (about 15 s once built; the
first build runs ``npm ci`` and compiles isolated-vm, about a minute).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from calibration import harness
from calibration.dataset import DATA_ROOT, Dataset
from calibration.fit import fit_all, observations
from calibration.fitfaas import FIRST_REQUEST_SETS, ISOLATE_SETS, START_SETS, names
from calibration.measure import measure
from calibration.measure_faas import FAAS_COUNTS_QUICK, FAAS_VARIANTS, build_functions
from sim.params import load_params

SHIPPED = Dataset(DATA_ROOT / "vm")


def _shipped(name: str) -> np.ndarray:
    return observations(name, SHIPPED)["y"].to_numpy()


@pytest.mark.parametrize("faster, slower", [
    ("go.function.start_s", "node.function.start_s"),  # a Go binary against V8 and Node's bootstrap
    ("node.function.start_s", "node.function.start_typical_s"),  # no dependencies against Express's graph
    ("go.function.first_request_s", "node.function.first_request_s"),  # compiled code against JIT warm-up
    ("node.ivm.sandbox_s", "node.function.start_s"),  # an isolate in a running process against a process
])
def test_shipped_orders(faster, slower):
    """One-sided Mann-Whitney on the shipped samples (50 or more each), p < 1e-6."""
    assert stats.mannwhitneyu(_shipped(faster), _shipped(slower), alternative="less").pvalue < 1e-6


def test_shipped_start_holds_its_parts():
    """Express's function starts later than the plain one by about what require('express') takes: the
    difference of medians is within the middle 80 % of the require times."""
    load = _shipped("node.function.module_load_typical_s")
    gap = np.median(_shipped("node.function.start_typical_s")) - np.median(_shipped("node.function.start_s"))
    assert np.quantile(load, 0.1) < gap < np.quantile(load, 0.9)
    assert load_params("node.function.start_typical_s")["fit"]["modules_loaded_median"] > 50


def test_shipped_stages_add_up_to_the_first_response():
    """Per start, the first response = ready (the start set) + the first request's latency (its extra + the
    steady latency) + the driver's few instructions between them: the remainder is >= 0 and its median
    under 0.1 ms."""
    start = SHIPPED.frame("faas_start.csv").pivot_table(index=["variant", "round", "rep"], columns="measurement",
                                                         values="seconds")
    requests = SHIPPED.frame("faas_requests.csv")
    first = requests[requests["index"] == 1].set_index(["variant", "round", "rep"])["seconds"]
    rest = start["first_response"] - start["ready"] - first.reindex(start.index)
    assert (rest >= 0).all() and rest.median() < 1e-4


# --- the harness, run ------------------------------------------------------------------------------------

ROUNDS, STARTS, REQUESTS, ISOLATE_SAMPLES = FAAS_COUNTS_QUICK


@pytest.fixture(scope="module")
def faas_data(tmp_path_factory):
    return measure(tmp_path_factory.mktemp("faasdata"), host="faas", quick=True, only=["faas_coldstart"])


@pytest.mark.harness
def test_quick_start_rows(faas_data):
    start = pd.read_csv(faas_data / "faas_start.csv")
    assert start.groupby(["variant", "measurement"]).size().to_dict() == {
        (variant, measurement): ROUNDS * STARTS for variant in FAAS_VARIANTS
        for measurement in ("ready", "first_response")}
    requests = pd.read_csv(faas_data / "faas_requests.csv")
    assert requests.groupby("variant").size().to_dict() == dict.fromkeys(FAAS_VARIANTS, ROUNDS * STARTS * REQUESTS)
    assert sorted(requests["index"].unique()) == list(range(1, REQUESTS + 1)) and (requests["seconds"] > 0).all()
    # the first response comes after the function said it listens, by at least the first request's latency
    wide = start.pivot_table(index=["variant", "round", "rep"], columns="measurement", values="seconds")
    first = requests[requests["index"] == 1].set_index(["variant", "round", "rep"])["seconds"]
    assert (wide["first_response"] >= wide["ready"] + first.reindex(wide.index)).all()
    modules = start.groupby("variant")["modules"].max().to_dict()
    assert modules["go"] == 0 and modules["node"] == 1 and modules["node-express"] > 50
    assert (start.loc[start["variant"] == "node-express", "module_load_s"] > 0).all()


@pytest.mark.harness
def test_quick_isolate_rows(faas_data):
    """vm contexts and workers always; isolated-vm exactly when its addon built (it does here)."""
    isolate = pd.read_csv(faas_data / "faas_isolate.csv")
    built = (build_functions(harness.cache_dir()) / "node_modules" / "isolated-vm" / "out" / "isolated_vm.node")
    engines = {"vm", "worker"} | ({"isolated-vm"} if built.is_file() else set())
    assert isolate.groupby("engine").size().to_dict() == dict.fromkeys(engines, ISOLATE_SAMPLES)
    assert (isolate["load_s"] > 0).all() and (isolate["first_call_s"] > 0).all()
    assert (isolate["source_bytes"] > 70_000).all()  # lodash.min.js and the handler


@pytest.mark.harness
def test_quick_meta_and_fits(faas_data):
    meta = json.loads((faas_data / "meta.json").read_text())
    assert meta["node_version"] == harness.node_version() and meta["go_version"].startswith("go version")
    commands = meta["harnesses"]["faas_coldstart"]["commands"]
    assert len(commands) == ROUNDS * len(FAAS_VARIANTS) + 1
    assert not any(arg.startswith("/") for c in commands for arg in c["argv"])  # no local paths
    fitted = {entry["name"]: entry for entry in fit_all(faas_data)}
    has_ivm = "isolated-vm" in set(pd.read_csv(faas_data / "faas_isolate.csv")["engine"])
    assert {n for n in names() if n in fitted} == set(names()) - (set() if has_ivm else set(ISOLATE_SETS))
    for name in [*START_SETS, *FIRST_REQUEST_SETS]:
        assert fitted[name]["fit"]["n"] == ROUNDS * STARTS
        assert fitted[name]["measured"]["quick"] is True
