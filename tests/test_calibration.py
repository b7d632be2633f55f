"""Calibration: the gctrace and V8 trace parsers and their rounding models, the fitters on synthetic data with known
parameters, and the shipped parameter sets against the shipped data they name."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from calibration import gctrace, v8trace
from calibration.dataset import DATA_ROOT, Dataset
from calibration.distfit import fit_constant, fit_distribution, fit_linear, log_sigma_floor, step_resolution
from calibration.fit import _http_server_cpu_per_request, fit_all, observations
from models.runtime.go.gc import MARK_FACTOR_PARAM
from sim.params import (available, load_params, param_as_dist, param_binned, param_dist, param_linear,
                        param_multilinear, param_table, param_value)

# A line printed by Go 1.27 (this toolchain), one forced, one of the Go 1.19 format (no stacks/globals),
# and one with the goroutine-leak note and whole milliseconds.
LINE_NEW = ("gc 18 @1.925s 6%: 0.54+18+0.004 ms clock, 1.0+10/10/11+0.008 ms cpu, "
            "131->140->82 MB, 154 MB goal, 0 MB stacks, 0 MB globals, 2 P")
LINE_FORCED = ("gc 3 @0.120s 1%: 0.011+0.35+0.002 ms clock, 0.022+0.10/0.20/0+0.004 ms cpu, "
               "4->4->1 MB, 4 MB goal, 1 MB stacks, 2MB globals, 2 P (forced)")
LINE_OLD = "gc 7 @0.5s 1%: 0.010+1.2+0.003 ms clock, 0.020+0.1/1.0/0+0.006 ms cpu, 4->4->0 MB, 5 MB goal, 8 P"
LINE_LEAK = ("gc 12 @30.001s 2% (checking for goroutine leaks): 0+12+0.13 ms clock, 0+1.5/20/3.0+0.26 ms cpu, "
             "1024->1100->980 MB, 2048 MB goal, 0 MB stacks, 0 MB globals, 2 P")
MIB = 1 << 20


def test_parse_current_format():
    row = gctrace.parse_line(LINE_NEW)
    assert row["cycle"] == 18 and row["t_s"] == 1.925 and row["gc_cpu_percent"] == 6
    assert (row["sweep_term_s"], row["mark_s"], row["mark_term_s"]) == (0.00054, 0.018, 0.000004)
    assert (row["cpu_sweep_term_s"], row["cpu_assist_s"], row["cpu_background_s"], row["cpu_idle_s"],
            row["cpu_mark_term_s"]) == (0.001, 0.010, 0.010, 0.011, 0.000008)
    assert (row["heap_start_bytes"], row["heap_end_bytes"], row["heap_live_bytes"], row["heap_goal_bytes"]) == (
        131 * MIB, 140 * MIB, 82 * MIB, 154 * MIB)
    assert (row["stacks_bytes"], row["globals_bytes"], row["procs"], row["forced"]) == (0, 0, 2, False)


def test_parse_forced_and_globals_without_space():
    row = gctrace.parse_line(LINE_FORCED)
    assert row["forced"] is True
    assert (row["stacks_bytes"], row["globals_bytes"]) == (1 * MIB, 2 * MIB)
    assert row["cpu_idle_s"] == 0.0


def test_parse_go119_format_has_no_stacks_or_globals():
    row = gctrace.parse_line(LINE_OLD)
    assert row["stacks_bytes"] is None and row["globals_bytes"] is None
    assert row["procs"] == 8 and row["heap_live_bytes"] == 0 and row["mark_s"] == 0.0012


def test_parse_leak_note_and_whole_milliseconds():
    row = gctrace.parse_line(LINE_LEAK)
    assert row["sweep_term_s"] == 0.0 and row["mark_s"] == 0.012 and row["mark_term_s"] == 0.00013
    assert row["heap_goal_bytes"] == 2048 * MIB


@pytest.mark.parametrize("line", ["", "cnsim: phase steady", "gc 1 @0.1s 0%: garbage", "scvg: 0 MB released"])
def test_other_lines_are_not_rows(line):
    assert gctrace.parse_line(line) is None


def test_stream_skips_other_lines_and_measures_intervals():
    text = "\n".join([LINE_OLD.replace("@0.5s", "@0.100s"), "unrelated", LINE_OLD.replace("@0.5s", "@0.350s"),
                      "", LINE_FORCED])
    rows = gctrace.parse_stream(text)
    assert [r["cycle"] for r in rows] == [7, 7, 3]
    assert rows[0]["interval_s"] is None and rows[1]["interval_s"] == 0.25
    assert rows[2]["interval_s"] == pytest.approx(0.12 - 0.35)


def test_phases_from_cycle_numbers():
    assert [gctrace.phase_of(c, 3, 5) for c in range(1, 8)] == ["build"] * 2 + ["steady"] * 3 + ["done"] * 2


def test_rounding_matches_the_runtime_printer():
    true = np.array([0.4e-6, 11.7e-6, 99.9e-6, 135.2e-6, 1.234e-3, 9.99e-3, 12.7e-3, 11e-6])
    # fmtNSAsMS: "0", "0.011", "0.099", "0.13", "1.2", "9.9", "12", "0.011"
    expected = np.array([0, 11e-6, 99e-6, 130e-6, 1.2e-3, 9.9e-3, 12e-3, 11e-6])
    np.testing.assert_allclose(gctrace.quantize(true), expected, rtol=1e-12, atol=0)
    printed = gctrace.quantize(true)
    assert np.all(printed <= true) and np.all(true < printed + gctrace.quantum(printed))
    np.testing.assert_allclose(gctrace.quantize(gctrace.midpoint(printed)), printed, rtol=1e-12, atol=0)


# --- fitters on synthetic data: tolerances are multiples of the estimator's standard error -------------

def test_lognormal_is_recovered_and_chosen():
    rng = np.random.default_rng(1)
    n, mu, sigma = 2000, math.log(50e-6), 0.4
    result = fit_distribution(rng.lognormal(mu, sigma, n), np.random.default_rng(2), replicates=100)
    assert result["fit"]["chosen"] == "lognormal"
    spec = result["distribution"]
    assert abs(spec["mu"] - mu) < 4 * sigma / math.sqrt(n)
    assert abs(spec["sigma"] - sigma) < 4 * sigma / math.sqrt(2 * n)
    assert result["goodness_of_fit"]["p_value"] > 0.01


def test_gamma_is_recovered_and_chosen():
    rng = np.random.default_rng(3)
    n, shape, scale = 2000, 3.0, 1e-5
    result = fit_distribution(rng.gamma(shape, scale, n), np.random.default_rng(4), replicates=100)
    assert result["fit"]["chosen"] == "gamma"
    mean = result["distribution"]["shape"] * result["distribution"]["scale"]
    assert abs(mean - shape * scale) < 4 * math.sqrt(shape) * scale / math.sqrt(n)


def test_two_modes_choose_the_mixture_and_a_wrong_family_is_rejected():
    rng = np.random.default_rng(5)
    data = np.concatenate([rng.lognormal(math.log(5e-6), 0.2, 700), rng.lognormal(math.log(150e-6), 0.3, 300)])
    result = fit_distribution(data, np.random.default_rng(6), replicates=100)
    assert result["fit"]["chosen"] == "lognormal_mixture2"
    weights = [c["weight"] for c in result["distribution"]["components"]]
    assert abs(weights[0] - 0.7) < 4 * math.sqrt(0.7 * 0.3 / data.size)
    only_exp = fit_distribution(data, np.random.default_rng(6), candidates=("exp",), replicates=100)
    assert only_exp["goodness_of_fit"]["p_value"] == pytest.approx(1 / 101)


def test_step_resolution_finds_a_clock_step():
    rng = np.random.default_rng(11)
    stepped = np.rint(rng.lognormal(math.log(140e-9), 0.2, 1000) / 10e-9) * 10e-9
    assert step_resolution(stepped, 1e-9) == pytest.approx(10e-9)
    assert step_resolution(rng.lognormal(math.log(140e-9), 0.2, 1000), 1e-9) == pytest.approx(1e-9)


def test_mixture_does_not_collapse_onto_tied_values():
    """Rounded data repeat values; no component may be narrower than the rounding allows."""
    rng = np.random.default_rng(12)
    data = np.rint(rng.lognormal(math.log(140e-9), 0.15, 3000) / 10e-9) * 10e-9
    result = fit_distribution(data, np.random.default_rng(13), replicates=20, resolution=10e-9,
                              candidates=("lognormal_mixture2",))
    floor = log_sigma_floor(data, 10e-9)
    assert all(c["sigma"] >= floor * (1 - 1e-12) for c in result["distribution"]["components"])


def test_bootstrap_is_reproducible():
    data = np.random.default_rng(7).gamma(2.0, 1.0, 300)
    a = fit_distribution(data, np.random.default_rng(8), replicates=50)
    b = fit_distribution(data, np.random.default_rng(8), replicates=50)
    assert a == b


def test_linear_slope_within_its_standard_error():
    rng = np.random.default_rng(9)
    n = 500
    x = rng.uniform(0, 10, n)
    y = 2.0 + 3.0 * x + rng.normal(0, 1.0, n)
    line = fit_linear(x, y)
    se = 1.0 / (math.sqrt(n) * x.std())
    assert abs(line["slope"] - 3.0) < 4 * se
    assert line["fit"]["slope_stderr"] == pytest.approx(se, rel=0.1)
    flat = fit_linear(x, rng.normal(0, 1.0, n))
    assert abs(flat["slope"]) < 4 * se


def test_constant_interval():
    values = np.random.default_rng(10).normal(100.0, 5.0, 40)
    result = fit_constant(values)
    low, high = result["goodness_of_fit"]["ci95"]
    assert low < result["value"] < high
    assert high - low == pytest.approx(2 * 2.0227 * values.std(ddof=1) / math.sqrt(40), rel=1e-3)


# --- the shipped parameter sets -----------------------------------------------------------------------

SHIPPED = [name for name in available() if name.startswith(("go.", "machine."))]
SHIPPED_NODE = [name for name in available() if name.startswith("node.")]


def _shipped_folders() -> list[Path]:
    return sorted({(DATA_ROOT.parent.parent / load_params(name)["dataset"]).parent
                   for name in SHIPPED + SHIPPED_NODE})


def test_shipped_parameter_sets_exist():
    expected = {"go.gc.stw_sweep_termination", "go.gc.stw_mark_termination", "go.gc.stw_sweep_termination_vs_heap",
                "go.gc.stw_mark_termination_vs_heap", "go.gc.mark_cpu_vs_heap", "go.goroutine.spawn_s",
                "go.goroutine.stack_bytes"}
    assert expected <= set(SHIPPED)


HTTP_LATENCY = ["go.http.h1_reused_s", "go.http.h1_new_s", "go.http.h1_tls_new_s", "go.http.h2_tls_reused_s",
                "go.http.h2_tls_new_s"]


def test_shipped_http_parameter_sets_exist():
    assert {*HTTP_LATENCY, "go.http.server_cpu_s", "go.http.tls_handshake_server_cpu_s"} <= set(SHIPPED)


def _http_data() -> Dataset:
    return Dataset((DATA_ROOT.parent.parent / load_params("go.http.server_cpu_s")["dataset"]).parent)


@pytest.mark.parametrize("cheaper, dearer", [
    ("go.http.h1_reused_s", "go.http.h1_new_s"),  # a TCP handshake (and teardown) more
    ("go.http.h1_new_s", "go.http.h1_tls_new_s"),  # a TLS 1.3 handshake more
    ("go.http.h2_tls_reused_s", "go.http.h2_tls_new_s"),
])
def test_shipped_http_new_connections_cost_more(cheaper, dearer):
    """On the shipped samples, the case with more handshakes is slower: one-sided Mann-Whitney, p < 1e-6,
    and the fitted distributions' medians keep the order."""
    from scipy import stats as scipy_stats

    data = _http_data()
    a, b = observations(cheaper, data)["y"].to_numpy(), observations(dearer, data)["y"].to_numpy()
    assert scipy_stats.mannwhitneyu(a, b, alternative="less").pvalue < 1e-6
    assert np.median(param_dist(cheaper).sample(np.random.default_rng(0), 4001)) < np.median(
        param_dist(dearer).sample(np.random.default_rng(0), 4001))


