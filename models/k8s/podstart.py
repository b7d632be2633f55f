"""A pod's start-up, stage by stage, from its creation to its Ready condition.

Stages, in order (each a distribution; its time is recorded as ``podstart.<scope>.<stage>_s``, and their
sum, creation to ready, as ``podstart.<scope>.total_s``):

1. ``scheduling``: the scheduler's decision and the binding, until the node's kubelet admits the pod. The
   kubelet then sets the pod's ``status.startTime`` ("acknowledged by the Kubelet ... before the Kubelet
   pulled the container image(s)": the API reference of PodStatus) and starts its readiness probe's worker.
   No default a public source fixes: 0 unless given.
2. ``image_pull``: the image's ``size`` over the node's ``pull_bandwidth`` (or a ``pull`` distribution),
   once per node: a pod finding its image on the node (``pre_pulled``, or pulled for an earlier pod there)
   pulls nothing; one arriving while the node pulls it waits for that pull (the kubelet pulls one image at a
   time, ``serializeImagePulls: true`` by default: KubeletConfiguration reference). Pull policy
   ``IfNotPresent``, the default for an image with a tag other than ``latest`` (Kubernetes docs, "Images").
3. ``sandbox``: the pod sandbox (its network namespace and pause container, through the CRI and the CNI
   plugin). No default a public source fixes: 0 unless given.
4. ``container_start``: the container's process until it runs; default the calibrated process start of a
   Go server (parameter set ``go.process.start_s``; ``node.process.start_s`` with ``process: node``), the
   runtime's container create not included.
5. ``readiness``: from the container's start to its Ready condition, by the kubelet's readiness probe
   (upstream ``pkg/kubelet/prober/worker.go`` and ``prober_manager.go``; defaults ``initialDelaySeconds``
   0, ``periodSeconds`` 10, ``successThreshold`` 1: Kubernetes docs, "Configure Liveness, Readiness and
   Startup Probes"). The worker probes on a ticker of ``period_seconds`` started when the kubelet admitted
   the pod, and once more when the container starts (``UpdatePodStatus`` triggers a run while the probe has
   no success yet). A probe within ``initial_delay_seconds`` of the container's start is skipped; one before
   the application answers (``app_ready`` after the container's start, an assumption of the scenario's,
   default 0) fails; the pod is Ready at the ``success_threshold``-th success in a row. Without a probe
   (``readiness: null``) the pod is Ready when its container starts.

Not modelled: the status syncs after the container's start that trigger further probe runs, the probe's
own duration, the endpoint's propagation to the clients (EndpointSlice controller, EDS), init containers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from sim.core import Environment
from sim.dists import Constant, Distribution
from sim.params import param_dist
from sim.scenario import DurationDist, ScenarioPart, Size, calibrated

STAGES = ("scheduling", "image_pull", "sandbox", "container_start", "readiness")
"""The start-up stages, in order."""
PROCESS_START = {"go": "go.process.start_s", "node": "node.process.start_s"}
"""Parameter set of each process's start (measured by ``calibration/harness``: exec to exit)."""
PROBE_PERIOD_S = 10
"""``periodSeconds``' default (Kubernetes docs, "Configure Liveness, Readiness and Startup Probes")."""


class ImageConfig(ScenarioPart):
    """The pod's image and how a node gets it (pull policy IfNotPresent: see the module docstring)."""

    pre_pulled: bool = Field(True, description="every node has the image before the run (no pull)")
    size: Size = Field(0.0, ge=0, description="bytes pulled when a node lacks the image")
    pull_bandwidth: Size | None = Field(None, gt=0, description="bytes per second of a pull")
    pull: DurationDist | None = Field(None, description="a pull's duration instead of size / pull_bandwidth")

    @model_validator(mode="after")
    def _pull_known(self) -> ImageConfig:
        if not self.pre_pulled and self.pull is None and (self.pull_bandwidth is None or self.size <= 0):
            raise ValueError("pre_pulled is false: give pull (a duration) or size and pull_bandwidth")
        return self

    def pull_time(self) -> Distribution:
        """A pull's duration."""
        if self.pull is not None:
            return self.pull
        return Constant(self.size / self.pull_bandwidth if self.pull_bandwidth else 0.0)


class ProbeConfig(ScenarioPart):
    """The container's readiness probe (upstream field names and defaults)."""

    initial_delay_seconds: int = Field(0, ge=0, description="probes within this long of the container's start "
                                       "are skipped (default 0)")
    period_seconds: int = Field(PROBE_PERIOD_S, ge=1, description="the probe's period (default 10 s)")
    success_threshold: int = Field(1, ge=1, description="successes in a row that make the pod Ready (default 1)")
    app_ready: DurationDist = Field(
        Constant(0.0), description="after the container's start, when the application first answers its probe "
        "(an assumption; default 0)")


