"""etcd as a Raft group with a write path, reads and watch streams, on :class:`sim.core.Environment`.

The mechanisms follow etcd 3.4 (``go.etcd.io/etcd`` at v3.4.23, the version Debian ships and
:mod:`calibration.measure_etcd` measures); the costs are the parameter sets ``etcd.*`` fitted from that
measurement (:mod:`calibration.fitetcd`), or a scenario's own:

* **Write path** (``etcdserver/raft.go``, ``raft/node.go``): a put is a proposal queued at the leader. The
  leader's Raft loop takes every proposal queued since its last turn as one batch (a ``Ready``), sends it
  to the followers (one way: half the round trip) and appends it to its own write-ahead log with an fsync;
  it takes the next batch only when its own disk is done with this one, which is what makes proposals
  batch under load. Each follower appends the batch to its WAL (its own disk, in order) and acknowledges
  (half a round trip back). A batch is committed when a quorum (``members // 2 + 1``, the leader
  included) has it on disk; committed entries are applied in order, one at a time, on the leader's apply
  loop, and a put's response leaves after its entry is applied. A batch's disk time is
  ``fsync_s + bytes * byte_s``; an entry's apply is ``apply_s``. A batch carries at most
  :data:`MAX_BATCH_BYTES` (``maxSizePerMsg``, 1 MiB, ``etcdserver/raft.go``).
* **Reads** (``etcdserver/v3_server.go``): a serializable range is answered from the member's store; a
  linearizable one first takes a ReadIndex: the leader confirms its leadership with a heartbeat round to
  a quorum (one round trip with followers; none alone) and the read waits until the leader has applied
  the index committed when it asked. A range's cost is ``range_object_s`` per object and
  ``range_byte_s`` per byte returned.
* **Watch** (``mvcc/watchable_store.go``, ``etcdserver/api/v3rpc/watch.go``): every applied event is
  handed to each watcher's stream: a stream is one gRPC watch stream, whose events wait in one channel of
  :data:`WATCH_CHANNEL_EVENTS` (``chanBufLen``, 1024 in 3.4) shared by all its watchers and leave through
  its send loop, ``watch_event_s`` each (see :class:`WatchStream` for several at once). A watcher whose
  stream's channel is full becomes a *victim*: its events are kept and retried every
  :data:`VICTIM_RETRY_S` (``syncVictimsLoop``, 10 ms). A stream's sends stop when its client has not
  consumed :data:`STREAM_WINDOW_BYTES` (gRPC's initial stream window, 64 KiB, grpc-go
  ``internal/transport/defaults.go``), so a slow watcher fills its stream's channel, then falls behind
  as a victim. Simplified: a victim keeps every event it missed and gets them from the retries, where
  etcd keeps the batch that did not fit and lets ``syncWatchersLoop`` (every 100 ms) read the later
  ones from the store once the watcher is out of the victims.

Not modelled: compaction, leases, leader election and elections' effects, snapshots, the backend's
(bbolt) commit interval, a follower's own reads.

Every request also pays ``request_s``: the client's and the API layer's own path (gRPC, the gateway's
JSON), half on the way in and half on the way out; a watch event pays the same half on its way out.
The server's CPU work (a request's path, a range's objects, a stream's sends) waits for one of its
``cores`` (:func:`on_core`); the disks and the apply loop are serial on their own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

import simpy

from sim.core import Environment
from sim.params import param_value

MAX_BATCH_BYTES = 1024 * 1024
"""``maxSizePerMsg`` of etcd 3.4 (``etcdserver/raft.go``): the largest append a leader sends at once."""
WATCH_CHANNEL_EVENTS = 1024
"""``chanBufLen`` of etcd 3.4 (``mvcc/watchable_store.go``): a watch stream's channel of pending events."""
VICTIM_RETRY_S = 0.010
"""``syncVictimsLoop`` of etcd 3.4 (``mvcc/watchable_store.go``) retries victims every 10 ms."""
STREAM_WINDOW_BYTES = 65535
"""grpc-go's initial stream flow-control window (``defaultWindowSize``, ``internal/transport/defaults.go``)."""
EVENT_OVERHEAD_BYTES = 64
"""Bytes of a watch event besides its value (key, revisions, gRPC framing): an estimate, not measured;
it only decides how many events fill :data:`STREAM_WINDOW_BYTES`."""

