"""A backend that serves requests: a service-time distribution and optionally a worker limit.

``workers=None`` serves every request at once (a Go server runs each request in
its own goroutine); ``workers=c`` makes an FCFS station of ``c`` servers. TLS
handshake CPU at the server takes a worker like any other work.

Metrics: ``NAME.wait_s`` (histogram: time queued for a worker).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from sim.core import Environment
from sim.dists import Distribution


class Backend:
    def __init__(self, env: Environment, name: str, service: Distribution, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"{name}.workers: must be >= 1 or None (got {workers})")
        self.env = env
        self.name = name
        self.draw_service = service.sampler(env.rng(f"{name}.service"))
        self.workers = simpy.Resource(env, workers) if workers is not None else None
        self.wait_s = env.metrics.histogram(f"{name}.wait_s")

    def serve(self) -> simpy.Event:
        """An event that fires when one request has been served."""
        return self.work(self.draw_service())

    def work(self, seconds: float) -> simpy.Event:
        """An event that fires when ``seconds`` of work (a request, a TLS handshake) is done."""
        if self.workers is None:
            return self.env.timeout(seconds)
        return self.env.process(self._queued(seconds))

    def _queued(self, seconds: float) -> Generator[simpy.Event, Any, None]:
        queued, workers = self.env.now, self.workers
        assert workers is not None  # work() queues only when the backend has workers
        with workers.request() as slot:
            yield slot
            self.wait_s.record(self.env.now - queued)
            yield self.env.timeout(seconds)


class Upstream:
    """A host as a client sees it: how to dial it and the backend that serves it (None: the caller serves
    each request itself, as the ``arch`` model's pods do)."""

    def __init__(self, name: str, dialer, backend: Backend | None = None) -> None:
        self.name = name
        self.dialer = dialer
        self._backend = backend

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            raise ValueError(f"upstream {self.name}: no backend to serve requests (its caller serves them)")
        return self._backend
