"""Distributions as objects: they sample in blocks and know their moments.

A distribution is written in a scenario as a mapping with a ``dist`` key, or as
a bare quantity for a constant::

    service: {dist: exp, mean: 2ms}
    service: {dist: lognormal, median: 2ms, p99: 9ms}
    service: {dist: gamma, mean: 1ms, cv: 0.5}
    service: {dist: uniform, low: 1ms, high: 3ms}
    service: {dist: empirical, file: samples.csv, column: latency_s}
    service: {dist: mixture, components: [{dist: const, value: 1ms, weight: 0.9},
                                          {dist: exp, mean: 20ms, weight: 0.1}]}
    service: 2ms                      # constant

Every quantity accepts the units of :mod:`sim.units` (durations or sizes).
Knowing ``mean`` and ``variance`` lets tests hold a model to queueing theory
(Ciw's distribution objects are the model for this design).
"""

from __future__ import annotations

import csv
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as scipy_stats

from sim.units import parse_quantity

BLOCK_SIZE = 4096


class Distribution(ABC):
    """A non-negative random quantity (a duration, a size, a count)."""

    name: str = ""

    @property
    @abstractmethod
    def mean(self) -> float: ...

    @property
    @abstractmethod
    def variance(self) -> float: ...

    @abstractmethod
    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """``size`` independent draws as a float array."""

    @abstractmethod
    def spec(self) -> dict[str, Any]:
        """The canonical mapping that :func:`parse_dist` turns back into this distribution."""

    @property
    def second_moment(self) -> float:
        return self.variance + self.mean**2

    @property
    def scv(self) -> float:
        """Squared coefficient of variation, variance / mean²."""
        return self.variance / self.mean**2 if self.mean else 0.0

    def sampler(self, rng: np.random.Generator, block: int = BLOCK_SIZE) -> Callable[[], float]:
        """A zero-argument callable returning one draw, refilled ``block`` draws at a time.

        Drawing in blocks amortises NumPy's per-call overhead, which dominates
        when a simulation asks for one number per event.
        """

        def blocks() -> Iterator[float]:
            while True:
                yield from self.sample(rng, block).tolist()

        iterator = blocks()
        return iterator.__next__

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.spec().items() if k != "dist")
        return f"{type(self).__name__}({params})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Distribution) and self.spec() == other.spec()

    def __hash__(self) -> int:
        return hash(repr(self))


class Constant(Distribution):
    name = "const"

    def __init__(self, value: float) -> None:
        _require(value >= 0, "value", value, "must be >= 0")
        self.value = float(value)

    @property
    def mean(self) -> float:
        return self.value

    @property
    def variance(self) -> float:
        return 0.0

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return np.full(size, self.value)

    def sampler(self, rng: np.random.Generator, block: int = BLOCK_SIZE) -> Callable[[], float]:
        value = self.value
        return lambda: value

    def spec(self) -> dict[str, Any]:
        return {"dist": self.name, "value": self.value}


class Exponential(Distribution):
    name = "exp"

    def __init__(self, mean: float) -> None:
        _require(mean > 0, "mean", mean, "must be > 0")
        self._mean = float(mean)

    @property
    def mean(self) -> float:
        return self._mean

    @property
    def variance(self) -> float:
        return self._mean**2

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.exponential(self._mean, size)

    def spec(self) -> dict[str, Any]:
        return {"dist": self.name, "mean": self._mean}


class LogNormal(Distribution):
    """exp(N(mu, sigma²)); also from (median, p99) or (mean, cv)."""

    name = "lognormal"

    def __init__(self, mu: float, sigma: float) -> None:
        _require(sigma >= 0, "sigma", sigma, "must be >= 0")
        self.mu = float(mu)
        self.sigma = float(sigma)

    @classmethod
    def from_median_p99(cls, median: float, p99: float) -> LogNormal:
        _require(median > 0, "median", median, "must be > 0")
        _require(p99 >= median, "p99", p99, f"must be >= median ({median})")
        return cls(math.log(median), (math.log(p99) - math.log(median)) / scipy_stats.norm.ppf(0.99))

    @classmethod
    def from_mean_cv(cls, mean: float, cv: float) -> LogNormal:
        _require(mean > 0, "mean", mean, "must be > 0")
        _require(cv >= 0, "cv", cv, "must be >= 0")
        sigma2 = math.log1p(cv**2)
        return cls(math.log(mean) - sigma2 / 2, math.sqrt(sigma2))

    @property
    def mean(self) -> float:
        return math.exp(self.mu + self.sigma**2 / 2)

    @property
    def variance(self) -> float:
        return math.expm1(self.sigma**2) * math.exp(2 * self.mu + self.sigma**2)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.lognormal(self.mu, self.sigma, size)

    def spec(self) -> dict[str, Any]:
        return {"dist": self.name, "mu": self.mu, "sigma": self.sigma}


