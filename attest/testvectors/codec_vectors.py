"""Codec vectors: strict CBOR decoding (cbor_decoding.json) and COSE_Sign1 (cose_sign1.json).

Each case states the outcome it is *meant* to have; the generator runs the real implementation
on it and refuses to write a file if the two disagree, so a vector can never silently pin a
bug. The output is byte-identical across runs: keys and times are fixed, Ed25519 is
deterministic, cases are listed in a fixed order and JSON is written with a fixed layout.
"""

from __future__ import annotations

import hashlib
from typing import Any

from attest import __version__
from attest.codec.cbor import MAX_DEPTH, MAX_MESSAGE_BYTES, decode, encode
from attest.codec.cose import protected_header, sig_structure, sign1, verify1
from attest.errors import AttestError
from attest.keys import PublicKey
from attest.messages.attestation import AttestationResult
from attest.messages.content import ContentType
from attest.messages.revocation import RevocationList
from attest.registry import content_types
from attest.testvectors.check import CBOR_ALGORITHM, COSE_ALGORITHM
from attest.testvectors.evidence_vectors import (  # token-surgery helpers shared by families
    _EVIDENCE_CT,
    _TAG18,
    ED25519_L,
    _alg_last,
    _cose,
    _fields,
    _flip_bit,
    _noncanonical_s,
    _sign_raw,
    _small_order_r,
    _with_signature,
)
from attest.testvectors.format import VectorError, annotate, vector_document
from attest.testvectors.inputs import diagnostic
from attest.testvectors.message_vectors import sample_claims
from attest.testvectors.world import (
    AUTHORITY_ID,
    NOW_S,
    ROUND1_SIGN_S,
    World,
    build_world,
    vector_key,
    vector_ueid,
)
from attest.verify.reasons import trustworthiness_vector

# ================================================================================================
# Deterministic CBOR decoding
# ================================================================================================

CBOR_HEADER = [
    "Strict decoding of deterministic CBOR (RFC 8949 §4.2.1) as every attest payload requires.",
    "Allowed: unsigned and negative integers of at most 64 bits, byte strings, UTF-8 text strings,",
    "definite-length arrays and maps (keys: integers, byte strings, text strings; unique; in",
    "bytewise lexicographic order of their encodings), true, false, null.",
    "Rejected: any non-shortest head, indefinite lengths, floats, other simple values, tags",
    f"(including bignums), trailing bytes, nesting deeper than maxDepth ({MAX_DEPTH}; the top",
    "item is at depth 1 and each item inside a container is one deeper), inputs longer than",
    f"maxBytes ({MAX_MESSAGE_BYTES}).",
    "For valid inputs, diagnostic is the decoded value in RFC 8949 §8 diagnostic notation and",
    "re-encoding the value must give back the input bytes.",
]

CBOR_NOTES = {
    "Integer": "Integer encodings, including the 64-bit limits.",
    "String": "Byte and text strings.",
    "Container": "Arrays and maps.",
    "Simple": "Simple values: only false, true and null are allowed.",
    "NonShortest": "A head whose argument is not in its shortest form.",
    "Indefinite": "Indefinite-length string, array or map.",
    "DuplicateKey": "A map with the same key twice.",
    "KeyOrder": (
        "Map key order. RFC 8949 §4.2.1 orders keys by the bytes of their encodings; the older "
        "length-first rule (RFC 7049 canonical, cbor2 canonical=True) differs e.g. for {256, -1}."
    ),
    "MapKeyType": "Map keys other than integers and strings.",
    "TrailingBytes": "Bytes after one complete item.",
    "Truncated": "Input ends inside an item.",
    "Float": "Floating-point values of any width.",
    "Tag": "Tagged items (tags are not allowed inside attest payloads).",
    "Bignum": "Tags 2/3 (bignums), also for values that would fit 64 bits.",
    "Depth": "Nesting depth at and one beyond maxDepth.",
    "Utf8": "Text strings must be valid UTF-8.",
    "Reserved": "Reserved additional-information values 28..30 and stray break codes.",
    "Size": "Inputs at and one byte beyond maxBytes.",
}


def _nest(depth: int, inner: bytes) -> bytes:
    """``inner`` wrapped in ``depth`` one-element arrays."""
    return b"\x81" * depth + inner


