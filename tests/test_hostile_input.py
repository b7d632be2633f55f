"""Hostile scenario input: each file of ``tests/data/hostile/input-*`` makes ``cnsim run`` exit with
status 2 and one clean line naming the field (or the file), never a traceback, a silent wrong answer or
a machine out of memory.

The cases of issue 20's scenario-input part: a quantity of the wrong dimension, a mapping or list where a
distribution's name is expected, an alias bomb, many unknown keys, out-of-range quantities, a binary
file, mixture weights that do not add up to 1, booleans for numbers, duplicate keys. The memory-hungry
ones run in a subprocess under a memory limit and a timeout.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from cnsim.cli import EXIT_USAGE, main

HOSTILE = Path(__file__).parent / "data" / "hostile"

CASES: dict[str, str] = {
    # 1. a quantity of the wrong dimension: once 8,192 s of service, a constant 2 s, 2 ms read as 0.002 bytes
    "input-size-as-duration.yaml": r"service: mean: expected a duration, not a size \('8KiB'\)",
    "input-rate-as-duration.yaml": r"service: expected a duration, not a rate \('2/s'\)$",
    "input-duration-as-size.yaml": r"handler\.alloc: mean: expected a size, not a duration \('2ms'\)",
    # 2. a mapping or a list where a name is expected: once a TypeError traceback
    "input-dist-name-mapping.yaml": r"service: dist: expected the name of a distribution, one of .*exp.* "
    r"\(got \{'exp': '1ms'\}\)$",
    "input-dist-name-list.yaml": r"service: dist: expected the name of a distribution, .*\(got \[1, 2\]\)$",
    "input-empirical-file-mapping.yaml": r"service: file: expected the path of a CSV file "
    r"\(got \{'path': 'samples\.csv'\}\)$",
    # 5. out of range: once a histogram's error naming no field
    "input-huge-service.yaml": r"service: a duration must be at most 1e\+15 s, got '1\.0e308'$",
    "input-tiny-rate.yaml": r"arrival_rate: a rate must be 0 or at least 1e-15/s, got 1e-300$",
    "input-huge-lognormal.yaml": r"service: mean: the lognormal distribution's mean, inf, is above 1e\+15",
    "input-infinite-number.yaml": r"warmup: Input should be a finite number \(got inf\)$",
    # 5. a binary file: once a UnicodeDecodeError naming no file
    "input-binary.yaml": r"input-binary\.yaml: not a UTF-8 text file \(byte 0 is 0x93\)$",
    # 6. accepted without a word before
    "input-mixture-weights.yaml": r"service: weights: must add up to 1, not 4 \(got \[3\.0, 1\.0\]\)$",
    "input-bool-servers.yaml": r"servers: expected a number, not true or false \(got True\)$",
    "input-bool-in-pair.yaml": r"message_cost: expected a number, not true or false \(got \[True, 1e-09\]\)$",
    "input-duplicate-key.yaml": r"input-duplicate-key\.yaml: line 5: key 'servers' given twice \(also on line 4\)$",
    "input-duplicate-key.json": r"input-duplicate-key\.json: key 'servers' given twice$",
}

BOUNDED: dict[str, str] = {
    # 3. 9 lists of 9 aliases to the one before: 9^9 values from 420 bytes
    "input-alias-bomb.yaml": r"input-alias-bomb\.yaml: more than 100,000 values once YAML aliases are expanded",
    "input-alias-loop.yaml": r"input-alias-loop\.yaml: a YAML alias refers to a mapping or list that contains it$",
    "input-too-deep.yaml": r"input-too-deep\.yaml: nested more than 64 deep$",
}

MANY = "input-unknown-keys.yaml"  # 4. 100 unknown keys: 20 lines and a count of the rest
MEMORY_LIMIT_BYTES = 2**30
MAX_SCENARIO_BYTES = 2**20  # sim.scenario's bound, written out so that this file runs against code without it
TIMEOUT_S = 120


def cnsim(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    """Exit status and stderr lines of ``cnsim ARGS``, in this process."""
    status = main(args)
    return status, capsys.readouterr().err.splitlines()


def test_every_hostile_input_file_is_a_case() -> None:
    files = {path.name for path in HOSTILE.glob("input-*")}
    assert files == set(CASES) | set(BOUNDED) | {MANY}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_file_fails_with_one_line_naming_the_field(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = cnsim(["run", str(HOSTILE / name)], capsys)
    assert status == EXIT_USAGE
    assert len(lines) == 1, lines
    assert re.match(r"cnsim: error: " + CASES[name], lines[0]), lines[0]


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


def cnsim_bounded(args: list[str]) -> tuple[int, list[str]]:
    """Exit status and stderr lines of ``cnsim ARGS`` in a subprocess limited to 1 GiB and TIMEOUT_S:
    without the bounds, an alias bomb fills any memory."""
    done = subprocess.run(
        [sys.executable, "-m", "cnsim", *args],
        capture_output=True, text=True, timeout=TIMEOUT_S, preexec_fn=_limited,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    return done.returncode, done.stderr.splitlines()


@pytest.mark.parametrize("name", sorted(BOUNDED))
def test_alias_bombs_and_deep_nesting_are_refused_before_they_grow(name: str) -> None:
    status, lines = cnsim_bounded(["run", str(HOSTILE / name)])
    assert status == EXIT_USAGE, lines[-20:]
    assert len(lines) == 1, lines
    assert re.match(r"cnsim: error: " + BOUNDED[name], lines[0]), lines[0]


def test_an_alias_bomb_in_an_override_is_refused_too() -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)
    ]
    status, lines = cnsim_bounded(["run", "mmc", "--set", "bomb={" + ", ".join(levels) + "}"])
    assert status == EXIT_USAGE, lines[-20:]
    assert lines == ["cnsim: error: --set bomb: more than 100,000 values once YAML aliases are expanded "
                     "(long samples belong in a CSV file: dist: empirical, file: ...)"]


def test_many_unknown_keys_show_twenty_lines_and_a_count(capsys: pytest.CaptureFixture[str]) -> None:
    status, lines = cnsim(["run", str(HOSTILE / MANY)], capsys)
    assert status == EXIT_USAGE
    assert len(lines) == 21
    assert lines[:20] == [f"cnsim: error: unknown{i:03d}: unknown key (got {i})" for i in range(20)]
    assert lines[-1] == "cnsim: error: ... and 80 more"


def test_a_file_over_the_size_bound_is_refused_before_parsing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "large.yaml"
    path.write_text("model: queueing.station\narrival_rate: 0.5\nrequests: 1000\n#" + "x" * MAX_SCENARIO_BYTES + "\n")
    status, lines = cnsim(["run", str(path)], capsys)
    assert status == EXIT_USAGE
    assert lines == ["cnsim: error: large.yaml: larger than 1 MiB, too large for a scenario"]


@pytest.mark.parametrize("level", ["1.5", "0", "1", "-0.5", "nan"])
def test_confidence_outside_zero_one_is_refused_naming_the_option(
    level: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, lines = cnsim(["run", "mmc", "--set", "requests=500", "-r", "2", "--confidence", level], capsys)
    assert status == EXIT_USAGE
    assert len(lines) == 1 and lines[0].startswith("cnsim: error: --confidence: must be between 0 and 1"), lines
