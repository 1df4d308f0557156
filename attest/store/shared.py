"""What both backends do the same way over their Database: one copy for SQLite and PostgreSQL.

The chip table's plain reads and its one status update, an audit event with its steps, the
vendors' reference values and the context-manager protocol are the same SQL and the same
rules on both backends, so :class:`SharedStore` holds them; each backend keeps what differs
(enrolment, challenges, the appraisal transaction, the audit chain's append, lifecycle).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Self

from attest.errors import StoreError
from attest.store.audit import AuditEntry, AuditRecord
from attest.store.base import ChipRecord, Database, Step, Store, Transaction
from attest.store.rows import (
    CHIP_COLUMNS,
    chip_from_row,
    put_reference_values,
    read_reference_values,
)
from attest.verify.state import ChipStatus


class SharedStore(Store):
    """A Store whose backend sets ``_db`` and ``_verifier_id`` and appends with ``_append``."""

    _db: Database
    _verifier_id: str

    def _append(self, txn: Transaction, entry: AuditEntry) -> AuditRecord:
        """Append ``entry`` to this node's chain inside ``txn`` (the backend's rule)."""
        raise NotImplementedError

    @property
    def verifier_id(self) -> str:
        return self._verifier_id

    def get_chip(self, ueid: bytes) -> ChipRecord | None:
        row = self._db.read(
            lambda c: c.execute(
                f"SELECT {CHIP_COLUMNS} FROM chips WHERE ueid = ?", (ueid,)
            ).fetchone()
        )
        return None if row is None else chip_from_row(row)

    def count_chips(self) -> int:
        n: int = self._db.read(lambda c: c.execute("SELECT count(*) FROM chips").fetchone()[0])
        return n

    def set_status(self, ueid: bytes, status: ChipStatus) -> None:
        value = ChipStatus(status).value

        def run(txn: Transaction) -> None:
            cur = txn.execute("UPDATE chips SET status = ? WHERE ueid = ?", (value, ueid))
            if cur.rowcount != 1:
                raise StoreError(f"unknown chip {ueid.hex()}")

        self._db.write(run)

    def record_event(self, entry: AuditEntry, steps: Sequence[Step] = ()) -> AuditRecord:
        """Run ``steps``, then append ``entry``: one atomic, durable transaction."""

        def run(txn: Transaction) -> AuditRecord:
            for step in steps:
                step(txn)
            return self._append(txn, entry)

        return self._db.write(run)

    def put_reference_values(self, vendor: str, number: int, token: bytes) -> None:
        put_reference_values(self._db, vendor, number, token)

    def reference_values(self) -> list[tuple[str, int, bytes]]:
        return read_reference_values(self._db)

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
