"""The ``faas`` kind's ``handler``: a request run on its instance's runtime model, on the CPU its memory buys."""

from __future__ import annotations

import gc
import math
import re
import weakref

import pytest

from sim.core import Environment
from sim.scenario import ScenarioError, load_scenario
from models.faas.config import GVISOR_SYSCALL_S
from models.faas.runtimes import InstanceRuntimes
from models.queueing.formulas import md1_mean_wait

from test_faas import run

NO_COLD_START = {"sandbox": "none", "runtime_start": 0, "first_request": 0}
"""Cold starts of no time: every request's sojourn is its time on the runtime."""


def scenario(duration: float = 1000, **function: object) -> dict[str, object]:
    base: dict[str, object] = {"workload": {"rate": 1.0}, "handler": {"cpu": 0.01}, "runtime": "node"}
    base.update(function)
    return {"model": "faas", "duration": duration, "warmup": 0, "functions": {"f": base}}


@pytest.mark.parametrize(("memory", "stretch"), [("1769MiB", 1.0), ("884.5MiB", 2.0), ("128MiB", 1769 / 128)])
def test_a_lone_request_takes_its_cpu_over_the_share_the_memory_buys(memory: str, stretch: float):
    # one request at a time on an instance (concurrency 1, 1 request/s of 10 ms on average): its time on the
    # Node.js loop is its CPU over min(1, memory / 1769 MiB) exactly, and the mean of n exponential draws is
    # within 4 c / sqrt(n) of their mean c
    cpu = 0.010
    env, _ = run(scenario(memory=memory, handler={"cpu": {"dist": "exp", "mean": cpu}}, cold_start=NO_COLD_START))
    sojourn, drawn = env.metrics.histograms["requests.sojourn_s"], env.metrics.histograms["requests.cpu_s"]
    n = sojourn.count
    assert n > 900 and drawn.count == n
    assert sojourn.mean == pytest.approx(stretch * drawn.mean, rel=1e-9)
    assert abs(sojourn.mean - stretch * cpu) < 4 * stretch * cpu / math.sqrt(n)
    # billed: each request's time on the runtime rounded up to 1 ms, times the memory in GB
    memory_gb = float(memory.removesuffix("MiB")) / 1024
    billed = env.metrics.counters["cost.gb_s"].value / memory_gb
    assert n * sojourn.mean <= billed + 1e-9 <= n * (sojourn.mean + 0.001) + 1e-9


def test_concurrent_requests_queue_on_the_event_loop_as_md1():
    # one instance (max_instances 1) taking up to 1000 requests at once: Poisson arrivals at 50/s of 10 ms of CPU
    # each queue on its one event loop, an M/D/1 queue at load 0.5 whose mean sojourn is D + rho D / (2 (1 - rho))
    # = 15 ms (Pollaczek-Khinchine). Over 1000 s (50,000 requests) the mean's spread between seeds is about
    # 0.5 % (seeds 0-5: -0.4 % to +0.6 %); held within 2.5 %
    env, _ = run(scenario(workload={"rate": 50.0}, handler={"cpu": 0.01}, memory="1769MiB", concurrency=1000,
                          provisioned=1, max_instances=1, cold_start=NO_COLD_START))
    expected = 0.01 + md1_mean_wait(50.0, 0.01)
    assert expected == pytest.approx(0.015)
    assert env.metrics.histograms["requests.sojourn_s"].mean == pytest.approx(expected, rel=0.025)
    # with one request per instance there is no queue: each takes its 10 ms
    alone, _ = run(scenario(workload={"rate": 50.0}, handler={"cpu": 0.01}, memory="1769MiB",
                            cold_start=NO_COLD_START))
    assert alone.metrics.histograms["requests.sojourn_s"].quantile(0.99) == pytest.approx(0.01, rel=0.02)


def go_function(gc_settings: dict[str, object]) -> dict[str, object]:
    return scenario(duration=300, runtime="go", memory="1769MiB", workload={"rate": 100.0}, provisioned=1,
                    handler={"cpu": 0.002, "alloc": "512KiB", "gc": gc_settings}, cold_start=NO_COLD_START)


