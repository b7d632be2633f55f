"""The Node.js runtime: one event-loop thread, microtasks, and the libuv thread pool.

Sources: Node docs, "The Node.js Event Loop"
(https://nodejs.org/en/learn/asynchronous-work/event-loop-timers-and-nexttick),
"Don't Block the Event Loop (or the Worker Pool)"
(https://nodejs.org/en/learn/asynchronous-work/dont-block-the-event-loop), and
``UV_THREADPOOL_SIZE`` (https://nodejs.org/api/cli.html#uv_threadpool_sizesize;
libuv, "Thread pool work scheduling", https://docs.libuv.org/en/v1.x/threadpool.html).

* **One loop thread, run to completion.** JavaScript runs on one thread. A
  request's consecutive :class:`~models.runtime.protocol.Compute` steps are one
  callback that runs to its end once started: a CPU-heavy handler delays every
  other request's callback, however light.
* **Macrotasks in FIFO order.** A new request (its connection became readable)
  and the completion of each :class:`~models.runtime.protocol.Wait` (network
  I/O: no thread held) or :class:`~models.runtime.protocol.Syscall` enter one
  FIFO queue of ready callbacks, which the loop runs one at a time.
* **Microtasks drain first.** After every callback the ``process.nextTick``
  queue drains, then the promise microtask queue, repeated until both are empty,
  before the next macrotask (Node's ``processTicksAndRejections``; per callback
  since Node 11, nodejs/node PR #22842). Steps that queue them, and ``await``,
  are in :mod:`models.runtime.node.steps`.
* **The libuv thread pool.** A Syscall (``fs``, ``dns.lookup``, async
  ``crypto``, ``zlib``: the APIs the Node docs list as using the pool) runs on
  one of ``threadpool_size`` threads, default 4, libuv's default
  (``UV_THREADPOOL_SIZE``; libuv docs above); when all are busy it waits FIFO.
  Its completion re-enters the loop as a macrotask. The loop does not wait.

* **The collector blocks the loop.** With a ``heap``
  (:class:`~models.runtime.node.gc.V8Heap`), the bytes a callback's Compute steps
  allocate go to the isolate's heap, live until the request ends, and the
  scavenge and mark-compact pauses they cause lengthen that callback.
* **Cores.** With ``cores`` (:class:`~models.runtime.node.workers.SharedCores`)
  the loop's callbacks run on cores shared with other threads (worker threads,
  :mod:`models.runtime.node.workers`); without, the loop has a core of its own.

Simplifications: the loop's phases (timers, poll, check, close) are one FIFO
queue, so a timer does not jump ahead of I/O callbacks; handing work to the pool
and running a callback cost no CPU beyond the steps' own; without a ``heap``,
``alloc_bytes`` costs nothing. V8 start-up is in :mod:`models.runtime.node.startup`.

Metrics under ``NAME`` (``node``): ``NAME.loop_lag_s`` (histogram: time each
ready macrotask waited for the loop; for a request, its first callback's wait),
``NAME.loop_busy`` (gauge, 1 while the loop runs a callback: its mean is the
loop's utilisation), ``NAME.threadpool.wait_s`` (histogram: time each Syscall
waited for a pool thread), ``NAME.threadpool.busy`` (gauge of busy pool threads).

Tracing is opt-in: pass a list as ``trace`` and every callback appends
``(start time, kind, label)``, kind being ``"macro"``, ``"tick"`` or ``"micro"``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Sequence
from typing import Any

import simpy

from sim.core import Environment
from models.runtime.node.steps import Await, NextTick, QueueMicrotask
from models.runtime.node.workers import SharedCores, run_cpu
from models.runtime.protocol import Compute, RequestTimes, Step, Syscall, Wait
from models.runtime.node.gc import Allocation, V8Heap

__all__ = ["Await", "NextTick", "NodeRuntime", "QueueMicrotask"]

UV_THREADPOOL_SIZE = 4
"""libuv's default thread pool size (libuv docs, "Thread pool work scheduling"; Node docs, CLI,
``UV_THREADPOOL_SIZE``: "4 (its current default value)")."""

MACRO, TICK, MICRO = "macro", "tick", "micro"


class _Task:
    """A request, or a detached micro/nextTick task: its steps, where it is in them, when it
    became ready, and its completion event (None when detached)."""

    __slots__ = ("steps", "pc", "born", "done", "label", "ready_at", "allocation", "times")

    def __init__(self, steps: Sequence[Any], born: float, done: simpy.Event | None, label: str) -> None:
        self.steps = steps
        self.pc = 0
        self.born = born
        self.done = done
        self.label = label
        self.ready_at = born
        self.allocation = Allocation()
        self.times: RequestTimes | None = None


class NodeRuntime:
    """A Node.js process: one event loop and a libuv pool (see the module docstring)."""

    def __init__(
        self,
        env: Environment,
        name: str = "node",
        threadpool_size: int = UV_THREADPOOL_SIZE,
        trace: list[tuple[float, str, str]] | None = None,
        heap: V8Heap | None = None,
        cores: SharedCores | None = None,
    ) -> None:
        if threadpool_size < 1:
            raise ValueError(f"{name}.threadpool_size: must be >= 1 (got {threadpool_size})")
        self.env = env
        self.name = name
        self.threadpool_size = threadpool_size
        self.trace = trace
        self.heap = heap
        self.cores = cores
        self.macrotasks: deque[_Task] = deque()
        self.ticks: deque[_Task] = deque()
        self.microtasks: deque[_Task] = deque()
        self._draining_microtasks = False
        self._wake: simpy.Event | None = None
        self.pool_free = threadpool_size
        self.pool_queue: deque[tuple[_Task, float, float]] = deque()
        metrics = env.metrics
        self.loop_lag_s = metrics.histogram(f"{name}.loop_lag_s")
        self.loop_busy = metrics.gauge(f"{name}.loop_busy")
        self.pool_wait_s = metrics.histogram(f"{name}.threadpool.wait_s")
        self.pool_busy = metrics.gauge(f"{name}.threadpool.busy")
        env.process(self._loop())

    # ------------------------------------------------------------ public API
    def execute(self, steps: Sequence[Step | Any], times: RequestTimes | None = None, label: str = "") -> simpy.Event:
        """Run a request: its first callback is a macrotask ready now; the event's value is its latency.
        ``times``, if given, gets the collector's pauses its own callbacks ran (as ``pause_s``); pauses in
        other callbacks it waited behind on the loop stay out of it (in its loop lag)."""
        done = self.env.event()
        task = _Task(steps, self.env.now, done, label)
        task.times = times
        self._ready(task)
        return done

    # ------------------------------------------------------------ the loop
    def _ready(self, task: _Task) -> None:
        """A macrotask became ready (new request, I/O or pool completion)."""
        task.ready_at = self.env.now
        self.macrotasks.append(task)
        if self._wake is not None:
            wake, self._wake = self._wake, None
            wake.succeed()

    def _next(self) -> tuple[_Task | None, str]:
        """nextTicks, then promise microtasks until none is left, then one macrotask."""
        if self._draining_microtasks and self.microtasks:
            return self.microtasks.popleft(), MICRO
        self._draining_microtasks = False
        if self.ticks:
            return self.ticks.popleft(), TICK
        if self.microtasks:
            self._draining_microtasks = True
            return self.microtasks.popleft(), MICRO
        if self.macrotasks:
            return self.macrotasks.popleft(), MACRO
        return None, ""

    def _loop(self) -> Generator[simpy.Event, Any, None]:
        env = self.env
        while True:
            task, kind = self._next()
            if task is None:
                self._wake = env.event()
                yield self._wake
                continue
            if kind is MACRO:
                self.loop_lag_s.record(env.now - task.ready_at)
            if self.trace is not None:
                self.trace.append((env.now, kind, task.label))
            cpu_s, stop = self._callback(task)
            if cpu_s > 0:
                self.loop_busy.set(1)
                yield run_cpu(env, self.cores, cpu_s, self)
                self.loop_busy.set(0)
            self._suspend(task, stop)

    def _callback(self, task: _Task) -> tuple[float, Any]:
        """Walk the task's steps up to the next suspension: (CPU of the callback, the step that ends it)."""
        cpu_s = alloc_bytes = 0.0
        steps = task.steps
        now = self.env.now
        stop = None
        while task.pc < len(steps):
            step = steps[task.pc]
            task.pc += 1
            if isinstance(step, Compute):
                cpu_s += step.cpu_s
                alloc_bytes += step.alloc_bytes
            elif isinstance(step, QueueMicrotask):
                self.microtasks.append(_Task(step.steps, now, None, step.label))
            elif isinstance(step, NextTick):
                self.ticks.append(_Task(step.steps, now, None, step.label))
            elif isinstance(step, (Wait, Syscall, Await)):
                stop = step
                break
            else:
                raise TypeError(f"{self.name}: unsupported step {step!r}")
        if self.heap is not None and alloc_bytes > 0:
            pause = self.heap.allocate(alloc_bytes, task.allocation)
            cpu_s += pause
            if task.times is not None:
                task.times.pause_s += pause
        return cpu_s, stop

    def _suspend(self, task: _Task, stop: Any) -> None:
        """The callback ended at ``stop``: finish the task or arrange its continuation."""
        if stop is None:
            if self.heap is not None:
                self.heap.release(task.allocation)
            if task.done is not None:
                task.done.succeed(self.env.now - task.born)
        elif isinstance(stop, Wait):
            stop.until().callbacks.append(lambda _event: self._ready(task))
        elif isinstance(stop, Syscall):
            self._submit(task, stop.duration_s)
        else:  # Await: the continuation is a promise microtask
            self.microtasks.append(task)

    # ------------------------------------------------------------ the libuv pool
    def _submit(self, task: _Task, duration_s: float) -> None:
        if self.pool_free:
            self._work(task, duration_s, self.env.now)
        else:
            self.pool_queue.append((task, duration_s, self.env.now))

    def _work(self, task: _Task, duration_s: float, submitted: float) -> None:
        self.pool_free -= 1
        self.pool_busy.set(self.threadpool_size - self.pool_free)
        self.pool_wait_s.record(self.env.now - submitted)
        self.env.timeout(duration_s).callbacks.append(lambda _event: self._work_done(task))

    def _work_done(self, task: _Task) -> None:
        self.pool_free += 1
        if self.pool_queue:
            self._work(*self.pool_queue.popleft())
        else:
            self.pool_busy.set(self.threadpool_size - self.pool_free)
        self._ready(task)
