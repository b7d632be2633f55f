"""The kube-apiserver's admission of requests: API Priority and Fairness, or one FIFO queue.

With APF (upstream ``kubernetes/apiserver`` ``pkg/util/flowcontrol``, ``pkg/server/filters/priority-and-fairness.go``):

1. A request is classified by the first flow schema that matches it, in matching order
   (:class:`~models.k8s.apf_config.APFConfig`); its flow is the schema's name and its distinguisher (user,
   namespace or nothing), hashed as ``hashFlowID`` (:func:`hash_flow_id`). A request no schema matches is
   rejected (upstream always has the mandatory ``catch-all`` schema, which the default configuration has).
2. It goes to the queue set of the schema's priority level (:class:`~models.k8s.queueset.QueueSet`):
   queued by shuffle sharding on its flow's hand, dispatched by fair queuing when its seats are free,
   rejected with 429 when its queue is full, or when it waits longer than its wait limit: a quarter of the
   request timeout, at most a minute (``getRequestWaitContext``).
3. Each level's seats come from the server's concurrency limit by its nominal shares, with lending and
   borrowing adjusted every 10 s from the levels' seat demand (:mod:`models.k8s.apf_alloc`).
4. It holds ``seats`` seats (its width: a LIST of many objects takes several), at most the level's
   :func:`~models.k8s.apf_alloc.max_seats` and 10 (10 in FIFO mode), for its service time. The
   request timeout (``--request-timeout``, 60 s, ``pkg/server/config.go``) ends the client's wait with 504;
   the handler still holds its seats until it finishes, as upstream's timeout filter lets it run.

With ``fifo``: one queue of ``fifo_queue_length`` requests in arrival order in front of all the server's
seats, no classification into levels and no fairness (a queue set of one queue, where fair queuing is
first come first served), the same wait limit and 429 when the queue is full.

Metrics (``PREFIX`` is ``apiserver.``): ``PREFIX{level,schema}.NAME.latency_s`` (arrival to reply, served
requests), ``.waiting_s`` (time in the queue), counters ``.rejected`` (429) and ``.timed_out`` (504), and
the gauge ``.executing_seats`` (seats of the requests executing); in FIFO mode the level is ``fifo``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from models.k8s import apf_alloc
from models.k8s.apf_config import AUTHENTICATED, APFConfig, FlowSchema, PriorityLevel
from models.k8s.queueset import QueueSet, QueuingConfig, WorkEstimate
from sim.core import Environment
from sim.stats import Counter, Gauge, Histogram

REQUEST_TIMEOUT_S = 60.0
"""``--request-timeout`` default (``pkg/server/config.go``, ``RequestTimeout: 60 s``)."""
MAX_WAIT_S = 60.0
"""Hard limit on a request's queue wait (``getRequestWaitContext``: at most one minute)."""
OK, TOO_MANY_REQUESTS, GATEWAY_TIMEOUT = 200, 429, 504
FIFO = "fifo"


@dataclass(frozen=True)
class APIRequest:
    """One request to the API server: who, what, how wide, how long its handler runs."""

    user: str
    verb: str = "get"
    resource: str = "pods"
    namespace: str = "default"
    path: str = ""
    groups: tuple[str, ...] = (AUTHENTICATED,)
    seats: int = 1
    service_s: float = 0.0


def hash_flow_id(schema: str, distinguisher: str) -> int:
    """The flow's hash (``hashFlowID``): SHA-256 of the schema name, a zero byte and the distinguisher,
    its first 8 bytes read little-endian."""
    digest = hashlib.sha256(schema.encode() + b"\0" + distinguisher.encode()).digest()
    return int.from_bytes(digest[:8], "little")


class Recorder:
    """Latency, waiting time, 429s and 504s of one level or flow schema."""

    def __init__(self, env: Environment, prefix: str) -> None:
        self.latency_s: Histogram = env.metrics.histogram(prefix + "latency_s")
        self.waiting_s: Histogram = env.metrics.histogram(prefix + "waiting_s")
        self.rejected: Counter = env.metrics.counter(prefix + "rejected")
        self.timed_out: Counter = env.metrics.counter(prefix + "timed_out")
        self.executing_seats: Gauge = env.metrics.gauge(prefix + "executing_seats")


class Level:
    """A priority level's queue set, limits and seat-demand tallies for borrowing."""

    def __init__(self, env: Environment, config: PriorityLevel | None, limits: apf_alloc.Limits,
                 queuing: QueuingConfig, name: str) -> None:
        self.name = name
        self.exempt = config is not None and config.exempt
        self.limits = limits
        self.queue_set = QueueSet(env, queuing, limits.initial, name)
        self.max_seats = apf_alloc.MAX_LIST_SEATS
        if queuing.desired_num_queues > 0 and config is not None:
            self.max_seats = min(self.max_seats, apf_alloc.max_seats(limits.nominal, queuing.hand_size))
        self.stats = apf_alloc.SeatDemandStats()

    def observe(self) -> None:
        """Fold the period's seat demand into the stats and start a new period."""
        self.stats.update(*self.queue_set.take_seat_demand())


def _queuing(level: PriorityLevel) -> QueuingConfig:
    if level.exempt:
        return QueuingConfig(-1)
    if level.queues == 0:
        return QueuingConfig(0)
    return QueuingConfig(level.queues, level.queue_length_limit, level.hand_size)