def test_the_go_collector_runs_on_the_instance_and_its_pauses_reach_the_tail():
    # 2 ms of CPU and 512 KiB allocated per request, 100 requests/s, a 64 MiB live heap: a cycle every ~128 MiB
    # allocated (GOGC 100), a mark of tens of ms on the instance's one P. Without the collector every request
    # takes the same time (its CPU and the calibrated CPU of allocating); with it, most still do, and the tail
    # holds those that a pause, an assist or the mark worker's share of the P caught
    off, _ = run(go_function({"enabled": False}))
    on, _ = run(go_function({"live_heap": "64MiB"}))
    base = off.metrics.histograms["requests.sojourn_s"]
    assert base.max == pytest.approx(base.quantile(0.01), rel=0.02)  # one value (histogram buckets: 1 %)
    cycles = sum(c.value for name, c in on.metrics.counters.items() if name.endswith(".go.gc.cycles"))
    pauses = sum(h.count for name, h in on.metrics.histograms.items() if name.endswith("stw_mark_termination_s"))
    assert cycles > 100 and pauses == cycles
    sojourn = on.metrics.histograms["requests.sojourn_s"]
    assert sojourn.quantile(0.5) == pytest.approx(base.mean, rel=0.02)
    assert sojourn.quantile(0.999) > 2 * base.mean
    assert on.metrics.histograms["requests.cpu_s"].mean == pytest.approx(base.mean, rel=1e-6)


def test_unloaded_instances_leave_no_runtime_behind():
    # 0.5 requests/s, instances kept 1 s: about 60 % of requests start a new instance (P(gap > 1 s) = exp(-0.5)),
    # over 2 hours several thousand instances. Their runtimes (Go, with a collector) take at most as many slots,
    # hence metric names and random streams, as instances were alive at once, and none outlives its instance
    made: list[weakref.ref] = []
    start = InstanceRuntimes.start

    def recording(self: InstanceRuntimes):
        slot, runtime = start(self)
        made.append(weakref.ref(runtime))
        return slot, runtime

    InstanceRuntimes.start = recording  # type: ignore[method-assign]
    try:
        env, model = run(scenario(duration=7200, runtime="go", workload={"rate": 0.5}, keep_alive=1.0,
                                  handler={"cpu": 0.01, "alloc": "1MiB"}))
    finally:
        InstanceRuntimes.start = start  # type: ignore[method-assign]
    pool = model.pools["f"]
    assert pool.runtimes is not None
    assert len(made) > 2000 and pool.created == len(made)
    assert pool.runtimes.slots <= 10
    assert len([name for name in env.metrics.counters if name.endswith(".go.gc.cycles")]) == pool.runtimes.slots
    gc.collect()
    alive = [ref for ref in made if ref() is not None]
    assert len(alive) == len(pool.instances)
    assert {id(ref()) for ref in alive} == {id(instance.runtime) for instance in pool.instances}


def test_the_distribution_path_is_unchanged_without_a_handler():
    data = scenario(service={"dist": "exp", "mean": 0.01})
    del data["functions"]["f"]["handler"]  # type: ignore[index]
    env, model = run(data)
    assert model.pools["f"].runtimes is None
    assert "requests.cpu_s" not in env.metrics.histograms
    assert not [name for name in env.metrics.gauges if name.startswith("instance.")]


