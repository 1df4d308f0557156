"""Schema vectors (vectors/messages.json): every message type's claims, and frame shapes.

A real payload of every message type (from the deterministic world), then one change per case:
each bound of §6, §13 and §14 — unknown and missing claims, types, sizes, character counts,
ranges, the constraints only prose states (sorted members, ASCII hwmodel, the UEID's first
byte) — and the edge values (2^64 − 1 counters and meters, zero meters, the largest nonce and
identifier). ``FrameDecode`` does the same for session frames (§7.3) and link frames (§14.4).

Flags say what can catch an invalid case: ``CddlInvalid`` — the CDDL of SPEC.md rejects it
too; ``ProseInvalid`` — only a rule stated in prose next to the CDDL does (the pycddl test of
tests/test_cddl.py relies on these flags). :func:`sample_claims` also gives cose_sign1.json its
payloads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import cbor2

from attest.codec.cbor import decode, encode
from attest.hardware import ChipModel
from attest.licensing import claims as LC
from attest.licensing.authority import delegate, sign_license
from attest.licensing.messages import Budgets
from attest.location.messages import LocationRecord, PingResponse
from attest.messages import claims as C
from attest.messages.attestation import AttestationResult
from attest.messages.reference import FirmwareReference, FirmwareStatus
from attest.messages.revocation import RevocationList
from attest.pods import claims as PC
from attest.pods.messages import LinkResponse, LinkTranscript
from attest.store.audit import checkpoint_payload
from attest.testvectors.format import VectorError, vector_document
from attest.testvectors.message_check import MESSAGE_ALGORITHM, MESSAGE_NAMES, _frame, _schema
from attest.testvectors.pod_vectors import pod_cert, pod_id
from attest.testvectors.world import (
    AUTHORITY_ID,
    NOW_S,
    ROUND1_SIGN_S,
    World,
    build_world,
    vector_nonce,
    vector_ueid,
)
from attest.verify.reasons import Reason, trustworthiness_vector

HEADER = [
    "Claims schemas of every message type (SPEC §4.5 step 6, §6, §13, §14) and frame shapes",
    "(§7.3, §14.4).",
    "MessageSchema: payload (hex) is the deterministic-CBOR claims map of a token of type",
    "messageType; result is valid iff it satisfies that type's schema with every bound stated",
    "in the prose. Flag CddlInvalid: SPEC.md's CDDL rejects it too; ProseInvalid: only a rule",
    "stated in prose does.",
    "FrameDecode: body (hex) is a frame body of protocol session (§7.3) or link (§14.4); frame is",
    "the frame's name for a valid body (null otherwise).",
]

NOTES = {
    "Valid": "A valid payload or frame.",
    "EdgeValue": "Largest or smallest values a field allows.",
    "Mechanism": "Claims of the optional mechanisms (Offline Licensing, Fixed Set).",
    "CddlInvalid": "Invalid, and the CDDL of SPEC.md says so.",
    "ProseInvalid": "Invalid by a rule CDDL cannot state (stated in prose next to the rule).",
}

U64 = 2**64 - 1


def _payload(token: bytes) -> bytes:
    body = decode(token[1:])
    assert isinstance(body, list) and type(body[2]) is bytes
    return body[2]


def _claims(token_or_payload: bytes, *, token: bool = True) -> dict[Any, Any]:
    value = decode(_payload(token_or_payload) if token else token_or_payload)
    assert isinstance(value, dict)
    return value


def link_transcript() -> LinkTranscript:
    return LinkTranscript(
        vector_ueid("pod-chip/a0"),
        vector_ueid("pod-chip/a1"),
        vector_nonce("messages/link/i"),
        vector_nonce("messages/link/r"),
        vector_nonce("messages/link/si"),
        vector_nonce("messages/link/sr"),
        vector_nonce("messages/link/pi"),
        vector_nonce("messages/link/pr"),
    )


def sample_claims(w: World) -> dict[str, dict[Any, Any]]:
    """A real claims map of every message type, by type name (§4.4)."""
    chip = w.chip("hx100-a")
    v = w.verifiers["kl-1"]
    ch, _ = w.challenge("messages/sample")
    ev = chip.current_evidence(ch, ROUND1_SIGN_S)
    dtoken = delegate(
        w.authority,
        delegation_id=7,
        verifier_id="kl-1",
        public_key=v.key.public_key,
        region="MY-KL",
        quota=Budgets(10**19, None, None),
        now_s=NOW_S,
    )
    ltoken = sign_license(
        v.key,
        issuer="kl-1",
        ueid=chip.ueid,
        serial=3,
        budgets=Budgets(10**18, 5 * 10**9, None),
        expiry_s=90_000,
        min_firmware=(1, 1, 0),
        now_s=NOW_S,
        delegation_id=7,
    )
    proof = LinkResponse.for_session(link_transcript(), pod_id=pod_id("A"), accept=True)
    return {
        "ManufacturerCert": _claims(w.manufacturers["mfr-a"].cert),
        "DeviceCert": _claims(chip.chain.device_cert),
        "VerifierCert": _claims(v.cert),
        "RevocationList": _claims(
            RevocationList(
                AUTHORITY_ID,
                NOW_S,
                3,
                devices=(vector_ueid("hx100-b"),),
                pods=(pod_id("B"),),
                delegations=(2,),
            ).payload(),
            token=False,
        ),
        "Challenge": _claims(ch.payload(), token=False),
        "Evidence": _claims(ev.payload(), token=False),
        "AttestationResult": _claims(
            AttestationResult.of(
                verifier_id="kl-1",
                issued_at=NOW_S,
                nonce=ch.nonce,
                ueid=chip.ueid,
                status=32,
                vector=trustworthiness_vector([Reason.FIRMWARE_OUTDATED, Reason.DEBUG_ENABLED]),
                policy_id="attest-default-v1",
                reasons=(81, 83),
                verifier_build="vectors",
                evidence_digest=vector_nonce("messages/evidence"),
            ).payload(),
            token=False,
        ),
        "AuditCheckpoint": _claims(
            checkpoint_payload("kl-1", NOW_S, 100, vector_nonce("messages/head")), token=False
        ),
        "Delegation": _claims(dtoken),
        "License": _claims(ltoken),
        "PodCert": _claims(pod_cert("A")[0]),
        "LinkResponse": _claims(proof.payload(), token=False),
        "LinkConfirm": _claims(dataclasses.replace(proof, accept=False).payload(), token=False),
        "ReferenceValues": _claims(reference_values_token(w)),
        "PingResponse": _claims(
            PingResponse("kl-1", vector_nonce("messages/ping"), chip.ueid).payload(), token=False
        ),
        "LocationRecord": _claims(
            LocationRecord.measured(
                landmark_id="kl-1",
                issued_at=NOW_S,
                session_nonce=ch.nonce,
                ueid=chip.ueid,
                position=(3_139_000, 101_687_000),
                samples=30,
                rtt_min_ns=241_000,
                allowance_ns=146_000,
            ).payload(),
            token=False,
        ),
    }


def reference_values_token(w: World) -> bytes:
    """mfr-a's reference values: its model QX9 and three firmware versions of it (§6.11)."""
    versions = (((3, 0, 0), FirmwareStatus.OUTDATED), ((3, 1, 0), FirmwareStatus.CURRENT))
    return w.manufacturers["mfr-a"].reference_values(
        number=4,
        models=(ChipModel("QX9", 2 * 10**15, 900_000, 18 * 10**11, 16),),
        firmware=tuple(
            FirmwareReference("QX9", v, vector_nonce(f"messages/qx9/{v}"), st) for v, st in versions
        ),
        now_s=NOW_S,
    )


