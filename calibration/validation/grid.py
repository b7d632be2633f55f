"""The generalization grid: server configurations one setting away from a GC-heavy base, each measured
several times, interleaved, every attempt kept.

The shipped campaign (:mod:`calibration.validation.experiments`) holds one
configuration at four loads. The grid asks whether the simulator follows the
real servers when a setting changes: a **base** (Go, GOMAXPROCS 1, live heap
256 MiB, 1 MiB allocated per request in 1 KiB objects, GOGC 100, 1 ms of CPU)
and **one-factor variations** of it (:data:`VARIATIONS`: live heap 16, 64 and
512 MiB; allocation 64 KiB, 256 KiB and 2 MiB; object size 64 B, 16 and 64 KiB; GOGC 50
and 400; GOMAXPROCS 2; CPU 0.3 and 3 ms), and the Node.js server (1 core) at
the base and with 3 ms of CPU or 64 KiB allocated (one change each), each at
:data:`GRID_FRACTIONS` of its capacity.

**Repetitions, interleaved.** The campaign runs in rounds; each round runs
every point once (configuration by configuration, each configuration's loads
in a row), so a repetition of a point is never next to another repetition
of it, and a slow drift of the machine shows as spread between repetitions
rather than as a difference between points. **Capacity is measured afresh for
each configuration in each round** (the closed-loop run of
:func:`~calibration.validation.experiments.measure_capacity`), so that the
rate follows the machine's speed in that round; the repetitions of a point
therefore have slightly different rates (each recorded in its config.json;
``cnsim validate`` simulates their mean).

**Every attempt is kept.** A run with connection waits (``pool_waits``: a
request found no idle connection and ``valload`` opened one, counted in
``new_conns``) is a result, not a failure, and is not repeated. A run during
which other processes used more than ``max_foreign_cores`` is repeated (up to
``attempts`` in all) and kept beside the repetition in
``repN/attemptK-disturbed/``; the last attempt is kept even if disturbed
(its ``foreign_cores`` says so).

Layout under ``<out>`` (default ``calibration/validation/grid``):
``<point>/repN/{config.json,summary.json,latency.csv.gz}`` as in the shipped
campaign, ``<point>`` named from its settings
(``go-p1-h256-a1024k-o1024-g100-c1000us-60pct``), and ``grid.json``, the
grid's definition. A repetition is written under ``<point>/.repN.partial/``
and renamed when done: an interrupted campaign (Ctrl-C, SIGTERM) keeps every
finished repetition, and running it again with the same ``--out`` skips them
(resume).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from calibration import harness
from calibration.validation.experiments import (
    VALIDATION_ROOT, Group, ServerStart, Settings, _attempts, _capacity_problem, measure_capacity, memory_touch,
    run_experiment,
)
from calibration.validation.machine import wait_until_quiet

GRID_ROOT = VALIDATION_ROOT / "grid"
GRID_FRACTIONS = (0.3, 0.6, 0.85)
REPETITIONS = 3
FACTORS = ("live_heap_mib", "alloc_bytes", "alloc_chunk_bytes", "gogc", "cores", "cpu_s")
"""The settings a variation changes, one at a time."""


@dataclass(frozen=True)
class GridPoint:
    """One server configuration of the grid (measured at each of :data:`GRID_FRACTIONS`)."""

    runtime: str  # "go" | "node"
    cores: int
    live_heap_mib: int
    alloc_bytes: int
    alloc_chunk_bytes: int
    gogc: int | None  # None for Node.js
    cpu_s: float
    varied: str = "base"
    """The setting changed from the base (``base`` for the base itself)."""

    @property
    def name(self) -> str:
        parts = [f"{self.runtime}-p{self.cores}", f"h{self.live_heap_mib}", f"a{self.alloc_bytes // 1024}k",
                 f"o{self.alloc_chunk_bytes}"]
        if self.gogc is not None:
            parts.append(f"g{self.gogc}")
        parts.append(f"c{round(self.cpu_s * 1e6)}us")
        return "-".join(parts)

    @property
    def group(self) -> Group:
        return Group(self.name, self.runtime, self.cores)

    def experiment_name(self, fraction: float) -> str:
        return self.group.experiment_name(fraction)

    def settings(self, base: Settings) -> Settings:
        """``base`` (durations, connections, quiet-machine rules) with this point's server settings."""
        return replace(base, cpu_s=self.cpu_s, alloc_bytes=self.alloc_bytes, alloc_chunk_bytes=self.alloc_chunk_bytes,
                       live_heap_mib=self.live_heap_mib, gogc=self.gogc if self.gogc is not None else base.gogc)

    programs: ClassVar[tuple[str, ...]] = ("valserver", "valload")
    """The harness programs its runs need."""

    def start(self, settings: Settings, binaries: dict[str, Path], cache: Path) -> ServerStart | None:
        """What starts the system under test: None, the group's server."""
        return None

    def described(self) -> dict[str, Any]:
        """What its runs' config.json adds about the system under test: nothing more for one server."""
        return {}


