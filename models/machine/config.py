"""The scenario's ``machine``: what the machine under a runtime adds, each from a calibrated parameter set.

How a Poisson service uses it is in :mod:`models.services.base`; the cores
themselves are :mod:`models.machine.cores`.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from sim.params import available, load_params
from sim.scenario import MAX_COUNT, ScenarioPart


class MachineConfig(ScenarioPart):
    """The machine under the runtime: calibrated parameter sets for its work stretch, its wake-up from idle and
    the load generator's CPU, and the cores its threads are placed on (see the module docstring)."""

    stretch: str | None = Field(
        None, description="parameter set (a distribution, or distributions binned by the request's CPU) "
        "multiplying each request's CPU, e.g. machine.work_stretch or machine.work_stretch_vs_cpu"
    )
    wake: str | None = Field(
        None, description="parameter set (binned by idle time) of the delay of a request to an idle service, "
        "e.g. machine.go_wake_s_vs_idle"
    )
    cores: int | None = Field(
        None, ge=1, le=MAX_COUNT,
        description="cores the runtime's threads are placed on by Linux (go.service, detailed); "
        "null: a free core per thread"
    )
    load_cpu: str | None = Field(
        None, description="parameter set (a line: cores against requests/s) of the load generator's CPU on those "
        "cores, e.g. machine.load_cpu_vs_rate"
    )

    @model_validator(mode="after")
    def _load_needs_cores(self) -> MachineConfig:
        if self.load_cpu is not None and self.cores is None:
            raise ValueError("load_cpu: the load generator's CPU needs cores (the cores it shares)")
        return self

    @field_validator("stretch", "wake", "load_cpu")
    @classmethod
    def _known(cls, name: str | None, info: Any) -> str | None:
        if name is None:
            return None
        if name not in available():
            raise ValueError(f"no calibrated parameter set {name!r} (machine.* sets: "
                             f"{', '.join(n for n in available() if n.startswith('machine.')) or 'none'})")
        kind = load_params(name).get("kind")
        wanted = {"wake": ("binned",), "load_cpu": ("linear",)}.get(
            info.field_name, ("distribution", "constant", "binned"))
        if kind not in wanted:
            raise ValueError(f"parameter set {name!r} is a {kind!r}, {info.field_name} needs a {' or '.join(wanted)}")
        return name


def machine_field() -> Any:
    """The ``machine`` field of a Poisson service's scenario (none of the machine's effects by default)."""
    return Field(default_factory=MachineConfig, description="the machine's work stretch, wake-up from idle, "
                 "cores and load generator")
