"""Scenarios: the pydantic schema, loading from YAML/TOML/dicts, the registry of model kinds.

A scenario is a mapping whose ``model`` key names a model kind; the kind's
``config_class`` (a subclass of :class:`ScenarioBase`) validates the rest. A
scenario can be given as

* the name of a built-in scenario (``mmc``: a file in :func:`scenarios_folder`),
* a path to a ``.yaml``, ``.yml``, ``.toml`` or ``.json`` file,
* a plain dict,

with overrides ``key.path=value`` whose values are read as YAML (``servers=4``,
``service={dist: exp, mean: 1ms}``). Unknown keys and bad values fail with a
:class:`ScenarioError` whose lines each name a field's path and the value (the
first :data:`MAX_ERROR_LINES` of them, then how many more).

Every part of a schema derives from :class:`ScenarioPart`: unknown keys, ``true``
or ``false`` for a number, and infinite or NaN numbers are errors. A quantity
field says its dimension with the annotated types :data:`Duration`, :data:`Size`,
:data:`Rate`, :data:`DurationDist` and :data:`SizeDist`, so ``service: 8KiB`` is
an error, not 8192 seconds.

A file is read as UTF-8 and bounded before it is believed: at most
:data:`MAX_SCENARIO_BYTES`, at most :data:`MAX_SCENARIO_VALUES` values once YAML
aliases are expanded, nested at most :data:`MAX_SCENARIO_DEPTH` deep, and no
mapping with the same key twice. A relative ``file`` of an empirical
distribution is read from the scenario file's folder.

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
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from importlib.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic.json_schema import JsonDict

from sim import sources
from sim.dists import Distribution, parse_dist, resolve_file
from sim.units import BYTES, PER_SECOND, SECONDS, Dimension, parse_duration, parse_rate, parse_size

if TYPE_CHECKING:
    from sim.core import Model

ENTRY_POINT_GROUP = "cnsim.models"
SCENARIOS_GROUP = "cnsim.scenarios"
"""Entry-point group whose one entry names the package of built-in scenario files."""
SCENARIOS_VARIABLE = "CNSIM_SCENARIOS"
"""Environment variable naming a folder of scenario files to use as the built-in ones instead."""
SCENARIO_SUFFIXES = (".yaml", ".yml", ".toml", ".json")

MAX_SCENARIO_BYTES = 2**20
"""The largest scenario file read, 1 MiB: the shipped ones are under 4 KiB, and a longer list of samples
belongs in a CSV file (an empirical distribution's ``file``). Checked before parsing, which PyYAML does in
pure Python at a few seconds per MiB."""
MAX_SCENARIO_VALUES = 100_000
"""The most values (mappings, lists and scalars) a scenario may hold once YAML aliases are expanded. An
alias is a reference, so 9 lists of 9 aliases to the one before (a few hundred bytes, "billion laughs")
stand for 9⁹ values; copying them (the overrides, the resolved scenario) would exhaust memory. A file
within :data:`MAX_SCENARIO_BYTES` has fewer values than this unless aliases multiply them."""
MAX_SCENARIO_DEPTH = 64
"""The deepest nesting of mappings and lists: a scenario nests about 6 deep; deeper input only risks
Python's recursion limit in the parsers and in validation."""
MAX_COUNT = 1_000_000
"""The most simulated things of one kind a scenario may ask a model to build at once (Ps, threads, cores,
workers, clients and their callers, servers): each is some hundreds of bytes to a few KiB of Python objects,
so a million is about a GiB, the size of the largest runs planned (a million goroutines alive at once);
more would exhaust the machine's memory before the first event."""
MAX_ERROR_LINES = 20
"""Lines of a :class:`ScenarioError` shown; the rest are counted on one more line."""


class ScenarioError(ValueError):
    """Bad input: a scenario that cannot be loaded or validated, or a value given on the command line.
    The message is for the user as it is: one line per problem, naming the field and the value."""


def first_lines(lines: list[str], total: int | None = None) -> str:
    """The first :data:`MAX_ERROR_LINES` of ``lines`` and, if ``total`` (default: their number) is more,
    a line saying how many more there are."""
    more = (len(lines) if total is None else total) - MAX_ERROR_LINES
    return "\n".join(lines[:MAX_ERROR_LINES] + ([f"... and {more:,} more"] if more > 0 else []))


def _dist_of(dimension: Dimension) -> Callable[[object], Distribution]:
    def parse(value: object) -> Distribution:
        return parse_dist(value, dimension=dimension)

    return parse


@dataclass(frozen=True)
class Unit:
    """The unit of a field's quantities (``"s"``, ``"bytes"``, ``"1/s"``: :data:`sim.units.UNIT_SUFFIXES`),
    carried in its type (:data:`Duration`, :data:`SizeDist`...) so that ``cnsim scenarios --show``
    can write them with units; pydantic ignores it."""

    name: str


_AS_SPEC = PlainSerializer(lambda d: d.spec(), return_type=dict)

Duration = Annotated[float, BeforeValidator(parse_duration), Unit(SECONDS)]
"""Seconds: a number, or a string with a duration unit (``2ms``)."""
Size = Annotated[float, BeforeValidator(parse_size), Unit(BYTES)]
"""Bytes: a number, or a string with a size unit (``8KiB``)."""
Rate = Annotated[float, BeforeValidator(parse_rate), Unit(PER_SECOND)]
"""Events per second: a number, or a string with a rate unit (``900/s``)."""
DurationDist = Annotated[Distribution, BeforeValidator(_dist_of("duration")), _AS_SPEC, Unit(SECONDS)]
"""A distribution of durations (a service time, a pause): its ``mean``, ``value``... are durations."""
SizeDist = Annotated[Distribution, BeforeValidator(_dist_of("size")), _AS_SPEC, Unit(BYTES)]
"""A distribution of sizes (bytes allocated): its ``mean``, ``value``... are sizes."""


def field_unit(field: FieldInfo) -> str | None:
    """The :class:`Unit` a field's type carries (through ``| None`` too), or None."""
    pending: list[Any] = [*field.metadata, field.annotation]
    while pending:
        item = pending.pop()
        if isinstance(item, Unit):
            return item.name
        if get_origin(item) is Annotated:
            pending.extend(item.__metadata__)
        pending.extend(get_args(item))
    return None


CALIBRATED = "calibrated"
"""Key of a field's ``json_schema_extra`` naming the parameter set its null stands for (:func:`calibrated`)."""


def calibrated(name: str, derived: str = "", unless: str = "") -> JsonDict:
    """``json_schema_extra`` of a field whose null means parameter set ``name`` (``sim.params``), so that
    ``cnsim scenarios --show`` can show the value; the model still resolves the null itself.

    ``derived``: how the field's value follows from the set when it is not the set's own value, one of
    ``"1/slope"`` (a linear set's inverse slope), ``"intercept/2"`` (a linear set's line with half
    its intercept), ``"coefficients.objects"`` and ``"coefficients.pointers"`` (a multilinear set's
    coefficient) and ``"table"`` (a table read at a value the model knows only as it runs).
    ``unless``: a sibling field which, when given, is what the null stands for instead.
    """
    extra: JsonDict = {CALIBRATED: name}
    if derived:
        extra["derived"] = derived
    if unless:
        extra["unless"] = unless
    return extra


def calibrated_field(description: str, name: str, **constraints: Any) -> Any:
    """A field whose default null means parameter set ``name``: its description ends "; default NAME" and its
    schema names the set (:func:`calibrated`); ``constraints`` are pydantic's (``ge=...``)."""
    return Field(None, description=f"{description}; default {name}", json_schema_extra=calibrated(name),
                 **constraints)


def _leaf_types(annotation: Any) -> set[Any]:
    """The types a field's annotation is built from: ``int | None`` -> {int, NoneType}, ``tuple[float, float]``
    -> {float}, a Literal -> the types of its values."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _leaf_types(get_args(annotation)[0])
    if origin is Literal:
        return {type(value) for value in get_args(annotation)}
    if origin in (Union, types.UnionType, tuple, list, dict, set, frozenset):
        return set().union(*(_leaf_types(arg) for arg in get_args(annotation) if arg is not Ellipsis))
    return {annotation}


def _holds_bool(value: object) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, (list, tuple)):
        return any(_holds_bool(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_bool(item) for item in value.values())
    return False


class ScenarioPart(BaseModel):
    """The base of every part of a scenario's schema (a model kind's scenario, its ``handler``, ``gc``...).

    Unknown keys are errors; so are ``true`` and ``false`` where a number is expected (pydantic would read
    ``servers: true`` as 1) and infinite or NaN numbers (``gogc: .inf``).
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name is None or not _holds_bool(value):
            return value
        leaves = _leaf_types(cls.model_fields[info.field_name].annotation)
        if leaves & {int, float} and not leaves & {bool, Any, object}:
            raise ValueError("expected a number, not true or false")
        return value


