"""The embedded default backend: the core tables on one SQLite file in WAL mode.

:class:`SqliteStore` is the core tables (:class:`~attest.store.base.Store`) on a
:class:`~attest.store.sqlite_db.SqliteDatabase`, the file and its one transaction helper that
the mechanisms' tables share.

Durability: ``journal_mode=WAL`` with ``synchronous=FULL`` fsyncs the WAL on every commit, so
when :meth:`SqliteStore.commit_appraisal` returns the consumed nonce, the new chip state and the
audit entry survive a power cut. A database opened with ``group_sync=True`` (the daemon's)
commits with ``synchronous=NORMAL`` instead and its owner calls :meth:`SqliteStore.sync` (one
fsync of the WAL for many commits, see attest/node/groupsync.py) before acting on a commit.
Every write is one ``BEGIN IMMEDIATE`` transaction, which takes SQLite's write lock up front:
read-check-write sequences (nonce consumption, the optimistic counter check, appending to the
chain) are atomic even across processes sharing the file.

Threads: one connection (``check_same_thread=False``) guarded by a :class:`threading.RLock`
(re-entrant, so the reads and writes inside :meth:`SqliteDatabase.group_commit` can take it).

Integers: SQLite INTEGER is signed 64-bit, but bootcount, attest_counter and the meters are
uint64 on the wire. They are stored as 8-byte big-endian BLOBs (``CHECK(length(x) = 8)``):
exact for the whole uint64 range, and since SQLite compares BLOBs with ``memcmp``, big-endian
keeps SQL ordering (``attest_counter > ?``) numeric. Times, tiers and seq numbers are our own
values and use INTEGER; one outside the signed 64-bit range is refused with StoreError.

Published checkpoint: a store with a signing key also publishes its newest signed checkpoint
to a file beside it (attest/store/published.py) when it closes and whenever its owner calls
:meth:`SqliteStore.publish_checkpoint` (the daemon: every second), so that a store that lost
its newest commits (a deleted write-ahead log after a crash) is caught by ``attest audit
verify``. A new, empty store is not created where such a file already exists: that store was
deleted or replaced, and starting afresh would hide it.

Tables are ``STRICT`` (SQLite >= 3.37), so a column never silently holds a value of another type.
Triggers make ``audit`` and ``checkpoints`` append-only (UPDATE and DELETE abort), force audit rows
to be inserted in gap-free ``seq`` order and (schema version 2) keep a chip's counters and meters
from ever going backwards. Schema version 3 keeps each signed result token, as sent, in ``results``
under the ``seq`` of its appraisal's audit entry, written in the same transaction (append-only too;
the token is signed, so it needs no hash chain of its own). That guards against bugs and casual
edits; against someone with write access to the file, the hash chain and signed checkpoints are the
defence. The core schema is :data:`MIGRATIONS` (attest/store/migrations.py: applied on open);
mechanisms add their tables (``IF NOT EXISTS``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from attest.errors import StoreError
from attest.keys import SigningKey
from attest.store import published
from attest.store.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditRecord,
    Checkpoint,
    chain_next,
    sign_checkpoint,
)
from attest.store.base import (
    Advance,
    ChallengeConsumed,
    ChallengeRecord,
    ChipRecord,
    Commit,
    Enroll,
    StateConflict,
    Step,
    Transaction,
)
from attest.store.columns import blob_to_u64, i64, split_sql, u64_to_blob
from attest.store.migrations import READABLE_FROM, Migration, SchemaStatus, check_list, status
from attest.store.migrations import apply as apply_migrations
from attest.store.rows import (
    AUDIT_COLUMNS,
    CHIP_COLUMNS,
    audit_from_row,
    audit_row,
    state_columns,
)
from attest.store.shared import SharedStore
from attest.store.sqlite_db import BUSY_TIMEOUT_S, SqliteDatabase
from attest.verify.state import ChipStatus

DEFAULT_CHECKPOINT_EVERY = 100
_PAGE = 1000

SCHEMA = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value ANY
) STRICT;

CREATE TABLE chips (
    ueid                     BLOB PRIMARY KEY,
    device_key               BLOB NOT NULL CHECK (length(device_key) = 32),
    device_cert              BLOB NOT NULL,
    manufacturer_cert        BLOB NOT NULL,
    hwmodel                  TEXT NOT NULL,
    bootcount                BLOB NOT NULL CHECK (length(bootcount) = 8),      -- uint64 BE
    attest_counter           BLOB NOT NULL CHECK (length(attest_counter) = 8), -- uint64 BE
    meter_flops              BLOB NOT NULL CHECK (length(meter_flops) = 8),    -- uint64 BE
    meter_energy_mj          BLOB NOT NULL CHECK (length(meter_energy_mj) = 8),
    meter_interconnect_bytes BLOB NOT NULL CHECK (length(meter_interconnect_bytes) = 8),
    last_challenge_iat       INTEGER NOT NULL,                                  -- seconds
    last_seen_ms             INTEGER NOT NULL,
    last_evidence_digest     BLOB NOT NULL,
    status                   TEXT NOT NULL CHECK (status IN ('active', 'revoked'))
) STRICT, WITHOUT ROWID;

CREATE TABLE challenges (
    nonce          BLOB PRIMARY KEY,
    ueid           BLOB,
    issued_at_ms   INTEGER NOT NULL,
    expires_at_ms  INTEGER NOT NULL,
    consumed_at_ms INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX challenges_by_expiry ON challenges (expires_at_ms);

CREATE TABLE audit (
    seq             INTEGER PRIMARY KEY CHECK (seq >= 1),
    time_ms         INTEGER NOT NULL,
    verifier_id     TEXT NOT NULL,
    ueid            BLOB NOT NULL,
    tier            INTEGER NOT NULL,
    reasons         BLOB NOT NULL,   -- deterministic CBOR array of uint reason codes
    evidence_digest BLOB NOT NULL CHECK (length(evidence_digest) IN (0, 32)),
    nonce           BLOB NOT NULL,
    kind            TEXT NOT NULL,
    prev_hash       BLOB NOT NULL CHECK (length(prev_hash) = 32),
    hash            BLOB NOT NULL CHECK (length(hash) = 32)
) STRICT;
CREATE INDEX audit_by_ueid ON audit (ueid, seq);
CREATE TRIGGER audit_in_order BEFORE INSERT ON audit
    WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM audit)
    BEGIN SELECT RAISE(ABORT, 'audit seq must follow the head'); END;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;

CREATE TABLE checkpoints (
    seq       INTEGER PRIMARY KEY CHECK (seq >= 1),
    head_hash BLOB NOT NULL CHECK (length(head_hash) = 32),
    iat       INTEGER NOT NULL,   -- seconds
    token     BLOB NOT NULL       -- COSE_Sign1, audit-checkpoint content type
) STRICT;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
"""

