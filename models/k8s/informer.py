"""client-go's reflector: an informer's LIST, then WATCH, again and again.

The loop of ``k8s.io/client-go/tools/cache/reflector.go`` (``ListAndWatch``, ``watch``), on a
simulated clock:

* **LIST**, then **WATCH** from the list's resource version.
* Each watch asks the server for a timeout drawn uniformly between 5 and 10 minutes
  (``minWatchTimeout`` × (1 + rand)); when it ends (timeout, or the server closing it, for
  example for lagging: :mod:`models.k8s.cacher`), the reflector watches again **from the last
  resource version it saw**, without listing.
* A watch refused with 410 Gone (the cache no longer holds that version) makes it **list again**.
  Relists are what turns slow clients into load: every closed watcher whose events have rotated out
  of the cache's history comes back as a LIST.
* Before listing again it backs off (client-go's reflector back-off: 800 ms, doubling,
  at most 30 s, reset after 2 minutes without failure, jitter 1.0: ``defaultBackoffInit``,
  ``defaultBackoffMax``, ``defaultBackoffReset``, ``defaultBackoffJitter`` in ``reflector.go``).

* **Resync** (``resyncPeriod`` of a shared informer, ``tools/cache/shared_informer.go``; 0, none, by
  default): every period the informer hands every object of its local store to its handlers again, as
  updates, without asking the server; a controller's queue gets every key once more.

The LIST itself is a callable that runs it through whatever path the model gives (the API server's
priority and fairness, the cache or etcd) and returns the resource version it saw.

Metrics: ``PREFIX.lists``, ``PREFIX.watches``, ``PREFIX.relists_after_gone``, ``PREFIX.closed_by_server``,
``PREFIX.resynced`` (objects handed out again by resyncs).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable

from sim.core import Environment
from models.k8s.api import ApiCall
from models.k8s.cacher import Cacher
from models.k8s.watchcache import TooOldResourceVersion

MIN_WATCH_TIMEOUT_S = 300.0
"""``minWatchTimeout`` (``tools/cache/reflector.go``): a watch lasts 5-10 minutes."""
BACKOFF_INITIAL_S = 0.8
"""The reflector's back-off: first delay (``reflector.go``)."""
BACKOFF_MAX_S = 30.0
"""The reflector's back-off: longest delay."""
BACKOFF_RESET_S = 120.0
"""The reflector's back-off: forgotten after this long without failure."""
BACKOFF_JITTER = 1.0
"""The reflector's back-off: a delay d becomes d × (1 + jitter × U[0, 1))."""


class Reflector:
    """One informer's reflector on one resource: LIST, then WATCH the cache, relisting after 410."""

    def __init__(self, env: Environment, name: str, cacher: Cacher, list_call: ApiCall,
                 consume: Callable[[], float], trigger: Hashable | None = None,
                 on_event: Callable[[Hashable], None] | None = None, prefix: str = "informer",
                 resync: float = 0.0, store: Callable[[], Iterable[Hashable]] | None = None) -> None:
        self.env, self.name, self.cacher = env, name, cacher
        self.list_call, self.consume, self.trigger, self.on_event = list_call, consume, trigger, on_event
        self.rng = env.rng(f"{prefix}.{name}")
        metrics = env.metrics
        self.lists = metrics.counter(f"{prefix}.lists")
        self.watches = metrics.counter(f"{prefix}.watches")
        self.relists = metrics.counter(f"{prefix}.relists_after_gone")
        self.closed_by_server = metrics.counter(f"{prefix}.closed_by_server")
        self.resynced = metrics.counter(f"{prefix}.resynced")
        if resync < 0:
            raise ValueError(f"{name}: resync must be >= 0 s, got {resync!r}")
        if resync > 0:
            if store is None or on_event is None:
                raise ValueError(f"{name}: a resync needs the informer's store and a handler")
            env.process(self._resync(resync, store, on_event))
        self._backoff = 0.0
        self._last_failure = -float("inf")
        self.process = env.process(self.run())

    def _back_off(self):
        now = self.env.now
        if now - self._last_failure > BACKOFF_RESET_S:
            self._backoff = BACKOFF_INITIAL_S
        else:
            self._backoff = min(BACKOFF_MAX_S, self._backoff * 2)
        self._last_failure = now
        yield self.env.timeout(self._backoff * (1 + BACKOFF_JITTER * self.rng.random()))

    def _resync(self, period: float, store: Callable[[], Iterable[Hashable]],
                handler: Callable[[Hashable], None]):
        while True:
            yield self.env.timeout(period)
            for key in store():
                handler(key)
                self.resynced.inc()

    def run(self):
        while True:
            resource_version = yield from self.list_call()
            self.lists.inc()
            while True:
                try:
                    watcher = self.cacher.watch(self.name, resource_version, self.consume, self.trigger,
                                                on_event=self.on_event)
                except TooOldResourceVersion:
                    self.relists.inc()
                    yield from self._back_off()
                    break
                self.watches.inc()
                timeout = self.env.timeout(MIN_WATCH_TIMEOUT_S * (1 + self.rng.random()))
                yield watcher.closed | timeout
                if not watcher.closed.triggered:
                    watcher.stop()
                elif watcher.closed.value == "lagging":
                    self.closed_by_server.inc()
                resource_version = watcher.resource_version
