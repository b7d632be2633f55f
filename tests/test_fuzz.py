"""Fuzzing the scenario schemas of every model kind through the command line.

Each example takes a valid scenario of one model kind (its built-in scenario,
or a small one written here), replaces one field, anywhere in it, by a hostile
value (a wrong type, a quantity of the wrong kind, a sign, a size, a nesting)
or adds an unknown key, writes it to a file and runs ``cnsim run FILE``
in-process. Every run is bounded: at most ``SIZE`` requests or jobs, one
replication, ``WALL_S`` seconds of wall time, ``MEMORY_HEADROOM_BYTES`` more
address space (Linux).

What must hold, for every input: the command either runs (exit status 0) or
refuses it with one clean line per problem, ``cnsim: error: FIELD...``
(exit status 2); never a traceback, an internal error, or a hang. A run still
going after ``WALL_S`` counts as a hang unless the command warned that the
offered load makes the system unstable (a what-if it must run, whose queue
grows without bound: such a run is long by nature). The counts
of each outcome are printed at the end of the module (``pytest -s``), and
``CNSIM_FUZZ_EXAMPLES`` sets how many examples each kind gets (default 100).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import resource
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnsim.cli import main
from sim.scenario import load_scenario, resolved

SIZE = 100
"""Requests (or jobs) per fuzzed run."""
WALL_S = 30
"""The longest one fuzzed run may take before it counts as a hang."""
MEMORY_HEADROOM_BYTES = 2 * 2**30
"""The most address space one fuzzed run may add to this process before an allocation fails (which then
shows as an internal error, a failure here)."""
EXAMPLES = int(os.environ.get("CNSIM_FUZZ_EXAMPLES", "100"))
SIZE_FIELDS = ("requests", "jobs", "replications")

BASES: dict[str, dict[str, Any]] = {
    "queueing.station": {"model": "queueing.station", "arrival_rate": 0.8, "service_rate": 1.0, "servers": 1},
    "queueing.network": resolved(load_scenario("tandem")),
    "go.service": resolved(load_scenario("go-http-service")),
    "go.service fast": resolved(load_scenario("go-http-service", {"fidelity": "fast"})),
    "node.service": {"model": "node.service", "arrival_rate": 300, "handler": {"cpu": "1ms", "alloc": "64KiB"}},
    "native.service": {"model": "native.service", "arrival_rate": 300, "threads": 2, "handler": {"cpu": "1ms"}},
    "cpubound.compare": resolved(load_scenario("cpu-bound-goroutines-vs-workers")),
    "net.fanin": resolved(load_scenario("http1-pool-vs-http2")),
}

OUTCOMES: Counter[str] = Counter()

QUANTITIES = ["8KiB", "2/s", "1ms", "-5ms", "1e308", "1e-308", "0", "-1", "nan", "inf", "-inf", "10GiB", "3",
              "abc", "", "1 ms", "5ms/s", "1e400", "0x10", "2e9/s", "1KB", "99%"]
DIST_NAMES = ["exp", "const", "lognormal", "gamma", "uniform", "empirical", "mixture", "normal", ""]

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(QUANTITIES),
    st.text(max_size=12),
)
hostile = st.recursive(
    st.one_of(scalars, st.fixed_dictionaries({"dist": st.sampled_from(DIST_NAMES)},
                                             optional={"mean": scalars, "value": scalars, "cv": scalars,
                                                       "median": scalars, "p99": scalars, "low": scalars,
                                                       "high": scalars, "values": st.lists(scalars, max_size=4),
                                                       "components": st.lists(st.dictionaries(
                                                           st.sampled_from(["dist", "mean", "weight"]), scalars),
                                                           max_size=3)})),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.text(max_size=8), children, max_size=3)),
    max_leaves=8,
)


def extremes(original: Any) -> st.SearchStrategy[Any]:
    """Values of the original's own type at its edges: zero, negative, tiny, huge, not a number; a number as a
    quantity of each kind; a distribution's name swapped."""
    if isinstance(original, bool):
        return st.sampled_from([not original, 0, 1, 2, "yes"])
    if isinstance(original, (int, float)):
        return st.sampled_from([0, -1, -original, original * 1e9, original * 1e-9, 1e308, -1e308, 5e-324,
                                math.nan, math.inf, 10**18, f"{original}ms", f"{original}KiB", f"{original}/s"])
    if isinstance(original, str):
        return st.sampled_from(DIST_NAMES + QUANTITIES)
    return st.nothing()


