"""The machine under a Poisson service (models/machine/: MachineConfig, MachineEffects): work stretch and wake-up
from idle, their binned parameter set (sim.params.Binned) and the shipped measurements behind them."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from calibration.dataset import Dataset
from calibration.fit import observations
from calibration.measure import DATA_ROOT
from models.machine import effects
from models.services.go import GoServiceScenario
from models.services.node import NativeServiceModel, NativeServiceScenario
from models.machine.config import MachineConfig
from sim.core import Environment
from sim.dists import Constant
from sim.params import Binned, load_params, param_as_dist, param_binned

MS = 1e-3
WAKE = "machine.go_wake_s_vs_idle"
STRETCH = "machine.work_stretch"


def test_binned_ranges_are_closed_below_and_the_last_is_open():
    binned = Binned("x", (0.0, 1.0, 10.0), (Constant(1.0), Constant(2.0), Constant(3.0)))
    assert [binned.index(x) for x in (-1.0, 0.0, 0.999, 1.0, 9.99, 10.0, 1e9)] == [0, 0, 0, 1, 1, 2, 2]
    assert binned.of(5.0).mean == 2.0


def test_shipped_wake_delay_grows_with_the_idle_time():
    """On the shipped samples, requests after more than 10 ms of idleness wait longer than those after less than
    0.3 ms (one-sided Mann-Whitney, p < 1e-6), and the fitted ranges' medians keep that order."""
    from scipy import stats as scipy_stats

    params = load_params(WAKE)
    data = Dataset((DATA_ROOT.parent.parent / params["dataset"]).parent)
    points = observations(WAKE, data)
    short, long = points.loc[points["x"] < 3e-4, "y"], points.loc[points["x"] > 1e-2, "y"]
    assert scipy_stats.mannwhitneyu(short, long, alternative="less").pvalue < 1e-6
    binned = param_binned(WAKE)
    rng = np.random.default_rng(0)
    median = lambda x: float(np.median(binned.of(x).sample(rng, 2001)))  # noqa: E731
    assert median(1e-4) < median(3e-2)


def native(**fields) -> NativeServiceScenario:
    return NativeServiceScenario.model_validate({
        "model": "native.service", "threads": 1, "arrival_rate": 1.0, "requests": 1, "warmup": 0.0,
        "handler": {"cpu": 1 * MS}, **fields})


def test_a_request_to_an_idle_service_first_waits_its_wake_delay(monkeypatch):
    """Delays of 0, 0.1 and 0.5 ms for idle times from 0, 1 ms and 10 ms: the first request (idle 0) waits
    nothing; one arriving 0.999 s after it ended waits 0.5 ms; one arriving 0.2 ms later, while that one is
    in flight, waits nothing and takes the thread at once (the wake-up holds no CPU), so the first runs after
    it: 0.2 + 1 + 1 ms."""
    monkeypatch.setattr(effects, "param_binned", lambda name: Binned(
        "idle_s", (0.0, 1 * MS, 10 * MS), (Constant(0.0), Constant(0.1 * MS), Constant(0.5 * MS))))
    env = Environment(seed=1)
    model = NativeServiceModel(env, native(machine={"wake": WAKE}))
    env.run(until=1.0)
    assert env.metrics.histogram("requests.sojourn_s").max == pytest.approx(1 * MS)
    late = model.runtime.execute(model.arriving())
    env.run(until=1.0 + 0.2 * MS)
    during = model.runtime.execute(model.arriving())
    env.run()
    assert during.value == pytest.approx(1 * MS)
    assert late.value == pytest.approx(0.2 * MS + 1 * MS + 1 * MS)


def test_stretch_multiplies_the_handler_cpu():
    """Each request's CPU is the handler's times a draw of machine.work_stretch: the mean of 20 000 draws is
    1 ms times the fitted mean, within 5 standard errors."""
    env = Environment(seed=1)
    model = NativeServiceModel(env, native(machine={"stretch": STRETCH}))
    draws = np.array([model.draw_cpu() for _ in range(20_000)])
    stretch = param_as_dist(STRETCH)
    assert abs(draws.mean() - 1 * MS * stretch.mean) < 5 * 1 * MS * math.sqrt(stretch.variance / draws.size)


@pytest.mark.parametrize("cpu_ms, stretch", [(0.3, 1.5), (1.0, 1.5), (3.0, 3.0)])
def test_a_stretch_binned_by_cpu_draws_from_the_range_of_the_request_cpu(monkeypatch, cpu_ms, stretch):
    """Stretches of 1.5 below 2 ms of CPU and 3 above (a binned set, as machine.work_stretch_vs_cpu): a request
    of 0.3 or 1 ms takes 1.5 times its CPU, one of 3 ms three times."""
    monkeypatch.setattr(effects, "param_binned", lambda name: Binned(
        "cpu_s", (0.0, 2 * MS), (Constant(1.5), Constant(3.0))))
    env = Environment(seed=1)
    model = NativeServiceModel(env, native(machine={"stretch": WAKE}, handler={"cpu": cpu_ms * MS}))
    assert model.draw_cpu() == pytest.approx(cpu_ms * MS * stretch)


@pytest.mark.parametrize("field, name, message", [
    ("wake", "machine.nope", "no calibrated parameter set 'machine.nope'"),
    ("wake", STRETCH, "wake needs a binned"),
    ("stretch", "machine.load_cpu_vs_rate", "stretch needs a distribution or constant or binned"),
])
def test_machine_parameter_sets_are_checked(field, name, message):
    with pytest.raises(ValidationError, match=message) as error:
        MachineConfig.model_validate({field: name})
    assert field in str(error.value)


def test_the_fast_fidelity_refuses_a_wake():
    with pytest.raises(ValidationError, match="machine.wake need fidelity detailed"):
        GoServiceScenario.model_validate({"model": "go.service", "fidelity": "fast", "arrival_rate": 100,
                                          "gomaxprocs": 1, "handler": {"cpu": 1 * MS}, "machine": {"wake": WAKE}})


def test_idle_gap_is_the_time_since_the_latest_response():
    """The first request has no idle gap; one sent while another is in flight has 0; after the responses, the
    gap runs from the latest one (a failed request does not count)."""
    from calibration.measure import _idle_gaps

    rows = [{"scheduled_s": s, "latency_s": latency, "status": status} for s, latency, status in (
        ("0.100", "0.004", "ok"), ("0.101", "0.001", "ok"), ("0.150", "0.001", "timeout"), ("0.200", "0.001", "ok"))]
    assert [row["idle_s"] for row in _idle_gaps(3, rows)] == ["", "0.0000000", "0.0960000"]
