"""Model kind ``k8s.cluster``: a control plane under the load of a whole cluster.

Components (each its own module) wired around one API server:

* **The API server** admits every call through priority and fairness (or one FIFO queue,
  ``apiserver.fifo``) and runs its handler on the control-plane machine's cores, shared in processor
  sharing (:class:`~models.runtime.node.workers.SharedCores`): decoding the request, encoding the object
  for storage and the response, at the calibrated per-object codec costs
  (``apiserver.codec.FORMAT.*``, :mod:`calibration.fitk8s`), and waiting for etcd on writes
  (``storage.write``). A write's event enters the pods' watch cache (:mod:`models.k8s.cacher`).
* **Kubelets** (:mod:`models.k8s.nodes`) renew their Leases every 10 s and post node status every
  5 minutes; each one also watches the pods bound to its node through the cache's index
  (:mod:`models.k8s.informer`) and, when one arrives, reports it running ``container_start`` later; when
  one is deleted, reports it gone.
* **kube-controller-manager** creates ``churn`` pods a second and deletes as many, under its client limit.
* **kube-scheduler** (:mod:`models.k8s.scheduler`) watches every pod and binds each new one to a node.
* **LIST clients** fetch every pod now and then (``lists``): a cluster-scoped read that takes many seats
  and the object count times the codec's cost of CPU.

Admission webhooks (``apiserver.webhooks``, :mod:`models.k8s.webhook`) are called in turn on the writes of
their resources, inside the request's seats; a write they deny is counted and not stored.

Metrics: ``api.mutating.latency_s`` and ``api.list.latency_s`` (the SLOs' two latencies, the client's
view: its rate limit excluded, the server's queues included), ``api.rejected`` (429), ``api.denied`` (by a
webhook), ``webhook.NAME.*``, ``pod.startup_s``
(created to reported running), plus the components' own (``nodes.*``, ``scheduler.*``, ``watch.*``,
``informer.*``, ``apiserver.*``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from typing import Any

import simpy

from sim.core import Environment, Model
from sim.params import param_value
from models.k8s.apf import OK, APIRequest, APIServer
from models.k8s.apf_config import AUTHENTICATED
from models.k8s.cacher import Cacher
from models.k8s.etcd import EtcdCosts, RaftGroup
from models.k8s.etcd import put as etcd_put
from models.k8s.cluster_config import (CONTROLLER_MANAGER_BURST, CONTROLLER_MANAGER_QPS, KUBELET_BURST, KUBELET_QPS,
                                       ClusterScenario)
from models.k8s.informer import Reflector
from models.k8s.nodes import NodeHeartbeats
from models.k8s.ratelimit import REST_BURST, REST_QPS, TokenBucket, throttle
from models.k8s.scheduler import CLIENT_BURST, CLIENT_QPS, Scheduler
from models.k8s.webhook import Webhook
from models.runtime.node.workers import SharedCores

OBJECTS_PER_SEAT = 100
"""APF's LIST work estimate: a seat per 100 objects (``objectsPerSeat``,
``k8s.io/apiserver/pkg/util/flowcontrol/request/config.go``)."""
MAX_LIST_SEATS = 10
"""The most seats a LIST takes (``maximumListSeatsLimit``, same file)."""


class Codec:
    """What the API server's CPU pays per object in one format (calibrated)."""

    def __init__(self, format_: str) -> None:
        prefix = f"apiserver.codec.{format_}."
        self.marshal_s = param_value(prefix + "marshal_s")
        self.unmarshal_s = param_value(prefix + "unmarshal_s")


class Client:
    """A component's connection to the API server: its identity and its client-side rate limit."""

    def __init__(self, env: Environment, user: str, groups: tuple[str, ...], qps: float, burst: int) -> None:
        self.env, self.user, self.groups = env, user, groups
        self.limiter = TokenBucket(qps, burst)

    def throttle(self) -> Generator[simpy.Event, Any, None]:
        yield from throttle(self.env, self.limiter)


