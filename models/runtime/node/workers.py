"""Node.js ``worker_threads``: a pool of workers, each an OS thread with its own isolate, fed by messages.

Sources: Node docs, ``worker_threads`` (https://nodejs.org/api/worker_threads.html):
"workers (threads) are useful for performing CPU-intensive JavaScript
operations"; each ``Worker`` runs "an independent JavaScript execution thread"
with its own V8 isolate and event loop; ``postMessage`` sends a value "cloned
according to the HTML structured clone algorithm" (unless transferred).

* **Start-up.** A worker is ready ``start`` seconds of CPU after ``new Worker()``
  (calibration ``node.worker.start_s``: a new isolate, its context from the
  snapshot, and a thread, to the first message) and holds ``memory_bytes``
  (``node.worker.memory_bytes``) for its life. All workers start at once, when
  the pool is made, or, ``warm``, were started before (a long-running service).
* **Messages are copied.** A message of x bytes costs ``intercept + slope * x``
  seconds of CPU (``message_cost``); the pool charges half of it to the sending
  thread (serialise) and half to the receiving one (deserialise), each way. The
  loop's halves are the caller's to charge (:meth:`WorkerPool.message_half_s`).
  The default comes from ``node.worker.message_s_vs_bytes``, a round trip of an
  x-byte message and a tiny reply: its slope is the copy cost per byte and half
  its intercept is taken as the fixed cost of one message.
* **A pool for CPU-bound work.** Jobs wait in one FIFO queue; a free, started
  worker takes the head (the ``WorkerPool`` of Node's docs, "Using
  ``AsyncResource`` for a ``Worker`` thread pool",
  https://nodejs.org/api/async_context.html). A job
  runs its CPU, the pauses its allocation causes in the worker's own heap
  (:class:`~models.runtime.node.gc.V8Heap`, one per isolate), and its message halves.
* **Threads share cores.** Every thread (the loop, each worker) runs on
  :class:`SharedCores`: with n runnable threads on c cores each advances at
  min(1, c/n) of a core, which is processor sharing, the fluid limit of the
  kernel's time slicing among equal threads (CFS; Kleinrock vol. 2 §4.4).
  Without ``cores`` every thread has a core of its own.

Simplifications: CFS's slices (a few ms) and cache effects are a fluid share;
transferring an ``ArrayBuffer`` instead of copying it is not modelled; a worker
that is busy takes no second job (one task at a time, as in that example).

Metrics under ``NAME`` (``node.workers``): ``NAME.queue_wait_s`` (histogram: time
each job waited for a worker), ``NAME.start_s`` (histogram: start-up of each
worker, wall time on the shared cores), ``NAME.busy`` (gauge of busy workers),
``NAME.memory_bytes`` (gauge: the workers' isolates), ``NAME.heap_bytes`` (gauge:
what their heaps hold, updated as jobs end); each worker's collector under
``NAME.gc`` (one metric set for all workers). :class:`SharedCores` adds
``CORES.runnable`` (gauge of threads wanting a core).
"""

from __future__ import annotations

import heapq
from collections import deque
from itertools import count

import simpy

from sim.core import Environment
from sim.params import param_linear, param_value
from models.runtime.node.gc import Allocation, V8GCConfig, V8Heap
from models.runtime.node.startup import StartupConfig, V8Startup

MESSAGE_PARAM = "node.worker.message_s_vs_bytes"
SLICE_PARAM = "machine.slice_s"
"""Measured time slice of a CPU-bound thread sharing a CPU (``calibration/harness``, machine slices)."""