Mutation = Callable[[dict[Any, Any]], dict[Any, Any]]


def _set(key: Any, value: Any) -> Mutation:
    return lambda c: {**c, key: value}


def _drop(key: Any) -> Mutation:
    return lambda c: {k: v for k, v in c.items() if k != key}


def _nested(key: Any, inner: Mutation) -> Mutation:
    return lambda c: {**c, key: inner(c[key])}


def _coswid(inner: Mutation) -> Mutation:
    """Change the firmware CoSWID inside Evidence's measurements (§6.7)."""

    def change(c: dict[Any, Any]) -> dict[Any, Any]:
        tag = inner(cbor2.loads(c[C.MEASUREMENTS][0][1]))
        return {**c, C.MEASUREMENTS: [[C.COAP_SWID_CBOR, cbor2.dumps(tag, canonical=True)]]}

    return change


def _version(text: str, scheme: int = 1) -> Mutation:
    """Evidence whose firmware CoSWID states another version (and scheme)."""
    return _coswid(
        lambda t: {**t, C.COSWID_SOFTWARE_VERSION: text, C.COSWID_VERSION_SCHEME: scheme}
    )


def _hem(key: Any, value: Any) -> Mutation:
    """A result whose HEM claims (inside the "hem" appraisal) have ``key`` set to ``value``
    (None: removed)."""

    def change(c: dict[Any, Any]) -> dict[Any, Any]:
        a = c[C.SUBMODS]["hem"]
        hem = {k: v for k, v in a[C.HEM_RESULT].items() if k != key}
        hem = hem if value is None else {**hem, key: value}
        return {**c, C.SUBMODS: {"hem": {**a, C.HEM_RESULT: hem}}}

    return change


