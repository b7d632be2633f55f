"""Scenario schema of the model kind ``faas``: functions, their instances, cold-start stages and prices.

Defaults and their sources:

* ``keep_alive`` 10 minutes: the fixed keep-alive window "used by major platforms" that Shahrad et al.,
  "Serverless in the Wild", USENIX ATC 2020, section 4, take as the baseline policy.
* ``memory`` 128 MiB: AWS Lambda's default memory setting; the CPU it buys is proportional, a full vCPU
  at 1,769 MB (AWS Lambda Developer Guide, "Configuring Lambda function memory",
  https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html) (:data:`MIB_PER_VCPU`).
* ``max_instances`` 1,000: AWS Lambda's default concurrent-executions quota per account and Region
  (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html); beyond it Lambda throttles
  (``at_limit: reject``); Knative's activator buffers instead (``at_limit: queue``).
* ``cold_start.sandbox``: ``firecracker``, cited, not measured here: the Firecracker specification's
  boot-time bound, "<= 125 ms to go from receiving the InstanceStart API call to the start of the Linux
  guest user-space /sbin/init" (https://github.com/firecracker-microvm/firecracker/blob/main/SPECIFICATION.md),
  taken as a constant 125 ms (an upper bound, so cold starts err long); ``container``, cited, not measured
  here: a Docker container's start, 568 ms on a cloud VM with premium SSD (S. Khan, "Decomposing Docker
  Container Startup Performance", arXiv:2602.15214, 2026: 50 runs per test; 1,157 ms on a standard HDD),
  taken as a constant; ``isolate``: a new V8 isolate and
  context in an already running Node.js process (isolated-vm), measured here (parameter set
  ``node.ivm.sandbox_s``); ``gvisor`` and ``snapshot`` below.
* ``cold_start.sandbox: gvisor``, cited, not measured here. Its start: gVisor's own start-up benchmark (an
  Alpine container running ``true`` through Docker, GCE n1-standard-4, the ptrace platform;
  https://github.com/google/gvisor/blob/master/website/performance/startup.csv, plotted in the Performance
  Guide, https://gvisor.dev/docs/architecture_guide/performance/) took 1,144 ms with runsc against 1,193 ms
  with runc: Docker, not the sandbox, dominates a start. cnsim takes the container's cited 568 ms times that
  ratio, 545 ms (:data:`GVISOR_START_S`), a constant. Its per-system-call cost: every system call is caught
  by gVisor's Sentry; the getpid benchmark took 830 ns on the KVM platform and 6,249 ns on ptrace against
  62 ns natively (Intel Xeon E5-2650 v2; J. Tan and Y. He, "Running gVisor in Production at Scale in Ant",
  gVisor blog, 2021-12-02, https://gvisor.dev/blog/2021/12/02/running-gvisor-in-production-at-scale-in-ant/,
  table "getpid benchmark (ns)"), so each of a request's ``syscalls_per_request`` system calls adds 768 ns
  (``gvisor_platform: kvm``) or 6,187 ns (``ptrace``) to its handler time (:data:`GVISOR_SYSCALL_S`): the
  interception's structural cost, not the slower paths of calls the Sentry passes to the host or its Gofer.
  The process start inside gVisor (``runtime_start``) stays the native one measured here.
* ``cold_start.sandbox: snapshot``, cited, not measured here: a Firecracker microVM restored from a snapshot
  of an initialised function (as vHive/REAP, AWS Lambda SnapStart). D. Ustiugov et al., "Benchmarking,
  Analysis, and Optimization of Serverless Function Snapshots", ASPLOS 2021, section 6.2 (helloworld, vanilla
  Firecracker snapshots on a local SSD, host page cache flushed before each cold invocation): the VMM and its
  emulated devices restored in 50 ms (the ``sandbox`` stage, :data:`SNAPSHOT_LOAD_S`), then 182 ms to process
  the invocation that takes 1 ms warm, the guest memory faulted in page by page (the ``first_request`` stage,
  181 ms, :data:`SNAPSHOT_FIRST_REQUEST_S`). The process start and the function's initialisation are in the
  snapshot: ``runtime_start`` and ``function_init`` are 0 and may not be given. For the VMM alone
  Firecracker's snapshot docs gave a resume target under 8 ms, 5 ms at p90 (2 vCPU, 512 MB, m5d.metal; section
  "Performance" of docs/snapshotting/snapshot-support.md in https://github.com/firecracker-microvm/firecracker
  at commit 0151dbcd4f9703fdbc90abb3a295c4c446df5bf1); REAP's
  prefetching of the working set (3.7x faster cold starts on average, same paper) is not modelled.
* ``syscalls_per_request``: 0 unless given (no public source gives a typical count per request).
* ``cold_start.runtime_start``: measured here (harness ``faas_coldstart``), a small HTTP function's process
  from exec until it listens: ``go.function.start_s`` (a static net/http binary), ``node.function.start_s``
  (Node's http module, ``modules: none``) or ``node.function.start_typical_s`` (Express 4 and its module
  graph, ``modules: typical``); in a V8 isolate, the function's code compiled and run in it
  (``node.ivm.function_load_s``).
* ``cold_start.first_request``: the first request's extra cost on a new instance over the same process's
  steady requests (Node.js: V8's JIT warming up), measured here (harness ``faas_coldstart``):
  ``go.function.first_request_s``, ``node.function.first_request_s`` or
  ``node.function.first_request_typical_s`` (``modules: typical``), in an isolate ``node.ivm.first_call_s``;
  0 where the parameter set is absent.
* ``scaling: knative``: Knative's autoscaler and activator instead of a cold start per request
  (:mod:`models.faas.knative_config` cites its defaults).
* ``cold_start.placement`` and ``cold_start.function_init``: 0 unless given (the platform's scheduling
  decision and the user's initialisation code have no default a public source fixes).
* ``keep_alive_policy`` ``hybrid``: the hybrid histogram policy's parameters (:class:`HybridConfig`) are those of
  Shahrad et al., section 4.2, with the values the paper leaves unstated from dslab's implementation
  (:mod:`models.faas.keepalive`).
* ``handler``: a request as work on the instance's runtime model, its CPU the share the memory buys (above),
  stretched by 1 / min(1, share / GOMAXPROCS) (:class:`HandlerConfig`, :mod:`models.faas.platform`); GOMAXPROCS
  the vCPUs the instance sees, ceil(memory / 1,769 MB) (the re:Invent 2020 table of cores by memory, 1 up to
  1,769 MB, 6 from 8,846 MB, quoted in https://stackoverflow.com/questions/66522916).
* Prices: AWS Lambda's published on-demand prices, x86, US East (https://aws.amazon.com/lambda/pricing/):
  $0.0000166667 per GB-second, $0.20 per million requests, duration billed in 1 ms increments.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from sim.dists import Constant, Distribution, Empirical
from sim.params import available, param_as_dist, param_dist
from sim.scenario import (MAX_COUNT, Duration, DurationDist, Rate, ScenarioBase, ScenarioPart, Size, SizeDist,
                          calibrated, format_validation_error)
from models.arch.config import BurstConfig, DiurnalConfig, WorkloadConfig
from models.faas.azure import AzureConfig
from models.faas.keepalive import FixedKeepAlive, HybridHistogram, KeepAlivePolicy
from models.faas.knative_config import KnativeConfig
from models.faas.trace import TraceConfig
from models.runtime.go.gc import GCConfig

MIB = 2**20
MIB_PER_VCPU = 1769.0
"""Memory (MB, as Lambda counts them: MiB) that buys one full vCPU on AWS Lambda (AWS docs, above)."""
FIRECRACKER_BOOT_S = 0.125
"""Firecracker's published bound on a microVM's boot to guest user space (its SPECIFICATION.md)."""
CONTAINER_START_S = 0.568
"""A Docker container's start on a cloud VM's premium SSD, published (Khan, arXiv:2602.15214, above)."""
GVISOR_START_S = CONTAINER_START_S * 1144.1775 / 1193.10768
"""A gVisor (runsc) container's start: the container's, times runsc's to runc's start through Docker in gVisor's
own benchmark (startup.csv, ``startup.empty``: 1,144.18 and 1,193.11 ms; above): 0.545 s."""
GVISOR_SYSCALL_S = {"kvm": (830 - 62) * 1e-9, "ptrace": (6249 - 62) * 1e-9}
"""Each system call's extra time under gVisor, by platform: getpid under runsc less native (Ant's table, above)."""
SNAPSHOT_LOAD_S = 0.050
"""A Firecracker snapshot's VMM and emulated devices restored (Ustiugov et al., ASPLOS 2021, section 6.2)."""
SNAPSHOT_FIRST_REQUEST_S = 0.182 - 0.001
"""A restored function's first invocation over a warm one: 182 ms against 1 ms, its pages faulted in (same)."""
STAGES = ("placement", "sandbox", "runtime_start", "function_init", "first_request")
"""The cold-start stages, in the order a cold start goes through them."""
RUNTIME_START = {("go", "none"): "go.function.start_s", ("node", "none"): "node.function.start_s",
                 ("node", "typical"): "node.function.start_typical_s"}
