"""Ed25519 against third-party vectors (Wycheproof, CCTV, SUPERCOP ``sign.input``).

The vector files are read in place from ``../shared/external/`` (see PROVENANCE.md there); they
are never copied into this repository. Each file is checked in one loop that collects every
failing case, so a regression reports all broken cases at once without creating thousands of
test items.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing
import pytest

import attest.keys
from attest.keys import SigningKey, ed25519_verify

EXTERNAL = Path(__file__).resolve().parents[1].parent / "shared" / "external"

if not EXTERNAL.is_dir():
    pytest.skip(
        f"external test material not found at {EXTERNAL} (expected ../shared/external/ "
        "next to the repository; see PROVENANCE.md there)",
        allow_module_level=True,
    )

WYCHEPROOF = EXTERNAL / "wycheproof_ed25519_test.json"
CCTV = EXTERNAL / "cctv_ed25519vectors.json"
SIGN_INPUT = EXTERNAL / "ed25519_sign.input"


def _wycheproof_cases() -> list[dict[str, Any]]:
    """Every Wycheproof test, flattened, with its group's public key attached as ``pk``."""
    data = json.loads(WYCHEPROOF.read_text())
    cases = []
    for group in data["testGroups"]:
        pk = bytes.fromhex(group["publicKey"]["pk"])
        for test in group["tests"]:
            cases.append({**test, "pk": pk})
    return cases


def _libsodium_accepts(key: bytes, msg: bytes, sig: bytes) -> bool:
    """libsodium's own answer, straight through PyNaCl (the reference for CCTV)."""
    try:
        nacl.signing.VerifyKey(key).verify(msg, sig)
    except nacl.exceptions.BadSignatureError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Wycheproof
# --------------------------------------------------------------------------------------------


def test_wycheproof_all_cases() -> None:
    cases = _wycheproof_cases()
    assert len(cases) == 151, f"expected 151 Wycheproof cases, found {len(cases)}"
    assert {c["result"] for c in cases} <= {"valid", "invalid"}

    failures = []
    for c in cases:
        expected = c["result"] == "valid"
        got = ed25519_verify(c["pk"], bytes.fromhex(c["msg"]), bytes.fromhex(c["sig"]))
        if got is not expected:
            failures.append(f"tcId {c['tcId']} ({c['comment']!r}, {c['flags']}): got {got}")
    n_valid = sum(c["result"] == "valid" for c in cases)
    assert not failures, (
        f"{len(failures)} of {len(cases)} Wycheproof cases disagree "
        f"({n_valid} expected valid):\n" + "\n".join(failures)
    )


def test_wycheproof_rfc8032_vectors_present() -> None:
    # tcId 80-83 are RFC 8032 TEST 1, 2, 3 and 1024 (PROVENANCE.md); they must all be valid.
    by_id = {c["tcId"]: c for c in _wycheproof_cases()}
    for tc_id in (80, 81, 82, 83):
        c = by_id[tc_id]
        assert c["result"] == "valid"
        assert ed25519_verify(c["pk"], bytes.fromhex(c["msg"]), bytes.fromhex(c["sig"]))


class _ReachedLibsodium(Exception):
    pass


