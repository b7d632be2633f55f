"""Quantities with units, as written in scenario files.

Simulated time is a float number of seconds inside the engine and sizes are a
number of bytes. Scenario files may write either a plain number (already in
seconds, bytes or events per second) or a string with a unit: ``"250us"``,
``"2ms"``, ``"1.5s"``, ``"4GiB"``, ``"8KB"``, ``"900/s"``. Decimal prefixes
(kB, MB, GB) are powers of 1000 and binary ones (KiB, MiB, GiB) powers of 1024,
as in IEC 80000-13.

Every quantity has a dimension, and a unit of another dimension is an error:
``8KiB`` is not a duration and ``2/s`` is not a service time. A quantity is a
finite number from 0 to :data:`MAX_QUANTITY` in its base unit; a rate other
than 0 is at least :data:`MIN_RATE`.

The other way, :func:`write_quantity` writes a number of seconds, bytes or
events per second as a scenario file would (``4.9999999999999996e-05`` seconds
as ``50us``), and :data:`UNIT_SUFFIXES` says which unit a metric's or a
parameter's name carries (``latency_s``, ``heap_bytes``).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Literal

DURATION_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "min": 60.0,
    "h": 3600.0,
}

SIZE_UNITS: dict[str, float] = {
    "B": 1,
    "kB": 1e3,
    "KB": 1e3,
    "MB": 1e6,
    "GB": 1e9,
    "TB": 1e12,
    "KiB": 2**10,
    "MiB": 2**20,
    "GiB": 2**30,
    "TiB": 2**40,
}

RATE_UNITS: dict[str, float] = {"/s": 1.0, "/ms": 1e3, "/min": 1 / 60, "/h": 1 / 3600}

UNIT_SUFFIXES: dict[str, str] = {
    "s": "s", "ms": "ms", "us": "µs", "bytes": "bytes", "per_s": "1/s", "per_second": "1/s", "rate": "1/s",
}
"""Unit suffixes of metric and parameter names (a quantity that leaves the engine carries its unit in its name:
``latency_s``, ``heap_bytes``, ``throughput_per_second``) and the unit each stands for."""

SECONDS, BYTES, PER_SECOND = "s", "bytes", "1/s"
"""The units quantities have inside the engine, as :data:`UNIT_SUFFIXES` names them."""


Dimension = Literal["duration", "size", "rate", "number", "quantity"]
"""What a value measures: a duration (s), a size (B), a rate (/s), a plain number (no unit), or
``quantity``: any of the first three, for values whose meaning is not known here (parameter sets)."""

UNITS: dict[str, dict[str, float]] = {"duration": DURATION_UNITS, "size": SIZE_UNITS, "rate": RATE_UNITS}
BASE_UNITS: dict[str, str] = {"duration": " s", "size": " B", "rate": "/s", "number": "", "quantity": ""}

MAX_QUANTITY = 1e15
"""The largest quantity in its base unit: 1e15 s (32 million years), 1e15 B (1 PB), 1e15 per second.