def _appraisal(key: Any, value: Any) -> Mutation:
    """A result whose "hem" appraisal has ``key`` set to ``value`` (None: removed)."""

    def change(c: dict[Any, Any]) -> dict[Any, Any]:
        a = {k: v for k, v in c[C.SUBMODS]["hem"].items() if k != key}
        return {**c, C.SUBMODS: {"hem": a if value is None else {**a, key: value}}}

    return change


def _cnf(x: Any) -> dict[int, Any]:
    return {1: {1: 1, -1: 6, -2: x}}


def _cases(s: dict[str, dict[Any, Any]]) -> list[tuple[str, str, tuple[str, ...], Any]]:
    """(message type, comment, flags, claims or raw bytes)."""
    V, E, M, CI, PI = "Valid", "EdgeValue", "Mechanism", "CddlInvalid", "ProseInvalid"
    out: list[tuple[str, str, tuple[str, ...], Any]] = []

    def add(t: str, comment: str, flags: tuple[str, ...], change: Mutation | None = None) -> None:
        out.append((t, comment, flags, change(s[t]) if change else s[t]))

    for t in MESSAGE_NAMES:
        add(t, "a real payload", (V,))
    for t in MESSAGE_NAMES:
        some_required = (
            C.ISS
            if C.ISS in s[t]
            else C.AUD
            if C.AUD in s[t]
            else {"AttestationResult": C.IAT}.get(t, -70202)
        )
        add(t, f"required claim {some_required} missing", (CI,), _drop(some_required))
        add(t, "an unknown claim (nbf, 5)", (CI,), _set(5, NOW_S))
        add(t, "the reserved claim location (264)", (CI,), _set(C.LOCATION, 0))
    for t in ("Challenge", "Evidence", "RevocationList"):
        out.append((t, "payload is an array, not a map", (CI,), [1, 2]))
    # identifiers (§1.4, §4.2)
    add(
        "VerifierCert",
        "region of 256 four-byte characters (1 024 bytes)",
        (V, E),
        _set(C.HEM_REGION, "\U0001f600" * 256),
    )
    add("VerifierCert", "region of 257 characters", (CI,), _set(C.HEM_REGION, "r" * 257))
    add("VerifierCert", "empty verifier id", (CI,), _set(C.SUB, ""))
    add("ManufacturerCert", "iss is an integer", (CI,), _set(C.ISS, 1))
    add("Challenge", "iss is a byte string", (CI,), _set(C.ISS, b"kl-1"))
    add("AuditCheckpoint", "empty iss (the checkpoint does not bound iss)", (V, E), _set(C.ISS, ""))
    add("AuditCheckpoint", "seq 0", (CI,), _set(C.HEM_AUDIT_SEQ, 0))
    add("AuditCheckpoint", "seq 2^64 - 1", (V, E), _set(C.HEM_AUDIT_SEQ, U64))
    add("AuditCheckpoint", "head of 31 bytes", (CI,), _set(C.HEM_AUDIT_HEAD, bytes(31)))
    # nonces, ueids, digests
    add("Challenge", "nonce of 8 bytes", (V, E), _set(C.EAT_NONCE, bytes(8)))
    add("Challenge", "nonce of 64 bytes", (V, E), _set(C.EAT_NONCE, bytes(64)))
    add("Challenge", "nonce of 7 bytes", (CI,), _set(C.EAT_NONCE, bytes(7)))
    add("Challenge", "nonce of 65 bytes", (CI,), _set(C.EAT_NONCE, bytes(65)))
    add("Challenge", "exp 2^64 - 1", (V, E), _set(C.EXP, U64))
    add("Challenge", "exp negative", (CI,), _set(C.EXP, -1))
    add("Evidence", "ueid of 33 bytes", (V, E), _set(C.UEID, b"\x01" + bytes(32)))
    add("Evidence", "ueid of 25 bytes", (V, E), _set(C.UEID, b"\x01" + bytes(24)))
    add("Evidence", "ueid of 16 bytes", (CI,), _set(C.UEID, bytes(16)))
    add(
        "Evidence",
        "ueid of 17 bytes whose first byte is 0x02",
        (PI,),
        _set(C.UEID, b"\x02" + bytes(16)),
    )
    add(
        "Evidence",
        "firmware measurement of 33 bytes",
        (CI,),
        _coswid(lambda t: {**t, C.COSWID_EVIDENCE: {17: {7: [1, bytes(33)], 24: "firmware"}}}),
    )
    add(
        "Evidence",
        "firmware hash algorithm sha-384 (7)",
        (CI,),
        _coswid(lambda t: {**t, C.COSWID_EVIDENCE: {17: {7: [7, bytes(32)], 24: "firmware"}}}),
    )
    add(
        "Evidence",
        "firmware CoSWID tag-id not derived from the measurement",
        (PI,),
        _coswid(lambda t: {**t, C.COSWID_TAG_ID: bytes(16)}),
    )
    add(
        "Evidence",
        "firmware CoSWID with another software name",
        (CI,),
        _coswid(lambda t: {**t, C.COSWID_SOFTWARE_NAME: "other"}),
    )
    add(
        "Evidence",
        "firmware CoSWID with an extra member (media, 10)",
        (CI,),
        _coswid(lambda t: {**t, 10: "x"}),
    )
    add(
        "Evidence",
        "measurements with a second entry",
        (CI,),
        lambda c: {**c, C.MEASUREMENTS: [c[C.MEASUREMENTS][0]] * 2},
    )
    add(
        "Evidence",
        "measurement of content format 259",
        (CI,),
        lambda c: {**c, C.MEASUREMENTS: [[259, c[C.MEASUREMENTS][0][1]]]},
    )
    add(
        "Evidence",
        "measurement that is not CBOR",
        (CI,),
        _set(C.MEASUREMENTS, [[C.COAP_SWID_CBOR, b"\xff"]]),
    )
    add("Evidence", "another eat_profile", (CI,), _set(C.EAT_PROFILE, "tag:other"))
    add("Evidence", "swversion (271) as well: not an Evidence claim", (CI,), _set(271, ["1.2", 1]))
    # Evidence values
    add(
        "Evidence",
        "counters and meters at 2^64 - 1",
        (V, E),
        lambda c: {
            **c,
            C.HEM_ATTEST_COUNTER: U64,
            C.BOOTCOUNT: U64,
            C.UPTIME: U64,
            C.HEM_METERS: {1: U64, 2: U64, 3: U64},
        },
    )
    add("Evidence", "all meters zero", (V, E), _set(C.HEM_METERS, {1: 0, 2: 0, 3: 0}))
    out.append(
        (
            "Evidence",
            "counter 2^64 (a bignum tag)",
            (CI,),
            cbor2.dumps({**s["Evidence"], C.HEM_ATTEST_COUNTER: 2**64}, canonical=True),
        )
    )
    add("Evidence", "meters without interconnect", (CI,), _set(C.HEM_METERS, {1: 0, 2: 0}))
    add("Evidence", "meters with a fourth key", (CI,), _set(C.HEM_METERS, {1: 0, 2: 0, 3: 0, 4: 0}))
    add("Evidence", "meters as an array", (CI,), _set(C.HEM_METERS, [0, 0, 0]))
    add("Evidence", "dbgstat 4", (V, E), _set(C.DBGSTAT, 4))
    add("Evidence", "dbgstat 5", (CI,), _set(C.DBGSTAT, 5))
    add("Evidence", "dbgstat true (booleans are not integers)", (CI,), _set(C.DBGSTAT, True))
    add("Evidence", "firmware version 01.2 (leading zero)", (V,), _version("01.2"))
    add(
        "Evidence",
        "firmware version of four parts of six digits",
        (V, E),
        _version("999999.0.0.999999"),
    )
    add("Evidence", "firmware version of five parts", (CI,), _version("1.2.3.4.5"))
    add("Evidence", "firmware version part of seven digits", (CI,), _version("1234567"))
    add("Evidence", "firmware version with a letter", (CI,), _version("1.2a"))
    add("Evidence", "firmware version ending in a dot", (CI,), _version("1."))
    add("Evidence", "firmware version with a leading space", (CI,), _version(" 1.2"))
    add("Evidence", "firmware version empty", (CI,), _version(""))
    add("Evidence", "firmware version scheme 2", (CI,), _version("1.2.0", 2))
    add(
        "Evidence",
        "firmware CoSWID without its version scheme",
        (CI,),
        _coswid(lambda t: {k: v for k, v in t.items() if k != C.COSWID_VERSION_SCHEME}),
    )
    # Evidence: mechanism claims (§6.7, §13.4, §14.6)
    pa, pb = vector_ueid("pod-chip/a1"), vector_ueid("pod-chip/a2")
    ls = {1: 3, 2: 10**17, 3: 7200}
    add("Evidence", "license state with chip time", (V, M), _set(LC.HEM_LICENSE_STATE, ls))
    add(
        "Evidence",
        "license state without chip time",
        (V, M),
        _set(LC.HEM_LICENSE_STATE, {1: 0, 2: 0}),
    )
    add(
        "Evidence",
        "license state with a fourth key",
        (CI, M),
        _set(LC.HEM_LICENSE_STATE, {**ls, 4: 0}),
    )
    add(
        "Evidence",
        "license state null (absent is spelled by leaving it off)",
        (CI, M),
        _set(LC.HEM_LICENSE_STATE, None),
    )
    pod = {PC.HEM_POD_ID: pod_id("A"), PC.HEM_LINKS: sorted([pa, pb])}
    add("Evidence", "pod id and two links", (V, M), lambda c: {**c, **pod})
    add(
        "Evidence",
        "pod id and no links",
        (V, M),
        lambda c: {**c, PC.HEM_POD_ID: pod_id("A"), PC.HEM_LINKS: []},
    )
    add(
        "Evidence",
        "links without a pod id (a full link but no certificate)",
        (V, M),
        _set(PC.HEM_LINKS, [pa]),
    )
    add(
        "Evidence",
        "link refusals: one proof",
        (V, M),
        lambda c: {**c, **pod, PC.HEM_LINK_REFUSALS: [b"\xd2" + bytes(99)]},
    )
    add(
        "Evidence",
        "link refusals: an empty array",
        (V, M),
        lambda c: {**c, **pod, PC.HEM_LINK_REFUSALS: []},
    )
    add(
        "Evidence",
        "links not sorted (a set: order is not checked)",
        (V, M),
        lambda c: {**c, **pod, PC.HEM_LINKS: sorted([pa, pb], reverse=True)},
    )
    add(
        "Evidence",
        "a link listed twice (a set: repetition is not checked)",
        (V, M),
        lambda c: {**c, **pod, PC.HEM_LINKS: [pa, pa]},
    )
    add(
        "Evidence",
        "256 links (the most allowed)",
        (V, M, E),
        lambda c: {**c, **pod, PC.HEM_LINKS: [b"\x01" + i.to_bytes(16, "big") for i in range(256)]},
    )
    add(
        "Evidence",
        "257 links",
        (CI, M),
        lambda c: {**c, **pod, PC.HEM_LINKS: [b"\x01" + i.to_bytes(16, "big") for i in range(257)]},
    )
    add(
        "Evidence",
        "a link that is not a UEID (16 bytes)",
        (CI, M),
        lambda c: {**c, **pod, PC.HEM_LINKS: [bytes(16)]},
    )
    add("Evidence", "pod id of 15 bytes", (CI, M), _set(PC.HEM_POD_ID, bytes(15)))
    add(
        "Evidence",
        "pod id of 16 zero bytes (only a PodCert forbids it)",
        (V, M),
        _set(PC.HEM_POD_ID, bytes(16)),
    )
    add(
        "Evidence",
        "a refusal proof of 2 049 bytes",
        (CI, M),
        lambda c: {**c, **pod, PC.HEM_LINK_REFUSALS: [bytes(2049)]},
    )
    add(
        "Evidence",
        "an empty refusal proof",
        (CI, M),
        lambda c: {**c, **pod, PC.HEM_LINK_REFUSALS: [b""]},
    )
    add(
        "Evidence",
        "17 refusal proofs",
        (CI, M),
        lambda c: {**c, **pod, PC.HEM_LINK_REFUSALS: [bytes([i]) for i in range(17)]},
    )
    add(
        "Evidence",
        "a refusal proof listed twice",
        (V, M),
        lambda c: {**c, **pod, PC.HEM_LINK_REFUSALS: [b"\xd2\x01", b"\xd2\x01"]},
    )
    # certificates (§3.3, §6.2–§6.4)
    add("DeviceCert", "hwmodel of 32 ASCII bytes", (V, E), _set(C.HWMODEL, b"H" * 32))
    add("DeviceCert", "hwmodel of 33 bytes", (CI,), _set(C.HWMODEL, b"H" * 33))
    add("DeviceCert", "empty hwmodel", (CI,), _set(C.HWMODEL, b""))
    add("DeviceCert", "hwmodel with a non-ASCII byte", (PI,), _set(C.HWMODEL, b"HX\xe9"))
    add("DeviceCert", "hwmodel as a text string", (CI,), _set(C.HWMODEL, "HX100"))
    add("DeviceCert", "an exp claim (a DeviceCert has none)", (CI,), _set(C.EXP, NOW_S))
    cnf_x = s["DeviceCert"][C.CNF][1][-2]
    add("DeviceCert", "cnf key of 31 bytes", (CI,), _set(C.CNF, _cnf(cnf_x[:31])))
    add(
        "DeviceCert",
        "cnf with a kid label",
        (CI,),
        _set(C.CNF, {1: {1: 1, -1: 6, -2: cnf_x, 2: b"k"}}),
    )
    add("DeviceCert", "cnf curve X25519 (4)", (CI,), _set(C.CNF, {1: {1: 1, -1: 4, -2: cnf_x}}))
    add(
        "DeviceCert",
        "cnf with a second member",
        (CI,),
        _set(C.CNF, {1: {1: 1, -1: 6, -2: cnf_x}, 2: 0}),
    )
    # revocation lists (§6.5)
    add(
        "RevocationList",
        "no revoked delegations (claim absent)",
        (V,),
        _drop(C.HEM_REVOKED_DELEGATIONS),
    )
    add("RevocationList", "revoked pod of 15 bytes", (CI,), _set(C.HEM_REVOKED_PODS, [bytes(15)]))
    add(
        "RevocationList",
        "revoked delegation id negative",
        (CI, M),
        _set(C.HEM_REVOKED_DELEGATIONS, [-1]),
    )
    add("RevocationList", "revoked verifier id empty", (CI,), _set(C.HEM_REVOKED_VERIFIERS, [""]))
    # results (§6.8)
    add("AttestationResult", "another eat_profile", (CI,), _set(C.EAT_PROFILE, "tag:other"))
    add(
        "AttestationResult",
        "revision 2's eat_profile",
        (CI,),
        _set(C.EAT_PROFILE, "tag:attest.example,2026:ear-v1"),
    )
    add("AttestationResult", "iss at the top level", (CI,), _set(C.ISS, "kl-1"))
    add(
        "AttestationResult",
        "appraisal of another eat_profile",
        (CI,),
        _appraisal(C.EAT_PROFILE, "tag:other"),
    )
    add(
        "AttestationResult",
        "appraisal without its eat_profile",
        (CI,),
        _appraisal(C.EAT_PROFILE, None),
    )
    add(
        "AttestationResult",
        "policy id as a text string (revision 2)",
        (CI,),
        _appraisal(C.EAR_APPRAISAL_POLICY_IDS, "attest-default-v1"),
    )
    add(
        "AttestationResult",
        "two policy ids",
        (CI,),
        _appraisal(C.EAR_APPRAISAL_POLICY_IDS, ["a", "b"]),
    )
    add(
        "AttestationResult",
        "trustworthiness vector missing",
        (CI,),
        _appraisal(C.EAR_TRUSTWORTHINESS_VECTOR, None),
    )
    add(
        "AttestationResult",
        "trustworthiness vector empty",
        (PI,),
        _appraisal(C.EAR_TRUSTWORTHINESS_VECTOR, {}),
    )
    add(
        "AttestationResult",
        "trustworthiness vector with category 8",
        (CI,),
        _appraisal(C.EAR_TRUSTWORTHINESS_VECTOR, {0: 2, 8: 2}),
    )
    add(
        "AttestationResult",
        "trustworthiness claim 128",
        (CI,),
        _appraisal(C.EAR_TRUSTWORTHINESS_VECTOR, {0: 128}),
    )
    add(
        "AttestationResult",
        "trustworthiness claims -128 and 127 (the bounds)",
        (V, E),
        _appraisal(C.EAR_TRUSTWORTHINESS_VECTOR, {0: -128, 7: 127}),
    )
    add(
        "AttestationResult",
        "HEM claims as an array, not a map",
        (CI,),
        _appraisal(C.HEM_RESULT, ["kl-1"]),
    )
    add("AttestationResult", "HEM claims without iss", (CI,), _hem(C.ISS, None))
    add(
        "AttestationResult",
        "submods with another name",
        (CI,),
        lambda c: {**c, C.SUBMODS: {"other": c[C.SUBMODS]["hem"]}},
    )
    add(
        "AttestationResult",
        "verifier-id without build",
        (CI,),
        _set(C.EAR_VERIFIER_ID, {0: "attest"}),
    )
    add(
        "AttestationResult",
        "256 reasons (the most allowed)",
        (V, E),
        _hem(C.HEM_REASONS, [1] * 256),
    )
    add(
        "AttestationResult",
        "257 reasons",
        (CI,),
        _hem(C.HEM_REASONS, [1] * 257),
    )
    add("AttestationResult", "status 0 (none)", (V,), _appraisal(C.EAR_STATUS, 0))
    add("AttestationResult", "status 33 (not a tier)", (CI,), _appraisal(C.EAR_STATUS, 33))
    add("AttestationResult", "the placeholder UEID", (V,), _hem(C.UEID, b"\x01" + bytes(16)))
    # Offline Licensing (§13.2, §13.3)
    add("License", "serial 0", (CI, M), _set(LC.HEM_LICENSE_SERIAL, 0))
    add("License", "serial 2^64 - 1", (V, M, E), _set(LC.HEM_LICENSE_SERIAL, U64))
    add(
        "License", "without a delegation id (authority-issued)", (V, M), _drop(LC.HEM_DELEGATION_ID)
    )
    add("License", "budgets without flops", (CI, M), _set(LC.HEM_LICENSE_BUDGETS, {2: 1}))
    add("License", "budgets with a fourth key", (CI, M), _set(LC.HEM_LICENSE_BUDGETS, {1: 1, 4: 1}))
    add("License", "a nonce of 32 bytes", (V, M), _set(C.EAT_NONCE, bytes(32)))
    add(
        "Delegation",
        "quota with all three meters",
        (V, M),
        _set(LC.HEM_DELEGATION_QUOTA, {1: U64, 2: 0, 3: 1}),
    )
    add("Delegation", "quota empty", (CI, M), _set(LC.HEM_DELEGATION_QUOTA, {}))
    # Fixed Set (§14.2, §14.3)
    pc = s["PodCert"][PC.HEM_POD_MEMBERS]
    add("PodCert", "pod id of 16 zero bytes", (CI, M), _set(PC.HEM_POD_ID, bytes(16)))
    add("PodCert", "no members", (CI, M), _set(PC.HEM_POD_MEMBERS, []))
    add("PodCert", "members not sorted by UEID", (PI, M), _set(PC.HEM_POD_MEMBERS, pc[::-1]))
    add("PodCert", "a member listed twice", (PI, M), _set(PC.HEM_POD_MEMBERS, sorted([pc[0], *pc])))
    add("PodCert", "more members than the size class", (PI, M), _set(PC.HEM_POD_SIZE_CLASS, 2))
    add("PodCert", "size class 0", (CI, M), _set(PC.HEM_POD_SIZE_CLASS, 0))
    add("PodCert", "size class 1 025", (CI, M), _set(PC.HEM_POD_SIZE_CLASS, 1025))
    add("PodCert", "size class 1 024", (V, M, E), _set(PC.HEM_POD_SIZE_CLASS, 1024))
    add(
        "PodCert",
        "a member key of 31 bytes",
        (CI, M),
        _set(PC.HEM_POD_MEMBERS, [[pc[0][0], pc[0][1][:31]], *pc[1:]]),
    )
    add(
        "PodCert",
        "a member of three elements",
        (CI, M),
        _set(PC.HEM_POD_MEMBERS, [[*pc[0], 0], *pc[1:]]),
    )
    add("LinkResponse", "without a pod id", (V, M), _drop(PC.HEM_POD_ID))
    add(
        "LinkResponse",
        "accept as 1 (booleans are not integers)",
        (CI, M),
        _set(PC.HEM_LINK_ACCEPT, 1),
    )
    add(
        "LinkResponse",
        "initiator nonce of 31 bytes",
        (CI, M),
        _set(PC.HEM_LINK_INITIATOR_NONCE, bytes(31)),
    )
    add(
        "LinkConfirm",
        "responder of 17 bytes whose first byte is 0x00",
        (PI, M),
        _set(PC.HEM_LINK_RESPONDER, bytes(17)),
    )
    return out


