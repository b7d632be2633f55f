"""What the course notebooks (``notebooks/``, ``docs/course.md``) share.

* :func:`use_course_renderer` makes every Altair chart a notebook displays a
  bundle of two outputs: the Vega-Lite specification, for a front end with a
  Vega-Lite extension to draw as an interactive chart, and an SVG drawn by
  vl-convert (no browser, no network), which is what a code-hosting site
  shows from the saved notebook, and what a front end without the extension
  falls back to. (JupyterLab adds a static image to a Vega-Lite output only
  when a browser draws the chart; a notebook executed headless, as by
  ``make notebooks``, would save none.) The specification is Vega-Lite 6,
  under ``application/vnd.vegalite.v6+json``: Altair 6's own ``mimetype``
  renderer names it ``...v6.json``, which nbformat's schema refuses for a
  JSON object, and JupyterLab 4.6 draws only up to ``v5+json``.
* :func:`check_quoted` is the check that a number the prose quotes is what the
  run says: it fails, naming both, when the simulation no longer agrees with
  the text.

Nothing happens at import time: the renderer is registered by the call.
"""

from __future__ import annotations

import math
from typing import Any

import altair as alt
from altair.vegalite.v6.display import svg_renderer

RENDERER = "cnsim-course"
VEGALITE_MIME_TYPE = "application/vnd.vegalite.v6+json"
SVG_MIME = "image/svg+xml"


def course_renderer(spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
    """A chart's mimebundle: its Vega-Lite specification and an SVG of it."""
    svg = svg_renderer(spec)
    bundle = svg[0] if isinstance(svg, tuple) else svg  # Altair returns (bundle, metadata)
    return {VEGALITE_MIME_TYPE: spec, SVG_MIME: bundle[SVG_MIME], "text/plain": "<Vega-Lite chart>"}


def use_course_renderer() -> None:
    """Register :func:`course_renderer` with Altair and enable it."""
    alt.renderers.register(RENDERER, course_renderer)
    alt.renderers.enable(RENDERER)


def check_quoted(what: str, simulated: float, text: float, rel: float = 0.05, abs_tol: float = 0.0) -> None:
    """Fail unless ``simulated`` is within ``max(rel * |text|, abs_tol)`` of the ``text``'s number.

    ``what`` names the number as the prose does, for the message. Returns
    nothing, so that a check ending a notebook cell displays nothing.
    """
    allowed = max(rel * abs(text), abs_tol)
    if not math.isfinite(simulated) or abs(simulated - text) > allowed:
        raise AssertionError(
            f"the text says {what} is {text:g} (to within {allowed:g}); the simulation says {simulated:g}"
        )
