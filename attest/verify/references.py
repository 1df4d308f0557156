"""Opening a vendor's reference-values document and folding it into the appraisal policy.

A document is trusted only as far as its chain: its ``issuer_cert`` must be a ManufacturerCert
the Authority signed, unexpired, naming the document's ``iss``, and the document must verify
under that certificate's key. Folding several vendors' documents into one :class:`Policy` keeps
each model name owned by one vendor (a second vendor redefining it is refused), so no vendor can
speak for another's chips (SPEC §8.1).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from attest.errors import AttestError, CertificateError
from attest.hardware import ChipModel
from attest.messages.certs import ManufacturerCert
from attest.messages.reference import FirmwareReference, ReferenceValues
from attest.verify.chain import TrustAnchors
from attest.verify.policy import Policy


def open_reference_values(token: bytes, anchors: TrustAnchors, *, now_s: int) -> ReferenceValues:
    """Verify a reference-values document and its issuer's certificate (CertificateError)."""
    try:
        claimed = ReferenceValues.from_payload(_payload(token))
        mfr = ManufacturerCert.verify(claimed.issuer_cert, anchors.authority_key)
    except AttestError as exc:
        raise CertificateError(
            f"not a reference-values document of this authority: {exc}"
        ) from None
    if mfr.issuer != anchors.authority_id:
        raise CertificateError("the issuer's certificate is not from the authority")
    if now_s >= mfr.expires_at:
        raise CertificateError(f"manufacturer {mfr.manufacturer_id!r} certificate expired")
    try:
        doc = ReferenceValues.verify(token, mfr.public_key)
    except AttestError as exc:
        raise CertificateError(f"reference values do not verify: {exc}") from None
    if doc.issuer != mfr.manufacturer_id:
        raise CertificateError(
            f"reference values name issuer {doc.issuer!r}, signed by {mfr.manufacturer_id!r}"
        )
    return doc


def _payload(token: bytes) -> bytes:
    from attest.codec.cose import parse_sign1

    return parse_sign1(token).payload


def with_reference_values(policy: Policy, docs: Iterable[ReferenceValues]) -> Policy:
    """``policy`` with every document's models and firmware references added.

    A model a document declares must be new, or identical to the one already in the policy
    (a vendor taking over a built-in model name with the same physics); a model declared by two
    vendors is refused with CertificateError.
    """
    models: dict[str, ChipModel] = dict(policy.models)
    owner: dict[str, str] = {}
    references: dict[tuple[str, tuple[int, ...]], FirmwareReference] = dict(policy.references)
    for doc in docs:
        for m in doc.models:
            if m.name in owner and owner[m.name] != doc.issuer:
                raise CertificateError(
                    f"model {m.name!r} is declared by {owner[m.name]!r} and by {doc.issuer!r}"
                )
            known = models.get(m.name)
            if known is not None and m.name not in owner and known != m:
                raise CertificateError(
                    f"{doc.issuer!r} redefines the built-in model {m.name!r} with other limits"
                )
            models[m.name], owner[m.name] = m, doc.issuer
        for ref in doc.firmware:
            references[(ref.hwmodel, ref.version)] = ref
    return dataclasses.replace(
        policy, models=MappingProxyType(models), references=_frozen(references)
    )


def _frozen(
    refs: Mapping[tuple[str, tuple[int, ...]], FirmwareReference],
) -> Mapping[tuple[str, tuple[int, ...]], FirmwareReference]:
    return MappingProxyType(dict(refs))
