"""Federation vectors (vectors/federation.json): k-of-n acts, rotations, agreements, routing.

Each case states the outcome it is written for; generation fails if the checker
(:mod:`attest.testvectors.federation_check`) disagrees. Keys derive from public labels
(:mod:`attest.testvectors.federation_world`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from attest.codec.cbor import decode, encode
from attest.federation.agreement import Recognition
from attest.federation.committee import COMMITTEE_CONTENT_TYPE, Committee
from attest.federation.sign import sign_multi
from attest.keys import SigningKey
from attest.messages.attestation import AttestationResult
from attest.messages.certs import DeviceCert
from attest.messages.content import ContentType
from attest.testvectors.federation_check import (
    COMPUTE,
    FEDERATION_ALGORITHM,
)
from attest.testvectors.federation_world import (
    ID,
    SG,
    TH,
    agreement,
    home_committee,
    officers,
    partner_chain,
    partner_committee,
    partner_mc,
    partner_verifier,
    sign_agreement,
)
from attest.testvectors.format import VectorError, vector_document
from attest.testvectors.world import (
    AUTHORITY_ID,
    CERTIFIED_S,
    NOW_S,
    World,
    build_world,
    vector_key,
)

HEADER = [
    "Federation (SPEC Appendix B): authorities as k-of-n committees whose acts are COSE_Sign",
    "objects (tag 98) with one COSE_Signature per officer (kid = RFC 9679 thumbprint of the",
    "officer's cnf COSE_Key), and agreements between authorities. Committees and agreements",
    "that a verifier already holds are given as their payloads (deterministic CBOR, hex).",
    "CommitteeAct: verify act as contentType under committee (B.2, B.3): result, reason",
    "(a reason name of SPEC §10, null when valid) and the payload. CommitteeRotation: open",
    "descriptor as a genesis (current null; digest its anchor, or null) or as a rotation of",
    "current (B.3). AgreementAcceptance: a verifier of home holding inForce (null: none),",
    "highest and the partners' rotated committees is given agreement at nowS (B.4).",
    "CrossRecognition: how a verifier of home holding agreement routes a chip's chain (B.5):",
    "route home (its own anchors judge it), partner (authority's committee judges it;",
    "chainValid says whether the whole chain then verifies) or refused (reasons say why; the",
    "core then reports CERT_CHAIN_INVALID). RelyingParty: whether a relying party of home",
    "accepts resultToken with the node's verifierCert under agreement (B.5).",
]

NOTES = {
    "Valid": "The act, document or route is accepted.",
    "Threshold": "The number of signatures against k (or members against K).",
    "Signature": "A signature is duplicated, unknown, invalid or made for another type.",
    "Malformed": "The object or its payload is not of the profile.",
    "Compatibility": "The single-key authority as the 1-of-1 committee: COSE_Sign1 tokens.",
    "Rotation": "A committee rotated: new officers, old officers out.",
    "Rollback": "A number that is not above the one held.",
    "Expiry": "The agreement's expiry.",
    "Recognition": "What the agreement lets one member recognise of another.",
    "Interop": "Encodings another COSE library may produce (signature order).",
}

Case = tuple[str, tuple[str, ...], dict[str, Any], str | None]


def _committee(authority: str, n: int, k: int, **acts: int) -> tuple[Committee, list[SigningKey]]:
    keys = [vector_key(f"federation/{authority}/{n}-{k}/officer-{i}") for i in range(n)]
    thresholds = {str(ContentType.REVOCATION_LIST): acts["revocations"]} if acts else None
    c = Committee.of(
        authority,
        [x.public_key for x in keys],
        k,
        issued_at=CERTIFIED_S,
        act_thresholds=thresholds,
    )
    return c, keys


def _resign(token: bytes, change: Callable[[list[Any]], list[Any]]) -> bytes:
    body = decode(token[2:])
    body[3] = change(body[3])
    return token[:2] + encode(body)


def _flip(sigs: list[Any]) -> list[Any]:
    p, u, s = sigs[0]
    return [[p, u, s[:-1] + bytes([s[-1] ^ 1])], *sigs[1:]]


def _act_cases(w: World) -> list[Case]:
    mc = ContentType.MANUFACTURER_CERT
    payload = decode(partner_mc()[2:])[2]
    cases: list[Case] = []
    for n, k in ((5, 2), (5, 3), (7, 6)):
        c, keys = _committee("authority.k-of-n", n, k)
        hexc = c.payload().hex()
        cases.append(
            (
                f"{k} of {n}: signed by {k}",
                ("Valid", "Threshold"),
                {"committee": hexc, "contentType": mc, "act": sign_multi(mc, payload, keys[:k])},
                None,
            )
        )
        cases.append(
            (
                f"{k} of {n}: signed by {k - 1}",
                ("Threshold",),
                {
                    "committee": hexc,
                    "contentType": mc,
                    "act": sign_multi(mc, payload, keys[: k - 1]),
                },
                "ACT_TOO_FEW_SIGNATURES",
            )
        )
        cases.append(
            (
                f"{k} of {n}: signed by all {n}",
                ("Valid", "Threshold"),
                {"committee": hexc, "contentType": mc, "act": sign_multi(mc, payload, keys)},
                None,
            )
        )
    sg = partner_committee(SG).payload().hex()
    sg_keys = officers(SG, 6)
    good = sign_multi(mc, payload, sg_keys[:3])
    stranger = decode(sign_multi(mc, payload, sg_keys[5:6])[2:])[3][0]
    home = home_committee(w).payload().hex()
    today = w.manufacturers["mfr-a"].cert
    cases += [
        (
            "3 of 5: the signatures in descending kid order (as another library may write)",
            ("Valid", "Interop"),
            {
                "committee": sg,
                "contentType": mc,
                "act": _resign(good, lambda s: list(reversed(s))),
            },
            None,
        ),
        (
            "one officer's signature twice (2 officers, 3 signatures)",
            ("Signature", "Threshold"),
            {
                "committee": sg,
                "contentType": mc,
                "act": _resign(good, lambda s: [s[0], s[0], s[1]]),
            },
            "ACT_DUPLICATE_OFFICER",
        ),
        (
            "a fourth signature by a key that is not an officer (rotated out or foreign)",
            ("Signature",),
            {"committee": sg, "contentType": mc, "act": _resign(good, lambda s: [*s, stranger])},
            "ACT_UNKNOWN_OFFICER",
        ),
        (
            "one of three signatures does not verify",
            ("Signature",),
            {"committee": sg, "contentType": mc, "act": _resign(good, _flip)},
            "ACT_BAD_SIGNATURE",
        ),
        (
            "signed as a VerifierCert, expected a ManufacturerCert",
            ("Signature",),
            {
                "committee": sg,
                "contentType": mc,
                "act": sign_multi(ContentType.VERIFIER_CERT, payload, sg_keys[:3]),
            },
            "ACT_WRONG_CONTENT_TYPE",
        ),
        (
            "no signature at all",
            ("Malformed",),
            {"committee": sg, "contentType": mc, "act": _resign(good, lambda s: [])},
            "ACT_MALFORMED",
        ),
        (
            "a signature's kid in its protected header",
            ("Malformed",),
            {
                "committee": sg,
                "contentType": mc,
                "act": _resign(
                    good, lambda s: [[encode({1: -8, 4: x[1][4]}), {}, x[2]] for x in s]
                ),
            },
            "ACT_MALFORMED",
        ),
        (
            "tag 18 with k = 3: one signature is never enough",
            ("Threshold", "Compatibility"),
            {"committee": sg, "contentType": mc, "act": today},
            "ACT_TOO_FEW_SIGNATURES",
        ),
        (
            "1 of 1: today's COSE_Sign1 ManufacturerCert of the single-key authority",
            ("Valid", "Compatibility"),
            {"committee": home, "contentType": mc, "act": today},
            None,
        ),
        (
            "1 of 1: the same payload as a COSE_Sign with the one signature",
            ("Valid", "Compatibility"),
            {
                "committee": home,
                "contentType": mc,
                "act": sign_multi(mc, decode(today[1:])[2], [w.authority.key]),
            },
            None,
        ),
        (
            "1 of 1: a COSE_Sign1 under another key",
            ("Signature", "Compatibility"),
            {
                "committee": home,
                "contentType": mc,
                "act": w.manufacturers["mfr-rogue"].cert,
            },
            "ACT_BAD_SIGNATURE",
        ),
    ]
    rc, rkeys = _committee("authority.strict", 5, 2, revocations=4)
    rl = ContentType.REVOCATION_LIST
    rlp = encode({1: "authority.strict"})
    cases += [
        (
            "per-act threshold: a revocation list needs 4 of 5 where k is 2; signed by 3",
            ("Threshold",),
            {
                "committee": rc.payload().hex(),
                "contentType": rl,
                "act": sign_multi(rl, rlp, rkeys[:3]),
            },
            "ACT_TOO_FEW_SIGNATURES",
        ),
        (
            "per-act threshold: a revocation list signed by 4 of 5",
            ("Valid", "Threshold"),
            {
                "committee": rc.payload().hex(),
                "contentType": rl,
                "act": sign_multi(rl, rlp, rkeys[:4]),
            },
            None,
        ),
        (
            "per-act threshold: other acts need k = 2",
            ("Valid", "Threshold"),
            {
                "committee": rc.payload().hex(),
                "contentType": mc,
                "act": sign_multi(mc, payload, rkeys[:2]),
            },
            None,
        ),
    ]
    return cases


def _rotation_cases() -> list[Case]:
    c1, c2 = partner_committee(SG, 1), partner_committee(SG, 2)
    keys = officers(SG, 6)
    bad_claims = {**c1.to_claims(), -70402: 6}
    return [
        (
            "genesis signed by 3 of its own 5, equal to its anchor",
            ("Valid",),
            {"current": None, "digest": c1.digest.hex(), "descriptor": c1.sign(keys[:3])},
            None,
        ),
        (
            "genesis signed by 2 of its own 5",
            ("Threshold",),
            {"current": None, "digest": None, "descriptor": c1.sign(keys[:2])},
            "ACT_TOO_FEW_SIGNATURES",
        ),
        (
            "genesis that is not the anchored committee",
            ("Signature",),
            {"current": None, "digest": bytes(32).hex(), "descriptor": c1.sign(keys[:3])},
            "AUTHORITY_NOT_RECOGNISED",
        ),
        (
            "rotation 1 -> 2 signed by 3 officers of committee 1 (officer 0 among them)",
            ("Valid", "Rotation"),
            {"current": c1.payload().hex(), "digest": None, "descriptor": c2.sign(keys[:3])},
            None,
        ),
        (
            "rotation 1 -> 2 signed by 2 officers of committee 1",
            ("Rotation", "Threshold"),
            {"current": c1.payload().hex(), "digest": None, "descriptor": c2.sign(keys[:2])},
            "ACT_TOO_FEW_SIGNATURES",
        ),
        (
            "rotation signed with the incoming officer 5, not yet an officer",
            ("Rotation", "Signature"),
            {"current": c1.payload().hex(), "digest": None, "descriptor": c2.sign(keys[3:6])},
            "ACT_UNKNOWN_OFFICER",
        ),
        (
            "committee 2 offered again to a holder of 2",
            ("Rollback",),
            {"current": c2.payload().hex(), "digest": None, "descriptor": c2.sign(keys[1:4])},
            "COMMITTEE_STALE",
        ),
        (
            "committee 1 offered to a holder of 2, signed by officers still in office",
            ("Rollback",),
            {"current": c2.payload().hex(), "digest": None, "descriptor": c1.sign(keys[1:4])},
            "COMMITTEE_STALE",
        ),
        (
            "committee 3 signed by the rotated-out officer 0 and two others",
            ("Rotation", "Signature"),
            {
                "current": c2.payload().hex(),
                "digest": None,
                "descriptor": replace(c2, number=3).sign(keys[:3]),
            },
            "ACT_UNKNOWN_OFFICER",
        ),
        (
            "a descriptor with k above n",
            ("Malformed",),
            {
                "current": None,
                "digest": None,
                "descriptor": sign_multi(COMMITTEE_CONTENT_TYPE, encode(bad_claims), keys[:3]),
            },
            "ACT_MALFORMED",
        ),
    ]


def _acceptance_cases(w: World) -> list[Case]:
    home = home_committee(w).payload().hex()
    a1, a2 = agreement(w, 1), agreement(w, 2)
    sg2 = partner_committee(SG, 2)
    three = {AUTHORITY_ID: 1, SG: 3, TH: 3}
    base: dict[str, Any] = {
        "home": home,
        "inForce": None,
        "highest": 0,
        "committees": {},
        "nowS": NOW_S,
    }
    amend = {**base, "inForce": a1.payload().hex(), "highest": 1}
    rotated = [*officers(SG, 6)[3:6], *officers(TH)[:3], w.authority.key]
    impostor = Committee.single(AUTHORITY_ID, vector_key("impostor-authority").public_key)
    return [
        (
            "first agreement: 3 of 4 members, home among them",
            ("Valid",),
            {**base, "agreement": sign_agreement(w, a1, three)},
            None,
        ),
        (
            "first agreement: 2 of 4 members",
            ("Threshold",),
            {**base, "agreement": sign_agreement(w, a1, {AUTHORITY_ID: 1, SG: 3})},
            "ACT_TOO_FEW_SIGNATURES",
        ),
        (
            "first agreement: 3 of 4 members without home",
            ("Threshold",),
            {**base, "agreement": sign_agreement(w, a1, {SG: 3, TH: 3, ID: 3})},
            "ACT_TOO_FEW_SIGNATURES",
        ),
        (
            "a member signs with 2 of its 5 officers: it does not approve",
            ("Threshold",),
            {**base, "agreement": sign_agreement(w, a1, {AUTHORITY_ID: 1, SG: 3, TH: 2})},
            "ACT_TOO_FEW_SIGNATURES",
        ),
        (
            "a non-member's officer signs too",
            ("Signature",),
            {
                **base,
                "agreement": a1.sign(
                    [
                        w.authority.key,
                        *officers(SG)[:3],
                        *officers(TH)[:3],
                        vector_key("federation/authority.vn/officer-0"),
                    ]
                ),
            },
            "ACT_UNKNOWN_OFFICER",
        ),
        (
            "signed as a committee descriptor",
            ("Signature",),
            {
                **base,
                "agreement": sign_multi(
                    COMMITTEE_CONTENT_TYPE,
                    a1.payload(),
                    [w.authority.key, *officers(SG)[:3], *officers(TH)[:3]],
                ),
            },
            "ACT_WRONG_CONTENT_TYPE",
        ),
        (
            "offered after its expiry",
            ("Expiry",),
            {**base, "nowS": a1.expires_at, "agreement": sign_agreement(w, a1, three)},
            "AGREEMENT_EXPIRED",
        ),
        (
            "offered to a verifier that accepted number 1",
            ("Rollback",),
            {**base, "highest": 1, "agreement": sign_agreement(w, a1, three)},
            "AGREEMENT_STALE",
        ),
        (
            "it describes another home committee (a verifier of an impostor key)",
            ("Recognition",),
            {**base, "home": impostor.payload().hex(), "agreement": sign_agreement(w, a1, three)},
            "AUTHORITY_NOT_RECOGNISED",
        ),
        (
            "amendment 2 approved by 3 members in force",
            ("Valid",),
            {**amend, "agreement": sign_agreement(w, a2, {AUTHORITY_ID: 1, SG: 3, ID: 3})},
            None,
        ),
        (
            "amendment 2 approved by 2 members in force",
            ("Threshold",),
            {**amend, "agreement": sign_agreement(w, a2, {SG: 3, ID: 3})},
            "ACT_TOO_FEW_SIGNATURES",
        ),
        (
            "agreement 1 offered to a holder of 2 (rollback)",
            ("Rollback",),
            {
                **amend,
                "inForce": a2.payload().hex(),
                "highest": 2,
                "agreement": sign_agreement(w, a1, three),
            },
            "AGREEMENT_STALE",
        ),
        (
            "amendment signed by SG's rotated committee, rotation held",
            ("Valid", "Rotation"),
            {**amend, "committees": {SG: sg2.payload().hex()}, "agreement": a2.sign(rotated)},
            None,
        ),
        (
            "amendment signed by SG's rotated committee, rotation not held",
            ("Rotation", "Signature"),
            {**amend, "agreement": a2.sign(rotated)},
            "ACT_UNKNOWN_OFFICER",
        ),
    ]


def _cross_cases(w: World) -> list[Case]:
    a1 = agreement(w, 1)
    base = {
        "home": home_committee(w).payload().hex(),
        "agreement": a1.payload().hex(),
        "committees": {},
        "nowS": NOW_S,
    }
    mc = ContentType.MANUFACTURER_CERT
    honest = decode(partner_mc()[2:])[2]

    def chain(**kw: Any) -> dict[str, Any]:
        c = partner_chain(w, mc=kw.pop("mc", None))
        return {"deviceCert": c.device_cert, "manufacturerCert": c.manufacturer_cert, **kw}

    own = w.chain("hx100-a")
    other_dc = DeviceCert.from_payload(decode(partner_chain(w).device_cert[1:])[2])
    forged_dc = other_dc.sign(vector_key("manufacturer/mfr-a"))
    sg = officers(SG, 6)
    expect_partner = "partner"
    return [
        (
            "a chip endorsed by mfr-sg, certified by 3 of SG's 5",
            ("Valid", "Recognition"),
            {**base, **chain()},
            expect_partner,
        ),
        (
            "a chip of the home authority",
            ("Valid",),
            {**base, "deviceCert": own.device_cert, "manufacturerCert": own.manufacturer_cert},
            "home",
        ),
        (
            "the partner certificate signed by 2 of 5 officers",
            ("Threshold",),
            {**base, **chain(mc=partner_mc(signers=2))},
            "ACT_TOO_FEW_SIGNATURES",
        ),
        (
            "a member (TH) whose endorsements home does not recognise",
            ("Recognition",),
            {**base, **chain(mc=partner_mc(issuer=TH))},
            "AUTHORITY_NOT_RECOGNISED",
        ),
        (
            "a non-member authority's chip",
            ("Recognition",),
            {**base, **chain(mc=partner_mc(issuer="authority.vn"))},
            "AUTHORITY_NOT_RECOGNISED",
        ),
        (
            "an SG manufacturer the agreement does not name",
            ("Recognition",),
            {**base, **chain(mc=partner_mc(manufacturer="mfr-sg-2"))},
            "AUTHORITY_NOT_RECOGNISED",
        ),
        (
            "after the agreement's expiry",
            ("Expiry",),
            {**base, **chain(), "nowS": a1.expires_at},
            "AGREEMENT_EXPIRED",
        ),
        (
            "a duplicated officer signature",
            ("Signature",),
            {**base, **chain(mc=_resign(partner_mc(), lambda s: [s[0], s[0], s[1]]))},
            "ACT_DUPLICATE_OFFICER",
        ),
        (
            "a bad officer signature",
            ("Signature",),
            {**base, **chain(mc=_resign(partner_mc(), _flip))},
            "ACT_BAD_SIGNATURE",
        ),
        (
            "the partner's VerifierCert type",
            ("Signature",),
            {**base, **chain(mc=sign_multi(ContentType.VERIFIER_CERT, honest, sg[:3]))},
            "ACT_WRONG_CONTENT_TYPE",
        ),
        (
            "a validly signed payload that is no ManufacturerCert",
            ("Malformed",),
            {**base, **chain(mc=sign_multi(mc, encode({1: SG}), sg[:3]))},
            "ACT_MALFORMED",
        ),
        (
            "SG rotated: a certificate signed with the rotated-out officer 0",
            ("Rotation", "Signature"),
            {**base, **chain(), "committees": {SG: partner_committee(SG, 2).payload().hex()}},
            "ACT_UNKNOWN_OFFICER",
        ),
        (
            "SG rotated: signed by 3 officers of committee 2",
            ("Valid", "Rotation"),
            {
                **base,
                **chain(mc=sign_multi(mc, honest, sg[1:4])),
                "committees": {SG: partner_committee(SG, 2).payload().hex()},
            },
            expect_partner,
        ),
        (
            "recognised certificate, device certificate not signed by mfr-sg's key",
            ("Signature",),
            {**base, "deviceCert": forged_dc, "manufacturerCert": partner_mc()},
            "partner-invalid",
        ),
    ]


def _result_of(key: SigningKey, vid: str) -> bytes:
    return AttestationResult.of(
        verifier_id=vid,
        issued_at=NOW_S,
        nonce=bytes(range(32)),
        ueid=b"\x01" + bytes(range(16)),
        status=2,
        vector={0: 2, 1: 2, 2: 2, 4: 2},
        policy_id="policy-1",
        reasons=(),
        verifier_build="attest vectors",
        evidence_digest=bytes(32),
    ).sign(key)


def _relying_cases(w: World) -> list[Case]:
    a1 = agreement(w, 1)
    base = {
        "home": home_committee(w).payload().hex(),
        "agreement": a1.payload().hex(),
        "committees": {},
        "nowS": NOW_S,
    }
    sg_node = partner_verifier(SG, "sg-fed-1")
    th_node = partner_verifier(TH, "th-fed-1")
    kl = w.verifiers["kl-1"]
    no_results = agreement(w, recognitions=(Recognition(AUTHORITY_ID, SG, ("mfr-sg",)),))
    vc = decode(sg_node.cert[2:])[2]
    weak = sign_multi(ContentType.VERIFIER_CERT, vc, officers(SG)[:2])
    res = _result_of(sg_node.key, sg_node.verifier_id)
    return [
        (
            "a result of SG's node, whose results home recognises",
            ("Valid", "Recognition"),
            {**base, "resultToken": res, "verifierCert": sg_node.cert},
            None,
        ),
        (
            "a result of home's own node",
            ("Valid",),
            {**base, "resultToken": _result_of(kl.key, "kl-1"), "verifierCert": kl.cert},
            None,
        ),
        (
            "a result of TH's node: home does not recognise TH",
            ("Recognition",),
            {
                **base,
                "resultToken": _result_of(th_node.key, th_node.verifier_id),
                "verifierCert": th_node.cert,
            },
            "AUTHORITY_NOT_RECOGNISED",
        ),
        (
            "SG's endorsements recognised, but not its results",
            ("Recognition",),
            {
                **base,
                "agreement": no_results.payload().hex(),
                "resultToken": res,
                "verifierCert": sg_node.cert,
            },
            "AUTHORITY_NOT_RECOGNISED",
        ),
        (
            "the node certificate signed by 2 of SG's 5",
            ("Threshold",),
            {**base, "resultToken": res, "verifierCert": weak},
            "ACT_TOO_FEW_SIGNATURES",
        ),
        (
            "after the agreement's expiry",
            ("Expiry",),
            {**base, "nowS": a1.expires_at, "resultToken": res, "verifierCert": sg_node.cert},
            "AGREEMENT_EXPIRED",
        ),
        (
            "a result signed by another key",
            ("Signature",),
            {
                **base,
                "resultToken": _result_of(kl.key, sg_node.verifier_id),
                "verifierCert": sg_node.cert,
            },
            "ACT_BAD_SIGNATURE",
        ),
    ]


_OUTPUTS: dict[str, list[str]] = {
    "CommitteeAct": ["result", "reason", "payload"],
    "CommitteeRotation": ["result", "reason", "committee"],
    "AgreementAcceptance": ["result", "reason", "number"],
    "CrossRecognition": ["route", "authority", "reasons", "chainValid"],
    "RelyingParty": ["result", "reason", "verifierId"],
}
_SECTIONS: dict[str, list[str]] = {
    "CommitteeAct": ["B.2", "B.3"],
    "CommitteeRotation": ["B.3"],
    "AgreementAcceptance": ["B.4"],
    "CrossRecognition": ["B.5"],
    "RelyingParty": ["B.5"],
}
_COMMENTS: dict[str, str] = {
    "CommitteeAct": "an act verified against a committee's threshold for its content type",
    "CommitteeRotation": "a committee descriptor as a genesis or a rotation",
    "AgreementAcceptance": "a verifier of home is given an agreement",
    "CrossRecognition": "a verifier of home under the agreement routes a chip's chain",
    "RelyingParty": "a relying party of home is given a node's result",
}


def _json(v: Any) -> Any:
    return v.hex() if isinstance(v, bytes) else v


def _check(kind: str, comment: str, out: dict[str, Any], expect: str | None) -> None:
    if kind == "CrossRecognition":
        got = (
            out["route"]
            if out["route"] == "home" or (out["route"] == "partner" and out["chainValid"])
            else "partner-invalid"
            if out["route"] == "partner"
            else out["reasons"][0]
        )
    else:
        got = out["reason"]
    if got != expect:
        raise VectorError(f"federation {kind} case {comment!r}: meant {expect}, got {out}")


def federation_document(w: World | None = None) -> dict[str, Any]:
    w = w or build_world()
    families = {
        "CommitteeAct": _act_cases(w),
        "CommitteeRotation": _rotation_cases(),
        "AgreementAcceptance": _acceptance_cases(w),
        "CrossRecognition": _cross_cases(w),
        "RelyingParty": _relying_cases(w),
    }
    groups: list[dict[str, Any]] = []
    tc = 0
    for kind, cases in families.items():
        tests = []
        for comment, flags, inputs, expect in cases:
            tc += 1
            t = {
                "tcId": tc,
                "comment": comment,
                "flags": list(flags),
                "sections": _SECTIONS[kind],
                **{k: _json(v) for k, v in inputs.items()},
            }
            out = COMPUTE[kind](t)
            _check(kind, comment, out, expect)
            tests.append({**t, **out})
        groups.append(
            {"type": kind, "comment": _COMMENTS[kind], "outputs": _OUTPUTS[kind], "tests": tests}
        )
    used = {f for g in groups for t in g["tests"] for f in t["flags"]}
    return vector_document(
        FEDERATION_ALGORITHM, tc, HEADER, {k: v for k, v in NOTES.items() if k in used}, groups
    )
