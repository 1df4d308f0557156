"""The link handshake on the wire: its frames and its transition table, declared on the kernel.

The Fixed Set's chip-to-chip handshake is a framed protocol like the session protocol: same
length header, same deterministic-CBOR frame arrays, same codec, same connection and error
behaviour (:mod:`attest.protocol.kernel`); this module declares only what is its own — the six
frames and the table of both roles. The decisions of each round (certificates, proofs, the pod
rule) are in :mod:`attest.pods.link`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from attest.errors import DecodeError
from attest.messages.schema import UEID
from attest.pods.messages import LINK_NONCE_BYTES, SHARE_BYTES
from attest.protocol import kernel
from attest.protocol.events import ConnectionClosed
from attest.protocol.kernel import (
    MAX_FRAME_BYTES,
    Direction,
    Field,
    FrameCodec,
    FrameSpec,
    Machine,
    bstr,
    exact_bytes,
    uint,
)

#: version of the link handshake carried in HELLO and REPLY
LINK_VERSION: Final = 1
#: longest refusal text in a REFUSE frame
MAX_REASON_CHARS: Final = 64

# ================================================================================================
# Frames
# ================================================================================================


class LinkFrameType(enum.IntEnum):
    """First item of every link frame array. Stable wire values."""

    HELLO = 1
    REPLY = 2
    CONFIRM = 3
    UP = 4
    REFUSE = 5
    BYE = 6


@dataclass(frozen=True, slots=True)
class LinkHello:
    """Initiator → responder: who I am, my nonce and X25519 share, my pod certificate."""

    version: int
    ueid: bytes
    nonce: bytes
    share: bytes
    pod_cert: bytes
    issuer_cert: bytes


@dataclass(frozen=True, slots=True)
class LinkReply:
    """Responder → initiator: the same, plus the responder's signed LinkResponse."""

    version: int
    ueid: bytes
    nonce: bytes
    share: bytes
    pod_cert: bytes
    issuer_cert: bytes
    proof: bytes


@dataclass(frozen=True, slots=True)
class LinkConfirmFrame:
    """Initiator → responder: the initiator's signed LinkConfirm."""

    proof: bytes


@dataclass(frozen=True, slots=True)
class LinkUp:
    """Responder → initiator: the link runs at full bandwidth."""


@dataclass(frozen=True, slots=True)
class LinkRefuse:
    """Either side, during a round: the link stays capped; ``reason`` is a refusal name."""

    reason: str


@dataclass(frozen=True, slots=True)
class LinkBye:
    """Either side, between rounds: orderly end of the stream."""


LinkFrame = LinkHello | LinkReply | LinkConfirmFrame | LinkUp | LinkRefuse | LinkBye
LinkEvent = LinkFrame | ConnectionClosed


def _ueid(v: Any) -> str | None:
    try:
        UEID.parse(v)
    except DecodeError as exc:
        return str(exc)
    return None


def _reason(v: Any) -> str | None:
    ok = type(v) is str and 1 <= len(v) <= MAX_REASON_CHARS
    return None if ok else f"must be a text of 1..{MAX_REASON_CHARS} characters"


_NONCE, _SHARE = exact_bytes(LINK_NONCE_BYTES), exact_bytes(SHARE_BYTES)
_PEER_FIELDS = (
    Field("version", uint),
    Field("ueid", _ueid),
    Field("nonce", _NONCE),
    Field("share", _SHARE),
    Field("pod_cert", bstr),
    Field("issuer_cert", bstr),
)

#: the link frames (SPEC: Fixed Set, link handshake), in frame-type order
LINK_FRAMES: Final[tuple[FrameSpec, ...]] = (
    FrameSpec(LinkHello, LinkFrameType.HELLO, "HELLO", _PEER_FIELDS),
    FrameSpec(LinkReply, LinkFrameType.REPLY, "REPLY", (*_PEER_FIELDS, Field("proof", bstr))),
    FrameSpec(LinkConfirmFrame, LinkFrameType.CONFIRM, "CONFIRM", (Field("proof", bstr),)),
    FrameSpec(LinkUp, LinkFrameType.UP, "UP"),
    FrameSpec(LinkRefuse, LinkFrameType.REFUSE, "REFUSE", (Field("reason", _reason),)),
    FrameSpec(LinkBye, LinkFrameType.BYE, "BYE"),
)
CODEC: Final = FrameCodec("link", LINK_FRAMES, label="link ")
#: field names in wire order, with their rule, per frame class (type = index + 1)
SCHEMA: Final[Mapping[type[LinkFrame], tuple[tuple[str, Any], ...]]] = MappingProxyType(
    {spec.cls: tuple((f.name, f.rule) for f in spec.fields) for spec in LINK_FRAMES}
)
FRAME_TYPES: Final[tuple[type[LinkFrame], ...]] = tuple(spec.cls for spec in LINK_FRAMES)


def encode_link_frame(frame: LinkFrame, *, max_frame_bytes: int = MAX_FRAME_BYTES) -> bytes:
    """Length header plus CBOR body. Raises LocalProtocolError for a bad field or size."""
    return CODEC.encode(frame, max_frame_bytes=max_frame_bytes)


def decode_link_body(body: bytes, *, max_frame_bytes: int = MAX_FRAME_BYTES) -> LinkFrame:
    """Parse one frame body. Raises only RemoteProtocolError (MALFORMED_FRAME)."""
    frame: LinkFrame = CODEC.decode(body, max_frame_bytes=max_frame_bytes)
    return frame


# ================================================================================================
# The transition table
# ================================================================================================


class LinkRole(enum.Enum):
    INITIATOR = "initiator"
    RESPONDER = "responder"


