"""The simulation environment and the base of every model.

:class:`Environment` is a SimPy environment that also carries what a component
needs from its run: the random streams, the metric sink and the scenario. The
engine adds nothing else to SimPy: processes are plain generators and resources
are SimPy's own.

A *model* is what a scenario's ``model:`` key names: a class with a
``config_class`` (the scenario schema) that builds its components on an
environment and knows when its run is over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import simpy

from sim.rng import Streams
from sim.stats import Metrics

if TYPE_CHECKING:
    from sim.scenario import ScenarioBase


class Environment(simpy.Environment):
    """A SimPy environment with named random streams and a metric sink.

    Simulated time is in seconds.
    """

    def __init__(self, seed: int = 1, replication: int = 0, scenario: ScenarioBase | None = None) -> None:
        super().__init__()
        self.streams = Streams(seed, replication)
        self.metrics = Metrics(self)
        self.scenario = scenario

    def rng(self, name: str) -> np.random.Generator:
        """The random stream of the component with dotted name ``name``."""
        return self.streams.stream(name)


class Model:
    """Base of the model kinds a scenario can name.

    A subclass sets ``config_class`` to its pydantic schema (a subclass of
    :class:`sim.scenario.ScenarioBase`), builds its components in ``__init__`` and
    sets ``self.done`` to the event that ends the run (or overrides :meth:`run`).
    """

    config_class: ClassVar[type[Any]]

    def __init__(self, env: Environment, config: Any) -> None:
        self.env = env
        self.config = config
        self.done: simpy.Event | None = None

    def run(self) -> None:
        if self.done is None:
            raise RuntimeError(f"{type(self).__name__} did not set the event that ends its run")
        self.env.run(until=self.done)
