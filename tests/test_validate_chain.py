"""The architecture validation campaign (calibration/validation/chain.py): its points, the simulated
counterpart of a chain experiment, the data-plane ratios, and a quick real run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from campaign_verdicts import (
    campaign_report, check_ratio, check_statistic, ratio_cases, shipped_points, statistic_cases,
)

from calibration.validation import chain
from calibration.validation.compare import Comparison, Experiment, Simulated, one_factor_pairs, scenario_for
from calibration.validation.experiments import Settings
from cnsim.cli import main
from sim.params import param_binned, param_table, param_value
from sim.scenario import load_scenario


def _chain_config(dataplane: str, fraction: float = 0.6, rate: float = 200.0) -> dict:
    settings = chain.chain_settings()
    return {"name": f"chain3-{dataplane}-{round(fraction * 100)}pct", "runtime": "go", "cores": 1,
            "rate_fraction": fraction, "rate_rps": rate, "capacity": {"throughput_rps": rate / fraction},
            "settings": {"cpu_s": settings.cpu_s, "alloc_bytes": settings.alloc_bytes,
                         "alloc_chunk_bytes": settings.alloc_chunk_bytes, "live_heap_mib": settings.live_heap_mib,
                         "gogc": settings.gogc, "warmup_s": settings.warmup_s, "duration_s": settings.duration_s},
            "chain": {"dataplane": dataplane, "services": 3}}


def _experiment(config: dict) -> Experiment:
    summary = {"n": 2000, "mean_s": 1e-3, "p50_s": 1e-3, "p99_s": 3e-3, "throughput_rps": config["rate_rps"]}
    return Experiment(config["name"], Path(config["name"]), config, summary)


def test_the_chain_points_are_the_three_data_planes():
    points = chain.chain_points()
    assert [p.name for p in points] == ["chain3-none", "chain3-envoy", "chain3-goproxy"]
    assert points[1].experiment_name(0.85) == "chain3-envoy-85pct"
    assert points[2].described() == {"chain": {"dataplane": "goproxy", "services": 3}}
    assert "goproxy" in points[0].programs and points[0].settings(Settings()) == Settings()


def test_a_chain_experiment_is_simulated_as_three_go_pods_sharing_one_core():
    data, fixed = scenario_for(_experiment(_chain_config("envoy", rate=200.0)), 5000, 2)
    scenario = load_scenario(data)  # a valid arch scenario
    assert fixed == 0.0 and data["model"] == "arch" and data["requests"] == 5000
    assert data["nodes"] == {"count": 1, "cores": 1, "scheduler": "linux"} and data["workload"]["entry"] == "s1"
    assert data["mesh"] == {"dataplane": "sidecar", "proxy": {"kind": "envoy", "workers": 1}}
    assert data["warmup"] == pytest.approx(5.0 / 16.0)
    assert list(scenario.call_graph().edges) == [("s1", "s2"), ("s2", "s3")]
    runtime = data["services"]["s1"]["runtime"]
    assert runtime["kind"] == "go" and runtime["fidelity"] == "detailed" and runtime["gomaxprocs"] == 1
    assert runtime["gc"]["live_heap"] == pytest.approx(16 * 2**20 * 72 / 64)  # the nodes and their index
    assert runtime["gc"]["alloc_object"] == 1024 and runtime["gc"]["alloc_kind"] == "buffers"
    burn = 0.3e-3 * param_binned(chain.STRETCH_PARAM).of(0.3e-3).mean
    server = param_table(chain.SERVER_CPU_PARAM).at(200.0)
    client = param_value(chain.CLIENT_CPU_PARAM)
    assert data["services"]["s3"]["handler"] == [{"cpu": pytest.approx(server + burn), "alloc": 65536.0}]
    first = data["services"]["s1"]["handler"]
    assert first[1] == {"call": {"service": "s2"}} and first[0]["alloc"] == 65536.0
    # a calling service's CPU: its server's at the chain's rate, its burn and its client's
    assert first[0]["cpu"] + first[2]["cpu"] == pytest.approx(server + burn + client)
    none, _ = scenario_for(_experiment(_chain_config("none")), 5000, 2)
    assert none["mesh"] == {"dataplane": "none"}


def _comparison(dataplane: str, fraction: float = 0.6) -> Comparison:
    sim = Simulated(mean_s=1e-3, p50_s=1e-3, p99_s=3e-3, throughput_rps=1.0, fixed_delay_s=0.0, requests=1,
                    replications=1, scenario={})
    return Comparison(_experiment(_chain_config(dataplane, fraction)), [], sim)


def test_the_data_planes_are_compared_with_each_other_at_the_same_load():
    comparisons = [_comparison(d) for d in ("goproxy", "none", "envoy")] + [_comparison("none", 0.3)]
    pairs = {(a.experiment.name, b.experiment.name, factor) for a, b, factor in one_factor_pairs(comparisons)}
    assert pairs == {("chain3-none-60pct", "chain3-envoy-60pct", "dataplane"),
                     ("chain3-none-60pct", "chain3-goproxy-60pct", "dataplane"),
                     ("chain3-envoy-60pct", "chain3-goproxy-60pct", "dataplane")}


@pytest.mark.harness
def test_a_quick_chain_run_writes_every_process_of_the_chain(tmp_path):
    """`cnsim validate run --chain --quick`: a repetition of each data plane, the requests through every
    service and proxy, and each process's CPU."""
    out = io.StringIO()
    assert main(["validate", "run", "--chain", "--quick", "--out", str(tmp_path)], out) == 0
    assert out.getvalue().startswith("3 repetitions written")
    for point in chain.chain_points():
        folder = tmp_path / point.experiment_name(0.6) / "rep1"
        config = json.loads((folder / "config.json").read_text())
        summary = json.loads((folder / "summary.json").read_text())
        assert config["chain"] == {"dataplane": point.dataplane, "services": 3}
        assert summary["errors"] == 0 and summary["n"] > 0
        processes = summary["server_report"]["processes"]
        proxies = [] if point.dataplane == "none" else ["p1", "p2", "p3"]
        assert sorted(processes) == sorted(["s1", "s2", "s3", *proxies])
        served = [processes[name]["report"]["requests"] for name in ("s1", "s2", "s3")]
        assert served[0] == served[1] == served[2] > 0  # each request went down the whole chain
        if point.dataplane == "goproxy":  # the first two proxies carry each request in and out
            forwarded = [processes[name]["report"]["requests"] for name in proxies]
            assert forwarded == [2 * served[0], 2 * served[0], served[0]]
        assert all(processes[name]["user_s"] + processes[name]["system_s"] > 0 for name in processes)