class ClusterModel(Model):
    """Model kind ``k8s.cluster``."""

    config_class = ClusterScenario
    config: ClusterScenario

    def __init__(self, env: Environment, config: ClusterScenario) -> None:
        super().__init__(env, config)
        self.rng = env.rng("cluster.pods")
        self.cores = SharedCores(env, config.apiserver.cores, "apiserver.cores")
        self.server = APIServer(env, config.apiserver.apf, fifo_queue_length=(
            config.apiserver.fifo_queue_length if config.apiserver.fifo else None))
        self.codec = Codec(config.apiserver.codec)
        self.webhooks = [(hook.resources, Webhook(env, name, hook.latency, hook.timeout, hook.failure_policy,
                                                  hook.error_rate))
                         for name, hook in config.apiserver.webhooks.items()]
        self.codecs: dict[str, Codec] = {config.apiserver.codec: self.codec}
        self.storage_write = (config.storage.write.sampler(env.rng("cluster.storage"))
                              if config.storage.write is not None else None)
        self.raft: RaftGroup | None = None
        if config.storage.etcd is not None:
            etcd = config.storage.etcd
            self.raft = RaftGroup(env, etcd.members, EtcdCosts.calibrated(), simpy.Resource(env, etcd.cores))
            self.object_bytes = param_value("apiserver.codec.protobuf.object_bytes")
        self.container_start = config.container_start.sampler(env.rng("cluster.container_start"))
        self.pods_cache = Cacher(env, prefix="watch.pods")
        self.node_of: dict[int, int] = {}  # pod -> its node (-1 while being scheduled)
        self.pods_on = [0] * config.nodes
        self.running: list[int] = []  # pods reported running, in no order; a deletion picks one at random
        self.slot: dict[int, int] = {}  # pod -> its index in running
        self.created_at: dict[int, float] = {}
        self.next_pod = 0
        metrics = env.metrics
        self.mutating = metrics.histogram("api.mutating.latency_s")
        self.listing = metrics.histogram("api.list.latency_s")
        self.rejected = metrics.counter("api.rejected")
        self.denied = metrics.counter("api.denied")
        self.startup = metrics.histogram("pod.startup_s")
        for index in range(config.pods):
            pod = self._new_pod()
            self._place(pod, index % config.nodes)
            self._now_running(pod)
        self.kubelets = [Client(env, f"system:node:node-{n}", ("system:nodes",), KUBELET_QPS, KUBELET_BURST)
                         for n in range(config.nodes)]
        self.manager = Client(env, "system:kube-controller-manager", (), CONTROLLER_MANAGER_QPS,
                              CONTROLLER_MANAGER_BURST)
        self.scheduler_client = Client(env, "system:kube-scheduler", (), CLIENT_QPS, CLIENT_BURST)
        self.scheduler = Scheduler(env, config.nodes, self._bind, config.scheduler_filter_s_per_node,
                                   config.scheduler_score_s_per_node, cores=1.0,
                                   limiter=self.scheduler_client.limiter)
        NodeHeartbeats(env, config.nodes, self._renew_lease, self._post_node_status)
        for node in range(config.nodes):
            Reflector(env, f"kubelet-{node}", self.pods_cache, self._lister(self.kubelets[node], node),
                      consume=lambda: 0.0, trigger=node, on_event=self._kubelet_sees(node),
                      prefix="informer.kubelet")
        Reflector(env, "scheduler", self.pods_cache, self._lister(self.scheduler_client, None),
                  consume=lambda: 0.0, on_event=self._scheduler_sees, prefix="informer.scheduler")
        if config.churn > 0:
            env.process(self._churn())
        for name, lister in config.lists.items():
            client = Client(env, f"system:serviceaccount:monitoring:{name}", ("system:serviceaccounts",), REST_QPS,
                            REST_BURST)
            for index in range(lister.clients):
                env.process(self._list_every(client, lister.every, lister.format, index / lister.clients))
        self.done = self.timed(config.duration, config.warmup)

    # --- the API server --------------------------------------------------------------------------

    def _call(self, client: Client, verb: str, resource: str, objects: int = 1, format_: str | None = None,
              write: bool = False, cluster_scope: bool = False,
              throttled: bool = False) -> Generator[simpy.Event, Any, bool]:
        """One API call from ``client``: its client-side limit, then the server. Returns whether it was
        served (False: rejected with 429). Writes count toward the mutating SLO, cluster-scope LISTs
        toward the LIST SLO. ``throttled``: the caller already waited for the client's limit."""
        if not throttled:
            yield from client.throttle()
        start = self.env.now
        codec = self._codec(format_)
        seats = min(MAX_LIST_SEATS, max(1, math.ceil(objects / OBJECTS_PER_SEAT)))

        admitted = True

        def execute() -> Generator[simpy.Event, Any, None]:
            nonlocal admitted
            if write:
                for resources, webhook in self.webhooks:
                    if resource in resources and not (yield from webhook.admit()):
                        admitted = False
                        return
                yield self.cores.run(codec.unmarshal_s + self.codec.marshal_s)
                if self.raft is not None:
                    yield from etcd_put(self.env, self.raft, self.object_bytes)
                else:
                    assert self.storage_write is not None
                    yield self.env.timeout(float(self.storage_write()))
            yield self.cores.run(objects * codec.marshal_s)

        served = yield from self._serve(client, verb, resource, seats, execute)
        if not admitted:
            self.denied.inc()
            return False
        if not served:
            self.rejected.inc()
            return False
        if write:
            self.mutating.record(self.env.now - start)
        elif cluster_scope:
            self.listing.record(self.env.now - start)
        return True

    def _serve(self, client: Client, verb: str, resource: str, seats: int,
               execute: Callable[[], Generator[simpy.Event, Any, None]]) -> Generator[simpy.Event, Any, bool]:
        """Admission by priority and fairness (or the FIFO queue), then the handler."""
        namespace = "kube-node-lease" if resource == "leases" else "default"
        request = APIRequest(user=client.user, verb=verb, resource=resource, namespace=namespace,
                             groups=(*client.groups, AUTHENTICATED), seats=seats)
        status = yield from self.server.handle(request, execute)
        return status == OK

    def _codec(self, format_: str | None) -> Codec:
        name = format_ or self.config.apiserver.codec
        if name not in self.codecs:
            self.codecs[name] = Codec(name)
        return self.codecs[name]

    # --- clients -----------------------------------------------------------------------------------

    def _place(self, pod: int, node: int) -> None:
        self.node_of[pod] = node
        self.pods_on[node] += 1

    def _now_running(self, pod: int) -> None:
        self.slot[pod] = len(self.running)
        self.running.append(pod)

    def _take_running(self) -> int:
        """A running pod at random, no longer counted as running (O(1): the last one takes its slot)."""
        index = int(self.rng.integers(len(self.running)))
        pod, last = self.running[index], self.running[-1]
        self.running[index], self.slot[last] = last, index
        self.running.pop()
        del self.slot[pod]
        return pod

    def _new_pod(self) -> int:
        pod = self.next_pod
        self.next_pod += 1
        return pod

    def _lister(self, client: Client, node: int | None):
        def list_call() -> Generator[simpy.Event, Any, int]:
            objects = self.pods_on[node] if node is not None else len(self.node_of)
            yield from self._call(client, "list", "pods", max(1, objects))
            return self.pods_cache.resource_version
        return list_call

    def _renew_lease(self, name: str) -> Generator[simpy.Event, Any, None]:
        node = int(name.rsplit("-", 1)[1])
        yield from self._call(self.kubelets[node], "update", "leases", write=True)

    def _post_node_status(self, name: str) -> Generator[simpy.Event, Any, None]:
        node = int(name.rsplit("-", 1)[1])
        yield from self._call(self.kubelets[node], "patch", "nodes", write=True)

    def _churn(self):
        gap = 1.0 / self.config.churn
        while True:
            yield self.env.timeout(float(self.rng.exponential(gap)))
            self.env.process(self._create_pod())
            if self.running:
                self.env.process(self._delete_pod())

    def _create_pod(self):
        pod = self._new_pod()
        self.created_at[pod] = self.env.now
        if (yield from self._call(self.manager, "create", "pods", write=True)):
            self.pods_cache.record(None, pod)
        else:  # refused (429) or denied by a webhook: the controller will try another pod later
            del self.created_at[pod]

    def _delete_pod(self):
        pod = self._take_running()
        node = self.node_of.pop(pod)
        self.pods_on[node] -= 1
        if (yield from self._call(self.manager, "delete", "pods", write=True)):
            self.pods_cache.record(node, pod)

    def _scheduler_sees(self, pod: Any) -> None:
        if pod in self.created_at and pod not in self.node_of:
            self.node_of[pod] = -1  # being scheduled
            self.scheduler.submit(pod)

    def _bind(self, pod: Any) -> Generator[simpy.Event, Any, None]:
        node = int(self.rng.integers(self.config.nodes))
        # the scheduler took its client's token before it called (Scheduler._bind)
        if (yield from self._call(self.scheduler_client, "create", "pods/binding", write=True, throttled=True)):
            self._place(pod, node)
            self.pods_cache.record(node, pod)

    def _kubelet_sees(self, node: int) -> Callable[[Any], None]:
        def seen(pod: Any) -> None:
            if self.node_of.get(pod) == node and pod in self.created_at:
                self.env.process(self._start_pod(node, pod))
        return seen

    def _start_pod(self, node: int, pod: int):
        created = self.created_at.pop(pod)
        yield self.env.timeout(float(self.container_start()))
        if (yield from self._call(self.kubelets[node], "patch", "pods/status", write=True)):
            self.pods_cache.record(node, pod)
            self._now_running(pod)
            self.startup.record(self.env.now - created)

    def _list_every(self, client: Client, every: float, format_: str, phase: float):
        yield self.env.timeout(phase * every)
        while True:
            yield from self._call(client, "list", "pods", max(1, len(self.node_of)), format_, cluster_scope=True)
            yield self.env.timeout(every)
