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
from attest.messages.license import Budgets, Delegation
from attest.store.audit import AuditEntry, AuditRecord, Checkpoint
from attest.verify.license_checks import LedgerView
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


# -- Offline Licensing: regional quotas and the append-only license ledger ---------------------
# (kept apart from Store so that backends without licensing still satisfy Store)


class LicenseConflict(StoreError):
    """Another license was issued to the chip since the caller read the ledger; nothing changed."""


class QuotaExceeded(StoreError):
    """The license would exceed its delegation's quota (``scope`` "delegation") or its region's
    cap (``scope`` "region"); nothing changed."""

    def __init__(self, message: str, scope: str) -> None:
        super().__init__(message)
        self.scope = scope


class DelegationRevoked(StoreError):
    """The delegation is unknown, revoked or expired: nothing may be issued under it."""


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """One issued (or recorded) license. ``delegation_id`` None: issued by the authority."""

    ueid: bytes
    serial: int
    issuer: str
    delegation_id: int | None
    region: str | None
    budgets: Budgets
    expiry_s: int
    issued_at_ms: int
    token: bytes
    #: position in the ledger (0 until stored)
    seq: int = 0


@dataclass(frozen=True, slots=True)
class QuotaStatus:
    """A delegation's quota and how much of it has been issued, per meter."""

    delegation_id: int
    verifier_id: str
    region: str
    quota: Budgets
    issued: tuple[int, int, int]
    expires_at: int
    revoked: bool


@dataclass(frozen=True, slots=True)
class RegionStatus:
    """A region's cap (None per meter: uncapped) and its issued totals, over all delegations."""

    region: str
    cap: tuple[int | None, int | None, int | None]
    issued: tuple[int, int, int]
    licenses: int


@runtime_checkable
class LicenseLedger(Protocol):
    """Quota accounting and the license ledger of a verifier node (Offline Licensing).

    :meth:`issue_license` is the one atomic step: in a single transaction it checks that no
    license was issued to the chip since the caller looked (``expected_latest``), that the
    delegation is live and the budget fits both the delegation's quota and the region's cap,
    appends the license to the ledger and charges both. Ledger rows are never updated or deleted.
    """

    def register_delegation(self, token: bytes, delegation: Delegation) -> bool:
        """Record a delegation this node holds (True if new; the same one again is a no-op)."""
        ...

    def revoke_delegation(self, delegation_id: int) -> None:
        """Mark a delegation revoked, for good (the authority's revocation list says so)."""
        ...

    def set_region_cap(self, region: str, cap: Budgets | None) -> None:
        """The authority's cap on everything issued in ``region`` (None lifts it)."""
        ...

    def delegation_status(self, delegation_id: int) -> QuotaStatus | None: ...

    def region_status(self, region: str) -> RegionStatus: ...

    def license_view(self, ueid: bytes) -> LedgerView:
        """What the ledger says about one chip (the appraisal's ledger input)."""
        ...

    def issue_license(
        self, record: LedgerRecord, *, expected_latest: int, now_s: int
    ) -> LedgerRecord:
        """Atomically: LicenseConflict / DelegationRevoked / QuotaExceeded, or append + charge."""
        ...

    def record_license(self, record: LedgerRecord) -> bool:
        """Append an authority-issued license (no quota charged); False if already recorded."""
        ...

    def note_license_report(self, ueid: bytes, serial: int) -> None:
        """Remember the highest serial a chip reported in accepted evidence (never lowers it)."""
        ...

    def license_records(self, ueid: bytes | None = None) -> list[LedgerRecord]:
        """Ledger rows in order (all, or one chip's)."""
        ...


# -- end Offline Licensing


# -- Fixed Set: the pod certificate registry and each chip's latest pod report -----------------
# (kept apart from Store so that backends without pods still satisfy Store)


@runtime_checkable
class PodRegistry(Protocol):
    """What a verifier node keeps for the link-graph appraisal (attest/pods/monitor.py)."""

    def put_pod_cert(self, pod_id: bytes, token: bytes, issuer_cert: bytes) -> bool:
        """Register a verified pod certificate (True if new; the same again is a no-op; another
        certificate under a registered pod id raises StoreError: pod ids are never reused)."""
        ...

    def pod_certs(self) -> list[tuple[bytes, bytes]]:
        """Every registered (certificate token, issuer certificate token)."""
        ...

    def put_pod_report(self, ueid: bytes, report: bytes | None, time_ms: int) -> int:
        """Replace a chip's latest pod report (opaque bytes); None deletes it. Returns the new
        :meth:`pods_version`."""
        ...

    def pods_version(self) -> int:
        """A counter raised by every change to pod certificates or reports (0: none yet), so
        processes sharing a store can tell cheaply whether their copy is current."""
        ...

    def pod_reports(self) -> list[tuple[bytes, bytes, int]]:
        """Every stored (ueid, report, time_ms)."""
        ...


# -- end Fixed Set
