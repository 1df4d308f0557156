"""Fixed Set messages: the pod certificate and the two signed proofs of the link handshake.

A :class:`PodCert` names the chips of one pod (UEID and device key each) and the pod's size
class, the most chips that may ever be linked at full bandwidth as one cluster. The Authority
(or a certified manufacturer at a trusted facility) signs it; it is revoked by pod id.

The link handshake (attest/pods/link.py) proves possession of two member keys with two proofs,
:class:`LinkResponse` (the responder's) and :class:`LinkConfirm` (the initiator's). Both bind
the two UEIDs, both nonces, both X25519 shares and both pod certificates (by digest), so a
proof is only good for the one session it was made in; the two roles have their own content
types, so a proof can never be reflected into the other role, nor verify as any other message.
A proof with ``accept`` true is the signer's signed statement that it takes the link at full
bandwidth: a refusing peer forwards it to its verifier as transferable evidence when the two
certificates differ (a chip that ignores the pod rule cannot deny it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from attest.errors import DecodeError
from attest.keys import PublicKey
from attest.messages import claims as C
from attest.messages.schema import TSTR, UEID, UINT, Field, Kind, SignedMessage, list_of
from attest.pods import claims as P

POD_CERT_CONTENT_TYPE = "application/vnd.attest.pod-cert+cbor"
LINK_RESPONSE_CONTENT_TYPE = "application/vnd.attest.link-response+cbor"
LINK_CONFIRM_CONTENT_TYPE = "application/vnd.attest.link-confirm+cbor"

POD_ID_BYTES = 16
#: most live full-bandwidth links one Evidence may report
MAX_LINKS = 256
#: most refused-link proofs one Evidence may carry, and the size bound of each
MAX_LINK_REFUSALS = 16
MAX_LINK_PROOF_BYTES = 2048


def _pod_id(v: Any) -> bytes:
    if type(v) is not bytes or len(v) != POD_ID_BYTES:
        raise DecodeError(f"pod id must be {POD_ID_BYTES} bytes")
    return v


def _link_proof_token(v: Any) -> bytes:
    if type(v) is not bytes or not 1 <= len(v) <= MAX_LINK_PROOF_BYTES:
        raise DecodeError(f"a refused-link proof is 1..{MAX_LINK_PROOF_BYTES} bytes")
    return v


POD_ID = Kind(_pod_id)

# -- the claims a chip adds to its Evidence (absent on chips outside the Fixed Set) ------------
#: the chip's certified pod
EVIDENCE_POD_ID = Field("pod_id", P.HEM_POD_ID, POD_ID, optional=True)
#: its live full-bandwidth peers (UEIDs)
EVIDENCE_LINKS = Field(
    "links", P.HEM_LINKS, Kind(list_of(UEID.parse, MAX_LINKS), list), optional=True
)
#: signed acceptances (LinkResponse / LinkConfirm tokens) of links it refused
EVIDENCE_LINK_REFUSALS = Field(
    "link_refusals",
    P.HEM_LINK_REFUSALS,
    Kind(list_of(_link_proof_token, MAX_LINK_REFUSALS), list),
    optional=True,
)
EVIDENCE_CLAIMS = (EVIDENCE_POD_ID, EVIDENCE_LINKS, EVIDENCE_LINK_REFUSALS)

#: most members one certificate may list (the 65 536-byte token limit binds first above ~1000)
MAX_POD_MEMBERS = 1024
#: bytes of a link nonce and of an X25519 share
LINK_NONCE_BYTES = 32
SHARE_BYTES = 32
#: the pod-certificate digest a chip without a pod certificate puts in its proofs
NO_POD_DIGEST = bytes(32)


def pod_cert_digest(token: bytes) -> bytes:
    """SHA-256 of a PodCert token as sent (what link proofs bind); NO_POD_DIGEST for none."""
    return hashlib.sha256(token).digest() if token else NO_POD_DIGEST


def _members(v: Any) -> tuple[tuple[bytes, PublicKey], ...]:
    if type(v) is not list or not 1 <= len(v) <= MAX_POD_MEMBERS:
        raise DecodeError(f"members must be an array of 1..{MAX_POD_MEMBERS} entries")
    out: list[tuple[bytes, PublicKey]] = []
    for entry in v:
        if type(entry) is not list or len(entry) != 2:
            raise DecodeError("a member is [ueid, device key]")
        ueid = UEID.parse(entry[0])
        key = entry[1]
        if type(key) is not bytes or len(key) != 32:
            raise DecodeError("a member's device key is 32 bytes")
        if out and not out[-1][0] < ueid:
            raise DecodeError("members must be sorted by ueid, without duplicates")
        out.append((ueid, PublicKey(key)))
    return tuple(out)


def _members_out(v: tuple[tuple[bytes, PublicKey], ...]) -> list[list[bytes]]:
    return [[ueid, key.raw] for ueid, key in v]


def _size_class(v: Any) -> int:
    if type(v) is not int or not 1 <= v <= MAX_POD_MEMBERS:
        raise DecodeError(f"size class must be 1..{MAX_POD_MEMBERS}")
    return v


def _pod_id_nonzero(v: Any) -> bytes:
    pod_id: bytes = POD_ID.parse(v)
    if pod_id == bytes(POD_ID_BYTES):
        raise DecodeError("the all-zero pod id is reserved")
    return pod_id


def _bytes_of(n: int) -> Kind:
    def parse(v: Any) -> bytes:
        if type(v) is not bytes or len(v) != n:
            raise DecodeError(f"expected {n} bytes")
        return v

    return Kind(parse)


def _bool(v: Any) -> bool:
    if type(v) is not bool:
        raise DecodeError("expected true or false")
    return v


MEMBERS = Kind(_members, _members_out)
SIZE_CLASS = Kind(_size_class)
POD_ID_NONZERO = Kind(_pod_id_nonzero)
NONCE32 = _bytes_of(LINK_NONCE_BYTES)
SHARE = _bytes_of(SHARE_BYTES)
DIGEST32 = _bytes_of(32)
BOOL = Kind(_bool)


@dataclass(frozen=True, slots=True)
class PodCert(SignedMessage):
    """The certified set of chips that may link at full bandwidth (SPEC: Fixed Set)."""

    CONTENT_TYPE: ClassVar[str] = POD_CERT_CONTENT_TYPE
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("issuer", C.ISS, TSTR),
        Field("issued_at", C.IAT, UINT),
        Field("pod_id", P.HEM_POD_ID, POD_ID_NONZERO),
        Field("members", P.HEM_POD_MEMBERS, MEMBERS),
        Field("size_class", P.HEM_POD_SIZE_CLASS, SIZE_CLASS),
    )

    issuer: str
    issued_at: int
    pod_id: bytes
    members: tuple[tuple[bytes, PublicKey], ...]
    size_class: int

    def __post_init__(self) -> None:
        # A certificate listing more chips than its own limit is self-contradictory: malformed.
        if len(self.members) > self.size_class:
            raise DecodeError(
                f"pod lists {len(self.members)} members, more than its size class {self.size_class}"
            )

    def member_key(self, ueid: bytes) -> PublicKey | None:
        """The device key the certificate lists for ``ueid``, or None if it is no member."""
        for member, key in self.members:
            if member == ueid:
                return key
        return None


_PROOF_FIELDS: tuple[Field, ...] = (
    Field("initiator", P.HEM_LINK_INITIATOR, UEID),
    Field("responder", P.HEM_LINK_RESPONDER, UEID),
    Field("initiator_nonce", P.HEM_LINK_INITIATOR_NONCE, NONCE32),
    Field("responder_nonce", P.HEM_LINK_RESPONDER_NONCE, NONCE32),
    Field("initiator_share", P.HEM_LINK_INITIATOR_SHARE, SHARE),
    Field("responder_share", P.HEM_LINK_RESPONDER_SHARE, SHARE),
    Field("initiator_pod", P.HEM_LINK_INITIATOR_POD, DIGEST32),
    Field("responder_pod", P.HEM_LINK_RESPONDER_POD, DIGEST32),
    Field("pod_id", P.HEM_POD_ID, POD_ID, optional=True),
    Field("accept", P.HEM_LINK_ACCEPT, BOOL),
)


@dataclass(frozen=True, slots=True)
class LinkTranscript:
    """The values one handshake session binds; both proofs of the session carry all of them."""

    initiator: bytes
    responder: bytes
    initiator_nonce: bytes
    responder_nonce: bytes
    initiator_share: bytes
    responder_share: bytes
    initiator_pod: bytes
    responder_pod: bytes

    def values(self) -> list[bytes]:
        """The bound values in field order (what the session key and the proofs commit to)."""
        return [getattr(self, f.name) for f in fields(self)]


@dataclass(frozen=True, slots=True)
class LinkProof(SignedMessage):
    """Base of the two proofs: a signer's statement about one handshake session."""

    CONTENT_TYPE: ClassVar[str]
    FIELDS: ClassVar[tuple[Field, ...]] = _PROOF_FIELDS
    #: which end signs this kind of proof: "initiator" or "responder"
    SIGNER: ClassVar[str]

    initiator: bytes
    responder: bytes
    initiator_nonce: bytes
    responder_nonce: bytes
    initiator_share: bytes
    responder_share: bytes
    initiator_pod: bytes
    responder_pod: bytes
    #: the pod id of the signer's certificate (absent when the signer holds none)
    pod_id: bytes | None
    accept: bool

    @classmethod
    def for_session(cls, t: LinkTranscript, *, pod_id: bytes | None, accept: bool) -> LinkProof:
        return cls(*t.values(), pod_id, accept)  # type: ignore[call-arg, arg-type]

    @property
    def transcript(self) -> LinkTranscript:
        return LinkTranscript(*(getattr(self, f.name) for f in fields(LinkTranscript)))

    @property
    def signer(self) -> bytes:
        """UEID of the chip that signed this proof."""
        return self.initiator if self.SIGNER == "initiator" else self.responder

    @property
    def other(self) -> bytes:
        """UEID of the other end of the session."""
        return self.responder if self.SIGNER == "initiator" else self.initiator

    @property
    def signer_pod(self) -> bytes:
        return self.initiator_pod if self.SIGNER == "initiator" else self.responder_pod

    @property
    def other_pod(self) -> bytes:
        return self.responder_pod if self.SIGNER == "initiator" else self.initiator_pod


