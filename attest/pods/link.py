"""The link handshake between two chips: frames, one transition table, and its decisions.

Theory of operation
===================

Two chips joined by a cable run this handshake before the link may carry traffic at full
bandwidth; any other outcome leaves it capped. Like :mod:`attest.protocol`, everything here is
sans-I/O: :class:`LinkConnection` turns bytes into frame events and back under one transition
table (h11 style), and :class:`LinkEndpoint` adds the decisions (certificates, proofs, the pod
rule). Neither touches a socket or reads a clock: the driver (:mod:`attest.pods.driver`) passes
in bytes and the chip's time, and randomness comes from an injected function.

One round (the initiator is the side that opened the stream)::

    initiator                                              responder
    HELLO   [ueid_i, nonce_i, share_i, podcert_i, issuer_i]  ──▶
                                                           ◀──  REPLY [ueid_r, nonce_r, share_r,
                                                                       podcert_r, issuer_r,
                                                                       LinkResponse_r]
    CONFIRM [LinkConfirm_i]                                  ──▶
                                                           ◀──  UP          (or REFUSE)

Both proofs sign the whole transcript — both UEIDs, both nonces, both X25519 shares, both pod
certificate digests — plus the signer's pod id and its ``accept`` decision, each under its own
content type. So a proof verifies only in the session (and the role) it was made for: replayed
proofs fail on the fresh nonce, proofs relayed into a session with another peer or another share
fail on the transcript, and a man in the middle that substitutes its own share (to read the
traffic) breaks both proofs. A transparent relay between two genuine members is
indistinguishable from a cable, but it cannot read or inject traffic: the session key is derived
from the X25519 exchange that both proofs bind.

Refusals: a peer whose certificate is forged, missing or does not list it is refused at once.
A peer with a genuine certificate that breaks the pod rule (another pod, revoked, too large for
our model) is refused *after* it has proved its key: the honest side signals ``accept = false``
in its own proof and waits for the peer's. A peer whose firmware ignores the pod rule signs
``accept = true`` for a link between different certificates; that signed proof is the evidence
the refusing chip forwards to its verifier.

After UP both sides are FULL; after a REFUSE (sent or received) both are CAPPED. From FULL or
CAPPED the initiator may send a new HELLO on the same stream: that is how links are re-verified
(and how a capped link retries). BYE ends the stream from a rest state; EOF at a frame boundary
closes it anywhere.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from nacl.bindings import crypto_scalarmult, crypto_scalarmult_base

from attest.codec import cbor
from attest.errors import (
    AttestError,
    CertificateError,
    DecodeError,
    LocalProtocolError,
    RemoteProtocolError,
)
from attest.keys import PublicKey
from attest.messages.pod import (
    LINK_NONCE_BYTES,
    SHARE_BYTES,
    LinkConfirm,
    LinkProof,
    LinkResponse,
    LinkTranscript,
    pod_cert_digest,
)
from attest.messages.schema import UEID
from attest.pods.cert import PodCredential, open_pod_cert
from attest.pods.names import Refusal
from attest.protocol.events import NEED_DATA, ConnectionClosed, ErrorCode, NeedData
from attest.protocol.framing import MAX_FRAME_BYTES, FrameBuffer
from attest.verify.chain import TrustAnchors

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


def _uint(v: Any) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and 0 <= v < (1 << 64)
    return None if ok else "must be an unsigned 64-bit integer"


def _ueid(v: Any) -> str | None:
    try:
        UEID.parse(v)
    except DecodeError as exc:
        return str(exc)
    return None


def _exact(n: int) -> Callable[[Any], str | None]:
    def rule(v: Any) -> str | None:
        return None if type(v) is bytes and len(v) == n else f"must be {n} bytes"

    return rule


def _bstr(v: Any) -> str | None:
    return None if type(v) is bytes else "must be a byte string"


def _reason(v: Any) -> str | None:
    ok = type(v) is str and 1 <= len(v) <= MAX_REASON_CHARS
    return None if ok else f"must be a text of 1..{MAX_REASON_CHARS} characters"


_Rule = Callable[[Any], str | None]
_NONCE, _SHARE = _exact(LINK_NONCE_BYTES), _exact(SHARE_BYTES)

#: field names in wire order, with their rule, per frame class (type = index + 1)
SCHEMA: Final[Mapping[type[LinkFrame], tuple[tuple[str, _Rule], ...]]] = MappingProxyType(
    {
        LinkHello: (
            ("version", _uint),
            ("ueid", _ueid),
            ("nonce", _NONCE),
            ("share", _SHARE),
            ("pod_cert", _bstr),
            ("issuer_cert", _bstr),
        ),
        LinkReply: (
            ("version", _uint),
            ("ueid", _ueid),
            ("nonce", _NONCE),
            ("share", _SHARE),
            ("pod_cert", _bstr),
            ("issuer_cert", _bstr),
            ("proof", _bstr),
        ),
        LinkConfirmFrame: (("proof", _bstr),),
        LinkUp: (),
        LinkRefuse: (("reason", _reason),),
        LinkBye: (),
    }
)
FRAME_TYPES: Final[tuple[type[LinkFrame], ...]] = tuple(SCHEMA)


def _problem(frame: LinkFrame) -> str | None:
    for name, rule in SCHEMA[type(frame)]:
        why = rule(getattr(frame, name))
        if why is not None:
            return f"{type(frame).__name__}.{name} {why}"
    return None


def encode_link_frame(frame: LinkFrame, *, max_frame_bytes: int = MAX_FRAME_BYTES) -> bytes:
    """Length header plus CBOR body. Raises LocalProtocolError for a bad field or size."""
    if type(frame) not in SCHEMA:
        raise LocalProtocolError(f"{type(frame).__name__} is not a link frame")
    why = _problem(frame)
    if why is not None:
        raise LocalProtocolError(why)
    items: list[Any] = [FRAME_TYPES.index(type(frame)) + 1]
    items += [getattr(frame, name) for name, _ in SCHEMA[type(frame)]]
    body = cbor.encode(items)
    if len(body) > max_frame_bytes:
        raise LocalProtocolError(f"link frame of {len(body)} bytes exceeds {max_frame_bytes}")
    return len(body).to_bytes(4, "big") + body


def decode_link_body(body: bytes, *, max_frame_bytes: int = MAX_FRAME_BYTES) -> LinkFrame:
    """Parse one frame body. Raises only RemoteProtocolError (MALFORMED_FRAME)."""

    def malformed(why: str) -> RemoteProtocolError:
        return RemoteProtocolError(why, error_code=ErrorCode.MALFORMED_FRAME)

    try:
        item = cbor.decode(body, max_bytes=max_frame_bytes)
    except DecodeError as exc:
        raise malformed(f"link frame body: {exc}") from None
    if type(item) is not list or not item or type(item[0]) is not int:
        raise malformed("link frame must be an array starting with the frame type")
    if not 1 <= item[0] <= len(FRAME_TYPES):
        raise malformed(f"unknown link frame type {item[0]}")
    cls = FRAME_TYPES[item[0] - 1]
    if len(item) - 1 != len(SCHEMA[cls]):
        raise malformed(f"{cls.__name__} has {len(item) - 1} fields, expected {len(SCHEMA[cls])}")
    frame = cls(*item[1:])
    why = _problem(frame)
    if why is not None:
        raise malformed(why)
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


class Direction(enum.Enum):
    SEND = "send"
    RECV = "recv"


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


class LinkConnection:
    """One side of one link stream: bytes in → events out, events in → bytes out (no I/O)."""

    def __init__(self, role: LinkRole, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.role = role
        self.max_frame_bytes = max_frame_bytes
        self.error: RemoteProtocolError | None = None
        self._state = INITIAL[role]
        self._buffer = FrameBuffer(max_frame_bytes)

    @property
    def state(self) -> LinkState:
        return self._state

    def receive_data(self, data: bytes) -> None:
        """Append received bytes; ``b""`` is EOF."""
        if not data:
            self._buffer.eof = True
        elif self._state not in (_S.CLOSED, _S.ERROR):
            self._buffer.feed(data)

    def next_event(self) -> LinkEvent | NeedData:
        """One event, NEED_DATA, or ConnectionClosed; RemoteProtocolError enters ERROR."""
        if self._state is _S.ERROR:
            assert self.error is not None
            raise self.error
        if self._state is _S.CLOSED:
            self._buffer.clear()
            return ConnectionClosed() if self._buffer.eof else NEED_DATA
        try:
            body = self._buffer.next_body()
            if body is None:
                if not self._buffer.eof:
                    return NEED_DATA
                event: LinkEvent = ConnectionClosed()
            else:
                event = decode_link_body(body, max_frame_bytes=self.max_frame_bytes)
            new = TRANSITIONS.get((self.role, self._state, _RECV, type(event)))
            if new is None:
                raise RemoteProtocolError(
                    f"unexpected {type(event).__name__} in {self._state.value}",
                    error_code=ErrorCode.UNEXPECTED_FRAME,
                )
        except RemoteProtocolError as exc:
            self._state, self.error = _S.ERROR, exc
            self._buffer.clear()
            raise
        self._state = new
        return event

    def send(self, frame: LinkFrame) -> bytes:
        """Validate our move against the table, advance, and return the bytes to write."""
        new = TRANSITIONS.get((self.role, self._state, _SEND, type(frame)))
        if new is None:
            raise LocalProtocolError(
                f"{self.role.value} cannot send {type(frame).__name__} in {self._state.value}"
            )
        data = encode_link_frame(frame, max_frame_bytes=self.max_frame_bytes)
        self._state = new
        return data


# ================================================================================================
# Decisions
# ================================================================================================

#: signs a proof with the chip's device key (the key never leaves the chip)
Signer = Callable[[LinkProof], bytes]


@dataclass(frozen=True, slots=True)
class LinkContext:
    """What a chip brings to a handshake round: a snapshot of its pod state and its signer."""

    ueid: bytes
    anchors: TrustAnchors
    #: the installed pod certificate, or None (then every link is capped)
    credential: PodCredential | None
    #: pod ids on the chip's newest revocation list
    revoked_pods: frozenset[bytes]
    #: the chip model's maximum pod size
    max_pod_size: int
    sign: Signer
    #: False only for tampered firmware, which ignores the pod rule
    enforce: bool = True


@dataclass(frozen=True, slots=True)
class LinkOutcome:
    """How one handshake round ended."""

    #: the peer's UEID as claimed in its HELLO / REPLY (None if it never said)
    peer: bytes | None
    full: bool
    #: why the link is capped: our refusal name, or LINK_PEER_REFUSED
    refusal: Refusal | None = None
    #: the peer's own refusal text when it refused
    peer_reason: str | None = None
    #: the peer proved possession of the device key its pod certificate lists for it
    authenticated: bool = False
    #: the link's traffic key (X25519 + transcript); only for full links
    session_key: bytes | None = None
    #: the peer's signed acceptance of a link we refused across certificates (report it)
    evidence: bytes | None = None
    #: the peer's pod id, if its certificate verified
    peer_pod: bytes | None = None


@dataclass
class _Round:
    nonce: bytes
    secret: bytes
    share: bytes
    context: LinkContext
    peer: bytes | None = None
    peer_key: PublicKey | None = None
    peer_pod: bytes | None = None
    transcript: LinkTranscript | None = None
    #: the pod rule's verdict on the peer (None = a member); acted on once the peer proved its key
    rule: Refusal | None = None
    #: the session key, derived as soon as both shares are known
    key: bytes | None = None


def _own(ctx: LinkContext) -> tuple[bytes, bytes, bytes, bytes | None]:
    """(token, issuer cert, digest, pod id) of the chip's own certificate, or empties."""
    cred = ctx.credential
    if cred is None:
        return b"", b"", pod_cert_digest(b""), None
    return cred.token, cred.issuer_cert, cred.digest, cred.pod_id


