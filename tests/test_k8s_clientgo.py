"""Client-side rate limits, the work queue and the scheduler's node sampling, held to upstream tests.

Each case's inputs and expected outputs are those of the upstream test named beside it:
``golang.org/x/time/rate`` ``rate/rate_test.go``; ``k8s.io/client-go`` ``util/workqueue/
default_rate_limiters_test.go``, ``rate_limiting_queue_test.go``, ``queue_test.go`` and
``util/flowcontrol/throttle_test.go``; ``kubernetes/kubernetes`` ``pkg/scheduler/
schedule_one_test.go``. Upstream's times are multiples of ``d`` = 100 ms from ``t0``.
"""

from __future__ import annotations

import pytest

from sim.core import Environment
from models.k8s.ratelimit import (
    REST_BURST,
    REST_QPS,
    Bucket,
    ItemExponentialFailure,
    ItemFastSlow,
    MaxOf,
    TokenBucket,
    WithMaxWait,
    default_controller_rate_limiter,
)
from models.k8s.scheduling import num_feasible_nodes_to_find
from models.k8s.workqueue import SHUT_DOWN, WorkQueue

D = 0.1
MS = 1e-3


def t(k: float) -> float:
    return k * D


# --- x/time/rate -------------------------------------------------------------------------------


@pytest.mark.parametrize("name, limit, burst, allows", [
    ("TestLimiterBurst1", 10, 1, [(0, 1, True), (0, 1, False), (0, 1, False), (1, 1, True), (1, 1, False),
                                  (1, 1, False), (2, 2, False), (2, 1, True), (2, 1, False)]),
    ("TestLimiterBurst3", 10, 3, [(0, 2, True), (0, 2, False), (0, 1, True), (0, 1, False), (1, 4, False),
                                  (2, 1, True), (3, 1, True), (4, 1, True), (4, 1, True), (4, 1, False),
                                  (4, 1, False), (9, 3, True), (9, 0, True)]),
    ("TestLimiterJumpBackwards", 10, 3, [(1, 1, True), (0, 1, True), (0, 1, True), (0, 1, False), (0, 1, False),
                                         (1, 1, True), (1, 1, False), (1, 1, False), (2, 1, True), (2, 1, False),
                                         (2, 1, False)]),
    ("TestZeroLimit", 0, 1, [(0, 1, True), (0, 1, False)]),
])
def test_token_bucket_allow(name, limit, burst, allows):
    bucket = TokenBucket(limit, burst)
    got = [bucket.allow(t(at), n) for at, n, _ in allows]
    assert got == [ok for _, _, ok in allows], name


@pytest.mark.parametrize("name, limit, burst, steps", [
    # ("reserve", at, n, act, ok) | ("allow", at, n, ok) | ("set_limit" / "set_burst", at, value)
    ("TestSimpleReserve", 10, 2, [("reserve", 0, 2, 0, True), ("reserve", 0, 2, 2, True),
                                  ("reserve", 3, 2, 4, True)]),
    ("TestMix", 10, 2, [("reserve", 0, 3, 1, False), ("reserve", 0, 2, 0, True), ("allow", 1, 2, False),
                        ("reserve", 1, 2, 2, True), ("allow", 1, 1, False), ("allow", 3, 1, True)]),
    ("TestReserveJumpBack", 10, 2, [("reserve", 1, 2, 1, True), ("reserve", 0, 1, 1, True),
                                    ("reserve", 2, 2, 3, True)]),
    ("TestReserveSetLimit", 5, 2, [("reserve", 0, 2, 0, True), ("reserve", 0, 2, 4, True), ("set_limit", 2, 10),
                                   ("reserve", 2, 1, 4, True)]),
    ("TestReserveSetBurst", 5, 2, [("reserve", 0, 2, 0, True), ("reserve", 0, 2, 4, True), ("set_burst", 3, 4),
                                   ("reserve", 0, 4, 9, True)]),
])
def test_token_bucket_reserve(name, limit, burst, steps):
    bucket = TokenBucket(limit, burst)
    for step in steps:
        kind, at = step[0], t(step[1])
        if kind == "reserve":
            reservation = bucket.reserve(at, step[2])
            assert reservation.ok == step[4], (name, step)
            if reservation.ok:
                assert reservation.time_to_act == pytest.approx(t(step[3]), abs=D / 2), (name, step)
        elif kind == "allow":
            assert bucket.allow(at, step[2]) == step[3], (name, step)
        elif kind == "set_limit":
            bucket.set_limit(at, step[2])
        else:
            bucket.set_burst(at, step[2])


def test_reserve_max():  # TestReserveMax
    bucket = TokenBucket(10, 2)
    assert bucket.reserve(t(0), 2, max_wait=D).time_to_act == pytest.approx(t(0))
    assert bucket.reserve(t(0), 1, max_wait=D).time_to_act == pytest.approx(t(1))
    assert not bucket.reserve(t(0), 1, max_wait=D).ok  # time to act too far in the future


def test_simultaneous_requests():  # TestSimultaneousRequests: 15 at once, limit 1/s, burst 5
    bucket = TokenBucket(1, 5)
    assert sum(bucket.allow(0.0) for _ in range(15)) == 5


