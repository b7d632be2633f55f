"""Building a runtime model and a request's CPU step from a scenario's settings: the one way the model kinds that
put requests on a runtime per replica do it (the ``arch`` kind's pods, :mod:`models.arch.model`; the ``faas`` kind's
instances, :mod:`models.faas.platform`).

:func:`build_runtime` makes the runtime of one replica, named ``PREFIX.KIND`` (its metrics and random streams are
under that name): Go at the fast fidelity (:class:`~models.runtime.go.fast.runtime.FastGoRuntime`) or the detailed
one (:class:`~models.runtime.go.detailed.runtime.GoRuntime`, its Ps' threads on placed ``cores`` if given),
Node.js (:class:`~models.runtime.node.loop.NodeRuntime`, one event loop, no V8 heap) or native
(:class:`~models.runtime.native.NativeRuntime`, ``threads`` workers). :func:`compute_draw` makes the draw of a CPU
step: a :class:`~models.runtime.protocol.Compute` of the drawn CPU and, with an allocation, the bytes allocated and
the calibrated CPU of allocating them (:mod:`models.runtime.go.alloc`), the objects' shape from the collector's
settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from sim.core import Environment
from sim.dists import Distribution
from models.machine.cores import Cores
from models.runtime.go.detailed.runtime import GoRuntime
from models.runtime.go.fast.runtime import FastGoRuntime
from models.runtime.go.gc import GCConfig
from models.runtime.native import NativeRuntime
from models.runtime.node.loop import NodeRuntime
from models.runtime.protocol import Compute, Runtime


def build_runtime(env: Environment, kind: Literal["go", "node", "native"], prefix: str, *,
                  fidelity: Literal["fast", "detailed"] = "fast", gomaxprocs: int = 1, gc: GCConfig | None = None,
                  threads: int = 1, cores: Cores | None = None) -> Runtime:
    """The runtime of one replica, named ``PREFIX.KIND``: Go with ``gomaxprocs`` Ps and the collector ``gc`` (null:
    its defaults), at ``fidelity`` (``cores`` places a detailed one's threads); Node.js; native with ``threads``
    workers."""
    name = f"{prefix}.{kind}"
    if kind == "go" and fidelity == "detailed":
        return GoRuntime(env, gomaxprocs, gc=gc or GCConfig(), name=name, cores=cores)
    if kind == "go":
        return FastGoRuntime(env, gomaxprocs, gc=gc or GCConfig(), name=name)
    if kind == "native":
        return NativeRuntime(env, threads, name=name)
    return NodeRuntime(env, name=name)


def compute_draw(env: Environment, cpu: Distribution, alloc: Distribution | None, gc: GCConfig | None,
                 stream: str) -> Callable[[], Compute]:
    """Each call a :class:`Compute` of a draw of ``cpu`` (stream ``STREAM``) and, with ``alloc``, a draw of the bytes
    it allocates (stream ``STREAM.alloc``) and the calibrated CPU of allocating them in the objects ``gc`` describes
    (null: the collector's defaults)."""
    draw_cpu = cpu.sampler(env.rng(stream))
    if alloc is None:
        return lambda: Compute(draw_cpu(), 0.0)
    draw_alloc = alloc.sampler(env.rng(f"{stream}.alloc"))
    shape = (gc or GCConfig()).allocation_shape()

    def allocating() -> Compute:
        nbytes = draw_alloc()
        return Compute(draw_cpu() + shape.cpu_s(nbytes), nbytes)

    return allocating
