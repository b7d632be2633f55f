"""Scenario schema of the model kind ``k8s.cluster``: a control plane and the cluster that loads it.

Defaults and their sources:

* ``nodes`` 5,000 and ``pods`` 150,000: the upstream scalability envelope ("Considerations for large
  clusters", https://kubernetes.io/docs/setup/best-practices/cluster-large/, and
  ``kubernetes/community`` ``sig-scalability/configs-and-limits/thresholds.md``: at most 5,000
  nodes, 150,000 pods, 110 pods per node).
* ``apiserver.cores`` 32: the control-plane machine upstream used beyond 500 nodes on GCE
  (n1-standard-32, the same page's "master size" table in its Kubernetes 1.18 version).
* ``apiserver.codec`` ``protobuf``: the content type kubelet, kube-scheduler and
  kube-controller-manager default to (``clientConnection.contentType``,
  ``pkg/scheduler/apis/config/v1/defaults.go``); a LIST client's own is its ``format``.
* Client limits: kubelets QPS 50, burst 100 (``KubeletConfiguration.kubeAPIQPS``/``kubeAPIBurst``
  defaults since Kubernetes 1.27); kube-controller-manager QPS 20, burst 30 (``--kube-api-qps``,
  ``--kube-api-burst``); kube-scheduler QPS 50, burst 100 (:mod:`models.k8s.scheduler`).
* The SLOs the run is judged against (``kubernetes/community`` ``sig-scalability/slos/slos.md``):
  mutating API calls p99 <= 1 s; a LIST of a whole cluster's objects <= 30 s; pod start-up p99 <= 5 s.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from models.k8s.apf_config import APFConfig
from models.k8s.webhook import MAX_TIMEOUT_S, MIN_TIMEOUT_S, TIMEOUT_S
from sim.scenario import MAX_COUNT, Duration, DurationDist, Rate, ScenarioBase, ScenarioPart

CLUSTER_NODES = 5000
"""Most nodes in the scalability envelope (see the module docstring)."""
CLUSTER_PODS = 150_000
"""Most pods in the scalability envelope."""
MAX_PODS_PER_NODE = 110
"""Most pods per node in the envelope (and kubelet's ``maxPods`` default)."""
APISERVER_CORES = 32
"""The control-plane machine's vCPUs upstream used beyond 500 nodes (n1-standard-32)."""
KUBELET_QPS, KUBELET_BURST = 50.0, 100
"""``KubeletConfiguration.kubeAPIQPS`` / ``kubeAPIBurst`` defaults (Kubernetes 1.27 and later)."""
CONTROLLER_MANAGER_QPS, CONTROLLER_MANAGER_BURST = 20.0, 30
"""kube-controller-manager ``--kube-api-qps`` / ``--kube-api-burst`` defaults."""
MUTATING_SLO_S = 1.0
"""SLO: p99 of mutating API calls (``slos.md``, API call latency)."""
LIST_SLO_S = 30.0
"""SLO: a read-only call of cluster scope, such as a LIST of every pod (``slos.md``)."""
POD_STARTUP_SLO_S = 5.0
"""SLO: p99 start-up of a schedulable stateless pod with its image pre-pulled (``slos.md``)."""

ETCD_MEMBERS = 3
"""etcd's smallest cluster that survives a member's failure (etcd FAQ, "What is failure tolerance?": 3
members tolerate 1)."""
ETCD_CORES = 2
"""The cores of the machine the ``etcd.*`` costs were measured on (as the ``k8s.etcd`` kind's default)."""
FIFO_QUEUE_LENGTH = 1000
"""The FIFO alternative's queue (``apiserver.fifo``): an assumption, as in the ``k8s.apiserver`` kind; upstream
has no such queue."""

Codec = Literal["json", "protobuf"]


class WebhookConfig(ScenarioPart):
    """An admission webhook (:mod:`models.k8s.webhook`) on the writes of some resources."""

    latency: DurationDist = Field(description="the webhook service's answer time (a service the user runs)")
    timeout: Duration = Field(TIMEOUT_S, ge=MIN_TIMEOUT_S, le=MAX_TIMEOUT_S,
                              description="timeoutSeconds (admissionregistration.k8s.io/v1: 10 s, 1-30 s)")
    failure_policy: Literal["Fail", "Ignore"] = Field("Fail", description="on timeout or error: reject or allow")
    error_rate: float = Field(0.0, ge=0, le=1, description="share of calls that fail at once")
    resources: list[str] = Field(["pods"], min_length=1, description="the resources whose writes it admits")


class ApiServerConfig(ScenarioPart):
    """The API server's machine and how it serves (priority and fairness come with the server)."""

    cores: int = Field(APISERVER_CORES, ge=1, le=1024, description="cores of the control-plane machine")
    codec: Codec = Field("protobuf", description="encoding of the system components' requests and responses")
    apf: APFConfig = Field(default_factory=APFConfig, description="priority levels and flow schemas (bootstrap)")
    fifo: bool = Field(False, description="one FIFO queue in front of all seats instead of priority and fairness")
    fifo_queue_length: int = Field(FIFO_QUEUE_LENGTH, ge=1, le=MAX_COUNT, description="the FIFO queue's length")
    webhooks: dict[str, WebhookConfig] = Field(
        default_factory=dict, description="admission webhooks called in turn on a write, inside its seats")


class EtcdStorageConfig(ScenarioPart):
    """etcd as the ``k8s.etcd`` kind models it (:mod:`models.k8s.etcd`): a Raft group at the calibrated
    costs ``etcd.*``; each write is an object of the protobuf size ``apiserver.codec.protobuf.object_bytes``."""

    members: int = Field(ETCD_MEMBERS, ge=1, le=9, description="members of the Raft group, the leader included")
    cores: int = Field(ETCD_CORES, ge=1, le=1024, description="the etcd server's cores for requests' paths")


class StorageConfig(ScenarioPart):
    """What a write to etcd takes, seen from the API server: a distribution, or the etcd model."""

    write: DurationDist | None = Field(None, description="a write's latency as a distribution; or give etcd")
    etcd: EtcdStorageConfig | None = Field(None, description="etcd's Raft group (models.k8s.etcd); or give write")

    @model_validator(mode="after")
    def _one(self) -> StorageConfig:
        if (self.write is None) == (self.etcd is None):
            raise ValueError("storage: give either write (a distribution) or etcd (the Raft model), not "
                             f"{'both' if self.write is not None else 'neither'}")
        return self


class ListClientConfig(ScenarioPart):
    """A client that LISTs every pod of the cluster now and then (a monitoring agent, a backup, kubectl)."""

    every: Duration = Field(gt=0, description="time between its LISTs")
    format: Codec = Field("json", description="the encoding it asks for")
    clients: int = Field(1, ge=1, le=MAX_COUNT, description="how many such clients, each on its own phase")


class ClusterScenario(ScenarioBase):
    """A Kubernetes control plane under the load of a cluster: node heartbeats, pod churn through the
    scheduler and the kubelets, watches from every kubelet, and clients that LIST the whole cluster."""

    duration: Duration = Field(300.0, gt=0, description="simulated time, warm-up included")
    nodes: int = Field(CLUSTER_NODES, ge=1, le=MAX_COUNT, description="nodes, each with a kubelet")
    pods: int = Field(CLUSTER_PODS, ge=0, le=100 * MAX_COUNT, description="pods at the start, spread over the nodes")
    churn: Rate = Field(ge=0, description="pods created per second, and as many deleted")
    container_start: DurationDist = Field(
        description="a bound pod's time on its node before the kubelet reports it running (sandbox, containers, "
        "readiness), image pre-pulled")
    apiserver: ApiServerConfig = Field(default_factory=ApiServerConfig)
    storage: StorageConfig
    lists: dict[str, ListClientConfig] = Field(default_factory=dict, description="clients that LIST every pod")
    scheduler_filter_s_per_node: float = Field(
        0.0, ge=0, description="kube-scheduler's CPU to filter one node for a pod (no public default)")
    scheduler_score_s_per_node: float = Field(
        0.0, ge=0, description="kube-scheduler's CPU to score one feasible node (no public default)")

    @model_validator(mode="after")
    def _fits(self) -> ClusterScenario:
        if self.pods > self.nodes * MAX_PODS_PER_NODE:
            raise ValueError(f"pods: {self.pods} is more than {MAX_PODS_PER_NODE} per node on {self.nodes} nodes")
        return self
