"""Speed of the architecture model at the size of a real mesh.

Istio's own load test runs 1,000 services in 2,000 pods with sidecars at
70,000 requests a second mesh-wide (Istio 1.24, "Performance and
Scalability"). This benchmark builds a graph of that shape, with a seeded
generator (:func:`mesh_graph`): ``--services`` services in ``--layers``
layers, two pods each, every service of a layer calling ``--fanout``
services of the next (chosen at random, each call made with probability
one half), a handler of an exponential 0.2 ms of CPU, Envoy sidecars
(``mesh.dataplane: sidecar``), pods spread over nodes of 16 cores. The edge
rate is set so that the mesh-wide rate (requests handled by any pod per
second) is ``--mesh-rate``. It simulates ``--seconds`` of that and reports:

* **service-hops per wall second**: requests handled by pods, over the wall
  time of the run (building the model included);
* the wall time 60 simulated seconds would take at that speed, against the
  issue's target of 5 minutes on one core;
* the peak resident memory of this process (``ru_maxrss``).

Not a test: it asserts nothing. ``make bench`` runs a short one; for the
figure in ``bench/README.md``::

    python -m bench.bench_arch --seconds 1
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import time
from typing import Any

import numpy as np

from sim.run import run_replication
from sim.scenario import load_scenario

TARGET_WALL_S = 300.0
"""The issue's target: 60 simulated seconds of the Istio load test in at most 5 minutes of wall time."""


def mesh_graph(services: int, layers: int, fanout: int, seed: int) -> tuple[dict[str, Any], float]:
    """(the services of a layered call graph, the mean number of services a request visits)."""
    rng = np.random.default_rng(seed)
    per_layer = max(1, services // layers)
    names = [[f"s{layer}-{i}" for i in range(per_layer)] for layer in range(layers)]
    graph: dict[str, Any] = {}
    for layer, row in enumerate(names):
        for name in row:
            handler: list[dict[str, Any]] = [{"cpu": {"dist": "exp", "mean": "0.2ms"}}]
            if layer + 1 < layers:
                callees = rng.choice(names[layer + 1], size=min(fanout, per_layer), replace=False)
                handler.append({"parallel": [{"service": str(callee), "probability": 0.5, "response": "1KiB"}
                                             for callee in callees]})
            graph[name] = {"replicas": 2, "balancer": "least_request", "handler": handler}
    # Each layer's services are visited fanout x 0.5 times per visit of the layer above.
    visits = sum((fanout * 0.5) ** layer for layer in range(layers))
    return graph, visits


def run(services: int, layers: int, fanout: int, mesh_rate: float, seconds: float, seed: int) -> dict[str, Any]:
    graph, visits = mesh_graph(services, layers, fanout, seed)
    entries = [name for name in graph if name.startswith("s0-")]
    # One entry service takes the edge's requests; the others of layer 0 are reached by none, so the graph's
    # first layer is a single front door and the rest fan out below it.
    edge_rate = mesh_rate / visits
    pods = 2 * len(graph)
    data = {
        "model": "arch", "seed": seed, "warmup": 0.0, "requests": max(1, int(edge_rate * seconds)),
        "workload": {"rate": edge_rate, "entry": entries[0]},
        "nodes": {"count": max(1, pods // 10), "cores": 16},
        "network": {"latency": "100us", "local": "20us"},
        "mesh": {"dataplane": "sidecar"},
        "services": graph,
    }
    started = time.perf_counter()
    result = run_replication(load_scenario(data))
    wall = time.perf_counter() - started
    hops = sum(value for metric, statistic, value in result.rows
               if metric.startswith("service.") and metric.endswith(".requests") and statistic == "count")
    return {"services": len(graph), "pods": pods, "edge_rate": edge_rate, "simulated_s": result.sim_time_s,
            "requests": data["requests"], "service_hops": hops, "wall_s": wall, "hops_per_wall_s": hops / wall,
            "wall_s_for_60_simulated_s": 60 * mesh_rate / (hops / wall),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=1000, help="services (default 1000)")
    parser.add_argument("--layers", type=int, default=4, help="layers of the call graph (default 4)")
    parser.add_argument("--fanout", type=int, default=3, help="services of the next layer each calls (default 3)")
    parser.add_argument("--mesh-rate", type=float, default=70_000.0, help="requests/s handled mesh-wide")
    parser.add_argument("--seconds", type=float, default=0.2, help="simulated seconds (default 0.2)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    got = run(args.services, args.layers, args.fanout, args.mesh_rate, args.seconds, args.seed)
    print(f"{got['services']} services, {got['pods']} pods with sidecars, {args.mesh_rate:,.0f} requests/s "
          f"mesh-wide ({got['edge_rate']:,.0f}/s at the edge), {got['simulated_s']:.2f} s simulated")
    print(f"  {got['service_hops']:,.0f} service-hops in {got['wall_s']:.1f} s of wall time: "
          f"{got['hops_per_wall_s']:,.0f} hops per wall second")
    print(f"  60 simulated seconds would take {got['wall_s_for_60_simulated_s'] / 60:,.0f} min "
          f"(target {TARGET_WALL_S / 60:.0f} min); peak memory {got['peak_rss_mib']:,.0f} MiB")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({**got, "args": vars(args), "python": sys.version, "platform": platform.platform()}, handle,
                      indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
