"""The audit chain beyond appraisals (issue 10, finding 6).

A published checkpoint outside the database reveals a store that lost committed entries (a
write-ahead log deleted after a crash); ``attest audit verify`` never says "OK" without having
checked signatures; licence issuance and refusals join the chain in their own transactions.
(Pod alerts: tests/test_pods.py; revocation-list adoption: tests/test_config_hardening.py.)
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import HANG_TIMEOUT_S, Cli, make_world, serve
from test_licensing import BUDGET, Node, licensed_chip, make_node, w

from attest.errors import StoreError
from attest.keys import SigningKey
from attest.licensing.messages import Budgets
from attest.store import published, verify_audit
from attest.store.audit import AuditEntry
from attest.store.sqlite import SqliteStore
from attest.testvectors.world import World

__all__ = ["w"]  # the licensing world fixture, shared with test_licensing

KEY = SigningKey.derive_insecure_for_tests("audit-events")


def entry(i: int) -> AuditEntry:
    return AuditEntry(1_700_000_000_000 + i, "kl-1", b"\x01" * 17, 2, (), b"", i.to_bytes(8, "big"))


_WRITER = """
import os, sys
from attest.keys import SigningKey
from attest.store.audit import AuditEntry
from attest.store.sqlite import SqliteStore
from attest.testvectors.world import World

path, first, last, publish_at, crash = sys.argv[1], *map(int, sys.argv[2:6])
store = SqliteStore(path, verifier_id="kl-1",
                    signing_key=SigningKey.derive_insecure_for_tests("audit-events"))
for i in range(first, last + 1):
    store.record_event(AuditEntry(1_700_000_000_000 + i, "kl-1", b"\\x01" * 17, 2, (), b"",
                                  i.to_bytes(8, "big")))
    if i == publish_at:
        store.publish_checkpoint()
if crash:
    os._exit(0)  # no close: the commits stay in the write-ahead log
