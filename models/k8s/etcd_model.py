"""Model kind ``k8s.etcd``: an etcd cluster (:mod:`models.k8s.etcd`) under open-loop puts, reads and watches.

Clients put values at a Poisson rate to the leader, read ranges at their own Poisson rate (a share of them
linearizable) and watch every key through watch streams: one stream per watch (a client per watch) or
one stream shared by all the watches of a client (etcd's ``clientv3`` multiplexes the watches of one
client on one gRPC stream, ``clientv3/watch.go``). Some watchers may be slow (they take a time to handle
each event). Defaults: the fitted parameter sets ``etcd.*`` (:mod:`calibration.fitetcd`; the machine and
etcd 3.4.23 they were measured on are in their provenance); ``cores`` 2, the calibration machine's;
``value_size`` at most 1.5 MiB, etcd's default request limit (``--max-request-bytes``,
``embed/config.go`` ``DefaultMaxRequestBytes``).

Metrics: ``put.latency_s`` (from a put's send to its response), ``range.latency_s``,
``watch.delivery_s`` (from a put's send to a watcher's receipt of its event, every watcher),
``watch.slow_delivery_s`` (the slow watchers alone), ``raft.batch_entries`` (proposals per batch the
leader persists), ``watch.victim_events`` (events that found their stream's channel full),
``puts.completed``, ``watch.events`` (events received, all watchers).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Literal

import simpy
from pydantic import Field, model_validator

from sim.core import Environment, Model
from sim.scenario import Duration, Rate, ScenarioBase, ScenarioPart, Size, calibrated_field
from models.k8s.etcd import EtcdCosts, RaftGroup, WatchHub, WatchStream, on_core, put

MAX_REQUEST_BYTES = 1.5 * 1024 * 1024
"""etcd's default ``--max-request-bytes`` (``embed/config.go``, ``DefaultMaxRequestBytes``): 1.5 MiB."""
DRAIN_LIMIT_S = 60.0
"""How long a run waits, after its last put, for the responses and watch events still on their way."""


class CostsConfig(ScenarioPart):
    """etcd's costs; each null is its fitted parameter set (:mod:`models.k8s.etcd` says where it is spent)."""

    request: Duration | None = calibrated_field("a request's client and API path, in and out", "etcd.request_s",
                                                ge=0)
    fsync: Duration | None = calibrated_field("a WAL append with its fsync, per batch and member",
                                              "etcd.wal.fsync_s", ge=0)
    per_byte: Duration | None = calibrated_field("a batch's cost per byte written", "etcd.wal.byte_s", ge=0)
    apply: Duration | None = calibrated_field("applying one entry on the leader", "etcd.apply_s", ge=0)
    rtt: Duration | None = calibrated_field("round trip between the leader and a follower", "etcd.raft.rtt_s",
                                            ge=0)
    range_object: Duration | None = calibrated_field("a range's cost per object returned", "etcd.range.object_s",
                                                     ge=0)
    range_byte: Duration | None = calibrated_field("a range's cost per byte returned", "etcd.range.byte_s", ge=0)
    watch_event: Duration | None = calibrated_field("sending one event on a watch stream", "etcd.watch.event_s",
                                                    ge=0)

    def resolve(self) -> EtcdCosts:
        return EtcdCosts.calibrated(
            request_s=self.request, fsync_s=self.fsync, byte_s=self.per_byte, apply_s=self.apply,
            rtt_s=self.rtt, range_object_s=self.range_object, range_byte_s=self.range_byte,
            watch_event_s=self.watch_event)


class WritesConfig(ScenarioPart):
    """Open-loop puts at the leader."""

    rate: Rate = Field(gt=0, description="Poisson puts per second")
    value_size: Size = Field(1024, gt=0, le=MAX_REQUEST_BYTES, description="bytes of each value")


class ReadsConfig(ScenarioPart):
    """Open-loop ranges at the leader."""

    rate: Rate = Field(gt=0, description="Poisson ranges per second")
    objects: int = Field(1, ge=1, le=10_000_000, description="objects each range returns")
    object_size: Size = Field(1024, ge=0, description="bytes of each object returned")
    linearizable: float = Field(1.0, ge=0, le=1, description="share of ranges that are linearizable "
                                "(clientv3's default); the others are serializable")


class WatchConfig(ScenarioPart):
    """Watches of every key, on streams of their own or one shared stream."""

    watchers: int = Field(0, ge=0, le=100_000, description="watches")
    clients: Literal["per-watch", "shared"] = Field(
        "per-watch", description="per-watch: each watch on a client (a gRPC stream) of its own; shared: all "
        "on one client's stream, as clientv3 multiplexes them")
    slow: int = Field(0, ge=0, description="how many of the watchers are slow")
    slow_consume: Duration = Field(0.0, ge=0, description="time a slow watcher's client takes per event")
    flush_share: float = Field(0.0, ge=0, le=1, description="part of a stream's cost per event that one "
                               "flush of several waiting events saves (the write to the connection)")

    @model_validator(mode="after")
    def _slow_within(self) -> WatchConfig:
        if self.slow > self.watchers:
            raise ValueError(f"watch.slow: {self.slow} slow watchers but only {self.watchers} watchers")
        return self


