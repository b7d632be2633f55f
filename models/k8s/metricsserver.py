"""metrics-server: pods' CPU usage scraped from the kubelets, as the HPA reads it (``metrics.k8s.io``).

Mechanism (``kubernetes-sigs/metrics-server``: ``pkg/scraper``, ``pkg/storage``). Every ``resolution``
seconds (``--metric-resolution``: 15 s in the ``components.yaml`` manifest of each release since v0.5.0,
e.g. https://github.com/kubernetes-sigs/metrics-server/releases/download/v0.6.4/components.yaml; the
flag's own default in the program is 60 s, ``cmd/metrics-server/app/options/options.go``) it scrapes each
kubelet's resource metrics: the cumulative CPU seconds of every running container. A pod's usage is the
rate between its last two scrapes, ``(cpu_2 - cpu_1) / (t_2 - t_1)``, served with the later scrape's
``timestamp`` and the ``window`` ``t_2 - t_1``. A container that started within one resolution of a
scrape, but at least 10 s before it (``freshContainerMinMetricsResolution``), is given a first point at
its start with no CPU used, so it has a usage at that scrape; one scraped once otherwise has none yet (the
HPA counts it missing) (``pkg/storage/pod.go``, ``podStorage.Store``). The HPA reads the latest sample
(:meth:`MetricsServer.latest`), in milli-CPU as upstream's ``MilliValue``.

The scrapes begin at ``phase`` (the ``arch`` kind draws it uniform over one resolution: metrics-server
started at a time unrelated to the run). Not modelled: the kubelet's own statistics interval (cAdvisor's
housekeeping), which makes its cumulative CPU older than the scrape; the scrape's duration and timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from typing import Any

from sim.core import Environment
from models.k8s.hpa import PodMetric

METRIC_RESOLUTION_S = 15.0
"""``--metric-resolution`` in metrics-server's released ``components.yaml`` (see the module docstring)."""

FRESH_CONTAINER_MIN_S = 10.0
"""``freshContainerMinMetricsResolution``: the youngest container given a first point at its start."""

CpuReading = tuple[str, float, float]
"""(pod name, cumulative CPU seconds, its container's start time) of one running pod, as a kubelet reports
it."""


class MetricsServer:
    """Scrapes ``read()`` (every running pod's cumulative CPU) every ``resolution`` seconds from ``phase``."""

    def __init__(self, env: Environment, read: Callable[[], Iterable[CpuReading]], resolution: float,
                 phase: float) -> None:
        if not resolution > 0:
            raise ValueError(f"resolution must be > 0 s, got {resolution!r}")
        self.env = env
        self.read = read
        self.resolution = resolution
        self._last: dict[str, tuple[float, float]] = {}
        """Per pod: (cumulative CPU seconds, time) of its last scrape."""
        self._samples: dict[str, PodMetric] = {}
        env.process(self._scrape(phase))

    def _scrape(self, phase: float) -> Generator[Any, Any, None]:
        yield self.env.timeout(phase)
        while True:
            self.scrape()
            yield self.env.timeout(self.resolution)

    def scrape(self) -> None:
        """One scrape now: a new usage sample for every pod with a point before (see the module docstring);
        pods gone are forgotten."""
        now = self.env.now
        last, samples = {}, {}
        for name, cpu_s, started in self.read():
            before = self._last.get(name)
            if started < now and FRESH_CONTAINER_MIN_S <= now - started < self.resolution:
                before = (0.0, started)
            if before is not None and now > before[1]:
                used, then = before
                samples[name] = PodMetric(round(1000 * (cpu_s - used) / (now - then)), now, now - then)
            last[name] = (cpu_s, now)
        self._last, self._samples = last, samples

    def latest(self) -> dict[str, PodMetric]:
        """The latest sample of every pod that has one (what the HPA's metrics client gets)."""
        return dict(self._samples)
