"""``attest demo``: a fleet of simulated chips attesting to two regional nodes, under attack.

The story, in order: an authority certifies a manufacturer and two verifier nodes (Kuala Lumpur
and Singapore); it revokes one chip reported stolen; the nodes start on loopback with SQLite;
N honest chips attest repeatedly over keep-alive connections while adversaries inject attacks;
the nodes drain and close; every node's audit chain is verified from its file.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from attest import files
from attest.chip.device import Chip
from attest.chip.runner import attest
from attest.demo.attacks import ATTACKS
from attest.demo.sections import SectionResult, available_sections
from attest.demo.world import FLEET, RunningNode, World, create_world, revoke, running_nodes
from attest.store import verify_audit
from attest.verify.reasons import Tier, reason_name

#: progress(done, grown): ``done`` sessions finished, the expected total changed by ``grown``
#: (a section says how many sessions it ran only when it ends; a failed chip runs none), so
#: the bar's total ends equal to the summary's session count
ProgressFn = Callable[[int, int], None]


def no_progress(done: int, grown: int) -> None:
    return None


def expected_sessions(opts: DemoOptions) -> int:
    """What the progress bar starts from: the fleet's rounds and one session per attack."""
    return opts.chips * opts.rounds + len(ATTACKS)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    chips: int = 200
    rounds: int = 3
    interval_s: float = 0.05
    workdir: Path | None = None
    #: where the location section draws its map (None: no map)
    map_path: Path | None = None


@dataclass
class DemoSummary:
    chips: int = 0
    sessions: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    honest_sessions: int = 0
    honest_affirmed: int = 0
    honest_seconds: float = 0.0
    attacks: list[dict[str, Any]] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sections: dict[str, tuple[Any, SectionResult]] = field(default_factory=dict)
    #: the --keep folder of this run (None: a temporary folder, gone at the end)
    workdir: Path | None = None

    @property
    def session_rate(self) -> float:
        return self.honest_sessions / self.honest_seconds if self.honest_seconds else 0.0

    @property
    def ok(self) -> bool:
        return (
            self.honest_affirmed == self.honest_sessions == self.chips * self._rounds
            and all(a["detected"] for a in self.attacks)
            and bool(self.audit.get("verified"))
            and not self.errors
            and all(result.ok for _, result in self.sections.values())
        )

    _rounds: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "chips": self.chips,
            "sessions": self.sessions,
            "verdicts": {t.name.lower(): self.verdicts.get(t.name.lower(), 0) for t in Tier if t},
            "honest": {
                "sessions": self.honest_sessions,
                "affirmed": self.honest_affirmed,
                "seconds": round(self.honest_seconds, 3),
                "sessions_per_s": round(self.session_rate, 1),
            },
            "attacks": self.attacks,
            "audit": self.audit,
            "nodes": self.nodes,
            "errors": self.errors,
            "kept": None if self.workdir is None else str(self.workdir),
            **{name: result.summary for name, (_, result) in self.sections.items()},
            "ok": self.ok,
        }


def _record(summary: DemoSummary, status: int) -> None:
    summary.sessions += 1
    summary.verdicts[Tier(status).name.lower()] += 1


async def _honest_chip(
    chip: Chip, node: RunningNode, opts: DemoOptions, summary: DemoSummary, progress: ProgressFn
) -> None:
    try:
        results = await attest(
            chip, "127.0.0.1", node.port, rounds=opts.rounds, interval_s=opts.interval_s
        )
    except Exception as exc:  # reported, and makes the demo fail
        summary.errors.append(f"honest chip {chip.ueid.hex()[:12]}: {exc}")
        progress(0, -opts.rounds)
        return
    for result in results:
        _record(summary, result.status)
        summary.honest_sessions += 1
        summary.honest_affirmed += result.status == Tier.AFFIRMING
    progress(len(results), len(results) - opts.rounds)


