"""Fit the raw data of one host (``calibration/data/<host>/``) into parameter sets (``calibration/params/``).

Each function below turns one CSV into one or more parameter sets in the format
of :mod:`sim.params`; :data:`FITS` lists them all. Every fit is deterministic:
bootstrap streams come from a ``numpy.random.Generator`` seeded by a stable hash
of the parameter set's name.

GC pauses use the steady phase only (cycles after the live heap was built,
none forced), pooled over heap sizes and GOGC: whether pauses depend on the
heap is what the ``*_vs_heap`` lines show. gctrace rounds times (see
:mod:`calibration.gctrace`); fits use the midpoint of each printed value's
interval, and the bootstrap rounds its replicates the same way.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from calibration import gctrace
from calibration.distfit import fit_constant, fit_distribution, fit_linear, step_resolution

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
PARAMS_DIR = PACKAGE_DIR / "params"
DATA_ROOT = PACKAGE_DIR / "data"

STW = {
    "sweep_termination": ("sweep_term_s", "STW sweep termination: the first stop-the-world pause of a cycle"),
    "mark_termination": ("mark_term_s", "STW mark termination: the second stop-the-world pause of a cycle"),
}
HARNESS_OF = {
    "gc_pauses.csv": "gc",
    "goroutines.csv": "goroutines",
    "channel_handoff.csv": "channels",
    "sched_wakeup.csv": "sched",
    "json_codec.csv": "json",
}


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
        return {
            "host": self.meta.get("host"),
            "date": run.get("date", self.meta.get("date")),
            "go_version": self.meta.get("go_version"),
            "cores": self.meta.get("cores"),
            "quick": run.get("quick"),
            "harness_source_sha256": self.meta.get("harness_source_sha256"),
            "loadavg_1min_max": max(loads) if loads else None,
            "commands": [{"argv": c["argv"], "env": c["env"]} for c in commands],
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


def _steady_gc(data: Dataset) -> pd.DataFrame:
    frame = data.frame("gc_pauses.csv")
    return frame[(frame["phase"] == "steady") & (~frame["forced"].astype(bool))]


def _mark_cpu_s(steady: pd.DataFrame) -> np.ndarray:
    return sum(gctrace.midpoint(steady[c].to_numpy()) for c in ("cpu_assist_s", "cpu_background_s", "cpu_idle_s"))


def observations(name: str, data: Dataset) -> pd.DataFrame:
    """The samples behind parameter set ``name``: column ``y``, with ``x`` for a line and ``group`` where useful."""
    if name.startswith("go.gc."):
        steady = _steady_gc(data)
        group = (steady["heap_target_bytes"] // 2**20).astype(str) + " MiB, GOGC " + steady["gogc"].astype(str)
        if name == "go.gc.mark_cpu_vs_heap":
            y = _mark_cpu_s(steady)
        else:
            kind = name.removeprefix("go.gc.stw_").removesuffix("_vs_heap")
            y = gctrace.midpoint(steady[STW[kind][0]].to_numpy())
        return pd.DataFrame({"x": steady["heap_live_bytes"].to_numpy(), "y": y, "group": group.to_numpy()})
    if name.startswith("go.goroutine."):
        frame = data.frame("goroutines.csv")
        if name == "go.goroutine.spawn_s":
            spawn = frame[frame["measurement"] == "spawn"]
            return pd.DataFrame({"y": spawn["ns_per_goroutine"].to_numpy() * 1e-9,
                                 "group": spawn["n"].astype(str).to_numpy() + " goroutines"})
        fresh = frame[(frame["measurement"] == "memory") & (frame["rep"] == 0)]
        return pd.DataFrame({"y": fresh["sys_bytes_per_goroutine"].to_numpy(),
                             "group": fresh["n"].astype(str).to_numpy() + " blocked, fresh process"})
    if name.startswith("go.chan.handoff_"):
        frame = data.frame("channel_handoff.csv")
        channel = name.removeprefix("go.chan.handoff_").removesuffix("_s")
        return pd.DataFrame({"y": frame.loc[frame["channel"] == channel, "latency_s"].to_numpy()})
    if name == "go.sched.wakeup_late_s":
        frame = data.frame("sched_wakeup.csv")
        idle = frame[(frame["gomaxprocs"] == 2) & (frame["busy"] == 0)]
        return pd.DataFrame({"y": idle["late_s"].to_numpy()})
    if name.startswith("go.json."):
        frame = data.frame("json_codec.csv")
        op, _, what = name.removeprefix("go.json.").partition("_")
        rows = frame[frame["operation"] == op]
        column = "ns_per_op" if what == "s" else "bytes_per_op"
        scale = 1e-9 if what == "s" else 1.0
        return pd.DataFrame({"y": rows[column].to_numpy() * scale})
    raise KeyError(f"no observations known for parameter set {name!r}")


def _rounded(values: np.ndarray) -> np.ndarray:
    return gctrace.midpoint(gctrace.quantize(values))


def _clock_fit(name: str, y: np.ndarray) -> dict[str, Any]:
    """A distribution fit of clock-difference samples: bootstrap replicates are rounded to the data's step."""
    step = step_resolution(y, 1e-9)

    def measurement(values: np.ndarray) -> np.ndarray:
        return np.maximum(np.rint(values / step), 1) * step

    result = fit_distribution(y, np.random.default_rng(seed_of(name)), measurement=measurement, resolution=step)
    result["fit"]["bootstrap_seed"] = seed_of(name)
    return result


