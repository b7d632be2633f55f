"""kube-apiserver's watch cache: the window of recent events a watch can resume from, and its sizes.

The facts are those of ``k8s.io/apiserver/pkg/storage/cacher`` (``watch_cache_history.go``,
``watch_cache.go``, ``cacher.go``, ``time_budget.go``):

* **History.** The cache keeps the latest events in a cyclic buffer. When it is full and every event
  in it is younger than the *fresh duration* (75 s: the 1-minute bookmark frequency plus 15 s), it
  doubles, up to 102,400 events (more for a longer fresh duration, to the next power of two); when it
  is full and even the newest quarter is older than that, it halves, down to 100. A full buffer drops
  its oldest event.
* **Too old.** A watch from a resource version older than the buffer's oldest event (or, if nothing
  was dropped since the last relist, than that list) fails with 410 Gone, "too old resource version":
  the client must list again.
* **Channel size.** Each watcher gets buffers of about one second of history: capacity / fresh
  duration, at least 10 and at most 10 (an indexed watch with a trigger, such as a kubelet's pods),
  1,000 (indexed without trigger) or 100 (no index).
* **Dispatch budget.** When a watcher's buffer is full, the dispatcher waits for it at most the time
  in a shared budget that gains 50 ms a second up to 100 ms; a watcher still full then is closed
  (:class:`TimeBudget`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable

DEFAULT_EVENT_FRESH_DURATION_S = 75.0
"""``DefaultEventFreshDuration``: ``defaultBookmarkFrequency`` (1 min) + 15 s (``cacher.go``)."""
LOWER_BOUND_CAPACITY = 100
"""``defaultLowerBoundCapacity`` (``watch_cache_history.go``)."""
UPPER_BOUND_CAPACITY = 100 * 1024
"""``defaultUpperBoundCapacity`` (``watch_cache_history.go``)."""
MIN_WATCH_CHAN_SIZE = 10
"""``minWatchChanSize`` (``watch_cache_history.go``)."""
MAX_WATCH_CHAN_SIZE_INDEX_AND_TRIGGER = 10
"""``maxWatchChanSizeWithIndexAndTrigger``."""
MAX_WATCH_CHAN_SIZE_INDEX_WITHOUT_TRIGGER = 1000
"""``maxWatchChanSizeWithIndexWithoutTrigger``."""
MAX_WATCH_CHAN_SIZE_WITHOUT_INDEX = 100
"""``maxWatchChanSizeWithoutIndex``."""
BUDGET_REFRESH_PER_S = 0.05
"""``refreshPerSecond``: dispatch budget gained per second (``time_budget.go``)."""
BUDGET_MAX_S = 0.1
"""``maxBudget``: the most dispatch budget banked (``time_budget.go``)."""
INT32_MAX = 2**31 - 1


class TooOldResourceVersion(Exception):
    """410 Gone: the watch asked for events the cache no longer holds."""


def capacity_upper_bound(event_fresh_duration: float) -> int:
    """The largest history: 102,400 events, scaled by the fresh duration over 75 s rounded up to a
    power of two, capped to fit a 32-bit integer (``capacityUpperBound``)."""
    if event_fresh_duration <= DEFAULT_EVENT_FRESH_DURATION_S:
        return UPPER_BOUND_CAPACITY
    exponent = math.ceil(math.log2(event_fresh_duration / DEFAULT_EVENT_FRESH_DURATION_S))
    exponent = min(exponent, math.floor(math.log2(INT32_MAX / UPPER_BOUND_CAPACITY)))
    return UPPER_BOUND_CAPACITY << exponent


class WatchCacheHistory:
    """The cyclic buffer of recent events: their resource versions and the times they were recorded.

    Indices grow without bound; event ``i`` is held while ``start <= i < end``.
    """

    def __init__(self, event_fresh_duration: float = DEFAULT_EVENT_FRESH_DURATION_S,
                 capacity: int = LOWER_BOUND_CAPACITY, lower_bound: int = LOWER_BOUND_CAPACITY,
                 upper_bound: int | None = None) -> None:
        if event_fresh_duration <= 0:
            raise ValueError(f"event_fresh_duration must be > 0 s, got {event_fresh_duration!r}")
        self.event_fresh_duration = event_fresh_duration
        self.capacity = capacity
        self.lower_bound = lower_bound
        self.upper_bound = capacity_upper_bound(event_fresh_duration) if upper_bound is None else upper_bound
        self.start = self.end = 0
        self.removed_since_relist = False
        self.list_resource_version = 0
        self._times: list[float] = [0.0] * capacity
        self._versions: list[int] = [0] * capacity
        self._keys: list[Hashable] = [None] * capacity

    def __len__(self) -> int:
        return self.end - self.start

    def full(self) -> bool:
        return self.end == self.start + self.capacity

    def record_time(self, index: int) -> float:
        return self._times[index % self.capacity]

    def add(self, resource_version: int, record_time: float, key: Hashable = None) -> None:
        """Record an event of object ``key`` (``updateCache``): resize if due, drop the oldest if full."""
        self.resize(record_time)
        if self.full():
            self.start += 1
            self.removed_since_relist = True
        slot = self.end % self.capacity
        self._times[slot], self._versions[slot], self._keys[slot] = record_time, resource_version, key
        self.end += 1

    def load(self, count: int, first_time: float, interval: float, first_version: int = 1) -> None:
        """Fill ``count`` slots from the current start without resizing (the upstream tests' set-up)."""
        for i in range(count):
            slot = (self.start + i) % self.capacity
            self._times[slot], self._versions[slot] = first_time + i * interval, first_version + i
        self.end = self.start + count

    def resize(self, event_time: float) -> None:
        """Double when full of fresh events, halve when even the newest quarter is stale
        (``resizeCacheLocked``)."""
        if not self.full():
            return
        if event_time - self.record_time(self.start) < self.event_fresh_duration:
            capacity = min(self.capacity * 2, self.upper_bound)
            if capacity > self.capacity:
                self._rebuild(capacity)
            return
        if event_time - self.record_time(self.end - self.capacity // 4) > self.event_fresh_duration:
            capacity = max(self.capacity // 2, self.lower_bound)
            if capacity < self.capacity:
                self._rebuild(capacity)

    def _rebuild(self, capacity: int) -> None:
        if capacity < self.capacity:
            self.start = self.end - capacity
        times, versions = [0.0] * capacity, [0] * capacity
        keys: list[Hashable] = [None] * capacity
        for index in range(self.start, self.end):
            old, new = index % self.capacity, index % capacity
            times[new], versions[new], keys[new] = self._times[old], self._versions[old], self._keys[old]
        self._times, self._versions, self._keys, self.capacity = times, versions, keys, capacity

    def replace(self, resource_version: int) -> None:
        """A relist of the cache from storage at ``resource_version`` empties the buffer (``Replace``)."""
        self.start = self.end
        self.removed_since_relist = False
        self.list_resource_version = resource_version

    def oldest_resumable(self) -> int:
        """The oldest resource version a watch can start from (``GetIntervalLocked``)."""
        if self.list_resource_version > 0 and not self.removed_since_relist:
            return self.list_resource_version
        if len(self) == 0:
            raise TooOldResourceVersion("watch cache is not initialized")
        return self._versions[self.start % self.capacity] - 1

    def check_resumable(self, resource_version: int) -> None:
        """Raise :class:`TooOldResourceVersion` when a watch from ``resource_version`` cannot be served."""
        oldest = self.oldest_resumable()
        if resource_version < oldest:
            raise TooOldResourceVersion(f"too old resource version: {resource_version} ({oldest})")

    def since(self, resource_version: int) -> list[tuple[int, float, Hashable]]:
        """The held events newer than ``resource_version``: (resource version, record time, key), oldest
        first."""
        slots = (i % self.capacity for i in range(self.start, self.end))
        return [(self._versions[s], self._times[s], self._keys[s]) for s in slots
                if self._versions[s] > resource_version]

    def suggested_watch_channel_size(self, index_exists: bool, trigger_used: bool) -> int:
        """A watcher's channel: about a second of history, within the bounds above."""
        size = max(MIN_WATCH_CHAN_SIZE, math.ceil(self.capacity / self.event_fresh_duration))
        if index_exists and trigger_used:
            most = MAX_WATCH_CHAN_SIZE_INDEX_AND_TRIGGER
        elif index_exists:
            most = MAX_WATCH_CHAN_SIZE_INDEX_WITHOUT_TRIGGER
        else:
            most = MAX_WATCH_CHAN_SIZE_WITHOUT_INDEX
        return min(size, most)


class TimeBudget:
    """The dispatcher's budget for waiting on full watchers: gains ``refresh`` seconds per second up
    to ``most``; a dispatch takes all of it and returns what it did not use (``timeBudgetImpl``)."""

    def __init__(self, now: float = 0.0, refresh: float = BUDGET_REFRESH_PER_S, most: float = BUDGET_MAX_S) -> None:
        self.budget, self.refresh, self.most, self.last = 0.0, refresh, most, now

    def take_available(self, now: float) -> float:
        self.budget = min(self.most, self.budget + max(0.0, (now - self.last) * self.refresh))
        self.last = now
        taken, self.budget = self.budget, 0.0
        return taken

    def return_unused(self, unused: float) -> None:
        if unused >= 0:
            self.budget = min(self.most, self.budget + unused)
