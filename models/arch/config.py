"""The scenario of model kind ``arch``: nodes, services and their handlers, the network, the workload.

A handler is a list of steps, each one of:

* ``cpu``: a draw of CPU work (seconds) done on a core of the pod's node;
* ``call``: a call to another service (``service``), made with ``probability``
  (default 1), carrying ``request`` and ``response`` bytes;
* ``parallel``: a list of calls made at once; the step ends when the last returns.

The services' calls must form no cycle (a request would never end), every
called service must exist, and the workload's entry must be a service.
"""

from __future__ import annotations

import networkx as nx
from pydantic import Field, model_validator

from sim.scenario import MAX_COUNT, DurationDist, Rate, ScenarioBase, ScenarioPart, Size
from models.arch.balancers import BalancerKind


class CallConfig(ScenarioPart):
    """One call to another service."""

    service: str = Field(description="the service called")
    probability: float = Field(1.0, ge=0, le=1, description="chance that a request makes this call")
    request: Size = Field(0.0, ge=0, description="request bytes sent to the callee")
    response: Size = Field(0.0, ge=0, description="response bytes sent back")


class StepConfig(ScenarioPart):
    """One step of a handler: exactly one of ``cpu``, ``call``, ``parallel``."""

    cpu: DurationDist | None = Field(None, description="CPU work on a core of the pod's node, seconds")
    call: CallConfig | None = Field(None, description="a call to another service, waited for")
    parallel: list[CallConfig] | None = Field(None, min_length=1, description="calls made at once, all waited for")

    @model_validator(mode="after")
    def _one(self) -> StepConfig:
        given = [name for name in ("cpu", "call", "parallel") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"a step is exactly one of cpu, call, parallel (got {', '.join(given) or 'none'})")
        return self

    def calls(self) -> list[CallConfig]:
        return [self.call] if self.call is not None else list(self.parallel or [])


class ServiceConfig(ScenarioPart):
    """A service: its replicas (pods), how clients balance between them, what a request does there."""

    replicas: int = Field(1, ge=1, le=MAX_COUNT, description="pods of the service, placed on the nodes in turn")
    balancer: BalancerKind = Field("round_robin", description="how a client picks one of the replicas")
    concurrency: int | None = Field(
        None, ge=1, le=MAX_COUNT, description="requests a pod handles at once (a thread pool); more wait; "
        "null: unlimited")
    handler: list[StepConfig] = Field(min_length=1, description="what a request does at a pod, step by step")


class NodesConfig(ScenarioPart):
    """Identical nodes; pods of every service are spread over them in turn."""

    count: int = Field(1, ge=1, le=MAX_COUNT, description="nodes")
    cores: int = Field(4, ge=1, le=MAX_COUNT, description="cores per node, shared by its pods' CPU steps")


class NetworkConfig(ScenarioPart):
    """One-way delays of a hop; a message also takes its bytes over the bandwidth."""

    latency: DurationDist = Field(description="one-way latency between two nodes, or between the edge and a node")
    local: DurationDist | None = Field(None, description="one-way latency between pods of one node; null: none")
    bandwidth: Size | None = Field(
        None, gt=0, description="bytes per second of a hop (no contention between messages); null: no limit")


class WorkloadConfig(ScenarioPart):
    """Open-loop Poisson requests at the edge, each into one service."""

    rate: Rate = Field(gt=0, description="requests per second")
    entry: str = Field(description="the service every request enters")
    keys: int = Field(
        1_000_000, ge=1, le=2**62, description="distinct request keys (users, sessions), drawn uniformly; a "
        "ring_hash balancer sends one key to one replica")


class ArchScenario(ScenarioBase):
    """An architecture: services in a call graph, their pods on nodes, a network, a workload."""

    requests: int = Field(20_000, ge=1, description="requests at the edge, warm-up included")
    workload: WorkloadConfig
    services: dict[str, ServiceConfig] = Field(min_length=1)
    nodes: NodesConfig = Field(default_factory=NodesConfig)
    network: NetworkConfig

    @model_validator(mode="after")
    def _graph(self) -> ArchScenario:
        names = ", ".join(self.services)
        if self.workload.entry not in self.services:
            raise ValueError(f"workload.entry: no service {self.workload.entry!r} (services: {names})")
        graph = self.call_graph()
        for caller, service in self.services.items():
            for index, step in enumerate(service.handler):
                for call in step.calls():
                    if call.service not in self.services:
                        kind = "call" if step.call is not None else "parallel"
                        raise ValueError(f"services.{caller}.handler.{index}.{kind}.service: no service "
                                         f"{call.service!r} (services: {names})")
        try:
            cycle = nx.find_cycle(graph)
        except nx.NetworkXNoCycle:
            return self
        path = " -> ".join([edge[0] for edge in cycle] + [cycle[0][0]])
        raise ValueError(f"services: the calls form a cycle ({path}): a request there would never end")

    def call_graph(self) -> nx.DiGraph:
        """Services and who calls whom (edges only for calls to known services)."""
        graph = nx.DiGraph()
        graph.add_nodes_from(self.services)
        for caller, service in self.services.items():
            for step in service.handler:
                for call in step.calls():
                    if call.service in self.services:
                        graph.add_edge(caller, call.service)
        return graph
