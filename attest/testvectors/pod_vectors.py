"""Fixed Set vectors (vectors/pods.json): pod certificates, link proofs, graph appraisal.

Built from the deterministic world (attest/testvectors/world.py) plus pods of chips whose keys
and UEIDs derive from public labels. Each case states the outcome it is meant to have; the
generator runs the independent checker (attest/testvectors/pod_check.py) on every case and
refuses to write a file if the two disagree. Output is byte-identical across runs.

The helpers here (:func:`member`, :func:`pod_cert`, :func:`pod_chip`) also give the test-suite
the same pods, so a failing test and a failing vector talk about the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from nacl.bindings import crypto_scalarmult_base

from attest.chip.device import Chip, fabricate
from attest.codec.cbor import encode
from attest.codec.cose import parse_sign1, sign1
from attest.hardware import DEFAULT_MODELS
from attest.keys import PublicKey, SigningKey
from attest.pods import claims as PC
from attest.pods.cert import issue_pod_cert, open_pod_cert
from attest.pods.graph import KnownPod, appraise_graph
from attest.pods.link import session_key
from attest.pods.messages import (
    LinkConfirm,
    LinkProof,
    LinkResponse,
    LinkTranscript,
    PodCert,
    pod_cert_digest,
)
from attest.testvectors.format import VectorError, annotate, vector_document
from attest.testvectors.pod_check import (
    POD_ALGORITHM,
    POD_FILE,
    pod_groups,
    report_from_json,
    transcript_json,
)
from attest.testvectors.world import (
    AUTHORITY_ID,
    BOOT_S,
    CERTIFIED_S,
    NOW_S,
    World,
    build_world,
    vector_key,
    vector_nonce,
    vector_ueid,
)
from attest.verify.chain import TrustAnchors
from attest.verify.reasons import Tier

NOTES: dict[str, str] = {
    "Valid": "The certificate, proof or graph is accepted with no refusal or reason.",
    "AuthorityIssued": "The pod certificate is signed by the authority (empty issuerCert).",
    "ManufacturerIssued": "Signed by a certified manufacturer; issuerCert is its certificate.",
    "Warning": "Only warning reasons (POD_UNKNOWN, LINK_ONE_SIDED): the result is valid.",
    "Boundary": "A size or time exactly at, or one unit past, a limit.",
    "ErrorPrecedence": "Several rules fail; the first in the specified order is expected.",
    "Forged": "The signature or the signer is not what the receiver must trust.",
    "Malformed": "Properly signed, but the payload breaks the schema.",
    "Replay": "A proof from an earlier session of the same two chips.",
    "Relay": "A proof made in a session with another chip or another key share.",
    "Reflection": "A proof of one role presented in the other role.",
    "Declined": "A valid proof whose signer declines the link (accept false).",
    "Honest": "Every link in the graph is mutual and within one pod.",
    "Aggregation": "Links join pods into a component larger than the limit.",
    "OneSided": "A link that only one end reports.",
    "NonMember": "A link to a chip outside the reporter's pod.",
    "PodState": "About the pod a chip reports: unknown, not a member, revoked, conflicting.",
    "Refusal": "A chip reports a peer's signed acceptance of a link it refused.",
}


def _label_bytes(label: str, n: int = 16) -> bytes:
    return hashlib.sha256(b"attest-vectors/pod/" + label.encode()).digest()[:n]


def member(name: str) -> tuple[bytes, SigningKey]:
    """(UEID, device key) of the pod chip ``name`` (public derivation: tests and vectors only)."""
    return vector_ueid("pod-chip/" + name), vector_key("pod-chip/" + name)


def members(*names: str) -> list[tuple[bytes, PublicKey]]:
    return [(member(n)[0], member(n)[1].public_key) for n in names]


def pod_id(name: str) -> bytes:
    return _label_bytes("id/" + name)


#: pods of the vectors: name -> (issuer, member names, size class)
PODS: dict[str, tuple[str, tuple[str, ...], int]] = {
    "A": ("authority", ("a0", "a1", "a2", "a3"), 8),
    "B": ("authority", ("b0", "b1"), 8),
    "M": ("mfr-a", ("m0", "m1"), 8),
    "FULL8": ("authority", tuple(f"f{i}" for i in range(8)), 8),
    "SIZE9": ("authority", ("a0", "a1"), 9),
    "BIG": ("authority", ("a0", "a1"), 64),
    "CX": ("authority", ("cx0",), 1),
    "CX2": ("authority", ("cx0", "cx1"), 2),
    "G1": ("authority", ("g0", "g1", "g2", "g3"), 4),
    "G2": ("authority", ("h0", "h1", "h2", "h3"), 4),
    "K0": ("authority", ("k0",), 1),
    "K1": ("authority", ("k1",), 1),
    "X": ("authority", ("g0", "x1"), 4),
    "EXP": ("mfr-expiring", ("e0",), 8),
}


@cache
def pod_cert(name: str) -> tuple[bytes, bytes]:
    """(PodCert token, issuer certificate token) of a vector pod."""
    w = build_world()
    issuer, names, size = PODS[name]
    if issuer == "authority":
        key, iss, issuer_cert = w.authority.key, AUTHORITY_ID, b""
    else:
        mfr = w.manufacturers[issuer]
        key, iss, issuer_cert = mfr.key, mfr.manufacturer_id, mfr.cert
    token = issue_pod_cert(
        key, iss, members=members(*names), size_class=size, now_s=CERTIFIED_S, pod_id=pod_id(name)
    )
    return token, issuer_cert


def pod_chip(w: World, name: str, hwmodel: str = "HX100", chip_class: type[Chip] = Chip) -> Chip:
    """A fresh chip with the key and UEID of pod chip ``name`` (fabricated by mfr-a, booted)."""
    ueid, key = member(name)
    chip = fabricate(
        w.manufacturers["mfr-a"],
        w.anchors,
        hwmodel=hwmodel,
        pod_class=DEFAULT_MODELS[hwmodel].max_pod_size,
        now_s=CERTIFIED_S,
        ueid=ueid,
        device_key=key,
        chip_class=chip_class,
    )
    chip.boot(BOOT_S)
    return chip


def _signed_claims(key: SigningKey, content_type: str, claims: dict[Any, Any]) -> bytes:
    return sign1(key, content_type, encode(claims))


def _flip(token: bytes) -> bytes:
    return token[:-1] + bytes([token[-1] ^ 1])


@dataclass
class _Cases:
    tests: list[dict[str, Any]]

    def add(self, comment: str, flags: list[str], **fields: Any) -> None:
        self.tests.append({"tcId": 0, "comment": comment, "flags": flags, **fields})


# ================================================================================================
# PodCertVerify
# ================================================================================================


def _pod_cert_cases(w: World) -> list[dict[str, Any]]:
    cases = _Cases([])

    def chip(name: str, hwmodel: str = "HX100") -> dict[str, str]:
        ueid, key = member(name)
        return {"ueid": ueid.hex(), "deviceKey": key.public_key.raw.hex(), "hwmodel": hwmodel}

    def case(
        comment: str,
        flags: list[str],
        token: bytes,
        issuer_cert: bytes,
        who: dict[str, str],
        refusal: str | None,
        *,
        revoked: Iterable[bytes] = (),
        now_s: int = NOW_S,
    ) -> None:
        pid = None
        if refusal is None:
            pid = PodCert.from_payload(parse_sign1(token).payload).pod_id.hex()
        cases.add(
            comment,
            flags,
            podCert=token.hex(),
            issuerCert=issuer_cert.hex(),
            chip=who,
            revokedPods=[p.hex() for p in revoked],
            nowS=now_s,
            result="valid" if refusal is None else "invalid",
            refusal=refusal,
            podId=pid,
        )

    a, _ = pod_cert("A")
    m, mcert = pod_cert("M")
    case(
        "authority-issued pod, chip listed", ["Valid", "AuthorityIssued"], a, b"", chip("a0"), None
    )
    case("manufacturer-issued pod", ["Valid", "ManufacturerIssued"], m, mcert, chip("m0"), None)
    full, _ = pod_cert("FULL8")
    case("8 members, size class 8, HX100", ["Valid", "Boundary"], full, b"", chip("f7"), None)
    size9, _ = pod_cert("SIZE9")
    case("size class 9 > HX100 limit 8", ["Boundary"], size9, b"", chip("a0"), "POD_TOO_LARGE")
    big, _ = pod_cert("BIG")
    case("a 64-chip pod offered to an HX100", [], big, b"", chip("a0"), "POD_TOO_LARGE")
    cx, _ = pod_cert("CX")
    case("consumer chip, pod of one", ["Valid", "Boundary"], cx, b"", chip("cx0", "CX10"), None)
    cx2, _ = pod_cert("CX2")
    case("consumer chip, pod of two", ["Boundary"], cx2, b"", chip("cx0", "CX10"), "POD_TOO_LARGE")
    case("chip not listed", [], a, b"", chip("b0"), "POD_NOT_MEMBER")
    wrong_key = issue_pod_cert(
        w.authority.key,
        AUTHORITY_ID,
        members=[(member("a0")[0], member("stranger")[1].public_key)],
        size_class=8,
        now_s=CERTIFIED_S,
        pod_id=pod_id("wrong-key"),
    )
    case("chip's UEID listed with another key", [], wrong_key, b"", chip("a0"), "POD_NOT_MEMBER")
    case("pod revoked", [], a, b"", chip("a0"), "POD_REVOKED", revoked=[pod_id("A")])
    case(
        "revoked and too large: revocation first",
        ["ErrorPrecedence"],
        big,
        b"",
        chip("a0"),
        "POD_REVOKED",
        revoked=[pod_id("BIG")],
    )
    case(
        "too large and not listed: size first",
        ["ErrorPrecedence"],
        big,
        b"",
        chip("b0"),
        "POD_TOO_LARGE",
    )
    impostor = vector_key("impostor-authority")
    forged = issue_pod_cert(
        impostor,
        AUTHORITY_ID,
        members=members("a0"),
        size_class=8,
        now_s=CERTIFIED_S,
        pod_id=pod_id("A"),
    )
    case(
        "signed by an impostor of the authority",
        ["Forged"],
        forged,
        b"",
        chip("a0"),
        "POD_CERT_INVALID",
    )
    other_iss = issue_pod_cert(
        w.authority.key,
        "someone-else",
        members=members("a0"),
        size_class=8,
        now_s=CERTIFIED_S,
        pod_id=pod_id("other-iss"),
    )
    case("iss is not the authority id", ["Forged"], other_iss, b"", chip("a0"), "POD_CERT_INVALID")
    case("signature bit flipped", ["Forged"], _flip(a), b"", chip("a0"), "POD_CERT_INVALID")
    device_cert = w.chain("hx100-a").device_cert
    case("a DeviceCert token", ["Forged"], device_cert, b"", chip("a0"), "POD_CERT_INVALID")
    case(
        "manufacturer-issued without its certificate",
        ["Forged", "ManufacturerIssued"],
        m,
        b"",
        chip("m0"),
        "POD_CERT_INVALID",
    )
    other_mfr = w.manufacturers["mfr-expiring"].cert
    case(
        "issuer certificate of another manufacturer",
        ["Forged", "ManufacturerIssued"],
        m,
        other_mfr,
        chip("m0"),
        "POD_CERT_INVALID",
    )
    rogue = w.manufacturers["mfr-rogue"]
    rogue_pod = issue_pod_cert(
        rogue.key,
        "mfr-rogue",
        members=members("a0"),
        size_class=8,
        now_s=CERTIFIED_S,
        pod_id=pod_id("rogue"),
    )
    case(
        "manufacturer certified by an impostor authority",
        ["Forged", "ManufacturerIssued"],
        rogue_pod,
        rogue.cert,
        chip("a0"),
        "POD_CERT_INVALID",
    )
    exp, exp_cert = pod_cert("EXP")
    case(
        "issuer certificate valid until exp - 1",
        ["Valid", "ManufacturerIssued", "Boundary"],
        exp,
        exp_cert,
        chip("e0"),
        None,
        now_s=NOW_S,
    )
    case(
        "issuer certificate expired (now = exp)",
        ["ManufacturerIssued", "Boundary"],
        exp,
        exp_cert,
        chip("e0"),
        "POD_CERT_INVALID",
        now_s=NOW_S + 1,
    )

    # -- malformed payloads, properly signed by the authority
    ct = PodCert.CONTENT_TYPE
    base = PodCert(
        AUTHORITY_ID, CERTIFIED_S, pod_id("malformed"), tuple(members("a0", "a1")), 8
    ).to_claims()
    a0, a1 = base[PC.HEM_POD_MEMBERS]
    for comment, claims in (
        ("members not sorted by ueid", {**base, PC.HEM_POD_MEMBERS: sorted([a0, a1])[::-1]}),
        ("a member listed twice", {**base, PC.HEM_POD_MEMBERS: [a0, a0]}),
        ("more members than the size class", {**base, PC.HEM_POD_SIZE_CLASS: 1}),
        ("size class 0", {**base, PC.HEM_POD_SIZE_CLASS: 0}),
        ("all-zero pod id", {**base, PC.HEM_POD_ID: bytes(16)}),
        ("pod id of 15 bytes", {**base, PC.HEM_POD_ID: pod_id("short")[:15]}),
        ("member key of 31 bytes", {**base, PC.HEM_POD_MEMBERS: [a0, [a1[0], a1[1][:31]]]}),
        ("no members", {**base, PC.HEM_POD_MEMBERS: []}),
        ("an unknown claim", {**base, PC.HEM_LINKS: []}),
    ):
        token = _signed_claims(w.authority.key, ct, claims)
        case(comment, ["Malformed"], token, b"", chip("a0"), "POD_CERT_INVALID")
    return cases.tests


# ================================================================================================
# LinkProofVerify
# ================================================================================================


def x25519(label: str) -> tuple[bytes, bytes]:
    """(secret, share) of a deterministic X25519 key pair."""
    secret = _label_bytes("x25519/" + label, 32)
    return secret, crypto_scalarmult_base(secret)


def transcript(
    initiator: str, responder: str, label: str, *, ipod: str = "A", rpod: str = "A"
) -> tuple[LinkTranscript, bytes]:
    """The transcript of session ``label`` between two pod chips, and the initiator's secret."""
    i_secret, i_share = x25519(label + "/initiator")
    _, r_share = x25519(label + "/responder")
    t = LinkTranscript(
        member(initiator)[0],
        member(responder)[0],
        vector_nonce("link/" + label + "/initiator"),
        vector_nonce("link/" + label + "/responder"),
        i_share,
        r_share,
        pod_cert_digest(pod_cert(ipod)[0]),
        pod_cert_digest(pod_cert(rpod)[0]),
    )
    return t, i_secret


