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

from attest.keys import PublicKey, SigningKey
from attest.messages.certs import DeviceCert, ManufacturerCert, VerifierCert
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


@dataclass(frozen=True, slots=True)
class VerifierIdentity:
    """A regional verifier node's key and its authority-issued certificate."""

    verifier_id: str
    region: str
    key: SigningKey
    cert: bytes
