"""A second implementation of SPEC.md's token rules, written from the SPEC alone.

It imports nothing from ``attest``: CBOR is cbor2, Ed25519 is the ``cryptography`` package
(OpenSSL, not libsodium). OpenSSL's Ed25519 checks ``S < L`` but, like RFC 8032, accepts
small-order points, so the extra rules of SPEC §4.3 (rules 3 and 4: no small-order ``R`` or
``A``, canonical ``A``) are written here from the SPEC's text. tests/test_independent.py runs it
over every vector file and compares with the outcomes the vectors state. SPEC Appendix B.2
(COSE_Sign acts of k-of-n committees) is written here from its text as well.
"""

from __future__ import annotations

import hashlib
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

P = 2**255 - 19
#: SPEC §4.3 rule 3/4: encodings (ignoring the sign bit) of points of order dividing 8, plus
#: the non-canonical encodings p and p + 1 of y = 0 and y = 1
SMALL_ORDER = {
    bytes(32),
    b"\x01" + bytes(31),
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
}
MAX_BYTES = 65536

CONTENT_TYPES = {
    name: f"application/vnd.attest.{suffix}+cbor"
    for name, suffix in {
        "ManufacturerCert": "manufacturer-cert",
        "DeviceCert": "device-cert",
        "VerifierCert": "verifier-cert",
        "RevocationList": "revocation-list",
        "Challenge": "challenge",
        "Evidence": "evidence",
        "AttestationResult": "result",
        "AuditCheckpoint": "audit-checkpoint",
        "Delegation": "delegation",
        "License": "license",
        "PodCert": "pod-cert",
        "LinkResponse": "link-response",
        "LinkConfirm": "link-confirm",
        "ReferenceValues": "reference-values",
    }.items()
}


class Invalid(Exception):
    """A token fails; ``kind`` is the error class of SPEC §4.5 (DecodeError, ...)."""

    def __init__(self, kind: str, why: str) -> None:
        super().__init__(f"{kind}: {why}")
        self.kind = kind


def protected_header(content_type: str) -> bytes:
    """SPEC §4.4: a2 01 27 03 78 nn ‖ content type."""
    ct = content_type.encode()
    return bytes([0xA2, 0x01, 0x27, 0x03, 0x78, len(ct)]) + ct


def _deterministic(data: bytes) -> Any:
    """The single item of ``data`` if it is deterministic CBOR of the allowed kinds (§4.1)."""
    try:
        value = cbor2.loads(data)
    except Exception as exc:
        raise Invalid("DecodeError", f"not CBOR: {exc}") from None
    if _bad_item(value) or cbor2.dumps(value, canonical=True) != data:
        raise Invalid("DecodeError", "not deterministic CBOR of the allowed items")
    return value


def _bad_item(v: Any) -> bool:
    if v is None or isinstance(v, (bool, bytes, str)):
        return False
    if isinstance(v, int):
        return not -(2**64) <= v < 2**64
    if isinstance(v, list):
        return any(_bad_item(x) for x in v)
    if isinstance(v, dict):
        return any(
            not isinstance(k, (int, bytes, str)) or isinstance(k, bool) or _bad_item(k) for k in v
        ) or any(_bad_item(x) for x in v.values())
    return True  # floats, tags, undefined, ...


def ed25519_verify(public: bytes, signature: bytes, message: bytes) -> bool:
    """SPEC §4.3 Ed25519 rules 1–5 (OpenSSL does 2 and 5, this adds 1, 3 and 4)."""
    if len(public) != 32 or len(signature) != 64:
        return False
    if int.from_bytes(public, "little") % 2**255 >= P:
        return False
    if _small(public) or _small(signature[:32]):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _small(point: bytes) -> bool:
    return bytes([*point[:31], point[31] & 0x7F]) in SMALL_ORDER


