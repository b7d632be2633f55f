"""What the command line prints for people: the table of ``cnsim run`` and the scenario of
``cnsim scenarios --show``.

The table gives each number in the unit its metric's name carries
(:data:`sim.units.UNIT_SUFFIXES`: ``_s``, ``_bytes``, ``_per_second``...):
durations in s, ms, µs or ns, sizes in B, KiB, MiB or GiB, rates per second,
with :data:`DIGITS` significant digits, and the half-width of the confidence
interval in the same unit to the same decimal places.

A shown scenario is YAML that loads back as the same scenario: quantities are
written with units exactly (:func:`sim.units.write_quantity`: ``50us``), and a
null that stands for a calibrated parameter set (a field marked with
:func:`sim.scenario.calibrated`) stays null, with a comment naming the set and
its value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from sim.dists import SAME_UNIT_PARAMETERS
from sim.params import param_multilinear, load_params, param_dist, param_linear, param_table, param_value
from sim.scenario import CALIBRATED, ScenarioBase, field_unit, resolved
from sim.stats import HEADLINE_STATISTICS
from sim.units import BYTES, DURATION_UNITS, PER_SECOND, SECONDS, SIZE_UNITS, split_unit, write_quantity

if TYPE_CHECKING:
    from sim.run import Replications

DIGITS = 4
"""Significant digits of a number in the table, and of a calibrated value in a comment."""

DISPLAY_UNITS: dict[str, tuple[tuple[str, float], ...]] = {
    SECONDS: tuple((f" {unit}", DURATION_UNITS[unit]) for unit in ("s", "ms", "µs", "ns")),
    BYTES: tuple((f" {unit}", SIZE_UNITS[unit]) for unit in ("TiB", "GiB", "MiB", "KiB", "B")),
    PER_SECOND: (("/s", 1.0),),
}
"""The units of the table, largest first, each with its scale in seconds, bytes or per second."""


# --- the table of `cnsim run` ------------------------------------------------------------


def table_unit(metric: str, statistic: str) -> tuple[str | None, float, bool]:
    """(unit, factor to it, per second) of a statistic of a metric: the unit of the metric's name (a
    name in ``_ms`` or ``_us`` turned into seconds), per second for a ``rate`` (a counter of seconds
    counts ``ms/s``, a counter of events ``/s``)."""
    unit = split_unit(metric)[1]
    factor = 1.0
    if unit in DURATION_UNITS:
        unit, factor = SECONDS, DURATION_UNITS[unit]
    if statistic == "rate":
        return (PER_SECOND, 1.0, False) if unit is None else (unit, factor, True)
    return unit, factor, False


def format_estimate(mean: float, half_width: float, unit: str | None, per_second: bool = False) -> str:
    """``mean ± half-width`` for the table (``10.43 s ± 1.04 s``, ``234.9 µs ± 2.3 µs``): the mean in
    the unit that suits it (``unit`` is ``"s"``, ``"bytes"``, ``"1/s"`` or None; ``per_second``: that
    unit per second), with :data:`DIGITS` significant digits, the half-width in that unit to as many
    decimal places; no ``±`` when the half-width is NaN (one replication). NaN means ``-``."""
    if math.isnan(mean):
        return "-"
    rounded = float(f"{mean:.{DIGITS}g}")
    suffix, scale = "", 1.0
    ladder = DISPLAY_UNITS.get(unit or "")
    if ladder and rounded == 0:
        suffix, scale = next((s, f) for s, f in ladder if f == 1)
    elif ladder:
        suffix, scale = next(((s, f) for s, f in ladder if abs(rounded) >= f), ladder[-1])
    suffix += "/s" if per_second else ""
    value = rounded / scale
    places = 0 if value == 0 else max(0, DIGITS - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:,.{places}f}{suffix}"
    if not math.isnan(half_width):
        text += f" ± {half_width / scale:,.{places}f}{suffix}"
    return text


def render_table(outcome: Replications, show_all: bool = False) -> str:
    """The estimates as an aligned text table: one row per metric, one column per statistic.

    A ``count`` is a whole number of observations or events, without its half-width, except for a
    counter of a quantity (``go.gc.cpu_s``: it has a ``rate``), whose count is an amount in its unit."""
    scenario = outcome.scenario
    replications = len(outcome.results)
    if replications > 1:
        confidence = f"{outcome.confidence * 100:g} %"
        what = f"{replications} replications, mean ± half-width of the {confidence} confidence interval"
    else:
        what = "1 replication, no confidence interval"
    header = f"{scenario.name or scenario.model}: {scenario.model}, seed {scenario.seed}, {what}\n"
    counters = {item.metric for item in outcome.estimates if item.statistic == "rate"}
    statistics: list[str] = []
    by_metric: dict[str, dict[str, str]] = {}
    for item in outcome.estimates:
        if not show_all and item.statistic not in HEADLINE_STATISTICS + ("rate",):
            continue
        if item.statistic not in statistics:
            statistics.append(item.statistic)
        unit, factor, per_second = table_unit(item.metric, item.statistic)
        if item.statistic == "count" and (unit is None or item.metric not in counters):
            text = f"{item.mean:,.0f}" if not math.isnan(item.mean) else "-"
        else:
            half_width = item.half_width * factor if replications > 1 else math.nan
            text = format_estimate(item.mean * factor, half_width, unit, per_second)
        by_metric.setdefault(item.metric, {})[item.statistic] = text
    columns = ["metric", *statistics]
    rows = [[metric, *(cells.get(s, "") for s in statistics)] for metric, cells in by_metric.items()]
    widths = [max(len(str(row[i])) for row in [columns, *rows]) for i in range(len(columns))]
    lines = [header, "  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


# --- `cnsim scenarios --show` ------------------------------------------------------------


def _the_set(name: str) -> Any:
    kind = load_params(name).get("kind")
    if kind == "distribution":
        return param_dist(name).spec()
    if kind == "constant":
        return param_value(name)
    if kind == "linear":
        return list(param_linear(name))
    raise ValueError(f"parameter set {name!r} is a {kind!r}, which a field does not take as it is")


def _inverse_slope(name: str) -> float:
    slope = param_linear(name)[1]
    if slope <= 0:
        raise ValueError(f"parameter set {name!r}: slope must be > 0 (got {slope})")
    return 1 / slope


def _half_intercept(name: str) -> list[float]:
    intercept, slope = param_linear(name)
    return [intercept / 2, slope]


def _table_values(name: str) -> list[float]:
    return list(param_table(name).ys)


def _coefficient(variable: str) -> Callable[[str], float]:
    return lambda name: param_multilinear(name)[1][variable]


DERIVED: dict[str, tuple[str, Callable[[str], Any]]] = {
    "": ("{name}", _the_set),
    "1/slope": ("1 / slope of {name}", _inverse_slope),
    "intercept/2": ("{name} with half its intercept", _half_intercept),
    "coefficients.objects": ("the coefficient of objects in {name}", _coefficient("objects")),
    "coefficients.pointers": ("the coefficient of pointers in {name}", _coefficient("pointers")),
    "table": ("{name}, read at its x (these at its measured points)", _table_values),
}
"""How a field's calibrated value follows from its parameter set (``derived`` of
:func:`sim.scenario.calibrated`): how it reads, and the value from the set's name."""