def judge_peer(
    ctx: LinkContext, peer: bytes, pod_cert: bytes, issuer_cert: bytes, now_s: int
) -> tuple[PodCredential | None, Refusal | None, Refusal | None]:
    """(peer credential, refusal now, refusal once authenticated) for a peer's HELLO / REPLY.

    Refused *now* (nothing to authenticate against): LINK_SELF, a missing certificate
    (LINK_NOT_MEMBER), one that does not verify (POD_CERT_INVALID), one that does not list the
    peer (LINK_NOT_MEMBER). The pod rule, judged once the peer has proved its key: we hold no
    certificate (LINK_NO_POD), either pod is revoked (POD_REVOKED), the peer's certificate is
    larger than our model allows (POD_TOO_LARGE), it is not our certificate (LINK_NOT_MEMBER).
    """
    if peer == ctx.ueid:
        return None, Refusal.LINK_SELF, None
    if not pod_cert:
        return None, Refusal.LINK_NOT_MEMBER, None
    try:
        cred = open_pod_cert(pod_cert, issuer_cert, ctx.anchors, now_s=now_s)
    except CertificateError:
        return None, Refusal.POD_CERT_INVALID, None
    if cred.cert.member_key(peer) is None:
        return cred, Refusal.LINK_NOT_MEMBER, None
    own = ctx.credential
    rule: Refusal | None = None
    if own is None:
        rule = Refusal.LINK_NO_POD
    elif cred.pod_id in ctx.revoked_pods or own.pod_id in ctx.revoked_pods:
        rule = Refusal.POD_REVOKED
    elif cred.cert.size_class > ctx.max_pod_size or len(cred.cert.members) > ctx.max_pod_size:
        rule = Refusal.POD_TOO_LARGE
    elif cred.digest != own.digest:
        rule = Refusal.LINK_NOT_MEMBER
    return cred, None, rule if ctx.enforce else None


