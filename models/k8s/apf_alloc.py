"""How API Priority and Fairness divides the server's seats among priority levels, and lends them.

The mechanism of upstream's config-consuming controller (``kubernetes/apiserver``
``pkg/util/flowcontrol/apf_controller.go``: ``finishQueueSetReconfigsLocked``, ``updateBorrowingLocked``,
``seatDemandStats.update``; ``conc_alloc.go``: ``computeConcurrencyAllocation``):

* **Nominal limits.** A level with ``shares`` of the sum of all levels' nominal concurrency shares gets
  ``ceil(server_limit * shares / sum)`` seats (so the nominal limits may sum a little above the server's
  limit); it may lend ``round(nominal * lendable_percent / 100)`` of them (``min`` is what is left) and
  borrow ``round(nominal * borrowing_limit_percent / 100)`` more, or the whole server's limit when no
  borrowing limit is set (``max`` = nominal + that). A new level starts at ``nominal - lendable // 2``.
* **Borrowing**, every :data:`BORROWING_PERIOD_S` (10 s): each level's seat demand over the period (seats
  executing plus the widest phase of the requests waiting) gives its high watermark, mean and deviation;
  the smoothed demand is ``max(mean + deviation, A * previous + (1 - A) * (mean + deviation))`` with A =
  0.977 (a half-life of 5 minutes at 10 s steps). An exempt level gets ``max(min, watermark)``. The limited
  levels share the sum of nominal limits by :func:`compute_concurrency_allocation`: each between
  ``max(min, min(nominal, watermark))`` and ``max``, in proportion to ``max(that lower bound, smoothed)``,
  rounded; when the exempt levels leave too little, the limited ones get their ``min`` or a share of the
  way to their lower bound.
* **Widest request.** A queuing level admits requests of at most :func:`max_seats` seats (the work
  estimator's ``maxSeatsFn``); a wider one is cut to it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from models.k8s.seatseconds import go_round

BORROWING_PERIOD_S = 10.0
"""Period of the borrowing adjustment (``borrowingAdjustmentPeriod``)."""
SMOOTHING = 0.977
"""Decay of the smoothed seat demand (``seatDemandSmoothingCoefficient``)."""
MIN_TARGET = 0.001
"""Smallest target an allocation item is given (``MinTarget``)."""
EPSILON = 1e-7
"""Slack of the allocation's feasibility checks (``epsilon``)."""
MAX_SEATS_PERCENT = 0.15
"""Share of a level's nominal limit one request may take (``priorityLevelMaxSeatsPercent``)."""
MAX_LIST_SEATS = 10
"""Seats a request's work estimate never exceeds (``MaximumListSeatsLimit``, ``request/config.go``)."""


class AllocationError(ValueError):
    """An allocation problem without a solution (bounds that cannot meet the required sum)."""


@dataclass(frozen=True)
class AllocItem:
    """One limited level in the allocation: its target (proportional weight) and its bounds, seats."""

    target: float
    lower: float
    upper: float


@dataclass(frozen=True)
class Limits:
    """A level's configured limits, seats: ``nominal``, ``min`` (nominal less lendable), ``max`` (nominal
    plus the borrowing limit) and the limit it starts at."""

    nominal: int
    min: int
    max: int
    initial: int


