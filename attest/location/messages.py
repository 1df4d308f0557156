"""Location verification messages: the chip's PingResponse and the landmark's LocationRecord.

A **PingResponse** is what a chip signs, with its device key, for each PING of a live session
(SPEC §15.2): the PING's fresh nonce, its own UEID and the landmark it answers (the certified
verifier of the round's CHALLENGE). Its own content type keeps the signature from ever counting
as anything else, and the nonce keeps the chip from answering before the PING arrives.

A **LocationRecord** is what a landmark (a verifier node) signs about one chip after timing its
PINGs (SPEC §15.3): where the landmark is, how many PINGs were answered, the least round trip,
the processing allowance and the distance bound ``ceil((rtt_min - allowance) x c / 2)``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

from attest.errors import DecodeError
from attest.location import claims as L
from attest.messages import claims as C
from attest.messages.schema import NONCE, TSTR, UEID, UINT, Field, Kind, SignedMessage

PING_RESPONSE_CONTENT_TYPE = "application/vnd.attest.ping-response+cbor"
LOCATION_RECORD_CONTENT_TYPE = "application/vnd.attest.location-record+cbor"

#: the speed of light in vacuum, metres per second (exact, SI)
C_M_PER_S = 299_792_458
#: most PINGs one record may count (the session allows as many per round, SPEC §7.6)
MAX_SAMPLES = 1000
#: a position in integer microdegrees: latitude within ±90°, longitude within ±180°
MICRODEGREES = 1_000_000


def _position(v: Any) -> tuple[int, int]:
    if type(v) is not list or len(v) != 2 or any(type(x) is not int for x in v):
        raise DecodeError("a position is [latitude, longitude] in integer microdegrees")
    lat, lon = v
    if not -90 * MICRODEGREES <= lat <= 90 * MICRODEGREES:
        raise DecodeError("latitude must be within ±90 000 000 microdegrees")
    if not -180 * MICRODEGREES <= lon <= 180 * MICRODEGREES:
        raise DecodeError("longitude must be within ±180 000 000 microdegrees")
    return (lat, lon)


def _samples(v: Any) -> int:
    if type(v) is not int or not 1 <= v <= MAX_SAMPLES:
        raise DecodeError(f"samples must be 1..{MAX_SAMPLES}")
    return v


POSITION = Kind(_position, list)
SAMPLES = Kind(_samples)


def vacuum_bound_m(rtt_ns: int, allowance_ns: int) -> int:
    """``ceil(max(0, rtt - allowance) x c / 2)`` in whole metres, in exact integer arithmetic.

    Rounded up: the bound may only err on the far side (SPEC §15.4).
    """
    flight_ns = max(0, rtt_ns - allowance_ns)
    return -(-flight_ns * C_M_PER_S // 2_000_000_000)


@dataclass(frozen=True, slots=True)
class PingResponse(SignedMessage):
    """A chip's signed answer to one PING (device key; SPEC §15.2)."""

    CONTENT_TYPE: ClassVar[str] = PING_RESPONSE_CONTENT_TYPE
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("landmark_id", C.AUD, TSTR),
        Field("nonce", C.EAT_NONCE, NONCE),
        Field("ueid", C.UEID, UEID),
    )

    landmark_id: str
    nonce: bytes
    ueid: bytes


@dataclass(frozen=True, slots=True)
class LocationRecord(SignedMessage):
    """A landmark's signed measurement of one chip (verifier key; SPEC §15.3)."""

    CONTENT_TYPE: ClassVar[str] = LOCATION_RECORD_CONTENT_TYPE
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("landmark_id", C.ISS, TSTR),
        Field("issued_at", C.IAT, UINT),
        Field("session_nonce", C.EAT_NONCE, NONCE),
        Field("ueid", C.UEID, UEID),
        Field("position", L.HEM_LOC_LANDMARK, POSITION),
        Field("samples", L.HEM_LOC_SAMPLES, SAMPLES),
        Field("rtt_min_ns", L.HEM_LOC_RTT_MIN, UINT),
        Field("allowance_ns", L.HEM_LOC_ALLOWANCE, UINT),
        Field("bound_m", L.HEM_LOC_BOUND, UINT),
    )

    landmark_id: str
    #: when the landmark measured (NumericDate, seconds: floor of its clock)
    issued_at: int
    #: the nonce of the round's Challenge: which session (and audit entry) the record belongs to
    session_nonce: bytes
    ueid: bytes
    #: the landmark's position, (latitude, longitude) in microdegrees
    position: tuple[int, int]
    samples: int
    rtt_min_ns: int
    allowance_ns: int
    bound_m: int

    @classmethod
    def measured(
        cls,
        *,
        landmark_id: str,
        issued_at: int,
        session_nonce: bytes,
        ueid: bytes,
        position: tuple[int, int],
        samples: int,
        rtt_min_ns: int,
        allowance_ns: int,
    ) -> LocationRecord:
        """A record whose bound is computed from its round trip (the only honest way)."""
        return cls(
            landmark_id,
            issued_at,
            session_nonce,
            ueid,
            position,
            samples,
            rtt_min_ns,
            allowance_ns,
            vacuum_bound_m(rtt_min_ns, allowance_ns),
        )

    @property
    def consistent(self) -> bool:
        """Whether ``bound_m`` is exactly the bound of the record's own round trip."""
        return self.bound_m == vacuum_bound_m(self.rtt_min_ns, self.allowance_ns)

    @property
    def latitude(self) -> float:
        return self.position[0] / MICRODEGREES

    @property
    def longitude(self) -> float:
        return self.position[1] / MICRODEGREES


def record_digest(token: bytes) -> bytes:
    """SHA-256 of a LocationRecord token as signed: how alerts and tables name a record."""
    return hashlib.sha256(token).digest()