def cbor_cases() -> list[tuple[str, tuple[str, ...], bytes, bool]]:
    """(comment, flags, input, valid) for every CBOR decoding case."""
    h = bytes.fromhex
    valid: list[tuple[str, tuple[str, ...], bytes]] = [
        ("0", ("Integer",), h("00")),
        ("23: largest immediate value", ("Integer",), h("17")),
        ("24: smallest one-byte argument", ("Integer",), h("1818")),
        ("255", ("Integer",), h("18ff")),
        ("256", ("Integer",), h("190100")),
        ("65535", ("Integer",), h("19ffff")),
        ("65536", ("Integer",), h("1a00010000")),
        ("2^32 - 1", ("Integer",), h("1affffffff")),
        ("2^32", ("Integer",), h("1b0000000100000000")),
        ("2^64 - 1: largest unsigned", ("Integer",), h("1bffffffffffffffff")),
        ("-1", ("Integer",), h("20")),
        ("-24", ("Integer",), h("37")),
        ("-25", ("Integer",), h("3818")),
        ("-2^64: smallest negative", ("Integer",), h("3bffffffffffffffff")),
        ("empty byte string", ("String",), h("40")),
        ("byte string", ("String",), h("43010203")),
        ("empty text string", ("String",), h("60")),
        ("text string", ("String",), h("6449455446")),
        ("non-ASCII text string", ("String", "Utf8"), h("62c3bc")),
        ("empty array", ("Container",), h("80")),
        ("nested arrays", ("Container",), h("8301820203820405")),
        ("empty map", ("Container",), h("a0")),
        ("map {1: 2, 3: 4}", ("Container",), h("a201020304")),
        ("false", ("Simple",), h("f4")),
        ("true", ("Simple",), h("f5")),
        ("null", ("Simple",), h("f6")),
        (
            "map keys in bytewise order: 10, 256, -1, h'00', \"a\"",
            ("KeyOrder", "Container"),
            encode({10: 1, 256: 2, -1: 3, b"\x00": 4, "a": 5}),
        ),
        (
            "{256: 0, -1: 0}: bytewise order (0x190100 < 0x20), not length-first",
            ("KeyOrder",),
            h("a219010000" + "2000"),
        ),
        (
            "private-use claim keys: -70001 sorts before -70002 (bytewise order of encodings)",
            ("KeyOrder",),
            encode({-70001: 0, -70002: 0}),
        ),
        ("scalar at depth 8 (inside 7 arrays)", ("Depth",), _nest(7, b"\x00")),
        ("empty array at depth 8", ("Depth",), _nest(7, b"\x80")),
    ]
    invalid: list[tuple[str, tuple[str, ...], bytes]] = [
        ("empty input", ("Truncated",), b""),
        ("0 encoded with a one-byte argument", ("NonShortest", "Integer"), h("1800")),
        ("23 encoded with a one-byte argument", ("NonShortest", "Integer"), h("1817")),
        ("255 encoded with a two-byte argument", ("NonShortest", "Integer"), h("1900ff")),
        ("65535 encoded with a four-byte argument", ("NonShortest", "Integer"), h("1a0000ffff")),
        (
            "2^32 - 1 encoded with an eight-byte argument",
            ("NonShortest", "Integer"),
            h("1b00000000ffffffff"),
        ),
        ("-1 encoded with a one-byte argument", ("NonShortest", "Integer"), h("3800")),
        ("byte string length with a one-byte argument", ("NonShortest", "String"), h("580101")),
        ("text string length with a two-byte argument", ("NonShortest", "String"), h("79000161")),
        ("array length with a one-byte argument", ("NonShortest", "Container"), h("980100")),
        ("map length with a one-byte argument", ("NonShortest", "Container"), h("b8010000")),
        ("indefinite-length byte string", ("Indefinite", "String"), h("5f4101ff")),
        ("indefinite-length text string", ("Indefinite", "String"), h("7f6161ff")),
        ("indefinite-length array", ("Indefinite", "Container"), h("9f01ff")),
        ("indefinite-length empty array", ("Indefinite", "Container"), h("9fff")),
        ("indefinite-length map", ("Indefinite", "Container"), h("bf0102ff")),
        ("duplicate key {1: 1, 1: 2}", ("DuplicateKey",), h("a201010102")),
        ("duplicate key with equal values", ("DuplicateKey",), h("a201010101")),
        ("duplicate text key", ("DuplicateKey",), h("a2616100616100")),
        ("keys out of order {2: 0, 1: 0}", ("KeyOrder",), h("a202000100")),
        ("{-1: 0, 256: 0}: length-first order, not bytewise", ("KeyOrder",), h("a2200019010000")),
        ("text key before integer key", ("KeyOrder",), h("a26161000100")),
        ("longer text key before shorter", ("KeyOrder",), h("a262626200616100")),
        ("array as map key", ("MapKeyType",), h("a18000")),
        ("true as map key", ("MapKeyType",), h("a1f500")),
        ("null as map key", ("MapKeyType",), h("a1f600")),
        ("trailing zero byte", ("TrailingBytes",), h("0000")),
        ("two complete items", ("TrailingBytes",), h("8080")),
        ("truncated one-byte argument", ("Truncated",), h("18")),
        ("truncated two-byte argument", ("Truncated",), h("1901")),
        ("byte string shorter than its length", ("Truncated", "String"), h("4201")),
        ("array missing an item", ("Truncated", "Container"), h("8201")),
        ("map missing a value", ("Truncated", "Container"), h("a101")),
        ("half-precision float 0.0", ("Float",), h("f90000")),
        ("single-precision float 1.0", ("Float",), h("fa3f800000")),
        ("double-precision float 1.1", ("Float",), h("fb3ff199999999999a")),
        ("float inside an array", ("Float", "Container"), h("81f93c00")),
        ("undefined", ("Simple",), h("f7")),
        ("simple value 16", ("Simple",), h("f0")),
        ("simple value 255 (one-byte form)", ("Simple",), h("f8ff")),
        ("tag 1 (epoch time)", ("Tag",), h("c11a6553f100")),
        ("tag 18 (COSE_Sign1) inside a payload", ("Tag",), h("d28443a10127a0f640")),
        ("tag 55799 (self-described CBOR)", ("Tag",), h("d9d9f700")),
        ("tag 2 bignum holding 1", ("Tag", "Bignum"), h("c24101")),
        ("tag 2 bignum 2^64 (beyond 64 bits)", ("Tag", "Bignum"), h("c249010000000000000000")),
        ("tag 3 bignum -2^64 - 1 (beyond 64 bits)", ("Tag", "Bignum"), h("c349010000000000000000")),
        ("text string with invalid UTF-8", ("Utf8", "String"), h("62c328")),
        ("text string with a UTF-8 encoded surrogate", ("Utf8", "String"), h("63eda080")),
        ("reserved additional information 28", ("Reserved",), h("1c")),
        ("reserved additional information 30 in a byte string head", ("Reserved",), h("5e")),
        ("lone break code", ("Reserved",), h("ff")),
        ("scalar at depth 9 (inside 8 arrays)", ("Depth",), _nest(8, b"\x00")),
        ("empty array at depth 9", ("Depth",), _nest(8, b"\x80")),
        ("map value at depth 9", ("Depth",), _nest(7, b"\xa1\x01\x00")),
        ("nesting 200 deep", ("Depth",), _nest(200, b"\x00")),
    ]
    # revision 3: cases appended after revision 2's, so their tcIds stay
    added: list[tuple[str, tuple[str, ...], bytes, bool]] = [
        (
            "input of exactly maxBytes (65 536): a byte string of 65 533 bytes",
            ("String", "Size"),
            b"\x59\xff\xfd" + bytes(65533),
            True,
        ),
        (
            "input of maxBytes + 1 (65 537): a byte string of 65 534 bytes",
            ("String", "Size"),
            b"\x59\xff\xfe" + bytes(65534),
            False,
        ),
        ("map at depth 8 holding an empty map", ("Depth",), _nest(6, b"\xa1\x01\xa0"), True),
        (
            "map key at depth 9 (keys count for depth too)",
            ("Depth",),
            _nest(7, b"\xa1\x81\x00\x00"),
            False,
        ),
        ("text string of 4-byte characters", ("String", "Utf8"), h("64f09f9880"), True),
        (
            "text string with an overlong UTF-8 encoding of '/'",
            ("String", "Utf8"),
            h("62c0af"),
            False,
        ),
        ("-2^63 - 1 (needs the eight-byte argument)", ("Integer",), h("3b8000000000000000"), True),
        (
            "byte string map keys out of order",
            ("Container", "KeyOrder"),
            h("a2410100410001"),
            False,
        ),
        (
            "map keys: byte strings ordered by length, then content",
            ("Container", "KeyOrder"),
            h("a2410001420000" + "02"),
            True,
        ),
    ]
    return (
        [(c, f, d, True) for c, f, d in valid] + [(c, f, d, False) for c, f, d in invalid] + added
    )