@pytest.mark.parametrize(("function", "message"), [
    ({"handler": {"cpu": -0.01}}, "functions.f.handler.cpu: "),
    ({"handler": {"cpu": {"dist": "exp", "mean": -1}}}, "functions.f.handler.cpu"),
    ({"runtime": "go", "handler": {"cpu": 0.01, "gomaxprocs": 0}},
     "functions.f.handler.gomaxprocs: Input should be greater than or equal to 1 (got 0)"),
    ({"handler": {"cpu": 0.01, "alloc": "1MiB"}},
     "functions.f: handler.alloc: a Go setting (got runtime 'node': one event loop, no collector modelled)"),
    ({"handler": {"cpu": 0.01, "gc": {"gogc": 50}}}, "handler.gc: a Go setting"),
    ({"handler": {"cpu": 0.01}, "service": 0.01},
     "service: give a request's time in the handler (service) or its work on the runtime (handler), one of them "
     "(got both)"),
    ({"handler": None}, "service: give a request's time in the handler (service) or its work on the runtime"),
    ({"handler": {"cpu": 0.01}, "cpu_scaling": True}, "cpu_scaling: true stretches service"),
    ({"handler": {"cpu": 0.01}, "scaling": "knative"}, "not built for scaling knative (got scaling 'knative')"),
    ({"handler": {"cpu": 0.01, "spin": 1}}, "functions.f.handler.spin: unknown key"),
])
def test_bad_handler_names_the_field_and_the_value(function: dict[str, object], message: str):
    data = scenario(**function)
    with pytest.raises(ScenarioError, match=re.escape(message)):
        load_scenario(data)


def test_a_generated_function_cannot_take_a_handler():
    data = {"model": "faas", "duration": 60, "azure": {"count": 2, "template": {"handler": {"cpu": 0.01}}}}
    with pytest.raises(ScenarioError, match=re.escape("azure.template.handler: generated functions run their drawn "
                                                      "service time")):
        load_scenario(data)


def test_gomaxprocs_is_the_vcpus_the_instance_sees():
    def function(memory: str, **handler: object) -> object:
        data = scenario(runtime="go", memory=memory, handler={"cpu": 0.01, **handler})
        return load_scenario(data).functions["f"]  # type: ignore[attr-defined]

    assert function("128MiB").gomaxprocs == 1 and function("128MiB").cpu_stretch == pytest.approx(1769 / 128)
    assert function("1769MiB").gomaxprocs == 1 and function("1769MiB").cpu_stretch == 1.0
    assert function("1770MiB").gomaxprocs == 2
    assert function("3538MiB").gomaxprocs == 2 and function("3538MiB").cpu_stretch == 1.0
    assert function("10GiB").gomaxprocs == 6
    assert function("2653.5MiB").cpu_stretch == pytest.approx(2 / 1.5)  # 1.5 vCPUs over 2 Ps
    assert function("128MiB", gomaxprocs=2).cpu_stretch == pytest.approx(2 * 1769 / 128)


def test_a_slot_reused_starts_its_runtime_as_new_and_frees_its_name():
    # slot 0's runtime goes, its gauges drop to 0 (nothing is loaded), and the next instance takes slot 0 back: a
    # new runtime whose gauges start where a new runtime's do (its live heap), its streams going on
    config = load_scenario(scenario(runtime="go", handler={"cpu": 0.01, "gc": {"live_heap": "8MiB"}}))
    env = Environment(seed=1, scenario=config)
    runtimes = InstanceRuntimes(env, "f", config.functions["f"], config.functions["f"].handler, [])
    slot, first = runtimes.start()
    live = env.metrics.gauges["instance.f-0.go.gc.heap_live_bytes"]
    assert (slot, first.name, live.level) == (0, "instance.f-0.go", 8 * 2**20)
    assert runtimes.start()[0] == 1
    runtimes.stop(0)
    assert live.level == 0
    slot, second = runtimes.start()
    assert (slot, second.name, live.level) == (0, "instance.f-0.go", 8 * 2**20) and second is not first
    assert runtimes.slots == 2


def test_in_gvisor_the_handler_pays_each_system_call_as_cpu_on_its_share():
    # 1,000 system calls a request on gVisor's ptrace platform: 6,187 ns each more than native (Ant's getpid
    # table), 6.187 ms of CPU added to the handler's 10 ms, both on half a vCPU
    env, _ = run(scenario(memory="884.5MiB", syscalls_per_request=1000, provisioned=1,
                          cold_start={"sandbox": "gvisor", "gvisor_platform": "ptrace"}))
    cpu = 0.010 + 1000 * GVISOR_SYSCALL_S["ptrace"]
    assert env.metrics.histograms["requests.cpu_s"].mean == pytest.approx(cpu, rel=1e-9)
    assert env.metrics.histograms["requests.sojourn_s"].quantile(0.5) == pytest.approx(2 * cpu, rel=0.01)
