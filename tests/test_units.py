"""sim.units: quantities with units, as scenario files write them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.units import (
    MAX_QUANTITY,
    MIN_RATE,
    parse_as,
    parse_duration,
    parse_number,
    parse_quantity,
    parse_rate,
    parse_size,
    split_unit,
    write_quantity,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250us", 250e-6),
        ("250µs", 250e-6),
        ("2ms", 2e-3),
        ("1.5s", 1.5),
        ("1.5 s", 1.5),
        (".5ms", 0.5e-3),
        ("3min", 180.0),
        ("2h", 7200.0),
        ("40ns", 40e-9),
        ("1e-3s", 1e-3),
        ("7", 7.0),
        (0.25, 0.25),
        (3, 3.0),
    ],
)
def test_durations_in_seconds(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-12)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4GiB", 4 * 2**30),
        ("8KiB", 8 * 1024),
        ("16MiB", 16 * 2**20),
        ("8KB", 8_000),
        ("8kB", 8_000),
        ("2MB", 2_000_000),
        ("1GB", 1e9),
        ("512B", 512),
        ("1TiB", 2**40),
        (4096, 4096),
    ],
)
def test_sizes_in_bytes_decimal_and_binary_prefixes(text: object, size: float) -> None:
    assert parse_size(text) == pytest.approx(size, rel=1e-12)


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("900/s", 900.0), ("2/ms", 2000.0), ("120/min", 2.0), ("3600/h", 1.0), ("1e3/s", 1000.0), (80, 80.0)],
)
def test_rates_per_second(text: object, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second, rel=1e-12)


def test_quantity_accepts_any_unit() -> None:
    assert parse_quantity("2ms") == pytest.approx(0.002)
    assert parse_quantity("8KiB") == 8192
    assert parse_quantity("50/s") == 50
    assert parse_quantity("1.25") == 1.25


@pytest.mark.parametrize(
    ("parse", "value"),
    [
        (parse_duration, "2 parsecs"),
        (parse_duration, "4GiB"),  # a size is not a duration
        (parse_duration, "fast"),
        (parse_duration, ""),
        (parse_duration, "ms"),
        (parse_size, "2ms"),  # a duration is not a size
        (parse_size, "8 kilobytes"),
        (parse_rate, "5/fortnight"),
        (parse_rate, "2ms"),
        (parse_quantity, "3 furlongs"),
    ],
)
def test_bad_units_give_one_line_error_naming_the_value(parse, value: str) -> None:
    with pytest.raises(ValueError) as info:
        parse(value)
    message = str(info.value)
    assert repr(value) in message
    assert "\n" not in message


@pytest.mark.parametrize("value", [None, True, [1, "ms"], {"ms": 2}])
def test_values_of_the_wrong_type_are_refused_by_name(value: object) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(value)
    assert repr(value) in str(info.value)
    assert "\n" not in str(info.value)


def test_error_lists_the_known_units() -> None:
    with pytest.raises(ValueError, match=r"known: .*ms"):
        parse_duration("2 parsecs")


@pytest.mark.parametrize(
    ("value", "unit", "text", "rounded"),
    [
        (50 * 1e-6, "s", "50us", "50us"),  # 4.9999999999999996e-05
        (5.516657000000001e-07, "s", "551.6657000000001ns", "551.7ns"),
        (1.1111111111111112, "s", "1.1111111111111112s", "1.111s"),
        (180.0, "s", "180s", "180s"),
        (0.0, "s", "0s", "0s"),
        (64 * 2**20, "bytes", "64MiB", "64MiB"),
        (8000.0, "bytes", "8kB", "8kB"),
        (8443000.0, "bytes", "8443kB", "8.443MB"),
        (5000.0, "1/s", "5000/s", "5000/s"),
    ],
)
def test_write_quantity_as_a_scenario_file_would(value: float, unit: str, text: str, rounded: str) -> None:
    assert write_quantity(value, unit) == text
    assert write_quantity(value, unit, digits=4) == rounded


@given(st.floats(min_value=0, max_value=MAX_QUANTITY, allow_nan=False), st.sampled_from(["s", "bytes", "1/s"]))
def test_written_quantities_read_back_exactly(value: float, unit: str) -> None:
    assert parse_quantity(write_quantity(value, unit)) == value


def test_names_carry_their_unit_in_a_suffix() -> None:
    assert split_unit("sojourn_s") == ("sojourn", "s")
    assert split_unit("heap_bytes") == ("heap", "bytes")
    assert split_unit("throughput_per_second") == ("throughput", "1/s")
    assert split_unit("utilisation") == ("utilisation", None)


# --- dimensions and bounds (issue 20: a quantity of the wrong kind was read as a number) ---


@pytest.mark.parametrize(
    ("parse", "value", "message"),
    [
        (parse_duration, "8KiB", "expected a duration, not a size ('8KiB')"),
        (parse_duration, "2/s", "expected a duration, not a rate ('2/s')"),
        (parse_size, "2ms", "expected a size, not a duration ('2ms')"),
        (parse_rate, "4GiB", "expected a rate, not a size ('4GiB')"),
        (parse_number, "8KiB", "expected a number, not a size ('8KiB')"),
    ],
)
def test_a_unit_of_another_dimension_is_named_as_such(parse, value: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse(value)
    assert str(info.value) == message


def test_quantities_are_bounded_by_what_the_engine_can_hold() -> None:
    assert parse_duration(MAX_QUANTITY) == MAX_QUANTITY
    assert parse_rate(0) == 0.0 and parse_rate(MIN_RATE) == MIN_RATE
    with pytest.raises(ValueError, match=r"^a duration must be at most 1e\+15 s, got 1e\+308$"):
        parse_duration(1e308)
    with pytest.raises(ValueError, match=r"^a size must be at most 1e\+15 B, got '1000TiB'$"):
        parse_size("1000TiB")
    with pytest.raises(ValueError, match=r"^a rate must be 0 or at least 1e-15/s, got 1e-300$"):
        parse_rate(1e-300)


def test_parse_as_reads_each_dimension() -> None:
    assert parse_as("2ms", "duration") == pytest.approx(0.002)
    assert parse_as("8KiB", "size") == 8192
    assert parse_as("2/ms", "rate") == 2000
    assert parse_as("8KiB", "quantity") == 8192
    with pytest.raises(ValueError, match="not a size"):
        parse_as("8KiB", "duration")


@pytest.mark.parametrize("value", [True, "inf", float("nan"), "2ms", [1], 1e300])
def test_a_plain_number_refuses_booleans_units_and_infinities(value: object) -> None:
    with pytest.raises(ValueError):
        parse_number(value)


def test_a_plain_number_may_be_negative() -> None:
    assert parse_number(-6.5) == -6.5
    assert parse_number("0.25") == 0.25