def _proof(
    kind: type[LinkProof],
    t: LinkTranscript,
    signer: str,
    *,
    pod: str | None = "A",
    accept: bool = True,
) -> bytes:
    return kind.for_session(t, pod_id=pod_id(pod) if pod else None, accept=accept).sign(
        member(signer)[1]
    )


def _link_proof_cases() -> list[dict[str, Any]]:
    cases = _Cases([])
    t, secret = transcript("a0", "a1", "s1")

    def case(
        comment: str,
        flags: list[str],
        kind: type[LinkProof],
        signer: str,
        proof: bytes,
        refusal: str | None,
        expected: LinkTranscript = t,
        *,
        accept: bool | None = True,
        pod: str | None = "A",
        key_secret: bytes | None = None,
    ) -> None:
        valid = refusal is None
        key = session_key(key_secret, expected.responder_share, expected) if key_secret else None
        cases.add(
            comment,
            flags,
            expectedType=kind.__name__,
            signerKey=member(signer)[1].public_key.raw.hex(),
            transcript=transcript_json(expected),
            proof=proof.hex(),
            result="valid" if valid else "invalid",
            refusal=refusal,
            accept=accept if valid else None,
            podId=pod_id(pod).hex() if valid and pod else None,
            initiatorSecret=key_secret.hex() if key is not None and key_secret else None,
            sessionKey=key.hex() if key is not None else None,
        )

    response = _proof(LinkResponse, t, "a1")
    confirm = _proof(LinkConfirm, t, "a0")
    case("responder's proof", ["Valid"], LinkResponse, "a1", response, None, key_secret=secret)
    case("initiator's proof", ["Valid"], LinkConfirm, "a0", confirm, None, key_secret=secret)
    tb, _ = transcript("a0", "b0", "s2", rpod="B")
    declined = _proof(LinkResponse, tb, "b0", pod="B", accept=False)
    case(
        "a member of another pod declines",
        ["Valid", "Declined"],
        LinkResponse,
        "b0",
        declined,
        None,
        tb,
        accept=False,
        pod="B",
    )
    case(
        "initiator's proof presented as the responder's",
        ["Reflection"],
        LinkResponse,
        "a0",
        confirm,
        "LINK_PROOF_INVALID",
    )
    case(
        "responder's proof presented as the initiator's",
        ["Reflection"],
        LinkConfirm,
        "a1",
        response,
        "LINK_PROOF_INVALID",
    )
    stranger = _proof(LinkResponse, t, "stranger")
    case(
        "signed by a key the certificate does not list",
        ["Forged"],
        LinkResponse,
        "a1",
        stranger,
        "LINK_PROOF_INVALID",
    )
    case(
        "signature bit flipped",
        ["Forged"],
        LinkResponse,
        "a1",
        _flip(response),
        "LINK_PROOF_INVALID",
    )
    pod_token, _ = pod_cert("A")
    case("a PodCert token", ["Forged"], LinkResponse, "a1", pod_token, "LINK_PROOF_INVALID")
    claims = LinkResponse.for_session(t, pod_id=pod_id("A"), accept=True).to_claims()
    bad = _signed_claims(
        member("a1")[1], LinkResponse.CONTENT_TYPE, {**claims, PC.HEM_LINK_ACCEPT: 1}
    )
    case("accept is an integer", ["Malformed"], LinkResponse, "a1", bad, "LINK_PROOF_INVALID")
    short = {**claims, PC.HEM_LINK_INITIATOR_NONCE: t.initiator_nonce[:16]}
    bad = _signed_claims(member("a1")[1], LinkResponse.CONTENT_TYPE, short)
    case("a 16-byte nonce", ["Malformed"], LinkResponse, "a1", bad, "LINK_PROOF_INVALID")
    old, _ = transcript("a0", "a1", "s0")
    case(
        "replayed from an earlier session",
        ["Replay"],
        LinkResponse,
        "a1",
        _proof(LinkResponse, old, "a1"),
        "LINK_PROOF_MISMATCH",
    )
    case(
        "replayed confirm from an earlier session",
        ["Replay"],
        LinkConfirm,
        "a0",
        _proof(LinkConfirm, old, "a0"),
        "LINK_PROOF_MISMATCH",
    )
    other_i = replace(t, initiator=member("a3")[0])
    case(
        "made for a session with another initiator",
        ["Relay"],
        LinkResponse,
        "a1",
        _proof(LinkResponse, other_i, "a1"),
        "LINK_PROOF_MISMATCH",
    )
    _, mitm_share = x25519("mitm")
    mitm = replace(t, initiator_share=mitm_share)
    case(
        "a middleman substituted the initiator's share",
        ["Relay"],
        LinkResponse,
        "a1",
        _proof(LinkResponse, mitm, "a1"),
        "LINK_PROOF_MISMATCH",
    )
    case(
        "the responder's nonce differs",
        ["Relay"],
        LinkResponse,
        "a1",
        _proof(LinkResponse, replace(t, responder_nonce=vector_nonce("x")), "a1"),
        "LINK_PROOF_MISMATCH",
    )
    case(
        "binds another pod certificate",
        ["Relay"],
        LinkConfirm,
        "a0",
        _proof(LinkConfirm, replace(t, initiator_pod=pod_cert_digest(pod_cert("B")[0])), "a0"),
        "LINK_PROOF_MISMATCH",
    )
    return cases.tests


