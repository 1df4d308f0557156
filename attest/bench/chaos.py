"""``attest bench chaos``: SIGKILL the verifiers (and the database) under load, then audit.

One run, on SQLite or on PostgreSQL:

1. A world made with the library behind the ``attest authority`` commands: an authority, a
   manufacturer, two regional nodes (Kuala Lumpur ``kl-1`` and Johor Bahru ``jb-1``, region MY)
   with licence delegations and a shared region cap, and licensed chips in state folders.
2. Two real ``attest verifier serve`` processes. On PostgreSQL they share one database (a
   throwaway server, attest/bench/pgcluster.py) and every chip attests to a node picked at
   random each session; on SQLite each node has its own file and its own half of the chips.
3. Real chip processes (``python -m attest.bench.chaos chip``) run their chips in a loop of
   short keep-alive sessions, journalling every result they receive (and every licence).
4. Meanwhile the harness SIGKILLs a random node at random moments and starts it again, and on
   PostgreSQL also kills the database server (every backend, like a power cut) and restarts
   it, which recovers from its write-ahead log.
5. Load stops; every chip runs one final session; the nodes stop cleanly.

Then the invariants, each checked against the stores themselves:

* every result a chip received is in the audit log of the node that signed it, with the same
  nonce and tier (a result is only sent after its commit, so none may be missing);
* each node's audit chain verifies, checkpoints included (with the node's key);
* no nonce is in any log twice (none was accepted twice);
* no chip's counter went backwards: each chip's affirmed counters grow in the order it got
  them, and the stored counter is at least the highest one a chip was affirmed with;
* no licence serial was issued twice for a chip, and every licence a chip applied is in the
  ledger with the same token;
* no quota was exceeded: per delegation and per region, issued totals are within the quota
  or cap and equal the sum of the ledger's licences;
* every chip was affirmed in the final round.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attest import files
from attest.node import provision
from attest.store.audit import KIND_ATTESTATION

HOST = "127.0.0.1"
NODES = ("kl-1", "jb-1")
REGION = "MY"
#: FLOPs per licence: an HX100 at half of its 10^15 FLOP/s peak uses one in about 2 s
BUDGET = 10**15
READY_TIMEOUT_S = 60.0


@dataclass
class Node:
    """One ``attest verifier serve`` process that the harness kills and restarts."""

    verifier_id: str
    folder: Path
    port: int
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    kills: int = 0
    unexpected_exits: int = 0
    exit_reasons: list[str] = field(default_factory=list)

    @property
    def port_file(self) -> Path:
        return self.folder / "port"

    def start(self) -> None:
        self.port_file.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "attest.cli.main", "verifier", "serve", "--config"]
        cmd.append(str(self.folder / files.VERIFIER_CONFIG_FILE))
        with open(self.folder / "node.log", "ab") as log:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.ready():
                return
            time.sleep(0.02)
        raise RuntimeError(f"{self.verifier_id} did not come up:\n{self.log_tail()}")

    def ready(self) -> bool:
        """Up and serving (its port file written); a node that died by itself is restarted."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            self.unexpected_exits += 1
            lines = [ln for ln in self.log_tail().splitlines() if ln.strip()]
            self.exit_reasons.append(f"exit {self.proc.returncode}: {lines[-1] if lines else ''}")
            self.start()
            return False
        return self.port_file.exists() and self.port_file.read_text().endswith("\n")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self.kills += 1

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def log_tail(self) -> str:
        path = self.folder / "node.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@dataclass
class World:
    root: Path
    store: str
    nodes: list[Node]
    chip_dirs: list[Path]
    keys: dict[str, Any]
    url: str = ""
    cluster: Any = None
    delegations: dict[str, int] = field(default_factory=dict)


