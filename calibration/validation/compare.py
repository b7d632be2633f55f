"""Simulate each shipped experiment from calibrated parameters only, and compare with the measurement.

For every experiment folder (see :mod:`calibration.validation.experiments`) the
simulated scenario takes from the experiment only what its server and load
generator were *told*: the request rate, GOMAXPROCS (or the Node process's
core), GOGC, the CPU burn, the bytes allocated per request and the live heap.
Nothing comes from the experiment's latencies; every other number comes from
``calibration/params`` (:mod:`sim.params`):

* **Go** (model kind ``go.service``, :mod:`models.services.go`): the
  handler's CPU is the configured burn plus ``go.http.server_cpu_s``, the CPU
  ``net/http`` spends per request on a reused HTTP/1.1 connection outside the
  handler (read and parse the request, write the response, the connection
  goroutine's netpoll wake-up), measured by a separate harness (``httplat``);
  its allocation is the configured bytes in buffers of ``alloc_chunk_bytes``
  (the valserver's request objects: a header with a pointer and a byte
  payload), whose allocation CPU is calibrated (:mod:`models.runtime.go.alloc`);
  the live heap is the valserver's graph of 64-byte nodes; the collector's
  pauses and mark costs are the calibrated defaults of :mod:`models.runtime.go.gc`.
* **Node.js** (model kind ``node.service``, :mod:`models.services.node`):
  the handler runs on the event loop, on one core, with CPU = the burn plus
  ``node.http.server_cpu_s`` (the ``http`` module's own CPU per request) plus
  the calibrated CPU of allocating the configured bytes in arrays of
  ``alloc_chunk_bytes`` (``node.alloc.cpu_s_vs_size``), on a V8 heap holding
  the live heap. Without that
  parameter set (or the model kind) the experiment is reported as pending, with
  the name of what is missing.
* **The machine**, the same for both (``machine`` of the scenario,
  :class:`models.machine.config.MachineConfig`): the handler's CPU is
  stretched by ``machine.work_stretch_vs_cpu`` (wall time over CPU time of the
  server's own burn loop on this machine, for burns of 0.3, 1 and 3 ms; where
  that set is missing, ``machine.work_stretch`` of the 1 ms burn), and a request that finds the
  server idle first waits a draw of ``machine.<runtime>_wake_s_vs_idle`` at
  the time the server had been idle (the extra round trip of an empty request
  to that runtime's server after such an idle time). Both come from the
  ``machine`` harness
  (:mod:`calibration.fitmachine`), not from the experiments. A Go server
  pinned to CPUs (``taskset``) runs on that many cores, its Ps' threads
  placed by the calibrated kernel (``machine.cores``,
  :mod:`models.machine.cores`) beside sysmon's thread, whose rounds take
  their CPU there (``machine.sysmon_*``, the ``sysmon`` harness,
  :mod:`models.runtime.go.detailed.sysmon`). Where the load generator ran on those CPUs
  too (GOMAXPROCS 2), it takes its turns on them with its calibrated CPU per request
  (``machine.load_cpu_vs_rate`` at the experiment's rate); its waits for a core
  count in the latency.
* **The client side**, the same for both: the simulated latency is the model's
  sojourn time plus a fixed delay, the median of ``go.http.h1_reused_s`` (a full
  round trip of a Go client to a Go server with an empty handler on a reused
  loopback connection, same harness) minus ``go.http.server_cpu_s``: what a
  round trip costs besides the server's CPU (the client's CPU, the loopback,
  the wake-ups). Adding a constant moves the mean and every quantile by it.

Not modelled, so expected to show as error: the load generator's dispatch
lateness on its own core (measured and kept in each ``summary.json``, not
subtracted).

Targets (:data:`TARGETS`): relative error of the mean and the median within
10 %, of the 99th percentile within 20 %, of the throughput within 10 %.

**Repeated experiments** (the generalization grid, :mod:`calibration.validation.grid`:
``<point>/repN/``): each point is one :class:`Experiment` with the summaries of
every repetition; it is simulated once, at the mean rate of its repetitions,
and a statistic is within target when the simulated value lies in the real
range widened by the target, ``[min × (1 - target), max × (1 + target)]`` over
the repetitions (with one run: the relative error against it, as before).
Beside them, **reported but not judged**: the GC CPU fraction and the GC
cycles per second, real (``summary.json``'s ``gc_window``: the server's
``/stats`` over the measured window) against simulated (:data:`GC_METRICS`).
**Differences** (:func:`ratio_checks`): for pairs of experiments at the same
load fraction whose settings differ in exactly one of
:data:`~calibration.validation.grid.FACTORS`, the simulated ratio of the mean
and of the p99 must be within :data:`RATIO_TARGET` of the real ratio, judged
as the levels are, against the real spread: each real ratio lies between b's
smallest repetition over a's largest and b's largest over a's smallest, and
the simulated ratio must lie in that range widened by the target
(``[low × (1 - target), high × (1 + target)]``; with one run each, the ratio
of the runs, as before). The stricter count against the ratio of the means
over repetitions is reported beside it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.dists import Constant, Distribution, LogNormal
from sim.params import available, param_dist, param_value
from sim.core import ModelError
from sim.run import Replications, RunResult
from sim.scenario import ScenarioBase, load_kind, load_scenario
from sim.parallel_runs import payload, result_of
from sim.sweep_executors import choose_executor

from calibration.validation.chain import DATAPLANES, chain_scenario
from calibration.validation.etcd import etcd_scenario, metrics_of
from calibration.validation.experiments import VALIDATION_ROOT
from calibration.validation.grid import FACTORS
from models.machine.cores import CORES_PARAMS
from models.runtime.go.constants import SYSMON_CORES_PARAMS
from models.runtime.go.alloc import WORD_BYTES
from models.runtime.go.gc import LIVE_OBJECT_BYTES, LIVE_POINTERS_PER_OBJECT

TARGETS = {"mean": 0.10, "p50": 0.10, "p99": 0.20, "throughput": 0.10}
"""Largest relative error |simulated - real| / real counted as within target, per statistic."""
STATISTICS = ("mean", "p50", "p99", "throughput")
WARMUP_FRACTION = 0.1
"""The share of simulated requests not measured when an experiment's config.json does not say its warm-up."""
DEFAULT_REPLICATIONS = 3
SEED = 1
MEDIAN_SAMPLES = 200_000

