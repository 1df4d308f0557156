"""Opening a vendor's reference-values document and folding documents into the appraisal policy.

A document is trusted only as far as its chain: its ``issuer_cert`` must be a ManufacturerCert
the Authority signed, unexpired, naming the document's ``iss``, and the document must verify
under that certificate's key (SPEC §6.10, "Verifying"). The document carries the key that
verifies it, so opening it is §4.5 for a ReferenceValues token with one step inserted: after the
envelope checks (steps 1–4) the certificate is taken from the still-untrusted payload and
verified, and only then the signature (step 5) and the schema (step 6) of the document. Each
failure has a refusal name (:class:`RvRefusal`), pinned by vectors/reference_values.json.

Folding several vendors' documents into one :class:`Policy` keeps each model name owned by one
vendor (a second vendor redefining it is refused), so no vendor can speak for another's chips
(SPEC §8.1, rules 1–3); a refused set names the rule that failed (:class:`ReferenceSetRefused`).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from attest.codec.cbor import decode
from attest.codec.cose import ALG_EDDSA, parse_sign1, protected_header, verify1
from attest.errors import AttestError, CertificateError, DecodeError
from attest.hardware import ChipModel
from attest.messages import claims as C
from attest.messages.certs import ManufacturerCert
from attest.messages.reference import FirmwareReference, ReferenceValues
from attest.verify.chain import TrustAnchors
from attest.verify.policy import Policy


class RvRefusal(enum.StrEnum):
    """Why a reference-values document was refused (SPEC §6.10; stable names)."""

    #: not a well-formed ReferenceValues token (envelope, payload encoding or schema)
    RV_MALFORMED = "RV_MALFORMED"
    #: the carried certificate is not a ManufacturerCert of the trust anchors' authority
    RV_ISSUER_INVALID = "RV_ISSUER_INVALID"
    #: the carried certificate has expired
    RV_ISSUER_EXPIRED = "RV_ISSUER_EXPIRED"
    #: the document's signature does not verify under the certificate's key
    RV_SIGNATURE_INVALID = "RV_SIGNATURE_INVALID"
    #: the document's ``iss`` is not the manufacturer the certificate names
    RV_ISSUER_MISMATCH = "RV_ISSUER_MISMATCH"
    #: the document's number is not greater than the one held for its manufacturer
    RV_NOT_NEWER = "RV_NOT_NEWER"


class ReferenceValuesRefused(CertificateError):
    """A reference-values document did not open; ``refusal`` names the failed step."""

    def __init__(self, refusal: RvRefusal, detail: str) -> None:
        super().__init__(f"{refusal}: {detail}")
        self.refusal = refusal


class ReferenceSetRefused(CertificateError):
    """A set of documents cannot be folded into a policy; ``rule`` is the rule of SPEC §8.1."""

    def __init__(self, rule: int, detail: str) -> None:
        super().__init__(f"SPEC §8.1 rule {rule}: {detail}")
        self.rule = rule


_PROTECTED = protected_header(ReferenceValues.CONTENT_TYPE)


def open_reference_values(
    token: bytes, anchors: TrustAnchors, *, now_s: int, held_number: int | None = None
) -> ReferenceValues:
    """Verify a reference-values document and its issuer's certificate (SPEC §6.10 steps 1–7).

    ``held_number`` is the number of the document a caller already holds for the document's
    manufacturer, if any (anti-rollback; the store checks it again in the transaction that
    keeps the new document). Raises :class:`ReferenceValuesRefused`.
    """
    # 1. §4.5 steps 1–4 of T, and the certificate it carries (nothing else of it is used yet)
    try:
        envelope = parse_sign1(token)
        if envelope.alg != ALG_EDDSA or envelope.protected != _PROTECTED or envelope.unprotected:
            raise DecodeError("not a ReferenceValues envelope")
        claims = decode(envelope.payload)
        cert = claims.get(C.HEM_RV_ISSUER_CERT) if type(claims) is dict else None
        if type(cert) is not bytes:
            raise DecodeError("no hem-rv-issuer-cert byte string")
    except AttestError as exc:
        raise ReferenceValuesRefused(
            RvRefusal.RV_MALFORMED, f"not a reference-values document: {exc}"
        ) from None
    # 2.–3. the certificate: the authority's, unexpired
    try:
        mfr = ManufacturerCert.verify(cert, anchors.authority_key)
    except AttestError as exc:
        raise ReferenceValuesRefused(
            RvRefusal.RV_ISSUER_INVALID,
            f"not a reference-values document of this authority: {exc}",
        ) from None
    if mfr.issuer != anchors.authority_id:
        raise ReferenceValuesRefused(
            RvRefusal.RV_ISSUER_INVALID, "the issuer's certificate is not from the authority"
        )
    if now_s >= mfr.expires_at:
        raise ReferenceValuesRefused(
            RvRefusal.RV_ISSUER_EXPIRED,
            f"manufacturer {mfr.manufacturer_id!r} certificate expired",
        )
    # 4. §4.5 step 5 under the certificate's key (steps 1–4 passed above)
    try:
        payload = verify1(token, mfr.public_key, ReferenceValues.CONTENT_TYPE)
    except AttestError as exc:
        raise ReferenceValuesRefused(
            RvRefusal.RV_SIGNATURE_INVALID, f"reference values do not verify: {exc}"
        ) from None
    # 5. §4.5 step 6: the schema, prose rules included
    try:
        doc = ReferenceValues.from_payload(payload)
    except AttestError as exc:
        raise ReferenceValuesRefused(
            RvRefusal.RV_MALFORMED, f"not a valid reference-values document: {exc}"
        ) from None
    # 6.–7. who speaks, and whether it is newer than what is held
    if doc.issuer != mfr.manufacturer_id:
        raise ReferenceValuesRefused(
            RvRefusal.RV_ISSUER_MISMATCH,
            f"reference values name issuer {doc.issuer!r}, signed by {mfr.manufacturer_id!r}",
        )
    if held_number is not None and doc.number <= held_number:
        raise ReferenceValuesRefused(
            RvRefusal.RV_NOT_NEWER,
            f"reference values {doc.number} of {doc.issuer!r} are not newer than the held "
            f"document {held_number}",
        )
    return doc


def fold_reference_values(
    policy: Policy, tokens: Iterable[bytes], anchors: TrustAnchors, *, now_s: int
) -> Policy:
    """SPEC §8.1 over a set of documents given as tokens: each must open at ``now_s`` (rule 1),
    then :func:`with_reference_values`. Raises :class:`ReferenceSetRefused`."""
    docs = []
    for token in tokens:
        try:
            docs.append(open_reference_values(token, anchors, now_s=now_s))
        except ReferenceValuesRefused as exc:
            raise ReferenceSetRefused(1, f"a document does not open ({exc})") from None
    return with_reference_values(policy, docs)


def with_reference_values(policy: Policy, docs: Iterable[ReferenceValues]) -> Policy:
    """``policy`` with every (opened) document's models and firmware references added.

    At most one document per manufacturer (rule 1). A model a document declares must be new,
    or identical to the one in the policy's configured models (a vendor taking over a built-in
    model name with the same physics); a model declared by two vendors is refused (rule 2).
    Raises :class:`ReferenceSetRefused`, rules checked in their order over the whole set.
    """
    docs = list(docs)
    vendors: set[str] = set()
    for doc in docs:
        if doc.issuer in vendors:
            raise ReferenceSetRefused(1, f"two documents of {doc.issuer!r}")
        vendors.add(doc.issuer)
    models: dict[str, ChipModel] = dict(policy.models)
    owner: dict[str, str] = {}
    references: dict[tuple[str, tuple[int, ...]], FirmwareReference] = dict(policy.references)
    for doc in docs:
        for m in doc.models:
            if m.name in owner:
                raise ReferenceSetRefused(
                    2, f"model {m.name!r} is declared by {owner[m.name]!r} and by {doc.issuer!r}"
                )
            known = models.get(m.name)
            if known is not None and known != m:
                raise ReferenceSetRefused(
                    2, f"{doc.issuer!r} redefines the built-in model {m.name!r} with other limits"
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
