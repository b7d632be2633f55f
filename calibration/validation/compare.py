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
  its allocation is the configured bytes; the collector's pauses and mark rate
  are the calibrated defaults of :mod:`models.runtime.go.gc`.
* **Node.js** (model kind ``node.service``, :mod:`models.services.node`):
  the handler runs on the event loop, on one core, with CPU = the burn plus
  ``node.http.server_cpu_s`` (the ``http`` module's own CPU per request) and the
  configured allocation on a V8 heap holding the live heap. Without that
  parameter set (or the model kind) the experiment is reported as pending, with
  the name of what is missing.
* **The machine**, the same for both (``machine`` of the scenario,
  :class:`models.machine.config.MachineConfig`): the handler's CPU is
  stretched by ``machine.work_stretch`` (wall time over CPU time of the
  server's own burn loop on this machine), and a request that finds the
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

Not modelled, so expected to show as error: the CPU of the allocation itself
(``mallocgc`` and zeroing, a few µs per 64 KiB), the load generator's dispatch
lateness on its own core (measured and kept in each ``summary.json``, not
subtracted).

Targets (:data:`TARGETS`): relative error of the mean and the median within
10 %, of the 99th percentile within 20 %, of the throughput within 10 %.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim.dists import Constant, Distribution, LogNormal
from sim.params import available, param_dist, param_value
from sim.run import run_replications
from sim.scenario import load_kind, load_scenario

from calibration.validation.experiments import VALIDATION_ROOT
from models.machine.cores import CORES_PARAMS
from models.runtime.go.constants import SYSMON_CORES_PARAMS

TARGETS = {"mean": 0.10, "p50": 0.10, "p99": 0.20, "throughput": 0.10}
"""Largest relative error |simulated - real| / real counted as within target, per statistic."""
STATISTICS = ("mean", "p50", "p99", "throughput")
WARMUP_FRACTION = 0.1
DEFAULT_REPLICATIONS = 3
SEED = 1
MEDIAN_SAMPLES = 200_000

SERVER_CPU_PARAMS = {"go": "go.http.server_cpu_s", "node": "node.http.server_cpu_s"}
"""Per runtime: the calibrated CPU its HTTP server spends per request besides the handler."""
ROUND_TRIP_PARAM = "go.http.h1_reused_s"
ROUND_TRIP_SERVER_CPU_PARAM = "go.http.server_cpu_s"
"""The client side's fixed delay: the median round trip to a Go server less that server's CPU."""
MODEL_KINDS = {"go": "go.service", "node": "node.service"}
MACHINE_STRETCH = "machine.work_stretch"
MACHINE_WAKE = {"go": "machine.go_wake_s_vs_idle", "node": "machine.node_wake_s_vs_idle"}
MACHINE_LOAD_CPU = "machine.load_cpu_vs_rate"
"""The calibrated machine each runtime's simulated experiments run on (see the module docstring)."""


class Pending(Exception):
    """The simulated side of an experiment cannot run yet: a calibrated parameter or model kind is missing."""


@dataclass(frozen=True)
class Experiment:
    """One measured experiment: its folder's config.json and summary.json."""

    name: str
    folder: Path
    config: dict[str, Any]
    summary: dict[str, Any]

    @property
    def runtime(self) -> str:
        return str(self.config["runtime"])

    def real(self, statistic: str) -> float:
        key = "throughput_rps" if statistic == "throughput" else f"{statistic}_s"
        return float(self.summary[key])


def load_experiments(root: Path = VALIDATION_ROOT, names: Sequence[str] | None = None) -> list[Experiment]:
    """The experiments under ``root`` (each a folder with config.json and summary.json), ``names`` only if given."""
    found = {
        path.parent.name: path.parent for path in sorted(Path(root).glob("*/summary.json"))
        if (path.parent / "config.json").is_file()
    }
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
        for name in chosen
    ]


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
    machine: dict[str, Any] = {"stretch": MACHINE_STRETCH, "wake": MACHINE_WAKE[runtime]}
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
        "warmup": WARMUP_FRACTION,
        "replications": replications,
        "seed": SEED,
        "machine": machine,
    }
    handler = {"cpu": float(settings["cpu_s"]) + server_cpu, "alloc": float(settings["alloc_bytes"])}
    live_heap = float(settings["live_heap_mib"]) * 2**20
    if runtime == "go":
        scenario = {**base, "gomaxprocs": int(experiment.config["gomaxprocs"]), "handler": handler,
                    "gc": {"gogc": float(settings["gogc"]), "live_heap": live_heap}}
    else:
        scenario = {**base, "cores": int(experiment.config["cores"]), "handler": handler,
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

    def value(self, statistic: str) -> float:
        return self.throughput_rps if statistic == "throughput" else getattr(self, f"{statistic}_s")


def simulate(experiment: Experiment, requests: int | None = None, replications: int = DEFAULT_REPLICATIONS,
             on_done: Callable[[Any], None] | None = None) -> Simulated:
    """Run the experiment's scenario: as many measured requests as the experiment had (or ``requests``)."""
    matched = math.ceil(int(experiment.summary["n"]) / (1 - WARMUP_FRACTION))
    count = min(matched, requests) if requests else matched
    data, fixed = scenario_for(experiment, count, replications)
    outcome = run_replications(load_scenario(data), on_done=on_done)
    latency = lambda statistic: outcome.get("requests.sojourn_s", statistic).mean + fixed  # noqa: E731
    return Simulated(
        mean_s=latency("mean"), p50_s=latency("p50"), p99_s=latency("p99"),
        throughput_rps=outcome.get("requests.completed", "rate").mean,
        fixed_delay_s=fixed, requests=count, replications=replications, scenario=data,
    )


@dataclass
class Row:
    statistic: str
    real: float
    simulated: float
    target: float

    @property
    def error(self) -> float:
        return (self.simulated - self.real) / self.real

    @property
    def within(self) -> bool:
        return abs(self.error) <= self.target


@dataclass
class Comparison:
    """Real against simulated for one experiment, or why it is pending."""

    experiment: Experiment
    rows: list[Row] = field(default_factory=list)
    simulated: Simulated | None = None
    pending: str | None = None

    def to_json(self) -> dict[str, Any]:
        config = self.experiment.config
        data: dict[str, Any] = {
            "experiment": self.experiment.name, "runtime": self.experiment.runtime, "cores": config.get("cores"),
            "rate_rps": config.get("rate_rps"), "rate_fraction": config.get("rate_fraction"),
            "pending": self.pending,
        }
        if self.simulated is not None:
            data["simulated"] = {"requests": self.simulated.requests, "replications": self.simulated.replications,
                                 "fixed_delay_s": self.simulated.fixed_delay_s, "scenario": self.simulated.scenario}
        data["statistics"] = {
            row.statistic: {"real": row.real, "simulated": row.simulated, "error": row.error,
                            "target": row.target, "within": row.within}
            for row in self.rows
        }
        return data


def compare(
    experiments: Iterable[Experiment], requests: int | None = None, replications: int = DEFAULT_REPLICATIONS,
    on_done: Callable[[Any], None] | None = None,
) -> list[Comparison]:
    """Simulate each experiment and compare mean, p50, p99 and throughput with the measurement."""
    comparisons = []
    for experiment in experiments:
        try:
            simulated = simulate(experiment, requests, replications, on_done)
        except Pending as why:
            comparisons.append(Comparison(experiment, pending=str(why)))
            continue
        rows = [Row(s, experiment.real(s), simulated.value(s), TARGETS[s]) for s in STATISTICS]
        comparisons.append(Comparison(experiment, rows, simulated))
    return comparisons


def tally(comparisons: Sequence[Comparison]) -> tuple[int, int, int]:
    """(statistics within target, statistics compared, experiments pending)."""
    rows = [row for c in comparisons for row in c.rows]
    return sum(row.within for row in rows), len(rows), sum(c.pending is not None for c in comparisons)


def _quantity(statistic: str, value: float) -> str:
    if statistic == "throughput":
        return f"{value:.1f}/s"
    return f"{value * 1e3:.3f} ms"


def render(comparisons: Sequence[Comparison]) -> str:
    """One table per experiment (real, simulated, relative error, within target) and a closing tally."""
    lines = []
    for comparison in comparisons:
        experiment = comparison.experiment
        config = experiment.config
        lines.append(
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
            lines.append(f"  {row.statistic:<10} {_quantity(row.statistic, row.real):>12} "
                         f"{_quantity(row.statistic, row.simulated):>12} {row.error * 100:>+7.1f}%  "
                         f"±{row.target * 100:.0f} % {verdict}")
        lines.append("")
    within, total, pending = tally(comparisons)
    tail = f"; {pending} experiment(s) pending" if pending else ""
    lines.append(f"{within} of {total} statistics within target (mean, p50 and throughput ±10 %, p99 ±20 %){tail}")
    return "\n".join(lines) + "\n"