def _frame_cases(w: World) -> list[tuple[str, str, tuple[str, ...], bytes]]:
    V, E, M, CI, PI = "Valid", "EdgeValue", "Mechanism", "CddlInvalid", "ProseInvalid"
    ueid, n32 = vector_ueid("pod-chip/a0"), bytes(range(32))
    return [
        ("session", "HELLO", (V,), encode([1, [1], b"dc", b"mc"])),
        ("session", "HELLO offering eight versions", (V, E), encode([1, list(range(8)), b"", b""])),
        ("session", "CHALLENGE", (V,), encode([2, 1, b"vc", b"ch"])),
        ("session", "EVIDENCE", (V,), encode([3, b"ev"])),
        ("session", "RESULT", (V,), encode([4, b"r"])),
        ("session", "RESULT with a grant", (V, M), encode([4, b"r", [b"l", None]])),
        (
            "session",
            "RESULT with a grant and its delegation",
            (V, M),
            encode([4, b"r", [b"l", b"d"]]),
        ),
        ("session", "NEXT", (V,), encode([5])),
        ("session", "BYE", (V,), encode([6])),
        ("session", "ERROR", (V,), encode([7, 3, "unexpected"])),
        ("session", "ERROR with an unknown code", (V,), encode([7, U64, ""])),
        ("session", "HELLO with nine versions", (CI,), encode([1, list(range(9)), b"", b""])),
        ("session", "HELLO with no versions", (CI,), encode([1, [], b"", b""])),
        ("session", "unknown frame type 8", (CI,), encode([8])),
        ("session", "RESULT with a null grant", (CI, M), encode([4, b"r", None])),
        ("session", "ERROR text of 257 characters", (CI,), encode([7, 1, "x" * 257])),
        ("session", "BYE with a field", (CI,), encode([6, 0])),
        ("link", "HELLO", (V, M), encode([1, 1, ueid, n32, n32, b"pc", b""])),
        ("link", "REPLY", (V, M), encode([2, 1, ueid, n32, n32, b"pc", b"ic", b"proof"])),
        ("link", "CONFIRM", (V, M), encode([3, b"proof"])),
        ("link", "UP", (V, M), encode([4])),
        ("link", "REFUSE", (V, M), encode([5, "LINK_NOT_MEMBER"])),
        ("link", "REFUSE with 64 characters", (V, M, E), encode([5, "R" * 64])),
        ("link", "BYE", (V, M), encode([6])),
        (
            "link",
            "HELLO of another link version (judged by the handshake, not the frame)",
            (V, M),
            encode([1, 2, ueid, n32, n32, b"", b""]),
        ),
        ("link", "REFUSE with an empty reason", (CI, M), encode([5, ""])),
        ("link", "REFUSE with 65 characters", (CI, M), encode([5, "R" * 65])),
        ("link", "HELLO nonce of 31 bytes", (CI, M), encode([1, 1, ueid, n32[:31], n32, b"", b""])),
        (
            "link",
            "HELLO whose ueid starts with 0x00 (prose: RAND UEIDs start with 0x01)",
            (PI, M),
            encode([1, 1, bytes(17), n32, n32, b"", b""]),
        ),
        ("link", "unknown frame type 7", (CI, M), encode([7])),
        ("link", "REPLY without its proof", (CI, M), encode([2, 1, ueid, n32, n32, b"", b""])),
    ]


