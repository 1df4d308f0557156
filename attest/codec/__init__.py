"""Wire codec: deterministic CBOR (RFC 8949 §4.2.1) and COSE_Sign1 (RFC 9052)."""

from attest.codec.cbor import MAX_DEPTH, MAX_MESSAGE_BYTES, decode, encode
from attest.codec.cose import ContentType, Sign1, sign1, verify1

__all__ = [
    "MAX_DEPTH",
    "MAX_MESSAGE_BYTES",
    "ContentType",
    "Sign1",
    "decode",
    "encode",
    "sign1",
    "verify1",
]
