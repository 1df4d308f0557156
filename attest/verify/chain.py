"""Certificate chains: authority → manufacturer → device, and authority → verifier.

Verification of a chain is a pure function of (certificate bytes, authority key); the
:class:`ChainCache` memoises successful verifications by the exact certificate bytes so a daemon
appraising the same chip every few seconds checks its chain signatures once. Expiry and
revocation are *not* cached: they depend on time and on the current revocation list and are
evaluated on every appraisal.
"""

from __future__ import annotations

from dataclasses import dataclass

from attest.errors import AttestError
from attest.keys import PublicKey
from attest.messages.certs import DeviceCert, ManufacturerCert, VerifierCert


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    """The authority's identity and public key: the root every chain must reach."""

    authority_id: str
    authority_key: PublicKey


@dataclass(frozen=True, slots=True)
class DeviceChain:
    """A chip's endorsement chain as presented (hello) or registered (store)."""

    device_cert: bytes
    manufacturer_cert: bytes


class ChainCache:
    """Bounded memo of verified chains, keyed by the exact certificate bytes."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._max = max_entries
        self._chains: dict[tuple[bytes, bytes], tuple[DeviceCert, ManufacturerCert]] = {}

    def get(self, key: tuple[bytes, bytes]) -> tuple[DeviceCert, ManufacturerCert] | None:
        return self._chains.get(key)

    def put(self, key: tuple[bytes, bytes], value: tuple[DeviceCert, ManufacturerCert]) -> None:
        if len(self._chains) >= self._max:
            self._chains.clear()  # simple and bounded; a miss costs two signature checks
        self._chains[key] = value

    def __len__(self) -> int:
        return len(self._chains)


def verify_device_chain(
    chain: DeviceChain, anchors: TrustAnchors, cache: ChainCache | None = None
) -> tuple[DeviceCert, ManufacturerCert] | None:
    """The parsed device and manufacturer certificates if both signatures chain to the root."""
    key = (chain.device_cert, chain.manufacturer_cert)
    if cache is not None:
        hit = cache.get(key)
        if hit is not None:
            return hit
    try:
        mfr = ManufacturerCert.verify(chain.manufacturer_cert, anchors.authority_key)
        if mfr.issuer != anchors.authority_id:
            return None
        dev = DeviceCert.verify(chain.device_cert, mfr.public_key)
        if dev.issuer != mfr.manufacturer_id:
            return None
    except AttestError:
        return None
    if cache is not None:
        cache.put(key, (dev, mfr))
    return dev, mfr


def verify_verifier_cert(token: bytes, anchors: TrustAnchors) -> VerifierCert | None:
    """The parsed verifier certificate if the authority signed it (expiry checked by callers)."""
    try:
        cert = VerifierCert.verify(token, anchors.authority_key)
    except AttestError:
        return None
    return cert if cert.issuer == anchors.authority_id else None