SERVER_CPU_PARAMS = {"go": "go.http.server_cpu_s", "node": "node.http.server_cpu_s"}
"""Per runtime: the calibrated CPU its HTTP server spends per request besides the handler."""
ROUND_TRIP_PARAM = "go.http.h1_reused_s"
ROUND_TRIP_SERVER_CPU_PARAM = "go.http.server_cpu_s"
"""The client side's fixed delay: the median round trip to a Go server less that server's CPU."""
MODEL_KINDS = {"go": "go.service", "node": "node.service"}
VALSERVER_INDEX_BYTES = WORD_BYTES
"""The Go valserver's live heap is ``-live-heap-mib`` of the harnesses' 64-byte nodes (``internal/nodegraph``)
and the slice indexing them, one pointer word per node: 12.5 % more heap than the flag says. The collector's
goal follows all of it, so it is counted in the live heap's bytes; per node and its slot (72 bytes) there is
one object to grey and three pointer words to scan, as in the mark-cost calibration (``fitalloc``)."""
VALSERVER_HEAP = {"live_object": LIVE_OBJECT_BYTES + VALSERVER_INDEX_BYTES, "live_pointers": LIVE_POINTERS_PER_OBJECT,
                  "live_layout": "indexed"}
"""The Go valserver's live heap shape (above): its nodes are reached through the index, which the collector
scans first (``gc.live_layout``); its request objects are ``alloc_chunk_bytes`` buffers: a header with a
pointer and a byte payload."""
MACHINE_STRETCH = "machine.work_stretch"
MACHINE_STRETCH_BY_CPU = "machine.work_stretch_vs_cpu"
"""The work stretch: by the request's CPU (0.3, 1 and 3 ms burns) where calibrated, else of the 1 ms burn."""
MACHINE_WAKE = {"go": "machine.go_wake_s_vs_idle", "node": "machine.node_wake_s_vs_idle"}
MACHINE_LOAD_CPU = "machine.load_cpu_vs_rate"
"""The calibrated machine each runtime's simulated experiments run on (see the module docstring)."""
GC_STATISTICS = ("gc_cpu_fraction", "gc_assist_fraction", "gc_cycles_per_s")
"""Reported beside the latency statistics, real against simulated, not counted in the tally."""
GC_METRICS: dict[str, dict[str, tuple[str, ...]]] = {
    "go": {"cpu_s": ("go.gc.cpu_s",), "cycles": ("go.gc.cycles",), "assist_s": ("go.gc.assist_cpu_s",)},
    "node": {"pause_s": ("node.gc.scavenge_pause_s", "node.gc.markcompact_pause_s"),
             "cycles": ("node.gc.scavenges", "node.gc.markcompacts")},
}
"""The model's metrics the simulated GC statistics come from. Go: the GC CPU fraction is the ``rate`` of
``go.gc.cpu_s`` (CPU-seconds per second) over GOMAXPROCS, the cycles per second the ``rate`` of
``go.gc.cycles``, the assist fraction the ``rate`` of ``go.gc.assist_cpu_s`` over GOMAXPROCS (the mark
assists: CPU the allocating goroutines spend marking). Node.js (no assists: NaN): the cycles per second
are the summed ``rate`` of the counters, the fraction the summed pause time per second (each histogram's
``mean`` times its counter's ``rate``) over the cores."""
RATIO_TARGET = 0.25
RATIO_STATISTICS = ("mean", "p99")
"""One-factor differences: |simulated ratio / real ratio - 1| within this, for these statistics."""