def _make_world(root: Path, store: str, chips: int, quota: int, cap: int) -> World:
    from attest.bench.pgcluster import Cluster, free_port
    from attest.chip.device import fabricate
    from attest.licensing.authority import delegate
    from attest.licensing.chip import ChipLicensing
    from attest.licensing.messages import Budgets

    authority = provision.create_authority(root / "authority", "authority.my")
    provision.certify_manufacturer_folder(authority, root / "mfr", "mfr-a")
    manufacturer, anchors = files.load_manufacturer(root / "mfr")
    world = World(root, store, [], [], {})
    if store == "postgresql":
        world.cluster = Cluster(root / "pg")
        world.cluster.start()
        world.url = world.cluster.create_database("chaos")
    now = int(time.time())
    for i, vid in enumerate(NODES):
        folder = root / vid
        key, _ = provision.certify_verifier_folder(authority, folder, vid, REGION)
        world.keys[vid] = key
        world.delegations[vid] = i + 1
        (folder / "delegation.cose").write_bytes(
            delegate(
                authority,
                delegation_id=i + 1,
                verifier_id=vid,
                public_key=key.public_key,
                region=REGION,
                quota=Budgets(quota * BUDGET),
                now_s=now,
            )
        )
        env = dict(os.environ)
        env.update(
            {
                "ATTEST_LISTEN_PORT": "0",
                "ATTEST_HTTP_PORT": "-1",
                "ATTEST_LOG_LEVEL": "WARNING",
                "ATTEST_STORE_PATH": world.url or str(folder / files.VERIFIER_DB_FILE),
                "ATTEST_LICENSING_ENABLED": "true",
                "ATTEST_LICENSING_BUDGET_FLOPS": str(BUDGET),
                "ATTEST_LICENSING_DELEGATION_FILE": str(folder / "delegation.cose"),
            }
        )
        node = Node(vid, folder, free_port(), env)
        env["ATTEST_LISTEN_PORT"] = str(node.port)
        env["ATTEST_LISTEN_PORT_FILE"] = str(node.port_file)
        world.nodes.append(node)
    for i in range(chips):
        d = root / "chips" / files.chip_dir_name(i + 1)
        fabricate(
            manufacturer, anchors, hwmodel="HX100", pod_class=8, now_s=now, state_dir=d,
            parts={"licensing": ChipLicensing()},
        )  # fmt: skip
        world.chip_dirs.append(d)
    # the region cap, shared by both delegations (in each SQLite file; once on PostgreSQL)
    for node in world.nodes if store == "sqlite" else world.nodes[:1]:
        with _open(world, node.verifier_id) as s:
            from attest.licensing.ledger import LicenseLedger

            LicenseLedger(s.db).set_region_cap(REGION, Budgets(cap * BUDGET))
    return world


def _open(world: World, verifier_id: str, *, readonly: bool = False) -> Any:
    from attest.store import open_store

    location = world.url or str(world.root / verifier_id / files.VERIFIER_DB_FILE)
    key = None if readonly else world.keys[verifier_id]
    return open_store(location, verifier_id=verifier_id, signing_key=key, readonly=readonly)


# -- the chip processes ------------------------------------------------------------------------


