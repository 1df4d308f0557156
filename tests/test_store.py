"""The verifier's persistence layer: SQLite store, hash-chained audit log, signed checkpoints."""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
import threading
from pathlib import Path

import pytest

from attest.codec.cbor import decode, encode
from attest.codec.cose import verify1
from attest.errors import StoreError
from attest.keys import SigningKey
from attest.messages import claims as C
from attest.messages.attestation import Meters
from attest.messages.content import ContentType
from attest.store import (
    Advance,
    AuditEntry,
    ChallengeConsumed,
    ChipRecord,
    Enroll,
    Nothing,
    SqliteStore,
    StateConflict,
    Store,
    entry_hash,
    verify_audit,
)
from attest.store.audit import GENESIS_HASH, sign_checkpoint
from attest.store.base import Commit
from attest.verify.state import ChipState, ChipStatus

VERIFIER = "verifier-eu-1"
VKEY = SigningKey.derive_insecure_for_tests("store-verifier")
U64_MAX = (1 << 64) - 1


def ueid(i: int) -> bytes:
    return b"\x01" + i.to_bytes(16, "big")


def nonce(i: int) -> bytes:
    return hashlib.sha256(b"nonce%d" % i).digest()


def state(i: int = 1, *, counter: int = 0, key: str = "chip") -> ChipState:
    return ChipState(
        ueid=ueid(i),
        device_key=SigningKey.derive_insecure_for_tests(f"{key}-{i}").public_key,
        hwmodel="H100-gov",
        bootcount=3,
        attest_counter=counter,
        meters=Meters(10**18, 5_000, 7),
        last_challenge_iat=1_700_000_000,
        last_seen_ms=1_700_000_000_123,
        last_evidence_digest=bytes(range(32)),
    )


def record(i: int = 1, **kw: object) -> ChipRecord:
    return ChipRecord(b"device-cert-%d" % i, b"manufacturer-cert", state(i, **kw))  # type: ignore[arg-type]


def entry(i: int, *, chip: int = 1, tier: int = 2) -> AuditEntry:
    return AuditEntry(
        time_ms=1_700_000_000_000 + i * 1000,
        verifier_id=VERIFIER,
        ueid=ueid(chip),
        tier=tier,
        reasons=(1, 7) if i % 2 else (),
        evidence_digest=hashlib.sha256(b"ev%d" % i).digest(),
        nonce=nonce(i),
        kind="attestation",
    )


def open_store(path: Path, **kw: object) -> SqliteStore:
    return SqliteStore(path, verifier_id=VERIFIER, **kw)  # type: ignore[arg-type]


def appraise(store: SqliteStore, i: int, *, chip: int = 1, advance: bool = True) -> None:
    """Issue challenge i and commit an appraisal for it (advancing the counter by one)."""
    store.issue_challenge(nonce(i), ueid(chip), 1000 * i, 1000 * i + 60_000)
    cur = store.get_chip(ueid(chip))
    assert cur is not None
    new = dataclasses.replace(cur.state, attest_counter=cur.state.attest_counter + 1)
    store.commit_appraisal(
        nonce=nonce(i),
        ueid=ueid(chip),
        now_ms=1000 * i + 5,
        commit=Advance(new, cur.state.attest_counter) if advance else Nothing(),
        entry=entry(i, chip=chip),
    )


def make_log(path: Path, n: int, every: int) -> None:
    with open_store(path, signing_key=VKEY, checkpoint_every=every) as store:
        store.enroll(record())
        for i in range(1, n + 1):
            appraise(store, i, advance=i % 3 != 0)


def raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


# -- chips -----------------------------------------------------------------------------------


def test_enroll_get_round_trip(tmp_path: Path) -> None:
    with open_store(tmp_path / "v.db") as store:
        assert isinstance(store, Store)
        assert store.get_chip(ueid(1)) is None
        assert store.enroll(record(1)) is True
        assert store.enroll(record(2)) is True
        assert store.get_chip(ueid(1)) == record(1)
        assert store.count_chips() == 2
        # Same key again: no-op, even if the caller's copy differs in other fields.
        assert store.enroll(record(1, counter=99)) is False
        assert store.get_chip(ueid(1)) == record(1)
        with pytest.raises(StoreError, match="another device key"):
            store.enroll(record(1, key="impostor"))
        assert store.count_chips() == 2