def test_shipped_http_server_cpu_per_connection():
    """Per round, the server spends more CPU per request on a new connection than on a reused one, and more on
    a new TLS connection than on a new cleartext one (paired one-sided Wilcoxon, p < 1e-3); both constants'
    95 % intervals exclude zero."""
    from scipy import stats as scipy_stats

    per_request = _http_server_cpu_per_request(_http_data())
    for cheaper, dearer in (("h1_reused", "h1_new"), ("h1_new", "h1_tls_new")):
        test = scipy_stats.wilcoxon(per_request[cheaper], per_request[dearer], alternative="less")
        assert test.pvalue < 1e-3, (cheaper, dearer)
    for name in ("go.http.server_cpu_s", "go.http.tls_handshake_server_cpu_s"):
        assert load_params(name)["goodness_of_fit"]["ci95"][0] > 0, name


def _assert_same(shipped, refit, path="") -> None:
    if isinstance(shipped, float) or isinstance(refit, float):
        # the same deterministic computation; only the JSON float round trip may differ
        assert refit == pytest.approx(shipped, rel=1e-9, abs=0), path
    elif isinstance(shipped, dict):
        assert set(shipped) == set(refit), path
        for key in shipped:
            _assert_same(shipped[key], refit[key], f"{path}.{key}")
    elif isinstance(shipped, list):
        assert len(shipped) == len(refit), path
        for index, (a, b) in enumerate(zip(shipped, refit)):
            _assert_same(a, b, f"{path}[{index}]")
    else:
        assert shipped == refit, path