class APIServer:
    """The API server's admission and execution of requests (module docstring)."""

    def __init__(self, env: Environment, config: APFConfig, request_timeout_s: float = REQUEST_TIMEOUT_S,
                 fifo_queue_length: int | None = None, prefix: str = "apiserver.") -> None:
        self.env = env
        self.config = config
        self.request_timeout_s = request_timeout_s
        self.wait_limit_s = min(request_timeout_s / 4, MAX_WAIT_S)
        self.schemas = config.ordered_schemas()
        self.prefix = prefix
        self.recorders: dict[str, Recorder] = {}
        self._classified: dict[tuple[str, tuple[str, ...], str, str, str, str], tuple[FlowSchema | None, str]] = {}
        limit = config.server_concurrency_limit
        self.levels: dict[str, Level] = {}
        if fifo_queue_length is not None:
            limits = apf_alloc.Limits(limit, limit, limit, limit)
            self.levels[FIFO] = Level(env, None, limits, QueuingConfig(1, fifo_queue_length, 1), FIFO)
            return
        share_sum = sum(level.nominal_concurrency_shares for level in config.priority_levels)
        for level in config.priority_levels:
            limits = apf_alloc.nominal_limits(limit, level.nominal_concurrency_shares, share_sum,
                                              level.lendable_percent, level.borrowing_limit_percent)
            self.levels[level.name] = Level(env, level, limits, _queuing(level), level.name)
        self.nominal_sum = sum(level.limits.nominal for level in self.levels.values())
        self._adjust_borrowing()
        env.process(self._borrow())

    def recorder(self, kind: str, name: str) -> Recorder:
        key = f"{kind}.{name}."
        if key not in self.recorders:
            self.recorders[key] = Recorder(self.env, self.prefix + key)
        return self.recorders[key]

    def classify(self, request: APIRequest) -> tuple[FlowSchema | None, str]:
        """The first flow schema matching ``request`` and the request's flow distinguisher (remembered for
        requests of the same user, groups, verb, resource, namespace and path)."""
        key = (request.user, request.groups, request.verb, request.resource, request.namespace, request.path)
        if key not in self._classified:
            self._classified[key] = self._match(request)
        return self._classified[key]

    def _match(self, request: APIRequest) -> tuple[FlowSchema | None, str]:
        for schema in self.schemas:
            if schema.match(request.user, request.groups, request.verb, request.resource, request.namespace,
                            request.path):
                by = {"user": request.user, "namespace": request.namespace, None: ""}
                return schema, by[schema.distinguisher]
        return None, ""

    def handle(self, request: APIRequest,
               execute: Callable[[], Generator[Any, Any, Any]] | None = None) -> Generator[Any, Any, int]:
        """Serve ``request`` (a SimPy process body); its value is the HTTP status: 200, 429 or 504. Its
        handler holds its seats for ``request.service_s``, or runs ``execute`` (a generator function: the
        model's own handler, on the server's cores and its storage) when one is given."""
        arrived = self.env.now
        schema, distinguisher = self.classify(request)
        schema_name = schema.name if schema is not None else "none"
        if FIFO in self.levels:
            level = self.levels[FIFO]
        elif schema is None:
            self.recorder("schema", schema_name).rejected.inc()
            return TOO_MANY_REQUESTS
        else:
            level = self.levels[schema.priority_level]
        recorders = (self.recorder("level", level.name), self.recorder("schema", schema_name))
        seats = min(request.seats, level.max_seats)
        admitted = level.queue_set.start_request(WorkEstimate(seats),
                                                 hash_flow_id(schema_name, distinguisher), schema_name,
                                                 distinguisher, wait_limit_s=self.wait_limit_s)
        executed = admitted is not None and (yield admitted.decision)
        if not executed:
            for recorder in recorders:
                recorder.rejected.inc()
            return TOO_MANY_REQUESTS
        assert admitted is not None
        waited = self.env.now - arrived
        for recorder in recorders:
            recorder.waiting_s.record(waited)
            recorder.executing_seats.add(seats)
        if execute is None:
            yield self.env.timeout(request.service_s)
        else:
            yield from execute()
        for recorder in recorders:
            recorder.executing_seats.add(-seats)
        level.queue_set.finish(admitted)
        latency = self.env.now - arrived
        if latency > self.request_timeout_s:
            for recorder in recorders:
                recorder.timed_out.inc()
            return GATEWAY_TIMEOUT
        for recorder in recorders:
            recorder.latency_s.record(latency)
        return OK

    def _borrow(self) -> Generator[Any, Any, None]:
        while True:
            yield self.env.timeout(apf_alloc.BORROWING_PERIOD_S)
            self._adjust_borrowing()

    def _adjust_borrowing(self) -> None:
        levels = list(self.levels.values())
        for level in levels:
            level.observe()
        try:
            limits = apf_alloc.borrowing_limits(self.nominal_sum, [level.limits for level in levels],
                                                [level.exempt for level in levels],
                                                [level.stats for level in levels])
        except apf_alloc.AllocationError:  # upstream keeps the current limits
            return
        for level, current in zip(levels, limits, strict=True):
            level.queue_set.set_concurrency_limit(current)
