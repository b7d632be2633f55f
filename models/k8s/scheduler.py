"""kube-scheduler's loop on a simulated clock: one scheduling cycle at a time, bindings in parallel.

The mechanism of ``pkg/scheduler/schedule_one.go``:

* Pending pods wait in the scheduling queue (first in, first out here: every pod has the same
  priority). The scheduler takes one at a time: its **scheduling cycle** filters nodes until it has
  found :func:`~models.k8s.scheduling.num_feasible_nodes_to_find` feasible ones (round-robin from
  where the last cycle stopped, so ``nodes evaluated`` = feasible needed / the feasible fraction,
  at most every node), scores those, and picks one. Filtering and scoring run on ``parallelism``
  goroutines (16 by default, ``KubeSchedulerConfiguration.parallelism``) but on no more cores than
  the scheduler has.
* The **binding cycle** then runs on its own goroutine: a POST of the pod's binding to the API
  server, through the scheduler's client-side rate limit (``clientConnection`` QPS 50, burst 100
  by default: ``KubeSchedulerConfiguration`` v1 defaults, ``pkg/scheduler/apis/config/v1/defaults.go``).
  The next scheduling cycle does not wait for it.

The per-node filter and score costs are settings: kube-scheduler cannot be built here to measure
them (its module graph needs the Go module proxy), and no public source fixes them.

Metrics: ``PREFIX.scheduling_s`` (a cycle), ``PREFIX.binding_s`` (the binding call, rate limit
included), ``PREFIX.e2e_s`` (queued to bound), ``PREFIX.scheduled``, ``PREFIX.nodes_evaluated``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable

import simpy

from sim.core import Environment
from models.k8s.api import ApiCall
from models.k8s.ratelimit import TokenBucket, throttle
from models.k8s.scheduling import num_feasible_nodes_to_find

PARALLELISM = 16
"""``KubeSchedulerConfiguration.parallelism`` default (``pkg/scheduler/apis/config/v1/defaults.go``)."""
CLIENT_QPS = 50.0
"""kube-scheduler's ``clientConnection.qps`` default (``pkg/scheduler/apis/config/v1/defaults.go``)."""
CLIENT_BURST = 100
"""kube-scheduler's ``clientConnection.burst`` default (``pkg/scheduler/apis/config/v1/defaults.go``)."""


class Scheduler:
    """kube-scheduler: a queue of pending pods, a serial scheduling cycle, bindings in parallel."""

    def __init__(self, env: Environment, nodes: int, bind: ApiCall, filter_s_per_node: float,
                 score_s_per_node: float, cores: float = 1.0, feasible_fraction: float = 1.0,
                 percentage_of_nodes_to_score: int = 0, parallelism: int = PARALLELISM,
                 qps: float = CLIENT_QPS, burst: int = CLIENT_BURST, prefix: str = "scheduler",
                 limiter: TokenBucket | None = None) -> None:
        if nodes < 1:
            raise ValueError(f"nodes must be >= 1, got {nodes!r}")
        if not 0 < feasible_fraction <= 1:
            raise ValueError(f"feasible_fraction must be within (0, 1], got {feasible_fraction!r}")
        self.env, self.bind = env, bind
        self.limiter = limiter if limiter is not None else TokenBucket(qps, burst)
        """The scheduler's client-side limit (its own, or its client's when a model shares one)."""
        wanted = num_feasible_nodes_to_find(nodes, percentage_of_nodes_to_score)
        self.nodes_evaluated = min(nodes, math.ceil(wanted / feasible_fraction))
        feasible = min(wanted, round(nodes * feasible_fraction))
        width = max(1.0, min(float(parallelism), cores))
        self.cycle_s = (self.nodes_evaluated * filter_s_per_node + feasible * score_s_per_node) / width
        self.pending: simpy.Store = simpy.Store(env)
        metrics = env.metrics
        self.scheduling = metrics.histogram(f"{prefix}.scheduling_s")
        self.binding = metrics.histogram(f"{prefix}.binding_s")
        self.e2e = metrics.histogram(f"{prefix}.e2e_s")
        self.scheduled = metrics.counter(f"{prefix}.scheduled")
        self.evaluated = metrics.counter(f"{prefix}.nodes_evaluated")
        env.process(self._schedule())

    def submit(self, pod: Hashable = None, on_bound: Callable[[], None] | None = None) -> None:
        """A new pending pod (the scheduler's informer saw it); ``bind`` is called with ``pod``, and
        ``on_bound`` runs once it is bound."""
        self.pending.put((self.env.now, pod, on_bound))

    def _schedule(self):
        while True:
            queued, pod, on_bound = yield self.pending.get()
            start = self.env.now
            yield self.env.timeout(self.cycle_s)
            self.scheduling.record(self.env.now - start)
            self.evaluated.inc(self.nodes_evaluated)
            self.env.process(self._bind(queued, pod, on_bound))

    def _bind(self, queued: float, pod: Hashable, on_bound: Callable[[], None] | None):
        start = self.env.now
        yield from throttle(self.env, self.limiter)
        yield from self.bind(pod)
        self.binding.record(self.env.now - start)
        self.e2e.record(self.env.now - queued)
        self.scheduled.inc()
        if on_bound is not None:
            on_bound()
