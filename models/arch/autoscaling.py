"""A service's pods scaled at run time by a HorizontalPodAutoscaler (a service's ``autoscaling``).

Mechanism. A service with ``autoscaling`` has ``hpa.max_replicas`` pod slots, placed on the nodes in turn
like every pod; ``replicas`` of them run from the start, Ready long before it (a day: out of the CPU
initialization period). :class:`ScaledService` is the HPA's scale target
(:class:`models.k8s.autoscaler.ScaleTarget`):

* **Scale up**: each new pod takes a free slot (the one free longest) and goes through the start-up
  pipeline (:mod:`models.k8s.podstart`); once Ready it joins the service's endpoints: every client's
  balancer picks among the Ready pods only (:meth:`models.arch.resilience.Upstream.set_hosts`).
* **Scale down**: the pods to delete are chosen as the ReplicaSet controller ranks them (upstream
  ``pkg/controller/controller_utils.go``, ``ActivePodsWithRanks``): not yet scheduled first, then
  Pending before Running, not Ready before Ready, Ready for a shorter time first, then the newest; a
  deleted pod leaves the endpoints at once and finishes the requests it has (it drains), a starting one
  is abandoned.
* **Usage**: a pod's CPU is the CPU its handler's steps ran (counted as each step ends); the kubelet
  reports it cumulatively for each pod whose container runs, and metrics-server turns it into rates
  (:mod:`models.k8s.metricsserver`).

Metrics (``<name>`` the service): ``hpa.<name>.ready_replicas`` (time-weighted gauge), and with a
``workload.step`` ``hpa.<name>.time_to_capacity_s``: from the step to the first time the Ready pods are
as many as :func:`capacity_replicas` (the count the HPA settles on for the new load with exact metrics:
the service's CPU per second over its pods' request times the target), once per run; nothing is recorded if
that count is never reached.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from sim.core import Environment
from models.arch.config import ArchScenario, ServiceConfig
from models.arch.resilience import Upstream
from models.arch.surrogate import visits
from models.k8s import hpa
from models.k8s.podstart import PodLife, PodStartup

if TYPE_CHECKING:
    from models.arch.model import Pod

BEFORE_RUN_S = 86_400.0
"""How long before the run the first pods started and became Ready (a day)."""


def capacity_replicas(config: ArchScenario, service: str) -> int | None:
    """The replicas the HPA of ``service`` settles on after ``workload.step`` with exact metrics:
    ceil(CPU per second / (cpu_request x target / 100)), within min and max; None without a step."""
    step, target = config.workload.step, config.services[service]
    if step is None or target.autoscaling is None or target.cpu_request is None:
        return None
    cpu_per_visit = sum(s.cpu.mean for s in target.handler if s.cpu is not None)
    cpu_per_s = step.rate * visits(config)[service] * cpu_per_visit
    scaler = target.autoscaling.hpa
    lowest = min(metric.cpu_utilization for metric in scaler.metrics)
    needed = math.ceil(cpu_per_s / (target.cpu_request * lowest / 100))
    return min(max(needed, scaler.min_replicas), scaler.max_replicas)


class ScaledService:
    """The scale target of service ``name`` over its pod ``slots`` (see the module docstring); ``clients``:
    every client's :class:`Upstream` of the service, whose hosts follow the Ready pods."""

    def __init__(self, env: Environment, name: str, config: ServiceConfig, slots: list[Pod],
                 clients: list[Upstream], capacity: int | None = None, step_at: float = 0.0) -> None:
        assert config.autoscaling is not None and config.cpu_request is not None
        self.env = env
        self.name = name
        self.slots = slots
        self.clients = clients
        self.request_milli = round(config.cpu_request * 1000)
        self.startup = PodStartup(env, config.autoscaling.startup, name, f"podstart.{name}")
        self.lives: list[PodLife | None] = [None] * len(slots)
        self._cpu_base = [0.0] * len(slots)
        self._freed = [-math.inf] * len(slots)
        self._made = 0
        start = -BEFORE_RUN_S
        for index in range(config.replicas):
            self.lives[index] = PodLife(self._new_name(index), slots[index].node.name, start, start, start, start)
        self.ready = env.metrics.gauge(f"hpa.{name}.ready_replicas", config.replicas)
        self._capacity = capacity
        self._step_at = step_at
        self._capacity_s = env.metrics.histogram(f"hpa.{name}.time_to_capacity_s") if capacity else None
        self._publish()
        if capacity:
            env.process(self._at_step())

    def _new_name(self, index: int) -> str:
        self._made += 1
        return f"{self.slots[index].name}.{self._made}"

    # ------------------------------------------------------------------ ScaleTarget
    @property
    def replicas(self) -> int:
        return sum(life is not None for life in self.lives)

    def pods(self) -> list[hpa.Pod]:
        """The live pods as the HPA's calculator sees them."""
        pods = []
        for life in self.lives:
            if life is None:
                continue
            ready = life.ready is not None
            pods.append(hpa.Pod(
                life.name, self.request_milli, "Running" if life.running is not None else "Pending",
                ready=ready if life.admitted is not None else None,
                ready_since=(life.ready if life.ready is not None else life.admitted) or 0.0,
                start_time=life.admitted))
        return pods

    def scale(self, replicas: int) -> None:
        current = self.replicas
        if replicas > current:
            for _ in range(replicas - current):
                self._add()
        elif replicas < current:
            ranked = sorted((index for index, life in enumerate(self.lives) if life is not None),
                            key=self._deletion_rank)
            for index in ranked[:current - replicas]:
                self._delete(index)
            self._publish()

    # ------------------------------------------------------------------ pods
    def cpu_readings(self) -> list[tuple[str, float, float]]:
        """Each running pod's cumulative CPU seconds and its container's start, as its kubelet reports them."""
        return [(life.name, self.slots[index].cpu_s - self._cpu_base[index], life.running)
                for index, life in enumerate(self.lives) if life is not None and life.running is not None]

    def _deletion_rank(self, index: int) -> tuple[bool, bool, bool, float, float]:
        life = self.lives[index]
        assert life is not None
        return (life.admitted is not None, life.running is not None, life.ready is not None,
                -(life.ready or 0.0), -life.created)

    def _add(self) -> None:
        free = [index for index, life in enumerate(self.lives) if life is None]
        index = min(free, key=lambda i: (self._freed[i], i))
        life = PodLife(self._new_name(index), self.slots[index].node.name, self.env.now)
        self.lives[index] = life
        self._cpu_base[index] = self.slots[index].cpu_s
        self.env.process(self._start(index, life))

    def _start(self, index: int, life: PodLife) -> Generator[Any, Any, None]:
        yield from self.startup.start(life)
        if not life.deleted:
            self._publish()

    def _delete(self, index: int) -> None:
        life = self.lives[index]
        assert life is not None
        life.deleted = True
        self.lives[index] = None
        self._freed[index] = self.env.now

    def _publish(self) -> None:
        """Give every client the Ready pods as the service's hosts."""
        hosts = [index for index, life in enumerate(self.lives) if life is not None and life.ready is not None]
        for upstream in self.clients:
            upstream.set_hosts(hosts)
        self.ready.set(len(hosts))
        self._check_capacity(len(hosts))

    def _at_step(self) -> Generator[Any, Any, None]:
        yield self.env.timeout(max(self._step_at - self.env.now, 0.0))
        self._check_capacity(int(self.ready.level))

    def _check_capacity(self, ready: int) -> None:
        if self._capacity_s is None or self._capacity is None or self.env.now < self._step_at:
            return
        if ready >= self._capacity:
            self._capacity_s.record(self.env.now - self._step_at)
            self._capacity_s = None
