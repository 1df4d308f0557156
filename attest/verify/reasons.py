"""Reason codes and EAR status tiers: the stable vocabulary of every verdict.

Numbers are stable wire values (they appear in signed results, vectors and audit logs); names
are stable identifiers for logs and JSON. A verdict's tier is the worst tier of its reasons, so
an overall status is never better than its worst part (EAR semantics).

The core's reasons are :class:`Reason`. Each mechanism owns a range of codes and declares its
reasons as a :class:`ReasonCode` enum in its own package (e.g. ``attest.licensing.reasons``);
:func:`register_reasons` checks that ranges never overlap, and :func:`reason_of` finds the
member for any registered code (for reading audit logs and results back).

Every reason also names the AR4SI trustworthiness claim it stands for (draft-ietf-rats-ar4si
§2.3): a category of the trustworthiness vector and a value, e.g. FIRMWARE_OUTDATED is
``executables`` 32 ("known bugs or vulnerabilities"). The reason's tier is the tier of that
value, so the two cannot disagree, and :func:`trustworthiness_vector` turns a verdict's reasons
into the vector a result carries (SPEC §10.1 is the table).
"""

from __future__ import annotations

import enum
import importlib
from typing import Any


class Tier(enum.IntEnum):
    """EAR trustworthiness tiers (draft-ietf-rats-ear §3.2)."""

    NONE = 0
    AFFIRMING = 2
    WARNING = 32
    CONTRAINDICATED = 96


class Trust(enum.IntEnum):
    """The categories of an AR4SI trustworthiness vector, by their EAR CBOR labels."""

    INSTANCE_IDENTITY = 0
    CONFIGURATION = 1
    EXECUTABLES = 2
    FILE_SYSTEM = 3
    HARDWARE = 4
    RUNTIME_OPAQUE = 5
    STORAGE_OPAQUE = 6
    SOURCED_DATA = 7

    @property
    def label(self) -> str:
        """The category's JSON name (``instance-identity`` ...)."""
        return self.name.lower().replace("_", "-")


def claim_tier(value: int) -> Tier:
    """The tier of an AR4SI trustworthiness claim value (-128..127; ar4si §2.3.1)."""
    if -1 <= value <= 1:
        return Tier.NONE
    if -32 <= value <= 31:
        return Tier.AFFIRMING
    if -96 <= value <= 95:
        return Tier.WARNING
    return Tier.CONTRAINDICATED


class ReasonCode(enum.IntEnum):
    """Base of every reason enum: a member is ``NAME = code, Trust.CATEGORY, value``, the AR4SI
    claim the reason stands for; its tier is that value's (96..127 contraindicated, 32..95
    warning)."""

    tier: Tier
    #: the trustworthiness-vector category this reason speaks to
    trust: Trust
    #: the AR4SI claim value it sets there
    claim: int

    def __new__(cls, code: int, trust: Trust | None = None, claim: int = 0) -> ReasonCode:
        member = int.__new__(cls, code)
        member._value_ = code
        if trust is None:
            raise TypeError(
                f"reason {code} declares no AR4SI claim: write NAME = {code}, Trust.X, value"
            )
        member.trust = trust
        member.claim = claim
        member.tier = claim_tier(claim)
        if member.tier < Tier.WARNING:
            raise ValueError(f"reason {code}: AR4SI value {claim} is not a warning or worse")
        return member


class Reason(ReasonCode):
    """Why a verdict is not (only) affirming: the core's checks. SPEC.md §9 lists each."""

    # AR4SI values used (draft-ietf-rats-ar4si §2.3): 99 cryptographic validation failed (any
    # category); instance-identity 96 recognized but not trustworthy, 97 not recognized;
    # hardware 96 contraindicated, 97 unrecognized; executables 32 known vulnerabilities,
    # 33 unrecognized, 96 contraindicated; configuration 32 known vulnerabilities.
    # -- envelope and chain (1-19)
    MALFORMED = 1, Trust.INSTANCE_IDENTITY, 99
    WRONG_CONTENT_TYPE = 2, Trust.INSTANCE_IDENTITY, 99
    BAD_SIGNATURE = 3, Trust.INSTANCE_IDENTITY, 99
    CERT_CHAIN_INVALID = 4, Trust.HARDWARE, 99
    CERT_EXPIRED = 5, Trust.HARDWARE, 97
    UNKNOWN_HWMODEL = 6, Trust.HARDWARE, 97
    # -- freshness and binding (20-39): not a fresh answer to this challenge is, for this
    # appraisal, Evidence that failed validation
    NONCE_MISMATCH = 20, Trust.INSTANCE_IDENTITY, 99
    CHALLENGE_EXPIRED = 21, Trust.INSTANCE_IDENTITY, 99
    WRONG_AUDIENCE = 22, Trust.INSTANCE_IDENTITY, 99
    UEID_MISMATCH = 23, Trust.INSTANCE_IDENTITY, 96
    REGISTRATION_MISMATCH = 24, Trust.INSTANCE_IDENTITY, 97
    EVIDENCE_REPLAY = 25, Trust.INSTANCE_IDENTITY, 99
    NOT_ENROLLED = 26, Trust.INSTANCE_IDENTITY, 97
    #: the device key signed two different fresh Evidence tokens with one counter value, or
    #: was seen in two places it cannot have travelled between (a copied chip): the node's
    #: check (SPEC §9.11, attest.verify.clone) and location verification (§15.6)
    CLONE_SUSPECTED = 27, Trust.INSTANCE_IDENTITY, 96
    # -- monotonic state (40-59): counters going back mark a cloned or tampered instance,
    # meters an honest firmware cannot report mark the metering runtime
    BOOTCOUNT_ROLLBACK = 40, Trust.INSTANCE_IDENTITY, 96
    COUNTER_ROLLBACK = 41, Trust.INSTANCE_IDENTITY, 96
    METER_ROLLBACK = 42, Trust.EXECUTABLES, 96
    METER_RATE_EXCEEDED = 43, Trust.EXECUTABLES, 96
    # -- revocation (60-79)
    DEVICE_REVOKED = 60, Trust.INSTANCE_IDENTITY, 96
    MANUFACTURER_REVOKED = 61, Trust.HARDWARE, 96
    # -- device posture (80-99)
    FIRMWARE_MEASUREMENT_MISMATCH = 80, Trust.EXECUTABLES, 96
    FIRMWARE_OUTDATED = 81, Trust.EXECUTABLES, 32
    FIRMWARE_UNKNOWN = 82, Trust.EXECUTABLES, 33
    DEBUG_ENABLED = 83, Trust.CONFIGURATION, 32
    #: the vendor's reference values say this firmware is withdrawn (e.g. a known flaw)
    FIRMWARE_REVOKED = 84, Trust.EXECUTABLES, 96


