"""Certificates: CWTs (RFC 8392) whose ``cnf`` claim carries the subject's Ed25519 key.

The key hierarchy (SPEC.md §3)::

    Authority root key (fused into every chip, held by every verifier)
      ├── ManufacturerCert  (iss = authority id,    sub = manufacturer id)
      │     └── DeviceCert  (iss = manufacturer id, ueid, hwmodel, pod class)
      └── VerifierCert      (iss = authority id,    sub = verifier id, region)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from attest.keys import PublicKey
from attest.messages import claims as C
from attest.messages.content import ContentType
from attest.messages.schema import (
    CNF_KEY,
    HWMODEL,
    TSTR,
    UEID,
    UINT,
    Field,
    SignedMessage,
)


@dataclass(frozen=True, slots=True)
class ManufacturerCert(SignedMessage):
    """The authority certifies a manufacturer's endorsement key."""

    CONTENT_TYPE: ClassVar[str] = ContentType.MANUFACTURER_CERT
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("issuer", C.ISS, TSTR),
        Field("manufacturer_id", C.SUB, TSTR),
        Field("issued_at", C.IAT, UINT),
        Field("expires_at", C.EXP, UINT),
        Field("public_key", C.CNF, CNF_KEY),
    )

    issuer: str
    manufacturer_id: str
    issued_at: int
    expires_at: int
    public_key: PublicKey


@dataclass(frozen=True, slots=True)
class DeviceCert(SignedMessage):
    """A manufacturer endorses one chip's device key at fabrication (no expiry)."""

    CONTENT_TYPE: ClassVar[str] = ContentType.DEVICE_CERT
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("issuer", C.ISS, TSTR),
        Field("issued_at", C.IAT, UINT),
        Field("public_key", C.CNF, CNF_KEY),
        Field("ueid", C.UEID, UEID),
        Field("hwmodel", C.HWMODEL, HWMODEL),
        Field("pod_class", C.HEM_POD_CLASS, UINT),
    )

    issuer: str
    issued_at: int
    public_key: PublicKey
    ueid: bytes
    hwmodel: str
    pod_class: int


@dataclass(frozen=True, slots=True)
class VerifierCert(SignedMessage):
    """The authority certifies a regional verifier node's key and names its region."""

    CONTENT_TYPE: ClassVar[str] = ContentType.VERIFIER_CERT
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("issuer", C.ISS, TSTR),
        Field("verifier_id", C.SUB, TSTR),
        Field("issued_at", C.IAT, UINT),
        Field("expires_at", C.EXP, UINT),
        Field("public_key", C.CNF, CNF_KEY),
        Field("region", C.HEM_REGION, TSTR),
    )

    issuer: str
    verifier_id: str
    issued_at: int
    expires_at: int
    public_key: PublicKey
    region: str