Far above what any scenario means, and far below where the engine's float
arithmetic breaks: a histogram (:class:`sim.stats.Histogram`) keeps the sum of
squared deviations of its observations, which overflows to infinity once n·x²
passes 1.8e308 (x ≈ 1e154 for one observation), and a simulated clock that
adds such durations loses every digit of the ones that follow; below 1e15,
even 1e9 observations keep n·x² under 1e40.
"""
MIN_RATE = 1 / MAX_QUANTITY
"""The smallest rate other than 0: its mean gap, 1 / rate, is at most :data:`MAX_QUANTITY` seconds."""

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\d\s].*?)?\s*$")


def _parse(value: object, units: dict[str, float], what: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a {what}, got {value!r}")
    if isinstance(value, (int, float)):
        return _checked(float(value), value, what)
    if not isinstance(value, str):
        raise ValueError(f"expected a {what}, got {value!r}")
    match = _QUANTITY.match(value)
    if match is None:
        raise ValueError(f"cannot read {value!r} as a {what}")
    number, unit = match.groups()
    if unit is None:
        return _checked(float(number), value, what)
    if unit not in units:
        other = next((name for name, table in UNITS.items() if unit in table), None)
        if other is not None:
            raise ValueError(f"expected a {what}, not a {other} ({value!r})")
        known = ", ".join(units) or "none: a plain number"
        raise ValueError(f"unknown unit {unit!r} in {value!r} for a {what} (known: {known})")
    return _checked(float(number) * units[unit], value, what)


def _checked(number: float, value: object, what: str) -> float:
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"a {what} must be a finite number >= 0, got {value!r}")
    if number > MAX_QUANTITY:
        unit = BASE_UNITS.get(what, "")
        raise ValueError(f"a {what} must be at most {MAX_QUANTITY:g}{unit}, got {value!r}")
    return number


def parse_duration(value: object) -> float:
    """Seconds from ``2ms``, ``250us``, ``1.5s``, ``3min`` or a plain number of seconds."""
    return _parse(value, DURATION_UNITS, "duration")


def parse_size(value: object) -> float:
    """Bytes from ``4GiB``, ``8KB``, ``512B`` or a plain number of bytes."""
    return _parse(value, SIZE_UNITS, "size")


def parse_rate(value: object) -> float:
    """Events per second from ``900/s``, ``2/ms`` or a plain number per second (0, or at least :data:`MIN_RATE`)."""
    rate = _parse(value, RATE_UNITS, "rate")
    if 0 < rate < MIN_RATE:
        raise ValueError(f"a rate must be 0 or at least {MIN_RATE:g}/s, got {value!r}")
    return rate


def parse_number(value: object) -> float:
    """A plain finite number without a unit (a shape, a coefficient of variation, a weight); may be negative."""
    if isinstance(value, str):
        match = _QUANTITY.match(value)
        if match is not None and match.group(2) is not None:
            return _parse(value, {}, "number")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"expected a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"cannot read {value!r} as a number") from None
    if not math.isfinite(number) or abs(number) > MAX_QUANTITY:
        raise ValueError(f"a number must be finite and at most {MAX_QUANTITY:g} in size, got {value!r}")
    return number


def parse_quantity(value: object) -> float:
    """A plain number, or a number with any duration, size or rate unit.

    For values whose meaning is not known where they are read (a calibrated
    parameter set, a sweep's axis): ``2ms`` is 0.002, ``8KiB`` is 8192. A scenario's
    field says its dimension instead (:func:`parse_as`).
    """
    return _parse(value, {**DURATION_UNITS, **SIZE_UNITS, **RATE_UNITS}, "quantity")


def split_unit(name: str) -> tuple[str, str | None]:
    """``"sojourn_s"`` -> ``("sojourn", "s")``: a name without its unit suffix, and the unit
    (:data:`UNIT_SUFFIXES`); ``(name, None)`` for a name without one."""
    for suffix in sorted(UNIT_SUFFIXES, key=len, reverse=True):
        if name.endswith(f"_{suffix}"):
            return name[: -len(suffix) - 1], UNIT_SUFFIXES[suffix]
    return name, None


_WRITTEN_UNITS: dict[str, dict[str, float]] = {
    SECONDS: {unit: scale for unit, scale in DURATION_UNITS.items() if unit != "µs"},
    BYTES: {unit: scale for unit, scale in SIZE_UNITS.items() if unit != "KB"},
    PER_SECOND: {"/s": 1.0},
}
"""The units :func:`write_quantity` chooses from (ASCII ``us``, not its alias ``µs``; ``kB``, not ``KB``;
rates per second only)."""


def write_quantity(value: float, unit: str, digits: int | None = None) -> str:
    """``value`` (seconds, bytes or events per second: ``unit`` is ``"s"``, ``"bytes"`` or ``"1/s"``)
    as a scenario file writes it, in a unit of that kind.

    With ``digits`` None the text reads back as exactly ``value``, the shortest such text, a number
    from 1 to 1000 when two are as short (4.9999999999999996e-05 s is ``50us``, 67108864 bytes
    ``64MiB``, 5000 per second ``5000/s``); with ``digits``, rounded to that many significant
    digits in a unit where the number is from 1 to 1000 if there is one (5.516657e-07 s is
    ``551.7ns`` with 4).
    """
    if unit not in _WRITTEN_UNITS:
        raise ValueError(f"unit: must be one of {', '.join(_WRITTEN_UNITS)} (got {unit!r})")
    if not math.isfinite(value):
        return repr(float(value))
    units = _WRITTEN_UNITS[unit]
    if value == 0:
        return f"0{next(name for name, scale in units.items() if scale == 1)}"
    candidates = []
    for order, (name, scale) in enumerate(units.items()):
        for places in range(1, 18) if digits is None else (digits,):
            number = float(f"{value / scale:.{places}g}")
            if digits is not None or number * scale == value:
                text = min(format(Decimal(repr(number)), "f").removesuffix(".0"), repr(number), key=len)
                length, outside = len(text) + len(name), not 1 <= abs(number) < 1000
                candidates.append(((length, outside) if digits is None else (outside, length), order, f"{text}{name}"))
                break
    return min(candidates)[-1]


_PARSERS = {
    "duration": parse_duration,
    "size": parse_size,
    "rate": parse_rate,
    "number": parse_number,
    "quantity": parse_quantity,
}


def parse_as(value: object, dimension: Dimension) -> float:
    """``value`` read as a quantity of ``dimension`` (see :data:`Dimension`)."""
    return _PARSERS[dimension](value)
