"""Reason codes and EAR status tiers: the stable vocabulary of every verdict.

Numbers are stable wire values (they appear in signed results, vectors and audit logs); names
are stable identifiers for logs and JSON. A verdict's tier is the worst tier of its reasons, so
an overall status is never better than its worst part (EAR semantics).
"""

from __future__ import annotations

import enum


class Tier(enum.IntEnum):
    """EAR trustworthiness tiers (draft-ietf-rats-ear §3.2)."""

    NONE = 0
    AFFIRMING = 2
    WARNING = 32
    CONTRAINDICATED = 96


class Reason(enum.IntEnum):
    """Why a verdict is not (only) affirming. SPEC.md §9 lists each with its check."""

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
    FIRMWARE_OUTDATED = 81
    FIRMWARE_UNKNOWN = 82
    DEBUG_ENABLED = 83
    # -- Offline Licensing (100-129): attest/licensing
    #: the chip reports a license serial the ledger never issued to it
    LICENSE_SERIAL_UNKNOWN = 100
    #: the chip reports more budget left than the ledger ever issued to it
    LICENSE_BUDGET_EXCEEDS_ISSUED = 101
    #: the chip reports a lower license serial than it reported before
    LICENSE_SERIAL_ROLLBACK = 102
    #: the chip claims budget left on a license that has expired in its own chip time
    LICENSE_EXPIRY_IGNORED = 103
    # -- end Offline Licensing
    # -- Fixed Set pods and links (130-159): attest/pods, judged by attest/verify/graph.py
    POD_UNKNOWN = 130
    POD_NOT_MEMBER = 131
    POD_REVOKED = 132
    POD_CONFLICT = 133
    LINK_NON_MEMBER = 134
    LINK_ONE_SIDED = 135
    COMPONENT_OVER_LIMIT = 136
    LINK_ATTEMPT_REFUSED = 137
    # -- end Fixed Set

    @property
    def tier(self) -> Tier:
        return _TIERS.get(self, Tier.CONTRAINDICATED)


_TIERS: dict[Reason, Tier] = {
    Reason.FIRMWARE_OUTDATED: Tier.WARNING,
    Reason.FIRMWARE_UNKNOWN: Tier.WARNING,
    Reason.DEBUG_ENABLED: Tier.WARNING,
    # -- Fixed Set: a pod this verifier has no certificate for, a link only one end reports
    Reason.POD_UNKNOWN: Tier.WARNING,
    Reason.LINK_ONE_SIDED: Tier.WARNING,
    # -- end Fixed Set
}


def tier_of(reasons: tuple[Reason, ...] | list[Reason]) -> Tier:
    """The verdict tier: the worst tier among ``reasons``, or affirming if there are none."""
    worst = Tier.AFFIRMING
    for r in reasons:
        t = r.tier
        if t > worst:
            worst = t
    return worst
