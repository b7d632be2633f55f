"""sim.dists: every family parses from config, samples what its moments say,
samples the same in blocks, and refuses bad specs with a one-line message
naming the key."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from sim.dists import (
    BLOCK_SIZE,
    Constant,
    Distribution,
    Empirical,
    Exponential,
    Gamma,
    LogNormal,
    Mixture,
    Uniform,
    parse_dist,
)

MIXTURE = {
    "dist": "mixture",
    "components": [
        {"dist": "const", "value": "1ms", "weight": 0.9},
        {"dist": "exp", "mean": "20ms", "weight": 0.1},
    ],
}

SPECS: dict[str, object] = {
    "lognormal-median-p99": {"dist": "lognormal", "median": "2ms", "p99": "9ms"},
    "lognormal-mean-cv": {"dist": "lognormal", "mean": "3ms", "cv": 0.8},
    "lognormal-mu-sigma": {"dist": "lognormal", "mu": -6.0, "sigma": 0.5},
    "exp-mean": {"dist": "exp", "mean": 1.0},
    "exp-rate": {"dist": "exponential", "rate": "250/s"},
    "const": {"dist": "const", "value": "2ms"},
    "bare-quantity": "2ms",
    "gamma-mean-cv": {"dist": "gamma", "mean": "1ms", "cv": 0.5},
    "gamma-shape-scale": {"dist": "gamma", "shape": 3, "scale": "2ms"},
    "gamma-shape-mean": {"dist": "gamma", "shape": 0.5, "mean": "4ms"},
    "uniform": {"dist": "uniform", "low": "1ms", "high": "3ms"},
    "empirical-values": {"dist": "empirical", "values": ["1ms", "2ms", "2ms", "10ms"]},
    "mixture": MIXTURE,
}


# --- parsing: each family from config, with the parameters the spec means ---


def test_lognormal_from_median_and_p99() -> None:
    dist = parse_dist({"dist": "lognormal", "median": "2ms", "p99": "9ms"})
    assert isinstance(dist, LogNormal)
    frozen = scipy_stats.lognorm(s=dist.sigma, scale=math.exp(dist.mu))
    assert frozen.median() == pytest.approx(0.002, rel=1e-12)
    assert frozen.ppf(0.99) == pytest.approx(0.009, rel=1e-9)
    assert dist.mean == pytest.approx(frozen.mean(), rel=1e-12)
    assert dist.variance == pytest.approx(frozen.var(), rel=1e-9)


def test_lognormal_from_mean_and_cv() -> None:
    dist = parse_dist({"dist": "lognormal", "mean": "3ms", "cv": 0.8})
    assert dist.mean == pytest.approx(0.003, rel=1e-12)
    assert dist.scv == pytest.approx(0.64, rel=1e-12)


def test_exponential_from_mean_or_rate() -> None:
    assert parse_dist({"dist": "exp", "mean": 1.0}) == Exponential(1.0)
    rate = parse_dist({"dist": "exp", "rate": "250/s"})
    assert rate.mean == pytest.approx(0.004) and rate.variance == pytest.approx(0.004**2)


def test_constant_from_mapping_or_bare_quantity() -> None:
    assert parse_dist({"dist": "const", "value": "2ms"}) == Constant(0.002)
    assert parse_dist("2ms") == Constant(0.002)
    assert parse_dist(0.5) == Constant(0.5)
    assert parse_dist({"dist": "deterministic", "value": 1}).variance == 0.0


def test_gamma_three_ways() -> None:
    by_cv = parse_dist({"dist": "gamma", "mean": "1ms", "cv": 0.5})
    assert isinstance(by_cv, Gamma)
    assert by_cv.shape == pytest.approx(4.0) and by_cv.mean == pytest.approx(0.001)
    assert parse_dist({"dist": "gamma", "shape": 3, "scale": "2ms"}) == Gamma(3, 0.002)
    by_mean = parse_dist({"dist": "gamma", "shape": 0.5, "mean": "4ms"})
    assert by_mean.mean == pytest.approx(0.004) and by_mean.scv == pytest.approx(2.0)


def test_uniform() -> None:
    dist = parse_dist({"dist": "uniform", "low": "1ms", "high": "3ms"})
    assert dist == Uniform(0.001, 0.003)
    assert dist.variance == pytest.approx(0.002**2 / 12)


def test_empirical_from_values() -> None:
    dist = parse_dist({"dist": "empirical", "values": ["1ms", "2ms", 0.004]})
    assert isinstance(dist, Empirical)
    assert np.allclose(dist.values, [0.001, 0.002, 0.004])
    assert dist.mean == pytest.approx(0.007 / 3)


def test_empirical_from_a_csv_column(tmp_path: Path) -> None:
    path = tmp_path / "samples.csv"
    path.write_text("host,latency_s\na,0.001\nb,2ms\nc,\nd,0.004\n")
    dist = parse_dist({"dist": "empirical", "file": str(path), "column": "latency_s"})
    assert np.allclose(dist.values, [0.001, 0.002, 0.004])  # the empty cell is skipped
    relative = parse_dist({"dist": "empirical", "file": "samples.csv", "column": "latency_s"}, base_dir=tmp_path)
    assert relative == dist


def mixture(first: float, second: float) -> dict[str, object]:
    return {
        "dist": "mixture",
        "components": [{"dist": "const", "value": 1, "weight": first}, {"dist": "exp", "mean": 5, "weight": second}],
    }


def test_mixture_weights_add_up_to_one() -> None:
    dist = parse_dist(mixture(0.75, 0.25))
    assert isinstance(dist, Mixture)
    assert np.allclose(dist.weights, [0.75, 0.25])
    assert dist.mean == pytest.approx(0.75 * 1 + 0.25 * 5)
    assert dist.variance == pytest.approx(0.75 * 1 + 0.25 * 50 - 2.0**2)


def test_mixture_weights_that_do_not_add_up_to_one_are_refused_with_their_sum() -> None:
    with pytest.raises(ValueError, match=r"^weights: must add up to 1, not 4 \(got \[3\.0, 1\.0\]\)$"):
        parse_dist(mixture(3, 1))  # once silently scaled to 0.75 and 0.25
    with pytest.raises(ValueError, match=r"not 0\.9999999"):
        parse_dist(mixture(0.7, 0.2999999))


def test_mixture_weights_within_float_rounding_of_one_are_scaled_to_one() -> None:
    dist = parse_dist(mixture(0.7, 0.3 + 5e-10))
    assert isinstance(dist, Mixture)
    assert dist.weights.sum() == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("label", sorted(SPECS))
def test_spec_round_trips(label: str) -> None:
    dist = parse_dist(SPECS[label])
    again = parse_dist(dist.spec())
    assert again == dist
    assert again.mean == pytest.approx(dist.mean, rel=1e-12)
    assert again.variance == pytest.approx(dist.variance, rel=1e-12, abs=1e-300)
    assert parse_dist(dist) is dist


# --- sampling agrees with the stated moments ---


@pytest.mark.parametrize("label", sorted(SPECS))
def test_sample_moments_agree_with_properties(label: str) -> None:
    """Sample mean and variance of n = 500 000 draws against .mean and .variance.

    The sample mean has standard error sqrt(variance / n). The sample variance
    has standard error sqrt(Var((X - mu)^2) / n), estimated from the draws
    themselves (every family here has a finite fourth moment, so the CLT
    applies). Five standard errors is a two-sided false-failure probability
    below 1e-6 per check; the tolerance also has to be small (under 3 % of
    the mean, 8 % of the variance) so a wrong moment formula cannot hide in it.
    """
    dist = parse_dist(SPECS[label])
    n = 500_000
    x = dist.sample(np.random.default_rng(20240601), n)
    assert x.shape == (n,) and np.all(x >= 0)
    if dist.variance == 0:
        assert np.all(x == dist.mean)
        return
    se_mean = math.sqrt(dist.variance / n)
    assert 5 * se_mean < 0.03 * dist.mean
    assert abs(x.mean() - dist.mean) < 5 * se_mean

    se_var = float(np.std((x - x.mean()) ** 2, ddof=1)) / math.sqrt(n)
    assert 5 * se_var < 0.08 * dist.variance
    assert abs(x.var(ddof=1) - dist.variance) < 5 * se_var


def test_empirical_samples_only_its_values_in_proportion() -> None:
    """Four values, one of them twice: each draw is one of them, with
    frequencies within 5 binomial standard errors of 1/4, 1/2, 1/4."""
    dist = Empirical([1.0, 2.0, 2.0, 10.0])
    n = 100_000
    x = dist.sample(np.random.default_rng(3), n)
    assert set(np.unique(x)) == {1.0, 2.0, 10.0}
    for value, p in ((1.0, 0.25), (2.0, 0.5), (10.0, 0.25)):
        assert abs(np.mean(x == value) - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_lognormal_quantiles_from_samples() -> None:
    """The sample p99 of n draws lies within 5 standard errors of the fitted 9 ms:
    the standard error of a p-quantile is sqrt(p (1-p) / n) / f(x_p)."""
    dist = parse_dist({"dist": "lognormal", "median": "2ms", "p99": "9ms"})
    n = 200_000
    x = dist.sample(np.random.default_rng(5), n)
    frozen = scipy_stats.lognorm(s=dist.sigma, scale=math.exp(dist.mu))
    for p, target in ((0.5, 0.002), (0.99, 0.009)):
        se = math.sqrt(p * (1 - p) / n) / frozen.pdf(target)
        assert 5 * se < 0.05 * target
        assert abs(np.quantile(x, p) - target) < 5 * se


# --- the block sampler ---


@pytest.mark.parametrize("label", sorted(SPECS))
@pytest.mark.parametrize("block", [1, 7, BLOCK_SIZE])
def test_block_sampler_gives_the_same_stream_as_sample(label: str, block: int) -> None:
    """Drawing one at a time from ``sampler(rng, block)`` yields exactly what
    consecutive ``sample(rng, block)`` calls on an identically seeded generator
    return: blocks only amortise NumPy's call overhead."""
    dist = parse_dist(SPECS[label])
    count = 2 * block + 3
    draw = dist.sampler(np.random.default_rng(99), block)
    one_by_one = np.array([draw() for _ in range(count)])
    rng = np.random.default_rng(99)
    blocks = np.concatenate([dist.sample(rng, block) for _ in range(-(-count // block))])[:count]
    assert np.array_equal(one_by_one, blocks)


def test_default_block_matches_one_sample_call() -> None:
    dist = Gamma(2.0, 0.5)
    draw = dist.sampler(np.random.default_rng(1))
    first = [draw() for _ in range(BLOCK_SIZE)]
    assert np.array_equal(first, dist.sample(np.random.default_rng(1), BLOCK_SIZE))


def test_samplers_on_separate_generators_are_independent_of_each_other() -> None:
    dist = Exponential(1.0)
    a = dist.sampler(np.random.default_rng(1), 16)
    b = dist.sampler(np.random.default_rng(1), 16)
    first = [a() for _ in range(40)]
    for _ in range(100):
        b()
    again = dist.sampler(np.random.default_rng(1), 16)
    assert first == [again() for _ in range(40)]


# --- bad specs: one line naming the key ---


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ({"dist": "nope"}, "dist:"),
        ({"mean": 1}, "dist:"),
        ({"dist": "exp"}, "'mean'"),
        ({"dist": "exp", "mean": 1, "rate": 2}, "'rate'"),
        ({"dist": "exp", "mean": 1, "sigma": 2}, "sigma:"),
        ({"dist": "exp", "mean": -1}, "mean:"),
        ({"dist": "exp", "mean": "2 parsecs"}, "mean:"),
        ({"dist": "exp", "rate": 0}, "rate:"),
        ({"dist": "lognormal", "median": "9ms", "p99": "2ms"}, "p99:"),
        ({"dist": "lognormal", "median": 0, "p99": "2ms"}, "median:"),
        ({"dist": "lognormal", "median": "2ms"}, "'p99'"),
        ({"dist": "lognormal", "mu": 0, "sigma": -1}, "sigma:"),
        ({"dist": "gamma", "mean": 1, "cv": 0}, "cv:"),
        ({"dist": "gamma", "mean": 1, "cv": "abc"}, "cv:"),
        ({"dist": "gamma", "mean": 1, "cv": [1]}, "cv:"),
        ({"dist": "gamma", "shape": 0, "mean": 1}, "shape:"),
        ({"dist": "gamma", "shape": -2, "scale": 1}, "shape:"),
        ({"dist": "const", "value": -1}, "value:"),
        ({"dist": "const"}, "'value'"),
        ({"dist": "uniform", "low": 3, "high": 1}, "high:"),
        ({"dist": "uniform", "low": 1}, "'high'"),
        ({"dist": "empirical", "values": []}, "values:"),
        ({"dist": "empirical", "values": [1, -2]}, "values.1:"),
        ({"dist": "empirical", "values": 5}, "values:"),
        ({"dist": "empirical", "values": [1, "2 parsecs"]}, "values.1:"),
        ({"dist": "empirical", "file": "/nonexistent/samples.csv", "column": "x"}, "file:"),
        ({"dist": "mixture"}, "'components'"),
        ({"dist": "mixture", "components": [{"dist": "exp", "mean": 1}]}, "components.0:"),
        ({"dist": "mixture", "components": [{"dist": "exp", "mean": -1, "weight": 1}]}, "components.0.mean:"),
        ({"dist": "mixture", "components": [{"dist": "exp", "mean": 1, "weight": "x"}]}, "components.0.weight:"),
        ({"dist": "mixture", "components": [{"dist": "exp", "mean": 1, "weight": -1}]}, "weights:"),
        ([1, 2], "[1, 2]"),
        ("fast", "'fast'"),
    ],
)
def test_bad_specs_give_one_line_errors_naming_the_key(spec: object, names: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_dist(spec)
    message = str(info.value)
    assert names in message
    assert "\n" not in message


def test_missing_csv_column_is_named_with_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "samples.csv"
    path.write_text("latency_s\n0.001\n")
    with pytest.raises(ValueError, match=r"^column: 'latency_ms' is not a column .*\(columns: latency_s\)$"):
        parse_dist({"dist": "empirical", "file": str(path), "column": "latency_ms"})


def test_every_distribution_is_a_distribution() -> None:
    for spec in SPECS.values():
        assert isinstance(parse_dist(spec), Distribution)


# --- dimensions (issue 20: `service: {dist: exp, mean: 8KiB}` ran as 8,192 s of service) ---


def test_a_distribution_reads_its_parameters_in_its_dimension() -> None:
    assert parse_dist({"dist": "exp", "mean": "8KiB"}, dimension="size") == Exponential(8192.0)
    assert parse_dist("2ms", dimension="duration") == Constant(0.002)
    assert parse_dist({"dist": "exp", "rate": "250/s"}, dimension="duration") == Exponential(0.004)
    assert parse_dist({"dist": "exp", "rate": 0.001}, dimension="size") == Exponential(1000.0)
    assert parse_dist({"dist": "gamma", "shape": 2, "scale": "1KiB"}, dimension="size") == Gamma(2, 1024.0)


@pytest.mark.parametrize(
    ("spec", "dimension", "message"),
    [
        ({"dist": "exp", "mean": "8KiB"}, "duration", "mean: expected a duration, not a size ('8KiB')"),
        ("2/s", "duration", "expected a duration, not a rate ('2/s')"),
        ({"dist": "const", "value": "2ms"}, "size", "value: expected a size, not a duration ('2ms')"),
        ({"dist": "exp", "rate": "2KiB"}, "duration", "rate: expected a rate, not a size ('2KiB')"),
        ({"dist": "exp", "rate": "2/s"}, "size", "rate: expected a number, not a rate ('2/s')"),
        ({"dist": "gamma", "mean": "1ms", "cv": "5ms"}, "duration", "cv: expected a number, not a duration ('5ms')"),
        ({"dist": "gamma", "mean": "1ms", "cv": True}, "duration", "cv: expected a number, got True"),
        ({"dist": "uniform", "low": "1ms", "high": "1MiB"}, "duration", "high: expected a duration, not a size"),
        ({"dist": "empirical", "values": ["1ms", "1KiB"]}, "duration", "values.1: expected a duration, not a size"),
        (MIXTURE, "size", "components.0.value: expected a size, not a duration ('1ms')"),
    ],
)
def test_a_parameter_of_another_dimension_is_refused_naming_the_key(spec: object, dimension, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_dist(spec, dimension=dimension)
    assert str(info.value).startswith(message)


def test_csv_values_are_read_in_the_dimension_and_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "samples.csv"
    path.write_text("latency_s\n0.001\n8KiB\n")
    with pytest.raises(ValueError, match=r"^file: '.*samples\.csv' line 3: expected a duration, not a size"):
        parse_dist({"dist": "empirical", "file": str(path), "column": "latency_s"}, dimension="duration")


def test_a_binary_csv_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "samples.csv"
    path.write_bytes(b"latency_s\n\x93\xff\x00\n")
    with pytest.raises(ValueError, match=r"^file: '.*samples\.csv' is not a UTF-8 text file$"):
        parse_dist({"dist": "empirical", "file": str(path), "column": "latency_s"})


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ({"dist": {"exp": 1}}, "dist: expected the name of a distribution"),  # once a TypeError: unhashable
        ({"dist": [1, 2]}, "dist: expected the name of a distribution"),
        ({"dist": "empirical", "file": {"a": 1}, "column": "x"}, "file: expected the path of a CSV file"),
        ({"dist": "empirical", "file": 7, "column": "x"}, "file: expected the path of a CSV file"),
    ],
)
def test_a_mapping_or_list_where_a_name_is_expected_is_a_clean_error(spec: object, names: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_dist(spec)
    assert str(info.value).startswith(names)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ({"dist": "lognormal", "mu": 1000, "sigma": 1}, "mean: the lognormal distribution's mean, inf, is above"),
        ({"dist": "lognormal", "mu": 40, "sigma": 0}, "mean: the lognormal distribution's mean, 2.35385e+17"),
        ({"dist": "lognormal", "mu": -2000, "sigma": 40}, "variance: the lognormal distribution's variance overflows"),
        ({"dist": "exp", "rate": 1e-16}, "mean: the exp distribution's mean, 1e+16, is above 1e+15"),
    ],
)
def test_a_distribution_beyond_what_the_engine_holds_is_refused(spec: object, names: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_dist(spec)
    assert str(info.value).startswith(names), str(info.value)


def test_a_rate_whose_mean_gap_is_beyond_the_bound_is_refused_as_a_rate() -> None:
    with pytest.raises(ValueError) as info:
        parse_dist({"dist": "exp", "rate": 1e-16}, dimension="duration")
    assert str(info.value) == "rate: a rate must be 0 or at least 1e-15/s, got 1e-16"