def test_rest_client_throttle():  # throttle_test.go: TestBasicThrottle, TestIncrementThrottle, TestThrottle
    basic = TokenBucket(1, 3)
    assert [basic.allow(0.0) for _ in range(4)] == [True, True, True, False]
    increment = TokenBucket(1, 1)
    assert [increment.allow(0.0), increment.allow(0.0), increment.allow(2.0)] == [True, False, True]
    throttle = TokenBucket(10, 5)  # 16 accepted: 5 at once, then 11 at 0.1 s each
    last = max(throttle.reserve(0.0).time_to_act for _ in range(16))
    assert last >= 1.0
    assert (REST_QPS, REST_BURST) == (5.0, 10)


def test_token_bucket_rejects_bad_settings():
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(1, -1)
    with pytest.raises(ValueError, match="limit"):
        TokenBucket(-1, 1)


# --- client-go work queue rate limiters ----------------------------------------------------------


def test_item_exponential_failure():  # TestItemExponentialFailureRateLimiter
    limiter = ItemExponentialFailure(1 * MS, 1.0)
    assert [limiter.when("one", 0) for _ in range(5)] == pytest.approx([1 * MS, 2 * MS, 4 * MS, 8 * MS, 16 * MS])
    assert limiter.num_requeues("one") == 5
    assert [limiter.when("two", 0) for _ in range(2)] == pytest.approx([1 * MS, 2 * MS])
    assert limiter.num_requeues("two") == 2
    limiter.forget("one")
    assert limiter.num_requeues("one") == 0
    assert limiter.when("one", 0) == pytest.approx(1 * MS)


def test_item_exponential_failure_overflow():  # TestItemExponentialFailureRateLimiterOverFlow
    limiter = ItemExponentialFailure(1 * MS, 1000.0)
    for _ in range(5):
        limiter.when("one", 0)
    assert limiter.when("one", 0) == pytest.approx(32 * MS)
    for _ in range(1000):
        limiter.when("overflow1", 0)
    assert limiter.when("overflow1", 0) == 1000.0
    limiter = ItemExponentialFailure(60.0, 1000 * 3600.0)
    for _ in range(2):
        limiter.when("two", 0)
    assert limiter.when("two", 0) == pytest.approx(4 * 60.0)
    for _ in range(1000):
        limiter.when("overflow2", 0)
    assert limiter.when("overflow2", 0) == 1000 * 3600.0


def test_item_fast_slow():  # TestItemFastSlowRateLimiter
    limiter = ItemFastSlow(5 * MS, 10.0, 3)
    assert [limiter.when("one", 0) for _ in range(5)] == [5 * MS] * 3 + [10.0] * 2
    assert limiter.num_requeues("one") == 5
    assert [limiter.when("two", 0) for _ in range(2)] == [5 * MS] * 2
    assert limiter.num_requeues("two") == 2
    limiter.forget("one")
    assert limiter.num_requeues("one") == 0
    assert limiter.when("one", 0) == 5 * MS


def test_max_of():  # TestMaxOfRateLimiter
    limiter = MaxOf([ItemFastSlow(5 * MS, 3.0, 3), ItemExponentialFailure(1 * MS, 1.0)])
    assert [limiter.when("one", 0) for _ in range(5)] == pytest.approx([5 * MS] * 3 + [3.0] * 2)
    assert limiter.num_requeues("one") == 5
    assert [limiter.when("two", 0) for _ in range(2)] == pytest.approx([5 * MS] * 2)
    assert limiter.num_requeues("two") == 2
    limiter.forget("one")
    assert limiter.num_requeues("one") == 0
    assert limiter.when("one", 0) == pytest.approx(5 * MS)


class _Step:
    """The upstream test's ``StepRateLimiter``: ``base`` for the first ``threshold`` calls, then ``max``."""

    def __init__(self, base: float, most: float, threshold: int) -> None:
        self.base, self.most, self.threshold, self.count = base, most, threshold, 0

    def when(self, item, now):
        self.count += 1
        return self.base if self.count <= self.threshold else self.most

    def forget(self, item):
        pass

    def num_requeues(self, item):
        return 0


def test_with_max_wait():  # TestWithMaxWaitRateLimiter
    limiter = WithMaxWait(_Step(5 * MS, 1000.0, 100), 500.0)
    assert [limiter.when(i, 0) for i in range(100)] == [5 * MS] * 100
    assert [limiter.when(i, 0) for i in range(100, 200)] == [500.0] * 100


def test_default_controller_rate_limiter():
    """DefaultControllerRateLimiter: the bucket's 100-token burst at 10/s, the per-item back-off above it."""
    limiter = default_controller_rate_limiter()
    delays = [limiter.when(f"key{i}", 0.0) for i in range(101)]
    assert delays[:100] == pytest.approx([5 * MS] * 100)
    assert delays[100] == pytest.approx(0.1)
    assert isinstance(limiter.limiters[1], Bucket)


# --- client-go work queue ------------------------------------------------------------------------


def _take(env: Environment, queue: WorkQueue):
    event = queue.get()
    assert event.triggered, "no key queued"
    return event.value


