"""A proxy's memory: its base resident set plus a buffer per open connection.

Mechanism. A proxy's resident memory is its idle footprint (configuration,
listeners, clusters, worker threads) plus what each open connection holds
(its buffers, its TLS state): ``proxy.<kind>.memory_bytes +
proxy.<kind>.memory_bytes_per_connection x open connections`` (measured on
the real proxies, :mod:`calibration`; a scenario can give both in
``mesh.proxy.memory``). Until the model has connection pools, a proxy's open
connections are its peak requests in flight: over HTTP/1.1 a request in
flight holds a connection of its own, and a kept-alive connection stays open,
idle, after its request, so the pool grows to the peak and keeps it
(:func:`open_connections`, the one place to read a pool's count instead).
Ambient mode's node proxy (ztunnel) has a cited base
(``mesh.node_proxy.memory``, Istio 1.24's 12 MB) and no per-connection figure.

Metrics: ``proxy.NAME.memory_bytes`` (a gauge: its max is the proxy's
memory at its peak) and ``mesh.proxy_memory_bytes`` (every proxy's).
"""

from __future__ import annotations

from typing import Protocol

from sim.core import Environment
from models.arch.config import MemoryConfig
from models.arch.filters import needed_value

MEMORY_PARAM = "proxy.{kind}.memory_bytes"
PER_CONNECTION_PARAM = "proxy.{kind}.memory_bytes_per_connection"


class Connected(Protocol):
    """A proxy as far as its connections go."""

    peak_in_flight: int


def open_connections(proxy: Connected) -> int:
    """The connections ``proxy`` holds open: its peak requests in flight (HTTP/1.1, kept alive; see the module
    docstring)."""
    return proxy.peak_in_flight


def memory_sizes(config: MemoryConfig, kind: str) -> tuple[float, float]:
    """(base bytes, bytes per connection) of a proxy of ``kind``: the scenario's, else the calibrated ones."""
    base = (config.base if config.base is not None
            else needed_value(MEMORY_PARAM.format(kind=kind), "mesh.proxy.memory.base"))
    per_connection = (config.per_connection if config.per_connection is not None
                      else needed_value(PER_CONNECTION_PARAM.format(kind=kind), "mesh.proxy.memory.per_connection"))
    return base, per_connection


class ProxyMemory:
    """The memory gauges of one proxy and its share of the mesh's."""

    def __init__(self, env: Environment, name: str, base: float, per_connection: float) -> None:
        self.base = base
        self.per_connection = per_connection
        self.gauge = env.metrics.gauge(f"proxy.{name}.memory_bytes", base)
        self.mesh = env.metrics.gauge("mesh.proxy_memory_bytes")
        self.mesh.add(base)

    def update(self, proxy: Connected) -> None:
        """Set the gauges to ``proxy``'s memory at its open connections now."""
        level = self.base + self.per_connection * open_connections(proxy)
        self.mesh.add(level - self.gauge.level)
        self.gauge.set(level)
