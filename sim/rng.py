"""Named, reproducible random streams.

One root seed per scenario. Replication ``i`` draws from
``SeedSequence(root, spawn_key=(i,))`` and the component named ``name`` from
``SeedSequence(root, spawn_key=(i, name_key(name)))``, where ``name_key`` is a
stable hash of the dotted name (BLAKE2b, not Python's salted ``hash``). Streams
are therefore independent of the order in which components are built: adding a
component moves no other component's stream. Nothing here touches NumPy's or
Python's global random state.
"""

from __future__ import annotations

import hashlib

import numpy as np


def name_key(name: str) -> int:
    """A stable 64-bit integer for a dotted component name."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class Streams:
    """Factory of independent generators for one replication of one scenario.

    >>> a = Streams(seed=7, replication=0).stream("api.arrivals")
    >>> b = Streams(seed=7, replication=0).stream("api.arrivals")
    >>> float(a.random()) == float(b.random())
    True
    """

    def __init__(self, seed: int, replication: int = 0) -> None:
        if seed < 0 or replication < 0:
            raise ValueError("seed and replication must be non-negative integers")
        self.seed = int(seed)
        self.replication = int(replication)
        self._issued: dict[str, np.random.Generator] = {}
        self._released: dict[str, np.random.Generator] = {}

    def seed_sequence(self, name: str) -> np.random.SeedSequence:
        return np.random.SeedSequence(self.seed, spawn_key=(self.replication, name_key(name)))

    def stream(self, name: str) -> np.random.Generator:
        """The generator of component ``name``; asking twice for one name is an error.

        Two components sharing a stream would make each one's draws depend on
        the other's, which is exactly what named streams exist to prevent.
        """
        if name in self._issued:
            raise ValueError(f"random stream {name!r} was already issued to another component")
        generator = self._released.pop(name, None)
        if generator is None:
            generator = np.random.Generator(np.random.PCG64(self.seed_sequence(name)))
        self._issued[name] = generator
        return generator

    def release(self, prefix: str) -> None:
        """The component named ``prefix`` is gone: its streams (``prefix`` and the names under ``prefix.``) may be
        issued again, to the component that takes its place under the same name, and go on where they stopped.

        For a model that replaces a component during a run (a FaaS instance's runtime, unloaded and later
        started again in the same slot: :mod:`models.faas.platform`), so that the names, and the streams, stay
        as many as the components alive at once rather than grow with the run. An old component that still draws
        (a collector finishing its cycle) shares the new one's streams: still reproducible, no longer independent.
        """
        for name in [name for name in self._issued if name == prefix or name.startswith(prefix + ".")]:
            self._released[name] = self._issued.pop(name)

    @property
    def names(self) -> list[str]:
        return sorted(self._issued)
