"""The session's h11-style connection object: bytes in → events out, events in → bytes out.

See :mod:`attest.protocol.machine` for the theory of operation. Everything but the two guards
that depend on earlier frames (the negotiated version) is the kernel's
(:class:`attest.protocol.kernel.Connection`), shared with every other framed protocol.
"""

from __future__ import annotations

from typing import Any

from attest.errors import LocalProtocolError, RemoteProtocolError
from attest.protocol import kernel
from attest.protocol.events import (
    ChallengeFrame,
    Error,
    ErrorCode,
    Event,
    FrameEvent,
    Hello,
    NeedData,
    Ping,
    ResultFrame,
)
from attest.protocol.framing import MAX_ERROR_TEXT, MAX_FRAME_BYTES
from attest.protocol.machine import MAX_PINGS_PER_ROUND, SESSION, Role, State


class Connection(kernel.Connection[Role, State]):
    """One side of one attestation session. Not thread-safe; holds no I/O resources.

    Attributes worth reading: ``our_role``, ``their_role``, ``state``, ``version`` (fixed by the
    first CHALLENGE), ``offered_versions`` (from HELLO), ``pings`` (PINGs of this round),
    ``eof_state`` (the state EOF arrived in; ``CLOSED`` means orderly, an ``AWAIT_*`` state means
    the peer vanished owing us a frame) and ``error`` (the RemoteProtocolError that put us in
    ERROR).
    """

    def __init__(self, role: Role, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        super().__init__(SESSION, role, max_frame_bytes)
        self.version: int | None = None
        self.offered_versions: tuple[int, ...] | None = None
        #: PINGs sent or received in the current round (reset by RESULT)
        self.pings: int = 0

    def next_event(self) -> Event | NeedData:
        event: Event | NeedData = super().next_event()
        return event

    def send(self, event: FrameEvent) -> bytes:
        return super().send(event)

    def _check_received(self, event: Any) -> None:
        if isinstance(event, Ping):
            if self.pings >= MAX_PINGS_PER_ROUND:
                raise RemoteProtocolError(
                    f"more than {MAX_PINGS_PER_ROUND} PINGs in one round",
                    error_code=ErrorCode.UNEXPECTED_FRAME,
                )
            self.pings += 1
        elif isinstance(event, ResultFrame):
            self.pings = 0
        elif isinstance(event, Hello):
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

    def _check_send(self, event: Any) -> None:
        if isinstance(event, Ping) and self.pings >= MAX_PINGS_PER_ROUND:
            raise LocalProtocolError(f"more than {MAX_PINGS_PER_ROUND} PINGs in one round")
        if isinstance(event, ChallengeFrame):
            offered = self.offered_versions or ()
            if event.version not in offered or self.version not in (None, event.version):
                raise LocalProtocolError(
                    f"version {event.version} was not offered ({list(offered)}) or differs "
                    f"from the negotiated version {self.version}"
                )

    def _commit_send(self, event: Any) -> None:
        if isinstance(event, Ping):
            self.pings += 1
        elif isinstance(event, ResultFrame):
            self.pings = 0
        elif isinstance(event, Hello):
            self.offered_versions = event.versions
        elif isinstance(event, ChallengeFrame):
            self.version = event.version

    def error_frame_for(self, exc: RemoteProtocolError) -> bytes | None:
        """The ERROR frame telling the peer why we gave up, or None if it cannot be sent now.

        None means: we are not in ERROR (nothing to report) or the frame was already sent.
        """
        if self._state is not State.ERROR or self._error_frame_sent:
            return None
        return self.send(Error(exc.error_code, str(exc)[:MAX_ERROR_TEXT]))
