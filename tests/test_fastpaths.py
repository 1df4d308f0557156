"""The fast paths of the codec and the schema against the general code they shortcut.

Each fast path may only ever accept what the general path accepts, with the same result; on
anything else it must hand over to the general path (which alone decides and raises). These
tests run both on every published vector and on thousands of mutations of real tokens.
"""

from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from attest.codec import _fast as cose_fast
from attest.codec import cose
from attest.codec.cbor import decode, encode
from attest.errors import DecodeError
from attest.messages import _fast as schema_fast
from attest.messages.attestation import AttestationResult, Challenge, Evidence, Meters
from attest.messages.certs import DeviceCert
from attest.messages.content import ContentType
from attest.messages.schema import parse_claims, parse_claims_general
from attest.testvectors.world import ROUND1_S, ROUND1_SIGN_S, build_world

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def _vector_tokens() -> list[bytes]:
    tokens = []
    for group in json.loads((VECTORS / "cose_sign1.json").read_text())["testGroups"]:
        tokens += [bytes.fromhex(t["token"]) for t in group["tests"]]
    for group in json.loads((VECTORS / "evidence_appraisal.json").read_text())["testGroups"]:
        tokens += [bytes.fromhex(t["evidence"]) for t in group["tests"]]
    for group in json.loads((VECTORS / "session.json").read_text())["testGroups"]:
        tokens += [bytes.fromhex(t["resultToken"]) for t in group["tests"] if "resultToken" in t]
    return tokens


def _honest_tokens() -> list[bytes]:
    world = build_world()
    chip = world.honest_chip("hx100-a")
    cert = world.verifiers["kl-1"].cert
    out = []
    for i in range(4):
        _, token = world.challenge(f"fast/{i}")
        out.append(chip.answer(chip.accept_challenge(cert, token, ROUND1_S), ROUND1_SIGN_S))
    return [*out, token, chip.chain.device_cert, chip.chain.manufacturer_cert]


def _outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", fn(*args))
    except DecodeError:
        return ("DecodeError", None)


def _mutations(token: bytes, rng: random.Random, n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        b = bytearray(token)
        kind = rng.randrange(4)
        pos = rng.randrange(len(b))
        if kind == 0:
            b[pos] = rng.randrange(256)
        elif kind == 1:
            del b[pos : pos + rng.randrange(1, 4)]
        elif kind == 2:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3)))
        else:
            b = b[:pos]
        out.append(bytes(b))
    return out


def test_sign1_fast_path_matches_general_parser_on_vectors_and_mutations() -> None:
    rng = random.Random(6)
    tokens = _vector_tokens() + _honest_tokens()
    candidates = tokens + [m for t in _honest_tokens() for m in _mutations(t, rng, 400)]
    fast_hits = 0
    for token in candidates:
        fast = cose_fast.parse_profile(token)
        general = _outcome(cose.parse_general, token)
        if fast is not None:
            fast_hits += 1
            assert general == ("ok", fast), token.hex()
        assert _outcome(cose.parse_sign1, token) == general, token.hex()
    assert fast_hits > 100  # the fast path is actually exercised


def test_sig_structure_and_sign1_match_the_generic_encoding() -> None:
    assert cose._sig_structure is cose_fast.sig_structure  # the fast path is installed here
    protected = cose.protected_header(ContentType.EVIDENCE)
    for n in (0, 1, 23, 24, 255, 256, 1000, 65535, 65536):
        payload = bytes(range(256)) * (n // 256) + bytes(n % 256)
        for aad in (b"", b"x", bytes(24)):
            expected = encode(["Signature1", protected, aad, payload])
            assert cose.sig_structure(protected, payload, aad) == expected
    key = build_world().device_key("hx100-a")
    payload = encode({1: "x"})
    token = cose.sign1(key, ContentType.RESULT, payload)
    protected = cose.protected_header(ContentType.RESULT)
    signature = token[-64:]
    assert token == b"\xd2" + encode([protected, {}, payload, signature])


def _payloads() -> list[bytes]:
    out = []
    for token in _vector_tokens() + _honest_tokens():
        with contextlib.suppress(DecodeError):
            out.append(cose.parse_general(token).payload)
    return out


@pytest.mark.parametrize("cls", [Evidence, Challenge, DeviceCert, AttestationResult])
def test_compiled_payload_parser_matches_strict_decode_plus_schema(cls: type) -> None:
    rng = random.Random(7)
    payloads = _payloads()
    honest = [p for p in payloads if _outcome(lambda x: cls.from_claims(decode(x)), p)[0] == "ok"]
    candidates = payloads + [m for p in honest[:6] for m in _mutations(p, rng, 300)]
    # Non-deterministic variants of honest payloads: these must all be rejected.
    for p in honest[:3]:
        claims = decode(p)
        candidates.append(p + b"\x00")  # trailing byte
        candidates.append(encode(dict(reversed(list(claims.items())))))  # encode sorts: valid
        raw = bytearray(p)
        raw[0] = 0xB8
        candidates.append(bytes(raw[:1]) + bytes([len(claims)]) + bytes(raw[1:]))  # long head
    fast_hits = 0
    for payload in candidates:
        general = _outcome(lambda x: cls.from_claims(decode(x)), payload)
        fast = schema_fast.from_payload(cls, payload)
        if fast is not None:
            fast_hits += 1
            assert general == ("ok", fast), payload.hex()
        assert _outcome(cls.from_payload, payload) == general, payload.hex()
    assert fast_hits >= len(honest)


def test_compiled_parse_claims_matches_general_path() -> None:
    good = {1: 5, 2: 6, 3: 7}
    for claims in (
        good,
        {1: 5, 2: 6, 3: -1},
        {1: 5, 2: 6, 3: True},
        {1: 5, 2: 6, 3: 1 << 64},
        {1: 5, 2: 6},
        {1: 5, 2: 6, 3: 7, 4: 8},
        {3: 7, 2: 6, 1: 5},
        good,
    ):
        for _ in range(2):  # the second time through the compiled layout
            assert _outcome(parse_claims, claims, Meters.FIELDS) == _outcome(
                parse_claims_general, claims, Meters.FIELDS
            )


def test_assembled_envelopes_equal_the_reference_encoder() -> None:
    protected = cose.protected_header(ContentType.CHALLENGE)
    for n in (0, 23, 24, 255, 256, 65535):
        payload = bytes(n)
        for sig in (bytes(64), bytes(3)):
            assert cose_fast.envelope(protected, payload, sig) == cose._plain_envelope(
                protected, payload, sig
            )
            assert cose_fast.sig_structure(protected, payload, sig) == cose._plain_sig_structure(
                protected, payload, sig
            )


def test_the_switch_turns_every_fast_path_off() -> None:
    """With ATTEST_FAST_PATHS=0 the reference code alone passes every published vector."""
    import os
    import subprocess
    import sys

    code = (
        "from attest.codec import cose\n"
        "from attest.messages import schema\n"
        "assert cose._profile is None and schema._fast_payload is None\n"
        "from pathlib import Path\n"
        "from attest.testvectors.check import check_dir\n"
        f"failed = sum(r.failed for r in check_dir(Path({str(VECTORS)!r})))\n"
        "raise SystemExit(1 if failed else 0)\n"
    )
    env = {**os.environ, "ATTEST_FAST_PATHS": "0"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
