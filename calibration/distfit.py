"""Fit distributions, lines and constants to samples, with a goodness-of-fit for each.

* :func:`fit_distribution`: maximum likelihood with the location fixed at 0 for
  each candidate family (lognormal, gamma, exponential, and a mixture of two
  lognormals fitted by EM on the logarithms, for data with two modes: the
  families :mod:`sim.dists` can sample), the family with the smallest AIC = 2k − 2 ln L
  chosen, and a Kolmogorov–Smirnov test of the chosen fit whose p-value comes
  from a parametric bootstrap: samples of the same size are drawn from the fitted
  distribution, passed through the same measurement rounding as the data,
  re-fitted, and their KS statistics compared with the data's (so the p-value
  accounts for estimated parameters and for ties from rounding).
* :func:`fit_linear`: ordinary least squares y = intercept + slope x, with
  standard errors, R², the slope's p-value and Spearman's rank correlation.
* :func:`fit_constant`: the mean with a Student-t 95 % interval.

All randomness comes from a ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats as scipy_stats
from scipy.special import ndtr

CANDIDATES = ("lognormal", "gamma", "exp", "lognormal_mixture2")
BOOTSTRAP_REPLICATES = 200
STEP_SHARE = 0.65
EM_MAX_ITERATIONS = 500
EM_TOLERANCE = 1e-10
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class LogNormalMixture:
    """A mixture of lognormals with the scipy methods the fit uses (cdf, logpdf, rvs)."""

    def __init__(self, weights: np.ndarray, mus: np.ndarray, sigmas: np.ndarray) -> None:
        self.weights, self.mus, self.sigmas = weights, mus, sigmas

    def cdf(self, x: np.ndarray) -> np.ndarray:
        z = (np.log(np.asarray(x, dtype=float))[..., None] - self.mus) / self.sigmas
        return np.sum(self.weights * ndtr(z), axis=-1)

    def logpdf(self, x: np.ndarray) -> np.ndarray:
        logs = np.log(np.asarray(x, dtype=float))
        parts = _normal_logpdf(logs[..., None], self.mus, self.sigmas) + np.log(self.weights)
        return np.logaddexp.reduce(parts, axis=-1) - logs

    def rvs(self, size: int, random_state: np.random.Generator) -> np.ndarray:
        component = random_state.choice(self.weights.size, size=size, p=self.weights)
        return np.exp(random_state.normal(self.mus[component], self.sigmas[component]))


def _normal_logpdf(y: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    return -0.5 * ((y - mean) / sd) ** 2 - np.log(sd) - _HALF_LOG_2PI


def _em_two_normals(y: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maximum-likelihood mixture of two normals on ``y`` by EM, started from the lower and upper quartiles.

    No standard deviation goes below ``floor``: on rounded data the likelihood is
    unbounded as a component shrinks onto one repeated value.
    """
    weights = np.array([0.5, 0.5])
    means = np.quantile(y, [0.25, 0.75])
    sds = np.full(2, max(float(y.std()) / 2, floor))
    previous = -np.inf
    for _ in range(EM_MAX_ITERATIONS):
        parts = _normal_logpdf(y[:, None], means, sds) + np.log(weights)
        total = np.logaddexp.reduce(parts, axis=-1)
        loglik = float(total.sum())
        resp = np.exp(parts - total[:, None])
        mass = resp.sum(axis=0)
        weights = mass / y.size
        means = (resp * y[:, None]).sum(axis=0) / mass
        sds = np.maximum(np.sqrt((resp * (y[:, None] - means) ** 2).sum(axis=0) / mass), floor)
        if loglik - previous < EM_TOLERANCE * abs(loglik):
            break
        previous = loglik
    order = np.argsort(means)
    return weights[order], means[order], sds[order]


def log_sigma_floor(x: np.ndarray, resolution: float) -> float:
    """The smallest spread a lognormal component may have on data rounded to steps of ``resolution``:
    the standard deviation of the rounding error (resolution / √12) relative to the median, or 10⁻⁶."""
    return max(resolution / math.sqrt(12) / float(np.median(x)), 1e-6)