#: version 2: counters and meters only move forward; results are found by their nonce
SCHEMA_V2 = """
CREATE TRIGGER chips_monotonic BEFORE UPDATE ON chips
    WHEN NEW.bootcount < OLD.bootcount
      OR NEW.attest_counter < OLD.attest_counter
      OR NEW.meter_flops < OLD.meter_flops
      OR NEW.meter_energy_mj < OLD.meter_energy_mj
      OR NEW.meter_interconnect_bytes < OLD.meter_interconnect_bytes
    BEGIN SELECT RAISE(ABORT, 'a chip''s counters and meters never go backwards'); END;
CREATE INDEX audit_by_nonce ON audit (nonce);
"""

#: version 3: every signed result token as sent, beside the audit entry of its appraisal
SCHEMA_V3 = """
CREATE TABLE results (
    seq   INTEGER PRIMARY KEY CHECK (seq >= 1),  -- the audit entry of the appraisal
    token BLOB NOT NULL                           -- the AttestationResult COSE_Sign1, as sent
) STRICT;
CREATE TRIGGER results_no_update BEFORE UPDATE ON results
    BEGIN SELECT RAISE(ABORT, 'results are append-only'); END;
CREATE TRIGGER results_no_delete BEFORE DELETE ON results
    BEGIN SELECT RAISE(ABORT, 'results are append-only'); END;
"""

