"""Micro-stories of the stations: deterministic arrivals and service times,
schedules computed by hand, every departure checked to the instant."""

from __future__ import annotations

import heapq
from typing import Any

import networkx as nx
import numpy as np
import pytest

from models.queueing.builders import StationModel
from models.queueing.network import Network
from models.queueing.stations import FCFSStation, Job, PSStation
from sim.core import Environment
from sim.dists import Constant, Distribution
from sim.rng import Streams
from sim.run import run_replication
from sim.scenario import load_scenario


class Sequence(Distribution):
    """Test double: the given values in order (then again), whatever the generator."""

    name = "sequence"

    def __init__(self, values: list[float]) -> None:
        self.values = [float(v) for v in values]
        self._next = 0

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def variance(self) -> float:
        return float(np.var(self.values))

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        out = [self.values[(self._next + i) % len(self.values)] for i in range(size)]
        self._next += size
        return np.asarray(out)

    def spec(self) -> dict[str, Any]:
        return {"dist": self.name, "values": self.values}


def arrive(env: Environment, station, times: list[float], log: list):
    """Offer job i to the station at times[i]."""
    for index, at in enumerate(times):
        yield env.timeout(at - env.now)
        log.append((env.now, "arrive", index))
        station.accept(Job(index, env.now, counted=True))


def wire(station, log: list) -> None:
    station.on_departure = lambda job: log.append((station.env.now, "leave", job.id))
    station.on_drop = lambda job: log.append((station.env.now, "drop", job.id))


def leaves(log: list) -> list[tuple[float, int]]:
    return [(t, job) for t, what, job in log if what == "leave"]


def metric(env: Environment, name: str) -> dict[str, float]:
    return {stat: value for metric_name, stat, value in env.metrics.rows() if metric_name == name}


def test_fcfs_two_servers(env: Environment, log: list) -> None:
    """Service 3 s, arrivals at 0, 1, 2, 3, two servers.

    job 0 served [0, 3], job 1 [1, 4]; job 2 waits for job 0 and is served
    [3, 6]; job 3 waits for job 1 and is served [4, 7]. Waits 0, 0, 1, 1.
    Busy servers: 1 on [0,1), 2 on [1,6), 1 on [6,7): utilisation 12 / (2*7).
    Jobs present: 1, 2, 3, 3, 2, 2, 1 over the unit intervals: mean 14 / 7.
    """
    station = FCFSStation(env, "st", Constant(3.0), servers=2)
    wire(station, log)
    env.process(arrive(env, station, [0, 1, 2, 3], log))
    env.run()
    assert leaves(log) == [(3, 0), (4, 1), (6, 2), (7, 3)]
    assert metric(env, "st.wait_s")["mean"] == 0.5
    assert metric(env, "st.wait_s")["max"] == 1.0
    assert metric(env, "st.sojourn_s")["mean"] == 3.5
    assert metric(env, "st.utilisation")["mean"] == pytest.approx(12 / 14)
    assert metric(env, "st.in_system")["mean"] == pytest.approx(2.0)
    assert metric(env, "st.in_system")["max"] == 3
    assert metric(env, "st.completed")["count"] == 4


def test_fcfs_serves_in_arrival_order_whatever_the_sizes(env: Environment, log: list) -> None:
    """One server; works 5, 1, 1 arrive at 0, 1, 2: the short jobs wait behind
    the long one (FCFS is not shortest-first): departures at 5, 6, 7."""
    station = FCFSStation(env, "st", Sequence([5, 1, 1]), servers=1)
    wire(station, log)
    env.process(arrive(env, station, [0, 1, 2], log))
    env.run()
    assert leaves(log) == [(5, 0), (6, 1), (7, 2)]
    assert metric(env, "st.wait_s")["mean"] == pytest.approx((0 + 4 + 4) / 3)


def test_ps_two_jobs_share_one_server(env: Environment, log: list) -> None:
    """Work 2 s each, arrivals at 0 and 1, one server.

    [0, 1): job 0 alone at rate 1, 1 s of work left. From 1 both run at rate
    1/2: job 0 finishes its last second at 3, when job 1 has done 1 of its 2 s;
    alone again, job 1 finishes at 4. Sojourns 3 and 3.
    """
    station = PSStation(env, "ps", Constant(2.0), servers=1)
    wire(station, log)
    env.process(arrive(env, station, [0, 1], log))
    env.run()
    assert leaves(log) == [(3, 0), (4, 1)]
    assert metric(env, "ps.sojourn_s")["mean"] == 3.0
    assert metric(env, "ps.wait_s")["max"] == 0.0  # no one waits under PS
    assert metric(env, "ps.utilisation")["mean"] == pytest.approx(1.0)


