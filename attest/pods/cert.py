"""Pod certificates: who may sign them, and the rules a chip applies before it trusts one.

A PodCert verifies if the Authority signed it (``iss`` = authority id, empty issuer
certificate), or if a manufacturer the Authority certified signed it and presents that
ManufacturerCert, unexpired, with ``sub`` equal to the pod certificate's ``iss``. Everything
else about a pod (revocation, the chip's model limit, membership) is a separate rule with its
own refusal name, checked in a fixed order so a given certificate always yields the same name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from attest.errors import AttestError, CertificateError
from attest.identity import Authority, Manufacturer
from attest.keys import PublicKey, SigningKey
from attest.messages.certs import ManufacturerCert
from attest.pods.messages import POD_ID_BYTES, PodCert, pod_cert_digest
from attest.pods.names import Refusal
from attest.verify.chain import TrustAnchors


@dataclass(frozen=True, slots=True)
class PodCredential:
    """A verified pod certificate as held by a chip or a verifier: token, issuer cert, parse."""

    token: bytes
    #: the issuing manufacturer's ManufacturerCert token; empty when the Authority signed
    issuer_cert: bytes
    cert: PodCert
    #: SHA-256 of ``token`` (what link proofs bind)
    digest: bytes

    @property
    def pod_id(self) -> bytes:
        return self.cert.pod_id


def open_pod_cert(
    token: bytes, issuer_cert: bytes, anchors: TrustAnchors, *, now_s: int
) -> PodCredential:
    """Verify a pod certificate and its issuer; raise CertificateError if it is not genuine."""
    try:
        if not issuer_cert:
            cert = PodCert.verify(token, anchors.authority_key)
            if cert.issuer != anchors.authority_id:
                raise CertificateError(
                    f"pod certificate issued by {cert.issuer!r}, not the authority"
                )
        else:
            mfr = ManufacturerCert.verify(issuer_cert, anchors.authority_key)
            if mfr.issuer != anchors.authority_id:
                raise CertificateError("the issuer's certificate is not from the authority")
            if now_s >= mfr.expires_at:
                raise CertificateError(f"manufacturer {mfr.manufacturer_id!r} certificate expired")
            cert = PodCert.verify(token, mfr.public_key)
            if cert.issuer != mfr.manufacturer_id:
                raise CertificateError(
                    f"pod certificate names issuer {cert.issuer!r}, "
                    f"signed by {mfr.manufacturer_id!r}"
                )
    except CertificateError:
        raise
    except AttestError as exc:
        raise CertificateError(f"pod certificate does not verify: {exc}") from None
    return PodCredential(token, issuer_cert, cert, pod_cert_digest(token))


def install_refusal(
    credential: PodCredential,
    *,
    ueid: bytes,
    device_key: PublicKey,
    max_pod_size: int,
    revoked_pods: frozenset[bytes],
) -> Refusal | None:
    """Why a chip must refuse to install a verified certificate, or None (rules 2-4 of the spec).

    Rule 1 (the signature, :func:`open_pod_cert`) comes first and is the caller's.
    """
    cert = credential.cert
    if cert.pod_id in revoked_pods:
        return Refusal.POD_REVOKED
    if cert.size_class > max_pod_size or len(cert.members) > max_pod_size:
        return Refusal.POD_TOO_LARGE
    if cert.member_key(ueid) != device_key:
        return Refusal.POD_NOT_MEMBER
    return None


def new_pod_id() -> bytes:
    """A fresh random pod id (16 bytes, never all zero in practice; pod ids are not reused)."""
    while True:
        pod_id = os.urandom(POD_ID_BYTES)
        if any(pod_id):
            return pod_id


def issue_pod_cert(
    key: SigningKey,
    issuer: str,
    *,
    members: Iterable[tuple[bytes, PublicKey]],
    size_class: int,
    now_s: int,
    pod_id: bytes | None = None,
) -> bytes:
    """Sign a PodCert (members sorted by UEID); the caller is the Authority or a manufacturer."""
    return PodCert(
        issuer=issuer,
        issued_at=now_s,
        pod_id=pod_id if pod_id is not None else new_pod_id(),
        members=tuple(sorted(members, key=lambda m: m[0])),
        size_class=size_class,
    ).sign(key)


def certify_pod(
    issuer: Authority | Manufacturer,
    members: Iterable[tuple[bytes, PublicKey]],
    *,
    size_class: int,
    now_s: int,
    pod_id: bytes | None = None,
) -> bytes:
    """Certify a pod of chips (UEID, device key) that may link at full speed: the Authority, or
    a certified manufacturer at a trusted facility (which presents its certificate with it)."""
    issuer_id = issuer.authority_id if isinstance(issuer, Authority) else issuer.manufacturer_id
    return issue_pod_cert(
        issuer.key,
        issuer_id,
        members=members,
        size_class=size_class,
        now_s=now_s,
        pod_id=pod_id,
    )
