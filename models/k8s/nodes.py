"""Node heartbeats: each kubelet renews its Lease, and the node lifecycle controller watches the age.

* A kubelet renews its node's Lease every ``lease_duration × 0.25`` (the lease duration is 40 s by
  default, so every 10 s: ``KubeletConfiguration.nodeLeaseDurationSeconds`` and the kubelet's
  ``nodeLeaseRenewIntervalFraction`` 0.25, ``pkg/kubelet/kubelet.go``), a PUT through the API server.
  A renewal that fails or takes long is simply late; the next is due one interval after it returns.
* It also posts the node's status when it changes, and at least every ``nodeStatusReportFrequency``
  (5 minutes by default) when it does not (``KubeletConfiguration`` defaults); this model posts it
  every report period.
* The node lifecycle controller marks a node NotReady when its Lease has not been renewed for
  ``node-monitor-grace-period`` (40 s by default, kube-controller-manager; 50 s from Kubernetes
  1.32): counted here as ``PREFIX.not_ready`` each time a node's renewal gap exceeds it.

With 5,000 nodes that is 500 lease writes a second and 17 status updates a second before any pod
changes: the floor of a large cluster's write load.

Metrics: ``PREFIX.renew_s`` (a renewal call), ``PREFIX.renewal_gap_s`` (between successive renewals),
``PREFIX.not_ready``, ``PREFIX.renewals``, ``PREFIX.status_updates``.
"""

from __future__ import annotations

from sim.core import Environment
from models.k8s.api import ApiCall

LEASE_DURATION_S = 40.0
"""``KubeletConfiguration.nodeLeaseDurationSeconds`` default."""
RENEW_INTERVAL_FRACTION = 0.25
"""The kubelet's ``nodeLeaseRenewIntervalFraction`` (``pkg/kubelet/kubelet.go``)."""
STATUS_REPORT_S = 300.0
"""``KubeletConfiguration.nodeStatusReportFrequency`` default (5 min)."""
NODE_MONITOR_GRACE_S = 40.0
"""kube-controller-manager ``--node-monitor-grace-period`` default (40 s; 50 s from 1.32)."""


class NodeHeartbeats:
    """``nodes`` kubelets renewing their Leases and posting their status, each at a random phase."""

    def __init__(self, env: Environment, nodes: int, renew: ApiCall, post_status: ApiCall | None = None,
                 lease_duration: float = LEASE_DURATION_S, status_report: float = STATUS_REPORT_S,
                 grace: float = NODE_MONITOR_GRACE_S, prefix: str = "nodes") -> None:
        if nodes < 0:
            raise ValueError(f"nodes must be >= 0, got {nodes!r}")
        if lease_duration <= 0:
            raise ValueError(f"lease_duration must be > 0 s, got {lease_duration!r}")
        self.env, self.renew, self.post_status = env, renew, post_status
        self.interval = lease_duration * RENEW_INTERVAL_FRACTION
        self.status_report, self.grace = status_report, grace
        self.rng = env.rng(f"{prefix}.phase")
        metrics = env.metrics
        self.renew_s = metrics.histogram(f"{prefix}.renew_s")
        self.gap_s = metrics.histogram(f"{prefix}.renewal_gap_s")
        self.not_ready = metrics.counter(f"{prefix}.not_ready")
        self.renewals = metrics.counter(f"{prefix}.renewals")
        self.status_updates = metrics.counter(f"{prefix}.status_updates")
        for index in range(nodes):
            name = f"node-{index}"
            env.process(self._lease(name, self.rng.random() * self.interval))
            if post_status is not None and status_report > 0:
                env.process(self._status(name, self.rng.random() * status_report))

    def _lease(self, name: str, phase: float):
        yield self.env.timeout(phase)
        last = self.env.now
        while True:
            start = self.env.now
            yield from self.renew(name)
            now = self.env.now
            self.renew_s.record(now - start)
            self.gap_s.record(now - last)
            if now - last > self.grace:
                self.not_ready.inc()
            self.renewals.inc()
            last = now
            yield self.env.timeout(self.interval)

    def _status(self, name: str, phase: float):
        assert self.post_status is not None
        yield self.env.timeout(phase)
        while True:
            yield from self.post_status(name)
            self.status_updates.inc()
            yield self.env.timeout(self.status_report)
