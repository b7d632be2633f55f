"""One priority level's queue set: fair queuing for server requests, on a SimPy environment.

The mechanism of Kubernetes' API Priority and Fairness queue set (``kubernetes/apiserver``
``pkg/util/flowcontrol/fairqueuing/queueset/queueset.go``, its package ``doc.go`` and ``types.go``):

* **Virtual time.** A progress meter R counts seat-seconds given to each non-empty queue; it advances at
  ``min(C, seats asked) / active queues`` per second, where C is the concurrency limit (seats), the seats
  asked are those in use plus the widest phase of every waiting request, and a queue is active while it
  has a request waiting or executing (``getVirtualTimeRatioLocked``). R is kept in upstream's fixed point,
  with its epoch advances (:mod:`models.k8s.seatseconds`).
* **Work.** A request of ``initial_seats`` seats is guessed to take ``G`` = 3 ms
  (``estimatedServiceDuration``); its work is ``initial_seats * G`` plus ``final_seats *
  additional_latency`` (the seats it keeps after its reply, e.g. a mutating request's watch notifications).
* **Arrival.** The flow's hash deals a hand of queues (:mod:`models.k8s.shufflesharding`); the queue of
  the hand with the least waiting work wins, the scan starting at an offset that turns with every arrival
  (``shuffleShardLocked``). The request is rejected (``queue-full``) when all seats are in use and that
  queue holds ``queue_length_limit`` requests; else it is queued, and a queue that was idle starts at the
  current R (``nextDispatchR``).
* **Dispatch.** While seats are free, the queue whose head would finish first in virtual time
  (``nextDispatchR`` + the head's work) is chosen, scanning round robin from the last one served; its head
  is dispatched if its widest phase fits in the free seats (or nothing runs and it is wider than C), else
  nothing is dispatched until seats free up (``findDispatchQueueToBoundLocked``). The queue's
  ``nextDispatchR`` grows by the request's work; at the end it is corrected by ``initial_seats * (G -
  actual)``, and never left behind the arrival R of its oldest waiting request (anti-windup,
  ``boundNextDispatchLocked``).
* **Seats** are held for the execution and, at ``final_seats``, for ``additional_latency`` after it.
* **Queue wait limit.** A request whose wait limit (upstream: its context deadline, see
  ``pkg/server/filters/priority-and-fairness.go``) passes while it waits is removed and rejected
  (``time-out``).
* **Without queues** (``desired_num_queues`` 0) a request runs at once if its seats fit and is rejected
  (``concurrency-limit``) otherwise; ``desired_num_queues`` < 0 is the exempt level: every request runs.

Not modelled: changes of configuration while running (queues removed by attrition), upstream's debug dumps.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

import simpy

from models.k8s import seatseconds as ss
from models.k8s.shufflesharding import Dealer
from sim.stats import Gauge

ESTIMATED_SERVICE_S = 0.003
"""G, the guess at a request's service time (``queueSet.estimatedServiceDuration``: 3 ms)."""
QUEUE_FULL, CONCURRENCY_LIMIT, TIME_OUT = "queue-full", "concurrency-limit", "time-out"
"""Reasons of rejection, as upstream's ``apiserver_flowcontrol_rejected_requests_total`` labels them."""


@dataclass(frozen=True)
class WorkEstimate:
    """Seats a request takes while it executes (``initial_seats``), and after it (``final_seats`` for
    ``additional_latency_s``) (upstream ``request.WorkEstimate``)."""

    initial_seats: int = 1
    final_seats: int = 0
    additional_latency_s: float = 0.0

    @property
    def max_seats(self) -> int:
        return max(self.initial_seats, self.final_seats)


@dataclass(frozen=True)
class QueuingConfig:
    """How a level queues (upstream ``fairqueuing.QueuingConfig``): ``desired_num_queues`` > 0 queues with
    shuffle sharding, 0 none (reject when full), < 0 exempt."""

    desired_num_queues: int
    queue_length_limit: int = 0
    hand_size: int = 0


