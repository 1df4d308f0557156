"""``attest bench``: the benchmarks of issues #6 and #11 (bench/README.md says how to read them).

Each subcommand prints a report with the machine, the baseline and the ratio to it, writes
``<kind>.json`` and ``<kind>.png`` to ``--out`` (default ``bench/results``) and, with ``--json``,
prints the JSON document instead of the text. ``--check`` makes the exit status 1 when a target
of the issue is missed (by default a benchmark that ran exits 0 whatever it measured).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from attest.cli.common import EXIT_CHECK_FAILED, EXIT_OK, EXIT_USAGE

DEFAULT_OUT = Path("bench/results")
#: what each benchmark needs beyond attest's own dependencies
NEEDS = {
    "core": ["pycose", "cwt"],
    "dos": [],
    "e2e": [],
    "scale": [],
    "soak": [],
    "timing": ["numpy", "scipy"],
    "location": [],
    "chaos": [],
    "fuzz": ["atheris"],
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "bench",
        help="benchmarks: core, end-to-end, scale, soak, timing leakage, chaos, fuzzing",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    sub: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="bench_command", metavar="BENCHMARK", required=True
    )

    p = sub.add_parser("core", help="appraisals/s vs libsodium, pycose and python-cwt")
    p.add_argument("--seconds", type=float, default=20.0, help="total measuring time")
    p.add_argument("--rounds", type=int, default=10, help="interleaved rounds per contender")
    _common(p)

    p = sub.add_parser("e2e", help="full sessions against a real `attest verifier serve`")
    _e2e_args(p, chips=1000, seconds=30.0)
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="also measure K worker processes and report the speedup over one (default 1)",
    )
    _common(p)

    p = sub.add_parser(
        "dos",
        help="honest chips against a flood of idle connections from one address",
        description=(
            "The connection-slot attack of issue 10 on the shipped configuration: --idle idle "
            "connections from 127.0.0.2, reopened as the verifier closes them, while --chips "
            "honest chips (one loopback address each) make their first session and then a "
            "measured window of keep-alive sessions."
        ),
    )
    p.add_argument("--chips", type=int, default=1000, help="honest chips (default 1000)")
    p.add_argument(
        "--idle", type=int, default=10_000, help="idle attacker connections (default 10000)"
    )
    p.add_argument("--seconds", type=float, default=20.0, help="measured window (default 20)")
    p.add_argument("--inflight", type=int, default=32, help="honest sessions in progress at once")
    _common(p)

    p = sub.add_parser("scale", help="e2e rate and verifier RSS against registry size")
    _e2e_args(p, chips=1000, seconds=15.0)
    p.add_argument(
        "--sizes",
        default="1000,10000,100000",
        help="comma-separated numbers of chips registered in the store (default 10^3,10^4,10^5)",
    )
    _common(p)

    p = sub.add_parser("soak", help="one long e2e run following the verifier's memory")
    _e2e_args(p, chips=1000, seconds=0.0)
    p.add_argument("--minutes", type=float, default=10.0, help="length of the run (default 10)")
    p.add_argument(
        "--store",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="postgresql: two nodes on one throwaway PostgreSQL server, after measuring 1 and 2 "
        "nodes on PostgreSQL next to SQLite (default sqlite: one node)",
    )
    p.add_argument(
        "--compare-seconds",
        type=float,
        default=30.0,
        help="with --store postgresql: measured window of each throughput run (default 30)",
    )
    _common(p)

    p = sub.add_parser(
        "chaos", help="SIGKILL verifiers (and PostgreSQL) under load, then check invariants"
    )
    p.add_argument(
        "--store",
        choices=("sqlite", "postgresql", "both"),
        default="both",
        help="which store to run it on (default both, one after the other)",
    )
    p.add_argument("--kills", type=int, default=60, help="node kills per store (default 60)")
    p.add_argument("--db-kills", type=int, default=2, help="PostgreSQL server kills (default 2)")
    p.add_argument("--chips", type=int, default=16, help="chips (default 16)")
    p.add_argument("--chip-procs", type=int, default=2, help="chip processes (default 2)")
    p.add_argument("--seed", type=int, help="random seed for the kill schedule")
    _common(p)

    p = sub.add_parser("fuzz", help="coverage-guided fuzzing of every decoder (atheris)")
    p.add_argument(
        "--inputs",
        type=int,
        default=1_050_000,
        help="inputs in total, split over the targets (default 1,050,000)",
    )
    p.add_argument("--target", action="append", help="only this target (repeatable)")
    _common(p)

    p = sub.add_parser("timing", help="dudect-style leakage test of the verification core")
    p.add_argument(
        "--measurements",
        type=int,
        default=100_000,
        help="measurements per class and pair (default 10^5)",
    )
    p.add_argument("--pool", type=int, default=20_000, help="distinct inputs per class")
    _common(p)

    p = sub.add_parser(
        "location",
        help="loopback PING round trips: the floor, its jitter, the bound (location calibration)",
    )
    p.add_argument("--pings", type=int, default=10_000, help="PINGs to time (default 10^4)")
    p.add_argument(
        "--per-round", type=int, default=1000, help="PINGs per attestation round (max 1000)"
    )
    p.add_argument(
        "--allowance-ns",
        type=int,
        default=50_000,
        help="processing allowance the bounds are computed with (default 50000, the node's)",
    )
    _common(p)


def _e2e_args(p: argparse.ArgumentParser, *, chips: int, seconds: float) -> None:
    p.add_argument("--chips", type=int, default=chips, help=f"concurrent chips (default {chips})")
    if seconds:
        p.add_argument("--seconds", type=float, default=seconds, help="measured window")
    p.add_argument(
        "--inflight",
        type=int,
        default=32,
        help="sessions in progress at once; chips take turns (default 32)",
    )
    p.add_argument(
        "--rate", type=float, default=0.0, help="sessions started per second (default: max)"
    )


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the JSON document, not the text")
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"folder for JSON and PNG ({DEFAULT_OUT})"
    )
    p.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    p.set_defaults(func=cmd_bench)


def missing_modules(kind: str) -> list[str]:
    return [m for m in NEEDS[kind] if importlib.util.find_spec(m) is None]


def _progress(args: argparse.Namespace) -> Any:
    def say(message: str) -> None:
        print(f"[bench {args.bench_command}] {message}", file=sys.stderr, flush=True)

    return say


def cmd_bench(args: argparse.Namespace) -> int:
    kind = args.bench_command
    missing = missing_modules(kind)
    if missing:
        print(
            f"attest bench {kind} needs the bench extra: pip install 'hem-attest[bench]' "
            f"(missing: {', '.join(missing)})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from attest.bench import report

    result = RUNNERS[kind](args)
    command = "attest " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""
    doc = report.document(kind, command, result)
    report.write_json(doc, args.out / f"{kind}.json")
    plotted = report.plot(doc, args.out / f"{kind}.png")
    if args.json:
        print(json.dumps(doc, indent=2, default=report._jsonable))
    else:
        print(report.text(doc))
        plot_note = f", plot: {args.out / f'{kind}.png'}" if plotted else ""
        print(f"results: {args.out / f'{kind}.json'}{plot_note}")
        if not plotted and kind not in ("chaos", "fuzz"):
            print("(no plot: matplotlib is in the bench extra: pip install 'hem-attest[bench]')")
    if args.check and any(v["met"] is False for v in doc["targets"]):
        return EXIT_CHECK_FAILED
    return EXIT_OK


def _run_core(args: argparse.Namespace) -> dict[str, Any]:
    from attest.bench.core import run_core

    _progress(args)(f"{args.seconds:g} s over {args.rounds} interleaved rounds")
    return run_core(seconds=args.seconds, rounds=args.rounds)


def _e2e_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "chips": args.chips,
        "inflight": args.inflight,
        "rate": args.rate,
        "progress": _progress(args),
    }


def _run_e2e(args: argparse.Namespace) -> dict[str, Any]:
    from attest.bench.e2e import run_e2e

    one = run_e2e(seconds=args.seconds, workers=1, **_e2e_kwargs(args))
    result = dict(one)
    result["runs"] = [one]
    if args.workers > 1:
        many = run_e2e(seconds=args.seconds, workers=args.workers, **_e2e_kwargs(args))
        result["runs"].append(many)
        result["workers_speedup"] = many["sessions_per_s"] / max(one["sessions_per_s"], 1e-9)
    return result


def _run_dos(args: argparse.Namespace) -> dict[str, Any]:
    from attest.bench.dos import run_dos

    return run_dos(
        chips=args.chips,
        idle=args.idle,
        seconds=args.seconds,
        inflight=args.inflight,
        progress=_progress(args),
    )


def _run_scale(args: argparse.Namespace) -> dict[str, Any]:
    from attest.bench.e2e import run_e2e

    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    points = []
    for size in sizes:
        kwargs = _e2e_kwargs(args)
        kwargs["chips"] = min(args.chips, size)
        points.append(run_e2e(seconds=args.seconds, registered=size, **kwargs))
    rates = [p["sessions_per_s"] for p in points]
    for p in points:
        for key in ("rss_samples", "latency_histogram_ms"):
            p.pop(key, None)
    return {
        "points": points,
        "libsodium_verify_per_s": points[0]["libsodium_verify_per_s"],
        "rate_ratio_largest_vs_smallest": rates[-1] / max(rates[0], 1e-9),
    }


def _run_soak(args: argparse.Namespace) -> dict[str, Any]:
    from attest.bench.e2e import run_e2e

    if args.store == "postgresql":
        from attest.bench.e2e import run_pg_soak

        return run_pg_soak(
            minutes=args.minutes, compare_seconds=args.compare_seconds, **_e2e_kwargs(args)
        )
    result = run_e2e(seconds=args.minutes * 60, sample_every=5.0, **_e2e_kwargs(args))
    result["rss_growth_mb"] = result["verifier_rss_end_mb"] - result["verifier_rss_start_mb"]
    return result


def _run_chaos(args: argparse.Namespace) -> dict[str, Any]:
    from attest.bench.chaos import run_chaos

    stores = ("sqlite", "postgresql") if args.store == "both" else (args.store,)
    runs = [
        run_chaos(
            store=s,
            kills=args.kills,
            db_kills=args.db_kills,
            chips=args.chips,
            chip_procs=args.chip_procs,
            seed=args.seed,
            progress=_progress(args),
        )
        for s in stores
    ]
    return {
        "runs": runs,
        "ok": all(r["ok"] for r in runs),
        "failed_runs": sum(not r["ok"] for r in runs),
    }


def _run_fuzz(args: argparse.Namespace) -> dict[str, Any]:
    from attest.bench.fuzz import TARGETS, run_fuzz

    targets = tuple(args.target) if args.target else TARGETS
    unknown = set(targets) - set(TARGETS)
    if unknown:
        raise SystemExit(f"attest bench fuzz: unknown target(s) {sorted(unknown)}")
    result = run_fuzz(inputs=args.inputs, targets=targets, progress=_progress(args))
    result["failed_targets"] = sum(not r["ok"] for r in result["targets"])
    return result


def _run_timing(args: argparse.Namespace) -> dict[str, Any]:
    from attest.bench.timing import run_timing

    result = run_timing(per_class=args.measurements, pool=args.pool, progress=_progress(args))
    result["control_max_abs_t"] = result["controls"]["control_leaky_loop"]["max_abs_t"]
    return result


def _run_location(args: argparse.Namespace) -> dict[str, Any]:
    from attest.bench.location import run_location

    return run_location(
        pings=args.pings,
        per_round=args.per_round,
        allowance_ns=args.allowance_ns,
        progress=_progress(args),
    )


RUNNERS = {
    "core": _run_core,
    "dos": _run_dos,
    "e2e": _run_e2e,
    "scale": _run_scale,
    "soak": _run_soak,
    "timing": _run_timing,
    "location": _run_location,
    "chaos": _run_chaos,
    "fuzz": _run_fuzz,
}
