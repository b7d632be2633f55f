"""Fits of the machine harness's data (``machine_*.csv``) into ``machine.*`` parameter sets.

* ``machine.work_stretch``: wall time of the validation server's burn loop over
  the CPU time it was calibrated to (``machine_work.csv``): how much longer
  than its CPU time fixed work takes on this machine (the burn's calibration
  error, interrupts, a virtual CPU's steal). A distribution fitted like every
  other (:func:`calibration.distfit.fit_distribution`).
* ``machine.<runtime>_wake_s_vs_idle`` (``go``, ``node``): the round trip of
  an empty request to that runtime's validation server over its median on a
  server that was busy less than :data:`HOT_IDLE_S` before, grouped by how
  long the server had been idle (``machine_wake.csv``): a halted CPU and
  parked threads on both sides of the loopback take longer to wake the longer
  they slept. Kind ``binned``: per range of idle time, the
  delays as :data:`WAKE_QUANTILES` evenly spaced quantiles (an empirical
  distribution; the delay has no parametric family we could defend, and its
  tail is what p99 needs).
* ``machine.sysmon_off_s`` and ``machine.sysmon_late_s``: a goroutine spinning
  on one CPU beside a freshly woken sysmon (``machine_sysmon.csv``), over
  sysmon's first :data:`~models.runtime.go.detailed.sysmon.SYSMON_IDLE_ROUNDS` rounds,
  its 20 µs ones: how long each round kept the goroutine off its CPU, and how
  long the goroutine ran between two rounds less the 20 µs sysmon asked to
  sleep. An interrupt in that window (about one per ms against twelve
  rounds) counts as a round, except that a run shorter than sysmon's sleep
  (about 1 %) is an interrupt beside a round and left out of the second.
  Both as empirical distributions of evenly spaced quantiles
  (:func:`~calibration.distfit.fit_empirical`): a spin either polls regularly
  or hardly gets the CPU, and a gap cannot outlast the spin, so the families
  of :func:`~calibration.distfit.fit_distribution` put a tail where there is
  none (a lognormal mixture's mean of ``machine.sysmon_late_s`` was 1.7 times
  the sample's).
"""

from __future__ import annotations

import math

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from calibration.dataset import Dataset, seed_of
from calibration.distfit import fit_constant, fit_distribution, fit_empirical, fit_linear
from models.runtime.go.constants import SYSMON_IDLE_ROUNDS, SYSMON_MIN_DELAY_S