def chip_main(argv: list[str]) -> int:
    """``python -m attest.bench.chaos chip``: run chips until the stop file appears."""
    p = argparse.ArgumentParser(prog="attest.bench.chaos chip")
    p.add_argument("--dirs", required=True, help="comma-separated chip folders")
    p.add_argument("--ports", required=True, help="kl-1 and jb-1 ports, comma-separated")
    p.add_argument("--node", type=int, help="always this node (SQLite: each node its own chips)")
    p.add_argument("--journal", type=Path, required=True)
    p.add_argument("--stop", type=Path, help="run until this file exists")
    p.add_argument("--final", action="store_true", help="one session per chip, then exit")
    args = p.parse_args(argv)
    import trio

    from attest.chip.device import Chip
    from attest.chip.runner import GrantOutcome, Workload, attest
    from attest.licensing.chip import LicensingChip

    ports = [int(x) for x in args.ports.split(",")]
    chips = [Chip.load(d) for d in args.dirs.split(",")]
    journal = open(args.journal, "a", buffering=1)  # noqa: SIM115 - one line per result

    def write(doc: dict[str, Any]) -> None:
        journal.write(json.dumps(doc) + "\n")

    async def run_chip(i: int, chip: Chip) -> None:
        chip.boot(time.time())
        workload = Workload(share=0.5)
        rng = random.Random(chip.ueid)
        lic = chip.part(LicensingChip)
        while True:
            if args.stop is not None and args.stop.exists():
                return
            node = args.node if args.node is not None else rng.randrange(2)

            def on_result(r: Any) -> None:
                write({
                    "kind": "result", "ueid": chip.ueid.hex(), "verifier": r.verifier_id,
                    "nonce": r.nonce.hex(), "tier": r.status, "reasons": list(r.reasons),
                    "counter": chip.attest_counter, "final": args.final,
                })  # fmt: skip

            def on_grant(g: GrantOutcome) -> None:
                write({
                    "kind": "grant", "ueid": chip.ueid.hex(), "refusal": g.refusal,
                    "serial": lic.license_state().serial, "token": g.grant.token.hex(),
                })  # fmt: skip

            try:
                await attest(
                    chip, HOST, ports[node], rounds=1 if args.final else rng.randint(1, 3),
                    interval_s=0.05, workload=workload, timeout_s=10.0,
                    on_result=on_result, on_grant=on_grant,
                )  # fmt: skip
                if args.final:
                    return
            except Exception as exc:  # a killed node, a restarting database: try again
                write({"kind": "error", "ueid": chip.ueid.hex(), "error": type(exc).__name__})
                await trio.sleep(0.1)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            for i, chip in enumerate(chips):
                nursery.start_soon(run_chip, i, chip)

    trio.run(main)
    journal.close()
    return 0


def _start_chips(
    world: World, procs: int, journal_dir: Path, stop: Path | None, final: bool
) -> list[subprocess.Popen[bytes]]:
    ports = ",".join(str(n.port) for n in world.nodes)
    out = []
    for k in range(procs):
        dirs = world.chip_dirs[k::procs]
        if not dirs:
            continue
        cmd = [sys.executable, "-m", "attest.bench.chaos", "chip", "--ports", ports]
        cmd += ["--dirs", ",".join(str(d) for d in dirs)]
        cmd += ["--journal", str(journal_dir / f"chips-{k}.jsonl")]
        if world.store == "sqlite":
            cmd += ["--node", str(k % 2)]
        if stop is not None:
            cmd += ["--stop", str(stop)]
        if final:
            cmd.append("--final")
        out.append(subprocess.Popen(cmd))
    return out


# -- the run -----------------------------------------------------------------------------------


def run_chaos(
    *,
    store: str,
    kills: int = 20,
    db_kills: int = 1,
    chips: int = 12,
    chip_procs: int = 2,
    quota: int = 40,
    cap: int = 60,
    workdir: Path | None = None,
    seed: int | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """One chaos run (see the module docstring); returns the report with every invariant."""
    if store not in ("sqlite", "postgresql"):
        raise ValueError("store must be sqlite or postgresql")
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="attest-chaos-", dir=workdir) as tmp:
        root = Path(tmp)
        progress(f"world: 2 nodes, {chips} chips, {store}")
        world = _make_world(root, store, chips, quota, cap)
        try:
            return _run(world, rng, kills, db_kills if store == "postgresql" else 0,
                        chip_procs, progress)  # fmt: skip
        finally:
            for node in world.nodes:
                if node.proc is not None and node.proc.poll() is None:
                    node.proc.kill()
                    node.proc.wait()
            if world.cluster is not None:
                world.cluster.close()


