"""The FaaS cold-start harness ``faas_coldstart``: what a function's cold start is made of on this machine.

Three functions with the same small handler (read a query parameter, answer a small JSON object) are started
by the Go driver ``faasstart`` (``calibration/harness/go/faasstart/main.go``: exec to first response, then
requests each on a new connection) in rounds, the variants taking turns so that a busy spell of the machine
falls on all of them:

* ``go``: the static Go binary ``faasfn`` (``net/http``);
* ``node``: ``node fn-plain.js`` (Node's ``http`` module, no dependencies);
* ``node-express``: ``node fn-express.js`` (Express 4 and its module graph, from ``package-lock.json``).

Then ``isolate.js`` starts the same handler, with a bundled library, in V8 isolates (``isolated-vm``), vm
contexts and worker threads. The Node functions and isolate.js live in ``calibration/harness/faas/``; their
packages are installed once per source hash by ``npm ci`` (:func:`calibration.harness.npm.install_locked`)
into the cnsim cache, with isolated-vm's native addon built from source by node-gyp against this Node's
headers (``npm_config_build_from_source``: no prebuilt binary is downloaded). isolated-vm is an optional
dependency: if it does not build, ``npm ci`` goes on without it and isolate.js measures the other engines.

Files: ``faas_start.csv`` (one row per start and measurement: ``ready`` when the function printed that it
listens, ``first_response`` when its first response was read; seconds from exec; modules loaded and the
seconds ``require`` took), ``faas_requests.csv`` (one row per request: its index in the process, 1 the
first, and its latency) and ``faas_isolate.csv`` (one row per engine and sample; see isolate.js).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from calibration import harness
from calibration.campaign import Recorder, Settings, _csv_rows
from calibration.harness import npm

#: The functions and what starts each, by variant (``faasfn`` is the Go binary; the others are node scripts).
FAAS_VARIANTS = {"go": None, "node": "fn-plain.js", "node-express": "fn-express.js"}
#: (rounds, starts per variant and round, requests per start, isolate samples), full and quick.
FAAS_COUNTS, FAAS_COUNTS_QUICK = (10, 5, 100, 200), (2, 2, 10, 5)
#: The files of ``harness/faas/`` copied into the build folder (their hash names it).
FAAS_FILES = ("package.json", "package-lock.json", "fn-plain.js", "fn-express.js", "isolate.js")
#: Node 20 and later need this for isolated-vm (its README: "you must pass --no-node-snapshot").
ISOLATE_NODE_FLAGS = ("--no-node-snapshot",)
FAAS_TIMEOUT_S = 120.0


def build_functions(cache: Path) -> Path:
    """The functions' folder with its packages installed (cached by source hash under ``cache/faas``).

    isolated-vm's install script runs (``node-gyp rebuild``) from source: ``npm_config_build_from_source``
    stops its ``prebuild-install`` from downloading a binary, and ``npm_config_nodedir`` points node-gyp at
    this Node's own headers when they are installed beside it (``<prefix>/include/node``), so it downloads none.
    """
    node = harness.node_binary().resolve()
    env = {"npm_config_build_from_source": "true"}
    prefix = node.parent.parent
    if (prefix / "include" / "node" / "common.gypi").is_file():
        env["npm_config_nodedir"] = str(prefix)
    return npm.install_locked(harness.faas_source_dir(), FAAS_FILES, Path(cache) / "faas", "faas",
                              scripts=True, env=env)


def _run(rec: Recorder, argv: list[str], shown: list[str], timeout: float):
    """Run ``argv`` bounded in time and record it for meta.json as ``shown`` (no local paths)."""
    before = os.getloadavg()
    result = harness.run_bounded(argv, shown, harness.go_env(rec.cache), {}, timeout)
    rec.note("faas_coldstart", result.argv, {}, before, wall_s=round(result.wall_s, 3))
    return result


def measure_faas_coldstart(rec: Recorder, s: Settings) -> dict[str, list[dict[str, Any]]]:
    """Each function started and timed to its first response, in rounds; then isolates, contexts, workers."""
    rounds, starts, requests, isolate_samples = FAAS_COUNTS_QUICK if s.quick else FAAS_COUNTS
    folder = build_functions(rec.cache)
    node = str(harness.node_binary())
    driver = rec.binaries["faasstart"]
    start_rows: list[dict[str, Any]] = []
    request_rows: list[dict[str, Any]] = []
    for round_ in range(rounds):
        for variant, script in FAAS_VARIANTS.items():
            command = ([str(rec.binaries["faasfn"])], ["faasfn"]) if script is None else (
                [node, str(folder / script)], ["node", f"faas/{script}"])
            args = ["-variant", variant, "-reps", str(starts), "-requests", str(requests), "-warmup", "1",
                    "-max-seconds", str(FAAS_TIMEOUT_S - 20), "--"]
            result = _run(rec, [str(driver), *args, *command[0]], ["faasstart", *args, *command[1]],
                          FAAS_TIMEOUT_S)
            for row in _csv_rows(result.stdout):
                row = {"round": str(round_), **row}
                if row["measurement"] == "request":
                    request_rows.append({key: row[key] for key in ("variant", "round", "rep", "index", "seconds")})
                else:
                    start_rows.append({key: value for key, value in row.items() if key != "index"})
    args = ["--samples", str(isolate_samples), "--calls", "20", "--max-seconds", str(FAAS_TIMEOUT_S - 20)]
    isolate = _run(rec, [node, *ISOLATE_NODE_FLAGS, str(folder / "isolate.js"), *args],
                   ["node", *ISOLATE_NODE_FLAGS, "faas/isolate.js", *args], FAAS_TIMEOUT_S)
    return {"faas_start.csv": start_rows, "faas_requests.csv": request_rows,
            "faas_isolate.csv": _csv_rows(isolate.stdout)}
