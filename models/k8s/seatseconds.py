"""Work in seat-seconds, in the fixed point Kubernetes' API Priority and Fairness keeps it in.

Upstream (``kubernetes/apiserver`` ``pkg/util/flowcontrol/request/seat_seconds.go``) stores seat-seconds
as an unsigned 64-bit count of 1e-8 seat-seconds, and a duration as whole nanoseconds (Go's
``time.Duration``). The queue set's progress meter R is such a count; because it only grows, upstream winds
it back by half the range when it passes three quarters of it (``queueset.go``, ``advanceEpoch``). Keeping
the same integers here gives the same rounding and the same epoch advances (``TestSeatSecondsRollover``).
"""

from __future__ import annotations

import math

SS_SCALE = 100_000_000
"""Units of a seat-second (``ssScale`` = 1e8)."""
MAX_SEAT_SECONDS = (1 << 64) - 1
"""The largest representable count (``MaxSeatSeconds``)."""
R_DECREMENT = MAX_SEAT_SECONDS // 2
"""How far R is wound back at an epoch advance (``rDecrement``)."""
HIGH_R = R_DECREMENT + R_DECREMENT // 2
"""R at or above which the epoch advances (``highR``)."""
NS_PER_S = 1_000_000_000


def go_round(x: float) -> int:
    """Round half away from zero, as Go's ``math.Round`` (Python's ``round`` rounds half to even)."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def to_ns(seconds: float) -> int:
    """A duration or instant in whole nanoseconds, as Go's ``time.Duration``."""
    return go_round(seconds * NS_PER_S)


def seats_times_duration(seats: float, duration_ns: int) -> int:
    """Work of ``seats`` seats held for ``duration_ns`` nanoseconds, in 1e-8 seat-seconds
    (``SeatsTimesDuration``, the same float operations in the same order)."""
    return go_round(seats * float(duration_ns) / (NS_PER_S / SS_SCALE))


def duration_per_seat_ns(work: int, seats: float) -> int:
    """The duration over which ``seats`` seats do ``work`` (``SeatSeconds.DurationPerSeat``), in ns."""
    return int(float(work) / seats * (NS_PER_S / SS_SCALE))


def to_float(work: int) -> float:
    """Seat-seconds as a float."""
    return work / SS_SCALE