class Request:
    """A request admitted to a queue set. ``decision`` succeeds with True when it may execute, False when
    it was removed from its queue (time-out or cancel)."""

    def __init__(self, qs: QueueSet, work: WorkEstimate, fs_name: str, flow: str,
                 queue: Queue | None, queue_note: Callable[[bool], None] | None) -> None:
        self.fs_name = fs_name
        self.flow = flow
        self.queue = queue
        self.initial_seats = work.initial_seats
        self.final_seats = work.final_seats
        self.additional_latency_ns = ss.to_ns(work.additional_latency_s)
        self.max_seats = work.max_seats
        self.queued_seats = work.max_seats
        """Seats counted while it waited (its widest phase before any cut to the limit)."""
        self.final_work = ss.seats_times_duration(work.final_seats, self.additional_latency_ns)
        self.total_work = ss.seats_times_duration(work.initial_seats, qs.estimated_service_ns) + self.final_work
        self.arrival_r = qs.current_r
        self.arrival_s = qs.env.now
        self.start_s = qs.env.now
        self.decision: simpy.Event = qs.env.event()
        self.queue_note = queue_note

    def note_queued(self, in_queue: bool) -> None:
        if self.queue_note is not None:
            self.queue_note(in_queue)


class Queue:
    """A FIFO of waiting requests with the sums the queue set reads (upstream ``queue`` and ``fifo``)."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.waiting: deque[Request] = deque()
        self.executing: set[Request] = set()
        self.next_dispatch_r = 0
        self.seats_in_use = 0
        self.max_seats_sum = 0
        self.total_work_sum = 0

    def enqueue(self, request: Request) -> None:
        self.waiting.append(request)
        self.max_seats_sum += request.max_seats
        self.total_work_sum += request.total_work

    def remove(self, request: Request) -> None:
        self.waiting.remove(request)
        self.max_seats_sum -= request.max_seats
        self.total_work_sum -= request.total_work

    @property
    def active(self) -> bool:
        return bool(self.waiting or self.executing)


class QueueSet:
    """Fair queuing of one priority level over ``concurrency_limit`` seats (module docstring)."""

    def __init__(self, env: simpy.Environment, config: QueuingConfig, concurrency_limit: int,
                 name: str = "") -> None:
        self.env = env
        self.config = config
        self.name = name
        self.concurrency_limit = concurrency_limit
        self.dealer = Dealer(config.desired_num_queues, config.hand_size) if config.desired_num_queues > 0 else None
        self.queues = [Queue(i) for i in range(max(config.desired_num_queues, 0))]
        self.estimated_service_ns = ss.to_ns(ESTIMATED_SERVICE_S)
        self.current_r = 0
        self.last_ns = ss.to_ns(env.now)
        self.robin_index = 0
        self.enqueues = 0
        self.active_queues = 0
        """Queues with a request waiting or executing (kept as they change, not counted at each sync)."""
        self.nonempty: set[int] = set()
        """Indices of the queues with a request waiting."""
        self._hands: dict[int, list[int]] = {}
        """Each flow's hand, dealt once (a flow's hand never changes)."""
        self.requests_waiting = 0
        self.requests_executing = 0
        self.seats_in_use = 0
        self.seats_waiting = 0
        self.epoch_advances = 0
        self.rejected: Counter[tuple[str, str]] = Counter()
        """Rejections by (flow schema, reason)."""
        self.waiting_by_fs: Counter[str] = Counter()
        self.executing_by_fs: Counter[str] = Counter()
        self.seat_demand = Gauge(env)
        """Seats in use plus the widest phase of every waiting request (upstream's seat demand)."""
        self.seat_demand_squared = Gauge(env)

    # -- the request's side -------------------------------------------------------------------------

    def start_request(self, work: WorkEstimate, hash_value: int, fs_name: str, flow: str = "",
                      wait_limit_s: float | None = None,
                      queue_note: Callable[[bool], None] | None = None) -> Request | None:
        """Admit a request (upstream ``StartRequest``): None if rejected (counted in :attr:`rejected`),
        else a :class:`Request` to wait on (``yield request.decision``), then to :meth:`finish`."""
        self._sync_time()
        if self.config.desired_num_queues < 1:
            if not self._can_accommodate(work.max_seats):
                self.rejected[fs_name, CONCURRENCY_LIMIT] += 1
                return None
            request = Request(self, work, fs_name, flow, None, queue_note)
            request.decision.succeed(True)
            self._start_executing(request)
            return request
        assert self.dealer is not None
        queue = self.queues[self._shuffle_shard(hash_value)]
        request = Request(self, work, fs_name, flow, queue, queue_note)
        if self.seats_in_use >= self.concurrency_limit and len(queue.waiting) >= self.config.queue_length_limit:
            self._bound_next_dispatch(queue)
            self.rejected[fs_name, QUEUE_FULL] += 1
            return None
        if not queue.active:
            queue.next_dispatch_r = self.current_r
            self.active_queues += 1
        queue.enqueue(request)
        self.nonempty.add(queue.index)
        self.requests_waiting += 1
        self.seats_waiting += request.max_seats
        self.waiting_by_fs[fs_name] += 1
        request.note_queued(True)
        self._set_demand()
        self._bound_next_dispatch(queue)
        if wait_limit_s is not None:
            self.env.timeout(wait_limit_s).callbacks.append(lambda _: self._expire(request))
        self._dispatch_as_much_as_possible()
        return request

    def finish(self, request: Request) -> bool:
        """The request's execution is over: its seats go (now, or after its additional latency) and
        waiting requests are dispatched (upstream ``finishRequestAndDispatchAsMuchAsPossible``). Returns
        whether the queue set is idle."""
        self._sync_time()
        self.requests_executing -= 1
        self.executing_by_fs[request.fs_name] -= 1
        actual_ns = ss.to_ns(self.env.now) - ss.to_ns(request.start_s)
        queue = request.queue
        if queue is not None:
            queue.executing.discard(request)
            self.active_queues -= not queue.active
            queue.next_dispatch_r -= ss.seats_times_duration(request.initial_seats,
                                                             self.estimated_service_ns - actual_ns)
            self._bound_next_dispatch(queue)
        if request.additional_latency_ns <= 0:
            self._release_seats(request)
        else:
            self.env.timeout(request.additional_latency_ns / ss.NS_PER_S).callbacks.append(
                lambda _: self._release_after_latency(request))
        self._dispatch_as_much_as_possible()
        return self.idle

    def cancel(self, request: Request) -> bool:
        """The request's context ends while it waits (upstream: the decision becomes ``decisionCancel``):
        it leaves its queue, counted as a rejection for ``time-out``. Returns False if it was no longer
        waiting."""
        if request.decision.triggered:
            return False
        self._sync_time()
        queue = request.queue
        assert queue is not None
        queue.remove(request)
        self._note_removed(queue)
        self.requests_waiting -= 1
        self.seats_waiting -= request.max_seats
        self.waiting_by_fs[request.fs_name] -= 1
        self.rejected[request.fs_name, TIME_OUT] += 1
        request.note_queued(False)
        self._set_demand()
        self._bound_next_dispatch(queue)
        request.decision.succeed(False)
        return True

    def set_concurrency_limit(self, limit: int) -> None:
        """A new concurrency limit (upstream ``setConfiguration``), then dispatch what now fits."""
        self._sync_time()
        self.concurrency_limit = limit
        self._dispatch_as_much_as_possible()

    def take_seat_demand(self) -> tuple[float, float, float, float]:
        """The seat demand since the last call (or the start): its duration (s), time-weighted mean,
        deviation and maximum; then start a new period (upstream's ``seatDemandIntegrator.Reset``)."""
        demand, squared = self.seat_demand, self.seat_demand_squared
        duration = self.env.now - demand.start
        mean = demand.mean()
        deviation = max(squared.mean() - mean * mean, 0.0) ** 0.5
        result = (duration, mean, deviation, demand.max)
        demand.reset()
        squared.reset()
        return result

    @property
    def idle(self) -> bool:
        return self.requests_waiting == 0 and self.requests_executing == 0

    # -- virtual time -------------------------------------------------------------------------------

    def _sync_time(self) -> None:
        now_ns = ss.to_ns(self.env.now)
        elapsed_ns, self.last_ns = now_ns - self.last_ns, now_ns
        self.current_r += ss.seats_times_duration(self._virtual_time_ratio(), elapsed_ns)
        if self.current_r >= ss.HIGH_R:
            self._advance_epoch()

    def _virtual_time_ratio(self) -> float:
        """``min(C, seats in use + widest phases waiting) / active queues`` over the queues (0 without
        queues); the sums are the queue set's totals, equal to upstream's loop over its queues."""
        if not self.active_queues:
            return 0.0
        seats_requested = self.seats_in_use + self.seats_waiting
        return min(float(seats_requested), float(self.concurrency_limit)) / self.active_queues

    def _advance_epoch(self) -> None:
        self.current_r -= ss.R_DECREMENT
        self.epoch_advances += 1
        for queue in self.queues:
            if not queue.active:
                queue.next_dispatch_r = 0
                continue
            queue.next_dispatch_r -= ss.R_DECREMENT
            for request in queue.waiting:
                request.arrival_r -= ss.R_DECREMENT

    def _bound_next_dispatch(self, queue: Queue) -> None:
        if queue.waiting and queue.next_dispatch_r < queue.waiting[0].arrival_r:
            queue.next_dispatch_r = queue.waiting[0].arrival_r

    # -- queues and dispatch ------------------------------------------------------------------------

    def _shuffle_shard(self, hash_value: int) -> int:
        hand = self._hands.get(hash_value)
        if hand is None:
            assert self.dealer is not None
            hand = self._hands[hash_value] = self.dealer.hand(hash_value)
        offset = self.enqueues % len(hand)
        self.enqueues += 1
        best, least = -1, ss.MAX_SEAT_SECONDS
        for i in range(len(hand)):
            index = hand[(offset + i) % len(hand)]
            work = self.queues[index].total_work_sum
            if work < least:
                best, least = index, work
        return best

    def _can_accommodate(self, seats: int) -> bool:
        if self.config.desired_num_queues < 0:
            return True
        if seats > self.concurrency_limit:
            return self.requests_executing == 0
        return self.seats_in_use + seats <= self.concurrency_limit

    def _dispatch_as_much_as_possible(self) -> None:
        while self.requests_waiting and self.seats_in_use < self.concurrency_limit and self._dispatch():
            pass

    def _dispatch(self) -> bool:
        found = self._find_dispatch_queue()
        if found is None:
            return False
        chosen, request = found
        self.requests_waiting -= 1
        self.seats_waiting -= request.queued_seats
        self.waiting_by_fs[request.fs_name] -= 1
        request.note_queued(False)
        chosen.executing.add(request)
        chosen.seats_in_use += request.max_seats
        self._start_executing(request)
        chosen.next_dispatch_r += request.total_work
        self._bound_next_dispatch(chosen)
        request.decision.succeed(True)
        return True

    def _find_dispatch_queue(self) -> tuple[Queue, Request] | None:
        """The queue whose head finishes first in virtual time, and that head, taken off its queue; None if
        that head's seats are not free (upstream ``findDispatchQueueToBoundLocked``).

        Upstream scans every queue round robin from the one after the last served and keeps the first
        least virtual finish; queues with nothing waiting never win, so only the others are visited, in
        the same cyclic order; a scan that dispatches nothing leaves the index where a full turn does."""
        chosen: Queue | None = None
        chosen_index = 0
        least = ss.MAX_SEAT_SECONDS
        count = len(self.queues)
        start = self.robin_index + 1
        for index in sorted(self.nonempty, key=lambda i: (i - start) % count):
            queue = self.queues[index]
            finish_r = queue.next_dispatch_r + queue.waiting[0].total_work
            if finish_r < least:
                chosen, chosen_index, least = queue, index, finish_r
        self.robin_index %= count
        if chosen is None:
            return None
        request = chosen.waiting[0]
        if not self._can_accommodate(request.max_seats):
            return None
        chosen.remove(request)
        if not chosen.waiting:
            self.nonempty.discard(chosen.index)
        self.robin_index = chosen_index
        request.queued_seats = request.max_seats
        if request.final_seats > self.concurrency_limit:
            # final seats beyond the limit are cut to it, their latency stretched to keep the work
            request.additional_latency_ns = ss.duration_per_seat_ns(request.final_work, self.concurrency_limit)
            request.final_seats = self.concurrency_limit
            request.max_seats = max(request.initial_seats, request.final_seats)
        return chosen, request

    def _note_removed(self, queue: Queue) -> None:
        if not queue.waiting:
            self.nonempty.discard(queue.index)
        self.active_queues -= not queue.active

    def _start_executing(self, request: Request) -> None:
        request.start_s = self.env.now
        self.requests_executing += 1
        self.executing_by_fs[request.fs_name] += 1
        self.seats_in_use += request.max_seats
        self._set_demand()

    def _release_seats(self, request: Request) -> None:
        self.seats_in_use -= request.max_seats
        if request.queue is not None:
            request.queue.seats_in_use -= request.max_seats
        self._set_demand()

    def _release_after_latency(self, request: Request) -> None:
        self._sync_time()
        self._release_seats(request)
        self._dispatch_as_much_as_possible()

    def _expire(self, request: Request) -> None:
        self.cancel(request)

    def _set_demand(self) -> None:
        demand = self.seats_in_use + self.seats_waiting
        self.seat_demand.set(demand)
        self.seat_demand_squared.set(demand * demand)