# ================================================================================================
# GraphAppraisal
# ================================================================================================


def _report(
    name: str,
    pod: str | None,
    links: Iterable[str] = (),
    refusals: Iterable[bytes] = (),
    *,
    limit: int = 8,
    claim: bytes | None = None,
) -> dict[str, Any]:
    ueid, key = member(name)
    pid = claim if claim is not None else (pod_id(pod) if pod else None)
    return {
        "ueid": ueid.hex(),
        "deviceKey": key.public_key.raw.hex(),
        "maxPodSize": limit,
        "podId": pid.hex() if pid is not None else None,
        "links": sorted(member(n)[0].hex() for n in links),
        "refusals": [r.hex() for r in refusals],
    }


def _mesh(
    names: Iterable[str], pod: str, extra: dict[str, list[str]] | None = None, limit: int = 8
) -> list[dict[str, Any]]:
    names = list(names)
    extra = extra or {}
    return [
        _report(n, pod, [m for m in names if m != n] + extra.get(n, []), limit=limit) for n in names
    ]


def _graph_cases() -> list[dict[str, Any]]:
    cases = _Cases([])
    g = [f"g{i}" for i in range(4)]
    h = [f"h{i}" for i in range(4)]

    def case(
        comment: str,
        flags: list[str],
        pods: list[str],
        reports: list[dict[str, Any]],
        expect: dict[str, list[str]],
        revoked: Iterable[str] = (),
    ) -> None:
        """``expect``: reason names per chip name — the intent the implementation must meet."""
        cases.add(
            comment,
            flags,
            pods=[
                {"podCert": pod_cert(p)[0].hex(), "issuerCert": pod_cert(p)[1].hex()} for p in pods
            ],
            revokedPods=[pod_id(p).hex() for p in revoked],
            reports=reports,
            result=None,  # filled in by _fill_graph_expectations, which checks ``expect``
            reasons=None,
            chipReasons={member(n)[0].hex(): rs for n, rs in sorted(expect.items())},
            alerts=None,
            componentSizes=None,
        )

    over, non, one = "COMPONENT_OVER_LIMIT", "LINK_NON_MEMBER", "LINK_ONE_SIDED"
    case("an honest pod, fully meshed", ["Valid", "Honest"], ["G1"], _mesh(g, "G1"), {})
    path = [
        _report("h0", "G2", ["h1"]),
        _report("h1", "G2", ["h0", "h2"]),
        _report("h2", "G2", ["h1"]),
        _report("h3", "G2"),
    ]
    case(
        "two honest pods, one partly linked",
        ["Valid", "Honest"],
        ["G1", "G2"],
        _mesh(g, "G1") + path,
        {},
    )
    joined = {n: [over] for n in g + h} | {"g0": [non, over], "h0": [non, over]}
    case(
        "two 4-chip pods joined by one tampered link",
        ["Aggregation", "NonMember"],
        ["G1", "G2"],
        _mesh(g, "G1", {"g0": ["h0"]}) + _mesh(h, "G2", {"h0": ["g0"]}),
        joined,
    )
    case(
        "a link only one end reports",
        ["Warning", "OneSided"],
        ["G1"],
        [_report("g0", "G1", ["g1"]), _report("g1", "G1")],
        {"g0": [one], "g1": [one]},
    )
    case(
        "a claimed link to a non-member who does not report it",
        ["OneSided", "NonMember"],
        ["G1", "G2"],
        [_report("g0", "G1", ["h0"]), _report("h0", "G2")],
        {"g0": [non, one], "h0": [one]},
    )
    case(
        "a link to a chip with no report yet",
        ["NonMember"],
        ["G1", "G2"],
        [_report("g0", "G1", ["h0"])],
        {"g0": [non]},
    )
    cx = [_report("k0", "K0", ["k1"], limit=1), _report("k1", "K1", ["k0"], limit=1)]
    case(
        "two consumer chips (pods of one) linked",
        ["Aggregation", "NonMember"],
        ["K0", "K1"],
        cx,
        {"k0": [non, over], "k1": [non, over]},
    )
    unknown, unknown2 = _label_bytes("id/unknown"), _label_bytes("id/unknown-2")
    case(
        "pods the verifier has no certificate for",
        ["PodState"],
        [],
        [
            _report("u0", None, ["u1"], claim=unknown),
            _report("u1", None, ["u0"], claim=unknown),
            _report("u2", None, ["u3"], claim=unknown),
            _report("u3", None, ["u2"], claim=unknown2),
        ],
        {
            "u0": ["POD_UNKNOWN"],
            "u1": ["POD_UNKNOWN"],
            "u2": ["POD_UNKNOWN", non],
            "u3": ["POD_UNKNOWN", non],
        },
    )
    case(
        "a chip claims a pod that does not list it",
        ["PodState"],
        ["G1"],
        [_report("h0", "G1")],
        {"h0": ["POD_NOT_MEMBER"]},
    )
    case(
        "a pod whose certificate is revoked",
        ["PodState"],
        ["G1"],
        _mesh(g[:2], "G1"),
        {"g0": ["POD_REVOKED"], "g1": ["POD_REVOKED"]},
        revoked=["G1"],
    )
    case(
        "a chip listed in two pods",
        ["PodState"],
        ["G1", "X"],
        _mesh(g[:2], "G1"),
        {"g0": ["POD_CONFLICT"]},
    )
    case(
        "a chip listed in two pods, one revoked",
        ["Valid", "PodState"],
        ["G1", "X"],
        _mesh(g[:2], "G1"),
        {},
        revoked=["X"],
    )
    # refused links: g0 (tampered) accepted a link with h1, who refused and reports the proof
    t, _ = transcript("g0", "h1", "r1", ipod="G1", rpod="G2")
    accepted = _proof(LinkConfirm, t, "g0", pod="G1")
    refused = {"g0": ["LINK_ATTEMPT_REFUSED"]}
    case(
        "a peer's signed acceptance of a refused cross-pod link",
        ["Refusal"],
        ["G1", "G2"],
        [_report("g0", "G1"), _report("h1", "G2", refusals=[accepted])],
        refused,
    )
    case(
        "the refused peer has no report: its key comes from its certificate",
        ["Refusal"],
        ["G1", "G2"],
        [_report("h1", "G2", refusals=[accepted])],
        refused,
    )
    case(
        "a forged acceptance is ignored",
        ["Valid", "Refusal", "Forged"],
        ["G1", "G2"],
        [_report("g0", "G1"), _report("h1", "G2", refusals=[_flip(accepted)])],
        {},
    )
    case(
        "an acceptance forwarded by a third chip is ignored",
        ["Valid", "Refusal", "Relay"],
        ["G1", "G2"],
        [_report("g0", "G1"), _report("h2", "G2", refusals=[accepted])],
        {},
    )
    same, _ = transcript("g0", "g1", "r2", ipod="G1", rpod="G1")
    within = _proof(LinkConfirm, same, "g0", pod="G1")
    case(
        "an acceptance within one pod is no evidence",
        ["Valid", "Refusal"],
        ["G1"],
        [_report("g0", "G1"), _report("g1", "G1", refusals=[within])],
        {},
    )
    declined = _proof(LinkConfirm, t, "g0", pod="G1", accept=False)
    case(
        "a declined link is no evidence",
        ["Valid", "Refusal", "Declined"],
        ["G1", "G2"],
        [_report("g0", "G1"), _report("h1", "G2", refusals=[declined])],
        {},
    )
    return cases.tests


