"""client-go's work queue on a simulated clock: the queue a controller's workers take keys from.

The semantics are those of ``k8s.io/client-go/util/workqueue`` (``queue.go``, ``delaying_queue.go``,
``rate_limiting_queue.go``):

* **Deduplication.** A key added while it waits is not queued twice (it is *dirty*). A key added
  while a worker processes it is remembered and queued again when the worker calls :meth:`done`,
  so one key is never processed by two workers at once and no change is lost.
* :meth:`get` hands out keys first in, first out, to waiting workers in the order they asked.
* :meth:`add_after` adds a key once a delay has passed; a key already waiting for a later time is
  moved to the earlier one (``delaying_queue.go``'s ``insert``).
* :meth:`add_rate_limited` delays by the queue's :mod:`~models.k8s.ratelimit` limiter;
  :meth:`forget` clears the key's failures (``rate_limiting_queue.go``).
* :meth:`shut_down` wakes every waiting worker with no key; keys still queued are dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

import simpy

from models.k8s.ratelimit import RateLimiter, default_controller_rate_limiter

SHUT_DOWN = object()
"""What :meth:`WorkQueue.get`'s event yields once the queue is shut down."""


class WorkQueue:
    """A rate-limited, delaying, deduplicating work queue (client-go's ``RateLimitingInterface``)."""

    def __init__(self, env: simpy.Environment, rate_limiter: RateLimiter | None = None) -> None:
        self.env = env
        self.rate_limiter = rate_limiter if rate_limiter is not None else default_controller_rate_limiter()
        self._queue: deque[Hashable] = deque()
        self._dirty: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._getters: deque[simpy.Event] = deque()
        self._waiting: dict[Hashable, float] = {}  # key -> when add_after adds it
        self.shutting_down = False

    def __len__(self) -> int:
        """Keys queued (not those being processed or waiting for a delay): ``Len``."""
        return len(self._queue)

    def add(self, key: Hashable) -> None:
        """Queue ``key`` unless it is already queued; if it is being processed, queue it when done."""
        if self.shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._push(key)

    def _push(self, key: Hashable) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.triggered:  # a worker that stopped waiting leaves its event behind
                self._hand_out(key, getter)
                return
        self._queue.append(key)

    def _hand_out(self, key: Hashable, getter: simpy.Event) -> None:
        self._processing.add(key)
        self._dirty.discard(key)
        getter.succeed(key)

    def get(self) -> simpy.Event:
        """An event that yields the next key (now if one is queued), or :data:`SHUT_DOWN`."""
        event = self.env.event()
        if self._queue:
            self._hand_out(self._queue.popleft(), event)
        elif self.shutting_down:
            event.succeed(SHUT_DOWN)
        else:
            self._getters.append(event)
        return event

    def done(self, key: Hashable) -> None:
        """The worker finished ``key``; if it was added meanwhile, queue it again."""
        self._processing.discard(key)
        if key in self._dirty:
            self._push(key)

    def shut_down(self) -> None:
        """Stop taking keys; every waiting worker gets :data:`SHUT_DOWN`."""
        self.shutting_down = True
        self._queue.clear()
        while self._getters:
            getter = self._getters.popleft()
            if not getter.triggered:
                getter.succeed(SHUT_DOWN)

    def add_after(self, key: Hashable, delay: float) -> None:
        """:meth:`add` ``key`` after ``delay`` seconds; at once when ``delay`` <= 0."""
        if self.shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        ready_at = self.env.now + delay
        if key in self._waiting and self._waiting[key] <= ready_at:
            return
        self._waiting[key] = ready_at
        self.env.timeout(delay).callbacks.append(lambda _event: self._ready(key, ready_at))

    def _ready(self, key: Hashable, ready_at: float) -> None:
        if self._waiting.get(key) != ready_at:
            return  # superseded by an earlier add_after
        del self._waiting[key]
        self.add(key)

    def add_rate_limited(self, key: Hashable) -> None:
        """Add ``key`` after the rate limiter's delay for it (a failed attempt)."""
        self.add_after(key, self.rate_limiter.when(key, self.env.now))

    def forget(self, key: Hashable) -> None:
        """``key`` succeeded: its failures are no longer counted."""
        self.rate_limiter.forget(key)

    def num_requeues(self, key: Hashable) -> int:
        """The failures of ``key`` the rate limiter counts."""
        return self.rate_limiter.num_requeues(key)
