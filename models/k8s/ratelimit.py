"""Client-side rate limits of Kubernetes clients: the token bucket and the work queue's limiters.

* :class:`TokenBucket` is ``golang.org/x/time/rate``'s ``Limiter`` (``rate/rate.go``), which client-go
  uses for both its REST client's limit (``rest.Config`` QPS 5, burst 10 by default:
  ``client-go/rest/config.go``, ``DefaultQPS``/``DefaultBurst``) and the work queue's overall bucket.
  The bucket holds up to ``burst`` tokens and gains ``limit`` a second; a reservation of ``n`` tokens
  at time ``t`` takes them even when that leaves the bucket negative, and acts once the deficit has
  been earned back; it fails (and takes nothing) when ``n`` exceeds the burst or the wait would be
  longer than the caller allows. ``allow`` is a reservation that may not wait. A limit of 0 grants
  the burst once and nothing after; an infinite limit grants everything. (Cancelling a reservation,
  which returns its tokens, is not modelled: a simulated client never gives up a reservation.)
* The work queue's per-item limiters are client-go's ``util/workqueue/default_rate_limiters.go``:
  per-item exponential back-off (``base × 2^failures``, capped), fast-then-slow, the maximum of
  several, a cap on another's delay, and the overall bucket. Their defaults for controllers
  (:func:`default_controller_rate_limiter`): exponential from 5 ms to 1,000 s per item, and a bucket
  of 10 a second with a burst of 100.

Time is simulated seconds, passed in (``now``); only :func:`throttle`, a client's wait, reads the environment's.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import simpy

REST_QPS = 5.0
"""client-go's REST client: requests a second when ``rest.Config.QPS`` is 0 (``rest/config.go``)."""
REST_BURST = 10
"""client-go's REST client: burst when ``rest.Config.Burst`` is 0 (``rest/config.go``)."""
CONTROLLER_BASE_DELAY_S = 0.005
"""``DefaultControllerRateLimiter``'s per-item exponential back-off: its first delay."""
CONTROLLER_MAX_DELAY_S = 1000.0
"""``DefaultControllerRateLimiter``'s per-item exponential back-off: its longest delay."""
CONTROLLER_BUCKET_QPS = 10.0
"""``DefaultControllerRateLimiter``'s overall bucket: tokens a second."""
CONTROLLER_BUCKET_BURST = 100
"""``DefaultControllerRateLimiter``'s overall bucket: burst."""


@dataclass(frozen=True)
class Reservation:
    """The answer to a reservation: granted or not, and when the caller may act."""

    ok: bool
    time_to_act: float

    def delay(self, now: float) -> float:
        """How long the caller waits from ``now`` (``Reservation.DelayFrom``): 0 when it may act at
        once, infinite when the reservation was refused."""
        if not self.ok:
            return math.inf
        return max(0.0, self.time_to_act - now)


class TokenBucket:
    """``x/time/rate.Limiter``: ``limit`` tokens a second, at most ``burst`` banked; starts full."""

    def __init__(self, limit: float, burst: int) -> None:
        if not (limit >= 0):
            raise ValueError(f"limit must be >= 0 tokens a second, got {limit!r}")
        if not isinstance(burst, int) or isinstance(burst, bool) or burst < 0:
            raise ValueError(f"burst must be an integer >= 0, got {burst!r}")
        self.limit = float(limit)
        self.burst = burst
        self.tokens = float(burst)
        self.last = -math.inf

    def _advance(self, now: float) -> float:
        """The tokens at ``now``; a ``now`` before the last update earns nothing (``advance``)."""
        last = min(self.last, now)
        if math.isinf(last):
            return min(float(self.burst), self.tokens)
        return min(float(self.burst), self.tokens + (now - last) * self.limit)

    def reserve(self, now: float, n: int = 1, max_wait: float = math.inf) -> Reservation:
        """Take ``n`` tokens at ``now`` if that is granted (``reserveN``)."""
        if math.isinf(self.limit):
            return Reservation(True, now)
        if self.limit == 0:
            if self.burst >= n:
                self.burst -= n
                return Reservation(True, now)
            return Reservation(False, now)
        tokens = self._advance(now) - n
        wait = -tokens / self.limit if tokens < 0 else 0.0
        if n > self.burst or wait > max_wait:
            return Reservation(False, now)
        self.last, self.tokens = now, tokens
        return Reservation(True, now + wait)

    def allow(self, now: float, n: int = 1) -> bool:
        """Take ``n`` tokens at ``now`` only if no wait is needed (``AllowN``)."""
        return self.reserve(now, n, max_wait=0.0).ok

    def set_limit(self, now: float, limit: float) -> None:
        """Change the rate from ``now`` on, keeping the tokens earned so far (``SetLimitAt``)."""
        self.tokens, self.last, self.limit = self._advance(now), now, float(limit)

    def set_burst(self, now: float, burst: int) -> None:
        """Change the burst from ``now`` on, keeping the tokens earned so far (``SetBurstAt``)."""
        self.tokens, self.last, self.burst = self._advance(now), now, burst