@pytest.fixture(scope="module")
def refitted() -> dict[str, dict]:
    out = {}
    for folder in _shipped_folders():
        for entry in fit_all(folder):
            out[entry["name"]] = json.loads(json.dumps(entry))
    return out


@pytest.mark.parametrize("name", SHIPPED + SHIPPED_NODE)
def test_shipped_params_reproduce_from_their_data(name, refitted):
    _assert_same(load_params(name), refitted[name], name)


@pytest.mark.parametrize("name", ["go.goroutine.spawn_s", "go.sched.wakeup_late_s"])
def test_param_as_dist_samples_a_constant_or_a_fit(name):
    """A measured constant becomes a constant distribution; a fitted one is the fit itself."""
    dist = param_as_dist(name)
    if load_params(name)["kind"] == "constant":
        assert dist.spec() == {"dist": "const", "value": param_value(name)}
    else:
        assert dist.spec() == param_dist(name).spec()


@pytest.mark.parametrize("name", SHIPPED + SHIPPED_NODE)
def test_shipped_params_are_complete_and_load(name):
    params = load_params(name)
    assert params["name"] == name
    for key in ("description", "unit", "dataset", "measured", "kind", "fit", "goodness_of_fit"):
        assert params[key] not in (None, ""), key
    assert (DATA_ROOT.parent.parent / params["dataset"]).is_file()
    if name.startswith("node."):
        assert params["measured"]["node_version"].startswith("v")
    else:
        assert params["measured"]["go_version"].startswith("go version go")
    assert params["measured"]["loadavg_1min_max"] is not None
    if params["kind"] == "distribution":
        dist = param_dist(name)
        assert dist.mean > 0
        _assert_same(params["distribution"], dist.spec(), name)  # mixture weights are renormalised: approx
        if params["distribution"]["dist"] == "empirical":  # calibration.distfit.fit_empirical
            kept = len(params["distribution"]["values"])
            assert params["goodness_of_fit"]["statistic"] <= 1 / kept + 1 / params["fit"]["n"]
        else:
            candidates = params["fit"]["candidates"]
            chosen = next(c for c in candidates if c["family"] == params["fit"]["chosen"])
            assert chosen["aic"] == min(c["aic"] for c in candidates)
            assert chosen["parameters"] == params["distribution"]
            assert len(candidates) >= 3
            gof = params["goodness_of_fit"]
            assert 0 <= gof["statistic"] <= 1 and 1 / (gof["replicates"] + 1) <= gof["p_value"] <= 1
            assert gof["replicates"] >= 100
    elif params["kind"] == "binned":
        binned = param_binned(name)
        assert len(binned.edges) == len(params["fit"]["bins"]) and binned.edges[0] == 0
        assert all(dist.mean >= 0 for dist in binned.distributions)
        assert 0 <= params["goodness_of_fit"]["statistic"] <= 1
    elif params["kind"] == "linear":
        intercept, slope = param_linear(name)
        assert math.isfinite(intercept) and math.isfinite(slope)
        assert 0 <= params["goodness_of_fit"]["r_squared"] <= 1
    elif params["kind"] == "table":
        table = param_table(name)  # the factor by GOMAXPROCS has one point per GOMAXPROCS measured (1 and 2)
        assert len(table.xs) >= (2 if name == MARK_FACTOR_PARAM else 3) and all(y > 0 for y in table.ys)
    elif params["kind"] == "multilinear":
        intercept, coefficients = param_multilinear(name)
        assert math.isfinite(intercept) and all(math.isfinite(c) and c >= 0 for c in coefficients.values())
    elif "ci95" in params["goodness_of_fit"]:
        value = param_value(name)
        low, high = params["goodness_of_fit"]["ci95"]
        assert low <= value <= high
    else:  # a ratio of sums over rows: between the rows' own ratios
        assert params["goodness_of_fit"]["row_min"] <= param_value(name) <= params["goodness_of_fit"]["row_max"]


