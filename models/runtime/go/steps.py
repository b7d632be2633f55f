"""Go-specific steps a request can contain besides Compute, Wait and Syscall.

``go f()`` (:class:`Go`), channel operations (:class:`Send`, :class:`Recv` on a
:class:`Chan`, buffered or not), ``sync.WaitGroup`` (:class:`WaitGroup`,
:class:`Join`) and ``time.Sleep`` (:class:`Sleep`), so that a handler can fan out to goroutines and wait for them
(:func:`fan_out`). Only the detailed runtime (:mod:`models.runtime.go.detailed.runtime`) runs
them; values sent on channels are not modelled, only the synchronisation.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from models.runtime.protocol import Step

if TYPE_CHECKING:
    from models.runtime.go.detailed.state import G


class WaitGroup:
    """A ``sync.WaitGroup``: a count and the goroutines waiting for it to reach zero."""

    __slots__ = ("count", "waiters")

    def __init__(self, count: int = 0) -> None:
        self.count = count
        self.waiters: list[G] = []


class Chan:
    """A channel of ``capacity`` slots (0: unbuffered); values are not modelled, only synchronisation."""

    __slots__ = ("capacity", "buffered", "recvq", "sendq")

    def __init__(self, capacity: int = 0) -> None:
        self.capacity = capacity
        self.buffered = 0
        self.recvq: deque[G] = deque()
        self.sendq: deque[G] = deque()

    def send(self, g: G, ready: Callable[[G], None]) -> bool:
        """``g`` sends: True if the send completes now (a waiting receiver is readied, or a free slot
        taken); otherwise ``g`` waits in the send queue."""
        if self.recvq:
            ready(self.recvq.popleft())
            return True
        if self.buffered < self.capacity:
            self.buffered += 1
            return True
        self.sendq.append(g)
        return False

    def recv(self, g: G, ready: Callable[[G], None]) -> bool:
        """``g`` receives: True if it completes now (from the buffer, whose freed slot a blocked sender's value
        takes, or from a blocked sender); otherwise ``g`` waits in the receive queue."""
        if self.buffered > 0:
            self.buffered -= 1
            if self.sendq:
                self.buffered += 1
                ready(self.sendq.popleft())
            return True
        if self.sendq:
            ready(self.sendq.popleft())
            return True
        self.recvq.append(g)
        return False


@dataclass(frozen=True, slots=True)
class Go:
    """``go f()``: start a goroutine running ``steps``; ``wg.Done()`` when it ends if ``wg`` is given."""

    steps: Sequence[Step | Any]
    wg: WaitGroup | None = None


@dataclass(frozen=True, slots=True)
class Send:
    chan: Chan


@dataclass(frozen=True, slots=True)
class Recv:
    chan: Chan


@dataclass(frozen=True, slots=True)
class Join:
    """``wg.Wait()``."""

    wg: WaitGroup


@dataclass(frozen=True, slots=True)
class Sleep:
    """``time.Sleep(duration_s)``: park on a timer of the current P. ``observe``, if given, is called
    with how late the goroutine runs again after the timer's due time (seconds), as calibration's
    ``schedlat`` harness measures it."""

    duration_s: float
    observe: Callable[[float], None] | None = None


def fan_out(branches: Sequence[Sequence[Step | Any]]) -> list[Any]:
    """Steps that start one goroutine per branch and wait for all of them (WaitGroup)."""
    wg = WaitGroup(len(branches))
    return [Go(branch, wg) for branch in branches] + [Join(wg)]