"""Parameter set of a function's process start to listening, by runtime and module graph."""
ISOLATE = "node.ivm.sandbox_s"
ISOLATE_LOAD = "node.ivm.function_load_s"
"""Parameter sets of a V8 isolate with its context, and of a function's code compiled and run in it."""
FIRST_REQUEST = {("go", "none"): "go.function.first_request_s", ("node", "none"): "node.function.first_request_s",
                 ("node", "typical"): "node.function.first_request_typical_s"}
"""Parameter set of the first request's extra cost, by runtime and module graph (read when it exists)."""
ISOLATE_FIRST_CALL = "node.ivm.first_call_s"
"""Parameter set of the first call of a function in a new isolate."""


class FaasWorkload(ScenarioPart):
    """A function's invocations: Poisson at ``rate`` (optionally in bursts or along a daily curve) or the
    timestamps of a replay, as the ``arch`` kind's open workloads (:mod:`models.arch.workloads`)."""

    rate: Rate | None = Field(None, gt=0, description="mean invocations per second")
    burst: BurstConfig | None = Field(None, description="on/off bursts at a higher rate; null: none")
    diurnal: DiurnalConfig | None = Field(None, description="a daily rate curve; null: constant")
    replay: DurationDist | None = Field(
        None, description="invocation times, seconds from the start: an empirical distribution's values")

    def as_arch(self, name: str) -> WorkloadConfig:
        """The same workload as the ``arch`` kind's schema, whose checks it goes through."""
        return WorkloadConfig(entry=name, rate=self.rate, burst=self.burst, diurnal=self.diurnal,
                              replay=self.replay)