class Pending(Exception):
    """The simulated side of an experiment cannot run yet: a calibrated parameter or model kind is missing."""


@dataclass(frozen=True)
class Experiment:
    """One measured experiment: its folder's config.json and summary.json."""

    name: str
    folder: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    repetitions: tuple[dict[str, Any], ...] = ()
    """Every repetition's summary.json (a grid point, ``repN/``); empty for a single run (``summary``)."""

    @property
    def runtime(self) -> str:
        return str(self.config["runtime"])

    @property
    def summaries(self) -> tuple[dict[str, Any], ...]:
        return self.repetitions or (self.summary,)

    def real_values(self, statistic: str) -> list[float]:
        """The statistic in each repetition (GC statistics: those whose ``gc_window`` was measured)."""
        if statistic in GC_STATISTICS:
            windows = [s["gc_window"] for s in self.summaries if s.get("gc_window")]
            if statistic == "gc_assist_fraction":
                return [float(w["gc_cpu_s"]["assist"]) / (w["wall_s"] * w["cores"]) for w in windows
                        if isinstance(w.get("gc_cpu_s"), dict) and w["gc_cpu_s"].get("assist") is not None]
            key = "gc_cpu_fraction" if statistic == "gc_cpu_fraction" else "cycles_per_s"
            return [float(w[key]) for w in windows]
        key = "throughput_rps" if statistic == "throughput" else f"{statistic}_s"
        return [float(s[key]) for s in self.summaries]

    def real(self, statistic: str) -> float:
        """The mean over repetitions (NaN if none has it)."""
        values = self.real_values(statistic)
        return float(np.mean(values)) if values else math.nan


def load_experiments(root: Path = VALIDATION_ROOT, names: Sequence[str] | None = None) -> list[Experiment]:
    """The experiments under ``root``, ``names`` only if given: each a folder with config.json and
    summary.json, or with repetitions ``repN/`` holding them (a grid point, see :func:`load_point`)."""
    found = {
        path.parent.name: path.parent for path in sorted(Path(root).glob("*/summary.json"))
        if (path.parent / "config.json").is_file()
    }
    for path in sorted(Path(root).glob("*/rep*/summary.json")):
        if re.fullmatch(r"rep\d+", path.parent.name) and (path.parent / "config.json").is_file():
            found.setdefault(path.parent.parent.name, path.parent.parent)
    if names:
        unknown = [name for name in names if name not in found]
        if unknown:
            raise ValueError(f"--experiment: no experiment {', '.join(map(repr, unknown))} in {root} "
                             f"(known: {', '.join(found) or 'none'})")
        chosen = list(names)
    else:
        chosen = list(found)
    if not chosen:
        raise FileNotFoundError(f"no experiments (folders with config.json and summary.json) in {root}")
    return [
        Experiment(name, found[name], json.loads((found[name] / "config.json").read_text()),
                   json.loads((found[name] / "summary.json").read_text()))
        if (found[name] / "summary.json").is_file() else load_point(found[name])
        for name in chosen
    ]


def load_point(folder: Path) -> Experiment:
    """A repeated experiment (``folder/repN/``): the first repetition's config.json with ``rate_rps`` the mean
    rate of the repetitions (each in ``rate_rps_repetitions``) and ``foreign_cores`` the largest; a summary
    whose ``n`` is the mean count measured; and every repetition's summary."""
    reps = sorted((p for p in folder.glob("rep*") if re.fullmatch(r"rep\d+", p.name)
                   and (p / "summary.json").is_file() and (p / "config.json").is_file()),
                  key=lambda p: int(p.name[3:]))
    configs = [json.loads((rep / "config.json").read_text()) for rep in reps]
    summaries = tuple(json.loads((rep / "summary.json").read_text()) for rep in reps)
    rates = [float(c["rate_rps"]) for c in configs]
    foreign = [c["foreign_cores"] for c in configs if c.get("foreign_cores") is not None]
    config = {**configs[0], "rate_rps": float(np.mean(rates)), "rate_rps_repetitions": rates,
              "foreign_cores": max(foreign) if foreign else None, "repetitions": [rep.name for rep in reps]}
    summary = {**summaries[0], "n": round(float(np.mean([s["n"] for s in summaries])))}
    return Experiment(folder.name, folder, config, summary, summaries)


