"""``attest demo``: the whole system in one command (see attest.demo.scenario)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import trio
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from attest.cli.common import EXIT_CHECK_FAILED, EXIT_OK
from attest.demo.scenario import DemoOptions, DemoSummary, expected_sessions, run_demo

#: the width of the summary when stdout is not a terminal (wide enough for every table)
PIPED_WIDTH = 200


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "demo",
        help="run authority, two verifier nodes and a chip fleet on loopback, with attacks",
        description=(
            "Creates an authority, a manufacturer and two regional verifier nodes (Kuala Lumpur, "
            "Singapore) on loopback with SQLite in a temporary folder, runs N simulated chips "
            "that attest repeatedly, injects attacks, and verifies the audit chains; then the "
            "mechanisms' sections (licensing, pods, location: six landmark nodes across the "
            "region and a map; federation: four 3-of-5 committees under a 3-of-4 agreement). "
            "Exit status 0 only if every honest chip was affirmed and every "
            "attack was caught."
        ),
    )
    p.add_argument("--chips", type=int, default=200, help="honest chips in the fleet (default 200)")
    p.add_argument("--rounds", type=int, default=3, help="attestations per chip (default 3)")
    p.add_argument("--interval", type=float, default=0.05, help="seconds between a chip's rounds")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument(
        "--keep", type=Path, help="keep node databases in this folder instead of a temp dir"
    )
    p.add_argument(
        "--map",
        type=Path,
        default=Path("attest-demo-location.png"),
        help="where to draw the location map (PNG; default ./attest-demo-location.png)",
    )
    p.add_argument("--no-map", action="store_true", help="draw no location map")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.chips < 1 or args.rounds < 1 or args.interval < 0:
        print("attest demo: --chips and --rounds must be >= 1, --interval >= 0", file=sys.stderr)
        return 2
    opts = DemoOptions(
        chips=args.chips,
        rounds=args.rounds,
        interval_s=args.interval,
        workdir=args.keep,
        map_path=None if args.no_map else args.map.resolve(),
    )
    console = Console(stderr=True)
    total = expected_sessions(opts)
    with Progress(
        TextColumn("[bold]attesting"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("sessions"),
        TimeElapsedColumn(),
        console=console,
        transient=args.json,
        disable=not console.is_terminal and args.json,
    ) as bar:
        task = bar.add_task("sessions", total=total)

        def progress(done: int, grown: int) -> None:
            nonlocal total
            total += grown
            bar.update(task, advance=done, total=total)

        summary = trio.run(run_demo, opts, progress)
    if args.json:
        print(json.dumps(summary.as_json(), indent=2))
    else:
        # piped into a file or a pager, a table is not cut to 80 columns (`revoked-ch…`)
        wide = None if sys.stdout.isatty() else PIPED_WIDTH
        _print_summary(Console(width=wide), summary, opts)
    return EXIT_OK if summary.ok else EXIT_CHECK_FAILED


def _print_summary(console: Console, s: DemoSummary, opts: DemoOptions) -> None:
    overview = Table(title="attest demo", show_header=False)
    overview.add_row("chips (honest)", str(s.chips))
    overview.add_row("sessions", str(s.sessions))
    overview.add_row("honest affirmed", f"{s.honest_affirmed}/{s.honest_sessions}")
    overview.add_row(
        "session rate", f"{s.session_rate:.0f} sessions/s over {s.honest_seconds:.2f} s"
    )
    for tier, n in sorted(s.verdicts.items()):
        overview.add_row(f"verdicts: {tier}", str(n))
    console.print(overview)

    attacks = Table(title="attacks injected")
    for col in ("attack", "expected reason", "node", "verdict", "reasons", "detected"):
        attacks.add_column(col)
    for a in s.attacks:
        attacks.add_row(
            a["name"],
            a["expected_reason"],
            a["node"],
            a.get("verdict", "-"),
            ", ".join(a.get("reasons", [])) or a.get("error", ""),
            "[green]yes" if a["detected"] else "[red]NO",
        )
    console.print(attacks)

    nodes = Table(title="verifier nodes and audit chains")
    for col in ("node", "city", "entries", "checkpoints", "head hash", "chain"):
        nodes.add_column(col)
    for node in s.nodes:
        nodes.add_row(
            node["verifier_id"],
            node["city"],
            str(node["audit_entries"]),
            str(node["checkpoints_verified"]),
            node["audit_head"][:16] + "…",
            "[green]verified" if node["audit_ok"] else "[red]BROKEN",
        )
    console.print(nodes)
    for section, result in s.sections.values():
        section.render(console, result)
    for e in s.errors:
        console.print(f"[red]error:[/red] {e}")
    if s.workdir is not None:
        first = s.nodes[0]["verifier_id"] if s.nodes else "verifier-kl-1"
        console.print(
            f"kept in {s.workdir}: node stores, verifier certificates, anchors.json; check a "
            f"chain with: attest audit verify --db {s.workdir / (first + '.db')} "
            f"--verifier-cert {s.workdir / (first + '.cert')} --anchors "
            f"{s.workdir / 'anchors.json'}",
            soft_wrap=True,
        )
    console.print(
        "[bold green]OK[/]: every honest chip affirmed, every attack caught, audit verified"
        if s.ok
        else "[bold red]FAILED[/]"
    )
