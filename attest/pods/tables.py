"""The Fixed Set's tables: the pod certificate registry and each chip's latest pod report.

They live in the node's database beside the core tables and share its transaction helper
(:class:`~attest.store.base.Database`): a chip's new report is written inside the transaction
of the appraisal that produced it (:meth:`PodTables.report_step`). A pod id maps to exactly one
certificate for good (pod ids are never reused); a chip's pod report (an opaque CBOR blob owned
by attest.pods.verifier) is replaced by each accepted evidence that changes it.

A version counter (table ``pod_versions``) is raised by every change, in the changing
transaction, with one atomic ``UPDATE ... SET version = version + 1 RETURNING``: processes and
nodes sharing the database compare it to know whether their cached copy is current, so two
concurrent changes must never both produce the same number (a read-then-write would, under
PostgreSQL's READ COMMITTED). Stores made before it kept the counter in ``meta``
(``pods_version``); the table starts from that value.
"""

from __future__ import annotations

from typing import Any

from attest.errors import StoreError
from attest.store.base import Database, Step, Transaction
from attest.store.columns import i64

#: created with IF NOT EXISTS on every writable open
SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS pod_certs (
    pod_id      BLOB PRIMARY KEY,
    token       BLOB NOT NULL,
    issuer_cert BLOB NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pod_reports (
    ueid    BLOB PRIMARY KEY,
    report  BLOB NOT NULL,
    time_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pod_versions (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL CHECK (version >= 0)
) STRICT;
INSERT INTO pod_versions (id, version)
    SELECT 1, coalesce((SELECT value FROM meta WHERE key = 'pods_version'), 0) WHERE true
    ON CONFLICT (id) DO NOTHING;
"""
POSTGRESQL_SCHEMA = """
CREATE TABLE IF NOT EXISTS pod_certs (
    pod_id      bytea PRIMARY KEY,
    token       bytea NOT NULL,
    issuer_cert bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS pod_reports (
    ueid    bytea PRIMARY KEY,
    report  bytea NOT NULL,
    time_ms bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS pod_versions (
    id      integer PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL CHECK (version >= 0)
);
INSERT INTO pod_versions (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
"""
#: the DDL per database dialect
SCHEMA: dict[str, str] = {"sqlite": SQLITE_SCHEMA, "postgresql": POSTGRESQL_SCHEMA}


class PodTables:
    """Pod certificates and the latest pod report per chip (see the module docstring)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        if not db.readonly:
            db.run_script(SCHEMA[db.dialect])

    def put_pod_cert(self, pod_id: bytes, token: bytes, issuer_cert: bytes) -> bool:
        """Register a verified pod certificate (True if new; the same again is a no-op; another
        certificate under a registered pod id raises StoreError: pod ids are never reused)."""

        def run(txn: Transaction) -> bool:
            cur = txn.execute(
                "INSERT INTO pod_certs (pod_id, token, issuer_cert) VALUES (?, ?, ?) "
                "ON CONFLICT (pod_id) DO NOTHING",
                (pod_id, token, issuer_cert),
            )
            if cur.rowcount != 1:
                row = txn.execute(
                    "SELECT token FROM pod_certs WHERE pod_id = ?", (pod_id,)
                ).fetchone()
                if row is None or bytes(row[0]) != token:
                    raise StoreError(
                        f"pod id {pod_id.hex()} is registered with another certificate"
                    )
                return False
            _bump_version(txn)
            return True

        return self._db.write(run)

    def pod_certs(self) -> list[tuple[bytes, bytes]]:
        """Every registered (certificate token, issuer certificate token)."""
        rows: list[Any] = self._db.read(
            lambda t: t.execute(
                "SELECT token, issuer_cert FROM pod_certs ORDER BY pod_id"
            ).fetchall()
        )
        return [(r[0], r[1]) for r in rows]

    def put_pod_report(self, ueid: bytes, report: bytes | None, time_ms: int) -> int:
        """Replace a chip's latest pod report (None deletes it); returns the new version."""
        out: list[int] = []
        self._db.write(self.report_step(ueid, report, time_ms, out))
        return out[0]

    @staticmethod
    def report_step(ueid: bytes, report: bytes | None, time_ms: int, out: list[int]) -> Step:
        """:meth:`put_pod_report` as a write inside another transaction; the new version is
        appended to ``out``."""
        i64(time_ms, "time_ms")

        def step(txn: Transaction) -> None:
            if report is None:
                txn.execute("DELETE FROM pod_reports WHERE ueid = ?", (ueid,))
            else:
                txn.execute(
                    "INSERT INTO pod_reports (ueid, report, time_ms) VALUES (?, ?, ?) "
                    "ON CONFLICT (ueid) DO UPDATE SET report = excluded.report, "
                    "time_ms = excluded.time_ms",
                    (ueid, report, time_ms),
                )
            out[:] = [_bump_version(txn)]  # a transaction that is run again replaces it

        return step

    def pods_version(self) -> int:
        """A counter raised by every change to pod certificates or reports (0: none yet), so
        processes sharing a store can tell cheaply whether their copy is current."""
        row = self._db.read(
            lambda t: t.execute("SELECT version FROM pod_versions WHERE id = 1").fetchone()
        )
        return 0 if row is None else int(row[0])

    def pod_reports(self) -> list[tuple[bytes, bytes, int]]:
        """Every stored (ueid, report, time_ms)."""
        rows: list[Any] = self._db.read(
            lambda t: t.execute(
                "SELECT ueid, report, time_ms FROM pod_reports ORDER BY ueid"
            ).fetchall()
        )
        return [(r[0], r[1], r[2]) for r in rows]


def _bump_version(txn: Transaction) -> int:
    """Count every change to pod certificates or reports (see the module docstring)."""
    row = txn.execute(
        "UPDATE pod_versions SET version = version + 1 WHERE id = 1 RETURNING version"
    ).fetchone()
    if row is None:
        raise StoreError("pod_versions row missing")
    return int(row[0])
