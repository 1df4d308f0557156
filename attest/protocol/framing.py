"""The session protocol's frames: each frame type's fields and rules, as one declaration.

Everything about framing itself (length header, CBOR body, the schema-driven codec) is the
kernel's (:mod:`attest.protocol.kernel`); this module only declares the session's frames (the
table of SPEC §7.3) and keeps the names other modules use. Nothing here knows about roles or
states: "is this a well-formed frame?" (MALFORMED_FRAME, FRAME_TOO_LARGE) is answered before,
and independently of, "is this frame allowed now?" (UNEXPECTED_FRAME).
"""

from __future__ import annotations

from typing import Any, Final

from attest.protocol.events import (
    FRAME_EVENT_TYPES,
    Bye,
    ChallengeFrame,
    Error,
    ErrorCode,
    EvidenceFrame,
    FrameEvent,
    FrameType,
    Hello,
    Next,
    Ping,
    Pong,
    ResultFrame,
)
from attest.protocol.kernel import (
    HEADER_BYTES,
    MAX_FRAME_BYTES,
    MAX_HEADER_LENGTH,
    Field,
    FrameBuffer,
    FrameCodec,
    FrameSpec,
    as_tuple,
    bstr,
    exact_bytes,
    uint,
)

__all__ = [
    "HEADER_BYTES",
    "MAX_ERROR_TEXT",
    "MAX_FRAME_BYTES",
    "MAX_HEADER_LENGTH",
    "MAX_VERSIONS",
    "PING_NONCE_BYTES",
    "SESSION_FRAMES",
    "FrameBuffer",
    "decode_body",
    "encode_frame",
    "frame_type",
]

#: Bounds on list and text fields (byte strings are bounded by the frame size alone).
MAX_VERSIONS: Final = 8
MAX_ERROR_TEXT: Final = 256
#: Bytes of a PING nonce.
PING_NONCE_BYTES: Final = 32

_KNOWN_CODES = frozenset(int(c) for c in ErrorCode)


def _versions(v: Any) -> str | None:
    if type(v) is not tuple or not 1 <= len(v) <= MAX_VERSIONS:
        return f"must be a tuple of 1..{MAX_VERSIONS} versions"
    if any(uint(x) is not None for x in v):
        return "must hold unsigned integers only"
    return None


def _text(v: Any) -> str | None:
    ok = type(v) is str and len(v) <= MAX_ERROR_TEXT
    return None if ok else f"must be a text string of at most {MAX_ERROR_TEXT} characters"


def _grant(v: Any) -> str | None:
    # a mechanism's grant (a renewed licence): absent (None) or (token: bstr, companion / None)
    if v is None:
        return None
    ok = (
        type(v) is tuple
        and len(v) == 2
        and type(v[0]) is bytes
        and type(v[1]) in (bytes, type(None))
    )
    return None if ok else "must be [license: bstr, delegation: bstr / null]"


def _error_code(v: Any) -> Any:
    """A known ERROR code becomes its ErrorCode; unknown ones from newer peers stay ints."""
    return ErrorCode(v) if type(v) is int and v in _KNOWN_CODES else v


#: The session's frames (SPEC §7.3), in frame-type order.
SESSION_FRAMES: Final[tuple[FrameSpec, ...]] = (
    FrameSpec(
        Hello,
        FrameType.HELLO,
        "HELLO",
        (
            Field("versions", _versions, as_tuple),
            Field("device_cert", bstr),
            Field("manufacturer_cert", bstr),
        ),
    ),
    FrameSpec(
        ChallengeFrame,
        FrameType.CHALLENGE,
        "CHALLENGE",
        (Field("version", uint), Field("verifier_cert", bstr), Field("challenge", bstr)),
    ),
    FrameSpec(EvidenceFrame, FrameType.EVIDENCE, "EVIDENCE", (Field("evidence", bstr),)),
    FrameSpec(
        ResultFrame,
        FrameType.RESULT,
        "RESULT",
        (Field("result", bstr), Field("grant", _grant, as_tuple)),
        optional_tail=1,
    ),
    FrameSpec(Next, FrameType.NEXT, "NEXT"),
    FrameSpec(Bye, FrameType.BYE, "BYE"),
    FrameSpec(
        Error,
        FrameType.ERROR,
        "ERROR",
        (Field("code", uint, _error_code), Field("text", _text)),
    ),
    FrameSpec(Ping, FrameType.PING, "PING", (Field("nonce", exact_bytes(PING_NONCE_BYTES)),)),
    FrameSpec(Pong, FrameType.PONG, "PONG", (Field("response", bstr),)),
)
CODEC: Final = FrameCodec("session", SESSION_FRAMES)
#: Field names in wire order, with their rule, per frame event class.
SCHEMA: Final[dict[type[FrameEvent], tuple[tuple[str, Any], ...]]] = {
    spec.cls: tuple((f.name, f.rule) for f in spec.fields) for spec in SESSION_FRAMES
}
assert tuple(s.cls for s in SESSION_FRAMES) == FRAME_EVENT_TYPES


def frame_type(event_type: type[FrameEvent]) -> FrameType:
    """The wire frame type of an event class (for messages and tests)."""
    spec = CODEC.spec(event_type)
    assert spec is not None
    return FrameType(spec.type_id)


def encode_frame(event: FrameEvent, *, max_frame_bytes: int = MAX_FRAME_BYTES) -> bytes:
    """Header plus body for ``event``. Raises LocalProtocolError if a field or the size is bad."""
    return CODEC.encode(event, max_frame_bytes=max_frame_bytes)


def decode_body(body: bytes, *, max_frame_bytes: int = MAX_FRAME_BYTES) -> FrameEvent:
    """Parse one frame body into its event. Raises only RemoteProtocolError (MALFORMED_FRAME)."""
    event: FrameEvent = CODEC.decode(body, max_frame_bytes=max_frame_bytes)
    return event
