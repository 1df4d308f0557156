"""The shared backend: the core tables on one PostgreSQL database that several nodes use.

:class:`PostgresStore` is one verifier node's view of the database: the chip registry, the
challenges, the revocation list and the mechanisms' tables are shared by every node that opens
it, while each node appends to its **own** audit chain and signs its own checkpoints (the audit
and checkpoint tables are keyed by ``(verifier_id, seq)``). So a replay, a clone or a second
licence through another node is caught, and every chain still verifies on its own, with its
own node's key, exactly as an SQLite store's does (the same audit-v1 hash rule).

Correct across nodes without any lock in this process (every write is one READ COMMITTED
transaction of :class:`~attest.store.pg_db.PostgresDatabase`):

* **Nonce consumption** is ``UPDATE challenges SET consumed_at_ms ... WHERE nonce = ? AND
  consumed_at_ms IS NULL``: the row lock makes a second consumer wait, re-check the condition
  on the committed row and update nothing.
* **Counter advancement** is ``UPDATE chips ... WHERE ueid = ? AND attest_counter = ?`` (the
  value appraised against): a racing session that advanced the chip first makes it update
  nothing, which is :class:`~attest.store.base.StateConflict` (the node appraises again).
  Enrolment is ``INSERT ... ON CONFLICT DO NOTHING``. A trigger refuses any update that would
  move a counter or meter backwards.
* **The audit chain** of one verifier is appended under the row lock of its ``audit_heads``
  row (``UPDATE ... SET seq = seq + 1 RETURNING``), which serialises that node's appenders
  (worker processes of one node share its chain) and no one else; a trigger checks the gap-free
  order and others make entries and checkpoints append-only (no UPDATE, DELETE or TRUNCATE).
* **Revocation lists** are adopted under an advisory lock, so the numbers only grow.

Mechanism tables take the same care in their own SQL (attest/licensing/ledger.py takes a table
lock for issuing, attest/pods/tables.py bumps its version with one atomic update).

Encodings follow the SQLite store: uint64 as 8-byte big-endian ``bytea`` (bytea compares
bytewise, so SQL ordering stays numeric), times and tiers as ``bigint``. ``meta`` values are
``bytea`` (numbers as 8-byte big-endian). The schema is attest/store/pg_schema.py.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from attest.errors import StoreError
from attest.keys import SigningKey
from attest.store import published
from attest.store.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditRecord,
    Checkpoint,
    entry_hash,
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
from attest.store.columns import blob_to_u64, i64, u64_to_blob
from attest.store.migrations import READABLE_FROM, Migration, SchemaStatus, status
from attest.store.migrations import apply as apply_migrations
from attest.store.pg_db import (
    DEFAULT_POOL_SIZE,
    DEFAULT_RECONNECT_TIMEOUT_S,
    CommitUnknown,
    PgTransaction,
    PostgresDatabase,
    lock_schema,
    redact,
)
from attest.store.pg_schema import MIGRATIONS, SCHEMA_VERSION
from attest.store.rows import (
    AUDIT_COLUMNS,
    CHIP_COLUMNS,
    audit_from_row,
    audit_row,
    state_columns,
)
from attest.store.shared import SharedStore
from attest.verify.state import ChipStatus

DEFAULT_CHECKPOINT_EVERY = 100
_PAGE = 1000
#: the advisory lock around adopting a revocation list ("revocati" in ASCII)
_REVOCATIONS_LOCK = 0x7265766F63617469

_CHIP_UPDATE = (
    "UPDATE chips SET hwmodel = ?, bootcount = ?, attest_counter = ?, meter_flops = ?, "
    "meter_energy_mj = ?, meter_interconnect_bytes = ?, last_challenge_iat = ?, "
    "last_seen_ms = ?, last_evidence_digest = ? "
    "WHERE ueid = ? AND attest_counter = ? AND device_key = ?"
)
_CHIP_INSERT = (
    f"INSERT INTO chips ({CHIP_COLUMNS}) VALUES ({', '.join('?' * 14)}) "
    "ON CONFLICT (ueid) DO NOTHING"
)
#: takes this node's chain head (and its row lock, until COMMIT): the new seq and prev hash
_HEAD_BUMP = "UPDATE audit_heads SET seq = seq + 1 WHERE verifier_id = ? RETURNING seq, hash"
_AUDIT_INSERT = (
    f"WITH entry AS (INSERT INTO audit ({AUDIT_COLUMNS}) VALUES ({', '.join('?' * 11)})) "
    "UPDATE audit_heads SET hash = ? WHERE verifier_id = ?"
)
_RESULT_INSERT = "INSERT INTO results (verifier_id, seq, ueid, token) VALUES (?, ?, ?, ?)"
_CHECKPOINT_INSERT = (
    "INSERT INTO checkpoints (verifier_id, seq, head_hash, iat, token) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (verifier_id, seq) DO NOTHING"
)


def _chip_values(record: ChipRecord) -> tuple[Any, ...]:
    s = record.state
    return (
        s.ueid,
        s.device_key.raw,
        record.device_cert,
        record.manufacturer_cert,
        *state_columns(s),
        ChipStatus(s.status).value,
    )


class PostgresStore(SharedStore):
    """:class:`~attest.store.base.Store` of verifier ``verifier_id`` on a shared database.

    ``url`` is a libpq connection URL (``postgresql://user@host:port/dbname``; keep passwords
    in ``~/.pgpass`` or ``PGPASSWORD``, not in configuration files). The first node to open an
    empty database creates the schema; each node registers its ``verifier_id`` on first open.
    With ``signing_key`` the store signs a checkpoint of this node's chain every
    ``checkpoint_every`` entries and on :meth:`close`, and, given a ``checkpoint_file``,
    publishes its newest durable signed head there (attest/store/published.py): a database
    restored from an older backup then shows in ``attest audit verify``. ``readonly=True`` is for
    auditors.
    """

    _db: PostgresDatabase

    def __init__(
        self,
        url: str,
        *,
        verifier_id: str,
        signing_key: SigningKey | None = None,
        checkpoint_every: int = DEFAULT_CHECKPOINT_EVERY,
        readonly: bool = False,
        migrate: bool = True,
        pool_size: int = DEFAULT_POOL_SIZE,
        reconnect_timeout_s: float = DEFAULT_RECONNECT_TIMEOUT_S,
        checkpoint_file: str | os.PathLike[str] | None = None,
    ) -> None:
        if type(checkpoint_every) is not int or checkpoint_every < 1:
            raise ValueError("checkpoint_every must be a positive int")
        if readonly and signing_key is not None:
            raise ValueError("a read-only store cannot sign checkpoints")
        if type(verifier_id) is not str or not verifier_id:
            raise StoreError("a PostgreSQL store is opened for one verifier: give verifier_id")
        self._verifier_id = verifier_id
        self._signing_key = signing_key
        self._checkpoint_every = checkpoint_every
        self._url = url
        self._checkpoint_file = Path(checkpoint_file) if checkpoint_file is not None else None
        #: the seq of the checkpoint this store last published (0: none yet)
        self._published_seq = 0
        self.applied: list[Migration] = []
        self._db = PostgresDatabase(
            url,
            readonly=readonly,
            pool_size=pool_size,
            reconnect_timeout_s=reconnect_timeout_s,
            application_name=f"attest {verifier_id}"[:63],
        )
        try:
            self._schema = self._setup(migrate)
        except BaseException:
            self._db.close()
            raise

    # -- schema ------------------------------------------------------------------------------

    def _setup(self, migrate: bool) -> SchemaStatus:
        if not self._db.readonly:
            self._db.write(lambda txn: self._prepare(txn, migrate))
        version = self._db.read(self._version)
        if version is None or version < READABLE_FROM:
            raise StoreError(f"{redact(self._url)}: not an attest store (no schema_version)")
        try:
            found = status("postgresql", version, MIGRATIONS)
        except StoreError as exc:
            raise StoreError(f"{redact(self._url)}: {exc}") from None
        if self._db.readonly or not found.up_to_date:
            known = self._db.read(
                lambda t: t.execute(
                    "SELECT 1 FROM verifiers WHERE verifier_id = ?", (self._verifier_id,)
                ).fetchone()
            )
            if known is None and self._db.readonly:
                raise StoreError(f"no verifier {self._verifier_id!r} in {redact(self._url)}")
        return found

    @staticmethod
    def _version(txn: Transaction) -> int | None:
        exists = txn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0]
        if not exists:
            return None
        row = txn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return None if row is None else blob_to_u64(bytes(row[0]))

    def _prepare(self, txn: Transaction, migrate: bool) -> None:
        """Create or migrate the schema (under the schema lock), then register this node."""
        lock_schema(txn)
        version = self._version(txn)
        if version is None:
            if txn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0]:
                return  # a meta table without a version: _setup refuses it
            version = 0
            migrate = True  # an empty database: nothing to keep compatible with
        if migrate:
            self._migrate(txn, version)
        if version or migrate:
            self._register(txn)

    def _migrate(self, txn: Transaction, version: int) -> None:
        pending = status("postgresql", version, MIGRATIONS).pending

        def run(script: str) -> None:
            txn.execute(script)  # no parameters: sent as one multi-statement query

        def set_version(v: int) -> None:
            txn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (u64_to_blob(v),),
            )

        self.applied.extend(apply_migrations(pending, run, set_version))

    def _register(self, txn: Transaction) -> None:
        vid = self._verifier_id
        txn.execute(
            "INSERT INTO verifiers (verifier_id, joined_ms) "
            "VALUES (?, (extract(epoch FROM now()) * 1000)::bigint) "
            "ON CONFLICT (verifier_id) DO NOTHING",
            (vid,),
        )
        txn.execute(
            "INSERT INTO audit_heads (verifier_id, seq, hash) VALUES (?, 0, ?) "
            "ON CONFLICT (verifier_id) DO NOTHING",
            (vid, GENESIS_HASH),
        )

    @property
    def schema(self) -> SchemaStatus:
        return self._schema

    def migrate(self) -> list[Migration]:
        before = len(self.applied)

        def run(txn: Transaction) -> None:
            lock_schema(txn)
            self._migrate(txn, self._version(txn) or 0)
            self._register(txn)

        self._db.write(run)
        self._schema = status("postgresql", SCHEMA_VERSION, MIGRATIONS)
        return self.applied[before:]

    @property
    def db(self) -> PostgresDatabase:
        return self._db

    @property
    def concurrency(self) -> int:
        return self._db.pool_size

    @property
    def url(self) -> str:
        return self._url

    def verifiers(self) -> list[str]:
        """Every verifier that has opened this database (each has its own audit chain)."""
        rows = self._db.read(
            lambda t: t.execute("SELECT verifier_id FROM verifiers ORDER BY verifier_id").fetchall()
        )
        return [r[0] for r in rows]

    def for_verifier(self, verifier_id: str) -> PostgresStore:
        """A read-only view of another node's chain in the same database (for auditors)."""
        return PostgresStore(self._url, verifier_id=verifier_id, readonly=True, pool_size=1)

    # -- chips -------------------------------------------------------------------------------

    def enroll(self, record: ChipRecord) -> bool:
        values = _chip_values(record)
        return self._db.write(lambda txn: self._enroll(txn, record, values))

    @staticmethod
    def _enroll(txn: Transaction, record: ChipRecord, values: tuple[Any, ...]) -> bool:
        if txn.execute(_CHIP_INSERT, values).rowcount == 1:
            return True
        row = txn.execute(
            "SELECT device_key FROM chips WHERE ueid = ?", (record.state.ueid,)
        ).fetchone()
        if row is not None and bytes(row[0]) != record.state.device_key.raw:
            raise StoreError(
                f"ueid {record.state.ueid.hex()} is already enrolled with another device key"
            )
        return False

    # -- challenges --------------------------------------------------------------------------

    def issue_challenge(
        self, nonce: bytes, ueid: bytes | None, issued_at_ms: int, expires_at_ms: int
    ) -> None:
        if type(nonce) is not bytes or not nonce:
            raise StoreError("nonce must be non-empty bytes")
        if i64(expires_at_ms, "expires_at_ms") < i64(issued_at_ms, "issued_at_ms"):
            raise StoreError("a challenge cannot expire before it is issued")
        row = (nonce, self._verifier_id, ueid, issued_at_ms, expires_at_ms)

        def run(txn: Transaction) -> int:
            # Not flushed to disk on its own: losing a challenge in a crash can only make its
            # answer fail later (ChallengeConsumed), never accept anything, and the appraisal
            # that consumes it is flushed synchronously, which flushes this insert before it
            # (the log is sequential). The same rule as SQLite's group commit; one fsync less.
            assert isinstance(txn, PgTransaction)
            cursors = txn.finish(
                [
                    ("SET LOCAL synchronous_commit = off", ()),
                    (
                        "INSERT INTO challenges (nonce, verifier_id, ueid, issued_at_ms, "
                        "expires_at_ms) VALUES (?, ?, ?, ?, ?) ON CONFLICT (nonce) DO NOTHING",
                        row,
                    ),
                ]
            )
            return cursors[1].rowcount

        try:
            inserted = self._db.write(run)
        except CommitUnknown:
            # Whether it landed is a read away; recording a challenge twice is harmless.
            found = self.get_challenge(nonce)
            if found is not None and (found.issued_at_ms, found.expires_at_ms) == row[3:]:
                return
            inserted = self._db.write(run)
        if inserted != 1:
            raise StoreError("duplicate challenge nonce")

    def get_challenge(self, nonce: bytes) -> ChallengeRecord | None:
        row = self._db.read(
            lambda c: c.execute(
                "SELECT nonce, ueid, issued_at_ms, expires_at_ms, consumed_at_ms "
                "FROM challenges WHERE nonce = ?",
                (nonce,),
            ).fetchone()
        )
        if row is None:
            return None
        return ChallengeRecord(bytes(row[0]), None if row[1] is None else bytes(row[1]), *row[2:])

    def expire_challenges(self, now_ms: int) -> int:
        """Purge expired challenges (every node's); return how many of ours went unanswered."""
        i64(now_ms, "now_ms")

        def run(txn: Transaction) -> int:
            unanswered = txn.execute(
                "DELETE FROM challenges WHERE expires_at_ms <= ? AND consumed_at_ms IS NULL "
                "AND verifier_id = ?",
                (now_ms, self._verifier_id),
            ).rowcount
            txn.execute("DELETE FROM challenges WHERE expires_at_ms <= ?", (now_ms,))
            return unanswered

        return self._db.write(run)

    def outstanding_challenges(self) -> int:
        n: int = self._db.read(
            lambda c: c.execute(
                "SELECT count(*) FROM challenges WHERE consumed_at_ms IS NULL AND verifier_id = ?",
                (self._verifier_id,),
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
        if entry.verifier_id != self._verifier_id:
            raise StoreError(f"an entry of {entry.verifier_id!r} in the chain of another node")
        # Encode up front so a bad value fails before the transaction starts.
        enroll = _chip_values(commit.record) if isinstance(commit, Enroll) else None
        advance = (
            (
                *state_columns(commit.state),
                ueid,
                u64_to_blob(commit.expected_counter),
                commit.state.device_key.raw,
            )
            if isinstance(commit, Advance)
            else None
        )

        consume = (
            "UPDATE challenges SET consumed_at_ms = ? "
            "WHERE nonce = ? AND consumed_at_ms IS NULL AND verifier_id = ?",
            (now_ms, nonce, self._verifier_id),
        )
        chip: list[tuple[str, Sequence[Any]]] = []
        if enroll is not None:
            chip.append((_CHIP_INSERT, enroll))
        elif advance is not None:
            chip.append((_CHIP_UPDATE, advance))
        head = (_HEAD_BUMP, (self._verifier_id,))

        def run(txn: Transaction) -> AuditRecord:
            assert isinstance(txn, PgTransaction)
            # one round trip: BEGIN, the nonce, the chip, and this node's chain head (locked)
            cursors = txn.batch([consume, *chip, head])
            if cursors[0].rowcount != 1:
                raise ChallengeConsumed("nonce already consumed or never issued")
            if chip and cursors[1].rowcount != 1:
                if enroll is not None:
                    raise StateConflict(f"chip {ueid.hex()} was enrolled meanwhile")
                assert isinstance(commit, Advance)
                self._explain_conflict(txn, ueid, commit)
            for step in steps:
                step(txn)
            # one round trip: the entry, the new head hash, a checkpoint when due, COMMIT
            rec, statements = self._append_statements(cursors[-1].fetchone(), entry)
            if result is not None:  # the token beside its entry, in the same round trip
                statements.append(
                    (_RESULT_INSERT, (self._verifier_id, rec.seq, entry.ueid, result))
                )
            if not events:
                txn.finish(statements)
                return rec
            txn.batch(statements)
            for event in events:  # the session's other entries (pod alerts), right after
                self._append(txn, event)
            txn.finish([])
            return rec

        return self._db.write(run)

    def _append(self, txn: Transaction, entry: AuditEntry) -> AuditRecord:
        """Append ``entry`` to this node's chain inside ``txn`` (taking the head's row lock)."""
        assert isinstance(txn, PgTransaction)
        if entry.verifier_id != self._verifier_id:
            raise StoreError(f"an entry of {entry.verifier_id!r} in the chain of another node")
        head = txn.execute(_HEAD_BUMP, (self._verifier_id,)).fetchone()
        rec, statements = self._append_statements(head, entry)
        txn.batch(statements)
        return rec

    @staticmethod
    def _explain_conflict(txn: Transaction, ueid: bytes, commit: Advance) -> None:
        row = txn.execute(
            "SELECT attest_counter, device_key FROM chips WHERE ueid = ?", (ueid,)
        ).fetchone()
        if row is None:
            raise StoreError(f"chip {ueid.hex()} is not enrolled")
        if bytes(row[1]) != commit.state.device_key.raw:
            raise StoreError("a chip's device key cannot change")
        raise StateConflict(
            f"chip {ueid.hex()}: attest_counter is {blob_to_u64(bytes(row[0]))}, caller "
            f"expected {commit.expected_counter}"
        )

    # -- audit -------------------------------------------------------------------------------

    def _append_statements(
        self, head: Any, entry: AuditEntry
    ) -> tuple[AuditRecord, list[tuple[str, Sequence[Any]]]]:
        """The record after ``head`` (the bumped ``audit_heads`` row) and the statements that
        store it (the entry, the head's new hash, a signed checkpoint when one is due)."""
        vid = self._verifier_id
        if head is None:
            raise StoreError(f"verifier {vid!r} is not registered in this database")
        seq, prev = head[0], bytes(head[1])
        rec = AuditRecord(entry, seq, prev, entry_hash(prev, seq, entry))
        statements: list[tuple[str, Sequence[Any]]] = [
            (_AUDIT_INSERT, (*audit_row(rec), rec.hash, vid))
        ]
        if self._signing_key is not None and rec.seq % self._checkpoint_every == 0:
            cp = sign_checkpoint(self._signing_key, vid, rec)
            statements.append((_CHECKPOINT_INSERT, (vid, cp.seq, cp.head_hash, cp.iat, cp.token)))
        return rec, statements

    def _insert_checkpoint(self, txn: Transaction, rec: AuditRecord) -> Checkpoint | None:
        assert self._signing_key is not None
        cp = sign_checkpoint(self._signing_key, self._verifier_id, rec)
        cur = txn.execute(
            _CHECKPOINT_INSERT, (self._verifier_id, cp.seq, cp.head_hash, cp.iat, cp.token)
        )
        return cp if cur.rowcount == 1 else None

    def audit_entries(self, start_seq: int = 1) -> Iterator[AuditRecord]:
        """This node's records with ``seq >= start_seq`` in order, read in pages."""
        next_seq = start_seq
        while True:

            def page(c: Transaction, s: int = next_seq) -> list[Any]:
                return c.execute(
                    f"SELECT {AUDIT_COLUMNS} FROM audit WHERE verifier_id = ? AND seq >= ? "
                    "ORDER BY seq LIMIT ?",
                    (self._verifier_id, s, _PAGE),
                ).fetchall()

            rows = self._db.read(page)
            for row in rows:
                yield audit_from_row(_bytes_row(row))
            if len(rows) < _PAGE:
                return
            next_seq = rows[-1][0] + 1

    def audit_head(self) -> tuple[int, bytes]:
        row = self._db.read(
            lambda c: c.execute(
                "SELECT seq, hash FROM audit WHERE verifier_id = ? ORDER BY seq DESC LIMIT 1",
                (self._verifier_id,),
            ).fetchone()
        )
        return (0, GENESIS_HASH) if row is None else (row[0], bytes(row[1]))

    def audit_by_nonce(self, nonce: bytes) -> list[AuditRecord]:
        rows = self._db.read(
            lambda c: c.execute(
                f"SELECT {AUDIT_COLUMNS} FROM audit WHERE verifier_id = ? AND nonce = ? "
                "ORDER BY seq",
                (self._verifier_id, nonce),
            ).fetchall()
        )
        return [audit_from_row(_bytes_row(r)) for r in rows]

    def latest_result(self, ueid: bytes) -> bytes | None:
        if self._schema.current < 3:  # a read-only open of an older database: none kept
            return None
        row = self._db.read(
            lambda c: c.execute(
                "SELECT token FROM results WHERE verifier_id = ? AND ueid = ? "
                "ORDER BY seq DESC LIMIT 1",
                (self._verifier_id, ueid),
            ).fetchone()
        )
        return None if row is None else bytes(row[0])

    def result_of(self, seq: int) -> bytes | None:
        if self._schema.current < 3:
            return None
        row = self._db.read(
            lambda c: c.execute(
                "SELECT token FROM results WHERE verifier_id = ? AND seq = ?",
                (self._verifier_id, seq),
            ).fetchone()
        )
        return None if row is None else bytes(row[0])

    def audit_checkpoints(self) -> Iterator[Checkpoint]:
        rows = self._db.read(
            lambda c: c.execute(
                "SELECT seq, head_hash, iat, token FROM checkpoints WHERE verifier_id = ? "
                "ORDER BY seq",
                (self._verifier_id,),
            ).fetchall()
        )
        return iter([Checkpoint(r[0], bytes(r[1]), r[2], bytes(r[3])) for r in rows])

    def checkpoint(self) -> Checkpoint | None:
        if self._signing_key is None or self._db.readonly:
            return None

        def run(txn: Transaction) -> Checkpoint | None:
            row = txn.execute(
                f"SELECT {AUDIT_COLUMNS} FROM audit WHERE verifier_id = ? "
                "ORDER BY seq DESC LIMIT 1",
                (self._verifier_id,),
            ).fetchone()
            if row is None:
                return None
            return self._insert_checkpoint(txn, audit_from_row(_bytes_row(row)))

        return self._db.write(run)

    def publish_checkpoint(self) -> Checkpoint | None:
        """Write this node's newest signed head to :attr:`checkpoint_file` (None without a
        file, a key, or anything newer). A PostgreSQL commit is durable when it returns, so
        the head read here can be published as it is."""
        if self._checkpoint_file is None or self._signing_key is None or self._db.readonly:
            return None
        seq, _ = self.audit_head()
        if seq <= self._published_seq:
            return None

        def run(txn: Transaction) -> Checkpoint | None:
            signed = txn.execute(
                "SELECT seq, head_hash, iat, token FROM checkpoints "
                "WHERE verifier_id = ? AND seq = ?",
                (self._verifier_id, seq),
            ).fetchone()
            if signed is not None:
                return Checkpoint(*_bytes_row(signed))
            row = txn.execute(
                f"SELECT {AUDIT_COLUMNS} FROM audit WHERE verifier_id = ? AND seq = ?",
                (self._verifier_id, seq),
            ).fetchone()
            if row is None:
                return None
            return self._insert_checkpoint(txn, audit_from_row(_bytes_row(row)))

        cp = self._db.write(run)
        if cp is None:
            return None
        published.publish(self._checkpoint_file, cp.token, cp.seq)
        self._published_seq = cp.seq
        return cp

    @property
    def checkpoint_file(self) -> Path | None:
        """Where this store publishes its newest signed checkpoint (None: it does not)."""
        return self._checkpoint_file

    # -- metadata ----------------------------------------------------------------------------

    def put_revocations(self, number: int, token: bytes, audit: AuditEntry | None = None) -> None:
        """Adopt list ``number`` for every node of the database. The same list again is a
        no-op (nodes starting together all offer it); an older or different one is refused."""
        new = u64_to_blob(number)

        def run(txn: Transaction) -> None:
            txn.execute("SELECT pg_advisory_xact_lock(?)", (_REVOCATIONS_LOCK,))
            rows = dict(
                txn.execute(
                    "SELECT key, value FROM meta "
                    "WHERE key IN ('revocations_number', 'revocations_token')"
                ).fetchall()
            )
            stored = rows.get("revocations_number")
            if stored is not None:
                current = blob_to_u64(bytes(stored))
                if current == number and bytes(rows.get("revocations_token") or b"") == token:
                    return
                if current >= number:
                    raise StoreError(
                        f"revocation list {number} is not newer than stored list {current}"
                    )
            for row in (("revocations_number", new), ("revocations_token", token)):
                txn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    row,
                )
            if audit is not None:  # this node's adoption joins its own chain
                self._append(txn, audit)

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
        number, token = rows.get("revocations_number"), rows.get("revocations_token")
        if number is None or token is None:
            raise StoreError("corrupt revocation list in meta")
        return blob_to_u64(bytes(number)), bytes(token)

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Final checkpoint of this node's chain (if unsigned), then close. Idempotent."""
        if self._db.closed:
            return
        try:
            with contextlib.suppress(StoreError):  # a server that is gone cannot take it
                self.checkpoint()
                self.publish_checkpoint()
        finally:
            self._db.close()

    def __repr__(self) -> str:
        return f"PostgresStore({redact(self._url)!r}, verifier_id={self._verifier_id!r})"


def _bytes_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row with any memoryview as bytes (psycopg returns bytea as bytes; this keeps the row
    helpers safe should a loader be configured otherwise)."""
    return tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