def throttle(env: simpy.Environment, bucket: TokenBucket) -> Generator[simpy.Event, Any, None]:
    """A client's wait for its rate limit before a request (client-go's ``rest`` client calls ``Wait`` on its
    limiter): take a token now, and wait until it is earned (for ``yield from``)."""
    delay = bucket.reserve(env.now).delay(env.now)
    if delay > 0:
        yield env.timeout(delay)


class RateLimiter(Protocol):
    """client-go's ``workqueue.TypedRateLimiter``: how long to wait before re-adding an item."""

    def when(self, item: Hashable, now: float) -> float:
        """The delay before ``item`` may be added again (counts a failure of the item)."""
        ...

    def forget(self, item: Hashable) -> None:
        """Stop tracking ``item`` (it succeeded)."""
        ...

    def num_requeues(self, item: Hashable) -> int:
        """The failures of ``item`` being tracked."""
        ...


class ItemExponentialFailure:
    """``ItemExponentialFailureRateLimiter``: ``base × 2^failures`` per item, at most ``max_delay``."""

    def __init__(self, base_delay: float, max_delay: float) -> None:
        self.base_delay, self.max_delay = base_delay, max_delay
        self.failures: dict[Hashable, int] = {}

    def when(self, item: Hashable, now: float) -> float:
        exponent = self.failures.get(item, 0)
        self.failures[item] = exponent + 1
        return min(self.max_delay, self.base_delay * 2.0 ** min(exponent, 1023))

    def forget(self, item: Hashable) -> None:
        self.failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self.failures.get(item, 0)


class ItemFastSlow:
    """``ItemFastSlowRateLimiter``: ``fast_delay`` for an item's first ``max_fast_attempts`` failures,
    ``slow_delay`` after."""

    def __init__(self, fast_delay: float, slow_delay: float, max_fast_attempts: int) -> None:
        self.fast_delay, self.slow_delay, self.max_fast_attempts = fast_delay, slow_delay, max_fast_attempts
        self.failures: dict[Hashable, int] = {}

    def when(self, item: Hashable, now: float) -> float:
        self.failures[item] = self.failures.get(item, 0) + 1
        return self.fast_delay if self.failures[item] <= self.max_fast_attempts else self.slow_delay

    def forget(self, item: Hashable) -> None:
        self.failures.pop(item, None)

    def num_requeues(self, item: Hashable) -> int:
        return self.failures.get(item, 0)


class Bucket:
    """``BucketRateLimiter``: every item, whatever it is, reserves a token of one shared bucket."""

    def __init__(self, bucket: TokenBucket) -> None:
        self.bucket = bucket

    def when(self, item: Hashable, now: float) -> float:
        return self.bucket.reserve(now).delay(now)

    def forget(self, item: Hashable) -> None:
        pass

    def num_requeues(self, item: Hashable) -> int:
        return 0


class MaxOf:
    """``MaxOfRateLimiter``: asks every limiter (each counts the failure) and waits the longest."""

    def __init__(self, limiters: Sequence[RateLimiter]) -> None:
        self.limiters = list(limiters)

    def when(self, item: Hashable, now: float) -> float:
        return max((limiter.when(item, now) for limiter in self.limiters), default=0.0)

    def forget(self, item: Hashable) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return max((limiter.num_requeues(item) for limiter in self.limiters), default=0)


class WithMaxWait:
    """``WithMaxWaitRateLimiter``: another limiter's delay, at most ``max_delay``."""

    def __init__(self, limiter: RateLimiter, max_delay: float) -> None:
        self.limiter, self.max_delay = limiter, max_delay

    def when(self, item: Hashable, now: float) -> float:
        return min(self.max_delay, self.limiter.when(item, now))

    def forget(self, item: Hashable) -> None:
        self.limiter.forget(item)

    def num_requeues(self, item: Hashable) -> int:
        return self.limiter.num_requeues(item)


def default_controller_rate_limiter() -> MaxOf:
    """``DefaultControllerRateLimiter``: per-item exponential 5 ms-1,000 s, and 10/s with burst 100."""
    return MaxOf([ItemExponentialFailure(CONTROLLER_BASE_DELAY_S, CONTROLLER_MAX_DELAY_S),
                  Bucket(TokenBucket(CONTROLLER_BUCKET_QPS, CONTROLLER_BUCKET_BURST))])
