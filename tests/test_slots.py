"""sim.slots.Slots: a free slot is granted at once, the others first come, first served, as simpy.Resource."""

from __future__ import annotations

import pytest
import simpy

from sim.core import Environment
from sim.slots import Slots


def _holders(make, arrivals: list[float], hold: float, capacity: int) -> list[tuple[float, float]]:
    """(start, end) of each process that arrives at its time, takes a slot of ``make(env, capacity)`` and holds it
    ``hold`` seconds."""
    env = Environment(seed=1)
    slots = make(env, capacity)
    spans: list[tuple[float, float]] = [(-1.0, -1.0)] * len(arrivals)

    def one(index: int, at: float):
        yield env.timeout(at)
        if isinstance(slots, Slots):
            wait = slots.acquire()
            if wait is not None:
                yield wait
            began = env.now
            yield env.timeout(hold)
            slots.release()
        else:
            with slots.request() as request:
                yield request
                began = env.now
                yield env.timeout(hold)
        spans[index] = (began, env.now)

    for index, at in enumerate(arrivals):
        env.process(one(index, at))
    env.run()
    return spans


def test_slots_serve_in_order_within_capacity_as_a_simpy_resource_does():
    arrivals = [0.0, 0.1, 0.2, 0.3, 0.35, 2.0, 2.05, 2.1]
    ours = _holders(Slots, arrivals, 1.0, 2)
    theirs = _holders(lambda env, n: simpy.Resource(env, capacity=n), arrivals, 1.0, 2)
    flat = [t for span in ours for t in span]
    assert flat == pytest.approx([t for span in theirs for t in span])
    assert flat[:8] == pytest.approx([0.0, 1.0, 0.1, 1.1, 1.0, 2.0, 1.1, 2.1])


def test_a_free_slot_costs_no_event_and_a_release_hands_it_on():
    env = Environment(seed=1)
    slots = Slots(env, 1)
    assert slots.acquire() is None and slots.count == 1
    waiter = slots.acquire()
    assert waiter is not None and not waiter.triggered and slots.queued == 1
    slots.release()
    assert waiter.triggered and slots.count == 1 and slots.queued == 0
    slots.release()
    assert slots.count == 0
    with pytest.raises(ValueError, match="capacity must be at least 1"):
        Slots(env, 0)
