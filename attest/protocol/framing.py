"""Frame codec: ``uint32be length || deterministic-CBOR array``, and the field rules of each frame.

Kept apart from the state machine so that "is this a well-formed frame?" (MALFORMED_FRAME,
FRAME_TOO_LARGE) is answered before, and independently of, "is this frame allowed now?"
(UNEXPECTED_FRAME). Nothing here knows about roles or states.

The same field rules judge both directions: :func:`encode_frame` raises
:class:`~attest.errors.LocalProtocolError` (our bug) and :func:`decode_body` raises
:class:`~attest.errors.RemoteProtocolError` (peer's fault), from one schema table.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final

from attest.codec import cbor
from attest.errors import DecodeError, LocalProtocolError, RemoteProtocolError
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
    ResultFrame,
)

#: Default (and recommended) largest frame body, in bytes. Equals the codec's message limit.
MAX_FRAME_BYTES: Final = cbor.MAX_MESSAGE_BYTES
#: Frame header: the body length as an unsigned 32-bit big-endian integer.
HEADER_BYTES: Final = 4
#: Largest body length a header can express; the upper bound for ``max_frame_bytes``.
MAX_HEADER_LENGTH: Final = 0xFFFF_FFFF
#: Bounds on list and text fields (byte strings are bounded by the frame size alone).
MAX_VERSIONS: Final = 8
MAX_ERROR_TEXT: Final = 256

_HEADER = struct.Struct(">I")
_KNOWN_CODES = frozenset(int(c) for c in ErrorCode)
_U64_MAX = (1 << 64) - 1


# -- field rules: each returns None if the value is acceptable, else what is wrong with it


def _uint(v: Any) -> str | None:
    # isinstance, not type(): ErrorCode members are ints we build ourselves; bool is excluded.
    ok = isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= _U64_MAX
    return None if ok else "must be an unsigned 64-bit integer"


def _bstr(v: Any) -> str | None:
    return None if type(v) is bytes else "must be a byte string"


def _versions(v: Any) -> str | None:
    if type(v) is not tuple or not 1 <= len(v) <= MAX_VERSIONS:
        return f"must be a tuple of 1..{MAX_VERSIONS} versions"
    if any(_uint(x) is not None for x in v):
        return "must hold unsigned integers only"
    return None


def _text(v: Any) -> str | None:
    ok = type(v) is str and len(v) <= MAX_ERROR_TEXT
    return None if ok else f"must be a text string of at most {MAX_ERROR_TEXT} characters"


def _grant(v: Any) -> str | None:
    # Offline Licensing: absent (None) or (license: bstr, delegation: bstr | None)
    if v is None:
        return None
    ok = (
        type(v) is tuple
        and len(v) == 2
        and type(v[0]) is bytes
        and type(v[1]) in (bytes, type(None))
    )
    return None if ok else "must be [license: bstr, delegation: bstr / null]"


_Rule = Callable[[Any], str | None]

#: Field names in wire order, with their rule, per frame event class.
SCHEMA: Final[dict[type[FrameEvent], tuple[tuple[str, _Rule], ...]]] = {
    Hello: (("versions", _versions), ("device_cert", _bstr), ("manufacturer_cert", _bstr)),
    ChallengeFrame: (("version", _uint), ("verifier_cert", _bstr), ("challenge", _bstr)),
    EvidenceFrame: (("evidence", _bstr),),
    ResultFrame: (("result", _bstr), ("grant", _grant)),
    Next: (),
    Bye: (),
    Error: (("code", _uint), ("text", _text)),
}

#: how many trailing fields of a frame are optional: left off the wire when None
OPTIONAL_TAIL: Final[dict[type[FrameEvent], int]] = {ResultFrame: 1}

_TYPE_OF: Final[dict[type[FrameEvent], FrameType]] = {
    cls: FrameType(i + 1) for i, cls in enumerate(FRAME_EVENT_TYPES)
}


def frame_type(event_type: type[FrameEvent]) -> FrameType:
    """The wire frame type of an event class (for messages and tests)."""
    return _TYPE_OF[event_type]


def _problem(event: FrameEvent) -> str | None:
    for name, rule in SCHEMA[type(event)]:
        why = rule(getattr(event, name))
        if why is not None:
            return f"{type(event).__name__}.{name} {why}"
    return None


def encode_frame(event: FrameEvent, *, max_frame_bytes: int = MAX_FRAME_BYTES) -> bytes:
    """Header plus body for ``event``. Raises LocalProtocolError if a field or the size is bad."""
    if type(event) not in SCHEMA:
        raise LocalProtocolError(f"{type(event).__name__} is not a frame event")
    why = _problem(event)
    if why is not None:
        raise LocalProtocolError(why)
    items: list[Any] = [int(_TYPE_OF[type(event)])]
    for name, rule in SCHEMA[type(event)]:
        value = getattr(event, name)
        items.append(int(value) if rule is _uint else value)
    for _ in range(OPTIONAL_TAIL.get(type(event), 0)):
        if items[-1] is not None:
            break
        items.pop()  # an absent optional trailing field is not sent
    body = cbor.encode(items)
    if len(body) > max_frame_bytes:
        raise LocalProtocolError(
            f"{type(event).__name__} frame of {len(body)} bytes exceeds max_frame_bytes "
            f"({max_frame_bytes})"
        )
    return _HEADER.pack(len(body)) + body


def _malformed(why: str) -> RemoteProtocolError:
    return RemoteProtocolError(why, error_code=ErrorCode.MALFORMED_FRAME)


def decode_body(body: bytes, *, max_frame_bytes: int = MAX_FRAME_BYTES) -> FrameEvent:
    """Parse one frame body into its event. Raises only RemoteProtocolError (MALFORMED_FRAME)."""
    try:
        item = cbor.decode(body, max_bytes=max_frame_bytes)
    except DecodeError as exc:
        raise _malformed(f"frame body: {exc}") from None
    if type(item) is not list or not item or type(item[0]) is not int:
        raise _malformed("frame body must be an array starting with the frame type")
    if not 1 <= item[0] <= len(FRAME_EVENT_TYPES):
        raise _malformed(f"unknown frame type {item[0]}")
    cls = FRAME_EVENT_TYPES[item[0] - 1]
    schema = SCHEMA[cls]
    values = item[1:]
    optional = OPTIONAL_TAIL.get(cls, 0)
    if not len(schema) - optional <= len(values) <= len(schema):
        raise _malformed(
            f"{FrameType(item[0]).name} frame has {len(values)} fields, expected {len(schema)}"
        )
    if cls is Hello and type(values[0]) is list:
        values[0] = tuple(values[0])
    if cls is ResultFrame and len(values) == 2:
        if values[1] is None:  # absent is spelled by leaving it off, never by null
            raise _malformed("RESULT grant must be left off, not null")
        if type(values[1]) is list:
            values[1] = tuple(values[1])
    event = cls(*values)
    why = _problem(event)
    if why is not None:
        raise _malformed(why)
    if isinstance(event, Error) and event.code in _KNOWN_CODES:
        event = Error(ErrorCode(event.code), event.text)
    return event


class FrameBuffer:
    """Received bytes not yet cut into frames, plus whether the peer has sent EOF.

    The length header is judged as soon as its four bytes are present, so an oversized or zero
    length is rejected without waiting for (or holding) a body that will never be accepted.
    """

    __slots__ = ("_buf", "eof", "max_frame_bytes")

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()
        self.eof = False
        self.max_frame_bytes = max_frame_bytes

    def __len__(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes."""
        self._buf += data

    def clear(self) -> None:
        """Drop everything buffered (used once the connection no longer reads frames)."""
        self._buf.clear()

    def next_body(self) -> bytes | None:
        """Cut off and return the next complete body, or None if more bytes are needed.

        Raises RemoteProtocolError for a zero or oversized length, and for a partial frame
        (header or body) left in the buffer at EOF.
        """
        buf = self._buf
        if len(buf) < HEADER_BYTES:
            if self.eof and buf:
                raise _malformed("truncated frame (EOF inside the length header)")
            return None
        (length,) = _HEADER.unpack_from(buf)
        if length == 0:
            raise _malformed("zero-length frame")
        if length > self.max_frame_bytes:
            raise RemoteProtocolError(
                f"frame length {length} exceeds the limit of {self.max_frame_bytes} bytes",
                error_code=ErrorCode.FRAME_TOO_LARGE,
            )
        end = HEADER_BYTES + length
        if len(buf) < end:
            if self.eof:
                raise _malformed("truncated frame (EOF inside the body)")
            return None
        body = bytes(buf[HEADER_BYTES:end])
        del buf[:end]
        return body
