"""Declarative claim schemas: one place that turns claim maps into typed fields and back.

A message type lists its fields (name, claim key, kind, optional). :func:`parse` rejects a
payload that is not a map, has an unknown claim key, misses a required one, or holds a value of
the wrong kind; it raises only :class:`~attest.errors.DecodeError`. Unknown claims are rejected
rather than ignored: version 1 of the protocol has no extension points inside signed payloads,
so an unexpected claim is either an attack or an incompatible peer.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from attest.codec import cbor as _cbor
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
    known = _VERSIONS.get(v[0])
    if known is not None:
        return known
    version = _version_text(v[0])
    if len(_VERSIONS) < _MAX_VERSIONS:
        _VERSIONS[v[0]] = version
    return version


#: version texts already parsed (a fleet runs a handful of firmware versions)
_VERSIONS: dict[str, tuple[int, ...]] = {}
_MAX_VERSIONS = 1024


def _version_text(text: str) -> tuple[int, ...]:
    parts = text.split(".")
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
    """Check a decoded claims map against ``fields``; return attribute values by name.

    Maps whose claim keys come in a layout seen before (every message of a type looks alike)
    are checked by a function generated for that layout (see ``_compile`` below); any failure
    there re-runs the general path, which raises the error.
    """
    if type(claims) is not dict:
        raise DecodeError("payload must be a map of claims")
    layouts = _DICT_BUILDERS.get(id(fields))
    if layouts is None or layouts[0] is not fields:
        layouts = (fields, {})
        _DICT_BUILDERS[id(fields)] = layouts
    keys = tuple(claims)
    builder = layouts[1].get(keys)
    if builder is not None:
        try:
            return builder(claims)  # type: ignore[no-any-return]
        except DecodeError:
            pass
        return _parse_claims_general(claims, fields)
    out = _parse_claims_general(claims, fields)
    if len(layouts[1]) < _MAX_BUILDERS:
        layouts[1][keys] = _compile(None, fields, keys, walk=False)
    return out


#: id(fields) -> (fields, {claim-key layout: generated builder returning the attribute dict})
_DICT_BUILDERS: dict[int, tuple[tuple[Field, ...], dict[tuple[Any, ...], Any]]] = {}


def _parse_claims_general(claims: dict[Any, Any], fields: tuple[Field, ...]) -> dict[str, Any]:
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
        parsed = _fast_from_payload(cls, payload)
        if parsed is not None:
            return parsed
        return cls.from_claims(decode(payload))

    def sign(self, key: SigningKey) -> bytes:
        """This message as a tagged COSE_Sign1 signed by ``key``."""
        return sign1(key, self.CONTENT_TYPE, self.payload())

    @classmethod
    def verify(cls, token: bytes, public_key: PublicKey) -> Self:
        """Verify ``token`` as this message type under ``public_key``, then parse it."""
        return cls.from_payload(verify1(token, public_key, cls.CONTENT_TYPE))


# -- compiled payload parsers -------------------------------------------------------------------
#
# ``from_payload`` is strict decoding (attest.codec.cbor.decode: cbor2 decode, a walk that checks
# types, depth and key order, a re-encode that must give back the input) followed by
# ``from_claims``. For a payload whose claim keys come in a layout seen before, the walk and the
# claim checks are fused into one generated function per (message type, layout), the way
# ``dataclasses`` generates ``__init__``: the layout fixes the key order (checked once, when the
# layout is learned), the generated code checks each value with the exact-type test of its kind
# and runs the general walk only on values whose kind is not known to be exact (nested maps,
# arrays, kinds defined elsewhere). The re-encode comparison still runs on every payload. Any
# doubt or failure returns None and the caller takes the general path, which decides and
# raises; so the fast path can only ever accept what the general path accepts, with the same
# result. tests/test_fastpaths.py checks the two against each other.


#: exact kinds: parse succeeds only for values made of allowed wire types, so the walk of
#: attest.codec.cbor adds nothing for them. Source of the inline check, with ``{v}`` the value.
_INLINE: dict[Callable[[Any], Any], str] = {
    _uint: "type({v}) is int and 0 <= {v} <= _U64_MAX",
    _bstr: "type({v}) is bytes",
    _tstr: "type({v}) is str and 1 <= len({v}) <= 256",
    _nonce: "type({v}) is bytes and 8 <= len({v}) <= 64",
    _digest: "type({v}) is bytes and len({v}) == 32",
    _ueid: "type({v}) is bytes and len({v}) in (17, 25, 33) and {v}[0] == 1",
}
#: exact kinds that convert their value (called, not inlined)
_EXACT_CALLS = frozenset({_hwmodel})

_Builder = Callable[[dict[Any, Any]], Any]
#: per message class: claim-key layout -> generated builder
_BUILDERS: dict[type, dict[tuple[Any, ...], _Builder]] = {}
_MAX_BUILDERS = 64


def _fast_from_payload(cls: type, payload: Any) -> Any:
    """``cls.from_payload(payload)`` if the compiled path can decide it, else None."""
    if type(payload) is not bytes or not payload or len(payload) > _cbor.MAX_MESSAGE_BYTES:
        return None
    try:
        claims = _cbor._loads(payload)
    except Exception:
        return None
    if type(claims) is not dict:
        return None
    keys = tuple(claims)
    builders = _BUILDERS.get(cls)
    if builders is None:
        builders = _BUILDERS.setdefault(cls, {})
    builder = builders.get(keys)
    if builder is None:
        # Only layouts that compile are remembered: they are subsets of the known claim keys in
        # deterministic order with every required one, so an attacker cannot grow the table.
        fields: tuple[Field, ...] = getattr(cls, "FIELDS", ())
        builder = _compile(cls, fields, keys, walk=True) if fields else None
        if builder is None:
            return None
        if len(builders) < _MAX_BUILDERS:
            builders[keys] = builder
    try:
        if _cbor._dumps(claims) != payload:
            return None
        return builder(claims)
    except (DecodeError, TypeError, ValueError):
        return None


def _compile(
    cls: type | None, fields: tuple[Field, ...], keys: tuple[Any, ...], *, walk: bool
) -> _Builder | None:
    """Generate a builder for one claim-key layout, or None if the layout cannot be used.

    With ``cls`` the builder returns an instance of it, else the dict of attribute values
    (:func:`parse_claims`). With ``walk`` it also does the type, depth and key-order checks of
    strict decoding for a top-level map (see above), so it accepts only layouts in
    deterministic key order.
    """
    by_key = {f.key: f for f in fields}
    if len(set(keys)) != len(keys) or any(k not in by_key for k in keys):
        return None
    present = [by_key[k] for k in keys]
    if any(not f.optional and f.key not in keys for f in fields):
        return None
    if walk:
        try:
            orders = [_cbor._key_order(k) for k in keys]
        except TypeError:
            return None
        if any(not a < b for a, b in itertools.pairwise(orders)):
            return None  # not deterministic order: the general path rejects it
    env: dict[str, Any] = {"_U64_MAX": _U64_MAX, "_E": DecodeError, "_check": _cbor._check}
    env.update({"_cls": cls, "_new": object.__new__})
    names = [f"v{i}" for i in range(len(present))]
    lines = ["def build(claims):"]
    if present:
        lines.append(f"    {', '.join(names)}, = claims.values()")
    for i, f in enumerate(present):
        v = names[i]
        inline = _INLINE.get(f.kind.parse)
        if inline is not None:
            lines.append(f"    if not ({inline.format(v=v)}):")
            lines.append("        raise _E")
            continue
        env[f"_p{i}"] = f.kind.parse
        if walk and f.kind.parse not in _EXACT_CALLS:
            lines.append(f"    _check({v}, 2)")
        lines.append(f"    {v} = _p{i}({v})")
    values = {f.name: names[i] for i, f in enumerate(present)}
    values.update({f.name: "None" for f in fields if f.key not in keys})
    setters = None if cls is None else _slot_setters(cls, fields)
    if cls is None:
        lines.append(f"    return {{{', '.join(f'{n!r}: {x}' for n, x in values.items())}}}")
    elif setters is None:
        lines.append(f"    return _cls({', '.join(f'{n}={x}' for n, x in values.items())})")
    else:
        lines.append("    o = _new(_cls)")
        for name, setter in setters.items():
            env[f"_set_{name}"] = setter
            lines.append(f"    _set_{name}(o, {values[name]})")
        lines.append("    return o")
    exec("\n".join(lines), env)  # source built above from the field tables only
    return env["build"]  # type: ignore[no-any-return]


def _slot_setters(cls: type, fields: tuple[Field, ...]) -> dict[str, Any] | None:
    """Slot descriptors' setters for a frozen slots dataclass whose fields are exactly
    ``fields`` and that has no ``__post_init__``; then building through them is what the
    generated ``__init__`` does (``object.__setattr__`` per field), minus the call overhead.
    """
    from dataclasses import fields as dc_fields
    from dataclasses import is_dataclass

    if not is_dataclass(cls) or hasattr(cls, "__post_init__"):
        return None
    names = [f.name for f in dc_fields(cls)]
    if sorted(names) != sorted(f.name for f in fields):
        return None
    setters = {}
    for name in names:
        descriptor = cls.__dict__.get(name)
        if type(descriptor).__name__ != "member_descriptor":
            return None
        setters[name] = descriptor.__set__
    return setters
