"""Reference values: a vendor's signed statement of its chip models and firmware measurements.

In RATS terms (RFC 9334) the manufacturer is the Endorser and the Reference Value Provider for
its chips. A :class:`ReferenceValues` document (COSE_Sign1 by the manufacturer's key, which the
Authority certified) is how it tells verifiers what its chips are: each model's physical peaks
(which bound how fast an honest chip's meters can grow) and pod limit, and each firmware version
with the digest an honest chip of that model reports for it and its status (current, outdated,
revoked). A verifier node keeps the newest document of each vendor (``number`` only grows) and
appraises that vendor's chips against it (SPEC §8.1, §9.5).

The document carries the manufacturer's certificate, so a verifier can check it against its
trust anchors alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from attest.errors import DecodeError
from attest.hardware import ChipModel
from attest.messages import claims as C
from attest.messages.content import ContentType
from attest.messages.schema import (
    BSTR,
    DIGEST,
    HWMODEL,
    TSTR,
    UINT,
    Field,
    Kind,
    SignedMessage,
    list_of,
    parse_claims,
)

#: most models and firmware entries one document may list
MAX_MODELS = 64
MAX_FIRMWARE = 1024


class FirmwareStatus(enum.IntEnum):
    """A firmware version's standing with its vendor (stable wire values)."""

    #: supported; earns an affirming verdict (if at least the policy's minimum version)
    CURRENT = 0
    #: superseded; a chip running it gets FIRMWARE_OUTDATED (a warning)
    OUTDATED = 1
    #: withdrawn (e.g. a known vulnerability); a chip running it gets FIRMWARE_REVOKED
    REVOKED = 2


@dataclass(frozen=True, slots=True)
class FirmwareReference:
    """One firmware version of one model: what an honest chip reports, and its status."""

    hwmodel: str
    version: tuple[int, ...]
    measurement: bytes
    status: FirmwareStatus


def _positive(v: Any) -> int:
    if type(v) is not int or not 1 <= v <= (1 << 64) - 1:
        raise DecodeError("expected an integer >= 1")
    return v


def _version(v: Any) -> tuple[int, ...]:
    if type(v) is not str:
        raise DecodeError("a firmware version is a dotted text like 1.2.0")
    parts = v.split(".")
    if not 1 <= len(parts) <= 4 or not all(
        p.isascii() and p.isdigit() and len(p) <= 6 for p in parts
    ):
        raise DecodeError("a firmware version is 1..4 dot-separated decimal numbers")
    return tuple(int(p) for p in parts)


def _status(v: Any) -> FirmwareStatus:
    if type(v) is not int or v not in FirmwareStatus._value2member_map_:
        raise DecodeError("firmware status is 0 (current), 1 (outdated) or 2 (revoked)")
    return FirmwareStatus(v)


_MODEL_FIELDS = (
    Field("name", 1, HWMODEL),
    Field("peak_flops_per_s", 2, Kind(_positive)),
    Field("peak_power_mw", 3, Kind(_positive)),
    Field("peak_interconnect_bytes_per_s", 4, Kind(_positive)),
    Field("max_pod_size", 5, Kind(_positive)),
)
_FIRMWARE_FIELDS = (
    Field("hwmodel", 1, HWMODEL),
    Field("version", 2, Kind(_version, lambda v: ".".join(str(p) for p in v))),
    Field("measurement", 3, DIGEST),
    Field("status", 4, Kind(_status, int)),
)


def _model(v: Any) -> ChipModel:
    return ChipModel(**parse_claims(v, _MODEL_FIELDS))


def _model_out(m: ChipModel) -> dict[int, Any]:
    return {f.key: f.kind.emit(getattr(m, f.name)) for f in _MODEL_FIELDS}  # type: ignore[misc]


def _firmware(v: Any) -> FirmwareReference:
    return FirmwareReference(**parse_claims(v, _FIRMWARE_FIELDS))


def _firmware_out(r: FirmwareReference) -> dict[int, Any]:
    return {f.key: f.kind.emit(getattr(r, f.name)) for f in _FIRMWARE_FIELDS}  # type: ignore[misc]


MODELS = Kind(list_of(_model, MAX_MODELS), lambda ms: [_model_out(m) for m in ms])
FIRMWARE = Kind(list_of(_firmware, MAX_FIRMWARE), lambda fs: [_firmware_out(f) for f in fs])


@dataclass(frozen=True, slots=True)
class ReferenceValues(SignedMessage):
    """A manufacturer's chip models and firmware reference values (see the module docstring)."""

    CONTENT_TYPE: ClassVar[str] = ContentType.REFERENCE_VALUES
    FIELDS: ClassVar[tuple[Field, ...]] = (
        Field("issuer", C.ISS, TSTR),
        Field("issued_at", C.IAT, UINT),
        Field("number", C.HEM_RV_NUMBER, Kind(_positive)),  # u64 .ge 1
        Field("issuer_cert", C.HEM_RV_ISSUER_CERT, BSTR),
        Field("models", C.HEM_RV_MODELS, MODELS),
        Field("firmware", C.HEM_RV_FIRMWARE, FIRMWARE),
    )

    #: the manufacturer id (``sub`` of its certificate)
    issuer: str
    issued_at: int
    #: strictly increasing per manufacturer: a verifier never goes back to a lower one
    number: int
    #: the manufacturer's certificate (a ManufacturerCert token signed by the Authority)
    issuer_cert: bytes
    models: tuple[ChipModel, ...]
    firmware: tuple[FirmwareReference, ...]

    def __post_init__(self) -> None:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise DecodeError("a model is listed twice")
        seen = {(f.hwmodel, f.version) for f in self.firmware}
        if len(seen) != len(self.firmware):
            raise DecodeError("a (model, firmware version) is listed twice")
        # A vendor speaks only for its own models: firmware of a model it does not declare
        # here could otherwise whitelist a measurement for another vendor's chips.
        if any(f.hwmodel not in names for f in self.firmware):
            raise DecodeError("firmware listed for a model the document does not declare")
