"""COSE_Sign1 (RFC 9052 §4.2) with EdDSA/Ed25519 and per-message-type content types.

Every signed object in the protocol is ``18([protected, unprotected, payload, signature])``.
Our profile is narrower than COSE:

* the protected header is exactly ``{1: -8, 3: <content type>}`` in deterministic encoding, so
  for a given message type its bytes are a constant (:func:`protected_header`);
* the unprotected header is the empty map;
* the payload is attached (not ``nil``) and is itself deterministic CBOR;
* the signature is exactly 64 bytes (checked before libsodium is called).

Domain separation: the content type sits in the signed protected header, so a signature made
over one message type can never verify as another: the verifier rebuilds the Sig_structure with
the protected header of the type it *expects*, not the one the sender claims.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import cache
from typing import Any

from attest.codec.cbor import MAX_MESSAGE_BYTES, decode, encode
from attest.errors import ContentTypeError, DecodeError, SignatureError
from attest.keys import PublicKey, SigningKey, ed25519_verify

COSE_SIGN1_TAG = 18
_TAG18 = b"\xd2"  # CBOR head of tag 18: major type 6, value 18
ALG_EDDSA = -8
HEADER_ALG = 1
HEADER_CONTENT_TYPE = 3


class ContentType(enum.StrEnum):
    """Media types that name each signed message type (COSE header label 3)."""

    MANUFACTURER_CERT = "application/vnd.attest.manufacturer-cert+cbor"
    DEVICE_CERT = "application/vnd.attest.device-cert+cbor"
    VERIFIER_CERT = "application/vnd.attest.verifier-cert+cbor"
    REVOCATION_LIST = "application/vnd.attest.revocation-list+cbor"
    CHALLENGE = "application/vnd.attest.challenge+cbor"
    EVIDENCE = "application/vnd.attest.evidence+cbor"
    RESULT = "application/vnd.attest.result+cbor"
    AUDIT_CHECKPOINT = "application/vnd.attest.audit-checkpoint+cbor"
    # -- Offline Licensing (attest/licensing)
    LICENSE = "application/vnd.attest.license+cbor"
    DELEGATION = "application/vnd.attest.delegation+cbor"
    # -- end Offline Licensing
    # -- Fixed Set (attest/pods): pod certificates and the two signed link-handshake proofs
    POD_CERT = "application/vnd.attest.pod-cert+cbor"
    LINK_RESPONSE = "application/vnd.attest.link-response+cbor"
    LINK_CONFIRM = "application/vnd.attest.link-confirm+cbor"
    # -- end Fixed Set


@cache
def protected_header(content_type: str) -> bytes:
    """The exact protected-header bytes for a message type (a constant per type)."""
    return encode({HEADER_ALG: ALG_EDDSA, HEADER_CONTENT_TYPE: str(content_type)})


#: deterministic CBOR heads of byte strings of 0..255 bytes
_SHORT_HEADS = tuple(bytes((0x40 + n,)) if n < 24 else bytes((0x58, n)) for n in range(256))


def _bstr_head(n: int) -> bytes:
    """The deterministic CBOR head of a byte string of ``n`` bytes (major type 2)."""
    if n < 0x100:
        return _SHORT_HEADS[n]
    if n < 0x10000:
        return b"\x59" + n.to_bytes(2, "big")
    if n < 0x100000000:
        return b"\x5a" + n.to_bytes(4, "big")
    return b"\x5b" + n.to_bytes(8, "big")


#: deterministic CBOR of the array head and the context string "Signature1"
_SIG1_PREFIX = b"\x84\x6aSignature1"


def sig_structure(protected: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    """The ``Sig_structure`` for COSE_Sign1 (RFC 9052 §4.4): what Ed25519 actually signs.

    It is ``encode(["Signature1", protected, external_aad, payload])``; with three byte strings
    that encoding is a constant prefix and three length heads, so it is assembled directly
    (a generic encode of the array costs more than everything else around a verification).
    """
    if not (type(protected) is type(payload) is type(external_aad) is bytes):
        return encode(["Signature1", protected, external_aad, payload])
    prefix = _SIG1_PREFIXES.get(protected) if not external_aad else None
    if prefix is None:
        prefix = b"".join(
            (
                _SIG1_PREFIX,
                _bstr_head(len(protected)),
                protected,
                _bstr_head(len(external_aad)),
                external_aad,
            )
        )
    return prefix + _bstr_head(len(payload)) + payload


@dataclass(frozen=True, slots=True)
class Sign1:
    """A parsed, *unverified* COSE_Sign1. Nothing in it is trustworthy until verified."""

    protected: bytes
    unprotected: dict[Any, Any]
    payload: bytes
    signature: bytes
    alg: Any
    content_type: Any

    def to_be_signed(self, external_aad: bytes = b"") -> bytes:
        return sig_structure(self.protected, self.payload, external_aad)


def sign1(key: SigningKey, content_type: str, payload: bytes) -> bytes:
    """Sign ``payload`` (already deterministic CBOR) as a tagged COSE_Sign1 of ``content_type``."""
    protected = protected_header(content_type)
    signature = key.sign(sig_structure(protected, payload))
    if type(payload) is not bytes:
        return _TAG18 + encode([protected, {}, payload, signature])
    # encode([protected, {}, payload, signature]) of three byte strings, assembled directly
    return b"".join(
        (
            _TAG18 + b"\x84",
            _bstr_head(len(protected)),
            protected,
            b"\xa0",
            _bstr_head(len(payload)),
            payload,
            _bstr_head(len(signature)),
            signature,
        )
    )


def _known_envelopes() -> dict[bytes, tuple[bytes, str]]:
    """Token prefix ``d2 84 58 nn <protected> a0`` → (protected, content type), per message type.

    These are the first bytes of every token of our profile: tag 18, an array of four, the
    constant protected header of one content type and the empty unprotected map.
    """
    out: dict[bytes, tuple[bytes, str]] = {}
    for ct in ContentType:
        protected = protected_header(ct)
        out[_TAG18 + b"\x84" + _bstr_head(len(protected)) + protected + b"\xa0"] = (
            protected,
            str(ct),
        )
    return out


_ENVELOPES = _known_envelopes()
#: Sig_structure up to the payload head, for each of our protected headers (empty aad)
_SIG1_PREFIXES: dict[bytes, bytes] = {
    p: _SIG1_PREFIX + _bstr_head(len(p)) + p + b"\x40" for p, _ in _ENVELOPES.values()
}
#: the byte after ``d2 84 58``: every known protected header is 24..255 bytes long
_PROTECTED_LENGTHS = frozenset(len(p) for p, _ in _ENVELOPES.values())
_SIG_HEAD = b"\x58\x40"  # a 64-byte byte string


def _parse_profile(data: bytes) -> Sign1 | None:
    """Fast path of :func:`parse_sign1` for tokens exactly in our profile, else None.

    A token that starts with a known envelope prefix, carries its payload as one byte string
    with a shortest-form head and ends with a 64-byte signature is exactly what the general
    parser accepts for those bytes (the payload is not decoded at this layer either), and the
    result is the same :class:`Sign1`. Anything else, valid or not, goes to the general parser,
    which alone decides what is malformed.
    """
    if len(data) < 4 or data[2] != 0x58 or data[3] not in _PROTECTED_LENGTHS:
        return None
    start = 5 + data[3]
    known = _ENVELOPES.get(data[:start])
    if known is None or len(data) < start + 67:  # payload head, 64-byte signature and its head
        return None
    head = data[start]
    if head < 0x58:
        if head < 0x40:
            return None
        n, start = head - 0x40, start + 1
    elif head == 0x58:
        n, start = data[start + 1], start + 2
        if n < 24:
            return None
    elif head == 0x59:
        n, start = int.from_bytes(data[start + 1 : start + 3], "big"), start + 3
        if n < 0x100:
            return None
    else:
        return None
    end = start + n
    if len(data) != end + 66 or data[end : end + 2] != _SIG_HEAD:
        return None
    protected, content_type = known
    msg = _new(Sign1)
    _set_protected(msg, protected)
    _set_unprotected(msg, {})
    _set_payload(msg, data[start:end])
    _set_signature(msg, data[end + 2 :])
    _set_alg(msg, ALG_EDDSA)
    _set_content_type(msg, content_type)
    return msg


# Building a Sign1 through its slot descriptors is what its generated (frozen) __init__ does,
# one object.__setattr__ per field, without the call overhead: this runs for every token.
_new = object.__new__
_set_protected = Sign1.protected.__set__  # type: ignore[attr-defined]
_set_unprotected = Sign1.unprotected.__set__  # type: ignore[attr-defined]
_set_payload = Sign1.payload.__set__  # type: ignore[attr-defined]
_set_signature = Sign1.signature.__set__  # type: ignore[attr-defined]
_set_alg = Sign1.alg.__set__  # type: ignore[attr-defined]
_set_content_type = Sign1.content_type.__set__  # type: ignore[attr-defined]


def parse_sign1(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Sign1:
    """Strictly parse a tagged COSE_Sign1 without verifying it."""
    if type(data) is bytes and len(data) <= max_bytes:
        fast = _parse_profile(data)
        if fast is not None:
            return fast
    return _parse_general(data, max_bytes=max_bytes)


def _parse_general(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Sign1:
    """The general strict parser (any header contents; the reference for the fast path)."""
    if type(data) is not bytes:
        raise DecodeError("COSE_Sign1 must be bytes")
    if len(data) > max_bytes:
        raise DecodeError(f"COSE_Sign1 of {len(data)} bytes exceeds the limit of {max_bytes}")
    if data[:1] != _TAG18:
        raise DecodeError("not a COSE_Sign1: tag 18 missing")
    body = decode(data[1:], max_bytes=max_bytes)
    if type(body) is not list or len(body) != 4:
        raise DecodeError("COSE_Sign1 must be an array of four items")
    protected, unprotected, payload, signature = body
    if type(protected) is not bytes:
        raise DecodeError("protected header must be a byte string")
    if type(unprotected) is not dict:
        raise DecodeError("unprotected header must be a map")
    if type(payload) is not bytes:
        raise DecodeError("payload must be an attached byte string")
    if type(signature) is not bytes:
        raise DecodeError("signature must be a byte string")
    header = decode(protected) if protected else {}
    if type(header) is not dict:
        raise DecodeError("protected header must encode a map")
    if set(header) & set(unprotected):
        raise DecodeError("a header label appears in both protected and unprotected buckets")
    return Sign1(
        protected=protected,
        unprotected=unprotected,
        payload=payload,
        signature=signature,
        alg=header.get(HEADER_ALG),
        content_type=header.get(HEADER_CONTENT_TYPE),
    )


def verify1(data: bytes, public_key: PublicKey, content_type: str) -> bytes:
    """Verify a COSE_Sign1 of our profile and return its payload bytes.

    Raises :class:`DecodeError` (malformed), :class:`ContentTypeError` (a different message type
    or extra protected headers) or :class:`SignatureError` (signature does not verify).
    """
    msg = parse_sign1(data)
    if msg.alg != ALG_EDDSA:
        raise SignatureError(f"algorithm {msg.alg!r} is not EdDSA (-8)")
    if msg.protected != protected_header(content_type):
        raise ContentTypeError(
            f"expected content type {str(content_type)!r}, got {msg.content_type!r}"
        )
    if msg.unprotected:
        raise DecodeError("the unprotected header must be empty")
    if not ed25519_verify(public_key.raw, msg.to_be_signed(), msg.signature):
        raise SignatureError("signature does not verify")
    return msg.payload


def verify1_foreign(data: bytes, public_key: PublicKey, external_aad: bytes = b"") -> Sign1:
    """Verify any EdDSA COSE_Sign1 (other headers allowed), for tokens made by other tools."""
    msg = parse_sign1(data)
    if msg.alg != ALG_EDDSA:
        raise SignatureError(f"algorithm {msg.alg!r} is not EdDSA (-8)")
    if not ed25519_verify(public_key.raw, msg.to_be_signed(external_aad), msg.signature):
        raise SignatureError("signature does not verify")
    return msg