def median_of(dist: Distribution) -> float:
    """The median of a distribution: exact for a constant or a lognormal, else from a fixed-seed sample."""
    if isinstance(dist, Constant):
        return dist.mean
    if isinstance(dist, LogNormal):
        return math.exp(dist.mu)
    return float(np.median(dist.sample(np.random.default_rng(0), MEDIAN_SAMPLES)))


def _require_params(*names: str) -> None:
    missing = [name for name in names if name not in available()]
    if missing:
        raise Pending(f"calibrated parameter set(s) missing: {', '.join(missing)}")


def client_delay_s() -> float:
    """Fixed delay of a request besides the server: median ``go.http.h1_reused_s`` less ``go.http.server_cpu_s``."""
    _require_params(ROUND_TRIP_PARAM, ROUND_TRIP_SERVER_CPU_PARAM)
    round_trip = median_of(param_dist(ROUND_TRIP_PARAM))
    server_cpu = param_value(ROUND_TRIP_SERVER_CPU_PARAM)
    if round_trip < server_cpu:
        raise ValueError(f"{ROUND_TRIP_PARAM}: median {round_trip:.3g} s is below "
                         f"{ROUND_TRIP_SERVER_CPU_PARAM} {server_cpu:.3g} s")
    return round_trip - server_cpu


def http_costs(runtime: str) -> tuple[float, float]:
    """(server CPU per request, fixed client-side delay), seconds, from calibration; Pending if missing."""
    _require_params(SERVER_CPU_PARAMS[runtime])
    return param_value(SERVER_CPU_PARAMS[runtime]), client_delay_s()


def _taskset_cpus(argv: Sequence[str]) -> set[int] | None:
    """The CPUs of a ``taskset -c LIST`` command line (a comma list of CPUs and ranges); None if unpinned."""
    if len(argv) < 3 or Path(argv[0]).name != "taskset" or argv[1] != "-c":
        return None
    cpus: set[int] = set()
    for part in argv[2].split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def server_cores(config: dict[str, Any]) -> int | None:
    """How many CPUs the server was pinned to, or None if it was not."""
    server = _taskset_cpus(config["server"]["argv"])
    return None if server is None else len(server)


def shared_cores(config: dict[str, Any]) -> int | None:
    """How many CPUs the server shared with the load generator (it ran on some of the server's), or None."""
    server, load = _taskset_cpus(config["server"]["argv"]), _taskset_cpus(config["load"]["argv"])
    if server is None or load is None or not load & server:
        return None
    return len(server)


def scenario_for(experiment: Experiment, requests: int, replications: int) -> tuple[dict[str, Any], float]:
    """(scenario data, fixed delay to add to the sojourn) of an experiment; Pending if something is missing."""
    if experiment.config.get("chain"):
        return chain_scenario(experiment, requests, replications)
    if experiment.config.get("etcd"):
        return etcd_scenario(experiment, requests, replications)
    runtime = experiment.runtime
    kind = MODEL_KINDS.get(runtime)
    if kind is None:
        raise ValueError(f"{experiment.name}: config.json runtime {runtime!r} is neither 'go' nor 'node'")
    try:
        load_kind(kind)
    except Exception as error:  # the model kind is not installed (yet)
        raise Pending(f"model kind {kind!r} is not available: {error}") from None
    settings = experiment.config["settings"]
    server_cpu, fixed = http_costs(runtime)
    stretch = MACHINE_STRETCH_BY_CPU if MACHINE_STRETCH_BY_CPU in available() else MACHINE_STRETCH
    machine: dict[str, Any] = {"stretch": stretch, "wake": MACHINE_WAKE[runtime]}
    _require_params(*machine.values())
    cores = server_cores(experiment.config)
    if runtime == "go" and cores is not None:
        _require_params(*CORES_PARAMS, *SYSMON_CORES_PARAMS)
        machine["cores"] = cores
        if shared_cores(experiment.config) is not None:
            _require_params(MACHINE_LOAD_CPU)
            machine["load_cpu"] = MACHINE_LOAD_CPU
    base: dict[str, Any] = {
        "name": f"validate-{experiment.name}",
        "description": f"simulated counterpart of the experiment {experiment.name}",
        "model": kind,
        "arrival_rate": float(experiment.config["rate_rps"]),
        "requests": requests,
        "warmup": warmup_fraction(experiment),
        "replications": replications,
        "seed": SEED,
        "machine": machine,
    }
    handler = {"cpu": float(settings["cpu_s"]) + server_cpu, "alloc": float(settings["alloc_bytes"])}
    live_heap = float(settings["live_heap_mib"]) * 2**20
    if runtime == "go":
        scenario = {**base, "gomaxprocs": int(experiment.config["gomaxprocs"]), "handler": handler,
                    "gc": {"gogc": float(settings["gogc"]), **VALSERVER_HEAP,
                           "live_heap": live_heap * (1 + VALSERVER_INDEX_BYTES / LIVE_OBJECT_BYTES),
                           "alloc_object": float(settings["alloc_chunk_bytes"]), "alloc_kind": "buffers"}}
    else:
        scenario = {**base, "cores": int(experiment.config["cores"]),
                    "handler": {**handler, "alloc_object": float(settings["alloc_chunk_bytes"])},
                    "gc": {"live_heap": live_heap}}
    return scenario, fixed


