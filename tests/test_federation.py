"""Federation: COSE_Sign acts of k-of-n committees, rotations and agreements (SPEC Appendix B).

Every rejection path feeds one bad input to the pure check and asserts its exact reason; the
honest case differs from each bad one in that one input. pycose's multi-signer SignMessage
verifies our COSE_Sign objects and we verify pycose's.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import cbor2
import nacl.signing
import pytest
from pycose.algorithms import EdDSA
from pycose.headers import KID, Algorithm
from pycose.headers import ContentType as CoseContentType
from pycose.keys import OKPKey
from pycose.keys.curves import Ed25519
from pycose.messages import CoseMessage, SignMessage
from pycose.messages.signer import CoseSignature

from attest.codec.cbor import encode
from attest.federation.agreement import (
    AGREEMENT_CONTENT_TYPE,
    Agreement,
    Member,
    Recognition,
    open_agreement,
)
from attest.federation.committee import COMMITTEE_CONTENT_TYPE, Committee, open_committee
from attest.federation.reasons import FederationReason as FR
from attest.federation.sign import (
    FederationError,
    add_signature,
    kid_of,
    parse_sign,
    sign_multi,
)
from attest.keys import SigningKey
from attest.messages.certs import ManufacturerCert
from attest.messages.content import ContentType

NOW = 1_900_000_000
MC = ContentType.MANUFACTURER_CERT


def _seed(label: str) -> bytes:
    return hashlib.sha256(b"fed-test:" + label.encode()).digest()


def officer(label: str) -> SigningKey:
    return SigningKey(nacl.signing.SigningKey(_seed(label)))


def officers(authority: str, n: int) -> list[SigningKey]:
    return [officer(f"{authority}/{i}") for i in range(n)]


def committee(authority: str, n: int = 5, k: int = 3, number: int = 1, **acts: int) -> Committee:
    thresholds = {COMMITTEE_CONTENT_TYPE: acts["rotation"]} if "rotation" in acts else None
    return Committee.of(
        authority,
        [o.public_key for o in officers(authority, n)],
        k,
        number=number,
        issued_at=NOW,
        act_thresholds=thresholds,
    )


def _mc(issuer: str = "MY") -> ManufacturerCert:
    return ManufacturerCert(issuer, "mfr-my", NOW, NOW + 10**6, officer("mfr").public_key)


def _reason(exc: pytest.ExceptionInfo[FederationError]) -> FR:
    return exc.value.reason


# -- COSE_Sign acts, k of n -------------------------------------------------------------------


@pytest.mark.parametrize(("n", "k"), [(1, 1), (5, 2), (5, 3), (7, 6)])
def test_an_act_is_valid_exactly_from_k_distinct_officers(n: int, k: int) -> None:
    c = committee("MY", n, k)
    keys = officers("MY", n)
    payload = _mc().payload()
    for signed in range(1, n + 1):
        token = sign_multi(MC, payload, keys[:signed])
        if signed >= k:
            assert c.verify_act(token, MC) == payload
        else:
            with pytest.raises(FederationError) as exc:
                c.verify_act(token, MC)
            assert _reason(exc) is FR.ACT_TOO_FEW_SIGNATURES


def test_officers_sign_one_at_a_time_offline() -> None:
    c, keys = committee("MY"), officers("MY", 5)
    payload = _mc().payload()
    token = sign_multi(MC, payload, keys[4:5])
    token = add_signature(token, keys[0])
    with pytest.raises(FederationError):
        c.verify_act(token, MC)  # 2 of 3
    token = add_signature(token, keys[2])
    assert c.verify_act(token, MC) == payload
    # the order of signing does not matter: the act is the same bytes however it was collected
    assert token == sign_multi(MC, payload, [keys[2], keys[0], keys[4]])
    with pytest.raises(FederationError) as exc:
        add_signature(token, keys[0])
    assert _reason(exc) is FR.ACT_DUPLICATE_OFFICER


def _with_signatures(token: bytes, signatures: list[list[object]]) -> bytes:
    body = cbor2.loads(token[2:])
    body[3] = signatures
    return b"\xd8\x62" + encode(body)


def test_rejections_each_with_its_reason() -> None:
    c, keys = committee("MY"), officers("MY", 5)
    payload = _mc().payload()
    good = sign_multi(MC, payload, keys[:3])
    sigs = cbor2.loads(good[2:])[3]
    outsider = sign_multi(MC, payload, [officer("MY/rotated-out")])
    outsider_sig = cbor2.loads(outsider[2:])[3][0]
    flipped = [sigs[0][0], sigs[0][1], sigs[0][2][:-1] + bytes([sigs[0][2][-1] ^ 1])]
    cases = {
        "too few signatures": (sign_multi(MC, payload, keys[:2]), FR.ACT_TOO_FEW_SIGNATURES),
        "duplicate officer": (_with_signatures(good, [*sigs, sigs[0]]), FR.ACT_DUPLICATE_OFFICER),
        "unknown kid": (_with_signatures(good, [*sigs, outsider_sig]), FR.ACT_UNKNOWN_OFFICER),
        "bad signature": (_with_signatures(good, [flipped, *sigs[1:]]), FR.ACT_BAD_SIGNATURE),
        "wrong content type": (
            sign_multi(ContentType.VERIFIER_CERT, payload, keys[:3]),
            FR.ACT_WRONG_CONTENT_TYPE,
        ),
        "not tag 98": (b"\xd8\x63" + good[2:], FR.ACT_MALFORMED),
        "no signatures": (_with_signatures(good, []), FR.ACT_MALFORMED),
        "signer header not {1: -8}": (
            _with_signatures(good, [[encode({1: -7}), s[1], s[2]] for s in sigs]),
            FR.ACT_MALFORMED,
        ),
        "kid in the wrong bucket": (
            _with_signatures(good, [[s[0], {}, s[2]] for s in sigs]),
            FR.ACT_MALFORMED,
        ),
    }
    assert c.verify_act(good, MC) == payload
    for name, (token, reason) in cases.items():
        with pytest.raises(FederationError) as exc:
            c.verify_act(token, MC)
        assert _reason(exc) is reason, name


def test_per_act_thresholds_ask_more_for_some_acts() -> None:
    c = Committee.of(
        "MY",
        [o.public_key for o in officers("MY", 5)],
        2,
        act_thresholds={ContentType.REVOCATION_LIST: 4},
    )
    keys = officers("MY", 5)
    payload = b"\xa0"
    assert c.verify_act(sign_multi(MC, payload, keys[:2]), MC) == payload
    with pytest.raises(FederationError) as exc:
        c.verify_act(sign_multi(ContentType.REVOCATION_LIST, payload, keys[:3]), "x")
    assert _reason(exc) is FR.ACT_WRONG_CONTENT_TYPE
    with pytest.raises(FederationError) as exc:
        c.verify_act(
            sign_multi(ContentType.REVOCATION_LIST, payload, keys[:3]), ContentType.REVOCATION_LIST
        )
    assert _reason(exc) is FR.ACT_TOO_FEW_SIGNATURES
    token = sign_multi(ContentType.REVOCATION_LIST, payload, keys[:4])
    assert c.verify_act(token, ContentType.REVOCATION_LIST) == payload
    with pytest.raises(ValueError, match="act threshold"):
        replace(c, act_thresholds=((MC, 1),))  # below k: would weaken the committee


def test_the_single_key_authority_is_the_one_of_one_committee() -> None:
    """Today's COSE_Sign1 tokens are acts of the n = k = 1 committee, unchanged."""
    key = officer("single")
    c = Committee.single("MY", key.public_key)
    sign1_token = _mc().sign(key)
    assert c.verify_act(sign1_token, MC) == _mc().payload()
    assert ManufacturerCert.verify(sign1_token, key.public_key) == _mc()
    assert c.verify_act(sign_multi(MC, _mc().payload(), [key]), MC) == _mc().payload()
    with pytest.raises(FederationError) as exc:
        c.verify_act(_mc().sign(officer("other")), MC)
    assert _reason(exc) is FR.ACT_BAD_SIGNATURE
    with pytest.raises(FederationError) as exc:
        c.verify_act(_mc().sign(key)[:-1], MC)
    assert _reason(exc) is FR.ACT_MALFORMED
    with pytest.raises(FederationError) as exc:
        c.verify_act(sign1_token, ContentType.VERIFIER_CERT)
    assert _reason(exc) is FR.ACT_WRONG_CONTENT_TYPE
    # a COSE_Sign1 is one signature: never enough where k > 1
    with pytest.raises(FederationError) as exc:
        committee("MY").verify_act(_mc().sign(officers("MY", 5)[0]), MC)
    assert _reason(exc) is FR.ACT_TOO_FEW_SIGNATURES


