"""The fast Go fidelity (models/runtime/go/fast/runtime.py) against the detailed one (models/runtime/go/detailed/runtime.py).

The issue's bound: mean and p99 latency within 10 % at loads 0.3-0.8, on the
built-in go-http-service scenario (GC on, as shipped) and on the 1 ms
reference service of tests/test_go_service.py.
"""

from __future__ import annotations

import pytest

from sim.core import Environment
from sim.run import run_replication, t_interval
from sim.scenario import load_scenario
from sim.stats import RELATIVE_ACCURACY
from models.runtime.go.fast.runtime import FastGoRuntime
from models.runtime.go.gc import GCConfig
from models.runtime.protocol import Compute, Syscall, Wait

from test_go_service import reference

MS = 1e-3
BOUND = 0.10
"""The issue's bound on the relative error of the fast fidelity's mean and p99."""
MAX_HALF_WIDTH = 0.15
"""The 99 % half-width of the mean error must be below this, or the replications are too few for the
check to mean anything (9.6 % was the widest seen, p99 of the reference at load 0.8, 8 replications)."""
LOADS = (0.3, 0.5, 0.7, 0.8)
REFERENCE_REPLICATIONS = 8


def service(fidelity: str, load: float) -> dict:
    """go-http-service as shipped, its arrival rate set for ``load`` of its 2 Ps."""
    handler = load_scenario("go-http-service").handler
    return {"fidelity": fidelity, "arrival_rate": load * 2 / handler.mean_cpu_s, "seed": 21}


def paired_errors(make, replications: int) -> dict[str, list[float]]:
    """Relative error of the fast fidelity's mean and p99 latency in each replication, against the
    detailed one run on the same seed and replication: both draw the same arrivals and handler
    costs (same stream names), so a difference is the model's, not the draws'."""
    errors: dict[str, list[float]] = {"mean": [], "p99": []}
    for replication in range(replications):
        detailed = run_replication(make("detailed"), replication)
        fast = run_replication(make("fast"), replication)
        for statistic, values in errors.items():
            values.append(
                fast.value("requests.sojourn_s", statistic) / detailed.value("requests.sojourn_s", statistic) - 1
            )
    return errors


def check(errors: dict[str, list[float]]) -> None:
    """The mean of the per-replication relative errors within the bound (p99: also within the
    histogram's relative accuracy), and its 99 % Student-t half-width below MAX_HALF_WIDTH."""
    for statistic, values in errors.items():
        mean, half_width, n = t_interval(values, 0.99)
        print(f"{statistic}: error {100 * mean:+.2f} % +- {100 * half_width:.2f} % ({n} replications)")
        slack = RELATIVE_ACCURACY if statistic == "p99" else 0.0
        assert abs(mean) <= BOUND + slack, (statistic, values)
        assert half_width < MAX_HALF_WIDTH, (statistic, values)


@pytest.mark.parametrize(("load", "replications"), [(0.3, 3), (0.5, 3), (0.7, 3), (0.8, REFERENCE_REPLICATIONS)])
def test_fast_matches_detailed_on_the_go_http_service(load, replications):
    """On go-http-service (decode and encode JSON, ~0.2 ms of CPU, 64 MiB live heap, GOGC 100) the fast
    model is the detailed scheduler's queueing with nothing it leaves out in play: no goroutine readies
    another (no runnext), no request runs 10 ms, and no P goes 10 ms without polling. Measured when
    written: identical to the last digit at every load, 3 replications of 50,000 requests. With the
    calibration of 2026-12-04 one of those three replications at 0.8 parted ways (mean +6.4 %), as the
    reference service's do at 0.7-0.8 when a GC mark backs the queues up for more than 10 ms; so 0.8
    takes as many replications as the reference, for a half-width that means something. With one
    shared FIFO queue instead of netpoll batches on per-P queues (the fast model before), p99 was
    5 % short at load 0.5 and 16 % short at 0.8: the check can fail."""
    check(paired_errors(lambda fidelity: load_scenario("go-http-service", service(fidelity, load)), replications))


@pytest.mark.parametrize(
    "load", [0.3, 0.5, pytest.param(0.7, marks=pytest.mark.slow), pytest.param(0.8, marks=pytest.mark.slow)]
)
def test_fast_matches_detailed_on_the_reference_service(load):
    """The 1 ms reference (gamma CPU, cv 0.5, 64 KiB per request, 32 MiB live heap): identical at 0.3
    and 0.5; at 0.7 and 0.8 a GC mark backs the queues up for more than 10 ms, sysmon's network polls
    (on its own rounds in the detailed model, 10 ms after the last poll in the fast one) move requests
    differently and the runs part ways, by up to 16 % in one replication's p99. Measured when written,
    8 replications of 40,000 requests: mean errors -0.8 +- 1.9 % and -1.0 +- 5.3 %, p99 errors
    -4.0 +- 6.3 % and -0.1 +- 9.6 % (99 % intervals) at 0.7 and 0.8. Without sysmon's poll in the
    fast model, p99 at 0.8 was ~10 % long (3 replications)."""
    check(paired_errors(lambda fidelity: load_scenario(reference(fidelity, load, seed=21)), REFERENCE_REPLICATIONS))


def test_execute_runs_wait_and_syscall_steps_like_the_detailed_model(env):
    """Through the Runtime protocol: 1 ms of CPU, a 2 ms network wait, a 3 ms blocking syscall and 1 ms
    of CPU take 7 ms on an idle runtime; two such requests on one P overlap their waits."""
    fast = FastGoRuntime(env, 1, gc=GCConfig(enabled=False), stack_bytes=2048)
    steps = [Compute(1 * MS), Wait(lambda: env.timeout(2 * MS)), Syscall(3 * MS), Compute(1 * MS)]
    first, second = fast.execute(steps), fast.execute(steps)
    env.run(until=second)
    assert first.value == pytest.approx(7 * MS)
    assert second.value == pytest.approx(8 * MS)


def test_long_requests_share_the_server_in_turns():
    """Two 25 ms requests on one server take turns (at most 10 ms each): the first to end is not done
    at 25 ms, as it would be run to completion; both are done at 50 ms, the server never idle."""
    env = Environment()
    fast = FastGoRuntime(env, 1, gc=GCConfig(enabled=False), stack_bytes=2048)
    a, b = fast.execute([Compute(25 * MS)]), fast.execute([Compute(25 * MS)])
    env.run(until=env.all_of([a, b]))
    first, last = sorted([a.value, b.value])
    assert first >= 25 * MS + 10 * MS - 1e-12
    assert last == pytest.approx(50 * MS)
