"""Replay of a trace file in the Azure public dataset's per-minute format.

The format (github.com/Azure/AzurePublicDataset, ``AzureFunctionsDataset2019.md``, "Function Invocation
Counts": ``invocations_per_function_md.anon.dNN.csv``): a CSV with a header row, the columns ``HashOwner``,
``HashApp``, ``HashFunction``, ``Trigger``, then ``1`` .. ``1440``, each function's number of invocations in
each minute of a day. A row is a function; its invocations in minute m are spread **uniformly at random**
within [60 (m - 1), 60 m) seconds (the file records counts, not times). The memory and execution time of a
function are the template's, or drawn from the paper's fits as for generated functions
(:mod:`models.faas.azure`).

A file with a missing or misplaced column, a row of the wrong length or a count that is not a whole number
>= 0 is refused with an error naming the file, the row or column and the value.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, PrivateAttr, model_validator

from sim.scenario import ScenarioPart

ID_COLUMNS = ("HashOwner", "HashApp", "HashFunction", "Trigger")
MINUTES = 1440
COLUMNS = (*ID_COLUMNS, *(str(m) for m in range(1, MINUTES + 1)))


@dataclass(frozen=True)
class TracedFunction:
    """One row of the trace: its ids, trigger and per-minute counts."""

    owner: str
    app: str
    function: str
    trigger: str
    counts: np.ndarray  # invocations in each minute, int64, length 1440


def read_trace(path: Path) -> list[TracedFunction]:
    """The functions of a per-minute trace file (module docstring), checked."""
    name = str(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as error:
        raise ValueError(f"{name}: cannot read the trace ({error.strerror})") from None
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{name}: empty file, expected a header row {', '.join(COLUMNS[:5])}, ..., 1440")
        header = [column.strip() for column in header]
        for index, expected in enumerate(COLUMNS):
            if index >= len(header):
                raise ValueError(f"{name}: column {expected!r} is missing (the header has {len(header)} columns, "
                                 f"the format {len(COLUMNS)})")
            if header[index] != expected:
                raise ValueError(f"{name}: column {index + 1} is {header[index]!r}, expected {expected!r}")
        if len(header) > len(COLUMNS):
            raise ValueError(f"{name}: unexpected column {header[len(COLUMNS)]!r} after '1440'")
        rows = []
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(COLUMNS):
                raise ValueError(f"{name}: line {line} has {len(row)} fields, expected {len(COLUMNS)}")
            counts = np.empty(MINUTES, dtype=np.int64)
            for minute, text in enumerate(row[len(ID_COLUMNS):]):
                try:
                    value = int(text)
                except ValueError:
                    value = -1
                if value < 0:
                    raise ValueError(f"{name}: line {line}, column {str(minute + 1)!r}: {text!r} is not a whole number "
                                     "of invocations >= 0") from None
                counts[minute] = value
            owner, app, function, trigger = (field.strip() for field in row[:4])
            rows.append(TracedFunction(owner, app, function, trigger, counts))
    if not rows:
        raise ValueError(f"{name}: no function in the trace")
    return rows


class TraceConfig(ScenarioPart):
    """Functions replayed from a per-minute trace file (module docstring)."""

    path: str = Field(description="the CSV file, absolute or relative to the working directory")
    template: dict[str, Any] = Field(
        default_factory=dict, description="settings of every replayed function (a function's fields but "
        "workload; without service or memory, they are drawn from the paper's fits)")
    _rows: list[TracedFunction] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _read(self) -> TraceConfig:
        try:
            self._rows = read_trace(Path(self.path))
        except ValueError as error:
            raise ValueError(f"path: {error}") from None
        return self

    @property
    def rows(self) -> list[TracedFunction]:
        return self._rows


def minute_times(counts: np.ndarray, rng: np.random.Generator) -> Iterator[float]:
    """Arrival times of per-minute counts, each minute's spread uniformly within it, in order."""
    for minute in np.flatnonzero(counts):
        start = 60.0 * float(minute)
        yield from (start + 60.0 * np.sort(rng.random(int(counts[minute])))).tolist()
