"""COSE_Sign (RFC 9052 §4.1, tag 98) for acts of a committee: one COSE_Signature per officer.

An authority that is a committee of n officer keys signs each act with k or more of them. The
profile (SPEC B.2) is as narrow as the COSE_Sign1 profile of SPEC §4.3:

* the body's protected header is exactly ``{3: <content type>}`` (a constant per message type);
  the body's unprotected header is the empty map; the payload is attached deterministic CBOR;
* each COSE_Signature has the protected header exactly ``{1: -8}`` (EdDSA) and the unprotected
  header exactly ``{4: kid}``, where kid is the officer key's RFC 9679 thumbprint (SHA-256 of
  the deterministic ``cnf`` COSE_Key of SPEC §3.3, 32 bytes); the signature is 64 bytes over
  ``["Signature", body_protected, sign_protected, h'', payload]`` (RFC 9052 §4.4);
* a signer writes the signatures in ascending kid order (so an act is reproducible); a verifier
  accepts any order.

Officers sign one at a time, offline (:func:`add_signature`): each adds its COSE_Signature to
the object the previous officer passed on, and nothing they sign depends on the others.

:func:`check_signatures` is the one strict check; it accepts only if every signature is an
officer's, distinct and valid, and raises :class:`FederationError` with the first failing
reason otherwise. Counting against a threshold is the caller's (a committee counts officers, an
agreement counts approving members).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from attest.codec.cbor import MAX_MESSAGE_BYTES, decode, encode
from attest.errors import AttestError
from attest.federation.reasons import FederationReason
from attest.keys import PublicKey, Signer, ed25519_verify
from attest.messages import claims as C

COSE_SIGN_TAG = 98
TAG98 = b"\xd8\x62"  # CBOR head of tag 98: major type 6, one-byte value 98
HEADER_ALG = 1
HEADER_CONTENT_TYPE = 3
HEADER_KID = 4
ALG_EDDSA = -8
#: the protected header of every COSE_Signature of the profile: {1: -8}
SIGNER_HEADER = encode({HEADER_ALG: ALG_EDDSA})
#: at most this many signatures in one act (a committee has at most 32 officers)
MAX_SIGNATURES = 64


class FederationError(AttestError):
    """A committee act, rotation or agreement is refused; ``reason`` says which check failed."""

    def __init__(self, reason: FederationReason, detail: str = "") -> None:
        super().__init__(f"{reason.name}: {detail}" if detail else reason.name)
        self.reason = reason


def kid_of(key: PublicKey) -> bytes:
    """The officer key's kid: its RFC 9679 COSE Key thumbprint (SHA-256 of the cnf COSE_Key)."""
    cose_key = {C.COSE_KEY_KTY: C.KTY_OKP, C.COSE_KEY_CRV: C.CRV_ED25519, C.COSE_KEY_X: key.raw}
    return hashlib.sha256(encode(cose_key)).digest()


def body_header(content_type: str) -> bytes:
    """The body's protected header for a message type: ``{3: content type}``."""
    return encode({HEADER_CONTENT_TYPE: str(content_type)})


def to_be_signed(body_protected: bytes, payload: bytes) -> bytes:
    """What each officer signs: the COSE_Sign ``Sig_structure`` (RFC 9052 §4.4)."""
    return encode(["Signature", body_protected, SIGNER_HEADER, b"", payload])


@dataclass(frozen=True, slots=True)
class SignObject:
    """A parsed, *unverified* COSE_Sign of the profile's shape."""

    protected: bytes
    payload: bytes
    #: (kid, signature) in the order they appear
    signatures: tuple[tuple[bytes, bytes], ...]

    @property
    def content_type(self) -> Any:
        """The content type the sender claims (untrusted)."""
        header = decode(self.protected)
        return header.get(HEADER_CONTENT_TYPE) if type(header) is dict else None

    def encode(self) -> bytes:
        signatures = [
            [SIGNER_HEADER, {HEADER_KID: kid}, sig] for kid, sig in sorted(self.signatures)
        ]
        return TAG98 + encode([self.protected, {}, self.payload, signatures])


def _malformed(detail: str) -> FederationError:
    return FederationError(FederationReason.ACT_MALFORMED, detail)


