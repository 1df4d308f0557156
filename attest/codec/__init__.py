"""Wire codec: deterministic CBOR (RFC 8949 §4.2.1) and COSE_Sign1 (RFC 9052).

The codec knows no message types; content types are strings chosen by the message layer
(:mod:`attest.messages.content`) and by each mechanism.
"""

from attest import speed
from attest.codec.cbor import MAX_DEPTH, MAX_MESSAGE_BYTES, decode, encode
from attest.codec.cose import Sign1, sign1, verify1

if speed.FAST:  # the one switch (attest/speed.py)
    from attest.codec import _fast

    _fast.install()

__all__ = [
    "MAX_DEPTH",
    "MAX_MESSAGE_BYTES",
    "Sign1",
    "decode",
    "encode",
    "sign1",
    "verify1",
]
