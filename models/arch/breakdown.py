"""Where a request's time went, along its critical path.

A request's end-to-end latency is the time of the path that ended last: its
steps one after the other, and of calls made in parallel only the one that
returned last. A :class:`Spent` adds up that path's time by kind, so that the
kinds sum to the latency exactly: ``network`` (the hops between client and
pod, there and back, and a pooled connection's bytes), ``queue`` (waiting
for a pod's concurrency slot or a node's core), ``connect`` (waiting for a
pooled connection or stream: dials, their TCP and TLS handshakes, pool
limits; :mod:`models.arch.connections`), ``cpu`` (holding a core),
``runtime`` (a pod on a runtime model: its steps' time there, CPU with the runtime's queueing, collector and
scheduling, but for its calls), ``proxy`` (in the mesh's sidecars: waiting
for a worker thread or a core, and their CPU), ``delay`` (latency injected as
a fault), ``retry`` (attempts that failed, and the back-offs after them, of
calls that then succeeded).
"""

from __future__ import annotations

from collections.abc import Iterable

KINDS = ("network", "queue", "connect", "cpu", "runtime", "proxy", "delay", "retry")


class Spent:
    """Seconds of each kind on one path (see the module docstring)."""

    __slots__ = KINDS

    def __init__(self, network: float = 0.0, queue: float = 0.0, cpu: float = 0.0, runtime: float = 0.0,
                 proxy: float = 0.0, delay: float = 0.0, retry: float = 0.0, connect: float = 0.0) -> None:
        self.network = network
        self.queue = queue
        self.connect = connect
        self.cpu = cpu
        self.runtime = runtime
        self.proxy = proxy
        self.delay = delay
        self.retry = retry

    def add(self, other: Spent) -> None:
        self.network += other.network
        self.queue += other.queue
        self.connect += other.connect
        self.cpu += other.cpu
        self.runtime += other.runtime
        self.proxy += other.proxy
        self.delay += other.delay
        self.retry += other.retry

    @staticmethod
    def slowest(branches: Iterable[tuple[float, Spent]]) -> Spent:
        """The breakdown of the branch that ended last, of (end time, breakdown) pairs (an empty one: 0)."""
        return max(branches, key=lambda branch: branch[0], default=(0.0, Spent()))[1]
