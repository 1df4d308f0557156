"""Deterministic CBOR, strict decoding, COSE_Sign1 profile checks and key hygiene."""

from __future__ import annotations

import contextlib
import copy
import os
import pickle
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
import nacl.signing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attest.codec.cbor import MAX_DEPTH, MAX_MESSAGE_BYTES, decode, encode
from attest.codec.cose import parse_sign1, protected_header, sign1, verify1
from attest.errors import AttestError, ContentTypeError, DecodeError, SignatureError
from attest.keys import SigningKey, read_secret_key, write_secret_key
from attest.messages import Evidence, Meters
from attest.messages.attestation import Firmware
from attest.messages.content import ContentType
from attest.registry import content_types

KEY = SigningKey.derive_insecure_for_tests("test-codec")
PK = KEY.public_key


def _evidence() -> Evidence:
    return Evidence(
        verifier_id="verifier-eu-1",
        nonce=bytes(range(32)),
        ueid=b"\x01" + bytes(range(16)),
        uptime_s=86_400,
        dbgstat=3,
        bootcount=12,
        firmware=Firmware((2, 0, 17), bytes(range(32, 64))),
        attest_counter=99,
        meters=Meters(flops=2**60, energy_mj=5_000_000, interconnect_bytes=2**45),
    )


EVIDENCE_TOKEN = _evidence().sign(KEY)


# --------------------------------------------------------------------------------------------
# An independent RFC 8949 §4.2.1 deterministic encoder (reference for the property test)
# --------------------------------------------------------------------------------------------


def _ref_head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for extra, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * width):
            return bytes([major << 5 | extra]) + n.to_bytes(width, "big")
    raise ValueError("argument does not fit in 64 bits")


def ref_encode(v: Any) -> bytes:
    """Shortest heads, definite lengths, map entries sorted by their encoded keys' bytes."""
    if v is False:
        return b"\xf4"
    if v is True:
        return b"\xf5"
    if v is None:
        return b"\xf6"
    if type(v) is int:
        return _ref_head(0, v) if v >= 0 else _ref_head(1, -1 - v)
    if type(v) is bytes:
        return _ref_head(2, len(v)) + v
    if type(v) is str:
        raw = v.encode("utf-8")
        return _ref_head(3, len(raw)) + raw
    if type(v) is list:
        return _ref_head(4, len(v)) + b"".join(ref_encode(x) for x in v)
    if type(v) is dict:
        entries = sorted((ref_encode(k), ref_encode(x)) for k, x in v.items())
        return _ref_head(5, len(v)) + b"".join(k + x for k, x in entries)
    raise TypeError(type(v).__name__)


def _same(a: Any, b: Any) -> bool:
    """Structural equality that also compares types (so ``True`` is not ``1``)."""
    if type(a) is not type(b):
        return False
    if type(a) is list:
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _depth(v: Any) -> int:
    """Item depth as attest counts it: the top-level item is depth 1."""
    if type(v) is list:
        return 1 + max((_depth(x) for x in v), default=0)
    if type(v) is dict:
        return 1 + max((_depth(x) for x in v.values()), default=0)
    return 1


def _nest(inner: Any, levels: int) -> Any:
    for _ in range(levels):
        inner = [inner]
    return inner


# --------------------------------------------------------------------------------------------
# Deterministic encoding
# --------------------------------------------------------------------------------------------

