"""The verifier's tamper-evident audit log: a SHA-256 hash chain plus signed checkpoints.

Everything here is pure (no I/O, no clock) so that every storage backend, an offline auditor and
the published test vectors compute exactly the same bytes.

Hash rule (audit-v1)
--------------------
Entry ``seq`` (1, 2, 3 ... with no gaps) is chained to its predecessor by::

    body = deterministic-CBOR([seq, time_ms, verifier_id, ueid, tier, [reasons...],
                               evidence_digest, nonce, kind])
    hash = SHA-256(b"attest-audit-v1" || prev_hash || body)

where ``prev_hash`` is the ``hash`` of entry ``seq - 1`` and, for entry 1, 32 zero bytes.
``seq``, ``time_ms`` (milliseconds since the Unix epoch), ``tier`` and each reason code are
unsigned integers; ``verifier_id`` and ``kind`` are text strings; ``ueid``, ``evidence_digest``
(32 bytes, or empty when no evidence could be digested) and ``nonce`` are byte strings.
Deterministic CBOR is RFC 8949 §4.2.1 core deterministic encoding. The domain prefix has no
length field: it is a constant, and ``prev_hash`` is always exactly 32 bytes.

Checkpoints
-----------
A chain alone shows that entries were edited or removed *in the middle*; it cannot show that
the newest entries were cut off, or that an attacker recomputed every hash after an edit. So
every ``checkpoint_every`` entries (and when the store closes) the verifier signs its head::

    COSE_Sign1(content type "application/vnd.attest.audit-checkpoint+cbor",
               payload = deterministic-CBOR({1: verifier_id, 6: iat, -70016: seq,
                                             -70017: head_hash}))

``iat`` is the ``time_ms // 1000`` of entry ``seq`` (the store reads no clock) and
``head_hash`` is that entry's ``hash``. An auditor holding the verifier's public key then detects
any change to entries ``1..seq`` and any truncation below ``seq``. Entries after the newest
checkpoint are protected only by the chain; the published checkpoint file (attest/store/
published.py: the newest durable head, outside the database) narrows that gap and catches a
store that lost its newest commits, and copying it off-box also defeats an attacker who deletes
checkpoint rows along with the tail.

Kinds
-----
Every entry has a ``kind`` (SPEC §11.2); the same chain records appraisals and the events that
change what a verifier will do, each in the transaction of the write it records:
:data:`KIND_ATTESTATION`, :data:`KIND_LICENSE_ISSUED`, the ``license-refused-*`` kinds,
:data:`KIND_POD_ALERT` and :data:`KIND_REVOCATIONS`. The hash rule is the same for all.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from attest.codec.cbor import decode, encode
from attest.codec.cose import parse_sign1, register_content_type, sign1, verify1
from attest.errors import AttestError, DecodeError, StoreError
from attest.keys import PublicKey, SigningKey
from attest.messages import claims as C
from attest.messages.content import ContentType

register_content_type(ContentType.AUDIT_CHECKPOINT)

AUDIT_DOMAIN = b"attest-audit-v1"
GENESIS_HASH = bytes(32)
HASH_BYTES = 32
#: Upper bound on the problems an :class:`AuditReport` lists (the count is still exact).
MAX_PROBLEMS = 100

_I63 = 1 << 63
_U64 = 1 << 64


#: kinds of audit entries (SPEC §11.2, which says what each field holds for each kind)
KIND_ATTESTATION = "attestation"
KIND_LICENSE_ISSUED = "license-issued"
KIND_LICENSE_REFUSED_QUOTA = "license-refused-quota"
KIND_LICENSE_REFUSED_REGION_CAP = "license-refused-region-cap"
KIND_LICENSE_REFUSED_DELEGATION = "license-refused-delegation"
KIND_POD_ALERT = "pod-alert"
KIND_REVOCATIONS = "revocations"


def u64_tag(value: int) -> bytes:
    """An unsigned number as the 8-byte big-endian ``nonce`` of an event entry."""
    return value.to_bytes(8, "big")


def digest(data: bytes) -> bytes:
    """SHA-256 of ``data``: the ``evidence_digest`` of an event entry (the token it records)."""
    return hashlib.sha256(data).digest()


def _check_int(name: str, v: Any, bound: int) -> None:
    if type(v) is not int or not 0 <= v < bound:
        raise ValueError(f"{name} must be an int in [0, {bound})")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One appraisal outcome, or an event of another ``kind``, as the caller describes it.

    Integers that land in SQLite INTEGER columns (``time_ms``, ``tier``) must fit in 63 bits;
    reason codes are any uint64. Construction fails loudly: a bad entry is a caller bug.
    """

    time_ms: int
    verifier_id: str
    ueid: bytes
    tier: int
    reasons: tuple[int, ...]
    evidence_digest: bytes
    nonce: bytes
    kind: str = "attestation"

    def __post_init__(self) -> None:
        _check_int("time_ms", self.time_ms, _I63)
        _check_int("tier", self.tier, _I63)
        if type(self.reasons) is not tuple:
            raise ValueError("reasons must be a tuple")
        for r in self.reasons:
            _check_int("reason code", r, _U64)
        if type(self.verifier_id) is not str:
            raise ValueError("verifier_id must be a str")
        if type(self.kind) is not str or not self.kind:
            raise ValueError("kind must be a non-empty str")
        if type(self.ueid) is not bytes or type(self.nonce) is not bytes:
            raise ValueError("ueid and nonce must be bytes")
        if type(self.evidence_digest) is not bytes or len(self.evidence_digest) not in (0, 32):
            raise ValueError("evidence_digest must be 32 bytes or empty")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """An entry a mechanism raises during an appraisal (e.g. a pod alert), before the node
    adds the time and its verifier id (:meth:`entry`); appended in the appraisal's
    transaction right after its own entry."""

    kind: str
    ueid: bytes
    tier: int
    reasons: tuple[int, ...]
    evidence_digest: bytes
    nonce: bytes

    def entry(self, time_ms: int, verifier_id: str) -> AuditEntry:
        return AuditEntry(
            time_ms,
            verifier_id,
            self.ueid,
            self.tier,
            self.reasons,
            self.evidence_digest,
            self.nonce,
            self.kind,
        )


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An :class:`AuditEntry` as it sits in the chain."""

    entry: AuditEntry
    seq: int
    prev_hash: bytes
    hash: bytes


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement "my log had ``seq`` entries ending in ``head_hash``" (plus its token).

    ``seq``, ``head_hash`` and ``iat`` are the store's unauthenticated copy for indexing; only the
    signed ``token`` counts when auditing.
    """

    seq: int
    head_hash: bytes
    iat: int
    token: bytes


