"""Rows of the core tables, shared by both backends (the SQL differs; the columns do not).

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
from attest.store.base import ChipRecord
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