class Point(Protocol):
    """What a campaign of repeated, interleaved points measures (a :class:`GridPoint`, or a chain of services,
    :class:`~calibration.validation.chain.ChainPoint`)."""

    programs: ClassVar[tuple[str, ...]]
    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def varied(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def group(self) -> Group: ...

    def experiment_name(self, fraction: float) -> str: ...

    def settings(self, base: Settings) -> Settings: ...

    def start(self, settings: Settings, binaries: dict[str, Path], cache: Path) -> ServerStart | None: ...

    def described(self) -> dict[str, Any]: ...


P = TypeVar("P", bound=Point)


BASE = GridPoint("go", 1, 256, 2**20, 1024, 100, 1e-3)
VARIATIONS: tuple[tuple[str, Any], ...] = (
    ("live_heap_mib", 16), ("live_heap_mib", 64), ("live_heap_mib", 512),
    ("alloc_bytes", 64 * 1024), ("alloc_bytes", 256 * 1024), ("alloc_bytes", 2 * 2**20),
    ("alloc_chunk_bytes", 64), ("alloc_chunk_bytes", 16 * 1024), ("alloc_chunk_bytes", 64 * 1024),
    ("gogc", 50), ("gogc", 400),
    ("cores", 2),
    ("cpu_s", 0.3e-3), ("cpu_s", 3e-3),
)
NODE_BASE = replace(BASE, runtime="node", gogc=None)
NODE_VARIATIONS: tuple[tuple[str, Any], ...] = (("cpu_s", 3e-3), ("alloc_bytes", 64 * 1024))


def grid_points() -> list[GridPoint]:
    """The base, its Go variations, the Node.js base and its variations."""
    return [BASE, *(replace(BASE, **{factor: value}, varied=factor) for factor, value in VARIATIONS),
            NODE_BASE, *(replace(NODE_BASE, **{factor: value}, varied=factor) for factor, value in NODE_VARIATIONS)]


def quick_points() -> list[GridPoint]:
    """Two points for a smoke run: the base and its 16 MiB live heap variation (one factor apart)."""
    return [BASE, replace(BASE, live_heap_mib=16, varied="live_heap_mib")]


def grid_settings() -> Settings:
    """Durations and connections of the grid's runs: 16 s, 5 s of warm-up, 512 connections (the slow points
    queue deeply; a request that still finds none opens one, counted in ``new_conns``)."""
    return Settings(duration_s=16.0, warmup_s=5.0, conns=512)


def quick_settings() -> Settings:
    """A smoke-size grid run (1 s runs, for tests of the programs, not for validation)."""
    return replace(Settings.quick(), conns=64)


def select_points(points: Sequence[P], only: Sequence[str] | None) -> list[P]:
    """The points whose name contains any of ``only`` (all if none given); ValueError if none matches."""
    if not only:
        return list(points)
    chosen = [point for point in points if any(part in point.name for part in only)]
    if not chosen:
        raise ValueError(f"--only-point: no point matches {', '.join(map(repr, only))} "
                         f"(points: {', '.join(point.name for point in points)})")
    return chosen


def repetition_done(out_root: Path, point: Point, fraction: float, repetition: int) -> bool:
    return (out_root / point.experiment_name(fraction) / f"rep{repetition}" / "summary.json").is_file()


def run_grid(
    out_root: Path = GRID_ROOT,
    points: Sequence[Point] | None = None,
    settings: Settings | None = None,
    fractions: Sequence[float] = GRID_FRACTIONS,
    repetitions: int = REPETITIONS,
    progress: Callable[[str], None] | None = None,
    on_done: Callable[[Path | None], None] | None = None,
) -> list[Path]:
    """Measure every (point, fraction) ``repetitions`` times in interleaved rounds; the repetition folders
    written by this call. ``on_done`` gets each repetition's folder, or None for one already present
    (skipped: resume); ``progress`` messages. Interrupted (KeyboardInterrupt; ``cnsim`` turns SIGTERM into
    one), it keeps every finished repetition."""
    if repetitions < 1:
        raise ValueError(f"--repetitions: must be >= 1 (got {repetitions})")
    points = list(points if points is not None else grid_points())
    base = settings or grid_settings()
    say = progress or (lambda message: None)
    done = on_done or (lambda folder: None)
    out_root.mkdir(parents=True, exist_ok=True)
    definition = {"points": [{"name": p.name, **asdict(p)} for p in points], "fractions": list(fractions),
                  "repetitions": repetitions, "settings": asdict(base),
                  "capacity": "measured afresh for each configuration in each round"}
    cache = harness.cache_dir()
    say("building the harness programs")
    binaries = harness.build(sorted({program for point in points for program in point.programs}), cache)
    definition["memory_touch"] = memory_touch(base, say)
    (out_root / "grid.json").write_text(json.dumps(definition, indent=2, sort_keys=True) + "\n")
    written: list[Path] = []
    for repetition in range(1, repetitions + 1):
        for point in points:
            todo = [f for f in fractions if not repetition_done(out_root, point, f, repetition)]
            for _ in range(len(fractions) - len(todo)):
                done(None)
            if not todo:
                continue
            settings_here = point.settings(base)
            start = point.start(settings_here, binaries, cache)
            capacity = _attempts(
                f"round {repetition}: {point.name}: capacity", settings_here, say,
                lambda _busy, _earlier: _capacity_problem(
                    measure_capacity(point.group, settings_here, binaries, cache, start), settings_here))  # noqa: B023
            for fraction in todo:
                written.append(run_repetition(point, fraction, repetition, capacity, settings_here, binaries,
                                              cache, out_root, say, start))
                done(written[-1])
    return written


def run_repetition(point: Point, fraction: float, repetition: int, capacity: dict[str, Any],
                   settings: Settings, binaries: dict[str, Path], cache: Path, out_root: Path,
                   say: Callable[[str], None], start: ServerStart | None = None) -> Path:
    """One repetition of a point, written to ``<point>/repN/``; disturbed attempts kept in it."""
    point_dir = out_root / point.experiment_name(fraction)
    final, staging = point_dir / f"rep{repetition}", point_dir / f".rep{repetition}.partial"
    staging.mkdir(parents=True, exist_ok=True)
    for left in sorted(staging.glob("attempt*")):  # from an interrupted run: kept, never lost
        if left.is_dir() and not left.name.endswith(("-disturbed", "-interrupted")):
            left.rename(left.with_name(f"{left.name}-interrupted"))
    earlier = sorted(p.name for p in staging.glob("attempt*") if p.is_dir())
    number = len(earlier)
    rate = fraction * capacity["throughput_rps"]
    label = f"round {repetition}: {point.experiment_name(fraction)}: {rate:.0f} req/s"
    while True:
        number += 1
        busy = wait_until_quiet(settings.quiet_cores, settings.quiet_wait_s, say)
        say(label)
        attempt = staging / f"attempt{number}"
        grid = {"point": point.name, "varied": point.varied, "repetition": repetition, "attempt": number,
                "attempts_kept": list(earlier)}  # folders beside this one's files in repN/
        folder, foreign = run_experiment(point.group, fraction, capacity, settings, binaries, cache, out_root, busy,
                                         earlier, folder=attempt, extra_config={"grid": grid, **point.described()},
                                         start=start)
        disturbed = foreign is not None and foreign > settings.max_foreign_cores
        if disturbed and number < settings.attempts:
            say(f"{label}: other processes used {foreign:.2f} cores meanwhile; kept, running it again")
            folder.rename(staging / f"attempt{number}-disturbed")
            earlier.append(f"attempt{number}-disturbed")
            continue
        break
    for path in folder.iterdir():
        path.rename(staging / path.name)
    folder.rmdir()
    staging.rename(final)
    return final
