"""Model kind ``arch``: requests through a graph of services whose pods share their nodes' cores.

Mechanism. Requests arrive at the edge as a Poisson stream, each with a key
drawn uniformly from ``workload.keys``. A client (the edge, or the pod making a
call) picks one of the callee's pods with its own balancer for that service
(:mod:`models.arch.balancers`), sends the request over the network (one-way
``network.latency`` between nodes or from the edge, ``network.local`` between
pods of one node, plus its bytes over ``network.bandwidth``), and the pod
handles it: it waits for one of the pod's ``concurrency`` slots (held until
the response leaves), then runs the handler's steps in order. A CPU step waits
for a core of the pod's node (FCFS, shared by every pod placed there) and
holds it for its draw; a call is made with its probability and waited for;
parallel calls are all made at once and waited for. The response goes back
over the network the same way. Pods are placed on the nodes in turn (pod ``i``
of the ``k``-th pod overall on node ``k mod count``).

Metrics: ``requests.sojourn_s`` (end-to-end latency at the edge),
``requests.completed``; ``service.<name>.latency_s`` (from a request reaching a
pod to its response leaving it) and ``service.<name>.requests``;
``pod.<service>-<i>.requests``; along each request's critical path
(:mod:`models.arch.breakdown`) ``breakdown.network_s``, ``breakdown.queue_s``
and ``breakdown.cpu_s`` (histograms; for every request they sum to its
latency); ``node.<name>.busy_cores`` (time-weighted). The first ``warmup``
fraction of the requests is not measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any, cast

import simpy

from sim.core import Environment, Model
from sim.dists import Constant, Distribution, Exponential, Uniform
from models.arch.balancers import Balancer, make_balancer
from models.arch.breakdown import Spent
from models.arch.config import ArchScenario, CallConfig, ServiceConfig, StepConfig

EDGE = "edge"


class Node:
    """A machine: its cores, shared by the pods placed on it."""

    def __init__(self, env: Environment, name: str, cores: int) -> None:
        self.name = name
        self.cores = simpy.Resource(env, capacity=cores)
        self.busy = env.metrics.gauge(f"node.{name}.busy_cores")


class Pod:
    """One replica of a service on a node, with its concurrency slots and a balancer per service it calls."""

    def __init__(self, arch: ArchModel, service: str, index: int, node: Node) -> None:
        env = arch.env
        config = arch.config.services[service]
        self.name = f"{service}-{index}"
        self.service = service
        self.node = node
        self.slots = simpy.Resource(env, capacity=config.concurrency) if config.concurrency else None
        self.requests = env.metrics.counter(f"pod.{self.name}.requests")
        self.balancers: dict[str, Balancer] = {}
        """One per service this pod calls (set once every pod exists: :meth:`ArchModel.balancers_for`)."""


class ArchModel(Model):
    """Model kind ``arch`` (see the module docstring)."""

    config_class = ArchScenario

    def __init__(self, env: Environment, config: ArchScenario) -> None:
        super().__init__(env, config)
        self.nodes = [Node(env, f"node{i}", config.nodes.cores) for i in range(config.nodes.count)]
        self.pods: dict[str, list[Pod]] = {}
        placed = 0
        for service in config.services:
            self.pods[service] = []
            for index in range(config.services[service].replicas):
                self.pods[service].append(Pod(self, service, index, self.nodes[placed % len(self.nodes)]))
                placed += 1
        for service, pods in self.pods.items():
            for pod in pods:
                pod.balancers = self.balancers_for(pod.name, config.services[service])
        self._steps: dict[str, list[Callable[[Pod, int], Generator[Any, Any, Spent]]]] = {
            name: [self._step(step_config, f"cpu.{name}.{index}") for index, step_config in enumerate(service.handler)]
            for name, service in config.services.items()}
        network = config.network
        self._remote = network.latency.sampler(env.rng("network.latency"))
        self._local = (network.local or Constant(0.0)).sampler(env.rng("network.local"))
        self._bandwidth = network.bandwidth or math.inf
        self._coin = Uniform(0.0, 1.0).sampler(env.rng("calls.probability"))
        self._edge = self.balancers_for(EDGE, None)
        metrics = env.metrics
        self.sojourn_s = metrics.histogram("requests.sojourn_s")
        self.completed = metrics.counter("requests.completed")
        self.spent = {kind: metrics.histogram(f"breakdown.{kind}_s") for kind in ("network", "queue", "cpu")}
        self.latency = {name: metrics.histogram(f"service.{name}.latency_s") for name in config.services}
        self.served = {name: metrics.counter(f"service.{name}.requests") for name in config.services}
        self._finished = 0
        self._all_done = env.event()
        self.done = self._all_done
        env.process(self._arrivals(Exponential(1 / config.workload.rate)))

    # ------------------------------------------------------------------ building
    def balancers_for(self, client: str, config: ServiceConfig | None) -> dict[str, Balancer]:
        """The balancers of ``client`` (a pod, or the edge when ``config`` is None), one per service it calls."""
        called = ({call.service for step in config.handler for call in step.calls()} if config is not None
                  else {self.config.workload.entry})
        return {service: make_balancer(self.config.services[service].balancer,
                                       [pod.name for pod in self.pods[service]],
                                       self.env.rng(f"lb.{client}.{service}"))
                for service in sorted(called)}

    def _step(self, step: StepConfig, stream: str) -> Callable[[Pod, int], Generator[Any, Any, Spent]]:
        """A step as a function of (pod, request key) to the generator that runs it; ``stream``: its draws."""
        if step.cpu is not None:
            draw = step.cpu.sampler(self.env.rng(stream))
            return lambda pod, key: self._cpu(pod, draw())
        calls = step.calls()
        if step.call is not None:
            (call,) = calls
            return lambda pod, key: self._maybe_call(pod, call, key)
        return lambda pod, key: self._parallel(pod, calls, key)

    # ------------------------------------------------------------------ requests
    def _arrivals(self, interarrival: Distribution):
        env, config = self.env, self.config
        draw = interarrival.sampler(env.rng("workload.arrivals"))
        key_rng = env.rng("workload.keys")
        warmup = int(config.warmup * config.requests)
        for index in range(config.requests):
            if index:
                yield env.timeout(draw())
            if index == warmup:
                env.metrics.reset()
            env.process(self._request(int(key_rng.integers(config.workload.keys)), index >= warmup))

    def _request(self, key: int, counted: bool):
        env = self.env
        born = env.now
        entry = self.config.workload.entry
        spent = yield from self._call(None, self._edge[entry], entry, 0.0, 0.0, key)
        if counted:
            self.sojourn_s.record(env.now - born)
            self.completed.inc()
            for kind, histogram in self.spent.items():
                histogram.record(getattr(spent, kind))
        self._finished += 1
        if self._finished == self.config.requests:
            self._all_done.succeed()

    def _hop(self, source: Node | None, target: Node, size: float) -> float:
        delay = self._local() if source is target else self._remote()
        return delay + size / self._bandwidth

    def _call(self, caller: Pod | None, balancer: Balancer, service: str, request: float, response: float,
              key: int) -> Generator[Any, Any, Spent]:
        """One call from ``caller`` (None: the edge): there, the pod's handling, back."""
        env = self.env
        replica = balancer.pick(key)
        pod = self.pods[service][replica]
        source = caller.node if caller is not None else None
        there = self._hop(source, pod.node, request)
        yield env.timeout(there)
        spent = yield from self._handle(pod, key)
        back = self._hop(source, pod.node, response)
        yield env.timeout(back)
        balancer.done(replica)
        spent.network += there + back
        return spent

    def _handle(self, pod: Pod, key: int) -> Generator[Any, Any, Spent]:
        env = self.env
        arrived = env.now
        pod.requests.inc()
        self.served[pod.service].inc()
        slots, slot = pod.slots, None
        spent = Spent()
        if slots is not None:
            slot = slots.request()
            yield slot
            spent.queue += env.now - arrived
        for step in self._steps[pod.service]:
            spent.add((yield from step(pod, key)))
        if slots is not None and slot is not None:
            slots.release(slot)
        self.latency[pod.service].record(env.now - arrived)
        return spent

    def _cpu(self, pod: Pod, seconds: float) -> Generator[Any, Any, Spent]:
        env, node = self.env, pod.node
        asked = env.now
        with node.cores.request() as core:
            yield core
            waited = env.now - asked
            node.busy.set(node.cores.count)
            yield env.timeout(seconds)
        node.busy.set(node.cores.count)
        return Spent(queue=waited, cpu=seconds)

    def _maybe_call(self, pod: Pod, call: CallConfig, key: int) -> Generator[Any, Any, Spent]:
        if call.probability < 1 and self._coin() >= call.probability:
            return Spent()
        return (yield from self._call(pod, pod.balancers[call.service], call.service, call.request, call.response,
                                      key))

    def _parallel(self, pod: Pod, calls: list[CallConfig], key: int) -> Generator[Any, Any, Spent]:
        env = self.env
        branches = [env.process(self._timed(self._maybe_call(pod, call, key))) for call in calls]
        yield env.all_of(branches)
        return Spent.slowest(cast(tuple[float, Spent], branch.value) for branch in branches)

    def _timed(self, path: Generator[Any, Any, Spent]) -> Generator[Any, Any, tuple[float, Spent]]:
        spent = yield from path
        return self.env.now, spent