def messages_document(w: World | None = None) -> dict[str, Any]:
    w = w or build_world()
    samples = sample_claims(w)
    tc = 0
    schema_tests = []
    for message_type, comment, flags, claims in _cases(samples):
        tc += 1
        t = {
            "tcId": tc,
            "comment": comment,
            "flags": list(flags),
            "sections": _schema_sections(message_type),
            "messageType": message_type,
            "payload": (claims if isinstance(claims, bytes) else encode(claims)).hex(),
        }
        out = _schema(t)
        if (out["result"] == "valid") != ("Valid" in flags):
            raise VectorError(f"schema case {message_type} {comment!r}: the parser says {out}")
        schema_tests.append({**t, **out})
    frame_tests = []
    for protocol, comment, flags, body in _frame_cases(w):
        tc += 1
        t = {
            "tcId": tc,
            "comment": comment,
            "flags": list(flags),
            "sections": ["7.3"] if protocol == "session" else ["14.4"],
            "protocol": protocol,
            "body": body.hex(),
        }
        out = _frame(t)
        if (out["result"] == "valid") != ("Valid" in flags):
            raise VectorError(f"frame case {comment!r}: the decoder says {out}")
        frame_tests.append({**t, **out})
    groups: list[dict[str, Any]] = [
        {
            "type": "MessageSchema",
            "comment": "the claims map of each message type",
            "outputs": ["result"],
            "tests": schema_tests,
        },
        {
            "type": "FrameDecode",
            "comment": "session and link frame bodies",
            "outputs": ["result", "frame"],
            "tests": frame_tests,
        },
    ]
    used = {f for g in groups for t in g["tests"] for f in t["flags"]}
    return vector_document(
        MESSAGE_ALGORITHM, tc, HEADER, {k: v for k, v in NOTES.items() if k in used}, groups
    )


_SECTIONS = {
    "ManufacturerCert": "6.2",
    "DeviceCert": "6.3",
    "VerifierCert": "6.4",
    "RevocationList": "6.5",
    "Challenge": "6.6",
    "Evidence": "6.7",
    "AttestationResult": "6.8",
    "AuditCheckpoint": "6.9",
    "Delegation": "13.2",
    "License": "13.3",
    "PodCert": "14.2",
    "LinkResponse": "14.3",
    "LinkConfirm": "14.3",
    "ReferenceValues": "6.10",
    "PingResponse": "15.2",
    "LocationRecord": "15.3",
}


def _schema_sections(message_type: str) -> list[str]:
    return ["4.5", "6.1", _SECTIONS[message_type]]