# -- committee descriptors and rotation -------------------------------------------------------


def test_genesis_and_rotation() -> None:
    c1, keys = committee("MY"), officers("MY", 5)
    genesis = c1.sign(keys[:3])
    assert open_committee(genesis, digest=c1.digest) == c1
    with pytest.raises(FederationError) as exc:
        open_committee(c1.sign(keys[:2]), digest=c1.digest)
    assert _reason(exc) is FR.ACT_TOO_FEW_SIGNATURES
    with pytest.raises(FederationError) as exc:
        open_committee(genesis, digest=bytes(32))
    assert _reason(exc) is FR.AUTHORITY_NOT_RECOGNISED

    # rotate: officer 0 leaves, a new officer joins, k stays 3; k of the *current* sign it
    new_keys = [*keys[1:], officer("MY/new")]
    c2 = Committee.of("MY", [k.public_key for k in new_keys], 3, number=2, issued_at=NOW)
    rotation = c2.sign(keys[:3])  # includes the leaving officer: it is still current
    assert open_committee(rotation, current=c1) == c2
    cases = {
        "signed by the new committee only": (c2.sign([new_keys[-1], *keys[1:3]]), c1),
        "too few of the current": (c2.sign(keys[:2]), c1),
        "same number again": (c2.sign(new_keys[:3]), c2),
        "older number (rollback)": (c1.sign(new_keys[:3]), c2),
        "a rotated-out officer signs": (replace(c2, number=3).sign(keys[:3]), c2),
    }
    reasons = {}
    for name, (token, current) in cases.items():
        with pytest.raises(FederationError) as exc:
            open_committee(token, current=current)
        reasons[name] = _reason(exc)
    assert reasons == {
        "signed by the new committee only": FR.ACT_UNKNOWN_OFFICER,
        "too few of the current": FR.ACT_TOO_FEW_SIGNATURES,
        "same number again": FR.COMMITTEE_STALE,
        "older number (rollback)": FR.COMMITTEE_STALE,  # signed by current officers
        "a rotated-out officer signs": FR.ACT_UNKNOWN_OFFICER,
    }


