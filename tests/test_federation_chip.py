"""A chip answers a partner authority's verifier node only under an agreement its authority
signed (SPEC B.5): a chip of ``authority.example`` attests at a node of ``authority.sg`` (a
3-of-5 committee), is affirmed there, and checks the partner's result.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from attest.chip.device import Chip, fabricate
from attest.codec.cbor import decode, encode
from attest.codec.cose import parse_sign1
from attest.errors import AttestError, ChipRefusal, DecodeError
from attest.federation.agreement import Recognition
from attest.federation.chip import FederationChip
from attest.federation.route import Federation, anchors_of
from attest.federation.verifier import FederationVerifier
from attest.identity import Manufacturer
from attest.messages import claims as C
from attest.messages.attestation import AttestationResult, Challenge
from attest.node.service import VerifierService
from attest.store import SqliteStore
from attest.testvectors.federation_world import (
    SG,
    TH,
    agreement,
    partner_committee,
    partner_mc,
    partner_verifier,
    sign_agreement,
)
from attest.testvectors.world import AUTHORITY_ID, NOW_S, ROUND1_MS, build_world, vector_key
from attest.verify.policy import Policy
from attest.verify.reasons import Tier

W = build_world()
#: home recognises SG's results (its chips answer SG's nodes); SG recognises home's mfr-a chips
BOTH_WAYS = (
    Recognition(AUTHORITY_ID, SG, ("mfr-sg",), results=True),
    Recognition(SG, AUTHORITY_ID, ("mfr-a",), results=True),
)
NOW = ROUND1_MS // 1000


def _part(chip: Chip) -> FederationChip:
    part = next(p for p in chip.parts if isinstance(p, FederationChip))
    return part


def _sg_challenge(label: str) -> tuple[bytes, bytes, Challenge]:
    node = partner_verifier(SG, "sg-fed-1")
    nonce = bytes(range(31)) + label.encode()[:1]
    ch = Challenge(node.verifier_id, NOW - 1, NOW + 29, nonce, "SG")
    return node.cert, ch.sign(node.key), ch


def test_a_chip_answers_a_partner_node_only_under_an_agreement(tmp_path: Path) -> None:
    chip = W.chip("hx100-a")
    cert, token, _ = _sg_challenge("a")
    with pytest.raises(ChipRefusal, match="VERIFIER_CERT_INVALID"):
        chip.accept_challenge(cert, token, NOW)  # no agreement: only its own authority's nodes
    a1 = agreement(W, recognitions=BOTH_WAYS)
    signed = sign_agreement(W, a1, {AUTHORITY_ID: 1, SG: 3, TH: 3})
    with pytest.raises(ChipRefusal, match="ACT_TOO_FEW_SIGNATURES"):
        _part(chip).install(sign_agreement(W, a1, {SG: 3, TH: 3, "authority.id": 3}), now_s=NOW)
    assert _part(chip).install(signed, now_s=NOW).number == 1
    with pytest.raises(ChipRefusal, match="AGREEMENT_STALE"):
        _part(chip).install(signed, now_s=NOW)
    challenge = chip.accept_challenge(cert, token, NOW)
    assert challenge.verifier_id == "sg-fed-1"

    # SG's node: a 3-of-5 committee home that recognises the home authority's mfr-a chips
    sg_home = partner_committee(SG)
    federation = Federation(sg_home, a1, judge_home=True)
    with SqliteStore(tmp_path / "sg.db", verifier_id="sg-fed-1") as store:
        service = VerifierService(
            identity=partner_verifier(SG, "sg-fed-1"),
            anchors=anchors_of(sg_home),
            store=store,
            policy=Policy(),
            clock_ms=lambda: ROUND1_MS,
            parts={"federation": FederationVerifier(federation)},
        )
        store.issue_challenge(challenge.nonce, None, (NOW - 1) * 1000, (NOW + 29) * 1000)
        outcome = service.conclude(chip.chain, challenge, chip.answer(challenge, NOW))
    assert outcome.verdict.tier is Tier.AFFIRMING, outcome.verdict.reasons
    assert outcome.log_fields == {"chain_agreement": 1, "chain_authority": AUTHORITY_ID}
    result = chip.check_result(cert, outcome.result, challenge)
    assert result.status == Tier.AFFIRMING
    # the EAR names the chain's authority and the agreement (hem-result -70420, -70421)
    assert result.chain == (AUTHORITY_ID, 1)
    hem = decode(parse_sign1(outcome.result).payload)[C.SUBMODS]["hem"][C.HEM_RESULT]
    assert (hem[C.HEM_CHAIN_AUTHORITY], hem[C.HEM_CHAIN_AGREEMENT]) == (AUTHORITY_ID, 1)


def test_a_result_names_both_chain_claims_or_neither() -> None:
    """A home chain's result carries neither claim (its bytes are those of revision 3); one
    claim without the other is malformed."""
    key = partner_verifier(SG, "sg-fed-1").key
    args = dict(verifier_id="sg-fed-1", issued_at=NOW, nonce=bytes(32), ueid=b"\x01" * 17,
                status=2, vector={4: 2}, policy_id="p", reasons=(), verifier_build="b",
                evidence_digest=bytes(32))  # fmt: skip
    home = AttestationResult.of(**args)  # type: ignore[arg-type]
    routed = AttestationResult.of(**args, chain=(SG, 4))  # type: ignore[arg-type]
    assert routed.payload() != home.payload() and home.chain is None
    assert C.HEM_CHAIN_AUTHORITY not in decode(home.payload())[C.SUBMODS]["hem"][C.HEM_RESULT]
    assert AttestationResult.verify(routed.sign(key), key.public_key).chain == (SG, 4)
    claims = decode(routed.payload())
    del claims[C.SUBMODS]["hem"][C.HEM_RESULT][C.HEM_CHAIN_AGREEMENT]
    with pytest.raises(DecodeError, match="come together"):
        AttestationResult.from_payload(encode(claims))


def test_what_the_agreement_does_not_grant_the_chip_refuses() -> None:
    cert, token, _ = _sg_challenge("b")
    only_endorsements = (Recognition(AUTHORITY_ID, SG, ("mfr-sg",)),)  # no results
    cases = {
        "results not recognised": (agreement(W, recognitions=only_endorsements), NOW),
        "expired agreement": (agreement(W, recognitions=BOTH_WAYS, expires_at=NOW + 10), NOW + 10),
    }
    for name, (a, at) in cases.items():
        chip = W.chip("hx100-a")
        _part(chip).install(sign_agreement(W, a, {AUTHORITY_ID: 1, SG: 3, TH: 3}), now_s=NOW)
        with pytest.raises(ChipRefusal, match="VERIFIER_CERT_INVALID"):
            chip.accept_challenge(cert, token, at)
        assert _part(chip).agreement == a, name


def test_the_agreement_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "chip"
    chip = fabricate(
        W.manufacturers["mfr-a"],
        W.anchors,
        hwmodel="HX100",
        pod_class=8,
        now_s=NOW_S,
        state_dir=state,
    )
    a1 = agreement(W, recognitions=BOTH_WAYS)
    _part(chip).install(sign_agreement(W, a1, {AUTHORITY_ID: 1, SG: 3, TH: 3}), now_s=NOW)
    again = Chip.load(state)
    assert _part(again).agreement == a1
    cert, token, _ = _sg_challenge("c")
    assert again.accept_challenge(cert, token, NOW).verifier_id == "sg-fed-1"
    with pytest.raises(ChipRefusal, match="AGREEMENT_STALE"):  # a rollback after the restart
        _part(again).install(sign_agreement(W, a1, {AUTHORITY_ID: 1, SG: 3, TH: 3}), now_s=NOW)


def test_a_chip_of_a_committee_fuses_its_digest(tmp_path: Path) -> None:
    """A chip of an authority that is a 3-of-5 committee keeps the committee's digest as its
    fused anchor (and the descriptor it names) across a restart; it judges its own chain and
    takes agreements under that committee; a state whose committee is not the fused one does
    not load."""
    sg = partner_committee(SG)
    vendor = Manufacturer("mfr-sg", vector_key("manufacturer/mfr-sg"), partner_mc())
    state = tmp_path / "sg-chip"
    fabricate(vendor, anchors_of(sg), hwmodel="HX100", pod_class=8, now_s=NOW, state_dir=state)
    chip = Chip.load(state)
    assert chip.anchors.committee == sg and chip.anchors.authority_id == SG
    a1 = agreement(W, recognitions=BOTH_WAYS)
    with pytest.raises(ChipRefusal, match="ACT_TOO_FEW_SIGNATURES"):  # SG's officers must sign
        _part(chip).install(sign_agreement(W, a1, {AUTHORITY_ID: 1, TH: 3, "authority.id": 3}),
                            now_s=NOW)  # fmt: skip
    assert _part(chip).install(sign_agreement(W, a1, {AUTHORITY_ID: 1, SG: 3, TH: 3}), now_s=NOW)
    raw = decode((state / "state.cbor").read_bytes())
    assert raw["authority_digest"] == sg.digest
    other = partner_committee(SG, 2)  # another committee of SG in the file: refused
    raw["authority_committee"] = other.payload()
    (state / "state.cbor").write_bytes(encode(raw))
    with pytest.raises(AttestError, match="fused digest"):
        Chip.load(state)
