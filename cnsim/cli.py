"""The ``cnsim`` command line: run, sweep, plot and list scenarios, calibrate, validate.

The top layer: the engine (:mod:`sim`) does the running, sweeping and
plotting, the :mod:`calibration` package the measuring, fitting and
validating; this module parses arguments and prints.

Every command reports bad input as one line per problem, naming the field and
the value, and exits with status 2; nothing is printed as a traceback (set
CNSIM_DEBUG=1 to see one). A failure that is not the input's (a model that
raises or stands still mid-run, a bug in cnsim) is an internal error: one line
saying so, the traceback written to a file in the system's temporary folder
(``cnsim-crash-*.txt``, with the command and the results of the replications
that finished before it), a request to report it, and exit status 70
(``EX_SOFTWARE`` of sysexits.h).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO


from cnsim.format import render_table, show_scenario
from sim.core import ModelError
from sim.scenario import ScenarioBase, ScenarioError, builtin_scenarios, load_scenario, model_kinds

EXIT_USAGE = 2
EXIT_INTERNAL = 70
"""A bug, not bad input: ``EX_SOFTWARE`` of sysexits.h."""
EXIT_INTERRUPTED = 130
INTERRUPTED = {
    "run": "interrupted; nothing is kept (cnsim run prints its estimates only once every replication is done)",
    "sweep": "interrupted; finished runs are kept and a rerun resumes from them",
}
"""What Ctrl-C leaves, by command (the others: just that they were interrupted)."""

DESCRIPTION = """\
cnsim simulates cloud-native services (queues, Go and Node.js runtimes, connection pools)
as discrete-event models on SimPy, with every default calibrated or cited.

A SCENARIO is the name of a built-in scenario (see `cnsim scenarios`) or a
YAML/TOML/JSON file. Any of its keys can be overridden with --set key=value,
where value is read as YAML: --set servers=4, --set arrival_rate=900/s,
--set 'service={dist: lognormal, median: 2ms, p99: 9ms}'.
"""

EPILOG = """\
examples:
  cnsim run mmc --set arrival_rate=0.5 --replications 10
  cnsim run tandem --json > tandem.json
  cnsim sweep mmc --grid arrival_rate=0.5,0.7,0.8,0.9 --replications 5 --jobs 2 --out sweeps/mmc
  cnsim plot sweeps/mmc
  cnsim scenarios --show mmc
"""


def _add_scenario_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", metavar="SCENARIO", help="built-in scenario name or scenario file")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a scenario key (dotted for nested keys); repeatable",
    )
    parser.add_argument("--seed", type=int, help="root seed (default: the scenario's)")
    parser.add_argument("--replications", "-r", type=int, help="independent replications (default: the scenario's)")


def _scenario_from_args(args: argparse.Namespace):
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.replications is not None:
        overrides.append(f"replications={args.replications}")
    scenario = load_scenario(args.scenario, overrides)
    warn_if_unstable(scenario)
    return scenario


def warn_if_unstable(scenario: ScenarioBase) -> None:
    """One line on stderr when the scenario's offered load is 1 or more; the run goes ahead (a what-if)."""
    rho = scenario.offered_load
    if rho is not None and rho >= 1:
        sys.stderr.write(
            f"cnsim: warning: offered load ρ = {rho:.3g} ≥ 1 ({scenario.model}): the system is unstable; its "
            "queues, latencies and their statistics grow with the run's length instead of settling\n"
        )


def cmd_run(args: argparse.Namespace, out: TextIO) -> int:
    from tqdm import tqdm

    from sim.run import run_replications

    if not 0 < args.confidence < 1:
        raise ValueError(f"--confidence: must be between 0 and 1, exclusive (got {args.confidence})")
    _check_jobs(args.jobs)
    scenario = _scenario_from_args(args)
    with tqdm(total=scenario.replications, desc="replications", unit="rep", disable=None, file=sys.stderr) as bar:
        outcome = run_replications(scenario, confidence=args.confidence, on_done=lambda _r: bar.update(),
                                   jobs=args.jobs)
    if args.json:
        json.dump(_finite_or_null(outcome.to_json()), out, indent=2, allow_nan=False)
        out.write("\n")
        return 0
    out.write(render_table(outcome, args.all))
    return 0


