"""Altair charts of a sweep: percentiles against a swept parameter, and latency CDFs.

Both charts start from the tidy frame of :func:`sim.sweep.load_sweep` and
reduce over replications before drawing:

* a statistic at a point is the mean over replications, with a Student-t
  confidence interval (:func:`sim.run.t_interval`), valid because replications
  are independent and identically distributed;
* a CDF at a point averages each stored quantile over replications
  (Vincentization: Ratcliff, "Group reaction time distributions and an analysis
  of distribution statistics", Psychological Bulletin 86(3), 1979), which keeps
  the shape of the distributions where averaging probabilities would blur it.
  The quantiles are the histogram summary's p1..p99, p99.9 and p99.99
  (:data:`sim.stats.PERCENTILE_LEVELS`).

A swept parameter's values are ordered by what they measure, not as text:
sweeps keep values as given (``64MiB``, ``2ms``, ``900/s``), and
:func:`value_order` reads them with :func:`sim.units.parse_quantity`, so
``64MiB`` comes before ``4GiB``; values that are no quantity (a mapping, a
word) follow the quantities, as text.

The data is inlined in each chart under plain field names (``x``, ``mean``,
``point``...) so that dotted parameter names never reach Vega-Lite, where a dot
means a nested field. Charts are saved as HTML with the Vega libraries inlined
and as PNG through vl-convert, both without the network.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import altair as alt
import numpy as np
import pandas as pd

from sim.run import DEFAULT_CONFIDENCE, t_interval
from sim.stats import PERCENTILE_LEVELS, percentile_name
from sim.sweep import PARAM_PREFIX, load_sweep, param_columns
from sim.units import parse_quantity, split_unit

DEFAULT_METRIC = "requests.sojourn_s"
MAX_FACETS = 8
FACET_COLUMNS = 3
WIDTH = 360
HEIGHT = 260
PNG_SCALE = 2

WORDS = {"sojourn": "sojourn time", "wait": "waiting time", "in_system": "jobs in system"}


# --- labels -----------------------------------------------------------------------------


def metric_label(metric: str) -> str:
    """``"requests.sojourn_s"`` -> ``"sojourn time (s)"``: the last part in words, with its unit."""
    words, unit = split_unit(metric.rsplit(".", 1)[-1])
    words = WORDS.get(words, words.replace("_", " "))
    return f"{words} ({unit})" if unit else words


def param_label(column: str) -> str:
    """``"param.arrival_rate"`` -> ``"arrival rate (1/s)"``; the unit comes from the name's suffix."""
    name = column.removeprefix(PARAM_PREFIX)
    if name.endswith("_rate"):
        return f"{name.replace('_', ' ')} (1/s)"
    words, unit = split_unit(name)
    words = words.replace("_", " ")
    return f"{words} ({unit})" if unit else words


def _point_label(values: Sequence[Any], columns: Sequence[str]) -> str:
    return ", ".join(f"{c.removeprefix(PARAM_PREFIX)}={_show(v)}" for c, v in zip(columns, values)) or "base"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return "none" if math.isnan(value) else f"{value:.4g}"
    if value is None:
        return "none"
    return str(value)


# --- order ------------------------------------------------------------------------------


def value_order(value: Any) -> tuple[int, float, str]:
    """Sort key of a parameter's value: numbers and quantities with a unit (``"64MiB"``, ``"2ms"``,
    ``"900/s"``, read by :func:`sim.units.parse_quantity`) by their value, then the other values by
    their text, then missing ones."""
    number = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if value is None or value is pd.NA or (number and math.isnan(value)):
        return (2, 0.0, "")
    if number:
        return (0, float(value), str(value))
    if isinstance(value, str):
        try:
            return (0, parse_quantity(value), value)
        except ValueError:
            pass
    return (1, 0.0, str(value))


def _ranks(values: pd.Series) -> pd.Series:
    """Each value's rank in :func:`value_order` (equal values, equal ranks), for ``sort_values(key=...)``."""
    order = {key: rank for rank, key in enumerate(sorted({value_order(value) for value in values}))}
    return values.map(lambda value: order[value_order(value)])


def _sorted_distinct(values: pd.Series) -> list[Any]:
    """The distinct values in :func:`value_order`."""
    return sorted(dict.fromkeys(values), key=value_order)


