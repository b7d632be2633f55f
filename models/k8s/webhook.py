"""Admission webhooks: a call out of the API server on the write path, with a timeout and a policy.

The semantics of ``admissionregistration.k8s.io/v1`` webhooks (Kubernetes docs, "Dynamic Admission
Control"): a matching write waits for each webhook in turn (mutating ones first, then validating);
a webhook that does not answer within ``timeoutSeconds`` (10 s by default, 1-30 s) or fails
is handled by its ``failurePolicy``: ``Fail`` (the default in v1) rejects the request, ``Ignore``
lets it through as if the webhook had allowed it. The webhook's latency is a distribution (a
service the user runs, so a setting); ``error_rate`` is the share of calls that fail fast.

Metrics: ``PREFIX.NAME.latency_s`` (the wait, timeout included), ``PREFIX.NAME.timeouts``,
``PREFIX.NAME.errors``, ``PREFIX.NAME.rejected``.
"""

from __future__ import annotations

from typing import Literal

from sim.core import Environment
from sim.dists import Distribution

TIMEOUT_S = 10.0
"""``timeoutSeconds`` default for ``admissionregistration.k8s.io/v1`` webhooks."""
MIN_TIMEOUT_S = 1.0
"""The smallest ``timeoutSeconds`` the API accepts."""
MAX_TIMEOUT_S = 30.0
"""The largest ``timeoutSeconds`` the API accepts."""

FailurePolicy = Literal["Fail", "Ignore"]


class Webhook:
    """One admission webhook as the API server calls it."""

    def __init__(self, env: Environment, name: str, latency: Distribution, timeout: float = TIMEOUT_S,
                 failure_policy: FailurePolicy = "Fail", error_rate: float = 0.0, prefix: str = "webhook") -> None:
        if not MIN_TIMEOUT_S <= timeout <= MAX_TIMEOUT_S:
            raise ValueError(f"webhook {name}: timeout must be within {MIN_TIMEOUT_S:g}-{MAX_TIMEOUT_S:g} s, "
                             f"got {timeout!r}")
        if not 0 <= error_rate <= 1:
            raise ValueError(f"webhook {name}: error_rate must be within [0, 1], got {error_rate!r}")
        if failure_policy not in ("Fail", "Ignore"):
            raise ValueError(f"webhook {name}: failure_policy must be Fail or Ignore, got {failure_policy!r}")
        self.env, self.name, self.timeout = env, name, timeout
        self.failure_policy, self.error_rate = failure_policy, error_rate
        self.draw = latency.sampler(env.rng(f"{prefix}.{name}.latency"))
        self.rng = env.rng(f"{prefix}.{name}.errors")
        metrics = env.metrics
        self.latency_s = metrics.histogram(f"{prefix}.{name}.latency_s")
        self.timeouts = metrics.counter(f"{prefix}.{name}.timeouts")
        self.errors = metrics.counter(f"{prefix}.{name}.errors")
        self.rejected = metrics.counter(f"{prefix}.{name}.rejected")

    def admit(self):
        """Call the webhook (a generator for ``yield from``); returns True if the request may go on."""
        start = self.env.now
        latency = float(self.draw())
        failed = self.rng.random() < self.error_rate
        if latency >= self.timeout:
            yield self.env.timeout(self.timeout)
            self.timeouts.inc()
            failed = True
        else:
            yield self.env.timeout(latency)
            if failed:
                self.errors.inc()
        self.latency_s.record(self.env.now - start)
        if failed and self.failure_policy == "Fail":
            self.rejected.inc()
            return False
        return True