def test_wrong_length_signatures_never_reach_libsodium(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def guard(signature: bytes, message: bytes, public_key: bytes) -> bool:
        calls.append(len(signature) + len(message))
        raise _ReachedLibsodium

    # attest.keys calls libsodium's crypto_sign_verify_detached through this one name.
    monkeypatch.setattr(attest.keys, "_verify_detached", guard)

    # The guard is live: a well-formed 64-byte signature does reach it.
    with pytest.raises(_ReachedLibsodium):
        ed25519_verify(bytes(32), b"msg", bytes(64))
    assert calls == [64 + 3]
    calls.clear()

    wrong_length = [c for c in _wycheproof_cases() if len(c["sig"]) // 2 != 64]
    assert len(wrong_length) == 12, (
        f"expected 12 wrong-length Wycheproof cases, got {len(wrong_length)}"
    )
    for c in wrong_length:
        assert c["result"] == "invalid", c["tcId"]
        assert ed25519_verify(c["pk"], bytes.fromhex(c["msg"]), bytes.fromhex(c["sig"])) is False

    pk = bytes(32)
    for sig in (b"", b"\x00", bytes(63), bytes(65), bytes(128)):
        assert ed25519_verify(pk, b"msg", sig) is False, len(sig)
    # Right length, wrong type: rejected too (no bytearray / memoryview / str smuggling).
    for sig in (bytearray(64), memoryview(bytes(64)), "\x00" * 64):
        assert ed25519_verify(pk, b"msg", sig) is False, type(sig)  # type: ignore[arg-type]
    # Wrong-length or wrong-type public keys are rejected before libsodium as well.
    for key in (bytes(31), bytes(33), bytearray(32)):
        assert ed25519_verify(key, b"msg", bytes(64)) is False  # type: ignore[arg-type]

    assert calls == [], f"libsodium was called {len(calls)} time(s) for malformed input"


# --------------------------------------------------------------------------------------------
# CCTV (C2SP) edge cases
# --------------------------------------------------------------------------------------------


def test_cctv_matches_libsodium_exactly() -> None:
    vectors = json.loads(CCTV.read_text())
    assert len(vectors) == 914, f"expected 914 CCTV vectors, found {len(vectors)}"

    disagreements = []
    accepted = []
    for v in vectors:
        key, sig = bytes.fromhex(v["key"]), bytes.fromhex(v["sig"])
        msg = v["msg"].encode("utf-8")  # CCTV messages are text ("ed25519vectors N"), not hex
        ours = ed25519_verify(key, msg, sig)
        if ours is not _libsodium_accepts(key, msg, sig):
            disagreements.append(f"number {v['number']} (flags {v['flags']}): ours={ours}")
        if ours:
            accepted.append(v)

    assert not disagreements, (
        f"{len(disagreements)} of {len(vectors)} CCTV vectors disagree with libsodium:\n"
        + "\n".join(disagreements)
    )
    assert len(accepted) == 43, (
        f"expected libsodium to accept 43 of 914 CCTV vectors, it accepted {len(accepted)}: "
        f"{sorted(v['number'] for v in accepted)}"
    )
    # Every accepted vector carries no flag other than low_order_component_{R,A}. (One of the 43,
    # number 305, has ``"flags": null``: a plain valid signature with no edge case at all.)
    allowed = {"low_order_component_R", "low_order_component_A"}
    odd = [(v["number"], v["flags"]) for v in accepted if not set(v["flags"] or ()) <= allowed]
    assert not odd, f"accepted vectors with unexpected flags: {odd}"


# --------------------------------------------------------------------------------------------
# SUPERCOP sign.input: deterministic signing
# --------------------------------------------------------------------------------------------


def test_sign_input_resigns_byte_for_byte() -> None:
    lines = SIGN_INPUT.read_text().splitlines()
    assert len(lines) == 1024, f"expected 1024 lines in sign.input, found {len(lines)}"

    failures = []
    for lineno, line in enumerate(lines, start=1):
        fields = line.split(":")
        assert len(fields) == 5 and fields[4] == "", f"line {lineno}: unexpected format"
        sk_pk, pk, msg, sig_msg = (bytes.fromhex(f) for f in fields[:4])
        assert len(sk_pk) == 64 and sk_pk[32:] == pk and sig_msg[64:] == msg, f"line {lineno}"
        expected_sig = sig_msg[:64]

        key = SigningKey(nacl.signing.SigningKey(sk_pk[:32]))
        problems = []
        if key.public_key.raw != pk:
            problems.append("public key differs")
        if key.sign(msg) != expected_sig:
            problems.append("signature differs")
        if not ed25519_verify(pk, msg, expected_sig):
            problems.append("expected signature does not verify")
        if problems:
            failures.append(f"line {lineno} (msg {len(msg)} bytes): {', '.join(problems)}")

    assert not failures, f"{len(failures)} of {len(lines)} sign.input lines fail:\n" + "\n".join(
        failures
    )


def test_every_small_order_encoding_spec_lists_is_refused_as_key_and_as_r() -> None:
    """SPEC §4.3's list, read from SPEC.md: each encoding, with either sign bit, is refused as
    the public key and as R, including the identity forgery that satisfies the equation."""
    import re

    spec = (Path(__file__).resolve().parents[1] / "SPEC.md").read_text(encoding="utf-8")
    listed = re.findall(r"^([0-9a-f]{64})   ", spec, re.M)
    assert len(listed) == 7
    good = SigningKey.derive_insecure_for_tests("small-order")
    message = b"any message at all"
    honest = good.sign(message)
    for hexed in listed:
        for sign_bit in (0, 0x80):
            e = bytes.fromhex(hexed)
            e = e[:31] + bytes([e[31] | sign_bit])
            assert not ed25519_verify(e, message, e + bytes(32))  # A = R = E, S = 0
            assert not ed25519_verify(e, message, honest)
            assert not ed25519_verify(good.public_key.raw, message, e + honest[32:])
    assert ed25519_verify(good.public_key.raw, message, honest)
