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

A balancer picks among its *hosts* (replica indices; all replicas unless told otherwise): when a service's
pod set changes at run time (an autoscaler adds a pod once it is ready, removes one it deletes:
:mod:`models.arch.autoscaling`), :meth:`Balancer.set_hosts` gives it the new set, as Envoy's EDS updates a
cluster's hosts; requests in flight to a removed host still end with :meth:`Balancer.done`.
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
    """Picks a replica index among its hosts for one request; told when that request ends."""

    replicas: int
    """How many hosts it picks among."""

    def pick(self, key: int) -> int: ...

    def done(self, replica: int) -> None: ...

    def set_hosts(self, hosts: Sequence[int]) -> None: ...


class _Hosts:
    """The replica indices a balancer picks among (at first ``range(replicas)``)."""

    __slots__ = ("replicas", "hosts")

    def __init__(self, replicas: int) -> None:
        self.replicas = replicas
        self.hosts: list[int] = list(range(replicas))

    def set_hosts(self, hosts: Sequence[int]) -> None:
        if not hosts:
            raise ValueError("a balancer needs at least one host")
        self.hosts = list(hosts)
        self.replicas = len(self.hosts)


class RoundRobin(_Hosts):
    __slots__ = ("_next",)

    def __init__(self, replicas: int) -> None:
        super().__init__(replicas)
        self._next = 0

    def pick(self, key: int) -> int:
        choice = self._next % self.replicas
        self._next = (choice + 1) % self.replicas
        return self.hosts[choice]

    def done(self, replica: int) -> None:
        pass


class Random(_Hosts):
    __slots__ = ("_uniform",)

    def __init__(self, replicas: int, rng: np.random.Generator) -> None:
        super().__init__(replicas)
        self._uniform = Uniform(0.0, 1.0).sampler(rng, DRAW_BLOCK)

    def pick(self, key: int) -> int:
        return self.hosts[min(int(self._uniform() * self.replicas), self.replicas - 1)]

    def done(self, replica: int) -> None:
        pass


class LeastRequest(_Hosts):
    """Power of two choices over this client's requests in flight (``active``, one count per replica index:
    a removed host's requests still end there)."""

    __slots__ = ("_uniform", "active")

    def __init__(self, replicas: int, rng: np.random.Generator) -> None:
        super().__init__(replicas)
        self._uniform = Uniform(0.0, 1.0).sampler(rng, DRAW_BLOCK)
        self.active = [0] * replicas

    def set_hosts(self, hosts: Sequence[int]) -> None:
        super().set_hosts(hosts)
        if max(hosts) >= len(self.active):
            self.active += [0] * (max(hosts) + 1 - len(self.active))

    def pick(self, key: int) -> int:
        replicas, hosts = self.replicas, self.hosts
        if replicas == 1:
            choice = hosts[0]
        else:
            # Two distinct hosts, the ordered pair uniform: the first of all, the second of the others.
            first = min(int(self._uniform() * replicas), replicas - 1)
            second = min(int(self._uniform() * (replicas - 1)), replicas - 2)
            second += second >= first
            first, second = hosts[first], hosts[second]
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

    __slots__ = ("replicas", "_names", "_per_replica", "_points", "_owners")

    def __init__(self, names: Sequence[str], points_per_replica: int = RING_POINTS_PER_REPLICA) -> None:
        self._names = list(names)
        self._per_replica = points_per_replica
        self.set_hosts(range(len(names)))

    def set_hosts(self, hosts: Sequence[int]) -> None:
        """Rebuild the ring over the replicas ``hosts`` (indices into the names): a host's points depend on
        its name only, so the others keep theirs."""
        if not hosts:
            raise ValueError("a balancer needs at least one host")
        self.replicas = len(hosts)
        ring = sorted((ring_hash(f"{self._names[index]}_{point}"), index)
                      for index in hosts for point in range(self._per_replica))
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
