"""Re-verify ``vectors/audit.json`` (the audit log, SPEC §11) from its JSON alone.

* ``AuditEntryHash`` — the body and hash of one entry under rule ``audit-v1`` (§11.1);
* ``AuditLogVerify`` — an auditor's checks of a log and its checkpoints (§11.3, §11.4).

Imports nothing from the generator or the test world.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from attest.errors import AttestError
from attest.keys import PublicKey
from attest.store.audit import (
    AuditEntry,
    AuditRecord,
    Checkpoint,
    entry_body,
    entry_hash,
    open_checkpoint,
    verify_chain,
)
from attest.testvectors.format import judged

AUDIT_FILE = "audit.json"
AUDIT_ALGORITHM = "attest-audit-log"

_Run = Callable[[dict[str, Any]], list[str]]


def entry_from_json(e: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        time_ms=e["timeMs"],
        verifier_id=e["verifierId"],
        ueid=bytes.fromhex(e["ueid"]),
        tier=e["tier"],
        reasons=tuple(e["reasons"]),
        evidence_digest=bytes.fromhex(e["evidenceDigest"]),
        nonce=bytes.fromhex(e["nonce"]),
        kind=e["kind"],
    )


def entry_json(seq: int, entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": seq,
        "timeMs": entry.time_ms,
        "verifierId": entry.verifier_id,
        "ueid": entry.ueid.hex(),
        "tier": entry.tier,
        "reasons": list(entry.reasons),
        "evidenceDigest": entry.evidence_digest.hex(),
        "nonce": entry.nonce.hex(),
        "kind": entry.kind,
    }


def _entry_hash(t: dict[str, Any]) -> dict[str, Any]:
    e = t["entry"]
    entry = entry_from_json(e)
    prev = bytes.fromhex(t["prevHash"])
    return {
        "body": entry_body(e["seq"], entry).hex(),
        "hash": entry_hash(prev, e["seq"], entry).hex(),
    }


def _checkpoint(token: bytes, key: PublicKey | None) -> Checkpoint:
    """A checkpoint as a store would list it; its copy of the claims is the signed one."""
    if key is not None:
        try:
            _iss, iat, seq, head = open_checkpoint(token, key)
            return Checkpoint(seq, head, iat, token)
        except AttestError:
            pass
    return Checkpoint(0, b"", 0, token)


def audit_log_outputs(t: dict[str, Any]) -> dict[str, Any]:
    """The outputs of an AuditLogVerify test (exposed for the test-suite's store round trip)."""
    key = None if t["verifierKey"] is None else PublicKey(bytes.fromhex(t["verifierKey"]))
    records = [
        AuditRecord(
            entry_from_json(e), e["seq"], bytes.fromhex(e["prevHash"]), bytes.fromhex(e["hash"])
        )
        for e in t["entries"]
    ]
    checkpoints = [_checkpoint(bytes.fromhex(c), key) for c in t["checkpoints"]]
    report = verify_chain(records, checkpoints, key, t["verifierId"])
    return {
        "result": "valid" if report.ok else "invalid",
        "findings": sorted({str(f) for f in report.findings}),
        "headHash": report.head_hash.hex(),
        "checkpointsVerified": report.checkpoints_verified,
    }


def audit_groups(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], _Run]]:
    """(group, test runner) for every group of an audit vector file."""
    for g in doc["testGroups"]:
        kind = g["type"]
        if kind == "AuditEntryHash":
            yield g, judged(g, _entry_hash)
        elif kind == "AuditLogVerify":
            yield g, judged(g, audit_log_outputs)
        else:
            raise ValueError(f"unknown audit group type {kind!r}")
