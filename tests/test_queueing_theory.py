"""The queueing stations held to the closed forms of models/queueing/formulas.py.

Method, for every check below:

* R = 30 independent replications (``run_replications``), each of ``n``
  requests of which the first 10 % are the warm-up. The warm-up spans about
  6 relaxation times of the queue or more (M/M/1 at rho = 0.9 relaxes in about
  1 / (mu (1 - sqrt rho))^2 = 380 s, i.e. 340 requests; its warm-up is 3 000),
  so the bias of starting empty is negligible next to the interval.
* The replication means are i.i.d., so their Student-t interval at 99.9 % is
  valid (Law, *Simulation Modeling and Analysis*, 5th ed., §9.4.1). A check
  passes when the closed form lies inside the interval: for a correct model a
  false failure has probability 1e-3 per check, and the seeds are fixed, so
  the outcome is the same on every run. Every scenario has its own seed (a
  CRC-32 of its fields): scenarios that differ only by their rates would
  otherwise share their exponential draws, and their errors, check to check.
* So that a check cannot pass by being vague, it also asserts that the
  interval is narrow: its half-width below a bound set about 1.5 times above
  the half-widths measured, over three seeds, when the test was written. At
  rho = 0.9 the bounds are looser in relative terms but not in power: there
  d ln E[T] / d ln rho = rho / (1 - rho) = 9 for M/M/1, so a 17 % interval
  on E[T] resolves a 2 % error in an arrival or service rate, finer than the
  3-4 % intervals at rho = 0.5 do (d ln E[T] / d ln rho = 1).
* Quantiles come from the histograms, which report the order statistic within
  relative error a = 0.5 % (``sim.stats.RELATIVE_ACCURACY``); the interval on
  a quantile is stretched by exactly that factor, [low / (1 + a), high / (1 - a)].

The sizes were chosen for a few seconds per scenario on a 2-core machine; the
rho = 0.9 scenarios, which need the most requests, are marked ``slow``.
"""

from __future__ import annotations

import json
import math
import zlib

import networkx as nx
import numpy as np
import pytest

from models.queueing import formulas
from sim.run import Estimate, Replications, run_replications, t_interval
from sim.scenario import load_scenario
from sim.stats import RELATIVE_ACCURACY

CONFIDENCE = 0.999
REPLICATIONS = 30

_RUNS: dict[str, Replications] = {}


def replicate(source: str | dict, overrides: dict | None = None) -> Replications:
    """30 replications of a scenario, seeded by its own description and kept
    for the module, so that the checks on one scenario share its runs."""
    overrides = dict(overrides or {})
    key = json.dumps([source, overrides], sort_keys=True)
    if key not in _RUNS:
        overrides.setdefault("seed", zlib.crc32(key.encode()))
        scenario = load_scenario(source, overrides)
        _RUNS[key] = run_replications(scenario, REPLICATIONS, confidence=CONFIDENCE)
    return _RUNS[key]


def station(**fields: object) -> Replications:
    return replicate({"model": "queueing.station", "warmup": 0.1, **fields})


def check(estimate: Estimate, theory: float, max_relative_half_width: float, slack: float = 0.0) -> None:
    """``theory`` inside the interval (stretched by the relative ``slack`` of a
    histogram quantile), and the interval narrower than the bound."""
    low, high = estimate.low / (1 + slack), estimate.high / (1 - slack)
    relative = estimate.half_width / theory
    print(
        f"CHECK {estimate.metric}.{estimate.statistic}: {estimate.mean:.6g} vs {theory:.6g}, "
        f"error {100 * (estimate.mean / theory - 1):+.2f} %, "
        f"half-width {100 * relative:.2f} % (bound {100 * max_relative_half_width:.1f} %)"
    )
    assert low <= theory <= high, (
        f"{estimate.metric} {estimate.statistic}: theory {theory:.6g} outside the {CONFIDENCE:.1%} "
        f"interval [{low:.6g}, {high:.6g}] of {estimate.n} replications"
    )
    assert relative < max_relative_half_width, (
        f"{estimate.metric} {estimate.statistic}: half-width {relative:.2%} of the theory, "
        f"more than {max_relative_half_width:.1%}: too few samples for the check to have power"
    )


