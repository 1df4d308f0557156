"""The attestation exchange: Challenge (verifier → chip), Evidence (chip → verifier),
AttestationResult (verifier → chip and relying parties, EAR-shaped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attest.codec.cose import ContentType
from attest.errors import DecodeError
from attest.messages import claims as C
from attest.messages.schema import (
    DIGEST,
    NONCE,
    SWVERSION,
    TSTR,
    UEID,
    UINT,
    UINT_LIST,
    Field,
    Kind,
    SignedMessage,
    emit_claims,
    list_of,
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
class LicenseState:
    """What a chip reports about its Offline License: the serial in force and what is left."""

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("serial", C.LICENSE_STATE_SERIAL, UINT),
        Field("remaining_flops", C.LICENSE_STATE_REMAINING_FLOPS, UINT),
        Field("chip_time_s", C.LICENSE_STATE_CHIP_TIME, UINT, optional=True),
    )

    serial: int
    remaining_flops: int
    #: the chip's monotonic operating time (license expiries are measured in it)
    chip_time_s: int | None = None


def _license_state(v: Any) -> LicenseState:
    return LicenseState(**parse_claims(v, LicenseState.FIELDS))


def _license_state_out(s: LicenseState) -> dict[int, int]:
    return emit_claims(s, LicenseState.FIELDS)  # type: ignore[return-value]


def _pod_id(v: Any) -> bytes:
    if type(v) is not bytes or len(v) != POD_ID_BYTES:
        raise DecodeError(f"pod id must be {POD_ID_BYTES} bytes")
    return v


LICENSE_STATE = Kind(_license_state, _license_state_out)
POD_ID = Kind(_pod_id)
POD_ID_BYTES = 16
#: most live full-bandwidth links one Evidence may report
MAX_LINKS = 256
#: Fixed Set: most refused-link proofs one Evidence may carry, and the size bound of each
MAX_LINK_REFUSALS = 16
MAX_LINK_PROOF_BYTES = 2048


def _link_proof_token(v: Any) -> bytes:
    if type(v) is not bytes or not 1 <= len(v) <= MAX_LINK_PROOF_BYTES:
        raise DecodeError(f"a refused-link proof is 1..{MAX_LINK_PROOF_BYTES} bytes")
    return v


LINK_REFUSALS = Kind(list_of(_link_proof_token, MAX_LINK_REFUSALS), list)


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
        Field("license_state", C.HEM_LICENSE_STATE, LICENSE_STATE, optional=True),
        Field("pod_id", C.HEM_POD_ID, POD_ID, optional=True),
        Field("links", C.HEM_LINKS, Kind(list_of(UEID.parse, MAX_LINKS), list), optional=True),
        Field("link_refusals", C.HEM_LINK_REFUSALS, LINK_REFUSALS, optional=True),
    )

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
    #: Offline Licensing (absent on chips without a license mechanism)
    license_state: LicenseState | None = None
    #: Fixed Set: the chip's certified pod and its live full-bandwidth peers (ueids)
    pod_id: bytes | None = None
    links: tuple[bytes, ...] | None = None
    #: Fixed Set: signed acceptances (LinkResponse / LinkConfirm tokens) of links it refused
    link_refusals: tuple[bytes, ...] | None = None


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
    return v


def _verifier_build(v: Any) -> str:
    if type(v) is not dict or set(v) != {C.EAR_VERIFIER_BUILD, C.EAR_VERIFIER_DEVELOPER}:
        raise DecodeError("ear.verifier-id must be {0: build, 1: developer}")
    TSTR.parse(v[C.EAR_VERIFIER_DEVELOPER])
    return TSTR.parse(v[C.EAR_VERIFIER_BUILD])


def _verifier_build_out(build: str) -> dict[int, str]:
    return {C.EAR_VERIFIER_BUILD: build, C.EAR_VERIFIER_DEVELOPER: "attest"}


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