def nominal_limits(server_limit: int, shares: int, share_sum: int, lendable_percent: int,
                   borrowing_limit_percent: int | None) -> Limits:
    """A level's limits from its shares (``finishQueueSetReconfigsLocked``)."""
    nominal = math.ceil(server_limit * shares / share_sum) if share_sum else 0
    lendable = go_round(nominal * lendable_percent / 100)
    borrowing = server_limit if borrowing_limit_percent is None else go_round(nominal * borrowing_limit_percent / 100)
    return Limits(nominal, nominal - lendable, nominal + borrowing, nominal - lendable // 2)


def max_seats(nominal: int, hand_size: int) -> int:
    """Seats one request of a queuing level may take: ``max(1, min(ceil(0.15 * nominal), nominal //
    hand_size))`` (``finishQueueSetReconfigsLocked``), which the work estimator caps at 10."""
    return int(max(1, min(math.ceil(nominal * MAX_SEATS_PERCENT), nominal // hand_size)))


def compute_concurrency_allocation(required: int, items: Sequence[AllocItem]) -> tuple[list[float], float]:
    """Allocations summing to ``required``, each ``clamp(p * target, lower, upper)`` for one proportion p,
    and p (``computeConcurrencyAllocation``; the same answers, found by walking the breakpoints of the
    piecewise-linear sum). Raises :class:`AllocationError` when the bounds cannot meet ``required``."""
    if required < 0:
        raise AllocationError("negative sums are not supported")
    targets = []
    for index, item in enumerate(items):
        if item.lower < 0:
            raise AllocationError(f"lower bound {index} is {item.lower} but negative lower bounds are not allowed")
        if item.target < item.lower:
            raise AllocationError(f"target {index} is {item.target}, which is below its lower bound of {item.lower}")
        if item.upper < item.lower:
            raise AllocationError(f"upper bound {index} is {item.upper} but should not be less than the "
                                  f"lower bound {item.lower}")
        targets.append(max(item.target, MIN_TARGET))
    low_sum = sum(item.lower for item in items)
    high_sum = sum(item.upper for item in items)
    if low_sum - required > EPSILON:
        raise AllocationError(f"lower bounds sum to {low_sum}, which is higher than the required sum of {required}")
    if required - high_sum > EPSILON:
        raise AllocationError(f"upper bounds sum to {high_sum}, which is lower than the required sum of {required}")
    if required == 0:
        return [0.0] * len(items), 0.0
    if low_sum - required > -EPSILON:
        return [item.lower for item in items], min(item.lower / t for item, t in zip(items, targets, strict=True))
    if required - high_sum > -EPSILON:
        return [item.upper for item in items], max(item.upper / t for item, t in zip(items, targets, strict=True))

    def total(p: float) -> float:
        return sum(max(item.lower, min(item.upper, p * t)) for item, t in zip(items, targets, strict=True))

    points = sorted({bound / t for item, t in zip(items, targets, strict=True) for bound in (item.lower, item.upper)})
    below = points[0]
    for point in points[1:]:
        at = total(point)
        if at >= required:
            start = total(below)
            proportion = below + (required - start) * (point - below) / (at - start)
            break
        below = point
    else:  # pragma: no cover - high_sum > required makes the last breakpoint reach it
        raise AllocationError("impossible: ran out of bounds to consider in bound-constrained problem")
    allocs = [max(item.lower, min(item.upper, proportion * t)) for item, t in zip(items, targets, strict=True)]
    return allocs, proportion


@dataclass
class SeatDemandStats:
    """A level's seat demand over the last period (``seatDemandStats``)."""

    high_watermark: int = 0
    mean: float = 0.0
    deviation: float = 0.0
    smoothed: float = 0.0

    def update(self, duration_s: float, mean: float, deviation: float, maximum: float) -> None:
        self.high_watermark = go_round(maximum)
        if duration_s <= 0:
            return
        self.mean, self.deviation = mean, 0.0 if math.isnan(deviation) else deviation
        envelope = self.mean + self.deviation
        self.smoothed = max(envelope, SMOOTHING * self.smoothed + (1 - SMOOTHING) * envelope)


def borrowing_limits(nominal_sum: int, limits: Sequence[Limits], exempt: Sequence[bool],
                     stats: Sequence[SeatDemandStats]) -> list[int]:
    """Every level's current concurrency limit after a borrowing adjustment (``updateBorrowingLocked``)."""
    remaining = nominal_sum
    items: list[AllocItem] = []
    lower_bounds: list[int] = []
    min_sum = min_current_sum = 0
    for limit, is_exempt, stat in zip(limits, exempt, stats, strict=True):
        if is_exempt:
            lower = max(limit.min, stat.high_watermark)
            remaining -= lower
        else:
            lower = max(limit.min, min(limit.nominal, stat.high_watermark))
            items.append(AllocItem(max(float(lower), stat.smoothed), float(lower), float(limit.max)))
            min_sum += limit.min
            min_current_sum += lower
        lower_bounds.append(lower)
    share = 0.0
    allocs: list[float] = []
    if min_sum < remaining <= min_current_sum:
        share = (remaining - min_sum) / (min_current_sum - min_sum)
    elif remaining > min_current_sum:
        allocs, _ = compute_concurrency_allocation(nominal_sum, items)
    current = []
    position = 0
    for limit, is_exempt, lower in zip(limits, exempt, lower_bounds, strict=True):
        if is_exempt:
            current.append(lower)
            continue
        if remaining <= min_sum:
            current.append(limit.min)
        elif remaining <= min_current_sum:
            current.append(limit.min + go_round((lower - limit.min) * share))
        else:
            current.append(go_round(allocs[position]))
        position += 1
    return current