def test_uint64_max_round_trip_and_order(tmp_path: Path) -> None:
    big = dataclasses.replace(
        state(1),
        bootcount=U64_MAX,
        attest_counter=U64_MAX,
        meters=Meters(U64_MAX, U64_MAX, U64_MAX),
    )
    with open_store(tmp_path / "v.db") as store:
        store.enroll(ChipRecord(b"d", b"m", big))
        store.enroll(record(2, counter=(1 << 63) - 1))
        store.enroll(record(3, counter=1 << 63))
        assert store.get_chip(ueid(1)) == ChipRecord(b"d", b"m", big)
        with pytest.raises(StoreError, match="uint64"):
            store.enroll(ChipRecord(b"d", b"m", dataclasses.replace(state(4), bootcount=1 << 64)))
        assert store.count_chips() == 3
    # Big-endian BLOBs compare numerically in SQL, across the signed-64-bit boundary too.
    rows = (
        raw(tmp_path / "v.db").execute("SELECT ueid FROM chips ORDER BY attest_counter").fetchall()
    )
    assert [r[0] for r in rows] == [ueid(2), ueid(3), ueid(1)]


def test_set_status(tmp_path: Path) -> None:
    with open_store(tmp_path / "v.db") as store:
        store.enroll(record(1))
        store.set_status(ueid(1), ChipStatus.REVOKED)
        chip = store.get_chip(ueid(1))
        assert chip is not None and chip.state.status is ChipStatus.REVOKED
        # An appraisal commit never resurrects a revoked chip.
        appraise(store, 1)
        chip = store.get_chip(ueid(1))
        assert chip is not None
        assert chip.state.status is ChipStatus.REVOKED and chip.state.attest_counter == 1
        with pytest.raises(StoreError, match="unknown chip"):
            store.set_status(ueid(9), ChipStatus.ACTIVE)


# -- challenges and the appraisal transaction ------------------------------------------------


def test_challenges_issue_expire(tmp_path: Path) -> None:
    with open_store(tmp_path / "v.db") as store:
        store.issue_challenge(nonce(1), None, 0, 1000)
        store.issue_challenge(nonce(2), ueid(1), 0, 2000)
        store.issue_challenge(nonce(3), ueid(1), 0, 3000)
        with pytest.raises(StoreError, match="duplicate"):
            store.issue_challenge(nonce(1), None, 5, 10)
        ch = store.get_challenge(nonce(2))
        assert ch is not None and ch.ueid == ueid(1) and ch.expires_at_ms == 2000
        assert ch.consumed_at_ms is None
        store.commit_appraisal(
            nonce=nonce(1), ueid=ueid(1), now_ms=500, commit=Nothing(), entry=entry(1)
        )
        assert store.outstanding_challenges() == 2
        assert store.expire_challenges(999) == 0
        assert store.expire_challenges(2000) == 1  # nonce 2 unanswered; consumed nonce 1 purged
        assert store.get_challenge(nonce(1)) is None and store.get_challenge(nonce(2)) is None
        assert store.outstanding_challenges() == 1


def test_commit_consumes_nonce_exactly_once(tmp_path: Path) -> None:
    with open_store(tmp_path / "v.db") as store:
        store.enroll(record(1))
        store.issue_challenge(nonce(1), ueid(1), 1000, 61_000)
        new = state(1, counter=1)
        rec = store.commit_appraisal(
            nonce=nonce(1),
            ueid=ueid(1),
            now_ms=2000,
            commit=Advance(new, 0),
            entry=entry(1),
        )
        assert rec.seq == 1 and rec.prev_hash == GENESIS_HASH
        assert store.audit_head() == (1, rec.hash)
        chip = store.get_chip(ueid(1))
        assert chip is not None and chip.state == new
        ch = store.get_challenge(nonce(1))
        assert ch is not None and ch.consumed_at_ms == 2000
        # The replay: same nonce again, with a state that would advance further.
        for replay_nonce in (nonce(1), nonce(42)):  # consumed, and never issued
            with pytest.raises(ChallengeConsumed):
                store.commit_appraisal(
                    nonce=replay_nonce,
                    ueid=ueid(1),
                    now_ms=3000,
                    commit=Advance(state(1, counter=2), 1),
                    entry=entry(2),
                )
        assert store.get_chip(ueid(1)) == ChipRecord(b"device-cert-1", b"manufacturer-cert", new)
        assert store.audit_head() == (1, rec.hash)
        assert [r.seq for r in store.audit_entries()] == [1]


