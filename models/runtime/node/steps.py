"""Node.js-specific steps a request can contain besides Compute, Wait and Syscall.

Node has two queues that drain after every callback, before the event loop
takes the next one (Node docs, "The Node.js Event Loop",
https://nodejs.org/en/learn/asynchronous-work/event-loop-timers-and-nexttick,
and "Understanding setImmediate()",
https://nodejs.org/en/learn/asynchronous-work/understanding-setimmediate): the
``process.nextTick`` queue first, then the promise microtask queue. Since Node
11 they drain after *each* timer and immediate callback, not after a whole
phase (nodejs/node PR #22842, "timers: run nextTicks after each immediate and
timer").

* :class:`Await` — ``await`` of a settled promise: the current callback ends
  here and the rest of the request continues as a promise microtask.
* :class:`QueueMicrotask` — ``queueMicrotask(fn)`` / ``promise.then(fn)``:
  ``steps`` will run as a detached microtask; the current callback goes on.
* :class:`NextTick` — ``process.nextTick(fn)``: the same, on the nextTick queue.

A detached task's steps may contain Wait and Syscall like a request's; the
request that queued it does not wait for it to finish. Only
:class:`~models.runtime.node.loop.NodeRuntime` runs these steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from models.runtime.protocol import Step


@dataclass(frozen=True, slots=True)
class Await:
    """End the current callback; the rest of the request runs as a promise microtask."""


@dataclass(frozen=True, slots=True)
class QueueMicrotask:
    """Queue ``steps`` as a promise microtask (``label`` names it in a trace)."""

    steps: Sequence[Step | Any]
    label: str = ""


@dataclass(frozen=True, slots=True)
class NextTick:
    """Queue ``steps`` on the ``process.nextTick`` queue (``label`` names it in a trace)."""

    steps: Sequence[Step | Any]
    label: str = ""