def parse_sign(data: bytes) -> SignObject:
    """Strictly parse a tagged COSE_Sign of the profile (no signature is checked)."""
    if type(data) is not bytes or len(data) > MAX_MESSAGE_BYTES:
        raise _malformed("a COSE_Sign is bytes of at most 65536")
    if data[:2] != TAG98:
        raise _malformed("not a COSE_Sign: tag 98 missing")
    try:
        body = decode(data[2:])
    except AttestError as exc:
        raise _malformed(str(exc)) from None
    if type(body) is not list or len(body) != 4:
        raise _malformed("a COSE_Sign is an array of four items")
    protected, unprotected, payload, signatures = body
    if type(protected) is not bytes or type(payload) is not bytes:
        raise _malformed("protected header and payload must be byte strings")
    if unprotected != {} or type(unprotected) is not dict:
        raise _malformed("the body's unprotected header must be the empty map")
    if type(signatures) is not list or not 1 <= len(signatures) <= MAX_SIGNATURES:
        raise _malformed(f"an act carries 1..{MAX_SIGNATURES} signatures")
    try:
        header = decode(protected)
    except AttestError as exc:
        raise _malformed(f"protected header: {exc}") from None
    if type(header) is not dict:
        raise _malformed("the protected header must encode a map")
    out = []
    for s in signatures:
        if type(s) is not list or len(s) != 3:
            raise _malformed("a COSE_Signature is an array of three items")
        sp, su, sig = s
        if sp != SIGNER_HEADER:
            raise _malformed("a signature's protected header must be exactly {1: -8}")
        if type(su) is not dict or set(su) != {HEADER_KID}:
            raise _malformed("a signature's unprotected header must be exactly {4: kid}")
        kid = su[HEADER_KID]
        if type(kid) is not bytes or len(kid) != 32 or type(sig) is not bytes or len(sig) != 64:
            raise _malformed("kid is 32 bytes and a signature 64")
        out.append((kid, sig))
    return SignObject(protected, payload, tuple(out))


def sign_multi(content_type: str, payload: bytes, keys: Iterable[Signer]) -> bytes:
    """``payload`` (deterministic CBOR) as a COSE_Sign of ``content_type`` signed by ``keys``."""
    protected = body_header(content_type)
    tbs = to_be_signed(protected, payload)
    sigs = {kid_of(k.public_key): k.sign(tbs) for k in keys}
    if not sigs:
        raise ValueError("an act needs at least one signature")
    return SignObject(protected, payload, tuple(sigs.items())).encode()


def add_signature(token: bytes, key: Signer) -> bytes:
    """``token`` with one more officer's signature (an officer signing offline, in turn).

    Refuses (ACT_DUPLICATE_OFFICER) an officer who already signed it.
    """
    obj = parse_sign(token)
    kid = kid_of(key.public_key)
    if any(k == kid for k, _ in obj.signatures):
        raise FederationError(FederationReason.ACT_DUPLICATE_OFFICER, "this officer signed it")
    sig = key.sign(to_be_signed(obj.protected, obj.payload))
    return SignObject(obj.protected, obj.payload, (*obj.signatures, (kid, sig))).encode()


def unsigned(content_type: str, payload: bytes) -> SignObject:
    """A draft with no signature yet (for tools that show what officers are asked to sign)."""
    return SignObject(body_header(content_type), payload, ())


def check_signatures(
    data: bytes, content_type: str, officers: Mapping[bytes, PublicKey]
) -> tuple[bytes, frozenset[bytes]]:
    """Verify every signature of a COSE_Sign act against ``officers`` (kid -> key).

    Returns the payload and the kids that signed. Raises FederationError: ACT_MALFORMED (shape),
    ACT_WRONG_CONTENT_TYPE (body header not ``content_type``'s constant), then for the first
    offending signature in order ACT_UNKNOWN_OFFICER, ACT_DUPLICATE_OFFICER or
    ACT_BAD_SIGNATURE. Nothing in the payload may be used unless this returns.
    """
    obj = parse_sign(data)
    if obj.protected != body_header(content_type):
        raise FederationError(
            FederationReason.ACT_WRONG_CONTENT_TYPE,
            f"expected {str(content_type)!r}, got {obj.content_type!r}",
        )
    tbs = to_be_signed(obj.protected, obj.payload)
    seen: set[bytes] = set()
    for kid, sig in obj.signatures:
        key = officers.get(kid)
        if key is None:
            raise FederationError(FederationReason.ACT_UNKNOWN_OFFICER, f"kid {kid.hex()[:16]}")
        if kid in seen:
            raise FederationError(FederationReason.ACT_DUPLICATE_OFFICER, f"kid {kid.hex()[:16]}")
        seen.add(kid)
        if not ed25519_verify(key.raw, tbs, sig):
            raise FederationError(FederationReason.ACT_BAD_SIGNATURE, f"kid {kid.hex()[:16]}")
    return obj.payload, frozenset(seen)
