"""Chip-side vectors of session.json: processing a CHALLENGE (SPEC §7.10) and a RESULT (§7.12).

Split from :mod:`attest.testvectors.session_vectors` (which writes the file): certificates and
tokens with one defect each, run through the chip's own pure checks.
"""

from __future__ import annotations

from typing import Any

from attest.messages.attestation import AttestationResult, Challenge
from attest.messages.certs import VerifierCert
from attest.testvectors.format import VectorError
from attest.testvectors.session_check import _challenge, _result
from attest.testvectors.world import (
    AUTHORITY_ID,
    CERTIFIED_S,
    NOW_S,
    World,
    vector_key,
    vector_nonce,
    vector_ueid,
)
from attest.verify.chain import verify_verifier_cert
from attest.verify.reasons import reason_of, trustworthiness_vector


def result_token(
    w: World,
    ch: Challenge,
    ueid: bytes,
    *,
    verifier: str = "kl-1",
    tier: int = 2,
    reasons: tuple[int, ...] = (),
    key_of: str | None = None,
) -> bytes:
    """A signed AttestationResult answering ``ch`` for ``ueid``."""
    v = w.verifiers[verifier]
    res = AttestationResult.of(
        verifier_id=v.verifier_id,
        issued_at=ch.issued_at + 1,
        nonce=ch.nonce,
        ueid=ueid,
        status=tier,
        vector=trustworthiness_vector([r for r in map(reason_of, reasons) if r is not None]),
        policy_id="attest-default-v1",
        reasons=reasons,
        verifier_build="vectors",
        evidence_digest=bytes(32),
    )
    key = w.verifiers[key_of].key if key_of else v.key
    return res.sign(key)


def _verifier_cert(
    w: World, *, vid: str = "kl-1", iss: str = AUTHORITY_ID, signer: str = "authority", **kw: Any
) -> bytes:
    v = w.verifiers.get(vid)
    key = v.key.public_key if v else vector_key("verifier/" + vid).public_key
    fields: dict[str, Any] = {
        "issuer": iss,
        "verifier_id": vid,
        "issued_at": CERTIFIED_S,
        "expires_at": CERTIFIED_S + 365 * 86400,
        "public_key": key,
        "region": "MY-KL",
    }
    fields.update(kw)
    return VerifierCert(**fields).sign(vector_key(signer))


def _challenge_token(
    w: World, label: str, *, iss: str = "kl-1", signer: str = "kl-1", **kw: Any
) -> bytes:
    fields: dict[str, Any] = {
        "verifier_id": iss,
        "issued_at": NOW_S,
        "expires_at": NOW_S + 30,
        "nonce": vector_nonce("session/" + label),
        "region": "MY-KL",
    }
    fields.update(kw)
    return Challenge(**fields).sign(vector_key("verifier/" + signer))


def _anchors_json(w: World) -> dict[str, str]:
    return {
        "authorityId": w.anchors.authority_id,
        "authorityKey": w.anchors.authority_key.raw.hex(),
    }


def challenge_group(w: World, first_tc: int) -> dict[str, Any]:
    vc = w.verifiers["kl-1"].cert
    vc_exp = verify_verifier_cert(vc, w.anchors)
    assert vc_exp is not None
    exp = vc_exp.expires_at
    late = _challenge_token(w, "late", issued_at=exp - 20, expires_at=exp + 10)
    ch = _challenge_token(w, "ok")
    rows: list[tuple[str, tuple[str, ...], bytes, bytes, int, str | None]] = [
        ("a certified verifier's fresh challenge", (), vc, ch, NOW_S, None),
        ("one second before the challenge expires", ("Boundary",), vc, ch, NOW_S + 29, None),
        (
            "the second the challenge expires",
            ("Boundary",),
            vc,
            ch,
            NOW_S + 30,
            "CHALLENGE_EXPIRED",
        ),
        (
            "challenge of another region than the certificate (not compared)",
            (),
            vc,
            _challenge_token(w, "region", region="SG"),
            NOW_S,
            None,
        ),
        (
            "challenge issued in the chip's future (iat is not checked)",
            (),
            vc,
            _challenge_token(w, "future", issued_at=NOW_S + 3600, expires_at=NOW_S + 30),
            NOW_S,
            None,
        ),
        (
            "challenge with an 8-byte nonce (the schema minimum)",
            ("Boundary",),
            vc,
            _challenge_token(w, "n8", nonce=bytes(range(8))),
            NOW_S,
            None,
        ),
        (
            "certificate signed by an impostor authority key",
            (),
            _verifier_cert(w, signer="impostor-authority"),
            ch,
            NOW_S,
            "VERIFIER_CERT_INVALID",
        ),
        (
            "certificate signed by the authority key with another iss",
            (),
            _verifier_cert(w, iss="other-authority"),
            ch,
            NOW_S,
            "VERIFIER_CERT_INVALID",
        ),
        (
            "a ManufacturerCert presented as the verifier certificate",
            (),
            w.manufacturers["mfr-a"].cert,
            ch,
            NOW_S,
            "VERIFIER_CERT_INVALID",
        ),
        ("certificate bytes are not a token", (), b"\xd2\x80", ch, NOW_S, "VERIFIER_CERT_INVALID"),
        ("one second before the certificate expires", ("Boundary",), vc, late, exp - 1, None),
        (
            "the second the certificate expires",
            ("Boundary",),
            vc,
            late,
            exp,
            "VERIFIER_CERT_EXPIRED",
        ),
        (
            "challenge signed by another verifier's key",
            (),
            vc,
            _challenge_token(w, "sg-key", signer="sg-1"),
            NOW_S,
            "CHALLENGE_INVALID",
        ),
        (
            "challenge signed by the certified key but issued in another verifier's name",
            (),
            vc,
            _challenge_token(w, "sg-name", iss="sg-1"),
            NOW_S,
            "CHALLENGE_INVALID",
        ),
        (
            "challenge with a 7-byte nonce (malformed payload, validly signed)",
            (),
            vc,
            _challenge_token(w, "n7", nonce=bytes(7)),
            NOW_S,
            "CHALLENGE_INVALID",
        ),
        (
            "a VerifierCert presented as the challenge",
            (),
            vc,
            vc,
            NOW_S,
            "CHALLENGE_INVALID",
        ),
        (
            "invalid certificate and expired challenge: the certificate is checked first",
            ("Boundary",),
            _verifier_cert(w, signer="impostor-authority"),
            ch,
            NOW_S + 30,
            "VERIFIER_CERT_INVALID",
        ),
        (
            "expired certificate and a forged challenge: expiry of the certificate first",
            (),
            vc,
            _challenge_token(w, "late-forged", signer="sg-1"),
            exp,
            "VERIFIER_CERT_EXPIRED",
        ),
        (
            "challenge in another name and expired: issuer checked before expiry",
            (),
            vc,
            _challenge_token(w, "sg-late", iss="sg-1"),
            NOW_S + 30,
            "CHALLENGE_INVALID",
        ),
    ]
    compute = _challenge(w.anchors)
    tests = []
    for i, (comment, flags, cert, token, now_s, refusal) in enumerate(rows):
        t = {
            "tcId": first_tc + i,
            "comment": comment,
            "flags": ["ChallengeCheck", *flags],
            "sections": ["7.10"],
            "verifierCert": cert.hex(),
            "challenge": token.hex(),
            "nowS": now_s,
        }
        out = compute(t)
        if out["refusal"] != refusal:
            raise VectorError(f"challenge case {comment!r}: meant {refusal}, got {out}")
        tests.append({**t, **out})
    return {
        "type": "ChallengeProcessing",
        "comment": "a chip checks a CHALLENGE frame's certificate and challenge (§7.10)",
        "outputs": ["result", "refusal"],
        "trustAnchors": _anchors_json(w),
        "tests": tests,
    }


