"""SPEC.md's CDDL, checked by a tool nobody here wrote (pycddl), against every published vector.

Every ```cddl block of SPEC.md is compiled; every payload, token, frame, audit body, Sig_structure
and link transcript that a vector calls valid must satisfy its rule, and every payload or frame a
vector calls structurally invalid must fail it — unless the defect is one SPEC.md states in prose
because CDDL cannot (flag ``ProseInvalid``; encoding rules of §4.1). The workarounds for pycddl's
own bugs are in tests/cddl_support.py, nowhere else.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cbor2
import pycddl
import pytest
from cddl_support import PYCDDL_MISSES, SPEC, Cddl, spec_cddl_checker

from attest.registry import content_types

VECTORS = Path(__file__).resolve().parents[1] / "vectors"

#: message type (§4.4) -> content type, from SPEC.md's table
_CT_ROW = re.compile(r"^\| (\w+) \| §[\d.]+ \| `(application/vnd\.attest\.[a-z-]+\+cbor)` \|", re.M)
CONTENT_TYPES = dict(_CT_ROW.findall(SPEC.read_text(encoding="utf-8")))


def _doc(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def _tests(name: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for g in _doc(name)["testGroups"]:
        for t in g["tests"]:
            yield g, t


@pytest.fixture(scope="module")
def cddl() -> Cddl:
    return spec_cddl_checker()


def test_every_message_type_has_a_token_rule(cddl: Cddl) -> None:
    assert sorted(CONTENT_TYPES.values()) == sorted(map(str, content_types()))
    assert set(cddl.tokens) == set(CONTENT_TYPES.values())
    # every rule the other tests use compiles
    for rule in ("frame", "link-frame", "audit-entry-body", "Sig_structure", "link-transcript"):
        assert not cddl.valid(rule, cbor2.dumps("not this")), rule


def _claims_rule(cddl: Cddl, message_type: str) -> str:
    return cddl.tokens[CONTENT_TYPES[message_type]][1]


def test_schema_and_frame_vectors_agree_with_the_cddl(cddl: Cddl) -> None:
    wrong = []
    for g, t in _tests("messages.json"):
        if g["type"] == "MessageSchema":
            rule, data = _claims_rule(cddl, t["messageType"]), t["payload"]
        else:
            rule, data = ("frame" if t["protocol"] == "session" else "link-frame"), t["body"]
        accepted = cddl.valid(rule, bytes.fromhex(data))
        # valid -> accepted; CddlInvalid -> rejected; ProseInvalid -> accepted (CDDL cannot say)
        if accepted != ("CddlInvalid" not in t["flags"]):
            wrong.append((t["tcId"], t["comment"], accepted))
        if (t["result"] == "valid") != ("Valid" in t["flags"]):
            wrong.append((t["tcId"], "flags and result disagree", t["result"]))
    assert not wrong
    assert not cddl.panics


def _valid_tokens() -> Iterator[tuple[str, str, bytes]]:
    """(where, content type, token) for every token a valid vector relies on."""
    ct = CONTENT_TYPES
    for _g, t in _tests("cose_sign1.json"):
        if t["result"] == "valid":
            yield f"cose_sign1 {t['tcId']}", t["expectedContentType"], bytes.fromhex(t["token"])
    for name in ("evidence_appraisal.json", "license.json"):
        for _g, t in _tests(name):
            if t.get("result") != "valid" or "context" not in t:
                continue
            c = t["context"]
            for field, mt in (
                ("verifierCert", "VerifierCert"),
                ("challenge", "Challenge"),
                ("deviceCert", "DeviceCert"),
                ("manufacturerCert", "ManufacturerCert"),
            ):
                yield f"{name} {t['tcId']} {field}", ct[mt], bytes.fromhex(c[field])
            yield f"{name} {t['tcId']} evidence", ct["Evidence"], bytes.fromhex(t["evidence"])
    for g, t in _tests("license.json"):
        if g["type"] == "LicenseAcceptance" and t["result"] == "valid":
            yield f"license {t['tcId']}", ct["License"], bytes.fromhex(t["license"])
            if t["delegation"] is not None:
                yield f"license {t['tcId']} d", ct["Delegation"], bytes.fromhex(t["delegation"])
    for g, t in _tests("pods.json"):
        if t.get("result") != "valid":
            continue
        if g["type"] == "PodCertVerify":
            yield f"pods {t['tcId']}", ct["PodCert"], bytes.fromhex(t["podCert"])
            if t["issuerCert"]:
                yield f"pods {t['tcId']} i", ct["ManufacturerCert"], bytes.fromhex(t["issuerCert"])
        elif g["type"] == "LinkProofVerify":
            yield f"pods {t['tcId']}", ct[t["expectedType"]], bytes.fromhex(t["proof"])
        elif g["type"] == "GraphAppraisal":
            for p in t["pods"]:
                yield f"pods {t['tcId']} registry", ct["PodCert"], bytes.fromhex(p["podCert"])
    for g, t in _tests("session.json"):
        if t.get("result") != "valid":
            continue
        if g["type"] == "ChallengeProcessing":
            yield f"session {t['tcId']} vc", ct["VerifierCert"], bytes.fromhex(t["verifierCert"])
            yield f"session {t['tcId']} ch", ct["Challenge"], bytes.fromhex(t["challenge"])
        elif g["type"] == "ResultProcessing":
            yield f"session {t['tcId']} vc", ct["VerifierCert"], bytes.fromhex(t["verifierCert"])
            yield f"session {t['tcId']} r", ct["AttestationResult"], bytes.fromhex(t["resultToken"])
    for g, t in _tests("audit.json"):
        if g["type"] == "AuditLogVerify" and t["result"] == "valid" and t["verifierKey"]:
            for c in t["checkpoints"]:
                yield f"audit {t['tcId']}", ct["AuditCheckpoint"], bytes.fromhex(c)
    for _g, t in _tests("revocation.json"):
        if t["result"] == "valid":
            yield f"revocation {t['tcId']}", ct["RevocationList"], bytes.fromhex(t["list"])
    for g, t in _tests("reference_values.json"):
        if g["type"] == "ReferenceValuesOpen" and t["result"] == "valid":
            token = bytes.fromhex(t["token"])
            yield f"reference_values {t['tcId']}", ct["ReferenceValues"], token
            issuer = cbor2.loads(cbor2.loads(token[1:])[2])[-70021]
            yield f"reference_values {t['tcId']} i", ct["ManufacturerCert"], issuer
        elif g["type"] == "ReferenceValuesFold" and t["result"] == "valid":
            for d in t["documents"]:
                yield f"reference_values {t['tcId']}", ct["ReferenceValues"], bytes.fromhex(d)


def test_every_valid_token_satisfies_its_token_rule(cddl: Cddl) -> None:
    seen: dict[bytes, bool] = {}
    wrong = []
    n = 0
    for where, content_type, token in _valid_tokens():
        n += 1
        if token not in seen:
            seen[token] = cddl.token(token, content_type)
        if not seen[token]:
            wrong.append(where)
    assert n > 200 and not wrong
    assert not cddl.panics


def test_a_token_of_one_type_fails_the_rule_of_another(cddl: Cddl) -> None:
    """The per-type instantiation of attest-token<…> catches cross-type presentation (§4.3)."""
    cross = [
        t
        for g, t in _tests("cose_sign1.json")
        if t["error"] == "ContentTypeError" and t["comment"].endswith("expected")
    ]
    assert len(cross) == len(CONTENT_TYPES)
    for t in cross:
        token = bytes.fromhex(t["token"])
        actual = t["comment"].split(" token, ")[0]
        assert cddl.token(token, actual), t["tcId"]
        assert not cddl.token(token, t["expectedContentType"]), t["tcId"]


def test_sig_structures_and_link_transcripts_satisfy_their_rules(cddl: Cddl) -> None:
    for _g, t in _tests("cose_sign1.json"):
        if t["result"] == "valid":
            protected, _, payload, _ = cbor2.loads(bytes.fromhex(t["token"])[1:])
            sig = cbor2.dumps(["Signature1", protected, b"", payload])
            assert cddl.valid("Sig_structure", sig), t["tcId"]
    assert not cddl.valid("Sig_structure", cbor2.dumps(["Signature1", b"", b"\x00", b""]))
    n = 0
    for g, t in _tests("pods.json"):
        if g["type"] == "LinkProofVerify" and t["result"] == "valid":
            x = t["transcript"]
            order = ("initiator", "responder", "initiatorNonce", "responderNonce")
            order += ("initiatorShare", "responderShare", "initiatorPod", "responderPod")
            array = cbor2.dumps([bytes.fromhex(x[k]) for k in order])
            assert cddl.valid("link-transcript", array), t["tcId"]
            n += 1
    assert n >= 3


def test_audit_entry_bodies_satisfy_their_rule(cddl: Cddl) -> None:
    bodies = [bytes.fromhex(t["body"]) for g, t in _tests("audit.json") if "body" in t]
    assert bodies and all(cddl.valid("audit-entry-body", b) for b in bodies)
    assert not cddl.valid("audit-entry-body", cbor2.dumps([1, 2, "v", b"", 2, [], b"x", b"", "a"]))


def _frames(steps: list[dict[str, Any]]) -> Iterator[bytes]:
    """The bodies of the whole frames a transcript sends or receives in one step."""
    for s in steps:
        if s["op"] == "send":
            yield bytes.fromhex(s["frame"])
        elif s["op"] == "recv":
            data = bytes.fromhex(s["data"])
            while len(data) >= 4:
                (n,) = struct.unpack(">I", data[:4])
                if len(data) < 4 + n or n == 0:
                    break
                yield data[4 : 4 + n]
                data = data[4 + n :]


def test_frames_of_legal_transcripts_satisfy_the_frame_rule(cddl: Cddl) -> None:
    n = 0
    for g, t in _tests("session.json"):
        if g["type"] == "SessionTranscript" and t["result"] == "valid":
            for body in _frames(t["steps"]):
                n += 1
                assert cddl.valid("frame", body), (t["tcId"], body[:16].hex())
    assert n > 50


#: structurally invalid COSE vectors whose defect CDDL cannot see: an encoding or size rule (§4.1)
_ENCODING_ONLY = {
    "trailing byte",
    "protected header not deterministic (content type before alg)",
    "token of 65 537 bytes",
}


def test_structurally_invalid_tokens_fail_the_token_rule(cddl: Cddl) -> None:
    checked = 0
    for _g, t in _tests("cose_sign1.json"):
        if t["error"] != "DecodeError" or t["comment"] in _ENCODING_ONLY:
            continue
        checked += 1
        assert not cddl.token(bytes.fromhex(t["token"]), t["expectedContentType"]), t["tcId"]
    assert checked >= 15


def test_signed_malformed_evidence_fails_the_claims_rule(cddl: Cddl) -> None:
    rule = _claims_rule(cddl, "Evidence")
    checked = 0
    for _g, t in _tests("evidence_appraisal.json"):
        if "SignedMalformed" not in t["flags"]:
            continue
        payload = cbor2.loads(bytes.fromhex(t["evidence"])[1:])[2]
        deterministic = cbor2.dumps(cbor2.loads(payload), canonical=True) == payload
        if deterministic:  # the defect is in the claims, which the CDDL must see
            checked += 1
            assert not cddl.valid(rule, payload), t["tcId"]
    assert checked >= 5


def test_reference_values_schema_failures_agree_with_the_cddl(cddl: Cddl) -> None:
    """A validly signed document the vectors refuse for its schema: CddlInvalid ones fail the
    token rule of SPEC §6.10, ProseInvalid ones satisfy it (their rule is stated in prose)."""
    checked = 0
    for _g, t in _tests("reference_values.json"):
        flags = set(t["flags"])
        if t.get("refusal") != "RV_MALFORMED" or not flags & {"CddlInvalid", "ProseInvalid"}:
            continue
        if t["comment"] in PYCDDL_MISSES:
            continue
        checked += 1
        satisfied = cddl.token(bytes.fromhex(t["token"]), CONTENT_TYPES["ReferenceValues"])
        assert satisfied == ("ProseInvalid" in flags), (t["tcId"], t["comment"])
    assert checked >= 15


def test_pycddl_bugs_still_need_workarounds() -> None:
    """If a pycddl release fixes one of these, simplify tests/cddl_support.py."""

    def accepts(schema: str, value: Any) -> bool:
        try:
            pycddl.Schema(schema).validate_cbor(cbor2.dumps(value))
        except pycddl.ValidationError:
            return False
        return True

    assert accepts("root = {}", {1: 2})  # 2
    assert accepts("root = [* [uint, bstr]]", [[1, b""], ["x", "y"]])  # 3
    assert accepts('root = tstr .regexp "[0-9]{1,2}"', "123")  # 4
    assert accepts("root = bstr .ne h'0000'", b"\x00\x00")  # 5
    assert accepts("root = bstr .size 3", "abc")  # 8
    assert not accepts("root = [4, bstr, ? [bstr, bstr]]", [4, b""])  # 10
    assert accepts("root = [* m]\nm = {1 => uint}", [{1: 1, 6: 1}])  # 11
    assert not accepts("root = {2 => m}\nm = {1 => uint}", {2: {1: 1, 6: 1}})  # (not 11)


def test_messages_of_a_real_session_satisfy_the_cddl(cddl: Cddl, tmp_path: Path) -> None:
    """What a running verifier and chip put on the wire, not only what the vectors hold."""
    from attest.node.service import VerifierService
    from attest.protocol.events import ChallengeFrame, EvidenceFrame, Hello, ResultFrame
    from attest.protocol.framing import encode_frame
    from attest.store.audit import entry_body
    from attest.store.sqlite import SqliteStore
    from attest.testvectors.world import NOW_MS, build_world
    from attest.verify.policy import Policy

    w = build_world()
    v = w.verifiers["kl-1"]
    store = SqliteStore(tmp_path / "v.db", verifier_id="kl-1", signing_key=v.key)
    clock = [NOW_MS]
    service = VerifierService(
        identity=v, anchors=w.anchors, store=store, policy=Policy(), clock_ms=lambda: clock[0]
    )
    chip = w.honest_chip("hx100-a")
    ct = CONTENT_TYPES
    wire: list[tuple[str, bytes]] = []
    tokens = [(ct["DeviceCert"], chip.chain.device_cert), (ct["VerifierCert"], v.cert)]
    tokens.append((ct["ManufacturerCert"], chip.chain.manufacturer_cert))
    hello = Hello((1,), chip.chain.device_cert, chip.chain.manufacturer_cert)
    wire.append(("frame", encode_frame(hello)[4:]))
    for _ in range(3):
        clock[0] += 60_000
        challenge, token = service.new_challenge()
        wire.append(("frame", encode_frame(ChallengeFrame(1, v.cert, token))[4:]))
        evidence = chip.answer(
            chip.accept_challenge(v.cert, token, clock[0] // 1000), clock[0] / 1000
        )
        wire.append(("frame", encode_frame(EvidenceFrame(evidence))[4:]))
        outcome = service.conclude(chip.chain, challenge, evidence)
        wire.append(("frame", encode_frame(ResultFrame(outcome.result))[4:]))
        wire.append(("audit-entry-body", entry_body(outcome.audit.seq, outcome.audit.entry)))
        tokens += [(ct["Challenge"], token), (ct["Evidence"], evidence)]
        tokens.append((ct["AttestationResult"], outcome.result))
    store.close()  # signs a checkpoint over the tail
    reopened = SqliteStore(tmp_path / "v.db", readonly=True)
    tokens += [(ct["AuditCheckpoint"], c.token) for c in reopened.audit_checkpoints()]
    reopened.close()
    assert len(tokens) >= 13
    assert all(cddl.valid(rule, data) for rule, data in wire), wire
    assert all(cddl.token(token, content_type) for content_type, token in tokens)


# -- federation (SPEC Appendix B): COSE_Sign acts, committees, agreements ----------------------

_SIGN_DOCUMENTS = {
    "application/vnd.attest.committee+cbor": "committee-claims",
    "application/vnd.attest.federation-agreement+cbor": "agreement-claims",
}


def _sign_act_shape(cddl: Cddl, data: bytes, content_type: str) -> bool:
    """Whether ``data`` has the shape of ``attest-sign<content_type, ...>`` (pycddl has no tags
    and misreads ``.cbor`` in arrays: the tag is checked here and each part against its rule,
    as :meth:`Cddl.token` does for COSE_Sign1 tokens)."""
    if not data.startswith(b"\xd8\x62"):
        return False
    body = cbor2.loads(data[2:])
    if not isinstance(body, list) or len(body) != 4:
        return False
    protected, unprotected, payload, signatures = body
    return (
        cddl.valid(f'sign-body-header<"{content_type}">', protected)
        and unprotected == {}
        and cddl.valid(_SIGN_DOCUMENTS[content_type], payload)
        and isinstance(signatures, list)
        and 1 <= len(signatures) <= 64
        and all(
            len(s) == 3
            and cddl.valid("officer-header", s[0])
            and set(s[1]) == {4}
            and len(s[1][4]) == 32
            and len(s[2]) == 64
            for s in signatures
        )
    )


def test_federation_documents_agree_with_the_cddl(cddl: Cddl) -> None:
    checked = 0
    for g, t in _tests("federation.json"):
        if g["type"] == "CommitteeRotation" and t["result"] == "valid":
            token = bytes.fromhex(t["descriptor"])
            assert _sign_act_shape(cddl, token, "application/vnd.attest.committee+cbor")
            assert cddl.valid("committee-claims", bytes.fromhex(t["committee"]))
            checked += 1
        if g["type"] == "AgreementAcceptance" and t["result"] == "valid":
            token = bytes.fromhex(t["agreement"])
            ct = "application/vnd.attest.federation-agreement+cbor"
            assert _sign_act_shape(cddl, token, ct), t["tcId"]
            checked += 1
        if g["type"] == "CrossRecognition":
            assert cddl.valid("agreement-claims", bytes.fromhex(t["agreement"]))
            assert cddl.valid("committee-claims", bytes.fromhex(t["home"]))
    assert checked >= 5
    # what the prose forbids and the CDDL can say: an officer header other than {1: -8}
    assert not cddl.valid("officer-header", cbor2.dumps({1: -7}))
    assert not cddl.valid("committee-claims", cbor2.dumps({1: "a", 6: 0, -70400: 1}))
