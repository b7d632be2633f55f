"""Timers a component can move: one pending SimPy timeout that a later setting supersedes.

SimPy cannot take a scheduled event back, so a component that keeps "the next
thing that happens to me" (the next departure of a processor-sharing station,
the end of a CPU slice) arms a new timeout whenever that moment moves and
ignores the ones it superseded when they fire: a token, bumped by every
setting, tells the live one from the stale ones.

:func:`advance_clock` lets a component that keeps its own calendar of
frequent, private events run them in one SimPy callback, moving the clock to
each, as long as no SimPy event is due first.
"""

from __future__ import annotations

from collections.abc import Callable

import simpy


class Timer:
    """A single-shot timer calling ``callback()`` when it fires, unless set again or cancelled first."""

    __slots__ = ("env", "callback", "token", "at")

    def __init__(self, env: simpy.Environment, callback: Callable[[], None]) -> None:
        self.env = env
        self.callback = callback
        self.token = 0
        self.at: float | None = None
        """When the live timeout fires (simulated seconds); None when none is pending."""

    def set(self, delay: float) -> None:
        """Fire ``delay`` seconds from now, superseding any pending setting."""
        self.token = token = self.token + 1
        env = self.env
        self.at = env._now + delay  # noqa: SLF001 - the clock without the property call (hot path)
        env.timeout(delay).callbacks.append(lambda _event: self._fire(token))

    def set_at_rate(self, work: float, rate: float) -> None:
        """Fire when ``work`` is done at ``rate`` units per second from now; while ``rate`` is 0, not at all."""
        if rate > 0:
            self.set(max(work, 0.0) / rate)
        else:
            self.cancel()

    def set_no_later(self, delay: float) -> None:
        """Make sure the timer fires ``delay`` seconds from now or before: a pending one due no later
        is kept (the callback must then find out that it is early), which saves a SimPy event."""
        pending, now = self.at, self.env.now
        if pending is not None and now <= pending <= now + delay:
            return
        self.set(delay)

    def cancel(self) -> None:
        self.token += 1
        self.at = None

    def _fire(self, token: int) -> None:
        if token == self.token:
            self.at = None
            self.callback()


def advance_clock(env: simpy.Environment, at: float) -> bool:
    """Move ``env``'s clock to ``at`` if no SimPy event is due by then; False (clock unmoved) otherwise.

    For a component that runs its own events inside one SimPy callback: between
    the SimPy event being processed and the next one in SimPy's queue nothing
    else can happen, so the clock may stand at any instant in between while the
    component handles its event there. Anything the component schedules
    meanwhile (``env.timeout``, ``event.succeed``) enters the queue relative to
    that instant and stops the run ahead if it is due earlier.
    """
    if at <= env.now:
        return True
    if at >= env.peek():
        return False
    env._now = at  # noqa: SLF001 - SimPy keeps the clock in this attribute (simpy/core.py)
    return True