PROXY_BUSY_CORE = (
    "Envoy at 85 %: the model's chain is past its capacity (mean 76 ms against 20-48 ms real) because the "
    "proxies cost it about 20 % more CPU than the real ones spent: 1.21 ms of Envoy CPU a request "
    "(proxy.envoy.cpu_s_vs_rate at each sidecar's rate) against 0.90-1.09 ms measured in the chain's runs "
    "(processes_window); the table was measured beside a server on a mostly idle CPU, where each request "
    "wakes the proxy alone, and the chain's CPU is 85 % busy; the Go proxy's table is 21 % high there too "
    "(0.99 against 0.75-0.95 ms), hidden by the spread of its runs"
)
TAIL_AT_60 = (
    "at 60 % the simulated p99 is below the real mean p99 on every data plane (none 25.4 against 32.5-50.1 ms, "
    "Go proxy 48.3 against 27.1-80.7, Envoy 51.0 against 68.0-100.2: under the widened range); not yet "
    "separated"
)
PACER_EDGE = (
    "no mesh at 60 %: at the edge of the widened range since the pacer follows endCycle and starts from its "
    "start-up history (2026-12-06, evening): with this test's three replications p99 25.4 ms against at least "
    "26.0 (23.3 before the mark costs by GOMAXPROCS, 2026-12-07; 26.5 with 12 replications then, within; 27.8 "
    "before the pacer change): where a few GC cycles of six Go processes fall in short runs, not a change of "
    "level"
)
GOPROXY_LOW_LOAD = (
    "Go proxy at 30 %: the simulated p99 rose from 17.1 to 19.9 ms (12 replications; 20.8 with this test's "
    "three, 19.1 with the mark costs by GOMAXPROCS) against 12.2-15.6 ms real when the pacer took endCycle's "
    "cons/mark (background workers counted at their 25 %, the maximum over five cycles): the chain's six Go "
    "processes (three services, three proxies) "
    "each collect, the real GC takes 0.9 % of the CPU; not yet separated from the grid's low-load assists "
    "(tests/test_validate_grid_verdicts.py, LOW_LOAD_ASSISTS)"
)
KNOWN_MISSES: dict[tuple[str, str], str] = {
    ("chain3-envoy-60pct", "p99"): TAIL_AT_60,
    ("chain3-none-60pct", "p99"): PACER_EDGE,
    ("chain3-goproxy-30pct", "p99"): GOPROXY_LOW_LOAD,
    ("chain3-envoy-85pct", "mean"): PROXY_BUSY_CORE,
    ("chain3-envoy-85pct", "p50"): PROXY_BUSY_CORE,
}
"""(point, statistic) -> why the simulator misses it (measured on the shipped chain campaign)."""
KNOWN_RATIO_MISSES: dict[tuple[str, str, str], str] = {
}
"""(point a, point b, statistic) -> why the simulated ratio b / a misses the real one."""


@pytest.fixture(scope="module")
def report() -> dict:
    return campaign_report(chain.CHAIN_ROOT, 3, 2)


def test_the_chain_campaign_is_shipped_with_three_repetitions_of_each_point():
    points = shipped_points(chain.CHAIN_ROOT)
    assert points == sorted(p.experiment_name(f) for p in chain.chain_points() for f in chain.CHAIN_FRACTIONS)
    for point in points:
        assert len(list((chain.CHAIN_ROOT / point).glob("rep*/summary.json"))) == chain.REPETITIONS, point


@pytest.mark.slow
@pytest.mark.parametrize("point, statistic", statistic_cases(chain.CHAIN_ROOT, KNOWN_MISSES))
def test_simulated_chain_statistic_within_the_real_spread(report, point, statistic):
    check_statistic(report, point, statistic)


@pytest.mark.slow
@pytest.mark.parametrize("a, b, statistic", ratio_cases(chain.CHAIN_ROOT, KNOWN_RATIO_MISSES))
def test_data_plane_ratio_within_the_real_spread(report, a, b, statistic):
    """Envoy over none, Go proxy over none and Go proxy over Envoy, mean and p99, at each load."""
    check_ratio(report, a, b, statistic)
