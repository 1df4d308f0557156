"""Offline Licensing messages: Delegation (authority → verifier node), License (→ one chip), and
the license state a chip reports in its Evidence.

A chip ships throttled; a License signed through the chain that ends at the authority key fused
into the chip unlocks full performance for a budget of metered work, until an expiry measured in
the chip's own monotonic operating time (a chip has no trustworthy wall clock, but it can count
its own seconds). Licenses are issued either by the authority itself or by a regional verifier
node that holds a Delegation: the authority's signed statement "verifier V (key K) may license
chips in region R, up to quota Q, until T".

Budgets and quotas are maps over the same meters as Evidence (1 flops, 2 energy_mj,
3 interconnect_bytes); flops is required, the others only where the chip model meters them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from attest.errors import DecodeError
from attest.keys import PublicKey
from attest.licensing import claims as L
from attest.mechanism import Grant
from attest.messages import claims as C
from attest.messages.schema import (
    CNF_KEY,
    NONCE,
    SWVERSION,
    TSTR,
    UEID,
    UINT,
    Field,
    Kind,
    SignedMessage,
    emit_claims,
    parse_claims,
)

LICENSE_CONTENT_TYPE = "application/vnd.attest.license+cbor"
DELEGATION_CONTENT_TYPE = "application/vnd.attest.delegation+cbor"

_U64_MAX = (1 << 64) - 1
_METER_KEYS = (C.METER_FLOPS, C.METER_ENERGY_MJ, C.METER_INTERCONNECT_BYTES)


@dataclass(frozen=True, slots=True)
class Budgets:
    """Amounts per meter (a license's budget, a delegation's quota, a chip's remaining budget).

    ``None`` means "not limited by this object" (energy and interconnect are optional).
    """

    flops: int
    energy_mj: int | None = None
    interconnect_bytes: int | None = None

    def as_tuple(self) -> tuple[int | None, int | None, int | None]:
        """In the order of ``Meters.as_tuple`` (flops, energy, interconnect)."""
        return (self.flops, self.energy_mj, self.interconnect_bytes)

    @classmethod
    def from_tuple(cls, values: tuple[int | None, ...]) -> Budgets:
        flops, energy, interconnect = values
        if flops is None:
            raise ValueError("a flops amount is required")
        return cls(flops, energy, interconnect)


def _budgets(v: Any) -> Budgets:
    if type(v) is not dict or C.METER_FLOPS not in v or not set(v) <= set(_METER_KEYS):
        raise DecodeError("budgets must be a map {1: flops, ? 2: energy_mj, ? 3: interconnect}")
    values = []
    for key in _METER_KEYS:
        x = v.get(key)
        if x is not None and (type(x) is not int or not 0 <= x <= _U64_MAX):
            raise DecodeError("a budget must be an unsigned 64-bit integer")
        values.append(x)
    return Budgets.from_tuple(tuple(values))


def _budgets_out(b: Budgets) -> dict[int, int]:
    return {k: x for k, x in zip(_METER_KEYS, b.as_tuple(), strict=True) if x is not None}


def _serial(v: Any) -> int:
    if type(v) is not int or not 1 <= v <= _U64_MAX:
        raise DecodeError("a license serial is an unsigned 64-bit integer >= 1")
    return v


BUDGETS = Kind(_budgets, _budgets_out)
SERIAL = Kind(_serial)


@dataclass(frozen=True, slots=True)
class Delegation(SignedMessage):
    """The authority lets one verifier node (bound by its key) issue licenses within a quota."""

    CONTENT_TYPE: ClassVar[str] = DELEGATION_CONTENT_TYPE
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("issuer", C.ISS, TSTR),
        Field("verifier_id", C.SUB, TSTR),
        Field("issued_at", C.IAT, UINT),
        Field("expires_at", C.EXP, UINT),
        Field("public_key", C.CNF, CNF_KEY),
        Field("region", C.HEM_REGION, TSTR),
        Field("delegation_id", L.HEM_DELEGATION_ID, UINT),
        Field("quota", L.HEM_DELEGATION_QUOTA, BUDGETS),
    )

    #: the authority id
    issuer: str
    #: the verifier node allowed to issue (the iss of its licenses)
    verifier_id: str
    issued_at: int
    #: wall-clock NumericDate; chips compare it with their clock like a VerifierCert's exp
    expires_at: int
    #: the verifier's key: licenses under this delegation verify under it and nothing else
    public_key: PublicKey
    region: str
    #: unique per authority; licenses name it, revocation lists revoke it
    delegation_id: int
    #: total budgets all licenses under this delegation may grant, per meter
    quota: Budgets


@dataclass(frozen=True, slots=True)
class License(SignedMessage):
    """Permission for one chip to run at full performance for a budget, until an expiry."""

    CONTENT_TYPE: ClassVar[str] = LICENSE_CONTENT_TYPE
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("issuer", C.ISS, TSTR),
        Field("issued_at", C.IAT, UINT),
        Field("ueid", C.UEID, UEID),
        Field("min_firmware", C.SWVERSION, SWVERSION),
        Field("serial", L.HEM_LICENSE_SERIAL, SERIAL),
        Field("budgets", L.HEM_LICENSE_BUDGETS, BUDGETS),
        Field("expiry_s", L.HEM_LICENSE_EXPIRY, UINT),
        Field("nonce", C.EAT_NONCE, NONCE, optional=True),
        Field("delegation_id", L.HEM_DELEGATION_ID, UINT, optional=True),
    )

    #: the authority id, or the verifier id of the delegation it was issued under
    issuer: str
    issued_at: int
    ueid: bytes
    min_firmware: tuple[int, ...]
    #: strictly increasing per chip; the chip's anti-rollback high-water mark
    serial: int
    budgets: Budgets
    #: chip monotonic operating time (seconds) from which the license is void
    expiry_s: int
    #: a fresh chip nonce the license answers (optional freshness binding)
    nonce: bytes | None = None
    #: present exactly when issued under a delegation
    delegation_id: int | None = None


class LicenseGrant(Grant):
    """A license as delivered to a chip: a :class:`~attest.mechanism.Grant` whose token is the
    License and whose companion is the Delegation it was issued under (None: the authority's)."""

    __slots__ = ()

    @property
    def license(self) -> bytes:
        return self.token

    @property
    def delegation(self) -> bytes | None:
        return self.companion


@dataclass(frozen=True, slots=True)
class LicenseState:
    """What a chip reports about its Offline License: the serial in force and what is left."""

    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("serial", L.LICENSE_STATE_SERIAL, UINT),
        Field("remaining_flops", L.LICENSE_STATE_REMAINING_FLOPS, UINT),
        Field("chip_time_s", L.LICENSE_STATE_CHIP_TIME, UINT, optional=True),
    )

    serial: int
    remaining_flops: int
    #: the chip's monotonic operating time (license expiries are measured in it)
    chip_time_s: int | None = None


def _license_state(v: Any) -> LicenseState:
    return LicenseState(**parse_claims(v, LicenseState.FIELDS))


def _license_state_out(s: LicenseState) -> dict[int | str, Any]:
    return emit_claims(s, LicenseState.FIELDS)


#: the Evidence claim (absent on chips without the mechanism)
LICENSE_STATE = Field(
    "license_state", L.HEM_LICENSE_STATE, Kind(_license_state, _license_state_out), optional=True
)


def license_state_of(evidence: Any) -> LicenseState | None:
    """The license state an Evidence reports, or None."""
    value: LicenseState | None = evidence.extensions.get(LICENSE_STATE.name)
    return value