def per_replication(reps: Replications, quantity) -> Estimate:
    """The Student-t interval of a quantity computed from each replication."""
    mean, half_width, n = t_interval([quantity(r) for r in reps.results], CONFIDENCE)
    return Estimate("derived", "per-replication", mean, half_width, n, CONFIDENCE)


# --- M/M/1 and M/M/c, FCFS ---

# load -> requests per replication, and the bounds on the half-widths
MM1 = {
    0.5: {"n": 10_000, "sojourn": 0.04, "wait": 0.07, "p50": 0.04, "p90": 0.045, "p99": 0.08, "L": 0.045, "X": 0.012},
    0.9: {"n": 30_000, "sojourn": 0.17, "wait": 0.19, "p50": 0.13, "p90": 0.2, "p99": 0.3, "L": 0.17, "X": 0.008},
}


def mm1(rho: float) -> Replications:
    return station(arrival_rate=rho, service_rate=1.0, requests=MM1[rho]["n"])


@pytest.mark.parametrize("rho", [0.5, pytest.param(0.9, marks=pytest.mark.slow)])
def test_mm1_mean_sojourn_and_wait(rho: float) -> None:
    """M/M/1, mu = 1: E[T] = 1 / (mu - lambda), E[W] = rho / (mu - lambda);
    the server is busy a fraction rho of the time."""
    reps, bounds = mm1(rho), MM1[rho]
    check(reps.get("requests.sojourn_s", "mean"), formulas.mmc_mean_sojourn(rho, 1.0, 1), bounds["sojourn"])
    check(reps.get("station.wait_s", "mean"), formulas.mmc_mean_wait(rho, 1.0, 1), bounds["wait"])
    check(reps.get("station.utilisation", "mean"), rho, 0.02)


@pytest.mark.parametrize("rho", [0.5, pytest.param(0.9, marks=pytest.mark.slow)])
@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
def test_mm1_sojourn_quantiles(rho: float, q: float) -> None:
    """The M/M/1 FCFS sojourn time is exponential with rate mu - lambda, so its
    q-quantile is -ln(1 - q) / (mu - lambda). A replication's p99 at rho = 0.9
    swings with its longest busy periods, hence the wide bound there; even so
    it resolves a 3 % error in the load (d ln t_q / d ln rho = 9)."""
    reps = mm1(rho)
    statistic = f"p{100 * q:g}"
    check(
        reps.get("requests.sojourn_s", statistic),
        formulas.mm1_sojourn_quantile(rho, 1.0, q),
        MM1[rho][statistic],
        slack=RELATIVE_ACCURACY,
    )


@pytest.mark.parametrize("rho", [0.5, pytest.param(0.9, marks=pytest.mark.slow)])
def test_littles_law(rho: float) -> None:
    """L = X T on every replication of the M/M/1 runs.

    In the measured window, the area under the number in system equals the sum
    of the measured sojourns plus the time the warm-up requests still present
    at the reset spend after it; the run ends empty, so nothing else differs.
    The reset comes at an arrival, which by PASTA sees the stationary number
    n; in FCFS M/M/1 the k-th of them leaves after k exponential services, so
    the residue is E[n(n+1)] / (2 mu) = (E[n^2] + E[n]) / 2: 2 at rho = 0.5
    and 90 at rho = 0.9, against areas L * 9 000 / lambda = 18 000 and
    270 000, i.e. 0.011 % and 0.033 %. So 0 <= (L - X T) / L, and 0.5 % bounds
    it with a margin of 15 times the expected residue (heavy-tailed, as n is).
    An error in the time weighting, the reset or the time base of the rate
    shows up at the scale of the warm-up, 10 %.
    """
    reps = mm1(rho)
    for result in reps.results:
        in_system = result.value("requests.in_system", "mean")
        throughput = result.value("requests.completed", "rate")
        sojourn = result.value("requests.sojourn_s", "mean")
        gap = (in_system - throughput * sojourn) / in_system
        assert -1e-9 <= gap < 0.005, f"replication {result.replication}: L = {in_system}, X T = {throughput * sojourn}"
    # and L agrees with lambda E[T] from theory
    check(reps.get("requests.in_system", "mean"), rho * formulas.mmc_mean_sojourn(rho, 1.0, 1), MM1[rho]["L"])
    check(reps.get("requests.completed", "rate"), rho, MM1[rho]["X"])


