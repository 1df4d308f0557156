"""Declarative claim schemas: one place that turns claim maps into typed fields and back.

A message type lists its fields (name, claim key, kind, optional). :func:`parse_claims` rejects
a payload that is not a map, has an unknown claim key, misses a required one, or holds a value
of the wrong kind; it raises only :class:`~attest.errors.DecodeError`. Unknown claims are
rejected rather than ignored: the protocol has no open extension points inside signed payloads,
so an unexpected claim is either an attack or an incompatible peer.

Mechanism claims. A message type with ``EXTENSIBLE = True`` (Evidence) also carries the claims
that mechanisms add to it (license state, pod links ...). A mechanism declares each such claim
as a :class:`Field` and registers it with :func:`register_extension`; its value then travels in
the message's ``extensions`` mapping under the field's name. The set of registered claims is
part of the wire format, so it must not depend on what a program happened to import: the first
time the fields of an extensible type are needed, :func:`ensure_registry` imports
``attest.registry``, the one module that lists the mechanisms.

This module is the reference code. :mod:`attest.messages._fast` shortcuts parsing for payloads
whose claim layout it has seen before (see :mod:`attest.speed`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from attest.codec.cbor import decode, encode
from attest.codec.cose import register_content_type, sign1, verify1
from attest.errors import DecodeError
from attest.keys import PublicKey, Signer
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
    return parse_version(v[0])


def parse_version(text: str) -> tuple[int, ...]:
    """A firmware version text (1..4 dot-separated decimals of 1..6 digits) as its tuple."""
    known = _VERSIONS.get(text)
    if known is not None:
        return known
    version = _version_text(text)
    if len(_VERSIONS) < _MAX_VERSIONS:
        _VERSIONS[text] = version
    return version


def version_text(version: tuple[int, ...]) -> str:
    """The text of a version tuple (the inverse of :func:`parse_version` up to leading zeros)."""
    return ".".join(str(p) for p in version)


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
    return [version_text(v), C.SWVERSION_SCHEME_MULTIPARTNUMERIC]


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
#: the parse functions whose values are exactly one of our wire scalars (the fast path inlines
#: them; see attest.messages._fast)
EXACT_KINDS: Mapping[Callable[[Any], Any], str] = {
    _uint: "uint",
    _bstr: "bstr",
    _tstr: "tstr",
    _nonce: "nonce",
    _digest: "digest",
    _ueid: "ueid",
    _hwmodel: "hwmodel",
}


@dataclass(frozen=True, slots=True)
class Field:
    """One claim of a message: the attribute (or extension) name, its claim key, its kind."""

    name: str
    key: int | str
    kind: Kind
    optional: bool = False


class Extensions(Mapping[str, Any]):
    """The mechanism claims of one message, by field name (immutable and hashable)."""

    __slots__ = ("_items", "_map")

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        items = {k: v for k, v in (values or {}).items() if v is not None}
        self._map = items
        self._items = tuple(sorted(items.items()))

    def __getitem__(self, name: str) -> Any:
        return self._map[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Extensions):
            return self._map == other._map
        return NotImplemented

    def __repr__(self) -> str:
        return f"Extensions({self._map!r})"


NO_EXTENSIONS = Extensions()

#: message class -> the mechanism claims registered for it, in registration order
_EXTENSIONS: dict[type, list[Field]] = {}
#: message class -> FIELDS + its registered extensions (the tuple object stays the same until
#: the next registration, so caches may key on it)
_ALL_FIELDS: dict[type, tuple[Field, ...]] = {}
_registry_loaded = False


def ensure_registry() -> None:
    """Import ``attest.registry`` once, so every mechanism's claims are registered."""
    global _registry_loaded
    if not _registry_loaded:
        _registry_loaded = True
        importlib.import_module("attest.registry")


def register_extension(message: type[SignedMessage], field: Field) -> None:
    """Add a mechanism claim to an extensible message type (SPEC lists every such claim)."""
    if not message.EXTENSIBLE:
        raise ValueError(f"{message.__name__} does not take mechanism claims")
    current = message.FIELDS + tuple(_EXTENSIONS.get(message, ()))
    if any(f.key == field.key or f.name == field.name for f in current):
        if field in _EXTENSIONS.get(message, ()):
            return  # the same declaration again (a module imported twice): nothing to do
        raise ValueError(f"claim {field.key} / {field.name!r} is already taken in {message}")
    if not field.optional:
        raise ValueError("a mechanism claim is optional: chips without the mechanism omit it")
    _EXTENSIONS.setdefault(message, []).append(field)
    _ALL_FIELDS.pop(message, None)


def parse_claims(claims: Any, fields: tuple[Field, ...]) -> dict[str, Any]:
    """Check a decoded claims map against ``fields``; return the values by field name."""
    if type(claims) is not dict:
        raise DecodeError("payload must be a map of claims")
    if _fast_claims is not None:
        fast = _fast_claims(claims, fields)
        if fast is not None:
            return fast
    return parse_claims_general(claims, fields)


