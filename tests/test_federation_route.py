"""Cross-recognition on the seam (SPEC B.5) and the verifier's durable federation state (B.4).

A home node appraises a partner's chip under the partner's committee exactly when the
agreement in force recognises the partner's endorsements of that manufacturer; a relying party
accepts a partner node's result exactly when the agreement recognises the partner's results.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attest.codec.cbor import decode
from attest.errors import ConfigError
from attest.federation.agreement import Recognition
from attest.federation.committee import Committee
from attest.federation.reasons import FederationReason as FR
from attest.federation.route import Federation, peek_issuer
from attest.federation.sign import FederationError, sign_multi
from attest.federation.state import load_federation
from attest.federation.verifier import FederationVerifier
from attest.keys import SigningKey
from attest.mechanism import HOME, appraise_session
from attest.messages.attestation import AttestationResult
from attest.messages.certs import ManufacturerCert, VerifierCert
from attest.messages.revocation import Revocations
from attest.node.service import VerifierService
from attest.store import Enroll, SqliteStore
from attest.testvectors.federation_world import (
    AUTHORITY_ID,
    PARTNER_MANUFACTURER,
    SG,
    TH,
    agreement,
    federation,
    home_committee,
    officers,
    partner_chain,
    partner_committee,
    partner_mc,
    partner_verifier,
    sign_agreement,
)
from attest.testvectors.world import NOW_S, ROUND1_MS, build_world
from attest.verify.chain import DeviceChain
from attest.verify.policy import Policy
from attest.verify.reasons import Reason, Tier

W = build_world()


def _session(chain_of: str = "partner", **route_kw: object):  # type: ignore[no-untyped-def]
    chip = W.chip("hx100-a")
    chain = partner_chain(W) if chain_of == "partner" else chip.chain
    fed = federation(W)
    route = fed.route(chain, now_s=ROUND1_MS // 1000)
    _, token = W.challenge("fed/" + chain_of)
    ch = chip.accept_challenge(W.verifiers["kl-1"].cert, token, ROUND1_MS // 1000 - 1)
    return route, appraise_session(
        chip.answer(ch, ROUND1_MS // 1000),
        challenge=ch,
        chain=chain,
        record=None,
        anchors=W.anchors,
        revocations=Revocations(),
        policy=Policy(),
        now_ms=ROUND1_MS,
        route=route or HOME,
    )


def test_a_recognised_partner_chip_is_affirmed_and_enrolled() -> None:
    route, session = _session()
    assert route is not None and route.anchors is not None
    assert route.anchors.authority_id == SG
    assert dict(route.log) == {"agreement": 1, "authority": SG}
    assert session.verdict.tier is Tier.AFFIRMING, session.verdict.reasons
    assert isinstance(session.commit, Enroll)


def test_the_home_chain_is_not_routed() -> None:
    route, session = _session("home")
    assert route is None
    assert session.verdict.tier is Tier.AFFIRMING


def test_without_the_route_a_partner_chip_fails_the_chain_check() -> None:
    chip = W.chip("hx100-a")
    _, token = W.challenge("fed/none")
    ch = chip.accept_challenge(W.verifiers["kl-1"].cert, token, ROUND1_MS // 1000 - 1)
    session = appraise_session(
        chip.answer(ch, ROUND1_MS // 1000),
        challenge=ch,
        chain=partner_chain(W),
        record=None,
        anchors=W.anchors,
        revocations=Revocations(),
        policy=Policy(),
        now_ms=ROUND1_MS,
    )
    assert Reason.CERT_CHAIN_INVALID in session.verdict.reasons


def test_recognition_is_per_pair_and_per_manufacturer() -> None:
    fed = federation(W)
    now = ROUND1_MS // 1000
    # home recognises mfr-sg of SG, but not another SG manufacturer
    other = partner_chain(W, mc=partner_mc(manufacturer="mfr-sg-2"))
    assert fed.route(other, now_s=now).reasons == (FR.AUTHORITY_NOT_RECOGNISED,)  # type: ignore[union-attr]
    # TH recognises home, not the reverse
    th = partner_chain(W, mc=partner_mc(issuer=TH))
    assert fed.route(th, now_s=now).reasons == (FR.AUTHORITY_NOT_RECOGNISED,)  # type: ignore[union-attr]
    # a non-member authority
    vn = partner_chain(W, mc=partner_mc(issuer="authority.vn"))
    assert fed.route(vn, now_s=now).reasons == (FR.AUTHORITY_NOT_RECOGNISED,)  # type: ignore[union-attr]
    assert peek_issuer(b"junk") is None


def test_the_node_routes_through_its_federation_part(tmp_path: Path) -> None:
    """The whole node path: read, appraise, record, finish, with the part on the seam."""
    part = FederationVerifier(federation(W))
    with SqliteStore(tmp_path / "kl-1.db", verifier_id="kl-1") as store:
        service = VerifierService(
            identity=W.verifiers["kl-1"],
            anchors=W.anchors,
            store=store,
            policy=Policy(),
            clock_ms=lambda: ROUND1_MS,
            parts={"federation": part},
        )
        chip = W.chip("hx100-a")
        chain = partner_chain(W)
        ch, token = W.challenge("fed/node")
        ch = chip.accept_challenge(W.verifiers["kl-1"].cert, token, ROUND1_MS // 1000 - 1)
        store.issue_challenge(ch.nonce, None, ch.issued_at * 1000, ch.expires_at * 1000)
        outcome = service.conclude(chain, ch, chip.answer(ch, ROUND1_MS // 1000))
        assert outcome.verdict.tier is Tier.AFFIRMING
        assert outcome.enrolled
        assert outcome.log_fields == {"chain_agreement": 1, "chain_authority": SG}
        # a 2-of-5 manufacturer certificate: the chain reason, and why
        forged = partner_chain(W, "hx100-b", mc=partner_mc(signers=2))
        chip_b = W.chip("hx100-b")
        ch, token = W.challenge("fed/node-b")
        ch = chip_b.accept_challenge(W.verifiers["kl-1"].cert, token, ROUND1_MS // 1000 - 1)
        store.issue_challenge(ch.nonce, None, ch.issued_at * 1000, ch.expires_at * 1000)
        outcome = service.conclude(forged, ch, chip_b.answer(ch, ROUND1_MS // 1000))
        assert set(outcome.verdict.reasons) == {
            Reason.BAD_SIGNATURE,
            Reason.CERT_CHAIN_INVALID,
            FR.ACT_TOO_FEW_SIGNATURES,
        }
        assert AttestationResult.verify(outcome.result, W.verifiers["kl-1"].key.public_key).reasons


# -- relying parties --------------------------------------------------------------------------


def _partner_result(vid: str = "sg-fed-1") -> tuple[bytes, bytes]:
    node = partner_verifier(SG, vid)
    result = AttestationResult.of(
        verifier_id=node.verifier_id,
        issued_at=NOW_S,
        nonce=bytes(32),
        ueid=b"\x01" + bytes(range(16)),
        status=2,
        vector={0: 2, 1: 2, 2: 2, 4: 2},
        policy_id="p",
        reasons=(),
        verifier_build="test",
        evidence_digest=bytes(32),
    ).sign(node.key)
    return result, node.cert


def test_a_relying_party_accepts_a_partner_result_only_under_the_agreement() -> None:
    result, cert = _partner_result()
    fed = federation(W)
    res, vc = fed.accept_result(result, cert, now_s=NOW_S)
    assert (res.verifier_id, vc.issuer) == ("sg-fed-1", SG)
    # the home's own node is accepted as ever
    own = W.verifiers["kl-1"]
    own_result = AttestationResult.verify(
        AttestationResult.of(
            verifier_id="kl-1",
            issued_at=NOW_S,
            nonce=bytes(32),
            ueid=b"\x01" + bytes(16),
            status=2,
            vector={0: 2, 1: 2, 2: 2, 4: 2},
            policy_id="p",
            reasons=(),
            verifier_build="t",
            evidence_digest=bytes(32),
        ).sign(own.key),
        own.key.public_key,
    )
    assert (
        fed.accept_result(own_result.sign(own.key), own.cert, now_s=NOW_S)[1].issuer == AUTHORITY_ID
    )
    # no results recognition for SG: refused
    no_results = agreement(W, recognitions=(Recognition(AUTHORITY_ID, SG, ("mfr-sg",)),))
    cases = {
        "results not recognised": (
            federation(W, no_results),
            result,
            cert,
            FR.AUTHORITY_NOT_RECOGNISED,
        ),
        "expired agreement": (
            federation(W, agreement(W, expires_at=NOW_S)),
            result,
            cert,
            FR.AGREEMENT_EXPIRED,
        ),
        "result signed by another key": (
            fed,
            _partner_result("sg-fed-2")[0],
            cert,
            FR.ACT_BAD_SIGNATURE,
        ),
    }
    for name, (f, r, c, reason) in cases.items():
        with pytest.raises(FederationError) as exc:
            f.accept_result(r, c, now_s=NOW_S)
        assert exc.value.reason is reason, name
    # a node certificate signed by 2 of SG's 5 officers
    node = partner_verifier()
    vc = VerifierCert(SG, "sg-fed-1", NOW_S, NOW_S + 10**6, node.key.public_key, "SG")
    weak = sign_multi(VerifierCert.CONTENT_TYPE, vc.payload(), officers(SG)[:2])
    with pytest.raises(FederationError) as exc:
        fed.accept_result(result, weak, now_s=NOW_S)
    assert exc.value.reason is FR.ACT_TOO_FEW_SIGNATURES


# -- the durable state ------------------------------------------------------------------------


def test_agreements_are_taken_durably_and_never_rolled_back(tmp_path: Path) -> None:
    state = tmp_path / "federation-state.json"
    home = home_committee(W)
    a1 = sign_agreement(W, agreement(W, 1), {AUTHORITY_ID: 1, SG: 3, TH: 3})
    a2 = sign_agreement(W, agreement(W, 2), {AUTHORITY_ID: 1, SG: 3, "authority.id": 3})
    loaded = load_federation(home=home, state_path=state, agreement_token=a1, now_s=NOW_S)
    assert loaded.federation.agreement.number == 1 and not loaded.refused
    assert json.loads(state.read_text())["agreement"] == a1.hex()
    loaded = load_federation(home=home, state_path=state, agreement_token=a2, now_s=NOW_S)
    assert loaded.federation.agreement.number == 2
    # restart with the old file configured: the node keeps number 2 and says why
    loaded = load_federation(home=home, state_path=state, agreement_token=a1, now_s=NOW_S)
    assert loaded.federation.agreement.number == 2
    assert loaded.refused and "AGREEMENT_STALE" in loaded.refused[0]
    # a first agreement that is refused leaves the node without one: a configuration error
    with pytest.raises(ConfigError, match="ACT_TOO_FEW_SIGNATURES"):
        load_federation(
            home=home,
            state_path=tmp_path / "other.json",
            agreement_token=sign_agreement(W, agreement(W, 1), {AUTHORITY_ID: 1, SG: 3}),
            now_s=NOW_S,
        )


def partner_mc_signed_by(keys: list[SigningKey]) -> bytes:
    honest = decode(partner_mc()[2:])[2]
    return sign_multi(ManufacturerCert.CONTENT_TYPE, honest, keys)


def test_partner_rotations_are_taken_and_used(tmp_path: Path) -> None:
    state = tmp_path / "federation-state.json"
    home = home_committee(W)
    a1 = sign_agreement(W, agreement(W, 1), {AUTHORITY_ID: 1, SG: 3, TH: 3})
    sg2 = partner_committee(SG, 2)  # officer 0 out, officer 5 in
    rotation = sg2.sign(officers(SG)[:3])
    stale = partner_committee(SG, 1).sign(officers(SG)[1:4])
    loaded = load_federation(
        home=home, state_path=state, agreement_token=a1, rotations=[rotation, stale], now_s=NOW_S
    )
    assert loaded.federation.committee_of(SG) == sg2
    assert len(loaded.refused) == 1 and "rotation" in loaded.refused[0]
    now = ROUND1_MS // 1000
    # the rotated-out officer 0 can no longer make up the three
    old = partner_chain(W, mc=partner_mc())  # signed by officers 0, 1, 2
    routed = loaded.federation.route(old, now_s=now)
    assert routed is not None and routed.reasons == (FR.ACT_UNKNOWN_OFFICER,)
    # three officers of the new committee make the same certificate valid
    renewed = partner_chain(W, mc=partner_mc_signed_by(officers(SG, 6)[1:4]))
    routed = loaded.federation.route(renewed, now_s=now)
    assert routed is not None and routed.anchors is not None
    # durable: a restart without the rotation file still holds committee 2
    again = load_federation(home=home, state_path=state, agreement_token=a1, now_s=NOW_S)
    assert again.federation.committee_of(SG) == sg2


def test_a_committee_home_judges_its_own_chips_k_of_n() -> None:
    """With ``committee_file`` the home's officers (3 of 5 here) certify its manufacturers."""
    keys = [SigningKey.derive_insecure_for_tests(f"home-officer-{i}") for i in range(5)]
    home = Committee.of(AUTHORITY_ID, [k.public_key for k in keys], 3, issued_at=NOW_S)
    fed = Federation(home, agreement(W), judge_home=True)
    mfr = W.manufacturers["mfr-a"]
    mc = ManufacturerCert(AUTHORITY_ID, "mfr-a", NOW_S - 10, NOW_S + 10**6, mfr.key.public_key)
    now = ROUND1_MS // 1000
    for signers, tier in ((3, Tier.AFFIRMING), (2, Tier.CONTRAINDICATED)):
        chip = W.chip("hx100-a")
        token = sign_multi(ManufacturerCert.CONTENT_TYPE, mc.payload(), keys[:signers])
        chain = DeviceChain(chip.chain.device_cert, token)
        route = fed.route(chain, now_s=now)
        assert route is not None
        _, ch_token = W.challenge(f"fed/home/{signers}")
        ch = chip.accept_challenge(W.verifiers["kl-1"].cert, ch_token, now - 1)
        session = appraise_session(
            chip.answer(ch, now),
            challenge=ch,
            chain=chain,
            record=None,
            anchors=W.anchors,
            revocations=Revocations(),
            policy=Policy(),
            now_ms=ROUND1_MS,
            route=route,
        )
        assert session.verdict.tier is tier, session.verdict.reasons
        if signers == 2:
            assert FR.ACT_TOO_FEW_SIGNATURES in session.verdict.reasons
    # without judge_home a committee-signed home chain is the node's anchors' to judge
    assert Federation(home, agreement(W)).route(chain, now_s=now) is None


def test_a_routed_chain_names_its_authority_agreement_and_partner_quota() -> None:
    """What the result names and what the licensing part may issue to the chip (SPEC B.5):
    the chain's authority, the agreement's number, and the quota the agreement lets this
    node's authority license to that authority's chips (0 when it lets it license none)."""
    chain = partner_chain(W)
    plain = federation(W).route(chain, now_s=NOW_S)
    assert plain is not None and plain.chain == (SG, 1) and plain.licence_quota == 0
    roaming = (
        Recognition(AUTHORITY_ID, SG, (PARTNER_MANUFACTURER,)),
        Recognition(SG, AUTHORITY_ID, (), licence_quota=5 * 10**14),
    )
    routed = federation(W, agreement(W, 3, recognitions=roaming)).route(chain, now_s=NOW_S)
    assert routed is not None and routed.chain == (SG, 3)
    assert routed.licence_quota == 5 * 10**14
    home = federation(W).route(W.honest_chip("hx100-a").chain, now_s=NOW_S)
    assert home is None  # the node's own chain: no route, the result names no chain
    refused = federation(W).route(partner_chain(W, mc=partner_mc(signers=2)), now_s=NOW_S)
    assert refused is not None and refused.chain is None  # not routed: nothing to name
