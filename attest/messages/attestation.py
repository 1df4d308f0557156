"""The attestation exchange: Challenge (verifier → chip), Evidence (chip → verifier),
AttestationResult (verifier → chip and relying parties, an EAR).

Both Evidence and results are written for standard tooling (SPEC §6.7, §6.8): Evidence is an
EAT with its own ``eat_profile`` and the firmware in EAT ``measurements`` as a CoSWID evidence
tag; a result is an EAR of draft-ietf-rats-ear-04, whose one appraisal ``hem`` carries attest's
profile, an AR4SI trustworthiness vector and the HEM claims in one extension map.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from attest.codec.cbor import decode, encode
from attest.errors import DecodeError
from attest.messages import claims as C
from attest.messages.content import ContentType
from attest.messages.schema import (
    DIGEST,
    NO_EXTENSIONS,
    NONCE,
    TSTR,
    UEID,
    UINT,
    UINT_LIST,
    Extensions,
    Field,
    Kind,
    SignedMessage,
    parse_claims,
    parse_version,
    version_text,
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
class Firmware:
    """The running firmware: its version and the SHA-256 measurement of its image."""

    version: tuple[int, ...]
    measurement: bytes


#: the fixed members of the CoSWID evidence tag (SPEC §6.7): names the verifier does not use
FW_SOFTWARE_NAME = "firmware"
FW_ENTITY = {C.COSWID_ENTITY_NAME: "attest", C.COSWID_ROLE: C.COSWID_ROLE_TAG_CREATOR}
FW_FS_NAME = "firmware"


def fw_tag_id(measurement: bytes) -> bytes:
    """The CoSWID tag-id of a firmware image: a UUID (RFC 9562 version 8) made of the first 16
    bytes of its measurement, so the id names exactly one image without a registry."""
    uuid = bytearray(measurement[:16])
    uuid[6] = 0x80 | (uuid[6] & 0x0F)
    uuid[8] = 0x80 | (uuid[8] & 0x3F)
    return bytes(uuid)


def fw_coswid(firmware: Firmware, version: str | None = None) -> dict[int, Any]:
    """The CoSWID evidence tag (RFC 9393) of ``firmware``, as Evidence carries it (``version``:
    the version text as received, which may have leading zeros)."""
    return {
        C.COSWID_TAG_ID: fw_tag_id(firmware.measurement),
        C.COSWID_SOFTWARE_NAME: FW_SOFTWARE_NAME,
        C.COSWID_ENTITY: dict(FW_ENTITY),
        C.COSWID_EVIDENCE: {
            C.COSWID_FILE: {
                C.COSWID_HASH: [C.NI_SHA256, firmware.measurement],
                C.COSWID_FS_NAME: FW_FS_NAME,
            }
        },
        C.COSWID_TAG_VERSION: 0,
        C.COSWID_SOFTWARE_VERSION: version or version_text(firmware.version),
        C.COSWID_VERSION_SCHEME: C.SWVERSION_SCHEME_MULTIPARTNUMERIC,
    }


#: CoSWID bytes already judged (every chip of a fleet runs one of a few images): bytes -> value
_FIRMWARE: dict[bytes, Firmware] = {}
_MAX_FIRMWARE = 1024


def _firmware(v: Any) -> Firmware:
    """EAT measurements (273) holding exactly one CoSWID evidence tag of the form of SPEC §6.7."""
    if (
        type(v) is not list
        or len(v) != 1
        or type(v[0]) is not list
        or len(v[0]) != 2
        or type(v[0][0]) is not int
        or v[0][0] != C.COAP_SWID_CBOR
        or type(v[0][1]) is not bytes
    ):
        raise DecodeError("measurements must be [[258, CoSWID bytes]]")
    raw: bytes = v[0][1]
    known = _FIRMWARE.get(raw)
    if known is not None:
        return known
    tag = decode(raw)  # deterministic CBOR, like everything signed (§4.1)
    if type(tag) is not dict or set(tag) != _COSWID_KEYS:
        raise DecodeError("the firmware CoSWID must have exactly the members of SPEC §6.7")
    version = tag[C.COSWID_SOFTWARE_VERSION]
    evidence = tag[C.COSWID_EVIDENCE]
    file = evidence.get(C.COSWID_FILE) if type(evidence) is dict else None
    if type(version) is not str or type(file) is not dict or set(evidence) != {C.COSWID_FILE}:
        raise DecodeError("the firmware CoSWID needs a software-version and one evidence file")
    firmware = Firmware(parse_version(version), _file_digest(file))
    if tag != fw_coswid(firmware, version):
        raise DecodeError("the firmware CoSWID differs from SPEC §6.7 (names, tag-id or scheme)")
    if len(_FIRMWARE) < _MAX_FIRMWARE:
        _FIRMWARE[raw] = firmware
    return firmware


_COSWID_KEYS = frozenset(
    (
        C.COSWID_TAG_ID,
        C.COSWID_SOFTWARE_NAME,
        C.COSWID_ENTITY,
        C.COSWID_EVIDENCE,
        C.COSWID_TAG_VERSION,
        C.COSWID_SOFTWARE_VERSION,
        C.COSWID_VERSION_SCHEME,
    )
)


def _file_digest(file: dict[Any, Any]) -> bytes:
    h = file.get(C.COSWID_HASH)
    if (
        type(h) is not list
        or len(h) != 2
        or type(h[0]) is not int
        or h[0] != C.NI_SHA256
        or type(h[1]) is not bytes
        or len(h[1]) != 32
    ):
        raise DecodeError("the firmware file hash must be [1 (sha-256), 32 bytes]")
    return h[1]


#: encoded CoSWID per firmware (a chip signs the same tag until it installs other firmware)
_FIRMWARE_OUT: dict[Firmware, bytes] = {}


def _firmware_out(firmware: Firmware) -> list[list[Any]]:
    raw = _FIRMWARE_OUT.get(firmware)
    if raw is None:
        raw = encode(fw_coswid(firmware))
        if len(_FIRMWARE_OUT) < _MAX_FIRMWARE:
            _FIRMWARE_OUT[firmware] = raw
    return [[C.COAP_SWID_CBOR, raw]]


def _constant(value: str, name: str) -> Kind:
    def parse(v: Any) -> str:
        if v != value or type(v) is not str:
            raise DecodeError(f"{name} must be {value!r}")
        return value

    return Kind(parse)


FIRMWARE = Kind(_firmware, _firmware_out)
EVIDENCE_PROFILE = _constant(C.EVIDENCE_PROFILE, "eat_profile")


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
        Field("profile", C.EAT_PROFILE, EVIDENCE_PROFILE),
        Field("bootcount", C.BOOTCOUNT, UINT),
        Field("firmware", C.MEASUREMENTS, FIRMWARE),
        Field("attest_counter", C.HEM_ATTEST_COUNTER, UINT),
        Field("meters", C.HEM_METERS, METERS),
    )
    #: mechanisms add optional claims (license state, pod links ...): see ``extensions``
    EXTENSIBLE: ClassVar[bool] = True

    verifier_id: str
    nonce: bytes
    ueid: bytes
    uptime_s: int
    dbgstat: int
    bootcount: int
    firmware: Firmware
    attest_counter: int
    meters: Meters
    #: claims of the chip's mechanisms, by registered name (attest/licensing, attest/pods ...);
    #: a chip without a mechanism leaves its claims out
    extensions: Extensions = NO_EXTENSIONS
    profile: str = C.EVIDENCE_PROFILE

    @property
    def firmware_version(self) -> tuple[int, ...]:
        return self.firmware.version

    def replaced(self, **changes: Any) -> Evidence:
        """A copy with some claims changed, for tests and attacks; ``firmware_version`` and
        ``firmware_measurement`` may be changed on their own."""
        version = changes.pop("firmware_version", self.firmware.version)
        measurement = changes.pop("firmware_measurement", self.firmware.measurement)
        changes.setdefault("firmware", Firmware(version, measurement))
        return dataclasses.replace(self, **changes)

    @property
    def firmware_measurement(self) -> bytes:
        return self.firmware.measurement


# -- AttestationResult ----------------------------------------------------------------------------

TIERS = (0, 2, 32, 96)


def _tier(v: Any) -> int:
    if type(v) is not int or v not in TIERS:
        raise DecodeError("ear_status must be a tier: 0, 2, 32 or 96")
    return v


def _vector(v: Any) -> tuple[tuple[int, int], ...]:
    """An AR4SI trustworthiness vector: 1..8 categories 0..7, each a claim -128..127."""
    if type(v) is not dict or not v:
        raise DecodeError("ear_trustworthiness_vector must be a non-empty map")
    for key, claim in v.items():
        if type(key) is not int or not 0 <= key <= 7:
            raise DecodeError("trustworthiness vector categories are 0..7")
        if type(claim) is not int or not -128 <= claim <= 127:
            raise DecodeError("a trustworthiness claim is an integer -128..127")
    return tuple(v.items())


def _vector_out(v: tuple[tuple[int, int], ...]) -> dict[int, int]:
    return dict(v)


def _policy_ids(v: Any) -> str:
    if type(v) is not list or len(v) != 1:
        raise DecodeError("ear_appraisal_policy_ids must hold exactly one policy id")
    policy_id: str = TSTR.parse(v[0])
    return policy_id


def _policy_ids_out(policy_id: str) -> list[str]:
    return [policy_id]


@dataclass(frozen=True, slots=True)
class HemClaims:
    """The HEM result claims: who appraised which chip, why, and on which Evidence."""

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("verifier_id", C.ISS, TSTR),
        Field("ueid", C.UEID, UEID),
        Field("reasons", C.HEM_REASONS, UINT_LIST),
        Field("evidence_digest", C.HEM_EVIDENCE_DIGEST, DIGEST),
        Field("chain_authority", C.HEM_CHAIN_AUTHORITY, TSTR, optional=True),
        Field("chain_agreement", C.HEM_CHAIN_AGREEMENT, UINT, optional=True),
    )

    verifier_id: str
    ueid: bytes
    reasons: tuple[int, ...]
    evidence_digest: bytes
    #: the partner authority whose committee judged the chip's chain, and the number of the
    #: federation agreement that let it (both or neither: SPEC B.5)
    chain_authority: str | None = None
    chain_agreement: int | None = None


def _hem_claims(v: Any) -> HemClaims:
    hem = HemClaims(**parse_claims(v, HemClaims.FIELDS))
    if (hem.chain_authority is None) != (hem.chain_agreement is None):
        raise DecodeError("hem-chain-authority and hem-chain-agreement come together")
    return hem


def _hem_claims_out(h: HemClaims) -> dict[int, Any]:
    out: dict[int, Any] = {
        C.ISS: h.verifier_id,
        C.UEID: h.ueid,
        C.HEM_REASONS: list(h.reasons),
        C.HEM_EVIDENCE_DIGEST: h.evidence_digest,
    }
    if h.chain_authority is not None and h.chain_agreement is not None:
        out[C.HEM_CHAIN_AUTHORITY] = h.chain_authority
        out[C.HEM_CHAIN_AGREEMENT] = h.chain_agreement
    return out


@dataclass(frozen=True, slots=True)
class HemAppraisal:
    """The one EAR appraisal of a result, named ``hem`` in ``submods`` (SPEC §6.8)."""

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("profile", C.EAT_PROFILE, _constant(C.HEM_APPRAISAL_PROFILE, "eat_profile")),
        Field("status", C.EAR_STATUS, Kind(_tier)),
        Field("vector", C.EAR_TRUSTWORTHINESS_VECTOR, Kind(_vector, _vector_out)),
        Field("policy_id", C.EAR_APPRAISAL_POLICY_IDS, Kind(_policy_ids, _policy_ids_out)),
        Field("hem", C.HEM_RESULT, Kind(_hem_claims, _hem_claims_out)),
    )

    status: int
    #: the AR4SI trustworthiness vector as (category, claim) pairs in category order
    vector: tuple[tuple[int, int], ...]
    policy_id: str
    hem: HemClaims
    profile: str = C.HEM_APPRAISAL_PROFILE


SUBMOD_NAME = "hem"


def _submods(v: Any) -> HemAppraisal:
    if type(v) is not dict or set(v) != {SUBMOD_NAME}:
        raise DecodeError(f'submods must hold exactly the "{SUBMOD_NAME}" appraisal')
    return HemAppraisal(**parse_claims(v[SUBMOD_NAME], HemAppraisal.FIELDS))


def _submods_out(a: HemAppraisal) -> dict[str, Any]:
    return {SUBMOD_NAME: {f.key: f.kind.emit(getattr(a, f.name)) for f in HemAppraisal.FIELDS}}


def _verifier_build(v: Any) -> str:
    if type(v) is not dict or set(v) != {C.EAR_VERIFIER_BUILD, C.EAR_VERIFIER_DEVELOPER}:
        raise DecodeError("ear_verifier_id must be {0: developer, 1: build}")
    TSTR.parse(v[C.EAR_VERIFIER_DEVELOPER])
    build: str = TSTR.parse(v[C.EAR_VERIFIER_BUILD])
    return build


def _verifier_build_out(build: str) -> dict[int, str]:
    return {C.EAR_VERIFIER_BUILD: build, C.EAR_VERIFIER_DEVELOPER: "attest"}


#: the media type of a result token over HTTP (RFC 9782: an EAT in a CWT, i.e. a COSE_Sign1,
#: with its profile; what GET /chips/{ueid}/result sends)
RESULT_MEDIA_TYPE = f'application/eat+cwt; eat_profile="{C.EAR_PROFILE}"'
#: the media type of any other token over HTTP (RFC 9052 §9.1: a tagged COSE_Sign1)
COSE_SIGN1_MEDIA_TYPE = 'application/cose; cose-type="cose-sign1"'

#: the UEID of a result that names no chip: no certificate of the Evidence validated (§6.8)
NO_CHIP_UEID = b"\x01" + bytes(16)


@dataclass(frozen=True, slots=True)
class AttestationResult(SignedMessage):
    """An EAR (EAT Attestation Result, draft-ietf-rats-ear-04) as CBOR, signed by the verifier."""

    CONTENT_TYPE: ClassVar[str] = ContentType.RESULT
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("issued_at", C.IAT, UINT),
        Field("nonce", C.EAT_NONCE, NONCE),
        Field("profile", C.EAT_PROFILE, _constant(C.EAR_PROFILE, "eat_profile")),
        Field("appraisal", C.SUBMODS, Kind(_submods, _submods_out)),
        Field("verifier_build", C.EAR_VERIFIER_ID, Kind(_verifier_build, _verifier_build_out)),
    )

    issued_at: int
    nonce: bytes
    appraisal: HemAppraisal
    verifier_build: str
    profile: str = C.EAR_PROFILE

    @classmethod
    def of(
        cls,
        *,
        verifier_id: str,
        issued_at: int,
        nonce: bytes,
        ueid: bytes,
        status: int,
        vector: Mapping[int, int],
        policy_id: str,
        reasons: tuple[int, ...],
        verifier_build: str,
        evidence_digest: bytes,
        chain: tuple[str, int] | None = None,
    ) -> AttestationResult:
        """A result from its flat values (``vector`` by category; see SPEC §10.1); ``chain``:
        the partner authority and agreement number of a chain routed by federation."""
        authority, number = chain if chain is not None else (None, None)
        hem = HemClaims(verifier_id, ueid, tuple(reasons), evidence_digest, authority, number)
        appraisal = HemAppraisal(status, tuple(sorted(vector.items())), policy_id, hem)
        return cls(issued_at, nonce, appraisal, verifier_build)

    @property
    def status(self) -> int:
        return self.appraisal.status

    @property
    def reasons(self) -> tuple[int, ...]:
        return self.appraisal.hem.reasons

    @property
    def vector(self) -> dict[int, int]:
        return dict(self.appraisal.vector)

    @property
    def policy_id(self) -> str:
        return self.appraisal.policy_id

    @property
    def verifier_id(self) -> str:
        return self.appraisal.hem.verifier_id

    @property
    def ueid(self) -> bytes:
        return self.appraisal.hem.ueid

    @property
    def evidence_digest(self) -> bytes:
        return self.appraisal.hem.evidence_digest

    @property
    def chain(self) -> tuple[str, int] | None:
        """The partner authority and agreement number of a federated chain (SPEC B.5)."""
        hem = self.appraisal.hem
        if hem.chain_authority is None or hem.chain_agreement is None:
            return None
        return hem.chain_authority, hem.chain_agreement
