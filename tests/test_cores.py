"""Threads on the machine's cores (models/machine/cores.py): placement, turns, slices, migration; the Go
runtime's Ps on them; the load generator's work; and the shipped placement measurements behind the defaults."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from pydantic import ValidationError

from calibration.dataset import Dataset
from calibration.fit import observations
from calibration.measure import DATA_ROOT
from models.runtime.go.detailed.runtime import GoRuntime
from models.machine.cores import Cores
from models.services.go import GoServiceScenario
from models.runtime.protocol import Compute
from sim.core import Environment
from sim.dists import Constant
from sim.params import load_params

MS = 1e-3
FREE = Constant(0.0)
"""Sysmon's rounds at no CPU: the stories here are about the Ps' threads (sysmon's own: test_go_sysmon.py)."""


def cores(env: Environment, n: int, coplace: float = 0.0, other: float = 0.0, migrate: float = 1.0,
          slice_s: float = 10 * MS, draws: list[float] | None = None) -> Cores:
    """Cores whose placement draws come from ``draws`` (then 0.5 forever) and whose migration takes ``migrate``."""
    feed = itertools.chain(draws or [], itertools.repeat(0.5))
    return Cores(env, n, coplace, other, lambda: migrate, slice_s, lambda: next(feed))


def finish_times(env: Environment, machine: Cores, work: list[tuple[float, float]]) -> list[float]:
    """Bursts of (start time, CPU seconds) on ``machine``: when each ends."""
    ends = [float("nan")] * len(work)

    def start(index: int, cpu_s: float):
        yield env.timeout(work[index][0])
        machine.burst(cpu_s, lambda: ends.__setitem__(index, env.now))

    for index, (_at, cpu_s) in enumerate(work):
        env.process(start(index, cpu_s))
    env.run()
    return ends


def test_a_thread_that_wakes_onto_a_taken_core_runs_first():
    """1 ms at 0 and 1 ms at 0.1 ms on one core, 10 ms slice: the second takes the core at once (ends at
    1.1 ms), the first waits for it (ends at 2 ms)."""
    env = Environment(seed=1)
    assert finish_times(env, cores(env, 1), [(0.0, 1 * MS), (0.1 * MS, 1 * MS)]) == pytest.approx([2 * MS, 1.1 * MS])


def test_a_slice_over_passes_the_core_round_robin():
    """Slice 0.4 ms, both at 0: the second runs 0-0.4, the first 0.4-0.8, the second 0.8-1.2, the first
    1.2-1.6, the second ends at 1.8 (1 ms done), the first at 2 ms."""
    env = Environment(seed=1)
    ends = finish_times(env, cores(env, 1, slice_s=0.4 * MS), [(0.0, 1 * MS), (0.0, 1 * MS)])
    assert ends == pytest.approx([2 * MS, 1.8 * MS])


def test_a_thread_that_wakes_takes_a_free_core_unless_coplaced():
    """Two cores: with coplace 0 the second burst gets the free core (both end at 1 ms); another process's
    thread drawn below ``coplace_other`` joins the taken core and waits its turn (ends at 2 ms)."""
    env = Environment(seed=1)
    assert finish_times(env, cores(env, 2, other=0.0), [(0.0, 1 * MS), (0.0, 1 * MS)]) == pytest.approx([1 * MS] * 2)
    env = Environment(seed=1)
    machine = cores(env, 2, other=1.0, migrate=1.0)
    assert finish_times(env, machine, [(0.0, 1 * MS), (0.0, 1 * MS)]) == pytest.approx([1 * MS, 2 * MS])
    assert machine.coplaced.value == 1


def test_the_balancer_moves_a_waiting_thread_to_an_empty_core():
    """Both bursts on one of two cores, plus a third: 2 threads more than the empty core, so after the
    migration time (0.3 ms) a waiting one moves there and runs."""
    env = Environment(seed=1)
    machine = cores(env, 2, other=1.0, migrate=0.3 * MS)
    ends = finish_times(env, machine, [(0.0, 1 * MS), (0.0, 1 * MS), (0.0, 1 * MS)])
    assert sorted(ends) == pytest.approx([1 * MS, 1.3 * MS, 2 * MS])
    assert machine.migrations.value == 1


def test_two_ps_on_one_core_run_one_after_the_other():
    """GOMAXPROCS 2 on one core: two 1 ms goroutines end at 1 and 2 ms (without cores, both at 1 ms)."""
    def latencies(with_cores: bool) -> list[float]:
        env = Environment(seed=1)
        runtime = GoRuntime(env, 2, cores=cores(env, 1) if with_cores else None, sysmon_cpu=FREE)
        done = [runtime.execute([Compute(1 * MS, 0.0)]) for _ in range(2)]
        env.run(until=env.all_of(done))
        return sorted(event.value for event in done)

    assert latencies(False) == pytest.approx([1 * MS, 1 * MS])
    assert latencies(True) == pytest.approx([1 * MS, 2 * MS])


def test_a_p_that_ends_a_goroutine_lets_the_waiting_thread_run():
    """GOMAXPROCS 2 on one core, 1 ms goroutines arriving at 0, 0.1 and 0.2 ms (10 ms slice): the second
    preempts the first; when it ends (1.1 ms) its P passes the core back before running the third, so the first
    ends at 2.0 ms and the third at 3.0 ms: latencies 2.0, 1.0, 2.8 ms (without passing it back, the first would
    wait for the third: 3.0, 1.0, 1.9)."""
    env = Environment(seed=1)
    runtime = GoRuntime(env, 2, cores=cores(env, 1), sysmon_cpu=FREE)
    done = []

    def feed():
        for at in (0.0, 0.1 * MS, 0.2 * MS):
            yield env.timeout(at - env.now)
            done.append(runtime.execute([Compute(1 * MS, 0.0)]))
        yield env.all_of(done)

    env.run(until=env.process(feed()))
    assert [event.value for event in done] == pytest.approx([2.0 * MS, 1.0 * MS, 2.8 * MS])


def test_enough_cores_never_coplaced_change_nothing():
    """GOMAXPROCS 2 on two cores that never co-place (and no other process, sysmon's rounds free): every
    latency is the same as with a free core per P, to the last bit."""
    def run(with_cores: bool) -> list[float]:
        env = Environment(seed=3)
        runtime = GoRuntime(env, 2, cores=cores(env, 2, coplace=0.0) if with_cores else None, sysmon_cpu=FREE)
        arrivals = np.random.default_rng(5).exponential(0.6 * MS, 400).cumsum()
        done = []

        def feed():
            for at in arrivals:
                yield env.timeout(at - env.now)
                done.append(runtime.execute([Compute(1 * MS, 0.0)]))
            yield env.all_of(done)

        env.run(until=env.process(feed()))
        return [event.value for event in done]

    assert run(True) == run(False)


def service(**machine) -> dict:
    return {"model": "go.service", "arrival_rate": 500.0, "gomaxprocs": 2, "requests": 2000,
            "handler": {"cpu": 1 * MS}, "machine": machine}


def test_the_load_generator_on_the_cores_lengthens_the_latency():
    """Same seed, GOMAXPROCS 2 at about half load: two placed cores and the calibrated load generator give a
    longer mean latency than free cores (the measured placement at GOMAXPROCS 2, calibration/validation)."""
    from sim.run import run_replications
    from sim.scenario import load_scenario

    def mean(machine: dict) -> float:
        outcome = run_replications(load_scenario({"name": "t", **service(**machine)}), replications=1)
        return outcome.get("requests.sojourn_s", "mean").mean

    free, placed = mean({}), mean({"cores": 2, "load_cpu": "machine.load_cpu_vs_rate"})
    assert placed > 1.05 * free


@pytest.mark.parametrize("fields, message", [
    ({"load_cpu": "machine.load_cpu_vs_rate"}, "needs cores"),
    ({"cores": 0}, "greater than or equal to 1"),
])
def test_machine_cores_are_checked(fields, message):
    with pytest.raises(ValidationError, match=message):
        GoServiceScenario.model_validate(service(**fields))


def test_other_service_kinds_refuse_placed_cores():
    from models.services.node import NativeServiceScenario

    with pytest.raises(ValidationError, match="modelled for go.service only"):
        NativeServiceScenario.model_validate({"model": "native.service", "threads": 1, "arrival_rate": 1.0,
                                              "handler": {"cpu": 1 * MS}, "machine": {"cores": 2}})


def test_cores_need_the_detailed_fidelity_and_no_quota():
    with pytest.raises(ValidationError, match="machine.cores need fidelity detailed"):
        GoServiceScenario.model_validate({**service(cores=2), "fidelity": "fast"})
    with pytest.raises(ValidationError, match="quota_cores and machine.cores"):
        GoServiceScenario.model_validate({**service(cores=2), "quota_cores": 1.5})


def test_shipped_placement_shows_a_handler_beside_another_runs_whole():
    """The mechanism behind the turns: in the shipped traces, of two handlers sharing a CPU without moving, the
    one that started later loses less wall time to the other than the earlier one loses to it (one-sided
    Mann-Whitney, p < 1e-6), as when the later one runs whole while the earlier one waits; and the earlier one
    typically loses about one handler, not a time slice (median loss under twice the median handler CPU, the
    slice being over six handlers), as when the later one's thread passes the core back when its handler ends."""
    from scipy import stats as scipy_stats

    from calibration.fitmachine import _beside_one, _cpu_at, _placement

    data = Dataset((DATA_ROOT.parent.parent / load_params("machine.coplace_p")["dataset"]).parent)
    later, earlier = [], []
    for row, other in _beside_one(_placement(data)):
        unmoved = np.isnan(row["moved_s"]) and np.isnan(other["moved_s"])
        if unmoved and _cpu_at(other, row["start"]) == int(row["cpu_start"]):
            later.append(row["wall_s"] - row["cpu_s"])
            earlier.append(other["wall_s"] - other["cpu_s"])
    assert len(later) >= 50
    assert scipy_stats.mannwhitneyu(later, earlier, alternative="less").pvalue < 1e-6
    handler_cpu = float(_placement(data)["cpu_s"].median())
    assert load_params("machine.slice_s")["value"] > 6 * handler_cpu
    assert np.median(earlier) < 2 * handler_cpu


def test_shipped_slice_is_what_a_spinning_thread_waits():
    """The long off-CPU gaps of a spinning thread beside another: at least a quarter of them last the
    kernel's whole slice, ended at a scheduler tick (the median and the third quartile within 1 % of each
    other: 4.02 ms in both shipped runs), the others less (the other thread slept or moved first); the fitted
    constant, their mean (3.2-3.3 ms), lies between the quartiles."""
    data = Dataset((DATA_ROOT.parent.parent / load_params("machine.slice_s")["dataset"]).parent)
    gaps = observations("machine.slice_s", data)["y"].to_numpy()
    value = load_params("machine.slice_s")["value"]
    q25, q50, q75 = np.quantile(gaps, [0.25, 0.5, 0.75])
    assert q75 / q50 - 1 < 0.01
    assert q25 < value < q75