class ColdStartConfig(ScenarioPart):
    """The stages of a cold start, each a distribution, in order: placement, sandbox, runtime start,
    function initialisation. A warm request skips them all."""

    placement: DurationDist = Field(Constant(0.0), description="the platform choosing a host; default 0")
    sandbox: Literal["firecracker", "container", "gvisor", "snapshot", "isolate", "none"] | DurationDist = Field(
        "firecracker", description="the sandbox's start: firecracker (a microVM, 125 ms, cited), container (a "
        "Docker container, 568 ms, cited), gvisor (a runsc container, 545 ms, cited; each system call slower, "
        "syscalls_per_request), snapshot (a microVM restored from a snapshot, 50 ms, and its first request 181 ms "
        "of page faults, cited; no runtime start or init), isolate (a V8 isolate and context in a running Node.js "
        "process, node.ivm.sandbox_s), none (0) or a distribution")
    gvisor_platform: Literal["kvm", "ptrace"] = Field(
        "kvm", description="sandbox gvisor's system-call interception: kvm (768 ns a call more than native) or "
        "ptrace (6,187 ns), cited")
    modules: Literal["none", "typical"] = Field(
        "none", description="the function's module graph (runtime node): none (Node's http module only) or "
        "typical (Express 4, 132 modules, as measured)")
    runtime_start: DurationDist | None = Field(
        None, description="the function's process from exec until it listens; null: the parameter set "
        "node.function.start_s (runtime node; node.function.start_typical_s with modules typical) or "
        "go.function.start_s (runtime go); in an isolate, node.ivm.function_load_s (its code loaded)",
        json_schema_extra=calibrated("node.function.start_s", unless="runtime"))
    function_init: DurationDist = Field(Constant(0.0), description="the function's own initialisation code")
    first_request: DurationDist | None = Field(
        None, description="the first request's extra cost on a new instance (JIT warm-up); null: parameter set "
        "node.function.first_request_s for runtime node if it exists, else 0; 0 for runtime go")

    def stages(self, runtime: str) -> dict[str, Distribution]:
        """Each stage's distribution, defaults resolved (parameter sets read here)."""
        sandbox: Distribution
        if self.sandbox == "firecracker":
            sandbox = Constant(FIRECRACKER_BOOT_S)
        elif self.sandbox == "container":
            sandbox = Constant(CONTAINER_START_S)
        elif self.sandbox == "gvisor":
            sandbox = Constant(GVISOR_START_S)
        elif self.sandbox == "snapshot":
            sandbox = Constant(SNAPSHOT_LOAD_S)
        elif self.sandbox == "isolate":
            sandbox = param_dist(ISOLATE)
        elif self.sandbox == "none":
            sandbox = Constant(0.0)
        else:
            assert isinstance(self.sandbox, Distribution)
            sandbox = self.sandbox
        runtime_start = self.runtime_start
        if runtime_start is None and self.sandbox == "snapshot":
            runtime_start = Constant(0.0)  # the process was running when the snapshot was taken
        elif runtime_start is None:
            runtime_start = param_dist(ISOLATE_LOAD if self.sandbox == "isolate" else
                                       RUNTIME_START[runtime, self.modules])
        first_request = self.first_request
        if first_request is None and self.sandbox == "snapshot":
            first_request = Constant(SNAPSHOT_FIRST_REQUEST_S)
        elif first_request is None:
            name = ISOLATE_FIRST_CALL if self.sandbox == "isolate" else FIRST_REQUEST.get((runtime, self.modules))
            first_request = param_as_dist(name) if name is not None and name in available() else Constant(0.0)
        return {"placement": self.placement, "sandbox": sandbox, "runtime_start": runtime_start,
                "function_init": self.function_init, "first_request": first_request}

    @model_validator(mode="after")
    def _check(self) -> ColdStartConfig:
        if self.sandbox == "snapshot":
            for name in ("runtime_start", "function_init"):
                given = getattr(self, name)
                if given is not None and (given.mean > 0 or given.variance > 0):
                    value = f"{given.mean:g} s" if isinstance(given, Constant) else given.spec()
                    raise ValueError(f"{name}: {value} with sandbox snapshot: the snapshot restores a started, "
                                     f"initialised function; give 0 or another sandbox")
        return self

    def syscall_overhead_s(self) -> float:
        """Each system call's extra time in this sandbox: gVisor's interception, 0 elsewhere."""
        return GVISOR_SYSCALL_S[self.gvisor_platform] if self.sandbox == "gvisor" else 0.0