# RFC 8949 Appendix A examples whose types our wire allows (no floats, tags, undefined, simple).
RFC8949_APPENDIX_A: list[tuple[Any, str]] = [
    (0, "00"),
    (1, "01"),
    (10, "0a"),
    (23, "17"),
    (24, "1818"),
    (25, "1819"),
    (100, "1864"),
    (1000, "1903e8"),
    (1000000, "1a000f4240"),
    (1000000000000, "1b000000e8d4a51000"),
    (18446744073709551615, "1bffffffffffffffff"),
    (-18446744073709551616, "3bffffffffffffffff"),
    (-1, "20"),
    (-10, "29"),
    (-100, "3863"),
    (-1000, "3903e7"),
    (False, "f4"),
    (True, "f5"),
    (None, "f6"),
    (b"", "40"),
    (b"\x01\x02\x03\x04", "4401020304"),
    ("", "60"),
    ("a", "6161"),
    ("IETF", "6449455446"),
    ('"\\', "62225c"),
    ("\u00fc", "62c3bc"),
    ("\u6c34", "63e6b0b4"),
    ("\U00010151", "64f0908591"),
    ([], "80"),
    ([1, 2, 3], "83010203"),
    ([1, [2, 3], [4, 5]], "8301820203820405"),
    (list(range(1, 26)), "98190102030405060708090a0b0c0d0e0f101112131415161718181819"),
    ({}, "a0"),
    ({1: 2, 3: 4}, "a201020304"),
    ({"a": 1, "b": [2, 3]}, "a26161016162820203"),
    (["a", {"b": "c"}], "826161a161626163"),
    (
        {"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"},
        "a56161614161626142616361436164614461656145",
    ),
]


@pytest.mark.parametrize(
    ("value", "hex_"), RFC8949_APPENDIX_A, ids=[h for _, h in RFC8949_APPENDIX_A]
)
def test_rfc8949_appendix_a(value: Any, hex_: str) -> None:
    assert encode(value) == bytes.fromhex(hex_)
    assert _same(decode(bytes.fromhex(hex_)), value)


@pytest.mark.parametrize(
    ("value", "hex_"),
    [
        # RFC 8949 §4.2.1: bytewise order of encoded keys. 256 is 0x19 0100, -1 is 0x20, so 256
        # sorts first; the old length-first rule (cbor2 canonical=True) would put -1 first.
        ({-1: 0, 256: 0}, "a2190100002000"),
        ({256: 0, -1: 0}, "a2190100002000"),  # insertion order does not matter
        ({-1: 0, 100: 0}, "a218640020 00".replace(" ", "")),
        ({"aa": 0, "b": 0}, "a261620062616100"),  # shorter string first (its head is smaller)
        ({"a": 0, b"a": 0, 0: 0, -1: 0}, "a40000200041610061610 0".replace(" ", "")),
        ({-24: 0, -25: 0}, "a23700381800"),
        ({b"\x02": 0, b"\x01\x00": 0}, "a241020042010000"),
    ],
)
def test_bytewise_key_order(value: dict[Any, Any], hex_: str) -> None:
    expected = bytes.fromhex(hex_)
    assert encode(value) == expected
    assert encode(value) == ref_encode(value)
    assert decode(expected) == value


def test_key_order_differs_from_cbor2_canonical() -> None:
    value = {-1: 0, 256: 0}
    length_first = cbor2.dumps(value, canonical=True)
    assert length_first != encode(value)
    with pytest.raises(DecodeError):
        decode(length_first)


def test_shortest_integer_heads() -> None:
    for n, width in ((23, 1), (24, 2), (255, 2), (256, 3), (65535, 3), (65536, 5)):
        assert len(encode(n)) == width, n
        assert len(encode(-1 - n)) == width, -1 - n
    assert len(encode(2**32 - 1)) == 5
    assert len(encode(2**32)) == 9