@pytest.mark.parametrize("name", SHIPPED + SHIPPED_NODE)
def test_fitted_values_describe_their_observations(name):
    """The fit's sample count is the observation count, and a distribution's mean is near the sample mean
    (within 5 standard errors: the chosen family need not match the mean exactly, but not far off); a
    constant is the mean of its observations, or for a censored exponential time their sum over the events."""
    params = load_params(name)
    data = Dataset((DATA_ROOT.parent.parent / params["dataset"]).parent)
    y = observations(name, data)["y"].to_numpy()
    assert params["fit"]["n"] == y.size
    if params["kind"] == "distribution":
        assert abs(param_dist(name).mean - y.mean()) < 5 * y.std(ddof=1) / math.sqrt(y.size)
    if params["kind"] == "constant" and "moves" in params["fit"]:
        assert param_value(name) == pytest.approx(y.sum() / params["fit"]["moves"], rel=1e-12)
    elif params["kind"] == "constant" and "by_operation" in params["fit"]:  # bytes over allocations, summed
        assert y.min() <= param_value(name) <= y.max()
    elif params["kind"] == "constant":
        assert param_value(name) == pytest.approx(y.mean(), rel=1e-12)
    elif params["kind"] == "table":  # the median of the repetitions at each x
        obs = observations(name, data)
        medians = obs.groupby("x")["y"].median()
        assert param_table(name).xs == tuple(float(x) for x in medians.index)
        assert param_table(name).ys == pytest.approx(tuple(medians), rel=1e-12)
    elif params["kind"] == "multilinear":  # its stated error is the error of its own predictions
        obs = observations(name, data)
        intercept, coefficients = param_multilinear(name)
        predicted = intercept + sum(obs[x].to_numpy(float) * c for x, c in coefficients.items())
        error = np.median(np.abs(predicted / y - 1))
        assert error == pytest.approx(params["goodness_of_fit"]["median_absolute_relative_error"], rel=1e-9)


