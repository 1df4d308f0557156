"""Persistence for a verifier node: enrolled chips, challenges, a hash-chained audit log.

:class:`~attest.store.base.Store` is the interface (with :class:`~attest.store.base.Database`,
the transaction helper that mechanisms' tables share), :class:`~attest.store.sqlite.SqliteStore`
the embedded default, :mod:`attest.store.audit` the backend-independent chain rule and auditor.
"""

from __future__ import annotations

import os

from attest.keys import PublicKey
from attest.store.audit import (
    AuditEntry,
    AuditRecord,
    AuditReport,
    AuditSource,
    Checkpoint,
    entry_hash,
    verify_chain,
    verify_store,
)
from attest.store.base import (
    Advance,
    ChallengeConsumed,
    ChallengeRecord,
    ChipRecord,
    Commit,
    Database,
    Enroll,
    Nothing,
    StateConflict,
    Store,
    StoreUnavailable,
    Transaction,
)
from attest.store.sqlite import SqliteStore


def verify_audit(
    store_or_path: AuditSource | str | os.PathLike[str],
    verifier_public_key: PublicKey | None,
    published: bytes | None = None,
) -> AuditReport:
    """Audit a store, or an SQLite file (opened read-only), end to end; ``published`` is the
    token of its published checkpoint file (attest/store/published.py), if any."""
    if not isinstance(store_or_path, str | os.PathLike):
        return verify_store(store_or_path, verifier_public_key, published)
    with SqliteStore(store_or_path, readonly=True) as store:
        return verify_store(store, verifier_public_key, published)


__all__ = [
    "Advance",
    "AuditEntry",
    "AuditRecord",
    "AuditReport",
    "ChallengeConsumed",
    "ChallengeRecord",
    "Checkpoint",
    "ChipRecord",
    "Commit",
    "Database",
    "Enroll",
    "Nothing",
    "SqliteStore",
    "StateConflict",
    "Store",
    "StoreUnavailable",
    "Transaction",
    "entry_hash",
    "verify_audit",
    "verify_chain",
    "verify_store",
]