def fit_gc_stw(data: Dataset) -> list[dict[str, Any]]:
    steady = _steady_gc(data)
    out = []
    for kind, (column, what) in STW.items():
        name = f"go.gc.stw_{kind}"
        y = observations(name, data)["y"].to_numpy()
        result = fit_distribution(y, np.random.default_rng(seed_of(name)), measurement=_rounded, resolution=1e-6)
        groups = steady.assign(y=y).groupby(["heap_target_bytes", "gogc"])["y"]
        result["fit"].update(
            {
                "samples": "steady-phase GC cycles (none forced), pooled over heap sizes and GOGC; "
                "each value the midpoint of its gctrace rounding interval",
                "bootstrap_seed": seed_of(name),
                "by_heap_and_gogc": [
                    {"heap_target_bytes": int(h), "gogc": int(g), "n": int(s.size), "median_s": float(s.median()),
                     "p99_s": float(s.quantile(0.99))}
                    for (h, g), s in groups
                ],
            }
        )
        out.append({**data.header(name, f"Go GC {what} (seconds), GOMAXPROCS {int(steady['gomaxprocs'].iloc[0])}",
                                  "s", "gc_pauses.csv", "distribution"), **result})
        points = observations(f"{name}_vs_heap", data)
        line = fit_linear(points["x"].to_numpy(), points["y"].to_numpy())
        out.append({**data.header(f"{name}_vs_heap", f"Go GC {what}, as a line in the live heap", "s",
                                  "gc_pauses.csv", "linear"),
                    "x": "heap_live_bytes", "y": column, **line})
    return out


def fit_gc_mark_cpu(data: Dataset) -> list[dict[str, Any]]:
    points = observations("go.gc.mark_cpu_vs_heap", data)
    line = fit_linear(points["x"].to_numpy(), points["y"].to_numpy())
    return [{**data.header("go.gc.mark_cpu_vs_heap",
                           "CPU seconds of one GC cycle's concurrent mark (assists + background + idle workers) "
                           "as a line in the live (marked) heap; the slope is mark CPU seconds per live byte",
                           "s", "gc_pauses.csv", "linear"),
             "x": "heap_live_bytes", "y": "cpu_assist_s + cpu_background_s + cpu_idle_s", **line}]


def fit_goroutines(data: Dataset) -> list[dict[str, Any]]:
    from scipy import stats as scipy_stats

    frame = data.frame("goroutines.csv")
    spawn = frame[frame["measurement"] == "spawn"]
    result = fit_constant(observations("go.goroutine.spawn_s", data)["y"].to_numpy())
    sizes = sorted(spawn["n"].unique())
    by_n = {int(n): spawn.loc[spawn["n"] == n, "ns_per_goroutine"].to_numpy() * 1e-9 for n in sizes}
    result["fit"]["by_goroutines"] = [{"n_goroutines": n, "mean_s": float(v.mean()), "reps": int(v.size)}
                                      for n, v in by_n.items()]
    if len(by_n) == 2:
        a, b = by_n.values()
        welch = scipy_stats.ttest_ind(a, b, equal_var=False)
        result["goodness_of_fit"]["same_mean_across_sizes"] = {
            "test": f"Welch t-test, {sizes[0]} vs {sizes[1]} goroutines",
            "statistic": float(welch.statistic), "p_value": float(welch.pvalue)}
    out = [{**data.header("go.goroutine.spawn_s",
                          "Cost of one goroutine's spawn, first run and exit, amortised over rounds of 10k and "
                          "100k goroutines (time of a round / goroutines)", "s", "goroutines.csv", "constant"),
            **result}]
    memory = frame[frame["measurement"] == "memory"]
    fresh, adapted = memory[memory["rep"] == 0], memory[memory["rep"] == 1]
    stack = fit_constant(observations("go.goroutine.stack_bytes", data)["y"].to_numpy())
    stack["fit"].update({
        "samples": "first round of blocked goroutines in a fresh process per repetition",
        "stack_inuse_bytes_per_goroutine_mean": float(fresh["stack_inuse_bytes_per_goroutine"].mean()),
        "heap_inuse_bytes_per_goroutine_mean": float(fresh["heap_inuse_bytes_per_goroutine"].mean()),
        "second_round_stack_inuse_bytes_per_goroutine_mean": float(adapted["stack_inuse_bytes_per_goroutine"].mean())
        if len(adapted) else None,
    })
    out.append({**data.header("go.goroutine.stack_bytes",
                              "Resident memory per blocked goroutine: runtime.MemStats.Sys delta / goroutines, "
                              "10k goroutines blocked on a channel in a fresh process (stack, g structure and "
                              "runtime overhead; StackInuse and HeapInuse shares beside it, and the larger stack "
                              "a second round starts with once the runtime's adaptive stack size has grown)",
                              "bytes", "goroutines.csv", "constant"), **stack})
    return out


