"""The proxy harness's Envoy filters: the AssemblyScript proxy-wasm filter builds (npm ci + asc, cached) and the
real Envoy runs it, and the Lua filter, on every request.

Runs real processes: the first build downloads the locked npm packages (a few seconds), later runs reuse the
build in the cnsim cache; each Envoy starts in about a second.
"""

from __future__ import annotations

import http.client
import http.server
import threading
from pathlib import Path

import pytest

from calibration import harness
from calibration.harness import envoy_filters
from calibration.measure_proxy import Envoy, sidecar_config

pytestmark = pytest.mark.harness


class _Echo(http.server.BaseHTTPRequestHandler):
    """Answers 200, telling in response headers which filter headers the request reached it with."""

    protocol_version = "HTTP/1.1"
    wbufsize = 65536

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", "2")
        for name in (envoy_filters.WASM_HEADER, envoy_filters.LUA_HEADER):
            self.send_header(f"x-upstream-saw-{name}", self.headers.get(name, "-"))
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def upstream():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def wasm_module() -> Path:
    return envoy_filters.build_wasm_filter(harness.cache_dir() / "wasm")


def _through_envoy(entries: list[dict], app_port: int, scratch: Path, requests: int = 3):
    """Start the harness's Envoy sidecar with ``entries`` before the router, send ``requests`` GETs; the last
    response's headers and Envoy's log (its standard error)."""
    bootstrap = sidecar_config(0, app_port, 0, filters=entries)
    filters = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
        "http_filters"]
    assert filters[-1]["name"] == "envoy.filters.http.router" and filters[:-1] == entries
    envoy = Envoy(app_port, [], scratch, filters=entries)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", envoy.port, timeout=5)
        for _ in range(requests):
            connection.request("GET", "/probe?x=1")
            response = connection.getresponse()
            assert response.read() == b"ok" and response.status == 200
        connection.close()
    finally:
        envoy.stop()
    log = envoy.process.stderr.read() if envoy.process.stderr else ""
    return {key.lower(): value for key, value in response.getheaders()}, log


def test_wasm_filter_builds_and_is_cached(wasm_module):
    assert wasm_module.read_bytes()[:4] == b"\0asm"
    assert envoy_filters.wasm_source_hash()[:16] in str(wasm_module)
    assert envoy_filters.build_wasm_filter(harness.cache_dir() / "wasm") == wasm_module


def test_wasm_build_without_npm_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("CNSIM_NPM", str(tmp_path / "no-npm"))
    with pytest.raises(RuntimeError, match="npm is missing"):
        envoy_filters.build_wasm_filter(tmp_path / "build")


def test_envoy_runs_wasm_filter(wasm_module, upstream, tmp_path):
    entry = envoy_filters.wasm_filter(wasm_module)
    assert entry["typed_config"]["config"]["vm_config"]["runtime"] == "envoy.wasm.runtime.v8"
    headers, log = _through_envoy([entry], upstream, tmp_path)
    assert headers.get(envoy_filters.WASM_HEADER) == "1"  # response header added by the filter
    assert headers.get(f"x-upstream-saw-{envoy_filters.WASM_HEADER}") == "1"  # request header reached upstream
    assert "[error][wasm]" not in log and "[critical]" not in log, log[-2000:]


def test_envoy_runs_lua_filter(upstream, tmp_path):
    headers, log = _through_envoy([envoy_filters.lua_filter()], upstream, tmp_path)
    assert headers.get(envoy_filters.LUA_HEADER) == "1"
    assert headers.get(f"x-upstream-saw-{envoy_filters.LUA_HEADER}") == "1"
    assert "[error][lua]" not in log and "[critical]" not in log, log[-2000:]


def test_no_filter_adds_nothing(upstream, tmp_path):
    headers, _ = _through_envoy([], upstream, tmp_path)
    assert envoy_filters.WASM_HEADER not in headers and envoy_filters.LUA_HEADER not in headers
