"""A controller: its informer's events become keys in a work queue, which workers reconcile.

The pattern of client-go controllers (``k8s.io/client-go/tools/cache`` event handlers feeding a
``workqueue.RateLimitingInterface``; the worker loop of kube-controller-manager's controllers such as
``pkg/controller/replicaset``):

* the informer's handler adds the changed object's key to the queue (:mod:`models.k8s.workqueue`:
  one key is never processed by two workers, and changes during processing are not lost);
* ``workers`` goroutines each take a key, run the reconcile (API calls through the seam
  :data:`~models.k8s.api.ApiCall`), and on failure re-add it rate-limited (per-item exponential
  back-off and the overall bucket), on success forget its failures; then mark it done.

The reconcile's generator returns True on success and False on failure.

Metrics: ``PREFIX.reconcile_s``, ``PREFIX.queue_s`` (added to taken), ``PREFIX.reconciled``,
``PREFIX.failures``, ``PREFIX.depth`` (keys queued, time-weighted).
"""

from __future__ import annotations

from collections.abc import Hashable

from sim.core import Environment
from models.k8s.api import ApiCall
from models.k8s.ratelimit import RateLimiter
from models.k8s.workqueue import SHUT_DOWN, WorkQueue


class Controller:
    """``workers`` reconciling the keys of one work queue."""

    def __init__(self, env: Environment, name: str, reconcile: ApiCall, workers: int = 1,
                 rate_limiter: RateLimiter | None = None) -> None:
        if workers < 1:
            raise ValueError(f"{name}: workers must be >= 1, got {workers!r}")
        self.env, self.name, self.reconcile = env, name, reconcile
        self.queue = WorkQueue(env, rate_limiter)
        self._added: dict[Hashable, float] = {}
        metrics = env.metrics
        self.reconcile_s = metrics.histogram(f"{name}.reconcile_s")
        self.queue_s = metrics.histogram(f"{name}.queue_s")
        self.reconciled = metrics.counter(f"{name}.reconciled")
        self.failures = metrics.counter(f"{name}.failures")
        self.depth = metrics.gauge(f"{name}.depth")
        for _ in range(workers):
            env.process(self._work())

    def enqueue(self, key: Hashable) -> None:
        """The informer's handler: an object changed."""
        self._added.setdefault(key, self.env.now)
        self.queue.add(key)
        self.depth.set(len(self.queue))

    def _work(self):
        while True:
            key = yield self.queue.get()
            if key is SHUT_DOWN:
                return
            self.depth.set(len(self.queue))
            now = self.env.now
            self.queue_s.record(now - self._added.pop(key, now))
            ok = yield from self.reconcile(key)
            self.reconcile_s.record(self.env.now - now)
            if ok:
                self.queue.forget(key)
                self.reconciled.inc()
            else:
                self.failures.inc()
                self._added.setdefault(key, self.env.now)
                self.queue.add_rate_limited(key)
            self.queue.done(key)
            self.depth.set(len(self.queue))
