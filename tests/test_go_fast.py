"""The fast Go fidelity (models/runtime/go/fast/) against the detailed one (models/runtime/go/detailed/).

The fast fidelity is there so that large scenarios can run on it in place of
the detailed model; it is accepted when its mean and p99 latency are within
10 % of the detailed model's at loads 0.3-0.8, on the built-in go-http-service
scenario (GC on, as shipped) and on the 1 ms reference service of
tests/test_go_service.py. Within means the whole 99 % Student-t interval of the
paired relative error, not only its point estimate.

Replications per case: the smallest n for which t(0.995, n - 1) s / sqrt(n), with
s the standard deviation of the paired errors over a pilot of replications 0-31
(seed 21), is at most half the room between the pilot's mean error and the
bound, so that the interval lies inside with a margin as wide as itself.
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
"""The acceptance bound on the relative error of the fast fidelity's mean and p99 latency."""
CONFIDENCE = 0.99


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
    """The whole 99 % Student-t interval of the per-replication relative errors, mean +- half-width,
    within +-BOUND (p99: BOUND plus the histogram's relative accuracy, its quantiles' own error)."""
    for statistic, values in errors.items():
        mean, half_width, n = t_interval(values, CONFIDENCE)
        print(f"{statistic}: error {100 * mean:+.2f} % +- {100 * half_width:.2f} % ({n} replications)")
        limit = BOUND + (RELATIVE_ACCURACY if statistic == "p99" else 0.0)
        assert abs(mean) + half_width <= limit, (statistic, mean, half_width, values)


@pytest.mark.parametrize(("load", "replications"), [(0.3, 3), (0.5, 8), (0.7, 16), (0.8, 16)])
def test_fast_matches_detailed_on_the_go_http_service(load, replications):
    """On go-http-service (decode and encode JSON, ~0.2 ms of CPU, 64 MiB live heap, GOGC 100) the fast
    model is the detailed scheduler's queueing with nothing it leaves out in play: no goroutine readies
    another (no runnext), no request runs 10 ms, and no P goes 10 ms without polling; the two agree
    to 0.001 % in most replications. Some part ways when a GC mark backs the queues up for more than
    10 ms, as the reference service's do. Pilot, 2026-12-06, after marking was counted by objects and
    pointers (a mark of the 64 MiB node-shaped heap takes about 38 ms of CPU, not 25): identical in
    all 8 replications at 0.3; at 0.5 16 replications, s = 0.9 % (mean) and 3.5 % (p99) on means of
    -0.1 % and -0.6 %, n >= 5, 8 kept; at 0.7 16, s = 4.3 % and 8.3 % on +0.8 % and +2.5 %,
    n >= 12, 16 kept; at 0.8 16, s = 5.9 % and 5.1 % on -0.3 % and 0.0 %, n >= 7, 8 kept (the
    pilot's counts for the calibration of 2026-12-04 were 3, 3, 4 and 8). Again at 0.8 after the pacer took
    endCycle's cons/mark and its start-up history (2026-12-06, evening): 16 replications, s = 5.9 % (mean) and
    5.0 % (p99) on means of +1.6 % and -0.4 %, the same spread; its first 8 alone spread 8.1 % and their 99 %
    interval reached 10.7 %, so all 16 are kept (t(0.995, 15) 5.9 / 4 = 4.4 % against 8.4 %).
    With one shared FIFO queue instead of netpoll batches on per-P queues (the fast model before),
    p99 was 5 % short at load 0.5 and 16 % short at 0.8: the check can fail."""
    check(paired_errors(lambda fidelity: load_scenario("go-http-service", service(fidelity, load)), replications))


@pytest.mark.parametrize(
    ("load", "replications"),
    [(0.3, 8), (0.5, 8), pytest.param(0.7, 10, marks=pytest.mark.slow), pytest.param(0.8, 18, marks=pytest.mark.slow)],
)
def test_fast_matches_detailed_on_the_reference_service(load, replications):
    """The 1 ms reference (gamma CPU, cv 0.5, 64 KiB per request, 32 MiB live heap): identical at 0.3
    and 0.5; at 0.7 and 0.8 a GC mark backs the queues up for more than 10 ms, sysmon's network polls
    (on its own rounds in the detailed model, 10 ms after the last poll in the fast one) move requests
    differently and the runs part ways, by up to 17 % in one replication's p99. Pilot, 32 replications
    of 40,000 requests: identical in all at 0.3 and 0.5 (s = 0; 8 replications kept); at 0.7 s = 1.3 %
    (mean) and 4.7 % (p99) on means of +0.1 % and +0.6 %, n >= 4 and >= 10; at 0.8 s = 4.1 % and
    6.9 % on means of +0.9 %, n >= 10 and >= 18 (t(0.995, 17) 6.9 / sqrt(18) = 4.7 % against half of
    the 9.6 points of room). The 8 replications used before left p99 at 0.8 at +2.4 +- 9.8 %, past
    10.5 %. With these counts: at 0.7 mean +0.0 +- 1.2 %, p99 +0.5 +- 3.9 %; at 0.8 mean
    +1.5 +- 3.0 %, p99 +1.7 +- 5.7 % (99 % intervals). Without sysmon's poll in the fast model, p99
    at 0.8 was ~10 % long (3 replications)."""
    check(paired_errors(lambda fidelity: load_scenario(reference(fidelity, load, seed=21)), replications))


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


@pytest.mark.parametrize("last", ["exit", "park"])
def test_a_long_run_of_requests_that_need_no_cpu_does_not_nest(last: str) -> None:
    """20,000 requests of 1 µs of CPU and a wait on one network event that fires at 1 ms, on one server: those
    that ran before it park and are woken together; the server then takes request after request that ends
    (or waits again, on a system call) with no CPU between them, in a loop, not a call per request, so
    Python's recursion limit does not stop the run. The last ends when the 20 ms of CPU are done."""
    env = Environment(seed=1)
    go = FastGoRuntime(env, 1, gc=GCConfig(enabled=False), stack_bytes=4096)
    wake = env.timeout(1 * MS)
    tail = [] if last == "exit" else [Syscall(1 * MS)]
    done = [go.execute([Compute(1e-6), Wait(lambda: wake), *tail]) for _ in range(20_000)]
    env.run(until=env.all_of(done))
    assert env.now == pytest.approx(20 * MS + (1 * MS if tail else 0.0))
    assert go.goroutines.max == 20_000