HOT_IDLE_S = 1e-4
"""Requests that find the server idle for less than this are the reference (a hot path, no wake-up)."""
WAKE_EDGES_S = (0.0, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
"""Ranges of idle time of ``machine.<runtime>_wake_s_vs_idle`` (s); the last range is open."""
WAKE_QUANTILES = 200
WAKE_MIN_SAMPLES = 30
"""A range with fewer requests than this takes the distribution of the range below it."""
MACHINE_PLACEMENT_WORK = "0.5 ms of CPU per request, no allocation"
"""What the placement runs' server does per request (``calibration.measure_machine.MACHINE_PLACEMENT_CPU_S``)."""


def machine_observations(name: str, data: Dataset) -> pd.DataFrame:
    """The samples behind machine parameter set ``name`` (see :func:`calibration.fit.observations`)."""
    if name == "machine.work_stretch":
        frame = data.frame("machine_work.csv")
        return pd.DataFrame({"x": frame["idle_s"].to_numpy(), "y": (frame["wall_s"] / frame["burn_s"]).to_numpy()})
    if name == "machine.work_stretch_vs_cpu":
        frame = data.frame("machine_work_cpu.csv")
        return pd.DataFrame({"x": frame["burn_s"].to_numpy(), "y": (frame["wall_s"] / frame["burn_s"]).to_numpy(),
                             "group": (frame["burn_s"] * 1e3).round(2).astype(str).to_numpy() + " ms"})
    if name.endswith("_wake_s_vs_idle"):
        runtime = name.removeprefix("machine.").removesuffix("_wake_s_vs_idle")
        frame = _wake_frame(data, runtime)
        delay = np.maximum(frame["latency_s"].to_numpy() - float(_hot(frame, runtime).median()), 0.0)
        return pd.DataFrame({"x": frame["idle_s"].to_numpy(), "y": delay,
                             "group": frame["rate_rps"].astype(str).to_numpy() + " req/s"})
    if name.startswith("machine.sysmon_"):
        return sysmon_observations(name, data)
    return placement_observations(name, data)


def sysmon_observations(name: str, data: Dataset) -> pd.DataFrame:
    """Per spin of ``machine_sysmon.csv``, its first :data:`SYSMON_IDLE_ROUNDS` times off the CPU: their
    lengths (``machine.sysmon_off_s``) or the run between two of them less sysmon's 20 µs sleep
    (``machine.sysmon_late_s``; runs shorter than that sleep are an interrupt beside a round, left out)."""
    frame = data.frame("machine_sysmon.csv").sort_values(["sample", "at_s"])
    frame = frame[frame.groupby("sample").cumcount() < SYSMON_IDLE_ROUNDS]
    if name == "machine.sysmon_off_s":
        return pd.DataFrame({"y": frame["off_s"].to_numpy()})
    ran = (frame.groupby("sample")["at_s"].shift(-1) - frame["at_s"] - frame["off_s"]).dropna()
    return pd.DataFrame({"y": (ran[ran > SYSMON_MIN_DELAY_S] - SYSMON_MIN_DELAY_S).to_numpy()})


def _wake_frame(data: Dataset, runtime: str) -> pd.DataFrame:
    """``runtime``'s requests of ``machine_wake.csv`` that have an idle time (all but each run's first)."""
    frame = data.frame("machine_wake.csv").dropna(subset=["idle_s"])
    return frame[frame["runtime"] == runtime]


def _hot(frame: pd.DataFrame, runtime: str) -> pd.Series:
    """The reference round trips: requests that found the server idle for less than :data:`HOT_IDLE_S`."""
    hot = frame.loc[frame["idle_s"] < HOT_IDLE_S, "latency_s"]
    if hot.size < WAKE_MIN_SAMPLES:
        raise ValueError(f"machine_wake.csv: {hot.size} requests found the {runtime} server idle for less than "
                         f"{HOT_IDLE_S * 1e6:.0f} µs, too few for a reference (need {WAKE_MIN_SAMPLES})")
    return hot


def _idle_ranges(points: pd.DataFrame) -> Iterator[tuple[float, float | None, pd.Series]]:
    """Per range of :data:`WAKE_EDGES_S`: (its start, its end or None for the open last one, the ``y`` in it)."""
    edges = [*WAKE_EDGES_S, np.inf]
    for low, high in zip(edges[:-1], edges[1:]):
        yield low, None if np.isinf(high) else high, points.loc[(points["x"] >= low) & (points["x"] < high), "y"]


def fit_machine_work(data: Dataset) -> list[dict[str, Any]]:
    name = "machine.work_stretch"
    points = machine_observations(name, data)
    frame = data.frame("machine_work.csv")
    result = fit_distribution(points["y"].to_numpy(), np.random.default_rng(seed_of(name)))
    result["fit"].update({
        "bootstrap_seed": seed_of(name),
        "samples": "burn loops after idle gaps drawn log-uniformly up to the harness's longest (a quarter back "
                   "to back), one thread locked to CPU 0",
        "mean_ratio": float(points["y"].mean()),
        "cpu_over_burn_mean": float((frame["cpu_s"] / frame["burn_s"]).mean()),
        "mean_ratio_by_idle": [{"idle_from_s": low, "idle_to_s": high, "n": int(y.size), "mean": float(y.mean()),
                                "p99": float(y.quantile(0.99))} for low, high, y in _idle_ranges(points) if y.size],
    })
    return [{**data.header(name, "Wall time of fixed CPU work (the validation server's burn loop, calibrated "
                           "against the thread CPU clock to take 1 ms) over that 1 ms: what a CPU demand costs "
                           "in wall time on this machine", "1", "machine_work.csv", "distribution"), **result}]


STRETCH_QUANTILES = 200
"""Evenly spaced quantiles kept of each burn length's stretch."""


def fit_machine_work_cpu(data: Dataset) -> list[dict[str, Any]]:
    """``machine.work_stretch_vs_cpu``: the stretch (wall over burn) of each burn length, binned by CPU; the
    edges are the geometric midpoints between the burns measured, so that a request's CPU draws the stretch of
    the burn nearest it in ratio."""
    name = "machine.work_stretch_vs_cpu"
    points = machine_observations(name, data)
    burns = sorted(points["x"].unique())
    edges = [0.0] + [math.sqrt(a * b) for a, b in zip(burns, burns[1:], strict=False)]
    distributions, bins = [], []
    for burn in burns:
        y = points.loc[points["x"] == burn, "y"].to_numpy()
        fitted = fit_empirical(y, STRETCH_QUANTILES)
        distributions.append(fitted["distribution"])
        bins.append({"burn_s": float(burn), "n": int(y.size), "mean": float(y.mean()),
                     "median": fitted["fit"]["median"], "p99": fitted["fit"]["p99"],
                     "ks_statistic": fitted["goodness_of_fit"]["statistic"]})
    return [{
        **data.header(name, "Wall time of fixed CPU work (the validation server's burn loop, calibrated against the "
                      "thread CPU clock) over its CPU time, by the work's length (0.3, 1 and 3 ms): what a CPU "
                      "demand of that size costs in wall time on this machine", "1", "machine_work_cpu.csv",
                      "binned"),
        "x": "cpu_s", "edges": edges, "distributions": distributions,
        "fit": {"method": f"per burn length, {STRETCH_QUANTILES} evenly spaced quantiles of the stretch (an "
                          "empirical distribution); edges at the geometric midpoints between burns",
                "n": int(len(points)), "bins": bins},
        "goodness_of_fit": {"test": "Kolmogorov-Smirnov distance between each burn's stretch and its quantiles",
                            "statistic": max(b["ks_statistic"] for b in bins)},
    }]


def fit_machine_wake(data: Dataset) -> list[dict[str, Any]]:
    runtimes = sorted(data.frame("machine_wake.csv")["runtime"].unique())
    return [_fit_wake(data, runtime) for runtime in runtimes]


SERVERS = {"go": "Go valserver, GOMAXPROCS 1", "node": "Node.js valserver.js"}


def _fit_wake(data: Dataset, runtime: str) -> dict[str, Any]:
    name = f"machine.{runtime}_wake_s_vs_idle"
    points = machine_observations(name, data)
    distributions, bins = [], []
    for low, high, in_range in _idle_ranges(points):
        y = in_range.to_numpy()
        row: dict[str, Any] = {"idle_from_s": low, "idle_to_s": high, "n": int(y.size)}
        if y.size >= WAKE_MIN_SAMPLES:
            fitted = fit_empirical(y, WAKE_QUANTILES)
            row.update({"median_s": fitted["fit"]["median"], "p90_s": fitted["fit"]["p90"],
                        "p99_s": fitted["fit"]["p99"], "ks_statistic": fitted["goodness_of_fit"]["statistic"]})
            distributions.append(fitted["distribution"])
        elif distributions:
            row["note"] = f"fewer than {WAKE_MIN_SAMPLES} requests: the range below's distribution"
            distributions.append(distributions[-1])
        else:
            raise ValueError(f"machine_wake.csv: {y.size} requests with idle time in [{low}, {high}) s, "
                             f"need {WAKE_MIN_SAMPLES}")
        bins.append(row)
    hot = _hot(_wake_frame(data, runtime), runtime)
    return {
        **data.header(name, "Extra round-trip time of a request that finds the server idle, by how long it had "
                      f"been idle: an empty HTTP/1.1 request on a reused loopback connection ({SERVERS[runtime]} "
                      "on CPU 0; open-loop valload on CPU 1) less the median round trip of requests that found "
                      f"it idle for less than {HOT_IDLE_S * 1e6:.0f} µs, floored at 0", "s",
                      "machine_wake.csv", "binned"),
        "x": "idle_s",
        "edges": [float(edge) for edge in WAKE_EDGES_S],
        "distributions": distributions,
        "fit": {"method": f"per range of idle time, {WAKE_QUANTILES} evenly spaced quantiles of the delays "
                          "(an empirical distribution)", "n": int(len(points)),
                "reference_median_s": float(hot.median()), "reference_n": int(hot.size), "bins": bins},
        "goodness_of_fit": {"test": "Kolmogorov-Smirnov distance between each range's delays and its quantiles",
                            "statistic": max(row.get("ks_statistic", 0.0) for row in bins)},
    }



SLICE_NOISE_S = 1e-4
"""Off-CPU gaps of a spinning thread shorter than this are interrupts, not the other thread's turn."""
PLACEMENT_WARMUP_S = 0.5
"""Requests of the placement runs scheduled before this (s) are left out (connections and threads warming up)."""
LOAD_WAIT_S = 1e-4
"""A send of the load generator later than this after its scheduled time waited for a core."""
LOAD_MIN_RATE = 300.0
"""The load generator's CPU is fitted as a line over its runs at this rate (requests/s) or more: below it the
cost of waking from idle dominates (about 0.8 ms of CPU a request at 3-10 requests/s), and the validation
experiments send 350-1600 requests/s."""


def _placement(data: Dataset) -> pd.DataFrame:
    """The placement runs' requests after the warm-up, with handler start and end (s, Unix) and the CPU each
    handler was on at any moment (``cpu_at``, one CPU change at most is seen)."""
    frame = data.frame("machine_placement.csv")
    frame = frame[frame["scheduled_s"] >= PLACEMENT_WARMUP_S].copy()
    frame["start"] = frame["start_unix_ns"] * 1e-9
    frame["end"] = frame["start"] + frame["wall_s"]
    frame["scheduled_unix"] = frame["sent_unix_ns"] * 1e-9 - (frame["sent_s"] - frame["scheduled_s"])
    frame["lag_s"] = frame["sent_s"] - frame["scheduled_s"]
    return frame.sort_values(["rate_rps", "start"]).reset_index(drop=True)


def _cpu_at(row: pd.Series, t: float) -> int:
    moved = row["moved_s"]
    return int(row["cpu_start"] if np.isnan(moved) or t < row["start"] + moved else row["cpu_end"])


def _beside_one(frame: pd.DataFrame) -> Iterator[tuple[pd.Series, pd.Series]]:
    """Pairs (handler, the one other handler running when it started), for handlers that started beside
    exactly one other."""
    for _rate, run in frame.groupby("rate_rps"):
        starts, ends = run["start"].to_numpy(), run["end"].to_numpy()
        rows = [row for _, row in run.iterrows()]
        for i, row in enumerate(rows):
            if row["others"] != 1:
                continue
            running = [j for j in range(max(i - 16, 0), i) if starts[j] <= starts[i] < ends[j]]
            if len(running) == 1:
                yield row, rows[running[0]]


def _coplaced(data: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per handler that started beside exactly one other: (on the other's CPU: 1/0; for those on it, how long
    the two shared it until one moved or ended; whether one moved)."""
    same, shared, moved = [], [], []
    for row, other in _beside_one(_placement(data)):
        together = _cpu_at(other, row["start"]) == int(row["cpu_start"])
        same.append(float(together))
        if together:
            moves = [r["start"] + r["moved_s"] for r in (row, other)
                     if not np.isnan(r["moved_s"]) and r["start"] + r["moved_s"] > row["start"]]
            until = min(row["end"], other["end"])
            first_move = min(moves, default=np.inf)
            shared.append(min(first_move, until) - row["start"])
            moved.append(first_move < until)
    return np.array(same), np.array(shared), np.array(moved, dtype=bool)


def _load_waits(data: Dataset) -> np.ndarray:
    """Per send scheduled while exactly one handler was running: whether it was later than :data:`LOAD_WAIT_S`."""
    waits = []
    for _rate, run in _placement(data).groupby("rate_rps"):
        starts, ends = run["start"].to_numpy(), run["end"].to_numpy()
        for at, lag in zip(run["scheduled_unix"].to_numpy(), run["lag_s"].to_numpy()):
            if int(((starts <= at) & (ends > at)).sum()) == 1:
                waits.append(float(lag > LOAD_WAIT_S))
    return np.array(waits)


def placement_observations(name: str, data: Dataset) -> pd.DataFrame:
    """The samples behind the placement parameter sets (see :func:`fit_machine_placement`)."""
    if name == "machine.slice_s":
        frame = data.frame("machine_slices.csv")
        return pd.DataFrame({"y": frame.loc[frame["off_s"] > SLICE_NOISE_S, "off_s"].to_numpy()})
    if name == "machine.coplace_p":
        return pd.DataFrame({"y": _coplaced(data)[0]})
    if name == "machine.migrate_s":
        _same, shared, moved = _coplaced(data)
        return pd.DataFrame({"y": shared, "group": np.where(moved, "one moved", "one ended first (censored)")})
    if name == "machine.load_coplace_p":
        return pd.DataFrame({"y": _load_waits(data)})
    if name == "machine.load_cpu_vs_rate":
        frame = data.frame("machine_load_cpu.csv")
        frame = frame[frame["rate_rps"] >= LOAD_MIN_RATE]
        return pd.DataFrame({"x": (frame["requests"] / frame["wall_s"]).to_numpy(),
                             "y": (frame["cpu_s"] / frame["wall_s"]).to_numpy(), "group": frame["part"].to_numpy()})
    raise KeyError(f"no observations known for parameter set {name!r}")


def fit_machine_load_cpu(data: Dataset) -> list[dict[str, Any]]:
    name = "machine.load_cpu_vs_rate"
    points = placement_observations(name, data)
    line = fit_linear(points["x"].to_numpy(), points["y"].to_numpy())
    line["fit"]["samples"] = ("per open-loop run of the machine harness (wake-up and placement runs) at "
                              f"{LOAD_MIN_RATE:.0f} requests/s or more: the load generator's user + system CPU "
                              "(getrusage) over its wall time, against the requests it sent per second")
    return [{**data.header(name, "CPU the load generator (valload: open loop, HTTP/1.1 keep-alive, a dispatcher "
                           "sleeping until each send) uses per second, in cores, against its request rate: a "
                           "request costs the slope, and the intercept is spent whatever the rate",
                           "cores", "machine_load_cpu.csv", "linear"),
             "x": "rate_rps", "y": "load_cpu_cores", **line}]


def fit_machine_slices(data: Dataset) -> list[dict[str, Any]]:
    name = "machine.slice_s"
    result = fit_constant(placement_observations(name, data)["y"].to_numpy())
    result["fit"]["samples"] = (f"two threads spinning on one CPU: each time one was kept off it for more than "
                                f"{SLICE_NOISE_S * 1e6:.0f} µs (shorter gaps are interrupts)")
    return [{**data.header(name, "How long the kernel lets a CPU-bound thread run before another thread waiting "
                           "on its CPU gets it: the time a spinning thread is kept off its CPU by another one",
                           "s", "machine_slices.csv", "constant"), **result}]


def fit_machine_sysmon(data: Dataset) -> list[dict[str, Any]]:
    """What the Go runtime's sysmon, polling every 20 µs, takes from a goroutine on its CPU, and how often."""
    samples = ("a goroutine spinning 5 ms on one CPU (GOMAXPROCS 1, taskset) after 30 ms idle with no Go timer "
               f"pending, which sysmon spends in its deep sleep: per spin, its first {SYSMON_IDLE_ROUNDS} times "
               "off the CPU for more than 3 µs (sysmon's rounds at 20 µs, and any interrupt among them)")
    out = []
    for name, description in (
        ("machine.sysmon_off_s", "Time a goroutine running on sysmon's CPU is kept off it at each round of "
         "sysmon polling every 20 µs (the switch to sysmon, its round, its usleep and the switch back)"),
        ("machine.sysmon_late_s", "How much later than the 20 µs asked sysmon's next round takes the CPU, "
         "counted from the end of its previous round: the time the goroutine on its CPU runs between two "
         "rounds less 20 µs (the kernel's timer slack, and the wake-up)"),
    ):
        result = fit_empirical(sysmon_observations(name, data)["y"].to_numpy())
        result["fit"]["samples"] = samples
        out.append({**data.header(name, description, "s", "machine_sysmon.csv", "distribution"), **result})
    return out


def fit_machine_placement(data: Dataset) -> list[dict[str, Any]]:
    """Where Linux places the threads of a two-core Go server and of its load generator on the same cores."""
    same, shared, moved = _coplaced(data)
    if not moved.any():
        raise ValueError("machine_placement.csv: no co-placed handlers moved to another CPU; cannot fit "
                         "machine.migrate_s")
    placed = fit_constant(same)
    placed["fit"]["samples"] = ("handlers that started while exactly one other handler was running: 1 if on "
                                "that handler's CPU at that moment (getcpu), else 0")
    load = fit_constant(placement_observations("machine.load_coplace_p", data)["y"].to_numpy())
    load["fit"]["samples"] = (f"requests scheduled while exactly one handler was running: 1 if the load "
                              f"generator sent it more than {LOAD_WAIT_S * 1e6:.0f} µs late, else 0")
    mean_shared = float(shared.sum() / moved.sum())
    server = (f"Go valserver at GOMAXPROCS 2 ({MACHINE_PLACEMENT_WORK}) and valload, both on CPUs 0 and 1, "
              "open loop")
    return [
        {**data.header("machine.coplace_p", "Probability that a thread of the server that wakes up lands on the "
                       "CPU of its other running thread though the other CPU has none: the share of handlers "
                       f"starting beside exactly one running handler on its CPU ({server})", "1",
                       "machine_placement.csv", "constant"), **placed},
        {**data.header("machine.migrate_s", "Mean time two server threads on one CPU stay there before the "
                       "load balancer moves one (an exponential time, the only parameter): time shared over "
                       f"moves seen ({server})", "s", "machine_placement.csv", "constant"),
         "value": mean_shared,
         "fit": {"method": "maximum likelihood of an exponential time with right censoring: total time shared "
                           "over moves (a pair ends, uncensored, when one handler is seen on another CPU, "
                           "censored when one of them ends first)", "n": int(shared.size),
                 "moves": int(moved.sum()), "time_shared_s": float(shared.sum())},
         "goodness_of_fit": {"ci95": [2 * float(shared.sum()) / float(scipy_stats.chi2.ppf(q, 2 * int(moved.sum())))
                                      for q in (0.975, 0.025)],
                             "relative_half_width": float(1.96 / np.sqrt(moved.sum()))}},
        {**data.header("machine.load_coplace_p", "Probability that a thread of the load generator that wakes up "
                       "waits for a CPU taken by a server thread though the other CPU is free: the share of "
                       f"sends scheduled while one handler was running that left late ({server})", "1",
                       "machine_placement.csv", "constant"), **load},
    ]