# c = 4 servers: load -> requests per replication, and the bounds on the half-widths
MMC = {0.5: {"n": 8_000, "wait": 0.17, "sojourn": 0.025}, 0.9: {"n": 20_000, "wait": 0.25, "sojourn": 0.17}}


@pytest.mark.parametrize("rho", [0.5, pytest.param(0.9, marks=pytest.mark.slow)])
def test_mmc_erlang_c(rho: float) -> None:
    """M/M/4, mu = 1, lambda = 4 rho: E[W] = C(4, a) / (4 mu - lambda) (Erlang C);
    busy servers / servers = rho."""
    lam, bounds = 4 * rho, MMC[rho]
    reps = station(arrival_rate=lam, service_rate=1.0, servers=4, requests=bounds["n"])
    check(reps.get("station.wait_s", "mean"), formulas.mmc_mean_wait(lam, 1.0, 4), bounds["wait"])
    check(reps.get("requests.sojourn_s", "mean"), formulas.mmc_mean_sojourn(lam, 1.0, 4), bounds["sojourn"])
    check(reps.get("station.utilisation", "mean"), rho, 0.02)


# --- M/G/1: Pollaczek-Khinchine ---


@pytest.mark.parametrize(
    ("service", "rho", "n", "wait_bound", "sojourn_bound"),
    [
        ({"dist": "const", "value": 1.0}, 0.5, 6_000, 0.06, 0.02),
        ({"dist": "gamma", "mean": 1.0, "cv": 1.5}, 0.5, 6_000, 0.12, 0.08),
        ({"dist": "lognormal", "mean": 1.0, "cv": 0.5}, 0.7, 6_000, 0.11, 0.065),
        pytest.param({"dist": "const", "value": 1.0}, 0.9, 20_000, 0.11, 0.09, marks=pytest.mark.slow),
        pytest.param({"dist": "lognormal", "mean": 1.0, "cv": 0.5}, 0.9, 20_000, 0.14, 0.12, marks=pytest.mark.slow),
    ],
    ids=[
        "M/D/1-rho0.5",
        "M/G/1-gamma-cv1.5-rho0.5",
        "M/G/1-lognormal-cv0.5-rho0.7",
        "M/D/1-rho0.9",
        "M/G/1-lognormal-cv0.5-rho0.9",
    ],
)
def test_mg1_pollaczek_khinchine(service: dict, rho: float, n: int, wait_bound: float, sojourn_bound: float) -> None:
    """M/G/1: E[W] = lambda E[S^2] / (2 (1 - rho)), with E[S^2] from the
    distribution object (its variance + mean^2); E[T] = E[W] + E[S]. With
    E[S^2] = 1, 3.25 and 1.25, the waits are 0.5, 1.625 and 0.625 times those
    of M/M/1 at the same load, so a model that ignored the shape would fail."""
    reps = station(arrival_rate=rho, service=service, requests=n)
    dist = load_scenario({"model": "queueing.station", "arrival_rate": rho, "service": service}).service
    assert dist.mean == pytest.approx(1.0)
    check(reps.get("station.wait_s", "mean"), formulas.mg1_mean_wait(rho, dist.mean, dist.second_moment), wait_bound)
    check(
        reps.get("requests.sojourn_s", "mean"),
        formulas.mg1_mean_sojourn(rho, dist.mean, dist.second_moment),
        sojourn_bound,
    )


# --- processor sharing: E[T] = E[S] / (1 - rho), whatever the service distribution ---