def test_rotation_threshold_can_exceed_k() -> None:
    c1 = committee("MY", 5, 2, rotation=4)
    keys = officers("MY", 5)
    c2 = replace(c1, number=2)
    with pytest.raises(FederationError) as exc:
        open_committee(c2.sign(keys[:3]), current=c1)
    assert _reason(exc) is FR.ACT_TOO_FEW_SIGNATURES
    assert open_committee(c2.sign(keys[:4]), current=c1) == c2


def test_malformed_descriptors_are_refused() -> None:
    c, keys = committee("MY"), officers("MY", 5)
    claims = c.to_claims()
    bad = [
        {**claims, -70402: 6},  # k > n
        {**claims, -70402: 0},
        {**claims, -70401: list(reversed(claims[-70401]))},  # not ascending
        {**claims, -70401: [claims[-70401][0]] * 2},  # an officer twice
        {**claims, -70499: 1},  # unknown claim
    ]
    for b in bad:
        with pytest.raises(FederationError) as exc:
            open_committee(sign_multi(COMMITTEE_CONTENT_TYPE, encode(b), keys[:3]))
        assert _reason(exc) is FR.ACT_MALFORMED, b


# -- agreements -------------------------------------------------------------------------------

AUTHORITIES = ("MY", "SG", "TH", "ID")


def _agreement(number: int = 1, threshold: int = 3, **kw: object) -> Agreement:
    members = tuple(
        Member(a, committee(a), (f"{a}-ALL",))
        for a in kw.pop("members", AUTHORITIES)  # type: ignore[attr-defined]
    )
    recognitions = (
        Recognition("MY", "SG", ("mfr-sg",), results=True, licence_quota=10**18),
        Recognition("TH", "MY", (), results=True),
    )
    return Agreement(
        "compute-south", number, NOW, NOW + 86_400, members, threshold, recognitions, **kw
    )


