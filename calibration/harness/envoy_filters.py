"""Envoy HTTP filters for the proxy harness: a proxy-wasm filter (AssemblyScript, run by V8) and a Lua filter.

Both do the same small per-request work, so the proxy harness can measure what
a filter adds to Envoy's CPU per request: on the request headers, read one
header (``:path``) and add a request header; on the response headers, add a
response header (``x-cnsim-wasm: 1`` for Wasm, ``x-cnsim-lua: 1`` for Lua), so
a test sees that the filter ran.

The Wasm filter's sources are in ``wasm/`` beside this file: an AssemblyScript
filter on the ``@solo-io/proxy-runtime`` SDK (proxy-wasm ABI 0.2.0), with
``package.json`` and ``package-lock.json`` pinning exact versions
(``assemblyscript`` 0.14.13, the 0.14 line the SDK 0.1.8 is written for).
:func:`build_wasm_filter` runs ``npm ci`` (the one step that downloads, from
the npm registry, checked against the lock file's integrity hashes) and the
AssemblyScript compiler ``asc``, once per hash of the sources; running Envoy
with the built module downloads nothing.

The entries :func:`wasm_filter` and :func:`lua_filter` return go into an HTTP
connection manager's ``http_filters`` before the router, which must stay last
(``calibration.measure_proxy.sidecar_config(..., filters=...)`` puts them
there).

References:

* Envoy Wasm HTTP filter:
  https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/wasm_filter
  and its v3 API, ``envoy.extensions.filters.http.wasm.v3.Wasm`` wrapping
  ``envoy.extensions.wasm.v3.PluginConfig``/``VmConfig``:
  https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/wasm/v3/wasm.proto
* Envoy Lua HTTP filter (``envoy_on_request``/``envoy_on_response``, ``headers():get/add``):
  https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/lua_filter
  and ``envoy.extensions.filters.http.lua.v3.Lua`` (``default_source_code``).
* The proxy-wasm ABI: https://github.com/proxy-wasm/spec ; the AssemblyScript SDK:
  https://github.com/solo-io/proxy-runtime (npm ``@solo-io/proxy-runtime``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from calibration import harness

#: The files of ``wasm/`` that define the build (hashed for the cache key, copied into the build folder).
WASM_SOURCES = ("package.json", "package-lock.json", "asconfig.json", "assembly/index.ts")
#: The root id the AssemblyScript filter registers (``registerRootContext(..., "cnsim")``).
WASM_ROOT_ID = "cnsim"
WASM_HEADER = "x-cnsim-wasm"
LUA_HEADER = "x-cnsim-lua"
NPM_TIMEOUT_S = 600.0
ASC_TIMEOUT_S = 300.0
WASM_MAGIC = b"\0asm"


def wasm_source_dir() -> Path:
    """The folder holding the AssemblyScript filter, its ``package.json``, lock file and ``asconfig.json``."""
    return Path(__file__).resolve().parent / "wasm"


def wasm_source_hash() -> str:
    """SHA-256 over :data:`WASM_SOURCES` (relative path and bytes of each)."""
    files = [(name, wasm_source_dir() / name) for name in WASM_SOURCES]
    for _, path in files:
        if not path.is_file():
            raise RuntimeError(f"wasm filter: source file {path} is missing")
    return harness.files_hash(files)


def _npm_binary() -> Path:
    chosen = os.environ.get("CNSIM_NPM") or shutil.which("npm")
    if not chosen or not Path(chosen).is_file():
        raise harness.ToolchainError(
            "npm is missing: building the Wasm filter needs 'npm' (with Node.js) on PATH "
            f"(or CNSIM_NPM=/path/to/npm); found {chosen or 'none'}")
    return Path(chosen)


def _step(what: str, argv: list[str], cwd: Path, env: dict[str, str], timeout: float) -> None:
    try:
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise harness.ToolchainError(f"wasm filter: {what} took more than {timeout:.0f} s") from error
    except OSError as error:
        raise harness.ToolchainError(f"wasm filter: {what} could not start: {error}") from error
    if done.returncode != 0:
        tail = "\n".join((done.stderr.strip() or done.stdout.strip()).splitlines()[-15:])
        raise harness.ToolchainError(f"wasm filter: {what} failed ({done.returncode}):\n{tail}")


def build_wasm_filter(build_dir: Path) -> Path:
    """Build the AssemblyScript proxy-wasm filter into ``build_dir``; the path of its ``filter.wasm``.

    The result is cached by :func:`wasm_source_hash`: ``build_dir/wasm-<hash16>/build/filter.wasm`` is
    returned as is when it exists. Otherwise the sources are copied into a fresh folder under
    ``build_dir``, ``npm ci --ignore-scripts`` installs the locked packages there (npm's cache in
    ``build_dir/npm-cache``, the user's npm configuration otherwise unchanged), and ``asc`` compiles
    ``assembly/index.ts`` with the ``release`` target of ``asconfig.json`` (optimised, runtime ``full``,
    ``abort`` routed to the SDK's ``abort_proc_exit`` as the SDK's README asks). ``node_modules`` is then
    removed and the folder renamed into place, so a failed or interrupted build leaves no cache entry.

    Node.js is :func:`calibration.harness.node_binary` (``$CNSIM_NODE`` or ``node`` on PATH), npm is
    ``$CNSIM_NPM`` or ``npm`` on PATH; a missing tool or a failed step raises
    :class:`calibration.harness.ToolchainError` (a :class:`RuntimeError`) naming it.
    """
    key = wasm_source_hash()[:16]
    build_dir = Path(build_dir)
    final = build_dir / f"wasm-{key}"
    target = final / "build" / "filter.wasm"
    if target.is_file():
        return target
    node, npm = harness.node_binary(), _npm_binary()
    build_dir.mkdir(parents=True, exist_ok=True)
    work = build_dir / f".wasm-{key}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        for name in WASM_SOURCES:
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(wasm_source_dir() / name, work / name)
        env = harness.node_env()
        env["PATH"] = os.pathsep.join([str(node.parent), env.get("PATH", "")])
        env.update({"npm_config_cache": str(build_dir / "npm-cache"), "npm_config_update_notifier": "false",
                    "npm_config_fund": "false", "npm_config_audit": "false"})
        _step("npm ci", [str(npm), "ci", "--ignore-scripts", "--no-audit", "--no-fund"], work, env, NPM_TIMEOUT_S)
        asc = work / "node_modules" / "assemblyscript" / "bin" / "asc"
        if not asc.is_file():
            raise harness.ToolchainError(f"wasm filter: npm ci installed no AssemblyScript compiler at {asc}")
        _step("asc (AssemblyScript compiler)",
              [str(node), str(asc), "assembly/index.ts", "--config", "asconfig.json", "--target", "release"],
              work, env, ASC_TIMEOUT_S)
        built = work / "build" / "filter.wasm"
        if not built.is_file() or built.read_bytes()[:4] != WASM_MAGIC:
            raise harness.ToolchainError(f"wasm filter: asc wrote no Wasm module at {built}")
        shutil.rmtree(work / "node_modules")  # 17 MB the module no longer needs (npm-cache keeps the tarballs)
        try:
            work.rename(final)
        except OSError:
            if not target.is_file():  # not a concurrent build that finished first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def wasm_filter(path: Path) -> dict[str, Any]:
    """The ``http_filters`` entry running the Wasm module at ``path`` (from :func:`build_wasm_filter`).

    ``envoy.filters.http.wasm`` with ``envoy.extensions.filters.http.wasm.v3.Wasm``, whose ``config`` is an
    ``envoy.extensions.wasm.v3.PluginConfig``: ``root_id`` selects the filter's root context
    (:data:`WASM_ROOT_ID`); its ``vm_config`` (``VmConfig``) names the runtime ``envoy.wasm.runtime.v8`` and the
    code as a ``local`` ``filename`` (read at configuration time, no remote fetch), not precompiled. The
    failure policy is left at its default (fail closed), so a VM that fails shows up as errors, not as
    requests passing unfiltered. See
    https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/wasm_filter and
    https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/wasm/v3/wasm.proto .
    """
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "cnsim_wasm",
                "root_id": WASM_ROOT_ID,
                "vm_config": {
                    "vm_id": "cnsim_wasm",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": str(Path(path).resolve())}},
                    "allow_precompiled": False,
                },
            },
        },
    }


#: The Lua filter's code: the work of the Wasm filter, in Lua.
LUA_CODE = f"""\
function envoy_on_request(request_handle)
  local path = request_handle:headers():get(":path")
  request_handle:headers():add("{LUA_HEADER}", "1")
end

function envoy_on_response(response_handle)
  response_handle:headers():add("{LUA_HEADER}", "1")
end
"""


def lua_filter() -> dict[str, Any]:
    """The ``http_filters`` entry of an ``envoy.filters.http.lua`` filter doing what the Wasm filter does.

    ``envoy.extensions.filters.http.lua.v3.Lua`` with the script inline as ``default_source_code.inline_string``
    (the older ``inline_code`` field is deprecated): ``envoy_on_request`` reads ``:path`` and adds the request
    header ``x-cnsim-lua: 1``, ``envoy_on_response`` adds the response header ``x-cnsim-lua: 1``. See
    https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_filters/lua_filter .
    """
    return {
        "name": "envoy.filters.http.lua",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": LUA_CODE},
        },
    }
