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

from collections.abc import Callable, Generator
from itertools import repeat
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import simpy
from simpy.core import EmptySchedule, StopSimulation
from simpy.events import URGENT

from sim.rng import Streams
from sim.stats import Metrics

if TYPE_CHECKING:
    from sim.scenario import ScenarioBase


STANDSTILL_EVENTS = 10_000_000
"""Events processed at one instant after which :meth:`Environment.run` gives up with
:class:`StandstillError`: some 10 s of zero-delay events (about a million a second), where the
shipped scenarios put at most 64 events at one instant (``http1-pool-vs-http2`` at time 0)."""
CHECK_EVERY = 4096
"""The run loop looks at the clock once per this many events (the guard's only cost)."""


class ModelError(RuntimeError):
    """A model failed while it was built or run: a bug in the model, not bad input (bad input is a
    :class:`sim.scenario.ScenarioError`). The message names the model; ``completed`` holds the results
    of the replications that finished before it (:func:`sim.run.run_replications`), so none is lost."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.completed: list[Any] = []


class StandstillError(ModelError):
    """Simulated time stood still: events at one instant without end. A model that cannot make
    progress; the message names the instant, the model and the next event's callbacks."""


class Environment(simpy.Environment):
    """A SimPy environment with named random streams and a metric sink.

    Simulated time is in seconds. ``standstill_events`` (default
    :data:`STANDSTILL_EVENTS`) bounds the events :meth:`run` processes
    without the clock moving.
    """

    standstill_events: int = STANDSTILL_EVENTS

    def __init__(self, seed: int = 1, replication: int = 0, scenario: ScenarioBase | None = None) -> None:
        super().__init__()
        self.streams = Streams(seed, replication)
        self.metrics = Metrics(self)
        self.scenario = scenario

    def rng(self, name: str) -> np.random.Generator:
        """The random stream of the component with dotted name ``name``."""
        return self.streams.stream(name)

    def run(self, until: float | simpy.Event | None = None) -> Any:
        """SimPy's ``Environment.run`` (same ``until``, same value, same errors), whose loop looks at the
        clock every :data:`CHECK_EVERY` events and raises :class:`StandstillError` once it has not moved
        for ``standstill_events``: the clock never goes back, so if it reads the same at two looks, every
        event in between was at that instant."""
        if until is not None:  # as simpy.core.Environment.run
            if not isinstance(until, simpy.Event):
                at = until if isinstance(until, int) else float(until)
                if at <= self.now:
                    raise ValueError(f"until ({at}) must be greater than the current simulation time")
                until = simpy.Event(self)
                until._ok = True  # noqa: SLF001 - as SimPy builds its own stop event
                until._value = None  # noqa: SLF001
                self.schedule(until, URGENT, at - self.now)
            elif until.callbacks is None:
                return until.value
            until.callbacks.append(StopSimulation.callback)
        step, limit = self.step, self.standstill_events
        block = min(CHECK_EVERY, limit)
        instant, still = self._now, 0
        try:
            while True:
                for _ in repeat(None, block):
                    step()
                if self._now != instant:
                    instant, still = self._now, 0
                    continue
                still += block
                if still >= limit:
                    raise StandstillError(self._standstill_message(still))
        except StopSimulation as stop:
            return stop.args[0]
        except EmptySchedule:
            if until is not None:
                assert not until.triggered
                raise RuntimeError(f'No scheduled events left but "until" event was not triggered: {until}') from None
        return None

    def _standstill_message(self, events: int) -> str:
        scenario = self.scenario
        model = f"model {scenario.model!r}" if scenario is not None else "a model without a scenario"
        if scenario is not None and scenario.name:
            model += f" (scenario {scenario.name!r})"
        callbacks = (self._queue[0][3].callbacks or []) if self._queue else []
        names = dict.fromkeys(getattr(callback, "__qualname__", type(callback).__name__) for callback in callbacks)
        calls = ", ".join(names) or "nothing"
        return (
            f"simulated time stood still at {self._now:.9g} s: {events:,} events without the clock moving in "
            f"{model}, which cannot make progress (the next event calls {calls})"
        )


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

    def timed(self, duration: float, warmup: float, at_warmup: Callable[[], None] | None = None,
              at_end: Callable[[], None] | None = None) -> simpy.Event:
        """The event that ends a run of ``duration`` simulated seconds whose first ``warmup`` (a fraction of it)
        is left out of the metrics: they are reset when it is over, then ``at_warmup`` is called; ``at_end`` is
        called just before the event succeeds. For kinds whose run is a span of time, not a count of requests."""
        ended = self.env.event()

        def clock() -> Generator[simpy.Event, Any, None]:
            settle = warmup * duration
            if settle > 0:
                yield self.env.timeout(settle)
                self.env.metrics.reset()
                if at_warmup is not None:
                    at_warmup()
            yield self.env.timeout(duration - settle)
            if at_end is not None:
                at_end()
            ended.succeed()

        self.env.process(clock())
        return ended

    def run(self) -> None:
        if self.done is None:
            raise RuntimeError(f"{type(self).__name__} did not set the event that ends its run")
        self.env.run(until=self.done)
