"""Committees: an authority as n officer keys of which k must sign (SPEC B.3).

A *committee descriptor* names the authority, a number, its officer keys, its threshold k and
optional per-act thresholds (a content type whose acts need more officers, e.g. revocation
lists or federation agreements). It is itself an act of the committee, a COSE_Sign:

* the first descriptor an authority publishes (genesis) is signed by its own officers, at
  least its own threshold for committee acts; relying parties and chips hold it out of band as
  its digest (SHA-256 of the payload), the committee's trust anchor;
* a rotation (new officers, another k) is a descriptor with a strictly greater number signed by
  at least the committee-act threshold of the *current* committee; a verifier keeps the newest
  number it accepted durably and refuses any descriptor not above it (COMMITTEE_STALE).

The single-key authority of SPEC §3 is the committee n = k = 1 (:meth:`Committee.single`): every
act whose threshold is 1 may be a COSE_Sign1 of SPEC §4.3 under one officer key, so every token
an authority signs today is, unchanged, an act of its 1-of-1 committee.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from attest.codec.cbor import decode
from attest.codec.cose import TAG18, verify1
from attest.errors import AttestError, ContentTypeError, DecodeError, SignatureError
from attest.federation import claims as F
from attest.federation.reasons import FederationReason
from attest.federation.sign import (
    TAG98,
    FederationError,
    check_signatures,
    kid_of,
    parse_sign,
    sign_multi,
)
from attest.keys import PublicKey, Signer
from attest.messages import claims as C
from attest.messages.schema import TSTR, UINT, ClaimsDocument, Field, Kind

COMMITTEE_CONTENT_TYPE = "application/vnd.attest.committee+cbor"
MAX_OFFICERS = 32

_U64_MAX = (1 << 64) - 1


def _officers(v: Any) -> tuple[PublicKey, ...]:
    if type(v) is not list or not 1 <= len(v) <= MAX_OFFICERS:
        raise DecodeError(f"officers must be an array of 1..{MAX_OFFICERS} keys")
    if any(type(x) is not bytes or len(x) != 32 for x in v):
        raise DecodeError("an officer key is 32 bytes")
    if v != sorted(set(v)):
        raise DecodeError("officer keys must be distinct and in ascending order")
    return tuple(PublicKey(x) for x in v)


def _act_thresholds(v: Any) -> tuple[tuple[str, int], ...]:
    if type(v) is not dict or not 1 <= len(v) <= 64:
        raise DecodeError("act thresholds must be a map of 1..64 content types")
    out = []
    for ct, k in v.items():
        if type(ct) is not str or not 1 <= len(ct) <= 256:
            raise DecodeError("an act threshold is keyed by a content type")
        if type(k) is not int or not 1 <= k <= MAX_OFFICERS:
            raise DecodeError("an act threshold is 1..32")
        out.append((ct, k))
    return tuple(sorted(out))


OFFICERS = Kind(_officers, lambda keys: [k.raw for k in keys])
ACT_THRESHOLDS = Kind(_act_thresholds, dict)


@dataclass(frozen=True, slots=True)
class Committee(ClaimsDocument):
    """One numbered committee of an authority (the payload of a committee descriptor)."""

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("authority_id", C.ISS, TSTR),
        Field("issued_at", C.IAT, UINT),
        Field("number", F.HEM_COMMITTEE_NUMBER, UINT),
        Field("officers", F.HEM_COMMITTEE_OFFICERS, OFFICERS),
        Field("threshold", F.HEM_COMMITTEE_THRESHOLD, UINT),
        Field("act_thresholds", F.HEM_COMMITTEE_ACT_THRESHOLDS, ACT_THRESHOLDS, optional=True),
    )

    authority_id: str
    issued_at: int
    number: int
    officers: tuple[PublicKey, ...]
    threshold: int
    act_thresholds: tuple[tuple[str, int], ...] | None = None
    #: officer keys by kid (derived in __post_init__; never shared between instances)
    _kids: dict[bytes, PublicKey] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        raws = [k.raw for k in self.officers]
        if not 1 <= len(raws) <= MAX_OFFICERS or raws != sorted(set(raws)):
            raise ValueError("officers: 1..32 distinct keys in ascending order")
        if not 1 <= self.threshold <= len(raws):
            raise ValueError(f"threshold {self.threshold} is not in 1..{len(raws)}")
        for _ct, k in self.act_thresholds or ():
            if not self.threshold <= k <= len(raws):
                raise ValueError(f"an act threshold {k} is not in {self.threshold}..{len(raws)}")
        object.__setattr__(self, "_kids", {kid_of(k): k for k in self.officers})

    @classmethod
    def of(
        cls,
        authority_id: str,
        officers: Iterable[PublicKey],
        threshold: int,
        *,
        number: int = 1,
        issued_at: int = 0,
        act_thresholds: dict[str, int] | None = None,
    ) -> Committee:
        """A committee from keys in any order (sorted here, as the descriptor requires)."""
        keys = tuple(sorted(officers, key=lambda k: k.raw))
        acts = (
            tuple(sorted((str(ct), k) for ct, k in act_thresholds.items()))
            if act_thresholds
            else None
        )
        return cls(authority_id, issued_at, number, keys, threshold, acts)

    @classmethod
    def single(cls, authority_id: str, key: PublicKey) -> Committee:
        """The single-key authority of SPEC §3 as the committee n = k = 1 (number 0)."""
        return cls(authority_id, 0, 0, (key,), 1)

    # -- wire ------------------------------------------------------------------------------

    @property
    def digest(self) -> bytes:
        """SHA-256 of the descriptor's payload: the committee's trust anchor (fused in chips)."""
        return hashlib.sha256(self.payload()).digest()

    def sign(self, keys: Iterable[Signer]) -> bytes:
        """This descriptor as a COSE_Sign signed by ``keys`` (officers of the signing committee)."""
        return sign_multi(COMMITTEE_CONTENT_TYPE, self.payload(), keys)

    # -- acts --------------------------------------------------------------------------------

    @property
    def kids(self) -> dict[bytes, PublicKey]:
        """Officer keys by kid."""
        return self._kids

    def threshold_for(self, content_type: str) -> int:
        """How many officers must sign an act of ``content_type``."""
        for ct, k in self.act_thresholds or ():
            if ct == content_type:
                return k
        return self.threshold

    def signers(self, token: bytes, content_type: str) -> tuple[bytes, frozenset[bytes]]:
        """Payload and signing kids of a COSE_Sign act, every signature checked (not counted)."""
        return check_signatures(token, content_type, self._kids)

    def verify_act(self, token: bytes, content_type: str) -> bytes:
        """The payload of an act of this committee, or FederationError (SPEC B.2, B.3).

        A COSE_Sign needs at least :meth:`threshold_for` distinct valid officer signatures. A
        COSE_Sign1 (SPEC §4.3) is one officer's signature: accepted only where the threshold
        is 1 (the single-key authority's tokens, unchanged).
        """
        need = self.threshold_for(content_type)
        if token[:1] == TAG18:
            if need > 1:
                raise FederationError(
                    FederationReason.ACT_TOO_FEW_SIGNATURES, f"a COSE_Sign1 is 1 of {need}"
                )
            return self._verify_sign1(token, content_type)
        if token[:2] != TAG98:
            raise FederationError(FederationReason.ACT_MALFORMED, "neither COSE_Sign nor Sign1")
        payload, kids = self.signers(token, content_type)
        if len(kids) < need:
            raise FederationError(
                FederationReason.ACT_TOO_FEW_SIGNATURES, f"{len(kids)} of {need} officers"
            )
        return payload

    def _verify_sign1(self, token: bytes, content_type: str) -> bytes:
        reason = FederationReason.ACT_BAD_SIGNATURE
        for key in self.officers:
            try:
                return verify1(token, key, content_type)
            except ContentTypeError:
                reason = FederationReason.ACT_WRONG_CONTENT_TYPE
                break
            except SignatureError:
                continue
            except DecodeError:
                reason = FederationReason.ACT_MALFORMED
                break
        raise FederationError(reason, "as a COSE_Sign1 of an officer")


def open_committee(
    token: bytes, *, current: Committee | None = None, digest: bytes | None = None
) -> Committee:
    """Accept a committee descriptor (SPEC B.3), or raise FederationError.

    With ``current`` (the newest committee of this authority the caller accepted): a rotation,
    signed by at least ``current.threshold_for(committee)`` of the current officers, for the
    same authority, with a number greater than ``current.number`` (else COMMITTEE_STALE).
    Without: a genesis descriptor, signed by enough of its *own* officers, and equal to
    ``digest`` (its trust anchor) when one is given.
    """
    if current is not None:
        payload = current.verify_act(token, COMMITTEE_CONTENT_TYPE)
        new = _parse(payload)
        if new.authority_id != current.authority_id:
            raise FederationError(FederationReason.ACT_MALFORMED, "another authority's committee")
        if new.number <= current.number:
            raise FederationError(
                FederationReason.COMMITTEE_STALE,
                f"number {new.number} is not above {current.number}",
            )
        return new
    # genesis: the keys that must have signed are in the payload itself, so it is parsed
    # first; nothing of it is used until its own officers' signatures are counted
    if token[:2] != TAG98:
        raise FederationError(FederationReason.ACT_MALFORMED, "a descriptor is a COSE_Sign")
    new = _parse(parse_sign(token).payload)
    if digest is not None and new.digest != digest:
        raise FederationError(
            FederationReason.AUTHORITY_NOT_RECOGNISED, "not the committee its anchor names"
        )
    new.verify_act(token, COMMITTEE_CONTENT_TYPE)
    return new


def _parse(payload: bytes) -> Committee:
    try:
        return Committee.from_claims(decode(payload))
    except AttestError as exc:
        raise FederationError(FederationReason.ACT_MALFORMED, str(exc)) from None