class AuditFinding(enum.StrEnum):
    """What an audit found wrong (SPEC §11.4); stable names for reports and the vectors."""

    CHECKPOINT_FORGED = "CHECKPOINT_FORGED"  # does not verify as an AuditCheckpoint
    CHECKPOINT_WRONG_ISSUER = "CHECKPOINT_WRONG_ISSUER"  # iss is not the verifier id
    CHECKPOINT_COLUMNS = "CHECKPOINT_COLUMNS"  # a store's copy differs from the signed claims
    CHECKPOINT_FORK = "CHECKPOINT_FORK"  # two signed heads for one seq
    SEQ_GAP = "SEQ_GAP"  # seq does not count up by one: entries missing or reordered
    BROKEN_LINK = "BROKEN_LINK"  # prev_hash is not the previous entry's hash
    ENTRY_EDITED = "ENTRY_EDITED"  # the stored hash does not match the entry's content
    CHECKPOINT_MISMATCH = "CHECKPOINT_MISMATCH"  # recomputed chain differs from a signed head
    TRUNCATED = "TRUNCATED"  # a signed seq lies beyond the last entry
    CHECKPOINT_ENTRY_MISSING = "CHECKPOINT_ENTRY_MISSING"  # no entry with a signed seq
    # the checkpoint the node published outside its store (§11.3, attest/store/published.py)
    PUBLISHED_FORGED = "PUBLISHED_FORGED"  # does not verify as an AuditCheckpoint
    PUBLISHED_WRONG_ISSUER = "PUBLISHED_WRONG_ISSUER"  # iss is not the verifier id
    PUBLISHED_MISMATCH = "PUBLISHED_MISMATCH"  # the log differs from the published head
    ENTRIES_LOST = "ENTRIES_LOST"  # the published seq lies beyond the last entry


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Outcome of :func:`verify_audit`. ``ok`` is true iff ``problems`` is empty.

    ``findings`` names what each problem is, in the order found (not capped).
    """

    entries: int
    head_hash: bytes
    checkpoints_verified: int
    ok: bool
    problems: tuple[str, ...]
    findings: tuple[AuditFinding, ...] = ()
    #: the seq named by the published checkpoint file that was compared (None: no file given)
    published_seq: int | None = None
    #: whether that file's signature was checked (False without a public key)
    published_verified: bool = False


def entry_body(seq: int, entry: AuditEntry) -> bytes:
    """The deterministic CBOR array that an entry's hash covers."""
    return encode(
        [
            seq,
            entry.time_ms,
            entry.verifier_id,
            entry.ueid,
            entry.tier,
            list(entry.reasons),
            entry.evidence_digest,
            entry.nonce,
            entry.kind,
        ]
    )


