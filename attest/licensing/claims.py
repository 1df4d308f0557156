"""Claim keys of Offline Licensing (SPEC §5 lists them with every other key).

Private-use keys -70100 .. -70199, plus -70004 (the license state in Evidence, allocated before
the ranges were) and, in the core RevocationList, -70105 (revoked delegations).
"""

from __future__ import annotations

#: Evidence (optional): the chip's license state, a map of the LICENSE_STATE_* keys below
HEM_LICENSE_STATE = -70004
HEM_LICENSE_SERIAL = -70100
HEM_LICENSE_BUDGETS = -70101
HEM_LICENSE_EXPIRY = -70102
HEM_DELEGATION_ID = -70103
HEM_DELEGATION_QUOTA = -70104
# (-70105, revoked delegations, is a claim of the core RevocationList: attest.messages.claims)

# Keys inside the HEM_LICENSE_STATE map
LICENSE_STATE_SERIAL = 1
LICENSE_STATE_REMAINING_FLOPS = 2
#: the chip's monotonic operating time (seconds)
LICENSE_STATE_CHIP_TIME = 3
# (budget and quota maps reuse the core METER_* keys: 1 flops, 2 energy_mj, 3 interconnect)
