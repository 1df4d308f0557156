"""Fast path of :mod:`attest.codec.cose` for tokens of our own profile (see :mod:`attest.speed`).

Every token a node receives is a COSE_Sign1 of a content type we registered, laid out exactly
as ``sign1`` writes it: tag 18, an array of four, the constant protected header of its type,
the empty unprotected map, the payload as one byte string and a 64-byte signature. For such
bytes the general parser (cbor2 decode, re-encode, compare, header decode) can only ever return
one :class:`~attest.codec.cose.Sign1`, so this module reads it off the bytes directly; any other
input, valid or not, goes to :func:`attest.codec.cose.parse_general`, which alone decides what
is malformed. ``tests/test_fastpaths.py`` checks the two against each other.

Writing tokens and Sig_structures is likewise assembled from constant prefixes and length
heads (a generic CBOR encode of the array costs more than everything else around a signature
check); the bytes are those of the reference encoder, also checked differentially.
"""

from __future__ import annotations

from attest.codec import cose
from attest.codec.cbor import MAX_MESSAGE_BYTES, encode
from attest.codec.cose import ALG_EDDSA, TAG18, Sign1

#: deterministic CBOR heads of byte strings of 0..255 bytes
_SHORT_HEADS = tuple(bytes((0x40 + n,)) if n < 24 else bytes((0x58, n)) for n in range(256))
#: deterministic CBOR of the array head and the context string "Signature1"
_SIG1_PREFIX = b"\x84\x6aSignature1"
_SIG_HEAD = b"\x58\x40"  # a 64-byte byte string

#: token prefix ``d2 84 58 nn <protected> a0`` -> (protected header, content type)
_ENVELOPES: dict[bytes, tuple[bytes, str]] = {}
#: Sig_structure up to the payload head, per registered protected header (empty aad)
_SIG1_PREFIXES: dict[bytes, bytes] = {}
#: the byte after ``d2 84 58``: lengths of the registered protected headers (24..255 bytes)
_PROTECTED_LENGTHS: set[int] = set()


def bstr_head(n: int) -> bytes:
    """The deterministic CBOR head of a byte string of ``n`` bytes (major type 2)."""
    if n < 0x100:
        return _SHORT_HEADS[n]
    if n < 0x10000:
        return b"\x59" + n.to_bytes(2, "big")
    if n < 0x100000000:
        return b"\x5a" + n.to_bytes(4, "big")
    return b"\x5b" + n.to_bytes(8, "big")


def register(content_type: str, protected: bytes) -> None:
    """Learn the envelope of a registered content type (its protected header is 24..255 bytes
    for every media-type name of a sensible length; others simply keep the general path)."""
    if not 24 <= len(protected) <= 255:
        return
    _ENVELOPES[TAG18 + b"\x84" + bstr_head(len(protected)) + protected + b"\xa0"] = (
        protected,
        content_type,
    )
    _SIG1_PREFIXES[protected] = _SIG1_PREFIX + bstr_head(len(protected)) + protected + b"\x40"
    _PROTECTED_LENGTHS.add(len(protected))


def sig_structure(protected: bytes, payload: bytes, external_aad: bytes) -> bytes:
    """``encode(["Signature1", protected, external_aad, payload])``, assembled directly."""
    if not (type(protected) is type(payload) is type(external_aad) is bytes):
        return encode(["Signature1", protected, external_aad, payload])
    prefix = _SIG1_PREFIXES.get(protected) if not external_aad else None
    if prefix is None:
        prefix = b"".join(
            (
                _SIG1_PREFIX,
                bstr_head(len(protected)),
                protected,
                bstr_head(len(external_aad)),
                external_aad,
            )
        )
    return prefix + bstr_head(len(payload)) + payload


def envelope(protected: bytes, payload: bytes, signature: bytes) -> bytes:
    """``TAG18 + encode([protected, {}, payload, signature])`` of three byte strings."""
    if not (type(protected) is type(payload) is type(signature) is bytes):
        return TAG18 + encode([protected, {}, payload, signature])
    return b"".join(
        (
            TAG18 + b"\x84",
            bstr_head(len(protected)),
            protected,
            b"\xa0",
            bstr_head(len(payload)),
            payload,
            bstr_head(len(signature)),
            signature,
        )
    )


def parse_profile(data: bytes) -> Sign1 | None:
    """The :class:`Sign1` of a token exactly in our profile, else None (see the module doc).

    A token that starts with a registered envelope prefix, carries its payload as one byte
    string with a shortest-form head and ends with a 64-byte signature is exactly what the
    general parser accepts for those bytes (the payload is not decoded at this layer either).
    """
    if not 4 <= len(data) <= MAX_MESSAGE_BYTES or data[2] != 0x58:
        return None  # (the size limit is the general parser's too: never accept more, §4.3)
    if data[3] not in _PROTECTED_LENGTHS:
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
    # Building the frozen Sign1 through its slot descriptors is what its generated __init__
    # does (one object.__setattr__ per field), without the call overhead: this runs per token.
    msg = _new(Sign1)
    _set_protected(msg, protected)
    _set_unprotected(msg, {})
    _set_payload(msg, data[start:end])
    _set_signature(msg, data[end + 2 :])
    _set_alg(msg, ALG_EDDSA)
    _set_content_type(msg, content_type)
    return msg


_new = object.__new__
_set_protected = Sign1.protected.__set__  # type: ignore[attr-defined,misc,unused-ignore]
_set_unprotected = Sign1.unprotected.__set__  # type: ignore[attr-defined,misc,unused-ignore]
_set_payload = Sign1.payload.__set__  # type: ignore[attr-defined,misc,unused-ignore]
_set_signature = Sign1.signature.__set__  # type: ignore[attr-defined,misc,unused-ignore]
_set_alg = Sign1.alg.__set__  # type: ignore[attr-defined,misc,unused-ignore]
_set_content_type = Sign1.content_type.__set__  # type: ignore[attr-defined,misc,unused-ignore]


def install() -> None:
    """Put the fast paths in place in :mod:`attest.codec.cose` (see :mod:`attest.speed`)."""
    cose._sig_structure = sig_structure
    cose._envelope = envelope
    cose._profile = parse_profile
    cose._register = register
