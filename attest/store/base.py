"""The persistence interface of a verifier node, independent of the backend.

Two levels, so that mechanisms keep their tables in their own packages:

* :class:`Database` — one database and its one transaction helper. Every write is
  ``write(fn)``: ``fn`` runs inside one atomic transaction (retried on a transient lock) and
  gets a :class:`Transaction` to run SQL on. Mechanism tables (attest/licensing/ledger.py,
  attest/pods/tables.py) are written once against it, in the SQL common to the backends
  (``?`` placeholders, ``INSERT ... ON CONFLICT``), with their DDL per :attr:`Database.dialect`.
* :class:`Store` — the core tables on a Database: chips, challenges, the audit chain and a
  little metadata. Its one transaction that matters is :meth:`Store.commit_appraisal`.

Backends: SQLite (attest/store/sqlite.py, one node's file) and PostgreSQL
(attest/store/postgres.py, a database that several nodes share, each with its own audit
chain); both keep a versioned schema (attest/store/migrations.py).

The API is synchronous and takes every time as integer milliseconds from the caller: the store
reads no clock, so tests and replays are deterministic. The trio daemon calls it from a worker
thread (``trio.to_thread.run_sync``); implementations must be safe to call from any thread.

Correctness rests on :meth:`Store.commit_appraisal` being one atomic, durable transaction: a
nonce is consumed at most once, a chip's state only moves as the caller's :data:`Commit` says
and only from the value the caller appraised against, the mechanisms' writes for the session
land in the same transaction, and every outcome (accepted or rejected) joins the audit chain.

The audit chain also records events outside appraisals (SPEC §11.2: licence issuance and
refusal, pod alerts, revocation-list adoption), each in the transaction of the write it
records: :meth:`Store.commit_appraisal` takes the session's extra ``events``,
:meth:`Store.record_event` runs another write and its entry together, and
:meth:`Store.put_revocations` takes the adoption's entry. :meth:`Store.publish_checkpoint`
writes the newest durable signed head outside the database (attest/store/published.py).

Errors: a backend raises :class:`StoreUnavailable` when it cannot serve a call *now* (locked,
disk full, I/O error, connection lost), and plain :class:`StoreError` (or the subclasses below)
for refusals that retrying cannot fix. The daemon treats the first as "store failing".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar, runtime_checkable

from attest.errors import StoreError
from attest.store.audit import AuditEntry, AuditRecord, Checkpoint
from attest.store.migrations import Migration, SchemaStatus
from attest.verify.state import ChipState, ChipStatus

T = TypeVar("T")


class StoreUnavailable(StoreError):
    """The backend cannot serve the call now: locked beyond the busy timeout, disk full, an I/O
    error, a lost connection. Nothing was committed, and the same call may succeed later.

    Backends raise this (not a plain StoreError) for every such operational failure: the
    daemon then fails that session with ERROR INTERNAL, reports not-ready and probes the store
    until it works again (attest/node/health.py). Refusals that retrying cannot fix (a
    conflict, a duplicate, a corrupt row) stay plain StoreErrors or their other subclasses.
    """


class ChallengeConsumed(StoreError):
    """The nonce was already answered or was never issued (or has been purged): a replay."""


class StateConflict(StoreError):
    """The chip's stored state changed since the caller read it; nothing was committed.

    Another session for the same chip won the race. The caller should re-read the state and
    appraise again (the evidence will then usually be stale and be rejected).
    """


# -- the shared transaction helper -------------------------------------------------------------


class Cursor(Protocol):
    """What a statement returns (the part of DB-API 2 cursors we use)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Transaction(Protocol):
    """One open transaction: run statements with ``?`` placeholders."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...


class Database(Protocol):
    """One database with one transaction helper, shared by the core and the mechanisms."""

    #: "sqlite" or "postgresql": which DDL a table module runs
    @property
    def dialect(self) -> str: ...

    @property
    def readonly(self) -> bool: ...

    def write(self, fn: Callable[[Transaction], T]) -> T:
        """Run ``fn`` in one atomic write transaction; roll back (and re-raise) on any error."""
        ...

    def read(self, fn: Callable[[Transaction], T]) -> T:
        """Run ``fn`` for reading (a consistent snapshot where the backend gives one)."""
        ...

    def run_script(self, script: str) -> None:
        """Run DDL statements (``CREATE ... IF NOT EXISTS``) in one write transaction."""
        ...


# -- what an appraisal commits -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChipRecord:
    """An enrolled chip: its certificates as received (COSE bytes) and its current state."""

    device_cert: bytes
    manufacturer_cert: bytes
    state: ChipState


@dataclass(frozen=True, slots=True)
class Enroll:
    """First contact: register the chip with the state its accepted Evidence established.

    Fails with :class:`StateConflict` if the chip was enrolled meanwhile (a racing session).
    """

    record: ChipRecord


@dataclass(frozen=True, slots=True)
class Advance:
    """A known chip's state moves forward to ``state``, provided its stored ``attest_counter``
    is still ``expected_counter`` (the value appraised against), else :class:`StateConflict`."""

    state: ChipState
    expected_counter: int


@dataclass(frozen=True, slots=True)
class Nothing:
    """The chip's state stays as it is: the verification core did not accept the Evidence."""


