"""Closed forms of queueing theory, to hold the simulator to and to teach with.

Sources: Kleinrock, *Queueing Systems* vol. 1 (1975): M/M/c and Erlang C §3.5,
M/M/c/K §3.6, Pollaczek–Khinchine §5.7; vol. 2 §4.4 for processor sharing;
Jackson, "Jobshop-like queueing systems", Management Science 10(1), 1963, for
product-form open networks. Rates are per second, times in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import networkx as nx
import numpy as np


def _check_stable(rho: float) -> None:
    if not 0 <= rho < 1:
        raise ValueError(f"utilisation rho = {rho:g} must be in [0, 1) for a steady state")


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival waits in M/M/c; ``offered_load`` a = lambda / mu Erlangs."""
    rho = offered_load / servers
    _check_stable(rho)
    # Erlang B by its stable recursion, then C = B / (1 - rho (1 - B)).
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = offered_load * blocking / (k + offered_load * blocking)
    return blocking / (1 - rho * (1 - blocking))


def mmc_mean_wait(arrival_rate: float, service_rate: float, servers: int) -> float:
    """Mean time in queue of M/M/c: C(c, a) / (c mu - lambda)."""
    a = arrival_rate / service_rate
    return erlang_c(servers, a) / (servers * service_rate - arrival_rate)


def mmc_mean_sojourn(arrival_rate: float, service_rate: float, servers: int) -> float:
    return mmc_mean_wait(arrival_rate, service_rate, servers) + 1 / service_rate


def mmc_wait_quantile(arrival_rate: float, service_rate: float, servers: int, q: float) -> float:
    """q-quantile of the M/M/c waiting time: P(W > t) = C exp(-(c mu - lambda) t)."""
    waits = erlang_c(servers, arrival_rate / service_rate)
    if 1 - q >= waits:
        return 0.0
    return math.log(waits / (1 - q)) / (servers * service_rate - arrival_rate)


def mm1_sojourn_quantile(arrival_rate: float, service_rate: float, q: float) -> float:
    """q-quantile of the M/M/1 FCFS sojourn time, which is exponential with rate mu - lambda."""
    _check_stable(arrival_rate / service_rate)
    return -math.log1p(-q) / (service_rate - arrival_rate)


def mg1_mean_wait(arrival_rate: float, mean_service: float, second_moment_service: float) -> float:
    """Pollaczek–Khinchine mean wait of M/G/1: lambda E[S^2] / (2 (1 - rho))."""
    rho = arrival_rate * mean_service
    _check_stable(rho)
    return arrival_rate * second_moment_service / (2 * (1 - rho))


def mg1_mean_sojourn(arrival_rate: float, mean_service: float, second_moment_service: float) -> float:
    return mg1_mean_wait(arrival_rate, mean_service, second_moment_service) + mean_service


def md1_mean_wait(arrival_rate: float, service_time: float) -> float:
    """M/D/1: P-K with E[S^2] = D^2, i.e. rho D / (2 (1 - rho))."""
    return mg1_mean_wait(arrival_rate, service_time, service_time**2)


def mg1_ps_mean_sojourn(arrival_rate: float, mean_service: float) -> float:
    """M/G/1-PS: E[T] = E[S] / (1 - rho), whatever the service distribution."""
    rho = arrival_rate * mean_service
    _check_stable(rho)
    return mean_service / (1 - rho)


def mmck_distribution(arrival_rate: float, service_rate: float, servers: int, capacity: int) -> np.ndarray:
    """Stationary P(n jobs present), n = 0..K, of M/M/c/K (any load)."""
    a = arrival_rate / service_rate
    weights = [1.0]
    for n in range(1, capacity + 1):
        weights.append(weights[-1] * a / min(n, servers))
    p = np.asarray(weights)
    return p / p.sum()


def mmck_blocking(arrival_rate: float, service_rate: float, servers: int, capacity: int) -> float:
    """Fraction of arrivals dropped by M/M/c/K (PASTA: P(K present))."""
    return float(mmck_distribution(arrival_rate, service_rate, servers, capacity)[-1])


def mmck_mean_sojourn(arrival_rate: float, service_rate: float, servers: int, capacity: int) -> float:
    """Mean time in system of admitted jobs, by Little's law on the admitted rate."""
    p = mmck_distribution(arrival_rate, service_rate, servers, capacity)
    mean_present = float(np.dot(np.arange(capacity + 1), p))
    return mean_present / (arrival_rate * (1 - p[-1]))


def jackson_arrival_rates(graph: nx.DiGraph, external: Mapping[str, float]) -> dict[str, float]:
    """Solve the traffic equations lambda = gamma + P^T lambda of an open network.

    ``graph`` edges carry the routing probability ``p``; ``external`` maps a
    station to its external arrival rate gamma.
    """
    nodes = list(graph.nodes)
    routing = nx.to_numpy_array(graph, nodelist=nodes, weight="p")
    gamma = np.array([external.get(node, 0.0) for node in nodes])
    rates = np.linalg.solve(np.eye(len(nodes)) - routing.T, gamma)
    return dict(zip(nodes, rates.tolist()))


def jackson_mean_sojourn(
    graph: nx.DiGraph,
    external: Mapping[str, float],
    service_rates: Mapping[str, float],
    servers: Mapping[str, int],
) -> float:
    """End-to-end mean sojourn of an open Jackson network of M/M/c stations.

    Each station behaves as an independent M/M/c at its total arrival rate
    (Jackson's theorem); by Little's law, E[T] = sum of L_i / total external rate.
    """
    rates = jackson_arrival_rates(graph, external)
    total_present = sum(
        rate * mmc_mean_sojourn(rate, service_rates[node], servers[node]) for node, rate in rates.items()
    )
    return total_present / sum(external.values())
