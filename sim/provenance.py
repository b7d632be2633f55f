"""What produced a result: the cnsim version and the hashes of the calibrated parameter sets it read.

A sweep records this twice: in ``sweep.json`` as the parent process sees it
(:func:`provenance`: the version, every parameter set's SHA-256 and one digest
over them), and in each run file's metadata as the *worker* that computed the
run saw it (:func:`worker_provenance`: the version and the digest), since on a
cluster the workers are other installations, which may differ from the
parent's. With the resolved scenario kept in each run file, a result can be
traced to the code and numbers that produced it.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import metadata
from typing import Any

from sim.params import params_folder, params_hashes

DISTRIBUTION = "cnsim"


@cache
def cnsim_version() -> str:
    """The installed cnsim's version (its distribution metadata), or ``"unknown"`` if it is not installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def params_digest(hashes: dict[str, str]) -> str:
    """One SHA-256 over ``name hash`` lines of every parameter set, in name order."""
    lines = "".join(f"{name} {digest}\n" for name, digest in sorted(hashes.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def worker_provenance() -> dict[str, str]:
    """The version and the parameter sets' digest of this process: what a run file records."""
    return {"cnsim_version": cnsim_version(), "params_sha256": params_digest(params_hashes())}


def provenance() -> dict[str, Any]:
    """:func:`worker_provenance`, the folder the parameter sets were read from, and each set's SHA-256."""
    hashes = params_hashes()
    return {**worker_provenance(), "params_folder": str(params_folder()), "params": hashes}
