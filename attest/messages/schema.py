"""Declarative claim schemas: one place that turns claim maps into typed fields and back.

A message type lists its fields (name, claim key, kind, optional). :func:`parse` rejects a
payload that is not a map, has an unknown claim key, misses a required one, or holds a value of
the wrong kind; it raises only :class:`~attest.errors.DecodeError`. Unknown claims are rejected
rather than ignored: version 1 of the protocol has no extension points inside signed payloads,
so an unexpected claim is either an attack or an incompatible peer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from attest.codec.cbor import decode, encode
from attest.codec.cose import sign1, verify1
from attest.errors import DecodeError
from attest.keys import PublicKey, SigningKey
from attest.messages import claims as C

_U64_MAX = (1 << 64) - 1


def _uint(v: Any) -> int:
    if type(v) is not int or not 0 <= v <= _U64_MAX:
        raise DecodeError("expected an unsigned 64-bit integer")
    return v


def _bstr(v: Any) -> bytes:
    if type(v) is not bytes:
        raise DecodeError("expected a byte string")
    return v


def _tstr(v: Any) -> str:
    if type(v) is not str or not 1 <= len(v) <= 256:
        raise DecodeError("expected a text string of 1..256 characters")
    return v


def _nonce(v: Any) -> bytes:
    if type(v) is not bytes or not 8 <= len(v) <= 64:
        raise DecodeError("eat_nonce must be 8..64 bytes")
    return v


def _digest(v: Any) -> bytes:
    if type(v) is not bytes or len(v) != 32:
        raise DecodeError("expected a 32-byte digest")
    return v


def _ueid(v: Any) -> bytes:
    # EAT UEID type RAND (0x01) followed by 16, 24 or 32 random bytes.
    if type(v) is not bytes or len(v) not in (17, 25, 33) or v[0] != 0x01:
        raise DecodeError("ueid must be a RAND-type UEID (0x01 || 16/24/32 bytes)")
    return v


def _hwmodel(v: Any) -> str:
    if type(v) is not bytes or not 1 <= len(v) <= 32:
        raise DecodeError("hwmodel must be 1..32 bytes")
    try:
        return v.decode("ascii")
    except UnicodeDecodeError:
        raise DecodeError("hwmodel must be ASCII") from None


def _hwmodel_out(v: str) -> bytes:
    return v.encode("ascii")


def _cnf(v: Any) -> PublicKey:
    if type(v) is not dict or set(v) != {C.CNF_COSE_KEY}:
        raise DecodeError("cnf must hold exactly one COSE_Key")
    key = v[C.CNF_COSE_KEY]
    if (
        type(key) is not dict
        or set(key) != {C.COSE_KEY_KTY, C.COSE_KEY_CRV, C.COSE_KEY_X}
        or key[C.COSE_KEY_KTY] != C.KTY_OKP
        or key[C.COSE_KEY_CRV] != C.CRV_ED25519
    ):
        raise DecodeError("cnf COSE_Key must be an OKP Ed25519 key {1:1, -1:6, -2:x}")
    x = key[C.COSE_KEY_X]
    if type(x) is not bytes or len(x) != 32:
        raise DecodeError("Ed25519 public key must be 32 bytes")
    return PublicKey(x)


def _cnf_out(v: PublicKey) -> dict[int, Any]:
    return {
        C.CNF_COSE_KEY: {
            C.COSE_KEY_KTY: C.KTY_OKP,
            C.COSE_KEY_CRV: C.CRV_ED25519,
            C.COSE_KEY_X: v.raw,
        }
    }


def _swversion(v: Any) -> tuple[int, ...]:
    if (
        type(v) is not list
        or len(v) != 2
        or type(v[0]) is not str
        or v[1] != C.SWVERSION_SCHEME_MULTIPARTNUMERIC
    ):
        raise DecodeError("swversion must be [version-text, 1 (multipartnumeric)]")
    parts = v[0].split(".")
    if not 1 <= len(parts) <= 4 or not all(
        p.isascii() and p.isdigit() and len(p) <= 6 for p in parts
    ):
        raise DecodeError("swversion text must be 1..4 dot-separated decimal numbers")
    return tuple(int(p) for p in parts)


def _swversion_out(v: tuple[int, ...]) -> list[Any]:
    return [".".join(str(p) for p in v), C.SWVERSION_SCHEME_MULTIPARTNUMERIC]


def list_of(item: Callable[[Any], Any], max_items: int) -> Callable[[Any], tuple[Any, ...]]:
    """A kind for a bounded array whose items are all of kind ``item``."""

    def parse_list(v: Any) -> tuple[Any, ...]:
        if type(v) is not list or len(v) > max_items:
            raise DecodeError(f"expected an array of at most {max_items} items")
        return tuple(item(x) for x in v)

    return parse_list


def _identity(v: Any) -> Any:
    return v


@dataclass(frozen=True, slots=True)
class Kind:
    """How one claim value is checked on the way in and written on the way out."""

    parse: Callable[[Any], Any]
    emit: Callable[[Any], Any] = _identity


UINT = Kind(_uint)
BSTR = Kind(_bstr)
TSTR = Kind(_tstr)
NONCE = Kind(_nonce)
DIGEST = Kind(_digest)
UEID = Kind(_ueid)
HWMODEL = Kind(_hwmodel, _hwmodel_out)
CNF_KEY = Kind(_cnf, _cnf_out)
SWVERSION = Kind(_swversion, _swversion_out)
TSTR_LIST = Kind(list_of(_tstr, 4096), list)
UEID_LIST = Kind(list_of(_ueid, 4096), list)
BSTR_LIST = Kind(list_of(_bstr, 4096), list)
UINT_LIST = Kind(list_of(_uint, 256), list)


@dataclass(frozen=True, slots=True)
class Field:
    """One claim of a message: the dataclass attribute, its claim key, its kind."""

    name: str
    key: int | str
    kind: Kind
    optional: bool = False


def parse_claims(claims: Any, fields: tuple[Field, ...]) -> dict[str, Any]:
    """Check a decoded claims map against ``fields``; return attribute values by name."""
    if type(claims) is not dict:
        raise DecodeError("payload must be a map of claims")
    known = {f.key for f in fields}
    unknown = [k for k in claims if k not in known]
    if unknown:
        raise DecodeError(f"unknown claim key(s) {unknown!r}")
    out: dict[str, Any] = {}
    for f in fields:
        if f.key in claims:
            try:
                out[f.name] = f.kind.parse(claims[f.key])
            except DecodeError as exc:
                raise DecodeError(f"claim {f.key} ({f.name}): {exc}") from None
        elif f.optional:
            out[f.name] = None
        else:
            raise DecodeError(f"missing required claim {f.key} ({f.name})")
    return out


def emit_claims(obj: Any, fields: tuple[Field, ...]) -> dict[int | str, Any]:
    """The claims map of ``obj`` (optional fields that are ``None`` are left out)."""
    out: dict[int | str, Any] = {}
    for f in fields:
        value = getattr(obj, f.name)
        if value is None:
            if not f.optional:
                raise ValueError(f"required field {f.name} is None")
            continue
        out[f.key] = f.kind.emit(value)
    return out


class SignedMessage:
    """Mixin for frozen dataclasses that travel as COSE_Sign1 with a claims-map payload."""

    CONTENT_TYPE: ClassVar[str]
    FIELDS: ClassVar[tuple[Field, ...]]

    def to_claims(self) -> dict[int | str, Any]:
        return emit_claims(self, self.FIELDS)

    @classmethod
    def from_claims(cls, claims: Any) -> Self:
        return cls(**parse_claims(claims, cls.FIELDS))

    def payload(self) -> bytes:
        """The deterministic CBOR payload (what goes inside the COSE_Sign1)."""
        return encode(self.to_claims())

    @classmethod
    def from_payload(cls, payload: bytes) -> Self:
        """Parse a payload. The caller must already have verified the signature over it."""
        return cls.from_claims(decode(payload))

    def sign(self, key: SigningKey) -> bytes:
        """This message as a tagged COSE_Sign1 signed by ``key``."""
        return sign1(key, self.CONTENT_TYPE, self.payload())

    @classmethod
    def verify(cls, token: bytes, public_key: PublicKey) -> Self:
        """Verify ``token`` as this message type under ``public_key``, then parse it."""
        return cls.from_payload(verify1(token, public_key, cls.CONTENT_TYPE))