@dataclass
class Simulated:
    """The simulated statistics of one experiment (latencies include the fixed delay)."""

    mean_s: float
    p50_s: float
    p99_s: float
    throughput_rps: float
    fixed_delay_s: float
    requests: int
    replications: int
    scenario: dict[str, Any]
    gc_cpu_fraction: float = math.nan
    gc_cycles_per_s: float = math.nan
    gc_assist_fraction: float = math.nan

    def value(self, statistic: str) -> float:
        if statistic in GC_STATISTICS:
            return float(getattr(self, statistic))
        return self.throughput_rps if statistic == "throughput" else getattr(self, f"{statistic}_s")


def _estimate(outcome: Any, metric: str, statistic: str) -> float:
    """The mean over replications of a metric's statistic; 0 for a counter or histogram never touched."""
    try:
        value = float(outcome.get(metric, statistic).mean)
    except KeyError:
        return 0.0
    return 0.0 if math.isnan(value) and statistic == "mean" else value


def simulated_gc(outcome: Any, runtime: str, cores: int) -> tuple[float, float, float]:
    """(GC CPU fraction, GC cycles per second, assist fraction or NaN) of a simulated run (:data:`GC_METRICS`)."""
    metrics = GC_METRICS[runtime]
    cycles = sum(_estimate(outcome, name, "rate") for name in metrics["cycles"])
    assist = math.nan
    if runtime == "go":
        busy = sum(_estimate(outcome, name, "rate") for name in metrics["cpu_s"])
        assist = sum(_estimate(outcome, name, "rate") for name in metrics["assist_s"]) / cores
    else:
        busy = sum(_estimate(outcome, pause, "mean") * _estimate(outcome, count, "rate")
                   for pause, count in zip(metrics["pause_s"], metrics["cycles"], strict=True))
    return busy / cores, cycles, assist


def warmup_fraction(experiment: Experiment) -> float:
    """The share of the run the real experiment did not measure (``warmup_s`` of ``duration_s``), so that
    the simulated run discards the same start: the server's first collections, whose pacer has no
    history yet, fall in the real warm-up and must in the simulated one too (with a fixed 10 %, the
    first cycle of a 256 MiB heap at 30 % load, 1.4 s in, held the simulated p99). Experiments that do
    not record their durations: :data:`WARMUP_FRACTION`."""
    settings = experiment.config.get("settings", {})
    warmup, duration = settings.get("warmup_s"), settings.get("duration_s")
    if warmup is None or duration is None:
        return WARMUP_FRACTION
    if not 0 <= float(warmup) < float(duration):
        raise ValueError(f"{experiment.name}: config.json settings.warmup_s {warmup!r} must be >= 0 and below "
                         f"settings.duration_s {duration!r}")
    return float(warmup) / float(duration)


def plan(experiment: Experiment, requests: int | None, replications: int) -> tuple[dict[str, Any], float, int]:
    """(scenario data, fixed delay, requests simulated) of an experiment: as many measured requests as it had
    (or ``requests``) after a warm-up of the real run's share (:func:`warmup_fraction`); Pending if something
    is missing."""
    matched = math.ceil(int(experiment.summary["n"]) / (1 - warmup_fraction(experiment)))
    count = min(matched, requests) if requests else matched
    data, fixed = scenario_for(experiment, count, replications)
    return data, fixed, count


def simulated(experiment: Experiment, data: dict[str, Any], fixed: float, count: int,
              outcome: Replications) -> Simulated:
    """The statistics of a run of ``experiment``'s scenario ``data`` (:func:`plan`)."""
    replications = len(outcome.results)
    sojourn, completed = (metrics_of(experiment) if experiment.config.get("etcd")
                          else ("requests.sojourn_s", "requests.completed"))
    latency = lambda statistic: outcome.get(sojourn, statistic).mean + fixed  # noqa: E731
    if data["model"] in MODEL_KINDS.values():
        cores = int(data["gomaxprocs"] if experiment.runtime == "go" else data["cores"])
        gc_fraction, gc_cycles, gc_assist = simulated_gc(outcome, experiment.runtime, cores)
    else:  # an architecture (a chain of services) or etcd: no collector simulated
        gc_fraction = gc_cycles = gc_assist = math.nan
    return Simulated(
        mean_s=latency("mean"), p50_s=latency("p50"), p99_s=latency("p99"),
        throughput_rps=outcome.get(completed, "rate").mean,
        fixed_delay_s=fixed, requests=count, replications=replications, scenario=data,
        gc_cpu_fraction=gc_fraction, gc_cycles_per_s=gc_cycles, gc_assist_fraction=gc_assist,
    )


