"""V8 start-up (models/runtime/node/startup.py) and the generational collector (models/runtime/node/gc.py)

Every test passes its parameters explicitly (pause lines, stage durations), so
none moves when the calibration data are measured again.
"""

from __future__ import annotations

import pytest

from models.runtime.protocol import Compute
from models.runtime.node.gc import (
    MAX_GROWING_FACTOR, MIN_GROWING_FACTOR, MIN_LIMIT_STEP_BYTES, Allocation, V8GCConfig, V8Heap,
    dynamic_growing_factor,
)
from models.runtime.node.startup import StartupConfig, V8Startup
from sim.core import Environment

KIB, MIB = 1024, 2**20
SCAVENGE = (1e-4, 1e-9)  # 0.1 ms + 1 ns per survived byte
MARKCOMPACT = (1e-3, 2e-9)  # 1 ms + 2 ns per old-generation byte


def heap(env: Environment, semi_space: float = 1 * MIB, live_heap: float = 0.0) -> V8Heap:
    config = V8GCConfig(semi_space=semi_space, live_heap=live_heap, scavenge_pause=SCAVENGE,
                        markcompact_pause=MARKCOMPACT)
    return V8Heap(env, config)


def churn(h: V8Heap, nbytes: float, chunk: float = 64 * KIB) -> float:
    """Short requests allocate ``nbytes`` in all, each releasing its chunk at once; the pauses they caused."""
    pause = 0.0
    while nbytes > 0:
        owner = Allocation()
        pause += h.allocate(min(chunk, nbytes), owner)
        h.release(owner)
        nbytes -= chunk
    return pause


def test_no_scavenge_until_the_nursery_is_full(env: Environment) -> None:
    h = heap(env)
    assert churn(h, 1 * MIB - 64 * KIB) == 0.0
    assert env.metrics.counter("node.gc.scavenges").value == 0


def test_scavenge_pause_grows_with_survivors(env: Environment) -> None:
    """The same nursery, scavenged once with only the allocating request live (64 KiB survive) and
    once with eight more requests in flight (576 KiB survive): the pause is the line in the survivors."""
    h = heap(env)
    first = churn(h, 1 * MIB)
    in_flight = [Allocation() for _ in range(8)]
    for owner in in_flight:
        h.allocate(64 * KIB, owner)
    second = churn(h, 1 * MIB - 8 * 64 * KIB)
    assert first == pytest.approx(SCAVENGE[0] + SCAVENGE[1] * 64 * KIB)
    assert second == pytest.approx(SCAVENGE[0] + SCAVENGE[1] * 9 * 64 * KIB)
    assert second > first
    survived = env.metrics.histogram("node.gc.survived_bytes")
    assert (survived.count, survived.max) == (2, pytest.approx(9 * 64 * KIB, rel=0.01))


def test_objects_are_promoted_after_surviving_two_scavenges(env: Environment) -> None:
    h = heap(env)
    long_lived = Allocation()
    h.allocate(256 * KIB, long_lived)
    churn(h, 768 * KIB)  # first scavenge: to the intermediate space
    assert (long_lived.intermediate, long_lived.old) == (256 * KIB, 0.0)
    assert h.old == 0.0
    churn(h, 1 * MIB)  # second scavenge: to the old generation
    assert (long_lived.nursery, long_lived.intermediate, long_lived.old) == (0.0, 0.0, 256 * KIB)
    assert h.old == 256 * KIB
    h.release(long_lived)
    churn(h, 1 * MIB)  # dead now: nothing more is copied, the old generation keeps the garbage
    assert h.old == 256 * KIB
    assert env.metrics.histogram("node.gc.survived_bytes").min == pytest.approx(64 * KIB, rel=0.01)


def test_markcompact_at_the_limit_keeps_the_live_data_and_sets_a_new_limit(env: Environment) -> None:
    """Requests that live across two scavenges are promoted until the old generation reaches its
    first limit (live + 8 MiB for a small live heap); the mark-compact's pause is the line in the
    bytes it marks live, and afterwards only those remain: the long-lived heap and the promoted
    bytes of the one request still in flight."""
    live = 1 * MIB
    h = heap(env, semi_space=1 * MIB, live_heap=live)
    assert h.limit == max(live * MAX_GROWING_FACTOR, live + MIN_LIMIT_STEP_BYTES)
    while env.metrics.counter("node.gc.markcompacts").value == 0:
        env.run(until=env.now + 0.01)
        owner = Allocation()
        h.allocate(512 * KIB, owner)
        churn(h, 1 * MIB)
        churn(h, 1 * MIB)
        in_flight_old = owner.old
        h.release(owner)
    markcompact = env.metrics.histogram("node.gc.markcompact_pause_s")
    assert markcompact.count == 1
    assert markcompact.max == pytest.approx(MARKCOMPACT[0] + MARKCOMPACT[1] * (live + in_flight_old), rel=0.01)
    assert h.old == pytest.approx(live + in_flight_old)
    assert 0 < in_flight_old <= 512 * KIB
    assert h.limit >= live + MIN_LIMIT_STEP_BYTES


