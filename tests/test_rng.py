"""sim.rng: named, reproducible streams that never touch global random state."""

from __future__ import annotations

import random

import numpy as np
import pytest

from sim.core import Environment
from sim.rng import Streams, name_key
from sim.run import run_replication
from sim.scenario import load_scenario


def draws(seed: int, replication: int, name: str, n: int = 64) -> np.ndarray:
    return Streams(seed, replication).stream(name).random(n)


def test_same_seed_replication_and_name_give_identical_draws() -> None:
    assert np.array_equal(draws(7, 3, "api.arrivals"), draws(7, 3, "api.arrivals"))


def test_another_replication_gives_other_draws() -> None:
    assert not np.array_equal(draws(7, 0, "api.arrivals"), draws(7, 1, "api.arrivals"))


def test_another_seed_gives_other_draws() -> None:
    assert not np.array_equal(draws(7, 0, "api.arrivals"), draws(8, 0, "api.arrivals"))


def test_another_name_gives_other_draws() -> None:
    assert not np.array_equal(draws(7, 0, "api.arrivals"), draws(7, 0, "api.service"))


def test_adding_a_component_moves_no_other_stream() -> None:
    """A stream depends on (seed, replication, name) only: not on which other
    streams were issued before it, nor on how much they were used."""
    alone = Streams(5, 2)
    expected = alone.stream("db.service").random(100)

    crowded = Streams(5, 2)
    for name in ("web.service", "app.service", "cache.service"):
        crowded.stream(name).random(1000)
    assert np.array_equal(crowded.stream("db.service").random(100), expected)


def test_environment_streams_follow_the_same_rule() -> None:
    one = Environment(seed=3, replication=1)
    other = Environment(seed=3, replication=1)
    other.rng("extra.component")
    assert np.array_equal(one.rng("station.service").random(10), other.rng("station.service").random(10))


def test_a_name_is_issued_once() -> None:
    streams = Streams(1)
    streams.stream("api.gc")
    with pytest.raises(ValueError, match="api.gc"):
        streams.stream("api.gc")
    assert streams.names == ["api.gc"]


def test_name_key_is_stable_across_processes() -> None:
    """BLAKE2b of the UTF-8 name, not Python's per-process salted ``hash``: a
    fixed value pins it (changing it would change every stream of every run)."""
    import hashlib

    expected = int.from_bytes(hashlib.blake2b(b"api.arrivals", digest_size=8).digest(), "little")
    assert name_key("api.arrivals") == expected
    assert 0 <= name_key("x") < 2**64


def test_no_global_random_state_is_touched() -> None:
    np_state = np.random.get_state()
    py_state = random.getstate()

    streams = Streams(11, 4)
    for name in ("a", "b", "c"):
        streams.stream(name).standard_normal(1000)
    env = Environment(seed=11, replication=4)
    env.rng("d").exponential(1.0, 1000)

    after = np.random.get_state()
    assert after[0] == np_state[0]
    assert np.array_equal(after[1], np_state[1])
    assert after[2:] == np_state[2:]
    assert random.getstate() == py_state


def test_negative_seed_or_replication_is_refused() -> None:
    with pytest.raises(ValueError):
        Streams(-1)
    with pytest.raises(ValueError):
        Streams(1, -2)


def test_a_whole_run_touches_no_global_random_state() -> None:
    np_state, py_state = np.random.get_state(), random.getstate()
    run_replication(load_scenario("tandem", ["requests=500"]), 0)
    after = np.random.get_state()
    assert np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:]
    assert random.getstate() == py_state


def test_released_streams_go_on_where_they_stopped_for_the_next_component() -> None:
    # a component replaced under its name (a FaaS instance's runtime in its slot) continues its streams: the draws
    # of the two together are one stream's, and names outside the released prefix stay refused
    whole = Streams(5).stream("slot.0.go.steal").random(6)
    streams = Streams(5)
    first = streams.stream("slot.0.go.steal").random(3)
    streams.stream("slot.01.go")
    streams.release("slot.0")
    with pytest.raises(ValueError, match="already issued"):
        streams.stream("slot.01.go")
    second = streams.stream("slot.0.go.steal").random(3)
    assert np.array_equal(np.concatenate([first, second]), whole)
    with pytest.raises(ValueError, match="already issued"):
        streams.stream("slot.0.go.steal")
