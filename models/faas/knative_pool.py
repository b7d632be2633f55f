"""A function's instances scaled by Knative's autoscaler (:mod:`models.faas.knative`) behind its activator.

What is modelled (``scaling: knative``):

* **Concurrency samples**: every second the time-weighted mean of the requests in the revision (in progress
  on instances and waiting for a slot) is recorded into the stable and panic windows, as the queue-proxies'
  and the activator's per-second reports are (``pkg/autoscaler/metrics/collector.go``); with no instance and
  no request nothing is recorded (nothing to scrape).
* **Decisions** every 2 s (and at once when a request arrives with no instance: the activator's poke,
  ``Collector.Watch``): the KPA's desired count, held within ``min_scale`` .. ``max_scale`` (at least
  ``initial_scale`` until that many instances have been ready once) and ``max_instances``, then the
  scale-to-zero rule (:class:`~models.faas.knative.ScaleToZero`). More instances: each starts through the
  cold-start stages (:class:`~models.faas.platform.FunctionPool`); fewer: idle ready ones go first, then
  starting ones, then busy ones, which finish their requests and go.
* **Activator**: a request goes to a ready instance with a free slot (``concurrency`` is
  containerConcurrency): the first one for a concurrency of 3 or less, else round robin, as the activator's
  throttler (``pkg/activator/net/throttler.go``, ``lb_policy.go``); with none it waits FIFO in the
  activator's buffer (``activator.wait_s``) for a slot, which a starting instance takes when it becomes ready.
  Simplified: the buffer and this choice of instance apply whether or not the activator is in the path (when
  the excess burst capacity is not negative, upstream sends requests straight to the pods through the
  Kubernetes service, each pod's queue-proxy queueing beyond its containerConcurrency); the time the
  activator is in the path (excess burst capacity below 0, or no instance) is a metric.
* A request that waited in the buffer counts as cold, one served at once as warm; ``keep_alive``,
  ``at_limit`` and ``provisioned`` do not apply (instances go only when the autoscaler removes them).
"""

from __future__ import annotations

from collections import deque

from sim.core import Environment
from sim.stats import Counter, Gauge, Histogram
from models.faas.config import FunctionConfig, PricingConfig
from models.faas.knative import (
    GRANULARITY_S,
    TICK_S,
    Autoscaler,
    DeciderSpec,
    ScaleToZero,
    TimedBuckets,
    WeightedBuckets,
    apply_bounds,
    resolve_target,
)
from models.faas.platform import FunctionPool, Instance, Recorder, _add, _inc, _record

FIRST_AVAILABLE_MAX = 3
"""Up to this containerConcurrency the activator takes the first pod with a free slot, above it round robin
(``pkg/activator/net/throttler.go``)."""


class KnativeRecorder(Recorder):
    """The platform's metrics, and the autoscaler's and activator's."""

    def __init__(self, env: Environment, prefixes: list[str]) -> None:
        super().__init__(env, prefixes)
        metrics = env.metrics
        self.desired: list[Gauge] = [metrics.gauge(p + "knative.pods.desired") for p in prefixes]
        self.ready: list[Gauge] = [metrics.gauge(p + "knative.pods.ready") for p in prefixes]
        self.panic_s: list[Counter] = [metrics.counter(p + "knative.panic_s") for p in prefixes]
        self.in_path_s: list[Counter] = [metrics.counter(p + "knative.activator.in_path_s") for p in prefixes]
        self.wait: list[Histogram] = [metrics.histogram(p + "knative.activator.wait_s") for p in prefixes]


