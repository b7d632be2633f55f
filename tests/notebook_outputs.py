"""The course notebooks' saved outputs: regenerate them at full size, and tell when they are stale.

``make notebooks`` runs ``python -m tests.notebook_outputs``: each notebook of
``notebooks/`` in turn, executed in place at full size (``CNSIM_SMOKE``
unset) by nbclient, in its own folder, with the repository first on the
kernel's path. After a run that raised nothing, the notebook's metadata gets
``cnsim.source_sha256``, the hash of its cells' sources (:func:`source_hash`),
``cnsim.size`` and ``cnsim.seconds``, the wall-clock time of the run. A
notebook in which a cell raises (a check of a quoted number, say) is left as
it was, and the others still run; the exit status says whether any failed.
``tests/test_notebook_outputs.py`` recomputes the hash: a cell edited (or
added, removed, moved) since the run fails the test until ``make notebooks``
runs again. Outputs do not enter the hash; neither do cell ids or metadata.

The test suite's own execution of the notebooks (``pytest --nbmake``, at smoke
size) works on a copy and never writes these outputs. Cells are executed
without timing records, so a re-run changes only what the simulation changed.

Usage: ``python -m tests.notebook_outputs [NAME ...]`` (default: every
notebook; a name may be a prefix such as ``10``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
META_KEY = "cnsim"


def notebook_paths() -> list[Path]:
    """The course notebooks, in course order (their file names start with it)."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))


def source_hash(notebook: dict[str, Any]) -> str:
    """SHA-256 of the cells' types and sources, in order: what a re-run would execute and show."""
    cells = [[cell["cell_type"], cell_text(cell)] for cell in notebook["cells"]]
    return hashlib.sha256(json.dumps(cells, ensure_ascii=True).encode()).hexdigest()


def cell_text(cell: dict[str, Any]) -> str:
    """A cell's source as one string (nbformat keeps it as a string or as a list of lines)."""
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def execute(path: Path, timeout_s: int = 3600) -> float:
    """Run ``path`` at full size and save it with its outputs and its source hash; returns the seconds taken."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    env_before = dict(os.environ)
    os.environ.pop("CNSIM_SMOKE", None)  # the kernel inherits this process's environment
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env_before.get("PYTHONPATH")]))
    started = time.perf_counter()
    try:
        client = NotebookClient(notebook, timeout=timeout_s, kernel_name="python3", record_timing=False,
                                resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    seconds = time.perf_counter() - started
    notebook.metadata[META_KEY] = {"source_sha256": source_hash(notebook), "size": "full",
                                   "seconds": round(seconds)}
    nbformat.write(notebook, path)
    return seconds


def main(argv: list[str]) -> int:
    paths = notebook_paths()
    if argv:
        paths = [path for path in paths if any(path.name.startswith(name) for name in argv)]
    failed = []
    for path in paths:
        print(f"{path.name}: running at full size ...", flush=True)
        try:
            seconds = execute(path)
        except Exception as error:  # a cell raised: the notebook is left as it was; go on with the others
            print(f"{path.name}: FAILED, left unchanged\n{error}", flush=True)
            failed.append(path.name)
            continue
        print(f"{path.name}: {seconds:.0f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