def _as_text(values: pd.Series) -> tuple[list[str], list[str]]:
    """The values as text (:func:`_show`) for a nominal field, and the distinct texts in
    :func:`value_order` for its ``sort``: Vega-Lite takes a sort array of one type only, and a
    column may mix numbers and strings (``0.2`` and ``30/min``)."""
    return [_show(value) for value in values], list(dict.fromkeys(_show(value) for value in _sorted_distinct(values)))


# --- reductions -------------------------------------------------------------------------


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _resolve_param(frame: pd.DataFrame, param: str | None) -> str:
    """The x parameter: the one named (with or without ``param.``), else the first numeric one
    taking two values or more (missing values aside), else the first numeric one, else the first."""
    columns = param_columns(frame)
    if not columns:
        raise ValueError("the sweep has no swept parameter (no param.* column) to put on the x axis")
    if param is not None:
        column = param if param.startswith(PARAM_PREFIX) else f"{PARAM_PREFIX}{param}"
        if column not in columns:
            shown = ", ".join(c.removeprefix(PARAM_PREFIX) for c in columns)
            raise ValueError(f"no swept parameter {param!r} (swept: {shown})")
        return column
    numeric = [column for column in columns if _is_numeric(frame[column])]
    varying = [column for column in numeric if frame[column].nunique() >= 2]
    return (varying or numeric or columns)[0]


def _select(frame: pd.DataFrame, metric: str, statistics: Sequence[str]) -> pd.DataFrame:
    rows = frame[(frame["metric"] == metric) & frame["statistic"].isin(list(statistics))]
    if rows.empty:
        metrics = ", ".join(sorted(frame["metric"].unique()))
        raise ValueError(f"no statistic {list(statistics)} of metric {metric!r} in the sweep (metrics: {metrics})")
    return rows


def _groups(rows: pd.DataFrame, by: list[str]):
    """Group rows by ``by`` (missing values kept), ordered by the values in :func:`value_order`."""
    groups = list(rows.groupby(by, dropna=False, sort=False))
    return sorted(groups, key=lambda group: tuple(value_order(value) for value in group[0]))


def percentile_summary(
    frame: pd.DataFrame,
    metric: str = DEFAULT_METRIC,
    statistics: Sequence[str] = ("p50", "p90", "p99"),
    confidence: float = DEFAULT_CONFIDENCE,
) -> pd.DataFrame:
    """One row per (point, statistic): the params, mean over replications, CI low/high and n."""
    params = param_columns(frame)
    records = []
    for keys, group in _groups(_select(frame, metric, statistics), [*params, "statistic"]):
        mean, half, n = t_interval(group["value"], confidence)
        half = 0.0 if math.isnan(half) else half
        records.append({**dict(zip([*params, "statistic"], keys)), "mean": mean, "low": mean - half,
                        "high": mean + half, "n": n})
    return pd.DataFrame.from_records(records)


def quantile_summary(frame: pd.DataFrame, metric: str = DEFAULT_METRIC) -> pd.DataFrame:
    """One row per (point, stored percentile): the params, ``probability`` = level / 100 and
    ``value`` = the quantile averaged over replications (Vincentization), and n."""
    levels = {percentile_name(level): level for level in PERCENTILE_LEVELS}
    params = param_columns(frame)
    records = []
    for keys, group in _groups(_select(frame, metric, list(levels)), [*params, "statistic"]):
        point = dict(zip([*params, "statistic"], keys))
        statistic = point.pop("statistic")
        records.append({**point, "probability": levels[statistic] / 100, "value": group["value"].mean(),
                        "n": len(group)})
    return pd.DataFrame.from_records(records).sort_values([*params, "probability"], kind="stable", key=_ranks)


def _inline(frame: pd.DataFrame) -> alt.InlineData:
    """The frame as inline records (NaN as null), which skips Altair's row limit and its
    global data transformers."""
    clean = frame.astype(object).where(frame.notna(), None)
    return alt.InlineData(values=clean.to_dict(orient="records"))


def _label_points(table: pd.DataFrame, columns: list[str], field: str) -> list[str]:
    """Add column ``field`` naming each row's point by ``columns``; returns the distinct labels
    ordered by the columns' values (:func:`value_order`)."""
    labels = [_point_label(values, columns) for values in table[columns].itertuples(index=False)]
    table[field] = labels if columns else "base"
    if not columns:
        return ["base"]
    distinct = table.drop_duplicates(columns).sort_values(columns, kind="stable", key=_ranks)
    return list(distinct[field])


