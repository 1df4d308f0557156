"""The narrow persistence interface a verifier node needs, independent of the backend.

The API is synchronous and takes every time as integer milliseconds from the caller: the store
reads no clock, so tests and replays are deterministic. The trio daemon calls it from a worker
thread (``trio.to_thread.run_sync``), one writer at a time; implementations must be safe to call
from any thread.

Correctness rests on :meth:`Store.commit_appraisal` being one atomic, durable transaction: a
nonce is consumed at most once, a chip's state only advances from the value the caller appraised
against, and every outcome (accepted or rejected) lands in the audit chain with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from attest.errors import StoreError
from attest.store.audit import AuditEntry, AuditRecord, Checkpoint
from attest.verify.state import ChipState, ChipStatus


class ChallengeConsumed(StoreError):
    """The nonce was already answered or was never issued (or has been purged): a replay."""


class StateConflict(StoreError):
    """The chip's stored state changed since the caller read it; nothing was committed.

    Another session for the same chip won the race. The caller should re-read the state and
    appraise again (the evidence will then usually be stale and be rejected).
    """


@dataclass(frozen=True, slots=True)
class ChipRecord:
    """An enrolled chip: its certificates as received (COSE bytes) and its current state."""

    device_cert: bytes
    manufacturer_cert: bytes
    state: ChipState


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
        new_state: ChipState | None,
        entry: AuditEntry,
        enroll: ChipRecord | None = None,
        expected_counter: int | None = None,
    ) -> AuditRecord:
        """Atomically and durably: consume ``nonce``, optionally enrol, update state, audit.

        * ``nonce`` must be outstanding, else :class:`ChallengeConsumed` and nothing changes.
        * ``expected_counter`` is the chip's ``attest_counter`` as the caller read it before
          appraising (None = the chip was not enrolled then). Whenever this call would change
          the chip (``enroll`` or ``new_state`` given), the stored value must still equal it,
          else :class:`StateConflict` and nothing changes: of two concurrent sessions for one
          chip (auto-enrolment included) at most one changes it.
        * ``enroll``: insert this chip if its ueid is new (auto-enrolment); same key: no-op;
          different key: StoreError.
        * ``new_state`` (None for a rejection): replaces the chip's appraisal state (the chip
          must exist or be enrolled by this call). ``status`` and ``device_key`` are never
          changed here.
        * ``entry`` is appended to the audit chain; the new record is returned.
        """
        ...

    # -- audit -------------------------------------------------------------------------------

    def audit_entries(self, start_seq: int = 1) -> Iterator[AuditRecord]: ...

    def audit_head(self) -> tuple[int, bytes]:
        """(number of entries, hash of the newest entry or 32 zero bytes)."""
        ...

    def audit_checkpoints(self) -> Iterator[Checkpoint]: ...

    def checkpoint(self) -> Checkpoint | None:
        """Sign the current head now if it is not signed yet (None without a key or entries)."""
        ...

    # -- metadata ----------------------------------------------------------------------------

    def put_revocations(self, number: int, token: bytes) -> None:
        """Store revocation list ``number``; a number <= the stored one raises StoreError."""
        ...

    def get_revocations(self) -> tuple[int, bytes] | None: ...

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Sign a final checkpoint if entries are unsigned, then release the backend."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