def fit_channels(data: Dataset) -> list[dict[str, Any]]:
    frame = data.frame("channel_handoff.csv")
    out = []
    for channel, group in frame.groupby("channel", sort=True):
        name = f"go.chan.handoff_{channel}_s"
        result = _clock_fit(name, observations(name, data)["y"].to_numpy())
        capacity = int(group["capacity"].iloc[0])
        out.append({**data.header(name, f"Go channel hand-off latency, {channel} channel (capacity {capacity}): "
                                  "send to a parked receiver until it runs, GOMAXPROCS "
                                  f"{int(group['gomaxprocs'].iloc[0])}", "s", "channel_handoff.csv",
                                  "distribution"), **result})
    return out


def fit_sched(data: Dataset) -> list[dict[str, Any]]:
    frame = data.frame("sched_wakeup.csv")
    name = "go.sched.wakeup_late_s"
    result = _clock_fit(name, observations(name, data)["y"].to_numpy())
    result["fit"]["by_gomaxprocs_and_busy"] = [
        {"gomaxprocs": int(p), "busy": int(b), "n": int(s.size), "median_s": float(s.median()),
         "p99_s": float(s.quantile(0.99))}
        for (p, b), s in frame.groupby(["gomaxprocs", "busy"])["late_s"]
    ]
    return [{**data.header(name, "How late a goroutine sleeping 1 ms resumes on an otherwise idle runtime "
                           "(GOMAXPROCS 2, no busy goroutines); the fit also lists the lateness with busy "
                           "goroutines", "s", "sched_wakeup.csv", "distribution"), **result}]


def fit_json(data: Dataset) -> list[dict[str, Any]]:
    frame = data.frame("json_codec.csv")
    out = []
    for op, group in frame.groupby("operation", sort=True):
        size = int(group["object_bytes"].iloc[0])
        timing = fit_constant(observations(f"go.json.{op}_s", data)["y"].to_numpy())
        timing["fit"]["allocs_per_op_mean"] = float(group["allocs_per_op"].mean())
        out.append({**data.header(f"go.json.{op}_s", f"encoding/json {op.title()} of a {size}-byte object, "
                                  "per call (testing.Benchmark ns/op)", "s", "json_codec.csv", "constant"),
                    **timing})
        alloc = fit_constant(observations(f"go.json.{op}_alloc_bytes", data)["y"].to_numpy())
        out.append({**data.header(f"go.json.{op}_alloc_bytes", f"Bytes allocated by one encoding/json "
                                  f"{op.title()} of a {size}-byte object (testing.Benchmark B/op)", "bytes",
                                  "json_codec.csv", "constant"), **alloc})
    return out


#: Every fit with the CSV it needs.
FITS: list[tuple[str, Callable[[Dataset], list[dict[str, Any]]]]] = [
    ("gc_pauses.csv", fit_gc_stw),
    ("gc_pauses.csv", fit_gc_mark_cpu),
    ("goroutines.csv", fit_goroutines),
    ("channel_handoff.csv", fit_channels),
    ("sched_wakeup.csv", fit_sched),
    ("json_codec.csv", fit_json),
]


def fit_all(folder: Path) -> list[dict[str, Any]]:
    """Every parameter set the data in ``folder`` support (fits whose CSV is missing are skipped)."""
    data = Dataset(folder)
    params: list[dict[str, Any]] = []
    for filename, fit in FITS:
        if data.has(filename):
            params += fit(data)
    return params


def dumps(params: dict[str, Any]) -> str:
    return json.dumps(params, indent=2) + "\n"


def write_params(params: list[dict[str, Any]], out_dir: Path = PARAMS_DIR) -> list[Path]:
    """Write each parameter set to ``out_dir/<name>.json``; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for entry in params:
        path = out_dir / f"{entry['name']}.json"
        path.write_text(dumps(entry))
        paths.append(path)
    return paths
