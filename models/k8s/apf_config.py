"""API Priority and Fairness configuration: priority levels and flow schemas, with upstream's defaults.

Defaults and their sources:

* The server's seats: ``--max-requests-inflight`` 400 plus ``--max-mutating-requests-inflight`` 200 = 600
  (``kubernetes/apiserver`` ``pkg/server/config.go``, ``NewConfig``: ``MaxRequestsInFlight: 400``,
  ``MaxMutatingRequestsInFlight: 200``; with APF on, the server's concurrency limit is their sum,
  ``pkg/server/options/feature.go``, ``ApplyTo``).
* Priority levels and flow schemas: the mandatory and suggested objects of the bootstrap configuration
  (``pkg/apis/flowcontrol/bootstrap/default.go``): levels ``exempt`` (0 shares), ``system`` (30 shares,
  33 % lendable, 64 queues, hands of 6, queues of 50), ``node-high`` (40, 25 %, 64/6/50),
  ``leader-election`` (10, 0 %, 16/4/50), ``workload-high`` (40, 50 %, 128/6/50), ``workload-low`` (100,
  90 %, 128/6/50), ``global-default`` (20, 50 %, 128/6/50), ``catch-all`` (5, 0 %, reject without
  queues); flow schemas with their matching precedence, subjects, rules and distinguishers as there
  (``service-accounts`` and ``global-default`` distinguish flows by user; the rules' API groups are left
  out, as resources' names suffice here; non-resource rules match a request's ``path``).
* A flow schema's flow is its name and the user (``by: user``), the namespace (``by: namespace``) or
  nothing, hashed as upstream's ``hashFlowID`` (SHA-256 of the two with a zero byte between, the first
  8 bytes little-endian; ``apf_controller.go``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from models.k8s.shufflesharding import Dealer, DealerError
from sim.scenario import ScenarioPart

MAX_REQUESTS_INFLIGHT = 400
MAX_MUTATING_REQUESTS_INFLIGHT = 200
"""``--max-requests-inflight`` and ``--max-mutating-requests-inflight`` defaults (pkg/server/config.go)."""
AUTHENTICATED, UNAUTHENTICATED = "system:authenticated", "system:unauthenticated"
NODES, MASTERS, SERVICE_ACCOUNTS = "system:nodes", "system:masters", "system:serviceaccounts"


class PriorityLevel(ScenarioPart):
    """A priority level (upstream ``PriorityLevelConfiguration``): exempt, or limited with nominal
    concurrency shares, lendable and borrowing percentages, and queues (none: reject when full)."""

    name: str = Field(description="the level's name, which flow schemas name")
    exempt: bool = Field(False, description="requests of this level are never queued nor limited")
    nominal_concurrency_shares: int = Field(30, ge=0, description="share of the server's seats")
    lendable_percent: int = Field(0, ge=0, le=100, description="percent of its nominal seats it may lend")
    borrowing_limit_percent: int | None = Field(
        None, ge=0, description="percent of its nominal seats it may borrow; null: no limit")
    queues: int = Field(64, ge=0, description="queues; 0: no queuing, reject when the seats are in use")
    hand_size: int = Field(8, ge=1, description="queues dealt to each flow by shuffle sharding")
    queue_length_limit: int = Field(50, ge=1, description="requests a queue holds before rejecting")

    @model_validator(mode="after")
    def _dealer_fits(self) -> PriorityLevel:
        if self.queues > 0 and not self.exempt:
            if self.hand_size > self.queues:
                raise ValueError(f"hand_size: {self.hand_size} is larger than queues ({self.queues})")
            try:
                Dealer(self.queues, self.hand_size)
            except DealerError as error:
                raise ValueError(f"queues: {self.queues} with hand_size {self.hand_size}: {error}") from None
        return self


class Subjects(ScenarioPart):
    """Who a flow schema matches: any of these users (``*``: every user), groups, or service accounts
    (``namespace/name``, ``namespace/*``)."""

    users: list[str] = Field(default_factory=list, description="user names, or * for any")
    groups: list[str] = Field(default_factory=list, description="group names")
    service_accounts: list[str] = Field(default_factory=list, description="namespace/name or namespace/*")

    def match(self, user: str, groups: tuple[str, ...]) -> bool:
        if "*" in self.users or user in self.users or any(group in self.groups for group in groups):
            return True
        for account in self.service_accounts:
            namespace, _, name = account.partition("/")
            prefix = f"system:serviceaccount:{namespace}:"
            if user == prefix + name or (name == "*" and user.startswith(prefix)):
                return True
        return False


class ResourceRule(ScenarioPart):
    """What requests a rule matches: verbs and resources (``*``: any), namespaces (``*``: every one) and
    whether requests outside any namespace match (``cluster_scope``)."""

    verbs: list[str] = Field(default_factory=lambda: ["*"], description="verbs (get, list, create...), or *")
    resources: list[str] = Field(default_factory=lambda: ["*"], description="resources (pods, leases...), or *")
    namespaces: list[str] = Field(default_factory=lambda: ["*"], description="namespaces, or * for every one")
    cluster_scope: bool = Field(True, description="also requests for cluster-scoped objects")

    def match(self, verb: str, resource: str, namespace: str) -> bool:
        if not ({"*", verb} & set(self.verbs) and {"*", resource} & set(self.resources)):
            return False
        if not namespace:
            return self.cluster_scope
        return "*" in self.namespaces or namespace in self.namespaces


class FlowSchema(ScenarioPart):
    """A flow schema (upstream ``FlowSchema``): the requests it matches go to its priority level, in flows
    distinguished by user, namespace or not at all; the lowest ``matching_precedence`` that matches wins
    (then the name)."""

    name: str = Field(description="the schema's name")
    priority_level: str = Field(description="name of the priority level its requests go to")
    matching_precedence: int = Field(1000, ge=1, le=10000, description="lower is tried first")
    distinguisher: Literal["user", "namespace"] | None = Field(
        None, description="what tells its flows apart: user, namespace or null (one flow)")
    subjects: Subjects = Field(description="who it matches")
    rules: list[ResourceRule] = Field(default_factory=list, description="resource requests it matches")
    paths: list[str] = Field(default_factory=list, description="non-resource URLs it matches, or *")

    def match(self, user: str, groups: tuple[str, ...], verb: str, resource: str, namespace: str,
              path: str) -> bool:
        if not self.subjects.match(user, groups):
            return False
        if path:
            return "*" in self.paths or path in self.paths
        return any(rule.match(verb, resource, namespace) for rule in self.rules)


def _level(name: str, shares: int, lendable: int, queues: int = 128, hand: int = 6) -> PriorityLevel:
    return PriorityLevel(name=name, nominal_concurrency_shares=shares, lendable_percent=lendable, queues=queues,
                         hand_size=hand, queue_length_limit=50)


def _everything(name: str, level: str, precedence: int, subjects: Subjects,
                distinguisher: Literal["user", "namespace"] | None) -> FlowSchema:
    return FlowSchema(name=name, priority_level=level, matching_precedence=precedence, distinguisher=distinguisher,
                      subjects=subjects, rules=[ResourceRule()], paths=["*"])


def bootstrap_priority_levels() -> list[PriorityLevel]:
    """The mandatory and suggested priority levels of ``bootstrap/default.go``."""
    return [
        PriorityLevel(name="exempt", exempt=True, nominal_concurrency_shares=0, lendable_percent=0),
        _level("system", 30, 33, 64), _level("node-high", 40, 25, 64), _level("leader-election", 10, 0, 16, 4),
        _level("workload-high", 40, 50), _level("workload-low", 100, 90), _level("global-default", 20, 50),
        PriorityLevel(name="catch-all", nominal_concurrency_shares=5, lendable_percent=0, queues=0),
    ]


def bootstrap_flow_schemas() -> list[FlowSchema]:
    """The mandatory and suggested flow schemas of ``bootstrap/default.go``."""
    everyone = Subjects(groups=[AUTHENTICATED, UNAUTHENTICATED])
    managers = ["system:kube-controller-manager", "system:kube-scheduler"]
    return [
        _everything("exempt", "exempt", 1, Subjects(groups=[MASTERS]), None),
        FlowSchema(name="probes", priority_level="exempt", matching_precedence=2, subjects=everyone,
                   paths=["/healthz", "/readyz", "/livez"]),
        FlowSchema(name="system-leader-election", priority_level="leader-election", matching_precedence=100,
                   distinguisher="user", subjects=Subjects(users=managers, service_accounts=["kube-system/*"]),
                   rules=[ResourceRule(verbs=["get", "create", "update"], resources=["leases"],
                                       cluster_scope=False)]),
        FlowSchema(name="system-node-high", priority_level="node-high", matching_precedence=400,
                   distinguisher="user", subjects=Subjects(groups=[NODES]),
                   rules=[ResourceRule(resources=["nodes", "nodes/status"]),
                          ResourceRule(resources=["leases"], cluster_scope=False)]),
        _everything("system-nodes", "system", 500, Subjects(groups=[NODES]), "user"),
        _everything("kube-controller-manager", "workload-high", 800,
                    Subjects(users=["system:kube-controller-manager"]), "namespace"),
        _everything("kube-scheduler", "workload-high", 800, Subjects(users=["system:kube-scheduler"]), "namespace"),
        _everything("kube-system-service-accounts", "workload-high", 900,
                    Subjects(service_accounts=["kube-system/*"]), "namespace"),
        _everything("service-accounts", "workload-low", 9000, Subjects(groups=[SERVICE_ACCOUNTS]), "user"),
        _everything("global-default", "global-default", 9900, everyone, "user"),
        _everything("catch-all", "catch-all", 10000, everyone, "user"),
    ]


class APFConfig(ScenarioPart):
    """The server's seats and its priority levels and flow schemas (default: upstream's bootstrap)."""

    server_concurrency_limit: int = Field(
        MAX_REQUESTS_INFLIGHT + MAX_MUTATING_REQUESTS_INFLIGHT, ge=1,
        description="seats of the server: --max-requests-inflight 400 + --max-mutating-requests-inflight 200")
    priority_levels: list[PriorityLevel] = Field(
        default_factory=bootstrap_priority_levels, description="priority levels (default: upstream bootstrap)")
    flow_schemas: list[FlowSchema] = Field(
        default_factory=bootstrap_flow_schemas, description="flow schemas (default: upstream bootstrap)")

    @model_validator(mode="after")
    def _names_resolve(self) -> APFConfig:
        levels = [level.name for level in self.priority_levels]
        if not levels:
            raise ValueError("priority_levels: give at least one priority level")
        for index, name in enumerate(levels):
            if name in levels[:index]:
                raise ValueError(f"priority_levels.{index}.name: {name!r} is used twice")
        if not sum(level.nominal_concurrency_shares for level in self.priority_levels if not level.exempt):
            raise ValueError("priority_levels: the limited levels' nominal_concurrency_shares sum to 0")
        schemas = [schema.name for schema in self.flow_schemas]
        for index, schema in enumerate(self.flow_schemas):
            if schema.priority_level not in levels:
                raise ValueError(f"flow_schemas.{index}.priority_level: {schema.priority_level!r} names no "
                                 f"priority level (there are {', '.join(levels)})")
            if schema.name in schemas[:index]:
                raise ValueError(f"flow_schemas.{index}.name: {schema.name!r} is used twice")
        return self

    def ordered_schemas(self) -> list[FlowSchema]:
        """The flow schemas in matching order: precedence, then name (upstream ``FlowSchemaSequence``)."""
        return sorted(self.flow_schemas, key=lambda schema: (schema.matching_precedence, schema.name))