class SharedCores:
    """``cores`` cores shared by threads in processor sharing: n runnable threads each get min(1, c/n).

    :meth:`run` returns an event that fires when the calling thread has received
    its CPU. A virtual clock V advances at the per-thread rate; a burst of work w
    started at V0 ends when V reaches V0 + w (as
    :class:`~models.queueing.stations.PSStation`, Kleinrock vol. 2 §4.4).

    ``NAME.context_switches`` (counter) counts the kernel's switches of a core from one thread to another
    (or to or from idle), as ``/proc/stat``'s ``ctxt`` does: a thread blocking when its burst ends (one),
    a thread woken while a core is idle (one; woken onto busy cores it waits for one of the other two),
    and, while more threads are runnable than there are cores, each core's time slice ending
    (``cores / slice_s`` per second, the fluid share's time slicing; ``slice_s`` defaults to
    ``machine.slice_s``, measured: two threads spinning on one CPU). A thread that passes itself as
    ``thread`` to :meth:`run` and starts its next burst at the instant its last one ended did not block;
    a burst without ``thread`` is counted as a thread of its own that blocks after it.
    """

    def __init__(self, env: Environment, cores: int, name: str = "cores", slice_s: float | None = None) -> None:
        if cores < 1:
            raise ValueError(f"{name}.cores: must be >= 1 (got {cores})")
        if slice_s is not None and slice_s <= 0:
            raise ValueError(f"{name}.slice_s: must be > 0 (got {slice_s})")
        self.env = env
        self.cores = cores
        self.name = name
        self.slice_s = slice_s if slice_s is not None else param_value(SLICE_PARAM)
        self._heap: list[tuple[float, int, simpy.Event]] = []
        self._virtual = 0.0
        self._updated = env.now
        self._token = 0
        self._sequence = count()
        self._ended: dict[object, float] = {}
        self._slices = 0.0
        self.runnable = env.metrics.gauge(f"{name}.runnable")
        self.context_switches = env.metrics.counter(f"{name}.context_switches")

    def _rate(self) -> float:
        n = len(self._heap)
        return min(1.0, self.cores / n) if n else 0.0

    def _advance(self) -> None:
        now = self.env.now
        elapsed = now - self._updated
        self._virtual += self._rate() * elapsed
        if len(self._heap) > self.cores and elapsed > 0:  # time slicing: every core switches each slice
            self._slices += elapsed * self.cores / self.slice_s
            whole = int(self._slices)
            if whole:
                self._slices -= whole
                self.context_switches.inc(whole)
        self._updated = now

    def run(self, cpu_s: float, thread: object | None = None) -> simpy.Event:
        """A thread runs ``cpu_s`` seconds of CPU; the event fires when it is done. ``thread`` (any hashable
        key) tells whether it goes on from its last burst without blocking (see the class docstring)."""
        done = self.env.event()
        if cpu_s <= 0:
            done.succeed()
            return done
        self._advance()
        now = self.env.now
        ended = self._ended.pop(thread, None) if thread is not None else None
        if ended is None or ended != now:
            # it blocked when its last burst ended (a switch out, counted now), and wakes: a switch in if a
            # core is idle
            switches = (ended is not None or thread is None) + (len(self._heap) < self.cores)
            if switches:
                self.context_switches.inc(switches)
        if thread is not None:
            done.callbacks.append(lambda _event: self._ended.__setitem__(thread, self.env.now))
        heapq.heappush(self._heap, (self._virtual + cpu_s, next(self._sequence), done))
        self._reschedule()
        return done

    def _reschedule(self) -> None:
        self.runnable.set(len(self._heap))
        self._token += 1
        if not self._heap:
            return
        delay = max(0.0, (self._heap[0][0] - self._virtual) / self._rate())
        token = self._token
        self.env.timeout(delay).callbacks.append(lambda _event: self._finish(token))

    def _finish(self, token: int) -> None:
        if token != self._token:
            return
        self._advance()
        _, _, done = heapq.heappop(self._heap)
        self._reschedule()
        done.succeed()


def one_way_message_cost() -> tuple[float, float]:
    """(intercept, slope) of one message from the calibrated round trip (message out, tiny reply back)."""
    intercept, slope = param_linear(MESSAGE_PARAM)
    return intercept / 2, slope


def run_cpu(env: Environment, cores: SharedCores | None, cpu_s: float, thread: object | None = None) -> simpy.Event:
    """``cpu_s`` of CPU on the shared cores, or on a core of the thread's own when ``cores`` is None."""
    return cores.run(cpu_s, thread) if cores is not None else env.timeout(cpu_s)


