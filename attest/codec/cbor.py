"""Deterministic CBOR (RFC 8949 §4.2.1) over the ``cbor2`` C extension.

Why not simply ``cbor2.dumps(canonical=True)``: cbor2 orders map keys length-first (the old
RFC 7049 "canonical" rule), while RFC 8949 §4.2.1 orders them by the bytewise lexicographic
order of their encodings. The two differ for maps such as ``{-1, 256}``. We therefore sort map
keys ourselves with a key function that reproduces the bytewise order without encoding the keys,
and let cbor2 (which keeps insertion order when ``canonical=False``) do the byte work in C.

Strict decoding works by *verification through re-encoding*: decode with cbor2, walk the result
(checking depth, allowed types, map key order and key uniqueness), re-encode, and require the
bytes to be identical. Any non-shortest head, indefinite length, duplicate key (cbor2 keeps the
last one, so the re-encoding is shorter), trailing byte, bignum for a small integer, or tag
inside a payload therefore fails. Only these value types exist on our wire: unsigned and negative
integers that fit 64 bits, byte strings, text strings, arrays, maps with integer / byte-string /
text-string keys, ``true``, ``false`` and ``null``. No floats, no tags (COSE's tag 18 is handled by
the COSE layer, outside payloads).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import Any

import cbor2

from attest.errors import DecodeError

#: Largest encoded message (or frame payload) accepted anywhere, in bytes.
MAX_MESSAGE_BYTES = 65_536
#: Deepest item accepted. The top-level item is at depth 1 and every item inside a container
#: (scalar or container) is one deeper than the container: a scalar inside 7 nested arrays is
#: at depth 8 and accepted; one more level is rejected.
MAX_DEPTH = 8

_U64 = 1 << 64


def _key_order(key: int | bytes | str) -> tuple[int, int, Any]:
    """Sort key equal to RFC 8949 bytewise order of the encoded map key.

    Encoded unsigned integers sort numerically and before negative integers (major type 0 < 1);
    negative integers sort by their magnitude; strings sort by length (the head encodes it)
    and then by content.
    """
    if type(key) is int:
        return (0, key, b"") if key >= 0 else (1, -1 - key, b"")
    if type(key) is bytes:
        return (2, len(key), key)
    if type(key) is str:
        raw = key.encode("utf-8")
        return (3, len(raw), raw)
    raise TypeError(f"map key of type {type(key).__name__} is not allowed")


def _canonicalize(value: Any, depth: int = 1) -> Any:
    """Return ``value`` with every map rebuilt in deterministic key order (for encoding)."""
    if depth > MAX_DEPTH:
        raise ValueError(f"nesting deeper than {MAX_DEPTH}")
    t = type(value)
    if t is dict:
        items = sorted(value.items(), key=lambda kv: _key_order(kv[0]))
        return {k: _canonicalize(v, depth + 1) for k, v in items}
    if t is list or t is tuple:
        return [_canonicalize(v, depth + 1) for v in value]
    if t is int:
        if not -_U64 <= value < _U64:
            raise ValueError("integer does not fit in 64 bits")
        return value
    if t is bytes or t is str or t is bool or value is None:
        return value
    raise TypeError(f"type {t.__name__} cannot be encoded on the attest wire")


class _Codec(threading.local):
    """One cbor2 encoder and decoder per thread, reused across calls.

    ``cbor2.dumps``/``loads`` build a new encoder or decoder and stream object on every call,
    which costs more than the actual work for our small messages. Neither object keeps state
    between items with the options we use (no value sharing, no string references); after any
    exception the pair is replaced anyway, so a half-finished item can never leak into the next.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.encoder = cbor2.CBOREncoder(io.BytesIO())
        self.decoder = cbor2.CBORDecoder(io.BytesIO())


_codec = _Codec()


def _dumps_reused(value: Any) -> bytes:
    try:
        return _codec.encoder.encode_to_bytes(value)
    except BaseException:
        _codec.reset()
        raise


def _loads_reused(data: bytes) -> Any:
    """Decode the first item of ``data`` (trailing bytes are caught by the re-encoding)."""
    try:
        return _codec.decoder.decode_from_bytes(data)
    except BaseException:
        _codec.reset()
        raise


# cbor2 5.x has encode_to_bytes/decode_from_bytes on reusable objects; cbor2 6 dropped them,
# so there we use the module functions (same bytes, a little slower).
_dumps: Callable[[Any], bytes]
_loads: Callable[[bytes], Any]
if hasattr(cbor2.CBOREncoder, "encode_to_bytes") and hasattr(
    cbor2.CBORDecoder, "decode_from_bytes"
):
    _dumps, _loads = _dumps_reused, _loads_reused