class Gamma(Distribution):
    """Gamma(shape k, scale θ); also from (mean, cv). Erlang-k when k is whole."""

    name = "gamma"

    def __init__(self, shape: float, scale: float) -> None:
        _require(shape > 0, "shape", shape, "must be > 0")
        _require(scale > 0, "scale", scale, "must be > 0")
        self.shape = float(shape)
        self.scale = float(scale)

    @classmethod
    def from_mean_cv(cls, mean: float, cv: float) -> Gamma:
        _require(mean > 0, "mean", mean, "must be > 0")
        _require(cv > 0, "cv", cv, "must be > 0")
        return cls(1 / cv**2, mean * cv**2)

    @property
    def mean(self) -> float:
        return self.shape * self.scale

    @property
    def variance(self) -> float:
        return self.shape * self.scale**2

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.gamma(self.shape, self.scale, size)

    def spec(self) -> dict[str, Any]:
        return {"dist": self.name, "shape": self.shape, "scale": self.scale}


class Uniform(Distribution):
    name = "uniform"

    def __init__(self, low: float, high: float) -> None:
        _require(low >= 0, "low", low, "must be >= 0")
        _require(high >= low, "high", high, f"must be >= low ({low})")
        self.low = float(low)
        self.high = float(high)

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    @property
    def variance(self) -> float:
        return (self.high - self.low) ** 2 / 12

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, size)

    def spec(self) -> dict[str, Any]:
        return {"dist": self.name, "low": self.low, "high": self.high}


class Empirical(Distribution):
    """Resamples observed values with equal weight (the empirical distribution)."""

    name = "empirical"

    def __init__(self, values: Sequence[float] | np.ndarray, source: str | None = None) -> None:
        array = np.asarray(values, dtype=float)
        _require(array.size > 0, "values", "[]", "needs at least one value")
        _require(bool(np.all(np.isfinite(array))), "values", "...", "must all be finite numbers")
        _require(bool(np.all(array >= 0)), "values", float(array.min()), "must all be >= 0")
        self.values = array
        self.source = source

    @classmethod
    def from_csv(cls, path: str | Path, column: str) -> Empirical:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"file: no such file {str(path)!r}")
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or column not in reader.fieldnames:
                raise ValueError(
                    f"column: {column!r} is not a column of {str(path)!r} "
                    f"(columns: {', '.join(reader.fieldnames or [])})"
                )
            values = [parse_quantity(row[column]) for row in reader if row[column] != ""]
        return cls(values, source=f"{path}:{column}")

    @property
    def mean(self) -> float:
        return float(self.values.mean())

    @property
    def variance(self) -> float:
        return float(self.values.var())

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        return rng.choice(self.values, size)

    def spec(self) -> dict[str, Any]:
        return {"dist": self.name, "values": self.values.tolist()}


class Mixture(Distribution):
    """With probability ``weights[i]``, a draw of ``components[i]``."""

    name = "mixture"

    def __init__(self, components: Sequence[Distribution], weights: Sequence[float]) -> None:
        _require(len(components) > 0, "components", "[]", "needs at least one component")
        _require(len(components) == len(weights), "weights", list(weights), "needs one weight per component")
        w = np.asarray(weights, dtype=float)
        _require(bool(np.all(w >= 0)) and w.sum() > 0, "weights", list(weights), "must be >= 0 and not all 0")
        self.components = list(components)
        self.weights = w / w.sum()

    @property
    def mean(self) -> float:
        return float(sum(w * c.mean for w, c in zip(self.weights, self.components)))

    @property
    def variance(self) -> float:
        second = sum(w * c.second_moment for w, c in zip(self.weights, self.components))
        return float(second - self.mean**2)

    def sample(self, rng: np.random.Generator, size: int) -> np.ndarray:
        choice = rng.choice(len(self.components), size, p=self.weights)
        out = np.empty(size)
        for index, component in enumerate(self.components):
            mask = choice == index
            out[mask] = component.sample(rng, int(mask.sum()))
        return out

    def spec(self) -> dict[str, Any]:
        return {
            "dist": self.name,
            "components": [
                {**c.spec(), "weight": float(w)} for c, w in zip(self.components, self.weights)
            ],
        }


def _require(ok: bool, field: str, value: object, message: str) -> None:
    if not ok:
        raise ValueError(f"{field}: {message} (got {value!r})")


SAME_UNIT_PARAMETERS = frozenset({"value", "mean", "median", "p99", "scale", "low", "high", "values"})
"""Parameters of a spec in the unit of the distribution's draws (a distribution of durations has a duration
as its ``mean``); the others (``mu``, ``sigma``, ``shape``, ``cv``, ``weight``, and ``rate``, an inverse)
are not."""


def _take(p: dict[str, Any], key: str, convert: Callable[[Any], float] = parse_quantity, label: str = "") -> float:
    """Pop ``key`` and convert it, naming the key (or ``label``) in any error."""
    value = p.pop(key)
    try:
        return convert(value)
    except ValueError as error:
        raise ValueError(f"{label or key}: {error}") from None
    except TypeError:
        raise ValueError(f"{label or key}: expected a number (got {value!r})") from None


