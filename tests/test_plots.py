"""Charts of a sweep: the reductions behind them, their encodings, and offline export."""

from __future__ import annotations

import pandas as pd
import pytest

from sim.plots import (
    latency_cdf,
    metric_label,
    param_label,
    percentile_summary,
    percentile_vs_param,
    plot_sweep,
    quantile_summary,
    save_chart,
    value_order,
)
from sim.run import t_interval
from sim.stats import PERCENTILE_LEVELS, percentile_name
from sim.sweep import expand_grid, load_sweep, parse_grid, run_sweep

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A 2 x 2 grid of M/M/c points, two replications each, run once for the module."""
    out = tmp_path_factory.mktemp("sweep")
    points = expand_grid(parse_grid(["arrival_rate=0.5,0.8", "servers=1,2"]))
    run_sweep("mmc", points, {"requests": 2000}, replications=2, out_dir=out, progress=False, executor="serial")
    return out


@pytest.fixture(scope="module")
def frame(swept):
    return load_sweep(swept)


def test_labels_carry_units():
    assert metric_label("requests.sojourn_s") == "sojourn time (s)"
    assert metric_label("station.wait_s") == "waiting time (s)"
    assert metric_label("heap_bytes") == "heap (bytes)"
    assert metric_label("go.jobs.throughput_per_second") == "throughput (1/s)"
    assert param_label("param.arrival_rate") == "arrival rate (1/s)"
    assert param_label("param.servers") == "servers"


def test_percentile_summary_is_the_t_interval_over_replications(frame):
    summary = percentile_summary(frame, statistics=("p99",))
    assert len(summary) == 4 and (summary["n"] == 2).all()
    row = summary[(summary["param.arrival_rate"] == 0.8) & (summary["param.servers"] == 1)].iloc[0]
    values = frame[
        (frame["metric"] == "requests.sojourn_s") & (frame["statistic"] == "p99")
        & (frame["param.arrival_rate"] == 0.8) & (frame["param.servers"] == 1)
    ]["value"]
    mean, half, n = t_interval(values)
    assert (row["mean"], row["high"] - row["mean"], row["n"]) == pytest.approx((mean, half, n))


def test_quantile_summary_averages_quantiles_and_stays_monotone(frame):
    summary = quantile_summary(frame)
    assert len(summary) == 4 * 101
    for _, point in summary.groupby(["param.arrival_rate", "param.servers"]):
        assert point["probability"].is_monotonic_increasing
        assert point["value"].is_monotonic_increasing
    median = summary[(summary["probability"] == 0.5) & (summary["param.servers"] == 2)
                     & (summary["param.arrival_rate"] == 0.5)]["value"].item()
    rows = frame[(frame["metric"] == "requests.sojourn_s") & (frame["statistic"] == "p50")
                 & (frame["param.servers"] == 2) & (frame["param.arrival_rate"] == 0.5)]
    assert median == pytest.approx(rows["value"].mean())


def test_percentile_chart_puts_the_first_numeric_param_on_x_and_facets_the_other(frame):
    spec = percentile_vs_param(frame).to_dict()
    assert spec["facet"]["field"] == "point"
    layers = spec["spec"]["layer"]
    assert layers[1]["encoding"]["x"]["title"] == "arrival rate (1/s)"
    assert layers[1]["encoding"]["y"]["scale"]["type"] == "log"
    assert "sojourn time (s)" in layers[1]["encoding"]["y"]["title"]
    assert spec["title"]["text"].startswith("requests.sojourn_s")
    values = spec["datasets"] if "datasets" in spec else spec["data"]["values"]
    assert values


def test_percentile_chart_on_a_chosen_param_and_errors(frame):
    spec = percentile_vs_param(frame, param="servers").to_dict()
    assert spec["spec"]["layer"][1]["encoding"]["x"]["title"] == "servers"
    with pytest.raises(ValueError, match="no swept parameter 'workers'"):
        percentile_vs_param(frame, param="workers")
    with pytest.raises(ValueError, match="no statistic"):
        percentile_vs_param(frame, metric="requests.nothing_s")


def test_cdf_colours_by_the_chosen_param(frame):
    spec = latency_cdf(frame, by="servers").to_dict()
    encoding = spec["encoding"]
    assert encoding["x"]["scale"]["type"] == "log" and encoding["x"]["title"] == "sojourn time (s)"
    assert encoding["y"]["title"] == "cumulative probability"
    assert encoding["color"]["title"] == "servers"
    assert encoding["detail"]["field"] == "point"


def test_plot_sweep_writes_offline_png_and_html(swept):
    paths = plot_sweep(swept)
    names = sorted(path.name for path in paths)
    assert names == ["cdf.html", "cdf.png", "percentiles.html", "percentiles.png"]
    for path in paths:
        assert path.parent == swept / "plots" and path.stat().st_size > 1000
        if path.suffix == ".png":
            assert path.read_bytes().startswith(PNG_MAGIC)
        else:
            html = path.read_text()
            assert 'src="http' not in html  # the Vega libraries are inline


def test_a_sweep_without_params_gets_only_the_cdf(tmp_path):
    run_sweep("mmc", [{}], {"requests": 1000}, replications=1, out_dir=tmp_path, progress=False, executor="serial")
    assert [path.name for path in plot_sweep(tmp_path)] == ["cdf.html", "cdf.png"]


def test_save_chart_returns_both_paths(tmp_path, frame):
    chart = latency_cdf(frame[frame["param.servers"] == 1])
    html, png = save_chart(chart, tmp_path / "deep" / "cdf.servers1", inline=False)
    assert html.name == "cdf.servers1.html" and png.name == "cdf.servers1.png"
    assert html.exists() and png.read_bytes().startswith(PNG_MAGIC)


def test_cdf_of_mixed_frames_keeps_points_apart(frame):
    other = frame.copy()
    other["param.servers"] = other["param.servers"] + 10
    both = pd.concat([frame, other], ignore_index=True)
    assert quantile_summary(both)[["param.arrival_rate", "param.servers"]].drop_duplicates().shape[0] == 8


def quantity_frame() -> pd.DataFrame:
    """A sweep's frame over values kept as given, heap=4GiB,64MiB,512KiB x timeout=10ms,2ms, two
    replications; a point's quantiles grow with its heap, so every value is positive and monotone."""
    heaps = {"4GiB": 3.0, "64MiB": 2.0, "512KiB": 1.0}
    rows = []
    for heap, scale in heaps.items():
        for timeout in ("10ms", "2ms"):
            for replication in (0, 1):
                for level in PERCENTILE_LEVELS:
                    rows.append({"metric": "requests.sojourn_s", "statistic": percentile_name(level),
                                 "value": scale * (1 + level / 100) + replication * 1e-3,
                                 "replication": replication, "param.heap": heap, "param.timeout": timeout})
    return pd.DataFrame(rows)