def envelope(token: bytes, content_type: str) -> tuple[bytes, bytes]:
    """SPEC §4.5 steps 1–4: (payload, signature) of a token of ``content_type``, or Invalid."""
    if len(token) > MAX_BYTES or not token.startswith(b"\xd2"):
        raise Invalid("DecodeError", "size or tag")
    body = _deterministic(token[1:])
    if not isinstance(body, list) or len(body) != 4:
        raise Invalid("DecodeError", "not an array of four")
    protected, unprotected, payload, signature = body
    if not (
        isinstance(protected, bytes)
        and isinstance(unprotected, dict)
        and isinstance(payload, bytes)
        and isinstance(signature, bytes)
    ):
        raise Invalid("DecodeError", "major types")
    header = _deterministic(protected) if protected else {}
    if not isinstance(header, dict):
        raise Invalid("DecodeError", "protected header is not a map")
    if set(header) & set(unprotected):
        raise Invalid("DecodeError", "a label in both buckets")
    if header.get(1) != -8 or isinstance(header.get(1), bool):
        raise Invalid("SignatureError", "alg is not EdDSA")
    if protected != protected_header(content_type):
        raise Invalid("ContentTypeError", "another protected header")
    if unprotected:
        raise Invalid("DecodeError", "unprotected header not empty")
    return payload, signature


def verify_token(token: bytes, public: bytes, content_type: str) -> dict[Any, Any]:
    """SPEC §4.5 steps 1–5 and the map check of step 6: the payload's claims, or Invalid."""
    payload, signature = envelope(token, content_type)
    sig_structure = cbor2.dumps(["Signature1", protected_header(content_type), b"", payload])
    if not ed25519_verify(public, signature, sig_structure):
        raise Invalid("SignatureError", "signature does not verify")
    claims = _deterministic(payload)
    if not isinstance(claims, dict):
        raise Invalid("DecodeError", "payload is not a claims map")
    return claims


def cnf_key(claims: dict[Any, Any]) -> bytes:
    """The Ed25519 key of a certificate's cnf (§3.3), or Invalid."""
    cnf = claims.get(8)
    if not (isinstance(cnf, dict) and set(cnf) == {1}):
        raise Invalid("DecodeError", "cnf")
    key = cnf[1]
    if not (
        isinstance(key, dict) and key.get(1) == 1 and key.get(-1) == 6 and set(key) == {1, -1, -2}
    ):
        raise Invalid("DecodeError", "COSE_Key")
    x = key[-2]
    if not (isinstance(x, bytes) and len(x) == 32):
        raise Invalid("DecodeError", "key size")
    return bytes(x)


def verifier_cert(token: bytes, authority_id: str, authority_key: bytes) -> dict[Any, Any]:
    """§3.5: a VerifierCert's claims if the Authority issued it."""
    claims = verify_token(token, authority_key, CONTENT_TYPES["VerifierCert"])
    if claims.get(1) != authority_id:
        raise Invalid("Issuer", "not the authority's")
    return claims


def device_chain(
    dc: bytes, mc: bytes, authority_id: str, authority_key: bytes
) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """§3.4: (device cert claims, manufacturer cert claims) of a valid chain."""
    m = verify_token(mc, authority_key, CONTENT_TYPES["ManufacturerCert"])
    if m.get(1) != authority_id:
        raise Invalid("Issuer", "manufacturer cert not the authority's")
    d = verify_token(dc, cnf_key(m), CONTENT_TYPES["DeviceCert"])
    if d.get(1) != m.get(2):
        raise Invalid("Issuer", "device cert not the manufacturer's")
    return d, m


def reference_values(
    token: bytes, authority_id: str, authority_key: bytes, now_s: int, held: int | None
) -> dict[Any, Any]:
    """§6.10 "Verifying" steps 1–4, 6 and 7 (the schema of step 5 is pycddl's job): the
    document's claims, or Invalid whose ``kind`` is the refusal name of the failed step."""
    try:
        payload, _ = envelope(token, CONTENT_TYPES["ReferenceValues"])
        claims = _deterministic(payload)
    except Invalid as exc:
        raise Invalid("RV_MALFORMED", str(exc)) from None
    cert = claims.get(-70021) if isinstance(claims, dict) else None
    if not isinstance(cert, bytes):
        raise Invalid("RV_MALFORMED", "no issuer certificate")
    try:
        m = verify_token(cert, authority_key, CONTENT_TYPES["ManufacturerCert"])
        key = cnf_key(m)
    except Invalid as exc:
        raise Invalid("RV_ISSUER_INVALID", str(exc)) from None
    if m.get(1) != authority_id:
        raise Invalid("RV_ISSUER_INVALID", "not the authority's manufacturer")
    if now_s >= m[4]:
        raise Invalid("RV_ISSUER_EXPIRED", "manufacturer certificate expired")
    try:
        verify_token(token, key, CONTENT_TYPES["ReferenceValues"])
    except Invalid as exc:
        raise Invalid("RV_SIGNATURE_INVALID", str(exc)) from None
    if claims.get(1) != m.get(2):
        raise Invalid("RV_ISSUER_MISMATCH", "iss is not the certificate's sub")
    number = claims.get(-70020)
    if held is not None and isinstance(number, int) and number <= held:
        raise Invalid("RV_NOT_NEWER", "not newer than the held document")
    return claims