def entry_hash(prev_hash: bytes, seq: int, entry: AuditEntry) -> bytes:
    """SHA-256(b"attest-audit-v1" || prev_hash || body): the audit-v1 chain rule."""
    if len(prev_hash) != HASH_BYTES:
        raise ValueError("prev_hash must be 32 bytes")
    return hashlib.sha256(AUDIT_DOMAIN + prev_hash + entry_body(seq, entry)).digest()


def chain_next(head: tuple[int, bytes], entry: AuditEntry) -> AuditRecord:
    """The record that appends ``entry`` to a chain whose (length, head hash) is ``head``."""
    length, head_hash = head
    seq = length + 1
    return AuditRecord(entry, seq, head_hash, entry_hash(head_hash, seq, entry))


def checkpoint_payload(verifier_id: str, iat: int, seq: int, head_hash: bytes) -> bytes:
    """The deterministic CBOR claims map a checkpoint signs."""
    return encode(
        {C.ISS: verifier_id, C.IAT: iat, C.HEM_AUDIT_SEQ: seq, C.HEM_AUDIT_HEAD: head_hash}
    )


def sign_checkpoint(key: SigningKey, verifier_id: str, record: AuditRecord) -> Checkpoint:
    """Sign the chain head ``record`` (its ``time_ms`` gives the checkpoint's ``iat``)."""
    iat = record.entry.time_ms // 1000
    payload = checkpoint_payload(verifier_id, iat, record.seq, record.hash)
    token = sign1(key, ContentType.AUDIT_CHECKPOINT, payload)
    return Checkpoint(record.seq, record.hash, iat, token)


def open_checkpoint(token: bytes, public_key: PublicKey) -> tuple[str, int, int, bytes]:
    """Verify a checkpoint token and return its (verifier_id, iat, seq, head_hash).

    Raises an :class:`AttestError` subclass if the signature, content type or claims are bad.
    """
    return checkpoint_claims(verify1(token, public_key, ContentType.AUDIT_CHECKPOINT))


def checkpoint_claims(payload: bytes) -> tuple[str, int, int, bytes]:
    """The (verifier_id, iat, seq, head_hash) of a checkpoint payload (SPEC §6.9).

    Raises DecodeError unless it is exactly iss, iat, seq ≥ 1 and a 32-byte head.
    """
    claims = decode(payload)
    keys = {C.ISS, C.IAT, C.HEM_AUDIT_SEQ, C.HEM_AUDIT_HEAD}
    if type(claims) is not dict or set(claims) != keys:
        raise DecodeError("checkpoint claims must be exactly iss, iat, seq and head")
    iss, iat, seq, head = (claims[k] for k in (C.ISS, C.IAT, C.HEM_AUDIT_SEQ, C.HEM_AUDIT_HEAD))
    if type(iss) is not str or type(iat) is not int or iat < 0 or type(seq) is not int or seq < 1:
        raise DecodeError("checkpoint claims have the wrong types")
    if type(head) is not bytes or len(head) != HASH_BYTES:
        raise DecodeError("checkpoint head must be a 32-byte hash")
    return iss, iat, seq, head