#: The parameter set of each cost (:mod:`calibration.fitetcd`).
COST_PARAMS = {
    "request_s": "etcd.request_s",
    "fsync_s": "etcd.wal.fsync_s",
    "byte_s": "etcd.wal.byte_s",
    "apply_s": "etcd.apply_s",
    "rtt_s": "etcd.raft.rtt_s",
    "range_object_s": "etcd.range.object_s",
    "range_byte_s": "etcd.range.byte_s",
    "watch_event_s": "etcd.watch.event_s",
}


@dataclass(frozen=True)
class EtcdCosts:
    """What each step of etcd costs, in seconds (see the module docstring for where each is spent)."""

    request_s: float
    fsync_s: float
    byte_s: float
    apply_s: float
    rtt_s: float
    range_object_s: float
    range_byte_s: float
    watch_event_s: float

    @classmethod
    def calibrated(cls, **overrides: float | None) -> EtcdCosts:
        """The fitted parameter sets, each replaced by its override when that is not None."""
        values: dict[str, float] = {}
        for name, param in COST_PARAMS.items():
            given = overrides.get(name)
            values[name] = given if given is not None else param_value(param)
        return cls(**values)


def on_core(env: Environment, cores: simpy.Resource, seconds: float) -> Generator[Any, Any, None]:
    """``seconds`` of CPU on one of the server's ``cores``, after the work already waiting for one (FIFO, as
    Go's run queues hand runnable goroutines out in order, ``runtime/proc.go`` ``runqput``/``runqget``)."""
    with cores.request() as core:
        yield core
        yield env.timeout(seconds)


def put(env: Environment, raft: RaftGroup, size_bytes: float, watched: bool = True) -> Generator[Any, Any, None]:
    """One put as a client sees it: the request's way in on a core, the proposal until the leader has applied
    it, the way out on a core. ``watched`` False: a request that changes no key (no watch event)."""
    sent = env.now
    yield from on_core(env, raft.cores, raft.costs.request_s / 2)
    entry = raft.propose(size_bytes, sent, watched)
    yield entry.applied
    yield from on_core(env, raft.cores, raft.costs.request_s / 2)


@dataclass
class Entry:
    """One proposal: its bytes, the event succeeded when it is applied, its watch event's send time."""

    size_bytes: float
    applied: simpy.Event
    sent_at: float
    index: int = 0
    watched: bool = True  # False: a request that changes no key (a compaction), so no watch event


@dataclass
class _Batch:
    entries: list[Entry]
    acks: int = 0
    committed: bool = False