def within_spread(value: float, real_min: float, real_max: float, target: float) -> bool:
    """``value`` inside the real range over repetitions widened by ``target``: the rule of the levels and of
    the one-factor ratios alike."""
    return real_min * (1 - target) <= value <= real_max * (1 + target)


@dataclass
class Row:
    """One statistic, real against simulated. ``real`` is the mean over repetitions; with several, the
    simulated value is within target inside the real range widened by the target (:attr:`low`, :attr:`high`);
    with one, when its relative error is within the target (the same range). ``target`` None: reported only."""

    statistic: str
    real: float
    simulated: float
    target: float | None
    real_min: float = math.nan
    real_max: float = math.nan
    repetitions: int = 1

    def __post_init__(self) -> None:
        if math.isnan(self.real_min):
            self.real_min = self.real
        if math.isnan(self.real_max):
            self.real_max = self.real

    @classmethod
    def of(cls, experiment: Experiment, statistic: str, simulated: float, target: float | None) -> Row:
        values = experiment.real_values(statistic)
        if not values:
            return cls(statistic, math.nan, simulated, target, repetitions=0)
        return cls(statistic, float(np.mean(values)), simulated, target, min(values), max(values), len(values))

    @property
    def error(self) -> float:
        return (self.simulated - self.real) / self.real if self.real else math.nan

    @property
    def low(self) -> float:
        return self.real_min * (1 - (self.target or 0.0))

    @property
    def high(self) -> float:
        return self.real_max * (1 + (self.target or 0.0))

    @property
    def within(self) -> bool:
        if self.target is None or math.isnan(self.real):
            return False
        if self.repetitions <= 1:
            return abs(self.error) <= self.target
        return within_spread(self.simulated, self.real_min, self.real_max, self.target)

    def to_json(self) -> dict[str, Any]:
        return {"real": self.real, "real_min": self.real_min, "real_max": self.real_max,
                "repetitions": self.repetitions, "simulated": self.simulated, "error": self.error,
                "target": self.target, "low": self.low, "high": self.high,
                "within": self.within if self.target is not None else None,
                "verdict": "reported" if self.target is None else ("within" if self.within else "miss")}


@dataclass
class Comparison:
    """Real against simulated for one experiment, or why it is pending."""

    experiment: Experiment
    rows: list[Row] = field(default_factory=list)
    simulated: Simulated | None = None
    pending: str | None = None
    reported: list[Row] = field(default_factory=list)
    """The GC statistics (:data:`GC_STATISTICS`), real against simulated, not judged."""

    def to_json(self) -> dict[str, Any]:
        config = self.experiment.config
        data: dict[str, Any] = {
            "experiment": self.experiment.name, "runtime": self.experiment.runtime, "cores": config.get("cores"),
            "rate_rps": config.get("rate_rps"), "rate_fraction": config.get("rate_fraction"),
            "rate_rps_repetitions": config.get("rate_rps_repetitions"),
            "repetitions": len(self.experiment.summaries), "pending": self.pending,
        }
        if self.simulated is not None:
            data["simulated"] = {"requests": self.simulated.requests, "replications": self.simulated.replications,
                                 "fixed_delay_s": self.simulated.fixed_delay_s, "scenario": self.simulated.scenario}
        data["statistics"] = {row.statistic: row.to_json() for row in self.rows}
        data["reported"] = {row.statistic: row.to_json() for row in self.reported}
        return data


