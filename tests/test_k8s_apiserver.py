"""The API server's Priority and Fairness around the queue set: allocation of seats among priority
levels (upstream ``conc_alloc_test.go``, ``max_seats_test.go`` ported), classification by the bootstrap
flow schemas, the request timeout and wait limit, bad input, and the ``apf-noisy-tenant`` scenario."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from models.k8s import apf_alloc
from models.k8s.apf import FIFO, GATEWAY_TIMEOUT, OK, TOO_MANY_REQUESTS, APIRequest, APIServer, hash_flow_id
from models.k8s.apf_alloc import AllocationError, AllocItem, compute_concurrency_allocation
from models.k8s.apf_config import APFConfig
from sim.core import Environment
from sim.run import run_replications
from sim.scenario import ScenarioError, load_scenario

FP_SLACK = 1e-10
"""Floating-point slack of upstream's allocation checks (``fpSlack``)."""


def _partition(rng: np.random.Generator, n: int, total: float) -> list[float]:
    cuts = np.sort(rng.random(n - 1))
    edges = np.concatenate(([0.0], cuts, [1.0]))
    return [float(part) * total for part in np.diff(edges)]


def _alloc_case(rng: np.random.Generator) -> tuple[int, list[AllocItem], str]:
    """One random problem drawn as upstream's ``test1ConcAlloc`` draws them (its three styles and its
    zero-target classes)."""
    n = int(rng.choice([0, 1, 2, 3, 4, 6, 9]))
    items: list[AllocItem] = []
    required, style = 0, "empty"
    if n:
        draw = int(rng.integers(20))
        if draw == 0:
            style, required = "bound from below", int(rng.integers(n * 3))
            items = [AllocItem(x + 2 * rng.random(), x, x + 3 * rng.random()) for x in _partition(rng, n, required)]
        elif draw == 1:
            style, required = "bound from above", int(rng.integers(n * 3)) + 1
            for x in _partition(rng, n, required):
                lower = x * max(0.0, 1.25 * rng.random() - 1)
                items.append(AllocItem(lower + rng.random(), lower, x))
        else:
            style = "not-set-by-bounds"
            for _ in range(n):
                x = max(0.0, rng.random() * 5 - 1)
                items.append(AllocItem(x + 2 * rng.random(), x, x + 3 * rng.random()))
            low, high = sum(i.lower for i in items), sum(i.upper for i in items)
            required = round(low + (high - low) * rng.random())
    while rng.random() < 0.25:
        items.insert(int(rng.integers(len(items) + 1)), AllocItem(0.0, 0.0, rng.random() + 0.00001))
    return required, items, style


def _rel_diff(a: float, b: float) -> float:
    den = max(abs(a), abs(b))
    return abs(a - b) / den if den else 0.0


def test_concurrency_allocation_on_upstreams_random_problems() -> None:
    """TestConcAlloc: 10,000 random problems; an error exactly when the bounds cannot meet the sum; else
    the allocations sum to it, and each is its lower bound, its upper bound or proportional to its target
    with the one proportion returned (checks and slack as upstream; the problems are drawn from our seed)."""
    rng = np.random.default_rng(1234567890)
    for _ in range(10_000):
        required, items, style = _alloc_case(rng)
        low, high = sum(i.lower for i in items), sum(i.upper for i in items)
        infeasible = low - required > FP_SLACK or required - high > FP_SLACK
        try:
            allocs, proportion = compute_concurrency_allocation(required, items)
        except AllocationError:
            assert infeasible, (required, items, style)
            continue
        assert not infeasible, (required, items, style)
        assert _rel_diff(required, sum(allocs)) <= FP_SLACK, (required, items, allocs)
        for item, alloc in zip(items, allocs, strict=True):
            fair = proportion * max(item.target, apf_alloc.MIN_TARGET)
            if fair <= item.lower:
                assert alloc == item.lower
            elif fair >= item.upper:
                assert alloc == item.upper
            else:
                assert _rel_diff(fair, alloc) <= FP_SLACK


