"""The one sans-I/O kernel under every framed protocol of attest.

A protocol here is a *declaration*: its frames (a :class:`FrameSpec` per frame type: the event
class, its wire type number, its fields and their rules) and its transition table (role, state,
direction, event type → next state), bundled as a :class:`Machine`. The kernel supplies
everything else, once, for every protocol:

* the framing: ``uint32be length || deterministic-CBOR array [type, fields...]``, an oversized
  length rejected from the header before the body is buffered (:class:`FrameBuffer`);
* one frame codec driven by the specs (:class:`FrameCodec`): the same field rules judge both
  directions, raising :class:`~attest.errors.LocalProtocolError` for a bad frame *we* build and
  :class:`~attest.errors.RemoteProtocolError` (MALFORMED_FRAME) for one the *peer* sent;
* one :class:`Connection`: bytes in → events out, events in → bytes out, every move checked
  against the table, with one error behaviour for every protocol.

The error behaviour (what the tests check from the tables, for every declared protocol):

* an illegal move we attempt raises LocalProtocolError and changes nothing;
* the peer's garbage (MALFORMED_FRAME), oversized frame (FRAME_TOO_LARGE) or legal frame at the
  wrong time (UNEXPECTED_FRAME) raises RemoteProtocolError and puts the connection in the
  protocol's error state; every later ``next_event`` raises again with the same code, and the
  only thing still allowed is sending the protocol's error frame once (if it has one);
* after a close (the closed state) received bytes are discarded, and EOF yields
  :class:`~attest.protocol.events.ConnectionClosed`; bytes fed after EOF are our bug
  (LocalProtocolError).

Checks happen in a fixed order — framing (length, CBOR, frame shape), then the table, then the
protocol's own guards (e.g. the session's negotiated version) — so a given byte string always
yields the same error code.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

from attest.codec import cbor
from attest.errors import DecodeError, LocalProtocolError, RemoteProtocolError
from attest.protocol.events import NEED_DATA, ConnectionClosed, ErrorCode, NeedData

#: Default (and recommended) largest frame body, in bytes. Equals the codec's message limit.
MAX_FRAME_BYTES: Final = cbor.MAX_MESSAGE_BYTES
#: Frame header: the body length as an unsigned 32-bit big-endian integer.
HEADER_BYTES: Final = 4
#: Largest body length a header can express; the upper bound for ``max_frame_bytes``.
MAX_HEADER_LENGTH: Final = 0xFFFF_FFFF

_HEADER = struct.Struct(">I")
_U64_MAX = (1 << 64) - 1

Rule = Callable[[Any], str | None]


class Direction(enum.Enum):
    """Whether a table row is about an event we send or one we receive."""

    SEND = "send"
    RECV = "recv"


# -- field rules: each returns None if the value is acceptable, else what is wrong with it -----


def uint(v: Any) -> str | None:
    # isinstance, not type(): IntEnum members are ints we build ourselves; bool is excluded.
    ok = isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= _U64_MAX
    return None if ok else "must be an unsigned 64-bit integer"


def bstr(v: Any) -> str | None:
    return None if type(v) is bytes else "must be a byte string"


def exact_bytes(n: int) -> Rule:
    def rule(v: Any) -> str | None:
        return None if type(v) is bytes and len(v) == n else f"must be {n} bytes"

    return rule


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a frame: its attribute name, its rule, and how it crosses the wire."""

    name: str
    rule: Rule
    #: wire value -> attribute value (e.g. a list becomes a tuple), applied before the rule
    from_wire: Callable[[Any], Any] | None = None


def as_tuple(v: Any) -> Any:
    """``from_wire`` of array fields: the attribute holds a tuple."""
    return tuple(v) if type(v) is list else v


@dataclass(frozen=True, slots=True)
class FrameSpec:
    """One frame type of a protocol."""

    cls: type
    #: the first item of the frame's array (stable wire value)
    type_id: int
    #: its name in messages ("HELLO"), as SPEC calls it
    name: str
    fields: tuple[Field, ...] = ()
    #: how many trailing fields are optional: left off the wire when None (never sent as null)
    optional_tail: int = 0