class LinkState(enum.Enum):
    # initiator
    SEND_HELLO = "SEND_HELLO"
    AWAIT_REPLY = "AWAIT_REPLY"
    SEND_CONFIRM = "SEND_CONFIRM"
    AWAIT_UP = "AWAIT_UP"
    # responder
    AWAIT_HELLO = "AWAIT_HELLO"
    SEND_REPLY = "SEND_REPLY"
    AWAIT_CONFIRM = "AWAIT_CONFIRM"
    SEND_UP = "SEND_UP"
    # both: rest states (a round has ended) and terminal states
    FULL = "FULL"
    CAPPED = "CAPPED"
    CLOSED = "CLOSED"
    ERROR = "ERROR"


_I, _R = LinkRole.INITIATOR, LinkRole.RESPONDER
_S = LinkState
_SEND, _RECV = Direction.SEND, Direction.RECV

#: where each role starts
INITIAL: Final[Mapping[LinkRole, LinkState]] = MappingProxyType(
    {_I: _S.SEND_HELLO, _R: _S.AWAIT_HELLO}
)
#: states between rounds, in which a new round (HELLO) or BYE may come
REST: Final[Mapping[LinkRole, tuple[LinkState, ...]]] = MappingProxyType(
    {_I: (_S.SEND_HELLO, _S.FULL, _S.CAPPED), _R: (_S.AWAIT_HELLO, _S.FULL, _S.CAPPED)}
)
#: every non-terminal state per role
LIVE: Final[Mapping[LinkRole, tuple[LinkState, ...]]] = MappingProxyType(
    {
        _I: (_S.SEND_HELLO, _S.AWAIT_REPLY, _S.SEND_CONFIRM, _S.AWAIT_UP, _S.FULL, _S.CAPPED),
        _R: (_S.AWAIT_HELLO, _S.SEND_REPLY, _S.AWAIT_CONFIRM, _S.SEND_UP, _S.FULL, _S.CAPPED),
    }
)

Key = tuple[LinkRole, LinkState, Direction, type[LinkEvent]]

# fmt: off
#: THE link protocol: (role, state, direction, event type) -> next state. Absent = illegal.
TRANSITIONS: Final[Mapping[Key, LinkState]] = MappingProxyType({
    # -- initiator: HELLO (first round, re-verification from FULL, retry from CAPPED)
    **{(_I, s, _SEND, LinkHello): _S.AWAIT_REPLY for s in REST[_I]},
    (_I, _S.AWAIT_REPLY,   _RECV, LinkReply):        _S.SEND_CONFIRM,
    (_I, _S.AWAIT_REPLY,   _RECV, LinkRefuse):       _S.CAPPED,
    (_I, _S.SEND_CONFIRM,  _SEND, LinkConfirmFrame): _S.AWAIT_UP,
    (_I, _S.SEND_CONFIRM,  _SEND, LinkRefuse):       _S.CAPPED,
    (_I, _S.AWAIT_UP,      _RECV, LinkUp):           _S.FULL,
    (_I, _S.AWAIT_UP,      _RECV, LinkRefuse):       _S.CAPPED,
    # -- responder: the mirror image
    **{(_R, s, _RECV, LinkHello): _S.SEND_REPLY for s in REST[_R]},
    (_R, _S.SEND_REPLY,    _SEND, LinkReply):        _S.AWAIT_CONFIRM,
    (_R, _S.SEND_REPLY,    _SEND, LinkRefuse):       _S.CAPPED,
    (_R, _S.AWAIT_CONFIRM, _RECV, LinkConfirmFrame): _S.SEND_UP,
    (_R, _S.AWAIT_CONFIRM, _RECV, LinkRefuse):       _S.CAPPED,
    (_R, _S.SEND_UP,       _SEND, LinkUp):           _S.FULL,
    (_R, _S.SEND_UP,       _SEND, LinkRefuse):       _S.CAPPED,
    # -- both: BYE between rounds, in either direction
    **{(r, s, d, LinkBye): _S.CLOSED for r in LinkRole for s in REST[r] for d in Direction},
    # -- both: EOF at a frame boundary ends the stream (CLOSED -> CLOSED is the orderly case)
    **{(r, s, _RECV, ConnectionClosed): _S.CLOSED for r in LinkRole for s in (*LIVE[r], _S.CLOSED)},
})
# fmt: on


#: The link handshake, declared on the kernel.
LINK: Final = Machine(
    name="link",
    codec=CODEC,
    transitions=TRANSITIONS,
    initial=INITIAL,
    closed=LinkState.CLOSED,
    error=LinkState.ERROR,
    peer={LinkRole.INITIATOR: LinkRole.RESPONDER, LinkRole.RESPONDER: LinkRole.INITIATOR},
)


class LinkConnection(kernel.Connection[LinkRole, LinkState]):
    """One side of one link stream: bytes in → events out, events in → bytes out (no I/O)."""

    def __init__(self, role: LinkRole, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        super().__init__(LINK, role, max_frame_bytes)

    @property
    def role(self) -> LinkRole:
        return self.our_role


__all__ = [
    "FRAME_TYPES",
    "LINK",
    "LINK_FRAMES",
    "LINK_VERSION",
    "MAX_REASON_CHARS",
    "SCHEMA",
    "TRANSITIONS",
    "Direction",
    "LinkBye",
    "LinkConfirmFrame",
    "LinkConnection",
    "LinkEvent",
    "LinkFrame",
    "LinkFrameType",
    "LinkHello",
    "LinkRefuse",
    "LinkReply",
    "LinkRole",
    "LinkState",
    "LinkUp",
    "decode_link_body",
    "encode_link_frame",
]