def _run(
    world: World,
    rng: random.Random,
    kills: int,
    db_kills: int,
    chip_procs: int,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    root = world.root
    for node in world.nodes:
        node.start()
    for node in world.nodes:
        node.wait_ready()
    stop = root / "stop"
    journals = root / "journals"
    journals.mkdir()
    if world.store == "sqlite":
        chip_procs = 2  # process k drives its chips against node k (each node its own store)
    started = time.monotonic()
    loaders = _start_chips(world, chip_procs, journals, stop, final=False)
    time.sleep(1.0)
    db_at = sorted(rng.sample(range(1, kills), min(db_kills, kills - 1))) if db_kills else []
    db_killed = 0
    progress(f"{kills} node kills" + (f", {len(db_at)} database kills" if db_at else ""))
    for k in range(kills):
        time.sleep(rng.uniform(0.1, 0.5))
        if k in db_at:
            world.cluster.kill()
            time.sleep(rng.uniform(0.0, 0.5))
            world.cluster.start()
            db_killed += 1
        # a node is killed again only once it serves again (the other may still be starting)
        up = [n for n in world.nodes if n.ready()]
        node = rng.choice(up) if up else rng.choice(world.nodes)
        node.wait_ready()
        node.kill()
        node.start()
    for node in world.nodes:
        node.wait_ready()
    time.sleep(1.0)
    stop.write_text("stop\n")
    for p in loaders:
        p.wait(timeout=60)
    load_s = time.monotonic() - started
    progress("final round")
    for p in _start_chips(world, chip_procs, journals, None, final=True):
        p.wait(timeout=120)
    exits = {n.verifier_id: n.stop() for n in world.nodes}
    progress("checking the invariants")
    report = _check(world, journals)
    report.update(
        {
            "store": world.store,
            "chips": len(world.chip_dirs),
            "node_kills": {n.verifier_id: n.kills for n in world.nodes},
            "node_kills_total": sum(n.kills for n in world.nodes),
            "database_kills": db_killed,
            "unexpected_node_exits": sum(n.unexpected_exits for n in world.nodes),
            "unexpected_exit_reasons": [r[:300] for n in world.nodes for r in n.exit_reasons],
            "clean_exit_codes": exits,
            "load_seconds": load_s,
        }
    )
    report["ok"] = all(report["invariants"].values()) and all(c == 0 for c in exits.values())
    return report


def _journal(journals: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(journals.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                out.append(json.loads(line))
    return out


def _check(world: World, journals: Path) -> dict[str, Any]:
    from attest.licensing.ledger import LicenseLedger
    from attest.store import verify_audit

    records = _journal(journals)
    results = [r for r in records if r["kind"] == "result"]
    grants = [r for r in records if r["kind"] == "grant"]
    problems: list[str] = []
    audit: dict[str, dict[str, list[int]]] = {}
    chains_ok = True
    stored: dict[str, int] = {}
    ledgers: list[tuple[str, list[Any], list[Any], Any]] = []
    for node in world.nodes:
        with _open(world, node.verifier_id, readonly=True) as s:
            rep = verify_audit(s, world.keys[node.verifier_id].public_key)
            if not rep.ok or rep.checkpoints_verified == 0:
                chains_ok = False
                problems.extend(f"{node.verifier_id}: {p}" for p in rep.problems[:5])
            by_nonce: dict[str, list[int]] = defaultdict(list)
            for rec in s.audit_entries():
                if rec.entry.kind == KIND_ATTESTATION:  # licence and other events tag by serial
                    by_nonce[rec.entry.nonce.hex()].append(rec.entry.tier)
            audit[node.verifier_id] = by_nonce
            for d in world.chip_dirs:
                from attest.chip.device import Chip

                ueid = Chip.load(d).ueid
                chip = s.get_chip(ueid)
                if chip is not None:
                    stored[ueid.hex()] = max(stored.get(ueid.hex(), 0), chip.state.attest_counter)
            if world.store == "sqlite" or node is world.nodes[0]:
                ledger = LicenseLedger(s.db)
                deleg = [ledger.delegation_status(i) for i in (1, 2)]
                ledgers.append(
                    (
                        node.verifier_id,
                        ledger.license_records(),
                        deleg,
                        ledger.region_status(REGION),
                    )
                )
    # every received result is logged, with its nonce and tier
    missing = [r for r in results if audit.get(r["verifier"], {}).get(r["nonce"]) != [r["tier"]]]
    # no nonce twice, in any log
    nonce_counts = Counter(n for log in audit.values() for n, tiers in log.items() for _ in tiers)
    twice = [n for n, c in nonce_counts.items() if c > 1]
    # counters never backwards
    backwards = 0
    best: dict[str, int] = {}
    for r in results:
        if r["tier"] != 2:
            continue
        if r["counter"] <= best.get(r["ueid"], -1):
            backwards += 1
        best[r["ueid"]] = max(best.get(r["ueid"], -1), r["counter"])
    behind = [u for u, c in best.items() if stored.get(u, -1) < c]
    # licences: serials unique, applied ones in the ledger, quotas kept
    serials_twice = 0
    unknown_grants = 0
    quota_ok = True
    licences = 0
    for _vid, rows, deleg, region in ledgers:
        licences += len(rows)
        keys = Counter((r.ueid, r.serial) for r in rows)
        serials_twice += sum(1 for c in keys.values() if c > 1)
        tokens = {r.token.hex() for r in rows}
        unknown_grants += (
            sum(1 for g in grants if g["refusal"] is None and g["token"] not in tokens)
            if world.store == "postgresql"
            else 0
        )
        for status in deleg:
            if status is None:
                continue
            spent = sum(r.budgets.flops for r in rows if r.delegation_id == status.delegation_id)
            quota_ok &= status.issued[0] == spent and spent <= status.quota.flops
        region_spent = sum(r.budgets.flops for r in rows if r.region == REGION)
        cap = region.cap[0]
        quota_ok &= region.issued[0] == region_spent and (cap is None or region_spent <= cap)
        quota_ok &= region.licenses == len(rows)
    if world.store == "sqlite":
        all_tokens = {r.token.hex() for _v, rows, _d, _r in ledgers for r in rows}
        unknown_grants = sum(
            1 for g in grants if g["refusal"] is None and g["token"] not in all_tokens
        )
    final = {r["ueid"]: r["tier"] for r in results if r["final"]}
    final_ok = len(final) == len(world.chip_dirs) and all(t == 2 for t in final.values())
    invariants = {
        "every_result_in_audit_log": not missing,
        "audit_chains_verify": chains_ok,
        "no_nonce_accepted_twice": not twice,
        "no_counter_went_backwards": backwards == 0 and not behind,
        "no_licence_serial_issued_twice": serials_twice == 0 and unknown_grants == 0,
        "no_quota_exceeded": quota_ok,
        "every_chip_affirmed_in_final_round": final_ok,
    }
    errors = Counter(r["error"] for r in records if r["kind"] == "error")
    return {
        "invariants": invariants,
        "results_received": len(results),
        "affirmed": sum(1 for r in results if r["tier"] == 2),
        "contraindicated": sum(1 for r in results if r["tier"] == 96),
        "reasons_seen": dict(Counter(x for r in results for x in r["reasons"])),
        "session_errors": dict(errors),
        "licences_issued": licences,
        "grants_applied": sum(1 for g in grants if g["refusal"] is None),
        "audit_entries": sum(len(t) for log in audit.values() for t in log.values()),
        "missing_results": len(missing),
        "nonces_twice": len(twice),
        "final_round": {"chips": len(final), "affirmed": sum(1 for t in final.values() if t == 2)},
        "problems": problems[:20],
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["chip"]:
        return chip_main(argv[1:])
    print("usage: python -m attest.bench.chaos chip ... (or: attest bench chaos)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
