"""The PostgreSQL store against a real server: the Store contract, shared state, migrations.

Every test gets a fresh database on one throwaway server per session (the ``pg_url`` fixture in
conftest.py; skipped outside CI when no server can be started, failing in CI). The contract
tests run on both backends, so SQLite and PostgreSQL are held to the same behaviour.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from test_store import VERIFIER, VKEY, entry, nonce, record, state, ueid

from attest.errors import StoreError
from attest.messages.attestation import Meters
from attest.pods.tables import PodTables
from attest.store import (
    Advance,
    ChallengeConsumed,
    Enroll,
    Nothing,
    StateConflict,
    Store,
    open_store,
    verify_audit,
)
from attest.store.audit import GENESIS_HASH
from attest.store.postgres import PostgresStore
from attest.store.sqlite import SCHEMA, SqliteStore
from attest.verify.state import ChipStatus

OTHER = "verifier-eu-2"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Store]:
    """Opens stores of one backend on one shared location: ``make(verifier_id, **kw)``."""
    if request.param == "sqlite":
        location = str(tmp_path / "v.db")
    else:
        location = request.getfixturevalue("pg_url")
    opened: list[Store] = []

    def make(verifier_id: str = VERIFIER, **kw: Any) -> Store:
        store = open_store(location, verifier_id=verifier_id, **kw)
        opened.append(store)
        return store

    yield make  # type: ignore[misc]
    for s in opened:
        s.close()


def _appraise(store: Store, i: int, chip: int = 1) -> None:
    store.issue_challenge(nonce(i), ueid(chip), 1000 * i, 1000 * i + 60_000)
    _conclude(store, i, chip)


def _conclude(store: Store, i: int, chip: int = 1) -> None:
    """The appraisal's commit for challenge ``i`` (issued before)."""
    cur = store.get_chip(ueid(chip))
    assert cur is not None
    new = dataclasses.replace(cur.state, attest_counter=cur.state.attest_counter + 1)
    store.commit_appraisal(
        nonce=nonce(i),
        ueid=ueid(chip),
        now_ms=1000 * i + 5,
        commit=Advance(new, cur.state.attest_counter),
        entry=dataclasses.replace(entry(i, chip=chip), verifier_id=store.verifier_id),
    )


# -- the Store contract, on both backends ------------------------------------------------------


def test_contract_chips_and_uint64(backend: Callable[..., Store]) -> None:
    store = backend()
    assert isinstance(store, Store) and store.schema.up_to_date
    big = dataclasses.replace(
        state(1), bootcount=(1 << 64) - 1, attest_counter=1 << 63, meters=Meters(1, 2, 3)
    )
    assert store.enroll(dataclasses.replace(record(1), state=big)) is True
    assert store.enroll(record(1, counter=5)) is False
    with pytest.raises(StoreError, match="another device key"):
        store.enroll(record(1, key="impostor"))
    got = store.get_chip(ueid(1))
    assert got is not None and got.state == big
    store.set_status(ueid(1), ChipStatus.REVOKED)
    with pytest.raises(StoreError, match="unknown chip"):
        store.set_status(ueid(9), ChipStatus.ACTIVE)
    assert store.count_chips() == 1


def test_contract_nonce_once_and_conflicts(backend: Callable[..., Store]) -> None:
    store = backend()
    store.enroll(record(1, counter=7))
    store.issue_challenge(nonce(1), ueid(1), 0, 60_000)
    with pytest.raises(StoreError, match="duplicate"):
        store.issue_challenge(nonce(1), None, 0, 10)
    with pytest.raises(StateConflict):  # appraised against a state that is gone
        store.commit_appraisal(
            nonce=nonce(1), ueid=ueid(1), now_ms=5,
            commit=Advance(state(1, counter=8), 6), entry=entry(1),
        )  # fmt: skip
    assert store.outstanding_challenges() == 1 and store.audit_head() == (0, GENESIS_HASH)
    rec = store.commit_appraisal(
        nonce=nonce(1), ueid=ueid(1), now_ms=5,
        commit=Advance(state(1, counter=8), 7), entry=entry(1),
    )  # fmt: skip
    assert rec.seq == 1 and store.audit_by_nonce(nonce(1)) == [rec]
    for replay in (nonce(1), nonce(42)):
        with pytest.raises(ChallengeConsumed):
            store.commit_appraisal(
                nonce=replay, ueid=ueid(1), now_ms=6, commit=Nothing(), entry=entry(2)
            )
    with pytest.raises(StoreError, match="never go backwards"):
        # only the store's own trigger stands between a bug and a rolled-back counter
        store.issue_challenge(nonce(3), ueid(1), 0, 60_000)
        store.commit_appraisal(
            nonce=nonce(3), ueid=ueid(1), now_ms=7,
            commit=Advance(state(1, counter=2), 8), entry=entry(3),
        )  # fmt: skip
    assert store.expire_challenges(60_000) == 1
    chip = store.get_chip(ueid(1))
    assert chip is not None and chip.state.attest_counter == 8