def _sign_by(agreement: Agreement, members: dict[str, int]) -> bytes:
    keys = [k for a, n in members.items() for k in officers(a, 5)[:n]]
    return agreement.sign(keys)


def _open(
    token: bytes, in_force: Agreement | None = None, highest: int = 0, **kw: object
) -> Agreement:
    return open_agreement(
        token,
        home=committee("MY"),
        in_force=in_force,
        highest=highest,
        now_s=NOW,
        **kw,  # type: ignore[arg-type]
    )


def test_an_agreement_takes_effect_with_k_of_its_members() -> None:
    a1 = _agreement()
    three = _sign_by(a1, {"MY": 3, "SG": 3, "TH": 3})
    assert _open(three) == a1
    assert a1.recognition("MY", "SG").manufacturers == ("mfr-sg",)  # type: ignore[union-attr]
    assert a1.recognition("SG", "MY") is None
    cases = {
        "2 of 4 members": (_sign_by(a1, {"MY": 3, "SG": 3}), FR.ACT_TOO_FEW_SIGNATURES),
        "a member with 2 of 5 officers does not approve": (
            _sign_by(a1, {"MY": 3, "SG": 3, "TH": 2}),
            FR.ACT_TOO_FEW_SIGNATURES,
        ),
        "the home authority did not approve": (
            _sign_by(a1, {"SG": 3, "TH": 3, "ID": 3}),
            FR.ACT_TOO_FEW_SIGNATURES,
        ),
        "a non-member signs": (
            a1.sign([*officers("MY", 3), *officers("SG", 3), *officers("TH", 3), officer("VN/0")]),
            FR.ACT_UNKNOWN_OFFICER,
        ),
        "a committee descriptor, not an agreement": (
            sign_multi(COMMITTEE_CONTENT_TYPE, a1.payload(), officers("MY", 3)),
            FR.ACT_WRONG_CONTENT_TYPE,
        ),
    }
    for name, (token, reason) in cases.items():
        with pytest.raises(FederationError) as exc:
            _open(token)
        assert _reason(exc) is reason, name
    with pytest.raises(FederationError) as exc:
        open_agreement(three, home=committee("MY"), in_force=None, highest=0, now_s=NOW + 86_400)
    assert _reason(exc) is FR.AGREEMENT_EXPIRED
    with pytest.raises(FederationError) as exc:
        _open(three, highest=1)
    assert _reason(exc) is FR.AGREEMENT_STALE
    with pytest.raises(FederationError) as exc:  # a verifier of a non-member
        open_agreement(
            _sign_by(a1, {"MY": 3, "SG": 3, "TH": 3}),
            home=committee("VN"),
            in_force=None,
            highest=0,
            now_s=NOW,
        )
    assert _reason(exc) is FR.ACT_TOO_FEW_SIGNATURES  # VN approved nothing


def test_amendments_need_k_of_the_members_in_force() -> None:
    a1 = _agreement()
    # amendment 2 admits VN and lowers the threshold to 2; VN cannot vote itself in
    a2 = _agreement(2, 2, members=(*AUTHORITIES, "VN"))
    by_two_plus_vn = _sign_by(a2, {"MY": 3, "SG": 3, "VN": 3})
    with pytest.raises(FederationError) as exc:
        _open(by_two_plus_vn, in_force=a1, highest=1)
    assert _reason(exc) is FR.ACT_UNKNOWN_OFFICER  # VN's officers are not members in force
    with pytest.raises(FederationError) as exc:
        _open(_sign_by(a2, {"MY": 3, "SG": 3}), in_force=a1, highest=1)
    assert _reason(exc) is FR.ACT_TOO_FEW_SIGNATURES  # 2 of the 3 that a1 requires
    accepted = _open(_sign_by(a2, {"MY": 3, "SG": 3, "ID": 3}), in_force=a1, highest=1)
    assert accepted == a2
    # now a2 is in force: its threshold 2 counts, VN votes
    a3 = _agreement(3, 2, members=(*AUTHORITIES, "VN"))
    assert _open(_sign_by(a3, {"MY": 3, "VN": 3}), in_force=a2, highest=2) == a3
    # a rolled-back agreement, validly signed, is refused for its number
    with pytest.raises(FederationError) as exc:
        _open(_sign_by(a1, {"MY": 3, "SG": 3, "TH": 3}), in_force=a3, highest=3)
    assert _reason(exc) is FR.AGREEMENT_STALE


