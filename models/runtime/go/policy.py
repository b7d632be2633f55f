"""The Go scheduler's policy that both fidelities run: where the next goroutine comes from.

The detailed runtime (:mod:`models.runtime.go.detailed`) and the fast one
(:mod:`models.runtime.go.fast`) keep different state (Ps and goroutines;
servers and jobs), but they take work the same way, after ``runtime/proc.go``
and ``runtime/mgc.go``, so that a change to Go's policy is made once, here:

* :func:`take_global_batch`: ``globrunqget``, a batch of the global queue,
  ``min(len / GOMAXPROCS + 1, 128)``, the first to run and the rest to the
  P's local queue;
* :func:`steal_start` and :func:`steal_half`: ``stealWork`` visits the other
  Ps from a random start and ``runqsteal`` takes half of the first non-empty
  local queue (Go walks the Ps in a random coprime order; here from a random
  start, in order);
* :class:`ReadyList`: the netpoller's ready goroutines and when it was last
  polled; ``netpoll(0)`` returns them newest first (``netpollready`` pushes on
  the head of a ``gList``, ``runtime/netpoll.go``), and :func:`inject_poll` /
  :func:`inject_global` hand them out (``injectglist``: one to each idle P
  through the global queue, the rest on the polling P's local queue, or all
  to the global queue when sysmon polls);
* :class:`MarkPhase`: the mark's bookkeeping (its start, the dedicated
  workers still to start, the fractional goal) and the choice of
  ``findRunnableGCWorker``: a dedicated worker while some are missing, else a
  fractional burst while the P's share of mark time is at most the goal,
  until it exceeds 1.2 times the goal, at least ``drainCheckThreshold`` of
  scan work.

Everything here is plain data and functions on queues (``collections.deque``)
of whatever a fidelity queues; none of it draws random numbers itself.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from models.runtime.go.constants import (
    DEDICATED, DRAIN_CHECK_BYTES, FRACTIONAL, FRACTIONAL_OVERSHOOT, GLOBAL_BATCH_MAX, LOCAL_RUNQ_SLOTS,
    NETPOLL_STALE_S, CpuKind,
)

T = TypeVar("T")


def take_global_batch(global_q: deque[T], local: deque[T], procs: int) -> T:
    """``globrunqget``: the first of a batch of the (non-empty) global queue to run; the rest of the batch
    joins ``local``."""
    n = min(len(global_q), len(global_q) // procs + 1, GLOBAL_BATCH_MAX)
    first = global_q.popleft()
    for _ in range(n - 1):
        local.append(global_q.popleft())
    return first


def steal_start(uniform: Callable[[], float], procs: int) -> int:
    """Where ``stealWork`` starts visiting the Ps: one draw of ``uniform``."""
    return int(uniform() * procs)


def steal_half(runqs: Sequence[deque[T]], local: deque[T], start: int) -> T | None:
    """``runqsteal``: from the first other local queue with work, visiting ``runqs`` from ``start``, take
    half (rounded up): the first to run, the rest to ``local``. None if every other queue is empty."""
    procs = len(runqs)
    for offset in range(procs):
        victim = runqs[(start + offset) % procs]
        if victim is local or not victim:
            continue
        take = len(victim) - len(victim) // 2
        first = victim.popleft()
        for _ in range(take - 1):
            local.append(victim.popleft())
        return first
    return None


class ReadyList(Generic[T]):
    """The netpoller's ready list: what a network wait readied, and when the network was last polled."""

    __slots__ = ("ready", "last_poll")

    def __init__(self) -> None:
        self.ready: list[T] = []
        self.last_poll = 0.0

    def poll(self, now: float) -> list[T]:
        """``netpoll(0)`` at ``now``: every ready one, newest first; the list is emptied and the poll noted."""
        ready = self.ready[::-1]
        self.ready = []
        self.last_poll = now
        return ready

    def stale(self, now: float) -> bool:
        """Nobody has polled for ``NETPOLL_STALE_S`` (10 ms): sysmon polls (``sysmon``, proc.go)."""
        return now - self.last_poll >= NETPOLL_STALE_S


def inject_poll(ready: list[T], local: deque[T], global_q: deque[T], idle: int) -> int:
    """``injectglist`` after ``netpoll(0)`` in ``findRunnable``: the polling P runs ``ready[0]``; one of the
    others for each of the ``idle`` Ps goes to the global queue, the rest to ``local`` (the global queue once
    it is full). Returns how many idle Ps to wake."""
    spare = min(idle, len(ready) - 1)
    global_q.extend(ready[1:1 + spare])
    for other in ready[1 + spare:]:
        if len(local) < LOCAL_RUNQ_SLOTS:
            local.append(other)
        else:
            global_q.append(other)
    return spare


def inject_global(ready: list[T], global_q: deque[T], idle: int) -> int:
    """``injectglist`` without a P (sysmon's poll): every ready one to the global queue. Returns how many
    idle Ps to wake."""
    global_q.extend(ready)
    return min(len(ready), idle)


class MarkPhase:
    """The mark's bookkeeping, and the choice of ``findRunnableGCWorker`` (see the module docstring)."""

    __slots__ = ("marking", "dedicated_left", "fractional", "start")

    def __init__(self) -> None:
        self.marking = False
        self.dedicated_left = 0
        self.fractional = 0.0
        self.start = 0.0

    def started(self, dedicated: int, fractional: float, now: float) -> None:
        """The mark starts at ``now`` with ``dedicated`` workers to start and a fractional goal per P."""
        self.marking = True
        self.dedicated_left = dedicated
        self.fractional = fractional
        self.start = now

    def ended(self) -> None:
        self.marking = False
        self.dedicated_left = 0
        self.fractional = 0.0

    def worker(self, frac_time: float, now: float, bytes_per_cpu_s: float) -> tuple[CpuKind, float] | None:
        """What a P that schedules now runs for the collector, having run ``frac_time`` of fractional
        marking since the mark started: (DEDICATED, 0) while dedicated workers are missing (one fewer is
        then missing), (FRACTIONAL, burst seconds) while its share is at most the goal, or None."""
        if self.dedicated_left > 0:
            self.dedicated_left -= 1
            return DEDICATED, 0.0
        goal = self.fractional
        if goal <= 0:
            return None
        delta = now - self.start
        if delta > 0 and frac_time / delta > goal:
            return None
        burst = (FRACTIONAL_OVERSHOOT * goal * delta - frac_time) / (1 - FRACTIONAL_OVERSHOOT * goal)
        return FRACTIONAL, max(burst, DRAIN_CHECK_BYTES / bytes_per_cpu_s)
