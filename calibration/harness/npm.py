"""npm for the harnesses that need packages from the npm registry: find npm, run a build step bounded in time,
and install a folder's locked packages once per hash of its sources.

``npm ci`` is the one step that downloads (from the npm registry, each tarball checked against the lock file's
integrity hash); it runs at build time, never while a harness measures. npm's cache lives in the build folder,
the user's npm configuration is otherwise unchanged. Users: :mod:`calibration.harness.envoy_filters` (the
AssemblyScript Wasm filter) and :mod:`calibration.measure_faas` (the FaaS functions and isolated-vm).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from calibration import harness

NPM_TIMEOUT_S = 600.0


def npm_binary() -> Path:
    """``$CNSIM_NPM`` or ``npm`` on PATH; :class:`~calibration.harness.ToolchainError` if there is none."""
    chosen = os.environ.get("CNSIM_NPM") or shutil.which("npm")
    if not chosen or not Path(chosen).is_file():
        raise harness.ToolchainError(
            "npm is missing: the harnesses that install npm packages need 'npm' (with Node.js) on PATH "
            f"(or CNSIM_NPM=/path/to/npm); found {chosen or 'none'}")
    return Path(chosen)


def run_step(what: str, argv: list[str], cwd: Path, env: Mapping[str, str], timeout: float) -> None:
    """Run one build step; a timeout, a failure to start or a non-zero exit raises
    :class:`~calibration.harness.ToolchainError` naming ``what`` with the end of its output."""
    try:
        done = subprocess.run(argv, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise harness.ToolchainError(f"{what} took more than {timeout:.0f} s") from error
    except OSError as error:
        raise harness.ToolchainError(f"{what} could not start: {error}") from error
    if done.returncode != 0:
        tail = "\n".join((done.stderr.strip() or done.stdout.strip()).splitlines()[-15:])
        raise harness.ToolchainError(f"{what} failed ({done.returncode}):\n{tail}")


def npm_env(build_dir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of npm and of the tools it installs: no ``NODE_*`` variables, this Node first on PATH,
    npm's cache in ``build_dir/npm-cache``, no update notifier, funding or audit requests."""
    env = harness.node_env()
    env["PATH"] = os.pathsep.join([str(harness.node_binary().parent), env.get("PATH", "")])
    env.update({"npm_config_cache": str(Path(build_dir) / "npm-cache"), "npm_config_update_notifier": "false",
                "npm_config_fund": "false", "npm_config_audit": "false"})
    env.update(extra or {})
    return env


def install_locked(source: Path, files: Sequence[str], build_dir: Path, label: str, *, scripts: bool,
                   env: Mapping[str, str] | None = None,
                   finish: Callable[[Path, dict[str, str]], None] | None = None) -> Path:
    """``files`` of ``source`` (a ``package.json``, its ``package-lock.json``, the scripts that use them) copied
    into ``build_dir/<label>-<hash16>/`` with ``npm ci`` run there; that folder.

    The hash is :func:`calibration.harness.files_hash` of ``files``: a folder that exists is returned as is.
    Otherwise everything happens in a fresh partial folder: ``npm ci`` (``--ignore-scripts`` unless
    ``scripts``; ``env`` added to :func:`npm_env`), then ``finish(folder, env)`` if given (a compiler run,
    say), then the folder is renamed into place, so a failed or interrupted build leaves no cache entry.
    """
    paths = [(name, Path(source) / name) for name in files]
    for _, path in paths:
        if not path.is_file():
            raise RuntimeError(f"{label}: source file {path} is missing")
    build_dir = Path(build_dir)
    final = build_dir / f"{label}-{harness.files_hash(paths)[:16]}"
    if final.is_dir():
        return final
    npm = npm_binary()
    build_dir.mkdir(parents=True, exist_ok=True)
    work = build_dir / f".{final.name}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        for name, path in paths:
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, work / name)
        step_env = npm_env(build_dir, env)
        argv = [str(npm), "ci", "--no-audit", "--no-fund", *([] if scripts else ["--ignore-scripts"])]
        run_step(f"{label}: npm ci", argv, work, step_env, NPM_TIMEOUT_S)
        if finish is not None:
            finish(work, step_env)
        try:
            work.rename(final)
        except OSError:
            if not final.is_dir():  # not a concurrent build that finished first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final
