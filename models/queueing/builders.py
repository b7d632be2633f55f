"""Scenario schemas and model kinds of the queueing package.

``queueing.station``: one station fed by one arrival stream (M/M/c, M/G/c,
M/G/1-PS, M/M/c/K...). ``queueing.network``: stations connected by routing
probabilities. Both run ``requests`` external arrivals to completion.
"""

from __future__ import annotations

import math
from typing import Literal

import networkx as nx
from pydantic import ConfigDict, Field, model_validator

from sim.core import Environment, Model
from sim.dists import Distribution, Exponential
from sim.scenario import DurationDist, MAX_COUNT, Rate, ScenarioBase, ScenarioPart
from models.queueing.formulas import jackson_arrival_rates
from models.queueing.network import Network, check_routing
from models.queueing.stations import DISCIPLINES, Station


def _one_of(dist: Distribution | None, rate: float | None, name: str, default_rate: float | None) -> Distribution:
    if dist is not None and rate is not None:
        raise ValueError(f"give either {name} or {name}_rate, not both (set {name}_rate=null to use {name})")
    if dist is not None:
        return dist
    rate = default_rate if rate is None else rate
    if rate is None:
        raise ValueError(f"needs {name} (a distribution) or {name}_rate")
    if rate <= 0:
        raise ValueError(f"{name}_rate must be > 0 (got {rate})")
    return Exponential(1 / rate)


class StationConfig(ScenarioPart):
    """One station: its servers, service-time distribution, discipline and capacity."""

    servers: int = Field(1, ge=1, le=MAX_COUNT, description="identical servers")
    service: DurationDist | None = Field(None, description="service time distribution (seconds)")
    service_rate: Rate | None = Field(None, gt=0, description="shortcut: exponential service at this rate per second")
    discipline: Literal["fcfs", "ps"] = Field("fcfs", description="first come first served, or processor sharing")
    capacity: int | None = Field(
        None, ge=1, description="most jobs in the station, waiting or served; more are dropped")

    @model_validator(mode="after")
    def _resolve(self) -> StationConfig:
        self.service = _one_of(self.service, self.service_rate, "service", None)
        self.service_rate = None
        if self.capacity is not None and self.capacity < self.servers:
            raise ValueError(f"capacity must be >= servers ({self.servers}) (got {self.capacity})")
        return self

    def build(self, env: Environment, name: str) -> Station:
        assert self.service is not None
        return DISCIPLINES[self.discipline](env, name, self.service, self.servers, self.capacity)


class RunLength(ScenarioBase):
    requests: int = Field(100_000, ge=1, description="external arrivals simulated, warm-up included")

    @property
    def warmup_requests(self) -> int:
        return int(self.warmup * self.requests)


class StationScenario(RunLength):
    """A single station fed by one arrival stream; ``arrival_rate`` and ``service_rate``
    default to exponential times (M/M/c)."""

    arrival: DurationDist | None = Field(None, description="interarrival time distribution (seconds)")
    arrival_rate: Rate | None = Field(None, gt=0, description="shortcut: Poisson arrivals at this rate per second")
    servers: int = Field(1, ge=1, le=MAX_COUNT)
    service: DurationDist | None = Field(None, description="service time distribution (seconds)")
    service_rate: Rate | None = Field(
        None, gt=0, description="shortcut: exponential service at this rate (default 1/s)")
    discipline: Literal["fcfs", "ps"] = "fcfs"
    capacity: int | None = Field(None, ge=1, description="most jobs in the station; more are dropped")

    @model_validator(mode="after")
    def _resolve(self) -> StationScenario:
        self.arrival = _one_of(self.arrival, self.arrival_rate, "arrival", None)
        self.service = _one_of(self.service, self.service_rate, "service", 1.0)
        self.arrival_rate = self.service_rate = None
        if self.capacity is not None and self.capacity < self.servers:
            raise ValueError(f"capacity must be >= servers ({self.servers}) (got {self.capacity})")
        return self

    @property
    def offered_load(self) -> float | None:
        """rho = lambda E[S] / c; None with a finite capacity (what does not fit is dropped: no queue grows)."""
        assert self.arrival is not None and self.service is not None
        if self.capacity is not None:
            return None
        arrival_s, service_s = self.arrival.mean, self.service.mean
        if arrival_s <= 0:  # every arrival at one instant
            return math.inf if service_s > 0 else 0.0
        return service_s / arrival_s / self.servers


class Route(ScenarioPart):
    source: str = Field(alias="from")
    to: str
    p: float = Field(ge=0, le=1, description="probability of taking this route after service at `from`")

    model_config = ConfigDict(populate_by_name=True)


class NetworkScenario(RunLength):
    """Stations connected by routing probabilities, fed by one external stream."""

    arrival: DurationDist | None = None
    arrival_rate: Rate | None = Field(None, gt=0)
    entry: dict[str, float] | str = Field(description="station all jobs enter, or {station: probability}")
    stations: dict[str, StationConfig]
    routes: list[Route] = Field(default_factory=list)

    @model_validator(mode="after")
    def _resolve(self) -> NetworkScenario:
        self.arrival = _one_of(self.arrival, self.arrival_rate, "arrival", None)
        self.arrival_rate = None
        if isinstance(self.entry, str):
            self.entry = {self.entry: 1.0}
        for route in self.routes:
            for end in (route.source, route.to):
                if end not in self.stations:
                    raise ValueError(f"routes: no station {end!r} (stations: {', '.join(self.stations)})")
        check_routing(self.routing(), self.entry)
        return self

    def routing(self) -> nx.DiGraph:
        graph = nx.DiGraph()
        graph.add_nodes_from(self.stations)
        for route in self.routes:
            graph.add_edge(route.source, route.to, p=route.p)
        return graph

    @property
    def offered_load(self) -> float | None:
        """The largest rho = lambda_i E[S_i] / c_i of the stations without a capacity, lambda_i from the
        traffic equations (:func:`~models.queueing.formulas.jackson_arrival_rates`); None if all have one."""
        assert self.arrival is not None and isinstance(self.entry, dict)
        unbounded = {name: station for name, station in self.stations.items() if station.capacity is None}
        if not unbounded:
            return None
        if self.arrival.mean <= 0:  # every arrival at one instant
            return math.inf
        rate = 1 / self.arrival.mean
        rates = jackson_arrival_rates(self.routing(), {name: rate * p for name, p in self.entry.items()})
        loads = []
        for name, station in unbounded.items():
            assert station.service is not None  # StationConfig._resolve gives every station one
            loads.append(rates[name] * station.service.mean / station.servers)
        return max(loads)


class StationModel(Model):
    """Model kind ``queueing.station``."""

    config_class = StationScenario

    def __init__(self, env: Environment, config: StationScenario) -> None:
        super().__init__(env, config)
        station = StationConfig(
            servers=config.servers, service=config.service, discipline=config.discipline, capacity=config.capacity
        ).build(env, "station")
        assert config.arrival is not None
        self.network = Network(
            env, {"station": station}, nx.DiGraph(), {"station": 1.0}, config.arrival,
            config.requests, config.warmup_requests,
        )
        self.done = self.network.done


class NetworkModel(Model):
    """Model kind ``queueing.network``."""

    config_class = NetworkScenario

    def __init__(self, env: Environment, config: NetworkScenario) -> None:
        super().__init__(env, config)
        stations = {name: station.build(env, name) for name, station in config.stations.items()}
        assert config.arrival is not None and isinstance(config.entry, dict)
        self.network = Network(
            env, stations, config.routing(), config.entry, config.arrival, config.requests, config.warmup_requests
        )
        self.done = self.network.done