class KnativePool(FunctionPool):
    """The instances of one function under ``scaling: knative`` (see the module docstring)."""

    metrics: KnativeRecorder

    def __init__(self, env: Environment, name: str, config: FunctionConfig, pricing: PricingConfig,
                 recorder: KnativeRecorder) -> None:
        super().__init__(env, name, config, pricing, recorder)
        settings = config.knative
        target, total = resolve_target(config.concurrency, settings.target, settings.target_utilization)
        window = settings.stable_window
        self.spec = DeciderSpec(
            target_value=target, total_value=total, target_burst_capacity=settings.target_burst_capacity,
            panic_threshold=settings.panic_threshold_percentage / 100, max_scale_up_rate=settings.max_scale_up_rate,
            max_scale_down_rate=settings.max_scale_down_rate, stable_window_s=window,
            scale_down_delay_s=settings.scale_down_delay)
        buckets = WeightedBuckets if settings.aggregation == "weighted-exponential" else TimedBuckets
        self.stable = buckets(window)
        self.panic = buckets(max(GRANULARITY_S, window * settings.panic_window_percentage / 100))
        self.autoscaler = Autoscaler(self.spec, ready=0, now=env.now)
        initial = settings.initial_scale
        self.zero = ScaleToZero(window, settings.scale_to_zero_grace_period, settings.enable_scale_to_zero,
                                active_since=env.now if initial else None)
        self.high = min(settings.max_scale or config.max_instances, config.max_instances)
        self.initialized = initial <= 1
        self.draining: set[Instance] = set()
        self.next_pick = 0
        self.in_system = 0
        self.area, self.area_since = 0.0, env.now
        self.panicking, self.in_path = False, True
        self.state_since = env.now
        self.generation, self.sleeping, self.scale_target = 0, False, 0
        self._scale_to(apply_bounds(settings.min_scale, self.high, initial))
        self._wake()

    # -- concurrency, as the collector sees it ------------------------------------------------------------------

    def _level(self, delta: int) -> None:
        now = self.env.now
        self.area += self.in_system * (now - self.area_since)
        self.area_since = now
        self.in_system += delta

    def _wake(self) -> None:
        """Start sampling and deciding (at time 0, and when a request finds the revision at zero)."""
        self.generation += 1
        self.sleeping = False
        self.area, self.area_since = 0.0, self.env.now
        self.env.process(self._sample(self.generation))

    def _asleep(self, generation: int) -> bool:
        return generation != self.generation

    def _sample(self, generation: int):
        """A scrape every second, and every :data:`TICK_S` a decision on it (scrape first, so that a decision
        sees the second it is in: read before it, a weighted average would count that second as 0)."""
        every = round(TICK_S / GRANULARITY_S)
        seconds = 0
        while True:
            yield self.env.timeout(GRANULARITY_S)
            if self._asleep(generation):
                return
            seconds += 1
            self._level(0)
            mean, self.area = self.area / GRANULARITY_S, 0.0
            if mean > 0 or self.instances:  # a scrape, stamped with its time (collector.go)
                self.stable.record(self.env.now, mean)
                self.panic.record(self.env.now, mean)
            elif self.scale_target == 0:
                self.sleeping = True  # at zero with nothing in flight: no scrape, no decision until a request
                self.generation += 1
                return
            if seconds % every == 0:
                self._decide()

    # -- decisions ------------------------------------------------------------------------------------------------

    def _ready_count(self) -> int:
        return sum(1 for i in self.instances if i.ready and i not in self.draining)

    def _decide(self) -> None:
        now = self.env.now
        if self.stable.is_empty(now):
            return  # no data: upstream's invalid result, the scale stays
        ready = self._ready_count()
        result = self.autoscaler.scale(now, ready, self.stable.window_average(now), self.panic.window_average(now))
        low = self.config.knative.min_scale
        if not self.initialized:
            if ready >= self.config.knative.initial_scale:
                self.initialized = True
            else:
                low = max(low, self.config.knative.initial_scale)
        scale = self.zero.decide(now, apply_bounds(low, self.high, result.desired))
        self._set_state(result.panicking, result.excess_burst_capacity < 0 or ready == 0)
        if scale is not None:
            self._scale_to(scale)
        for gauge in self.metrics.desired:
            gauge.set(result.desired)

    def _set_state(self, panicking: bool, in_path: bool) -> None:
        now = self.env.now
        if self.panicking:
            _inc(self.metrics.panic_s, now - self.state_since)
        if self.in_path:
            _inc(self.metrics.in_path_s, now - self.state_since)
        self.panicking, self.in_path, self.state_since = panicking, in_path, now

    def warmup_over(self) -> None:
        super().warmup_over()
        self.state_since = self.env.now

    def flush(self) -> None:
        self._set_state(self.panicking, self.in_path)
        super().flush()

    def _scale_to(self, count: int) -> None:
        self.scale_target = count
        live = [i for i in self.instances if i not in self.draining]
        for _ in range(count - len(live)):
            instance = Instance(self.env.now, ready=False)
            self._add_instance(instance)
            self.env.process(self._cold_start(instance))
        if count >= len(live):
            return
        # idle ready instances first (the newest first), then starting ones, then the least busy
        victims = sorted(live, key=lambda i: (not (i.ready and i.busy == 0), i.ready, i.busy, -i.created))
        for instance in victims[:len(live) - count]:
            if instance.ready and instance.busy == 0:
                self._remove(instance)
            else:
                self.draining.add(instance)
                if instance.ready:
                    _add(self.metrics.ready, -1)

    def _remove(self, instance: Instance) -> None:
        if instance.idle:
            self._leave_idle(instance)
        if instance.ready and instance not in self.draining:
            _add(self.metrics.ready, -1)
        self.draining.discard(instance)
        self._unload(instance)

    # -- instances ------------------------------------------------------------------------------------------------

    def _cold_start(self, instance: Instance):
        yield from super()._cold_start(instance)  # it becomes idle there if no request waits for it
        if instance.loaded and instance not in self.draining:
            _add(self.metrics.ready, 1)

    def _become_idle(self, instance: Instance) -> None:
        """Idle, never reclaimed by a keep-alive (the autoscaler removes instances); a draining one goes."""
        if instance in self.draining:
            self._remove(instance)
            return
        instance.idle, instance.idle_since = True, self.env.now
        _add(self.metrics.idle, 1)

    def _offer(self, instance: Instance) -> None:
        """The activator picks instances itself (:meth:`_pick`), not from the platform's heap of free ones."""

    # -- requests -------------------------------------------------------------------------------------------------

    def _pick(self) -> Instance | None:
        limit = self.config.concurrency
        candidates = list(self.instances)
        n = len(candidates)
        start = 0 if limit <= FIRST_AVAILABLE_MAX else self.next_pick
        for k in range(n):
            index = (start + k) % n
            instance = candidates[index]
            if instance.ready and instance.busy < limit and instance not in self.draining:
                self.next_pick = index + 1
                return instance
        return None

    def arrive(self) -> None:
        """A request arrives now: to an instance with a free slot, or into the activator's buffer."""
        self._level(1)
        instance = self._pick()
        if instance is not None:
            _inc(self.metrics.warm)
            self._start(instance, self.env.now)
            return
        _inc(self.metrics.cold)
        self.waiting.append(self.env.now)
        if not self.instances:
            self._poke()

    def _poke(self) -> None:
        """Scale from zero: the activator reports the request at once and the autoscaler decides."""
        if self.sleeping:
            self._wake()
        self.stable.record(self.env.now, 1.0)
        self.panic.record(self.env.now, 1.0)
        self._decide()

    def _start(self, instance: Instance, arrived: float) -> None:
        if self.env.now > arrived:
            _record(self.metrics.wait, self.env.now - arrived)
        super()._start(instance, arrived)

    def _done(self, instance: Instance, arrived: float, service: float) -> None:
        self._level(-1)
        if instance in self.draining:
            waiting, self.waiting = self.waiting, deque()  # a draining instance takes no more requests
            super()._done(instance, arrived, service)
            self.waiting = waiting
        else:
            super()._done(instance, arrived, service)
