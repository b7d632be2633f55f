"""A client's view of one upstream service: balancing, circuit breaking, retry limits, outlier ejection.

Semantics and defaults are Envoy's (the cluster's ``circuit_breakers``,
``outlier_detection`` and the route's ``retry_policy``; Istio's DestinationRule
and VirtualService set the same fields):

* **Circuit breaking** (``max_requests``, default 1024): a client with that
  many requests in flight to the service fails the next at once (overflow).
* **Retry limits**: with a retry budget, retries in flight may not exceed
  ``max(min_retry_concurrency, budget_percent % of the requests in flight)``
  (defaults 3 and 20 %); without one, ``max_retries`` (default 3).
* **Back-off** between attempts: fully jittered exponential, the ``n``-th
  retry waits a uniform draw in ``[0, (2^n - 1) base_interval)`` capped at
  ``max_interval`` (default 25 ms and ten times it;
  ``JitteredExponentialBackOffStrategy``).
* **Outlier detection**: ``consecutive_5xx`` failures in a row from one pod
  (error responses and per-try timeouts) eject it for ``base_ejection_time``
  times the number of times it has been ejected, while at most
  ``max_ejection_percent`` of the pods are ejected but always at least one
  (defaults 5, 30 s, 10 %). The balancer does not pick an ejected pod unless
  every pod is ejected.
* **Local rate limiting** (the ``local_ratelimit`` filter, per pod): a
  token bucket of ``max_tokens``, full at the start, given
  ``tokens_per_fill`` every ``fill_interval``; a request that finds it
  empty is answered 429 at once. A 429 is not retried (Istio's default
  ``retry_on`` has no 429) and is not a 5xx for outlier detection.
* **Retries avoid the pods already tried** (Istio's retry policy: Envoy's
  ``previous_hosts`` retry host predicate with
  ``host_selection_retry_max_attempts`` 5): a retry's pick that lands on a
  pod this call already tried is made again, up to 5 times; not with
  ``ring_hash``, where Istio sets no predicate (a key keeps its pod).
"""

from __future__ import annotations

import math

import numpy as np

from models.arch.balancers import Balancer, RingHash
from models.arch.config import CallConfig, RateLimitConfig, ServiceConfig

HOST_SELECTION_RETRY_MAX_ATTEMPTS = 5
"""Istio's ``host_selection_retry_max_attempts``: picks made again to avoid the pods a call already tried."""


class Upstream:
    """What one client (a pod or the edge) keeps about one service it calls."""

    def __init__(self, balancer: Balancer, config: ServiceConfig, rng: np.random.Generator) -> None:
        self.balancer = balancer
        self.config = config
        self.replicas = balancer.replicas
        """The pods the balancer picks among (its hosts)."""
        self._rng = rng
        self.active = 0
        """Attempts in flight from this client to the service."""
        self.retrying = 0
        """Retries in flight (from the start of their back-off to their end)."""
        slots = balancer.replicas  # one entry per replica index the service can ever have
        self._consecutive = [0] * slots
        self._ejections = [0] * slots
        self._ejected_until = [-math.inf] * slots

    def set_hosts(self, hosts: list[int]) -> None:
        """The service's pods to pick among from now on (replica indices below the balancer's first count)."""
        self.balancer.set_hosts(hosts)
        self.replicas = len(hosts)

    # --------------------------------------------------------------- circuit breaking
    def overflowing(self) -> bool:
        return self.active >= self.config.max_requests

    def may_retry(self) -> bool:
        budget = self.config.retry_budget
        if budget is None:
            return self.retrying < self.config.max_retries
        limit = max(budget.min_retry_concurrency, budget.budget_percent / 100 * self.active)
        return self.retrying < limit

    def backoff(self, retry: int, call: CallConfig) -> float:
        """Seconds to wait before the ``retry``-th retry (1, 2, ...) of ``call``."""
        assert call.retries is not None
        base = call.retries.base_interval
        ceiling = call.retries.max_interval if call.retries.max_interval is not None else 10 * base
        return min(float(self._rng.uniform(0.0, (2**retry - 1) * base)), ceiling)

    # --------------------------------------------------------------- picking and outliers
    def pick(self, key: int, now: float, tried: set[int] | frozenset[int] = frozenset()) -> int:
        """A pod by the balancer, passing over ejected ones (all ejected: the balancer's own pick) and, for
        a retry, over the pods in ``tried`` (see the module docstring)."""
        choice = self._healthy(key, now)
        if not isinstance(self.balancer, RingHash):
            for _ in range(HOST_SELECTION_RETRY_MAX_ATTEMPTS):
                if choice not in tried:
                    break
                self.balancer.done(choice)
                choice = self._healthy(key, now)
        self.active += 1
        return choice

    def _healthy(self, key: int, now: float) -> int:
        choice = self.balancer.pick(key)
        for _ in range(self.replicas):
            if self._ejected_until[choice] <= now:
                break
            self.balancer.done(choice)
            choice = self.balancer.pick(key)
        return choice

    def finished(self, replica: int) -> None:
        self.active -= 1
        self.balancer.done(replica)

    def ejected(self, now: float) -> int:
        return sum(until > now for until in self._ejected_until)

    def outcome(self, replica: int, ok: bool, now: float) -> bool:
        """Count an attempt's outcome at ``replica``; True if this failure ejects it."""
        outlier = self.config.outlier
        if ok:
            self._consecutive[replica] = 0
            return False
        self._consecutive[replica] += 1
        if outlier is None or self._consecutive[replica] < outlier.consecutive_5xx:
            return False
        self._consecutive[replica] = 0
        allowed = max(1, math.floor(outlier.max_ejection_percent / 100 * self.replicas))
        if self._ejected_until[replica] > now or self.ejected(now) >= allowed:
            return False
        self._ejections[replica] += 1
        self._ejected_until[replica] = now + outlier.base_ejection_time * self._ejections[replica]
        return True


class TokenBucket:
    """A pod's local rate limit (see the module docstring), filled lazily as time passes."""

    def __init__(self, config: RateLimitConfig) -> None:
        self.config = config
        self.tokens = config.max_tokens
        self._filled = 0.0

    def take(self, now: float) -> bool:
        """Take a token at ``now``; False if there is none (the request is rate limited)."""
        config = self.config
        fills = math.floor((now - self._filled) / config.fill_interval)
        if fills > 0:
            self.tokens = min(config.max_tokens, self.tokens + fills * config.tokens_per_fill)
            self._filled += fills * config.fill_interval
        if self.tokens <= 0:
            return False
        self.tokens -= 1
        return True
