"""Architectures: services in a call graph, their replicas on nodes, load balancing between them.

Model kind ``arch`` (:mod:`models.arch.model`); its scenario schema is in
:mod:`models.arch.config`, the load-balancing policies in
:mod:`models.arch.balancers`, the per-request breakdown in
:mod:`models.arch.breakdown`.
"""
