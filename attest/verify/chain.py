"""Certificate chains: authority → manufacturer → device, and authority → verifier.

Verification of a chain is a pure function of (certificate bytes, authority key); the
:class:`ChainCache` memoises successful verifications by the exact certificate bytes so a daemon
appraising the same chip every few seconds checks its chain signatures once. Expiry and
revocation are *not* cached: they depend on time and on the current revocation list and are
evaluated on every appraisal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from attest.errors import AttestError
from attest.keys import PublicKey
from attest.messages.certs import DeviceCert, ManufacturerCert, VerifierCert
from attest.messages.schema import SignedMessage

M = TypeVar("M", bound=SignedMessage)


class ActVerifier(Protocol):
    """An authority that is a committee (attest.federation.committee.Committee is one)."""

    def verify_act(self, token: bytes, content_type: str) -> bytes:
        """The payload of an act of ``content_type`` signed by enough officers (else raise an
        AttestError)."""
        ...


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    """The authority's identity and public key: the root every chain must reach.

    An authority that is a k-of-n committee (SPEC Appendix B) has ``committee``, which then
    judges its certificates here (COSE_Sign with k officer signatures, or COSE_Sign1 where k is
    1); ``authority_key`` is then one of its officers and is not used by these functions.
    """

    authority_id: str
    authority_key: PublicKey
    committee: ActVerifier | None = None


def authority_act(token: bytes, cls: type[M], anchors: TrustAnchors) -> M:
    """Verify an act of the authority (a certificate it signed) as ``cls``, then parse it."""
    if anchors.committee is not None:
        return cls.from_payload(anchors.committee.verify_act(token, cls.CONTENT_TYPE))
    return cls.verify(token, anchors.authority_key)


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
        mfr = authority_act(chain.manufacturer_cert, ManufacturerCert, anchors)
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
        cert = authority_act(token, VerifierCert, anchors)
    except AttestError:
        return None
    return cert if cert.issuer == anchors.authority_id else None
