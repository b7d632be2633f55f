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
the time the request spent in the runtime, when the last step is done. A
caller that wants to know how much of that time the runtime's collector took
passes a :class:`RequestTimes` along, which the runtime fills in as the
request runs (:mod:`models.arch.breakdown` does, for its ``gc`` kind).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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


Step = Compute | Wait | Syscall


class RequestTimes:
    """What a runtime tells its caller of one request's time beyond its latency: the collector's share.

    ``assist_s`` is the collector's work the request was made to do itself
    (Go: the mark assists ``gcAssistAlloc`` in ``runtime/mgcmark.go`` charges
    a goroutine that allocates while the collector marks, at the rate the
    pacer sets in ``runtime/mgcpacer.go``). ``pause_s`` is the stopped-world
    time that fell within the request's spans in the runtime, those outside a
    :class:`Wait` (a Go stop-the-world stops every goroutine, running or
    runnable; a request waiting on the network is not delayed by it unless
    its reply comes back before the world starts again, and then only by the
    rest of the pause; a :class:`Syscall` is time in the runtime, so a pause
    during one counts; Node.js: the scavenges and mark-compacts its own
    callbacks' allocations set off, which the loop thread runs inside them).
    The two never overlap in time (no goroutine assists while the world is
    stopped), so ``gc_s`` is at most the request's time in the runtime
    outside its waits. A runtime without a collector leaves both at 0.

    A runtime that stops the world keeps a clock of the seconds it has been
    stopped, and calls :meth:`enter` with it when the request comes into the
    runtime (it starts, or a wait ends) and :meth:`leave` when it goes out
    (it waits, or ends).
    """

    __slots__ = ("assist_s", "pause_s", "_stopped_at")

    def __init__(self) -> None:
        self.assist_s = 0.0
        self.pause_s = 0.0
        self._stopped_at = 0.0

    @property
    def gc_s(self) -> float:
        """The seconds the collector took from the request: its assists and the pauses it sat through."""
        return self.assist_s + self.pause_s

    def enter(self, stopped_s: float) -> None:
        """The request comes into the runtime; ``stopped_s`` is the runtime's stopped-world clock now."""
        self._stopped_at = stopped_s

    def leave(self, stopped_s: float) -> None:
        """The request goes out of the runtime (it waits, or ends): the pauses since :meth:`enter` were its."""
        self.pause_s += stopped_s - self._stopped_at


@runtime_checkable
class Runtime(Protocol):
    """What every runtime model offers a service.

    **How to add a runtime.** Write a class with a ``name`` (the dotted prefix of
    its metrics, e.g. ``go``, ``node``) and :meth:`execute`, constructed from
    what it needs and nothing global: the :class:`sim.core.Environment` (its
    clock, its ``rng(name)`` streams and its ``metrics``), its settings (a
    pydantic model or plain arguments), and the distributions of its costs,
    defaulting to calibrated parameter sets named in its docstring
    (:mod:`sim.params`). :class:`~models.runtime.native.NativeRuntime` is the
    smallest example; :class:`~models.runtime.node.loop.NodeRuntime` adds steps
    of its own (:mod:`models.runtime.node.steps`), as Go does
    (:mod:`models.runtime.go.steps`). A service model kind
    (:mod:`models.services`) builds the runtime and hands it each request's
    steps; nothing else needs to know which runtime it is.

    **What it must preserve**, for a service and the tests to rely on:

    * every step of a request runs, in order, and the event returned by
      :meth:`execute` succeeds once, after the last one, with the seconds from
      the call to then (the request's time in the runtime);
    * given a :class:`RequestTimes`, it has recorded there, by the time that
      event succeeds, the part of that time its collector took (or left it at
      0, having none, or saying in its docstring what it leaves out); with or
      without one, the same seed gives the same latencies;
    * a :class:`Compute` takes at least ``cpu_s`` of simulated time on one
      core, and its ``alloc_bytes`` are allocated by the time it ends (a
      runtime without a heap may ignore them); a :class:`Wait` holds no CPU;
      a :class:`Syscall` holds its thread (not necessarily a core) for
      ``duration_s``;
    * a step type it does not run is refused with a ``TypeError`` naming it,
      never skipped;
    * it draws only from streams ``env.rng(f"{name}.<part>")`` of its own, so
      adding it to a model moves no other component's random numbers, and the
      same seed gives the same numbers;
    * it keeps no SimPy process per request unless it must (100,000 parked
      requests should cost memory, not events): callbacks on events and one
      :class:`~sim.timers.Timer` per thing that can be rescheduled are the
      idiom of the runtimes here;
    * its metrics carry their unit in their name (``NAME.memory_in_use_bytes``,
      ``NAME.loop_lag_s``), and it names them in its module docstring.

    Hold it to closed forms where one exists (M/G/1 for one thread running
    requests to completion, M/M/c for c threads; ``tests/test_native_runtime.py``,
    ``tests/test_node_runtime.py``).
    """

    name: str

    def execute(self, steps: Sequence[Step], times: RequestTimes | None = None) -> simpy.Event:
        """Run the steps of one request in order; the event's value is the time it took. ``times``, if
        given, receives the collector's share of it (:class:`RequestTimes`)."""
        ...