def cbor_document() -> dict[str, Any]:
    tests: list[dict[str, Any]] = []
    for tc, (comment, flags, data, valid) in enumerate(cbor_cases(), start=1):
        try:
            value = decode(data)
            accepted = True
        except AttestError:
            accepted = False
        if accepted is not valid:
            raise VectorError(
                f"CBOR case {comment!r}: expected valid={valid}, decoder says {accepted}"
            )
        if valid and encode(value) != data:
            raise VectorError(f"CBOR case {comment!r}: re-encoding differs")
        tests.append(
            {
                "tcId": tc,
                "comment": comment,
                "flags": list(flags),
                "input": data.hex(),
                "result": "valid" if valid else "invalid",
                "diagnostic": diagnostic(value) if valid else None,
            }
        )
    group = {
        "type": "CborDecode",
        "maxDepth": MAX_DEPTH,
        "maxBytes": MAX_MESSAGE_BYTES,
        "tests": tests,
    }
    used = {f for t in tests for f in t["flags"]}
    doc = vector_document(
        CBOR_ALGORITHM,
        len(tests),
        CBOR_HEADER,
        {k: v for k, v in CBOR_NOTES.items() if k in used},
        [group],
    )
    return annotate(doc, {"CborDecode": ("result", "diagnostic")}, lambda g, t: ["4.1"])