class HybridConfig(ScenarioPart):
    """The hybrid histogram keep-alive policy (Shahrad et al., USENIX ATC 2020, section 4.2;
    :mod:`models.faas.keepalive`)."""

    range: Duration = Field(4 * 3600.0, gt=0, description="idle times tracked by the histogram (paper: 4 hours); "
                            "also the standard keep-alive when the histogram is not representative")
    bin: Duration = Field(60.0, gt=0, description="histogram bin width (paper: 1 minute)")
    head: float = Field(0.05, ge=0, lt=1, description="percentile of the pre-warm window (paper: 5th)")
    tail: float = Field(0.99, gt=0, le=1, description="percentile the keep-alive window reaches (paper: 99th)")
    margin: float = Field(0.10, ge=0, lt=1, description="pre-warm earlier and keep alive longer by this fraction "
                          "(paper: 10 %)")
    cv_threshold: float = Field(2.0, ge=0, description="below this coefficient of variation of the bin counts the "
                                "histogram is not representative (dslab's cv_thr)")
    min_samples: int = Field(20, ge=1, le=MAX_COUNT, description="fewer idle times than this: not representative "
                             "(1 / 0.05: the 5th percentile is then more than the minimum)")
    oob_threshold: float = Field(0.5, ge=0, le=1, description="above this fraction of idle times beyond the range, "
                                 "forecast the next idle time (dslab's oob_thr)")
    forecast_margin: float = Field(0.15, ge=0, lt=1, description="margin around a forecast idle time (dslab's "
                                   "arima_margin)")

    @model_validator(mode="after")
    def _check(self) -> HybridConfig:
        if self.head >= self.tail:
            raise ValueError(f"head: {self.head} must be below tail ({self.tail})")
        if self.bin > self.range:
            raise ValueError(f"bin: {self.bin} s is longer than range ({self.range} s)")
        return self

    def policy(self) -> HybridHistogram:
        return HybridHistogram(self.range, self.bin, self.head, self.tail, self.margin, self.cv_threshold,
                               self.min_samples, self.oob_threshold, self.forecast_margin)


