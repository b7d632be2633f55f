"""Load balancing between a service's replicas, as a client (a pod or the edge) picks them.

Each client keeps one balancer per service it calls, as an Envoy sidecar keeps
one per upstream cluster (and a gRPC or Go client one per target), and sees
only its own requests. Semantics follow Envoy's load balancers
(``envoy/source/common/upstream/load_balancer_impl.cc``,
``ring_hash_lb.cc``; the "Load balancing" architecture overview):

* ``round_robin``: each pick takes the next replica in turn.
* ``random``: a replica uniformly at random.
* ``least_request``: the power of two choices: two distinct replicas drawn
  uniformly, the one with fewer of this client's requests in flight
  (``choice_count`` 2, Envoy's default; a tie goes to the first drawn).
* ``ring_hash``: consistent hashing (Karger et al.): every replica owns
  ``RING_POINTS_PER_REPLICA`` points on a 64-bit ring (Envoy's
  ``minimum_ring_size`` 1024 spread over the hosts); a request's key hashes to a
  point and goes to the replica owning the next point clockwise, so one key
  always reaches one replica and adding a replica moves only the keys of the
  arcs it takes.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Sequence
from typing import Literal, Protocol

import numpy as np

from sim.dists import Uniform

BalancerKind = Literal["round_robin", "random", "least_request", "ring_hash"]
DRAW_BLOCK = 256
"""Uniform draws a random balancer takes from its stream at a time (small: a mesh has a balancer per client
and upstream)."""
RING_POINTS_PER_REPLICA = 128
"""Points per replica on the ring: at least Envoy's ``minimum_ring_size`` (1024) for 8 or more replicas."""


class Balancer(Protocol):
    """Picks a replica index in ``range(replicas)`` for one request; told when that request ends."""

    def pick(self, key: int) -> int: ...

    def done(self, replica: int) -> None: ...


class RoundRobin:
    __slots__ = ("replicas", "_next")

    def __init__(self, replicas: int) -> None:
        self.replicas = replicas
        self._next = 0

    def pick(self, key: int) -> int:
        choice = self._next
        self._next = (choice + 1) % self.replicas
        return choice

    def done(self, replica: int) -> None:
        pass


class Random:
    __slots__ = ("replicas", "_uniform")

    def __init__(self, replicas: int, rng: np.random.Generator) -> None:
        self.replicas = replicas
        self._uniform = Uniform(0.0, 1.0).sampler(rng, DRAW_BLOCK)

    def pick(self, key: int) -> int:
        return min(int(self._uniform() * self.replicas), self.replicas - 1)

    def done(self, replica: int) -> None:
        pass


class LeastRequest:
    """Power of two choices over this client's requests in flight (``active``, one count per replica)."""

    __slots__ = ("replicas", "_uniform", "active")

    def __init__(self, replicas: int, rng: np.random.Generator) -> None:
        self.replicas = replicas
        self._uniform = Uniform(0.0, 1.0).sampler(rng, DRAW_BLOCK)
        self.active = [0] * replicas

    def pick(self, key: int) -> int:
        replicas = self.replicas
        if replicas == 1:
            choice = 0
        else:
            # Two distinct replicas, the ordered pair uniform: the first of all, the second of the others.
            first = min(int(self._uniform() * replicas), replicas - 1)
            second = min(int(self._uniform() * (replicas - 1)), replicas - 2)
            second += second >= first
            choice = second if self.active[second] < self.active[first] else first
        self.active[choice] += 1
        return choice

    def done(self, replica: int) -> None:
        self.active[replica] -= 1


def ring_hash(text: str) -> int:
    """A 64-bit hash of ``text`` (BLAKE2b; Envoy uses xxHash, any well-mixed hash keeps the properties)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class RingHash:
    """Consistent hashing of request keys onto replicas named ``names`` (see the module docstring)."""

    __slots__ = ("replicas", "_points", "_owners")

    def __init__(self, names: Sequence[str], points_per_replica: int = RING_POINTS_PER_REPLICA) -> None:
        self.replicas = len(names)
        ring = sorted((ring_hash(f"{name}_{point}"), index)
                      for index, name in enumerate(names) for point in range(points_per_replica))
        self._points = [point for point, _ in ring]
        self._owners = [owner for _, owner in ring]

    def pick(self, key: int) -> int:
        position = bisect_left(self._points, ring_hash(str(key)))
        return self._owners[position % len(self._points)]

    def done(self, replica: int) -> None:
        pass


def make_balancer(kind: BalancerKind, names: Sequence[str], rng: np.random.Generator) -> Balancer:
    """The balancer ``kind`` over the replicas ``names`` (``rng``: its random stream)."""
    if kind == "round_robin":
        return RoundRobin(len(names))
    if kind == "random":
        return Random(len(names), rng)
    if kind == "least_request":
        return LeastRequest(len(names), rng)
    if kind == "ring_hash":
        return RingHash(names)
    raise ValueError(f"balancer: unknown kind {kind!r}")