else:  # pragma: no cover - depends on the installed cbor2
    _dumps, _loads = cbor2.dumps, cbor2.loads


def encode(value: Any) -> bytes:
    """Encode ``value`` as deterministic CBOR. Raises ``TypeError``/``ValueError`` on our bugs."""
    return _dumps(_canonicalize(value))


# -- building blocks for fast paths (attest.messages._fast); nothing else should need them ------


def raw_decode(data: bytes) -> Any:
    """The first item cbor2 reads from ``data``, with none of :func:`decode`'s checks."""
    return _loads(data)


def raw_encode(value: Any) -> bytes:
    """cbor2's encoding of ``value`` as it is (map keys in their given order, no checks)."""
    return _dumps(value)


def key_order(key: int | bytes | str) -> tuple[int, int, Any]:
    """Sort key of a map key in RFC 8949 bytewise order of its encoding (TypeError if not a key
    type of our wire)."""
    return _key_order(key)


def check_item(value: Any, depth: int) -> None:
    """The type, depth and key-order walk of :func:`decode` on one decoded item at ``depth``."""
    _check(value, depth)


def _check(value: Any, depth: int) -> None:
    """Validate a decoded item: allowed types, depth, strictly increasing map keys.

    This walk runs on every message a node receives, so scalars are checked in the loop of
    their container (no call per item) and consecutive integer keys are compared directly
    instead of through :func:`_key_order`.
    """
    if depth > MAX_DEPTH:
        raise DecodeError(f"nesting deeper than {MAX_DEPTH}")
    t = type(value)
    if t is dict:
        if value and depth == MAX_DEPTH:
            raise DecodeError(f"nesting deeper than {MAX_DEPTH}")
        previous: Any = _NO_KEY
        for k, v in value.items():
            if type(k) is int and type(previous) is int:
                # bytewise order of integer keys: 0 < 1 < ... < 2^64-1 < -1 < -2 < ... < -2^64
                if (0 <= k <= previous) if previous >= 0 else (k >= previous):
                    raise DecodeError("map keys are not in deterministic order")
            else:
                try:
                    order = _key_order(k)
                except TypeError as exc:
                    raise DecodeError(str(exc)) from None
                if previous is not _NO_KEY and not _key_order(previous) < order:
                    raise DecodeError("map keys are not in deterministic order")
            previous = k
            if type(v) is int:
                if not -_U64 <= v < _U64:
                    raise DecodeError("integer does not fit in 64 bits")
            elif not (type(v) is bytes or type(v) is str):
                _check_scalar_or_descend(v, depth + 1)
    elif t is list:
        if value and depth == MAX_DEPTH:
            raise DecodeError(f"nesting deeper than {MAX_DEPTH}")
        for v in value:
            if type(v) is int:
                if not -_U64 <= v < _U64:
                    raise DecodeError("integer does not fit in 64 bits")
            elif not (type(v) is bytes or type(v) is str):
                _check_scalar_or_descend(v, depth + 1)
    else:
        _check_scalar_or_descend(value, depth)


_NO_KEY = object()


def _check_scalar_or_descend(v: Any, depth: int) -> None:
    """Check one item whose own depth (already <= MAX_DEPTH) the caller has established."""
    tv = type(v)
    if tv is int:
        if not -_U64 <= v < _U64:
            raise DecodeError("integer does not fit in 64 bits")
    elif tv is dict or tv is list:
        _check(v, depth)
    elif not (tv is bytes or tv is str or tv is bool or v is None):
        raise DecodeError(f"type {tv.__name__} is not allowed on the attest wire")


def decode(data: bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Any:
    """Decode exactly one deterministic CBOR item from ``data`` or raise :class:`DecodeError`."""
    if type(data) is not bytes:
        raise DecodeError("input must be bytes")
    if len(data) > max_bytes:
        raise DecodeError(f"input of {len(data)} bytes exceeds the limit of {max_bytes}")
    if not data:
        raise DecodeError("empty input")
    try:
        value = _loads(data)
    except Exception as exc:  # cbor2 raises several types (and RecursionError, MemoryError)
        raise DecodeError(f"not well-formed CBOR: {exc}") from None
    _check(value, 1)
    try:
        again = _dumps(value)
    except Exception as exc:
        raise DecodeError(f"cannot re-encode: {exc}") from None
    if again != data:
        raise DecodeError(
            "not deterministically encoded (non-shortest form, indefinite length, duplicate key "
            "or trailing bytes)"
        )
    return value
