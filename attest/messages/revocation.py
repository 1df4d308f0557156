"""Numbered revocation lists signed by the authority.

A list is complete (not a delta): a verifier or chip that holds list N knows every revocation up
to N, and refuses to replace it with a list of a lower or equal number (anti-rollback).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar

from attest.errors import AttestError, ChipRefusal, DecodeError
from attest.keys import PublicKey
from attest.messages import claims as C
from attest.messages.content import ContentType
from attest.messages.schema import (
    TSTR,
    TSTR_LIST,
    UEID_LIST,
    UINT,
    Field,
    Kind,
    SignedMessage,
    list_of,
)

#: Offline Licensing: revoked delegation ids (an optional claim; absent when none are revoked)
DELEGATION_ID_LIST = Kind(list_of(UINT.parse, 4096), list)


def _pod_id(v: Any) -> bytes:
    if type(v) is not bytes or len(v) != 16:
        raise DecodeError("a revoked pod id must be 16 bytes (SPEC §14.1)")
    return v


#: Fixed Set: revoked pod ids (``[0*4096 pod-id]``; carried by every implementation)
POD_ID_LIST = Kind(list_of(_pod_id, 4096), list)


@dataclass(frozen=True, slots=True)
class RevocationList(SignedMessage):
    CONTENT_TYPE: ClassVar[str] = ContentType.REVOCATION_LIST
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("issuer", C.ISS, TSTR),
        Field("issued_at", C.IAT, UINT),
        Field("number", C.HEM_LIST_NUMBER, UINT),
        Field("devices", C.HEM_REVOKED_DEVICES, UEID_LIST),
        Field("manufacturers", C.HEM_REVOKED_MANUFACTURERS, TSTR_LIST),
        Field("verifiers", C.HEM_REVOKED_VERIFIERS, TSTR_LIST),
        Field("pods", C.HEM_REVOKED_PODS, POD_ID_LIST),
        Field("delegations", C.HEM_REVOKED_DELEGATIONS, DELEGATION_ID_LIST, optional=True),
    )

    issuer: str
    issued_at: int
    number: int
    devices: tuple[bytes, ...] = ()
    manufacturers: tuple[str, ...] = ()
    verifiers: tuple[str, ...] = ()
    pods: tuple[bytes, ...] = ()
    #: Offline Licensing: revoked delegation ids; None (claim absent) when there are none
    delegations: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class Revocations:
    """The verification core's view of a revocation list: sets for O(1) membership."""

    number: int = 0
    devices: frozenset[bytes] = field(default_factory=frozenset)
    manufacturers: frozenset[str] = field(default_factory=frozenset)
    verifiers: frozenset[str] = field(default_factory=frozenset)
    pods: frozenset[bytes] = field(default_factory=frozenset)
    #: Offline Licensing: revoked delegation ids
    delegations: frozenset[int] = field(default_factory=frozenset)

    @classmethod
    def from_list(cls, rl: RevocationList) -> Revocations:
        return cls(
            number=rl.number,
            devices=frozenset(rl.devices),
            manufacturers=frozenset(rl.manufacturers),
            verifiers=frozenset(rl.verifiers),
            pods=frozenset(rl.pods),
            delegations=frozenset(rl.delegations or ()),
        )


class ListRefusal(enum.StrEnum):
    """Why a chip refused a revocation list (the same rule for every mechanism that keeps one)."""

    REVOCATIONS_INVALID = "REVOCATIONS_INVALID"
    REVOCATIONS_STALE = "REVOCATIONS_STALE"


def verify_newer_list(
    token: bytes, authority_id: str, authority_key: PublicKey, held_number: int
) -> RevocationList:
    """The list in ``token`` if the authority signed it and it is newer than ``held_number``.

    A chip accepts a list only then, so an old list can never be replayed to un-revoke
    anything; raises ChipRefusal (REVOCATIONS_INVALID or REVOCATIONS_STALE) otherwise.
    """
    try:
        rl = RevocationList.verify(token, authority_key)
    except AttestError as exc:
        raise ChipRefusal(ListRefusal.REVOCATIONS_INVALID, str(exc)) from None
    if rl.issuer != authority_id:
        raise ChipRefusal(
            ListRefusal.REVOCATIONS_INVALID, f"list issued by {rl.issuer!r}, not the authority"
        )
    if rl.number <= held_number:
        raise ChipRefusal(
            ListRefusal.REVOCATIONS_STALE, f"list {rl.number} is not newer than {held_number}"
        )
    return rl
