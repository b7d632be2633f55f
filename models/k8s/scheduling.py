"""How much of the cluster kube-scheduler looks at for one pod.

kube-scheduler filters nodes until it has found "enough" feasible ones and scores only those
(``pkg/scheduler/schedule_one.go``, ``numFeasibleNodesToFind``): every node below 100 nodes;
otherwise ``percentageOfNodesToScore`` of them (the profile's, else the global setting), where 0
means adaptive, ``50 - nodes / 125`` percent (integer division) but at least 5 %; and never fewer
than 100. The cost of scheduling a pod therefore grows with the cluster only up to the point where
the adaptive share falls to its floor (5,625 nodes).
"""

from __future__ import annotations

MIN_FEASIBLE_NODES_TO_FIND = 100
"""``minFeasibleNodesToFind`` (``pkg/scheduler/schedule_one.go``)."""
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5
"""``minFeasibleNodesPercentageToFind`` (``pkg/scheduler/schedule_one.go``)."""
ADAPTIVE_BASE_PERCENTAGE = 50
"""The adaptive share's starting point: ``50 - nodes / 125`` percent (``schedule_one.go``)."""
ADAPTIVE_NODES_PER_PERCENT = 125
"""Nodes per percentage point the adaptive share loses (``schedule_one.go``)."""


def num_feasible_nodes_to_find(all_nodes: int, percentage_of_nodes_to_score: int = 0) -> int:
    """The feasible nodes kube-scheduler looks for before scoring; ``percentage_of_nodes_to_score``
    0 is the adaptive default (``KubeSchedulerConfiguration.percentageOfNodesToScore``)."""
    if all_nodes < 0:
        raise ValueError(f"all_nodes must be >= 0, got {all_nodes!r}")
    if not 0 <= percentage_of_nodes_to_score <= 100:
        raise ValueError(f"percentage_of_nodes_to_score must be within 0-100, got {percentage_of_nodes_to_score!r}")
    if all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return all_nodes
    percentage = percentage_of_nodes_to_score
    if percentage == 0:
        percentage = max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND,
                         ADAPTIVE_BASE_PERCENTAGE - all_nodes // ADAPTIVE_NODES_PER_PERCENT)
    return max(MIN_FEASIBLE_NODES_TO_FIND, all_nodes * percentage // 100)