@pytest.mark.parametrize("value", [2**64, -(2**64) - 1, 1.5, float("nan"), {1, 2}, object()])
def test_encode_refuses_values_outside_the_wire_types(value: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        encode(value)


def test_encode_refuses_bad_keys_and_depth() -> None:
    with pytest.raises(TypeError):
        encode({True: 1})
    with pytest.raises(TypeError):
        encode({(1,): 1})
    encode(_nest(0, MAX_DEPTH - 1))
    with pytest.raises(ValueError):
        encode(_nest(0, MAX_DEPTH))


# --------------------------------------------------------------------------------------------
# Strict decoding
# --------------------------------------------------------------------------------------------

REJECTED: dict[str, str] = {
    # non-shortest heads
    "uint 1 in 1+1 bytes": "1801",
    "uint 1 in 1+2 bytes": "190001",
    "uint 1 in 1+4 bytes": "1a00000001",
    "uint 1 in 1+8 bytes": "1b0000000000000001",
    "uint 255 in 1+2 bytes": "1900ff",
    "nint -1 in 1+1 bytes": "3800",
    "bstr length in 1+1 bytes": "580141",
    "tstr length in 1+1 bytes": "780161",
    "array length in 1+1 bytes": "9800",
    "map length in 1+1 bytes": "b800",
    # reserved / malformed heads
    "reserved additional info 28": "1c",
    "lone break": "ff",
    "truncated uint": "19 01",
    "truncated bstr": "4301",
    "array missing an item": "8201",
    # indefinite lengths
    "indefinite array (empty)": "9fff",
    "indefinite array": "9f0102ff",
    "indefinite map (empty)": "bfff",
    "indefinite map": "bf0102ff",
    "indefinite bstr": "5f4101ff",
    "indefinite tstr": "7f6161ff",
    # maps
    "duplicate key": "a201020103",
    "duplicate key same value": "a201020102",
    "duplicate key via true == 1": "a20100f500",
    "keys out of order": "a202010101",
    "keys length-first not bytewise": "a2200019010000",
    "bool map key": "a1f500",
    "null map key": "a1f600",
    "array map key": "a1810000",
    "map map key": "a1a0 00",
    # trailing data
    "trailing byte": "0000",
    "trailing after array": "8001",
    # floats
    "half float": "f93c00",
    "single float": "fa47c35000",
    "double float": "fb3ff199999999999a",
    "float zero": "f90000",
    # tags
    "tag 0 datetime string": "c074323031332d30332d32315432303a30343a30305a",
    "tag 1 epoch": "c11a514b67b0",
    "tag 2 bignum small": "c24101",
    "tag 2 bignum 2^64": "c249010000000000000000",
    "tag 3 negative bignum": "c349010000000000000000",
    "tag 18 inside payload": "d28440a04040",
    "tag 24 embedded cbor": "d81841 00",
    "tag 28/29 shared self-reference": "d81c81d81d00",
    "tag 258 set": "d90102820102",
    "tag 55799 self-describe": "d9d9f700",
    "tag inside array": "81c11a514b67b0",
    # simple values
    "undefined": "f7",
    "simple 16": "f0",
    "simple 255": "f8ff",
    # UTF-8
    "invalid utf-8": "62c328",
    "overlong utf-8": "62c080",
    "utf-8 surrogate": "63eda080",
    "truncated utf-8": "61c3",
    # sizes beyond the input
    "huge bstr length": "5bffffffffffffffff",
    "huge array length": "9bffffffffffffffff",
}


@pytest.mark.parametrize("hex_", list(REJECTED.values()), ids=list(REJECTED))
def test_strict_decode_rejects(hex_: str) -> None:
    with pytest.raises(DecodeError):
        decode(bytes.fromhex(hex_.replace(" ", "")))


def test_decode_rejects_empty_and_non_bytes() -> None:
    with pytest.raises(DecodeError):
        decode(b"")
    for data in (bytearray(b"\x00"), memoryview(b"\x00"), "00", None, 0, [0]):
        with pytest.raises(DecodeError):
            decode(data)  # type: ignore[arg-type]


def test_decode_depth_limit() -> None:
    # Item depth: the top-level item is depth 1, so MAX_DEPTH - 1 arrays around a scalar (or
    # MAX_DEPTH arrays with an empty innermost one) is the deepest accepted.
    for ok in (_nest(0, MAX_DEPTH - 1), _nest([], MAX_DEPTH - 1), _nest({}, MAX_DEPTH - 1)):
        assert _depth(ok) == MAX_DEPTH
        assert decode(ref_encode(ok)) == ok
    for too_deep in (_nest(0, MAX_DEPTH), _nest([], MAX_DEPTH), _nest({1: 0}, MAX_DEPTH - 1)):
        assert _depth(too_deep) == MAX_DEPTH + 1
        with pytest.raises(DecodeError):
            decode(ref_encode(too_deep))
    # Far deeper than cbor2's own recursion guard, within the size limit: still DecodeError.
    with pytest.raises(DecodeError):
        decode(b"\x81" * (MAX_MESSAGE_BYTES - 1) + b"\x00")
    with pytest.raises(DecodeError):
        decode(b"\xc6" * (MAX_MESSAGE_BYTES - 1) + b"\x00")


def test_decode_size_limit() -> None:
    def bstr_of_total_length(total: int) -> bytes:
        data = b"\x59" + (total - 3).to_bytes(2, "big") + b"\xab" * (total - 3)
        assert len(data) == total
        return data

    assert len(decode(bstr_of_total_length(MAX_MESSAGE_BYTES))) == MAX_MESSAGE_BYTES - 3
    with pytest.raises(DecodeError):
        decode(bstr_of_total_length(MAX_MESSAGE_BYTES + 1))
    with pytest.raises(DecodeError):
        decode(b"\x00" * (MAX_MESSAGE_BYTES + 1))
    with pytest.raises(DecodeError):
        decode(encode(b"x" * 100), max_bytes=100)
    with pytest.raises(DecodeError):
        parse_sign1(b"\xd2" + b"\x00" * MAX_MESSAGE_BYTES)


# --------------------------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------------------------

INTS = st.integers(min_value=-(2**64), max_value=2**64 - 1)
KEYS = st.one_of(INTS, st.binary(max_size=12), st.text(max_size=12))
SCALARS = st.one_of(INTS, st.binary(max_size=40), st.text(max_size=20), st.booleans(), st.none())
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(KEYS, children, max_size=5)
    ),
    max_leaves=40,
).filter(lambda v: _depth(v) <= MAX_DEPTH)

