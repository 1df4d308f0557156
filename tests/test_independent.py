"""An independent checker (tests/independent_checker.py: cbor2 + OpenSSL's Ed25519, no attest
import) re-verifies the structure and every signature of every valid vector, and confirms that
the vectors invalid for a structural or cryptographic reason fail it.

This test module imports nothing from ``attest`` either: it reads only the vector files.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pytest
from independent_checker import (
    CONTENT_TYPES,
    Invalid,
    cnf_key,
    committee_act,
    device_chain,
    reference_values,
    verifier_cert,
    verify_token,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
CT = CONTENT_TYPES


def _tests(name: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    doc = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    for g in doc["testGroups"]:
        for t in g["tests"]:
            yield g, t


def _h(text: str) -> bytes:
    return bytes.fromhex(text)


def _anchors(g: dict[str, Any]) -> tuple[str, bytes]:
    return g["trustAnchors"]["authorityId"], _h(g["trustAnchors"]["authorityKey"])


def _fails(check: Any, *args: Any) -> bool:
    try:
        check(*args)
    except Invalid:
        return True
    return False


def test_cose_vectors_agree_with_the_independent_checker() -> None:
    n = 0
    for g, t in _tests("cose_sign1.json"):
        n += 1
        try:
            claims_ok = verify_token(_h(t["token"]), _h(g["publicKey"]), t["expectedContentType"])
            got = None
        except Invalid as exc:
            claims_ok, got = None, exc.kind
        assert got == t["error"], (t["tcId"], t["comment"], got)
        if t["result"] == "valid":
            assert isinstance(claims_ok, dict), t["tcId"]
    assert n >= 74  # revision 3 published 74; later revisions only add


#: evidence reasons that an envelope, signature or chain failure explains (SPEC §9.5 masking)
_ENVELOPE = {"MALFORMED", "WRONG_CONTENT_TYPE", "BAD_SIGNATURE", "CERT_CHAIN_INVALID"}


def _appraisal_tokens(g: dict[str, Any], t: dict[str, Any]) -> dict[Any, Any]:
    """Verify every token of an appraisal test; the Evidence claims, or Invalid."""
    authority_id, authority_key = _anchors(g)
    c = t["context"]
    vc = verifier_cert(_h(c["verifierCert"]), authority_id, authority_key)
    challenge = verify_token(_h(c["challenge"]), cnf_key(vc), CT["Challenge"])
    if challenge.get(1) != vc.get(2):
        raise Invalid("Issuer", "challenge not issued by the certified verifier")
    dc, _mc = device_chain(
        _h(c["deviceCert"]), _h(c["manufacturerCert"]), authority_id, authority_key
    )
    ev = verify_token(_h(t["evidence"]), cnf_key(dc), CT["Evidence"])
    if ev.get(256) != dc.get(256):
        raise Invalid("Binding", "ueid")
    return ev


@pytest.mark.parametrize("name", ["evidence_appraisal.json", "license.json"])
def test_appraisal_vectors_agree_with_the_independent_checker(name: str) -> None:
    valid = invalid = 0
    for g, t in _tests(name):
        if "evidence" not in t:
            continue
        if t["result"] == "valid":
            valid += 1
            ev = _appraisal_tokens(g, t)
            assert ev.get(10) is not None, t["tcId"]
        elif set(t["reasons"]) & _ENVELOPE and "SignedMalformed" not in t["flags"]:
            invalid += 1
            assert _fails(_appraisal_tokens, g, t), (t["tcId"], t["comment"])
    assert valid >= 5 and (invalid >= 20 or name == "license.json")


#: refusals for a signature, content type or issuer failure (LICENSE_MALFORMED is a schema
#: failure of a validly signed license: tests/test_cddl.py's territory)
_LICENSE_CRYPTO = {"LICENSE_SIGNATURE_INVALID", "LICENSE_DELEGATION_INVALID"}


def _license_tokens(g: dict[str, Any], t: dict[str, Any]) -> None:
    authority_id, authority_key = _anchors(g)
    key = authority_key
    if t["delegation"] is not None:
        d = verify_token(_h(t["delegation"]), authority_key, CT["Delegation"])
        if d.get(1) != authority_id:
            raise Invalid("Issuer", "delegation not the authority's")
        key = cnf_key(d)
    claims = verify_token(_h(t["license"]), key, CT["License"])
    if not {1, 6, 256, 271, -70100, -70101, -70102} <= set(claims):
        raise Invalid("DecodeError", "license claims")


def test_license_acceptance_vectors_agree_with_the_independent_checker() -> None:
    valid = invalid = 0
    for g, t in _tests("license.json"):
        if g["type"] != "LicenseAcceptance":
            continue
        if t["result"] == "valid":
            valid += 1
            _license_tokens(g, t)
        elif t["refusal"] in _LICENSE_CRYPTO and "cannot track" not in t["comment"]:
            invalid += 1
            assert _fails(_license_tokens, g, t), (t["tcId"], t["comment"])
    assert valid >= 5 and invalid >= 5


def _pod_cert(g: dict[str, Any], pod_cert: bytes, issuer_cert: bytes) -> dict[Any, Any]:
    authority_id, authority_key = _anchors(g)
    if not issuer_cert:
        claims = verify_token(pod_cert, authority_key, CT["PodCert"])
        if claims.get(1) != authority_id:
            raise Invalid("Issuer", "pod cert not the authority's")
        return claims
    m = verify_token(issuer_cert, authority_key, CT["ManufacturerCert"])
    if m.get(1) != authority_id:
        raise Invalid("Issuer", "issuer cert not the authority's")
    claims = verify_token(pod_cert, cnf_key(m), CT["PodCert"])
    if claims.get(1) != m.get(2):
        raise Invalid("Issuer", "pod cert not the manufacturer's")
    return claims


def _link_proof(t: dict[str, Any]) -> dict[Any, Any]:
    return verify_token(_h(t["proof"]), _h(t["signerKey"]), CT[t["expectedType"]])


def test_pod_vectors_agree_with_the_independent_checker() -> None:
    valid = invalid = 0
    for g, t in _tests("pods.json"):
        if g["type"] == "GraphAppraisal":
            for p in t["pods"]:
                _pod_cert(g, _h(p["podCert"]), _h(p["issuerCert"]))
            continue
        if g["type"] == "PodCertVerify":
            args: tuple[Any, ...] = (_pod_cert, g, _h(t["podCert"]), _h(t["issuerCert"]))
            crypto_refusal = t["refusal"] == "POD_CERT_INVALID"
        else:
            args = (_link_proof, t)
            crypto_refusal = t["refusal"] == "LINK_PROOF_INVALID"
        if t["result"] == "valid":
            valid += 1
            assert not _fails(*args), t["tcId"]
        elif crypto_refusal and set(t["flags"]) & {"Forged", "Reflection"}:
            invalid += 1  # (flag Malformed: a correctly signed schema failure, pycddl's job)
            assert _fails(*args), (t["tcId"], t["comment"])
    assert valid >= 8 and invalid >= 10


def _chip_side(g: dict[str, Any], t: dict[str, Any]) -> None:
    """SPEC §7.10 / §7.12, written from the SPEC."""
    authority_id, authority_key = _anchors(g)
    vc = verifier_cert(_h(t["verifierCert"]), authority_id, authority_key)
    if g["type"] == "ChallengeProcessing":
        ch = verify_token(_h(t["challenge"]), cnf_key(vc), CT["Challenge"])
        nonce = ch.get(10)
        if ch.get(1) != vc.get(2) or not (isinstance(nonce, bytes) and 8 <= len(nonce) <= 64):
            raise Invalid("Issuer", "challenge")
        if t["nowS"] >= vc[4] or t["nowS"] >= ch[4]:
            raise Invalid("Expired", "certificate or challenge")
    else:
        r = verify_token(_h(t["resultToken"]), cnf_key(vc), CT["AttestationResult"])
        round_values = (_h(t["chipUeid"]), _h(t["roundNonce"]), t["roundVerifierId"])
        # SPEC §6.8: the nonce is the EAR's own; iss and ueid are HEM claims of the "hem" appraisal
        hem = r.get(266, {}).get("hem", {}).get(-70018, {})
        ueid = hem.get(256)
        if ueid == NO_CHIP and _contraindicated(r):
            ueid = round_values[0]  # a diagnostic result names no chip (SPEC §7.12)
        if (ueid, r.get(10), hem.get(1)) != round_values:
            raise Invalid("Binding", "result of another round")


NO_CHIP = b"\x01" + bytes(16)


def _contraindicated(result: dict[Any, Any]) -> bool:
    """Every appraisal's ear.status (1000) in the submods (266) is contraindicated (96)."""
    appraisals = result.get(266)
    if not isinstance(appraisals, dict) or not appraisals:
        return False
    return all(isinstance(a, dict) and a.get(1000, 0) >= 96 for a in appraisals.values())