class FrameCodec:
    """Encode and decode the frames of one protocol from its specs (one schema, both ways)."""

    def __init__(self, protocol: str, specs: tuple[FrameSpec, ...], *, label: str = "") -> None:
        self.protocol = protocol
        #: prefix of "frame" in error messages ("link " for the link handshake)
        self.label = label
        self.specs = specs
        self._by_cls = {s.cls: s for s in specs}
        self._by_id = {s.type_id: s for s in specs}
        if len(self._by_cls) != len(specs) or len(self._by_id) != len(specs):
            raise ValueError(f"{protocol}: two frames share a class or a type number")

    def spec(self, cls: type) -> FrameSpec | None:
        return self._by_cls.get(cls)

    def name_of(self, cls: type) -> str:
        spec = self._by_cls.get(cls)
        return spec.name if spec is not None else cls.__name__

    def _problem(self, spec: FrameSpec, event: Any) -> str | None:
        for f in spec.fields:
            why = f.rule(getattr(event, f.name))
            if why is not None:
                return f"{type(event).__name__}.{f.name} {why}"
        return None

    def encode(self, event: Any, *, max_frame_bytes: int = MAX_FRAME_BYTES) -> bytes:
        """Header plus body. Raises LocalProtocolError for a bad field or size."""
        spec = self._by_cls.get(type(event))
        if spec is None:
            raise LocalProtocolError(f"{type(event).__name__} is not a {self.label}frame event")
        why = self._problem(spec, event)
        if why is not None:
            raise LocalProtocolError(why)
        items: list[Any] = [int(spec.type_id)]
        for f in spec.fields:
            value = getattr(event, f.name)
            items.append(int(value) if f.rule is uint else value)
        for _ in range(spec.optional_tail):
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

    def decode(self, body: bytes, *, max_frame_bytes: int = MAX_FRAME_BYTES) -> Any:
        """Parse one frame body into its event. Raises only RemoteProtocolError."""
        try:
            item = cbor.decode(body, max_bytes=max_frame_bytes)
        except DecodeError as exc:
            raise _malformed(f"{self.label}frame body: {exc}") from None
        if type(item) is not list or not item or type(item[0]) is not int:
            raise _malformed(
                f"{self.label}frame body must be an array starting with the frame type"
            )
        spec = self._by_id.get(item[0])
        if spec is None:
            raise _malformed(f"unknown {self.label}frame type {item[0]}")
        values = item[1:]
        n = len(spec.fields)
        if not n - spec.optional_tail <= len(values) <= n:
            raise _malformed(f"{spec.name} frame has {len(values)} fields, expected {n}")
        for i, value in enumerate(values):
            if i >= n - spec.optional_tail and value is None:
                # absent is spelled by leaving it off, never by null
                raise _malformed(f"{spec.name} {spec.fields[i].name} must be left off, not null")
            convert = spec.fields[i].from_wire
            if convert is not None:
                values[i] = convert(value)
        event = spec.cls(*values)
        why = self._problem(spec, event)
        if why is not None:
            raise _malformed(why)
        return event


def _malformed(why: str) -> RemoteProtocolError:
    return RemoteProtocolError(why, error_code=ErrorCode.MALFORMED_FRAME)


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


R = TypeVar("R", bound=Hashable)
S = TypeVar("S", bound=enum.Enum)
#: (our role, our state, direction, event type) -> the state after the move
Key = tuple[Any, Any, Direction, type]


@dataclass(frozen=True)
class Machine(Generic[R, S]):
    """A protocol, declared: its frames, its transition table and its special states."""

    name: str
    codec: FrameCodec
    #: THE protocol: (role, state, direction, event type) -> next state. Absent key = illegal.
    transitions: Mapping[Key, S]
    initial: Mapping[R, S]
    #: the orderly end, and the state after a peer violation (both terminal)
    closed: S
    error: S
    #: the frame a side may still send once after a peer violation (None: no such frame)
    error_frame: type | None = None
    #: the role of the peer (what we receive is from it)
    peer: Mapping[R, R] = field(default_factory=dict)

    def next_state(self, role: R, state: S, direction: Direction, event_type: type) -> S | None:
        """The state after the move, or None if the table does not allow it."""
        return self.transitions.get((role, state, direction, event_type))


