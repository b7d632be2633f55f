"""A native runtime (C++, Rust): worker threads, one per core, and no garbage collector.

The shape is Envoy's threading model (Envoy docs, "Threading model",
https://www.envoyproxy.io/docs/envoy/latest/intro/arch_overview/intro/threading_model):
a fixed number of worker threads (``--concurrency``, recommended equal to the
hardware threads), each running a non-blocking event loop that multiplexes many
connections; Envoy is "written to be 100 % non-blocking". Hence:

* a :class:`~models.runtime.protocol.Compute` step needs a worker thread for
  ``cpu_s`` seconds, plus ``alloc_bytes * copy_cost_per_byte_s`` for the bytes
  it moves through buffers (there is no collector: allocation costs nothing
  else here). When every thread is busy, the step waits in one FCFS queue;
* a :class:`~models.runtime.protocol.Wait` does **not** hold a thread: the
  worker goes on with other connections while the I/O is outstanding, and the
  continuation queues again for a thread when the event fires (at the tail of
  the FCFS queue);
* a :class:`~models.runtime.protocol.Syscall` is a blocking call, so it holds
  its thread (stuck in the kernel, using no CPU) for ``duration_s``; a
  non-blocking proxy should rarely issue one.

Simplification: Envoy binds a connection to one worker for its lifetime and
lets the kernel balance accepts between workers, so a request waits for *its*
worker; here any free thread serves the head of one shared queue, which makes
the runtime an M/G/K station under Poisson load (the tests hold it to Erlang C).
With per-worker pinning and even balancing it would sit between that and K
separate M/G/1 queues.

``copy_cost_per_byte_s`` defaults to 0 (no copy cost): no measurement of it
has been made yet, so it is off unless given.

Metrics under ``NAME`` (``native``): ``NAME.threads_busy`` (gauge of threads
running or blocked in a syscall), ``NAME.queue_length`` (gauge of steps waiting
for a thread), ``NAME.queue_wait_s`` (histogram: time each run of thread work waited
for a thread; consecutive Compute / Syscall steps are one run, as one callback on
a worker, and record one wait).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import simpy

from sim.core import Environment
from models.runtime.protocol import Compute, RequestTimes, Step, Syscall, Wait

__all__ = ["NativeRuntime"]


class _Request:
    """One request: its steps, where it is in them, when it started and its completion event."""

    __slots__ = ("steps", "pc", "born", "done", "queued_at")

    def __init__(self, steps: Sequence[Step], born: float, done: simpy.Event) -> None:
        self.steps = steps
        self.pc = 0
        self.born = born
        self.done = done
        self.queued_at = born


class NativeRuntime:
    """``threads`` worker threads with no collector (see the module docstring)."""

    def __init__(
        self,
        env: Environment,
        threads: int,
        copy_cost_per_byte_s: float = 0.0,
        name: str = "native",
    ) -> None:
        if threads < 1:
            raise ValueError(f"{name}.threads: must be >= 1 (got {threads})")
        if copy_cost_per_byte_s < 0:
            raise ValueError(f"{name}.copy_cost_per_byte_s: must be >= 0 (got {copy_cost_per_byte_s})")
        self.env = env
        self.name = name
        self.threads = threads
        self.copy_cost_per_byte_s = float(copy_cost_per_byte_s)
        self.free = threads
        self.queue: deque[_Request] = deque()
        metrics = env.metrics
        self.threads_busy = metrics.gauge(f"{name}.threads_busy")
        self.queue_length = metrics.gauge(f"{name}.queue_length")
        self.queue_wait_s = metrics.histogram(f"{name}.queue_wait_s")

    def execute(self, steps: Sequence[Step], times: RequestTimes | None = None) -> simpy.Event:
        """Run a request's steps in order; the event's value is its latency (no collector: ``times`` stays 0)."""
        done = self.env.event()
        self._advance(_Request(steps, self.env.now, done))
        return done

    # ------------------------------------------------------------ steps
    def _advance(self, request: _Request) -> None:
        """Start the request's next step (it holds no thread when called)."""
        env = self.env
        if request.pc == len(request.steps):
            request.done.succeed(env.now - request.born)
            return
        step = request.steps[request.pc]
        request.pc += 1
        if isinstance(step, Wait):
            step.until().callbacks.append(lambda _event: self._advance(request))
        elif isinstance(step, (Compute, Syscall)):
            request.queued_at = env.now
            if self.free:
                self.free -= 1
                self.threads_busy.set(self.threads - self.free)
                self._run(request, step)
            else:
                self.queue.append(request)
                self.queue_length.set(len(self.queue))
        else:
            raise TypeError(f"{self.name}: unsupported step {step!r}")

    def _run(self, request: _Request, step: Compute | Syscall, first: bool = True) -> None:
        """Run ``step`` on the thread ``request`` now holds (``first``: of this run)."""
        if first:
            self.queue_wait_s.record(self.env.now - request.queued_at)
        if isinstance(step, Compute):
            duration = step.cpu_s + step.alloc_bytes * self.copy_cost_per_byte_s
        else:
            duration = step.duration_s
        self.env.timeout(duration).callbacks.append(lambda _event: self._finish(request))

    def _finish(self, request: _Request) -> None:
        """A step is done: consecutive thread work goes on in the same run; otherwise the
        thread passes to the head of the queue."""
        if request.pc < len(request.steps):
            step = request.steps[request.pc]
            if isinstance(step, (Compute, Syscall)):
                request.pc += 1
                self._run(request, step, first=False)
                return
        if self.queue:
            waiting = self.queue.popleft()
            self.queue_length.set(len(self.queue))
            queued = waiting.steps[waiting.pc - 1]
            assert isinstance(queued, (Compute, Syscall))  # only CPU steps and system calls wait for a thread
            self._run(waiting, queued)
        else:
            self.free += 1
            self.threads_busy.set(self.threads - self.free)
        self._advance(request)
