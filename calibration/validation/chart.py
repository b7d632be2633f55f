"""The validation as a chart: real against simulated mean, p50 and p99 over load, per server group."""

from __future__ import annotations

from collections.abc import Sequence

import altair as alt
import pandas as pd

from calibration.validation.compare import Comparison

LATENCY_STATISTICS = ("mean", "p50", "p99")


def comparison_frame(comparisons: Sequence[Comparison]) -> pd.DataFrame:
    """One row per (experiment, latency statistic, source): group, load, ms, and the error and verdict."""
    rows = []
    for comparison in comparisons:
        if comparison.pending is not None:
            continue
        experiment = comparison.experiment
        group = experiment.name.rsplit("-", 1)[0]
        for row in comparison.rows:
            if row.statistic not in LATENCY_STATISTICS:
                continue
            for source, value in (("real", row.real), ("simulated", row.simulated)):
                rows.append({"group": group, "experiment": experiment.name,
                             "load": float(experiment.config["rate_fraction"]), "statistic": row.statistic,
                             "source": source, "ms": value * 1e3, "error": row.error,
                             "within target": "yes" if row.within else "no"})
    return pd.DataFrame(rows)


def comparison_chart(comparisons: Sequence[Comparison]) -> alt.FacetChart:
    """Latency against load, real (solid) and simulated (dashed), a panel per group and statistic; each
    point's tooltip gives the error and whether it is within target."""
    frame = comparison_frame(comparisons)
    if frame.empty:
        raise ValueError("no compared experiment to draw (all pending)")
    return alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=50)).encode(
        x=alt.X("load:Q", axis=alt.Axis(format="%"), title="offered load (fraction of measured capacity)"),
        y=alt.Y("ms:Q", scale=alt.Scale(type="log"), title="latency (ms)"),
        color=alt.Color("source:N", title=None),
        strokeDash=alt.StrokeDash("source:N", title=None),
        tooltip=["experiment:N", "statistic:N", "source:N", alt.Tooltip("ms:Q", format=".3f"),
                 alt.Tooltip("error:Q", format="+.1%"), "within target:N"],
    ).properties(width=200, height=150).facet(
        column=alt.Column("group:N", title=None),
        row=alt.Row("statistic:N", sort=list(LATENCY_STATISTICS), title=None),
    ).properties(title="cnsim validate: real servers against the simulator").resolve_scale(y="independent")