class RaftGroup:
    """A leader and ``members - 1`` followers with the write path and reads of the module docstring."""

    def __init__(self, env: Environment, members: int, costs: EtcdCosts, cores: simpy.Resource,
                 on_apply: Callable[[Entry], None] | None = None) -> None:
        self.env = env
        self.cores = cores
        self.members = members
        self.costs = costs
        self.quorum = members // 2 + 1
        self.on_apply = on_apply
        self.pending: list[Entry] = []
        self.wakeup = env.event()
        self.disks = [simpy.Resource(env, capacity=1) for _ in range(members)]
        self.commits: simpy.Store = simpy.Store(env)
        self.last_index = 0
        self.commit_index = 0
        self.applied_index = 0
        self.applied_waiters: list[tuple[int, simpy.Event]] = []
        self.batch_entries = env.metrics.histogram("raft.batch_entries")
        env.process(self.replicate())
        env.process(self.apply())

    def propose(self, size_bytes: float, sent_at: float, watched: bool = True) -> Entry:
        """Queue a proposal at the leader; its ``applied`` event fires when the leader has applied it."""
        self.last_index += 1
        entry = Entry(size_bytes, self.env.event(), sent_at, self.last_index, watched)
        self.pending.append(entry)
        if not self.wakeup.triggered:
            self.wakeup.succeed()
        return entry

    def _take_batch(self) -> list[Entry]:
        batch: list[Entry] = []
        size = 0.0
        while self.pending and (not batch or size + self.pending[0].size_bytes <= MAX_BATCH_BYTES):
            entry = self.pending.pop(0)
            batch.append(entry)
            size += entry.size_bytes
        return batch

    def _disk_s(self, entries: list[Entry]) -> float:
        return self.costs.fsync_s + self.costs.byte_s * sum(e.size_bytes for e in entries)

    def replicate(self) -> Generator[Any, Any, None]:
        """The leader's Raft loop: one batch a turn, sent to the followers, persisted on its own disk."""
        while True:
            if not self.pending:
                self.wakeup = self.env.event()
                yield self.wakeup
            batch = _Batch(self._take_batch())
            self.batch_entries.record(len(batch.entries))
            for follower in range(1, self.members):
                self.env.process(self.follow(follower, batch))
            with self.disks[0].request() as turn:
                yield turn
                yield self.env.timeout(self._disk_s(batch.entries))
            self._ack(batch)

    def follow(self, member: int, batch: _Batch) -> Generator[Any, Any, None]:
        """A follower: the append arrives, goes to its WAL in order, the acknowledgement goes back."""
        yield self.env.timeout(self.costs.rtt_s / 2)
        with self.disks[member].request() as turn:
            yield turn
            yield self.env.timeout(self._disk_s(batch.entries))
        yield self.env.timeout(self.costs.rtt_s / 2)
        self._ack(batch)

    def _ack(self, batch: _Batch) -> None:
        batch.acks += 1
        if batch.acks >= self.quorum and not batch.committed:
            batch.committed = True
            self.commit_index = batch.entries[-1].index
            for entry in batch.entries:
                self.commits.put(entry)

    def apply(self) -> Generator[Any, Any, None]:
        """The leader's apply loop: committed entries in order, ``apply_s`` each."""
        while True:
            entry = yield self.commits.get()
            yield self.env.timeout(self.costs.apply_s)
            self.applied_index = entry.index
            entry.applied.succeed()
            if self.on_apply is not None and entry.watched:
                self.on_apply(entry)
            while self.applied_waiters and self.applied_waiters[0][0] <= self.applied_index:
                self.applied_waiters.pop(0)[1].succeed()

    def applied(self, index: int) -> simpy.Event:
        """An event that fires once the leader has applied ``index``."""
        done = self.env.event()
        if self.applied_index >= index:
            done.succeed()
        else:
            self.applied_waiters.append((index, done))
            self.applied_waiters.sort(key=lambda pair: pair[0])
        return done

    def read(self, objects: int, object_bytes: float, linearizable: bool) -> Generator[Any, Any, None]:
        """One range (after the request's way in): a ReadIndex first when linearizable, then the store."""
        if linearizable:
            index = self.commit_index
            if self.members > 1:
                yield self.env.timeout(self.costs.rtt_s)
            yield self.applied(index)
        yield from on_core(self.env, self.cores,
                           objects * (self.costs.range_object_s + object_bytes * self.costs.range_byte_s))


@dataclass
class Watcher:
    """One watch: its stream, its events kept while it is a victim, and what it records on receipt."""

    stream: WatchStream
    record: Callable[[float], None]
    victim: deque[Entry] = field(default_factory=deque)