@pytest.mark.parametrize("gc_speed, mutator_speed, expected", [
    (1e9, 1e6, MIN_GROWING_FACTOR),  # marking far faster than allocation: the smallest factor
    (1e9, 1e9, MAX_GROWING_FACTOR),  # as fast: the largest
    (100.0, 1.0, 3.0 / (3.0 - 0.97)),  # R = 100: R (1 - MU) / (R (1 - MU) - MU)
    (0.0, 1.0, MAX_GROWING_FACTOR),
])
def test_dynamic_growing_factor_is_v8s(gc_speed: float, mutator_speed: float, expected: float) -> None:
    assert dynamic_growing_factor(gc_speed, mutator_speed) == pytest.approx(expected)


def test_a_disabled_heap_costs_nothing(env: Environment) -> None:
    h = V8Heap(env, V8GCConfig(enabled=False))
    assert h.allocate(100 * MIB, Allocation()) == 0.0
    assert "node.gc.scavenges" not in env.metrics.counters


# ---------------------------------------------------------------- start-up
STAGES = StartupConfig(process="40ms", isolate="15ms", context="200us", script="50us", modules="5ms",
                       process_bytes="40MiB", isolate_bytes="8MiB", context_bytes="150KiB")


def test_cold_start_is_process_then_modules(env: Environment) -> None:
    assert V8Startup(env, STAGES).cold_start_s() == pytest.approx(0.045)


@pytest.mark.parametrize("reuse, cpu_s", [("context", 0.0), ("isolate", 250e-6), ("none", 0.02005)])
def test_reuse_policy_sets_what_an_invocation_pays(env: Environment, reuse: str, cpu_s: float) -> None:
    """Warm context: nothing; warm isolate, fresh context: a context and the script; no reuse: an
    isolate, the script and the modules."""
    steps = V8Startup(env, STAGES).invocation_steps(reuse)  # type: ignore[arg-type]  # a str, as from a scenario
    assert all(isinstance(step, Compute) for step in steps)
    assert sum(step.cpu_s for step in steps) == pytest.approx(cpu_s)


def test_startup_memory_and_errors(env: Environment) -> None:
    assert (STAGES.memory("process"), STAGES.memory("isolate"), STAGES.memory("context")) == (
        40 * MIB, 8 * MIB, 150 * KIB)
    startup = V8Startup(env, STAGES)
    with pytest.raises(ValueError, match="unknown start-up stage 'boot'"):
        startup.draw("boot")
    with pytest.raises(ValueError, match="reuse"):
        startup.invocation_steps("sometimes")  # type: ignore[arg-type]  # wrong on purpose: refused at run time


def test_stage_distributions_are_sampled_from_their_own_streams() -> None:
    config = StartupConfig(context={"dist": "exp", "mean": 0.2e-3})
    draws = [V8Startup(Environment(seed=3), config).draw("context") for _ in range(2)]
    assert draws[0] == draws[1] > 0


def test_a_pause_line_that_does_not_grow_gives_the_largest_factor_and_no_negative_pause(env: Environment) -> None:
    """A mark-compact line with a negative slope (a pause that does not grow with the heap): no speed
    of marking can be read from it, so the limit grows by V8's largest factor; the pause is clamped at 0."""
    live = 64 * MIB
    config = V8GCConfig(semi_space=MIB, live_heap=live, scavenge_pause=SCAVENGE, markcompact_pause=(1e-3, -1e-9))
    h = V8Heap(env, config)
    h.old = h.limit
    assert h.allocate(1, Allocation()) == 0.0
    assert h.limit == pytest.approx(live * MAX_GROWING_FACTOR)


def test_default_marking_speed_is_the_calibrated_marking_work():
    """With calibrated defaults, the growing factor's marking speed is 1 / slope of the marking CPU line
    (V8's combined marking speed), not the final pause's, whose slope is near zero on this machine."""
    from sim.params import param_linear
    from models.runtime.node.gc import MARK_CPU_PARAM

    resolved = V8GCConfig().resolved()
    slope = param_linear(MARK_CPU_PARAM)[1]
    assert slope > 0 and resolved.mark_speed == pytest.approx(1 / slope)
    given = V8GCConfig(markcompact_pause=(1e-3, 2e-9)).resolved()
    assert given.mark_speed is None  # a scenario's own pause line keeps its own speed (1 / its slope)
