"""The etcd validation: a real etcd under open-loop puts with watchers, and its simulated ``k8s.etcd`` counterpart.

Each run (:data:`RUNS`: members, put rate, watchers) starts a fresh cluster as the etcd harness does
(:class:`~calibration.measure_etcd.EtcdCluster`: Debian's etcd 3.4.23 on loopback, fsync on), opens the
watchers (one watch stream each, through the gRPC gateway), sends :data:`WARMUP_S` of puts that are not
kept, then ``etcdload -mode open``: Poisson puts of :data:`VALUE_BYTES` at the rate for :data:`DURATION_S`
(a put's latency from its scheduled time to its response), every watcher recording each event's delivery
(from the put's send to its receipt), waiting up to :data:`GRACE_S` for the last events. Every run is
repeated :data:`REPETITIONS` times, interleaved (a rerun resumes: measured repetitions are kept), each
repetition under ``calibration/validation/etcd/<experiment>/repN/``. One run gives two experiments: the
puts (``...-put``: put latency, puts per second) and the deliveries (``...-delivery``: delivery latency,
events per second), judged by ``cnsim validate --data calibration/validation/etcd`` with the usual targets
against the real spread over repetitions.

**Simulated counterpart** (:func:`etcd_scenario`): a ``k8s.etcd`` scenario with the run's members, rate,
value size, watchers (one stream each) and duration, every cost its fitted parameter set, ``cores`` the
machine's (the load generator shares them, as in the calibration).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calibration import harness
from calibration.campaign import Recorder
from calibration.measure_etcd import EtcdCluster, data_filesystem, load
from calibration.validation.experiments import VALIDATION_ROOT

if TYPE_CHECKING:
    from calibration.validation.compare import Experiment

ETCD_ROOT = VALIDATION_ROOT / "etcd"
VALUE_BYTES = 1024
DURATION_S = 6.0
WARMUP_S = 1.0
REPETITIONS = 3
GRACE_S = 30.0
"""How long ``etcdload`` waits for watch events after the last put: on a loaded machine the watchers'
backlog takes seconds to drain (5 s, its default, lost 16 % of 100 watchers' events at a load average of 10)."""
METRICS = {"put": ("put.latency_s", "puts.completed"), "delivery": ("watch.delivery_s", "watch.events")}
"""The simulated histogram and counter of each kind of experiment."""


@dataclass(frozen=True)
class Run:
    """One configuration of the real etcd under load."""

    members: int
    rate_rps: float
    watchers: int

    @property
    def name(self) -> str:
        return f"etcd-m{self.members}-r{self.rate_rps:g}-w{self.watchers}"


RUNS = tuple(Run(members, rate, watchers) for members in (1, 3)
             for rate, watchers in ((100.0, 10), (500.0, 10), (100.0, 100)))
QUICK_RUNS = (Run(1, 100.0, 10),)


def run_campaign(root: Path = ETCD_ROOT, runs: tuple[Run, ...] = RUNS, repetitions: int = REPETITIONS,
                 duration_s: float = DURATION_S, progress: Callable[[str], None] | None = None,
                 on_done: Callable[[], None] | None = None) -> list[Path]:
    """Measure every run ``repetitions`` times, interleaved (``on_done`` called after each); the repetition
    folders written."""
    say = progress or (lambda message: None)
    binaries = harness.build(["etcdload"])
    version = harness.etcd_version()
    written = []
    for rep in range(1, repetitions + 1):
        for run in runs:
            say(f"{run.name} rep{rep}")
            done = all((root / f"{run.name}-{kind}" / f"rep{rep}" / "summary.json").is_file()
                       for kind in ("put", "delivery"))
            if not done:  # a repetition already measured is kept: a rerun resumes
                written += _measure(root, run, rep, duration_s, binaries, version)
            if on_done is not None:
                on_done()
    return written


def _measure(root: Path, run: Run, rep: int, duration_s: float, binaries: dict[str, Path],
             version: str) -> list[Path]:
    rec = Recorder(binaries, harness.cache_dir())
    scratch = Path(tempfile.mkdtemp(prefix="cnsim-etcd-val-"))
    common = ["-mode", "open", "-rate", str(run.rate_rps), "-value-bytes", str(VALUE_BYTES), "-watchers",
              str(run.watchers)]
    try:
        with EtcdCluster(run.members, scratch) as cluster:
            load(rec, cluster, [*common, "-seconds", str(WARMUP_S), "-prefix", "warmup/"], 120)
            before = os.getloadavg()
            summary = load(rec, cluster, [*common, "-seconds", str(duration_s), "-seed", str(rep),
                                          "-grace-seconds", str(GRACE_S), "-prefix", "run/"],
                           duration_s + GRACE_S + 120)
            after = os.getloadavg()
            argv = ["etcd", *cluster.argvs[0][1:]]
        filesystem = data_filesystem(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    folders = []
    for kind in ("put", "delivery"):
        stats = summary.get(kind)
        if stats is None:
            continue
        folder = root / f"{run.name}-{kind}" / f"rep{rep}"
        folder.mkdir(parents=True, exist_ok=True)
        config = {"runtime": "etcd", "cores": os.cpu_count(), "rate_rps": run.rate_rps, "rate_fraction": None,
                  "etcd": {"members": run.members, "watchers": run.watchers, "value_bytes": VALUE_BYTES,
                           "kind": kind, "version": version, "data_fs": filesystem, "member_argv": argv},
                  "settings": {"duration_s": duration_s, "warmup_s": 0.0, "warmup_load_s": WARMUP_S},
                  "load_argv": rec.commands[-1]["argv"]}
        measured = {"n": stats["n"], "mean_s": stats["mean_s"], "p50_s": stats["p50_s"], "p90_s": stats["p90_s"],
                    "p99_s": stats["p99_s"], "max_s": stats["max_s"],
                    "throughput_rps": stats["n"] / summary["elapsed_s"],
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "loadavg_before": [round(v, 2) for v in before], "loadavg_after": [round(v, 2) for v in after]}
        (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        (folder / "summary.json").write_text(json.dumps(measured, indent=2, sort_keys=True) + "\n")
        folders.append(folder)
    time.sleep(0.5)
    return folders


def etcd_scenario(experiment: Experiment, requests: int, replications: int) -> tuple[dict[str, Any], float]:
    """(``k8s.etcd`` scenario data, fixed delay 0) of an etcd experiment (see the module docstring)."""
    from calibration.validation.compare import SEED

    config = experiment.config
    etcd = config["etcd"]
    del requests  # the scenario runs the real run's duration
    data = {
        "name": f"validate-{experiment.name}",
        "description": f"simulated counterpart of the etcd experiment {experiment.name}",
        "model": "k8s.etcd", "members": int(etcd["members"]), "seed": SEED, "replications": replications,
        "warmup": 0.0, "duration": float(config["settings"]["duration_s"]), "cores": int(config["cores"]),
        "writes": {"rate": float(config["rate_rps"]), "value_size": float(etcd["value_bytes"])},
        "watch": {"watchers": int(etcd["watchers"])},
    }
    return data, 0.0


def metrics_of(experiment: Experiment) -> tuple[str, str]:
    """(latency histogram, completion counter) the simulated side of an etcd experiment is read from."""
    return METRICS[str(experiment.config["etcd"]["kind"])]
