"""Model kind ``faas``: each function's invocations (:mod:`models.arch.workloads`) on its instances
(:class:`~models.faas.platform.FunctionPool`, or :class:`~models.faas.knative_pool.KnativePool` with
``scaling: knative``) for ``duration`` simulated seconds.

Metrics with no prefix are the platform's totals; with several functions each one's are also written
under ``function.NAME.``. The first ``warmup`` of the duration is left out of the metrics.
"""

from __future__ import annotations

from collections.abc import Iterator

from sim.core import Environment, Model
from models.arch.workloads import arrival_times
from models.faas.config import FaasScenario
from models.faas.knative_pool import KnativePool, KnativeRecorder
from models.faas.platform import FunctionPool, Recorder


class FaasModel(Model):
    """Model kind ``faas``."""

    config_class = FaasScenario

    def __init__(self, env: Environment, config: FaasScenario) -> None:
        super().__init__(env, config)
        several = len(config.functions) > 1
        self.pools: dict[str, FunctionPool] = {}
        for name, function in config.functions.items():
            prefixes = ["", f"function.{name}."] if several else [""]
            pool: FunctionPool
            if function.scaling == "knative":
                pool = KnativePool(env, name, function, config.pricing, KnativeRecorder(env, prefixes))
            else:
                pool = FunctionPool(env, name, function, config.pricing, Recorder(env, prefixes))
            self.pools[name] = pool
            times = arrival_times(env, function.workload.as_arch(name), stream=f"faas.{name}.workload")
            env.process(self._invoke(pool, times))
        self.done = env.event()
        env.process(self._clock())

    def _invoke(self, pool: FunctionPool, times: Iterator[float]):
        end = self.config.duration
        for at in times:
            if at >= end:
                return
            if at > self.env.now:
                yield self.env.timeout(at - self.env.now)
            pool.arrive()

    def _clock(self):
        warmup = self.config.warmup * self.config.duration
        if warmup > 0:
            yield self.env.timeout(warmup)
            self.env.metrics.reset()
            for pool in self.pools.values():
                pool.warmup_over()
        yield self.env.timeout(self.config.duration - warmup)
        for pool in self.pools.values():
            pool.flush()
        self._cost_per_million()
        self.done.succeed()

    def _cost_per_million(self) -> None:
        """``cost.usd_per_million_requests``: the run's cost over its completed requests, times a million."""
        counters = self.env.metrics.counters
        for name in [n for n in counters if n.endswith("cost.usd")]:
            completed = counters[name.removesuffix("cost.usd") + "requests.completed"].value
            if completed:
                per_million = counters[name].value / completed * 1e6  # one observation: the table shows its digits
                self.env.metrics.histogram(name + "_per_million_requests").record(per_million)
