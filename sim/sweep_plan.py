"""The plan of a sweep: its points (a grid or a Latin hypercube) and the runs they expand to.

A *point* is a mapping of override keys to values, as ``cnsim run --set``
takes them, applied on top of a base scenario. :func:`parse_grid` and
:func:`expand_grid` make points from a grid, :func:`latin_hypercube` from
ranges. :func:`resolve_points` validates every point up front;
:func:`plan_runs` then makes each replication of each point one :class:`Run`,
keyed by :func:`sim.scenario.scenario_key` of its resolved scenario and
replication, so identical points run once. A run carries everything a worker
needs as plain data (see :mod:`sim.sweep_executors`).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml
from scipy.stats import qmc

from sim.scenario import (
    ScenarioBase,
    ScenarioError,
    first_lines,
    load_scenario,
    load_yaml,
    resolved,
    scenario_key,
)

Point = dict[str, Any]


# --- points -----------------------------------------------------------------------------


def parse_grid(items: Iterable[str]) -> dict[str, list[Any]]:
    """``["servers=1,2,4", "arrival_rate=0.5,0.9"]`` -> ``{"servers": [1, 2, 4], "arrival_rate": [0.5, 0.9]}``.

    The values after ``=`` are read as one YAML flow sequence, so each is a YAML
    scalar as in ``--set`` overrides (``1`` an int, ``0.5`` a float, ``2ms`` a
    string) and a value may itself be a flow mapping
    (``service={dist: exp, mean: 1ms},{dist: const, value: 1ms}``).
    """
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or not raw.strip():
            raise ScenarioError(f"grid item {item!r} must look like key=v1,v2,... (for example servers=1,2,4)")
        if key in grid:
            raise ScenarioError(f"grid item {item!r}: {key} is swept twice")
        try:
            values = load_yaml(f"[{raw}]", f"grid item {item!r}")
        except yaml.YAMLError as error:
            first = str(error).strip().splitlines()[0]
            raise ScenarioError(f"grid item {item!r}: values are not a comma-separated YAML list: {first}") from None
        if not values:
            raise ScenarioError(f"grid item {item!r}: no values")
        grid[key] = values
    return grid


def expand_grid(grid: Mapping[str, Iterable[Any]]) -> list[Point]:
    """The cartesian product of the grid, keys in the grid's order, the last key varying fastest.

    An empty grid gives one empty point: the base scenario alone.
    """
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(list(grid[key]) for key in keys))]


def latin_hypercube(ranges: Mapping[str, tuple[float, float]], n: int, seed: int) -> list[Point]:
    """``n`` points of a Latin hypercube over ``ranges`` (``key -> (low, high)``).

    Uses :class:`scipy.stats.qmc.LatinHypercube` driven by its own generator
    seeded with ``seed`` (no global state): each range is cut into ``n`` equal
    strata and every stratum of every key holds exactly one point. A range whose
    bounds are both ints gives ints, ``low..high`` inclusive, by flooring the
    same stratified uniforms over ``high - low + 1`` integers.
    """
    if n < 1:
        raise ValueError(f"latin_hypercube: n must be >= 1 (got {n})")
    if not ranges:
        raise ValueError("latin_hypercube: no ranges given")
    for key, (low, high) in ranges.items():
        if not low < high:
            raise ValueError(f"latin_hypercube: range of {key} must have low < high (got {low}, {high})")
    sampler = qmc.LatinHypercube(d=len(ranges), rng=np.random.default_rng(seed))
    unit = sampler.random(n)
    return [
        {key: _scale(u, low, high) for u, (key, (low, high)) in zip(row, ranges.items())}
        for row in unit
    ]


def _scale(u: float, low: float, high: float) -> float | int:
    if isinstance(low, int) and isinstance(high, int) and not isinstance(low, bool):
        return min(high, low + math.floor(u * (high - low + 1)))
    return float(low + u * (high - low))


def describe_point(point: Mapping[str, Any]) -> str:
    """``{"servers": 2, "arrival_rate": 0.5}`` -> ``"servers=2 arrival_rate=0.5"``."""
    return " ".join(f"{key}={_compact(value)}" for key, value in point.items()) or "(base scenario)"


def _compact(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


# --- planning ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One replication of one point, with everything a worker needs as plain data."""

    point: Point
    replication: int
    key: str
    scenario: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "replication": self.replication, "key": self.key}


def resolve_points(
    base: Mapping[str, Any], overrides: Mapping[str, Any], points: list[Point]
) -> list[ScenarioBase]:
    """Validate every point on top of ``base`` and ``overrides``; all errors are raised together.

    Each line of the :class:`ScenarioError` names the point, then the field and
    the value that failed, so a bad value stops the sweep before any run starts.
    """
    scenarios: list[ScenarioBase] = []
    errors: list[str] = []
    for point in points:
        try:
            scenarios.append(load_scenario(base, {**overrides, **point}))
        except ScenarioError as error:
            lines = str(error).splitlines()
            errors.extend(f"grid point {describe_point(point)}: {line}" for line in lines)
    if errors:
        raise ScenarioError(first_lines(list(dict.fromkeys(errors))))
    return scenarios


def plan_runs(
    scenarios: list[ScenarioBase], points: list[Point], replications: int | None
) -> list[Run]:
    """Every (point, replication) run, once per distinct key (identical points run once)."""
    if replications is not None and replications < 1:
        raise ValueError(f"replications: must be >= 1 (got {replications})")
    runs: dict[str, Run] = {}
    for scenario, point in zip(scenarios, points):
        data = resolved(scenario)
        count = scenario.replications if replications is None else replications
        for index in range(count):
            key = scenario_key(scenario, index)
            runs.setdefault(key, Run(point, index, key, data))
    return list(runs.values())
