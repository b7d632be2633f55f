"""Scenarios: the pydantic schema, loading from YAML/TOML/dicts, the registry of model kinds.

A scenario is a mapping whose ``model`` key names a model kind; the kind's
``config_class`` (a subclass of :class:`ScenarioBase`) validates the rest. A
scenario can be given as

* the name of a built-in scenario (``mmc``: a file in :func:`scenarios_folder`),
* a path to a ``.yaml``, ``.yml``, ``.toml`` or ``.json`` file,
* a plain dict,

with overrides ``key.path=value`` whose values are read as YAML (``servers=4``,
``service={dist: exp, mean: 1ms}``). Unknown keys and bad values fail with a
:class:`ScenarioError` whose lines each name a field's path and the value.

Model kinds are registered as entry points in the group ``cnsim.models``
(see ``pyproject.toml``) and imported only when a scenario names them.

Built-in scenarios are the files of one folder (:func:`scenarios_folder`),
first found wins:

1. the folder in the environment variable ``CNSIM_SCENARIOS``
   (:data:`SCENARIOS_VARIABLE`), which :func:`set_scenarios_source` sets;
2. the package that the one entry point of the group ``cnsim.scenarios``
   (:data:`SCENARIOS_GROUP`) names; cnsim registers ``models.scenarios``.

So the engine imports no model package; see :mod:`sim.sources`.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from importlib import metadata
from importlib.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, ValidationError

from sim import sources
from sim.dists import Distribution, parse_dist
from sim.units import parse_duration, parse_rate, parse_size

if TYPE_CHECKING:
    from sim.core import Model

ENTRY_POINT_GROUP = "cnsim.models"
SCENARIOS_GROUP = "cnsim.scenarios"
"""Entry-point group whose one entry names the package of built-in scenario files."""
SCENARIOS_VARIABLE = "CNSIM_SCENARIOS"
"""Environment variable naming a folder of scenario files to use as the built-in ones instead."""
SCENARIO_SUFFIXES = (".yaml", ".yml", ".toml", ".json")


class ScenarioError(ValueError):
    """Bad input: a scenario that cannot be loaded or validated, or a value given on the command line.
    The message is for the user as it is: one line per problem, naming the field and the value."""


def _dist(value: object) -> Distribution:
    return parse_dist(value)


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[float, BeforeValidator(parse_size)]
Rate = Annotated[float, BeforeValidator(parse_rate)]
Dist = Annotated[
    Distribution,
    BeforeValidator(_dist),
    PlainSerializer(lambda d: d.spec(), return_type=dict),
]


class ScenarioBase(BaseModel):
    """Fields common to every scenario; model kinds add their own."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, validate_default=True)

    model: str = Field(description="model kind, one of `cnsim scenarios --kinds`")
    name: str = Field("", description="short name, used in tables and file names")
    description: str = Field("", description="what the scenario shows")
    seed: int = Field(1, ge=0, description="root seed; replication i uses SeedSequence(seed, spawn_key=(i,))")
    replications: int = Field(1, ge=1, description="independent replications for confidence intervals")
    warmup: float = Field(
        0.1, ge=0, lt=1, description="fraction of the run (its first requests) left out of the metrics"
    )

    @property
    def offered_load(self) -> float | None:
        """rho of the busiest queue without a bound: work offered per second over the servers that do it
        (arrival rate x mean service / servers); None where the model kind cannot tell before running or
        has no such queue. At 1 or more that queue has no steady state: it grows for as long as the run
        lasts, and so do the statistics of what waits in it. A model kind's schema overrides this."""
        return None


def model_kinds() -> dict[str, metadata.EntryPoint]:
    """Registered model kinds by name (not imported)."""
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def load_kind(name: str) -> type[Model]:
    kinds = model_kinds()
    if name not in kinds:
        known = ", ".join(sorted(kinds)) or "none registered: is cnsim installed?"
        raise ScenarioError(f"model: unknown model kind {name!r} (known: {known})")
    return kinds[name].load()


def scenarios_folder() -> Traversable:
    """The folder of built-in scenarios (see the module docstring)."""
    try:
        return sources.folder(SCENARIOS_GROUP, SCENARIOS_VARIABLE)
    except (LookupError, FileNotFoundError) as error:
        raise ScenarioError(f"built-in scenarios: {error}") from None


def set_scenarios_source(folder: str | Path | None) -> None:
    """Use the scenario files of ``folder`` as the built-in scenarios from now on, in this process and in
    processes it starts afterwards: sets ``CNSIM_SCENARIOS``; None unsets it (back to the shipped ones)."""
    sources.set_folder(SCENARIOS_VARIABLE, folder)