def test_ps_short_job_overtakes_a_long_one(env: Environment, log: list) -> None:
    """Works 2 and 0.5 arriving at 0 and 1, one server: the short job gets 1/2
    from 1 and leaves at 2; the long one has 0.5 left at 2 and leaves at 2.5."""
    station = PSStation(env, "ps", Sequence([2.0, 0.5]), servers=1)
    wire(station, log)
    env.process(arrive(env, station, [0, 1], log))
    env.run()
    assert leaves(log) == [(2, 1), (2.5, 0)]


def test_ps_with_two_servers_shares_only_beyond_two_jobs(env: Environment, log: list) -> None:
    """Work 3 s each, arrivals at 0, 0, 1, two servers.

    [0, 1): two jobs, each at rate 1 (a server each), 2 s left. From 1 three
    jobs share two servers at 2/3: jobs 0 and 1 finish at 1 + 2 / (2/3) = 4,
    when job 2 has done 2 of its 3 s; then alone at rate 1 it ends at 5.
    Busy servers: 2 on [0, 4), 1 on [4, 5): utilisation (8 + 1) / (2 * 5).
    """
    station = PSStation(env, "ps", Constant(3.0), servers=2)
    wire(station, log)
    env.process(arrive(env, station, [0, 0, 1], log))
    env.run()
    assert [t for t, _ in leaves(log)] == pytest.approx([4, 4, 5])
    assert {job for _, job in leaves(log)[:2]} == {0, 1}
    assert metric(env, "ps.utilisation")["mean"] == pytest.approx(9 / 10)


def test_finite_fcfs_drops_exactly_the_arrival_that_finds_it_full(env: Environment, log: list) -> None:
    """Capacity 2 (one in service, one waiting), service 2 s, arrivals at 0,
    0.5, 1, 2.5. Job 2 arrives at 1 to find jobs 0 and 1 present: dropped.
    Job 0 leaves at 2, job 1 is served [2, 4]; job 3 finds one job present at
    2.5, is admitted, served [4, 6]."""
    station = FCFSStation(env, "st", Constant(2.0), servers=1, capacity=2)
    wire(station, log)
    env.process(arrive(env, station, [0, 0.5, 1, 2.5], log))
    env.run()
    assert [(t, job) for t, what, job in log if what == "drop"] == [(1, 2)]
    assert leaves(log) == [(2, 0), (4, 1), (6, 3)]
    assert metric(env, "st.dropped")["count"] == 1
    assert metric(env, "st.completed")["count"] == 3


def test_finite_ps_drops_when_full(env: Environment, log: list) -> None:
    """PS, capacity 2, work 2 s, arrivals at 0, 0, 0.5: the third is dropped;
    the two admitted share the server and both leave at 4."""
    station = PSStation(env, "ps", Constant(2.0), servers=1, capacity=2)
    wire(station, log)
    env.process(arrive(env, station, [0, 0, 0.5], log))
    env.run()
    assert [(t, job) for t, what, job in log if what == "drop"] == [(0.5, 2)]
    assert leaves(log) == [(4, 0), (4, 1)]


def test_station_refuses_impossible_shapes(env: Environment) -> None:
    with pytest.raises(ValueError, match="st.servers"):
        FCFSStation(env, "st", Constant(1.0), servers=0)
    with pytest.raises(ValueError, match="st2.capacity"):
        PSStation(env, "st2", Constant(1.0), servers=2, capacity=1)


def test_station_model_end_to_end(env: Environment) -> None:
    """The FCFS story above through the scenario path: arrivals every 1 s from
    0, service 3 s, two servers, four requests, no warm-up."""
    scenario = load_scenario(
        {
            "model": "queueing.station",
            "arrival": {"dist": "const", "value": 1},
            "service": {"dist": "const", "value": 3},
            "servers": 2,
            "requests": 4,
            "warmup": 0,
        }
    )
    result = run_replication(scenario)
    assert result.sim_time_s == 7
    assert result.value("requests.sojourn_s", "mean") == 3.5
    assert result.value("requests.sojourn_s", "max") == 4.0
    assert result.value("station.wait_s", "mean") == 0.5
    assert result.value("requests.in_system", "mean") == pytest.approx(2.0)
    assert result.value("requests.completed", "rate") == pytest.approx(4 / 7)