def test_chip_side_session_vectors_agree_with_the_independent_checker() -> None:
    checked = 0
    for g, t in _tests("session.json"):
        if g["type"] in ("ChallengeProcessing", "ResultProcessing"):
            checked += 1
            assert _fails(_chip_side, g, t) == (t["result"] == "invalid"), (t["tcId"], t["comment"])
    assert checked >= 28  # revision 3 published 28; later revisions only add


def _checkpoint(token: str, key: str) -> dict[Any, Any]:
    return verify_token(_h(token), _h(key), CT["AuditCheckpoint"])


def _revocation_list(g: dict[str, Any], t: dict[str, Any]) -> None:
    authority_id, authority_key = _anchors(g)
    claims = verify_token(_h(t["list"]), authority_key, CT["RevocationList"])
    if claims.get(1) != authority_id:
        raise Invalid("Issuer", "not the authority's list")


def test_audit_checkpoints_and_revocation_lists_agree_with_the_independent_checker() -> None:
    checked = 0
    for g, t in _tests("audit.json"):
        if g["type"] != "AuditLogVerify" or t["verifierKey"] is None:
            continue
        forged = [_fails(_checkpoint, c, t["verifierKey"]) for c in t["checkpoints"]]
        if t["result"] == "valid":
            assert not any(forged), t["tcId"]
        if "CHECKPOINT_FORGED" in t["findings"] and "seq 0" not in t["comment"]:
            assert any(forged), t["tcId"]  # (seq 0 is a schema failure: validly signed)
        checked += 1
    for g, t in _tests("revocation.json"):
        if t["result"] == "valid":
            _revocation_list(g, t)
        elif t["comment"].startswith(("signed by", "a VerifierCert", "forged")):
            assert _fails(_revocation_list, g, t), t["tcId"]
        checked += 1
    assert checked >= 30


