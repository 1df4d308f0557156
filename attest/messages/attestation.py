"""The attestation exchange: Challenge (verifier → chip), Evidence (chip → verifier),
AttestationResult (verifier → chip and relying parties, EAR-shaped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attest.errors import DecodeError
from attest.messages import claims as C
from attest.messages.content import ContentType
from attest.messages.schema import (
    DIGEST,
    NO_EXTENSIONS,
    NONCE,
    SWVERSION,
    TSTR,
    UEID,
    UINT,
    UINT_LIST,
    Extensions,
    Field,
    Kind,
    SignedMessage,
    parse_claims,
)

NONCE_BYTES = 32


@dataclass(frozen=True, slots=True)
class Meters:
    """Cumulative usage counters since manufacture. They only ever increase."""

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("flops", C.METER_FLOPS, UINT),
        Field("energy_mj", C.METER_ENERGY_MJ, UINT),
        Field("interconnect_bytes", C.METER_INTERCONNECT_BYTES, UINT),
    )

    flops: int = 0
    energy_mj: int = 0
    interconnect_bytes: int = 0

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.flops, self.energy_mj, self.interconnect_bytes)


def _meters(v: Any) -> Meters:
    return Meters(**parse_claims(v, Meters.FIELDS))


def _meters_out(m: Meters) -> dict[int, int]:
    return {
        C.METER_FLOPS: m.flops,
        C.METER_ENERGY_MJ: m.energy_mj,
        C.METER_INTERCONNECT_BYTES: m.interconnect_bytes,
    }


def _dbgstat(v: Any) -> int:
    if type(v) is not int or not 0 <= v <= 4:
        raise DecodeError("dbgstat must be 0..4")
    return v


METERS = Kind(_meters, _meters_out)
DBGSTAT = Kind(_dbgstat)


@dataclass(frozen=True, slots=True)
class Challenge(SignedMessage):
    """A fresh nonce from a verifier, signed so a chip answers only certified verifiers."""

    CONTENT_TYPE: ClassVar[str] = ContentType.CHALLENGE
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("verifier_id", C.ISS, TSTR),
        Field("issued_at", C.IAT, UINT),
        Field("expires_at", C.EXP, UINT),
        Field("nonce", C.EAT_NONCE, NONCE),
        Field("region", C.HEM_REGION, TSTR),
    )

    verifier_id: str
    issued_at: int
    expires_at: int
    nonce: bytes
    region: str


@dataclass(frozen=True, slots=True)
class Evidence(SignedMessage):
    """What a chip claims about itself, signed with its device key (an EAT)."""

    CONTENT_TYPE: ClassVar[str] = ContentType.EVIDENCE
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("verifier_id", C.AUD, TSTR),
        Field("nonce", C.EAT_NONCE, NONCE),
        Field("ueid", C.UEID, UEID),
        Field("uptime_s", C.UPTIME, UINT),
        Field("dbgstat", C.DBGSTAT, DBGSTAT),
        Field("bootcount", C.BOOTCOUNT, UINT),
        Field("firmware_version", C.SWVERSION, SWVERSION),
        Field("attest_counter", C.HEM_ATTEST_COUNTER, UINT),
        Field("meters", C.HEM_METERS, METERS),
        Field("firmware_measurement", C.HEM_FW_MEASUREMENT, DIGEST),
    )
    #: mechanisms add optional claims (license state, pod links ...): see ``extensions``
    EXTENSIBLE: ClassVar[bool] = True

    verifier_id: str
    nonce: bytes
    ueid: bytes
    uptime_s: int
    dbgstat: int
    bootcount: int
    firmware_version: tuple[int, ...]
    attest_counter: int
    meters: Meters
    firmware_measurement: bytes
    #: claims of the chip's mechanisms, by registered name (attest/licensing, attest/pods ...);
    #: a chip without a mechanism leaves its claims out
    extensions: Extensions = NO_EXTENSIONS


def _submod(v: Any) -> dict[str, Any]:
    return parse_claims(v, _APPRAISAL_FIELDS)


_APPRAISAL_FIELDS: tuple[Field, ...] = (
    Field("status", C.EAR_STATUS, UINT),
    Field("policy_id", C.EAR_APPRAISAL_POLICY_ID, TSTR),
    Field("reasons", C.HEM_REASONS, UINT_LIST),
)
SUBMOD_NAME = "hem"


def _submods(v: Any) -> tuple[int, str, tuple[int, ...]]:
    if type(v) is not dict or set(v) != {SUBMOD_NAME}:
        raise DecodeError(f'submods must hold exactly the "{SUBMOD_NAME}" appraisal')
    a = _submod(v[SUBMOD_NAME])
    return (a["status"], a["policy_id"], a["reasons"])


def _submods_out(v: tuple[int, str, tuple[int, ...]]) -> dict[str, Any]:
    status, policy_id, reasons = v
    return {
        SUBMOD_NAME: {
            C.EAR_STATUS: status,
            C.EAR_APPRAISAL_POLICY_ID: policy_id,
            C.HEM_REASONS: list(reasons),
        }
    }


def _profile(v: Any) -> str:
    if v != C.EAR_PROFILE:
        raise DecodeError(f"eat_profile must be {C.EAR_PROFILE!r}")
    return C.EAR_PROFILE


def _verifier_build(v: Any) -> str:
    if type(v) is not dict or set(v) != {C.EAR_VERIFIER_BUILD, C.EAR_VERIFIER_DEVELOPER}:
        raise DecodeError("ear.verifier-id must be {0: build, 1: developer}")
    TSTR.parse(v[C.EAR_VERIFIER_DEVELOPER])
    build: str = TSTR.parse(v[C.EAR_VERIFIER_BUILD])
    return build


def _verifier_build_out(build: str) -> dict[int, str]:
    return {C.EAR_VERIFIER_BUILD: build, C.EAR_VERIFIER_DEVELOPER: "attest"}


#: the UEID of a result that names no chip: no certificate of the Evidence validated (§6.8)
NO_CHIP_UEID = b"\x01" + bytes(16)


@dataclass(frozen=True, slots=True)
class AttestationResult(SignedMessage):
    """An EAR (EAT Attestation Result) as CBOR, signed by the verifier node."""

    CONTENT_TYPE: ClassVar[str] = ContentType.RESULT
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("verifier_id", C.ISS, TSTR),
        Field("issued_at", C.IAT, UINT),
        Field("nonce", C.EAT_NONCE, NONCE),
        Field("ueid", C.UEID, UEID),
        Field("profile", C.EAT_PROFILE, Kind(_profile)),
        Field("appraisal", C.SUBMODS, Kind(_submods, _submods_out)),
        Field("verifier_build", C.EAR_VERIFIER_ID, Kind(_verifier_build, _verifier_build_out)),
        Field("evidence_digest", C.HEM_EVIDENCE_DIGEST, DIGEST),
    )

    verifier_id: str
    issued_at: int
    nonce: bytes
    ueid: bytes
    profile: str
    appraisal: tuple[int, str, tuple[int, ...]]
    verifier_build: str
    evidence_digest: bytes

    @property
    def status(self) -> int:
        return self.appraisal[0]

    @property
    def reasons(self) -> tuple[int, ...]:
        return self.appraisal[2]
