"""Kubernetes control plane (issue 16). So far: the Horizontal Pod Autoscaler's algorithm
(:mod:`models.k8s.hpa`), pure functions held to the upstream test tables; no control loop yet."""
