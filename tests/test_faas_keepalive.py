"""Keep-alive policies (fixed, hybrid histogram), the Azure 2019 workload generator and the per-minute trace replay."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from sim.core import Environment
from sim.rng import Streams
from sim.run import run_replication
from sim.scenario import ScenarioError, load_scenario
from models.faas import azure
from models.faas.keepalive import ArOne, HybridHistogram, Windows
from models.faas.model import FaasModel
from models.faas.trace import COLUMNS, read_trace
from test_faas import run

SAMPLE = Path(__file__).parent / "data" / "azure_invocations_sample.csv"
NO_START = {"sandbox": "none", "runtime_start": 0, "first_request": 0}


# -- the hybrid histogram policy's rules (Shahrad et al., section 4.2) ------------------------------------------

def test_too_few_idle_times_keep_the_histogram_range_alive():
    policy = HybridHistogram()
    for _ in range(19):
        policy.observe(1800.0)
    assert policy.windows() == Windows(0.0, 4 * 3600.0) and policy.mode == "standard"


def test_a_regular_idle_time_is_pre_warmed_at_the_head_and_kept_to_the_tail():
    policy = HybridHistogram()
    for _ in range(100):
        policy.observe(30 * 60.0 + 5)  # every idle time in the bin [30 min, 31 min)
    decision = policy.windows()
    assert policy.mode == "histogram"
    # head: the 5th percentile's bin start less 10 %; tail: the 99th percentile's bin end plus 10 %
    assert decision.prewarm_s == pytest.approx(30 * 60 * 0.9)
    assert decision.prewarm_s + decision.keep_alive_s == pytest.approx(31 * 60 * 1.1)


def test_frequent_invocations_are_not_unloaded():
    policy = HybridHistogram()
    for _ in range(50):
        policy.observe(0.0)
    assert policy.windows() == Windows(0.0, pytest.approx(66.0))  # head in bin 0: no pre-warm; tail 1 min + 10 %


def test_a_flat_histogram_is_not_representative():
    policy = HybridHistogram()
    for minute in range(240):  # one idle time in every bin: bin counts with CV 0
        policy.observe(minute * 60.0 + 1)
    assert policy.bin_cv() == 0.0
    assert policy.windows() == Windows(0.0, 4 * 3600.0) and policy.mode == "standard"


def test_idle_times_beyond_the_range_are_forecast():
    policy = HybridHistogram()
    for _ in range(30):
        policy.observe(6 * 3600.0)
    decision = policy.windows()
    assert policy.mode == "forecast"
    assert decision.prewarm_s == pytest.approx(0.85 * 6 * 3600)
    assert decision.keep_alive_s == pytest.approx(0.30 * 6 * 3600)


def test_ar_one_forecasts_a_linear_recurrence_exactly():
    series = ArOne()
    x = 1000.0
    for _ in range(10):
        series.add(x)
        x = 100 + 0.5 * x
    assert series.forecast() == pytest.approx(x)


def test_bin_cv_matches_numpy():
    policy = HybridHistogram()
    rng = np.random.default_rng(4)
    for value in rng.exponential(1200.0, 500):
        policy.observe(float(value))
    counts = policy.counts
    assert policy.bin_cv() == pytest.approx(counts.std(ddof=1) / counts.mean())


# -- the policy on the platform --------------------------------------------------------------------------------

def periodic(policy: str, n: int = 100, period: float = 1800.0) -> dict[str, object]:
    times = {"dist": "empirical", "values": [i * period + 1.0 for i in range(n)]}
    function = {"workload": {"replay": times}, "service": 1.0, "keep_alive_policy": policy,
                "cold_start": {**NO_START, "placement": 0.5}}
    return {"model": "faas", "duration": n * period, "warmup": 0, "functions": {"f": function}}


def test_hybrid_learns_a_periodic_function_and_pre_warms_it():
    env, _ = run(periodic("hybrid"))
    counters = env.metrics.counters
    assert counters["requests.cold"].value == 1  # the first; then 4 h keep-alive until 20 idle times, then pre-warm
    assert counters["requests.warm"].value == 99
    assert counters["instances.prewarmed"].value == 100 - 20  # after each execution from the 20th idle time on
    # wasted: idle 1798.5 s after the first (cold) request, 1799 s after the next 19 (the 4 h keep-alive); then each
    # instance pre-warmed 0.9 x 29 min after an end is idle from its 0.5 s start to the next request, 1799 s after
    # the end; the last one from its start to the end of the run (1800 - 1 - 1 s after the last end)
    prewarm = 0.9 * 29 * 60
    used = 79 * (1799.0 - prewarm)
    last = 1800.0 - 2.0 - prewarm
    memory_gb = 128 / 1024
    assert counters["instances.wasted_gb_s"].value == pytest.approx(
        memory_gb * (1798.5 + 19 * 1799.0 + used + last), rel=1e-9)


def test_fixed_keep_alive_shorter_than_the_period_starts_every_request_cold():
    env, _ = run(periodic("fixed"))
    assert env.metrics.counters["requests.cold"].value == 100
    assert env.metrics.counters["instances.prewarmed"].value == 0


def test_cold_percentage_per_function_is_recorded():
    env, _ = run(periodic("fixed"))
    assert env.metrics.histograms["functions.cold_pct"].count == 1
    assert env.metrics.histograms["functions.cold_pct"].mean == pytest.approx(100.0)


# -- the Azure Functions 2019 characterisation ------------------------------------------------------------------

def binomial_tolerance(p: float, n: int) -> float:
    return 4 * math.sqrt(p * (1 - p) / n)  # four standard errors: a false alarm about once in 16,000 runs


def drawn(count: int = 20_000) -> list[azure.DrawnFunction]:
    return azure.draw_functions(azure.AzureConfig(count=count), Streams(11).stream("azure"))


def test_generated_rates_follow_figure_5a():
    functions = drawn()
    rates = np.array([f.rate for f in functions if not f.timer])
    n = len(rates)
    for per_second, share in ((1 / 3600, 0.45), (1 / 60, 0.81)):  # the paper's text, section 3.3
        assert abs(np.mean(rates <= per_second) - share) < binomial_tolerance(share, n)
    assert rates.max() / rates.min() > 1e5  # invocation rates spread over many orders of magnitude


def test_generated_triggers_and_timers_follow_figure_2():
    functions = drawn()
    timers = [f for f in functions if f.timer]
    assert abs(len(timers) / len(functions) - azure.TIMER_SHARE) < binomial_tolerance(azure.TIMER_SHARE, len(functions))
    assert all(f.cv == 0 and f.rate <= 1 / 60 + 1e-12 for f in timers)
    periods = np.array([1 / f.rate for f in timers])
    assert np.allclose(periods / 60, np.round(periods / 60))


def test_generated_execution_times_and_memory_follow_the_published_fits():
    functions = drawn()
    n = len(functions)
    service = np.array([f.service_s for f in functions])
    memory = np.array([f.memory_mb for f in functions])
    # medians: log-normal exp(-0.38) s (Figure 7); Burr XII lambda (2^(1/k) - 1)^(1/c) MB (Figure 8). The sample
    # median's share below the true median is binomial(n, 1/2).
    exec_median = math.exp(azure.EXEC_LOG_MEAN)
    memory_median = azure.BURR_LAMBDA_MB * (2 ** (1 / azure.BURR_K) - 1) ** (1 / azure.BURR_C)
    assert abs(np.mean(service <= exec_median) - 0.5) < binomial_tolerance(0.5, n)
    assert abs(np.mean(memory <= memory_median) - 0.5) < binomial_tolerance(0.5, n)
    assert service.max() <= azure.EXEC_CAP_S and memory.max() <= azure.MEMORY_CAP_MB


def test_generated_iat_variability_follows_figure_6():
    functions = drawn()
    n = len(functions)
    above = np.mean([f.cv > 1 for f in functions])
    # the text: 40 % of applications have an IAT CV above 1; the curve read off Figure 6 gives 42 % (±2 %)
    assert abs(above - 0.40) < 0.02 + binomial_tolerance(0.40, n)


def test_total_rate_rescales_the_drawn_rates():
    functions = azure.draw_functions(azure.AzureConfig(count=50, total_rate=5.0), Streams(2).stream("a"))
    assert sum(f.rate for f in functions) == pytest.approx(5.0)


def test_renewal_times_have_the_asked_rate_and_cv():
    rng = Streams(5).stream("r")
    times = azure.renewal_times(2.0, 3.0, rng)
    gaps = np.diff([next(times) for _ in range(200_001)])
    n = len(gaps)
    # gamma gaps, mean 0.5 s, cv 3: the sample mean's standard error is 0.5 * 3 / sqrt(n)
    assert abs(gaps.mean() - 0.5) < 4 * 0.5 * 3 / math.sqrt(n)
    assert gaps.std() / gaps.mean() == pytest.approx(3.0, rel=0.05)


def test_an_azure_workload_runs_and_hybrid_pre_warms():
    data = {"model": "faas", "duration": 6 * 3600, "warmup": 0, "seed": 3,
            "azure": {"count": 40, "total_rate": 0.5,
                      "template": {"keep_alive_policy": "hybrid", "cold_start": NO_START}}}
    env, model = run(data)
    counters = env.metrics.counters
    assert len(model.pools) == 40
    assert counters["requests.completed"].value > 1000
    assert env.metrics.histograms["functions.cold_pct"].count > 10


# -- trace replay ---------------------------------------------------------------------------------------------

def test_the_sample_trace_is_read_and_replayed_minute_by_minute():
    rows = read_trace(SAMPLE)
    assert [row.trigger for row in rows] == ["timer", "http", "queue"]
    assert [int(row.counts.sum()) for row in rows] == [144, 180, 50]
    data = {"model": "faas", "duration": 86400, "warmup": 0,
            "trace": {"path": str(SAMPLE), "template": {"service": 0.1, "cold_start": NO_START}}}
    env, model = run(data)
    assert env.metrics.counters["requests.completed"].value == 144 + 180 + 50
    assert env.metrics.counters["requests.rejected"].value == 0


def test_trace_invocations_fall_within_their_minute():
    from models.faas.trace import minute_times

    counts = np.zeros(1440, dtype=np.int64)
    counts[[5, 700]] = [4, 2]
    times = list(minute_times(counts, Streams(1).stream("t")))
    assert len(times) == 6 and times == sorted(times)
    assert all(300 <= t < 360 for t in times[:4]) and all(42000 <= t < 42060 for t in times[4:])


def write(tmp_path: Path, header: list[str], row: list[str]) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(",".join(header) + "\n" + ",".join(row) + "\n")
    return path


def trace_error(path: Path) -> str:
    with pytest.raises(ScenarioError) as caught:
        load_scenario({"model": "faas", "trace": {"path": str(path)}})
    return str(caught.value)


def test_a_trace_with_a_missing_column_names_the_file_and_column(tmp_path: Path):
    header = list(COLUMNS[:-1])
    path = write(tmp_path, header, ["o", "a", "f", "http"] + ["0"] * 1439)
    message = trace_error(path)
    assert message.startswith("trace: path: ") and str(path) in message and "'1440' is missing" in message


def test_a_trace_with_a_wrong_column_names_it(tmp_path: Path):
    header = ["HashOwner", "HashApp", "Function", "Trigger", *COLUMNS[4:]]
    message = trace_error(write(tmp_path, header, ["o", "a", "f", "http"] + ["0"] * 1440))
    assert re.search(r"column 3 is 'Function', expected 'HashFunction'", message)


@pytest.mark.parametrize("value", ["x", "-2", "1.5"])
def test_a_trace_with_a_bad_count_names_the_file_line_column_and_value(tmp_path: Path, value: str):
    counts = ["0"] * 1440
    counts[41] = value
    path = write(tmp_path, list(COLUMNS), ["o", "a", "f", "http", *counts])
    message = trace_error(path)
    assert str(path) in message and f"line 2, column '42': {value!r} is not a whole number" in message


def test_a_missing_trace_file_is_named(tmp_path: Path):
    message = trace_error(tmp_path / "absent.csv")
    assert "absent.csv: cannot read the trace" in message


# -- bad input ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("function", "message"), [
    ({"keep_alive_policy": "lru"}, "keep_alive_policy"),
    ({"keep_alive_policy": "hybrid", "hybrid": {"head": 0.99, "tail": 0.5}}, "hybrid: head: 0.99 must be below tail"),
    ({"hybrid": {"margin": -0.1}}, "hybrid.margin"),
    ({"hybrid": {"min_samples": 0}}, "hybrid.min_samples"),
])
def test_bad_policy_settings_name_the_field(function: dict[str, object], message: str):
    data = {"model": "faas", "functions": {"f": {"workload": {"rate": 1}, "service": 0.1, **function}}}
    with pytest.raises(ScenarioError, match=re.escape(message)):
        load_scenario(data)


def test_a_bad_template_names_the_part_and_field():
    with pytest.raises(ScenarioError, match=r"azure\.template\.concurrency: .*greater than or equal to 1 \(got 0\)"):
        load_scenario({"model": "faas", "azure": {"count": 3, "template": {"concurrency": 0}}})


def test_no_function_at_all_is_refused():
    with pytest.raises(ScenarioError, match="give at least one function"):
        load_scenario({"model": "faas"})


def test_the_keepalive_policies_scenario_runs_small_under_both_policies():
    small = {"duration": "12h", "azure.count": 30, "replications": 1}
    hybrid = run_replication(load_scenario("faas-keepalive-policies", small))
    fixed = run_replication(load_scenario("faas-keepalive-policies", {**small,
                                          "azure.template.keep_alive_policy": "fixed"}))
    # the same functions and invocations under both policies (named streams)
    assert hybrid.value("requests.completed", "count") == fixed.value("requests.completed", "count") > 0
    assert fixed.value("instances.prewarmed", "count") == 0
    assert hybrid.value("functions.cold_pct", "count") == fixed.value("functions.cold_pct", "count") > 5


def test_a_shorter_keep_alive_after_a_longer_one_expires_on_time():
    class Shrinking:
        learns = False

        def __init__(self) -> None:
            self.decisions = [Windows(0.0, 1000.0), Windows(0.0, 10.0)]

        def observe(self, idle_s: float) -> None:
            pass

        def windows(self) -> Windows:
            return self.decisions.pop(0) if len(self.decisions) > 1 else self.decisions[0]

    # requests at 0 and 100 s: idle after the first for 1000 s (the timer due at 1001 s), after the second for 10 s
    data = {"model": "faas", "duration": 2000, "warmup": 0, "functions": {"f": {
        "workload": {"replay": {"dist": "empirical", "values": [0.0, 100.0]}}, "service": 1.0,
        "cold_start": NO_START}}}
    config = load_scenario(data)
    env = Environment(seed=1, scenario=config)
    model = FaasModel(env, config)
    model.pools["f"].policy = Shrinking()
    model.run()
    # one instance, loaded from 0 to 111 s (its second idle period ends at 101 + 10 s), not until 1001 s
    assert env.metrics.gauges["instances.count"].mean() * 2000 == pytest.approx(111.0)