class PodStartConfig(ScenarioPart):
    """The stages of a pod's start-up (see :mod:`models.k8s.podstart`)."""

    scheduling: DurationDist = Field(Constant(0.0), description="creation to admission by the node's kubelet; "
                                     "default 0")
    image: ImageConfig = Field(default_factory=ImageConfig)
    sandbox: DurationDist = Field(Constant(0.0), description="the pod sandbox (pause container, CNI); default 0")
    process: Literal["go", "node"] = Field("go", description="the container's process, for container_start")
    container_start: DurationDist | None = Field(
        None, description="the container's start; null: the parameter set go.process.start_s (process go) or "
        "node.process.start_s (process node)", json_schema_extra=calibrated("go.process.start_s"))
    readiness: ProbeConfig | None = Field(default_factory=ProbeConfig,
                                          description="the readiness probe; null: Ready when the container starts")

    def container_start_time(self) -> Distribution:
        """The container start's distribution, its default resolved (a parameter set read here)."""
        if self.container_start is not None:
            return self.container_start
        return param_dist(PROCESS_START[self.process])


@dataclass
class PodLife:
    """One pod's life as the control plane sees it (times in simulated seconds; None: not yet)."""

    name: str
    node: str
    created: float
    admitted: float | None = None
    running: float | None = None
    ready: float | None = None
    deleted: bool = False


def first_ready(admitted: float, running: float, app_ready: float, probe: ProbeConfig) -> float:
    """When the readiness probe makes the pod Ready (see the module docstring): the
    ``success_threshold``-th probe run at or after both ``running + initial_delay_seconds`` and
    ``app_ready`` (absolute times); the runs are at ``running`` (the trigger at the container's start) and
    on the worker's ticks, ``admitted + k * period_seconds``."""
    period = probe.period_seconds
    earliest = max(running + probe.initial_delay_seconds, app_ready)
    runs = []
    if running >= earliest:
        runs.append(running)
    tick = max(1, math.ceil((max(earliest, running) - admitted) / period))
    if admitted + tick * period <= running:  # the tick at the container's start already ran: the next
        tick += 1
    while len(runs) < probe.success_threshold:
        runs.append(admitted + tick * period)
        tick += 1
    return runs[probe.success_threshold - 1]


class PodStartup:
    """Starts pods through the stages of ``config`` for one scope (a service), on ``env``; draws from the
    streams ``<stream>.<stage>`` and records each stage's time as ``podstart.<scope>.<stage>_s``."""

    def __init__(self, env: Environment, config: PodStartConfig, scope: str, stream: str) -> None:
        self.env = env
        self.config = config
        self._draw: dict[str, Callable[[], float]] = {
            "scheduling": config.scheduling.sampler(env.rng(f"{stream}.scheduling")),
            "image_pull": config.image.pull_time().sampler(env.rng(f"{stream}.image_pull")),
            "sandbox": config.sandbox.sampler(env.rng(f"{stream}.sandbox")),
            "container_start": config.container_start_time().sampler(env.rng(f"{stream}.container_start")),
        }
        probe = config.readiness
        self._app_ready = probe.app_ready.sampler(env.rng(f"{stream}.app_ready")) if probe is not None else None
        self._pulled: dict[str, Any] = {}
        """Per node: True once it has the image, or the event of its pull in progress."""
        metrics = env.metrics
        self.stage_s = {stage: metrics.histogram(f"podstart.{scope}.{stage}_s") for stage in STAGES}
        self.total_s = metrics.histogram(f"podstart.{scope}.total_s")

    def start(self, life: PodLife) -> Generator[Any, Any, None]:
        """Run ``life``'s pod through the stages, setting its ``admitted``, ``running`` and ``ready`` times."""
        env = self.env
        yield env.timeout(self._draw["scheduling"]())
        life.admitted = env.now
        self.stage_s["scheduling"].record(env.now - life.created)
        pulling = env.now
        yield from self._image(life.node)
        self.stage_s["image_pull"].record(env.now - pulling)
        for stage in ("sandbox", "container_start"):
            began = env.now
            yield env.timeout(self._draw[stage]())
            self.stage_s[stage].record(env.now - began)
        life.running = env.now
        probe = self.config.readiness
        if probe is not None and self._app_ready is not None:
            ready = first_ready(life.admitted, life.running, life.running + self._app_ready(), probe)
            yield env.timeout(ready - env.now)
        life.ready = env.now
        self.stage_s["readiness"].record(env.now - life.running)
        self.total_s.record(env.now - life.created)

    def _image(self, node: str) -> Generator[Any, Any, None]:
        """The image on ``node``: at once if it is there, after the node's pull in progress, or pulled now."""
        if self.config.image.pre_pulled:
            return
        state = self._pulled.get(node)
        if state is True:
            return
        if state is not None:
            yield state
            return
        pulled = self._pulled[node] = self.env.event()
        yield self.env.timeout(self._draw["image_pull"]())
        self._pulled[node] = True
        pulled.succeed()