class Job:
    """Work posted to the pool: CPU, allocation, and the sizes of its message and reply."""

    __slots__ = ("cpu_s", "alloc_bytes", "in_bytes", "out_bytes", "done", "posted")

    def __init__(self, cpu_s: float, alloc_bytes: float, in_bytes: float, out_bytes: float,
                 done: simpy.Event, posted: float) -> None:
        self.cpu_s = cpu_s
        self.alloc_bytes = alloc_bytes
        self.in_bytes = in_bytes
        self.out_bytes = out_bytes
        self.done = done
        self.posted = posted


class WorkerPool:
    """``size`` worker threads, each with an isolate and a heap, serving one FIFO queue of jobs."""

    def __init__(
        self,
        env: Environment,
        size: int,
        cores: SharedCores | None = None,
        startup: StartupConfig | None = None,
        message_cost: tuple[float, float] | None = None,
        gc: V8GCConfig | None = None,
        name: str = "node.workers",
        warm: bool = False,
    ) -> None:
        if size < 1:
            raise ValueError(f"{name}.size: must be >= 1 (got {size})")
        self.env = env
        self.size = size
        self.cores = cores
        self.name = name
        self.startup = V8Startup(env, startup, name=f"{name}.startup")
        self.memory_per_worker = self.startup.config.memory("isolate")
        intercept, slope = message_cost if message_cost is not None else one_way_message_cost()
        if intercept < 0 or slope < 0:
            raise ValueError(f"{name}.message_cost: intercept and slope must be >= 0 (got {message_cost})")
        self.message_cost = (float(intercept), float(slope))
        self.queue: deque[Job] = deque()
        self.idle: list[simpy.Event] = []
        self.busy_count = 0
        metrics = env.metrics
        self.queue_wait_s = metrics.histogram(f"{name}.queue_wait_s")
        self.start_s = metrics.histogram(f"{name}.start_s")
        self.busy = metrics.gauge(f"{name}.busy")
        self.memory_bytes = metrics.gauge(f"{name}.memory_bytes", size * self.memory_per_worker)
        gc_config = (gc or V8GCConfig()).resolved()
        self.heaps = [V8Heap(env, gc_config, name=f"{name}.gc", report_heap=False) for _ in range(size)]
        self.heap_gauge = metrics.gauge(f"{name}.heap_bytes", self.heap_bytes())
        self.ready = env.event()
        self.ready_at: float | None = None
        self._started = 0
        self.warm = warm
        for index in range(size):
            env.process(self._worker(index))

    def message_half_s(self, nbytes: float) -> float:
        """Half the cost of one message of ``nbytes``: what each side of the copy pays."""
        intercept, slope = self.message_cost
        return (intercept + slope * nbytes) / 2

    def heap_bytes(self) -> float:
        return sum(heap.in_use for heap in self.heaps)

    def submit(self, cpu_s: float, alloc_bytes: float = 0.0, in_bytes: float = 0.0,
               out_bytes: float = 0.0) -> simpy.Event:
        """Post a job; the event fires when its reply has been sent (the loop's halves not included)."""
        job = Job(cpu_s, alloc_bytes, in_bytes, out_bytes, self.env.event(), self.env.now)
        self.queue.append(job)
        if self.idle:
            self.idle.pop().succeed()
        return job.done

    def _worker(self, index: int):
        env = self.env
        thread = (self.name, index)
        if not self.warm:
            started = env.now
            yield run_cpu(env, self.cores, self.startup.draw("isolate"), thread)
            self.start_s.record(env.now - started)
        self._started += 1
        if self._started == self.size:
            self.ready_at = env.now
            self.ready.succeed()
        heap = self.heaps[index]
        while True:
            if not self.queue:
                wake = env.event()
                self.idle.append(wake)
                yield wake
                continue
            job = self.queue.popleft()
            self.queue_wait_s.record(env.now - job.posted)
            self.busy_count += 1
            self.busy.set(self.busy_count)
            allocation = Allocation()
            pause = heap.allocate(job.alloc_bytes, allocation)
            work = self.message_half_s(job.in_bytes) + job.cpu_s + pause + self.message_half_s(job.out_bytes)
            yield run_cpu(env, self.cores, work, thread)
            heap.release(allocation)
            self.heap_gauge.set(self.heap_bytes())
            self.busy_count -= 1
            self.busy.set(self.busy_count)
            job.done.succeed(env.now - job.posted)
