"""Reason codes of the Fixed Set (130-159), judged by the link-graph appraisal (pods.graph)."""

from __future__ import annotations

from attest.verify.reasons import ReasonCode, Tier

FIRST, LAST = 130, 159


class PodReason(ReasonCode):
    #: the chip names a pod this verifier has no certificate for (warning)
    POD_UNKNOWN = 130, Tier.WARNING
    POD_NOT_MEMBER = 131
    POD_REVOKED = 132
    POD_CONFLICT = 133
    LINK_NON_MEMBER = 134
    #: a link only one end reports (warning, on both ends)
    LINK_ONE_SIDED = 135, Tier.WARNING
    COMPONENT_OVER_LIMIT = 136
    LINK_ATTEMPT_REFUSED = 137