@pytest.mark.parametrize(("nominal", "hand", "expected"), [
    (5, 6, 1), (10, 6, 1), (15, 6, 2), (20, 6, 3), (35, 6, 5), (100, 6, 15), (200, 6, 30), (10, 1, 2),
    (100, 20, 5),
])
def test_max_seats(nominal: int, hand: int, expected: int) -> None:
    """Test_GetMaxSeats: one level of 10,000 shares beside the mandatory ones (exempt 0, catch-all 5) on a
    server of ``nominal`` seats gets ``nominal`` seats, and its widest request ``expected`` seats."""
    limits = apf_alloc.nominal_limits(nominal, 10_000, 10_005, 0, None)
    assert limits.nominal == nominal
    assert apf_alloc.max_seats(limits.nominal, hand) == expected


def test_bootstrap_levels_nominal_limits_at_600_seats() -> None:
    """The bootstrap levels' shares (exempt 0, system 30, node-high 40, leader-election 10, workload-high
    40, workload-low 100, global-default 20, catch-all 5; sum 245) on 600 seats, with upstream's ceil and
    Go's half-away rounding of the lendable seats (arithmetic of ``finishQueueSetReconfigsLocked``)."""
    server = APIServer(Environment(), APFConfig())
    got = {name: (level.limits.nominal, level.limits.min) for name, level in server.levels.items()}
    assert got == {"exempt": (0, 0), "system": (74, 50), "node-high": (98, 73), "leader-election": (25, 25),
                   "workload-high": (98, 49), "workload-low": (245, 24), "global-default": (49, 24),
                   "catch-all": (13, 13)}
    assert server.nominal_sum == 602


@pytest.mark.parametrize(("request_", "schema", "level"), [
    (APIRequest("admin", groups=("system:masters", "system:authenticated")), "exempt", "exempt"),
    (APIRequest("anyone", path="/healthz"), "probes", "exempt"),
    (APIRequest("system:node:n1", "update", "leases", "kube-node-lease", groups=("system:nodes",)),
     "system-node-high", "node-high"),
    (APIRequest("system:node:n1", "get", "pods", groups=("system:nodes",)), "system-nodes", "system"),
    (APIRequest("system:kube-controller-manager", "update", "leases", "kube-system"),
     "system-leader-election", "leader-election"),
    (APIRequest("system:kube-controller-manager", "list", "pods", ""), "kube-controller-manager", "workload-high"),
    (APIRequest("system:serviceaccount:kube-system:coredns", "list", "endpoints",
                groups=("system:serviceaccounts", "system:authenticated")),
     "kube-system-service-accounts", "workload-high"),
    (APIRequest("system:serviceaccount:shop:cart", "get", "configmaps", "shop",
                groups=("system:serviceaccounts", "system:authenticated")), "service-accounts", "workload-low"),
    (APIRequest("alice"), "global-default", "global-default"),
    (APIRequest("system:anonymous", groups=("system:unauthenticated",)), "global-default", "global-default"),
])
def test_bootstrap_flow_schemas_classify(request_: APIRequest, schema: str, level: str) -> None:
    """The bootstrap flow schemas (``bootstrap/default.go``) send each kind of request to its level, the
    lowest matching precedence first."""
    matched, _ = APIServer(Environment(), APFConfig()).classify(request_)
    assert matched is not None and (matched.name, matched.priority_level) == (schema, level)


def test_flows_are_distinguished_as_the_schema_says() -> None:
    """global-default tells flows apart by user, kube-controller-manager by namespace; the flow hash
    depends on both the schema and the distinguisher."""
    server = APIServer(Environment(), APFConfig())
    assert server.classify(APIRequest("alice", namespace="x"))[1] == "alice"
    assert server.classify(APIRequest("system:kube-controller-manager", "list", "pods", "x"))[1] == "x"
    hashes = {hash_flow_id("global-default", "alice"), hash_flow_id("global-default", "bob"),
              hash_flow_id("service-accounts", "alice")}
    assert len(hashes) == 3 and all(0 <= h < 2**64 for h in hashes)