@dataclass(frozen=True, slots=True)
class LinkResponse(LinkProof):
    """The responder's proof (second handshake message), signed with its device key."""

    CONTENT_TYPE: ClassVar[str] = LINK_RESPONSE_CONTENT_TYPE
    SIGNER: ClassVar[str] = "responder"


@dataclass(frozen=True, slots=True)
class LinkConfirm(LinkProof):
    """The initiator's proof (third handshake message), signed with its device key."""

    CONTENT_TYPE: ClassVar[str] = LINK_CONFIRM_CONTENT_TYPE
    SIGNER: ClassVar[str] = "initiator"


#: the proof type of each content type (to read a forwarded proof of either role)
PROOF_TYPES: dict[str, type[LinkProof]] = {
    str(LINK_RESPONSE_CONTENT_TYPE): LinkResponse,
    str(LINK_CONFIRM_CONTENT_TYPE): LinkConfirm,
}


def pod_id_of(evidence: Any) -> bytes | None:
    """The pod id an Evidence reports, or None."""
    value: bytes | None = evidence.extensions.get(EVIDENCE_POD_ID.name)
    return value


def links_of(evidence: Any) -> tuple[bytes, ...]:
    """The live full-bandwidth peers an Evidence reports (empty if none)."""
    value: tuple[bytes, ...] = evidence.extensions.get(EVIDENCE_LINKS.name, ())
    return value


def link_refusals_of(evidence: Any) -> tuple[bytes, ...]:
    """The refused-link proofs an Evidence carries (empty if none)."""
    value: tuple[bytes, ...] = evidence.extensions.get(EVIDENCE_LINK_REFUSALS.name, ())
    return value