def at(data: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        data = data[key]
    return data


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in ``data`` a value can be replaced: each key of each mapping, each item of each list."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*prefix, key)
            yield from paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield (*prefix, index)
            yield from paths(value, (*prefix, index))


def replaced(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A deep copy of ``data`` with the value at ``path`` replaced."""
    if not path:
        return value
    if isinstance(data, dict):
        return {key: replaced(item, path[1:], value) if key == path[0] else item for key, item in data.items()}
    return [replaced(item, path[1:], value) if index == path[0] else item for index, item in enumerate(data)]


def bounded(data: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    """The run kept small: SIZE requests or jobs and one replication, unless the fuzzed field is one of them,
    in which case a valid value is capped at SIZE."""
    out = dict(data)
    for field in SIZE_FIELDS:
        if field == "replications":
            small: Any = 1
        elif field in out or (field == "requests" and "jobs" not in out):
            small = SIZE
        else:
            continue
        if path[:1] != (field,):
            out[field] = small
        elif isinstance(out.get(field), (int, float)) and not isinstance(out[field], bool):
            value = out[field]
            out[field] = small if not math.isfinite(value) or value > small else value
    return out


class Hang(BaseException):
    """The run's wall-time bound: a BaseException, as KeyboardInterrupt is, so that the model's own error
    handling (which reports an Exception mid-run as the model's failure) lets it through."""


def _alarm(_signum: int, _frame: Any) -> None:
    raise Hang()


def run_cli(path: Path) -> tuple[int | str, str]:
    """``cnsim run PATH --json`` in this process: (exit status, or 'hang' / 'traceback'; what it wrote to stderr)."""
    stderr = io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
    limits = resource.getrlimit(resource.RLIMIT_AS)
    in_use = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    try:
        resource.setrlimit(resource.RLIMIT_AS, (in_use + MEMORY_HEADROOM_BYTES, limits[1]))
        signal.alarm(WALL_S)
        try:
            with contextlib.redirect_stderr(stderr):
                status: int | str = main(["run", str(path), "--json"], out=io.StringIO())
        finally:
            signal.alarm(0)
    except Hang:
        status = "hang"
    except BaseException as error:  # any escape from main is what this test looks for
        status = "traceback"
        stderr.write(f"{type(error).__name__}: {error}")
    finally:
        resource.setrlimit(resource.RLIMIT_AS, limits)  # before anything else allocates: pytest's report
        signal.signal(signal.SIGALRM, previous)
    return status, stderr.getvalue()


def outcome(status: int | str, stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    if status == 0:
        return "ran"
    if status == "hang" and any(line.startswith("cnsim: warning: ") and "unstable" in line for line in lines):
        return "long run, warned unstable"  # a legitimate what-if (offered load >= 1); the output said so
    if status == 2 and lines and all(line.startswith(("cnsim: error: ", "cnsim: warning: ")) for line in lines):
        return "clean error"
    return f"bad: {status}"


@pytest.mark.parametrize("kind", list(BASES))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])
@given(data=st.data())
def test_any_field_given_any_value_runs_or_is_refused_in_one_line(kind: str, tmp_path: Path, data: Any) -> None:
    base = BASES[kind]
    choices = [*paths(base), ("unknown_key",)]
    path = data.draw(st.sampled_from(choices), label="field")
    original = at(base, path) if path != ("unknown_key",) else None
    value = data.draw(st.one_of(hostile, extremes(original)), label="value")
    scenario = bounded(replaced(base, path, value) if path != ("unknown_key",) else {**base, "colour": value}, path)
    file = tmp_path / "fuzzed.yaml"
    file.write_text(yaml.safe_dump(scenario, sort_keys=False))
    status, stderr = run_cli(file)
    result = outcome(status, stderr)
    OUTCOMES[result] += 1
    assert not result.startswith("bad"), (kind, path, value, status, stderr[-2000:])


def teardown_module() -> None:
    total = sum(OUTCOMES.values())
    print(f"\nfuzz: {total} cases: " + ", ".join(f"{count} {name}" for name, count in sorted(OUTCOMES.items())))


FOUND: dict[str, str] = {
    # What the fuzzing found, kept fixed: counts of things built before the first event, bounded (MAX_COUNT).
    "fuzz-huge-gomaxprocs.yaml": r"^cnsim: error: gomaxprocs: Input should be less than or equal to 1000000",
    "fuzz-huge-callers.yaml": r"^cnsim: error: clients: Input should be less than or equal to 1000000",
    "fuzz-callers-product.yaml": r"clients × concurrency: at most 1,000,000 callers in all \(got 10,000,000\)$",
}
HOSTILE = Path(__file__).parent / "data" / "hostile"


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2**31, 2**31))


@pytest.mark.parametrize("name", list(FOUND))
def test_what_the_fuzzing_found_is_refused_in_one_line(name: str) -> None:
    """In a subprocess under a 2 GiB memory limit: before the bounds, each of these built its Ps or callers
    until the machine's memory ran out."""
    done = subprocess.run([sys.executable, "-m", "cnsim", "run", str(HOSTILE / name)], capture_output=True,
                          text=True, timeout=120, preexec_fn=_limit_memory, check=False)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, (done.returncode, done.stderr[-2000:])
    assert re.search(FOUND[name], lines[0]), lines[0]
