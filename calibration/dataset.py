"""One host's calibration data folder, and what every fit shares.

:class:`Dataset` reads the CSVs of ``calibration/data/<host>/`` once and knows,
from ``meta.json``, how each was measured (host, date, versions, commands, load
average), which every parameter set repeats in its header. :func:`clock_fit`
fits clock-difference samples; :func:`seed_of` seeds every bootstrap from the
parameter set's name, so fits are deterministic.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from calibration.distfit import fit_distribution, step_resolution

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
PARAMS_DIR = PACKAGE_DIR / "params"
DATA_ROOT = PACKAGE_DIR / "data"

HARNESS_OF = {
    "gc_pauses.csv": "gc",
    "go_alloc.csv": "alloc",
    "go_gc_work.csv": "gc_work",
    "goroutines.csv": "goroutines",
    "channel_handoff.csv": "channels",
    "sched_wakeup.csv": "sched",
    "json_codec.csv": "json",
    "k8s_codec.csv": "k8s_codec",
    "http_latency.csv": "http",
    "http_server_cpu.csv": "http",
    "go_process.csv": "go_process",
    "node_process.csv": "node_process",
    "node_isolate.csv": "node_isolate",
    "node_worker.csv": "node_worker",
    "node_gc_pauses.csv": "node_gc",
    "node_alloc.csv": "node_alloc",
    "node_http_cpu.csv": "node_http",
    "faas_start.csv": "faas_coldstart",
    "faas_requests.csv": "faas_coldstart",
    "faas_isolate.csv": "faas_coldstart",
    "machine_work.csv": "machine",
    "machine_work_cpu.csv": "work_stretch",
    "machine_wake.csv": "machine",
    "machine_slices.csv": "machine",
    "machine_placement.csv": "machine",
    "machine_load_cpu.csv": "machine",
    "machine_sysmon.csv": "sysmon",
    "proxy_sidecar.csv": "proxy",
    "proxy_costs.csv": "proxy_costs",
    "proxy_memory.csv": "proxy_costs",
    "etcd_put.csv": "etcd",
    "etcd_range.csv": "etcd",
    "etcd_watch.csv": "etcd",
}
"""Which harness (``cnsim calibrate measure --only NAME``) writes each CSV."""
VERSIONS_OF = {"node": ("node_version",), "faas": ("go_version", "node_version")}
"""The toolchain versions of meta.json a harness's sets repeat, by its name's first word (else Go's)."""


def seed_of(name: str) -> int:
    """A stable 64-bit seed from a parameter set's name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def default_data_dir() -> Path:
    """The only host folder under ``calibration/data/`` (``--data`` chooses among several)."""
    hosts = sorted(p for p in DATA_ROOT.iterdir() if p.is_dir() and (p / "meta.json").is_file())
    if len(hosts) != 1:
        found = ", ".join(p.name for p in hosts) or "none"
        raise ValueError(f"--data: choose a data folder; calibration/data/ holds {found}")
    return hosts[0]


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path.resolve())


class Dataset:
    """One host's data folder: its CSVs (read once) and meta.json."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        meta_path = self.folder / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"no meta.json in {self.folder}")
        self.meta = json.loads(meta_path.read_text())
        self._frames: dict[str, pd.DataFrame] = {}

    def has(self, filename: str) -> bool:
        return (self.folder / filename).is_file()

    def frame(self, filename: str) -> pd.DataFrame:
        if filename not in self._frames:
            self._frames[filename] = pd.read_csv(self.folder / filename)
        return self._frames[filename]

    def measured(self, filename: str) -> dict[str, Any]:
        """Host, date, versions, commands and load of the harness run that wrote ``filename``."""
        run = self.meta.get("harnesses", {}).get(HARNESS_OF[filename], {})
        commands = run.get("commands", [])
        loads = [c["loadavg_before"][0] for c in commands] + [c["loadavg_after"][0] for c in commands]
        versions = VERSIONS_OF.get(HARNESS_OF[filename].split("_")[0], ("go_version",))
        return {
            "host": self.meta.get("host"),
            "date": run.get("date", self.meta.get("date")),
            **{version: self.meta.get(version) for version in versions},
            "cores": self.meta.get("cores"),
            "quick": run.get("quick"),
            "harness_source_sha256": run.get("harness_source_sha256", self.meta.get("harness_source_sha256")),
            "loadavg_1min_max": max(loads) if loads else None,
            "commands": [{key: c[key] for key in ("argv", "env", "server_argv", "server_env", "proxy_argv",
                                                  "proxy_env")
                          if key in c}
                         for c in commands],
        }

    def header(self, name: str, description: str, unit: str, filename: str, kind: str) -> dict[str, Any]:
        return {
            "name": name,
            "description": description,
            "unit": unit,
            "dataset": _relative(self.folder / filename),
            "measured": self.measured(filename),
            "kind": kind,
        }


def clock_fit(name: str, y: np.ndarray) -> dict[str, Any]:
    """A distribution fit of clock-difference samples: bootstrap replicates are rounded to the data's step."""
    step = step_resolution(y, 1e-9)

    def measurement(values: np.ndarray) -> np.ndarray:
        return np.maximum(np.rint(values / step), 1) * step

    result = fit_distribution(y, np.random.default_rng(seed_of(name)), measurement=measurement, resolution=step)
    result["fit"]["bootstrap_seed"] = seed_of(name)
    return result