def test_quantities_with_units_are_ordered_by_value_then_the_rest_as_text():
    values = ["4GiB", "fast", None, "64MiB", 3, "900/s", "10ms", "2ms", float("nan")]
    ordered = sorted(values, key=value_order)
    assert ordered[:7] == ["2ms", "10ms", 3, "900/s", "64MiB", "4GiB", "fast"]
    assert ordered[7] is None and ordered[8] != ordered[8]


def test_a_swept_quantity_is_drawn_in_the_order_of_its_values_not_its_text():
    frame = quantity_frame()
    by_value = ["512KiB", "64MiB", "4GiB"]
    summary = percentile_summary(frame)
    assert list(dict.fromkeys(summary["param.heap"])) == by_value
    assert list(dict.fromkeys(quantile_summary(frame)["param.heap"])) == by_value

    spec = percentile_vs_param(frame, param="heap").to_dict()
    line = spec["spec"]["layer"][1]["encoding"]
    assert line["x"]["sort"] == by_value and line["order"]["field"] == "x_rank"
    ranks = {row["x"]: row["x_rank"] for row in spec["datasets"][spec["data"]["name"]]}
    assert [ranks[heap] for heap in by_value] == [0, 1, 2]
    assert spec["facet"]["sort"] == ["timeout=2ms", "timeout=10ms"]

    cdf = latency_cdf(frame, by="heap").to_dict()["encoding"]
    assert cdf["color"]["sort"] == by_value
    assert cdf["strokeDash"]["sort"] == ["2ms", "10ms"]


def test_a_swept_parameter_mixing_numbers_and_quantities_is_drawn_as_text_in_value_order():
    frame = quantity_frame()
    frame["param.heap"] = frame["param.heap"].replace({"512KiB": 1000}).astype(object)
    by_value = ["1000", "64MiB", "4GiB"]  # one sort array of one type, as Vega-Lite requires
    assert percentile_vs_param(frame, param="heap").to_dict()["spec"]["layer"][1]["encoding"]["x"]["sort"] == by_value
    assert latency_cdf(frame, by="heap").to_dict()["encoding"]["color"]["sort"] == by_value