def _mle(family: str, x: np.ndarray, resolution: float = 0.0) -> tuple[Any, dict[str, Any]]:
    """The frozen scipy distribution and the :mod:`sim.dists` spec of the MLE of ``family`` (location 0)."""
    if family == "lognormal":
        logs = np.log(x)
        mu, sigma = float(logs.mean()), float(logs.std())
        return scipy_stats.lognorm(sigma, scale=math.exp(mu)), {"dist": "lognormal", "mu": mu, "sigma": sigma}
    if family == "gamma":
        shape, _, scale = scipy_stats.gamma.fit(x, floc=0)
        return scipy_stats.gamma(shape, scale=scale), {"dist": "gamma", "shape": float(shape), "scale": float(scale)}
    if family == "exp":
        mean = float(x.mean())
        return scipy_stats.expon(scale=mean), {"dist": "exp", "mean": mean}
    if family == "lognormal_mixture2":
        weights, mus, sigmas = _em_two_normals(np.log(x), log_sigma_floor(x, resolution))
        spec = {"dist": "mixture", "components": [
            {"dist": "lognormal", "mu": float(m), "sigma": float(s), "weight": float(w)}
            for w, m, s in zip(weights, mus, sigmas)]}
        return LogNormalMixture(weights, mus, sigmas), spec
    raise ValueError(f"unknown family {family!r} (known: {', '.join(CANDIDATES)})")


_PARAMETERS = {"lognormal": 2, "gamma": 2, "exp": 1, "lognormal_mixture2": 5}


def _ks(x: np.ndarray, dist: Any) -> float:
    """The one-sample Kolmogorov-Smirnov statistic sup |F_n - F| (as scipy.stats.ks_1samp computes it)."""
    cdf = dist.cdf(np.sort(x))
    n = cdf.size
    return float(max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n)))


def fit_distribution(
    samples: Sequence[float] | np.ndarray,
    rng: np.random.Generator,
    candidates: Sequence[str] = CANDIDATES,
    replicates: int = BOOTSTRAP_REPLICATES,
    measurement: Callable[[np.ndarray], np.ndarray] | None = None,
    resolution: float = 0.0,
) -> dict[str, Any]:
    """Fit every candidate family to positive ``samples``; choose by AIC; bootstrap the KS p-value.

    ``measurement`` maps true values to what the data hold (rounding), applied to
    each bootstrap sample; None when the data are exact. ``resolution`` is the
    step the data are rounded to (a clock's granularity): it bounds how narrow a
    mixture component may be (:func:`log_sigma_floor`). Returns ``distribution``
    (the chosen spec), ``fit`` (method, n, candidates with log-likelihood, AIC and
    KS statistic, chosen family) and ``goodness_of_fit``.
    """
    x = np.asarray(samples, dtype=float)
    if x.size < 2 or not np.all(x > 0):
        raise ValueError(f"fit_distribution needs at least two positive samples (got {x.size}, min {x.min(initial=0)})")
    rows: list[dict[str, Any]] = []
    frozen: dict[str, Any] = {}
    for family in candidates:
        dist, spec = _mle(family, x, resolution)
        loglik = float(np.sum(dist.logpdf(x)))
        frozen[family] = dist
        rows.append(
            {
                "family": family,
                "parameters": spec,
                "log_likelihood": loglik,
                "aic": 2 * _PARAMETERS[family] - 2 * loglik,
                "ks_statistic": _ks(x, dist),
            }
        )
    best = min(rows, key=lambda row: row["aic"])
    chosen = best["family"]
    observed = best["ks_statistic"]
    exceed = 0
    for _ in range(replicates):
        draw = np.asarray(frozen[chosen].rvs(size=x.size, random_state=rng), dtype=float)
        if measurement is not None:
            draw = measurement(draw)
        refit, _ = _mle(chosen, draw, resolution)
        exceed += _ks(draw, refit) >= observed
    return {
        "distribution": best["parameters"],
        "fit": {
            "method": "maximum likelihood, location fixed at 0, per candidate family; family chosen by minimum AIC",
            "n": int(x.size),
            "resolution": resolution,
            "chosen": chosen,
            "candidates": rows,
        },
        "goodness_of_fit": {
            "test": "Kolmogorov-Smirnov, p-value by parametric bootstrap (refit per replicate"
            + (", replicates rounded as the data are)" if measurement is not None else ")"),
            "statistic": observed,
            "p_value": (1 + exceed) / (replicates + 1),
            "replicates": replicates,
        },
    }


def step_resolution(values: np.ndarray, unit: float, steps: Sequence[int] = (1, 2, 5, 10, 20, 50, 100)) -> float:
    """The largest step (a multiple of ``unit``) that most (65 %) of ``values`` are whole multiples of.

    A clock read twice and subtracted yields multiples of its granularity: the
    hand-off latencies here are mostly 120, 130, 140 ns (79 % multiples of 10 ns,
    36 % of 20 ns), so their step is 10 ns. Continuous data give ``unit``: about
    half their values are multiples of 2 units, far below 65 % at any sample size
    worth fitting (the standard error is 0.5/√n).
    """
    counts = np.rint(np.asarray(values, dtype=float) / unit).astype(np.int64)
    best = 1
    for step in steps:
        if np.mean(counts % step == 0) >= STEP_SHARE:
            best = step
    return best * unit