def test_rejection_and_auto_enrolment(tmp_path: Path) -> None:
    with open_store(tmp_path / "v.db") as store:
        store.issue_challenge(nonce(1), None, 0, 60_000)
        store.issue_challenge(nonce(2), None, 0, 60_000)
        # A rejection: nonce consumed and audited, no chip state touched.
        rej = dataclasses.replace(entry(1), tier=96, reasons=(12,), evidence_digest=b"")
        store.commit_appraisal(nonce=nonce(1), ueid=ueid(1), now_ms=10, commit=Nothing(), entry=rej)
        assert store.count_chips() == 0
        assert store.outstanding_challenges() == 1
        # Auto-enrolment: the chip was unknown when read; it is enrolled with the state its
        # accepted Evidence established.
        store.commit_appraisal(
            nonce=nonce(2),
            ueid=ueid(1),
            now_ms=20,
            commit=Enroll(record(1, counter=5)),
            entry=entry(2),
        )
        chip = store.get_chip(ueid(1))
        assert chip is not None and chip.state.attest_counter == 5
        assert [r.entry for r in store.audit_entries()] == [rej, entry(2)]


def test_state_update_of_unknown_chip_is_refused(tmp_path: Path) -> None:
    with open_store(tmp_path / "v.db") as store:
        store.issue_challenge(nonce(1), None, 0, 60_000)

        def commit(change: Commit) -> None:
            store.commit_appraisal(
                nonce=nonce(1), ueid=ueid(1), now_ms=1, commit=change, entry=entry(1)
            )

        # The caller believed it was enrolled (an Advance is only for a known chip; first
        # contact is an Enroll).
        with pytest.raises(StoreError, match="not enrolled"):
            commit(Advance(state(1), 0))
        with pytest.raises(StoreError, match="another chip"):
            commit(Advance(state(2), 0))
        with pytest.raises(StoreError, match="another chip"):
            commit(Enroll(record(2)))
        assert store.outstanding_challenges() == 1 and store.audit_head()[0] == 0
        assert store.count_chips() == 0


def test_stale_counter_rolls_back_everything(tmp_path: Path) -> None:
    with open_store(tmp_path / "v.db") as store:
        store.enroll(record(1, counter=7))
        store.issue_challenge(nonce(1), ueid(1), 0, 60_000)
        with pytest.raises(StateConflict):
            store.commit_appraisal(
                nonce=nonce(1),
                ueid=ueid(1),
                now_ms=5,
                commit=Advance(state(1, counter=8), 6),
                entry=entry(1),
            )
        chip = store.get_chip(ueid(1))
        assert chip is not None and chip.state.attest_counter == 7
        assert store.outstanding_challenges() == 1  # the nonce is still answerable
        assert store.audit_head() == (0, GENESIS_HASH)


@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "two-connections"])
def test_concurrent_commits_one_winner(tmp_path: Path, shared: bool) -> None:
    path = tmp_path / "v.db"
    first = open_store(path)
    second = first if shared else open_store(path)
    first.enroll(record(1, counter=10))
    for i in range(20):
        first.issue_challenge(nonce(i), ueid(1), 0, 60_000)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def session(store: SqliteStore, i: int, counter: int) -> None:
        barrier.wait()
        try:
            store.commit_appraisal(
                nonce=nonce(i),
                ueid=ueid(1),
                now_ms=100,
                commit=Advance(state(1, counter=counter + 1), counter),
                entry=entry(i),
            )
            outcomes.append("won")
        except StateConflict:
            outcomes.append("lost")

    for round_ in range(10):
        before = first.get_chip(ueid(1))
        assert before is not None
        c = before.state.attest_counter
        threads = [
            threading.Thread(target=session, args=(s, 2 * round_ + k, c))
            for k, s in enumerate((first, second))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        chip = first.get_chip(ueid(1))
        assert chip is not None and chip.state.attest_counter == c + 1
    assert outcomes.count("won") == 10 and outcomes.count("lost") == 10
    assert first.audit_head()[0] == 10 and first.outstanding_challenges() == 10
    first.close()
    second.close()


def test_concurrent_auto_enrolment_one_winner(tmp_path: Path) -> None:
    """Both sessions saw an unknown chip; the second must not record an unstored acceptance."""
    with open_store(tmp_path / "v.db") as store:

        def auto_enrol(i: int, rec: ChipRecord) -> None:
            store.issue_challenge(nonce(i), None, 0, 60_000)
            store.commit_appraisal(
                nonce=nonce(i), ueid=ueid(1), now_ms=1, commit=Enroll(rec), entry=entry(i)
            )

        auto_enrol(1, record(1, counter=4))
        with pytest.raises(StateConflict):
            auto_enrol(2, record(1, counter=9))
        # An impostor's key for the enrolled UEID: an Enroll of a chip enrolled meanwhile is a
        # lost race whatever its key (the node re-appraises against the registered chain).
        with pytest.raises(StateConflict, match="enrolled meanwhile"):
            auto_enrol(3, record(1, key="impostor"))
        chip = store.get_chip(ueid(1))
        assert chip is not None and chip.state.attest_counter == 4
        assert chip.state.device_key == state(1).device_key
        assert store.audit_head()[0] == 1 and store.outstanding_challenges() == 2


# -- persistence -----------------------------------------------------------------------------


def test_state_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    with open_store(path) as store:
        store.enroll(record(1))
        appraise(store, 1)
        store.issue_challenge(nonce(99), ueid(1), 0, 60_000)
        store.put_revocations(3, b"rl3")
        head = store.audit_head()
    with open_store(path) as store:
        chip = store.get_chip(ueid(1))
        assert chip is not None and chip.state.attest_counter == 1
        assert store.audit_head() == head
        assert store.outstanding_challenges() == 1
        assert store.get_revocations() == (3, b"rl3")
        appraise(store, 2)  # the chain continues across the reopen
        assert store.audit_head()[0] == 2
    with SqliteStore(path) as store:  # verifier_id is optional when reopening
        assert store.verifier_id == VERIFIER
    with pytest.raises(StoreError, match="belongs to verifier"):
        SqliteStore(path, verifier_id="someone-else")
    assert verify_audit(path, None).ok


def test_new_store_needs_verifier_id_and_rejects_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="verifier_id"):
        SqliteStore(tmp_path / "a.db")
    raw(tmp_path / "b.db").execute("CREATE TABLE meta (key TEXT, value)")
    with pytest.raises(StoreError, match="schema version"):
        open_store(tmp_path / "b.db")
    with pytest.raises(StoreError, match="no such store"):
        SqliteStore(tmp_path / "missing.db", readonly=True)


