"""Shared fixtures: a fresh environment and an event log (as in SimPy's own tests),
and the hypothesis profile every property test runs under.

The ``cnsim`` profile is derandomized: hypothesis draws the same examples on
every run, so a property test is as reproducible as a fixed-seed test, and a
failure found once is found again. ``max_examples`` stays modest because each
example is a whole simulation.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from sim.core import Environment

settings.register_profile(
    "cnsim",
    derandomize=True,
    max_examples=60,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("cnsim")


@pytest.fixture
def env() -> Environment:
    """A fresh environment at time 0 with seed 1, replication 0."""
    return Environment(seed=1, replication=0)


@pytest.fixture
def log() -> list:
    """A list that a micro-story appends (time, event) entries to."""
    return []