def _check_jobs(jobs: int) -> None:
    """``--jobs`` between 1 and four worker processes per core, or bad input naming it."""
    most = (os.cpu_count() or 1) * 4
    if not 1 <= jobs <= most:
        raise ValueError(f"--jobs: must be between 1 and {most} (got {jobs})")


def _finite_or_null(data: object) -> object:
    """NaN (an undefined statistic, such as a CI from one replication) as JSON null."""
    if isinstance(data, dict):
        return {key: _finite_or_null(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_finite_or_null(value) for value in data]
    if isinstance(data, float) and not math.isfinite(data):
        return None
    return data


def cmd_sweep(args: argparse.Namespace, out: TextIO) -> int:
    from sim.sweep import expand_grid, latin_hypercube, parse_grid, run_sweep

    if not args.grid and not args.lhs:
        raise ScenarioError("sweep: give at least one --grid key=v1,v2,... or --lhs key=low:high")
    points = expand_grid(parse_grid(args.grid)) if args.grid else [{}]
    if args.lhs:
        ranges = {}
        for item in args.lhs:
            key, _, bounds = item.partition("=")
            low, sep, high = bounds.partition(":")
            try:
                ranges[key.strip()] = (float(low), float(high))
            except ValueError:
                raise ScenarioError(
                    f"--lhs {item!r} must look like key=low:high (for example arrival_rate=0.1:0.9)") from None
            if not sep:
                raise ScenarioError(f"--lhs {item!r} must look like key=low:high")
        samples = latin_hypercube(ranges, args.samples, seed=args.lhs_seed)
        points = [{**point, **sample} for point in points for sample in samples]
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    with _terminate_as_interrupt():
        report = run_sweep(
            args.scenario, points, overrides=overrides, replications=args.replications, jobs=args.jobs,
            out_dir=Path(args.out), progress=not args.no_progress, executor=args.executor,
            scheduler=args.scheduler,
        )
    out.write(
        f"{report.total} runs: {report.ran} ran, {report.skipped} already done, {len(report.failed)} failed; "
        f"results in {report.out_dir}\n"
    )
    for key, reason in report.broken:
        out.write(f"  redone {key}: its run file was broken ({reason}); set aside as failed/{key}.parquet\n")
    for key, message in report.failed:
        out.write(f"  failed {key}: {message}\n")
    return 1 if report.failed else 0


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a batch system's time limit) stops the block as Ctrl-C does, instead of
    ending the process where it stands: workers are stopped, finished runs kept, the exit status 130.
    Only in the main thread (the only one Python delivers signals to); the old handler is restored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def cmd_plot(args: argparse.Namespace, out: TextIO) -> int:
    from sim.plots import plot_sweep

    for path in plot_sweep(Path(args.directory), metric=args.metric):
        out.write(f"{path}\n")
    return 0


def cmd_scenarios(args: argparse.Namespace, out: TextIO) -> int:
    if args.kinds:
        for name, entry in sorted(model_kinds().items()):
            out.write(f"{name:24} {entry.value}\n")
        return 0
    if args.show:
        out.write(show_scenario(load_scenario(args.show)))
        return 0
    scenarios = builtin_scenarios()
    width = max(map(len, scenarios), default=0)
    for name, description in scenarios.items():
        out.write(f"{name.ljust(width)}  {description}\n")
    return 0


def cmd_calibrate(args: argparse.Namespace, out: TextIO) -> int:
    """`cnsim calibrate measure | fit | report`: the calibration package does the work, this prints."""
    if args.action == "measure":
        from calibration.measure import DATA_ROOT, measure

        try:
            folder = measure(Path(args.out) if args.out else DATA_ROOT, host=args.host, quick=args.quick,
                             only=args.only, progress=lambda message: print(f"cnsim: {message}", file=sys.stderr))
        except RuntimeError as error:  # a missing toolchain, a failed build, a harness over its time bound
            for line in str(error).strip().splitlines():
                sys.stderr.write(f"cnsim: error: {line}\n")
            return 1
        out.write(f"raw data and meta.json in {folder}\n")
        return 0
    if args.action == "fit":
        from calibration.dataset import PARAMS_DIR, default_data_dir
        from calibration.fit import fit_all, write_params
        from calibration.report import describe_fit, describe_parameters

        params = fit_all(Path(args.data) if args.data else default_data_dir())
        for entry, path in zip(params, write_params(params, Path(args.out) if args.out else PARAMS_DIR)):
            out.write(f"{path}: {describe_parameters(entry)}; {describe_fit(entry)}\n")
        return 0
    from calibration.dataset import PARAMS_DIR
    from calibration.report import format_table, load_all, table_rows, write_charts

    entries = load_all(Path(args.params) if args.params else PARAMS_DIR)
    if not entries:
        raise ValueError(f"--params: no parameter sets in {args.params or PARAMS_DIR}")
    out.write(format_table(table_rows(entries)))
    if not args.no_charts:
        charts = write_charts(entries, Path(args.out), Path(args.data) if args.data else None)
        out.write(f"{len(charts)} chart files in {args.out}\n")
    return 0


def _add_calibrate(commands) -> None:
    calibrate = commands.add_parser(
        "calibrate", help="measure Go, Node.js and this machine here, fit parameter sets, report the fits",
        description="measure: build and run the Go, Node.js, machine, sysmon and proxy harnesses "
        "(calibration/harness/; the proxies: a real Envoy and a Go reverse proxy as sidecars) and "
        "write raw CSV and "
        "meta.json to calibration/data/<host>/. fit: fit every parameter set the data support into "
        "calibration/params/*.json. report: print a table of the parameter sets and chart each fit over its data.",
        epilog="example: cnsim calibrate measure --quick && cnsim calibrate fit && cnsim calibrate report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = calibrate.add_subparsers(dest="action", metavar="ACTION", required=True)
    measure = actions.add_parser("measure", help="run the Go and Node.js harnesses and write raw data")
    measure.add_argument("--quick", action="store_true",
                         help="small heaps and short runs (about 35 s once the harnesses are built)")
    measure.add_argument("--only", action="append", metavar="NAME",
                         help="run only this harness (gc, alloc, gc_work, goroutines, channels, sched, json, http, "
                         "go_process, node_process, node_isolate, node_worker, node_gc, node_http, node_alloc, "
                         "faas_coldstart, machine, work_stretch, sysmon, proxy, proxy_costs, k8s_codec, etcd); "
                         "repeatable")
    measure.add_argument("--host", help="name of the data folder (default: this machine's hostname)")
    measure.add_argument("--out", metavar="DIR", help="parent of the host folder (default calibration/data)")
    fit = actions.add_parser("fit", help="fit parameter sets from a data folder")
    fit.add_argument("--data", metavar="DIR", help="host data folder (default: the only one in calibration/data)")
    fit.add_argument("--out", metavar="DIR", help="where to write *.json (default calibration/params)")
    report = actions.add_parser("report", help="table of parameter sets and charts of each fit")
    report.add_argument("--params", metavar="DIR", help="parameter sets to report (default calibration/params)")
    report.add_argument("--data", metavar="DIR", help="data folder to draw (default: each set's own dataset)")
    report.add_argument("--out", metavar="DIR", default="calibration/report",
                        help="chart folder (default calibration/report)")
    report.add_argument("--no-charts", action="store_true", help="print the table only")
    calibrate.set_defaults(handler=cmd_calibrate)


def cmd_validate(args: argparse.Namespace, out: TextIO) -> int:
    """`cnsim validate [run]`: the calibration.validation package does the work, this prints."""
    from tqdm import tqdm

    if args.action == "run" and args.etcd:
        return _validate_etcd(args, out)
    if args.action == "run" and (args.grid or args.chain):
        return _validate_grid(args, out)
    if args.action == "run":
        from calibration.validation.experiments import VALIDATION_ROOT, Settings, run_campaign, select_groups

        groups = select_groups(args.only)
        settings = Settings.quick() if args.quick else Settings()
        folders, failed = _with_progress(4 * len(groups), "experiments", lambda say, bar: run_campaign(
            Path(args.out) if args.out else VALIDATION_ROOT, groups, settings, progress=say,
            on_done=lambda _folder: bar.update()))
        if failed:
            return failed
        out.write(f"{len(folders)} experiments written under {folders[0].parent if folders else args.out}\n")
        return 0
    from calibration.validation.compare import compare, load_experiments, ratio_checks, render, tally
    from calibration.validation.experiments import VALIDATION_ROOT

    if args.replications < 1:
        raise ValueError(f"--replications: must be >= 1 (got {args.replications})")
    if args.requests is not None and args.requests < 100:
        raise ValueError(f"--requests: must be >= 100 (got {args.requests})")
    _check_jobs(args.jobs)
    experiments = load_experiments(Path(args.data) if args.data else VALIDATION_ROOT, args.experiment)
    with tqdm(total=len(experiments) * args.replications, desc="simulating", unit="rep", disable=None,
              file=sys.stderr) as bar:
        comparisons = compare(experiments, args.requests, args.replications, on_done=lambda _r: bar.update(),
                              jobs=args.jobs)
    ratios = ratio_checks(comparisons)
    if args.json:
        within, total, pending = tally(comparisons)
        document = {"experiments": [c.to_json() for c in comparisons],
                    "within_target": within, "compared": total, "pending": pending,
                    "ratios": [r.to_json() for r in ratios], "ratios_within": sum(r.within for r in ratios),
                    "ratios_within_of_means": sum(r.within_of_means for r in ratios),
                    "ratios_compared": len(ratios)}
        json.dump(_finite_or_null(document), out, indent=2, allow_nan=False)
        out.write("\n")
    else:
        out.write(render(comparisons))
    if args.chart:
        from calibration.validation.chart import comparison_chart
        from sim.plots import save_chart

        paths = save_chart(comparison_chart(comparisons), args.chart)
        sys.stderr.write(f"cnsim: chart in {', '.join(map(str, paths))}\n")
    within, total, _pending = tally(comparisons)
    return 0 if within == total and all(r.within for r in ratios) else 1


def _with_progress(total: int, desc: str, run: Callable[[Callable[[str], None], Any], Any]) -> tuple[Any, int]:
    """``run(progress, bar)`` under a progress bar (with its ETA) of ``total`` runs: (its result, 0), or
    (None, 1) once a RuntimeError (a missing toolchain or node, a failed build, a run over its bound) is shown."""
    from tqdm import tqdm

    with tqdm(total=total, desc=desc, unit="run", disable=None, file=sys.stderr) as bar:
        try:
            return run(lambda message: bar.set_postfix_str(message, refresh=True), bar), 0
        except RuntimeError as error:
            for line in str(error).strip().splitlines():
                sys.stderr.write(f"cnsim: error: {line}\n")
            return None, 1


def _validate_etcd(args: argparse.Namespace, out: TextIO) -> int:
    """`cnsim validate run --etcd`: the etcd runs, each repetition of each in turn, with progress."""
    from calibration.validation import etcd

    if args.grid or args.chain:
        raise ValueError("--etcd with --grid or --chain: one campaign at a time")
    runs = etcd.QUICK_RUNS if args.quick else etcd.RUNS
    repetitions = args.repetitions if args.repetitions is not None else (1 if args.quick else etcd.REPETITIONS)
    if repetitions < 1:
        raise ValueError(f"--repetitions: must be >= 1 (got {repetitions})")
    root = Path(args.out) if args.out else etcd.ETCD_ROOT
    duration = 1.0 if args.quick else etcd.DURATION_S
    written, failed = _with_progress(repetitions * len(runs), "etcd runs", lambda say, bar: etcd.run_campaign(
        root, runs, repetitions, duration, progress=say, on_done=lambda: bar.update()))
    if failed:
        return failed
    out.write(f"{len(written)} experiment repetitions written under {root}\n")
    return 0


def _validate_grid(args: argparse.Namespace, out: TextIO) -> int:
    """`cnsim validate run --grid` (the generalization grid) or `--chain` (the chain of services): repeated,
    interleaved points, with progress, ETA and resume."""
    from calibration.validation import chain, grid

    if args.grid and args.chain:
        raise ValueError("--grid and --chain: one campaign at a time")
    if args.chain:
        points: list[Any] = chain.chain_points()
        fractions, root = ((0.6,) if args.quick else chain.CHAIN_FRACTIONS), chain.CHAIN_ROOT
        settings = chain.quick_chain_settings() if args.quick else chain.chain_settings()
        default_repetitions = chain.REPETITIONS
    else:
        points = grid.quick_points() if args.quick else grid.grid_points()
        fractions, root = ((0.6,) if args.quick else grid.GRID_FRACTIONS), grid.GRID_ROOT
        settings = grid.quick_settings() if args.quick else grid.grid_settings()
        default_repetitions = grid.REPETITIONS
    points = grid.select_points(points, args.only_point)
    repetitions = args.repetitions if args.repetitions is not None else (1 if args.quick else default_repetitions)
    if repetitions < 1:
        raise ValueError(f"--repetitions: must be >= 1 (got {repetitions})")
    root = Path(args.out) if args.out else root
    total = repetitions * len(points) * len(fractions)

    def done(bar: Any, folder: Path | None) -> None:
        if folder is None:  # already measured (resume): not part of the remaining work
            bar.total -= 1
            bar.refresh()
        else:
            bar.update()

    try:
        with _terminate_as_interrupt():
            written, failed = _with_progress(total, "grid runs", lambda say, bar: grid.run_grid(
                root, points, settings, fractions, repetitions, progress=say, on_done=lambda f: done(bar, f)))
    except KeyboardInterrupt:
        sys.stderr.write(f"cnsim: interrupted; every finished repetition is kept under {root} "
                         "(run the same command again to resume)\n")
        return EXIT_INTERRUPTED
    if failed:
        return failed
    out.write(f"{len(written)} repetitions written under {root} ({total - len(written)} already there)\n")
    return 0


def _add_validate(commands) -> None:
    validate = commands.add_parser(
        "validate", help="compare the simulator with the real experiments in calibration/validation",
        description="Without ACTION: simulate each shipped experiment (calibration/validation/<name>/)\n"
        "from calibrated parameters only and print real vs simulated mean, p50, p99 and\n"
        "throughput with relative errors and whether each is within target (mean, p50,\n"
        "throughput 10 %, p99 20 %; repeated experiments: within the real range widened\n"
        "by the target), the GC CPU fraction and cycles/s (reported, not judged), and for\n"
        "experiments one setting apart at the same load the ratio of their mean and p99\n"
        "(within 25 % of the real ratio; repeated experiments: of its range over the\n"
        "repetitions); exit status 1 if any is not.\n\n"
        "run: re-measure the experiments on this machine (Go and Node.js servers under\n"
        "open-loop Poisson load, about 4 minutes; run it on a quiet machine) and write\n"
        "them to --out.",
        epilog="examples:\n  cnsim validate\n  cnsim validate --experiment go-p1-90pct --replications 5\n"
        "  cnsim validate --chart validation\n"
        "  cnsim validate run --out /tmp/validation && cnsim validate --data /tmp/validation\n"
        "  cnsim validate run --grid && cnsim validate --data calibration/validation/grid\n"
        "  cnsim validate run --chain && cnsim validate --data calibration/validation/chain\n"
        "  cnsim validate run --etcd && cnsim validate --data calibration/validation/etcd",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("--experiment", action="append", metavar="NAME",
                          help="compare only this experiment (a folder name); repeatable")
    validate.add_argument("--replications", "-r", type=int, default=3, help="simulated replications (default 3)")
    validate.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                          help="worker processes simulating the experiments (default 1; the grid's 51 points "
                          "take a while: use one per core)")
    validate.add_argument("--requests", type=int, metavar="N",
                          help="simulated requests per replication, at most (default: as many as were measured)")
    validate.add_argument("--data", metavar="DIR", help="experiments folder (default calibration/validation; "
                          "calibration/validation/grid: the generalization grid)")
    validate.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    validate.add_argument("--chart", metavar="PATH", help="also draw real against simulated latency over load "
                          "to PATH.html and PATH.png")
    actions = validate.add_subparsers(dest="action", metavar="ACTION")
    run = actions.add_parser("run", help="re-run the real experiments here and write them")
    run.add_argument("--only", action="append", metavar="GROUP",
                     help="run only this group (go-p1, go-p2, node); repeatable")
    run.add_argument("--out", metavar="DIR",
                     help="where to write the experiment folders (default calibration/validation)")
    run.add_argument("--quick", action="store_true", help="1 s runs (checks the programs; not for validation); "
                     "with --grid: 2 points, 1 repetition")
    run.add_argument("--grid", action="store_true",
                     help="the generalization grid (one-factor variations of a GC-heavy base, each point "
                     "repeated in interleaved rounds; default --out calibration/validation/grid; resumes)")
    run.add_argument("--chain", action="store_true",
                     help="the architecture campaign: three Go services in a chain with no proxies, Envoy "
                     "sidecars or Go-proxy sidecars, repeated in interleaved rounds (default --out "
                     "calibration/validation/chain; resumes)")
    run.add_argument("--etcd", action="store_true",
                     help="the etcd campaign: a real etcd 3.4 (make etcd), 1 and 3 members, open-loop puts with "
                     "watchers, repeated in interleaved rounds (default --out calibration/validation/etcd; "
                     "about 4 minutes)")
    run.add_argument("--repetitions", type=int, metavar="N",
                     help="with --grid, --chain or --etcd: rounds (default 3)")
    run.add_argument("--only-point", action="append", metavar="SUBSTR",
                     help="with --grid or --chain: only the points whose name contains SUBSTR; repeatable")
    validate.set_defaults(handler=cmd_validate, action=None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnsim", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run", help="run a scenario's replications and print estimates with confidence intervals",
        description="Run R independent replications of a scenario and print, per metric, the mean over "
        "replications of each statistic with its Student-t confidence interval.",
        epilog="examples:\n  cnsim run mmc --set servers=4 --set arrival_rate=3.6 -r 10\n"
        "  cnsim run go-http-service -r 8 --jobs 2   # replications on 2 processes, same estimates",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_scenario_arguments(run)
    run.add_argument("--json", action="store_true", help="print one JSON document with every metric and its CI")
    run.add_argument("--all", action="store_true", help="show every statistic (p1..p99.99, std, min, max)")
    run.add_argument("--confidence", type=float, default=0.95, help="confidence level of the intervals (default 0.95)")
    run.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                     help="run the replications on N worker processes (default 1: in this process); the "
                     "estimates are the same as with 1, for the same seed")
    run.set_defaults(handler=cmd_run)

    sweep = commands.add_parser(
        "sweep", help="run a scenario over a grid of parameters into a resumable Parquet store",
        description="Run every grid point x replication as one run, in parallel processes, one Parquet file "
        "per run keyed by the hash of its resolved scenario and replication. Rerunning the same sweep skips "
        "finished runs; a failed run is recorded under DIR/failed and retried next time.",
        epilog="example: cnsim sweep mmc --grid arrival_rate=0.5,0.7,0.9 --grid servers=1,2 -r 5 --jobs 2 "
        "--out sweeps/mmc",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_scenario_arguments(sweep)
    sweep.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                       help="values of a key; repeatable (cartesian product)")
    sweep.add_argument("--lhs", action="append", default=[], metavar="KEY=LOW:HIGH",
                       help="Latin hypercube range of a key; repeatable")
    sweep.add_argument("--samples", type=int, default=10, help="Latin hypercube samples (default 10)")
    sweep.add_argument("--lhs-seed", type=int, default=0, help="seed of the Latin hypercube design (default 0)")
    sweep.add_argument("--jobs", "-j", type=int, default=1, help="parallel worker processes (default 1)")
    sweep.add_argument("--executor", choices=("serial", "processes", "dask"), default="processes",
                       help="where runs execute (default processes)")
    sweep.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="with --executor dask: the address of a running Dask scheduler (tcp://host:8786) "
                       "to send the runs to, instead of starting a local cluster (--jobs is then ignored)")
    sweep.add_argument("--out", required=True, metavar="DIR", help="directory of the Parquet store")
    sweep.add_argument("--no-progress", action="store_true", help="no progress bar")
    sweep.set_defaults(handler=cmd_sweep)

    plot = commands.add_parser(
        "plot", help="draw a sweep's charts (percentiles vs parameter, latency CDF) as PNG and HTML",
        description="Read DIR/runs/*.parquet and write DIR/plots/percentiles.{png,html} and DIR/plots/cdf.{png,html}.",
    )
    plot.add_argument("directory", metavar="DIR", help="output directory of `cnsim sweep`")
    plot.add_argument("--metric", default="requests.sojourn_s",
                      help="histogram metric to draw (default requests.sojourn_s)")
    plot.set_defaults(handler=cmd_plot)

    scenarios = commands.add_parser("scenarios", help="list built-in scenarios, model kinds, or show one resolved")
    scenarios.add_argument("--kinds", action="store_true", help="list the model kinds a scenario can name")
    scenarios.add_argument("--show", metavar="SCENARIO", help="print a scenario with every default filled in")
    scenarios.set_defaults(handler=cmd_scenarios)
    _add_calibrate(commands)
    _add_validate(commands)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = build_parser().parse_args(argv)
    stream = out if out is not None else sys.stdout
    try:
        return args.handler(args, stream)
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    except (ScenarioError, ValueError, OSError) as error:  # bad input; a model's errors come as ModelError
        if os.environ.get("CNSIM_DEBUG"):
            raise
        for line in str(error).strip().splitlines() or ["invalid input"]:
            sys.stderr.write(f"cnsim: error: {line}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write(f"cnsim: {INTERRUPTED.get(args.command, 'interrupted')}\n")
        return EXIT_INTERRUPTED
    except Exception as error:  # not the input's fault: a model that failed mid-run, or a bug in cnsim
        if os.environ.get("CNSIM_DEBUG"):
            raise
        return internal_error(error, sys.argv[1:] if argv is None else list(argv))


def internal_error(error: Exception, argv: Sequence[str]) -> int:
    """Report a bug: one line on stderr, the traceback in a crash file, :data:`EXIT_INTERNAL`."""
    text = str(error).strip()
    detail = text.splitlines()[0] if text else type(error).__name__
    if not isinstance(error, ModelError):  # a ModelError's message names the original exception already
        detail = f"{type(error).__name__}: {detail}"
    try:
        where = f"traceback in {write_crash_report(error, argv)}"
    except OSError as failure:
        where = f"no traceback file ({failure}); run again with CNSIM_DEBUG=1 to see the traceback"
    sys.stderr.write(
        f"cnsim: internal error (a bug in cnsim, not in your input): {detail}; {where}; "
        "please report it to the cnsim maintainers with that file\n"
    )
    return EXIT_INTERNAL


def write_crash_report(error: Exception, argv: Sequence[str]) -> Path:
    """A new ``cnsim-crash-<time>-<unique>.txt`` in the system's temporary folder: the command, the
    versions, the traceback, and the rows of any replication that finished before the failure."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    handle, name = tempfile.mkstemp(prefix=f"cnsim-crash-{stamp}-", suffix=".txt")
    completed = error.completed if isinstance(error, ModelError) else []
    with os.fdopen(handle, "w", encoding="utf-8") as report:
        report.write(f"cnsim internal error, {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n")
        report.write(f"command: cnsim {shlex.join(argv)}\n")
        report.write(f"python {platform.python_version()} on {platform.platform()}\n\n")
        report.write("".join(traceback.format_exception(error)))
        for result in completed:
            report.write(f"\nreplication {result.replication} finished before the failure (key {result.key}):\n")
            report.write(json.dumps({"sim_time_s": result.sim_time_s, "rows": result.rows}) + "\n")
    return Path(name)


if __name__ == "__main__":
    sys.exit(main())