def _build_exp(p: dict[str, Any], base_dir: Path | None) -> Distribution:
    if "mean" in p and "rate" not in p:
        return Exponential(_take(p, "mean"))
    if "rate" in p and "mean" not in p:
        rate = _take(p, "rate")
        _require(rate > 0, "rate", rate, "must be > 0")
        return Exponential(1 / rate)
    raise ValueError("exp needs exactly one of 'mean' or 'rate'")


def _build_lognormal(p: dict[str, Any], base_dir: Path | None) -> Distribution:
    keys = set(p)
    if keys >= {"median", "p99"}:
        return LogNormal.from_median_p99(_take(p, "median"), _take(p, "p99"))
    if keys >= {"mean", "cv"}:
        return LogNormal.from_mean_cv(_take(p, "mean"), _take(p, "cv", float))
    if keys >= {"mu", "sigma"}:
        return LogNormal(_take(p, "mu", float), _take(p, "sigma", float))
    raise ValueError("lognormal needs 'median' and 'p99', or 'mean' and 'cv', or 'mu' and 'sigma'")


def _build_gamma(p: dict[str, Any], base_dir: Path | None) -> Distribution:
    keys = set(p)
    if keys >= {"mean", "cv"}:
        return Gamma.from_mean_cv(_take(p, "mean"), _take(p, "cv", float))
    if keys >= {"shape", "scale"}:
        return Gamma(_take(p, "shape", float), _take(p, "scale"))
    if keys >= {"shape", "mean"}:
        shape = _take(p, "shape", float)
        _require(shape > 0, "shape", shape, "must be > 0")
        return Gamma(shape, _take(p, "mean") / shape)
    raise ValueError("gamma needs 'mean' and 'cv', or 'shape' and 'scale', or 'shape' and 'mean'")


def _build_const(p: dict[str, Any], base_dir: Path | None) -> Distribution:
    if "value" not in p:
        raise ValueError("const needs 'value'")
    return Constant(_take(p, "value"))


def _build_uniform(p: dict[str, Any], base_dir: Path | None) -> Distribution:
    if not {"low", "high"} <= set(p):
        raise ValueError("uniform needs 'low' and 'high'")
    return Uniform(_take(p, "low"), _take(p, "high"))


def _build_empirical(p: dict[str, Any], base_dir: Path | None) -> Distribution:
    if "values" in p:
        raw = p.pop("values")
        if not isinstance(raw, list):
            raise ValueError(f"values: expected a list of numbers (got {raw!r})")
        return Empirical([_take({"v": v}, "v", label=f"values.{i}") for i, v in enumerate(raw)])
    if "file" in p:
        path = Path(p.pop("file"))
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if "column" not in p:
            raise ValueError("empirical from a file needs 'column'")
        return Empirical.from_csv(path, str(p.pop("column")))
    raise ValueError("empirical needs 'values' or 'file' and 'column'")


def _build_mixture(p: dict[str, Any], base_dir: Path | None) -> Distribution:
    raw = p.pop("components", None)
    if not isinstance(raw, list) or not raw:
        raise ValueError("mixture needs 'components', a list of distributions each with a 'weight'")
    components, weights = [], []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping) or "weight" not in item:
            raise ValueError(f"components.{index}: needs a 'weight' beside its 'dist'")
        item = dict(item)
        weights.append(_take(item, "weight", float, label=f"components.{index}.weight"))
        try:
            components.append(parse_dist(item, base_dir=base_dir))
        except ValueError as error:
            raise ValueError(f"components.{index}.{error}") from None
    return Mixture(components, weights)


_BUILDERS: dict[str, Callable[[dict[str, Any], Path | None], Distribution]] = {
    "const": _build_const,
    "constant": _build_const,
    "deterministic": _build_const,
    "exp": _build_exp,
    "exponential": _build_exp,
    "lognormal": _build_lognormal,
    "gamma": _build_gamma,
    "uniform": _build_uniform,
    "empirical": _build_empirical,
    "mixture": _build_mixture,
}


def parse_dist(spec: object, base_dir: Path | None = None) -> Distribution:
    """A :class:`Distribution` from a scenario value (mapping, quantity or distribution).

    Raises ``ValueError`` with a one-line message naming the offending key.
    ``base_dir`` resolves relative ``file`` paths of empirical distributions.
    """
    if isinstance(spec, Distribution):
        return spec
    if isinstance(spec, (int, float, str)) and not isinstance(spec, bool):
        return Constant(parse_quantity(spec))
    if not isinstance(spec, Mapping):
        raise ValueError(f"expected a distribution such as {{dist: exp, mean: 1ms}}, got {spec!r}")
    params = dict(spec)
    kind = params.pop("dist", None)
    if kind not in _BUILDERS:
        known = ", ".join(sorted(_BUILDERS))
        raise ValueError(f"dist: unknown distribution {kind!r} (known: {known})")
    dist = _BUILDERS[kind](params, base_dir)
    if params:
        raise ValueError(f"{next(iter(params))}: not a parameter of dist {kind!r}")
    return dist
