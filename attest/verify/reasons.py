"""Reason codes and EAR status tiers: the stable vocabulary of every verdict.

Numbers are stable wire values (they appear in signed results, vectors and audit logs); names
are stable identifiers for logs and JSON. A verdict's tier is the worst tier of its reasons, so
an overall status is never better than its worst part (EAR semantics).

The core's reasons are :class:`Reason`. Each mechanism owns a range of codes and declares its
reasons as a :class:`ReasonCode` enum in its own package (e.g. ``attest.licensing.reasons``);
:func:`register_reasons` checks that ranges never overlap, and :func:`reason_of` finds the
member for any registered code (for reading audit logs and results back).
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


class ReasonCode(enum.IntEnum):
    """Base of every reason enum: a member is ``NAME = code`` (contraindicated) or
    ``NAME = code, Tier.WARNING``."""

    tier: Tier

    def __new__(cls, code: int, tier: Tier = Tier.CONTRAINDICATED) -> ReasonCode:
        member = int.__new__(cls, code)
        member._value_ = code
        member.tier = tier
        return member


class Reason(ReasonCode):
    """Why a verdict is not (only) affirming: the core's checks. SPEC.md §9 lists each."""

    # -- envelope and chain (1-19)
    MALFORMED = 1
    WRONG_CONTENT_TYPE = 2
    BAD_SIGNATURE = 3
    CERT_CHAIN_INVALID = 4
    CERT_EXPIRED = 5
    UNKNOWN_HWMODEL = 6
    # -- freshness and binding (20-39)
    NONCE_MISMATCH = 20
    CHALLENGE_EXPIRED = 21
    WRONG_AUDIENCE = 22
    UEID_MISMATCH = 23
    REGISTRATION_MISMATCH = 24
    EVIDENCE_REPLAY = 25
    NOT_ENROLLED = 26
    #: the device key signed two different fresh Evidence tokens with one counter value (a
    #: copied chip); a node's check (SPEC §9.11, attest.verify.clone), not appraise()'s
    CLONE_SUSPECTED = 27
    # -- monotonic state (40-59)
    BOOTCOUNT_ROLLBACK = 40
    COUNTER_ROLLBACK = 41
    METER_ROLLBACK = 42
    METER_RATE_EXCEEDED = 43
    # -- revocation (60-79)
    DEVICE_REVOKED = 60
    MANUFACTURER_REVOKED = 61
    # -- device posture (80-99)
    FIRMWARE_MEASUREMENT_MISMATCH = 80
    FIRMWARE_OUTDATED = 81, Tier.WARNING
    FIRMWARE_UNKNOWN = 82, Tier.WARNING
    DEBUG_ENABLED = 83, Tier.WARNING


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