class _Problems:
    """Collects problem strings, keeping at most MAX_PROBLEMS of them."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.kinds: list[AuditFinding] = []
        self.count = 0

    def add(self, kind: AuditFinding, text: str) -> None:
        self.count += 1
        self.kinds.append(kind)
        if len(self.items) < MAX_PROBLEMS:
            self.items.append(text)

    def result(self) -> tuple[str, ...]:
        extra = self.count - len(self.items)
        return (*self.items, f"... and {extra} more") if extra else tuple(self.items)


def _unverified_claims(token: bytes) -> tuple[Any, int, bytes]:
    """(iss, seq, head) of a checkpoint token read without its signature (AttestError if bad)."""
    claims = decode(parse_sign1(token).payload)
    if type(claims) is not dict:
        raise AttestError("claims are not a map")
    seq, head = claims.get(C.HEM_AUDIT_SEQ), claims.get(C.HEM_AUDIT_HEAD)
    if type(seq) is not int or seq < 1 or type(head) is not bytes:
        raise AttestError("claims have the wrong types")
    return claims.get(C.ISS), seq, head


def _published(
    token: bytes,
    public_key: PublicKey | None,
    verifier_id: str | None,
    problems: _Problems,
) -> tuple[int, bytes] | None:
    """(seq, head) a published checkpoint names, or None if it cannot be used (a problem).

    With a key the signature and issuer are checked; without one the claims are read as they
    are (an unverified file still shows an accidental loss; it proves nothing against an
    attacker).
    """
    try:
        if public_key is not None:
            iss, _iat, seq, head = open_checkpoint(token, public_key)
        else:
            iss, seq, head = _unverified_claims(token)
    except AttestError as exc:
        problems.add(
            AuditFinding.PUBLISHED_FORGED, f"published checkpoint file: forged or corrupt: {exc}"
        )
        return None
    if verifier_id is not None and iss != verifier_id:
        problems.add(
            AuditFinding.PUBLISHED_WRONG_ISSUER,
            f"published checkpoint file was issued by {iss!r}, not {verifier_id!r}",
        )
        return None
    return seq, head


def verify_chain(
    records: Iterable[AuditRecord],
    checkpoints: Iterable[Checkpoint],
    verifier_public_key: PublicKey | None,
    verifier_id: str | None = None,
    published: bytes | None = None,
) -> AuditReport:
    """Audit a log given as records in ``seq`` order plus its checkpoints.

    Per entry: its stored hash must match its content (else it was edited), its ``prev_hash``
    must equal the previous entry's hash and ``seq`` must count up by one (else something was
    deleted or reordered). Independently the chain is recomputed from genesis using content
    only; every checkpoint whose signature verifies must name a ``seq`` that exists and equal
    the recomputed hash there, which catches re-hashed edits and truncation below it. Without
    a public key checkpoints are not checked at all (they would prove nothing).

    ``published`` is the token of the published checkpoint file (attest/store/published.py):
    the log must reach its ``seq`` and match its head there; a log that ends before it lost
    committed entries (e.g. a write-ahead log deleted after a crash). Without a key its claims
    are compared unverified.
    """
    F = AuditFinding
    problems = _Problems()
    expected: dict[int, bytes] = {}  # seq -> signed head hash
    verified = 0
    cps = list(checkpoints)
    file_claim = (
        None
        if published is None
        else _published(published, verifier_public_key, verifier_id, problems)
    )
    if verifier_public_key is not None:
        for i, cp in enumerate(cps):
            try:
                iss, _iat, seq, head = open_checkpoint(cp.token, verifier_public_key)
            except AttestError as exc:
                problems.add(
                    F.CHECKPOINT_FORGED,
                    f"checkpoint #{i + 1} (seq {cp.seq}): forged or corrupt: {exc}",
                )
                continue
            if verifier_id is not None and iss != verifier_id:
                problems.add(
                    F.CHECKPOINT_WRONG_ISSUER,
                    f"checkpoint at seq {seq} was issued by {iss!r}, not {verifier_id!r}",
                )
                continue
            if (seq, head) != (cp.seq, cp.head_hash):
                problems.add(
                    F.CHECKPOINT_COLUMNS,
                    f"checkpoint at seq {seq}: stored columns differ from signed claims",
                )
            if expected.get(seq, head) != head:
                problems.add(
                    F.CHECKPOINT_FORK, f"two signed checkpoints at seq {seq} disagree (fork)"
                )
            expected[seq] = head
            verified += 1

    n = 0
    last_seq = 0
    prev_stored = GENESIS_HASH
    chain = GENESIS_HASH
    for rec in records:
        n += 1
        if rec.seq != last_seq + 1:
            problems.add(
                F.SEQ_GAP,
                f"entry seq {rec.seq} follows seq {last_seq}: entries missing or reordered",
            )
        if rec.prev_hash != prev_stored:
            problems.add(
                F.BROKEN_LINK, f"entry seq {rec.seq}: prev_hash does not link to the previous entry"
            )
        if entry_hash(rec.prev_hash, rec.seq, rec.entry) != rec.hash:
            problems.add(
                F.ENTRY_EDITED, f"entry seq {rec.seq}: content does not match its hash (edited)"
            )
        chain = entry_hash(chain, rec.seq, rec.entry)
        signed = expected.pop(rec.seq, None)
        if signed is not None and signed != chain:
            problems.add(
                F.CHECKPOINT_MISMATCH,
                f"entry seq {rec.seq}: log up to here differs from the signed checkpoint",
            )
        if file_claim is not None and file_claim[0] == rec.seq and file_claim[1] != chain:
            problems.add(
                F.PUBLISHED_MISMATCH,
                f"entry seq {rec.seq}: log up to here differs from the published checkpoint "
                "file (entries changed or replaced since it was published)",
            )
        prev_stored = rec.hash
        last_seq = rec.seq
    for seq in sorted(expected):
        if seq > last_seq:
            problems.add(
                F.TRUNCATED,
                f"signed checkpoint at seq {seq} but the log ends at seq {last_seq}: truncated",
            )
        else:
            problems.add(
                F.CHECKPOINT_ENTRY_MISSING,
                f"signed checkpoint at seq {seq} names an entry that is missing",
            )
    if file_claim is not None and file_claim[0] > last_seq:
        problems.add(
            F.ENTRIES_LOST,
            f"the published checkpoint file names seq {file_claim[0]} but the log ends at seq "
            f"{last_seq}: {file_claim[0] - last_seq} committed entries are lost (a deleted or "
            "truncated write-ahead log, a restored backup, or a cut-off tail)",
        )
    result = problems.result()
    return AuditReport(
        n,
        chain,
        verified,
        not result,
        result,
        tuple(problems.kinds),
        published_seq=None if file_claim is None else file_claim[0],
        published_verified=file_claim is not None and verifier_public_key is not None,
    )


class AuditSource(Protocol):
    """What an auditor reads from a store (any backend)."""

    @property
    def verifier_id(self) -> str: ...

    def audit_entries(self, start_seq: int = 1) -> Iterator[AuditRecord]: ...

    def audit_checkpoints(self) -> Iterator[Checkpoint]: ...


def verify_store(
    store: AuditSource, verifier_public_key: PublicKey | None, published: bytes | None = None
) -> AuditReport:
    """Audit a store end to end (and against its published checkpoint, if given); a log that
    cannot even be read (a corrupt row) is reported as a problem, not raised."""
    try:
        checkpoints = list(store.audit_checkpoints())
    except StoreError as exc:
        return AuditReport(0, GENESIS_HASH, 0, False, (f"checkpoints unreadable: {exc}",))
    read_error: list[str] = []

    def records() -> Iterable[AuditRecord]:
        try:
            yield from store.audit_entries()
        except StoreError as exc:
            read_error.append(f"audit log unreadable: {exc}")

    report = verify_chain(records(), checkpoints, verifier_public_key, store.verifier_id, published)
    if not read_error:
        return report
    return replace(report, ok=False, problems=(*read_error, *report.problems))
