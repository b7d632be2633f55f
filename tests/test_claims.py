"""The claims page (``docs/claims.md``) says what the simulator says.

* Every claim (a)-(j) of the article has a row in the page's summary.
* Every scenario the page runs (``cnsim run NAME``) is a built-in scenario.
* Every row of the page's "cnsim" tables (``| `cnsim run ...` | `metric` |
  statistic | mean ± half-width unit |``) is re-run at the scenario's
  documented seed and replications, and the estimate's mean must lie within
  the page's interval (widened by half the last digit the page prints). The
  runs that take more than about ten seconds are marked ``slow``.
"""

from __future__ import annotations

import re
import shlex
from collections import defaultdict
from pathlib import Path

import pytest

from sim.run import Replications, run_replications
from sim.scenario import builtin_scenarios, load_scenario

PAGE = Path(__file__).resolve().parents[1] / "docs" / "claims.md"
CLAIMS = "abcdefghij"

ROW = re.compile(r"^\| `(cnsim run [^`]+)` \| `([^`]+)` \| (\w+) \| ([^|]+?) \|$", re.M)
NUMBER = re.compile(r"^(-?[\d,]*\.?\d+) ± ([\d,]*\.?\d+) ?(\S*)$")
UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "µs": 1e-6, "/s": 1.0, "KiB": 2.0**10, "MiB": 2.0**20}

FAST = {
    "cnsim run go-gc-large-heap",
    "cnsim run faas-cold-start-decomposition",
    "cnsim run cpu-bound-goroutines-vs-workers",
    "cnsim run go-http-service --set arrival_rate=200/s --set handler.cpu=0s --set handler.alloc=0B "
    "--set requests=4000",
}
"""Commands cheap enough for every test run (a few seconds each); the others are ``slow``."""


def page() -> str:
    return PAGE.read_text(encoding="utf-8")


def parse_value(text: str) -> tuple[float, float, float]:
    """``"15.0 ± 2.8 ms"`` -> (value, half-width, rounding) in SI units; rounding is half the last printed digit."""
    match = NUMBER.match(text.strip())
    assert match, f"not 'mean ± half-width unit': {text!r}"
    value, half, unit = match.groups()
    assert unit in UNITS, f"unknown unit {unit!r} in {text!r}"
    scale = UNITS[unit]
    digits = len(value.partition(".")[2])
    return (float(value.replace(",", "")) * scale, float(half.replace(",", "")) * scale,
            0.5 * 10.0**-digits * scale)


def checks() -> dict[str, list[tuple[str, str, str]]]:
    """Rows of the page's cnsim tables, by command: (metric, statistic, printed value)."""
    rows: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for command, metric, statistic, value in ROW.findall(page()):
        rows[command].append((metric, statistic, value))
    return rows


def run(command: str) -> Replications:
    argv = shlex.split(command)
    assert argv[:2] == ["cnsim", "run"], command
    name, rest = argv[2], argv[3:]
    overrides = [rest[i + 1] for i in range(0, len(rest), 2) if rest[i] == "--set"]
    assert len(overrides) * 2 == len(rest), f"only --set options are re-run here: {command}"
    return run_replications(load_scenario(name, overrides))


def test_every_claim_has_a_row_in_the_summary() -> None:
    text = page()
    for letter in CLAIMS:
        assert re.search(rf"^\| \({letter}\) \|", text, re.M), f"claim ({letter}) has no row in the summary"
        assert re.search(rf"^## \({letter}\) ", text, re.M), f"claim ({letter}) has no section"


def test_every_scenario_named_exists() -> None:
    names = set(re.findall(r"cnsim run ([a-z0-9-]+)", page()))
    assert names, "the page names no scenario"
    missing = names - set(builtin_scenarios())
    assert not missing, f"not built-in scenarios: {sorted(missing)}"


def test_the_tables_parse() -> None:
    rows = checks()
    assert sum(len(items) for items in rows.values()) >= 30
    assert not FAST - set(rows), f"FAST names commands the page does not run: {sorted(FAST - set(rows))}"
    for items in rows.values():
        for _metric, _statistic, value in items:
            parse_value(value)


COMMANDS = sorted(checks())


@pytest.mark.parametrize(
    "command", [pytest.param(c, marks=() if c in FAST else pytest.mark.slow, id=c[len("cnsim run "):])
                for c in COMMANDS],
)
def test_the_page_numbers_are_the_scenarios(command: str) -> None:
    outcome = run(command)
    wrong = []
    for metric, statistic, printed in checks()[command]:
        value, half, rounding = parse_value(printed)
        got = outcome.get(metric, statistic)
        if abs(got.mean - value) > half + rounding:
            wrong.append(f"{metric} {statistic}: page {printed}, run {got.mean:.6g} ± {got.half_width:.3g}")
    assert not wrong, f"{command}:\n" + "\n".join(wrong)