@pytest.mark.parametrize(
    ("service", "rho", "n", "bound"),
    [
        ({"dist": "exp", "mean": 1.0}, 0.5, 6_000, 0.05),
        ({"dist": "lognormal", "mean": 1.0, "cv": 1.5}, 0.5, 6_000, 0.06),
        ({"dist": "const", "value": 1.0}, 0.5, 6_000, 0.025),
        pytest.param({"dist": "exp", "mean": 1.0}, 0.9, 20_000, 0.19, marks=pytest.mark.slow),
    ],
    ids=["M/M/1-PS-rho0.5", "M/G/1-PS-lognormal-cv1.5-rho0.5", "M/D/1-PS-rho0.5", "M/M/1-PS-rho0.9"],
)
def test_processor_sharing_mean_sojourn(service: dict, rho: float, n: int, bound: float) -> None:
    """M/G/1-PS: E[T] = E[S] / (1 - rho) for any service distribution (Kleinrock
    vol. 2 §4.4). Under FCFS the lognormal case would give 2.6 and the
    constant one 1.5 at rho = 0.5: PS must give 2 for all three."""
    reps = station(arrival_rate=rho, service=service, discipline="ps", requests=n)
    check(reps.get("requests.sojourn_s", "mean"), formulas.mg1_ps_mean_sojourn(rho, 1.0), bound)


# --- finite capacity: M/M/c/K ---


def test_mmck_blocking_and_admitted_sojourn() -> None:
    """M/M/2/5 at offered load 2 Erlangs (lambda = 2, mu = 1): P(block) = p_5 of
    the birth-death chain, 0.18 (by PASTA), and admitted jobs spend
    L / (lambda (1 - p_5)) on average (Little on the admitted stream)."""
    n = 6_000
    reps = station(arrival_rate=2.0, service_rate=1.0, servers=2, capacity=5, requests=n)
    measured = n - int(0.1 * n)
    blocked = per_replication(reps, lambda r: r.value("requests.dropped", "count") / measured)
    check(blocked, formulas.mmck_blocking(2.0, 1.0, 2, 5), 0.06)
    check(reps.get("requests.sojourn_s", "mean"), formulas.mmck_mean_sojourn(2.0, 1.0, 2, 5), 0.028)
    for result in reps.results:
        completed = result.value("requests.completed", "count")
        assert completed + result.value("requests.dropped", "count") == measured


# --- open Jackson network ---


# bottleneck load -> requests per replication and the bounds on the half-widths
# (end to end, per-station sojourn, utilisation), about 1.5 times those measured
JACKSON = {
    0.5: {"n": 3_000, "e2e": 0.027, "web": 0.05, "app": 0.03, "db": 0.04, "utilisation": 0.03},
    0.9: {"n": 30_000, "e2e": 0.09, "web": 0.12, "app": 0.1, "db": 0.03, "utilisation": 0.015},
}


@pytest.mark.parametrize("rho", [0.5, pytest.param(0.9, marks=pytest.mark.slow)])
def test_jackson_tandem_network(rho: float) -> None:
    """The built-in ``tandem`` at 100 rho requests/s (web: M/M/2 at 50/s a
    server, app: 4-server PS with exponential service at 25/s a server, db:
    M/M/1 at 125/s; 70 % of app visits go on to db): web and app run at load
    rho, db at 0.56 rho. The app station has the birth-death chain of an
    M/M/4, so Jackson's product form applies (BCMP); end-to-end
    E[T] = sum of L_i / lambda. Each station's mean sojourn and utilisation
    are checked against M/M/c at its traffic-equation rate too."""
    bounds = JACKSON[rho]
    overrides = {"requests": bounds["n"], "arrival_rate": f"{100 * rho:g}/s"}
    scenario = load_scenario("tandem", overrides)
    reps = replicate("tandem", overrides)
    graph = scenario.routing()
    mu = {name: 1 / s.service.mean for name, s in scenario.stations.items()}
    servers = {name: s.servers for name, s in scenario.stations.items()}
    external = {"web": 100 * rho}
    check(
        reps.get("requests.sojourn_s", "mean"),
        formulas.jackson_mean_sojourn(graph, external, mu, servers),
        bounds["e2e"],
    )
    rates = formulas.jackson_arrival_rates(graph, external)
    assert rates == pytest.approx({"web": 100 * rho, "app": 100 * rho, "db": 70 * rho})
    for name in ("web", "app", "db"):
        check(
            reps.get(f"{name}.sojourn_s", "mean"),
            formulas.mmc_mean_sojourn(rates[name], mu[name], servers[name]),
            bounds[name],
        )
        check(
            reps.get(f"{name}.utilisation", "mean"),
            rates[name] / (mu[name] * servers[name]),
            bounds["utilisation"],
        )