def test_contract_concurrent_sessions_one_winner(backend: Callable[..., Store]) -> None:
    """Two connections (on PostgreSQL: two nodes) commit advances from one state at once."""
    first, second = backend(), backend(OTHER if _is_pg(backend) else VERIFIER)
    first.enroll(record(1, counter=10))
    outcomes: list[str] = []
    for round_ in range(8):
        c = first.get_chip(ueid(1)).state.attest_counter  # type: ignore[union-attr]
        barrier = threading.Barrier(2)

        def session(store: Store, i: int, c: int = c, barrier: Any = barrier) -> None:
            store.issue_challenge(nonce(i), ueid(1), 0, 60_000)
            barrier.wait()
            try:
                store.commit_appraisal(
                    nonce=nonce(i), ueid=ueid(1), now_ms=100,
                    commit=Advance(state(1, counter=c + 1), c),
                    entry=dataclasses.replace(entry(i), verifier_id=store.verifier_id),
                )  # fmt: skip
                outcomes.append("won")
            except StateConflict:
                outcomes.append("lost")

        threads = [
            threading.Thread(target=session, args=(s, 2 * round_ + k))
            for k, s in enumerate((first, second))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert first.get_chip(ueid(1)).state.attest_counter == c + 1  # type: ignore[union-attr]
    assert outcomes.count("won") == 8 and outcomes.count("lost") == 8


def test_contract_concurrent_enrolment_one_winner(backend: Callable[..., Store]) -> None:
    stores = [backend(), backend(OTHER if _is_pg(backend) else VERIFIER)]
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def enrol(i: int) -> None:
        store = stores[i]
        store.issue_challenge(nonce(i), None, 0, 60_000)
        barrier.wait()
        try:
            store.commit_appraisal(
                nonce=nonce(i), ueid=ueid(1), now_ms=1, commit=Enroll(record(1, counter=4 + i)),
                entry=dataclasses.replace(entry(i), verifier_id=store.verifier_id),
            )  # fmt: skip
            outcomes.append("won")
        except StateConflict:
            outcomes.append("lost")

    threads = [threading.Thread(target=enrol, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["lost", "won"] and stores[0].count_chips() == 1


def _is_pg(make: Callable[..., Store]) -> bool:
    probe = make()
    return isinstance(probe, PostgresStore)


# -- PostgreSQL: shared database, one chain per node ------------------------------------------


def test_contract_reference_values_only_grow(backend: Callable[..., Store]) -> None:
    a = backend()
    shared = isinstance(a, PostgresStore)  # PostgreSQL: a second node on the same database
    b = backend(OTHER) if shared else a
    a.put_reference_values("mfr-a", 2, b"two")
    for store in (a, b):
        with pytest.raises(StoreError, match="not newer than the stored document 2"):
            store.put_reference_values("mfr-a", 2, b"again")
    a.put_reference_values("mfr-b", 1, b"b")
    a.put_reference_values("mfr-a", 3, b"three")
    expected = [("mfr-a", 3, b"three"), ("mfr-b", 1, b"b")]
    assert a.reference_values() == b.reference_values() == expected  # every node sees them


def test_contract_audit_events_and_the_published_checkpoint(
    backend: Callable[..., Store], tmp_path: Path
) -> None:
    """Events join the chain in the transaction of what they record; the published file names
    the durable head (both backends: SPEC §11.2, §11.3)."""
    published_at = tmp_path / "node.checkpoint"
    store = backend(signing_key=VKEY, checkpoint_file=published_at)
    store.enroll(record(1))
    event = dataclasses.replace(entry(50), verifier_id=store.verifier_id, kind="pod-alert")
    store.issue_challenge(nonce(1), ueid(1), 1000, 61_000)
    cur = store.get_chip(ueid(1))
    assert cur is not None
    new = dataclasses.replace(cur.state, attest_counter=cur.state.attest_counter + 1)
    store.commit_appraisal(
        nonce=nonce(1), ueid=ueid(1), now_ms=1005, commit=Advance(new, cur.state.attest_counter),
        entry=dataclasses.replace(entry(1), verifier_id=store.verifier_id), events=[event],
    )  # fmt: skip
    licence = dataclasses.replace(event, kind="license-issued")
    wrote: list[int] = []
    store.record_event(licence, [lambda txn: wrote.append(1)])
    adopted = dataclasses.replace(event, kind="revocations")
    store.put_revocations(1, b"list-1", audit=adopted)

    def fails(txn: Any) -> None:
        raise StoreError("the write the event is about failed")

    with pytest.raises(StoreError, match="failed"):
        store.record_event(licence, [fails])  # rolled back with its entry
    kinds = [r.entry.kind for r in store.audit_entries()]
    assert kinds == ["attestation", "pod-alert", "license-issued", "revocations"] and wrote
    cp = store.publish_checkpoint()
    assert cp is not None and cp.seq == 4 and published_at.exists()
    assert store.publish_checkpoint() is None  # nothing newer
    report = verify_audit(store, VKEY.public_key, published_at.read_bytes())
    assert report.ok and report.published_seq == 4 and report.published_verified


def test_contract_result_tokens_kept_beside_their_entries(backend: Callable[..., Store]) -> None:
    """Every result token is kept with its audit entry, in its transaction; the newest per chip
    is served; a node sees only its own (both backends)."""
    store = backend()
    store.enroll(record(1))
    store.enroll(record(2))
    tokens = {}
    for i, chip in ((1, 1), (2, 2), (3, 1)):
        store.issue_challenge(nonce(i), ueid(chip), 1000 * i, 1000 * i + 60_000)
        e = dataclasses.replace(entry(i, chip=chip), verifier_id=store.verifier_id)
        tokens[i] = b"\xd2token-%d" % i
        rec = store.commit_appraisal(
            nonce=nonce(i), ueid=ueid(chip), now_ms=1000 * i, commit=Nothing(), entry=e,
            result=tokens[i],
        )  # fmt: skip
        assert store.result_of(rec.seq) == tokens[i]
    store.issue_challenge(nonce(4), ueid(1), 4000, 64_000)
    with pytest.raises(ChallengeConsumed):  # a failed commit keeps no token
        store.commit_appraisal(
            nonce=nonce(1), ueid=ueid(1), now_ms=4001, commit=Nothing(),
            entry=dataclasses.replace(entry(4), verifier_id=store.verifier_id), result=b"lost",
        )  # fmt: skip
    assert store.latest_result(ueid(1)) == tokens[3]
    assert store.latest_result(ueid(2)) == tokens[2]
    assert store.latest_result(ueid(9)) is None
    assert store.result_of(99) is None
    if isinstance(store, PostgresStore):  # another node on the database has its own results
        other = backend(OTHER)
        assert other.latest_result(ueid(1)) is None


def test_each_node_keeps_its_own_chain(pg_url: str) -> None:
    a = PostgresStore(pg_url, verifier_id=VERIFIER, signing_key=VKEY, checkpoint_every=3)
    other_key = type(VKEY).derive_insecure_for_tests("store-verifier-2")
    b = PostgresStore(pg_url, verifier_id=OTHER, signing_key=other_key, checkpoint_every=3)
    a.enroll(record(1))
    a.enroll(record(2))
    for i in range(1, 8):  # interleaved appends to two chains
        _appraise(a, 2 * i, chip=1)
        _appraise(b, 2 * i + 1, chip=2)
    assert a.audit_head()[0] == b.audit_head()[0] == 7
    assert a.count_chips() == b.count_chips() == 2  # one registry
    with pytest.raises(StoreError, match="chain of another node"):
        a.issue_challenge(nonce(99), None, 0, 60_000)
        a.commit_appraisal(nonce=nonce(99), ueid=ueid(1), now_ms=1, commit=Nothing(),
                           entry=dataclasses.replace(entry(99), verifier_id=OTHER))  # fmt: skip
    assert b.outstanding_challenges() == 0  # a's challenge is a's
    assert a.verifiers() == sorted([VERIFIER, OTHER])
    a.close()
    b.close()
    for vid, key in ((VERIFIER, VKEY), (OTHER, other_key)):
        with PostgresStore(pg_url, verifier_id=vid, readonly=True) as ro:
            report = verify_audit(ro, key.public_key)
            assert report.ok and report.entries == 7 and report.checkpoints_verified == 3
            with pytest.raises(StoreError, match="read-only"):
                ro.enroll(record(5))
    with pytest.raises(StoreError, match="no verifier"):
        PostgresStore(pg_url, verifier_id="nobody", readonly=True)


def test_append_only_and_monotonic_rules_in_the_server(pg_url: str) -> None:
    with PostgresStore(pg_url, verifier_id=VERIFIER, signing_key=VKEY, checkpoint_every=2) as s:
        s.enroll(record(1))
        for i in range(1, 5):
            _appraise(s, i)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for sql in (
            "UPDATE audit SET tier = 0 WHERE seq = 2",
            "DELETE FROM audit WHERE seq = 4",
            "TRUNCATE audit",
            "UPDATE checkpoints SET iat = 0",
            "DELETE FROM checkpoints",
            "INSERT INTO audit SELECT verifier_id, seq + 10, time_ms, ueid, tier, reasons, "
            "evidence_digest, nonce, kind, prev_hash, hash FROM audit WHERE seq = 4",
            "UPDATE chips SET attest_counter = '\\x0000000000000001'::bytea",
        ):
            with pytest.raises(psycopg.Error):
                conn.execute(sql)
    with PostgresStore(pg_url, verifier_id=VERIFIER, readonly=True) as ro:
        assert verify_audit(ro, VKEY.public_key).ok


def test_revocation_list_shared_and_only_newer(pg_url: str) -> None:
    a = PostgresStore(pg_url, verifier_id=VERIFIER)
    b = PostgresStore(pg_url, verifier_id=OTHER)
    a.put_revocations(5, b"list-5")
    b.put_revocations(5, b"list-5")  # the same list, offered by a node starting later: no-op
    assert b.get_revocations() == (5, b"list-5")
    for stale, token in ((5, b"other"), (4, b"list-4")):
        with pytest.raises(StoreError, match="not newer"):
            b.put_revocations(stale, token)
    b.put_revocations(6, b"list-6")
    assert a.get_revocations() == (6, b"list-6")
    a.close()
    b.close()


def test_pod_version_bumps_are_atomic_across_nodes(pg_url: str) -> None:
    stores = [PostgresStore(pg_url, verifier_id=v) for v in (VERIFIER, OTHER)]
    tables = [PodTables(s.db) for s in stores]
    seen: list[int] = []
    barrier = threading.Barrier(8)

    def write(i: int) -> None:
        barrier.wait()
        seen.append(tables[i % 2].put_pod_report(ueid(i), b"report", 1000 + i))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seen) == list(range(1, 9))  # no two changes share a version
    assert tables[0].pods_version() == 8 and len(tables[1].pod_reports()) == 8
    for s in stores:
        s.close()


def test_server_restart_is_a_pause_not_an_error(pg_cluster: Any, pg_url: str) -> None:
    # a generous wait: the server's crash recovery on a loaded 2-core machine is not timed
    with PostgresStore(
        pg_url, verifier_id=VERIFIER, signing_key=VKEY, reconnect_timeout_s=60
    ) as store:
        store.enroll(record(1))
        _appraise(store, 1)
        # The server dies while a chip computes its Evidence. Challenges are committed without
        # waiting for the disk (a crash may lose one: that session fails, nothing is accepted;
        # postgres.py); the enrolment after it is a synchronous commit and flushes it too.
        store.issue_challenge(nonce(2), ueid(1), 2000, 62_000)
        store.enroll(record(2))
        pg_cluster.kill()  # SIGKILL: the pooled connection is dead, the server must recover
        restarter = threading.Timer(0.3, pg_cluster.start)
        restarter.start()
        try:
            _conclude(store, 2)  # waits (in this thread) for the server, then commits
        finally:
            restarter.join()
        assert store.audit_head()[0] == 2
        assert verify_audit(store, VKEY.public_key).ok


def test_unreachable_server_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot connect"):
        PostgresStore(
            "postgresql://postgres@127.0.0.1:1/none", verifier_id=VERIFIER, reconnect_timeout_s=1
        )


# -- migrations --------------------------------------------------------------------------------


def test_sqlite_v1_file_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(SCHEMA)  # what attest before schema version 2 created
    conn.execute("INSERT INTO meta VALUES ('schema_version', 1), ('verifier_id', ?)", (VERIFIER,))
    conn.close()
    with SqliteStore(path, readonly=True) as ro:  # an auditor reads it as it is
        assert (ro.schema.current, [m.version for m in ro.schema.pending]) == (1, [2, 3])
        assert ro.latest_result(ueid(1)) is None  # version 1 kept no results
    with SqliteStore(path, migrate=False) as store:
        assert not store.schema.up_to_date
        assert [m.version for m in store.migrate()] == [2, 3]
        assert store.schema.up_to_date
    with SqliteStore(path) as store:  # nothing left to do
        assert store.applied == [] and store.schema.current == 3
        store.enroll(record(1))
        _appraise(store, 1)
    raw = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.DatabaseError, match="never go backwards"):
        raw.execute("UPDATE chips SET attest_counter = x'0000000000000000'")
    raw.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
    raw.close()
    with pytest.raises(StoreError, match="newer than this attest"):
        SqliteStore(path)


def test_postgresql_v1_database_is_migrated(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        from attest.store.pg_schema import SCHEMA_V1

        conn.execute(SCHEMA_V1)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '\\x0000000000000001'::bytea)")
    with PostgresStore(pg_url, verifier_id=VERIFIER, migrate=False) as store:
        assert [m.version for m in store.schema.pending] == [2, 3]
        assert [m.version for m in store.migrate()] == [2, 3]
    with PostgresStore(pg_url, verifier_id=VERIFIER) as store:
        assert store.applied == [] and store.schema.up_to_date
        store.enroll(record(1))
        _appraise(store, 1)
        assert store.audit_head()[0] == 1


def test_nodes_starting_together_create_the_schema_once(pg_url: str) -> None:
    stores: list[PostgresStore] = []
    barrier = threading.Barrier(4)

    def start(i: int) -> None:
        barrier.wait()
        stores.append(PostgresStore(pg_url, verifier_id=f"node-{i}"))

    threads = [threading.Thread(target=start, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(stores) == 4 and sum(len(s.applied) for s in stores) == 3
    assert stores[0].verifiers() == [f"node-{i}" for i in range(4)]
    for s in stores:
        s.close()


def test_a_starting_node_takes_no_table_lock_of_the_running_ones(pg_url: str) -> None:
    """The deadlock a chaos run once hit: a node starting while another issues a licence.

    Issuing holds ``license_ledger`` in SHARE ROW EXCLUSIVE mode and then updates
    ``license_delegations``; a start that re-ran the licensing DDL took the delegations' trigger
    lock first and then waited for the ledger's, so the server aborted one of them (40P01).
    A script already applied is not run again, so the start waits for nothing.
    """
    from attest.licensing.ledger import LicenseLedger

    first = PostgresStore(pg_url, verifier_id="node-1")
    LicenseLedger(first.db)  # the licensing tables exist, as on a running node
    with psycopg.connect(pg_url, autocommit=True) as issuing:
        issuing.execute("BEGIN")
        issuing.execute("LOCK TABLE license_ledger IN SHARE ROW EXCLUSIVE MODE")
        started: list[BaseException | None] = []

        def start() -> None:
            try:
                second = PostgresStore(pg_url, verifier_id="node-2")
                LicenseLedger(second.db)
                second.close()
                started.append(None)
            except BaseException as exc:  # reported below
                started.append(exc)

        t = threading.Thread(target=start)
        t.start()
        t.join(timeout=60)  # a liveness bound, not a speed target: before the fix it hung
        still_waiting = t.is_alive()
        # the issuance goes on to the delegations, as issue_license does
        issuing.execute("UPDATE license_delegations SET revoked = revoked")
        issuing.execute("COMMIT")
        t.join()
    first.close()
    assert not still_waiting, "the starting node waited for a running node's table lock"
    assert started == [None]


def test_a_changed_script_runs_again_and_an_applied_one_does_not(pg_url: str) -> None:
    store = PostgresStore(pg_url, verifier_id="node-1")
    db = store.db
    db.run_script("CREATE TABLE IF NOT EXISTS t_once (n int); INSERT INTO t_once VALUES (1);")
    db.run_script("CREATE TABLE IF NOT EXISTS t_once (n int); INSERT INTO t_once VALUES (1);")
    db.run_script("CREATE TABLE IF NOT EXISTS t_once (n int); INSERT INTO t_once VALUES (2);")
    rows = db.read(lambda t: t.execute("SELECT n FROM t_once ORDER BY n").fetchall())
    store.close()
    assert [r[0] for r in rows] == [1, 2]


# -- the operator commands on a shared database ------------------------------------------------


def test_migrate_and_audit_commands_on_postgresql(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from attest.cli.main import main
    from attest.node import provision
    from attest.store.pg_schema import SCHEMA_V1

    authority = provision.create_authority(tmp_path / "authority", "authority.test")
    _, config = provision.certify_verifier_folder(authority, tmp_path / "kl", "kl-1", "MY")
    with psycopg.connect(pg_url, autocommit=True) as conn:  # a database of schema version 1
        conn.execute(SCHEMA_V1)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '\\x0000000000000001'::bytea)")
    monkeypatch.setenv("ATTEST_STORE_PATH", pg_url)
    assert main(["verifier", "migrate", "--config", str(config), "--check"]) == 1
    assert "postgresql store: schema version 1, this attest: 3" in capsys.readouterr().out
    assert main(["verifier", "migrate", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "applied 2:" in out and "applied 3:" in out
    assert out.rstrip().endswith("schema version 3")
    assert main(["verifier", "migrate", "--config", str(config), "--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    cert = str(tmp_path / "kl" / "verifier.cert")
    assert main(["audit", "verify", "--db", pg_url, "--verifier-cert", cert]) == 0
    assert "audit log OK" in capsys.readouterr().out
    assert main(["audit", "show", "--db", pg_url, "--verifier-id", "kl-1", "--json"]) == 0
    assert main(["audit", "show", "--db", pg_url]) == 2  # whose chain? a one-line error
    assert "--verifier-id" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ATTEST_STORE_BACKEND": "sqlite", "ATTEST_STORE_PATH": "postgresql://h/db"}, "is sqlite"),
        ({"ATTEST_STORE_BACKEND": "postgresql"}, "must be a postgresql:// URL"),
        ({"ATTEST_STORE_BACKEND": "mysql"}, "unsupported backend"),
        ({"ATTEST_STORE_POOL_SIZE": "0"}, "pool_size"),
        ({"ATTEST_STORE_RECONNECT_TIMEOUT_S": "nan"}, "reconnect_timeout_s"),
    ],
)
def test_store_configuration_is_checked(env: dict[str, str], message: str) -> None:
    from attest.errors import ConfigError
    from attest.node.config import load_config

    with pytest.raises(ConfigError, match=message):
        load_config(None, env=env)


def test_a_url_is_not_taken_for_a_path(tmp_path: Path) -> None:
    from attest.cli.verifier_cmd import render_config
    from attest.node.config import load_config

    url = "postgresql://attest@db.example:5432/attest"
    config = load_config(None, env={"ATTEST_STORE_PATH": url})
    assert config.store_backend == "postgresql" and config.store_location() == url
    assert f'path = "{url}"' in render_config(config)
    assert load_config(None, env={}).store_backend == "sqlite"
