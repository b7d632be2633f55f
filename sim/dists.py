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

A distribution has the dimension of the field it fills (:data:`sim.units.Dimension`):
a service time's is a duration, an allocation's a size. Its ``value``, ``mean``,
``median``, ``p99``, ``low``, ``high``, ``scale`` and ``values`` take that
dimension's units and no other (``8KiB`` is not a service time); ``cv``,
``sigma``, ``mu``, ``shape`` and ``weight`` are plain numbers; an exponential's
``rate`` is the inverse (``250/s`` for a duration). A relative ``file`` is read
from ``base_dir`` (the scenario file's folder).

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

from sim.units import MAX_QUANTITY, Dimension, parse_as

BLOCK_SIZE = 4096
WEIGHT_TOLERANCE = 1e-9
"""How far a mixture's weights may add up from 1: float rounding of weights written with many digits."""
INVERSE: dict[Dimension, Dimension] = {
    "duration": "rate", "rate": "duration", "size": "number", "number": "number", "quantity": "quantity",
}
"""The dimension of an exponential's ``rate`` in a distribution of each dimension (a duration's is per second)."""


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
    def from_csv(cls, path: str | Path, column: str, dimension: Dimension = "quantity") -> Empirical:
        """The values of ``column`` of a CSV file, each read as a quantity of ``dimension``."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"file: no such file {str(path)!r}")
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                if reader.fieldnames is None or column not in reader.fieldnames:
                    raise ValueError(
                        f"column: {column!r} is not a column of {str(path)!r} "
                        f"(columns: {', '.join(reader.fieldnames or [])})"
                    )
                values = []
                for row in reader:
                    cell = row[column]
                    if cell == "":
                        continue
                    try:
                        values.append(parse_as(cell, dimension))
                    except ValueError as error:
                        raise ValueError(f"file: {str(path)!r} line {reader.line_num}: {error}") from None
        except UnicodeDecodeError:
            raise ValueError(f"file: {str(path)!r} is not a UTF-8 text file") from None
        except csv.Error as error:
            raise ValueError(f"file: {str(path)!r}: {error}") from None
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
    """With probability ``weights[i]``, a draw of ``components[i]``; the weights add up to 1
    (within :data:`WEIGHT_TOLERANCE`, then scaled to 1 exactly)."""

    name = "mixture"

    def __init__(self, components: Sequence[Distribution], weights: Sequence[float]) -> None:
        _require(len(components) > 0, "components", "[]", "needs at least one component")
        _require(len(components) == len(weights), "weights", list(weights), "needs one weight per component")
        w = np.asarray(weights, dtype=float)
        _require(bool(np.all(w >= 0)), "weights", list(weights), "must be >= 0")
        total = float(w.sum())
        _require(abs(total - 1) <= WEIGHT_TOLERANCE, "weights", list(weights), f"must add up to 1, not {total:.12g}")
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


def _take(p: dict[str, Any], key: str, dimension: Dimension, label: str = "") -> float:
    """Pop ``key`` and read it as a quantity of ``dimension``, naming the key (or ``label``) in any error."""
    try:
        return parse_as(p.pop(key), dimension)
    except ValueError as error:
        raise ValueError(f"{label or key}: {error}") from None


def _build_exp(p: dict[str, Any], dimension: Dimension, base_dir: Path | None) -> Distribution:
    if "mean" in p and "rate" not in p:
        return Exponential(_take(p, "mean", dimension))
    if "rate" in p and "mean" not in p:
        rate = _take(p, "rate", INVERSE[dimension])
        _require(rate > 0, "rate", rate, "must be > 0")
        return Exponential(1 / rate)
    raise ValueError("exp needs exactly one of 'mean' or 'rate'")


def _build_lognormal(p: dict[str, Any], dimension: Dimension, base_dir: Path | None) -> Distribution:
    keys = set(p)
    if keys >= {"median", "p99"}:
        return LogNormal.from_median_p99(_take(p, "median", dimension), _take(p, "p99", dimension))
    if keys >= {"mean", "cv"}:
        return LogNormal.from_mean_cv(_take(p, "mean", dimension), _take(p, "cv", "number"))
    if keys >= {"mu", "sigma"}:
        return LogNormal(_take(p, "mu", "number"), _take(p, "sigma", "number"))
    raise ValueError("lognormal needs 'median' and 'p99', or 'mean' and 'cv', or 'mu' and 'sigma'")


def _build_gamma(p: dict[str, Any], dimension: Dimension, base_dir: Path | None) -> Distribution:
    keys = set(p)
    if keys >= {"mean", "cv"}:
        return Gamma.from_mean_cv(_take(p, "mean", dimension), _take(p, "cv", "number"))
    if keys >= {"shape", "scale"}:
        return Gamma(_take(p, "shape", "number"), _take(p, "scale", dimension))
    if keys >= {"shape", "mean"}:
        shape = _take(p, "shape", "number")
        _require(shape > 0, "shape", shape, "must be > 0")
        return Gamma(shape, _take(p, "mean", dimension) / shape)
    raise ValueError("gamma needs 'mean' and 'cv', or 'shape' and 'scale', or 'shape' and 'mean'")


def _build_const(p: dict[str, Any], dimension: Dimension, base_dir: Path | None) -> Distribution:
    if "value" not in p:
        raise ValueError("const needs 'value'")
    return Constant(_take(p, "value", dimension))


def _build_uniform(p: dict[str, Any], dimension: Dimension, base_dir: Path | None) -> Distribution:
    if not {"low", "high"} <= set(p):
        raise ValueError("uniform needs 'low' and 'high'")
    return Uniform(_take(p, "low", dimension), _take(p, "high", dimension))


def _build_empirical(p: dict[str, Any], dimension: Dimension, base_dir: Path | None) -> Distribution:
    if "values" in p:
        raw = p.pop("values")
        if not isinstance(raw, list):
            raise ValueError(f"values: expected a list of numbers (got {raw!r})")
        return Empirical([_take({"v": v}, "v", dimension, label=f"values.{i}") for i, v in enumerate(raw)])
    if "file" in p:
        name = p.pop("file")
        if not isinstance(name, str) or not name:
            raise ValueError(f"file: expected the path of a CSV file (got {name!r})")
        if "column" not in p:
            raise ValueError("empirical from a file needs 'column'")
        return Empirical.from_csv(resolve_file(name, base_dir), str(p.pop("column")), dimension)
    raise ValueError("empirical needs 'values' or 'file' and 'column'")


def resolve_file(name: str | Path, base_dir: Path | None) -> Path:
    """The path of an empirical distribution's ``file``: as written if absolute, else under ``base_dir``
    (the scenario file's folder) if given, else under the working directory."""
    path = Path(name)
    return base_dir / path if base_dir is not None and not path.is_absolute() else path


def _build_mixture(p: dict[str, Any], dimension: Dimension, base_dir: Path | None) -> Distribution:
    raw = p.pop("components", None)
    if not isinstance(raw, list) or not raw:
        raise ValueError("mixture needs 'components', a list of distributions each with a 'weight'")
    components, weights = [], []
    for index, item in enumerate(raw):
        if not isinstance(item, Mapping) or "weight" not in item:
            raise ValueError(f"components.{index}: needs a 'weight' beside its 'dist'")
        item = dict(item)
        weights.append(_take(item, "weight", "number", label=f"components.{index}.weight"))
        try:
            components.append(parse_dist(item, base_dir=base_dir, dimension=dimension))
        except ValueError as error:
            raise ValueError(f"components.{index}.{error}") from None
    return Mixture(components, weights)


_BUILDERS: dict[str, Callable[[dict[str, Any], Dimension, Path | None], Distribution]] = {
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


def parse_dist(spec: object, base_dir: Path | None = None, dimension: Dimension = "quantity") -> Distribution:
    """A :class:`Distribution` from a scenario value (mapping, quantity or distribution).

    Raises ``ValueError`` with a one-line message naming the offending key.
    ``base_dir`` resolves relative ``file`` paths of empirical distributions.
    ``dimension`` is what the values measure (see the module docstring); the
    default, ``quantity``, takes any unit and is for values whose meaning is not
    known here (calibrated parameter sets). A distribution whose mean is above
    :data:`sim.units.MAX_QUANTITY`, or whose variance overflows, is an error.
    """
    if isinstance(spec, Distribution):
        return spec
    if isinstance(spec, (int, float, str)) and not isinstance(spec, bool):
        return Constant(parse_as(spec, dimension))
    if not isinstance(spec, Mapping):
        raise ValueError(f"expected a distribution such as {{dist: exp, mean: 1ms}}, got {spec!r}")
    params = dict(spec)
    kind = params.pop("dist", None)
    if not isinstance(kind, str) or kind not in _BUILDERS:
        known = ", ".join(sorted(_BUILDERS))
        raise ValueError(f"dist: expected the name of a distribution, one of {known} (got {kind!r})")
    dist = _BUILDERS[kind](params, dimension, base_dir)
    if params:
        raise ValueError(f"{next(iter(params))}: not a parameter of dist {kind!r}")
    _check_moments(dist, dimension)
    return dist


def _check_moments(dist: Distribution, dimension: Dimension) -> None:
    """Refuse a distribution whose draws the engine cannot hold (see :data:`sim.units.MAX_QUANTITY`)."""
    mean, variance = _or_inf(lambda: dist.mean), _or_inf(lambda: dist.variance)
    if not mean <= MAX_QUANTITY:
        raise ValueError(f"mean: the {dist.name} distribution's mean, {mean:g}, is above {MAX_QUANTITY:g}, "
                         f"the largest {dimension}")
    if not math.isfinite(variance):
        raise ValueError(f"variance: the {dist.name} distribution's variance overflows a float")


def _or_inf(moment: Callable[[], float]) -> float:
    try:
        return moment()
    except OverflowError:  # math.exp of a lognormal's moments
        return math.inf
