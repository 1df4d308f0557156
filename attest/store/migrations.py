"""Versioned schema migrations of the core tables, one ordered list per backend.

A store's ``meta`` table records ``schema_version``: the number of the last migration applied.
Opening a writable store applies every migration above it, in order, inside the transaction
that checks the version (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: under a transaction-level
advisory lock), so several processes starting at once migrate exactly once and nobody sees a
half-migrated schema. ``attest verifier migrate --config C`` reports the version and applies
what is pending (the same code path, for an operator who wants it done before the rollout).

Rules for adding a migration: append one :class:`Migration` with the next version to *both*
lists (the backends keep the same logical schema), never edit a released one, make it additive
where possible (new tables, columns with defaults, indexes, triggers) so that a reader of the
previous version still works, and raise :data:`READABLE_FROM` only when it does not.

A store whose version is above what this code knows refuses to open (a newer attest wrote it);
a read-only open (``attest audit``) accepts any version from :data:`READABLE_FROM` up.

Mechanism tables (attest/licensing/ledger.py, attest/pods/tables.py) are not versioned here:
they are created with ``IF NOT EXISTS`` on every writable open and change only additively.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from attest.errors import StoreError

#: the oldest schema version this code can read (every later one only added to it)
READABLE_FROM = 1


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of a backend's schema: ``script`` takes version ``version - 1`` to ``version``."""

    version: int
    summary: str
    script: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where a store's schema stands: ``current`` 0 means an empty database."""

    dialect: str
    current: int
    latest: int
    pending: tuple[Migration, ...]

    @property
    def up_to_date(self) -> bool:
        return not self.pending


def check_list(migrations: Sequence[Migration]) -> None:
    """Versions must count 1, 2, 3 ... (a programming error otherwise)."""
    for i, m in enumerate(migrations, start=1):
        if m.version != i:
            raise AssertionError(f"migration #{i} is numbered {m.version}")


def status(dialect: str, current: int, migrations: Sequence[Migration]) -> SchemaStatus:
    """The :class:`SchemaStatus` of a store at ``current`` (StoreError if it is from the future)."""
    latest = migrations[-1].version
    if current > latest:
        raise StoreError(
            f"schema version {current} is newer than this attest knows ({latest}): upgrade attest"
        )
    return SchemaStatus(
        dialect, current, latest, tuple(m for m in migrations if m.version > current)
    )


def apply(
    pending: Sequence[Migration],
    run_script: Callable[[str], None],
    set_version: Callable[[int], None],
) -> list[Migration]:
    """Run ``pending`` in order, recording each version (the caller holds one transaction)."""
    done = []
    for m in pending:
        run_script(m.script)
        set_version(m.version)
        done.append(m)
    return done
