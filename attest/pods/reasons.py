"""Reason codes of the Fixed Set (130-159), judged by the link-graph appraisal (pods.graph).

The pod a chip belongs to and the links it runs are its configuration (AR4SI ``configuration``:
32 known vulnerabilities for the warnings, 96 contraindicated); a refused link the chip signed
acceptance of shows firmware that ignores the pod rule (``executables`` 96)."""

from __future__ import annotations

from attest.verify.reasons import ReasonCode, Trust

FIRST, LAST = 130, 159


class PodReason(ReasonCode):
    #: the chip names a pod this verifier has no certificate for (warning)
    POD_UNKNOWN = 130, Trust.CONFIGURATION, 32
    POD_NOT_MEMBER = 131, Trust.CONFIGURATION, 96
    POD_REVOKED = 132, Trust.CONFIGURATION, 96
    POD_CONFLICT = 133, Trust.CONFIGURATION, 96
    LINK_NON_MEMBER = 134, Trust.CONFIGURATION, 96
    #: a link only one end reports (warning, on both ends)
    LINK_ONE_SIDED = 135, Trust.CONFIGURATION, 32
    COMPONENT_OVER_LIMIT = 136, Trust.CONFIGURATION, 96
    LINK_ATTEMPT_REFUSED = 137, Trust.EXECUTABLES, 96
