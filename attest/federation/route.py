"""Cross-recognition (SPEC B.5): which authority judges a chain, and which results count.

A :class:`Federation` is what one verifier (or relying party) of authority *home* holds: its
own committee, the agreement in force and the newest committee it accepted for each member.
It answers two questions, both pure:

* :meth:`Federation.route` — a chip's ManufacturerCert names (unverified) a partner authority
  B. The node judges the chain under B's committee only if B is a member, the agreement has not
  expired, it lets *home* recognise B's endorsements, B's committee signed the certificate and
  its manufacturer is one the agreement names. Otherwise the node's own anchors judge it (the
  core reports CERT_CHAIN_INVALID) and the route adds the reason why;
* :meth:`Federation.accept_result` — a relying party of *home* given an AttestationResult of a
  partner's verifier node accepts it only if the agreement lets *home* recognise that partner's
  results and the partner's committee certified the node.

The issuer read from an unverified certificate only chooses which keys to try; nothing else in
it is used before those keys verified it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from attest.codec.cbor import decode
from attest.codec.cose import TAG18, parse_sign1
from attest.errors import AttestError
from attest.federation.agreement import Agreement, Recognition
from attest.federation.committee import Committee
from attest.federation.reasons import FederationReason
from attest.federation.sign import TAG98, FederationError, parse_sign
from attest.mechanism import ChainRoute
from attest.messages import claims as C
from attest.messages.attestation import AttestationResult
from attest.messages.certs import ManufacturerCert, VerifierCert
from attest.verify.chain import DeviceChain, TrustAnchors


def peek_issuer(token: bytes) -> str | None:
    """The ``iss`` a COSE_Sign1 or COSE_Sign act *claims* (unverified; None if unreadable)."""
    try:
        if token[:2] == TAG98:
            payload = parse_sign(token).payload
        elif token[:1] == TAG18:
            payload = parse_sign1(token).payload
        else:
            return None
        claims = decode(payload)
    except AttestError:
        return None
    iss = claims.get(C.ISS) if type(claims) is dict else None
    return iss if type(iss) is str else None


def anchors_of(committee: Committee) -> TrustAnchors:
    """Trust anchors that judge a chain by ``committee`` (k of its officers, SPEC B.3)."""
    return TrustAnchors(committee.authority_id, committee.officers[0], committee)


@dataclass(frozen=True)
class Federation:
    """What a verifier of ``home`` holds: its committee, the agreement, members' committees."""

    home: Committee
    agreement: Agreement
    #: the newest committee accepted per member (the agreement's, or a later rotation)
    committees: Mapping[str, Committee] = field(default_factory=dict)
    #: the home authority is a committee whose acts (k of n) judge its own chips' chains too;
    #: False: the node's own trust anchors judge them (a single-key home, SPEC §3.4)
    judge_home: bool = False

    def committee_of(self, authority_id: str) -> Committee | None:
        member = self.agreement.member(authority_id)
        if member is None:
            return None
        held = self.committees.get(authority_id)
        if held is not None and held.number > member.committee.number:
            return held
        return member.committee

    def _recognised(
        self, token: bytes, now_s: int
    ) -> tuple[str, Committee, Recognition] | FederationReason | None:
        """The partner that issued ``token``, its committee and what home recognises of it,
        under the agreement in force; a reason if none; None if the token is home's own."""
        issuer = peek_issuer(token)
        if issuer is None or issuer == self.home.authority_id:
            return None
        committee = self.committee_of(issuer)
        if committee is None:
            return FederationReason.AUTHORITY_NOT_RECOGNISED
        if now_s >= self.agreement.expires_at:
            return FederationReason.AGREEMENT_EXPIRED
        recognition = self.agreement.recognition(self.home.authority_id, issuer)
        if recognition is None:
            return FederationReason.AUTHORITY_NOT_RECOGNISED
        return issuer, committee, recognition

    def _partner(
        self, token: bytes, content_type: str, now_s: int
    ) -> tuple[str, Committee, Recognition, bytes] | FederationReason | None:
        """:meth:`_recognised`, and the act's payload once its committee's signatures hold."""
        found = self._recognised(token, now_s)
        if found is None or isinstance(found, FederationReason):
            return found
        issuer, committee, recognition = found
        try:
            payload = committee.verify_act(token, content_type)
        except FederationError as exc:
            return exc.reason
        return issuer, committee, recognition, payload

    def route(self, chain: DeviceChain, *, now_s: int) -> ChainRoute | None:
        """The route of a chip's chain (None: it claims the home authority and the node's own
        anchors judge it; with ``judge_home``, the home committee judges it)."""
        found = self._partner(chain.manufacturer_cert, ManufacturerCert.CONTENT_TYPE, now_s)
        if found is None:
            if not self.judge_home or peek_issuer(chain.manufacturer_cert) is None:
                return None
            try:
                self.home.verify_act(chain.manufacturer_cert, ManufacturerCert.CONTENT_TYPE)
            except FederationError as exc:
                return ChainRoute(reasons=(exc.reason,))
            return ChainRoute(anchors=anchors_of(self.home))
        log: dict[str, Any] = {"agreement": self.agreement.number}
        if isinstance(found, FederationReason):
            return ChainRoute(reasons=(found,), log=log)
        issuer, committee, recognition, payload = found
        log["authority"] = issuer
        try:
            mfr = ManufacturerCert.from_payload(payload)
        except AttestError:
            return ChainRoute(reasons=(FederationReason.ACT_MALFORMED,), log=log)
        if mfr.manufacturer_id not in recognition.manufacturers:
            return ChainRoute(reasons=(FederationReason.AUTHORITY_NOT_RECOGNISED,), log=log)
        licensing = self.agreement.recognition(issuer, self.home.authority_id)
        return ChainRoute(
            anchors=anchors_of(committee),
            log=log,
            chain=(issuer, self.agreement.number),
            licence_quota=licensing.licence_quota if licensing is not None else 0,
        )

    def verifier_anchors(
        self, verifier_cert: bytes, *, now_s: int
    ) -> TrustAnchors | FederationReason | None:
        """Anchors for a partner's VerifierCert if the agreement lets ``home`` recognise that
        partner's verifiers (their results); a reason if not; None for home's own (a chip of
        ``home`` then checks the certificate under its fused anchors, SPEC §7.10)."""
        found = self._recognised(verifier_cert, now_s)
        if found is None or isinstance(found, FederationReason):
            return found
        _issuer, committee, recognition = found
        if not recognition.results:
            return FederationReason.AUTHORITY_NOT_RECOGNISED
        return anchors_of(committee)

    def accept_result(
        self, result: bytes, verifier_cert: bytes, *, now_s: int
    ) -> tuple[AttestationResult, VerifierCert]:
        """A relying party of ``home``: the result and its node's certificate, if acceptable.

        The node may be home's own (certified by home's committee) or a partner's whose results
        the agreement lets home recognise. Raises FederationError (AUTHORITY_NOT_RECOGNISED,
        AGREEMENT_EXPIRED, an ACT_* reason for a certificate the committee did not sign, or
        ACT_BAD_SIGNATURE / ACT_MALFORMED for the result itself).
        """
        found = self._partner(verifier_cert, VerifierCert.CONTENT_TYPE, now_s)
        if isinstance(found, FederationReason):
            raise FederationError(found, "the verifier's authority")
        try:
            if found is None:
                payload = self.home.verify_act(verifier_cert, VerifierCert.CONTENT_TYPE)
            else:
                issuer, _committee, recognition, payload = found
                if not recognition.results:
                    raise FederationError(
                        FederationReason.AUTHORITY_NOT_RECOGNISED, f"{issuer}'s results"
                    )
            cert = VerifierCert.from_payload(payload)
        except FederationError:
            raise
        except AttestError as exc:
            raise FederationError(FederationReason.ACT_MALFORMED, str(exc)) from None
        if now_s >= cert.expires_at:
            raise FederationError(FederationReason.AUTHORITY_NOT_RECOGNISED, "expired node cert")
        try:
            res = AttestationResult.verify(result, cert.public_key)
        except AttestError as exc:
            raise FederationError(FederationReason.ACT_BAD_SIGNATURE, f"result: {exc}") from None
        if res.verifier_id != cert.verifier_id:
            raise FederationError(FederationReason.ACT_BAD_SIGNATURE, "result of another node")
        return res, cert