class HandlerConfig(ScenarioPart):
    """A request as work on the instance's runtime model (:mod:`models.runtime`): one CPU step, as a CPU step of
    the ``arch`` kind's services on a pod with a ``runtime`` (:mod:`models.runtime.build`). The function's
    ``runtime`` is the model: ``go`` (fast fidelity, with its collector), ``node`` (one event loop)."""

    cpu: DurationDist = Field(description="CPU a request's handler runs, seconds of a full vCPU")
    alloc: SizeDist | None = Field(
        None, description="runtime go: bytes a request allocates (the collector's load, and the calibrated CPU of "
        "allocating them); null: none")
    gc: GCConfig | None = Field(None, description="runtime go: the collector (null: its defaults, GOGC 100)")
    gomaxprocs: int | None = Field(
        None, ge=1, le=MAX_COUNT, description="runtime go: GOMAXPROCS; null: the vCPUs the instance sees, "
        "ceil(memory / 1769 MiB) (Go's default is the CPUs it sees)")


GO_ONLY = ("alloc", "gc", "gomaxprocs")
"""The handler's settings that only a Go runtime has."""


class FunctionConfig(ScenarioPart):
    """One function: its invocations, its service time (or its handler on the runtime) and the instances that
    serve it."""

    workload: FaasWorkload
    service: DurationDist | None = Field(
        None, description="a request's time in the handler, seconds (at a full vCPU with cpu_scaling); give "
        "this or handler")
    handler: HandlerConfig | None = Field(
        None, description="a request as work on the instance's runtime model, on the CPU share its memory buys; "
        "give this or service")
    runtime: Literal["go", "node"] = Field("node", description="language runtime: its process start")
    memory: Size = Field(128 * MIB, gt=0, description="instance memory: GB-seconds billed, CPU share")
    syscalls_per_request: int = Field(
        0, ge=0, le=MAX_COUNT, description="system calls a request makes in the handler: with sandbox gvisor each "
        "adds gVisor's interception cost (cold_start.gvisor_platform) to its time; elsewhere their native cost is "
        "in service already; default 0")
    cpu_scaling: bool = Field(
        False, description="stretch service by 1 / min(1, memory / 1769 MiB): a CPU-bound handler on "
        "Lambda's proportional CPU")
    concurrency: int = Field(
        1, ge=1, le=MAX_COUNT, description="requests an instance serves at once: 1 as AWS Lambda, N as "
        "Knative's containerConcurrency")
    max_instances: int = Field(1000, ge=1, le=MAX_COUNT, description="most instances at once, starting ones "
                               "included (Lambda's default concurrency quota)")
    at_limit: Literal["reject", "queue"] = Field(
        "reject", description="a request finding every instance busy at max_instances: rejected (Lambda's "
        "throttling) or queued FIFO for the next free slot")
    provisioned: int = Field(0, ge=0, le=MAX_COUNT, description="instances always warm, started before the run")
    keep_alive: Duration = Field(600.0, ge=0, description="an idle instance is reclaimed after this long idle")
    keep_alive_policy: Literal["fixed", "hybrid"] = Field(
        "fixed", description="fixed: keep_alive after every execution; hybrid: Shahrad et al.'s hybrid histogram "
        "policy, with pre-warming (settings in hybrid)")
    hybrid: HybridConfig = Field(default_factory=HybridConfig)
    cold_start: ColdStartConfig = Field(default_factory=ColdStartConfig)
    scaling: Literal["per_request", "knative"] = Field(
        "per_request", description="per_request: a cold start for a request finding no free slot (Lambda-like); "
        "knative: Knative's autoscaler adds and removes instances every 2 s, the activator buffers requests")
    knative: KnativeConfig = Field(default_factory=KnativeConfig, description="settings of scaling: knative")

    @model_validator(mode="after")
    def _check(self) -> FunctionConfig:
        self._check_handler()
        if self.provisioned > self.max_instances:
            raise ValueError(f"max_instances: {self.max_instances} is less than provisioned "
                             f"({self.provisioned})")
        if self.scaling == "knative" and self.provisioned:
            raise ValueError(f"provisioned: {self.provisioned} with scaling knative; give knative.min_scale instead")
        if self.scaling == "knative" and self.knative.min_scale > self.max_instances:
            raise ValueError(f"knative.min_scale: {self.knative.min_scale} is more than max_instances "
                             f"({self.max_instances})")
        if self.cold_start.sandbox == "isolate" and self.runtime != "node":
            raise ValueError(f"cold_start.sandbox: isolate is a V8 isolate, for runtime node (got runtime "
                             f"{self.runtime!r})")
        if (self.runtime, self.cold_start.modules) not in RUNTIME_START:
            raise ValueError(f"cold_start.modules: {self.cold_start.modules} is measured for runtime node only "
                             f"(got runtime {self.runtime!r})")
        return self

    def _check_handler(self) -> None:
        handler = self.handler
        if (self.service is None) == (handler is None):
            raise ValueError("service: give a request's time in the handler (service) or its work on the "
                             "runtime (handler), one of them" + (" (got both)" if handler is not None else ""))
        if handler is None:
            return
        if self.cpu_scaling:
            raise ValueError("cpu_scaling: true stretches service; a handler runs on the instance's CPU share "
                             "already")
        if self.scaling == "knative":
            raise ValueError("handler: runs on per_request instances; not built for scaling knative (got scaling "
                             "'knative')")
        for field in GO_ONLY:
            if self.runtime != "go" and getattr(handler, field) is not None:
                raise ValueError(f"handler.{field}: a Go setting (got runtime {self.runtime!r}: one event loop, no "
                                 "collector modelled)")

    @property
    def gomaxprocs(self) -> int:
        """GOMAXPROCS of a Go handler: as given, else the vCPUs the instance sees, ceil(memory / 1,769 MB)."""
        given = self.handler.gomaxprocs if self.handler is not None else None
        return given if given is not None else max(1, math.ceil(self.cpu_share - 1e-9))

    @property
    def cpu_stretch(self) -> float:
        """What a handler's CPU is multiplied by on the instance: its share spread over its threads running CPU
        (GOMAXPROCS Ps, Node's one loop), 1 / min(1, share / threads)."""
        threads = self.gomaxprocs if self.runtime == "go" else 1
        return 1.0 / min(1.0, self.cpu_share / threads)

    def policy(self) -> KeepAlivePolicy:
        """A new keep-alive policy object for one function's instances."""
        if self.keep_alive_policy == "hybrid":
            return self.hybrid.policy()
        return FixedKeepAlive(self.keep_alive)

    @property
    def memory_gb(self) -> float:
        """Memory in GB as Lambda bills it (1 GB = 1,024 MB of 2^20 bytes)."""
        return self.memory / 2**30

    @property
    def cpu_share(self) -> float:
        """vCPUs the memory buys on Lambda: memory / 1,769 MB."""
        return self.memory / MIB / MIB_PER_VCPU