# --- charts -----------------------------------------------------------------------------


def _log_domain(summary: pd.DataFrame, reach: float = 10.0) -> alt.Scale:
    """A log scale spanning the means and their intervals, but at most ``reach`` times beyond the
    means, so that one wide interval (two replications give t = 12.7) does not flatten the lines."""
    if summary.empty:
        return alt.Scale(type="log")
    least, most = float(summary["mean"].min()), float(summary["mean"].max())
    positive = summary["low"][summary["low"] > 0]
    low = max(min(float(positive.min()), least) / 1.3 if len(positive) else 0.0, least / reach)
    high = min(max(float(summary["high"].max()), most) * 1.3, most * reach)
    return alt.Scale(type="log", domain=[low, high], nice=False)


def percentile_vs_param(
    frame: pd.DataFrame,
    param: str | None = None,
    metric: str = DEFAULT_METRIC,
    statistics: Sequence[str] = ("p50", "p90", "p99"),
) -> alt.TopLevelMixin:
    """Statistics of ``metric`` against one swept parameter, log y, one colour per statistic.

    Each mark is the mean over replications with its 95 % Student-t interval as
    an error bar; the log axis spans the means and at most a decade beyond, and
    longer bars are cut at its edge.
    The other swept parameters make facets, one per combination, when there are
    at most :data:`MAX_FACETS`; beyond that (a Latin hypercube) points are drawn
    unjoined, since neighbours on x differ in the other parameters.
    """
    x_column = _resolve_param(frame, param)
    summary = percentile_summary(frame, metric, statistics)
    summary = summary[summary["mean"] > 0].copy()
    y_scale = _log_domain(summary)
    summary["low"] = summary["low"].clip(lower=y_scale.domain[0])
    others = [column for column in param_columns(frame) if column != x_column]
    facets = _label_points(summary, others, "point")
    summary["x"] = summary[x_column]
    numeric = _is_numeric(frame[x_column])
    integral = pd.api.types.is_integer_dtype(frame[x_column])
    x_sort: Any = alt.Undefined
    if not numeric:  # values as given (64MiB, 2ms): placed, and joined, in value_order
        summary["x_rank"] = _ranks(summary["x"])
        summary["x"], x_sort = _as_text(summary["x"])
    x = alt.X("x:Q" if numeric else "x:N", title=param_label(x_column), sort=x_sort,
              scale=alt.Scale(zero=False, padding=12) if numeric else alt.Undefined,
              axis=alt.Axis(tickMinStep=1, format="d") if integral else alt.Undefined)
    y_title = f"{metric_label(metric)}, mean of replications"
    colour = alt.Color("statistic:N", sort=list(statistics), title="statistic")
    base = alt.Chart().encode(x=x, color=colour)
    tooltip = [alt.Tooltip("point:N"), alt.Tooltip("x:Q" if numeric else "x:N", title=param_label(x_column)),
               "statistic:N",
               alt.Tooltip("mean:Q", format=".4g"), alt.Tooltip("low:Q", format=".4g"),
               alt.Tooltip("high:Q", format=".4g"), "n:Q"]
    joined = len(facets) <= MAX_FACETS
    marks = base.mark_line(point=True) if joined else base.mark_point(filled=True)
    centre = marks.encode(y=alt.Y("mean:Q", scale=y_scale, title=y_title), tooltip=tooltip,
                          order=alt.Undefined if numeric else alt.Order("x_rank:Q"))
    bars = base.mark_errorbar(ticks=True, clip=True).encode(y=alt.Y("low:Q", scale=y_scale, title=y_title),
                                                            y2="high:Q")
    layer = alt.layer(bars, centre, data=_inline(summary)).properties(width=WIDTH, height=HEIGHT)
    title = alt.Title(
        f"{metric}: {', '.join(statistics)} vs {x_column.removeprefix(PARAM_PREFIX)}",
        subtitle=f"mean of replications, error bars {DEFAULT_CONFIDENCE:.0%} Student-t intervals",
    )
    if joined and others:
        facet = alt.Facet("point:N", sort=facets, title=None)
        return layer.facet(facet=facet, columns=FACET_COLUMNS).properties(title=title)
    return layer.properties(title=title)


