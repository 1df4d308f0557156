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

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
from attest.pods.cert import PodCredential, open_pod_cert
from attest.pods.linkwire import (
    FRAME_TYPES,
    LINK,
    LINK_VERSION,
    MAX_REASON_CHARS,
    SCHEMA,
    TRANSITIONS,
    Direction,
    LinkBye,
    LinkConfirmFrame,
    LinkConnection,
    LinkEvent,
    LinkFrame,
    LinkFrameType,
    LinkHello,
    LinkRefuse,
    LinkReply,
    LinkRole,
    LinkState,
    LinkUp,
    decode_link_body,
    encode_link_frame,
)
from attest.pods.messages import (
    LINK_NONCE_BYTES,
    LinkConfirm,
    LinkProof,
    LinkResponse,
    LinkTranscript,
    pod_cert_digest,
)
from attest.pods.names import Refusal
from attest.protocol.events import NEED_DATA, ConnectionClosed
from attest.protocol.kernel import MAX_FRAME_BYTES
from attest.verify.chain import TrustAnchors

#: the wire side (attest.pods.linkwire) is re-exported: callers need one import
__all__ = [
    "FRAME_TYPES",
    "LINK",
    "LINK_VERSION",
    "MAX_REASON_CHARS",
    "SCHEMA",
    "TRANSITIONS",
    "Direction",
    "LinkBye",
    "LinkConfirmFrame",
    "LinkConnection",
    "LinkContext",
    "LinkEndpoint",
    "LinkEvent",
    "LinkFrame",
    "LinkFrameType",
    "LinkHello",
    "LinkOutcome",
    "LinkRefuse",
    "LinkReply",
    "LinkRole",
    "LinkState",
    "LinkUp",
    "check_proof",
    "decode_link_body",
    "encode_link_frame",
    "judge_peer",
    "session_key",
]

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