def test_warm_up_story(env: Environment) -> None:
    """Same story with warm-up 0.5: requests 0 and 1 are served but not
    measured; the metrics restart when request 2 arrives at 2. Measured:
    sojourns 4 and 4; in the system on [2, 7]: 3, 3, 2, 2, 1 -> mean 11 / 5."""
    scenario = load_scenario(
        {
            "model": "queueing.station",
            "arrival": {"dist": "const", "value": 1},
            "service": {"dist": "const", "value": 3},
            "servers": 2,
            "requests": 4,
            "warmup": 0.5,
        }
    )
    model = StationModel(Environment(scenario=scenario), scenario)
    model.run()
    rows = {(m, s): v for m, s, v in model.env.metrics.rows()}
    assert rows[("requests.sojourn_s", "count")] == 2
    assert rows[("requests.sojourn_s", "mean")] == 4.0
    assert rows[("requests.in_system", "mean")] == pytest.approx(11 / 5)
    assert rows[("station.wait_s", "mean")] == 1.0
    assert rows[("requests.completed", "rate")] == pytest.approx(2 / 5)


def test_tandem_story(env: Environment, log: list) -> None:
    """Two single-server FCFS stations in series, services 2 s then 1 s,
    arrivals every 1 s from 0 (three requests).

    a serves [0,2], [2,4], [4,6]; b serves each 1 s right after: [2,3],
    [4,5], [6,7]. End-to-end sojourns 3, 4, 5.
    """
    stations = {"a": FCFSStation(env, "a", Constant(2.0)), "b": FCFSStation(env, "b", Constant(1.0))}
    routing = nx.DiGraph()
    routing.add_edge("a", "b", p=1.0)
    network = Network(env, stations, routing, {"a": 1.0}, Constant(1.0), requests=3)
    env.run(until=network.done)
    assert env.now == 7
    assert metric(env, "requests.sojourn_s")["mean"] == 4.0
    assert metric(env, "a.wait_s")["mean"] == pytest.approx(1.0)  # waits 0, 1, 2
    assert metric(env, "b.wait_s")["max"] == 0.0
    assert metric(env, "b.completed")["count"] == 3


def test_feedback_route_with_probability_one_half_leaves_eventually(env: Environment) -> None:
    """A station that sends half its jobs back to itself: the mean number of
    visits is 2 (geometric), and every job leaves (the run ends)."""
    stations = {"loop": FCFSStation(env, "loop", Constant(0.001))}
    routing = nx.DiGraph()
    routing.add_edge("loop", "loop", p=0.5)
    network = Network(env, stations, routing, {"loop": 1.0}, Constant(1.0), requests=4000)
    env.run(until=network.done)
    visits = metric(env, "loop.completed")["count"] / 4000
    # Visits are geometric with mean 2 and variance 2: 5 standard errors is 5 * sqrt(2 / 4000).
    assert abs(visits - 2) < 5 * (2 / 4000) ** 0.5
    assert metric(env, "requests.completed")["count"] == 4000


@pytest.mark.parametrize("servers", [1, 3])
def test_fcfs_station_follows_the_kiefer_wolfowitz_recursion(servers: int) -> None:
    """On the same random draws, the FCFS station gives exactly what the
    Kiefer-Wolfowitz recursion (Lindley's, for one server) gives: each job, in
    arrival order, starts at max(arrival, earliest a server is free) and takes
    the next service draw. Named streams make the draws reproducible outside
    the model; two thousand jobs, 10 % warm-up."""
    scenario = load_scenario(
        {
            "model": "queueing.station",
            "arrival_rate": 0.8 * servers,
            "service": {"dist": "lognormal", "mean": 1.0, "cv": 1.2},
            "servers": servers,
            "requests": 2_000,
            "warmup": 0.1,
            "seed": 11,
        }
    )
    streams = Streams(scenario.seed, replication=0)
    interarrival = scenario.arrival.sampler(streams.stream("requests.arrivals"))
    service = scenario.service.sampler(streams.stream("station.service"))
    free_at = [0.0] * servers
    now, waits, sojourns = 0.0, [], []
    for index in range(scenario.requests):
        if index:
            now += interarrival()
        start = max(now, heapq.heappop(free_at))
        leave = start + service()
        heapq.heappush(free_at, leave)
        if index >= scenario.warmup_requests:
            waits.append(start - now)
            sojourns.append(leave - now)

    result = run_replication(scenario, 0)
    assert result.value("station.wait_s", "count") == len(waits)
    assert result.value("station.wait_s", "mean") == pytest.approx(np.mean(waits), rel=1e-9)
    assert result.value("requests.sojourn_s", "mean") == pytest.approx(np.mean(sojourns), rel=1e-9)
    # the mean alone would not tell the order of service (every work-conserving
    # order has the same busy periods); the spread and the extremes do
    assert result.value("requests.sojourn_s", "std") == pytest.approx(np.std(sojourns, ddof=1), rel=1e-9)
    assert result.value("requests.sojourn_s", "max") == pytest.approx(max(sojourns), rel=1e-12)
    assert result.value("requests.sojourn_s", "min") == pytest.approx(min(sojourns), rel=1e-12)
