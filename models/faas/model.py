"""Model kind ``faas``: each function's invocations (:mod:`models.arch.workloads`) on its instances
(:class:`~models.faas.platform.FunctionPool`, or :class:`~models.faas.knative_pool.KnativePool` with
``scaling: knative``) for ``duration`` simulated seconds.

Besides the ``functions`` written out, a scenario may generate many from the Azure Functions 2019
characterisation (``azure``, :mod:`models.faas.azure`) or replay them from a per-minute trace file (``trace``,
:mod:`models.faas.trace`); each is built from its part's ``template``.

Metrics with no prefix are the platform's totals; with several functions written out each one's are also
written under ``function.NAME.`` (generated and replayed functions only add to the totals). At the end,
``functions.cold_pct`` holds each invoked function's percentage of cold requests (its p75 is the
"3rd-quartile application cold-start percentage" of Shahrad et al., Figures 14 and 15). The first ``warmup`` of
the duration is left out of the metrics.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sim.core import Environment, Model
from sim.dists import Constant, Distribution, Gamma
from models.arch.workloads import arrival_times
from models.faas import azure, trace
from models.faas.config import MIB, FaasScenario, FunctionConfig
from models.faas.knative_pool import KnativePool, KnativeRecorder
from models.faas.platform import FunctionPool, Recorder


class FaasModel(Model):
    """Model kind ``faas``."""

    config_class = FaasScenario

    def __init__(self, env: Environment, config: FaasScenario) -> None:
        super().__init__(env, config)
        several = len(config.functions) > 1
        self.pools: dict[str, FunctionPool] = {}
        totals = Recorder(env, [""])
        for name, function in config.functions.items():
            prefixes = ["", f"function.{name}."] if several else [""]
            recorder = Recorder(env, prefixes) if several else totals
            times = arrival_times(env, function.workload.as_arch(name), stream=f"faas.{name}.workload")
            self._add(name, function, recorder, times, prefixes)
        if config.azure is not None:
            self._add_azure(config.azure, totals)
        if config.trace is not None:
            self._add_trace(config.trace, totals)
        self.cold_pct = env.metrics.histogram("functions.cold_pct")
        self.done = self.timed(config.duration, config.warmup, self._warmup_over, self._end)

    def _add(self, name: str, function: FunctionConfig, recorder: Recorder, times: Iterator[float],
             prefixes: list[str] | None = None) -> None:
        if name in self.pools:
            raise ValueError(f"functions: {name!r} is both written out and generated")
        pool: FunctionPool
        if function.scaling == "knative":
            knative = KnativeRecorder(self.env, prefixes or [""])
            pool = KnativePool(self.env, name, function, self.config.pricing, knative)
        else:
            pool = FunctionPool(self.env, name, function, self.config.pricing, recorder)
        self.pools[name] = pool
        self._next_arrival(pool, times)

    @staticmethod
    def _function(template: dict[str, Any], service_s: float, cv: float, memory_mb: float) -> FunctionConfig:
        """A generated or replayed function: the template's settings, the drawn service and memory unless the
        template gives them (its workload is the generator's, the rate here only a placeholder)."""
        service: Distribution = Constant(service_s) if cv == 0 else Gamma.from_mean_cv(service_s, cv)
        data = {"service": service, "memory": memory_mb * MIB, **template, "workload": {"rate": 1.0}}
        return FunctionConfig.model_validate(data)

    def _add_azure(self, config: azure.AzureConfig, recorder: Recorder) -> None:
        for drawn in azure.draw_functions(config, self.env.rng("faas.azure.functions")):
            function = self._function(config.template, drawn.service_s, config.service_cv, drawn.memory_mb)
            rng = self.env.rng(f"faas.{drawn.name}.workload.arrivals")
            self._add(drawn.name, function, recorder, azure.renewal_times(drawn.rate, drawn.cv, rng))

    def _add_trace(self, config: trace.TraceConfig, recorder: Recorder) -> None:
        fits = azure.draw_functions(azure.AzureConfig(count=len(config.rows)), self.env.rng("faas.trace.functions"))
        for index, (row, drawn) in enumerate(zip(config.rows, fits)):
            name = f"trace{index:0{len(str(len(config.rows) - 1))}d}"
            function = self._function(config.template, drawn.service_s, 0.0, drawn.memory_mb)
            rng = self.env.rng(f"faas.{name}.workload.arrivals")
            self._add(name, function, recorder, trace.minute_times(row.counts, rng))

    def _next_arrival(self, pool: FunctionPool, times: Iterator[float]) -> None:
        """Schedule the function's next invocation with a plain callback (no process per function)."""
        at = next(times, None)
        if at is None or at >= self.config.duration:
            return
        self.env.timeout(max(0.0, at - self.env.now)).callbacks.append(lambda _: self._invoke(pool, times))

    def _invoke(self, pool: FunctionPool, times: Iterator[float]) -> None:
        pool.arrive()
        self._next_arrival(pool, times)

    def _warmup_over(self) -> None:
        for pool in self.pools.values():
            pool.warmup_over()

    def _end(self) -> None:
        for pool in self.pools.values():
            pool.flush()
            if pool.cold_n + pool.warm_n:
                self.cold_pct.record(100.0 * pool.cold_n / (pool.cold_n + pool.warm_n))
        self._cost_per_million()

    def _cost_per_million(self) -> None:
        """``cost.usd_per_million_requests``: the run's cost over its completed requests, times a million."""
        counters = self.env.metrics.counters
        for name in [n for n in counters if n.endswith("cost.usd")]:
            completed = counters[name.removesuffix("cost.usd") + "requests.completed"].value
            if completed:
                per_million = counters[name].value / completed * 1e6  # one observation: the table shows its digits
                self.env.metrics.histogram(name + "_per_million_requests").record(per_million)