def fit_linear(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """OLS y = intercept + slope x with standard errors, R², the slope's p-value and Spearman's rho."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xa.size < 3 or np.ptp(xa) == 0:
        raise ValueError(f"fit_linear needs at least three points and more than one x value (got {xa.size})")
    line = scipy_stats.linregress(xa, ya)
    rho = scipy_stats.spearmanr(xa, ya)
    residual = ya - (line.intercept + line.slope * xa)
    span = float(np.ptp(xa))
    return {
        "intercept": float(line.intercept),
        "slope": float(line.slope),
        "fit": {
            "method": "ordinary least squares",
            "n": int(xa.size),
            "intercept_stderr": float(line.intercept_stderr),
            "slope_stderr": float(line.stderr),
            "x_range": [float(xa.min()), float(xa.max())],
            "change_over_x_range": float(line.slope * span),
            "mean_y": float(ya.mean()),
        },
        "goodness_of_fit": {
            "r_squared": float(line.rvalue**2),
            "slope_p_value": float(line.pvalue),
            "residual_std": float(residual.std(ddof=2)),
            "spearman_rho": float(rho.statistic),
            "spearman_p_value": float(rho.pvalue),
        },
    }


def fit_constant(values: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """The mean of ``values`` with its Student-t 95 % confidence interval and coefficient of variation."""
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        raise ValueError(f"fit_constant needs at least two values (got {v.size})")
    mean, std = float(v.mean()), float(v.std(ddof=1))
    half = float(scipy_stats.t.ppf(0.975, v.size - 1) * std / math.sqrt(v.size))
    return {
        "value": mean,
        "fit": {"method": "mean of repetitions", "n": int(v.size), "std": std, "min": float(v.min()),
                "max": float(v.max())},
        "goodness_of_fit": {
            "ci95": [mean - half, mean + half],
            "relative_half_width": half / mean if mean else math.inf,
            "cv": std / mean if mean else math.inf,
        },
    }


EMPIRICAL_QUANTILES = 200
"""Evenly spaced quantiles kept by :func:`fit_empirical`."""


def fit_empirical(values: Sequence[float] | np.ndarray, quantiles: int = EMPIRICAL_QUANTILES) -> dict[str, Any]:
    """``values`` as an empirical distribution of ``quantiles`` evenly spaced quantiles (at levels (i + 0.5) /
    ``quantiles``), for a quantity no parametric family describes (several regimes, bounded by the
    measurement): its mean stays the sample's, and the KS distance to the sample is at most about
    1 / ``quantiles``."""
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        raise ValueError(f"fit_empirical needs at least two values (got {v.size})")
    kept = np.quantile(v, (np.arange(quantiles) + 0.5) / quantiles)
    return {
        "distribution": {"dist": "empirical", "values": [float(x) for x in kept]},
        "fit": {"method": f"{quantiles} evenly spaced quantiles (an empirical distribution)", "n": int(v.size),
                "median": float(np.median(v)), "p90": float(np.quantile(v, 0.9)), "p99": float(np.quantile(v, 0.99))},
        "goodness_of_fit": {"test": "Kolmogorov-Smirnov distance between the values and their quantiles",
                            "statistic": float(scipy_stats.ks_2samp(v, kept).statistic)},
    }


class EmpiricalCDF:
    """The step distribution function of the values of an empirical spec (:func:`fit_empirical`)."""

    def __init__(self, values: Sequence[float]) -> None:
        self.values = np.sort(np.asarray(values, dtype=float))

    def cdf(self, x: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.values, np.asarray(x, dtype=float), side="right") / self.values.size


def frozen(spec: dict[str, Any]) -> Any:
    """An object with ``cdf`` (and, but for an empirical spec, ``logpdf``) for a spec that
    :func:`fit_distribution` or :func:`fit_empirical` can produce."""
    kind = spec["dist"]
    if kind == "empirical":
        return EmpiricalCDF(spec["values"])
    if kind == "lognormal":
        return scipy_stats.lognorm(spec["sigma"], scale=math.exp(spec["mu"]))
    if kind == "gamma":
        return scipy_stats.gamma(spec["shape"], scale=spec["scale"])
    if kind == "exp":
        return scipy_stats.expon(scale=spec["mean"])
    if kind == "mixture" and all(c["dist"] == "lognormal" for c in spec["components"]):
        parts = spec["components"]
        return LogNormalMixture(np.array([c["weight"] for c in parts]), np.array([c["mu"] for c in parts]),
                                np.array([c["sigma"] for c in parts]))
    raise ValueError(f"no scipy form for distribution spec {spec!r}")