# ================================================================================================
# COSE_Sign1
# ================================================================================================

COSE_HEADER = [
    "Verification of attest COSE_Sign1 tokens (RFC 9052 §4.2, tag 18) of an expected type.",
    "Profile: protected header exactly {1: -8, 3: <content type>} in deterministic CBOR, empty",
    "unprotected header, attached payload, 64-byte Ed25519 signature over",
    "[\"Signature1\", protected, h'', payload] (external_aad empty).",
    "result valid: the token verifies and payload is the returned payload (hex).",
    "result invalid: error names the failure (DecodeError, ContentTypeError, SignatureError).",
]

COSE_NOTES = {
    "ValidToken": "A correctly signed token of the expected content type.",
    "ContentType": (
        "The token is of another message type, or its protected header is not exactly the "
        "profile's header for the expected type."
    ),
    "BadSignature": "The signature does not verify.",
    "Structure": "The bytes are not a COSE_Sign1 of the profile.",
    "Algorithm": "The alg header is missing or not EdDSA (-8).",
    "Ed25519Strict": (
        "Signatures are verified with libsodium's crypto_sign_open (crypto_sign_verify_detached "
        "as built by default, without ED25519_COMPAT): the signature must be exactly 64 bytes; "
        "S must be canonical (S < L), so S + L is rejected although it is equal mod L; R and the "
        "public key A must not be points of small order, and A must be canonically encoded; the "
        "check is the cofactorless equation [S]B = R + [k]A, compared on the encoding of R. The "
        "invalid Ed25519Strict cases with a 64-byte signature (S + L, small-order R or A) satisfy "
        "that equation: a verifier that omits the checks above would accept them. Points that "
        "merely have a low-order component are not rejected (libsodium accepts 43 of the 914 "
        "C2SP/CCTV ed25519 edge cases, all flagged only low_order_component_R/A). An "
        "implementation on another Ed25519 library must give the same answers on these vectors."
    ),
    "MaxSize": "A token at, or one byte over, the 65 536-byte limit of §4.1 and §4.3.",
    "SmallOrderKey": (
        "The public key is of small order or not canonically encoded: no signature verifies "
        "under it (§4.3 rule 4), whatever the equation says."
    ),
    "ErrorPrecedence": (
        "When several checks fail, the first in this order decides the error: structure "
        "(DecodeError), alg is -8 (SignatureError), protected header bytes equal the profile's "
        "header for the expected type (ContentTypeError), unprotected header empty (DecodeError), "
        "signature (SignatureError)."
    ),
}


