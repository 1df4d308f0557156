"""The h11-style connection object: bytes in → events out, events in → bytes out.

See :mod:`attest.protocol.machine` for the theory of operation. This module only wires the
frame buffer, the frame codec and the transition table together, and applies the two guards
that depend on earlier frames (the negotiated version).
"""

from __future__ import annotations

from attest.errors import LocalProtocolError, RemoteProtocolError
from attest.protocol.events import (
    NEED_DATA,
    ChallengeFrame,
    ConnectionClosed,
    Error,
    ErrorCode,
    Event,
    FrameEvent,
    Hello,
    NeedData,
)
from attest.protocol.framing import (
    MAX_ERROR_TEXT,
    MAX_FRAME_BYTES,
    MAX_HEADER_LENGTH,
    SCHEMA,
    FrameBuffer,
    decode_body,
    encode_frame,
    frame_type,
)
from attest.protocol.machine import INITIAL, Direction, Role, State, next_state


class Connection:
    """One side of one attestation session. Not thread-safe; holds no I/O resources.

    Attributes worth reading: ``our_role``, ``their_role``, ``state``, ``version`` (fixed by the
    first CHALLENGE), ``offered_versions`` (from HELLO), ``eof_state`` (the state EOF arrived in;
    ``CLOSED`` means orderly, an ``AWAIT_*`` state means the peer vanished owing us a frame) and
    ``error`` (the RemoteProtocolError that put us in ERROR).
    """

    def __init__(self, role: Role, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        if type(max_frame_bytes) is not int or not 1 <= max_frame_bytes <= MAX_HEADER_LENGTH:
            raise ValueError(f"max_frame_bytes must be an int in 1..{MAX_HEADER_LENGTH}")
        self.our_role: Role = role
        self.their_role: Role = role.peer
        self.max_frame_bytes: int = max_frame_bytes
        self.version: int | None = None
        self.offered_versions: tuple[int, ...] | None = None
        self.eof_state: State | None = None
        self.error: RemoteProtocolError | None = None
        self._state: State = INITIAL[role]
        self._buffer = FrameBuffer(max_frame_bytes)
        self._error_frame_sent = False

    def __repr__(self) -> str:
        return f"<Connection {self.our_role.value} {self._state.value}>"

    @property
    def state(self) -> State:
        """Current state (see :data:`attest.protocol.machine.TRANSITIONS`)."""
        return self._state

    @property
    def abrupt_close(self) -> bool:
        """True if EOF arrived before any BYE/ERROR frame, i.e. the peer just hung up."""
        return self.eof_state is not None and self.eof_state is not State.CLOSED

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
        if self._state is State.CLOSED or self._state is State.ERROR:
            return  # nothing will ever be parsed again; do not hold the bytes
        self._buffer.feed(data)

    def next_event(self) -> Event | NeedData:
        """Parse at most one frame and return its event, NEED_DATA, or ConnectionClosed.

        Raises RemoteProtocolError (and enters ERROR) if the peer broke the protocol, and again
        on every later call.
        """
        state = self._state
        if state is State.ERROR:
            assert self.error is not None
            raise RemoteProtocolError(
                f"connection is in ERROR state: {self.error}", error_code=self.error.error_code
            )
        if state is State.CLOSED:
            self._buffer.clear()  # the peer's half of a close race; see machine docstring
            if not self._buffer.eof:
                return NEED_DATA
            if self.eof_state is None:
                self.eof_state = State.CLOSED
            return ConnectionClosed()
        try:
            body = self._buffer.next_body()
            if body is None:
                if not self._buffer.eof:
                    return NEED_DATA
                event: Event = ConnectionClosed()
            else:
                event = decode_body(body, max_frame_bytes=self.max_frame_bytes)
            new = next_state(self.our_role, state, Direction.RECV, type(event))
            if new is None:
                if isinstance(event, ConnectionClosed):
                    what = "EOF"
                else:
                    what = f"{frame_type(type(event)).name} frame"
                raise RemoteProtocolError(
                    f"unexpected {what} from the {self.their_role.value} in state {state.value}",
                    error_code=ErrorCode.UNEXPECTED_FRAME,
                )
            self._check_received(event)
        except RemoteProtocolError as exc:
            self._state = State.ERROR
            self.error = exc
            self._buffer.clear()
            raise
        if isinstance(event, ConnectionClosed):
            self.eof_state = state
        self._state = new
        return event

    def _check_received(self, event: Event) -> None:
        if isinstance(event, Hello):
            self.offered_versions = event.versions
        elif isinstance(event, ChallengeFrame):
            offered = self.offered_versions or ()
            if event.version not in offered or self.version not in (None, event.version):
                raise RemoteProtocolError(
                    f"CHALLENGE uses version {event.version}; offered {list(offered)}, "
                    f"negotiated {self.version}",
                    error_code=ErrorCode.UNSUPPORTED_VERSION,
                )
            self.version = event.version

    # -- sending

    def send(self, event: FrameEvent) -> bytes:
        """Validate our move, advance the state and return the frame to write.

        Raises LocalProtocolError, leaving the state unchanged, if the move or the event is bad.
        """
        if type(event) not in SCHEMA:
            raise LocalProtocolError(f"{type(event).__name__} cannot be sent")
        state = self._state
        new = next_state(self.our_role, state, Direction.SEND, type(event))
        if new is None:
            raise LocalProtocolError(
                f"{self.our_role.value} cannot send {type(event).__name__} in state {state.value}"
            )
        if state is State.ERROR and self._error_frame_sent:
            raise LocalProtocolError("the ERROR frame has already been sent")
        if isinstance(event, ChallengeFrame):
            offered = self.offered_versions or ()
            if event.version not in offered or self.version not in (None, event.version):
                raise LocalProtocolError(
                    f"version {event.version} was not offered ({list(offered)}) or differs "
                    f"from the negotiated version {self.version}"
                )
        data = encode_frame(event, max_frame_bytes=self.max_frame_bytes)
        # -- commit: nothing below can fail
        if isinstance(event, Hello):
            self.offered_versions = event.versions
        elif isinstance(event, ChallengeFrame):
            self.version = event.version
        if state is State.ERROR:
            self._error_frame_sent = True
        self._state = new
        return data

    def error_frame_for(self, exc: RemoteProtocolError) -> bytes | None:
        """The ERROR frame telling the peer why we gave up, or None if it cannot be sent now.

        None means: we are not in ERROR (nothing to report) or the frame was already sent.
        """
        if self._state is not State.ERROR or self._error_frame_sent:
            return None
        return self.send(Error(exc.error_code, str(exc)[:MAX_ERROR_TEXT]))