async def run_demo(opts: DemoOptions, progress: ProgressFn = no_progress) -> DemoSummary:
    summary = DemoSummary(chips=opts.chips)
    summary._rounds = opts.rounds
    with tempfile.TemporaryDirectory(prefix="attest-demo-") as tmp:
        workdir = Path(tmp) if opts.workdir is None else fresh_run_dir(opts.workdir)
        summary.workdir = opts.workdir and workdir
        world = create_world()
        world.workdir, world.map_path = workdir, opts.map_path
        files.write_anchors(workdir / files.ANCHORS_FILE, world.authority.anchors)
        revoke(world, [world.fabricate("HX100", 8)])
        await _run(world, workdir, opts, summary, progress)
        total_entries = 0
        verified = True
        for running in world.nodes:
            report = verify_audit(running.db_path, running.identity.key.public_key)
            total_entries += report.entries
            verified &= report.ok
            summary.nodes.append(
                {
                    "verifier_id": running.identity.verifier_id,
                    "city": running.city,
                    "region": running.identity.region,
                    "audit_entries": report.entries,
                    "audit_head": report.head_hash.hex(),
                    "checkpoints_verified": report.checkpoints_verified,
                    "audit_ok": report.ok,
                }
            )
        summary.audit = {"entries": total_entries, "verified": verified}
    return summary


def fresh_run_dir(keep: Path) -> Path:
    """``KEEP/run-N`` for the first free N: every demo has its own authority, so a folder of
    an earlier run (its stores, delegations) is kept beside this one, never reused."""
    keep.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        candidate = keep / f"run-{n}"
        try:
            candidate.mkdir()
        except FileExistsError:
            n += 1
            continue
        return candidate


async def _run(
    world: World, workdir: Path, opts: DemoOptions, summary: DemoSummary, progress: ProgressFn
) -> None:
    fleet: list[Chip] = []
    for hwmodel, pod_class, share in FLEET:
        fleet += [world.fabricate(hwmodel, pod_class) for _ in range(round(opts.chips * share))]
    fleet = fleet[: opts.chips]
    while len(fleet) < opts.chips:
        fleet.append(world.fabricate("HX100", 8))
    async with running_nodes(world, workdir) as nodes:
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for i, chip in enumerate(fleet):
                nursery.start_soon(
                    _honest_chip, chip, nodes[i % len(nodes)], opts, summary, progress
                )
            for i, attack in enumerate(ATTACKS):
                nursery.start_soon(_attack, attack, world, nodes[i % len(nodes)], summary, progress)
        summary.honest_seconds = time.perf_counter() - started
        for section in available_sections():
            try:
                result = await section.run(world, nodes)
            except Exception as exc:  # a broken section fails the demo, it does not crash it
                result = SectionResult(ok=False, errors=[f"{section.name}: {exc!r}"])
            summary.sections[section.name] = (section, result)
            summary.attacks.extend(result.attacks)
            for tier, n in result.verdicts.items():
                summary.verdicts[tier] += n
                summary.sessions += n
            summary.errors.extend(result.errors)
            ran = sum(result.verdicts.values())
            progress(ran, ran)


async def _attack(
    attack: Any, world: World, node: RunningNode, summary: DemoSummary, progress: ProgressFn
) -> None:
    entry: dict[str, Any] = {
        "name": attack.name,
        "expected_reason": attack.expected_reason.name,
        "detected": False,
        "node": node.identity.verifier_id,
    }
    try:
        result = await attack.run(world, node)
    except Exception as exc:
        entry["error"] = str(exc)
        progress(0, -1)
    else:
        progress(1, 0)
        _record(summary, result.status)
        reasons = [reason_name(r) for r in result.reasons]
        entry["verdict"] = Tier(result.status).name.lower()
        entry["reasons"] = reasons
        entry["detected"] = (
            result.status == Tier.CONTRAINDICATED and attack.expected_reason.name in reasons
        )
    summary.attacks.append(entry)
