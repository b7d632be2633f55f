"""Summarise fitted parameter sets: a table, and a chart of each fit over its data.

Charts (altair, saved as PNG through vl-convert and as self-contained HTML):

* a distribution: the histogram of the samples on log-spaced bins (bars) and the
  count the fitted distribution expects in each bin, n·(F(b₊) − F(b₋)) (points
  joined by a line), on a log time axis;
* a line: the samples as points (coloured by run) and the fitted line;
* a constant: each repetition as a point and the mean with its 95 % interval.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from calibration.distfit import frozen
from calibration.dataset import PARAMS_DIR, REPO_ROOT, Dataset
from calibration.fit import observations

HISTOGRAM_BINS = 40


def load_all(params_dir: Path = PARAMS_DIR) -> list[dict[str, Any]]:
    """Every ``*.json`` parameter set in ``params_dir``, by name."""
    return [json.loads(p.read_text()) for p in sorted(Path(params_dir).glob("*.json"))]


def _num(value: float) -> str:
    return f"{value:.4g}"


def describe_parameters(entry: dict[str, Any]) -> str:
    """The fitted values of a parameter set in one short line."""
    kind = entry["kind"]
    if kind == "constant":
        return f"value={_num(entry['value'])} {entry['unit']}"
    if kind == "linear":
        return f"y={_num(entry['intercept'])} + {_num(entry['slope'])}·{entry['x']}"
    if kind == "binned":
        medians = [b.get("median_s", b.get("median")) for b in entry["fit"]["bins"]
                   if "median_s" in b or "median" in b]
        return (f"{len(entry['edges'])} ranges of {entry['x']}, median {_num(min(medians))} to "
                f"{_num(max(medians))} {entry['unit']}")
    if kind == "table":
        ys = [y for _x, y in entry["points"]]
        return (f"{len(ys)} points of {entry['x']}, {_num(min(ys))} to {_num(max(ys))} {entry['unit']}")
    if kind == "multilinear":
        return "y=" + " + ".join(f"{_num(c)}·{x}" for x, c in entry["coefficients"].items())
    spec = entry["distribution"]
    if spec["dist"] == "empirical":
        return (f"empirical({len(spec['values'])} quantiles, median {_num(entry['fit']['median'])}, "
                f"p99 {_num(entry['fit']['p99'])} {entry['unit']})")
    if spec["dist"] == "mixture":
        return " + ".join(
            f"{c['weight']:.2f}·lognormal(mu={_num(c['mu'])}, sigma={_num(c['sigma'])})" for c in spec["components"]
        )
    return f"{spec['dist']}(" + ", ".join(f"{k}={_num(v)}" for k, v in spec.items() if k != "dist") + ")"


def describe_fit(entry: dict[str, Any]) -> str:
    """The goodness-of-fit of a parameter set in one short line."""
    gof = entry["goodness_of_fit"]
    n = entry["fit"]["n"]
    if entry["kind"] == "distribution" and "p_value" not in gof:
        return f"n={n}, KS D to its quantiles={gof['statistic']:.4f}"
    if entry["kind"] == "distribution":
        return f"n={n}, KS D={gof['statistic']:.3f}, bootstrap p={gof['p_value']:.3f}"
    if entry["kind"] == "binned":
        return f"n={n}, largest KS D of a range={gof['statistic']:.3f}"
    if entry["kind"] == "linear":
        return (f"n={n}, R²={gof['r_squared']:.3f}, slope p={gof['slope_p_value']:.2g}, "
                f"Spearman ρ={gof['spearman_rho']:.2f}")
    if entry["kind"] == "table":
        return f"n={n}, largest range between repetitions {100 * gof['largest_relative_range']:.0f} % of the median"
    if entry["kind"] == "multilinear":
        return (f"n={n}, median |relative error| {100 * gof['median_absolute_relative_error']:.0f} %, "
                f"largest {100 * gof['largest_relative_error']:.0f} %")
    if "relative_half_width" not in gof:
        return f"n={n}, per row {_num(gof['row_min'])} to {_num(gof['row_max'])} {entry['unit']}"
    line = f"n={n}, ±{100 * gof['relative_half_width']:.1f} % (95 %)"
    return f"{line}, cv={gof['cv']:.3f}" if "cv" in gof else line


def table_rows(entries: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One row per parameter set: name, kind, fitted parameters, goodness of fit."""
    return [
        {"name": e["name"], "kind": e["kind"], "parameters": describe_parameters(e), "fit": describe_fit(e)}
        for e in entries
    ]