def _sample_payloads(w: World) -> dict[str, bytes]:
    """A realistic payload for every content type (a generic claims map where there is none)."""
    chip = w.chip("hx100-a")
    v = w.verifiers["kl-1"]
    ch, _ = w.challenge("cose/sample")
    ev = chip.current_evidence(ch, ROUND1_SIGN_S)
    samples: dict[str, bytes] = {
        ContentType.MANUFACTURER_CERT: verify1(
            w.manufacturers["mfr-a"].cert, w.anchors.authority_key, ContentType.MANUFACTURER_CERT
        ),
        ContentType.DEVICE_CERT: verify1(
            chip.chain.device_cert, w.manufacturers["mfr-a"].key.public_key, ContentType.DEVICE_CERT
        ),
        ContentType.VERIFIER_CERT: verify1(
            v.cert, w.anchors.authority_key, ContentType.VERIFIER_CERT
        ),
        ContentType.REVOCATION_LIST: RevocationList(
            AUTHORITY_ID, NOW_S, 3, devices=(vector_ueid("hx100-b"),)
        ).payload(),
        ContentType.CHALLENGE: ch.payload(),
        ContentType.EVIDENCE: ev.payload(),
        ContentType.RESULT: AttestationResult.of(
            verifier_id="kl-1",
            issued_at=NOW_S,
            nonce=ch.nonce,
            ueid=chip.ueid,
            status=2,
            vector=trustworthiness_vector(()),
            policy_id="attest-default-v1",
            reasons=(),
            verifier_build=__version__,
            evidence_digest=hashlib.sha256(b"evidence").digest(),
        ).payload(),
    }
    # every other type (the mechanisms' and the audit checkpoint): a real claims map of its type
    # (revision 2 used {1: "kl-1", 6: NOW_S} here, a payload no schema of §6 admits)
    real = sample_claims(w)
    by_ct = {
        str(ContentType.AUDIT_CHECKPOINT): "AuditCheckpoint",
        "application/vnd.attest.delegation+cbor": "Delegation",
        "application/vnd.attest.license+cbor": "License",
        "application/vnd.attest.pod-cert+cbor": "PodCert",
        "application/vnd.attest.link-response+cbor": "LinkResponse",
        "application/vnd.attest.link-confirm+cbor": "LinkConfirm",
        str(ContentType.REFERENCE_VALUES): "ReferenceValues",
        "application/vnd.attest.ping-response+cbor": "PingResponse",
        "application/vnd.attest.location-record+cbor": "LocationRecord",
    }
    out = {}
    for ct in content_types():
        if ct in samples:
            out[str(ct)] = samples[ct]
        else:
            out[str(ct)] = encode(real[by_ct[str(ct)]])
    return out


