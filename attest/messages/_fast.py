"""Fast path of :mod:`attest.messages.schema`: compiled parsers per claim layout.

``from_payload`` is strict decoding (:func:`attest.codec.cbor.decode`: cbor2 decode, a walk that
checks types, depth and key order, a re-encode that must give back the input) followed by the
claim checks. For a payload whose claim keys come in a layout seen before (every message of a
type looks alike), the walk and the claim checks are fused into one generated function per
(message type, layout), the way ``dataclasses`` generates ``__init__``: the layout fixes the key
order (checked once, when the layout is learned), the generated code checks each value with the
exact-type test of its kind and runs the general walk only on values whose kind is not known to
be exact (nested maps, arrays, kinds defined elsewhere). The re-encode comparison still runs on
every payload. Any doubt or failure returns None and the caller takes the reference path, which
decides and raises; so this path can only ever accept what the reference path accepts, with
the same result. ``tests/test_fastpaths.py`` checks the two against each other.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import fields as dc_fields
from dataclasses import is_dataclass
from typing import Any

from attest.codec import cbor
from attest.errors import DecodeError
from attest.messages import schema
from attest.messages.schema import (
    EXACT_KINDS,
    Extensions,
    Field,
    SignedMessage,
    parse_claims_general,
)

_U64_MAX = (1 << 64) - 1
#: source of the inline check of each exact kind, with ``{v}`` the value
_INLINE: dict[str, str] = {
    "uint": "type({v}) is int and 0 <= {v} <= _U64_MAX",
    "bstr": "type({v}) is bytes",
    "tstr": "type({v}) is str and 1 <= len({v}) <= 256",
    "nonce": "type({v}) is bytes and 8 <= len({v}) <= 64",
    "digest": "type({v}) is bytes and len({v}) == 32",
    "ueid": "type({v}) is bytes and len({v}) in (17, 25, 33) and {v}[0] == 1",
}
#: exact kinds that convert their value (called, not inlined): no walk needed
_EXACT_CALLS = frozenset(k for k, name in EXACT_KINDS.items() if name not in _INLINE)

_Builder = Callable[[dict[Any, Any]], Any]
_MAX_BUILDERS = 64
#: per message class: claim-key layout -> generated builder of the message
_BUILDERS: dict[type, dict[tuple[Any, ...], _Builder]] = {}
#: id(fields) -> (fields, {claim-key layout: generated builder of the value dict})
_DICT_BUILDERS: dict[int, tuple[tuple[Field, ...], dict[tuple[Any, ...], _Builder]]] = {}


def parse_claims(claims: dict[Any, Any], fields: tuple[Field, ...]) -> dict[str, Any] | None:
    """``schema.parse_claims`` for a layout seen before, else None (the reference path runs,
    and this layout is learned for next time)."""
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
            return None
    out = parse_claims_general(claims, fields)  # raises if bad: nothing is learned then
    if len(layouts[1]) < _MAX_BUILDERS:
        learned = _compile(None, fields, keys, walk=False)
        if learned is not None:
            layouts[1][keys] = learned
    return out


def from_payload(cls: type[SignedMessage], payload: Any) -> Any:
    """``cls.from_payload(payload)`` if the compiled path can decide it, else None."""
    if type(payload) is not bytes or not payload or len(payload) > cbor.MAX_MESSAGE_BYTES:
        return None
    try:
        claims = cbor.raw_decode(payload)
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
        builder = _compile(cls, cls.all_fields(), keys, walk=True)
        if builder is None:
            return None
        if len(builders) < _MAX_BUILDERS:
            builders[keys] = builder
    try:
        if cbor.raw_encode(claims) != payload:
            return None
        return builder(claims)
    except (DecodeError, TypeError, ValueError):
        return None


def _compile(
    cls: type[SignedMessage] | None, fields: tuple[Field, ...], keys: tuple[Any, ...], *, walk: bool
) -> _Builder | None:
    """Generate a builder for one claim-key layout, or None if the layout cannot be used.

    With ``cls`` the builder returns an instance of it, else the dict of values by name. With
    ``walk`` it also does the type, depth and key-order checks of strict decoding for a
    top-level map, so it accepts only layouts in deterministic key order.
    """
    by_key = {f.key: f for f in fields}
    if len(set(keys)) != len(keys) or any(k not in by_key for k in keys):
        return None
    present = [by_key[k] for k in keys]
    if any(not f.optional and f.key not in keys for f in fields):
        return None
    if walk:
        try:
            orders = [cbor.key_order(k) for k in keys]
        except TypeError:
            return None
        if any(not a < b for a, b in itertools.pairwise(orders)):
            return None  # not deterministic order: the reference path rejects it
    env: dict[str, Any] = {"_U64_MAX": _U64_MAX, "_E": DecodeError, "_check": cbor.check_item}
    env.update({"_cls": cls, "_new": object.__new__, "_Ext": Extensions})
    names = [f"v{i}" for i in range(len(present))]
    lines = ["def build(claims):"]
    if present:
        lines.append(f"    {', '.join(names)}, = claims.values()")
    for i, f in enumerate(present):
        v = names[i]
        exact = EXACT_KINDS.get(f.kind.parse)
        if exact in _INLINE:
            lines.append(f"    if not ({_INLINE[exact].format(v=v)}):")
            lines.append("        raise _E")
            continue
        env[f"_p{i}"] = f.kind.parse
        if walk and f.kind.parse not in _EXACT_CALLS:
            lines.append(f"    _check({v}, 2)")
        lines.append(f"    {v} = _p{i}({v})")
    values = {f.name: names[i] for i, f in enumerate(present)}
    values.update({f.name: "None" for f in fields if f.key not in keys})
    if cls is None:
        lines.append(f"    return {{{', '.join(f'{n!r}: {x}' for n, x in values.items())}}}")
    else:
        core = [f.name for f in cls.FIELDS]
        attrs = {n: values[n] for n in core}
        if cls.EXTENSIBLE:
            ext = ", ".join(f"{f.name!r}: {values[f.name]}" for f in fields[len(cls.FIELDS) :])
            attrs["extensions"] = f"_Ext({{{ext}}})"
        setters = _slot_setters(cls, list(attrs))
        if setters is None:
            lines.append(f"    return _cls({', '.join(f'{n}={x}' for n, x in attrs.items())})")
        else:
            lines.append("    o = _new(_cls)")
            for name, setter in setters.items():
                env[f"_set_{name}"] = setter
                lines.append(f"    _set_{name}(o, {attrs[name]})")
            lines.append("    return o")
    exec("\n".join(lines), env)  # source built above from the field tables only
    return env["build"]  # type: ignore[no-any-return]


def _slot_setters(cls: type, names: list[str]) -> dict[str, Any] | None:
    """Slot descriptors' setters for a frozen slots dataclass whose fields are exactly
    ``names`` and that has no ``__post_init__``; then building through them is what the
    generated ``__init__`` does (``object.__setattr__`` per field), minus the call overhead.
    """
    if not is_dataclass(cls) or hasattr(cls, "__post_init__"):
        return None
    declared = [f.name for f in dc_fields(cls)]
    if sorted(declared) != sorted(names):
        return None
    setters = {}
    for name in declared:
        descriptor: Any = cls.__dict__.get(name)
        if type(descriptor).__name__ != "member_descriptor":
            return None
        setters[name] = descriptor.__set__
    return setters


def install() -> None:
    """Put the fast paths in place in :mod:`attest.messages.schema` (see :mod:`attest.speed`)."""
    schema._fast_claims = parse_claims
    schema._fast_payload = from_payload
