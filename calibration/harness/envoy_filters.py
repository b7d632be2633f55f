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

import shutil
from pathlib import Path
from typing import Any

from calibration import harness
from calibration.harness import npm

#: The files of ``wasm/`` that define the build (hashed for the cache key, copied into the build folder).
WASM_SOURCES = ("package.json", "package-lock.json", "asconfig.json", "assembly/index.ts")
#: The root id the AssemblyScript filter registers (``registerRootContext(..., "cnsim")``).
WASM_ROOT_ID = "cnsim"
WASM_HEADER = "x-cnsim-wasm"
LUA_HEADER = "x-cnsim-lua"
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


def _compile(work: Path, env: dict[str, str]) -> None:
    """Compile the filter in the build folder ``work`` with the installed ``asc``; then drop ``node_modules``."""
    asc = work / "node_modules" / "assemblyscript" / "bin" / "asc"
    if not asc.is_file():
        raise harness.ToolchainError(f"wasm filter: npm ci installed no AssemblyScript compiler at {asc}")
    npm.run_step("wasm filter: asc (AssemblyScript compiler)",
                 [str(harness.node_binary()), str(asc), "assembly/index.ts", "--config", "asconfig.json",
                  "--target", "release"], work, env, ASC_TIMEOUT_S)
    built = work / "build" / "filter.wasm"
    if not built.is_file() or built.read_bytes()[:4] != WASM_MAGIC:
        raise harness.ToolchainError(f"wasm filter: asc wrote no Wasm module at {built}")
    shutil.rmtree(work / "node_modules")  # 17 MB the module no longer needs (npm-cache keeps the tarballs)


def build_wasm_filter(build_dir: Path) -> Path:
    """Build the AssemblyScript proxy-wasm filter into ``build_dir``; the path of its ``filter.wasm``.

    The result is cached by :func:`wasm_source_hash`: ``build_dir/wasm-<hash16>/build/filter.wasm``
    (:func:`calibration.harness.npm.install_locked`, which copies the sources into a fresh folder and runs
    ``npm ci --ignore-scripts`` there, npm's cache in ``build_dir/npm-cache``). ``asc`` then compiles
    ``assembly/index.ts`` with the ``release`` target of ``asconfig.json`` (optimised, runtime ``full``,
    ``abort`` routed to the SDK's ``abort_proc_exit`` as the SDK's README asks) and ``node_modules`` is
    removed, before the folder is renamed into place, so a failed or interrupted build leaves no cache entry.

    Node.js is :func:`calibration.harness.node_binary` (``$CNSIM_NODE`` or ``node`` on PATH), npm is
    ``$CNSIM_NPM`` or ``npm`` on PATH; a missing tool or a failed step raises
    :class:`calibration.harness.ToolchainError` (a :class:`RuntimeError`) naming it.
    """
    folder = npm.install_locked(wasm_source_dir(), WASM_SOURCES, build_dir, "wasm", scripts=False,
                                finish=_compile)
    return folder / "build" / "filter.wasm"


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