def cose_cases(w: World) -> list[dict[str, Any]]:
    """COSE cases: dicts with comment, flags, token, expectedContentType, error, payload, key."""
    key = vector_key("cose/signer")
    other = vector_key("cose/other-signer")
    cases: list[dict[str, Any]] = []

    def add(
        comment: str,
        flags: tuple[str, ...],
        token: bytes,
        ct: str,
        error: str | None,
        payload: bytes | None = None,
        group: str = "main",
    ) -> None:
        cases.append(
            {
                "comment": comment,
                "flags": flags,
                "token": token,
                "ct": str(ct),
                "error": error,
                "payload": payload,
                "group": group,
            }
        )

    payloads = _sample_payloads(w)
    types = [str(ct) for ct in content_types()]
    for ct in types:
        add(f"valid {ct}", ("ValidToken",), sign1(key, ct, payloads[ct]), ct, None, payloads[ct])
    for i, ct in enumerate(types):
        expected = types[(i + 1) % len(types)]
        add(
            f"{ct} token, {expected} expected",
            ("ContentType",),
            sign1(key, ct, payloads[ct]),
            expected,
            "ContentTypeError",
        )

    ct = str(_EVIDENCE_CT)
    payload = payloads[ct]
    good = sign1(key, ct, payload)
    protected, _, _, sig = _fields(good)
    add(
        "one bit of the signature flipped",
        ("BadSignature",),
        _with_signature(good, _flip_bit(sig, 63, 7)),
        ct,
        "SignatureError",
    )
    add(
        "one bit of the payload flipped",
        ("BadSignature",),
        _cose(protected, {}, _flip_bit(payload, len(payload) - 1), sig),
        ct,
        "SignatureError",
    )
    add("signed by another key", ("BadSignature",), sign1(other, ct, payload), ct, "SignatureError")
    add(
        "63-byte signature",
        ("BadSignature", "Ed25519Strict"),
        _with_signature(good, sig[:63]),
        ct,
        "SignatureError",
    )
    add(
        "65-byte signature",
        ("BadSignature", "Ed25519Strict"),
        _with_signature(good, sig + b"\x00"),
        ct,
        "SignatureError",
    )
    add(
        "empty signature",
        ("BadSignature", "Ed25519Strict"),
        _with_signature(good, b""),
        ct,
        "SignatureError",
    )
    add(
        "S replaced by S + L (equal mod L, not canonical)",
        ("BadSignature", "Ed25519Strict"),
        _with_signature(good, _noncanonical_s(sig)),
        ct,
        "SignatureError",
    )
    add(
        "R is the identity point (small order) and S = k·a: the cofactorless equation holds",
        ("BadSignature", "Ed25519Strict"),
        _with_signature(good, _small_order_r("cose/signer", sig_structure(protected, payload))),
        ct,
        "SignatureError",
    )
    add("untagged COSE_Sign1", ("Structure",), good[1:], ct, "DecodeError")
    add("tag 17 (COSE_Mac0)", ("Structure",), b"\xd1" + good[1:], ct, "DecodeError")
    add("tag 98 (COSE_Sign)", ("Structure",), b"\xd8\x62" + good[1:], ct, "DecodeError")
    add("tag 18 twice", ("Structure",), _TAG18 + good, ct, "DecodeError")
    add("trailing byte", ("Structure",), good + b"\x00", ct, "DecodeError")
    add("truncated", ("Structure",), good[:-1], ct, "DecodeError")
    add("empty input", ("Structure",), b"", ct, "DecodeError")
    body = _fields(good)
    add("array of three items", ("Structure",), _TAG18 + encode(body[:3]), ct, "DecodeError")
    add("array of five items", ("Structure",), _TAG18 + encode([*body, b""]), ct, "DecodeError")
    add(
        "detached payload (null)",
        ("Structure",),
        _cose(protected, {}, None, sig),
        ct,
        "DecodeError",
    )
    add(
        "payload is a map, not a byte string",
        ("Structure",),
        _cose(protected, {}, {}, sig),
        ct,
        "DecodeError",
    )
    add(
        "protected header is a map, not a byte string",
        ("Structure",),
        _cose({1: -8}, {}, payload, sig),
        ct,
        "DecodeError",
    )
    add(
        "unprotected header is an array",
        ("Structure",),
        _cose(protected, [], payload, sig),
        ct,
        "DecodeError",
    )
    add(
        "signature is a text string",
        ("Structure",),
        _cose(protected, {}, payload, sig.hex()),
        ct,
        "DecodeError",
    )
    add(
        "non-empty unprotected header {4: kid}",
        ("Structure",),
        _cose(protected, {4: b"k"}, payload, sig),
        ct,
        "DecodeError",
    )
    add(
        "alg in both protected and unprotected headers",
        ("Structure",),
        _cose(protected, {1: -8}, payload, sig),
        ct,
        "DecodeError",
    )
    reordered = _alg_last(protected)
    add(
        "protected header not deterministic (content type before alg)",
        ("Structure", "ContentType"),
        _sign_raw(key, reordered, payload),
        ct,
        "DecodeError",
    )
    add(
        "alg -7 (ES256) in the protected header, Ed25519 signature",
        ("Algorithm",),
        _sign_raw(key, encode({1: -7, 3: ct}), payload),
        ct,
        "SignatureError",
    )
    add(
        "alg missing",
        ("Algorithm",),
        _sign_raw(key, encode({3: ct}), payload),
        ct,
        "SignatureError",
    )
    add(
        'alg as text "EdDSA"',
        ("Algorithm",),
        _sign_raw(key, encode({1: "EdDSA", 3: ct}), payload),
        ct,
        "SignatureError",
    )
    add(
        "empty protected header (zero-length byte string)",
        ("Algorithm",),
        _sign_raw(key, b"", payload),
        ct,
        "SignatureError",
    )
    add(
        "alg -7 and another content type: alg is checked first",
        ("Algorithm", "ErrorPrecedence"),
        _sign_raw(key, encode({1: -7, 3: types[0]}), payload),
        ct,
        "SignatureError",
    )
    add(
        "extra protected parameter (kid), correctly signed",
        ("ContentType",),
        _sign_raw(key, encode({1: -8, 3: ct, 4: b"k"}), payload),
        ct,
        "ContentTypeError",
    )
    add(
        "content type as a CoAP content-format number",
        ("ContentType",),
        _sign_raw(key, encode({1: -8, 3: 60}), payload),
        ct,
        "ContentTypeError",
    )
    add(
        "content type differs only in case",
        ("ContentType",),
        _sign_raw(key, encode({1: -8, 3: ct.upper()}), payload),
        ct,
        "ContentTypeError",
    )
    add(
        "other content type and a bad signature: content type is checked first",
        ("ContentType", "ErrorPrecedence"),
        _with_signature(sign1(key, types[0], payload), bytes(64)),
        ct,
        "ContentTypeError",
    )
    add(
        "other content type and non-empty unprotected header: content type is checked first",
        ("ContentType", "ErrorPrecedence"),
        _cose(protected_header(types[0]), {4: b"k"}, payload, sig),
        ct,
        "ContentTypeError",
    )
    add(
        "non-empty unprotected header and a bad signature: header is checked first",
        ("Structure", "ErrorPrecedence"),
        _cose(protected, {4: b"k"}, payload, bytes(64)),
        ct,
        "DecodeError",
    )
    # Small-order public key: R = identity, S = 0 satisfies [S]B = R + [k]A for A = identity
    # under the bare verification equation; libsodium rejects small-order A and R.
    identity = b"\x01" + bytes(31)
    add(
        "public key and R are the identity point, S = 0 (satisfies the bare equation)",
        ("BadSignature", "Ed25519Strict"),
        _cose(protected, {}, payload, identity + bytes(32)),
        ct,
        "SignatureError",
        group="identity",
    )
    # -- revision 3: further traps, in groups after the revision-2 ones -------------------------
    add(
        "signature made over the License header, token carries the Evidence header",
        ("BadSignature", "ContentType"),
        _cose(protected, {}, payload, key.sign(sig_structure(protected_header(types[9]), payload))),
        ct,
        "SignatureError",
        group="traps",
    )
    add(
        "token of another type re-labelled: header replaced, signature kept",
        ("BadSignature", "ContentType"),
        _cose(protected, {}, payload, _fields(sign1(key, types[9], payload))[3]),
        ct,
        "SignatureError",
        group="traps",
    )
    add(
        "untagged token of another content type: the tag is checked first",
        ("Structure", "ErrorPrecedence"),
        sign1(key, types[0], payload)[1:],
        ct,
        "DecodeError",
        group="traps",
    )
    big = _sized_revocation_payload(MAX_MESSAGE_BYTES, key)
    rl_ct = str(ContentType.REVOCATION_LIST)
    add(
        "token of exactly 65 536 bytes",
        ("ValidToken", "MaxSize"),
        sign1(key, rl_ct, big),
        rl_ct,
        None,
        big,
        group="traps",
    )
    bigger = _sized_revocation_payload(MAX_MESSAGE_BYTES + 1, key)
    add(
        "token of 65 537 bytes",
        ("Structure", "MaxSize"),
        sign1(key, rl_ct, bigger),
        rl_ct,
        "DecodeError",
        group="traps",
    )
    for name, point in SMALL_ORDER_KEYS.items():
        forged = _small_order_forgery(point, protected, payload)
        add(
            f"public key {name}; R is the identity, S = 0 and [k]A is the identity: the "
            "cofactorless equation holds",
            ("BadSignature", "Ed25519Strict", "SmallOrderKey"),
            forged,
            ct,
            "SignatureError",
            group=name,
        )
    return cases


