"""What a proxy adds to its CPU per request beyond its calibrated base: its filters and the request's bytes.

Mechanism. Envoy runs each request through its HTTP filter chain: a Lua
filter (a coroutine in the worker's LuaJIT state), a WebAssembly filter (a
V8 or Wasmtime VM per worker, the request's headers and body copied across
the VM boundary) or a native C++ filter each add CPU to the request's pass
through every Envoy of the mesh: sidecars, waypoints and Cilium's node
Envoys (the Go reverse proxy runs none). A filter's ``request_cpu`` is drawn
per request per Envoy; null reads ``proxy.envoy.filter.lua_cpu_s`` or
``proxy.envoy.filter.wasm_cpu_s`` (measured on the real Envoy,
:mod:`calibration`), only when such a filter is configured without it.

A proxy also spends CPU in proportion to the bytes it forwards (reading,
parsing and writing the request and the response; with ``mesh.mtls`` also
encrypting and decrypting them): ``(request + response bytes) x
proxy.<kind>.cpu_s_per_byte`` (plus ``proxy.<kind>.tls_cpu_s_per_byte``),
added to the per-request table value. The bytes are the call's ``request``
and ``response`` sizes. A scenario whose calls all carry no bytes reads
neither parameter, and a request of no bytes adds nothing and draws nothing,
so the zero-byte path is the per-request table alone. With ``mesh.mtls`` a
request also pays ``proxy.<kind>.tls_request_cpu_s`` at each sidecar, waypoint
and node Envoy, whatever its bytes (TLS records, the TLS read and write
paths); requests from the edge too, as Istio's ingress gateway speaks mTLS to
the entry pod's sidecar (the edge's own handshakes are not modelled: its
connections are plain TCP, :mod:`models.arch.connections`). All of these
were measured on the real proxies, paired against a plain empty request in
the same round (:mod:`calibration.fitproxycosts`).
"""

from __future__ import annotations

from collections.abc import Callable

from sim.core import Environment
from sim.dists import Constant, Distribution
from sim.params import available, param_value
from sim.scenario import ScenarioError
from models.arch.config import ArchScenario, FilterConfig

FILTER_PARAMS = {"lua": "proxy.envoy.filter.lua_cpu_s", "wasm": "proxy.envoy.filter.wasm_cpu_s"}
"""The calibrated CPU per request of a filter of each kind, read when a filter gives no ``request_cpu``."""
PER_BYTE_PARAM = "proxy.{kind}.cpu_s_per_byte"
TLS_PER_BYTE_PARAM = "proxy.{kind}.tls_cpu_s_per_byte"
TLS_REQUEST_PARAM = "proxy.{kind}.tls_request_cpu_s"
ENVOY = "envoy"


def needed_value(name: str, field: str) -> float:
    """Calibrated constant ``name``, which the null of scenario field ``field`` stands for; bad input naming
    both if the set is not available."""
    if name not in available():
        raise ScenarioError(f"{field}: null reads the calibrated parameter set {name!r}, which is not available "
                            f"here: give {field}, or add the set")
    return param_value(name)


def filter_cpu(config: FilterConfig, index: int) -> Distribution:
    """A filter's CPU per request through one Envoy: its ``request_cpu``, else its kind's calibrated constant."""
    if config.request_cpu is not None:
        return config.request_cpu
    return Constant(needed_value(FILTER_PARAMS[config.kind], f"mesh.proxy.filters.{index}.request_cpu"))


def carries_bytes(config: ArchScenario) -> bool:
    """Whether any call of the scenario carries request or response bytes."""
    return any(call.request > 0 or call.response > 0 for service in config.services.values()
               for step in service.handler for call in step.calls())


class Extra:
    """The CPU one proxy adds to a request beyond its base: a draw of each filter's CPU, the request's
    bytes times the CPU per byte, and a constant per request (mutual TLS's)."""

    def __init__(self, env: Environment, name: str, filters: list[tuple[str, Distribution]], per_byte: float,
                 per_request: float = 0.0) -> None:
        self._draws: list[Callable[[], float]] = [
            dist.sampler(env.rng(f"proxy.{name}.filter.{filter_name}")) for filter_name, dist in filters]
        self.per_byte = per_byte
        self.per_request = per_request
        self.filter_cpu_s = env.metrics.counter("mesh.filter_cpu_s") if filters else None

    def cpu_s(self, nbytes: float) -> float:
        """The extra CPU of one request of ``nbytes`` (request and response) through this proxy."""
        cpu = self.per_request
        if self._draws:
            cpu = sum(draw() for draw in self._draws)
            assert self.filter_cpu_s is not None
            self.filter_cpu_s.inc(cpu)
        if nbytes > 0:
            cpu += nbytes * self.per_byte
        return cpu


class ProxyCosts:
    """The mesh-wide part of :class:`Extra`: the filters (resolved once) and the CPU per byte of each kind of
    proxy (read once, only if some call carries bytes)."""

    def __init__(self, config: ArchScenario) -> None:
        proxy = config.mesh.proxy
        self._config = proxy
        self._mtls = config.mesh.mtls
        self._filters = [(item.name, filter_cpu(item, index)) for index, item in enumerate(proxy.filters)]
        self._bytes = carries_bytes(config)
        self._per_byte: dict[str, float] = {}
        self._tls_request: dict[str, float] = {}

    def tls_request(self, kind: str) -> float:
        """CPU mutual TLS adds to each request through a proxy of ``kind`` besides its bytes (0 without mtls)."""
        if not self._mtls:
            return 0.0
        if kind not in self._tls_request:
            given = self._config.tls_request_cpu
            self._tls_request[kind] = (given if given is not None else
                                       needed_value(TLS_REQUEST_PARAM.format(kind=kind), "mesh.proxy.tls_request_cpu"))
        return self._tls_request[kind]

    def per_byte(self, kind: str) -> float:
        """CPU per byte through a proxy of ``kind`` (0 when no call carries bytes: nothing is read)."""
        if not self._bytes:
            return 0.0
        if kind not in self._per_byte:
            proxy = self._config
            cpu = (proxy.cpu_per_byte if proxy.cpu_per_byte is not None
                   else needed_value(PER_BYTE_PARAM.format(kind=kind), "mesh.proxy.cpu_per_byte"))
            if self._mtls:
                cpu += (proxy.tls_cpu_per_byte if proxy.tls_cpu_per_byte is not None
                        else needed_value(TLS_PER_BYTE_PARAM.format(kind=kind), "mesh.proxy.tls_cpu_per_byte"))
            self._per_byte[kind] = cpu
        return self._per_byte[kind]

    def extra(self, env: Environment, name: str, kind: str) -> Extra | None:
        """What proxy ``name`` of ``kind`` adds per request (filters run in Envoy only); None if nothing."""
        filters = self._filters if kind == ENVOY else []
        per_byte, per_request = self.per_byte(kind), self.tls_request(kind)
        if not filters and per_byte == 0 and per_request == 0:
            return None
        return Extra(env, name, filters, per_byte, per_request)