class EtcdScenario(ScenarioBase):
    """An etcd cluster under open-loop puts, optional ranges and watches."""

    members: int = Field(1, ge=1, le=9, description="members of the Raft group, the leader included")
    writes: WritesConfig = Field(description="the puts")
    reads: ReadsConfig | None = Field(None, description="the ranges; null: none")
    watch: WatchConfig = Field(default_factory=WatchConfig, description="the watches")
    costs: CostsConfig = Field(default_factory=CostsConfig, description="etcd's costs; null: calibrated")
    cores: int = Field(2, ge=1, le=1024, description="server cores that requests' paths, ranges and watch "
                       "streams' sends share (the calibration machine had 2)")
    duration: Duration = Field(10.0, gt=0, description="simulated seconds of load, warm-up included")
    compaction: Duration = Field(
        0.0, ge=0, description="every this long, compact at the revision of one interval before, as "
        "kube-apiserver does (--etcd-compaction-interval, 5 min); 0: never (etcd's own default: "
        "--auto-compaction-retention 0)")


class EtcdModel(Model):
    """Model kind ``k8s.etcd``."""

    config_class = EtcdScenario
    config: EtcdScenario

    def __init__(self, env: Environment, config: EtcdScenario) -> None:
        super().__init__(env, config)
        self.costs = config.costs.resolve()
        self.hub = WatchHub(env)
        self.cores = simpy.Resource(env, capacity=config.cores)
        self.raft = RaftGroup(env, config.members, self.costs, self.cores, on_apply=self.hub.notify)
        metrics = env.metrics
        self.put_latency = metrics.histogram("put.latency_s")
        self.range_latency = metrics.histogram("range.latency_s")
        self.delivery = metrics.histogram("watch.delivery_s")
        self.slow_delivery = metrics.histogram("watch.slow_delivery_s")
        self.completed = metrics.counter("puts.completed")
        self.events = metrics.counter("watch.events")
        self.outstanding = 0
        self.expected_events = 0
        self.received_events = 0
        self._watches(config.watch)
        env.process(self.write())
        if config.reads is not None:
            env.process(self.read(config.reads))
        if config.compaction > 0:
            env.process(self.compact(config.compaction))
        self.done = env.process(self.finish())

    def _watches(self, watch: WatchConfig) -> None:
        shared = None
        for index in range(watch.watchers):
            slow = index < watch.slow
            consume = watch.slow_consume if slow else 0.0
            if watch.clients == "per-watch" or shared is None or slow:
                stream = WatchStream(self.env, self.costs, self.cores, consume, watch.flush_share)
                if watch.clients == "shared" and not slow:
                    shared = stream
            else:
                stream = shared
            self.hub.add(stream, self._recorder(slow))

    def _recorder(self, slow: bool):
        sink = self.slow_delivery if slow else self.delivery

        def record(latency: float) -> None:
            sink.record(latency)
            if slow:
                self.delivery.record(latency)
            self.received_events += 1
            self.events.inc()
        return record

    def write(self) -> Generator[Any, Any, None]:
        draw = self.env.rng("etcd.writes.arrivals")
        rate, size = self.config.writes.rate, self.config.writes.value_size
        warmup_at = self.config.warmup * self.config.duration
        reset = False
        while True:
            yield self.env.timeout(draw.exponential(1 / rate))
            if self.env.now >= self.config.duration:
                return
            if not reset and self.env.now >= warmup_at:
                self.env.metrics.reset()
                reset = True
            self.outstanding += 1
            self.expected_events += len(self.hub.watchers)
            self.env.process(self.put(size))

    def put(self, size: float) -> Generator[Any, Any, None]:
        sent = self.env.now
        yield from put(self.env, self.raft, size)
        self.put_latency.record(self.env.now - sent)
        self.completed.inc()
        self.outstanding -= 1

    def read(self, reads: ReadsConfig) -> Generator[Any, Any, None]:
        draw = self.env.rng("etcd.reads.arrivals")
        kind = self.env.rng("etcd.reads.kind")
        while True:
            yield self.env.timeout(draw.exponential(1 / reads.rate))
            if self.env.now >= self.config.duration:
                return
            self.env.process(self.range(reads, bool(kind.random() < reads.linearizable)))

    def range(self, reads: ReadsConfig, linearizable: bool) -> Generator[Any, Any, None]:
        sent = self.env.now
        yield from on_core(self.env, self.cores, self.costs.request_s / 2)
        yield from self.raft.read(reads.objects, reads.object_size, linearizable)
        yield from on_core(self.env, self.cores, self.costs.request_s / 2)
        self.range_latency.record(self.env.now - sent)

    def compact(self, interval: float) -> Generator[Any, Any, None]:
        """kube-apiserver's compactor (``storage/etcd3/compact.go``): each interval it compacts at the revision
        it saw one interval before; the compaction is itself a request through Raft."""
        previous = 0
        while True:
            yield self.env.timeout(interval)
            if previous:
                yield from put(self.env, self.raft, 0.0, watched=False)
                self.expected_events -= self.hub.compact(previous)
            previous = self.raft.applied_index

    def finish(self) -> Generator[Any, Any, None]:
        """End when the load is over and every response and event has arrived, or :data:`DRAIN_LIMIT_S` later."""
        yield self.env.timeout(self.config.duration)
        limit = self.config.duration + DRAIN_LIMIT_S
        while (self.outstanding or self.received_events < self.expected_events) and self.env.now < limit:
            yield self.env.timeout(0.01)