def _small_order_forgery(public: bytes, protected: bytes, payload: bytes) -> bytes:
    """A token that satisfies [S]B = R + [k]A for a small-order A: R = identity, S = 0.

    With ``8 | k`` the term [k]A vanishes for every point of order dividing 8, so only the
    small-order check on A rejects it. ``k`` depends on the message, so the Evidence payload's
    ``uptime`` is varied until ``k mod 8 = 0`` (one try in eight on average).
    """
    claims = decode(payload)
    r = b"\x01" + bytes(31)
    for uptime in range(1, 10_000):
        p = encode({**claims, 261: uptime})
        k = int.from_bytes(
            hashlib.sha512(r + public + sig_structure(protected, p)).digest(), "little"
        )
        if k % ED25519_L % 8 == 0:
            return _cose(protected, {}, p, r + bytes(32))
    raise VectorError("no message with 8 | k found")


#: Public keys an Ed25519 verifier must reject (§4.3 rule 4): points of small order, and a
#: non-canonical encoding (y = p + 1, i.e. the identity's y-coordinate 1 written as p + 1).
SMALL_ORDER_KEYS: dict[str, bytes] = {
    "of order 2 (y = -1)": bytes.fromhex(
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"
    ),
    "of order 4 (y = 0)": bytes(32),
    "of order 4 (y = 0, sign bit set)": bytes(31) + b"\x80",
    "of order 8": bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    "of order 8 (the other one)": bytes.fromhex(
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"
    ),
    "not canonical (y = p + 1)": bytes.fromhex(
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"
    ),
}


