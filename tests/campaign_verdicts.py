"""What the verdict tests of a shipped repeated campaign (the grid, the chain) share: its points, the
``cnsim validate --json`` report on it, one test case per statistic and per one-factor ratio, each known
miss a strict xfail with its measured cause, and the checks themselves."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from calibration.validation.compare import STATISTICS, Comparison, load_experiments, one_factor_pairs
from cnsim.cli import main


def shipped_points(root: Path) -> list[str]:
    """The points of the campaign under ``root`` (folders with a first repetition)."""
    return sorted(path.parent.parent.name for path in root.glob("*/rep1/summary.json"))


def campaign_report(root: Path, replications: int, jobs: int) -> dict[str, Any]:
    """``cnsim validate --data ROOT --json``: every point simulated and compared."""
    out = io.StringIO()
    main(["validate", "--data", str(root), "--json", "--replications", str(replications), "--jobs", str(jobs)], out)
    return dict(json.loads(out.getvalue()))


def _param(key: tuple[str, ...], reason: str | None) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(*key, marks=marks, id="-".join(key))


def statistic_cases(root: Path, known: dict[tuple[str, str], str]) -> list[Any]:
    """(point, statistic) for every point and statistic; a known miss a strict xfail with its cause."""
    return [_param((point, statistic), known.get((point, statistic)))
            for point in shipped_points(root) for statistic in STATISTICS]


def ratio_cases(root: Path, known: dict[tuple[str, str, str], str]) -> list[Any]:
    """(a, b, statistic) for every one-factor pair's mean and p99; a known miss a strict xfail with its cause."""
    experiments = load_experiments(root) if shipped_points(root) else []
    return [_param((a.experiment.name, b.experiment.name, statistic),
                   known.get((a.experiment.name, b.experiment.name, statistic)))
            for a, b, _factor in one_factor_pairs([Comparison(e) for e in experiments])
            for statistic in ("mean", "p99")]


def check_statistic(report: dict[str, Any], point: str, statistic: str) -> None:
    row = {e["experiment"]: e for e in report["experiments"]}[point]["statistics"][statistic]
    assert row["within"], (f"{point} {statistic}: simulated {row['simulated']:.6g} outside "
                           f"[{row['low']:.6g}, {row['high']:.6g}] (real {row['real_min']:.6g}-{row['real_max']:.6g})")


def check_ratio(report: dict[str, Any], a: str, b: str, statistic: str) -> None:
    (ratio,) = [r for r in report["ratios"] if (r["a"], r["b"], r["statistic"]) == (a, b, statistic)]
    assert ratio["within"], (f"{b} / {a} {statistic}: simulated {ratio['simulated_ratio']:.3g} against real "
                             f"{ratio['real_ratio']:.3g} [{ratio['real_low']:.3g}, {ratio['real_high']:.3g}]")
