"""kube-apiserver's watch fan-out: one dispatcher, a buffer per watcher, and closing watchers that lag.

The mechanism of ``k8s.io/apiserver/pkg/storage/cacher`` (``cacher.go`` ``dispatchEvent``,
``cache_watcher.go`` ``add``), on a simulated clock:

* Events reach the cache in resource-version order and are recorded in its history
  (:class:`~models.k8s.watchcache.WatchCacheHistory`); **one dispatcher** hands each event, in turn,
  to every watcher it concerns: those watching everything and, through the index, those whose
  trigger value (a kubelet's node name) the event carries.
* A watcher holds a bounded buffer (its ``input`` and ``result`` channels, each of the suggested
  channel size); its client drains it at its own pace (``consume``: seconds per event).
* If a watcher's buffer is full, the dispatcher waits for it, but only as long as the shared
  :class:`~models.k8s.watchcache.TimeBudget` allows; once that has run out, every watcher still full
  is **closed** ("Forcing watcher close due to unresponsiveness") and its client must watch again.
  While the dispatcher waits, every other watcher waits too: one slow client delays all of them by
  up to the budget.
* A new watch from a resource version first receives the events since it from the history; a
  version the history no longer holds fails with 410 Gone
  (:class:`~models.k8s.watchcache.TooOldResourceVersion`), and the client lists again.

Metrics: ``PREFIX.delivery_s`` (from an event's record to its client consuming it),
``PREFIX.dispatch_wait_s`` (the dispatcher blocked per event that blocked it),
``PREFIX.terminated`` (watchers closed for lagging), ``PREFIX.events``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable

import simpy

from sim.core import Environment
from models.k8s.watchcache import TimeBudget, WatchCacheHistory

Event = tuple[int, float, Hashable]
"""A watch event: its resource version, when the cache recorded it, the object's key."""


class CacheWatcher:
    """One watch on the cache: its buffer, its client's pace, whether it was closed and why."""

    def __init__(self, cacher: Cacher, name: str, resource_version: int, buffer_events: int,
                 consume: Callable[[], float], trigger: Hashable | None,
                 on_event: Callable[[Hashable], None] | None = None) -> None:
        self.cacher, self.env, self.name = cacher, cacher.env, name
        self.buffer_events, self.consume, self.trigger = buffer_events, consume, trigger
        self.on_event = on_event  # the client's handler, given the object's key
        self.resource_version = resource_version  # the newest event its client has consumed
        self.backlog: deque[Event] = deque()  # events since the watch's start, from history
        self.buffer: deque[Event] = deque()
        self.closed = cacher.env.event()  # value: "lagging" (closed by the server) or "stopped"
        self._space: simpy.Event | None = None
        self._wake: simpy.Event | None = None
        self.env.process(self._drain())

    @property
    def active(self) -> bool:
        return not self.closed.triggered

    def offer(self, event: Event) -> bool:
        """Put an event in the buffer if there is room (``nonblockingAdd``)."""
        if len(self.buffer) >= self.buffer_events:
            return False
        self.buffer.append(event)
        if self._wake is not None and not self._wake.triggered:
            self._wake.succeed()
        return True

    def space(self) -> simpy.Event:
        """An event that fires when the client takes an event out of the full buffer."""
        self._space = self.env.event()
        return self._space

    def stop(self, reason: str = "stopped") -> None:
        """End the watch (the client's timeout, or the server closing it)."""
        if self.active:
            self.closed.succeed(reason)
            self.cacher.forget(self)
            if self._wake is not None and not self._wake.triggered:
                self._wake.succeed()

    def _drain(self):
        while self.active:
            queue = self.backlog or self.buffer
            if not queue:
                self._wake = self.env.event()
                yield self._wake
                continue
            version, recorded, key = queue.popleft()
            if queue is self.buffer and self._space is not None and not self._space.triggered:
                self._space.succeed()
            cost = self.consume()
            if cost > 0:
                yield self.env.timeout(cost)
            if not self.active:
                return
            self.resource_version = version
            self.cacher.delivered(self.env.now - recorded)
            if self.on_event is not None:
                self.on_event(key)


class Cacher:
    """The watch cache of one resource: its history, its watchers and the dispatcher between them."""

    def __init__(self, env: Environment, history: WatchCacheHistory | None = None, prefix: str = "watch",
                 budget: TimeBudget | None = None) -> None:
        self.env = env
        self.history = history if history is not None else WatchCacheHistory()
        self.budget = budget if budget is not None else TimeBudget(env.now)
        self.resource_version = 1  # the cache's initial list from storage
        self.history.replace(self.resource_version)
        self.everything: list[CacheWatcher] = []
        self.by_trigger: dict[Hashable, list[CacheWatcher]] = {}
        self._incoming: simpy.Store = simpy.Store(env)
        metrics = env.metrics
        self.delivery = metrics.histogram(f"{prefix}.delivery_s")
        self.dispatch_wait = metrics.histogram(f"{prefix}.dispatch_wait_s")
        self.terminated = metrics.counter(f"{prefix}.terminated")
        self.events = metrics.counter(f"{prefix}.events")
        env.process(self._dispatch())

    def record(self, trigger: Hashable | None = None, key: Hashable = None) -> int:
        """A change of object ``key`` reached the cache from storage now: record it and queue it for
        dispatch; returns its resource version. ``trigger`` is the indexed field's value (None: none)."""
        self.resource_version += 1
        now = self.env.now
        self.history.add(self.resource_version, now, key)
        self._incoming.put(((self.resource_version, now, key), trigger))
        self.events.inc()
        return self.resource_version

    def watch(self, name: str, resource_version: int, consume: Callable[[], float],
              trigger: Hashable | None = None, buffer_events: int | None = None,
              on_event: Callable[[Hashable], None] | None = None) -> CacheWatcher:
        """Start a watch from ``resource_version`` (raises ``TooOldResourceVersion``); ``trigger``
        restricts it to the events carrying that value, through the index; ``on_event`` is called
        with each consumed event's key."""
        self.history.check_resumable(resource_version)
        if buffer_events is None:
            buffer_events = 2 * self.history.suggested_watch_channel_size(True, trigger is not None)
        watcher = CacheWatcher(self, name, resource_version, buffer_events, consume, trigger, on_event)
        watcher.backlog.extend(self.history.since(resource_version))
        if trigger is None:
            self.everything.append(watcher)
        else:
            self.by_trigger.setdefault(trigger, []).append(watcher)
        return watcher

    def forget(self, watcher: CacheWatcher) -> None:
        group = self.everything if watcher.trigger is None else self.by_trigger.get(watcher.trigger, [])
        if watcher in group:
            group.remove(watcher)

    def delivered(self, latency_s: float) -> None:
        self.delivery.record(latency_s)

    def _dispatch(self):
        while True:
            event, trigger = yield self._incoming.get()
            targets = self.everything if trigger is None else self.everything + self.by_trigger.get(trigger, [])
            blocked = [watcher for watcher in list(targets) if not watcher.offer(event)]
            if not blocked:
                continue
            start = self.env.now
            timeout = self.budget.take_available(start)
            deadline, expired = start + timeout, False
            for watcher in blocked:
                if not watcher.active or watcher.offer(event):
                    continue
                if not expired and deadline > self.env.now:
                    space = watcher.space()
                    yield space | self.env.timeout(deadline - self.env.now)
                    if space.triggered and watcher.active and watcher.offer(event):
                        continue
                expired = True
                self.terminated.inc()
                watcher.stop("lagging")
            self.budget.return_unused(timeout - (self.env.now - start))
            self.dispatch_wait.record(self.env.now - start)