def _sized_revocation_payload(token_bytes: int, key: Any) -> bytes:
    """A RevocationList payload whose signed token is exactly ``token_bytes`` long."""
    ct = str(ContentType.REVOCATION_LIST)

    def size(n: int, pad: int) -> tuple[int, bytes]:
        devices = tuple(b"\x01" + i.to_bytes(16, "big") for i in range(n))
        p = RevocationList(
            AUTHORITY_ID, NOW_S, 1, devices=devices, manufacturers=("m" * pad,)
        ).payload()
        return len(sign1(key, ct, p)), p

    base, _ = size(300, 30)
    n = 300 + (token_bytes - base) // 18 - 5  # UEIDs of 17 bytes take 18 each
    for pad in range(30, 250):
        got, p = size(n, pad)
        if got == token_bytes:
            return p
    raise VectorError(f"cannot build a token of {token_bytes} bytes")


def cose_document(w: World | None = None) -> dict[str, Any]:
    w = w or build_world()
    keys = {
        "main": vector_key("cose/signer").public_key,
        "identity": PublicKey(b"\x01" + bytes(31)),
        "traps": vector_key("cose/signer").public_key,
        **{name: PublicKey(raw) for name, raw in SMALL_ORDER_KEYS.items()},
    }
    groups: dict[str, list[dict[str, Any]]] = {name: [] for name in keys}
    tc = 0
    for c in cose_cases(w):
        tc += 1
        try:
            got = verify1(c["token"], keys[c["group"]], c["ct"])
            error = None
        except AttestError as exc:
            got, error = None, type(exc).__name__
        if error != c["error"] or (error is None and got != c["payload"]):
            raise VectorError(f"COSE case {c['comment']!r}: expected {c['error']}, got {error}")
        groups[c["group"]].append(
            {
                "tcId": tc,
                "comment": c["comment"],
                "flags": list(c["flags"]),
                "token": c["token"].hex(),
                "expectedContentType": c["ct"],
                "result": "valid" if error is None else "invalid",
                "error": error,
                "payload": got.hex() if got is not None else None,
            }
        )
    test_groups: list[dict[str, Any]] = [
        {"type": "CoseSign1Verify", "publicKey": keys[name].raw.hex(), "tests": tests}
        for name, tests in groups.items()
    ]
    used = {f for g in test_groups for t in g["tests"] for f in t["flags"]}
    doc = vector_document(
        COSE_ALGORITHM,
        tc,
        COSE_HEADER,
        {k: v for k, v in COSE_NOTES.items() if k in used},
        test_groups,
    )
    return annotate(doc, {"CoseSign1Verify": ("result", "error", "payload")}, _cose_sections)


def _cose_sections(g: dict[str, Any], t: dict[str, Any]) -> list[str]:
    flags = set(t["flags"])
    return ["4.3", *(["4.4"] if flags & {"ContentType", "ValidToken"} else []), "4.5"]