def compare(
    experiments: Iterable[Experiment], requests: int | None = None, replications: int = DEFAULT_REPLICATIONS,
    on_done: Callable[[Any], None] | None = None, jobs: int = 1,
) -> list[Comparison]:
    """Simulate each experiment and compare mean, p50, p99 and throughput with the measurement; the
    replications of every experiment run in ``jobs`` worker processes (the sweep's pool,
    :mod:`sim.sweep_executors`), ``on_done`` called as each ends."""
    experiments = list(experiments)
    plans: list[tuple[dict[str, Any], float, int, ScenarioBase] | str] = []
    payloads: list[dict[str, Any]] = []
    owner: list[int] = []
    for index, experiment in enumerate(experiments):
        try:
            data, fixed, count = plan(experiment, requests, replications)
        except Pending as why:
            plans.append(str(why))
            continue
        scenario = load_scenario(data)
        plans.append((data, fixed, count, scenario))
        for replication in range(replications):
            payloads.append(payload(scenario, replication))
            owner.append(index)
    results: dict[int, list[RunResult]] = {index: [] for index in range(len(experiments))}
    for position, outcome, _running in choose_executor("processes", max(1, jobs))(payloads, max(1, jobs)):
        if "error" in outcome:
            error = outcome["error"]
            raise ModelError(f"{experiments[owner[position]].name}: {error['type']}: {error['message']}")
        results[owner[position]].append(result_of(payloads[position], outcome))
        if on_done is not None:
            on_done(results[owner[position]][-1])
    comparisons = []
    for index, (experiment, planned) in enumerate(zip(experiments, plans, strict=True)):
        if isinstance(planned, str):
            comparisons.append(Comparison(experiment, pending=planned))
            continue
        data, fixed, count, scenario = planned
        runs = sorted(results[index], key=lambda run: run.replication)
        sim = simulated(experiment, data, fixed, count, Replications(scenario, runs))
        rows = [Row.of(experiment, s, sim.value(s), TARGETS[s]) for s in STATISTICS]
        reported = [Row.of(experiment, s, sim.value(s), None) for s in GC_STATISTICS]
        comparisons.append(Comparison(experiment, rows, sim, reported=reported))
    return comparisons


def point_settings(config: dict[str, Any]) -> dict[str, Any]:
    """What an experiment's server was told, by :data:`~calibration.validation.grid.FACTORS` (GOGC None for
    Node.js), with its runtime (``chain`` for a chain of services) and a chain's data plane (its place in
    :data:`~calibration.validation.chain.DATAPLANES`, the order ratios are taken in; None for one server): the
    settings one-factor pairs compare."""
    settings = config["settings"]
    node = config["runtime"] == "node"
    chain = config.get("chain")
    return {"runtime": "chain" if chain else config["runtime"], "cores": int(config["cores"]),
            "dataplane": DATAPLANES.index(chain["dataplane"]) if chain else None,
            **{f: (None if node else int(settings[f])) if f == "gogc" else settings[f]
               for f in FACTORS if f != "cores"}}


def one_factor_pairs(comparisons: Sequence[Comparison]) -> list[tuple[Comparison, Comparison, str]]:
    """(a, b, factor) for every pair of compared (not pending) experiments of one runtime at the same load
    fraction whose settings differ in exactly one factor; ``a`` has its lower value."""
    # etcd's experiments have no server settings to pair on (calibration/validation/etcd.py)
    ready = [c for c in comparisons if c.pending is None and not c.experiment.config.get("etcd")]
    pairs = []
    for i, first in enumerate(ready):
        for second in ready[i + 1:]:
            one, two = point_settings(first.experiment.config), point_settings(second.experiment.config)
            same_load = math.isclose(float(first.experiment.config["rate_fraction"]),
                                     float(second.experiment.config["rate_fraction"]), abs_tol=1e-9)
            differ = [f for f in (*FACTORS, "dataplane") if one[f] != two[f]]
            if same_load and one["runtime"] == two["runtime"] and len(differ) == 1:
                factor = differ[0]
                pairs.append((first, second, factor) if one[factor] < two[factor] else (second, first, factor))
    return pairs


@dataclass
class RatioRow:
    """A one-factor difference: b's statistic over a's, real against simulated. ``real_ratio`` is the ratio of
    the means over repetitions, ``real_low`` and ``real_high`` the range of the ratio over the repetitions
    (b's smallest over a's largest, b's largest over a's smallest)."""

    a: str
    b: str
    factor: str
    statistic: str
    real_ratio: float
    simulated_ratio: float
    real_low: float
    real_high: float
    target: float = RATIO_TARGET

    @property
    def error(self) -> float:
        """Relative error against the ratio of the means."""
        return self.simulated_ratio / self.real_ratio - 1

    @property
    def within(self) -> bool:
        """Inside the real range of the ratio widened by the target (the rule the levels follow)."""
        return within_spread(self.simulated_ratio, self.real_low, self.real_high, self.target)

    @property
    def within_of_means(self) -> bool:
        """Within the target of the ratio of the means over repetitions (stricter with repetitions)."""
        return abs(self.error) <= self.target

    def to_json(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "factor": self.factor, "statistic": self.statistic,
                "real_ratio": self.real_ratio, "real_low": self.real_low, "real_high": self.real_high,
                "simulated_ratio": self.simulated_ratio, "error": self.error, "target": self.target,
                "within": self.within, "within_of_means": self.within_of_means}