def parse_claims_general(claims: dict[Any, Any], fields: tuple[Field, ...]) -> dict[str, Any]:
    """The reference check of a claims map (what the fast path must agree with)."""
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


class ClaimsDocument:
    """Mixin for frozen dataclasses whose payload is a claims map of ``FIELDS`` but whose
    envelope is not :class:`SignedMessage`'s COSE_Sign1 (federation's COSE_Sign acts)."""

    __slots__ = ()
    FIELDS: ClassVar[tuple[Field, ...]]

    def to_claims(self) -> dict[int | str, Any]:
        return emit_claims(self, self.FIELDS)

    @classmethod
    def from_claims(cls, claims: Any) -> Self:
        """Parse a claims map (DecodeError if malformed or inconsistent)."""
        values = parse_claims(claims, cls.FIELDS)
        try:
            return cls(**values)
        except ValueError as exc:
            raise DecodeError(str(exc)) from None

    def payload(self) -> bytes:
        """The deterministic CBOR payload (what the officers sign)."""
        return encode(self.to_claims())


class SignedMessage:
    """Mixin for frozen dataclasses that travel as COSE_Sign1 with a claims-map payload."""

    CONTENT_TYPE: ClassVar[str]
    FIELDS: ClassVar[tuple[Field, ...]]
    #: True for a type that carries mechanism claims in an ``extensions`` attribute
    EXTENSIBLE: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        content_type = cls.__dict__.get("CONTENT_TYPE")
        if isinstance(content_type, str):
            register_content_type(content_type)

    @classmethod
    def all_fields(cls) -> tuple[Field, ...]:
        """``FIELDS`` plus the mechanism claims registered for this type."""
        if not cls.EXTENSIBLE:
            return cls.FIELDS
        fields = _ALL_FIELDS.get(cls)
        if fields is None:
            ensure_registry()
            fields = _ALL_FIELDS[cls] = cls.FIELDS + tuple(_EXTENSIONS.get(cls, ()))
        return fields

    def to_claims(self) -> dict[int | str, Any]:
        out = emit_claims(self, self.FIELDS)
        if self.EXTENSIBLE:
            extensions: Extensions = getattr(self, "extensions")  # noqa: B009
            declared = {f.name: f for f in self.all_fields()[len(self.FIELDS) :]}
            for name, value in extensions.items():
                f = declared.get(name)
                if f is None:
                    raise ValueError(f"{name!r} is not a registered claim of {type(self)}")
                out[f.key] = f.kind.emit(value)
        return out

    def with_claims(self, **claims: Any) -> Self:
        """A copy with these mechanism claims set (None removes one): for tests and attacks."""
        import dataclasses

        current: Extensions = getattr(self, "extensions")  # noqa: B009
        return dataclasses.replace(  # type: ignore[type-var]
            self, extensions=Extensions({**current, **claims})
        )

    @classmethod
    def from_values(cls, values: dict[str, Any]) -> Self:
        """Build the message from parsed values by field name (extensions split off)."""
        if not cls.EXTENSIBLE:
            return cls(**values)
        core = {f.name: values[f.name] for f in cls.FIELDS}
        ext = {f.name: values[f.name] for f in cls.all_fields()[len(cls.FIELDS) :]}
        return cls(**core, extensions=Extensions(ext))  # type: ignore[call-arg]

    @classmethod
    def from_claims(cls, claims: Any) -> Self:
        return cls.from_values(parse_claims(claims, cls.all_fields()))

    def payload(self) -> bytes:
        """The deterministic CBOR payload (what goes inside the COSE_Sign1)."""
        return encode(self.to_claims())

    @classmethod
    def from_payload(cls, payload: bytes) -> Self:
        """Parse a payload. The caller must already have verified the signature over it."""
        if _fast_payload is not None:
            parsed = _fast_payload(cls, payload)
            if parsed is not None:
                return parsed  # type: ignore[no-any-return]
        return cls.from_claims(decode(payload))

    def sign(self, key: Signer) -> bytes:
        """This message as a tagged COSE_Sign1 signed by ``key``."""
        return sign1(key, self.CONTENT_TYPE, self.payload())

    @classmethod
    def verify(cls, token: bytes, public_key: PublicKey) -> Self:
        """Verify ``token`` as this message type under ``public_key``, then parse it."""
        return cls.from_payload(verify1(token, public_key, cls.CONTENT_TYPE))


# -- the fast-path hooks (installed by attest/messages/__init__.py when attest.speed.FAST) ------
#: (claims map, fields) -> values by name, or None to take the reference path
_fast_claims: Callable[[dict[Any, Any], tuple[Field, ...]], dict[str, Any] | None] | None = None
#: (message class, payload) -> the message, or None to take the reference path
_fast_payload: Callable[[type[SignedMessage], Any], Any] | None = None