def _serve(server: APIServer, env: Environment, request: APIRequest, at: float, out: list[Any]) -> None:
    def go() -> Any:
        yield env.timeout(at)
        arrived = env.now
        status = yield env.process(server.handle(request))
        out.append((request.user, status, env.now - arrived))
    env.process(go())


def test_request_timeout_gives_504_and_a_quarter_of_it_is_the_wait_limit() -> None:
    """``--request-timeout`` 8 s: a request running 10 s gets 504 (its seat held to the end); behind it on
    a catch-all level of one seat (no queues) the next is rejected at once; on a queuing level of one seat,
    one waits at most 8 / 4 = 2 s."""
    config = APFConfig.model_validate({
        "server_concurrency_limit": 2,
        "priority_levels": [{"name": "one", "nominal_concurrency_shares": 1, "queues": 4, "hand_size": 1},
                            {"name": "none", "nominal_concurrency_shares": 1, "queues": 0}],
        "flow_schemas": [{"name": "a", "priority_level": "one", "subjects": {"users": ["a"]}, "rules": [{}]},
                         {"name": "b", "priority_level": "none", "subjects": {"users": ["b"]}, "rules": [{}]}]})
    env = Environment()
    server = APIServer(env, config, request_timeout_s=8.0)
    out: list[Any] = []
    _serve(server, env, APIRequest("a", service_s=10.0), 0.0, out)
    _serve(server, env, APIRequest("a", service_s=1.0), 0.5, out)
    _serve(server, env, APIRequest("b", service_s=10.0), 0.0, out)
    _serve(server, env, APIRequest("b", service_s=1.0), 0.5, out)
    env.run(until=30.0)
    assert sorted(out) == [("a", TOO_MANY_REQUESTS, 2.0), ("a", GATEWAY_TIMEOUT, 10.0),
                           ("b", TOO_MANY_REQUESTS, 0.0), ("b", GATEWAY_TIMEOUT, 10.0)]
    assert env.metrics.counters["apiserver.level.one.timed_out"].value == 1
    assert env.metrics.counters["apiserver.schema.b.rejected"].value == 1


def test_fifo_serves_in_arrival_order_and_rejects_when_full() -> None:
    """``fifo``: one queue of 2 before 1 seat: the third waiting request is refused, the others are served
    in arrival order whoever sent them."""
    env = Environment()
    server = APIServer(env, APFConfig(server_concurrency_limit=1), fifo_queue_length=2)
    out: list[Any] = []
    for index, user in enumerate(["a", "b", "a", "c"]):
        _serve(server, env, APIRequest(user, service_s=1.0), index * 0.1, out)
    env.run(until=10.0)
    assert [(user, status) for user, status, _ in out] == [("c", TOO_MANY_REQUESTS), ("a", OK), ("b", OK), ("a", OK)]
    assert list(server.levels) == [FIFO]


def test_borrowing_lends_idle_levels_seats_to_a_busy_one() -> None:
    """Every 10 s the levels' limits follow their seat demand: a busy global-default borrows beyond its
    nominal 49 seats, up to what the idle levels can lend (602 - 258 + 24 = 368); idle ones fall to their
    minimum."""
    env = Environment()
    server = APIServer(env, APFConfig())
    out: list[Any] = []
    for index in range(4000):
        _serve(server, env, APIRequest(f"user{index % 50}", service_s=5.0), index * 0.01, out)
    env.run(until=35.0)
    limits = {name: level.queue_set.concurrency_limit for name, level in server.levels.items()}
    assert limits["global-default"] > 49 * 3 and limits["global-default"] <= 368
    assert limits["workload-low"] == 24 and limits["system"] == 50


