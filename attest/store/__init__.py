"""Persistence for a verifier node: enrolled chips, challenges, a hash-chained audit log.

:class:`~attest.store.base.Store` is the interface (with :class:`~attest.store.base.Database`,
the transaction helper that mechanisms' tables share), :class:`~attest.store.sqlite.SqliteStore`
the embedded default, :class:`~attest.store.postgres.PostgresStore` the database that several
nodes share, :mod:`attest.store.audit` the backend-independent chain rule and auditor, and
:mod:`attest.store.migrations` the versioned schema of both.
"""

from __future__ import annotations

import os

from attest.errors import StoreError
from attest.keys import PublicKey, SigningKey
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
from attest.store.pg_db import is_url
from attest.store.sqlite import SqliteStore


def open_store(
    location: str | os.PathLike[str],
    *,
    verifier_id: str | None = None,
    signing_key: SigningKey | None = None,
    checkpoint_every: int = 100,
    readonly: bool = False,
    group_sync: bool = False,
    migrate: bool = True,
    pool_size: int = 4,
    reconnect_timeout_s: float = 5.0,
    busy_timeout_s: float = 2.0,
    checkpoint_file: str | os.PathLike[str] | None = None,
) -> Store:
    """An SQLite store at a path, or a PostgreSQL store for a ``postgresql://`` URL (which
    needs ``verifier_id``: one database holds the chains of many nodes).

    ``checkpoint_file``: where the store publishes its newest signed head (SQLite default:
    ``<path>.checkpoint``; PostgreSQL: only where given). ``busy_timeout_s`` bounds an SQLite
    wait for another process's write lock; ``pool_size`` and ``reconnect_timeout_s`` are
    PostgreSQL's."""
    if isinstance(location, str) and is_url(location):
        from attest.store.postgres import PostgresStore

        if verifier_id is None:
            raise StoreError("a PostgreSQL store is opened for one verifier: give its id")
        return PostgresStore(
            location,
            verifier_id=verifier_id,
            signing_key=signing_key,
            checkpoint_every=checkpoint_every,
            readonly=readonly,
            migrate=migrate,
            pool_size=pool_size,
            reconnect_timeout_s=reconnect_timeout_s,
            checkpoint_file=checkpoint_file,
        )
    return SqliteStore(
        location,
        verifier_id=verifier_id,
        signing_key=signing_key,
        checkpoint_every=checkpoint_every,
        readonly=readonly,
        group_sync=group_sync,
        migrate=migrate,
        busy_timeout_s=busy_timeout_s,
        checkpoint_file=checkpoint_file,
    )


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
    "open_store",
    "verify_audit",
    "verify_chain",
    "verify_store",
]