# -- SPEC Appendix B.2: COSE_Sign acts of a k-of-n committee -----------------------------------


def _kid(public: bytes) -> bytes:
    """B.2: the RFC 9679 thumbprint of the cnf COSE_Key {1: 1, -1: 6, -2: x}."""
    return hashlib.sha256(cbor2.dumps({1: 1, -1: 6, -2: public}, canonical=True)).digest()


#: SPEC §4.5 error classes of a COSE_Sign1 act -> the reasons of B.2 step 1
_SIGN1_REASONS = {
    "DecodeError": "ACT_MALFORMED",
    "ContentTypeError": "ACT_WRONG_CONTENT_TYPE",
    "SignatureError": "ACT_BAD_SIGNATURE",
}


def committee_act(token: bytes, committee: bytes, content_type: str) -> bytes:
    """B.2 steps 1–4: the payload of an act of ``committee`` (its claims, B.3), or Invalid
    whose ``kind`` is the reason name."""
    c = _deterministic(committee)
    officers = {_kid(k): k for k in c[-70401]}
    need = dict(c.get(-70403, {})).get(content_type, c[-70402])
    if token[:1] == b"\xd2":  # B.2 step 1: a COSE_Sign1 is one officer's signature
        if need > 1:
            raise Invalid("ACT_TOO_FEW_SIGNATURES", "a COSE_Sign1 where k > 1")
        try:
            payload, signature = envelope(token, content_type)
        except Invalid as exc:
            raise Invalid(_SIGN1_REASONS[exc.kind], str(exc)) from None
        tbs1 = cbor2.dumps(["Signature1", protected_header(content_type), b"", payload])
        if any(ed25519_verify(k, signature, tbs1) for k in officers.values()):
            return payload
        raise Invalid("ACT_BAD_SIGNATURE", "no officer's signature")
    if len(token) > MAX_BYTES or token[:2] != b"\xd8\x62":
        raise Invalid("ACT_MALFORMED", "tag 98")
    try:
        body = _deterministic(token[2:])
    except Invalid:
        raise Invalid("ACT_MALFORMED", "not deterministic CBOR") from None
    if not isinstance(body, list) or len(body) != 4:
        raise Invalid("ACT_MALFORMED", "not an array of four")
    protected, unprotected, payload, signatures = body
    if not isinstance(signatures, list) or not 1 <= len(signatures) <= 64 or unprotected != {}:
        raise Invalid("ACT_MALFORMED", "signatures or unprotected header")
    for s in signatures:
        if (
            not isinstance(s, list)
            or len(s) != 3
            or s[0] != b"\xa1\x01\x27"
            or not isinstance(s[1], dict)
            or set(s[1]) != {4}
            or len(s[1][4]) != 32
            or len(s[2]) != 64
        ):
            raise Invalid("ACT_MALFORMED", "a COSE_Signature")
    ct = content_type.encode()
    if protected != bytes([0xA1, 0x03, 0x78, len(ct)]) + ct:
        raise Invalid("ACT_WRONG_CONTENT_TYPE", "body header")
    tbs = cbor2.dumps(["Signature", protected, b"\xa1\x01\x27", b"", payload])
    seen: set[bytes] = set()
    for _sp, su, sig in signatures:
        kid = su[4]
        if kid not in officers:
            raise Invalid("ACT_UNKNOWN_OFFICER", kid.hex())
        if kid in seen:
            raise Invalid("ACT_DUPLICATE_OFFICER", kid.hex())
        seen.add(kid)
        if not ed25519_verify(officers[kid], sig, tbs):
            raise Invalid("ACT_BAD_SIGNATURE", kid.hex())
    if len(seen) < need:
        raise Invalid("ACT_TOO_FEW_SIGNATURES", f"{len(seen)} of {need}")
    return payload