BAD = [
    ({"flow_schemas": [{"name": "x", "priority_level": "nowhere", "subjects": {"users": ["*"]}}]},
     "apf: flow_schemas.0.priority_level: 'nowhere' names no priority level (there are exempt, system"),
    ({"priority_levels": [{"name": "p", "nominal_concurrency_shares": -3}]},
     "apf.priority_levels.0.nominal_concurrency_shares: Input should be greater than or equal to 0"),
    ({"priority_levels": [{"name": "p", "queues": 4, "hand_size": 6}]},
     "hand_size: 6 is larger than queues (4)"),
    ({"priority_levels": [{"name": "p", "queues": 512, "hand_size": 8}]},
     "required entropy bits of deckSize 512 and handSize 8 is greater than 60"),
    ({"priority_levels": [{"name": "p", "lendable_percent": 120}]},
     "apf.priority_levels.0.lendable_percent: Input should be less than or equal to 100"),
]


@pytest.mark.parametrize(("apf", "message"), BAD)
def test_bad_apf_configuration_is_named(apf: dict[str, Any], message: str) -> None:
    """Bad input names the field and the value, one line, no traceback from inside the model."""
    data = {"model": "k8s.apiserver", "duration": "10s", "apf": apf,
            "tenants": {"t": {"user": "u", "service": "1ms", "workload": {"rate": 1}}}}
    with pytest.raises(ScenarioError) as error:
        load_scenario(data)
    assert message in str(error.value), str(error.value)


def test_noisy_tenant_scenario_apf_holds_the_others_fifo_does_not() -> None:
    """apf-noisy-tenant, 60 simulated seconds, the first 30 left out (borrowing has settled): with APF the
    three quiet tenants (exponential 10 ms requests) are never refused and their p99 stays under twice
    what their service time alone gives (ln(100) x 10 ms = 46 ms), while the noisy LISTs are refused by the
    thousand; with one FIFO queue the quiet tenants wait behind the LISTs for seconds and are refused too."""
    base = {"duration": "60s", "warmup": 0.5, "replications": 1}
    with_apf = run_replications(load_scenario("apf-noisy-tenant", base))
    fifo = run_replications(load_scenario("apf-noisy-tenant", {**base, "fifo": True}))
    for tenant in ("team-a", "team-b", "team-c"):
        assert with_apf.get(f"tenant.{tenant}.rejected", "count").mean == 0
        assert with_apf.get(f"tenant.{tenant}.latency_s", "p99").mean < 2 * math.log(100) * 0.010
        assert fifo.get(f"tenant.{tenant}.latency_s", "p50").mean > 1.0
        assert fifo.get(f"tenant.{tenant}.rejected", "count").mean > 0
    assert with_apf.get("tenant.noisy.rejected", "count").mean > 1000
    assert math.isfinite(with_apf.get("apiserver.level.global-default.waiting_s", "p99").mean)


