"""A Poisson load on a runtime, shared by the runtime tests that hold a runtime to a queueing formula."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from models.runtime.protocol import Runtime, Step
from sim.core import Environment
from sim.dists import Exponential
from sim.run import t_interval

CONFIDENCE = 0.999

StepsFactory = Callable[[Environment], Callable[[], Sequence[Step]]]


def poisson_latencies(
    env: Environment, runtime: Runtime, arrival_rate: float, steps: Callable[[], Sequence[Step]],
    requests: int, warmup: int = 0,
) -> list[float]:
    """Run ``requests`` Poisson arrivals, each executing ``steps()``, to the end; return the latencies
    of those after the first ``warmup`` (the metrics are reset when the first measured one arrives)."""
    interarrival = Exponential(1 / arrival_rate).sampler(env.rng("requests.arrivals"))
    measured: list[float] = []

    def generate():
        for index in range(requests):
            if index:
                yield env.timeout(interarrival())
            if index == warmup:
                env.metrics.reset()
            event = runtime.execute(steps())
            if index >= warmup:
                event.callbacks.append(lambda e: measured.append(e.value))

    env.process(generate())
    env.run()
    return measured


def replicate(
    make_runtime: Callable[[Environment], Runtime], make_steps: StepsFactory, arrival_rate: float,
    requests: int, replications: int, seed: int, wait_metric: str, warmup_fraction: float,
) -> tuple[list[float], list[float]]:
    """(mean latency, mean of the histogram ``wait_metric``) of each independent replication."""
    sojourns, waits = [], []
    for replication in range(replications):
        env = Environment(seed=seed, replication=replication)
        runtime = make_runtime(env)
        measured = poisson_latencies(
            env, runtime, arrival_rate, make_steps(env), requests, int(warmup_fraction * requests)
        )
        sojourns.append(sum(measured) / len(measured))
        waits.append(env.metrics.histogram(wait_metric).mean)
    return sojourns, waits


def check_formula(values: Sequence[float], theory: float, bound: float, what: str, replications: int) -> None:
    """The formula lies in the 99.9 % t interval of the replications' means, and that interval is
    narrower than ``bound`` times the formula (a test cannot pass by being noisy)."""
    mean, half, n = t_interval(values, CONFIDENCE)
    assert n == replications
    assert abs(mean - theory) <= half, f"{what}: theory {theory:.6g} outside {mean:.6g} ± {half:.3g}"
    assert half / theory < bound, f"{what}: interval too wide: {half / theory:.2%}"
