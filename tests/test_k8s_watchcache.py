"""The watch cache's history, channel sizes and dispatch budget, held to the upstream tests.

Cases from ``k8s.io/apiserver`` ``pkg/storage/cacher/watch_cache_test.go`` (``TestDynamicCache``,
``TestSuggestedWatchChannelSize``, ``TestCapacityUpperBound``, ``TestCacheIncreaseDoesNotBreakWatch``)
and ``time_budget_test.go`` (``TestTimeBudget``): their inputs and expected values, in our form.
"""

from __future__ import annotations

import pytest

from models.k8s.watchcache import (
    DEFAULT_EVENT_FRESH_DURATION_S as FRESH,
    UPPER_BOUND_CAPACITY,
    TimeBudget,
    TooOldResourceVersion,
    WatchCacheHistory,
    capacity_upper_bound,
)


@pytest.mark.parametrize("count, capacity, start, lower, upper, interval, want_capacity, want_start", [
    # [capacity not equals 4*n]
    (5, 5, 0, 2, 10, FRESH / 6, 10, 0),       # events inside the fresh duration: expand
    (5, 5, 0, 2, 10, FRESH / 4, 5, 0),        # events outside it: unchanged
    (5, 5, 0, 2, 10, FRESH + 1, 2, 3),        # newest quarter outside it: shrink
    (5, 5, 0, 3, 10, FRESH + 1, 3, 2),        # ... to the given lower bound
    (5, 5, 0, 2, 8, FRESH / 6, 8, 0),         # expand to the given upper bound
    (5, 5, 3, 2, 10, FRESH / 6, 10, 3),       # [startIndex not equal 0] ...
    (5, 5, 3, 2, 10, FRESH / 4, 5, 3),
    (5, 5, 3, 2, 10, FRESH + 1, 2, 6),
    (5, 5, 3, 3, 10, FRESH + 1, 3, 5),
    (5, 5, 3, 2, 8, FRESH / 6, 8, 3),
    # [capacity equals 4*n]
    (8, 8, 0, 4, 16, FRESH / 9, 16, 0),
    (8, 8, 0, 4, 16, FRESH / 8, 8, 0),
    (8, 8, 0, 4, 16, FRESH / 2 + 1, 4, 4),
    (8, 8, 0, 7, 16, FRESH / 2 + 1, 7, 1),
    (8, 8, 0, 4, 10, FRESH / 9, 10, 0),
    (8, 8, 3, 4, 16, FRESH / 9, 16, 3),
    (8, 8, 3, 4, 16, FRESH / 8, 8, 3),
    (8, 8, 3, 4, 16, FRESH / 2 + 1, 4, 7),
    (8, 8, 3, 7, 16, FRESH / 2 + 1, 7, 4),
    (8, 8, 3, 4, 10, FRESH / 9, 10, 3),
])
def test_dynamic_cache(count, capacity, start, lower, upper, interval, want_capacity, want_start):  # TestDynamicCache
    history = WatchCacheHistory(FRESH, capacity=capacity, lower_bound=lower, upper_bound=upper)
    history.start = start
    history.load(count, 0.0, interval, first_version=start + 1)
    history.resize(interval * count)
    assert (history.capacity, history.start, history.end) == (want_capacity, want_start, start + count)
    held = [history._versions[i % history.capacity] for i in range(history.start, history.end)]
    assert held == list(range(history.start + 1, history.end + 1))  # every event where it belongs


@pytest.mark.parametrize("capacity, index, trigger, fresh_factor, want", [
    (100, True, True, 1, 10), (100, True, False, 1, 10), (100, False, False, 1, 10),
    (750, True, True, 1, 10), (750, True, False, 1, 10), (750, False, False, 1, 10),
    (7500, True, True, 1, 10), (7500, True, False, 1, 100), (7500, True, False, 2, 50),
    (7500, False, False, 1, 100), (7500, False, False, 2, 50),
    (75000, True, True, 1, 10), (75000, True, False, 1, 1000), (75000, True, False, 2, 500),
    (75000, False, False, 1, 100),
    (750000, True, True, 1, 10), (750000, True, False, 1, 1000), (750000, False, False, 1, 100),
])
def test_suggested_watch_channel_size(capacity, index, trigger, fresh_factor, want):  # TestSuggestedWatchChannelSize
    history = WatchCacheHistory(fresh_factor * FRESH, capacity=capacity)
    assert history.suggested_watch_channel_size(index, trigger) == want


@pytest.mark.parametrize("fresh, want", [
    (FRESH, UPPER_BOUND_CAPACITY), (45.0, UPPER_BOUND_CAPACITY), (4 * FRESH, 4 * UPPER_BOUND_CAPACITY),
    (3 * FRESH, 4 * UPPER_BOUND_CAPACITY), (FRESH * 2**20, UPPER_BOUND_CAPACITY << 14),
])
def test_capacity_upper_bound(fresh, want):  # TestCapacityUpperBound
    assert capacity_upper_bound(fresh) == want


def test_cache_increase_does_not_break_watch():  # TestCacheIncreaseDoesNotBreakWatch
    history = WatchCacheHistory(FRESH, capacity=2, lower_bound=2, upper_bound=UPPER_BOUND_CAPACITY)
    history.replace(10)  # the initial list at RV 10
    history.add(20, 0.0)
    later = 2 * FRESH  # key1 rotates out
    history.add(30, later)
    history.add(40, later)
    history.add(50, later + 1)  # the cache grows
    with pytest.raises(TooOldResourceVersion, match="too old resource version"):
        history.check_resumable(15)
    history.check_resumable(29)  # the oldest event held is 30


def test_time_budget():  # TestTimeBudget
    budget = TimeBudget(now=0.0, refresh=0.05, most=0.2)
    assert budget.take_available(0.0) == 0
    assert budget.take_available(10.0) == pytest.approx(0.2)  # longer than the budget's worth
    assert budget.take_available(12.0) == pytest.approx(2 * 0.05)
    budget.return_unused(0.05)
    assert budget.take_available(12.0) == pytest.approx(0.05)
    budget.return_unused(-50e-9)
    assert budget.take_available(12.0) == 0
    assert budget.take_available(12.0 - 120) == 0  # back in time, empty budget
    assert budget.take_available(12.0 - 120 + 600) == pytest.approx(0.2)
    budget.return_unused(10.0)
    assert budget.take_available(12.0 - 240 + 600) == pytest.approx(0.2)  # back in time, full budget
