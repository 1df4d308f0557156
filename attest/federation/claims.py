"""Claim keys of federation (private use, -70400 .. -70499; SPEC Appendix B).

A committee descriptor and a federation agreement are claims maps like every other payload
(SPEC §6.1): exact key sets, deterministic CBOR. The keys of the small nested maps (a member,
a recognition) are small unsigned integers local to those maps.
"""

from __future__ import annotations

# -- committee descriptor (iss 1 and iat 6 are the CWT claims)
HEM_COMMITTEE_NUMBER = -70400
HEM_COMMITTEE_OFFICERS = -70401
HEM_COMMITTEE_THRESHOLD = -70402
HEM_COMMITTEE_ACT_THRESHOLDS = -70403

# -- federation agreement (iat 6 and exp 4 are the CWT claims)
HEM_AGREEMENT_ID = -70410
HEM_AGREEMENT_NUMBER = -70411
HEM_AGREEMENT_MEMBERS = -70412
HEM_AGREEMENT_THRESHOLD = -70413
HEM_AGREEMENT_RECOGNITIONS = -70414

# -- in a result's hem-result, for a chain routed through an agreement (attest.messages.claims)
HEM_CHAIN_AUTHORITY = -70420
HEM_CHAIN_AGREEMENT = -70421

# -- keys inside a member map
MEMBER_ID = 1
MEMBER_COMMITTEE = 2
MEMBER_REGIONS = 3

# -- keys inside a recognition map (what `by` recognises of `of`)
RECOGNITION_BY = 1
RECOGNITION_OF = 2
RECOGNITION_MANUFACTURERS = 3
RECOGNITION_RESULTS = 4
RECOGNITION_LICENCE_QUOTA = 5
RECOGNITION_PODS = 6