def _fill_graph_expectations(tests: list[dict[str, Any]], group: dict[str, Any]) -> None:
    """Graph cases state their intent by flags; the expected values come from the checker run
    once with placeholders and are then re-checked against the flags (see :func:`_intent`)."""
    ta = group["trustAnchors"]
    anchors = TrustAnchors(ta["authorityId"], PublicKey(bytes.fromhex(ta["authorityKey"])))
    for t in tests:
        pods = {}
        for p in t["pods"]:
            cred = open_pod_cert(
                bytes.fromhex(p["podCert"]),
                bytes.fromhex(p["issuerCert"]),
                anchors,
                now_s=group["nowS"],
            )
            pods[cred.pod_id] = KnownPod.from_cert(cred.cert, cred.digest)
        reports = {r.ueid: r for r in map(report_from_json, t["reports"])}
        v = appraise_graph(reports, pods, frozenset(bytes.fromhex(p) for p in t["revokedPods"]))
        got = {u.hex(): [r.name for r in rs] for u, rs in v.reasons.items() if rs}
        if got != t["chipReasons"]:
            raise VectorError(
                f"graph case {t['comment']!r}: reasons {got}, meant {t['chipReasons']}"
            )
        t["reasons"] = [r.name for r in sorted({r for rs in v.reasons.values() for r in rs})]
        t["alerts"] = [[a.reason.name, [c.hex() for c in a.chips]] for a in v.alerts]
        t["componentSizes"] = [len(c) for c in v.components]
        worst = max((r.tier for rs in v.reasons.values() for r in rs), default=Tier.AFFIRMING)
        t["result"] = "invalid" if worst is Tier.CONTRAINDICATED else "valid"
        if bool({"Valid", "Warning"} & set(t["flags"])) != (t["result"] == "valid"):
            raise VectorError(f"graph case {t['comment']!r}: result {t['result']}")


