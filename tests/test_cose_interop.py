"""COSE_Sign1 interoperability: COSE WG examples, pycose and python-cwt.

The COSE WG example files are read in place from ``../shared/external/cose/`` (see
PROVENANCE.md there) and never copied into this repository. Tests that need them skip when the
folder is absent; the pycose / python-cwt round trips need nothing external.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import cbor2
import cwt
import nacl.signing
import pytest
from pycose.algorithms import EdDSA
from pycose.headers import Algorithm
from pycose.headers import ContentType as CoseContentTypeHeader
from pycose.keys import OKPKey
from pycose.keys.curves import Ed25519
from pycose.messages import Sign1Message

from attest.codec.cbor import encode
from attest.codec.cose import (
    ALG_EDDSA,
    parse_sign1,
    protected_header,
    sig_structure,
    sign1,
    verify1,
    verify1_foreign,
)
from attest.errors import ContentTypeError, DecodeError, SignatureError
from attest.keys import PublicKey, SigningKey
from attest.messages import DeviceCert, Evidence, Meters, VerifierCert
from attest.messages.attestation import AttestationResult, Firmware
from attest.messages.content import ContentType
from attest.registry import content_types
from attest.verify.reasons import Reason, trustworthiness_vector

EXTERNAL = Path(__file__).resolve().parents[1].parent / "shared" / "external"
COSE_DIR = EXTERNAL / "cose"

# A fixed key pair whose seed the tests know, so that pycose / cwt can sign with the same key.
# (SigningKey has no secret accessor; we build it from a nacl key made from the known seed.)
SEED = bytes(range(32))
KEY = SigningKey(nacl.signing.SigningKey(SEED))
PK = KEY.public_key
OTHER_PK = SigningKey.derive_insecure_for_tests("cose-interop-other").public_key

# A point in 2100, so certificate "exp" claims never trip cwt's expiry check.
FAR_FUTURE = 4_102_444_800


@pytest.fixture(scope="module")
def cose_dir() -> Path:
    if not COSE_DIR.is_dir():
        pytest.skip(
            f"external COSE WG examples not found at {COSE_DIR} (expected ../shared/external/ "
            "next to the repository; see PROVENANCE.md there)"
        )
    return COSE_DIR


def _example(cose_dir: Path, name: str) -> dict[str, Any]:
    path = cose_dir / name
    if not path.is_file():
        pytest.skip(f"{name} is not in {cose_dir}")
    return json.loads(path.read_text())


def _key_param(jwk: dict[str, Any], name: str) -> bytes:
    """A JWK-ish key parameter: the examples use ``x_hex``/``d_hex``, JWKs use base64url."""
    if f"{name}_hex" in jwk:
        return bytes.fromhex(jwk[f"{name}_hex"])
    value = jwk[name]
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _evidence() -> Evidence:
    return Evidence(
        verifier_id="verifier-eu-1",
        nonce=bytes(range(32)),
        ueid=b"\x01" + bytes(range(100, 116)),
        uptime_s=3600,
        dbgstat=3,
        bootcount=7,
        firmware=Firmware((1, 4, 2), bytes(range(200, 232))),
        attest_counter=42,
        meters=Meters(flops=10**18, energy_mj=123_456, interconnect_bytes=2**40),
    )


def _reencode(token: bytes, **changes: Any) -> bytes:
    """Re-encode a tagged COSE_Sign1 with some of its four fields replaced (tag 18 kept)."""
    body = cbor2.loads(token[1:])
    names = ("protected", "unprotected", "payload", "signature")
    for name, value in changes.items():
        body[names.index(name)] = value
    return b"\xd2" + encode(body)


# --------------------------------------------------------------------------------------------
# COSE WG examples: EdDSA
# --------------------------------------------------------------------------------------------


def test_cose_wg_eddsa_sig_01_verifies_and_rebuilds(cose_dir: Path) -> None:
    ex = _example(cose_dir, "eddsa-examples_eddsa-sig-01.json")
    jwk = ex["input"]["sign0"]["key"]
    assert (jwk["kty"], jwk["crv"]) == ("OKP", "Ed25519")
    x, d = _key_param(jwk, "x"), _key_param(jwk, "d")
    token = bytes.fromhex(ex["output"]["cbor"])
    plaintext = ex["input"]["plaintext"].encode()

    msg = verify1_foreign(token, PublicKey(x))
    assert msg.payload == plaintext
    assert msg.alg == ALG_EDDSA
    assert msg.content_type == 0  # "ctyp": 0 in the example's protected header
    assert msg.unprotected == {4: b"11"}  # kid

    expected_tbs = bytes.fromhex(ex["intermediates"]["ToBeSign_hex"])
    assert sig_structure(msg.protected, msg.payload, b"") == expected_tbs
    assert msg.to_be_signed() == expected_tbs

    # Ed25519 is deterministic: our signer rebuilds the example's signature byte for byte.
    key = SigningKey(nacl.signing.SigningKey(d))
    assert key.public_key.raw == x
    assert key.sign(expected_tbs) == msg.signature

    # Under any other key it does not verify; with external AAD it does not verify either.
    with pytest.raises(SignatureError):
        verify1_foreign(token, OTHER_PK)
    with pytest.raises(SignatureError):
        verify1_foreign(token, PublicKey(x), external_aad=b"\x00")
    # It is not of our profile (ctyp 0, a kid): verify1 refuses it for every message type.
    for content_type in content_types():
        with pytest.raises(ContentTypeError):
            verify1(token, PublicKey(x), content_type)


def test_cose_wg_countersigned_sign1(cose_dir: Path) -> None:
    # Same Sign1 as eddsa-sig-01 plus a (v1) countersignature in unprotected label 9. The file
    # writes the unprotected map as {9: ..., 4: ...}, which is not RFC 8949 deterministic order,
    # and our parser is strict about every map on the wire, foreign tokens included: DecodeError.
    ex = _example(cose_dir, "countersign1_signed1-01.json")
    x = _key_param(ex["input"]["sign0"]["key"], "x")
    token = bytes.fromhex(ex["output"]["cbor"])
    with pytest.raises(DecodeError):
        parse_sign1(token)

    # The unprotected bucket is not signed: with it re-encoded deterministically the Sign1
    # signature and Sig_structure are exactly eddsa-sig-01's, and it verifies.
    body = cbor2.loads(token[1:])
    assert list(body[1]) == [9, 4]
    msg = verify1_foreign(_reencode(token, unprotected=dict(body[1])), PublicKey(x))
    assert msg.to_be_signed() == bytes.fromhex(ex["intermediates"]["ToBeSign_hex"])
    assert set(msg.unprotected) == {4, 9}


def test_cose_wg_eddsa_sig_02_is_ed448_and_rejected(cose_dir: Path) -> None:
    # eddsa-sig-02 is a COSE_Sign1 with alg EdDSA but curve Ed448 (114-byte signature, 57-byte
    # key). Our profile is Ed25519 only: it parses, its Sig_structure matches, and no Ed25519
    # key can verify it (the length check rejects the signature before libsodium).
    ex = _example(cose_dir, "eddsa-examples_eddsa-sig-02.json")
    assert ex["input"]["sign0"]["key"]["crv"] == "Ed448"
    msg = parse_sign1(bytes.fromhex(ex["output"]["cbor"]))
    assert msg.alg == ALG_EDDSA
    assert len(msg.signature) == 114
    assert msg.to_be_signed() == bytes.fromhex(ex["intermediates"]["ToBeSign_hex"])
    with pytest.raises(SignatureError):
        verify1_foreign(bytes.fromhex(ex["output"]["cbor"]), PK)


@pytest.mark.parametrize("name", ["eddsa-examples_eddsa-01.json", "eddsa-examples_eddsa-02.json"])
def test_cose_wg_cose_sign_is_not_sign1(cose_dir: Path, name: str) -> None:
    # These are multi-signer COSE_Sign (tag 98), which parse_sign1 must refuse.
    ex = _example(cose_dir, name)
    with pytest.raises(DecodeError):
        parse_sign1(bytes.fromhex(ex["output"]["cbor"]))


# --------------------------------------------------------------------------------------------
# COSE WG sign1-tests (ES256): structural pass / fail cases
# --------------------------------------------------------------------------------------------
#
# The sign1-tests files are ES256, which our EdDSA-only profile never verifies, so every literal
# file is rejected at the latest by the algorithm check. To make each failure meaningful for
# Ed25519, the same mutation is also applied to the (valid) EdDSA example eddsa-sig-01, and the
# mutated token must be rejected with the error class given here.


def _eddsa_token(cose_dir: Path) -> tuple[bytes, PublicKey]:
    ex = _example(cose_dir, "eddsa-examples_eddsa-sig-01.json")
    return bytes.fromhex(ex["output"]["cbor"]), PublicKey(
        _key_param(ex["input"]["sign0"]["key"], "x")
    )


def _change_tag(token: bytes) -> bytes:
    # sign-fail-01 "ChangeCBORTag": 998 -> head d9 03e6 instead of d2.
    return b"\xd9\x03\xe6" + token[1:]


def _change_payload(token: bytes) -> bytes:
    # sign-fail-02: the last payload byte is changed (".") -> ("/"); the signature is kept.
    payload = cbor2.loads(token[1:])[2]
    return _reencode(token, payload=payload[:-1] + bytes([payload[-1] ^ 1]))


def _set_protected(**header: Any) -> Any:
    def mutate(token: bytes) -> bytes:
        return _reencode(token, protected=encode({int(k[1:]): v for k, v in header.items()}))

    return mutate


# file -> (error for the literal file under verify1_foreign, EdDSA mutation, error it raises)
SIGN_FAIL: dict[str, tuple[type[Exception], Any, type[Exception]]] = {
    # Wrong CBOR tag (998): not a COSE_Sign1 at all.
    "sign1-tests_sign-fail-01.json": (DecodeError, _change_tag, DecodeError),
    # Payload changed after signing.
    "sign1-tests_sign-fail-02.json": (SignatureError, _change_payload, SignatureError),
    # alg changed to -999 in the protected header.
    "sign1-tests_sign-fail-03.json": (
        SignatureError,
        _set_protected(_1=-999, _3=0),
        SignatureError,
    ),
    # alg changed to the text "unknown".
    "sign1-tests_sign-fail-04.json": (
        SignatureError,
        _set_protected(_1="unknown", _3=0),
        SignatureError,
    ),
    # A protected attribute added after signing (EdDSA analogue: add an IV label 5).
    "sign1-tests_sign-fail-06.json": (
        SignatureError,
        _set_protected(_1=-8, _3=0, _5=b"\x00" * 12),
        SignatureError,
    ),
    # A protected attribute removed after signing (EdDSA analogue: drop ctyp).
    "sign1-tests_sign-fail-07.json": (SignatureError, _set_protected(_1=-8), SignatureError),
}


@pytest.mark.parametrize("name", sorted(SIGN_FAIL))
def test_cose_wg_sign_fail(cose_dir: Path, name: str) -> None:
    ex = _example(cose_dir, name)
    assert ex["fail"] is True
    literal_error, mutate, mutated_error = SIGN_FAIL[name]
    literal = bytes.fromhex(ex["output"]["cbor"])

    # The literal (ES256) file: rejected, by verify1_foreign and by verify1 for any type.
    with pytest.raises(literal_error):
        verify1_foreign(literal, PK)
    for content_type in content_types():
        with pytest.raises((DecodeError, SignatureError)):
            verify1(literal, PK, content_type)

    # The same failure applied to a valid Ed25519 COSE_Sign1.
    token, pk = _eddsa_token(cose_dir)
    verify1_foreign(token, pk)  # sanity: the unmutated token verifies
    with pytest.raises(mutated_error):
        verify1_foreign(mutate(token), pk)


def test_cose_wg_sign_fail_files_are_all_covered(cose_dir: Path) -> None:
    found = {p.name for p in cose_dir.glob("sign1-tests_sign-fail-*.json")}
    assert found <= set(SIGN_FAIL), f"unhandled sign-fail files: {sorted(found - set(SIGN_FAIL))}"


def test_cose_wg_sign_pass_01_empty_map_protected(cose_dir: Path) -> None:
    # "Redo protected": the protected bucket is h'A0' (an empty map) and alg sits in the
    # unprotected bucket. It parses structurally. Our profile requires alg in the *protected*
    # header, so verify1_foreign refuses it (and its ES256 signature is not ours to check).
    ex = _example(cose_dir, "sign1-tests_sign-pass-01.json")
    msg = parse_sign1(bytes.fromhex(ex["output"]["cbor"]))
    assert msg.protected == b"\xa0"
    assert msg.alg is None and msg.content_type is None
    assert msg.unprotected == {1: -7, 4: b"11"}
    assert msg.payload == ex["input"]["plaintext"].encode()
    # RFC 9052 §4.4: an empty protected bucket enters the Sig_structure as h''.
    assert sig_structure(b"", msg.payload) == bytes.fromhex(ex["intermediates"]["ToBeSign_hex"])
    with pytest.raises(SignatureError):
        verify1_foreign(bytes.fromhex(ex["output"]["cbor"]), PK)


def test_cose_wg_sign_pass_02_external_aad(cose_dir: Path) -> None:
    ex = _example(cose_dir, "sign1-tests_sign-pass-02.json")
    msg = parse_sign1(bytes.fromhex(ex["output"]["cbor"]))
    assert msg.alg == -7  # ES256: parsed, not verified
    aad = bytes.fromhex(ex["input"]["sign0"]["external"])
    assert msg.to_be_signed(aad) == bytes.fromhex(ex["intermediates"]["ToBeSign_hex"])
    assert msg.payload == ex["input"]["plaintext"].encode()


def test_cose_wg_sign_pass_03_untagged(cose_dir: Path) -> None:
    # COSE allows an untagged COSE_Sign1 where the context implies the type; our profile always
    # requires tag 18, so the literal file is rejected. With the tag added it parses.
    ex = _example(cose_dir, "sign1-tests_sign-pass-03.json")
    untagged = bytes.fromhex(ex["output"]["cbor"])
    with pytest.raises(DecodeError):
        parse_sign1(untagged)
    msg = parse_sign1(b"\xd2" + untagged)
    assert msg.alg == -7
    assert msg.to_be_signed() == bytes.fromhex(ex["intermediates"]["ToBeSign_hex"])


# --------------------------------------------------------------------------------------------
# pycose
# --------------------------------------------------------------------------------------------


def _pycose_public() -> OKPKey:
    return OKPKey(crv=Ed25519, x=PK.raw)


def _pycose_sign(payload: bytes, content_type: str) -> bytes:
    msg = Sign1Message(
        phdr={Algorithm: EdDSA, CoseContentTypeHeader: str(content_type)},
        uhdr={},
        payload=payload,
        key=OKPKey(crv=Ed25519, x=PK.raw, d=SEED),
    )
    return msg.encode()


def test_our_token_verifies_with_pycose() -> None:
    evidence = _evidence()
    token = evidence.sign(KEY)
    assert token == sign1(KEY, ContentType.EVIDENCE, evidence.payload())

    msg = Sign1Message.decode(token)
    msg.key = _pycose_public()
    assert msg.verify_signature()
    assert msg.payload == evidence.payload()
    assert msg.phdr == {Algorithm: EdDSA, CoseContentTypeHeader: str(ContentType.EVIDENCE)}
    assert msg.uhdr == {}

    wrong = Sign1Message.decode(token)
    wrong.key = OKPKey(crv=Ed25519, x=OTHER_PK.raw)
    assert not wrong.verify_signature()


def test_pycose_token_verifies_with_ours() -> None:
    evidence = _evidence()
    token = _pycose_sign(evidence.payload(), ContentType.EVIDENCE)
    # Same bytes as ours: same protected header bytes, empty unprotected map, deterministic sig.
    assert parse_sign1(token).protected == protected_header(ContentType.EVIDENCE)
    assert token == evidence.sign(KEY)

    assert verify1(token, PK, ContentType.EVIDENCE) == evidence.payload()
    assert Evidence.verify(token, PK) == evidence
    with pytest.raises(ContentTypeError):
        verify1(token, PK, ContentType.CHALLENGE)
    with pytest.raises(SignatureError):
        verify1(token, OTHER_PK, ContentType.EVIDENCE)


def test_pycose_token_with_kid_needs_foreign_verify() -> None:
    msg = Sign1Message(
        phdr={Algorithm: EdDSA, CoseContentTypeHeader: str(ContentType.EVIDENCE)},
        uhdr={4: b"kid-1"},
        payload=_evidence().payload(),
        key=OKPKey(crv=Ed25519, x=PK.raw, d=SEED),
    )
    token = msg.encode()
    with pytest.raises(DecodeError):  # our profile: the unprotected header must be empty
        verify1(token, PK, ContentType.EVIDENCE)
    assert verify1_foreign(token, PK).unprotected == {4: b"kid-1"}


# --------------------------------------------------------------------------------------------
# python-cwt
# --------------------------------------------------------------------------------------------


def _cwt_public() -> Any:
    return cwt.COSEKey.new({1: 1, -1: 6, -2: PK.raw, 3: -8})  # kty OKP, crv Ed25519, alg EdDSA


def _cwt_private(kid: bytes | None = None) -> Any:
    params: dict[int, Any] = {1: 1, -1: 6, -2: PK.raw, -4: SEED, 3: -8}
    if kid is not None:
        params[2] = kid
    return cwt.COSEKey.new(params)


def _certs() -> list[DeviceCert | VerifierCert]:
    return [
        DeviceCert(
            issuer="manufacturer-1",
            issued_at=1_700_000_000,
            public_key=OTHER_PK,
            ueid=b"\x01" + bytes(range(16)),
            hwmodel="ACCEL-9",
            pod_class=2,
        ),
        VerifierCert(
            issuer="authority",
            verifier_id="verifier-eu-1",
            issued_at=1_700_000_000,
            expires_at=FAR_FUTURE,
            public_key=OTHER_PK,
            region="eu",
        ),
    ]


@pytest.mark.parametrize("cert", _certs(), ids=lambda c: type(c).__name__)
def test_our_cert_decodes_with_cwt(cert: DeviceCert | VerifierCert) -> None:
    token = cert.sign(KEY)
    # COSE layer: cwt verifies the COSE_Sign1 and returns our payload bytes.
    assert cwt.COSE.new().decode(token, _cwt_public()) == cert.payload()

    # CWT layer: cwt verifies and decodes the claims map. Our tokens carry no kid, and cwt's
    # default CWT context insists on one (verify_kid=True), so that check is switched off.
    ctx = cwt.CWT.new()
    ctx.cose.verify_kid = False
    assert ctx.decode(token, _cwt_public()) == cert.to_claims()

    # Under another key cwt refuses it.
    other = cwt.COSEKey.new({1: 1, -1: 6, -2: OTHER_PK.raw, 3: -8})
    with pytest.raises(cwt.VerifyError):
        ctx.decode(token, other)


@pytest.mark.parametrize("cert", _certs(), ids=lambda c: type(c).__name__)
def test_cwt_token_verifies_with_ours(cert: DeviceCert | VerifierCert) -> None:
    # Our exact profile: protected {1: -8, 3: <content type>}, empty unprotected, no kid.
    token = cwt.COSE.new().encode_and_sign(
        cert.payload(),
        _cwt_private(),
        protected={1: -8, 3: str(cert.CONTENT_TYPE)},
        unprotected={},
    )
    assert token == cert.sign(KEY)  # byte-identical to ours
    assert verify1(token, PK, cert.CONTENT_TYPE) == cert.payload()
    assert type(cert).verify(token, PK) == cert
    other_type = (
        ContentType.VERIFIER_CERT
        if cert.CONTENT_TYPE == ContentType.DEVICE_CERT
        else ContentType.DEVICE_CERT
    )
    with pytest.raises(ContentTypeError):
        verify1(token, PK, other_type)


def test_cwt_native_cwt_verifies_with_foreign_verify() -> None:
    # cwt.encode makes a real CWT: alg in protected, kid (from the key) in unprotected, no
    # content type, and it appends exp/nbf claims in insertion order (not deterministic CBOR).
    # That is not our profile, so only verify1_foreign accepts it.
    claims = _certs()[0].to_claims()
    token = cwt.encode(claims, _cwt_private(kid=b"device-1"))
    msg = verify1_foreign(token, PK)
    assert msg.alg == ALG_EDDSA
    assert msg.unprotected == {4: b"device-1"}
    decoded = cbor2.loads(msg.payload)
    assert {k: decoded[k] for k in claims} == claims
    with pytest.raises(ContentTypeError):
        verify1(token, PK, ContentType.DEVICE_CERT)
    with pytest.raises(SignatureError):
        verify1_foreign(token, OTHER_PK)


# --------------------------------------------------------------------------------------------
# Standard tooling reads our EAR (SPEC §6.8) and our EAT Evidence (§6.7)
# --------------------------------------------------------------------------------------------


def _ear() -> AttestationResult:
    return AttestationResult.of(
        verifier_id="verifier-eu-1",
        issued_at=1_800_000_000,
        nonce=bytes(range(32)),
        ueid=b"\x01" + bytes(range(100, 116)),
        status=32,
        vector=trustworthiness_vector([Reason.FIRMWARE_OUTDATED]),
        policy_id="attest-default-v1",
        reasons=(81,),
        verifier_build="attest test",
        evidence_digest=bytes(range(32)),
    )


def test_pycose_reads_our_ear() -> None:
    token = _ear().sign(KEY)
    msg = Sign1Message.decode(token)
    msg.key = _pycose_public()
    assert msg.verify_signature()
    claims = cbor2.loads(msg.payload)
    # an EAR of draft-ietf-rats-ear-04: its profile at the top, one appraisal with its status,
    # an AR4SI vector and its policy ids, attest's own profile and claims inside the appraisal
    assert claims[265] == "tag:ietf.org,2026:rats/ear#04"
    assert set(claims) == {6, 10, 265, 266, 1004}
    hem = claims[266]["hem"]
    assert hem[265] == "tag:attest.example,2026:hem-appraisal-v1"
    assert (hem[1000], hem[1001], hem[1003]) == (
        32,
        {0: 2, 1: 2, 2: 32, 4: 2},
        ["attest-default-v1"],
    )
    assert hem[-70018][1] == "verifier-eu-1" and hem[-70018][-70009] == [81]


def test_cwt_decodes_our_ear_as_a_cwt() -> None:
    ear = _ear()
    ctx = cwt.CWT.new()
    ctx.cose.verify_kid = False
    claims = ctx.decode(ear.sign(KEY), _cwt_public())
    assert claims == ear.to_claims()
    assert claims[265] == "tag:ietf.org,2026:rats/ear#04" and claims[1004][0] == "attest"


def test_our_evidence_is_an_eat_with_a_coswid_measurement() -> None:
    evidence = _evidence()
    claims = cwt.COSE.new().decode(evidence.sign(KEY), _cwt_public())
    eat = cbor2.loads(claims)
    assert eat[265] == "tag:attest.example,2026:evidence-v1"
    ((content_format, coswid),) = eat[273]
    tag = cbor2.loads(coswid)
    assert content_format == 258  # application/swid+cbor
    assert (tag[13], tag[14]) == ("1.4.2", 1)  # software-version, multipartnumeric
    assert tag[3][17][7] == [1, evidence.firmware_measurement]  # sha-256 of the image


def test_alg_choice_pycose_knows_only_eddsa() -> None:
    """SPEC §4.3: why −8 and not RFC 9864's −19. If pycose learns −19, revisit the choice."""
    from pycose.algorithms import CoseAlgorithm
    from pycose.exceptions import CoseException

    assert CoseAlgorithm.from_id(-8) is EdDSA
    with pytest.raises(CoseException, match="Unknown"):
        CoseAlgorithm.from_id(-19)
    # python-cwt signs and verifies both
    for alg in (-8, -19):
        key = cwt.COSEKey.new({1: 1, -1: 6, -2: PK.raw, -4: SEED, 3: alg})
        public = cwt.COSEKey.new({1: 1, -1: 6, -2: PK.raw, 3: alg})
        token = cwt.COSE.new().encode_and_sign(b"ear", key, protected={1: alg}, unprotected={})
        assert cwt.COSE.new().decode(token, public) == b"ear"
    # a −19 token is not ours: the protected header is a per-type constant with −8 (§4.4)
    signed = cwt.COSE.new().encode_and_sign(
        _ear().payload(),
        cwt.COSEKey.new({1: 1, -1: 6, -2: PK.raw, -4: SEED, 3: -19}),
        protected={1: -19, 3: str(ContentType.RESULT)},
        unprotected={},
    )
    with pytest.raises(SignatureError):
        verify1(signed, PK, ContentType.RESULT)