#: the envelope reasons: the Evidence was not authentic (SPEC §9.5 masking)
ENVELOPE = frozenset(
    (Reason.MALFORMED, Reason.WRONG_CONTENT_TYPE, Reason.BAD_SIGNATURE, Reason.CERT_CHAIN_INVALID)
)

#: reasons a verifier node adds beyond the appraisal procedure of SPEC §9.1-9.10 (which the
#: published vectors pin): the clone check of §9.11 (attest.verify.clone)
NODE_REASONS: frozenset[ReasonCode] = frozenset({Reason.CLONE_SUSPECTED})

#: the code range of each registered reason enum: (first, last) inclusive
_RANGES: dict[type[ReasonCode], tuple[int, int]] = {Reason: (1, 99)}
_BY_CODE: dict[int, ReasonCode] = {int(r): r for r in Reason}
_registry_loaded = False


def register_reasons(reasons: type[ReasonCode], first: int, last: int) -> None:
    """Declare a mechanism's reason enum and the code range it owns (SPEC's reason table)."""
    if _RANGES.get(reasons) == (first, last):
        return
    for other, (lo, hi) in _RANGES.items():
        if first <= hi and lo <= last:
            raise ValueError(f"{reasons.__name__} {first}..{last} overlaps {other.__name__}")
    if any(not first <= int(r) <= last for r in reasons):
        raise ValueError(f"{reasons.__name__} has a code outside {first}..{last}")
    _RANGES[reasons] = (first, last)
    _BY_CODE.update({int(r): r for r in reasons})


def reason_of(code: int) -> ReasonCode | None:
    """The registered reason with this code, or None (a code from a newer peer)."""
    if not _registry_loaded:
        _load_registry()
    return _BY_CODE.get(code)


def registered_reasons() -> list[ReasonCode]:
    """Every registered reason (core and mechanisms), in code order."""
    if not _registry_loaded:
        _load_registry()
    return [_BY_CODE[c] for c in sorted(_BY_CODE)]


def reason_name(code: int) -> str:
    """The reason's name, or the bare number for an unknown code."""
    r = reason_of(code)
    return r.name if r is not None else str(code)


def _load_registry() -> None:
    global _registry_loaded
    _registry_loaded = True
    importlib.import_module("attest.registry")  # see attest.messages.schema.ensure_registry


def tier_of(reasons: tuple[Any, ...] | list[Any]) -> Tier:
    """The verdict tier: the worst tier among ``reasons``, or affirming if there are none."""
    worst = Tier.AFFIRMING
    for r in reasons:
        t = r.tier
        if t > worst:
            worst = t
    return worst


#: the vector of an authentic verdict before any reason: what the core's checks establish when
#: they pass (the chip is recognized, genuine, runs approved firmware in an approved configuration)
AFFIRMED: dict[Trust, int] = {
    Trust.INSTANCE_IDENTITY: 2,
    Trust.CONFIGURATION: 2,
    Trust.EXECUTABLES: 2,
    Trust.HARDWARE: 2,
}


def trustworthiness_vector(reasons: tuple[Any, ...] | list[Any]) -> dict[int, int]:
    """The AR4SI trustworthiness vector of a verdict with these reasons (SPEC §10.1).

    An authentic verdict (no envelope reason) starts from :data:`AFFIRMED`; a verdict on
    Evidence that was not authentic claims nothing but what its reasons say. Each reason then
    sets its category to its value where that is worse (numerically greater: the tiers are
    ordered ranges), so the vector's worst tier is the verdict's tier.
    """
    authentic = not any(r in ENVELOPE for r in reasons)
    vector: dict[int, int] = {int(k): v for k, v in AFFIRMED.items()} if authentic else {}
    for r in reasons:
        key = int(r.trust)
        if vector.get(key, -1) < r.claim:
            vector[key] = r.claim
    return dict(sorted(vector.items()))