# --- V8 --trace-gc-nvp (Node.js) --------------------------------------------------------------------------

#: Real lines printed by Node v20.20.2 (V8 11.3): three scavenges and two mark-compacts with
#: --trace-gc-nvp, then two mark-compacts in the plain --trace-gc format, which has no survivor counts.
V8_TRACE = Path(__file__).parent / "data" / "node20_trace_gc_nvp.txt"


def test_v8_trace_scavenge_line():
    rows = v8trace.parse_stream(V8_TRACE.read_text())
    assert [r["kind"] for r in rows] == ["scavenge"] * 3 + ["mark-compact"] * 2
    first = rows[0]
    assert first["t_s"] == 3.112 and first["isolate"] == "0x3ec44120" and first["index"] == 0
    assert (first["pause_s"], first["mutator_s"], first["time_to_safepoint_s"]) == (0.0062, 0.0492, 0.0)
    assert (first["heap_before_bytes"], first["heap_after_bytes"], first["allocated_bytes"]) == (
        379913080, 372238928, 10479144)
    assert (first["promoted_bytes"], first["new_space_survived_bytes"]) == (2760384, 2815376)
    assert first["survived_bytes"] == 2760384 + 2815376 and first["reduce_memory"] is False
    assert first["incremental_s"] is None and first["background_mark_s"] is None


def test_v8_trace_mark_compact_line():
    full = v8trace.parse_stream(V8_TRACE.read_text())[3]
    assert full["kind"] == "mark-compact" and full["t_s"] == 0.415 and full["index"] == 3
    assert (full["pause_s"], full["incremental_s"], full["incremental_steps"], full["background_mark_s"]) == (
        0.1255, 0.0, 1, 0.1222)
    assert (full["heap_before_bytes"], full["heap_after_bytes"]) == (152542520, 152530328)
    assert full["survived_bytes"] is None


