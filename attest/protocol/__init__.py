"""Sans-I/O session protocol: length-prefixed CBOR frames and the chip/verifier state machines.

Start with :class:`Connection`; :mod:`attest.protocol.machine` explains the design and holds the
transition table, ``WIRE.md`` the wire format.
"""

from attest.protocol.connection import Connection
from attest.protocol.events import (
    NEED_DATA,
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    Bye,
    ChallengeFrame,
    ConnectionClosed,
    Error,
    ErrorCode,
    Event,
    EvidenceFrame,
    FrameEvent,
    FrameType,
    Hello,
    NeedData,
    Next,
    Ping,
    Pong,
    ResultFrame,
)
from attest.protocol.framing import MAX_FRAME_BYTES
from attest.protocol.kernel import Direction
from attest.protocol.machine import TRANSITIONS, Role, State, choose_version

__all__ = [
    "MAX_FRAME_BYTES",
    "NEED_DATA",
    "PROTOCOL_VERSION",
    "SUPPORTED_VERSIONS",
    "TRANSITIONS",
    "Bye",
    "ChallengeFrame",
    "Connection",
    "ConnectionClosed",
    "Direction",
    "Error",
    "ErrorCode",
    "Event",
    "EvidenceFrame",
    "FrameEvent",
    "FrameType",
    "Hello",
    "NeedData",
    "Next",
    "Ping",
    "Pong",
    "ResultFrame",
    "Role",
    "State",
    "choose_version",
]
