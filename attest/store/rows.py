"""Rows of the core tables, shared by both backends (the SQL differs; the columns do not).

Also the vendors' reference-values documents, which both stores keep in ``meta`` under
``reference_values:<vendor>`` as CBOR ``[number, token]``.

A chip row and an audit row have the same columns and encodings in SQLite and PostgreSQL
(uint64 as 8-byte big-endian BLOB / bytea, see attest.store.columns), so one set of helpers
turns them into :class:`~attest.store.base.ChipRecord` and
:class:`~attest.store.audit.AuditRecord` and back.
"""

from __future__ import annotations

from typing import Any

from attest.codec.cbor import decode, encode
from attest.errors import AttestError, StoreError
from attest.keys import PublicKey
from attest.messages.attestation import Meters
from attest.store.audit import AuditEntry, AuditRecord
from attest.store.base import ChipRecord, Database, Transaction
from attest.store.columns import blob_to_u64, i64, u64_to_blob
from attest.verify.state import ChipState, ChipStatus

CHIP_COLUMNS = (
    "ueid, device_key, device_cert, manufacturer_cert, hwmodel, bootcount, attest_counter, "
    "meter_flops, meter_energy_mj, meter_interconnect_bytes, last_challenge_iat, last_seen_ms, "
    "last_evidence_digest, status"
)
AUDIT_COLUMNS = (
    "seq, time_ms, verifier_id, ueid, tier, reasons, evidence_digest, nonce, kind, prev_hash, hash"
)


def state_columns(s: ChipState) -> tuple[Any, ...]:
    """The appraisal-state columns, in CHIP_COLUMNS order after the certificates."""
    return (
        s.hwmodel,
        u64_to_blob(s.bootcount),
        u64_to_blob(s.attest_counter),
        u64_to_blob(s.meters.flops),
        u64_to_blob(s.meters.energy_mj),
        u64_to_blob(s.meters.interconnect_bytes),
        i64(s.last_challenge_iat, "last_challenge_iat"),
        i64(s.last_seen_ms, "last_seen_ms"),
        s.last_evidence_digest,
    )


def chip_from_row(row: tuple[Any, ...]) -> ChipRecord:
    try:
        state = ChipState(
            ueid=row[0],
            device_key=PublicKey(row[1]),
            hwmodel=row[4],
            bootcount=blob_to_u64(row[5]),
            attest_counter=blob_to_u64(row[6]),
            meters=Meters(blob_to_u64(row[7]), blob_to_u64(row[8]), blob_to_u64(row[9])),
            last_challenge_iat=row[10],
            last_seen_ms=row[11],
            last_evidence_digest=row[12],
            status=ChipStatus(row[13]),
        )
    except (AttestError, ValueError) as exc:
        raise StoreError(f"corrupt chip row: {exc}") from None
    return ChipRecord(device_cert=row[2], manufacturer_cert=row[3], state=state)


def audit_from_row(row: tuple[Any, ...]) -> AuditRecord:
    seq, time_ms, verifier_id, ueid, tier, reasons, digest, nonce, kind, prev_hash, h = row
    try:
        codes = decode(reasons)
        if type(codes) is not list:
            raise ValueError("reasons is not an array")
        entry = AuditEntry(time_ms, verifier_id, ueid, tier, tuple(codes), digest, nonce, kind)
    except (AttestError, ValueError) as exc:
        raise StoreError(f"corrupt audit row seq {seq}: {exc}") from None
    return AuditRecord(entry, seq, prev_hash, h)


def audit_row(rec: AuditRecord) -> tuple[Any, ...]:
    e = rec.entry
    reasons = encode(list(e.reasons))
    return (
        rec.seq,
        e.time_ms,
        e.verifier_id,
        e.ueid,
        e.tier,
        reasons,
        e.evidence_digest,
        e.nonce,
        e.kind,
        rec.prev_hash,
        rec.hash,
    )


#: meta keys of the vendors' reference-values documents ("reference_values:<vendor>")
_RV_PREFIX = "reference_values:"
#: PostgreSQL advisory lock serialising provisioning across the nodes of one database
_RV_LOCK = 0x7265666572656E63


def put_reference_values(db: Database, vendor: str, number: int, token: bytes) -> None:
    """Keep ``token`` as vendor's document ``number``; StoreError unless it is newer (SPEC
    §6.10: the stored number only grows, checked and written in one transaction)."""
    key = _RV_PREFIX + vendor

    def run(txn: Transaction) -> None:
        if db.dialect == "postgresql":
            txn.execute("SELECT pg_advisory_xact_lock(?)", (_RV_LOCK,))
        row = txn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is not None:
            stored, _ = _reference_row(key, row[0])
            if number <= stored:
                raise StoreError(
                    f"reference values {number} of {vendor!r} are not newer than the stored "
                    f"document {stored}"
                )
        txn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, encode([number, token])),
        )

    db.write(run)


def read_reference_values(db: Database) -> list[tuple[str, int, bytes]]:
    """Every vendor's newest document: (vendor, number, token), by vendor."""
    rows: list[Any] = db.read(
        lambda t: t.execute(
            "SELECT key, value FROM meta WHERE key LIKE ? ORDER BY key", (_RV_PREFIX + "%",)
        ).fetchall()
    )
    return [(key[len(_RV_PREFIX) :], *_reference_row(key, value)) for key, value in rows]


def _reference_row(key: str, value: Any) -> tuple[int, bytes]:
    try:
        number, token = decode(bytes(value))
    except (AttestError, TypeError, ValueError) as exc:
        raise StoreError(f"corrupt reference values in meta ({key}): {exc}") from None
    if type(number) is not int or type(token) is not bytes:
        raise StoreError(f"corrupt reference values in meta ({key})")
    return number, token