@pytest.mark.parametrize("line", ["", "gc 1 @0.1s 0%: garbage",
                                  "[1:0x1]       22 ms: Scavenge 3.9 (4.0) -> 3.7 (5.0) MB, 2.00 / 0.00 ms  "
                                  "(average mu = 1.000, current mu = 1.000) allocation failure; ",
                                  "[1:0x1] Memory allocator,       used:   5096 KB, available: 4238360 KB",
                                  "[1:0x1]       15 ms: pause=1.2 mutator=11.4"])
def test_v8_other_lines_are_not_rows(line):
    assert v8trace.parse_line(line) is None


def test_v8_phases_from_times():
    assert [v8trace.phase_of(t, 1.0, 2.0, 0.1) for t in (0.5, 1.0, 2.05, 2.1, 2.2)] == [
        "build", "steady", "steady", "steady", "done"]


def test_v8_rounding_matches_printf():
    true = np.array([0.02e-3, 0.049e-3, 0.051e-3, 1.149e-3, 1.151e-3, 125.46e-3])
    printed = v8trace.quantize(true)  # pause=%.1f in ms
    np.testing.assert_allclose(printed, [0, 0, 0.1e-3, 1.1e-3, 1.2e-3, 125.5e-3], rtol=1e-12, atol=1e-15)
    assert np.all(np.abs(true - v8trace.midpoint(printed)) <= 0.05e-3 + 1e-15)
    np.testing.assert_allclose(v8trace.quantize(v8trace.midpoint(printed)), printed, rtol=1e-12, atol=1e-15)
    assert np.all(v8trace.midpoint(printed) > 0)


NODE_EXPECTED = {
    "node.alloc.cpu_s_vs_size": "table", "node.alloc.heap_bytes_vs_size": "table",
    "node.process.start_s": "distribution", "node.process.rss_bytes": "constant",
    "node.isolate.context_create_s": "distribution", "node.isolate.context_bytes": "constant",
    "node.isolate.script_run_s": "distribution", "node.isolate.module_load_s": "distribution",
    "node.worker.start_s": "distribution", "node.worker.memory_bytes": "constant",
    "node.worker.message_s_vs_bytes": "linear",
    "node.gc.scavenge_pause_vs_survived": "linear", "node.gc.scavenge_pause_s": "distribution",
    "node.gc.markcompact_pause_vs_heap": "linear", "node.gc.markcompact_pause_s": "distribution",
    "node.gc.markcompact_mark_cpu_vs_heap": "linear", "node.http.server_cpu_s": "constant",
    "node.function.start_s": "distribution", "node.function.start_typical_s": "distribution",
    "node.function.first_request_s": "distribution", "node.function.first_request_typical_s": "distribution",
    "node.function.module_load_typical_s": "distribution", "node.ivm.sandbox_s": "distribution",
    "node.ivm.function_load_s": "distribution", "node.ivm.first_call_s": "distribution",
}


def test_shipped_node_parameter_sets_exist_with_their_kinds():
    assert {name: load_params(name)["kind"] for name in SHIPPED_NODE} == NODE_EXPECTED


@pytest.mark.parametrize("name", ["node.gc.scavenge_pause_vs_survived", "node.worker.message_s_vs_bytes",
                                  "node.gc.markcompact_mark_cpu_vs_heap"])
def test_shipped_node_costs_grow_with_bytes(name):
    """Copying and marking work grow with the bytes copied or marked: the slope is positive, at least
    5 standard errors from 0."""
    params = load_params(name)
    assert params["slope"] > 5 * params["fit"]["slope_stderr"]


def test_shipped_node_gc_fits_use_steady_collections_only():
    params = load_params("node.gc.scavenge_pause_s")
    frame = Dataset((DATA_ROOT.parent.parent / params["dataset"]).parent).frame("node_gc_pauses.csv")
    steady = frame[(frame["phase"] == "steady") & (frame["kind"] == "scavenge")]
    assert params["fit"]["n"] == len(steady) < (frame["kind"] == "scavenge").sum()
    assert params["fit"]["resolution"] == pytest.approx(1e-4)
