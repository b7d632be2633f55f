"""Where a request's time went, along its critical path.

A request's end-to-end latency is the time of the path that ended last: its
steps one after the other, and of calls made in parallel only the one that
returned last. A :class:`Spent` adds up that path's time by kind, so that the
kinds sum to the latency exactly: ``network`` (the hops between client and
pod, there and back, and a pooled connection's bytes), ``queue`` (waiting
for a pod's concurrency slot or a node's core), ``connect`` (waiting for a
pooled connection or stream: dials, their TCP and TLS handshakes, pool
limits; :mod:`models.arch.connections`), ``cpu`` (holding a core),
``runtime`` (a pod on a runtime model: its steps' time there, but for its calls
and its ``gc``: its CPU, queueing in the runtime and scheduling), ``gc`` (at a
pod on a runtime model, the part of that time the runtime's collector took
from the request: :class:`~models.runtime.protocol.RequestTimes`), ``proxy``
(in the mesh's sidecars: waiting for a worker thread or a core, and their CPU;
a Go-proxy sidecar's collector included), ``delay`` (latency injected as a
fault), ``retry`` (attempts that failed, and the back-offs after them, of
calls that then succeeded).

**GC.** At a Go pod (fast or detailed fidelity), a request's ``gc`` is

* the mark-assist work it was made to do: a goroutine that allocates while the
  collector marks owes scan work in proportion to its bytes and does what the
  background workers' credit does not cover itself, on its own P
  (``gcAssistAlloc`` in ``runtime/mgcmark.go``, at the ``assistWorkPerByte``
  the pacer sets in ``runtime/mgcpacer.go``; :mod:`models.runtime.go.gc`): its
  CPU (on a linux node, where a detailed pod's Ps share the node's cores, the
  assist's waits for a core stay in ``runtime``), and
* the stop-the-world pauses (sweep termination and mark termination) that fell
  within its time at the pod outside its calls: a stop-the-world stops every
  goroutine, running or runnable; a call's wait is the call's, and its reply
  coming back mid-pause waits for the rest of the pause, which is ``gc``.

What else the collector does to a request stays in ``runtime``: the dedicated,
fractional and idle mark workers take Ps a runnable request might have had,
but which request was kept waiting, and for how long, depends on the queues
after them, with no one request's share to name; likewise the requests a
preempted goroutine or a paused P delays behind it after a pause. At a Node.js
pod, ``gc`` is the V8 pauses its own callbacks' allocations set off (a pause
in another request's callback it waited behind is loop lag, in ``runtime``);
the arch model's Node.js pods have no V8 heap, so there it is 0. A native pod
(:mod:`models.runtime.native`: C++, Rust) has no collector: its ``gc`` is 0. The
surrogate fidelity (:mod:`models.arch.surrogate`) draws a request's whole
time from a detailed run without its parts: its ``gc`` is 0 and the
collector is in ``runtime``.
"""

from __future__ import annotations

from collections.abc import Iterable

KINDS = ("network", "queue", "connect", "cpu", "runtime", "gc", "proxy", "delay", "retry")


class Spent:
    """Seconds of each kind on one path (see the module docstring)."""

    __slots__ = KINDS

    def __init__(self, network: float = 0.0, queue: float = 0.0, cpu: float = 0.0, runtime: float = 0.0,
                 proxy: float = 0.0, delay: float = 0.0, retry: float = 0.0, connect: float = 0.0,
                 gc: float = 0.0) -> None:
        self.network = network
        self.queue = queue
        self.connect = connect
        self.cpu = cpu
        self.runtime = runtime
        self.gc = gc
        self.proxy = proxy
        self.delay = delay
        self.retry = retry

    def add(self, other: Spent) -> None:
        self.network += other.network
        self.queue += other.queue
        self.connect += other.connect
        self.cpu += other.cpu
        self.runtime += other.runtime
        self.gc += other.gc
        self.proxy += other.proxy
        self.delay += other.delay
        self.retry += other.retry

    @staticmethod
    def slowest(branches: Iterable[tuple[float, Spent]]) -> Spent:
        """The breakdown of the branch that ended last, of (end time, breakdown) pairs (an empty one: 0)."""
        return max(branches, key=lambda branch: branch[0], default=(0.0, Spent()))[1]