def result_group(w: World, first_tc: int) -> dict[str, Any]:
    vc = w.verifiers["kl-1"].cert
    ueid = vector_ueid("hx100-a")
    ch = Challenge.verify(_challenge_token(w, "result"), w.verifiers["kl-1"].key.public_key)
    old = Challenge.verify(_challenge_token(w, "older"), w.verifiers["kl-1"].key.public_key)
    good = result_token(w, ch, ueid)
    rows: list[tuple[str, bytes, bytes, bytes, str | None]] = [
        ("the result of this round", vc, good, ueid, None),
        (
            "a contraindicated result (chips take no action on the tier)",
            vc,
            result_token(w, ch, ueid, tier=96, reasons=(3,)),
            ueid,
            None,
        ),
        (
            "certificate signed by an impostor authority",
            _verifier_cert(w, signer="impostor-authority"),
            good,
            ueid,
            "VERIFIER_CERT_INVALID",
        ),
        (
            "result signed by another verifier's key",
            vc,
            result_token(w, ch, ueid, key_of="sg-1"),
            ueid,
            "RESULT_INVALID",
        ),
        (
            "a Challenge token presented as the result",
            vc,
            _challenge_token(w, "result"),
            ueid,
            "RESULT_INVALID",
        ),
        (
            "result for another chip",
            vc,
            result_token(w, ch, vector_ueid("hx100-b")),
            ueid,
            "RESULT_INVALID",
        ),
        (
            "an affirming result naming no chip (placeholder UEID)",
            vc,
            result_token(w, ch, b"\x01" + bytes(16)),
            ueid,
            "RESULT_INVALID",
        ),
        (
            "a contraindicated result naming no chip: diagnostic (the chain did not validate)",
            vc,
            result_token(w, ch, b"\x01" + bytes(16), tier=96, reasons=(4,)),
            ueid,
            None,
        ),
        (
            "an older result of the same verifier (another nonce)",
            vc,
            result_token(w, old, ueid),
            ueid,
            "RESULT_INVALID",
        ),
        (
            "result in another verifier's name, signed with the certified key",
            vc,
            AttestationResult.of(
                verifier_id="sg-1",
                issued_at=NOW_S + 1,
                nonce=ch.nonce,
                ueid=ueid,
                status=2,
                vector=trustworthiness_vector(()),
                policy_id="attest-default-v1",
                reasons=(),
                verifier_build="vectors",
                evidence_digest=bytes(32),
            ).sign(w.verifiers["kl-1"].key),
            ueid,
            "RESULT_INVALID",
        ),
    ]
    compute = _result(w.anchors)
    tests = []
    for i, (comment, cert, token, chip_ueid, refusal) in enumerate(rows):
        t = {
            "tcId": first_tc + i,
            "comment": comment,
            "flags": ["ResultCheck"],
            "sections": ["7.12"],
            "verifierCert": cert.hex(),
            "resultToken": token.hex(),
            "chipUeid": chip_ueid.hex(),
            "roundNonce": ch.nonce.hex(),
            "roundVerifierId": ch.verifier_id,
        }
        out = compute(t)
        if out["refusal"] != refusal:
            raise VectorError(f"result case {comment!r}: meant {refusal}, got {out}")
        tests.append({**t, **out})
    return {
        "type": "ResultProcessing",
        "comment": "a chip checks the RESULT of its round (§7.12)",
        "outputs": ["result", "refusal"],
        "trustAnchors": _anchors_json(w),
        "tests": tests,
    }