def format_table(rows: list[dict[str, str]]) -> str:
    """Rows as an aligned plain-text table."""
    columns = ["name", "kind", "parameters", "fit"]
    widths = {c: max([len(c)] + [len(r[c]) for r in rows]) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns), "  ".join("-" * widths[c] for c in columns)]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return "\n".join(lines) + "\n"


def _distribution_chart(entry: dict[str, Any], obs: pd.DataFrame) -> alt.Chart:
    y = obs["y"].to_numpy()
    edges = np.logspace(np.log10(y.min()) - 0.05, np.log10(y.max()) + 0.05, HISTOGRAM_BINS + 1)
    counts, _ = np.histogram(y, edges)
    expected = y.size * np.diff(frozen(entry["distribution"]).cdf(edges))
    frame = pd.DataFrame({"low": edges[:-1], "high": edges[1:], "centre": np.sqrt(edges[:-1] * edges[1:]),
                          "observed": counts, "fitted": expected})
    x_title = f"{entry['name']} ({entry['unit']})"
    bars = alt.Chart(frame).mark_rect(opacity=0.5).encode(
        x=alt.X("low:Q", scale=alt.Scale(type="log"), title=x_title), x2="high:Q",
        y=alt.Y("observed:Q", title="samples per bin"), y2=alt.datum(0))
    line = alt.Chart(frame).mark_line(point=True, color="firebrick").encode(x="centre:Q", y="fitted:Q")
    return (bars + line).properties(title=f"{entry['name']}: {describe_parameters(entry)}", width=520, height=300)


def _linear_chart(entry: dict[str, Any], obs: pd.DataFrame) -> alt.Chart:
    x = np.linspace(obs["x"].min(), obs["x"].max(), 2)
    line = pd.DataFrame({"x": x, "y": entry["intercept"] + entry["slope"] * x})
    colour = alt.Color("group:N", title="run") if "group" in obs else alt.value("steelblue")
    points = alt.Chart(obs).mark_circle(size=30, opacity=0.6).encode(
        x=alt.X("x:Q", title=entry["x"]), y=alt.Y("y:Q", title=f"{entry['y']} ({entry['unit']})"), color=colour)
    fitted = alt.Chart(line).mark_line(color="black").encode(x="x:Q", y="y:Q")
    return (points + fitted).properties(title=f"{entry['name']}: {describe_parameters(entry)}", width=520, height=300)


def _constant_chart(entry: dict[str, Any], obs: pd.DataFrame) -> alt.Chart:
    obs = obs.reset_index(names="rep")
    # The mean's 95 % interval where the fit has one (a ratio of sums, go.alloc.object_bytes, has none).
    low, high = entry["goodness_of_fit"].get("ci95", (entry["value"], entry["value"]))
    colour = alt.Color("group:N", title="") if "group" in obs else alt.value("steelblue")
    points = alt.Chart(obs).mark_circle(size=40).encode(
        x=alt.X("rep:Q", title="repetition"), y=alt.Y("y:Q", title=f"{entry['name']} ({entry['unit']})"),
        color=colour)
    band = alt.Chart(pd.DataFrame({"low": [low], "high": [high]})).mark_rect(opacity=0.2, color="firebrick").encode(
        y="low:Q", y2="high:Q")
    mean = alt.Chart(pd.DataFrame({"value": [entry["value"]]})).mark_rule(color="firebrick").encode(y="value:Q")
    return (points + band + mean).properties(title=f"{entry['name']}: {describe_parameters(entry)}",
                                             width=520, height=300)