#: The chip-state part of an appraisal's outcome (decided by attest.mechanism.appraise_session)
Commit = Enroll | Advance | Nothing
#: A mechanism's writes for a session, run inside the appraisal's transaction
Step = Callable[[Transaction], None]


@dataclass(frozen=True, slots=True)
class ChallengeRecord:
    """An issued challenge. ``ueid`` is None when it was not addressed to a known chip."""

    nonce: bytes
    ueid: bytes | None
    issued_at_ms: int
    expires_at_ms: int
    consumed_at_ms: int | None


@runtime_checkable
class Store(Protocol):
    """What the verifier node persists: chips, challenges, the audit log and a little metadata."""

    @property
    def verifier_id(self) -> str:
        """The verifier this store belongs to (fixed when the store is created)."""
        ...

    @property
    def db(self) -> Database:
        """The database, for the mechanisms' tables (they share its transactions)."""
        ...

    @property
    def concurrency(self) -> int:
        """How many calls a process may usefully make at once (the node's store limiter):
        1 for SQLite (one connection, one writer), the pool size for PostgreSQL."""
        ...

    # -- chips -------------------------------------------------------------------------------

    def enroll(self, record: ChipRecord) -> bool:
        """Insert a new chip (True). Same ueid and key: no-op (False). Other key: StoreError."""
        ...

    def get_chip(self, ueid: bytes) -> ChipRecord | None: ...

    def count_chips(self) -> int: ...

    def set_status(self, ueid: bytes, status: ChipStatus) -> None:
        """Change a chip's status (StoreError if unknown). The only way status ever changes."""
        ...

    # -- challenges --------------------------------------------------------------------------

    def issue_challenge(
        self, nonce: bytes, ueid: bytes | None, issued_at_ms: int, expires_at_ms: int
    ) -> None:
        """Record an outstanding challenge. A duplicate nonce raises StoreError."""
        ...

    def get_challenge(self, nonce: bytes) -> ChallengeRecord | None:
        """The challenge for ``nonce`` (so the caller can check expiry and addressee)."""
        ...

    def expire_challenges(self, now_ms: int) -> int:
        """Purge challenges with ``expires_at_ms <= now_ms``; return how many were unanswered."""
        ...

    def outstanding_challenges(self) -> int:
        """Number of stored, unconsumed challenges (expired ones count until purged)."""
        ...

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
        """Atomically and durably: consume ``nonce``, apply ``commit``, run ``steps``, audit.

        * ``nonce`` must be outstanding, else :class:`ChallengeConsumed` and nothing changes.
        * ``commit`` is :class:`Enroll`, :class:`Advance` or :class:`Nothing` (see each);
          a lost race raises :class:`StateConflict` and nothing changes. ``status`` and
          ``device_key`` of a stored chip are never changed here.
        * ``steps`` are the mechanisms' writes for this session, in the same transaction.
        * ``entry`` is appended to the audit chain; the new record is returned.
        * ``events`` (entries of other kinds the session raised, e.g. pod alerts) are
          appended right after ``entry``, in order, in the same transaction.
        * ``result`` (the signed AttestationResult token, exactly as it will be sent) is kept
          beside ``entry``, under its ``seq``: :meth:`latest_result` and :meth:`result_of`.
        """
        ...

    def record_event(self, entry: AuditEntry, steps: Sequence[Step] = ()) -> AuditRecord:
        """Atomically and durably: run ``steps`` (the write the event is about, e.g. a licence
        appended to the ledger), then append ``entry`` to the audit chain.

        For events outside an appraisal (SPEC §11.2). A step that raises rolls everything
        back, entry included, and the exception propagates. Returns the new record.
        """
        ...

    # -- audit -------------------------------------------------------------------------------

    def audit_entries(self, start_seq: int = 1) -> Iterator[AuditRecord]: ...

    def audit_head(self) -> tuple[int, bytes]:
        """(number of entries, hash of the newest entry or 32 zero bytes)."""
        ...

    def audit_by_nonce(self, nonce: bytes) -> list[AuditRecord]:
        """This verifier's entries for the challenge ``nonce`` (at most one for a sound log):
        how a relying party holding a result finds it in the log."""
        ...

    def latest_result(self, ueid: bytes) -> bytes | None:
        """The newest result token this verifier signed for chip ``ueid`` (as sent), if any."""
        ...

    def result_of(self, seq: int) -> bytes | None:
        """The result token kept beside audit entry ``seq`` (None for an event's entry)."""
        ...

    def audit_checkpoints(self) -> Iterator[Checkpoint]: ...

    def checkpoint(self) -> Checkpoint | None:
        """Sign the current head now if it is not signed yet (None without a key or entries)."""
        ...

    def publish_checkpoint(self) -> Checkpoint | None:
        """Publish the newest *durable* head outside the database (attest/store/published.py).

        In this order: read the head, make every commit so far durable, sign that head (a
        checkpoint, as :meth:`checkpoint` makes, unless that entry is signed already), write the
        token atomically to the store's checkpoint file. Never publishes an entry that a crash
        could still take away. None when nothing newer than the last publication exists, or
        the store has no key. The daemon calls it every second and :meth:`close` calls it.
        """
        ...

    # -- metadata ----------------------------------------------------------------------------

    def put_revocations(self, number: int, token: bytes, audit: AuditEntry | None = None) -> None:
        """Store revocation list ``number``; a number <= the stored one raises StoreError.

        ``audit`` (the adoption's entry, kind ``revocations``) joins the chain in the same
        transaction.
        """
        ...

    def get_revocations(self) -> tuple[int, bytes] | None: ...

    def put_reference_values(self, vendor: str, number: int, token: bytes) -> None:
        """Keep a vendor's reference-values document ``number`` (verified by the caller); a
        number <= the one stored for that vendor raises StoreError (anti-rollback)."""
        ...

    def reference_values(self) -> list[tuple[str, int, bytes]]:
        """Every vendor's newest document: (vendor, number, token), by vendor."""
        ...

    # -- schema ------------------------------------------------------------------------------

    @property
    def schema(self) -> SchemaStatus:
        """The core schema's version as found when the store was opened (see migrations.py)."""
        ...

    def migrate(self) -> list[Migration]:
        """Apply the pending migrations (for a store opened with ``migrate=False``)."""
        ...

    # -- lifecycle ---------------------------------------------------------------------------

    def sync(self) -> None:
        """Make every commit so far durable. A store whose commits are durable when they
        return (the default) has nothing to do; one opened for group commit fsyncs here."""
        return None

    def close(self) -> None:
        """Sign a final checkpoint if entries are unsigned, publish it, release the backend."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