# ================================================================================================
# The document
# ================================================================================================


def pod_document(w: World | None = None) -> dict[str, Any]:
    """The content of vectors/pods.json, checked case by case against the checker."""
    w = w or build_world()
    anchors = {
        "authorityId": w.anchors.authority_id,
        "authorityKey": w.anchors.authority_key.raw.hex(),
    }
    groups: list[dict[str, Any]] = [
        {
            "type": "PodCertVerify",
            "comment": "A chip's acceptance rules for a pod certificate, in order.",
            "trustAnchors": anchors,
            "maxPodSize": {m.name: m.max_pod_size for m in DEFAULT_MODELS.values()},
            "tests": _pod_cert_cases(w),
        },
        {
            "type": "LinkProofVerify",
            "comment": "A peer's proof checked against this session's transcript.",
            "tests": _link_proof_cases(),
        },
        {
            "type": "GraphAppraisal",
            "comment": "Reasons per chip and alerts from the latest pod reports.",
            "trustAnchors": anchors,
            "nowS": NOW_S,
            "tests": _graph_cases(),
        },
    ]
    _fill_graph_expectations(groups[2]["tests"], groups[2])
    n = 0
    for g in groups:
        for t in g["tests"]:
            n += 1
            t["tcId"] = n
    doc = vector_document(
        POD_ALGORITHM,
        n,
        [
            "Fixed Set: pod certificates, link-handshake proofs and the link-graph appraisal.",
            "Keys and UEIDs derive from public labels: never use them outside tests.",
        ],
        {
            k: v
            for k, v in NOTES.items()
            if any(k in t["flags"] for g in groups for t in g["tests"])
        },
        groups,
    )
    doc = annotate(doc, POD_OUTPUTS, lambda g, t: list(POD_SECTIONS[g["type"]]))
    for group, run in pod_groups(doc):
        for t in group["tests"]:
            problems = run(t)
            if problems:
                raise VectorError(f"{POD_FILE} tcId {t['tcId']} ({t['comment']}): {problems}")
    return doc


#: the expected-result fields of each group type (SPEC §16.7)
POD_OUTPUTS = {
    "PodCertVerify": ("result", "refusal", "podId"),
    "LinkProofVerify": ("result", "refusal", "accept", "podId", "sessionKey"),
    "GraphAppraisal": ("result", "reasons", "chipReasons", "alerts", "componentSizes"),
}
POD_SECTIONS = {
    "PodCertVerify": ("14.2",),
    "LinkProofVerify": ("14.3", "14.4"),
    "GraphAppraisal": ("14.8",),
}


def pod_documents(w: World) -> dict[str, dict[str, Any]]:
    """{file name: document}, for the generator's hook."""
    return {POD_FILE: pod_document(w)}