def test_closed_and_readonly_refuse_writes(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    store = open_store(path)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.count_chips()
    with SqliteStore(path, readonly=True) as ro:
        with pytest.raises(StoreError, match="read-only"):
            ro.enroll(record(1))
        assert ro.count_chips() == 0


def test_revocation_anti_rollback(tmp_path: Path) -> None:
    with open_store(tmp_path / "v.db") as store:
        assert store.get_revocations() is None
        store.put_revocations(5, b"list-5")
        for stale in (5, 4, 0):
            with pytest.raises(StoreError, match="not newer"):
                store.put_revocations(stale, b"old")
        store.put_revocations(U64_MAX, b"list-max")
        assert store.get_revocations() == (U64_MAX, b"list-max")


# -- the audit chain -------------------------------------------------------------------------


def test_hash_rule_matches_documentation() -> None:
    e = entry(1)
    body = encode(
        [1, e.time_ms, e.verifier_id, e.ueid, e.tier, [1, 7], e.evidence_digest, e.nonce, e.kind]
    )
    assert body[0] == 0x89  # a 9-item array
    expected = hashlib.sha256(b"attest-audit-v1" + bytes(32) + body).digest()
    assert entry_hash(GENESIS_HASH, 1, e) == expected
    with pytest.raises(ValueError):
        dataclasses.replace(e, evidence_digest=b"short")
    with pytest.raises(ValueError):
        dataclasses.replace(e, reasons=[1])  # type: ignore[arg-type]


def test_audit_chain_and_checkpoints_verify(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    make_log(path, 12, every=5)
    with SqliteStore(path, readonly=True) as store:
        records = list(store.audit_entries())
        assert [r.seq for r in records] == list(range(1, 13))
        prev = GENESIS_HASH
        for r in records:
            assert r.prev_hash == prev and r.hash == entry_hash(prev, r.seq, r.entry)
            prev = r.hash
        assert [r.seq for r in store.audit_entries(11)] == [11, 12]
        cps = list(store.audit_checkpoints())
        assert [c.seq for c in cps] == [5, 10, 12]  # 12: signed on close
        claims = decode(verify1(cps[0].token, VKEY.public_key, ContentType.AUDIT_CHECKPOINT))
        assert claims == {
            C.ISS: VERIFIER,
            C.IAT: records[4].entry.time_ms // 1000,
            C.HEM_AUDIT_SEQ: 5,
            C.HEM_AUDIT_HEAD: records[4].hash,
        }
        report = verify_audit(store, VKEY.public_key)
    assert report.ok and report.problems == ()
    assert report.entries == 12 and report.head_hash == prev and report.checkpoints_verified == 3
    # Reopening and closing again adds no checkpoint: the head is already signed.
    open_store(path, signing_key=VKEY, checkpoint_every=5).close()
    assert verify_audit(path, VKEY.public_key).checkpoints_verified == 3
    # Checked against the wrong key, every checkpoint looks forged.
    other = SigningKey.derive_insecure_for_tests("other").public_key
    assert not verify_audit(path, other).ok


def test_triggers_make_audit_append_only(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    make_log(path, 6, every=5)
    db = raw(path)
    for sql in (
        "UPDATE audit SET tier = 0 WHERE seq = 2",
        "DELETE FROM audit WHERE seq = 6",
        "DELETE FROM audit",
        "UPDATE checkpoints SET iat = 0",
        "DELETE FROM checkpoints",
        "INSERT INTO audit SELECT seq + 10, time_ms, verifier_id, ueid, tier, reasons, "
        "evidence_digest, nonce, kind, prev_hash, hash FROM audit WHERE seq = 6",
        "INSERT OR REPLACE INTO audit SELECT * FROM audit WHERE seq = 3",
    ):
        with pytest.raises(sqlite3.DatabaseError):
            db.execute(sql)
    db.close()
    assert verify_audit(path, VKEY.public_key).ok


def _problems(path: Path) -> str:
    report = verify_audit(path, VKEY.public_key)
    assert not report.ok
    return "\n".join(report.problems)


def test_detects_edited_entry(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    make_log(path, 12, every=5)
    db = raw(path)
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET tier = 0, reasons = x'80' WHERE seq = 11")  # whitewash a reject
    db.close()
    assert "seq 11: content does not match its hash" in _problems(path)
    # Without a key the chain alone still catches it.
    assert not verify_audit(path, None).ok


def test_detects_rehashed_edit_via_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    make_log(path, 12, every=5)
    with SqliteStore(path, readonly=True) as store:
        records = list(store.audit_entries())
    db = raw(path)
    db.execute("DROP TRIGGER audit_no_update")
    prev = records[2].prev_hash
    for r in records[2:]:  # edit seq 3, then recompute every later hash consistently
        e = dataclasses.replace(r.entry, tier=0) if r.seq == 3 else r.entry
        h = entry_hash(prev, r.seq, e)
        db.execute(
            "UPDATE audit SET tier = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (e.tier, prev, h, r.seq),
        )
        prev = h
    db.close()
    assert verify_audit(path, None).ok  # the chain alone is fooled ...
    assert "differs from the signed checkpoint" in _problems(path)  # ... the checkpoint is not


def test_detects_deleted_middle_entry(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    make_log(path, 12, every=5)
    db = raw(path)
    db.execute("DROP TRIGGER audit_no_delete")
    db.execute("DELETE FROM audit WHERE seq = 7")
    db.close()
    text = _problems(path)
    assert "seq 8 follows seq 6" in text and "seq 8: prev_hash does not link" in text


def test_detects_truncated_tail(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    make_log(path, 12, every=5)
    db = raw(path)
    db.execute("DROP TRIGGER audit_no_delete")
    db.execute("DELETE FROM audit WHERE seq > 8")
    db.close()
    assert "checkpoint at seq 10 but the log ends at seq 8: truncated" in _problems(path)


def test_detects_forged_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    make_log(path, 12, every=5)
    with SqliteStore(path, readonly=True) as store:
        rec = next(store.audit_entries(7))
    attacker = SigningKey.derive_insecure_for_tests("attacker")
    forged = sign_checkpoint(attacker, VERIFIER, rec)
    db = raw(path)
    db.execute(
        "INSERT INTO checkpoints VALUES (?, ?, ?, ?)",
        (forged.seq, forged.head_hash, forged.iat, forged.token),
    )
    db.close()
    assert "checkpoint #2 (seq 7): forged or corrupt" in _problems(path)


def test_detects_checkpoint_of_another_verifier(tmp_path: Path) -> None:
    path = tmp_path / "v.db"
    make_log(path, 3, every=100)
    with SqliteStore(path, readonly=True) as store:
        rec = next(store.audit_entries(2))
    cp = sign_checkpoint(VKEY, "verifier-us-2", rec)  # genuine key, wrong log
    db = raw(path)
    db.execute(
        "INSERT INTO checkpoints VALUES (?, ?, ?, ?)", (cp.seq, cp.head_hash, cp.iat, cp.token)
    )
    db.close()
    assert "issued by 'verifier-us-2'" in _problems(path)
