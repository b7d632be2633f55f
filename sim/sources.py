"""Folders of data that other packages ship to the engine, found by entry point or environment variable.

The engine imports no model and no calibration (they are layers above it), so
it finds the folders they ship, the calibrated parameter sets and the built-in
scenarios, the way it finds model kinds: through an entry-point group in the
installed distributions' metadata (``pyproject.toml``). An entry point's value
names a package; the folder is that package's directory, or a sub-folder of it.

An environment variable, when set, names a folder on disk instead, and wins.
:func:`set_folder` sets it from Python. Being the environment, it is inherited
by the worker processes a sweep starts afterwards.

Nothing is looked up before it is asked for: the entry points are read, and
the package imported (for its location), on the first call of :func:`folder`
for a group, and remembered.
"""

from __future__ import annotations

import os
from functools import cache
from importlib import metadata, resources
from importlib.abc import Traversable
from pathlib import Path


def folder(group: str, variable: str, subfolder: str = "") -> Traversable:
    """The folder of ``group``: the directory in environment variable ``variable`` if set, else
    ``subfolder`` of the package that the one entry point of ``group`` names.

    Raises FileNotFoundError when the variable names no directory, and LookupError
    when no entry point or several are registered (the message says how to choose).
    """
    chosen = os.environ.get(variable)
    if chosen:
        path = Path(chosen)
        if not path.is_dir():
            raise FileNotFoundError(f"{variable}={chosen!r} is not a folder")
        return path
    return _registered(group, variable, subfolder)


@cache
def _registered(group: str, variable: str, subfolder: str) -> Traversable:
    """The folder named by the entry points of ``group``; cached, so each call returns the same object."""
    entries = sorted(metadata.entry_points(group=group), key=lambda entry: entry.name)
    if len(entries) != 1:
        found = ", ".join(f"{entry.name} = {entry.value}" for entry in entries) or "none: is cnsim installed?"
        raise LookupError(f"entry-point group {group!r} must name one package (found: {found}); "
                          f"set {variable} to a folder to choose")
    base = resources.files(entries[0].module)
    return base / subfolder if subfolder else base


def set_folder(variable: str, path: str | Path | None) -> None:
    """Set environment variable ``variable`` to the absolute ``path`` (a directory), or unset it for None."""
    if path is None:
        os.environ.pop(variable, None)
        return
    resolved = Path(path).resolve()
    if not resolved.is_dir():
        raise FileNotFoundError(f"{path!s} is not a folder")
    os.environ[variable] = str(resolved)
