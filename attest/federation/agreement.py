"""Federation agreements: who the members are and what each recognises of the others (SPEC B.4).

An agreement is a numbered, expiring document listing its member authorities (id, committee,
regions), a threshold K of members, and per ordered pair (``by``, ``of``) what ``by`` recognises
of ``of``: endorsements of named manufacturers (chips of ``of`` are appraised by ``by``'s
nodes), attestation results of ``of``'s verifier nodes (for ``by``'s relying parties), licences
that ``of``'s delegated nodes issue to ``by``'s roaming chips (up to a partner quota of FLOPs),
and ``of``'s pod certificates.

It is one COSE_Sign with signatures of the members' officers. A member *approves* it when at
least its committee's threshold for agreements of its officers signed; the agreement takes
effect when at least K members approve. The first agreement a verifier accepts must be
approved by its own authority (so nobody can enrol a verifier in a federation it has not
joined) and counts approvals among the members it lists; an amendment counts approvals among
the members of the agreement in force, with that agreement's K, so members the amendment adds
have no say in their own admission. A verifier keeps the highest agreement number it accepted,
durably, and refuses any agreement not above it (AGREEMENT_STALE), and any that has expired.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from attest.codec.cbor import decode
from attest.errors import AttestError, DecodeError
from attest.federation import claims as F
from attest.federation.committee import MAX_OFFICERS, Committee
from attest.federation.reasons import FederationReason
from attest.federation.sign import FederationError, check_signatures, parse_sign, sign_multi
from attest.keys import PublicKey, Signer
from attest.messages import claims as C
from attest.messages.schema import TSTR, UINT, ClaimsDocument, Field, Kind

AGREEMENT_CONTENT_TYPE = "application/vnd.attest.federation-agreement+cbor"
MAX_MEMBERS = 32
MAX_RECOGNITIONS = 1024
_U64_MAX = (1 << 64) - 1


def _text(v: Any) -> str:
    if type(v) is not str or not 1 <= len(v) <= 256:
        raise DecodeError("expected a text string of 1..256 characters")
    return v


def _texts(v: Any, lo: int, hi: int) -> tuple[str, ...]:
    if type(v) is not list or not lo <= len(v) <= hi:
        raise DecodeError(f"expected an array of {lo}..{hi} text strings")
    return tuple(_text(x) for x in v)


def _bool(v: Any) -> bool:
    if type(v) is not bool:
        raise DecodeError("expected a boolean")
    return v


@dataclass(frozen=True, slots=True)
class Member:
    """A member authority: its id, its committee (as of this agreement) and its regions."""

    authority_id: str
    committee: Committee
    regions: tuple[str, ...]

    def to_claims(self) -> dict[int, Any]:
        return {
            F.MEMBER_ID: self.authority_id,
            F.MEMBER_COMMITTEE: self.committee.to_claims(),
            F.MEMBER_REGIONS: list(self.regions),
        }

    @classmethod
    def from_claims(cls, v: Any) -> Member:
        if type(v) is not dict or set(v) != {F.MEMBER_ID, F.MEMBER_COMMITTEE, F.MEMBER_REGIONS}:
            raise DecodeError("a member is {1: id, 2: committee, 3: regions}")
        member = cls(
            _text(v[F.MEMBER_ID]),
            Committee.from_claims(v[F.MEMBER_COMMITTEE]),
            _texts(v[F.MEMBER_REGIONS], 1, 64),
        )
        if member.committee.authority_id != member.authority_id:
            raise DecodeError("a member's committee names another authority")
        return member


@dataclass(frozen=True, slots=True)
class Recognition:
    """What authority ``by`` recognises of authority ``of`` (one ordered pair)."""

    by: str
    of: str
    #: manufacturers of ``of`` whose endorsements (device chains) ``by``'s nodes appraise
    manufacturers: tuple[str, ...] = ()
    #: ``by``'s relying parties accept attestation results of ``of``'s verifier nodes
    results: bool = False
    #: FLOPs that ``of``'s delegated nodes may license to ``by``'s roaming chips (0: none)
    licence_quota: int = 0
    #: ``by`` recognises ``of``'s pod certificates
    pods: bool = False

    _KEYS: ClassVar[frozenset[int]] = frozenset(
        {
            F.RECOGNITION_BY,
            F.RECOGNITION_OF,
            F.RECOGNITION_MANUFACTURERS,
            F.RECOGNITION_RESULTS,
            F.RECOGNITION_LICENCE_QUOTA,
            F.RECOGNITION_PODS,
        }
    )

    def to_claims(self) -> dict[int, Any]:
        return {
            F.RECOGNITION_BY: self.by,
            F.RECOGNITION_OF: self.of,
            F.RECOGNITION_MANUFACTURERS: list(self.manufacturers),
            F.RECOGNITION_RESULTS: self.results,
            F.RECOGNITION_LICENCE_QUOTA: self.licence_quota,
            F.RECOGNITION_PODS: self.pods,
        }

    @classmethod
    def from_claims(cls, v: Any) -> Recognition:
        if type(v) is not dict or set(v) != cls._KEYS:
            raise DecodeError("a recognition holds exactly the keys 1..6")
        quota = v[F.RECOGNITION_LICENCE_QUOTA]
        if type(quota) is not int or not 0 <= quota <= _U64_MAX:
            raise DecodeError("a licence quota is an unsigned 64-bit integer")
        return cls(
            _text(v[F.RECOGNITION_BY]),
            _text(v[F.RECOGNITION_OF]),
            _texts(v[F.RECOGNITION_MANUFACTURERS], 0, 256),
            _bool(v[F.RECOGNITION_RESULTS]),
            quota,
            _bool(v[F.RECOGNITION_PODS]),
        )


MEMBERS = Kind(
    lambda v: _list(v, Member.from_claims, 1, MAX_MEMBERS), lambda ms: [m.to_claims() for m in ms]
)
RECOGNITIONS = Kind(
    lambda v: _list(v, Recognition.from_claims, 0, MAX_RECOGNITIONS),
    lambda rs: [r.to_claims() for r in rs],
)


def _list(v: Any, item: Any, lo: int, hi: int) -> tuple[Any, ...]:
    if type(v) is not list or not lo <= len(v) <= hi:
        raise DecodeError(f"expected an array of {lo}..{hi} items")
    return tuple(item(x) for x in v)


@dataclass(frozen=True, slots=True)
class Agreement(ClaimsDocument):
    """One numbered federation agreement (its payload)."""

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("agreement_id", F.HEM_AGREEMENT_ID, TSTR),
        Field("number", F.HEM_AGREEMENT_NUMBER, UINT),
        Field("issued_at", C.IAT, UINT),
        Field("expires_at", C.EXP, UINT),
        Field("members", F.HEM_AGREEMENT_MEMBERS, MEMBERS),
        Field("threshold", F.HEM_AGREEMENT_THRESHOLD, UINT),
        Field("recognitions", F.HEM_AGREEMENT_RECOGNITIONS, RECOGNITIONS),
    )

    agreement_id: str
    number: int
    issued_at: int
    expires_at: int
    members: tuple[Member, ...]
    threshold: int
    recognitions: tuple[Recognition, ...] = ()

    def __post_init__(self) -> None:
        ids = [m.authority_id for m in self.members]
        if len(set(ids)) != len(ids):
            raise ValueError("two members share an authority id")
        if not 1 <= self.threshold <= len(ids):
            raise ValueError(f"threshold {self.threshold} is not in 1..{len(ids)}")
        kids = [k for m in self.members for k in m.committee.kids]
        if len(set(kids)) != len(kids):
            raise ValueError("an officer key belongs to two members")
        pairs = [(r.by, r.of) for r in self.recognitions]
        if len(set(pairs)) != len(pairs):
            raise ValueError("two recognitions for one ordered pair")
        for by, of in pairs:
            if by == of or by not in ids or of not in ids:
                raise ValueError(f"recognition {by} -> {of} is not between two members")

    def member(self, authority_id: str) -> Member | None:
        for m in self.members:
            if m.authority_id == authority_id:
                return m
        return None

    def recognition(self, by: str, of: str) -> Recognition | None:
        """What ``by`` recognises of ``of`` under this agreement (None: nothing)."""
        for r in self.recognitions:
            if r.by == by and r.of == of:
                return r
        return None

    # -- wire ------------------------------------------------------------------------------

    def sign(self, keys: Iterable[Signer]) -> bytes:
        """This agreement as a COSE_Sign signed by ``keys`` (officers of its members)."""
        return sign_multi(AGREEMENT_CONTENT_TYPE, self.payload(), keys)


def parse_agreement(payload: bytes) -> Agreement:
    try:
        return Agreement.from_claims(decode(payload))
    except AttestError as exc:
        raise FederationError(FederationReason.ACT_MALFORMED, str(exc)) from None


def approvals(token: bytes, committees: Mapping[str, Committee]) -> tuple[bytes, frozenset[str]]:
    """The payload and the members (by id) whose officers approve the agreement ``token``.

    Every signature must be an officer's of one of ``committees`` (else ACT_UNKNOWN_OFFICER:
    a non-member or a rotated-out officer), distinct and valid. A member approves when at
    least its committee's threshold for agreements of its officers signed.
    """
    officers: dict[bytes, PublicKey] = {}
    owner: dict[bytes, str] = {}
    for member_id, committee in committees.items():
        for kid, key in committee.kids.items():
            officers[kid] = key
            owner[kid] = member_id
    payload, kids = check_signatures(token, AGREEMENT_CONTENT_TYPE, officers)
    approved = frozenset(
        member_id
        for member_id, committee in committees.items()
        if sum(1 for k in kids if owner[k] == member_id)
        >= committee.threshold_for(AGREEMENT_CONTENT_TYPE)
    )
    return payload, approved


def open_agreement(
    token: bytes,
    *,
    home: Committee,
    in_force: Agreement | None,
    highest: int,
    now_s: int,
    committees: Mapping[str, Committee] | None = None,
) -> Agreement:
    """Accept a federation agreement for a verifier of authority ``home`` (SPEC B.4).

    ``in_force`` is the agreement the verifier holds (None before the first), ``highest`` the
    highest agreement number it accepted (kept durably), ``committees`` the newest committee
    it accepted for each member by rotation (they replace the agreement's descriptions).
    Raises FederationError with the reason of the first failed check.
    """
    obj = parse_sign(token)
    if in_force is None:
        new = parse_agreement(obj.payload)  # the keys to count are in the new document
        voters = {m.authority_id: m.committee for m in new.members}
        need = new.threshold
    else:
        voters = {m.authority_id: m.committee for m in in_force.members}
        need = in_force.threshold
    voters.update({k: v for k, v in (committees or {}).items() if k in voters})
    payload, approved = approvals(token, voters)
    new = parse_agreement(payload)
    if len(approved) < need or (in_force is None and home.authority_id not in approved):
        raise FederationError(
            FederationReason.ACT_TOO_FEW_SIGNATURES,
            f"{len(approved)} of {need} members approve" + ("" if in_force else " (home first)"),
        )
    if in_force is not None and new.agreement_id != in_force.agreement_id:
        raise FederationError(FederationReason.AUTHORITY_NOT_RECOGNISED, "another agreement")
    mine = new.member(home.authority_id)
    if mine is None:
        raise FederationError(FederationReason.AUTHORITY_NOT_RECOGNISED, "home is not a member")
    if mine.committee.number < home.number:
        raise FederationError(FederationReason.COMMITTEE_STALE, "describes an older home committee")
    if mine.committee != home:
        raise FederationError(
            FederationReason.AUTHORITY_NOT_RECOGNISED, "describes another home committee"
        )
    if new.number <= highest:
        raise FederationError(
            FederationReason.AGREEMENT_STALE, f"number {new.number} is not above {highest}"
        )
    if now_s >= new.expires_at:
        raise FederationError(FederationReason.AGREEMENT_EXPIRED, f"expired at {new.expires_at}")
    return new


__all__ = [
    "AGREEMENT_CONTENT_TYPE",
    "MAX_OFFICERS",
    "Agreement",
    "Member",
    "Recognition",
    "approvals",
    "open_agreement",
    "parse_agreement",
]