@pytest.mark.parametrize(("lendable", "borrowing"), [
    ((50, 33), (67, 50)),   # lendable-limited
    ((50, 67), (33, 50)),   # borrowing-limited
], ids=["lendable-limited", "borrowing-limited"])
def test_borrowing_upstream_cases(lendable: tuple[int, int], borrowing: tuple[int, int]) -> None:
    """TestBorrowing (``pkg/util/flowcontrol/borrowing_test.go``): two levels of 100 shares on 24 seats
    (nominal 12 each beside the mandatory exempt and catch-all levels), 10 queues, hands of 2, queues of
    10; 24 closed-loop clients of 250 ms requests on level 0 and 6 on level 1. After 10 s, over the next
    15 s, level 0 delivers a concurrency of 15.5 to 16.1 and level 1 of 5.5 to 6.1, whether the lending
    or the borrowing limit binds (lendable and borrowing percents of levels 0 and 1 as upstream's cases)."""
    levels: list[dict[str, Any]] = [
        {"name": "exempt", "exempt": True, "nominal_concurrency_shares": 0},
        {"name": "catch-all", "nominal_concurrency_shares": 5, "queues": 0},
    ]
    schemas: list[dict[str, Any]] = []
    for flow in range(2):
        levels.append({"name": f"test-pl{flow}", "nominal_concurrency_shares": 100,
                       "lendable_percent": lendable[flow], "borrowing_limit_percent": borrowing[flow],
                       "queues": 10, "hand_size": 2, "queue_length_limit": 10})
        schemas.append({"name": f"test-fs{flow}", "priority_level": f"test-pl{flow}", "matching_precedence": 100,
                        "distinguisher": "user", "subjects": {"users": [f"test-user{flow}"]}, "paths": ["*"]})
    env = Environment()
    server = APIServer(env, APFConfig.model_validate(
        {"server_concurrency_limit": 24, "priority_levels": levels, "flow_schemas": schemas}))

    def client(user: str) -> Any:
        while True:
            yield env.process(server.handle(APIRequest(user, path="/foobar", service_s=0.25)))

    for flow, clients in enumerate((24, 6)):
        for _ in range(clients):
            env.process(client(f"test-user{flow}"))
    env.run(until=10.0)
    env.metrics.reset()
    env.run(until=25.0)
    got = [env.metrics.gauges[f"apiserver.level.test-pl{flow}.executing_seats"].mean() for flow in range(2)]
    assert [level.limits.nominal for name, level in server.levels.items() if name.startswith("test")] == [12, 12]
    assert 15.5 <= got[0] <= 16.1 and 5.5 <= got[1] <= 6.1, got


def test_update_borrowing_with_exempt_upstream_scenarios() -> None:
    """TestUpdateBorrowing (``pkg/util/flowcontrol/exempt_borrowing_test.go``): the bootstrap levels
    workload-high, exempt, workload-low and catch-all on (40 + 100 + 5) x 6 = 870 seats, each period's seat
    demand held constant. 1: all want 970: exempt gets 970, the others their minimum. 2: exempt wants what
    leaves the others halfway between minimum and nominal: they get that, after two periods. 3: only
    workload-low lends (demand 1) and exempt takes it all: high and low get their nominal, workload-low its
    minimum."""
    bootstrap = {level.name: level for level in APFConfig().priority_levels}
    names = ["workload-high", "exempt", "workload-low", "catch-all"]
    levels = [bootstrap[name] for name in names]
    server = sum(level.nominal_concurrency_shares for level in levels) * 6
    limits = [apf_alloc.nominal_limits(server, level.nominal_concurrency_shares, 145, level.lendable_percent,
                                       level.borrowing_limit_percent) for level in levels]
    assert server == 870 and sum(limit.nominal for limit in limits) == server
    exempt = [level.exempt for level in levels]
    stats = [apf_alloc.SeatDemandStats() for _ in levels]

    def period(demands: list[int]) -> list[int]:
        for stat, demand in zip(stats, demands, strict=True):
            stat.update(apf_alloc.BORROWING_PERIOD_S, demand, 0.0, demand)
        return apf_alloc.borrowing_limits(server, limits, exempt, stats)

    high, _, mid, low = limits
    assert period([server + 100] * 4) == [high.min, server + 100, mid.min, low.min]
    halfway = [(limit.nominal + limit.min) // 2 for limit in (high, mid, low)]
    wanted = server - sum(halfway)
    period([server + 100, wanted, server + 100, server + 100])
    assert period([server + 100, wanted, server + 100, server + 100]) == [halfway[0], wanted, halfway[1], halfway[2]]
    wanted = server - (high.nominal + mid.min + low.nominal)
    period([server + 100, wanted, 1, server + 100])
    assert period([server + 100, wanted, 1, server + 100]) == [high.nominal, wanted, mid.min, low.nominal]
