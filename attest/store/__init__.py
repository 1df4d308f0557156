"""Persistence for a verifier node: enrolled chips, challenges, a hash-chained audit log.

:class:`~attest.store.base.Store` is the interface, :class:`~attest.store.sqlite.SqliteStore`
the embedded default, :mod:`attest.store.audit` the backend-independent chain rule and auditor.
"""

from attest.store.audit import (
    AuditEntry,
    AuditRecord,
    AuditReport,
    Checkpoint,
    entry_hash,
    verify_audit,
    verify_chain,
)
from attest.store.base import (
    ChallengeConsumed,
    ChallengeRecord,
    ChipRecord,
    StateConflict,
    Store,
)
from attest.store.sqlite import SqliteStore

__all__ = [
    "AuditEntry",
    "AuditRecord",
    "AuditReport",
    "ChallengeConsumed",
    "ChallengeRecord",
    "Checkpoint",
    "ChipRecord",
    "SqliteStore",
    "StateConflict",
    "Store",
    "entry_hash",
    "verify_audit",
    "verify_chain",
]