class WatchStream:
    """A gRPC watch stream: a channel of :data:`WATCH_CHANNEL_EVENTS` shared by its watchers, a send loop on
    one of the server's ``cores``, flow control of :data:`STREAM_WINDOW_BYTES` towards a client that takes
    ``consume_s`` to handle an event.

    The send loop takes every event waiting in the channel at once and writes them with one flush, as
    grpc-go's writer flushes only when it has nothing more queued (``loopyWriter``,
    ``internal/transport/controlbuf.go``): ``n`` events cost ``watch_event_s * (n - flush_share * (n - 1))``,
    ``flush_share`` being the part of an event's cost that is the write to the connection (0: none saved).
    """

    def __init__(self, env: Environment, costs: EtcdCosts, cores: simpy.Resource, consume_s: float = 0.0,
                 flush_share: float = 0.0) -> None:
        self.env = env
        self.costs = costs
        self.cores = cores
        self.consume_s = consume_s
        self.flush_share = flush_share
        self.channel: simpy.Store = simpy.Store(env, capacity=WATCH_CHANNEL_EVENTS)
        self.window = simpy.Container(env, capacity=STREAM_WINDOW_BYTES, init=STREAM_WINDOW_BYTES)
        self.received: simpy.Store = simpy.Store(env)
        env.process(self.send())
        env.process(self.consume())

    def offer(self, entry: Entry, watcher: Watcher) -> bool:
        """Put an event in the channel if there is room (True), else leave it to the caller (False)."""
        if len(self.channel.items) >= WATCH_CHANNEL_EVENTS:
            return False
        self.channel.put((entry, watcher))
        return True

    def send(self) -> Generator[Any, Any, None]:
        """The stream's send loop: all waiting events, one flush, then each through the flow-control window."""
        while True:
            first = yield self.channel.get()
            batch = [first, *self.channel.items]
            self.channel.items.clear()
            n = len(batch)
            yield from on_core(self.env, self.cores, self.costs.watch_event_s * (n - self.flush_share * (n - 1)))
            for entry, watcher in batch:
                size = min(entry.size_bytes + EVENT_OVERHEAD_BYTES, STREAM_WINDOW_BYTES)
                yield self.window.get(size)
                self.received.put((entry, watcher, size, self.env.now + self.costs.request_s / 2))

    def consume(self) -> Generator[Any, Any, None]:
        """The client: each event arrives half a request's path later, is handled, frees its window."""
        while True:
            entry, watcher, size, arrives = yield self.received.get()
            if arrives > self.env.now:
                yield self.env.timeout(arrives - self.env.now)
            if self.consume_s:
                yield self.env.timeout(self.consume_s)
            yield self.window.put(size)
            watcher.record(self.env.now - entry.sent_at)


class WatchHub:
    """The watchable store: hands each applied event to every watcher's stream, victims retried.

    **Compaction** (``mvcc/kvstore.go`` ``Compact``, ``mvcc/watchable_store.go`` ``syncWatchers``): once the
    store is compacted at a revision, a watcher that still needs an event at or below it can never get it;
    etcd cancels it with a compacted response (``ErrCompacted``), and its client must list again.
    """

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.watchers: list[Watcher] = []
        self.victims: list[Watcher] = []
        self.victim_events = env.metrics.counter("watch.victim_events")
        self.compacted = env.metrics.counter("watch.compacted")
        env.process(self.retry_victims())

    def compact(self, revision: int) -> int:
        """The store was compacted at ``revision``: every watcher still waiting for an event at or below it
        is cancelled. Returns the events those watchers will not receive."""
        lost = [w for w in self.victims if w.victim and w.victim[0].index <= revision]
        dropped = 0
        for watcher in lost:
            dropped += len(watcher.victim)
            watcher.victim.clear()
            self.watchers.remove(watcher)
            self.compacted.inc()
        self.victims = [w for w in self.victims if w not in lost]
        return dropped

    def add(self, stream: WatchStream, record: Callable[[float], None]) -> Watcher:
        watcher = Watcher(stream, record)
        self.watchers.append(watcher)
        return watcher

    def notify(self, entry: Entry) -> None:
        for watcher in self.watchers:
            if watcher.victim or not watcher.stream.offer(entry, watcher):
                if not watcher.victim:
                    self.victims.append(watcher)
                watcher.victim.append(entry)
                self.victim_events.inc()

    def retry_victims(self) -> Generator[Any, Any, None]:
        while True:
            yield self.env.timeout(VICTIM_RETRY_S)
            still = []
            for watcher in self.victims:
                while watcher.victim and watcher.stream.offer(watcher.victim[0], watcher):
                    watcher.victim.popleft()
                if watcher.victim:
                    still.append(watcher)
            self.victims = still