def test_amendments_count_rotated_committees() -> None:
    a1 = _agreement()
    sg2 = Committee.of(
        "SG", [officer(f"SG/new{i}").public_key for i in range(5)], 3, number=2, issued_at=NOW
    )
    a2 = _agreement(2)
    token = a2.sign(
        [*officers("MY", 3), *officers("TH", 3), *[officer(f"SG/new{i}") for i in range(3)]]
    )
    with pytest.raises(FederationError) as exc:
        _open(token, in_force=a1, highest=1)  # SG's new officers are unknown without rotation
    assert _reason(exc) is FR.ACT_UNKNOWN_OFFICER
    assert _open(token, in_force=a1, highest=1, committees={"SG": sg2}) == a2


def test_malformed_agreements_are_refused() -> None:
    a1 = _agreement()
    claims = a1.to_claims()
    sg_self = Recognition("SG", "SG").to_claims()
    bad = {
        "threshold above members": {**claims, -70413: 5},
        "self recognition": {**claims, -70414: [sg_self]},
        "unknown claim": {**claims, -70498: 0},
    }
    keys = [*officers("MY", 3), *officers("SG", 3), *officers("TH", 3)]
    for name, b in bad.items():
        token = sign_multi(AGREEMENT_CONTENT_TYPE, encode(b), keys)
        with pytest.raises(FederationError) as exc:
            _open(token)
        assert _reason(exc) is FR.ACT_MALFORMED, name


# -- pycose interop ---------------------------------------------------------------------------


def _pycose_key(label: str) -> OKPKey:
    return OKPKey(crv=Ed25519, d=_seed(label), x=officer(label).public_key.raw)


def test_pycose_verifies_our_cose_sign() -> None:
    keys = officers("MY", 5)
    payload = _mc().payload()
    token = sign_multi(MC, payload, keys[:3])
    msg = CoseMessage.decode(token)
    assert isinstance(msg, SignMessage)
    assert msg.phdr == {CoseContentType: str(MC)}
    assert msg.payload == payload
    assert len(msg.signers) == 3
    by_kid = {kid_of(k.public_key): f"MY/{i}" for i, k in enumerate(keys)}
    for signer in msg.signers:
        assert signer.phdr == {Algorithm: EdDSA}
        signer.key = _pycose_key(by_kid[signer.uhdr[KID]])
        assert signer.verify_signature()
    # and it does not verify under another officer's key
    msg.signers[0].key = _pycose_key("MY/4")
    assert not msg.signers[0].verify_signature()


def test_we_verify_pycose_sign_messages() -> None:
    payload = _mc().payload()
    signers = [
        CoseSignature(
            phdr={Algorithm: EdDSA},
            uhdr={KID: kid_of(officer(f"MY/{i}").public_key)},
            key=_pycose_key(f"MY/{i}"),
        )
        for i in (3, 1, 4)
    ]
    msg = SignMessage(phdr={CoseContentType: str(MC)}, uhdr={}, payload=payload, signers=signers)
    token = msg.encode(tag=True)
    c = committee("MY")
    assert c.verify_act(token, MC) == payload
    assert len(parse_sign(token).signatures) == 3
    # two pycose signers are not enough for 3 of 5
    msg2 = SignMessage(
        phdr={CoseContentType: str(MC)}, uhdr={}, payload=payload, signers=signers[:2]
    )
    with pytest.raises(FederationError) as exc:
        c.verify_act(msg2.encode(tag=True), MC)
    assert _reason(exc) is FR.ACT_TOO_FEW_SIGNATURES


def test_a_replaced_committee_has_only_its_own_officers() -> None:
    c1 = committee("MY")
    c2 = replace(
        c1, officers=tuple(sorted((o.public_key for o in officers("SG", 5)), key=lambda k: k.raw))
    )
    assert set(c2.kids) == {kid_of(o.public_key) for o in officers("SG", 5)}
    assert set(c1.kids) == {kid_of(o.public_key) for o in officers("MY", 5)}
