"""What a verifier remembers about a chip between appraisals (anti-replay, anti-rollback)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from attest.keys import PublicKey
from attest.messages.attestation import Meters


class ChipStatus(enum.StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class ChipState:
    """The last accepted state of one chip, as stored by a verifier node.

    ``last_challenge_iat`` (seconds) is the issue time of the challenge that the last accepted
    evidence answered. Because that evidence was signed after its challenge was issued, the
    meters can have grown by at most ``peak rate x (now - last_challenge_iat)`` since: a sound
    bound that needs no trust in the chip's clock.
    """

    ueid: bytes
    device_key: PublicKey
    hwmodel: str
    bootcount: int
    attest_counter: int
    meters: Meters
    last_challenge_iat: int
    last_seen_ms: int
    last_evidence_digest: bytes
    status: ChipStatus = ChipStatus.ACTIVE

    @classmethod
    def enrolled(cls, ueid: bytes, device_key: PublicKey, hwmodel: str) -> ChipState:
        """The state of a chip registered by an operator but never appraised yet."""
        return cls(
            ueid=ueid,
            device_key=device_key,
            hwmodel=hwmodel,
            bootcount=0,
            attest_counter=0,
            meters=Meters(),
            last_challenge_iat=0,
            last_seen_ms=0,
            last_evidence_digest=bytes(32),
        )
