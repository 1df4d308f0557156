"""The federation part of a chip: which partner authorities' verifier nodes it answers.

A chip is fused with its own authority's key (SPEC §3.1), or a committee's digest (B.3: its
anchors then carry the committee, which is its *home* here), and answers only that
authority's certified verifiers (§7.10). A chip that holds a federation agreement its
authority signed also answers the verifier nodes of a partner whose results the agreement lets
its authority recognise (``recognition(home, partner).results``), judged by that partner's
committee (SPEC B.5): the Singapore chip in a Johor data centre answers the Malaysian node.

The agreement comes to the chip like a revocation list: :meth:`FederationChip.install`
accepts it only under the chip's own authority (its approval is required for a first
agreement, amendments need K of the members in force) and only above the number it holds
(AGREEMENT_STALE), and persists it (the chip's state file) before it is used.

Roaming licences (:meth:`FederationChip.licensor`): a Delegation of another authority is
judged by that authority's committee only if the agreement lets it license this chip's
authority's chips; the licensing part then holds the licence to the partner quota.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attest.codec.cbor import decode
from attest.errors import AttestError, ChipRefusal
from attest.federation.agreement import Agreement, open_agreement
from attest.federation.committee import Committee
from attest.federation.route import Federation, anchors_of, peek_issuer
from attest.federation.sign import FederationError, parse_sign
from attest.mechanism import ChipHost, PartnerLicensor, QuietChipPart, VerifierRecognizer
from attest.verify.chain import TrustAnchors


class FederationChip(QuietChipPart, VerifierRecognizer):
    """A chip's agreement in force (or none) and the verifier nodes it recognises by it."""

    def __init__(self, host: ChipHost, saved: Mapping[str, Any] | None) -> None:
        self._host = host
        self._token: bytes | None = None
        self._agreement: Agreement | None = None
        if saved and saved.get("agreement"):
            token = bytes(saved["agreement"])
            try:
                payload = parse_sign(token).payload
                self._agreement = Agreement.from_claims(decode(payload))
            except AttestError as exc:
                raise AttestError(f"federation state: {exc}") from None
            self._token = token

    @property
    def home(self) -> Committee:
        """The chip's own authority: the committee its anchors carry, else its single key."""
        anchors = self._host.anchors
        if isinstance(anchors.committee, Committee):
            return anchors.committee
        return Committee.single(anchors.authority_id, anchors.authority_key)

    @property
    def agreement(self) -> Agreement | None:
        return self._agreement

    def install(self, token: bytes, *, now_s: int) -> Agreement:
        """Take an agreement (raises ChipRefusal naming the reason); durable before use."""
        try:
            new = open_agreement(
                token,
                home=self.home,
                in_force=self._agreement,
                highest=self._agreement.number if self._agreement else 0,
                now_s=now_s,
            )
        except FederationError as exc:
            raise ChipRefusal(exc.reason.name, str(exc)) from None
        self._agreement, self._token = new, token
        self._host.persist()
        return new

    # -- VerifierRecognizer -----------------------------------------------------------------

    def verifier_anchors(self, verifier_cert: bytes, *, now_s: int) -> TrustAnchors | None:
        if self._agreement is None:
            return None
        found = Federation(self.home, self._agreement).verifier_anchors(verifier_cert, now_s=now_s)
        return found if isinstance(found, TrustAnchors) else None

    def licensor(self, delegation: bytes, *, now_s: int) -> PartnerLicensor | None:
        """A partner's delegation (a roaming licence): judged by that partner's committee
        only if the agreement lets it license this chip's authority's chips (SPEC B.5)."""
        issuer = peek_issuer(delegation)
        home = self.home.authority_id
        if issuer is None or issuer == home:
            return None
        if self._agreement is None:
            return PartnerLicensor(None, why=f"{issuer}: no agreement in force")
        committee = Federation(self.home, self._agreement).committee_of(issuer)
        recognition = self._agreement.recognition(home, issuer)
        if committee is None or recognition is None or not recognition.licence_quota:
            return PartnerLicensor(None, why=f"the agreement does not let {issuer} license")
        if now_s >= self._agreement.expires_at:
            return PartnerLicensor(None, why="the agreement has expired")
        return PartnerLicensor(anchors_of(committee), recognition.licence_quota)

    # -- ChipPart: its agreement is all it keeps ----------------------------------------------

    def save(self) -> dict[str, Any] | None:
        return {"agreement": self._token} if self._token is not None else None


def chip_part(host: ChipHost, saved: Any, sign: object) -> FederationChip:
    """Every chip can hold an agreement (one that holds none answers only its own verifiers)."""
    return FederationChip(host, saved)