class PricingConfig(ScenarioPart):
    """What a run costs: GB-seconds of billed duration and a price per request (AWS Lambda's, above)."""

    gb_s: float = Field(0.0000166667, ge=0, description="USD per GB-second of billed duration")
    request: float = Field(0.20e-6, ge=0, description="USD per request")
    granularity: Duration = Field(0.001, gt=0, description="billed duration is rounded up to a multiple of this")


class FaasScenario(ScenarioBase):
    """Functions on a FaaS platform: invocations, instances that start cold and are kept alive, and cost."""

    duration: Duration = Field(3600.0, gt=0, description="simulated time, warm-up included")
    functions: dict[str, FunctionConfig] = Field(default_factory=dict, description="functions by name")
    azure: AzureConfig | None = Field(None, description="many functions drawn from the Azure Functions 2019 "
                                      "characterisation (models.faas.azure); null: none")
    trace: TraceConfig | None = Field(None, description="functions replayed from a trace file in the Azure public "
                                      "dataset's per-minute format (models.faas.trace); null: none")
    pricing: PricingConfig = Field(default_factory=PricingConfig)

    @model_validator(mode="after")
    def _workloads(self) -> FaasScenario:
        if not self.functions and self.azure is None and self.trace is None:
            raise ValueError("functions: give at least one function (or azure or trace)")
        for part, source in (("azure", self.azure), ("trace", self.trace)):
            if source is not None and "handler" in source.template:
                raise ValueError(f"{part}.template.handler: generated functions run their drawn service time; a "
                                 "handler is for the functions written out")
            if source is not None:
                try:
                    FunctionConfig.model_validate({"workload": {"rate": 1.0}, "service": 1.0, **source.template})
                except ValidationError as error:
                    lines = format_validation_error(error).splitlines()
                    raise ValueError("; ".join(f"{part}.template.{line}" for line in lines)) from None
        for name, function in self.functions.items():
            try:
                function.workload.as_arch(name)
            except ValueError as error:
                raise ValueError(f"functions.{name}.workload: {error}") from None
            replay = function.workload.replay
            if replay is not None and not isinstance(replay, Empirical):
                raise ValueError(f"functions.{name}.workload.replay: give the times as an empirical distribution")
        return self
