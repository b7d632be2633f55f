"""Quantities with units, as written in scenario files.

Simulated time is a float number of seconds inside the engine and sizes are a
number of bytes. Scenario files may write either a plain number (already in
seconds or bytes) or a string with a unit: ``"250us"``, ``"2ms"``, ``"1.5s"``,
``"4GiB"``, ``"8KB"``. Decimal prefixes (kB, MB, GB) are powers of 1000 and
binary ones (KiB, MiB, GiB) powers of 1024, as in IEC 80000-13.
"""

from __future__ import annotations

import math
import re

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
        known = ", ".join(units)
        raise ValueError(f"unknown unit {unit!r} in {value!r} for a {what} (known: {known})")
    return _checked(float(number) * units[unit], value, what)


def _checked(number: float, value: object, what: str) -> float:
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"a {what} must be a finite number >= 0, got {value!r}")
    return number


def parse_duration(value: object) -> float:
    """Seconds from ``2ms``, ``250us``, ``1.5s``, ``3min`` or a plain number of seconds."""
    return _parse(value, DURATION_UNITS, "duration")


def parse_size(value: object) -> float:
    """Bytes from ``4GiB``, ``8KB``, ``512B`` or a plain number of bytes."""
    return _parse(value, SIZE_UNITS, "size")


def parse_rate(value: object) -> float:
    """Events per second from ``900/s``, ``2/ms`` or a plain number per second."""
    return _parse(value, RATE_UNITS, "rate")


def parse_quantity(value: object) -> float:
    """A plain number, or a number with any duration, size or rate unit.

    For values whose meaning the field gives (a distribution of durations or of
    sizes): ``2ms`` is 0.002, ``8KiB`` is 8192.
    """
    return _parse(value, {**DURATION_UNITS, **SIZE_UNITS, **RATE_UNITS}, "quantity")
