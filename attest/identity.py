"""The signing roles of the key hierarchy: Authority, Manufacturer, Verifier node.

Each role object holds its own :class:`~attest.keys.SigningKey` and issues the certificates
that role is allowed to issue. Chips are fabricated by :func:`attest.chip.device.fabricate`: the
chip generates its device key itself and only its public half is ever endorsed. Mechanisms sign
their own acts with these roles' keys (e.g. attest.pods.cert.certify_pod).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from attest.errors import AttestError, CertificateError
from attest.hardware import DEFAULT_MODELS, ChipModel
from attest.keys import PublicKey, SigningKey
from attest.messages.certs import DeviceCert, ManufacturerCert, VerifierCert
from attest.messages.reference import FirmwareReference, ReferenceValues
from attest.messages.revocation import RevocationList
from attest.verify.chain import TrustAnchors

YEAR_S = 365 * 24 * 3600


def new_ueid() -> bytes:
    """A RAND-type UEID (RFC 9711 §4.2.1): 0x01 followed by 16 random bytes."""
    return b"\x01" + os.urandom(16)


@dataclass(frozen=True, slots=True)
class Authority:
    """The licensing/governance authority: the root of trust fused into every chip."""

    authority_id: str
    key: SigningKey

    @property
    def anchors(self) -> TrustAnchors:
        return TrustAnchors(self.authority_id, self.key.public_key)

    def certify_manufacturer(
        self,
        manufacturer_id: str,
        public_key: PublicKey,
        *,
        now_s: int,
        validity_s: int = 10 * YEAR_S,
    ) -> bytes:
        return ManufacturerCert(
            issuer=self.authority_id,
            manufacturer_id=manufacturer_id,
            issued_at=now_s,
            expires_at=now_s + validity_s,
            public_key=public_key,
        ).sign(self.key)

    def certify_verifier(
        self,
        verifier_id: str,
        region: str,
        public_key: PublicKey,
        *,
        now_s: int,
        validity_s: int = YEAR_S,
    ) -> bytes:
        return VerifierCert(
            issuer=self.authority_id,
            verifier_id=verifier_id,
            issued_at=now_s,
            expires_at=now_s + validity_s,
            public_key=public_key,
            region=region,
        ).sign(self.key)

    def revocation_list(
        self,
        number: int,
        *,
        now_s: int,
        devices: Iterable[bytes] = (),
        manufacturers: Iterable[str] = (),
        verifiers: Iterable[str] = (),
        pods: Iterable[bytes] = (),
        delegations: Iterable[int] = (),
    ) -> bytes:
        return RevocationList(
            issuer=self.authority_id,
            issued_at=now_s,
            number=number,
            devices=tuple(sorted(set(devices))),
            manufacturers=tuple(sorted(set(manufacturers))),
            verifiers=tuple(sorted(set(verifiers))),
            pods=tuple(sorted(set(pods))),
            delegations=tuple(sorted(set(delegations))) or None,
        ).sign(self.key)


@dataclass(frozen=True, slots=True)
class EndorsementRequest:
    """What a chip hands its manufacturer at the fab: its UEID and public key, nothing secret."""

    ueid: bytes
    public_key: PublicKey
    hwmodel: str
    #: None: the built-in model's maximum pod size
    pod_class: int | None = None


@dataclass(frozen=True, slots=True)
class Endorsement:
    """What the manufacturer hands back: the device certificate and its own certificate."""

    ueid: bytes
    hwmodel: str
    device_cert: bytes
    manufacturer_cert: bytes


@dataclass(frozen=True, slots=True)
class Manufacturer:
    """A chip vendor whose endorsement key the authority has certified."""

    manufacturer_id: str
    key: SigningKey
    cert: bytes

    def endorse(
        self, public_key: PublicKey, *, ueid: bytes, hwmodel: str, pod_class: int, now_s: int
    ) -> bytes:
        """Sign a device certificate for a chip's device key."""
        return DeviceCert(
            issuer=self.manufacturer_id,
            issued_at=now_s,
            public_key=public_key,
            ueid=ueid,
            hwmodel=hwmodel,
            pod_class=pod_class,
        ).sign(self.key)

    def endorse_request(self, request: EndorsementRequest, *, now_s: int) -> Endorsement:
        """Certify one chip's request (CertificateError if it cannot be certified as asked)."""
        pod_class = request.pod_class
        if pod_class is None:
            model = DEFAULT_MODELS.get(request.hwmodel)
            if model is None:
                raise CertificateError(
                    f"model {request.hwmodel!r} is not built in: give the chip's pod class"
                )
            pod_class = model.max_pod_size
        try:
            token = self.endorse(
                request.public_key,
                ueid=request.ueid,
                hwmodel=request.hwmodel,
                pod_class=pod_class,
                now_s=now_s,
            )
            DeviceCert.verify(token, self.key.public_key)  # the rules every verifier applies
        except AttestError as exc:
            raise CertificateError(f"cannot certify chip {request.ueid.hex()}: {exc}") from None
        return Endorsement(request.ueid, request.hwmodel, token, self.cert)

    def reference_values(
        self,
        *,
        number: int,
        models: Iterable[ChipModel],
        firmware: Iterable[FirmwareReference],
        now_s: int,
    ) -> bytes:
        """Sign reference-values document ``number`` for this vendor's models and firmware."""
        return ReferenceValues(
            issuer=self.manufacturer_id,
            issued_at=now_s,
            number=number,
            issuer_cert=self.cert,
            models=tuple(models),
            firmware=tuple(firmware),
        ).sign(self.key)


@dataclass(frozen=True, slots=True)
class VerifierIdentity:
    """A regional verifier node's key and its authority-issued certificate."""

    verifier_id: str
    region: str
    key: SigningKey
    cert: bytes
