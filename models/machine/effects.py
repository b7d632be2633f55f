"""What the machine under a runtime adds to each request of a service, from the scenario's ``machine``.

Each effect comes from a calibrated parameter set that the scenario names
(:class:`~models.machine.config.MachineConfig`; none by default), measured by
the ``machine`` harness (:mod:`calibration.fitmachine`):

* **Work stretch** (``stretch``, e.g. ``machine.work_stretch``): fixed work
  takes longer in wall time than its CPU time says (the kernel's and other
  threads' interruptions); each request's handler CPU is multiplied by a draw.
  A set binned by CPU (``machine.work_stretch_vs_cpu``, measured at 0.3, 1 and
  3 ms) draws from the range the request's CPU falls in.
* **Wake-up from idle** (``wake``, e.g. ``machine.go_wake_s_vs_idle``): a
  request to a server that has been idle for a time t first waits a draw of
  the distribution binned at t, the extra round trip measured on this
  machine. The wait holds no CPU and does not hold the server.
* **The load generator's CPU** (``load_cpu``, e.g. ``machine.load_cpu_vs_rate``):
  a line of its CPU per second against its request rate gives its CPU per
  request at the service's rate, slope + intercept / rate; the service spends
  it on the runtime's cores (:mod:`models.machine.cores`).

Random streams: ``machine.stretch`` and ``machine.wake``.
"""

from __future__ import annotations

from collections.abc import Callable

from sim.core import Environment
from sim.params import Binned, load_params, param_as_dist, param_binned, param_linear
from models.machine.config import MachineConfig


class MachineEffects:
    """The effects ``config`` asks for, for a service receiving ``arrival_rate`` requests per second."""

    def __init__(self, env: Environment, config: MachineConfig, arrival_rate: float) -> None:
        self._stretch: Callable[[], float] | None = None
        self._stretch_by_cpu: Binned | None = None
        self._draw_stretch: list[Callable[[], float]] = []
        if config.stretch is not None and load_params(config.stretch).get("kind") == "binned":
            self._stretch_by_cpu = param_binned(config.stretch)
            stretch_rng = env.rng("machine.stretch")
            self._draw_stretch = [dist.sampler(stretch_rng) for dist in self._stretch_by_cpu.distributions]
        elif config.stretch is not None:
            self._stretch = param_as_dist(config.stretch).sampler(env.rng("machine.stretch"))
        self.wake: Binned | None = param_binned(config.wake) if config.wake is not None else None
        """The wake-up delays binned by idle time, or None without the effect."""
        self._draw_wake: list[Callable[[], float]] = []
        if self.wake is not None:
            wake_rng = env.rng("machine.wake")
            self._draw_wake = [dist.sampler(wake_rng) for dist in self.wake.distributions]
        self.load_cpu_s = 0.0
        """The load generator's CPU per request, seconds (0 without the effect)."""
        if config.load_cpu is not None:
            intercept, slope = param_linear(config.load_cpu)
            self.load_cpu_s = max(slope + intercept / arrival_rate, 0.0)

    def stretched(self, draw_cpu: Callable[[], float]) -> Callable[[], float]:
        """``draw_cpu`` with each draw multiplied by a draw of the work stretch (itself without one)."""
        stretch, by_cpu, draws = self._stretch, self._stretch_by_cpu, self._draw_stretch
        if by_cpu is not None:
            def stretched_by_cpu() -> float:
                cpu = draw_cpu()
                return cpu * draws[by_cpu.index(cpu)]()
            return stretched_by_cpu
        if stretch is None:
            return draw_cpu
        return lambda: draw_cpu() * stretch()

    def wake_delay(self, idle_s: float) -> float:
        """A draw of the delay of a request to a server idle for ``idle_s`` (0 without the effect)."""
        if self.wake is None:
            return 0.0
        return self._draw_wake[self.wake.index(idle_s)]()
