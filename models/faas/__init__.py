"""Model kind ``faas``: functions on a FaaS platform (cold starts by stage, keep-alive, instance limits, cost)."""