class ScenarioBase(ScenarioPart):
    """Fields common to every scenario; model kinds add their own."""

    model_config = ConfigDict(validate_default=True)

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
            data = _read_file(entry, entry.name)
            out[entry.name.rsplit(".", 1)[0]] = str(data.get("description", "")).strip().split("\n")[0]
    return out


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """PyYAML's safe loader (on libyaml's parser where PyYAML was built with it: ten times faster on a
    thousand-service architecture), refusing a mapping that has the same key twice (YAML keeps the last
    silently)."""

    where = "scenario"

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        lines: dict[Any, int] = {}
        for key_node, _value in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` then an explicit key overrides it
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = lines.get(key)
            except TypeError:  # an unhashable key: PyYAML reports it
                continue
            if first is not None:
                raise ScenarioError(f"{self.where}: line {line}: key {key!r} given twice (also on line {first})")
            lines[key] = line
        return super().construct_mapping(node, deep)


def load_yaml(text: str, where: str) -> Any:
    """The data of a YAML document, bounded by :func:`check_shape` and refusing duplicate keys; ``where`` (a
    file's name, ``--set KEY``) starts any error. Raises ``yaml.YAMLError`` for text that is not YAML."""
    loader = _Loader(text)
    loader.where = where
    try:
        data = loader.get_single_data()
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ScenarioError(f"{where}: nested more than {MAX_SCENARIO_DEPTH} deep") from None
    finally:
        loader.dispose()
    check_shape(data, where)
    return data


def _no_duplicate_json_keys(where: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ScenarioError(f"{where}: key {key!r} given twice")
            out[key] = value
        return out

    return build


def check_shape(data: object, where: str) -> None:
    """Refuse data with more than :data:`MAX_SCENARIO_VALUES` values once aliases are expanded, nested deeper
    than :data:`MAX_SCENARIO_DEPTH`, or containing itself (a recursive YAML alias).

    A YAML alias is the same Python object in every place it is used, so each distinct list or mapping is
    counted once, with its expanded size: the walk takes time in the size of the document, not of its
    expansion.
    """
    sizes: dict[int, int] = {}
    open_ids: set[int] = set()

    def size(value: object, depth: int) -> int:
        if not isinstance(value, (dict, list)):
            return 1
        if depth > MAX_SCENARIO_DEPTH:
            raise ScenarioError(f"{where}: nested more than {MAX_SCENARIO_DEPTH} deep")
        ident = id(value)
        if ident in sizes:
            return sizes[ident]
        if ident in open_ids:
            raise ScenarioError(f"{where}: a YAML alias refers to a mapping or list that contains it")
        open_ids.add(ident)
        total = 1
        for item in value.values() if isinstance(value, dict) else value:
            total += size(item, depth + 1) + isinstance(value, dict)  # a mapping's key is a value too
            if total > MAX_SCENARIO_VALUES:
                raise ScenarioError(
                    f"{where}: more than {MAX_SCENARIO_VALUES:,} values once YAML aliases are expanded "
                    "(long samples belong in a CSV file: dist: empirical, file: ...)"
                )
        open_ids.discard(ident)
        sizes[ident] = total
        return total

    size(data, 0)


def _read_file(path: Path | Traversable, where: str) -> dict[str, Any]:
    """The mapping of a scenario file, bounded (see the module docstring); errors start with ``where``."""
    with path.open("rb") as handle:
        raw = handle.read(MAX_SCENARIO_BYTES + 1)
    if len(raw) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"{where}: larger than {MAX_SCENARIO_BYTES // 2**20} MiB, too large for a scenario")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ScenarioError(f"{where}: not a UTF-8 text file (byte {error.start} is {raw[error.start]:#04x})") from None
    return _parse_text(text, where)


def _parse_text(text: str, filename: str) -> dict[str, Any]:
    try:
        if filename.endswith(".toml"):
            data = tomllib.loads(text)
        elif filename.endswith(".json"):
            data = json.loads(text, object_pairs_hook=_no_duplicate_json_keys(filename))
        else:
            data = load_yaml(text, filename)
    except (yaml.YAMLError, tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        first = str(error).strip().splitlines()[0]
        raise ScenarioError(f"{filename}: not a valid scenario file: {first}") from None
    except RecursionError:  # the JSON and TOML parsers recurse too
        raise ScenarioError(f"{filename}: nested more than {MAX_SCENARIO_DEPTH} deep") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{filename}: a scenario must be a mapping of keys to values")
    check_shape(data, filename)  # JSON and TOML have no aliases, but can nest
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
        data = _read_file(path, path.name)
        data.setdefault("name", path.stem)
        return _anchor_files(data, path.parent)
    folder = scenarios_folder()
    for suffix in SCENARIO_SUFFIXES:
        entry = folder / f"{text_source}{suffix}"
        if entry.is_file():
            data = _read_file(entry, entry.name)
            data.setdefault("name", text_source)
            return _anchor_files(data, folder) if isinstance(folder, Path) else data
    known = ", ".join(builtin_scenarios())
    raise ScenarioError(f"no built-in scenario or scenario file named {text_source!r} (built-in: {known})")


def _anchor_files(data: Any, folder: Path) -> Any:
    """``data`` with each empirical distribution's relative ``file`` made relative to ``folder`` (the scenario
    file's), not to the working directory, so that a scenario and its samples move together."""
    if isinstance(data, list):
        return [_anchor_files(item, folder) for item in data]
    if not isinstance(data, dict):
        return data
    out = {key: _anchor_files(value, folder) for key, value in data.items()}
    if out.get("dist") == "empirical" and isinstance(out.get("file"), str) and out["file"]:
        out["file"] = str(resolve_file(out["file"], folder))
    return out


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
        value = load_yaml(raw, f"--set {key}") if raw.strip() else ""
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
    """One line per problem, naming the field's dotted path and the value (the first
    :data:`MAX_ERROR_LINES`, then a count of the rest)."""
    lines = []
    for item in error.errors()[:MAX_ERROR_LINES]:
        path = ".".join(str(p) for p in item["loc"]) or "scenario"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        if not item["loc"]:  # a check across fields: its message names them and their values
            lines.append(f"{path}: {message}")
            continue
        shown = repr(item.get("input"))
        if isinstance(item.get("input"), (dict, list)) and len(shown) > 60:
            shown = "{...}" if isinstance(item.get("input"), dict) else "[...]"
        named = shown in message or "(got " in message  # the message names the value already
        lines.append(f"{path}: {message}" if named else f"{path}: {message} (got {shown})")
    return first_lines(lines, error.error_count())


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
