"""Claim keys of location verification (SPEC §5 lists them with every other key).

Private-use keys -70300 .. -70399. A PingResponse uses core claims only (``aud``, ``eat_nonce``,
``ueid``); the LocationRecord adds the landmark's measurement. The EAT ``location`` claim (264)
stays unused: its latitude and longitude are floating-point numbers, which the encoding profile
(SPEC §4.1) forbids, and it states where the attester *is*, where a record states how far from
a landmark it *can* be.
"""

from __future__ import annotations

#: LocationRecord: the landmark's position, [latitude, longitude] in integer microdegrees
HEM_LOC_LANDMARK = -70300
#: LocationRecord: how many PINGs were answered validly (the minimum is taken over these)
HEM_LOC_SAMPLES = -70301
#: LocationRecord: the least round trip of those, in nanoseconds (rounded up, SPEC §15.3)
HEM_LOC_RTT_MIN = -70302
#: LocationRecord: the processing allowance subtracted from it, in nanoseconds
HEM_LOC_ALLOWANCE = -70303
#: LocationRecord: the distance bound (RTT_min - allowance) x c / 2, in whole metres (up)
HEM_LOC_BOUND = -70304