def session_key(secret: bytes, peer_share: bytes, transcript: LinkTranscript) -> bytes:
    """The link's traffic key: SHA-256 over the X25519 secret and the transcript.

    Raises DecodeError for a share of small order (an all-zero shared secret).
    """
    try:
        shared = crypto_scalarmult(secret, peer_share)
    except Exception:  # libsodium refuses small-order points
        raise DecodeError("X25519 share of small order") from None
    t = transcript
    return hashlib.sha256(b"attest-link-key-v1" + shared + cbor.encode(t.values())).digest()


def check_proof(
    kind: type[LinkProof], token: bytes, key: PublicKey, expected: LinkTranscript
) -> tuple[LinkProof | None, Refusal | None]:
    """Verify a peer's proof for this session: (proof, None) or (proof or None, refusal)."""
    try:
        proof = kind.verify(token, key)
    except AttestError:
        return None, Refusal.LINK_PROOF_INVALID
    if proof.transcript != expected:
        return proof, Refusal.LINK_PROOF_MISMATCH
    return proof, None


class LinkEndpoint:
    """One chip's side of one link stream: the connection plus the decisions of each round.

    ``context`` is called at the start of every round (so a newly installed certificate or
    revocation list applies to the next re-verification); ``random(n)`` supplies nonces and
    X25519 secrets. Outcomes of finished rounds queue up in :attr:`outcomes`.
    """

    def __init__(
        self,
        role: LinkRole,
        context: Callable[[], LinkContext],
        random: Callable[[int], bytes],
        max_frame_bytes: int = MAX_FRAME_BYTES,
    ) -> None:
        self.role = role
        self.conn = LinkConnection(role, max_frame_bytes)
        self.outcomes: list[LinkOutcome] = []
        self._context = context
        self._random = random
        self._round: _Round | None = None
        #: key of the current full link (kept across re-verifications until one fails)
        self.session_key: bytes | None = None

    @property
    def state(self) -> LinkState:
        return self.conn.state

    def _new_round(self) -> _Round:
        secret = self._random(32)
        r = _Round(
            self._random(LINK_NONCE_BYTES), secret, crypto_scalarmult_base(secret), self._context()
        )
        self._round = r
        return r

    # -- the initiator starts (and re-verifies) ----------------------------------------------
    def initiate(self) -> bytes:
        """Begin a round: the HELLO to write (first link, re-verification or retry)."""
        if self.role is not LinkRole.INITIATOR:
            raise LocalProtocolError("only the initiator starts a round")
        r = self._new_round()
        token, issuer, _, _ = _own(r.context)
        return self.conn.send(
            LinkHello(LINK_VERSION, r.context.ueid, r.nonce, r.share, token, issuer)
        )

    def close(self) -> bytes:
        """BYE, if the stream is between rounds (else nothing: just close the stream)."""
        try:
            return self.conn.send(LinkBye())
        except LocalProtocolError:
            return b""

    # -- bytes in, bytes out ---------------------------------------------------------------
    def receive_data(self, data: bytes, now_s: int) -> bytes:
        """Feed received bytes (``b""`` = EOF); return what to write back (maybe nothing).

        Raises RemoteProtocolError if the peer broke the protocol; the round then ends capped
        with LINK_PROTOCOL_ERROR and the driver should close the stream.
        """
        self.conn.receive_data(data)
        out = bytearray()
        while True:
            try:
                event = self.conn.next_event()
            except RemoteProtocolError:
                self._finish(LinkOutcome(self._peer(), False, Refusal.LINK_PROTOCOL_ERROR))
                raise
            if event is NEED_DATA or isinstance(event, ConnectionClosed | LinkBye):
                if isinstance(event, ConnectionClosed | LinkBye) and self._round is not None:
                    # the peer left in the middle of a round: no link
                    self._finish(LinkOutcome(self._peer(), False, Refusal.LINK_PROTOCOL_ERROR))
                return bytes(out)
            out += self._handle(event, now_s)

    def _peer(self) -> bytes | None:
        return self._round.peer if self._round is not None else None

    def _finish(self, outcome: LinkOutcome) -> None:
        if self._round is None:
            return
        self._round = None
        if outcome.full:
            self.session_key = outcome.session_key
        elif self.session_key is not None:
            self.session_key = None
        self.outcomes.append(outcome)

    def _refuse(self, refusal: Refusal, **kw: Any) -> bytes:
        data = self.conn.send(LinkRefuse(str(refusal)))
        self._finish(LinkOutcome(self._peer(), False, refusal, **kw))
        return data

    def _handle(self, event: LinkEvent, now_s: int) -> bytes:
        if isinstance(event, LinkHello):
            return self._on_hello(event, now_s)
        if isinstance(event, LinkReply):
            return self._on_reply(event, now_s)
        if isinstance(event, LinkConfirmFrame):
            return self._on_confirm(event)
        if isinstance(event, LinkUp):
            return self._on_up()
        if isinstance(event, LinkRefuse):
            # The peer ended the round. If we had already declined (our proof said accept =
            # false), the refusal is ours; otherwise the peer refused us.
            r = self._round
            mine = r.rule if r is not None else None
            self._finish(
                LinkOutcome(
                    self._peer(),
                    False,
                    mine or Refusal.LINK_PEER_REFUSED,
                    peer_reason=event.reason,
                    # an initiator has verified the responder's proof by then; a responder not
                    authenticated=self.role is LinkRole.INITIATOR
                    and r is not None
                    and r.transcript is not None,
                    peer_pod=r.peer_pod if r is not None else None,
                )
            )
            return b""
        raise AssertionError(f"unhandled {event!r}")  # pragma: no cover - table forbids it

    def _judge(self, r: _Round, frame: LinkHello | LinkReply, now_s: int) -> PodCredential | bytes:
        """Judge the peer's version and certificate (HELLO or REPLY alike).

        Returns the peer's credential (and records the pod rule's verdict in ``r.rule``), or the
        REFUSE frame to send when there is nothing to authenticate against.
        """
        r.peer = frame.ueid
        if frame.version != LINK_VERSION:
            return self._refuse(Refusal.LINK_PROTOCOL_ERROR)
        cred, now_refusal, rule = judge_peer(
            r.context, frame.ueid, frame.pod_cert, frame.issuer_cert, now_s
        )
        if cred is not None:
            r.peer_pod = cred.pod_id
        if now_refusal is not None or cred is None:
            return self._refuse(now_refusal or Refusal.LINK_NOT_MEMBER, peer_pod=r.peer_pod)
        r.rule = rule
        return cred

    # -- responder -------------------------------------------------------------------------
    def _on_hello(self, h: LinkHello, now_s: int) -> bytes:
        r = self._new_round()
        cred = self._judge(r, h, now_s)
        if isinstance(cred, bytes):
            return cred
        ctx, rule = r.context, r.rule
        r.peer_key = cred.cert.member_key(h.ueid)
        token, issuer, digest, pod_id = _own(ctx)
        r.transcript = LinkTranscript(
            h.ueid, ctx.ueid, h.nonce, r.nonce, h.share, r.share, cred.digest, digest
        )
        try:
            r.key = session_key(r.secret, h.share, r.transcript)
        except DecodeError:  # a share of small order: no key could be private
            return self._refuse(Refusal.LINK_PROOF_INVALID, peer_pod=r.peer_pod)
        proof = ctx.sign(LinkResponse.for_session(r.transcript, pod_id=pod_id, accept=rule is None))
        return self.conn.send(
            LinkReply(LINK_VERSION, ctx.ueid, r.nonce, r.share, token, issuer, proof)
        )

    def _on_confirm(self, c: LinkConfirmFrame) -> bytes:
        r = self._round
        assert r is not None and r.transcript is not None and r.peer_key is not None
        proof, refusal = check_proof(LinkConfirm, c.proof, r.peer_key, r.transcript)
        if refusal is not None or proof is None:
            return self._refuse(refusal or Refusal.LINK_PROOF_INVALID, peer_pod=r.peer_pod)
        if r.rule is not None:
            return self._refuse(
                r.rule,
                authenticated=True,
                peer_pod=r.peer_pod,
                evidence=c.proof if _is_evidence(proof) else None,
            )
        if not proof.accept:  # the initiator declined in its proof instead of sending REFUSE
            return self._refuse(Refusal.LINK_PEER_REFUSED, authenticated=True, peer_pod=r.peer_pod)
        data = self.conn.send(LinkUp())
        self._finish(
            LinkOutcome(r.peer, True, authenticated=True, session_key=r.key, peer_pod=r.peer_pod)
        )
        return data

    # -- initiator -------------------------------------------------------------------------
    def _on_reply(self, rep: LinkReply, now_s: int) -> bytes:
        r = self._round
        assert r is not None
        cred = self._judge(r, rep, now_s)
        if isinstance(cred, bytes):
            return cred
        ctx, rule = r.context, r.rule
        key = cred.cert.member_key(rep.ueid)
        assert key is not None
        _, _, digest, pod_id = _own(ctx)
        expected = LinkTranscript(
            ctx.ueid, rep.ueid, r.nonce, rep.nonce, r.share, rep.share, digest, cred.digest
        )
        proof, refusal = check_proof(LinkResponse, rep.proof, key, expected)
        if refusal is not None or proof is None:
            return self._refuse(refusal or Refusal.LINK_PROOF_INVALID, peer_pod=r.peer_pod)
        r.transcript, r.peer_key = expected, key
        try:
            r.key = session_key(r.secret, rep.share, expected)
        except DecodeError:  # a share of small order: no key could be private
            return self._refuse(Refusal.LINK_PROOF_INVALID, peer_pod=r.peer_pod)
        if rule is not None:
            return self._refuse(
                rule,
                authenticated=True,
                peer_pod=r.peer_pod,
                evidence=rep.proof if _is_evidence(proof) else None,
            )
        if not proof.accept and ctx.enforce:
            return self._refuse(Refusal.LINK_PEER_REFUSED, authenticated=True, peer_pod=r.peer_pod)
        confirm = ctx.sign(LinkConfirm.for_session(expected, pod_id=pod_id, accept=True))
        return self.conn.send(LinkConfirmFrame(confirm))

    def _on_up(self) -> bytes:
        r = self._round
        assert r is not None and r.key is not None
        self._finish(
            LinkOutcome(r.peer, True, authenticated=True, session_key=r.key, peer_pod=r.peer_pod)
        )
        return b""


def _is_evidence(proof: LinkProof) -> bool:
    """A proof worth reporting: the signer accepted a link between two different certificates."""
    return proof.accept and proof.signer_pod != proof.other_pod