def _opened(g: dict[str, Any], t: dict[str, Any]) -> str | None:
    """The refusal name the independent checker gives a ReferenceValuesOpen test, or None."""
    authority_id, authority_key = _anchors(g)
    try:
        reference_values(_h(t["token"]), authority_id, authority_key, t["nowS"], t["heldNumber"])
    except Invalid as exc:
        return exc.kind
    return None


def test_reference_values_agree_with_the_independent_checker() -> None:
    """Every step of SPEC §6.10 but the schema: the certificate, its expiry, the signature, iss
    against sub and the number give the vectors' refusal; valid documents re-verify."""
    opened = folded = 0
    for g, t in _tests("reference_values.json"):
        if g["type"] == "ReferenceValuesOpen":
            schema_only = t["refusal"] == "RV_MALFORMED" and "Envelope" not in t["flags"]
            if not schema_only:  # (a validly signed schema failure is test_cddl.py's)
                assert _opened(g, t) == t["refusal"], (t["tcId"], t["comment"])
                opened += 1
            if t["result"] == "valid":
                mfr = verify_token(_issuer(t), _anchors(g)[1], CT["ManufacturerCert"])
                claims = verify_token(_h(t["token"]), cnf_key(mfr), CT["ReferenceValues"])
                doc = t["document"]
                assert (claims[1], claims[-70020]) == (doc["issuer"], doc["number"])
                assert len(claims[-70022]) == len(doc["models"])
                assert len(claims[-70023]) == len(doc["firmware"])
        elif t["result"] == "valid":
            authority_id, authority_key = _anchors(g)
            for d in t["documents"]:
                reference_values(_h(d), authority_id, authority_key, g["nowS"], None)
                folded += 1
    assert opened >= 30 and folded >= 10


def _issuer(t: dict[str, Any]) -> bytes:
    """The ManufacturerCert a ReferenceValues token carries (claim -70021 of its payload)."""
    return bytes(cbor2.loads(cbor2.loads(_h(t["token"])[1:])[2])[-70021])


def test_openssl_alone_accepts_the_small_order_forgeries() -> None:
    """The small-order cases have teeth: without SPEC §4.3 rules 3–4, Ed25519 accepts them."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    accepted = []
    for g, t in _tests("cose_sign1.json"):
        if "Ed25519Strict" not in t["flags"] or len(_h(g["publicKey"])) != 32:
            continue
        protected, _, payload, signature = cbor2.loads(_h(t["token"])[1:])
        if len(signature) != 64:
            continue
        message = cbor2.dumps(["Signature1", protected, b"", payload])
        try:
            Ed25519PublicKey.from_public_bytes(_h(g["publicKey"])).verify(signature, message)
        except Exception:
            continue
        accepted.append(t["tcId"])
        assert t["result"] == "invalid"
    assert len(accepted) >= 8  # small-order R, and every small-order or non-canonical key


def test_committee_acts_agree_with_the_independent_checker() -> None:
    """SPEC B.2 from its text alone: every CommitteeAct vector's outcome and reason."""
    checked = 0
    for g, t in _tests("federation.json"):
        if g["type"] != "CommitteeAct":
            continue
        try:
            payload = committee_act(_h(t["act"]), _h(t["committee"]), t["contentType"])
        except Invalid as exc:
            assert (t["result"], t["reason"]) == ("invalid", exc.kind), t["tcId"]
        else:
            assert (t["result"], t["payload"]) == ("valid", payload.hex()), t["tcId"]
        checked += 1
    assert checked >= 20
