"""A counting semaphore whose free slot costs no event: ``capacity`` slots, taken first come, first served.

:class:`simpy.Resource` grants even a free slot through an event, which the
process then waits for: an event and a resumption per acquisition. Where an
acquisition is usually uncontended and there are millions of them (a proxy's
worker and a node's core for each request through a mesh), :class:`Slots`
grants a free slot at once and makes an event only for a process that has to
wait, which it succeeds when a slot is released to it. The order is the
resource's: waiters in the order they came, a released slot going to the
first of them. In a generator process::

    wait = slots.acquire()
    if wait is not None:
        yield wait
    ...  # holding a slot
    slots.release()
"""

from __future__ import annotations

from collections import deque

import simpy

from sim.core import Environment


class Slots:
    """``capacity`` slots: :meth:`acquire` one, :meth:`release` it (see the module docstring)."""

    __slots__ = ("env", "capacity", "count", "_waiting")

    def __init__(self, env: Environment, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1 (got {capacity})")
        self.env = env
        self.capacity = capacity
        self.count = 0
        """Slots held now."""
        self._waiting: deque[simpy.Event] = deque()

    def acquire(self) -> simpy.Event | None:
        """Take a slot: None if one was free (it is held now), else an event that succeeds when it is."""
        if self.count < self.capacity and not self._waiting:
            self.count += 1
            return None
        event = self.env.event()
        self._waiting.append(event)
        return event

    def release(self) -> None:
        """Give back a slot: to the first waiter if there is one (its event succeeds), else free it."""
        if self._waiting:
            self._waiting.popleft().succeed()
        else:
            self.count -= 1

    @property
    def queued(self) -> int:
        """Processes waiting for a slot."""
        return len(self._waiting)