class Connection(Generic[R, S]):
    """One side of one connection of a declared protocol. Not thread-safe; holds no I/O.

    Protocols with guards on field values (the session's version negotiation) subclass it and
    override :meth:`_check_received`, :meth:`_check_send` and :meth:`_commit_send`.
    Attributes worth reading: ``our_role``, ``their_role``, ``state``, ``eof_state`` (the state
    EOF arrived in; the closed state means orderly) and ``error`` (the RemoteProtocolError that
    put us in the error state).
    """

    def __init__(
        self, machine: Machine[R, S], role: R, max_frame_bytes: int = MAX_FRAME_BYTES
    ) -> None:
        if type(max_frame_bytes) is not int or not 1 <= max_frame_bytes <= MAX_HEADER_LENGTH:
            raise ValueError(f"max_frame_bytes must be an int in 1..{MAX_HEADER_LENGTH}")
        self.machine = machine
        self.our_role: R = role
        self.their_role: R = machine.peer.get(role, role)
        self.max_frame_bytes: int = max_frame_bytes
        self.eof_state: S | None = None
        self.error: RemoteProtocolError | None = None
        self._state: S = machine.initial[role]
        self._buffer = FrameBuffer(max_frame_bytes)
        self._error_frame_sent = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._role_name(self.our_role)} {self._state.value}>"

    @staticmethod
    def _role_name(role: Any) -> str:
        return str(getattr(role, "value", role))

    @property
    def state(self) -> S:
        """Current state (see the machine's transition table)."""
        return self._state

    @property
    def abrupt_close(self) -> bool:
        """True if EOF arrived before any orderly close, i.e. the peer just hung up."""
        return self.eof_state is not None and self.eof_state is not self.machine.closed

    # -- receiving

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Append bytes read from the transport; ``b""`` means the peer closed its side (EOF).

        The buffer is not bounded here: call ``next_event`` until NEED_DATA before reading more.
        """
        if not data:
            self._buffer.eof = True
            return
        if self._buffer.eof:
            raise LocalProtocolError("received data after EOF")
        if self._state is self.machine.closed or self._state is self.machine.error:
            return  # nothing will ever be parsed again; do not hold the bytes
        self._buffer.feed(data)

    def next_event(self) -> Any | NeedData:
        """Parse at most one frame and return its event, NEED_DATA, or ConnectionClosed.

        Raises RemoteProtocolError (and enters the error state) if the peer broke the protocol,
        and again, with the same code, on every later call.
        """
        m = self.machine
        state = self._state
        if state is m.error:
            assert self.error is not None
            raise RemoteProtocolError(
                f"connection is in ERROR state: {self.error}", error_code=self.error.error_code
            )
        if state is m.closed:
            self._buffer.clear()  # the peer's half of a close race
            if not self._buffer.eof:
                return NEED_DATA
            if self.eof_state is None:
                self.eof_state = m.closed
            return ConnectionClosed()
        try:
            body = self._buffer.next_body()
            if body is None:
                if not self._buffer.eof:
                    return NEED_DATA
                event: Any = ConnectionClosed()
            else:
                event = m.codec.decode(body, max_frame_bytes=self.max_frame_bytes)
            new = m.next_state(self.our_role, state, Direction.RECV, type(event))
            if new is None:
                if isinstance(event, ConnectionClosed):
                    what = "EOF"
                else:
                    what = f"{m.codec.name_of(type(event))} frame"
                raise RemoteProtocolError(
                    f"unexpected {what} from the {self._role_name(self.their_role)} in state "
                    f"{state.value}",
                    error_code=ErrorCode.UNEXPECTED_FRAME,
                )
            self._check_received(event)
        except RemoteProtocolError as exc:
            self._state = m.error
            self.error = exc
            self._buffer.clear()
            raise
        if isinstance(event, ConnectionClosed):
            self.eof_state = state
        self._state = new
        return event

    def _check_received(self, event: Any) -> None:
        """The protocol's guards on a received event the table allowed (RemoteProtocolError)."""

    # -- sending

    def send(self, event: Any) -> bytes:
        """Validate our move, advance the state and return the frame to write.

        Raises LocalProtocolError, leaving the state unchanged, if the move or the event is bad.
        """
        m = self.machine
        if m.codec.spec(type(event)) is None:
            raise LocalProtocolError(f"{type(event).__name__} cannot be sent")
        state = self._state
        new = m.next_state(self.our_role, state, Direction.SEND, type(event))
        if new is None:
            raise LocalProtocolError(
                f"{self._role_name(self.our_role)} cannot send {type(event).__name__} in state "
                f"{state.value}"
            )
        if state is m.error and self._error_frame_sent:
            raise LocalProtocolError("the ERROR frame has already been sent")
        self._check_send(event)
        data = m.codec.encode(event, max_frame_bytes=self.max_frame_bytes)
        # -- commit: nothing below can fail
        self._commit_send(event)
        if state is m.error:
            self._error_frame_sent = True
        self._state = new
        return data

    def _check_send(self, event: Any) -> None:
        """The protocol's guards on an event we send (LocalProtocolError)."""

    def _commit_send(self, event: Any) -> None:
        """What the protocol remembers of an event once it is sent (cannot fail)."""
