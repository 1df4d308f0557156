"""COSE_Sign1 (RFC 9052 §4.2) with EdDSA/Ed25519 and one content type per message type.

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

The codec knows no message types: content types are plain strings chosen by the message layer
(:mod:`attest.messages.content`) and by each mechanism for its own messages. This module is the
reference code; :mod:`attest.codec._fast` shortcuts it for tokens of our profile (see
:mod:`attest.speed`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from attest.codec.cbor import MAX_MESSAGE_BYTES, decode, encode
from attest.errors import ContentTypeError, DecodeError, SignatureError
from attest.keys import PublicKey, Signer, ed25519_verify

COSE_SIGN1_TAG = 18
TAG18 = b"\xd2"  # CBOR head of tag 18: major type 6, value 18
ALG_EDDSA = -8
HEADER_ALG = 1
HEADER_CONTENT_TYPE = 3


@cache
def protected_header(content_type: str) -> bytes:
    """The exact protected-header bytes for a message type (a constant per type)."""
    return encode({HEADER_ALG: ALG_EDDSA, HEADER_CONTENT_TYPE: str(content_type)})


def register_content_type(content_type: str) -> bytes:
    """Declare a content type of our profile (message classes do, when they are defined).

    Returns its protected header. Only registered types take the fast path of
    :func:`parse_sign1`; every type is parsed correctly either way.
    """
    protected = protected_header(content_type)
    if _register is not None:
        _register(str(content_type), protected)
    return protected


def sig_structure(protected: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    """The ``Sig_structure`` for COSE_Sign1 (RFC 9052 §4.4): what Ed25519 actually signs."""
    return _sig_structure(protected, payload, external_aad)


def _plain_sig_structure(protected: bytes, payload: bytes, external_aad: bytes) -> bytes:
    return encode(["Signature1", protected, external_aad, payload])


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


def sign1(key: Signer, content_type: str, payload: bytes) -> bytes:
    """Sign ``payload`` (already deterministic CBOR) as a tagged COSE_Sign1 of ``content_type``."""
    protected = protected_header(content_type)
    signature = key.sign(sig_structure(protected, payload))
    return _envelope(protected, payload, signature)


def _plain_envelope(protected: bytes, payload: bytes, signature: bytes) -> bytes:
    return TAG18 + encode([protected, {}, payload, signature])


def parse_sign1(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Sign1:
    """Strictly parse a tagged COSE_Sign1 without verifying it."""
    if _profile is not None and type(data) is bytes and len(data) <= max_bytes:
        fast = _profile(data)
        if fast is not None:
            return fast
    return parse_general(data, max_bytes=max_bytes)


def parse_general(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Sign1:
    """The strict parser for any COSE_Sign1 (any header contents): the reference code."""
    if type(data) is not bytes:
        raise DecodeError("COSE_Sign1 must be bytes")
    if len(data) > max_bytes:
        raise DecodeError(f"COSE_Sign1 of {len(data)} bytes exceeds the limit of {max_bytes}")
    if data[:1] != TAG18:
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
    msg = Sign1(
        protected=protected,
        unprotected=unprotected,
        payload=payload,
        signature=signature,
        alg=header.get(HEADER_ALG),
        content_type=header.get(HEADER_CONTENT_TYPE),
    )
    return msg


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


# -- the fast-path hooks: the reference functions above unless attest.codec._fast is installed
# (by attest/codec/__init__.py, when attest.speed.FAST)
_sig_structure: Callable[[bytes, bytes, bytes], bytes] = _plain_sig_structure
_envelope: Callable[[bytes, bytes, bytes], bytes] = _plain_envelope
#: parses a token of a registered content type, or returns None to hand it to parse_general
_profile: Callable[[bytes], Sign1 | None] | None = None
#: learns the envelope of a registered content type
_register: Callable[[str, bytes], None] | None = None