store.close()
"""


def write_entries(db: Path, first: int, last: int, publish_at: int, *, crash: bool) -> None:
    args = [str(db), str(first), str(last), str(publish_at), str(int(crash))]
    subprocess.run([sys.executable, "-c", _WRITER, *args], check=True, timeout=HANG_TIMEOUT_S)


def test_deleted_wal_after_a_crash_is_detected(tmp_path: Path) -> None:
    """Regression: with the WAL gone the store silently went back in time and verified OK."""
    db = tmp_path / "v.db"
    write_entries(db, 1, 5, 0, crash=False)  # a clean close moves everything into the file
    write_entries(db, 6, 30, 25, crash=True)  # 25 published, then a crash with 30 in the WAL
    file = published.checkpoint_file_for(db)
    assert published.unverified_seq(file.read_bytes()) == 25
    intact = verify_audit(db, KEY.public_key, file.read_bytes())
    assert intact.ok and intact.entries == 30 and intact.published_seq == 25

    for leftover in (Path(f"{db}-wal"), Path(f"{db}-shm")):
        leftover.unlink()  # an operator "cleans up" after the crash
    lost = verify_audit(db, KEY.public_key, file.read_bytes())
    assert lost.entries == 5 and not lost.ok
    assert any("names seq 25 but the log ends at seq 5: 20 committed entries" in p
               for p in lost.problems), lost.problems  # fmt: skip
    assert verify_audit(db, KEY.public_key).ok  # what the store alone can tell: nothing


def test_published_checkpoint_must_match_the_log(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    with SqliteStore(db, verifier_id="kl-1", signing_key=KEY) as store:
        for i in range(1, 4):
            store.record_event(entry(i))
        cp = store.publish_checkpoint()
        assert cp is not None and cp.seq == 3
        assert store.publish_checkpoint() is None  # nothing new
    token = published.checkpoint_file_for(db).read_bytes()
    # another verifier's key, or a forged file, is caught when signatures are checked
    other = SigningKey.derive_insecure_for_tests("someone-else")
    report = verify_audit(db, other.public_key, token)
    assert any(p.startswith("published checkpoint file: forged") for p in report.problems)
    # a log rewritten with the same length no longer matches the published head
    rewritten = tmp_path / "rewritten.db"
    with SqliteStore(rewritten, verifier_id="kl-1", signing_key=KEY) as store:
        for i in range(11, 14):
            store.record_event(entry(i))
    report = verify_audit(rewritten, None, token)  # unverified claims still show it
    assert any("differs from the published checkpoint file" in p for p in report.problems)
    assert not report.published_verified


def test_a_new_store_is_refused_where_a_checkpoint_was_published(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    with SqliteStore(db, verifier_id="kl-1", signing_key=KEY) as store:
        store.record_event(entry(1))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)  # the whole store deleted
    with pytest.raises(StoreError, match="was deleted or replaced"):
        SqliteStore(db, verifier_id="kl-1", signing_key=KEY)


def test_daemon_killed_then_wal_deleted_fails_audit_verify(tmp_path: Path) -> None:
    """End to end: a real node, SIGKILL, the WAL deleted; and exit statuses of audit verify."""
    cli = Cli()
    world = make_world(cli, tmp_path)
    chips = tmp_path / "chips"
    cli.ok("chip", "fabricate", "--manufacturer", world.manufacturer, "--model", "HX100",
           "--state", chips, "--count", "2")  # fmt: skip
    cert = world.verifier / "verifier.cert"

    def run_chips(port: int, rounds: int) -> None:
        cli.ok("chip", "run", "--verifier", f"127.0.0.1:{port}", "--state", chips,
               "--rounds", str(rounds), "--interval", "0")  # fmt: skip

    with serve(world, name="first") as daemon:
        run_chips(daemon.port, 1)
        assert daemon.stop() == 0  # clean: 2 entries in the database file, published
    proc = cli.run("audit", "verify", "--db", world.db)
    assert proc.returncode == 4, proc.stdout  # consistent, but no signature was checked
    assert "signatures NOT checked" in proc.stdout and "audit log OK" not in proc.stdout
    assert json.loads(cli.run("audit", "verify", "--db", world.db, "--json").stdout)["ok"] is False
    proc = cli.run("audit", "verify", "--db", world.db, "--verifier-cert", cert)
    assert proc.returncode == 0 and "audit log OK" in proc.stdout
    assert "published checkpoint: seq 2 (signature verified)" in proc.stdout

    file = published.checkpoint_file_for(world.db)
    with serve(world, name="second") as daemon:
        run_chips(daemon.port, 3)  # 6 more entries, published within a second
        deadline = time.monotonic() + HANG_TIMEOUT_S
        while published.unverified_seq(file.read_bytes()) != 8:
            assert time.monotonic() < deadline, "the node never published seq 8"
            time.sleep(0.05)
        daemon.proc.send_signal(signal.SIGKILL)
        daemon.proc.wait(timeout=HANG_TIMEOUT_S)
    os.unlink(f"{world.db}-wal")
    proc = cli.run("audit", "verify", "--db", world.db, "--verifier-cert", cert)
    assert proc.returncode == 1, proc.stdout
    assert "names seq 8 but the log ends at seq 2: 6 committed entries are lost" in proc.stdout


def test_licence_issuance_and_refusals_are_audited(node: Node) -> None:
    """Regression: the licence ledger was outside the hash chain (append-only by triggers)."""
    node.ledger.set_region_cap("MY-KL", Budgets(BUDGET))
    a, b = licensed_chip(node.w), licensed_chip(node.w, "hx100-b")
    node.session(a)  # issued
    node.session(b)  # refused: the region's cap
    node.ledger.set_region_cap("MY-KL", None)
    node.ledger.revoke_delegation(1)
    node.session(b)  # refused: the delegation is revoked
    records = list(node.store.audit_entries())
    assert [r.entry.kind for r in records] == [
        "attestation",
        "license-issued",
        "attestation",
        "license-refused-region-cap",
        "attestation",
        "license-refused-delegation",
    ]
    [issued] = node.ledger.license_records(a.ueid)
    e = records[1].entry
    assert (e.ueid, e.nonce) == (a.ueid, (1).to_bytes(8, "big"))
    assert e.evidence_digest == hashlib.sha256(issued.token).digest()
    assert records[3].entry.ueid == b.ueid and records[3].entry.evidence_digest == b""
    assert verify_audit(node.store, None).ok


@pytest.fixture
def node(w: World, tmp_path: Path) -> Iterator[Node]:
    n = make_node(w, tmp_path / "v.db")
    yield n
    n.store.close()
