"""Protocol events: what :class:`~attest.protocol.Connection` returns and accepts.

One event class per frame type, plus :class:`ConnectionClosed` (EOF at a frame boundary) and the
:data:`NEED_DATA` sentinel. Events are plain frozen values with no validation of their own: the
same field rules must raise :class:`~attest.errors.LocalProtocolError` when *we* build a bad
event and :class:`~attest.errors.RemoteProtocolError` when the *peer* sends one, so the checks live
in :mod:`attest.protocol.framing`, which knows which side it is judging.

The COSE tokens (certificates, challenge, evidence, result) are opaque ``bytes`` here; the
protocol layer moves them, the message layer (:mod:`attest.messages`) interprets them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal

#: The only protocol version defined so far.
PROTOCOL_VERSION: Final = 1
#: Versions this implementation speaks, in no particular order.
SUPPORTED_VERSIONS: Final[tuple[int, ...]] = (PROTOCOL_VERSION,)


class FrameType(enum.IntEnum):
    """First item of every frame array. Stable wire values."""

    HELLO = 1
    CHALLENGE = 2
    EVIDENCE = 3
    RESULT = 4
    NEXT = 5
    BYE = 6
    ERROR = 7
    PING = 8
    PONG = 9


class ErrorCode(enum.IntEnum):
    """Codes carried by ERROR frames. Stable wire values; receivers must accept unknown ones."""

    MALFORMED_FRAME = 1
    FRAME_TOO_LARGE = 2
    UNEXPECTED_FRAME = 3
    UNSUPPORTED_VERSION = 4
    TIMEOUT = 5
    OVERLOADED = 6
    SHUTTING_DOWN = 7
    INTERNAL = 8
    #: the chip refuses this round's CHALLENGE; the text names the check (SPEC §7.10)
    REFUSED = 9


@dataclass(frozen=True, slots=True)
class Hello:
    """Chip → verifier, opens the connection: the versions it speaks and its certificate chain."""

    versions: tuple[int, ...]
    device_cert: bytes
    manufacturer_cert: bytes


@dataclass(frozen=True, slots=True)
class ChallengeFrame:
    """Verifier → chip: the chosen version, the verifier's certificate and a signed Challenge."""

    version: int
    verifier_cert: bytes
    challenge: bytes


@dataclass(frozen=True, slots=True)
class EvidenceFrame:
    """Chip → verifier: a signed Evidence token answering the last challenge."""

    evidence: bytes


@dataclass(frozen=True, slots=True)
class ResultFrame:
    """Verifier → chip: a signed AttestationResult for the last evidence.

    ``grant`` (Offline Licensing, optional third item): a renewed license for the chip as
    ``(license token, delegation token or None)``; None when the verifier grants nothing.
    """

    result: bytes
    grant: tuple[bytes, bytes | None] | None = None


@dataclass(frozen=True, slots=True)
class Next:
    """Chip → verifier: ask for another round on this connection (keep-alive)."""


@dataclass(frozen=True, slots=True)
class Bye:
    """Either side, only between rounds: orderly close (an ERROR is the disorderly one)."""


@dataclass(frozen=True, slots=True)
class Error:
    """Either side, any time before close: why we are giving up. The connection then closes.

    ``code`` is normally an :class:`ErrorCode`; unknown codes from newer peers are kept as ints.
    """

    code: int
    text: str = ""


@dataclass(frozen=True, slots=True)
class Ping:
    """Verifier → chip, after EVIDENCE and before RESULT: a fresh nonce to answer at once.

    A landmark (location verification) times the round trip to the PONG; a verifier that
    does not measure never sends one, and the session is then byte for byte that of revision 2.
    """

    nonce: bytes


@dataclass(frozen=True, slots=True)
class Pong:
    """Chip → verifier: its signed answer to the last PING (a PingResponse token)."""

    response: bytes


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer's byte stream ended at a frame boundary (EOF). Never sent, only received."""


class _NeedData(enum.Enum):
    NEED_DATA = "NEED_DATA"

    def __repr__(self) -> str:
        return "NEED_DATA"

    __str__ = __repr__


#: Returned by ``next_event`` when the buffer holds no complete frame yet: feed more bytes.
NEED_DATA: Final = _NeedData.NEED_DATA
NeedData = Literal[_NeedData.NEED_DATA]

#: Events that travel as frames (what ``send`` accepts).
FrameEvent = Hello | ChallengeFrame | EvidenceFrame | ResultFrame | Next | Bye | Error | Ping | Pong
#: Everything ``next_event`` can return besides ``NEED_DATA``.
Event = FrameEvent | ConnectionClosed

#: Frame event classes in frame-type order (index + 1 == frame type).
FRAME_EVENT_TYPES: Final[tuple[type[FrameEvent], ...]] = (
    Hello,
    ChallengeFrame,
    EvidenceFrame,
    ResultFrame,
    Next,
    Bye,
    Error,
    Ping,
    Pong,
)
#: Every event class, including the EOF pseudo-event.
EVENT_TYPES: Final[tuple[type[Event], ...]] = (*FRAME_EVENT_TYPES, ConnectionClosed)
