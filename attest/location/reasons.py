"""Reason codes of location verification (160-189), judged by attest.location.appraisal.

The clone signals (impossible travel, two sessions of one chip open at once) use the core's
CLONE_SUSPECTED (27): a clone is a fact about the device key, whichever mechanism saw it.
"""

from __future__ import annotations

from attest.verify.reasons import ReasonCode, Trust

FIRST, LAST = 160, 189


class LocationReason(ReasonCode):
    #: the chip has a licensed region and no location record proves that it is inside (warning:
    #: the chip may well be there, it just did not prove it; a licence is not renewed)
    LOCATION_UNVERIFIED = 160, Trust.CONFIGURATION, 32
    #: the records' feasible region lies entirely outside the chip's licensed region
    LOCATION_OUTSIDE_REGION = 161, Trust.CONFIGURATION, 96
    #: a PONG is not this chip's signed answer to this PING from this landmark
    LOCATION_PING_INVALID = 162, Trust.INSTANCE_IDENTITY, 99
