"""Micro-stories of the cluster graph (links, contention, routes) and the call graph."""

from __future__ import annotations

import math

import pytest

from sim.core import Environment
from sim.dists import Constant
from sim.topology import CallGraph, Cluster


def two_nodes(env: Environment, latency: float = 0.001, bandwidth: float = 1e6, loss: float = 0.0) -> Cluster:
    cluster = Cluster(env)
    cluster.add_node("a", zone="z1")
    cluster.add_node("b", zone="z2")
    cluster.add_link("a", "b", Constant(latency), bandwidth, loss)
    return cluster


def test_message_takes_latency_plus_size_over_bandwidth(env):
    cluster = two_nodes(env, latency=0.001, bandwidth=1e6)
    log = []
    cluster.send("a", "b", 1000).callbacks.append(lambda _: log.append(env.now))
    env.run()
    assert log == [pytest.approx(0.001 + 1000 / 1e6)]


def test_messages_queue_on_a_link_but_not_across_directions(env):
    cluster = two_nodes(env, latency=0.001, bandwidth=1e6)
    log = []
    for name, (src, dst) in {"first": ("a", "b"), "second": ("a", "b"), "back": ("b", "a")}.items():
        cluster.send(src, dst, 1000).callbacks.append(lambda _, name=name: log.append((name, env.now)))
    env.run()
    times = dict(log)
    assert times["first"] == pytest.approx(0.002)
    assert times["second"] == pytest.approx(0.003)  # waited 1 ms behind the first on the same direction
    assert times["back"] == pytest.approx(0.002)  # the other direction is free


def test_route_takes_least_latency_path_store_and_forward(env):
    cluster = Cluster(env)
    for node in "abc":
        cluster.add_node(node)
    cluster.add_link("a", "c", Constant(0.010))
    cluster.add_link("a", "b", Constant(0.002), bandwidth=1e6, loss=0.1)
    cluster.add_link("b", "c", Constant(0.003), bandwidth=1e6, loss=0.2)
    route = cluster.route("a", "c")
    assert [link.name for link, _ in route.hops] == ["link.a-b", "link.b-c"]
    assert route.mean_latency == pytest.approx(0.005)
    assert route.loss == pytest.approx(1 - 0.9 * 0.8)
    log = []
    route.transmit(1000).callbacks.append(lambda _: log.append(env.now))
    env.run()
    assert log == [pytest.approx(0.002 + 0.001 + 0.003 + 0.001)]
    back = route.reverse()
    assert [sender for _, sender in back.hops] == ["c", "b"]


def test_zones():
    env = Environment()
    cluster = two_nodes(env)
    cluster.add_node("c", zone="z1")
    assert cluster.zone("a") == "z1"
    assert cluster.nodes_in("z1") == ["a", "c"]


@pytest.mark.parametrize(
    "action, message",
    [
        (lambda c: c.add_link("a", "x", Constant(0.001)), "no node 'x'"),
        (lambda c: c.add_link("a", "b", Constant(0.001)), "already exists"),
        (lambda c: c.add_link("a", "a", Constant(0.001)), "two different nodes"),
        (lambda c: c.add_node("a"), "already exists"),
        (lambda c: c.route("a", "lonely"), "no route"),
        (lambda c: c.add_link("a", "lonely", Constant(0.001), bandwidth=0), "bandwidth"),
        (lambda c: c.add_link("a", "lonely", Constant(0.001), loss=1.0), "loss"),
    ],
)
def test_bad_topology_fails_clearly(action, message):
    env = Environment()
    cluster = two_nodes(env)
    cluster.add_node("lonely")
    with pytest.raises(ValueError, match=message):
        action(cluster)


def test_infinite_bandwidth_has_no_serialisation(env):
    cluster = Cluster(env)
    cluster.add_node("a")
    cluster.add_node("b")
    cluster.add_link("a", "b", Constant(0.001), bandwidth=math.inf)
    log = []
    for _ in range(3):
        cluster.send("a", "b", 10**9).callbacks.append(lambda _: log.append(env.now))
    env.run()
    assert log == [pytest.approx(0.001)] * 3


def call_graph(mode: str) -> CallGraph:
    calls = CallGraph()
    calls.add_service("front", mode=mode)
    calls.add_service("users")
    calls.add_service("orders")
    calls.add_call("front", "users", calls=2, request_bytes=100, response_bytes=1000)
    calls.add_call("front", "orders")
    return calls


@pytest.mark.parametrize("mode, expected", [("sequential", 0.004 + 0.004 + 0.006), ("parallel", 0.006)])
def test_placed_call_graph_serves_calls_in_order_or_at_once(env, mode, expected):
    """Each call costs a round trip on its route: front-users 4 ms, front-orders 6 ms."""
    cluster = Cluster(env)
    for node in ("n0", "n1", "n2"):
        cluster.add_node(node)
    cluster.add_link("n0", "n1", Constant(0.002))
    cluster.add_link("n0", "n2", Constant(0.003))
    calls = call_graph(mode)
    assert calls.fan_out("front") == 3
    placed = calls.place(cluster, {"front": "n0", "users": "n1", "orders": "n2"})

    def invoke(call, route):
        return env.timeout(2 * route.mean_latency)

    process = env.process(placed.serve("front", invoke))
    env.run(process)
    assert env.now == pytest.approx(expected)


def test_call_graph_rejects_cycles_and_unplaced_services():
    calls = call_graph("sequential")
    with pytest.raises(ValueError, match="cycle"):
        calls.add_call("users", "front")
    assert not calls.graph.has_edge("users", "front")
    with pytest.raises(ValueError, match="calls: must be >= 1"):
        calls.add_call("users", "orders", calls=0)
    env = Environment()
    cluster = two_nodes(env)
    with pytest.raises(ValueError, match="service 'orders' is not placed"):
        calls.place(cluster, {"front": "a", "users": "b"})
    with pytest.raises(ValueError, match="placement.orders: no node 'x'"):
        calls.place(cluster, {"front": "a", "users": "b", "orders": "x"})
    with pytest.raises(ValueError, match="mode"):
        calls.add_service("bad", mode="sometimes")
