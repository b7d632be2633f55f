"""One function's instances on a FaaS platform: cold starts, reuse, keep-alive, the instance limit, cost.

The mechanism (SimFaaS's, Mahmoudi and Khazaei, "SimFaaS: A Performance Simulator for Serverless
Computing Platforms", CLOSER 2021, generalised to ``concurrency`` requests per instance):

* A request goes to a ready instance with a free slot, the most recently created first (SimFaaS's
  ``schedule_warm_instance``: the newest idle instance), and is **warm**.
* Otherwise, if a starting instance has a free slot, it waits for that instance; otherwise, below
  ``max_instances``, it starts a new instance and waits for its cold start (scale from zero included):
  the request that triggered a cold start is served by the instance it started. Both are **cold**.
* At ``max_instances`` it is rejected, or queued FIFO for the next free slot (``at_limit``).
* A cold start is the stages ``placement``, ``sandbox``, ``runtime_start``, ``function_init``,
  ``first_request`` in order, each drawn from its own distribution and stream (``faas.NAME.coldstart.STAGE``);
  the sandbox decides some of them (:mod:`models.faas.config`: a snapshot restore has no runtime start).
* An instance with no request in progress is idle; the function's keep-alive policy
  (:mod:`models.faas.keepalive`) says for how long it is kept: ``keep_alive`` seconds with the fixed policy,
  after which, if still idle, it is reclaimed. A policy may instead unload it at once and pre-warm a new
  instance later (a cold start off any request's path, counted in ``instances.prewarmed``), kept for the
  policy's keep-alive window from then; an invocation before the pre-warm cancels it. ``provisioned``
  instances are warm at time 0 and never reclaimed.
* Wasted memory-time (``instances.wasted_gb_s``): memory loaded while no request runs on it, the idle time of
  ready instances and the start of pre-warmed ones.
* Billed: each request's handler time rounded up to the pricing granularity, times the memory in GB
  (cold-start time is not billed in this model).

The handler's time is a distribution (``service``), plus ``syscalls_per_request`` times gVisor's cost of a
system call in a ``gvisor`` sandbox, stretched by the CPU share with ``cpu_scaling``; or, with ``handler``, the
request runs on its instance's runtime model (Go or Node.js, :mod:`models.runtime`) on the CPU share the
instance's memory buys, a runtime each instance has from the end of its cold start until it is unloaded
(:mod:`models.faas.runtimes`; gVisor's cost of its system calls is CPU added to its handler's): the handler's
time, and the billed duration, is then the request's time on the runtime, its wait behind the instance's other
requests (``concurrency`` > 1) and its collector's pauses and assists included, and ``requests.cpu_s`` records
each request's CPU (seconds of a full vCPU).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable

from sim.core import Environment
from sim.stats import Counter, Gauge, Histogram
from models.faas.config import STAGES, FunctionConfig, PricingConfig
from models.faas.runtimes import InstanceRuntimes
from models.runtime.protocol import Runtime


class Instance:
    """One function instance: ready or starting, its requests in progress, since when it is idle."""

    __slots__ = ("created", "ready", "busy", "idle", "idle_since", "expire_at", "timer_at", "provisioned", "pending",
                 "keep_until", "loaded", "serial", "offered", "runtime", "slot")

    def __init__(self, created: float, ready: bool, provisioned: bool = False) -> None:
        self.created = created
        self.ready = ready
        self.busy = 0  # requests in progress, and those waiting for the instance to start
        self.idle = False
        self.idle_since = created
        self.expire_at = math.inf  # when it is reclaimed if it stays idle
        self.timer_at = math.inf  # when the pending timer that checks its expiry fires (inf: none)
        self.loaded = True  # False once unloaded
        self.serial = 0  # creation order in its pool
        self.offered = False  # whether it is in its pool's heap of instances with a free slot
        self.provisioned = provisioned
        self.pending: list[float] = []  # arrival times of the requests waiting for the instance to start
        self.keep_until: float | None = None  # a pre-warmed instance: unloaded then if no request came
        self.runtime: Runtime | None = None  # with a handler: its runtime model, from ready until unloaded
        self.slot = -1  # with a handler: its runtime's slot (models.faas.runtimes)


class Recorder:
    """The metrics of a function, written under one or more prefixes ('' for the platform's totals)."""

    def __init__(self, env: Environment, prefixes: list[str]) -> None:
        metrics = env.metrics
        self.env, self.prefixes = env, prefixes

        def hists(name: str) -> list[Histogram]:
            return [metrics.histogram(p + name) for p in prefixes]

        def counters(name: str) -> list[Counter]:
            return [metrics.counter(p + name) for p in prefixes]

        def gauges(name: str) -> list[Gauge]:
            return [metrics.gauge(p + name) for p in prefixes]

        self.sojourn = hists("requests.sojourn_s")
        self.stage = {stage: hists(f"coldstart.{stage}_s") for stage in STAGES}
        self.latency = hists("coldstart.latency_s")
        self.cold, self.warm = counters("requests.cold"), counters("requests.warm")
        self.rejected, self.queued = counters("requests.rejected"), counters("requests.queued")
        self.completed = counters("requests.completed")
        self.wasted, self.gb_s, self.usd = (
            counters("instances.wasted_gb_s"), counters("cost.gb_s"), counters("cost.usd"))
        self.count, self.idle = gauges("instances.count"), gauges("instances.idle")
        self.prewarmed = counters("instances.prewarmed")

    def cpu(self) -> list[Histogram]:
        """``requests.cpu_s``: each request's handler CPU (made for the functions with a handler only)."""
        return [self.env.metrics.histogram(p + "requests.cpu_s") for p in self.prefixes]


def _record(metrics: list[Histogram], value: float) -> None:
    for metric in metrics:
        metric.record(value)


def _inc(metrics: list[Counter], n: float = 1) -> None:
    for metric in metrics:
        metric.inc(n)


def _add(metrics: list[Gauge], delta: float) -> None:
    for metric in metrics:
        metric.add(delta)


class FunctionPool:
    """The instances of one function (see the module docstring)."""

    def __init__(self, env: Environment, name: str, config: FunctionConfig, pricing: PricingConfig,
                 recorder: Recorder) -> None:
        self.env = env
        self.name = name
        self.config = config
        self.pricing = pricing
        self.metrics = recorder
        self.stages = [
            (stage, dist.sampler(env.rng(f"faas.{name}.coldstart.{stage}")))
            for stage, dist in config.cold_start.stages(config.runtime).items()
        ]
        self.runtimes = (InstanceRuntimes(env, name, config, config.handler, recorder.cpu())
                         if config.handler is not None else None)
        self.draw_service: Callable[[], float] = lambda: 0.0
        if config.service is not None:
            stretch = 1 / min(1.0, config.cpu_share) if config.cpu_scaling else 1.0
            syscalls = config.syscalls_per_request * config.cold_start.syscall_overhead_s()  # gVisor's interception
            draw = config.service.sampler(env.rng(f"faas.{name}.service"))
            self.draw_service = ((lambda: (draw() + syscalls) * stretch) if stretch != 1.0 or syscalls else draw)
        self.instances: dict[Instance, None] = {}  # loaded or starting, in creation order
        self.free: list[tuple[float, int, Instance]] = []  # heap, newest first: ready instances with a free slot,
        # and stale entries dropped when they reach the top (full or unloaded since)
        self.starting: list[Instance] = []  # instances starting, in creation order
        self.created = 0
        self.waiting: deque[float] = deque()
        self.counted_from = 0.0
        self.policy = config.policy()
        self.learns = self.policy.learns
        self.active = 0  # requests running
        self.last_end: float | None = None  # when the last execution ended
        self.prewarm_token = 0  # changes at every invocation: a pending pre-warm sees it and stands down
        self.cold_n = self.warm_n = 0  # this function's cold and warm requests since the warm-up
        for _ in range(config.provisioned):
            self._add_instance(Instance(0.0, ready=True, provisioned=True))

    # -- instance bookkeeping ------------------------------------------------------------------------------

    def _add_instance(self, instance: Instance) -> None:
        self.created += 1
        instance.serial = self.created
        self.instances[instance] = None
        if not instance.ready:
            self.starting.append(instance)
        self._offer(instance)
        _add(self.metrics.count, 1)
        if instance.ready:
            self._start_runtime(instance)
            self._become_idle(instance)

    def _start_runtime(self, instance: Instance) -> None:
        """A ready instance's runtime model (with a handler)."""
        if self.runtimes is not None:
            instance.slot, instance.runtime = self.runtimes.start()

    def _become_idle(self, instance: Instance) -> None:
        keep = 0.0
        if not instance.provisioned:
            if instance.keep_until is not None:  # a pre-warmed instance that no request has used yet
                keep, instance.keep_until = max(0.0, instance.keep_until - self.env.now), None
            else:
                decision = self.policy.windows()
                if decision.prewarm_s > 0:
                    self._unload(instance)
                    token = self.prewarm_token
                    self.env.timeout(decision.prewarm_s).callbacks.append(
                        lambda _: self._prewarm(token, decision.keep_alive_s))
                    return
                keep = decision.keep_alive_s
        instance.idle, instance.idle_since = True, self.env.now
        _add(self.metrics.idle, 1)
        if not instance.provisioned:
            instance.expire_at = self.env.now + keep
            if instance.expire_at < instance.timer_at:
                self._arm(instance, keep)

    def _arm(self, instance: Instance, delay: float) -> None:
        """One live timer per instance: an instance used again before it fires is checked then, and the timer
        re-armed for what is left, instead of a timer per idle period (fewer events on busy functions). A timer
        due later than a new, shorter expiry is superseded by an earlier one and ignored when it fires."""
        at = self.env.now + delay
        instance.timer_at = at
        self.env.timeout(delay).callbacks.append(lambda _: self._check_expiry(instance, at))

    def _check_expiry(self, instance: Instance, at: float) -> None:
        if at != instance.timer_at:
            return  # superseded
        instance.timer_at = math.inf
        if not instance.loaded or not instance.idle:
            return  # unloaded, or busy: armed again when it next becomes idle
        if self.env.now >= instance.expire_at:
            self._leave_idle(instance)
            self._unload(instance)
        else:
            self._arm(instance, instance.expire_at - self.env.now)

    def _unload(self, instance: Instance) -> None:
        instance.loaded = False
        if self.runtimes is not None and instance.runtime is not None:
            self.runtimes.stop(instance.slot)
            instance.runtime = None
        del self.instances[instance]
        _add(self.metrics.count, -1)

    def _prewarm(self, token: int, keep_alive_s: float) -> None:
        """Start an instance ahead of the next invocation, unless one came since or an instance has room."""
        if token != self.prewarm_token or len(self.instances) >= self.config.max_instances:
            return
        if self._newest_free() is not None or self._starting_free() is not None:
            return
        instance = Instance(self.env.now, ready=False)
        instance.keep_until = self.env.now + keep_alive_s
        _inc(self.metrics.prewarmed)
        self._add_instance(instance)
        self.env.process(self._cold_start(instance))

    def _leave_idle(self, instance: Instance) -> None:
        instance.idle = False
        _add(self.metrics.idle, -1)
        self._waste(instance, self.env.now)

    def _waste(self, instance: Instance, until: float) -> None:
        self._waste_span(instance.idle_since, until)

    def _waste_span(self, since: float, until: float) -> None:
        start = max(since, self.counted_from)
        if until > start:
            _inc(self.metrics.wasted, (until - start) * self.config.memory_gb)

    def flush(self) -> None:
        """End of the run: count the idle time of the instances still idle."""
        for instance in self.instances:
            if instance.idle:
                self._waste(instance, self.env.now)

    def warmup_over(self) -> None:
        """Wasted memory-time and cold starts are counted from now on (the metrics were just reset)."""
        self.counted_from = self.env.now
        self.cold_n = self.warm_n = 0

    # -- requests ------------------------------------------------------------------------------------------

    def arrive(self) -> None:
        """A request arrives now."""
        arrived = self.env.now
        self.prewarm_token += 1
        if self.learns and self.last_end is not None:
            self.policy.observe(0.0 if self.active else arrived - self.last_end)
        best = self._newest_free()
        starting = self._starting_free() if best is None else None
        if best is not None:
            _inc(self.metrics.warm)
            self.warm_n += 1
            self._start(best, arrived)
        elif starting is not None:
            _inc(self.metrics.cold)
            self.cold_n += 1
            starting.busy += 1  # a slot held for this request; served when the instance is ready
            starting.pending.append(arrived)
        elif len(self.instances) < self.config.max_instances:
            _inc(self.metrics.cold)
            self.cold_n += 1
            instance = Instance(arrived, ready=False)
            instance.busy = 1
            instance.pending.append(arrived)
            self._add_instance(instance)
            self.env.process(self._cold_start(instance))
        elif self.config.at_limit == "queue":
            _inc(self.metrics.queued)
            self.waiting.append(arrived)
        else:
            _inc(self.metrics.rejected)

    def _offer(self, instance: Instance) -> None:
        """Put a ready instance with a free slot in the heap of free instances (if not there already)."""
        if instance.ready and not instance.offered and instance.busy < self.config.concurrency:
            instance.offered = True
            heapq.heappush(self.free, (-instance.created, instance.serial, instance))

    def _newest_free(self) -> Instance | None:
        """The ready instance with a free slot created last (SimFaaS's choice), dropping stale heap entries."""
        free, limit = self.free, self.config.concurrency
        while free:
            instance = free[0][2]
            if instance.loaded and instance.busy < limit:
                return instance
            heapq.heappop(free)
            instance.offered = False
        return None

    def _starting_free(self) -> Instance | None:
        """The first created of the starting instances with a free slot."""
        limit = self.config.concurrency
        return next((instance for instance in self.starting if instance.busy < limit), None)

    def _cold_start(self, instance: Instance):
        began = self.env.now
        total = 0.0
        for stage, draw in self.stages:
            took = draw()
            total += took
            _record(self.metrics.stage[stage], took)
            if took > 0:
                yield self.env.timeout(took)
        _record(self.metrics.latency, total)
        # each timeout rounds the clock to a float: half an ulp of the clock per stage, so a tiny stage late in a
        # long run is off by ~1e-12 s (17 145 s: ulp 3.6e-12), which a fixed absolute tolerance would reject
        assert math.isclose(self.env.now - began, total, rel_tol=1e-9,
                            abs_tol=len(self.stages) * math.ulp(self.env.now))
        instance.ready = True
        self.starting.remove(instance)
        self._start_runtime(instance)
        if instance.keep_until is not None:  # pre-warmed: its start held memory for no request
            self._waste_span(began, self.env.now)
            if instance.pending:
                instance.keep_until = None
        pending, instance.pending, instance.busy = instance.pending, [], 0
        for arrived in pending:
            self._start(instance, arrived)
        while self.waiting and instance.busy < self.config.concurrency:
            instance.keep_until = None
            self._start(instance, self.waiting.popleft())
        if instance.busy == 0:
            self._become_idle(instance)
        if instance.loaded:
            self._offer(instance)

    def _start(self, instance: Instance, arrived: float) -> None:
        """Serve a request on a ready instance with a free slot."""
        if instance.idle:
            self._leave_idle(instance)
        instance.busy += 1
        self.active += 1
        if self.runtimes is not None and instance.runtime is not None:
            ran = self.runtimes.run(instance.runtime)
            ran.callbacks.append(lambda event: self._done(instance, arrived, event.value))
            return
        service = self.draw_service()
        self.env.timeout(service).callbacks.append(lambda _: self._done(instance, arrived, service))

    def _done(self, instance: Instance, arrived: float, service: float) -> None:
        instance.busy -= 1
        self.active -= 1
        self.last_end = self.env.now
        _record(self.metrics.sojourn, self.env.now - arrived)
        _inc(self.metrics.completed)
        grain = self.pricing.granularity
        gb_s = math.ceil(service / grain - 1e-9) * grain * self.config.memory_gb
        _inc(self.metrics.gb_s, gb_s)
        _inc(self.metrics.usd, gb_s * self.pricing.gb_s + self.pricing.request)
        if self.waiting:
            self._start(instance, self.waiting.popleft())
        elif instance.busy == 0:
            self._become_idle(instance)
        if instance.loaded:
            self._offer(instance)