def test_queue_len():  # TestLen
    queue = WorkQueue(Environment())
    queue.add("foo")
    queue.add("bar")
    queue.add("foo")
    assert len(queue) == 2


def test_queue_reinsert():  # TestReinsert
    env = Environment()
    queue = WorkQueue(env)
    queue.add("foo")
    key = _take(env, queue)
    assert key == "foo"
    queue.add(key)  # added back while processing
    queue.done(key)
    assert _take(env, queue) == "foo"
    queue.done("foo")
    assert len(queue) == 0


def test_queue_collapse():  # TestCollapse
    env = Environment()
    queue = WorkQueue(env)
    queue.add("bar")
    queue.add("bar")
    assert _take(env, queue) == "bar"
    queue.done("bar")
    assert len(queue) == 0


def test_queue_collapse_while_processing():  # TestCollapseWhileProcessing
    env = Environment()
    queue = WorkQueue(env)
    queue.add("foo")
    assert _take(env, queue) == "foo"
    queue.add("foo")
    queue.add("foo")
    other = queue.get()  # another worker waits: the key is being processed
    assert not other.triggered
    queue.done("foo")
    assert other.triggered and other.value == "foo"
    queue.done("foo")
    assert len(queue) == 0


def test_queue_add_while_processing():  # TestAddWhileProcessing: 50 keys, 10 workers, each re-adds twice
    env = Environment()
    queue = WorkQueue(env)
    processed: dict[int, int] = {}

    def worker():
        counters: dict[int, int] = {}
        while True:
            key = yield queue.get()
            if key is SHUT_DOWN:
                return
            counters[key] = counters.get(key, 0) + 1
            processed[key] = processed.get(key, 0) + 1
            yield env.timeout(0.001)
            if counters[key] < 2:
                queue.add(key)
            queue.done(key)

    for key in range(50):
        queue.add(key)
    for _ in range(10):
        env.process(worker())
    env.run(until=10)
    queue.shut_down()
    env.run(until=11)
    assert len(queue) == 0
    assert set(processed) == set(range(50))
    assert all(count >= 2 for count in processed.values())


def test_rate_limiting_queue():  # TestRateLimitingQueue
    env = Environment()
    queue = WorkQueue(env, ItemExponentialFailure(1 * MS, 1.0))
    queue.add_rate_limited("one")
    assert queue._waiting["one"] == pytest.approx(1 * MS)
    queue.add_rate_limited("one")  # 2 ms: the 1 ms entry is earlier and stays
    assert queue.num_requeues("one") == 2
    queue.add_rate_limited("two")
    queue.add_rate_limited("two")
    queue.forget("one")
    assert queue.num_requeues("one") == 0
    env.run(until=0.01)
    assert len(queue) == 2


def _step(env: Environment, seconds: float) -> None:
    env.run(until=env.now + seconds)


def test_delaying_add_two_fire_early():  # delaying_queue_test.go: TestAddTwoFireEarly
    env = Environment()
    queue = WorkQueue(env)
    queue.add_after("foo", 1.0)
    queue.add_after("bar", 0.05)
    assert len(queue) == 0
    _step(env, 0.06)
    assert _take(env, queue) == "bar"
    queue.add_after("baz", 2.0)
    _step(env, 1.0)
    assert _take(env, queue) == "foo"
    _step(env, 2.0)
    assert _take(env, queue) == "baz"


def test_delaying_deduping():  # delaying_queue_test.go: TestDeduping
    env = Environment()
    queue = WorkQueue(env)
    queue.add_after("foo", 0.05)
    queue.add_after("foo", 0.07)
    assert len(queue) == 0
    _step(env, 0.06)
    queue.done(_take(env, queue))
    _step(env, 0.02)  # past the second add: it was merged into the first
    assert len(queue) == 0
    queue.add_after("foo", 0.05)
    queue.add_after("foo", 0.03)  # the earlier one wins
    assert len(queue) == 0
    _step(env, 0.04)
    queue.done(_take(env, queue))
    _step(env, 0.02)
    assert len(queue) == 0


# --- kube-scheduler ------------------------------------------------------------------------------


@pytest.mark.parametrize("percentage, nodes, want", [
    (0, 10, 10),      # not set percentageOfNodesToScore and nodes number not more than 50
    (40, 10, 10),     # set percentageOfNodesToScore and nodes number not more than 50
    (0, 1000, 420),   # not set percentageOfNodesToScore and nodes number more than 50
    (40, 1000, 400),  # set percentageOfNodesToScore and nodes number more than 50
    (0, 6000, 300),   # not set percentageOfNodesToScore and nodes number more than 50*125
    (40, 6000, 2400),  # set percentageOfNodesToScore and nodes number more than 50*125
])
def test_num_feasible_nodes_to_find(percentage, nodes, want):  # TestNumFeasibleNodesToFind
    assert num_feasible_nodes_to_find(nodes, percentage) == want


def test_num_feasible_nodes_rejects_bad_percentage():
    with pytest.raises(ValueError, match="percentage_of_nodes_to_score"):
        num_feasible_nodes_to_find(100, 120)