def ratio_checks(comparisons: Sequence[Comparison]) -> list[RatioRow]:
    """For each one-factor pair (:func:`one_factor_pairs`), the ratio of :data:`RATIO_STATISTICS`."""
    rows = []
    for a, b, factor in one_factor_pairs(comparisons):
        assert a.simulated is not None and b.simulated is not None
        for statistic in RATIO_STATISTICS:
            real_a, real_b = a.experiment.real_values(statistic), b.experiment.real_values(statistic)
            rows.append(RatioRow(a.experiment.name, b.experiment.name, factor, statistic,
                                 b.experiment.real(statistic) / a.experiment.real(statistic),
                                 b.simulated.value(statistic) / a.simulated.value(statistic),
                                 min(real_b) / max(real_a), max(real_b) / min(real_a)))
    return rows


def tally(comparisons: Sequence[Comparison]) -> tuple[int, int, int]:
    """(statistics within target, statistics compared, experiments pending)."""
    rows = [row for c in comparisons for row in c.rows]
    return sum(row.within for row in rows), len(rows), sum(c.pending is not None for c in comparisons)


def _quantity(statistic: str, value: float) -> str:
    if math.isnan(value):
        return "-"
    if statistic == "throughput" or statistic == "gc_cycles_per_s":
        return f"{value:.1f}/s"
    if statistic in ("gc_cpu_fraction", "gc_assist_fraction"):
        return f"{value * 100:.1f} %"
    return f"{value * 1e3:.3f} ms"


def _real_cell(row: Row) -> str:
    if row.repetitions <= 1 or row.real_min == row.real_max:
        return _quantity(row.statistic, row.real)
    return f"{_quantity(row.statistic, row.real)} [{_quantity(row.statistic, row.real_min)}, " \
           f"{_quantity(row.statistic, row.real_max)}]"


def render(comparisons: Sequence[Comparison]) -> str:
    """One table per experiment (real, simulated, relative error, within target) and a closing tally."""
    lines = []
    for comparison in comparisons:
        experiment = comparison.experiment
        config = experiment.config
        etcd = config.get("etcd")
        lines.append(
            f"{experiment.name}: {etcd['version']}, {etcd['members']} member(s), {etcd['watchers']} watchers, "
            f"{float(config['rate_rps']):.0f} puts/s of {etcd['value_bytes']} B, {etcd['kind']}, "
            f"n={experiment.summary['n']}" if etcd else
            f"{experiment.name}: {experiment.runtime}, {config.get('cores')} core(s), "
            f"{float(config['rate_rps']):.0f} req/s ({float(config['rate_fraction']) * 100:.0f} % of capacity "
            f"{float(config['capacity']['throughput_rps']):.0f}/s), n={experiment.summary['n']}"
            + (f", other processes {config['foreign_cores']:.2f} cores" if config.get("foreign_cores") is not None
               else "")
        )
        if comparison.pending is not None:
            lines.append(f"  pending: {comparison.pending}")
            lines.append("")
            continue
        lines.append(f"  {'statistic':<10} {'real':>12} {'simulated':>12} {'error':>8}  target")
        for row in comparison.rows:
            verdict = "ok" if row.within else "MISS"
            lines.append(f"  {row.statistic:<10} {_real_cell(row):>12} "
                         f"{_quantity(row.statistic, row.simulated):>12} {row.error * 100:>+7.1f}%  "
                         f"±{(row.target or 0.0) * 100:.0f} % {verdict}")
        for row in comparison.reported:
            lines.append(f"  {row.statistic:<10} {_real_cell(row):>12} {_quantity(row.statistic, row.simulated):>12}"
                         f"{'':>9}  reported")
        lines.append("")
    ratios = ratio_checks(comparisons)
    if ratios:
        lines.append(f"One-factor differences (same load, b over a; simulated ratio within the real range over "
                     f"repetitions widened by {RATIO_TARGET * 100:.0f} %):")
        for ratio in ratios:
            spread = (f" [{ratio.real_low:.3f}, {ratio.real_high:.3f}]" if ratio.real_low != ratio.real_high
                      else "")
            lines.append(f"  {ratio.b} / {ratio.a} ({ratio.factor}) {ratio.statistic}: real "
                         f"{ratio.real_ratio:.3f}{spread}, simulated {ratio.simulated_ratio:.3f}, "
                         f"{ratio.error * 100:+.1f} % {'ok' if ratio.within else 'MISS'}")
        lines.append(f"{sum(r.within for r in ratios)} of {len(ratios)} one-factor ratios within "
                     f"{RATIO_TARGET * 100:.0f} % of the real range ({' and '.join(RATIO_STATISTICS)}; "
                     f"{sum(r.within_of_means for r in ratios)} within {RATIO_TARGET * 100:.0f} % of the ratio "
                     "of the means)")
        lines.append("")
    within, total, pending = tally(comparisons)
    tail = f"; {pending} experiment(s) pending" if pending else ""
    lines.append(f"{within} of {total} statistics within target (mean, p50 and throughput ±10 %, p99 ±20 %){tail}")
    return "\n".join(lines) + "\n"
