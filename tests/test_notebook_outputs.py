"""The course notebooks are committed with the outputs of a full-size run, and those outputs are not stale.

For each notebook of ``notebooks/`` (``docs/course.md``):

* the hash of its cells' sources equals the one ``make notebooks`` recorded
  when it last ran it at full size: a cell edited since fails here until the
  notebook is run again (``tests/notebook_outputs.py``);
* every code cell ran, once, in order (execution counts 1, 2, 3...), and none
  raised;
* every code cell that ends in an expression (a table, a chart, a value) has
  its output saved;
* every chart is saved as its Vega-Lite specification and as an SVG, the one a
  code-hosting site shows (``sim.course``), with at most a few thousand rows
  of data;
* each notebook states what it teaches and what it needs first, and ends
  with exercises and their solutions.

Nothing is executed here; the smoke-size execution is ``pytest --nbmake``.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from notebook_outputs import META_KEY, cell_text, notebook_paths, source_hash

from sim.course import SVG_MIME, VEGALITE_MIME_TYPE

MAX_CHART_ROWS = 5_000
# Calls whose value is None: a cell ending in one displays nothing (print writes a stream, which is kept).
SHOW_NO_VALUE = {"print", "check_quoted"}

PATHS = notebook_paths()


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def code_cells(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def ends_in_expression(source: str) -> bool:
    """Whether a cell's last statement is an expression, whose value the notebook displays."""
    body = ast.parse(source).body
    return bool(body) and isinstance(body[-1], ast.Expr) and not _is_call_to(body[-1].value, SHOW_NO_VALUE)


def _is_call_to(node: ast.expr, names: set[str]) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names


def chart_rows(spec: dict[str, Any]) -> int:
    """The rows of data a Vega-Lite specification carries inline, in all its datasets."""
    return sum(len(rows) for rows in spec.get("datasets", {}).values())


def test_the_course_has_its_notebooks():
    assert [path.name[:2] for path in PATHS] == ["00", "10", "20", "30", "40", "50", "60"]


@pytest.mark.parametrize("path", PATHS, ids=lambda path: path.stem)
def test_outputs_are_from_the_current_source(path):
    notebook = load(path)
    recorded = notebook["metadata"].get(META_KEY, {})
    assert recorded.get("size") == "full", f"{path.name} has no full-size run recorded: run `make notebooks`"
    assert recorded.get("source_sha256") == source_hash(notebook), (
        f"{path.name} was edited since its outputs were made: run `make notebooks` (or "
        f"`python tests/notebook_outputs.py {path.name[:2]}`) and commit the result"
    )


@pytest.mark.parametrize("path", PATHS, ids=lambda path: path.stem)
def test_every_cell_ran_in_order_and_kept_its_output(path):
    cells = code_cells(load(path))
    assert [cell["execution_count"] for cell in cells] == list(range(1, len(cells) + 1))
    for index, cell in enumerate(cells, start=1):
        outputs = cell["outputs"]
        assert not [out for out in outputs if out["output_type"] == "error"], f"code cell {index} raised"
        if ends_in_expression(cell_text(cell)):
            assert outputs, f"code cell {index} of {path.name} shows a value but has no saved output"


@pytest.mark.parametrize("path", PATHS, ids=lambda path: path.stem)
def test_charts_are_saved_for_a_code_hosting_site(path):
    charts = [out["data"] for cell in code_cells(load(path)) for out in cell["outputs"]
              if VEGALITE_MIME_TYPE in out.get("data", {}) or SVG_MIME in out.get("data", {})]
    assert charts, f"{path.name} shows no chart"
    for data in charts:
        assert VEGALITE_MIME_TYPE in data and SVG_MIME in data
        assert chart_rows(data[VEGALITE_MIME_TYPE]) <= MAX_CHART_ROWS


@pytest.mark.parametrize("path", PATHS, ids=lambda path: path.stem)
def test_a_notebook_says_what_it_teaches_and_ends_with_exercises(path):
    cells = load(path)["cells"]
    first = cell_text(cells[0])
    assert cells[0]["cell_type"] == "markdown"
    assert "What you will learn" in first and "What you need first" in first
    markdown = "\n".join(cell_text(cell) for cell in cells if cell["cell_type"] == "markdown")
    exercises = markdown.find("## Exercises")
    assert exercises > 0, f"{path.name} has no exercises"
    assert "<details>" in markdown[exercises:], f"{path.name} has no solutions after its exercises"