def _binned_chart(entry: dict[str, Any], obs: pd.DataFrame) -> alt.Chart:
    obs = obs[obs["x"] > 0]
    points = alt.Chart(obs).mark_circle(size=12, opacity=0.3).encode(
        x=alt.X("x:Q", scale=alt.Scale(type="log"), title=f"{entry['x']} (s)"),
        y=alt.Y("y:Q", title=f"{entry['name']} ({entry['unit']})"),
        color=alt.Color("group:N", title="run") if "group" in obs else alt.value("steelblue"))
    upper = [*entry["edges"][1:], float(obs["x"].max())]
    rows = [{"from": max(low, float(obs["x"].min())), "to": high, "statistic": statistic, "value": b[key]}
            for low, high, b in zip(entry["edges"], upper, entry["fit"]["bins"])
            for statistic, keys in (("median", ("median_s", "median")), ("p99", ("p99_s", "p99")))
            for key in keys if key in b]
    steps = alt.Chart(pd.DataFrame(rows)).mark_rule(strokeWidth=3).encode(
        x="from:Q", x2="to:Q", y="value:Q", color=alt.Color("statistic:N", title="fitted range"))
    return (points + steps).properties(title=f"{entry['name']}: {describe_parameters(entry)}", width=520, height=300)


def _table_chart(entry: dict[str, Any], obs: pd.DataFrame) -> alt.Chart:
    points = alt.Chart(obs).mark_circle(size=30, opacity=0.6).encode(
        x=alt.X("x:Q", scale=alt.Scale(type="log"), title=entry["x"]),
        y=alt.Y("y:Q", scale=alt.Scale(type="log"), title=f"{entry['y']} ({entry['unit']})"),
        color=alt.Color("group:N", title=""))
    table = pd.DataFrame(entry["points"], columns=["x", "y"])
    line = alt.Chart(table).mark_line(color="black").encode(x="x:Q", y="y:Q")
    return (points + line).properties(title=f"{entry['name']}: {describe_parameters(entry)}", width=520, height=300)


def _multilinear_chart(entry: dict[str, Any], obs: pd.DataFrame) -> alt.Chart:
    predicted = entry["intercept"] + sum(obs[x] * c for x, c in entry["coefficients"].items())
    obs = obs.assign(predicted=predicted)
    points = alt.Chart(obs).mark_circle(size=40).encode(
        x=alt.X("y:Q", scale=alt.Scale(type="log"), title=f"measured {entry['y']} ({entry['unit']})"),
        y=alt.Y("predicted:Q", scale=alt.Scale(type="log"), title="fitted"),
        color=alt.Color("group:N", title="") if "group" in obs else alt.value("steelblue"))
    span = [float(min(obs["y"].min(), predicted.min())), float(max(obs["y"].max(), predicted.max()))]
    diagonal = alt.Chart(pd.DataFrame({"a": span, "b": span})).mark_line(color="black").encode(x="a:Q", y="b:Q")
    return (points + diagonal).properties(title=f"{entry['name']}: {describe_parameters(entry)}",
                                          width=520, height=300)


def chart(entry: dict[str, Any], data: Dataset) -> alt.Chart:
    """The chart of one parameter set over the observations it was fitted to."""
    obs = observations(entry["name"], data)
    build = {"distribution": _distribution_chart, "linear": _linear_chart, "constant": _constant_chart,
             "binned": _binned_chart, "table": _table_chart, "multilinear": _multilinear_chart}
    return build[entry["kind"]](entry, obs)


def write_charts(entries: list[dict[str, Any]], out_dir: Path, data_dir: Path | None = None) -> list[Path]:
    """``<out_dir>/<name>.png`` and ``.html`` for every parameter set; the paths written."""
    from sim.plots import save_chart

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    datasets: dict[Path, Dataset] = {}
    for entry in entries:
        folder = Path(data_dir) if data_dir is not None else (REPO_ROOT / entry["dataset"]).parent
        if folder not in datasets:
            datasets[folder] = Dataset(folder)
        paths += save_chart(chart(entry, datasets[folder]), out_dir / entry["name"])
    return paths
