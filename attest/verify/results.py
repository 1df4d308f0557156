"""A relying party's check of a signed attestation result it holds (SPEC §6.8, informative
procedure in its "Relying parties" paragraph).

The chip checks a RESULT against the round it is in (§7.12: its nonce, its UEID); a relying
party holds a result token on its own, from ``attest chip run --out`` or a node's
``GET /chips/{ueid}/result``, together with the certificate of the verifier that signed it and
the authority's trust anchors. :func:`verify_result` checks, in this order, stopping at the
first failure (each failure names its :class:`ResultCheck`):

1. ``envelope``: the token is a COSE_Sign1 (§4.3);
2. ``content-type``: of an AttestationResult (§4.4), so a relying party handed another token is
   told what it is instead of "bad signature";
3. ``verifier-cert``: the verifier certificate is valid under the anchors (§3.5, the same
   :func:`~attest.verify.chain.verify_verifier_cert` the chip runs);
4. ``signature``: the result verifies under the certificate's key (§4.5 through
   :meth:`AttestationResult.verify`, the chip's call);
5. ``payload``: its claims satisfy §6.8 (the same parse);
6. ``issuer``: ``iss`` of the result names the certified verifier;
7. ``revoked``: the verifier is not on the revocation list given (if one is);
8. ``expiry``: the certificate was valid when the result was issued (``iat``): a result signed
   after its verifier's certificate expired proves nothing, one signed before stays a valid
   statement about that moment;
9. ``freshness``: the result is not from the future (beyond ``skew_s``) nor, with
   ``max_age_s``, older than the relying party accepts. Results have no ``exp`` (§6.8): how old a
   result may be is the relying party's policy, not the verifier's.

Pure: the clock is ``now_s`` and nothing is read from disk.
"""

from __future__ import annotations

import enum
from collections.abc import Collection

from attest.codec.cose import parse_sign1
from attest.errors import AttestError, ContentTypeError, DecodeError, SignatureError
from attest.messages.attestation import AttestationResult
from attest.messages.certs import VerifierCert
from attest.messages.content import ContentType
from attest.verify.chain import TrustAnchors, verify_verifier_cert

#: how far in the future a result's ``iat`` may lie (clocks of verifier and relying party)
DEFAULT_SKEW_S = 300


class ResultCheck(enum.StrEnum):
    """The check of :func:`verify_result` that a result failed (the module docstring's list)."""

    ENVELOPE = "envelope"
    CONTENT_TYPE = "content-type"
    VERIFIER_CERT = "verifier-cert"
    SIGNATURE = "signature"
    PAYLOAD = "payload"
    ISSUER = "issuer"
    REVOKED = "revoked"
    EXPIRY = "expiry"
    FRESHNESS = "freshness"


class ResultRejected(AttestError):
    """A result token failed :func:`verify_result`: ``check`` says which check, the message why."""

    def __init__(self, check: ResultCheck, detail: str) -> None:
        super().__init__(f"{check}: {detail}")
        self.check = check
        self.detail = detail


def verify_result(
    token: bytes,
    verifier_cert: bytes,
    anchors: TrustAnchors,
    *,
    now_s: int,
    max_age_s: int | None = None,
    revoked_verifiers: Collection[str] = (),
    skew_s: int = DEFAULT_SKEW_S,
) -> tuple[AttestationResult, VerifierCert]:
    """The parsed result and its verifier's certificate, or :class:`ResultRejected`."""
    try:
        envelope = parse_sign1(token)
    except DecodeError as exc:
        raise ResultRejected(ResultCheck.ENVELOPE, f"not a COSE_Sign1 token ({exc})") from None
    if envelope.content_type != ContentType.RESULT:
        raise ResultRejected(
            ResultCheck.CONTENT_TYPE,
            f"content type {envelope.content_type!r} is not {str(ContentType.RESULT)!r} "
            "(`attest inspect` shows what it is)",
        )
    cert = verify_verifier_cert(verifier_cert, anchors)
    if cert is None:
        raise ResultRejected(
            ResultCheck.VERIFIER_CERT,
            f"the verifier certificate is not signed by authority {anchors.authority_id!r}",
        )
    try:
        result = AttestationResult.verify(token, cert.public_key)
    except SignatureError as exc:
        raise ResultRejected(
            ResultCheck.SIGNATURE, f"{exc} under the key of verifier {cert.verifier_id!r}"
        ) from None
    except ContentTypeError as exc:  # the protected header has more than alg and type
        raise ResultRejected(ResultCheck.CONTENT_TYPE, str(exc)) from None
    except DecodeError as exc:
        raise ResultRejected(ResultCheck.PAYLOAD, str(exc)) from None
    if result.verifier_id != cert.verifier_id:
        raise ResultRejected(
            ResultCheck.ISSUER,
            f"the result names verifier {result.verifier_id!r}, the certificate "
            f"{cert.verifier_id!r}",
        )
    if cert.verifier_id in revoked_verifiers:
        raise ResultRejected(
            ResultCheck.REVOKED, f"verifier {cert.verifier_id!r} is on the revocation list"
        )
    if not cert.issued_at <= result.issued_at < cert.expires_at:
        raise ResultRejected(
            ResultCheck.EXPIRY,
            f"issued at {result.issued_at}, outside its verifier certificate's validity "
            f"[{cert.issued_at}, {cert.expires_at})",
        )
    if result.issued_at > now_s + skew_s:
        raise ResultRejected(
            ResultCheck.FRESHNESS, f"issued at {result.issued_at}, in the future (now {now_s})"
        )
    if max_age_s is not None and now_s - result.issued_at > max_age_s:
        raise ResultRejected(
            ResultCheck.FRESHNESS,
            f"issued {now_s - result.issued_at} s ago, more than the {max_age_s} s accepted",
        )
    return result, cert