def _cdf_colour(values: pd.Series, column: str) -> tuple[Any, alt.Color]:
    """The ``colour`` field for a parameter's values, and its encoding: a viridis ramp (cut before
    its faint yellow end) for numbers, ordinal when there are few values; otherwise the values as
    text on a categorical palette, in :func:`value_order`."""
    present = values.dropna()
    if _is_numeric(present):
        ramp = alt.Scale(scheme={"name": "viridis", "extent": [0, 0.85]})
        kind = "O" if present.nunique() <= 10 else "Q"
        return values, alt.Color(f"colour:{kind}", title=param_label(column), scale=ramp)
    scheme: Literal["tableau10", "tableau20"] = "tableau10" if present.nunique() <= 10 else "tableau20"
    texts, order = _as_text(values)
    return texts, alt.Color("colour:N", title=param_label(column), scale=alt.Scale(scheme=scheme), sort=order)


def latency_cdf(frame: pd.DataFrame, metric: str = DEFAULT_METRIC, by: str | None = None) -> alt.TopLevelMixin:
    """The distribution of ``metric`` at each grid point as a CDF, x on a log scale.

    Each line joins (quantile averaged over replications, level / 100) for the
    stored percentile levels, one line per point. Colour is ``by`` (a swept
    parameter), by default the first numeric one; the first other parameter
    with at most four values sets the dash, and the tooltip names the point.
    """
    summary = quantile_summary(frame, metric)
    summary = summary[summary["value"] > 0].copy()
    params = param_columns(frame)
    _label_points(summary, params, "point")
    encoding: dict[str, Any] = {}
    if params:
        colour_column = _resolve_param(frame, by)
        summary["colour"], encoding["color"] = _cdf_colour(summary[colour_column], colour_column)
        dashed = [c for c in params if c != colour_column and summary[c].nunique(dropna=False) <= 4]
        if dashed:
            summary["dash"], dash_order = _as_text(summary[dashed[0]])
            encoding["strokeDash"] = alt.StrokeDash("dash:N", title=param_label(dashed[0]), sort=dash_order)
    replications = int(summary["n"].max()) if len(summary) else 0
    chart = alt.Chart(_inline(summary)).mark_line(interpolate="monotone").encode(
        x=alt.X("value:Q", scale=alt.Scale(type="log"), title=metric_label(metric)),
        y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1]), title="cumulative probability"),
        detail="point:N",
        order="probability:Q",
        tooltip=["point:N", alt.Tooltip("value:Q", format=".4g"), alt.Tooltip("probability:Q", format=".4g")],
        **encoding,
    )
    title = alt.Title(
        f"{metric}: distribution at each point",
        subtitle=f"quantiles p1..p99.99 averaged over {replications} replications (Vincentization)",
    )
    return chart.properties(width=WIDTH, height=HEIGHT, title=title)


# --- files ------------------------------------------------------------------------------


def save_chart(chart: alt.TopLevelMixin, path_without_suffix: str | Path, inline: bool = True) -> list[Path]:
    """Write ``<path>.html`` and ``<path>.png``; returns both paths.

    The HTML carries the Vega libraries inline (``inline=True``, from
    vl-convert's bundle) so it opens without the network; the PNG is rendered
    by vl-convert, which needs no browser and no network either.
    """
    stem = Path(path_without_suffix)
    stem.parent.mkdir(parents=True, exist_ok=True)
    html = stem.with_name(f"{stem.name}.html")
    png = stem.with_name(f"{stem.name}.png")
    chart.save(str(html), format="html", inline=inline)
    chart.save(str(png), format="png", scale_factor=PNG_SCALE)
    return [html, png]


def plot_sweep(out_dir: str | Path, metric: str = DEFAULT_METRIC) -> list[Path]:
    """Write ``<out>/plots/percentiles.{html,png}`` and ``<out>/plots/cdf.{html,png}``.

    The percentile chart needs a swept parameter; a sweep of the base scenario
    alone gets only the CDF.
    """
    frame = load_sweep(out_dir)
    plots = Path(out_dir) / "plots"
    paths: list[Path] = []
    if param_columns(frame):
        paths += save_chart(percentile_vs_param(frame, metric=metric), plots / "percentiles")
    paths += save_chart(latency_cdf(frame, metric=metric), plots / "cdf")
    return paths
