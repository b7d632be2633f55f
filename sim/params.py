"""Calibrated parameters by name: the defaults models take from ``calibration/params/``.

Each parameter set is one JSON file, ``calibration/params/<name>.json``, written
by a fit over a data set in ``calibration/data/<host>/``. Its keys:

* ``name``, ``description``, ``unit``;
* ``dataset``: the raw data it was fitted to (path under the repository) and
  ``measured``: host, date, versions, commands and load average of the measurement;
* ``kind``: ``distribution`` (key ``distribution``: a spec for
  :func:`sim.dists.parse_dist`), ``linear`` (keys ``x``, ``y``, ``intercept``,
  ``slope``: y = intercept + slope x), ``constant`` (key ``value``) or
  ``binned`` (keys ``x``, ``edges`` and ``distributions``: a distribution for
  each range of x, ``edges[i] <= x < edges[i + 1]``, the last range open),
  ``table`` (keys ``x``, ``y`` and ``points``: measured ``[x, y]`` pairs by
  increasing x, read between points by linear interpolation, and optionally
  ``beyond``, ``proportional`` or ``flat``, past the last: see :class:`Table`)
  or ``multilinear`` (keys ``y``, ``intercept`` and ``coefficients``, a number
  for each variable: y = intercept + sum of coefficient times variable);
* ``fit``: method and candidates compared (for example AIC per family), and
  ``goodness_of_fit``: the test and its result.

A model's docstring names the parameter sets it loads, so a reader can follow
every default back to a measurement.

Where the files are read from (:func:`params_folder`), first found wins:

1. the folder in the environment variable ``CNSIM_PARAMS`` (:data:`PARAMS_VARIABLE`),
   which :func:`set_params_source` sets, so that a user's own parameter sets
   replace the shipped ones (a sweep's worker processes inherit it);
2. the ``params/`` folder of the package that the one entry point of the group
   ``cnsim.params`` (:data:`PARAMS_GROUP`) names; cnsim's ``pyproject.toml``
   registers ``calibration``, whose ``params/*.json`` are package data.

The engine thus imports no calibration code; see :mod:`sim.sources`. Each file
is read once per folder and kept (``lru_cache``); every call returns a fresh copy.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

from sim import sources
from sim.dists import Constant, Distribution, parse_dist

PARAMS_GROUP = "cnsim.params"
"""Entry-point group whose one entry names the package holding ``params/<name>.json``."""
PARAMS_VARIABLE = "CNSIM_PARAMS"
"""Environment variable naming a folder of ``<name>.json`` files to read instead."""
PARAMS_SUBFOLDER = "params"


def params_folder() -> Traversable:
    """The folder parameter sets are read from (see the module docstring)."""
    return sources.folder(PARAMS_GROUP, PARAMS_VARIABLE, PARAMS_SUBFOLDER)


def set_params_source(folder: str | Path | None) -> None:
    """Read parameter sets from ``folder`` (its ``<name>.json`` files) from now on, in this process and
    in processes it starts afterwards: sets ``CNSIM_PARAMS``; None unsets it (back to the shipped ones)."""
    sources.set_folder(PARAMS_VARIABLE, folder)


def available() -> list[str]:
    """Names of every parameter set in :func:`params_folder`."""
    return _available(params_folder())


def _available(folder: Traversable) -> list[str]:
    return sorted(entry.name.removesuffix(".json") for entry in folder.iterdir() if entry.name.endswith(".json"))


@cache
def _read(folder: Traversable, name: str) -> str:
    entry = folder / f"{name}.json"
    if not entry.is_file():
        raise KeyError(f"no calibrated parameter set {name!r} (available: {', '.join(_available(folder)) or 'none'})")
    return entry.read_text()


def params_hashes() -> dict[str, str]:
    """SHA-256 of the bytes of every parameter set in :func:`params_folder`, by name.

    What a result was computed from, as far as calibration goes: two runs whose
    hashes agree read the same numbers. Computed once per folder and kept.
    """
    # The folders files() and Path give are hashable; typeshed's Traversable does not say so.
    return dict(_hashes(params_folder()))  # type: ignore[arg-type]


@cache
def _hashes(folder: Traversable) -> tuple[tuple[str, str], ...]:
    return tuple((name, hashlib.sha256(_read(folder, name).encode()).hexdigest())  # type: ignore[arg-type]
                 for name in _available(folder))


def load_params(name: str) -> dict[str, Any]:
    """The parameter set ``name`` as a dict (a fresh copy each call)."""
    # The folders files() and Path give are hashable; typeshed's Traversable does not say so.
    return json.loads(_read(params_folder(), name))  # type: ignore[arg-type]


def _of_kind(name: str, kind: str) -> dict[str, Any]:
    params = load_params(name)
    if params.get("kind") != kind:
        raise ValueError(f"parameter set {name!r} is a {params.get('kind')!r}, not a {kind!r}")
    return params


def param_dist(name: str) -> Distribution:
    """The fitted distribution of parameter set ``name``."""
    return parse_dist(_of_kind(name, "distribution")["distribution"])


def param_as_dist(name: str) -> Distribution:
    """Parameter set ``name`` as a distribution to sample: its fit, or its measured constant as a constant."""
    if load_params(name).get("kind") == "constant":
        return Constant(param_value(name))
    return param_dist(name)


def param_linear(name: str) -> tuple[float, float]:
    """(intercept, slope) of the fitted line y = intercept + slope x of parameter set ``name``."""
    params = _of_kind(name, "linear")
    return float(params["intercept"]), float(params["slope"])


def param_value(name: str) -> float:
    """The measured constant of parameter set ``name``."""
    return float(_of_kind(name, "constant")["value"])


def param_multilinear(name: str) -> tuple[float, dict[str, float]]:
    """(intercept, coefficient by variable) of the fitted plane of parameter set ``name`` (kind ``multilinear``)."""
    params = _of_kind(name, "multilinear")
    return float(params["intercept"]), {str(k): float(v) for k, v in params["coefficients"].items()}


@dataclass(frozen=True)
class Table:
    """Measured points ``(xs[i], ys[i])`` of y against x, by increasing x.

    :meth:`at` interpolates linearly between neighbouring points; below the
    first point it is ``ys[0]``; beyond the last, with ``beyond`` =
    ``"proportional"`` (the default: a cost by size) it grows in proportion to
    x (``ys[-1] * x / xs[-1]``: a cost per unit of x that no longer changes),
    with ``"flat"`` it stays ``ys[-1]``. A parameter set names its policy in
    ``beyond``.
    """

    x: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    beyond: str = "proportional"

    def at(self, x: float) -> float:
        xs, ys = self.xs, self.ys
        if x <= xs[0]:
            return ys[0]
        if x >= xs[-1]:
            return ys[-1] * x / xs[-1] if self.beyond == "proportional" else ys[-1]
        i = bisect.bisect_right(xs, x)
        x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
        return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def param_table(name: str) -> Table:
    """The measured points of parameter set ``name`` (kind ``table``)."""
    params = _of_kind(name, "table")
    points = [(float(x), float(y)) for x, y in params["points"]]
    xs = tuple(x for x, _ in points)
    if not points or list(xs) != sorted(set(xs)) or xs[0] <= 0:
        raise ValueError(f"parameter set {name!r}: points must have positive, strictly increasing x")
    beyond = str(params.get("beyond", "proportional"))
    if beyond not in ("proportional", "flat"):
        raise ValueError(f"parameter set {name!r}: beyond must be proportional or flat (got {beyond!r})")
    return Table(str(params["x"]), xs, tuple(y for _, y in points), beyond)


@dataclass(frozen=True)
class Binned:
    """A distribution for each range of a variable x: ``distributions[i]`` holds for ``edges[i] <= x < edges[i + 1]``
    (the last range has no upper end)."""

    x: str
    edges: tuple[float, ...]
    distributions: tuple[Distribution, ...]

    def index(self, x: float) -> int:
        """The range x falls in; below the first edge counts as the first range."""
        return max(bisect.bisect_right(self.edges, x) - 1, 0)

    def of(self, x: float) -> Distribution:
        return self.distributions[self.index(x)]


def param_binned(name: str) -> Binned:
    """The distributions by range of parameter set ``name`` (kind ``binned``)."""
    params = _of_kind(name, "binned")
    edges = tuple(float(edge) for edge in params["edges"])
    distributions = tuple(parse_dist(spec) for spec in params["distributions"])
    if len(edges) != len(distributions) or list(edges) != sorted(edges):
        raise ValueError(f"parameter set {name!r}: edges must be increasing, one per distribution")
    return Binned(str(params["x"]), edges, distributions)
