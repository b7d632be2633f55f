"""worker_threads: micro-stories of the pool (saturation, start-up, message copies, per-worker heaps)
and of the cores the threads share. Parameters are explicit, so no story moves with calibration."""

from __future__ import annotations

import pytest

from models.runtime.node.loop import NodeRuntime
from models.runtime.node.workers import SharedCores, WorkerPool
from models.runtime.protocol import Compute, Wait
from models.runtime.node.gc import V8GCConfig
from models.runtime.node.startup import StartupConfig
from sim.core import Environment

MIB = 2**20
NO_GC = V8GCConfig(enabled=False)


def startup(isolate: str = "0s") -> StartupConfig:
    return StartupConfig(isolate=isolate, isolate_bytes="8MiB", process_bytes="40MiB")


def pool(env: Environment, size: int, cores: SharedCores | None = None, isolate: str = "0s",
         message_cost: tuple[float, float] = (0.0, 0.0), gc: V8GCConfig = NO_GC) -> WorkerPool:
    return WorkerPool(env, size, cores, startup(isolate), message_cost, gc)


def finish_times(env: Environment, events: list) -> list[float]:
    times: list[float] = [0.0] * len(events)
    for index, event in enumerate(events):
        event.callbacks.append(lambda _e, index=index: times.__setitem__(index, env.now))
    env.run()
    return times


# ---------------------------------------------------------------- shared cores
def test_threads_beyond_the_cores_share_them() -> None:
    """Three threads of 1 s on 2 cores each get 2/3 of a core: all end at 1.5 s."""
    env = Environment()
    cores = SharedCores(env, 2)
    assert finish_times(env, [cores.run(1.0) for _ in range(3)]) == [pytest.approx(1.5)] * 3
    assert env.metrics.gauge("cores.runnable").max == 3


def test_a_short_thread_leaves_and_the_long_one_speeds_up() -> None:
    """1 s and 2 s on one core: both at half speed until 2 s, then the long one alone: 3 s."""
    env = Environment()
    cores = SharedCores(env, 1)
    assert finish_times(env, [cores.run(1.0), cores.run(2.0)]) == [pytest.approx(2.0), pytest.approx(3.0)]


def test_no_more_threads_than_cores_run_at_full_speed() -> None:
    env = Environment()
    cores = SharedCores(env, 4)
    assert finish_times(env, [cores.run(1.0) for _ in range(4)]) == [pytest.approx(1.0)] * 4


def test_context_switches_count_wakes_blocks_and_time_slices() -> None:
    """Two threads of 20 ms on one core with 2 ms slices: one switch in from idle, the other waits; 40 ms of
    slicing at one switch per slice (20); then a (continued) burst at the instant one ended costs nothing, and
    one after a gap counts the block it followed and its wake onto the idle core."""
    env = Environment()
    cores = SharedCores(env, 1, slice_s=0.002)
    switches = env.metrics.counter("cores.context_switches")
    a, b = cores.run(0.02, "a"), cores.run(0.02, "b")
    assert switches.value == 1
    a.callbacks.append(lambda _e: cores.run(0.001, "a"))
    env.run(until=0.05)
    assert switches.value == 1 + 20
    env.run(until=0.06)
    cores.run(0.001, "b")
    assert switches.value == 1 + 20 + 2
    assert b.processed


# ---------------------------------------------------------------- the pool
def test_jobs_beyond_the_workers_wait_fifo(env: Environment) -> None:
    workers = pool(env, 2)
    done = [workers.submit(1.0) for _ in range(3)]
    assert finish_times(env, done) == [1.0, 1.0, 2.0]
    waits = env.metrics.histogram("node.workers.queue_wait_s")
    assert (waits.count, waits.max) == (3, 1.0)
    assert env.metrics.gauge("node.workers.busy").max == 2


def test_workers_serve_only_once_started(env: Environment) -> None:
    """Start-up of 0.5 s: a job posted at 0 starts at 0.5."""
    workers = pool(env, 1, isolate="500ms")
    assert finish_times(env, [workers.submit(1.0)]) == [1.5]
    assert workers.ready_at == 0.5
    assert env.metrics.histogram("node.workers.start_s").max == 0.5


def test_start_up_on_shared_cores_takes_longer_for_many_workers(env: Environment) -> None:
    """Ten workers of 10 ms of start-up CPU on 4 cores: all ready at 25 ms."""
    workers = pool(env, 10, cores=SharedCores(env, 4), isolate="10ms")
    env.run()
    assert workers.ready_at == pytest.approx(0.025)


def test_each_worker_holds_an_isolate(env: Environment) -> None:
    pool(env, 10)
    assert env.metrics.gauge("node.workers.memory_bytes").level == 10 * 8 * MIB


def test_messages_are_copied_both_ways(env: Environment) -> None:
    """Cost of one message: 1 ms + 1 us per byte; the worker pays half of the 1000-byte message in
    (1 ms) and half of the 2000-byte reply (1.5 ms)."""
    workers = pool(env, 1, message_cost=(1e-3, 1e-6))
    assert finish_times(env, [workers.submit(1.0, in_bytes=1000, out_bytes=2000)]) == [pytest.approx(1.0025)]
    assert workers.message_half_s(1000) == pytest.approx(1e-3)


def test_a_loop_posting_to_workers_pays_its_halves_on_the_shared_cores(env: Environment) -> None:
    """The loop serialises (0.5 s), a worker runs the job (1 s, no copy cost of its own here), the
    loop deserialises (0.5 s): 2 s, with two cores for two threads."""
    cores = SharedCores(env, 2)
    workers = pool(env, 1, cores=cores)
    loop = NodeRuntime(env, cores=cores)
    request = loop.execute([Compute(0.5), Wait(lambda: workers.submit(1.0)), Compute(0.5)])
    env.run()
    assert request.value == pytest.approx(2.0)


def test_a_scavenge_pauses_only_its_own_worker(env: Environment) -> None:
    """Each worker has its own heap: the worker whose job fills its 1 MiB nursery pauses 10 ms, the
    other does not."""
    gc = V8GCConfig(semi_space=MIB, scavenge_pause=(0.01, 0.0), markcompact_pause=(0.0, 0.0))
    workers = pool(env, 2, gc=gc)
    done = [workers.submit(1.0, alloc_bytes=MIB), workers.submit(1.0, alloc_bytes=MIB / 2)]
    assert finish_times(env, done) == [pytest.approx(1.01), 1.0]
    assert env.metrics.counter("node.workers.gc.scavenges").value == 1


@pytest.mark.parametrize("kwargs, field", [({"size": 0}, "node.workers.size"),
                                           ({"size": 1, "message_cost": (-1.0, 0.0)}, "node.workers.message_cost")])
def test_bad_arguments_name_the_field(env: Environment, kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        WorkerPool(env, startup=startup(), gc=NO_GC, **{"message_cost": (0.0, 0.0), **kwargs})
    with pytest.raises(ValueError, match="cores.cores"):
        SharedCores(env, 0)


def test_a_warm_pool_serves_at_once(env: Environment) -> None:
    workers = WorkerPool(env, 2, None, startup("500ms"), (0.0, 0.0), NO_GC, warm=True)
    assert finish_times(env, [workers.submit(1.0)]) == [1.0]
    assert workers.ready_at == 0.0