def builtin_scenarios() -> dict[str, str]:
    """Built-in scenario names and their one-line descriptions."""
    out = {}
    for entry in sorted(scenarios_folder().iterdir(), key=lambda e: e.name):
        if entry.name.endswith(SCENARIO_SUFFIXES):
            data = _parse_text(entry.read_text(), entry.name)
            out[entry.name.rsplit(".", 1)[0]] = str(data.get("description", "")).strip().split("\n")[0]
    return out


def _parse_text(text: str, filename: str) -> dict[str, Any]:
    try:
        if filename.endswith(".toml"):
            data = tomllib.loads(text)
        elif filename.endswith(".json"):
            data = json.loads(text)
        else:
            data = yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        first = str(error).strip().splitlines()[0]
        raise ScenarioError(f"{filename}: not a valid scenario file: {first}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{filename}: a scenario must be a mapping of keys to values")
    return data


def read_source(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """The raw mapping of a built-in name, a file or a dict (not validated)."""
    if isinstance(source, Mapping):
        return json.loads(json.dumps(dict(source), default=_jsonable))
    text_source = str(source)
    path = Path(text_source)
    if path.suffix in SCENARIO_SUFFIXES:
        if not path.is_file():
            raise ScenarioError(f"scenario file {text_source!r} does not exist")
        data = _parse_text(path.read_text(), path.name)
        data.setdefault("name", path.stem)
        return data
    for suffix in SCENARIO_SUFFIXES:
        entry = scenarios_folder() / f"{text_source}{suffix}"
        if entry.is_file():
            data = _parse_text(entry.read_text(), entry.name)
            data.setdefault("name", text_source)
            return data
    known = ", ".join(builtin_scenarios())
    raise ScenarioError(f"no built-in scenario or scenario file named {text_source!r} (built-in: {known})")


def _jsonable(value: object) -> object:
    if isinstance(value, Distribution):
        return value.spec()
    raise TypeError(f"{value!r} is not a scenario value")


def parse_override(text: str) -> tuple[str, Any]:
    """``"service.mean=2ms"`` -> ``("service.mean", "2ms")``; values are read as YAML."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ScenarioError(f"override {text!r} must look like key=value (for example servers=4)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def apply_overrides(data: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` with each dotted key set to its value."""
    out = json.loads(json.dumps(data, default=_jsonable))
    for dotted, value in overrides.items():
        target = out
        parts = dotted.split(".")
        for part in parts[:-1]:
            child = target.get(part)
            if child is None:
                child = target[part] = {}
            if not isinstance(child, dict):
                raise ScenarioError(f"{dotted}: cannot set a key inside {part!r}, which is {child!r}")
            target = child
        target[parts[-1]] = value
    return out


def format_validation_error(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        path = ".".join(str(p) for p in item["loc"]) or "scenario"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        if not item["loc"]:  # a check across fields: its message names them and their values
            lines.append(f"{path}: {message}")
            continue
        shown = item.get("input")
        if isinstance(shown, (dict, list)) and len(repr(shown)) > 60:
            shown = "{...}" if isinstance(shown, dict) else "[...]"
        lines.append(f"{path}: {message} (got {shown!r})")
    return "\n".join(lines)


def validate(data: Mapping[str, Any]) -> ScenarioBase:
    """Validate a raw mapping against its model kind's schema."""
    kind_name = data.get("model")
    if not kind_name:
        raise ScenarioError(f"model: missing (known kinds: {', '.join(sorted(model_kinds()))})")
    kind = load_kind(str(kind_name))
    try:
        return kind.config_class.model_validate(dict(data))
    except ValidationError as error:
        raise ScenarioError(format_validation_error(error)) from None


def load_scenario(
    source: str | Path | Mapping[str, Any],
    overrides: Mapping[str, Any] | list[str] | tuple[str, ...] = (),
) -> ScenarioBase:
    """Read, override and validate a scenario (see the module docstring)."""
    if isinstance(overrides, (list, tuple)):
        overrides = dict(parse_override(item) for item in overrides)
    return validate(apply_overrides(read_source(source), overrides))


def resolved(scenario: ScenarioBase) -> dict[str, Any]:
    """The scenario with every default filled in, as plain JSON data."""
    return scenario.model_dump(mode="json")


NOT_IN_KEY = ("name", "description", "replications")
"""Fields that do not change what one replication computes, so they do not change its key."""


def scenario_key(scenario: ScenarioBase, replication: int) -> str:
    """A stable key of one run: SHA-256 of the resolved scenario and the replication.

    Fields of :data:`NOT_IN_KEY` are left out, so asking for more replications,
    or running the same scenario from a file instead of by name, reuses the runs
    already stored.
    """
    content = {k: v for k, v in resolved(scenario).items() if k not in NOT_IN_KEY}
    payload = json.dumps({"scenario": content, "replication": replication}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]
