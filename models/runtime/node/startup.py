"""V8's start-up in Node as a pipeline of stages (process, isolate, context, script, modules).

**Start-up** (:class:`V8Startup`). A Node process starts as a pipeline of stages,
each a distribution measured by the calibration harness:

* ``process`` — ``node`` exec to the first line of user code, which includes the
  main isolate and its context deserialised from the start-up snapshot
  (``node.process.start_s``; resident memory ``node.process.rss_bytes``);
* ``isolate`` — a new isolate with its own context and thread, as
  ``new Worker()`` makes one (Node docs, ``worker_threads``: "each worker has its
  own isolated V8 environment", https://nodejs.org/api/worker_threads.html);
  ``node.worker.start_s`` (``new Worker()`` to its first message) and
  ``node.worker.memory_bytes``;
* ``context`` — a new context in an existing isolate, ``vm.createContext()``
  (https://nodejs.org/api/vm.html), ``node.isolate.context_create_s`` and
  ``node.isolate.context_bytes``; ``script`` — compiling and running the
  handler's script in it (``vm.Script.runInContext``, ``node.isolate.script_run_s``);
* ``modules`` — loading the handler's modules (``node.isolate.module_load_s``).

:meth:`V8Startup.invocation_steps` turns a reuse policy into the CPU steps an
invocation pays before its handler: ``"none"`` (a new isolate each time),
``"isolate"`` (the "warm isolate, fresh context" pattern: a new context and the
script per invocation) or ``"context"`` (everything warm: nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from sim.core import Environment
from sim.dists import Distribution
from sim.params import param_as_dist, param_value
from sim.scenario import DurationDist, ScenarioPart, Size, calibrated_field
from models.runtime.protocol import Compute

STAGE_PARAMS = {
    "process": "node.process.start_s",
    "isolate": "node.worker.start_s",
    "context": "node.isolate.context_create_s",
    "script": "node.isolate.script_run_s",
    "modules": "node.isolate.module_load_s",
}
MEMORY_PARAMS = {
    "process": "node.process.rss_bytes",
    "isolate": "node.worker.memory_bytes",
    "context": "node.isolate.context_bytes",
}
ReusePolicy = Literal["none", "isolate", "context"]


class StartupConfig(ScenarioPart):
    """Start-up stages of V8 in Node; ``None`` means the calibrated default named in its description."""

    process: DurationDist | None = calibrated_field("process start, s", STAGE_PARAMS["process"])
    isolate: DurationDist | None = calibrated_field("new isolate and thread, s", STAGE_PARAMS["isolate"])
    context: DurationDist | None = calibrated_field("new context, s", STAGE_PARAMS["context"])
    script: DurationDist | None = calibrated_field("run the script in a context, s", STAGE_PARAMS["script"])
    modules: DurationDist | None = calibrated_field("load the modules, s", STAGE_PARAMS["modules"])
    process_bytes: Size | None = calibrated_field("bytes of a process", MEMORY_PARAMS["process"])
    isolate_bytes: Size | None = calibrated_field("bytes per isolate", MEMORY_PARAMS["isolate"])
    context_bytes: Size | None = calibrated_field("bytes per context", MEMORY_PARAMS["context"])

    def stage(self, name: str) -> Distribution:
        """The distribution of stage ``name`` (given, or calibrated: KeyError names a missing set)."""
        given = getattr(self, name)
        return given if given is not None else param_as_dist(STAGE_PARAMS[name])

    def memory(self, name: str) -> float:
        """Resident bytes of a ``process``, an ``isolate`` or a ``context``."""
        given = getattr(self, f"{name}_bytes")
        return float(given) if given is not None else param_value(MEMORY_PARAMS[name])


class V8Startup:
    """Samplers of the start-up stages (see the module docstring); stages are resolved when first used."""

    def __init__(self, env: Environment, config: StartupConfig | None = None, name: str = "node.startup") -> None:
        self.env = env
        self.config = config or StartupConfig()
        self.name = name
        self._draws: dict[str, Callable[[], float]] = {}

    def draw(self, stage: str) -> float:
        """One sample of ``stage`` (``process``, ``isolate``, ``context``, ``script``, ``modules``), seconds."""
        if stage not in self._draws:
            if stage not in STAGE_PARAMS:
                raise ValueError(f"{self.name}: unknown start-up stage {stage!r} (known: {', '.join(STAGE_PARAMS)})")
            self._draws[stage] = self.config.stage(stage).sampler(self.env.rng(f"{self.name}.{stage}"))
        return self._draws[stage]()

    def cold_start_s(self) -> float:
        """A new process ready to serve: process start, then the handler's modules."""
        return self.draw("process") + self.draw("modules")

    def invocation_steps(self, reuse: ReusePolicy) -> list[Compute]:
        """CPU steps an invocation pays before its handler under a reuse policy: ``none`` a new
        isolate, context, script and modules; ``isolate`` (warm isolate, fresh context) a context and
        the script; ``context`` nothing."""
        if reuse == "context":
            return []
        if reuse == "isolate":
            return [Compute(self.draw("context")), Compute(self.draw("script"))]
        if reuse == "none":
            return [Compute(self.draw(stage)) for stage in ("isolate", "script", "modules")]
        raise ValueError(f"{self.name}.reuse: must be none, isolate or context (got {reuse!r})")
