"""Model kind ``k8s.apiserver``: tenants' requests to one kube-apiserver, with APF or one FIFO queue.

Each tenant sends requests of one shape (user, groups, verb, resource, namespace, seats, a service-time
distribution) as an open workload (Poisson, bursts, a daily curve or a replay; the ``arch`` kind's
:mod:`models.arch.workloads`) to an :class:`~models.k8s.apf.APIServer` for ``duration`` simulated seconds.
Service times have no default: what a request costs the server is the scenario's to give.

Metrics: the server's (:mod:`models.k8s.apf`), and each tenant's ``tenant.NAME.latency_s`` (served
requests, arrival to reply), ``.rejected`` (429) and ``.timed_out`` (504). The first ``warmup`` of the
duration is left out.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

from pydantic import Field, model_validator

from models.arch.workloads import arrival_times
from models.faas.config import FaasWorkload
from models.k8s.apf import GATEWAY_TIMEOUT, OK, REQUEST_TIMEOUT_S, APIRequest, APIServer
from models.k8s.apf_config import AUTHENTICATED, APFConfig
from sim.core import Environment, Model
from sim.scenario import Duration, DurationDist, ScenarioBase, ScenarioPart


class Tenant(ScenarioPart):
    """One kind of request and how often it comes."""

    user: str = Field(description="the requesting user (a service account: system:serviceaccount:NS:NAME)")
    groups: list[str] = Field(default_factory=lambda: [AUTHENTICATED], description="the user's groups")
    verb: str = Field("get", description="get, list, watch, create, update, patch, delete...")
    resource: str = Field("pods", description="the resource (pods, configmaps, leases...)")
    namespace: str = Field("default", description="the namespace; empty: a cluster-scoped object")
    seats: int = Field(1, ge=1, le=1000, description="seats the request takes while it executes (its width)")
    service: DurationDist = Field(description="the handler's time holding its seats, seconds")
    workload: FaasWorkload = Field(description="the request arrivals: rate (Poisson), burst, diurnal or replay")


class APIServerScenario(ScenarioBase):
    """Tenants' requests to one API server."""

    apf: APFConfig = Field(default_factory=APFConfig, description="priority levels, flow schemas, seats")
    fifo: bool = Field(False, description="one FIFO queue in front of the seats instead of APF")
    fifo_queue_length: int = Field(
        1000, ge=1, description="requests the FIFO queue holds (fifo: true) before rejecting with 429")
    request_timeout: Duration = Field(
        REQUEST_TIMEOUT_S, gt=0, description="--request-timeout: 504 after it; a quarter of it (at most 1 min) "
        "is the queue wait limit")
    duration: Duration = Field(gt=0, description="simulated time")
    tenants: dict[str, Tenant] = Field(min_length=1, description="the tenants by name")

    @model_validator(mode="after")
    def _workloads(self) -> APIServerScenario:
        for name, tenant in self.tenants.items():
            try:
                tenant.workload.as_arch(name)
            except ValueError as error:
                raise ValueError(f"tenants.{name}.workload: {error}") from None
        return self


class APIServerModel(Model):
    """Model kind ``k8s.apiserver``."""

    config_class = APIServerScenario

    def __init__(self, env: Environment, config: APIServerScenario) -> None:
        super().__init__(env, config)
        self.server = APIServer(env, config.apf, config.request_timeout,
                                config.fifo_queue_length if config.fifo else None)
        for name, tenant in config.tenants.items():
            request = APIRequest(tenant.user, tenant.verb, tenant.resource, tenant.namespace, "",
                                 tuple(tenant.groups), tenant.seats)
            times = arrival_times(env, tenant.workload.as_arch(name), stream=f"tenant.{name}.workload")
            env.process(self._send(name, request, tenant, times))
        self.done = self.timed(config.duration, config.warmup)

    def _send(self, name: str, request: APIRequest, tenant: Tenant,
              times: Iterator[float]) -> Generator[Any, Any, None]:
        draw = tenant.service.sampler(self.env.rng(f"tenant.{name}.service"))
        metrics = self.env.metrics
        latency, rejected, timed_out = (metrics.histogram(f"tenant.{name}.latency_s"),
                                        metrics.counter(f"tenant.{name}.rejected"),
                                        metrics.counter(f"tenant.{name}.timed_out"))

        def one(shaped: APIRequest) -> Generator[Any, Any, None]:
            arrived = self.env.now
            status = yield self.env.process(self.server.handle(shaped))
            if status == OK:
                latency.record(self.env.now - arrived)
            elif status == GATEWAY_TIMEOUT:
                timed_out.inc()
            else:
                rejected.inc()

        for at in times:
            if at >= self.config.duration:
                return
            if at > self.env.now:
                yield self.env.timeout(at - self.env.now)
            shaped = APIRequest(request.user, request.verb, request.resource, request.namespace, request.path,
                                request.groups, request.seats, float(draw()))
            self.env.process(one(shaped))
