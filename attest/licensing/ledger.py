"""Offline Licensing's tables: delegations, region caps and the append-only license ledger.

They live in the node's database beside the core tables and share its transaction helper
(:class:`~attest.store.base.Database`), so a licence issued here is as atomic and durable as an
appraisal. :meth:`LicenseLedger.issue_license` is the one atomic step of issuing: in a single
transaction it checks that no license was issued to the chip since the caller looked
(``expected_latest``), that the delegation is live and the budget fits both the delegation's
quota and the region's cap (attest.licensing.quota), appends the license and charges both.
Ledger rows are never updated or deleted (triggers).

Several nodes (or worker processes) may issue at once against one shared PostgreSQL database.
Issuing then starts by locking the ledger table against other writers (``LOCK TABLE ... IN
SHARE ROW EXCLUSIVE MODE``, readers go on) and reads the delegation and region rows ``FOR
UPDATE``: the check of the latest serial, the quota arithmetic and the append happen as one
step for the whole federation, so a serial is never issued twice and no quota or cap is ever
passed, whichever nodes race. (SQLite needs none of it: ``BEGIN IMMEDIATE`` already serialises
every writer of the file.)

Audit: given the node's store (``audit``), every issuance joins the node's audit hash chain in
the transaction that appends the licence (kind ``license-issued``), every refusal (quota,
region cap, revoked delegation) is audited right after the refused transaction rolled back
(``license-refused-*``), and so is a licence recorded from the authority
(``license-recorded``); SPEC §11.2 says what each entry holds. The ledger alone is append-only
by triggers only; the chain makes a removed or altered issuance evident.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from attest.errors import StoreError
from attest.licensing.checks import IssuedLicense, LedgerView
from attest.licensing.messages import Budgets, Delegation
from attest.licensing.quota import charged, exceeded_meter
from attest.store.audit import (
    KIND_LICENSE_ISSUED,
    KIND_LICENSE_REFUSED_DELEGATION,
    KIND_LICENSE_REFUSED_QUOTA,
    KIND_LICENSE_REFUSED_REGION_CAP,
    AuditEntry,
    digest,
    u64_tag,
)
from attest.store.base import Database, Step, Store, Transaction
from attest.store.columns import blob_to_u64, u64_to_blob
from attest.store.columns import i64 as _i64


class LicenseConflict(StoreError):
    """Another license was issued to the chip since the caller read the ledger; nothing changed."""


class QuotaExceeded(StoreError):
    """The license would exceed its delegation's quota (``scope`` "delegation"), its region's
    cap (``scope`` "region") or a federation partner quota (``scope`` "partner"); nothing
    changed."""

    def __init__(self, message: str, scope: str) -> None:
        super().__init__(message)
        self.scope = scope


class DelegationRevoked(StoreError):
    """The delegation is unknown, revoked or expired: nothing may be issued under it."""


class _Unchanged(Exception):
    """Internal: the licence was already recorded; roll back the audit entry too."""


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
    #: a roaming chip's authority and the agreement's partner quota (FLOPs) the licence is
    #: charged against (federation, SPEC B.5); not a ledger column: the partner's total is
    partner: tuple[str, int] | None = None


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


#: a licence recorded from the authority (attest license record)
KIND_LICENSE_RECORDED = "license-recorded"


class LicenseLedger:
    """Delegations, region caps and the license ledger in one node's database.

    With ``audit`` (the node's store, whose ``db`` this must be), issuances, refusals and
    recorded licences are audit entries too (module docstring).
    """

    def __init__(self, db: Database, *, audit: Store | None = None) -> None:
        self._db = db
        self._audit = audit
        self._pg = db.dialect == "postgresql"
        #: row locks for the read-check-write of issuing (see the module docstring)
        self._for_update = " FOR UPDATE" if self._pg else ""
        if not db.readonly:
            db.run_script(SCHEMA[db.dialect])

    def _lock_ledger(self, conn: Transaction) -> None:
        if self._pg:
            conn.execute("LOCK TABLE license_ledger IN SHARE ROW EXCLUSIVE MODE")

    def _entry(self, record: LedgerRecord, kind: str, token: bytes) -> AuditEntry:
        assert self._audit is not None
        return AuditEntry(
            time_ms=record.issued_at_ms,
            verifier_id=self._audit.verifier_id,
            ueid=record.ueid,
            tier=0,
            reasons=(),
            evidence_digest=digest(token) if token else b"",
            nonce=u64_tag(record.serial),
            kind=kind,
        )

    @property
    def db(self) -> Database:
        return self._db

    def register_delegation(self, token: bytes, delegation: Delegation) -> bool:
        d = delegation
        q = d.quota.as_tuple()

        def run(conn: Transaction) -> bool:
            # insert-or-nothing first: processes starting together register it once
            cur = conn.execute(
                "INSERT INTO license_delegations (delegation_id, verifier_id, region, quota_flops,"
                " quota_energy_mj, quota_interconnect_bytes, issued_flops, issued_energy_mj,"
                " issued_interconnect_bytes, expires_at, revoked, token)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)"
                " ON CONFLICT (delegation_id) DO NOTHING",
                (
                    d.delegation_id,
                    d.verifier_id,
                    d.region,
                    *(_opt_u64(x) for x in q),
                    *(u64_to_blob(0),) * 3,
                    _i64(d.expires_at, "expires_at"),
                    token,
                ),
            )
            if cur.rowcount != 1:
                row = conn.execute(
                    "SELECT token FROM license_delegations WHERE delegation_id = ?",
                    (d.delegation_id,),
                ).fetchone()
                if row is None or bytes(row[0]) != token:
                    raise StoreError(f"delegation {d.delegation_id} is stored with other content")
                return False
            _ensure_region(conn, d.region)
            return True

        return self._db.write(run)

    def revoke_delegation(self, delegation_id: int) -> None:
        def run(conn: Transaction) -> None:
            cur = conn.execute(
                "UPDATE license_delegations SET revoked = 1 WHERE delegation_id = ?",
                (_i64(delegation_id, "delegation_id"),),
            )
            if cur.rowcount != 1:
                raise StoreError(f"unknown delegation {delegation_id}")

        self._db.write(run)

    def set_region_cap(self, region: str, cap: Budgets | None) -> None:
        caps = (None, None, None) if cap is None else cap.as_tuple()

        def run(conn: Transaction) -> None:
            _ensure_region(conn, region)
            conn.execute(
                "UPDATE license_regions SET cap_flops = ?, cap_energy_mj = ?,"
                " cap_interconnect_bytes = ? WHERE region = ?",
                (*(_opt_u64(x) for x in caps), region),
            )

        self._db.write(run)

    def delegation_status(self, delegation_id: int) -> QuotaStatus | None:
        row = self._db.read(
            lambda c: c.execute(
                f"SELECT {_DELEGATION_COLUMNS} FROM license_delegations WHERE delegation_id = ?",
                (_i64(delegation_id, "delegation_id"),),
            ).fetchone()
        )
        return None if row is None else _delegation_from_row(row)

    def region_status(self, region: str) -> RegionStatus:
        row = self._db.read(
            lambda c: c.execute(
                f"SELECT {_REGION_COLUMNS} FROM license_regions WHERE region = ?", (region,)
            ).fetchone()
        )
        if row is None:
            return RegionStatus(region, (None, None, None), (0, 0, 0), 0)
        return _region_from_row(row)

    def license_view(self, ueid: bytes) -> LedgerView:
        def run(conn: Transaction) -> LedgerView:
            rows = conn.execute(
                "SELECT serial, budget_flops, expiry_s FROM license_ledger WHERE ueid = ?", (ueid,)
            ).fetchall()
            rep = conn.execute(
                "SELECT reported_serial FROM license_chips WHERE ueid = ?", (ueid,)
            ).fetchone()
            return LedgerView.of(
                (IssuedLicense(*(blob_to_u64(x) for x in r)) for r in rows),
                0 if rep is None else blob_to_u64(rep[0]),
            )

        return self._db.read(run)

    def issue_license(
        self, record: LedgerRecord, *, expected_latest: int, now_s: int
    ) -> LedgerRecord:
        if record.delegation_id is None or record.region is None:
            raise StoreError("a delegated license names its delegation and region")
        budgets = record.budgets.as_tuple()

        def run(conn: Transaction) -> LedgerRecord:
            self._lock_ledger(conn)  # first: the reads below see every issued licence
            row = conn.execute(
                "SELECT serial FROM license_ledger WHERE ueid = ? ORDER BY serial DESC LIMIT 1",
                (record.ueid,),
            ).fetchone()
            latest = 0 if row is None else blob_to_u64(row[0])
            if latest != expected_latest:
                raise LicenseConflict(
                    f"chip {record.ueid.hex()}: latest serial is {latest}, "
                    f"caller expected {expected_latest}"
                )
            if record.serial <= latest:
                raise StoreError("a new license needs a serial above every issued one")
            row = conn.execute(
                f"SELECT {_DELEGATION_COLUMNS} FROM license_delegations WHERE delegation_id = ?"
                + self._for_update,
                (record.delegation_id,),
            ).fetchone()
            d = None if row is None else _delegation_from_row(row)
            if d is None or d.revoked or now_s >= d.expires_at:
                raise DelegationRevoked(
                    f"delegation {record.delegation_id} is unknown, revoked or expired"
                )
            if d.region != record.region:
                raise StoreError(f"delegation {d.delegation_id} is for region {d.region!r}")
            issued = _charge(d.issued, budgets, d.quota.as_tuple(), "delegation")
            region = _region_from_row(_ensure_region(conn, d.region, self._for_update))
            region_issued = _charge(region.issued, budgets, region.cap, "region")
            partner = None
            if record.partner is not None:
                authority, quota = record.partner
                row = _ensure_partner(conn, authority, self._for_update)
                partner = _charge_partner(blob_to_u64(row[1]), budgets[0], quota, authority)
            seq = _append_ledger(conn, record)
            if partner is not None and record.partner is not None:
                conn.execute(
                    "UPDATE license_partners SET issued_flops = ?, licenses = licenses + 1"
                    " WHERE authority = ?",
                    (u64_to_blob(partner), record.partner[0]),
                )
            conn.execute(
                "UPDATE license_delegations SET issued_flops = ?, issued_energy_mj = ?,"
                " issued_interconnect_bytes = ? WHERE delegation_id = ?",
                (*(u64_to_blob(x) for x in issued), d.delegation_id),
            )
            conn.execute(
                "UPDATE license_regions SET issued_flops = ?, issued_energy_mj = ?,"
                " issued_interconnect_bytes = ?, licenses = licenses + 1 WHERE region = ?",
                (*(u64_to_blob(x) for x in region_issued), d.region),
            )
            return replace(record, seq=seq)

        if self._audit is None:
            return self._db.write(run)
        issued: list[LedgerRecord] = []
        try:
            self._audit.record_event(
                self._entry(record, KIND_LICENSE_ISSUED, record.token),
                [lambda txn: issued.append(run(txn))],
            )
        except QuotaExceeded as exc:
            kind = (
                KIND_LICENSE_REFUSED_REGION_CAP
                if exc.scope == "region"
                else KIND_LICENSE_REFUSED_QUOTA
            )
            self._audit.record_event(self._entry(record, kind, b""))
            raise
        except DelegationRevoked:
            self._audit.record_event(self._entry(record, KIND_LICENSE_REFUSED_DELEGATION, b""))
            raise
        return issued[0]

    def record_license(self, record: LedgerRecord) -> bool:
        def run(conn: Transaction) -> bool:
            self._lock_ledger(conn)
            row = conn.execute(
                "SELECT token FROM license_ledger WHERE ueid = ? AND serial = ?",
                (record.ueid, u64_to_blob(record.serial)),
            ).fetchone()
            if row is not None:
                if row[0] != record.token:
                    raise StoreError(
                        f"chip {record.ueid.hex()} already has another license {record.serial}"
                    )
                return False
            _append_ledger(conn, record)
            return True

        if self._audit is None:
            return self._db.write(run)
        new: list[bool] = []
        entry = self._entry(record, KIND_LICENSE_RECORDED, record.token)

        def step(txn: Transaction) -> None:
            new.append(run(txn))
            if not new[0]:
                raise _Unchanged

        try:
            self._audit.record_event(entry, [step])
        except _Unchanged:
            return False
        return True

    def note_license_report(self, ueid: bytes, serial: int) -> None:
        """Remember the highest serial a chip reported in accepted evidence (never lowers it)."""
        self._db.write(self.report_step(ueid, serial))

    @staticmethod
    def report_step(ueid: bytes, serial: int) -> Step:
        """:meth:`note_license_report` as a write inside another transaction (the appraisal's)."""
        blob = u64_to_blob(serial)

        def step(txn: Transaction) -> None:
            txn.execute(
                "INSERT INTO license_chips (ueid, reported_serial) VALUES (?, ?) "
                "ON CONFLICT (ueid) DO UPDATE SET reported_serial = excluded.reported_serial "
                "WHERE excluded.reported_serial > license_chips.reported_serial",
                (ueid, blob),
            )

        return step

    def delegation_token(self, delegation_id: int) -> bytes | None:
        """The stored token of a delegation (any node's), to deliver with its licences."""
        row = self._db.read(
            lambda c: c.execute(
                "SELECT token FROM license_delegations WHERE delegation_id = ?",
                (_i64(delegation_id, "delegation_id"),),
            ).fetchone()
        )
        return None if row is None else bytes(row[0])

    def partner_status(self, authority: str) -> tuple[int, int]:
        """(FLOPs issued, licences) to roaming chips of ``authority`` by this ledger's nodes."""
        row = self._db.read(
            lambda c: c.execute(
                "SELECT issued_flops, licenses FROM license_partners WHERE authority = ?",
                (authority,),
            ).fetchone()
        )
        return (0, 0) if row is None else (blob_to_u64(row[0]), int(row[1]))

    def license_records(self, ueid: bytes | None = None) -> list[LedgerRecord]:
        where, args = ("WHERE ueid = ?", (ueid,)) if ueid is not None else ("", ())
        rows = self._db.read(
            lambda c: c.execute(
                f"SELECT {_LEDGER_COLUMNS} FROM license_ledger {where} ORDER BY seq", args
            ).fetchall()
        )
        return [_ledger_from_row(r) for r in rows]


# -- schema and row helpers ---------------------------------------------------------------------
# Created with IF NOT EXISTS on every writable open, so stores made before licensing gain it.
# Amounts are uint64 BLOBs like the chips table (NULL: that meter is unmetered / uncapped).
# The ledger is append-only (triggers); a revoked delegation stays revoked; issued totals only
# grow. Quota checks and charges happen in the transaction that appends the license.
SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS license_delegations (
    delegation_id             INTEGER PRIMARY KEY,
    verifier_id               TEXT NOT NULL,
    region                    TEXT NOT NULL,
    quota_flops               BLOB NOT NULL CHECK (length(quota_flops) = 8),
    quota_energy_mj           BLOB CHECK (quota_energy_mj IS NULL OR length(quota_energy_mj) = 8),
    quota_interconnect_bytes  BLOB CHECK (quota_interconnect_bytes IS NULL
                                          OR length(quota_interconnect_bytes) = 8),
    issued_flops              BLOB NOT NULL CHECK (length(issued_flops) = 8),
    issued_energy_mj          BLOB NOT NULL CHECK (length(issued_energy_mj) = 8),
    issued_interconnect_bytes BLOB NOT NULL CHECK (length(issued_interconnect_bytes) = 8),
    expires_at                INTEGER NOT NULL,
    revoked                   INTEGER NOT NULL CHECK (revoked IN (0, 1)),
    token                     BLOB NOT NULL
) STRICT;
CREATE TRIGGER IF NOT EXISTS license_delegations_no_delete BEFORE DELETE ON license_delegations
    BEGIN SELECT RAISE(ABORT, 'delegations are never deleted'); END;
CREATE TRIGGER IF NOT EXISTS license_delegations_monotonic BEFORE UPDATE ON license_delegations
    WHEN NEW.revoked < OLD.revoked
      OR NEW.issued_flops < OLD.issued_flops
      OR NEW.issued_energy_mj < OLD.issued_energy_mj
      OR NEW.issued_interconnect_bytes < OLD.issued_interconnect_bytes
      OR NEW.token IS NOT OLD.token
    BEGIN SELECT RAISE(ABORT, 'revocation and issued totals only move forward'); END;

CREATE TABLE IF NOT EXISTS license_regions (
    region                    TEXT PRIMARY KEY,
    cap_flops                 BLOB CHECK (cap_flops IS NULL OR length(cap_flops) = 8),
    cap_energy_mj             BLOB CHECK (cap_energy_mj IS NULL OR length(cap_energy_mj) = 8),
    cap_interconnect_bytes    BLOB CHECK (cap_interconnect_bytes IS NULL
                                          OR length(cap_interconnect_bytes) = 8),
    issued_flops              BLOB NOT NULL CHECK (length(issued_flops) = 8),
    issued_energy_mj          BLOB NOT NULL CHECK (length(issued_energy_mj) = 8),
    issued_interconnect_bytes BLOB NOT NULL CHECK (length(issued_interconnect_bytes) = 8),
    licenses                  INTEGER NOT NULL CHECK (licenses >= 0)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS license_regions_monotonic BEFORE UPDATE ON license_regions
    WHEN NEW.issued_flops < OLD.issued_flops
      OR NEW.issued_energy_mj < OLD.issued_energy_mj
      OR NEW.issued_interconnect_bytes < OLD.issued_interconnect_bytes
      OR NEW.licenses < OLD.licenses
    BEGIN SELECT RAISE(ABORT, 'issued totals only grow'); END;

CREATE TABLE IF NOT EXISTS license_ledger (
    seq                       INTEGER PRIMARY KEY CHECK (seq >= 1),
    ueid                      BLOB NOT NULL,
    serial                    BLOB NOT NULL CHECK (length(serial) = 8),
    issuer                    TEXT NOT NULL,
    delegation_id             INTEGER,
    region                    TEXT,
    budget_flops              BLOB NOT NULL CHECK (length(budget_flops) = 8),
    budget_energy_mj          BLOB CHECK (budget_energy_mj IS NULL OR length(budget_energy_mj) = 8),
    budget_interconnect_bytes BLOB CHECK (budget_interconnect_bytes IS NULL
                                          OR length(budget_interconnect_bytes) = 8),
    expiry_s                  BLOB NOT NULL CHECK (length(expiry_s) = 8),
    issued_at_ms              INTEGER NOT NULL,
    token                     BLOB NOT NULL,
    UNIQUE (ueid, serial)
) STRICT;
CREATE TRIGGER IF NOT EXISTS license_ledger_in_order BEFORE INSERT ON license_ledger
    WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM license_ledger)
    BEGIN SELECT RAISE(ABORT, 'license ledger seq must follow the head'); END;
CREATE TRIGGER IF NOT EXISTS license_ledger_no_update BEFORE UPDATE ON license_ledger
    BEGIN SELECT RAISE(ABORT, 'license ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS license_ledger_no_delete BEFORE DELETE ON license_ledger
    BEGIN SELECT RAISE(ABORT, 'license ledger is append-only'); END;

CREATE TABLE IF NOT EXISTS license_partners (
    authority     TEXT PRIMARY KEY,
    issued_flops  BLOB NOT NULL CHECK (length(issued_flops) = 8),
    licenses      INTEGER NOT NULL CHECK (licenses >= 0)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS license_partners_monotonic BEFORE UPDATE ON license_partners
    WHEN NEW.issued_flops < OLD.issued_flops OR NEW.licenses < OLD.licenses
    BEGIN SELECT RAISE(ABORT, 'issued totals only grow'); END;
CREATE TRIGGER IF NOT EXISTS license_partners_no_delete BEFORE DELETE ON license_partners
    BEGIN SELECT RAISE(ABORT, 'partner totals are never deleted'); END;

CREATE TABLE IF NOT EXISTS license_chips (
    ueid            BLOB PRIMARY KEY,
    reported_serial BLOB NOT NULL CHECK (length(reported_serial) = 8)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS license_chips_monotonic BEFORE UPDATE ON license_chips
    WHEN NEW.reported_serial < OLD.reported_serial
    BEGIN SELECT RAISE(ABORT, 'a reported serial never goes down'); END;
"""

_DELEGATION_COLUMNS = (
    "delegation_id, verifier_id, region, quota_flops, quota_energy_mj, quota_interconnect_bytes, "
    "issued_flops, issued_energy_mj, issued_interconnect_bytes, expires_at, revoked"
)
_REGION_COLUMNS = (
    "region, cap_flops, cap_energy_mj, cap_interconnect_bytes, "
    "issued_flops, issued_energy_mj, issued_interconnect_bytes, licenses"
)
_LEDGER_COLUMNS = (
    "seq, ueid, serial, issuer, delegation_id, region, budget_flops, budget_energy_mj, "
    "budget_interconnect_bytes, expiry_s, issued_at_ms, token"
)


#: the same tables on PostgreSQL: bytea for BLOB, the triggers as PL/pgSQL functions (plus
#: TRUNCATE guards, which SQLite does not have), created or replaced on every open
POSTGRESQL_SCHEMA = """
CREATE TABLE IF NOT EXISTS license_delegations (
    delegation_id             bigint PRIMARY KEY,
    verifier_id               text NOT NULL,
    region                    text NOT NULL,
    quota_flops               bytea NOT NULL CHECK (length(quota_flops) = 8),
    quota_energy_mj           bytea CHECK (quota_energy_mj IS NULL OR length(quota_energy_mj) = 8),
    quota_interconnect_bytes  bytea CHECK (quota_interconnect_bytes IS NULL
                                           OR length(quota_interconnect_bytes) = 8),
    issued_flops              bytea NOT NULL CHECK (length(issued_flops) = 8),
    issued_energy_mj          bytea NOT NULL CHECK (length(issued_energy_mj) = 8),
    issued_interconnect_bytes bytea NOT NULL CHECK (length(issued_interconnect_bytes) = 8),
    expires_at                bigint NOT NULL,
    revoked                   integer NOT NULL CHECK (revoked IN (0, 1)),
    token                     bytea NOT NULL
);
CREATE OR REPLACE FUNCTION license_delegations_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'delegations are never deleted';
    END IF;
    IF NEW.revoked < OLD.revoked
       OR NEW.issued_flops < OLD.issued_flops
       OR NEW.issued_energy_mj < OLD.issued_energy_mj
       OR NEW.issued_interconnect_bytes < OLD.issued_interconnect_bytes
       OR NEW.token IS DISTINCT FROM OLD.token THEN
        RAISE EXCEPTION 'revocation and issued totals only move forward';
    END IF;
    RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER license_delegations_guard BEFORE UPDATE OR DELETE
    ON license_delegations FOR EACH ROW EXECUTE FUNCTION license_delegations_guard();
CREATE OR REPLACE TRIGGER license_delegations_no_truncate BEFORE TRUNCATE
    ON license_delegations FOR EACH STATEMENT EXECUTE FUNCTION license_delegations_guard();

CREATE TABLE IF NOT EXISTS license_regions (
    region                    text PRIMARY KEY,
    cap_flops                 bytea CHECK (cap_flops IS NULL OR length(cap_flops) = 8),
    cap_energy_mj             bytea CHECK (cap_energy_mj IS NULL OR length(cap_energy_mj) = 8),
    cap_interconnect_bytes    bytea CHECK (cap_interconnect_bytes IS NULL
                                           OR length(cap_interconnect_bytes) = 8),
    issued_flops              bytea NOT NULL CHECK (length(issued_flops) = 8),
    issued_energy_mj          bytea NOT NULL CHECK (length(issued_energy_mj) = 8),
    issued_interconnect_bytes bytea NOT NULL CHECK (length(issued_interconnect_bytes) = 8),
    licenses                  bigint NOT NULL CHECK (licenses >= 0)
);
CREATE OR REPLACE FUNCTION license_regions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.issued_flops < OLD.issued_flops
       OR NEW.issued_energy_mj < OLD.issued_energy_mj
       OR NEW.issued_interconnect_bytes < OLD.issued_interconnect_bytes
       OR NEW.licenses < OLD.licenses THEN
        RAISE EXCEPTION 'issued totals only grow';
    END IF;
    RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER license_regions_guard BEFORE UPDATE
    ON license_regions FOR EACH ROW EXECUTE FUNCTION license_regions_guard();

CREATE TABLE IF NOT EXISTS license_ledger (
    seq                       bigint PRIMARY KEY CHECK (seq >= 1),
    ueid                      bytea NOT NULL,
    serial                    bytea NOT NULL CHECK (length(serial) = 8),
    issuer                    text NOT NULL,
    delegation_id             bigint,
    region                    text,
    budget_flops              bytea NOT NULL CHECK (length(budget_flops) = 8),
    budget_energy_mj          bytea CHECK (budget_energy_mj IS NULL
                                           OR length(budget_energy_mj) = 8),
    budget_interconnect_bytes bytea CHECK (budget_interconnect_bytes IS NULL
                                           OR length(budget_interconnect_bytes) = 8),
    expiry_s                  bytea NOT NULL CHECK (length(expiry_s) = 8),
    issued_at_ms              bigint NOT NULL,
    token                     bytea NOT NULL,
    UNIQUE (ueid, serial)
);
CREATE OR REPLACE FUNCTION license_ledger_in_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq IS DISTINCT FROM (SELECT coalesce(max(seq), 0) + 1 FROM license_ledger) THEN
        RAISE EXCEPTION 'license ledger seq must follow the head';
    END IF;
    RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION license_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'license ledger is append-only';
END $$;
CREATE OR REPLACE TRIGGER license_ledger_in_order BEFORE INSERT
    ON license_ledger FOR EACH ROW EXECUTE FUNCTION license_ledger_in_order();
CREATE OR REPLACE TRIGGER license_ledger_no_change BEFORE UPDATE OR DELETE
    ON license_ledger FOR EACH ROW EXECUTE FUNCTION license_ledger_append_only();
CREATE OR REPLACE TRIGGER license_ledger_no_truncate BEFORE TRUNCATE
    ON license_ledger FOR EACH STATEMENT EXECUTE FUNCTION license_ledger_append_only();

CREATE TABLE IF NOT EXISTS license_partners (
    authority     text PRIMARY KEY,
    issued_flops  bytea NOT NULL CHECK (length(issued_flops) = 8),
    licenses      bigint NOT NULL CHECK (licenses >= 0)
);
CREATE OR REPLACE FUNCTION license_partners_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'partner totals are never deleted';
    END IF;
    IF NEW.issued_flops < OLD.issued_flops OR NEW.licenses < OLD.licenses THEN
        RAISE EXCEPTION 'issued totals only grow';
    END IF;
    RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER license_partners_guard BEFORE UPDATE OR DELETE
    ON license_partners FOR EACH ROW EXECUTE FUNCTION license_partners_guard();
CREATE OR REPLACE TRIGGER license_partners_no_truncate BEFORE TRUNCATE
    ON license_partners FOR EACH STATEMENT EXECUTE FUNCTION license_partners_guard();

CREATE TABLE IF NOT EXISTS license_chips (
    ueid            bytea PRIMARY KEY,
    reported_serial bytea NOT NULL CHECK (length(reported_serial) = 8)
);
CREATE OR REPLACE FUNCTION license_chips_monotonic() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.reported_serial < OLD.reported_serial THEN
        RAISE EXCEPTION 'a reported serial never goes down';
    END IF;
    RETURN NEW;
END $$;
CREATE OR REPLACE TRIGGER license_chips_monotonic BEFORE UPDATE
    ON license_chips FOR EACH ROW EXECUTE FUNCTION license_chips_monotonic();
"""

#: the DDL per database dialect
SCHEMA: dict[str, str] = {"sqlite": SQLITE_SCHEMA, "postgresql": POSTGRESQL_SCHEMA}


def _opt_u64(v: int | None) -> bytes | None:
    return None if v is None else u64_to_blob(v)


def _opt_int(b: bytes | None) -> int | None:
    return None if b is None else blob_to_u64(b)


def _delegation_from_row(row: tuple[Any, ...]) -> QuotaStatus:
    return QuotaStatus(
        delegation_id=row[0],
        verifier_id=row[1],
        region=row[2],
        quota=Budgets(blob_to_u64(row[3]), _opt_int(row[4]), _opt_int(row[5])),
        issued=(blob_to_u64(row[6]), blob_to_u64(row[7]), blob_to_u64(row[8])),
        expires_at=row[9],
        revoked=bool(row[10]),
    )


def _region_from_row(row: tuple[Any, ...]) -> RegionStatus:
    return RegionStatus(
        region=row[0],
        cap=(_opt_int(row[1]), _opt_int(row[2]), _opt_int(row[3])),
        issued=(blob_to_u64(row[4]), blob_to_u64(row[5]), blob_to_u64(row[6])),
        licenses=row[7],
    )


def _ledger_from_row(row: tuple[Any, ...]) -> LedgerRecord:
    return LedgerRecord(
        seq=row[0],
        ueid=row[1],
        serial=blob_to_u64(row[2]),
        issuer=row[3],
        delegation_id=row[4],
        region=row[5],
        budgets=Budgets(blob_to_u64(row[6]), _opt_int(row[7]), _opt_int(row[8])),
        expiry_s=blob_to_u64(row[9]),
        issued_at_ms=row[10],
        token=row[11],
    )


def _ensure_region(conn: Transaction, region: str, lock: str = "") -> tuple[Any, ...]:
    conn.execute(
        "INSERT INTO license_regions (region, issued_flops, issued_energy_mj, "
        "issued_interconnect_bytes, licenses) VALUES (?, ?, ?, ?, 0) "
        "ON CONFLICT (region) DO NOTHING",
        (region, *(u64_to_blob(0),) * 3),
    )
    row: tuple[Any, ...] = conn.execute(
        f"SELECT {_REGION_COLUMNS} FROM license_regions WHERE region = ?" + lock, (region,)
    ).fetchone()
    return row


def _ensure_partner(conn: Transaction, authority: str, lock: str = "") -> tuple[Any, ...]:
    conn.execute(
        "INSERT INTO license_partners (authority, issued_flops, licenses) VALUES (?, ?, 0) "
        "ON CONFLICT (authority) DO NOTHING",
        (authority, u64_to_blob(0)),
    )
    row: tuple[Any, ...] = conn.execute(
        "SELECT authority, issued_flops, licenses FROM license_partners WHERE authority = ?" + lock,
        (authority,),
    ).fetchone()
    return row


def _charge_partner(issued: int, flops: int | None, quota: int, authority: str) -> int:
    """The partner's new FLOPs total, or QuotaExceeded (the quota binds FLOPs, SPEC B.4)."""
    if flops is None or issued + flops > quota:
        raise QuotaExceeded(
            f"partner quota of {authority} exceeded: {issued} + {flops} > {quota} FLOPs",
            "partner",
        )
    return issued + flops


def _charge(
    issued: tuple[int, int, int],
    budgets: tuple[int | None, int | None, int | None],
    limits: tuple[int | None, int | None, int | None],
    scope: str,
) -> tuple[int, int, int]:
    """New issued totals, or QuotaExceeded if any limited meter would be passed."""
    meter = exceeded_meter(issued, budgets, limits)
    if meter is not None:
        raise QuotaExceeded(f"{scope} quota exceeded (or left unbudgeted) for {meter}", scope)
    return charged(issued, budgets)


def _append_ledger(conn: Transaction, r: LedgerRecord) -> int:
    seq: int = conn.execute("SELECT coalesce(max(seq), 0) + 1 FROM license_ledger").fetchone()[0]
    conn.execute(
        f"INSERT INTO license_ledger ({_LEDGER_COLUMNS}) VALUES ({', '.join('?' * 12)})",
        (
            seq,
            r.ueid,
            u64_to_blob(r.serial),
            r.issuer,
            r.delegation_id,
            r.region,
            *(_opt_u64(x) for x in r.budgets.as_tuple()),
            u64_to_blob(r.expiry_s),
            _i64(r.issued_at_ms, "issued_at_ms"),
            r.token,
        ),
    )
    return seq
