"""The Runtime protocol: the seam between what a request costs and when that work runs.

A service describes a request as a sequence of *steps*: CPU work with the
bytes it allocates (:class:`Compute`), waits on something outside the process
such as a network reply (:class:`Wait`), and blocking system calls
(:class:`Syscall`). A runtime (Go, Node.js, native) decides when each step
runs and what else it costs: a Go runtime runs it as a goroutine on a P and
charges mark assists while the collector marks; a Node runtime runs it on the
event loop; a native runtime on a worker thread with no collector. Swapping the
runtime keeps the service.

A runtime's :meth:`Runtime.execute` returns a SimPy event that succeeds, with
the time the request spent in the runtime, when the last step is done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, Union, runtime_checkable

import simpy


@dataclass(frozen=True, slots=True)
class Compute:
    """``cpu_s`` seconds of CPU on one core, allocating ``alloc_bytes`` on the heap as it goes."""

    cpu_s: float
    alloc_bytes: float = 0.0


@dataclass(frozen=True, slots=True)
class Wait:
    """Block until the event made by ``until()`` fires (network I/O: the caller holds no CPU)."""

    until: Callable[[], simpy.Event]


@dataclass(frozen=True, slots=True)
class Syscall:
    """A blocking system call of ``duration_s``: the thread is stuck in the kernel meanwhile."""

    duration_s: float


Step = Union[Compute, Wait, Syscall]


@runtime_checkable
class Runtime(Protocol):
    """What every runtime model offers a service."""

    name: str

    def execute(self, steps: Sequence[Step]) -> simpy.Event:
        """Run the steps of one request in order; the event's value is the time it took."""
        ...
