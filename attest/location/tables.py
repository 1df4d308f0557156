"""Location verification's tables: signed location records, and the open sessions of chips.

They live in the node's database beside the core tables (or, with ``[location] database``, in
a database the landmarks of one deployment share) and use its transaction helper
(:class:`~attest.store.base.Database`), in the SQL common to SQLite and PostgreSQL.

* ``location_records`` — every LocationRecord a landmark signed, with the landmark's
  certificate (so any reader can check it), append-only by use: a record is a signed fact.
* ``location_sessions`` — one row per live session of a chip at a node: written when the chip
  sends EVIDENCE (one transaction that also reads the other nodes' live rows, so of two
  sessions that open at once the second always sees the first), refreshed each round, deleted
  when the connection ends, and ignored once ``expires_ms`` passed (a node that died).
"""

from __future__ import annotations

from typing import Any

from attest.location.appraisal import OpenSession
from attest.store.base import Database, Step, Transaction
from attest.store.columns import i64

#: created with IF NOT EXISTS on every writable open
SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS location_records (
    digest        BLOB PRIMARY KEY,
    ueid          BLOB NOT NULL,
    landmark      TEXT NOT NULL,
    time_ms       INTEGER NOT NULL,
    token         BLOB NOT NULL,
    landmark_cert BLOB NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS location_records_by_chip ON location_records (ueid, time_ms);
CREATE TABLE IF NOT EXISTS location_sessions (
    ueid       BLOB NOT NULL,
    node       TEXT NOT NULL,
    session_id BLOB NOT NULL,
    opened_ms  INTEGER NOT NULL,
    seen_ms    INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (ueid, node, session_id)
) STRICT, WITHOUT ROWID;
"""
#: the DDL per database dialect
SCHEMA: dict[str, str] = {"sqlite": SQLITE_SCHEMA}

#: most stored records one appraisal reads for a chip (newest first)
MAX_RECORDS_READ = 64


class LocationTables:
    """Records and open sessions (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        if not db.readonly:
            db.run_script(SCHEMA[db.dialect])

    # -- records ---------------------------------------------------------------------------
    @staticmethod
    def record_step(
        digest: bytes, ueid: bytes, landmark: str, time_ms: int, token: bytes, cert: bytes
    ) -> Step:
        """Store a signed record, inside another transaction (the same record twice: no-op)."""
        i64(time_ms, "time_ms")

        def step(txn: Transaction) -> None:
            txn.execute(
                "INSERT INTO location_records (digest, ueid, landmark, time_ms, token, "
                "landmark_cert) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING",
                (digest, ueid, landmark, time_ms, token, cert),
            )

        return step

    def put_record(
        self, digest: bytes, ueid: bytes, landmark: str, time_ms: int, token: bytes, cert: bytes
    ) -> None:
        self.db.write(self.record_step(digest, ueid, landmark, time_ms, token, cert))

    def records_of(self, ueid: bytes, since_ms: int) -> list[tuple[bytes, bytes, bytes]]:
        """The chip's newest records since ``since_ms``: (digest, token, landmark cert)."""
        rows: list[Any] = self.db.read(
            lambda t: t.execute(
                "SELECT digest, token, landmark_cert FROM location_records "
                "WHERE ueid = ? AND time_ms >= ? ORDER BY time_ms DESC, digest LIMIT ?",
                (ueid, since_ms, MAX_RECORDS_READ),
            ).fetchall()
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def all_records(self) -> list[tuple[bytes, bytes, str, int, bytes, bytes]]:
        """Every record: (digest, ueid, landmark, time_ms, token, landmark cert), by chip."""
        rows: list[Any] = self.db.read(
            lambda t: t.execute(
                "SELECT digest, ueid, landmark, time_ms, token, landmark_cert "
                "FROM location_records ORDER BY ueid, time_ms, digest"
            ).fetchall()
        )
        return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]

    # -- open sessions ---------------------------------------------------------------------
    def open_session(
        self, ueid: bytes, node: str, session_id: bytes, now_ms: int, ttl_ms: int
    ) -> list[OpenSession]:
        """Record (or refresh) this session of the chip; the *other* nodes' live sessions of
        it, read in the same transaction. Expired rows of the chip are deleted on the way."""
        i64(now_ms, "now_ms")

        def run(txn: Transaction) -> list[OpenSession]:
            txn.execute(
                "DELETE FROM location_sessions WHERE ueid = ? AND expires_ms <= ?", (ueid, now_ms)
            )
            txn.execute(
                "INSERT INTO location_sessions (ueid, node, session_id, opened_ms, seen_ms, "
                "expires_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (ueid, node, session_id) "
                "DO UPDATE SET seen_ms = excluded.seen_ms, expires_ms = excluded.expires_ms",
                (ueid, node, session_id, now_ms, now_ms, now_ms + ttl_ms),
            )
            rows = txn.execute(
                "SELECT node, session_id, opened_ms, seen_ms FROM location_sessions "
                "WHERE ueid = ? AND node <> ? ORDER BY node, session_id",
                (ueid, node),
            ).fetchall()
            return [OpenSession(r[0], r[1], r[2], r[3]) for r in rows]

        return self.db.write(run)

    def live_sessions(self, ueid: bytes, node: str, now_ms: int) -> set[tuple[str, bytes]]:
        """The other nodes' unexpired sessions of the chip: (node, session id)."""
        rows: list[Any] = self.db.read(
            lambda t: t.execute(
                "SELECT node, session_id FROM location_sessions "
                "WHERE ueid = ? AND node <> ? AND expires_ms > ?",
                (ueid, node, now_ms),
            ).fetchall()
        )
        return {(r[0], r[1]) for r in rows}

    def close_session(self, ueid: bytes, node: str, session_id: bytes) -> None:
        self.db.write(
            lambda t: t.execute(
                "DELETE FROM location_sessions WHERE ueid = ? AND node = ? AND session_id = ?",
                (ueid, node, session_id),
            )
        )

    def open_sessions(self, now_ms: int) -> list[tuple[bytes, str, bytes, int, int]]:
        """Every live session row: (ueid, node, session id, opened_ms, seen_ms)."""
        rows: list[Any] = self.db.read(
            lambda t: t.execute(
                "SELECT ueid, node, session_id, opened_ms, seen_ms FROM location_sessions "
                "WHERE expires_ms > ? ORDER BY ueid, node",
                (now_ms,),
            ).fetchall()
        )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]
