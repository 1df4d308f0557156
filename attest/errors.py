"""Exception types.

Every failure the library can report on untrusted input is one of these, so callers can tell
"the peer sent garbage" apart from "we have a bug". Decoders never let a foreign exception
(``ValueError``, ``KeyError``, ``cbor2`` errors ...) escape on bad bytes.
"""

from __future__ import annotations


class AttestError(Exception):
    """Base class of every error this package raises on purpose."""


class DecodeError(AttestError):
    """Bytes are not a well-formed, deterministic, in-limits encoding of the expected message."""


class SignatureError(AttestError):
    """A COSE_Sign1 signature does not verify under the given key and content type."""


class ContentTypeError(AttestError):
    """A signed object carries a content type other than the one the caller expected."""


class CertificateError(AttestError):
    """A certificate does not chain to the trust anchors, or is expired or malformed."""


class ProtocolError(AttestError):
    """A peer broke the session protocol: illegal transition, bad frame, wrong version."""


class LocalProtocolError(ProtocolError):
    """*We* tried to do something the protocol state machine does not allow (a caller bug)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow at this point.

    ``error_code`` is the wire ERROR code to report back to the peer (an
    ``attest.protocol.ErrorCode`` value; a plain int here so this module imports nothing).
    The default, 1, is MALFORMED_FRAME.
    """

    def __init__(self, *args: object, error_code: int = 1) -> None:
        super().__init__(*args)
        self.error_code = error_code


class StoreError(AttestError):
    """The persistent store refused an operation (conflict, corruption, closed)."""


class ConfigError(AttestError):
    """A configuration file or setting is invalid."""


class ChipRefusal(AttestError):
    """A chip refused a message (challenge, result, license ...); ``reason`` names the check."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