# Near-misses are more interesting than uniform noise: random bytes, random bytes behind a
# COSE_Sign1 head, and truncated / spliced pieces of a real token.
EVIDENCE_CLAIM_KEYS = sorted(_evidence().to_claims())
NOISE = st.one_of(
    st.binary(max_size=300),
    VALUES.map(encode),  # well-formed CBOR of the wrong shape
    st.dictionaries(st.sampled_from(EVIDENCE_CLAIM_KEYS), VALUES, max_size=12).map(encode),
    st.binary(max_size=300).map(lambda b: b"\xd2\x84" + b),
    st.tuples(st.integers(0, len(EVIDENCE_TOKEN)), st.binary(max_size=8)).map(
        lambda t: EVIDENCE_TOKEN[: t[0]] + t[1]
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(VALUES)
def test_roundtrip(value: Any) -> None:
    data = encode(value)
    assert _same(decode(data), value)
    assert encode(decode(data)) == data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(VALUES)
def test_encode_matches_reference_encoder(value: Any) -> None:
    assert encode(value) == ref_encode(value)


def _raises_only_attest_errors(fn: Callable[[bytes], Any], data: bytes) -> None:
    # Any exception that is not an AttestError propagates and fails the test with its traceback.
    with contextlib.suppress(AttestError):
        fn(data)


@settings(max_examples=400, deadline=None)
@given(NOISE)
def test_arbitrary_bytes_raise_only_attest_errors(data: bytes) -> None:
    _raises_only_attest_errors(decode, data)
    _raises_only_attest_errors(parse_sign1, data)
    _raises_only_attest_errors(Evidence.from_payload, data)
    _raises_only_attest_errors(lambda d: Evidence.verify(d, PK), data)
    _raises_only_attest_errors(lambda d: verify1(d, PK, ContentType.EVIDENCE), data)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_one_byte_mutation_never_verifies(data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(EVIDENCE_TOKEN) - 1), label="position")
    new = data.draw(st.integers(0, 255).filter(lambda b: b != EVIDENCE_TOKEN[position]))
    mutated = EVIDENCE_TOKEN[:position] + bytes([new]) + EVIDENCE_TOKEN[position + 1 :]
    with pytest.raises((SignatureError, DecodeError, ContentTypeError)):
        Evidence.verify(mutated, PK)


def test_every_single_bit_flip_fails() -> None:
    # Exhaustive complement to the property test above: all 8 * len(token) single-bit flips.
    assert Evidence.verify(EVIDENCE_TOKEN, PK) == _evidence()
    outcomes: dict[str, int] = {}
    for position in range(len(EVIDENCE_TOKEN)):
        for bit in range(8):
            mutated = bytearray(EVIDENCE_TOKEN)
            mutated[position] ^= 1 << bit
            try:
                Evidence.verify(bytes(mutated), PK)
            except (SignatureError, DecodeError, ContentTypeError) as exc:
                outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
            else:
                pytest.fail(f"bit {bit} of byte {position} flipped and the token still verifies")
    assert sum(outcomes.values()) == 8 * len(EVIDENCE_TOKEN)


# --------------------------------------------------------------------------------------------
# COSE_Sign1 profile
# --------------------------------------------------------------------------------------------


def _fields(token: bytes) -> list[Any]:
    return cbor2.loads(token[1:])


def _tagged(fields: list[Any]) -> bytes:
    return b"\xd2" + encode(fields)


def test_domain_separation_by_content_type() -> None:
    payload = _evidence().payload()
    as_challenge = sign1(KEY, ContentType.CHALLENGE, payload)
    assert Evidence.from_payload(verify1(as_challenge, PK, ContentType.CHALLENGE)) == _evidence()
    with pytest.raises(ContentTypeError):
        verify1(as_challenge, PK, ContentType.EVIDENCE)
    with pytest.raises(ContentTypeError):
        Evidence.verify(as_challenge, PK)
    # Every pair of distinct message types is separated.
    for signed_as in content_types():
        token = sign1(KEY, signed_as, payload)
        for expected in content_types():
            if expected == signed_as:
                assert verify1(token, PK, expected) == payload
            else:
                with pytest.raises(ContentTypeError):
                    verify1(token, PK, expected)


def test_relabelled_protected_header_breaks_signature() -> None:
    # Swapping in the EVIDENCE protected header passes the content-type check, but the signature
    # was made over the CHALLENGE header, so it fails.
    fields = _fields(sign1(KEY, ContentType.CHALLENGE, _evidence().payload()))
    fields[0] = protected_header(ContentType.EVIDENCE)
    with pytest.raises(SignatureError):
        Evidence.verify(_tagged(fields), PK)


def test_extra_protected_header_is_content_type_error() -> None:
    fields = _fields(EVIDENCE_TOKEN)
    fields[0] = encode({1: -8, 3: str(ContentType.EVIDENCE), 4: b"kid"})
    with pytest.raises(ContentTypeError):
        Evidence.verify(_tagged(fields), PK)


@pytest.mark.parametrize("length", [0, 32, 63, 65, 128])
def test_wrong_length_signature_is_signature_error(length: int) -> None:
    fields = _fields(EVIDENCE_TOKEN)
    signature = fields[3]
    fields[3] = (signature * 3)[:length]
    with pytest.raises(SignatureError):
        Evidence.verify(_tagged(fields), PK)


def test_non_empty_unprotected_header_rejected() -> None:
    fields = _fields(EVIDENCE_TOKEN)
    fields[1] = {4: b"kid"}
    with pytest.raises(DecodeError):
        Evidence.verify(_tagged(fields), PK)


def test_untagged_and_wrongly_tagged_rejected() -> None:
    with pytest.raises(DecodeError):
        Evidence.verify(EVIDENCE_TOKEN[1:], PK)
    with pytest.raises(DecodeError):
        parse_sign1(EVIDENCE_TOKEN[1:])
    with pytest.raises(DecodeError):
        parse_sign1(b"\xd8\x12" + EVIDENCE_TOKEN[1:])  # tag 18 in a non-shortest head
    with pytest.raises(DecodeError):
        parse_sign1(b"\xd1" + EVIDENCE_TOKEN[1:])  # tag 17 (COSE_Mac0)
    with pytest.raises(DecodeError):
        parse_sign1(b"\xd2" + EVIDENCE_TOKEN)  # tag 18 twice


@pytest.mark.parametrize(
    "mutate",
    [
        lambda f: f[:3],  # three items
        lambda f: [*f, b""],  # five items
        lambda f: [{1: -8}, *f[1:]],  # protected not a bstr
        lambda f: [f[0], [], *f[2:]],  # unprotected not a map
        lambda f: [*f[:2], None, f[3]],  # detached payload
        lambda f: [*f[:3], "sig"],  # signature not a bstr
        lambda f: [b"\x01", *f[1:]],  # protected bstr does not hold a map
        lambda f: [b"\xa1\x01", *f[1:]],  # protected bstr is not well-formed
    ],
)
def test_malformed_sign1_structures(mutate: Callable[[list[Any]], Any]) -> None:
    with pytest.raises(DecodeError):
        parse_sign1(_tagged(mutate(_fields(EVIDENCE_TOKEN))))


def test_label_in_both_buckets_rejected() -> None:
    fields = _fields(EVIDENCE_TOKEN)
    fields[1] = {1: -8}
    with pytest.raises(DecodeError):
        parse_sign1(_tagged(fields))


def test_non_eddsa_alg_is_signature_error() -> None:
    fields = _fields(EVIDENCE_TOKEN)
    fields[0] = encode({1: -7, 3: str(ContentType.EVIDENCE)})
    with pytest.raises(SignatureError):
        Evidence.verify(_tagged(fields), PK)


def test_wrong_key_is_signature_error() -> None:
    with pytest.raises(SignatureError):
        Evidence.verify(EVIDENCE_TOKEN, SigningKey.derive_insecure_for_tests("other").public_key)


# --------------------------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------------------------

SEED = bytes(range(100, 132))


def _known_key() -> SigningKey:
    return SigningKey(nacl.signing.SigningKey(SEED))


def test_signing_key_repr_hides_secret() -> None:
    key = _known_key()
    for text in (repr(key), str(key), f"{key!r}", repr([key])):
        assert SEED.hex() not in text
        assert SEED.hex().upper() not in text
        assert repr(SEED) not in text
        assert key.public_key.raw.hex() in text
    assert not hasattr(key, "__dict__")


def test_signing_key_refuses_pickling_and_copying() -> None:
    key = _known_key()
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError):
            pickle.dumps(key, protocol=protocol)
    with pytest.raises(TypeError):
        copy.copy(key)
    with pytest.raises(TypeError):
        copy.deepcopy(key)


def test_secret_key_file_roundtrip_and_mode(tmp_path: Path) -> None:
    key = _known_key()
    path = tmp_path / "device.key"
    old_umask = os.umask(0)  # even with a permissive umask the file must be 0600
    try:
        write_secret_key(path, key)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["device.key"]  # no temp file left behind

    again = read_secret_key(path)
    assert again.public_key == key.public_key
    assert again.sign(b"message") == key.sign(b"message")

    # Overwriting keeps the mode.
    write_secret_key(path, SigningKey.derive_insecure_for_tests("replacement"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_secret_key(path).public_key != key.public_key


@pytest.mark.parametrize(
    "content",
    [b"", b"not a key file\n", b"attest-ed25519-seed-v1\nzz\n", b"attest-ed25519-seed-v1\n00\n"],
)
def test_read_secret_key_rejects_garbage(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(AttestError):
        read_secret_key(path)