#: the core schema of an SQLite store, version by version
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "core tables: meta, chips, challenges, audit chain, checkpoints", SCHEMA),
    Migration(
        2,
        "chips' counters and meters never go backwards (trigger); audit entries by nonce",
        SCHEMA_V2,
    ),
    Migration(3, "signed result tokens beside their audit entries", SCHEMA_V3),
)
check_list(MIGRATIONS)
SCHEMA_VERSION = MIGRATIONS[-1].version

_T = TypeVar("_T")


class SqliteStore(SharedStore):
    """:class:`~attest.store.base.Store` over one SQLite file.

    ``verifier_id`` is required when creating a file and must match when reopening one (a store
    belongs to one verifier). With ``signing_key`` the store signs an audit checkpoint every
    ``checkpoint_every`` entries (inside the appending transaction) and on :meth:`close`.
    ``readonly=True`` opens an existing file for auditing without creating or changing anything.
    A store with a key publishes checkpoints to ``checkpoint_file`` (default
    ``<path>.checkpoint``, see the module docstring); ``busy_timeout_s`` bounds each wait for
    another process's write lock.
    """

    _db: SqliteDatabase

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        verifier_id: str | None = None,
        signing_key: SigningKey | None = None,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        readonly: bool = False,
        group_sync: bool = False,
        migrate: bool = True,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
        checkpoint_file: str | os.PathLike[str] | None = None,
    ) -> None:
        if type(checkpoint_every) is not int or checkpoint_every < 1:
            raise ValueError("checkpoint_every must be a positive int")
        if readonly and signing_key is not None:
            raise ValueError("a read-only store cannot sign checkpoints")
        self._signing_key = signing_key
        self._checkpoint_every = checkpoint_every
        self._checkpoint_file = (
            Path(checkpoint_file)
            if checkpoint_file is not None
            else published.checkpoint_file_for(path)
        )
        #: the seq of the checkpoint this store last published (0: none yet)
        self._published_seq = 0
        self._db = SqliteDatabase(
            path, readonly=readonly, group_sync=group_sync, busy_timeout_s=busy_timeout_s
        )
        #: the migrations applied when this store was opened (or by :meth:`migrate`)
        self.applied: list[Migration] = []
        try:
            self._verifier_id = self._setup(verifier_id, migrate)
        except BaseException:
            self._db.close()
            raise

    # -- plumbing ----------------------------------------------------------------------------

    def _setup(self, verifier_id: str | None, migrate: bool) -> str:
        if not self._db.readonly:
            self._db.write(lambda txn: self._create_schema(txn, verifier_id, migrate))
        try:
            rows = self._db.read(lambda t: t.execute("SELECT key, value FROM meta").fetchall())
        except StoreError as exc:
            raise StoreError(f"{self.path}: not an attest store ({exc})") from None
        meta = dict(rows)
        version = meta.get("schema_version")
        if type(version) is not int or version < READABLE_FROM:
            raise StoreError(f"{self.path}: schema version {version!r} is not an attest store's")
        try:
            self._schema = status("sqlite", version, MIGRATIONS)
        except StoreError as exc:
            raise StoreError(f"{self.path}: {exc}") from None
        if self._schema.pending and migrate and not self._db.readonly:
            raise StoreError(f"{self.path}: schema version {version} was not migrated")
        stored = meta.get("verifier_id")
        if type(stored) is not str:
            raise StoreError(f"{self.path}: verifier_id missing from meta")
        if verifier_id is not None and verifier_id != stored:
            raise StoreError(f"{self.path}: belongs to verifier {stored!r}, not {verifier_id!r}")
        return stored

    def _create_schema(self, txn: Transaction, verifier_id: str | None, migrate: bool) -> None:
        """Create a new store at the latest version, or migrate an existing one (``migrate``)."""
        exists = txn.execute(
            "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        if exists:
            if migrate:
                self._migrate(txn)
            return
        if type(verifier_id) is not str or not verifier_id:
            raise StoreError("a new store needs a verifier_id")
        if self._signing_key is not None and self._checkpoint_file.exists():
            raise StoreError(
                f"{self.path} is a new, empty store but {self._checkpoint_file} holds a "
                "checkpoint this path published: the store was deleted or replaced. Move that "
                "file away to start a new store deliberately."
            )
        txn.execute(split_sql(SCHEMA)[0])  # meta, so that the versions can be recorded
        txn.execute("INSERT INTO meta (key, value) VALUES ('schema_version', 0)")
        txn.execute("INSERT INTO meta (key, value) VALUES ('verifier_id', ?)", (verifier_id,))
        self._migrate(txn, skip_meta=True)

    def _migrate(self, txn: Transaction, *, skip_meta: bool = False) -> None:
        row = txn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None or type(row[0]) is not int:
            return  # not an attest store: _setup says so
        try:
            pending = status("sqlite", row[0], MIGRATIONS).pending
        except StoreError as exc:
            raise StoreError(f"{self.path}: {exc}") from None

        def run(script: str) -> None:
            statements = split_sql(script)
            if skip_meta and script is SCHEMA:
                statements = statements[1:]
            for statement in statements:
                txn.execute(statement)

        def set_version(version: int) -> None:
            txn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))

        self.applied.extend(apply_migrations(pending, run, set_version))

    @property
    def schema(self) -> SchemaStatus:
        """The schema version as found when opened (``pending`` is empty once migrated)."""
        return self._schema

    def migrate(self) -> list[Migration]:
        """Apply pending migrations now (a store opened with ``migrate=False``)."""
        before = len(self.applied)
        self._db.write(lambda txn: self._migrate(txn))
        self._schema = status("sqlite", SCHEMA_VERSION, MIGRATIONS)
        return self.applied[before:]

    @property
    def db(self) -> SqliteDatabase:
        return self._db

    @property
    def concurrency(self) -> int:
        return 1  # one connection behind one lock: more threads would only queue

    @property
    def path(self) -> Path:
        return self._db.path

    @property
    def checkpoint_file(self) -> Path:
        """Where this store publishes its newest signed checkpoint (attest/store/published.py)."""
        return self._checkpoint_file

    def group_commit(self) -> contextlib.AbstractContextManager[None]:
        """See :meth:`SqliteDatabase.group_commit`."""
        return self._db.group_commit()

    def sync(self) -> None:
        self._db.sync()

    # -- chips -------------------------------------------------------------------------------

    def enroll(self, record: ChipRecord) -> bool:
        return self._db.write(lambda conn: self._enroll(conn, record))

    @staticmethod
    def _enroll(conn: Transaction, record: ChipRecord) -> bool:
        s = record.state
        row = conn.execute("SELECT device_key FROM chips WHERE ueid = ?", (s.ueid,)).fetchone()
        if row is not None:
            if row[0] != s.device_key.raw:
                raise StoreError(f"ueid {s.ueid.hex()} is already enrolled with another device key")
            return False
        conn.execute(
            f"INSERT INTO chips ({CHIP_COLUMNS}) VALUES ({', '.join('?' * 14)})",
            (
                s.ueid,
                s.device_key.raw,
                record.device_cert,
                record.manufacturer_cert,
                *state_columns(s),
                ChipStatus(s.status).value,
            ),
        )
        return True

    # -- challenges --------------------------------------------------------------------------

    def issue_challenge(
        self, nonce: bytes, ueid: bytes | None, issued_at_ms: int, expires_at_ms: int
    ) -> None:
        if type(nonce) is not bytes or not nonce:
            raise StoreError("nonce must be non-empty bytes")
        if i64(expires_at_ms, "expires_at_ms") < i64(issued_at_ms, "issued_at_ms"):
            raise StoreError("a challenge cannot expire before it is issued")

        def run(conn: Transaction) -> None:
            try:
                conn.execute(
                    "INSERT INTO challenges (nonce, ueid, issued_at_ms, expires_at_ms) "
                    "VALUES (?, ?, ?, ?)",
                    (nonce, ueid, issued_at_ms, expires_at_ms),
                )
            except sqlite3.IntegrityError:
                raise StoreError("duplicate challenge nonce") from None

        self._db.write(run)

    def get_challenge(self, nonce: bytes) -> ChallengeRecord | None:
        row = self._db.read(
            lambda c: c.execute(
                "SELECT nonce, ueid, issued_at_ms, expires_at_ms, consumed_at_ms "
                "FROM challenges WHERE nonce = ?",
                (nonce,),
            ).fetchone()
        )
        return None if row is None else ChallengeRecord(*row)

    def expire_challenges(self, now_ms: int) -> int:
        """Purge every challenge whose expiry has passed; return how many were never answered.

        Consumed ones go too: after expiry a replay fails the caller's expiry check, and an
        unknown nonce raises :class:`ChallengeConsumed` anyway, so keeping them buys nothing.
        """
        i64(now_ms, "now_ms")

        def run(conn: Transaction) -> int:
            unanswered = conn.execute(
                "DELETE FROM challenges WHERE expires_at_ms <= ? AND consumed_at_ms IS NULL",
                (now_ms,),
            ).rowcount
            conn.execute("DELETE FROM challenges WHERE expires_at_ms <= ?", (now_ms,))
            return unanswered

        return self._db.write(run)

    def outstanding_challenges(self) -> int:
        n: int = self._db.read(
            lambda c: c.execute(
                "SELECT count(*) FROM challenges WHERE consumed_at_ms IS NULL"
            ).fetchone()[0]
        )
        return n

    # -- the appraisal transaction -----------------------------------------------------------

    def commit_appraisal(
        self,
        *,
        nonce: bytes,
        ueid: bytes,
        now_ms: int,
        commit: Commit,
        entry: AuditEntry,
        steps: Sequence[Step] = (),
        events: Sequence[AuditEntry] = (),
        result: bytes | None = None,
    ) -> AuditRecord:
        i64(now_ms, "now_ms")
        if isinstance(commit, Enroll) and commit.record.state.ueid != ueid:
            raise StoreError("the enrolment record is for another chip")
        if isinstance(commit, Advance) and commit.state.ueid != ueid:
            raise StoreError("the new state is for another chip")
        # Encode up front so a bad value fails before the transaction starts.
        columns = state_columns(commit.state) if isinstance(commit, Advance) else None

        def run(txn: Transaction) -> AuditRecord:
            cur = txn.execute(
                "UPDATE challenges SET consumed_at_ms = ? "
                "WHERE nonce = ? AND consumed_at_ms IS NULL",
                (now_ms, nonce),
            )
            if cur.rowcount != 1:
                raise ChallengeConsumed("nonce already consumed or never issued")
            if isinstance(commit, Enroll):
                # The chip must still be absent (a racing session may have enrolled it).
                row = txn.execute("SELECT 1 FROM chips WHERE ueid = ?", (ueid,)).fetchone()
                if row is not None:
                    raise StateConflict(f"chip {ueid.hex()} was enrolled meanwhile")
                self._enroll(txn, commit.record)
            elif isinstance(commit, Advance):
                assert columns is not None
                row = txn.execute(
                    "SELECT attest_counter, device_key FROM chips WHERE ueid = ?", (ueid,)
                ).fetchone()
                if row is None:
                    raise StoreError(f"chip {ueid.hex()} is not enrolled")
                # Optimistic check: the chip must be as the caller read it.
                stored = blob_to_u64(row[0])
                if stored != commit.expected_counter:
                    raise StateConflict(
                        f"chip {ueid.hex()}: attest_counter is {stored}, caller expected "
                        f"{commit.expected_counter}"
                    )
                if row[1] != commit.state.device_key.raw:
                    raise StoreError("a chip's device key cannot change")
                txn.execute(
                    "UPDATE chips SET hwmodel = ?, bootcount = ?, attest_counter = ?, "
                    "meter_flops = ?, meter_energy_mj = ?, meter_interconnect_bytes = ?, "
                    "last_challenge_iat = ?, last_seen_ms = ?, last_evidence_digest = ? "
                    "WHERE ueid = ?",
                    (*columns, ueid),
                )
            for step in steps:
                step(txn)
            record = self._append(txn, entry)
            if result is not None:
                txn.execute("INSERT INTO results (seq, token) VALUES (?, ?)", (record.seq, result))
            for event in events:
                self._append(txn, event)
            return record

        return self._db.write(run)

    # -- audit -------------------------------------------------------------------------------

    @staticmethod
    def _head(conn: Transaction) -> tuple[int, bytes]:
        row = conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (0, GENESIS_HASH) if row is None else (row[0], row[1])

    def _append(self, conn: Transaction, entry: AuditEntry) -> AuditRecord:
        rec = chain_next(self._head(conn), entry)
        conn.execute(
            f"INSERT INTO audit ({AUDIT_COLUMNS}) VALUES ({', '.join('?' * 11)})",
            audit_row(rec),
        )
        if self._signing_key is not None and rec.seq % self._checkpoint_every == 0:
            self._insert_checkpoint(conn, rec)
        return rec

    def _insert_checkpoint(self, conn: Transaction, rec: AuditRecord) -> Checkpoint:
        assert self._signing_key is not None
        cp = sign_checkpoint(self._signing_key, self._verifier_id, rec)
        conn.execute(
            "INSERT INTO checkpoints (seq, head_hash, iat, token) VALUES (?, ?, ?, ?)",
            (cp.seq, cp.head_hash, cp.iat, cp.token),
        )
        return cp

    def audit_entries(self, start_seq: int = 1) -> Iterator[AuditRecord]:
        """Records with ``seq >= start_seq`` in order, read in pages (the lock is not held
        between pages, so a long audit does not stall the appraisal path)."""
        next_seq = start_seq
        while True:

            def page(c: Transaction, s: int = next_seq) -> list[Any]:
                return c.execute(
                    f"SELECT {AUDIT_COLUMNS} FROM audit WHERE seq >= ? ORDER BY seq LIMIT ?",
                    (s, _PAGE),
                ).fetchall()

            rows = self._db.read(page)
            for row in rows:
                yield audit_from_row(row)
            if len(rows) < _PAGE:
                return
            next_seq = rows[-1][0] + 1

    def audit_head(self) -> tuple[int, bytes]:
        return self._db.read(self._head)

    def audit_by_nonce(self, nonce: bytes) -> list[AuditRecord]:
        rows = self._db.read(
            lambda c: c.execute(
                f"SELECT {AUDIT_COLUMNS} FROM audit WHERE nonce = ? ORDER BY seq", (nonce,)
            ).fetchall()
        )
        return [audit_from_row(row) for row in rows]

    def latest_result(self, ueid: bytes) -> bytes | None:
        if self._schema.current < 3:  # a read-only open of an older file: none were kept
            return None
        # the chip's entries newest first (index audit_by_ueid); the first one with a token
        row = self._db.read(
            lambda c: c.execute(
                "SELECT r.token FROM audit a JOIN results r ON r.seq = a.seq "
                "WHERE a.ueid = ? ORDER BY a.seq DESC LIMIT 1",
                (ueid,),
            ).fetchone()
        )
        return None if row is None else bytes(row[0])

    def result_of(self, seq: int) -> bytes | None:
        if self._schema.current < 3:
            return None
        row = self._db.read(
            lambda c: c.execute("SELECT token FROM results WHERE seq = ?", (seq,)).fetchone()
        )
        return None if row is None else bytes(row[0])

    def audit_checkpoints(self) -> Iterator[Checkpoint]:
        rows = self._db.read(
            lambda c: c.execute(
                "SELECT seq, head_hash, iat, token FROM checkpoints ORDER BY seq"
            ).fetchall()
        )
        return iter([Checkpoint(*row) for row in rows])

    def checkpoint(self) -> Checkpoint | None:
        if self._signing_key is None or self._db.readonly:
            return None
        return self._db.write(lambda conn: self._sign_head(conn, None)[0])

    def _sign_head(self, conn: Transaction, upto: int | None) -> tuple[Checkpoint | None, bool]:
        """Sign entry ``upto`` (default: the head) unless signed: (its checkpoint, new?)."""
        where = "" if upto is None else "WHERE seq = ?"
        row = conn.execute(
            f"SELECT {AUDIT_COLUMNS} FROM audit {where} ORDER BY seq DESC LIMIT 1",
            () if upto is None else (upto,),
        ).fetchone()
        if row is None:
            return None, False
        done = conn.execute(
            "SELECT seq, head_hash, iat, token FROM checkpoints WHERE seq = ?", (row[0],)
        ).fetchone()
        if done:
            return Checkpoint(*done), False
        return self._insert_checkpoint(conn, audit_from_row(row)), True

    def publish_checkpoint(self) -> Checkpoint | None:
        """Publish the durable head: read it, make every commit durable, sign it (a checkpoint
        row, unless that entry is signed already) and write it to :attr:`checkpoint_file`.

        None when there is nothing newer to publish (or no key). The checkpoint row itself
        becomes durable with the next sync; the file does not depend on it.
        """
        if self._signing_key is None or self._db.readonly:
            return None
        seq, _ = self.audit_head()
        if seq <= self._published_seq:
            return None
        self._db.sync()  # everything up to seq is now on stable storage
        cp, _ = self._db.write(lambda conn: self._sign_head(conn, seq))
        if cp is None:
            return None
        published.publish(self._checkpoint_file, cp.token, cp.seq)
        self._published_seq = cp.seq
        return cp

    # -- metadata ----------------------------------------------------------------------------

    def put_revocations(self, number: int, token: bytes, audit: AuditEntry | None = None) -> None:
        new = u64_to_blob(number)

        def run(conn: Transaction) -> None:
            row = conn.execute("SELECT value FROM meta WHERE key = 'revocations_number'").fetchone()
            if row is not None and blob_to_u64(row[0]) >= number:
                raise StoreError(
                    f"revocation list {number} is not newer than stored list {blob_to_u64(row[0])}"
                )
            for row in (("revocations_number", new), ("revocations_token", token)):
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    row,
                )
            if audit is not None:
                self._append(conn, audit)

        self._db.write(run)

    def get_revocations(self) -> tuple[int, bytes] | None:
        rows = self._db.read(
            lambda c: dict(
                c.execute(
                    "SELECT key, value FROM meta "
                    "WHERE key IN ('revocations_number', 'revocations_token')"
                ).fetchall()
            )
        )
        if not rows:
            return None
        token = rows.get("revocations_token")
        if type(token) is not bytes:
            raise StoreError("corrupt revocation list in meta")
        return blob_to_u64(rows.get("revocations_number")), token  # type: ignore[arg-type]

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Final checkpoint (if a key is set and the head is unsigned), published, then close.

        Idempotent. A store that cannot write any more (disk full, locked) still closes.
        """
        if self._db.closed:
            return
        try:
            self.checkpoint()
            self._db.sync()
            self.publish_checkpoint()
        finally:
            self._db.close()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r}, verifier_id={self._verifier_id!r})"
