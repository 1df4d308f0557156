"""Location verification inside a chip: it answers each PING at once, signed with its key.

The part keeps no state: a PingResponse binds the PING's fresh nonce, the chip's UEID and the
landmark (the certified verifier of the round's CHALLENGE, which the chip has checked), so the
chip cannot answer before the PING arrives and its answer counts for no other landmark, chip
or message type. Every chip has the part; one that is never pinged never uses it.
"""

from __future__ import annotations

from typing import Any

from attest.location.messages import PingResponse
from attest.mechanism import ChipHost, DeviceSigner, PingResponder, QuietChipPart


class LocationChip(QuietChipPart, PingResponder):
    """The chip's part: answers PINGs (see the module doc)."""

    def __init__(self, host: ChipHost, sign: DeviceSigner) -> None:
        self._host = host
        self._sign = sign

    def answer_ping(self, nonce: bytes, landmark_id: str) -> bytes:
        return self._sign(PingResponse(landmark_id, nonce, self._host.ueid))


def chip_part(host: ChipHost, saved: Any, sign: DeviceSigner) -> LocationChip:
    """Every chip answers pings (its answer is all the part is)."""
    return LocationChip(host, sign)