def with_units(value: Any, unit: str | None, digits: int | None = None) -> Any:
    """A resolved scenario value with its quantities written with ``unit`` (:func:`sim.units.write_quantity`):
    a number, or the parameters of a distribution spec in the unit of its draws; ``digits`` as there."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return value if unit is None else write_quantity(float(value), unit, digits)
    if isinstance(value, list):
        return [with_units(item, unit, digits) for item in value]
    if isinstance(value, dict) and "dist" in value:
        return {
            key: [with_units(c, unit, digits) for c in item] if key == "components"
            else with_units(item, unit if key in SAME_UNIT_PARAMETERS else None, digits)
            for key, item in value.items()
        }
    return value


class _Rounded(yaml.SafeDumper):
    """Writes floats with :data:`DIGITS` significant digits (for comments, which are not read back)."""


def _rounded_float(dumper: yaml.SafeDumper, value: float) -> yaml.ScalarNode:
    text = f"{value:.{DIGITS}g}"
    if "e" in text and "." not in text:  # YAML 1.1 reads 1e-06 as a string, 1.0e-06 as a float
        text = text.replace("e", ".0e")
    return dumper.represent_scalar("tag:yaml.org,2002:float", text)


_Rounded.add_representer(float, _rounded_float)

P99_Z = NormalDist().inv_cdf(0.99)


def readable(value: Any) -> Any:
    """A distribution spec with each lognormal by its median and p99 instead of mu and sigma (the same
    distribution: :meth:`sim.dists.LogNormal.from_median_p99`)."""
    if isinstance(value, list):
        return [readable(item) for item in value]
    if not isinstance(value, dict):
        return value
    if value.get("dist") == "lognormal" and {"mu", "sigma"} <= set(value):
        rest = {key: item for key, item in value.items() if key not in ("dist", "mu", "sigma")}
        mu, sigma = value["mu"], value["sigma"]
        return {"dist": "lognormal", "median": math.exp(mu), "p99": math.exp(mu + P99_Z * sigma), **rest}
    return {key: readable(item) for key, item in value.items()}


def _flow(value: Any, dumper: type[yaml.SafeDumper] = yaml.SafeDumper) -> str:
    """One value as one line of YAML (flow style)."""
    text = yaml.dump(value, Dumper=dumper, default_flow_style=True, width=math.inf, allow_unicode=True,
                     sort_keys=False)
    return text.removesuffix("\n...\n").strip()


def calibrated_note(model: BaseModel, field: FieldInfo) -> str | None:
    """``calibrated: SET = VALUE`` for a null field marked with :func:`sim.scenario.calibrated`, the value
    rounded to :data:`DIGITS` digits; None for a field without the mark or whose ``unless`` field is given."""
    extra = field.json_schema_extra
    if not isinstance(extra, dict) or CALIBRATED not in extra:
        return None
    unless = extra.get("unless")
    if isinstance(unless, str) and getattr(model, unless, None) is not None:
        return None
    name = str(extra[CALIBRATED])
    template, value_of = DERIVED[str(extra.get("derived", ""))]
    what = template.format(name=name)
    try:
        value = value_of(name)
    except (KeyError, ValueError) as error:  # a parameter set missing from CNSIM_PARAMS, or unfit
        return f"calibrated: {what} (unavailable: {error.args[0] if error.args else error})"
    return f"calibrated: {what} = {_flow(with_units(readable(value), field_unit(field), DIGITS), _Rounded)}"


def _is_models(value: object) -> bool:
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return bool(items) and all(isinstance(item, BaseModel) for item in items)


def _lines(model: BaseModel, data: dict[str, Any], indent: str) -> list[str]:
    """``data`` (``model`` resolved) as YAML lines: a mapping per model, in block style; values in flow style."""
    fields = type(model).model_fields
    lines: list[str] = []
    for name, value in data.items():
        attribute = getattr(model, name, None)
        if isinstance(attribute, BaseModel):
            inner = _lines(attribute, value, indent + "  ")
            lines += [f"{indent}{name}:", *inner] if inner else [f"{indent}{name}: {{}}"]
        elif isinstance(attribute, dict) and _is_models(attribute):
            lines.append(f"{indent}{name}:")
            for key, item in attribute.items():
                lines += [f"{indent}  {_flow(key)}:", *_lines(item, value[key], indent + "    ")]
        elif isinstance(attribute, (list, tuple)) and _is_models(attribute):
            lines.append(f"{indent}{name}:")
            for item, item_data in zip(attribute, value):
                inner = _lines(item, item_data, indent + "  ")
                lines += [f"{indent}- {inner[0].removeprefix(indent + '  ')}", *inner[1:]]
        else:
            field = fields.get(name)
            unit = field_unit(field) if field is not None else None
            note = calibrated_note(model, field) if value is None and field is not None else None
            lines.append(f"{indent}{name}: {_flow(with_units(value, unit))}" + (f"  # {note}" if note else ""))
    return lines


def show_scenario(scenario: ScenarioBase) -> str:
    """The scenario as YAML with every default filled in: quantities with units (read back exactly),
    and beside each null that stands for a calibrated parameter set, a comment with the set and its value.
    Loaded again, the text is the same scenario."""
    return "\n".join(_lines(scenario, resolved(scenario), "")) + "\n"
