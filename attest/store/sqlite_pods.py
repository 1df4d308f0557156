"""SQLite tables of the Fixed Set: the pod certificate registry and each chip's latest report.

A mixin of :class:`attest.store.sqlite.SqliteStore` (it uses the store's ``_write`` and
``_locked`` transaction helpers); the protocol it implements is ``base.PodRegistry``.
"""

from __future__ import annotations

import sqlite3

from attest.errors import StoreError
from attest.store.sqlite_columns import i64 as _i64
from attest.store.sqlite_columns import split_sql as _split_sql


class PodTables:
    """Pod certificates and the latest pod report per chip (see module docstring)."""

    # (schema: PODS_SCHEMA at the end of this module; protocol: base.PodRegistry)

    def put_pod_cert(self, pod_id: bytes, token: bytes, issuer_cert: bytes) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT token FROM pod_certs WHERE pod_id = ?", (pod_id,)).fetchone()
            if row is not None:
                if row[0] != token:
                    raise StoreError(
                        f"pod id {pod_id.hex()} is registered with another certificate"
                    )
                return False
            conn.execute(
                "INSERT INTO pod_certs (pod_id, token, issuer_cert) VALUES (?, ?, ?)",
                (pod_id, token, issuer_cert),
            )
            _bump_pods_version(conn)
            return True

        return self._write(run)

    def pod_certs(self) -> list[tuple[bytes, bytes]]:
        return self._locked(
            lambda c: c.execute(
                "SELECT token, issuer_cert FROM pod_certs ORDER BY pod_id"
            ).fetchall()
        )

    def put_pod_report(self, ueid: bytes, report: bytes | None, time_ms: int) -> int:
        def run(conn: sqlite3.Connection) -> int:
            if report is None:
                conn.execute("DELETE FROM pod_reports WHERE ueid = ?", (ueid,))
            else:
                conn.execute(
                    "INSERT OR REPLACE INTO pod_reports (ueid, report, time_ms) VALUES (?, ?, ?)",
                    (ueid, report, _i64(time_ms, "time_ms")),
                )
            return _bump_pods_version(conn)

        return self._write(run)

    def pods_version(self) -> int:
        row = self._locked(
            lambda c: c.execute("SELECT value FROM meta WHERE key = 'pods_version'").fetchone()
        )
        return 0 if row is None else int(row[0])

    def pod_reports(self) -> list[tuple[bytes, bytes, int]]:
        return self._locked(
            lambda c: c.execute(
                "SELECT ueid, report, time_ms FROM pod_reports ORDER BY ueid"
            ).fetchall()
        )


# -- Fixed Set: schema ---------------------------------------------------------------------------
# Created with IF NOT EXISTS on every writable open, like the licensing tables. A pod id maps to
# exactly one certificate for good (pod ids are never reused); a chip's pod report (an opaque
# CBOR blob owned by attest.pods.monitor) is replaced by each accepted evidence that changes it.
PODS_SCHEMA = """
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
"""


def _create_pods_schema(conn: sqlite3.Connection) -> None:
    for statement in _split_sql(PODS_SCHEMA):
        conn.execute(statement)


def _bump_pods_version(conn: sqlite3.Connection) -> int:
    """Count every change to pod certificates or reports (meta ``pods_version``), so processes
    sharing the file (``serve --workers``) notice each other's changes with one read."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'pods_version'").fetchone()
    version = (0 if row is None else int(row[0])) + 1
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('pods_version', ?)", (version,))
    return version
