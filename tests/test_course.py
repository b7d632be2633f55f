"""sim.course: the course notebooks' chart renderer and their check of quoted numbers."""

from __future__ import annotations

import altair as alt
import nbformat
import pandas as pd
import pytest

from sim.course import SVG_MIME, VEGALITE_MIME_TYPE, check_quoted, course_renderer, use_course_renderer


def chart() -> alt.Chart:
    frame = pd.DataFrame({"load": [0.5, 0.9], "p99_ms": [9.2, 46.0]})
    return alt.Chart(frame).mark_line().encode(x="load:Q", y="p99_ms:Q").properties(title="p99")


def test_a_chart_is_saved_as_vega_lite_and_as_svg():
    bundle = course_renderer(chart().to_dict())
    assert bundle[VEGALITE_MIME_TYPE]["mark"]["type"] == "line"
    assert bundle[SVG_MIME].lstrip().startswith("<svg")
    # a notebook holding the output is valid: nbformat takes a JSON object only under a "+json" type
    output = nbformat.v4.new_output("display_data", data=bundle)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("chart", outputs=[output])])
    nbformat.validate(notebook)


def test_the_renderer_is_enabled_only_when_asked():
    before = alt.renderers.active
    use_course_renderer()
    try:
        assert alt.renderers.active == "cnsim-course"
        assert SVG_MIME in chart()._repr_mimebundle_()
    finally:
        alt.renderers.enable(before)


def test_check_quoted_passes_within_the_tolerance_and_names_both_numbers_otherwise():
    check_quoted("the p99 at 0.9, s", 47.0, 46, rel=0.05)
    check_quoted("a count", 3.0, 0, abs_tol=5)
    with pytest.raises(AssertionError, match="says the p99 at 0.9, s is 46 .* simulation says 55"):
        check_quoted("the p99 at 0.9, s", 55.0, 46, rel=0.05)
    with pytest.raises(AssertionError):
        check_quoted("a ratio", float("nan"), 1.0)
