"""Audit-log vectors (vectors/audit.json): the audit-v1 hash rule and an auditor's checks.

Logs are built with the store's own chain functions from fixed entries, signed with the world's
verifier key, then tampered with the way an attacker holding the node's storage would: edit an
entry, delete one, reorder, cut the tail, rewrite the whole chain, forge or fork a checkpoint.
Each case states the findings it is written for; generation fails if the auditor disagrees.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from attest.codec.cose import sign1
from attest.messages.content import ContentType
from attest.store.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditFinding,
    AuditRecord,
    chain_next,
    checkpoint_payload,
    sign_checkpoint,
)
from attest.testvectors.audit_check import (
    AUDIT_ALGORITHM,
    _entry_hash,
    audit_log_outputs,
    entry_json,
)
from attest.testvectors.format import VectorError, vector_document
from attest.testvectors.world import (
    NOW_MS,
    World,
    build_world,
    vector_key,
    vector_nonce,
    vector_ueid,
)

HEADER = [
    "The verifier's audit log (SPEC §11): a SHA-256 hash chain (rule audit-v1) plus signed",
    "AuditCheckpoint tokens.",
    "AuditEntryHash: body = deterministic CBOR of [seq, timeMs, verifierId, ueid, tier, reasons,",
    "evidenceDigest, nonce, kind]; hash = SHA-256('attest-audit-v1' || prevHash || body).",
    "AuditLogVerify: entries (in the order stored, each with its stored prevHash and hash) and",
    "checkpoint tokens, audited with the verifier's key (verifierKey; null: checkpoints are not",
    "checked) and id (verifierId; null: not compared). findings is the sorted set of the",
    "problems found (names of §11.4), headHash the chain recomputed from content alone and",
    "checkpointsVerified the number of checkpoint tokens that verified. result is valid iff",
    "findings is empty.",
]

NOTES = {
    "EntryHash": "The hash rule of one entry.",
    "Intact": "An unmodified log.",
    "Edit": "An entry's content was changed (its stored hash kept, or every hash recomputed).",
    "Delete": "An entry was removed or entries reordered.",
    "Truncate": "The newest entries were cut off.",
    "Checkpoint": "A checkpoint token is forged, misissued, forked or names a missing entry.",
    "Limitation": "A change the rules cannot detect (documented in §11.3 and §11.4).",
    "Boundary": "Largest values the entry fields allow.",
}

VERIFIER_ID = "kl-1"


def _entries() -> list[AuditEntry]:
    ueid = vector_ueid("hx100-a")
    rows = [
        (2, ()),
        (32, (81,)),
        (96, (3, 4)),
        (2, ()),
        (96, (25, 41)),
        (2, ()),
    ]
    out = []
    for i, (tier, reasons) in enumerate(rows):
        out.append(
            AuditEntry(
                time_ms=NOW_MS + 60_000 * i + 500,
                verifier_id=VERIFIER_ID,
                ueid=ueid if tier != 96 or i != 2 else b"",
                tier=tier,
                reasons=reasons,
                evidence_digest=vector_nonce(f"audit/evidence/{i}"),
                nonce=vector_nonce(f"audit/nonce/{i}"),
            )
        )
    return out


def _chain(entries: list[AuditEntry]) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    head = (0, GENESIS_HASH)
    for e in entries:
        rec = chain_next(head, e)
        records.append(rec)
        head = (rec.seq, rec.hash)
    return records


def _record_json(r: AuditRecord) -> dict[str, Any]:
    return {**entry_json(r.seq, r.entry), "prevHash": r.prev_hash.hex(), "hash": r.hash.hex()}


def _log_cases(w: World) -> list[tuple[str, tuple[str, ...], dict[str, Any], set[str]]]:
    key = w.verifiers[VERIFIER_ID].key
    other = w.verifiers["sg-1"].key
    log = _chain(_entries())
    cps = [
        sign_checkpoint(key, VERIFIER_ID, log[1]).token,
        sign_checkpoint(key, VERIFIER_ID, log[3]).token,
    ]
    pub = key.public_key.raw.hex()
    F = AuditFinding

    def case(
        comment: str,
        flags: tuple[str, ...],
        records: list[AuditRecord],
        checkpoints: list[bytes],
        findings: set[str],
        *,
        key_hex: str | None = pub,
        vid: str | None = VERIFIER_ID,
    ) -> tuple[str, tuple[str, ...], dict[str, Any], set[str]]:
        t = {
            "verifierKey": key_hex,
            "verifierId": vid,
            "entries": [_record_json(r) for r in records],
            "checkpoints": [c.hex() for c in checkpoints],
        }
        return comment, flags, t, findings

    edited_entry = dataclasses.replace(log[2].entry, tier=2, reasons=())
    edited = [*log[:2], dataclasses.replace(log[2], entry=edited_entry), *log[3:]]
    rewritten = _chain([*[r.entry for r in log[:2]], edited_entry, *[r.entry for r in log[3:]]])
    relinked = [*log[:4], dataclasses.replace(log[4], prev_hash=bytes(32)), log[5]]
    forged = sign_checkpoint(other, VERIFIER_ID, log[3]).token
    misissued = sign_checkpoint(key, "sg-1", log[3]).token
    fork = sign1(
        key,
        ContentType.AUDIT_CHECKPOINT,
        checkpoint_payload(VERIFIER_ID, log[3].entry.time_ms // 1000, 4, bytes(32)),
    )
    seq0 = sign1(
        key,
        ContentType.AUDIT_CHECKPOINT,
        checkpoint_payload(VERIFIER_ID, log[0].entry.time_ms // 1000, 0, log[0].hash),
    )
    wrong_type = sign1(
        key, ContentType.CHALLENGE, checkpoint_payload(VERIFIER_ID, 0, 4, log[3].hash)
    )
    return [
        case("six entries, checkpoints at seq 2 and 4", ("Intact",), log, cps, set()),
        case(
            "the same log audited without a key: checkpoints not checked",
            ("Intact",),
            log,
            cps,
            set(),
            key_hex=None,
            vid=None,
        ),
        case("an empty log", ("Intact",), [], [], set()),
        case(
            "entry 3 edited, its stored hash kept",
            ("Edit",),
            edited,
            cps,
            {F.ENTRY_EDITED, F.CHECKPOINT_MISMATCH},
        ),
        case(
            "entry 3 edited and every hash recomputed: only the checkpoint at 4 shows it",
            ("Edit",),
            rewritten,
            cps,
            {F.CHECKPOINT_MISMATCH},
        ),
        case(
            "entry 3 edited and every hash recomputed, audited without a key: undetected",
            ("Edit", "Limitation"),
            rewritten,
            cps,
            set(),
            key_hex=None,
            vid=None,
        ),
        case(
            "entry 5's prevHash replaced and its hash recomputed",
            ("Edit",),
            [
                *relinked[:4],
                dataclasses.replace(relinked[4], hash=_rehash(relinked[4])),
                relinked[5],
            ],
            cps,
            {F.BROKEN_LINK},
        ),
        case(
            "entry 3 deleted",
            ("Delete",),
            [*log[:2], *log[3:]],
            cps,
            {F.SEQ_GAP, F.BROKEN_LINK, F.CHECKPOINT_MISMATCH},
        ),
        case(
            "entry 4 (a checkpointed one) deleted",
            ("Delete", "Checkpoint"),
            [*log[:3], *log[4:]],
            cps,
            {F.SEQ_GAP, F.BROKEN_LINK, F.CHECKPOINT_ENTRY_MISSING},
        ),
        case(
            "entries 5 and 6 swapped",
            ("Delete",),
            [*log[:4], log[5], log[4]],
            cps,
            {F.SEQ_GAP, F.BROKEN_LINK},
        ),
        case(
            "cut back to 3 entries, below the checkpoint at 4",
            ("Truncate",),
            log[:3],
            cps,
            {F.TRUNCATED},
        ),
        case(
            "cut back to 5 entries, above the newest checkpoint: undetected",
            ("Truncate", "Limitation"),
            log[:5],
            cps,
            set(),
        ),
        case(
            "a checkpoint signed by another verifier's key",
            ("Checkpoint",),
            log,
            [cps[0], forged],
            {F.CHECKPOINT_FORGED},
        ),
        case(
            "a checkpoint in another verifier's name",
            ("Checkpoint",),
            log,
            [cps[0], misissued],
            {F.CHECKPOINT_WRONG_ISSUER},
        ),
        case(
            "a checkpoint in another verifier's name, no verifier id given: accepted",
            ("Checkpoint", "Intact"),
            log,
            [cps[0], misissued],
            set(),
            vid=None,
        ),
        case(
            "two checkpoints at seq 4 with different heads (a fork)",
            ("Checkpoint",),
            log,
            [*cps, fork],
            {F.CHECKPOINT_FORK, F.CHECKPOINT_MISMATCH},
        ),
        case(
            "a checkpoint claiming seq 0 (malformed, validly signed)",
            ("Checkpoint",),
            log,
            [*cps, seq0],
            {F.CHECKPOINT_FORGED},
        ),
        case(
            "checkpoint claims signed as a Challenge (another content type)",
            ("Checkpoint",),
            log,
            [cps[0], wrong_type],
            {F.CHECKPOINT_FORGED},
        ),
    ]


def _rehash(r: AuditRecord) -> bytes:
    from attest.store.audit import entry_hash

    return entry_hash(r.prev_hash, r.seq, r.entry)


def _hash_cases() -> list[tuple[str, tuple[str, ...], int, AuditEntry, bytes]]:
    log = _chain(_entries())
    base = _entries()[0]
    return [
        ("entry 1: prevHash is 32 zero bytes", ("EntryHash",), 1, base, GENESIS_HASH),
        ("entry 2 of the log", ("EntryHash",), 2, log[1].entry, log[0].hash),
        ("no validated chain: empty ueid", ("EntryHash",), 3, log[2].entry, log[1].hash),
        (
            "no evidence digest (empty) and an empty nonce",
            ("EntryHash",),
            7,
            dataclasses.replace(base, evidence_digest=b"", nonce=b""),
            log[5].hash,
        ),
        (
            "largest values: timeMs and tier 2^63 - 1, a reason code 2^64 - 1",
            ("EntryHash", "Boundary"),
            2**64 - 1,
            dataclasses.replace(base, time_ms=2**63 - 1, tier=2**63 - 1, reasons=(1, 2**64 - 1)),
            log[0].hash,
        ),
        (
            "non-ASCII verifier id and another kind",
            ("EntryHash",),
            1,
            dataclasses.replace(base, verifier_id="kuala-lumpur-ü", kind="attestation-x"),
            GENESIS_HASH,
        ),
    ]


def audit_document(w: World | None = None) -> dict[str, Any]:
    w = w or build_world()
    tc = 0
    hash_tests = []
    for comment, flags, seq, entry, prev in _hash_cases():
        tc += 1
        t = {
            "tcId": tc,
            "comment": comment,
            "flags": list(flags),
            "sections": ["11.1"],
            "entry": entry_json(seq, entry),
            "prevHash": prev.hex(),
        }
        hash_tests.append({**t, **_entry_hash(t)})
    log_tests = []
    for comment, flags, fields, findings in _log_cases(w):
        tc += 1
        t = {
            "tcId": tc,
            "comment": comment,
            "flags": list(flags),
            "sections": ["11.3", "11.4"],
            **fields,
        }
        out = audit_log_outputs(t)
        if out["findings"] != sorted(findings):
            raise VectorError(f"audit case {comment!r}: meant {sorted(findings)}, got {out}")
        log_tests.append({**t, **out})
    groups: list[dict[str, Any]] = [
        {
            "type": "AuditEntryHash",
            "comment": "the audit-v1 body and hash of one entry",
            "outputs": ["body", "hash"],
            "tests": hash_tests,
        },
        {
            "type": "AuditLogVerify",
            "comment": "auditing a log and its checkpoints",
            "outputs": ["result", "findings", "headHash", "checkpointsVerified"],
            "tests": log_tests,
        },
    ]
    used = {f for g in groups for t in g["tests"] for f in t["flags"]}
    return vector_document(
        AUDIT_ALGORITHM, tc, HEADER, {k: v for k, v in NOTES.items() if k in used}, groups
    )


__all__ = ["audit_document", "vector_key"]
