"""What the fast Go fidelity keeps per request and per P, and the open-loop feed it can pull requests from.

Shared by :mod:`models.runtime.go.fast.runtime` and its collector's side,
:mod:`models.runtime.go.fast.vacations`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Sequence
from typing import Any, Protocol

import simpy

from models.runtime.go.constants import CpuKind
from models.runtime.go.gc import Allocating
from models.runtime.protocol import Step


class Feed(Protocol):
    """An open-loop source of requests the runtime pulls from (see :meth:`FastGoRuntime.serve`)."""

    def next_request(self) -> tuple[float, Sequence[Step], Any] | None:
        """(arrival time, steps, tag) of the next request, in arrival order; None after the last."""
        ...

    def arrived(self, tag: Any) -> None:
        """The request ``tag`` arrives now (called before it is queued)."""
        ...

    def finished(self, tag: Any, latency_s: float) -> None:
        """The request ``tag`` has completed now, ``latency_s`` after it arrived."""
        ...


class Job(Allocating):
    """One request: its steps, position, remaining CPU and heap it keeps reachable."""

    __slots__ = ("tag",)

    def __init__(self, steps: Sequence[Any], done: simpy.Event | None, born: float, tag: Hashable = None) -> None:
        super().__init__(steps, done, born)
        self.tag = tag


class Server:
    """A P: its queue, what it runs (a request, an assist, a mark burst) and since when."""

    __slots__ = ("queue", "job", "kind", "start", "work", "token", "turn_left", "frac_time", "schedtick",
                 "idle", "pending")

    def __init__(self) -> None:
        self.queue: deque[Job] = deque()
        self.job: Job | None = None
        self.kind: CpuKind | None = None
        self.start = 0.0
        self.work = 0.0
        self.token = 0
        self.turn_left = 0.0
        self.frac_time = 0.0
        self.schedtick = 0
        self.idle = False
        self.pending = False