# --- the closed forms themselves, against independent computations ---


def test_erlang_c_against_its_textbook_sum() -> None:
    """C(c, a) = (a^c / c!) / (1 - rho) / (sum_{k<c} a^k / k! + (a^c / c!) / (1 - rho))."""
    for servers, a in [(1, 0.5), (2, 1.5), (4, 3.6), (10, 8.0), (50, 45.0)]:
        rho = a / servers
        top = a**servers / math.factorial(servers) / (1 - rho)
        expected = top / (sum(a**k / math.factorial(k) for k in range(servers)) + top)
        assert formulas.erlang_c(servers, a) == pytest.approx(expected, rel=1e-10)
    assert formulas.erlang_c(1, 0.7) == pytest.approx(0.7)  # M/M/1: P(wait) = rho


def test_closed_forms_agree_where_they_overlap() -> None:
    lam, mu = 0.8, 1.0
    assert formulas.mmc_mean_sojourn(lam, mu, 1) == pytest.approx(1 / (mu - lam))
    assert formulas.mg1_mean_sojourn(lam, 1.0, 2.0) == pytest.approx(formulas.mmc_mean_sojourn(lam, mu, 1))
    assert formulas.mg1_ps_mean_sojourn(lam, 1.0) == pytest.approx(formulas.mmc_mean_sojourn(lam, mu, 1))
    assert formulas.md1_mean_wait(lam, 1.0) == pytest.approx(formulas.mmc_mean_wait(lam, mu, 1) / 2)
    # M/M/c/K tends to M/M/c as K grows
    assert formulas.mmck_mean_sojourn(3.0, 1.0, 4, 400) == pytest.approx(formulas.mmc_mean_sojourn(3.0, 1.0, 4))
    assert formulas.mmck_blocking(3.0, 1.0, 4, 400) < 1e-12
    # M/M/1/1 is Erlang's loss formula: a / (1 + a)
    assert formulas.mmck_blocking(2.0, 1.0, 1, 1) == pytest.approx(2 / 3)
    # M/M/c wait quantile: P(W > t) = C exp(-(c mu - lambda) t)
    c_wait = formulas.erlang_c(4, 3.6)
    t = formulas.mmc_wait_quantile(3.6, 1.0, 4, 0.99)
    assert c_wait * math.exp(-(4 - 3.6) * t) == pytest.approx(0.01)
    assert formulas.mmc_wait_quantile(0.5, 1.0, 1, 0.3) == 0.0  # half the arrivals find it empty
    # a single station network is that station
    graph = nx.DiGraph()
    graph.add_node("s")
    assert formulas.jackson_mean_sojourn(graph, {"s": 0.5}, {"s": 1.0}, {"s": 1}) == pytest.approx(2.0)
    # feedback with probability p: visits 1 / (1 - p)
    graph.add_edge("s", "s", p=0.5)
    assert formulas.jackson_arrival_rates(graph, {"s": 0.2})["s"] == pytest.approx(0.4)
    with pytest.raises(ValueError, match="rho"):
        formulas.mg1_mean_wait(1.0, 1.0, 2.0)


def test_mmck_distribution_against_a_linear_solve() -> None:
    """p_n of M/M/2/5 from the generator matrix Q of the birth-death chain (p Q = 0)."""
    lam, mu, c, k = 2.0, 1.0, 2, 5
    q = np.zeros((k + 1, k + 1))
    for n in range(k + 1):
        if n < k:
            q[n, n + 1] = lam
        if n > 0:
            q[n, n - 1] = min(n, c) * mu
        q[n, n] = -q[n].sum()
    a = np.vstack([q.T, np.ones(k + 1)])
    b = np.zeros(k + 2)
    b[-1] = 1
    p = np.linalg.lstsq(a, b, rcond=None)[0]
    assert formulas.mmck_distribution(lam, mu, c, k) == pytest.approx(p, rel=1e-9)
