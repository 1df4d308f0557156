"""Any token of the protocol in CBOR diagnostic notation, with its claims named (``attest
inspect``).

Why our own printer rather than a library such as cbor-diag (which the tests use as the
independent check): EDN allows comments (``/ ... /``) anywhere white space is, and a relying
party needs exactly those: the SPEC §5 name of each claim key, the tier and reason names of a
result, the date of a NumericDate. cbor-diag prints EDN but cannot annotate it, and it would be
a compiled dependency for what is a short walk over values our strict decoder already checked.
The notation printed here is complete: fed to an EDN parser (the tests use cbor-diag's
``diag2cbor``) it gives back the token, byte for byte, embedded payloads included (``<< >>``).

The message type is recognised from the content type in the protected header, and nothing is
verified here: inspecting a token says what it claims, not that it is true (``attest result
verify`` checks a result).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from attest.codec.cbor import decode
from attest.codec.cose import parse_general
from attest.errors import DecodeError
from attest.messages import claims as C
from attest.messages.content import ContentType
from attest.messages.schema import SignedMessage, ensure_registry
from attest.registry import MECHANISMS
from attest.verify.reasons import reason_name

_TIERS = {0: "none", 2: "affirming", 32: "warning", 96: "contraindicated"}
_DBGSTAT = {
    0: "enabled",
    1: "disabled",
    2: "disabled-since-boot",
    3: "disabled-permanently",
    4: "disabled-fully-and-permanently",
}
_HEADER_NAMES = {1: "alg", 3: "content type"}
_ALGS = {-8: "EdDSA"}
_DATES = frozenset({"iat", "exp"})
#: claims whose members are claims again (EAR appraisals, the HEM result extension)
_CLAIM_MAPS = frozenset({"hem-result", "submods/*"})
#: array-of-maps claims: the members of each element (SPEC §6.10)
_ELEMENT_NAMES = {
    "hem-rv-models": {
        1: "name",
        2: "peak_flops_per_s",
        3: "peak_power_mw",
        4: "peak_interconnect_bytes_per_s",
        5: "max_pod_size",
    },
    "hem-rv-firmware": {1: "hwmodel", 2: "version", 3: "measurement", 4: "status"},
}


def _tables() -> tuple[dict[int, str], dict[str, Mapping[int, str]]]:
    names = {**C.REGISTERED_NAMES, **C.private_claim_names(vars(C))}
    members: dict[str, Mapping[int, str]] = dict(C.MEMBER_NAMES)
    for m in MECHANISMS:
        names.update(m.claim_names)
        members.update(m.member_names)
    return names, members


CLAIM_NAMES, MEMBER_NAMES = _tables()


def message_types() -> dict[str, str]:
    """Every content type of the protocol and the name of its message type."""
    ensure_registry()
    found: dict[str, str] = {str(ContentType.AUDIT_CHECKPOINT): "AuditCheckpoint"}
    pending: list[type] = [SignedMessage]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        content_type = cls.__dict__.get("CONTENT_TYPE")
        if isinstance(content_type, str):
            found[str(content_type)] = cls.__name__
    return found


@dataclass(frozen=True, slots=True)
class Inspected:
    """A token taken apart (unverified): its envelope and its decoded payload."""

    token: bytes
    message_type: str | None
    content_type: Any
    header: dict[Any, Any]
    unprotected: dict[Any, Any]
    claims: Any
    signature: bytes


def inspect_token(token: bytes) -> Inspected:
    """Parse ``token`` as a COSE_Sign1 with a deterministic CBOR payload (DecodeError if not)."""
    envelope = parse_general(token)
    header = decode(envelope.protected) if envelope.protected else {}
    try:
        claims = decode(envelope.payload)
    except DecodeError as exc:
        raise DecodeError(f"payload: {exc}") from None
    kind = (
        message_types().get(envelope.content_type) if type(envelope.content_type) is str else None
    )
    return Inspected(
        token, kind, envelope.content_type, header, envelope.unprotected, claims, envelope.signature
    )


# -- diagnostic notation ------------------------------------------------------------------------


def _scalar(v: Any) -> str:
    if v is True:
        return "true"
    if v is False:
        return "false"
    if v is None:
        return "null"
    if type(v) is int:
        return str(v)
    if type(v) is bytes:
        return f"h'{v.hex()}'"
    if type(v) is str:
        return json.dumps(v)  # \u escapes: no control or bidi characters reach a terminal
    raise TypeError(f"no diagnostic notation for {type(v).__name__}")


def _note(name: str, v: Any) -> str:
    """A comment for value ``v`` of claim ``name`` (a tier, a reason, a date ...), or ''."""
    if (
        type(v) is bytes
        and name in ("hwmodel", "name")
        and v.isascii()
        and v.decode().isprintable()
    ):
        return json.dumps(v.decode())  # a model name (SPEC §3.2: ASCII bytes)
    if type(v) is not int:
        return ""
    if name == "ear_status":
        return _TIERS.get(v, "")
    if name == "hem-reasons/*":
        return reason_name(v)
    if name == "dbgstat":
        return _DBGSTAT.get(v, "")
    if name == "alg":
        return _ALGS.get(v, "")
    if name in _DATES and 0 <= v < 253402300800:
        when = datetime.datetime.fromtimestamp(v, datetime.UTC)
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return ""


def _members(name: str) -> Mapping[Any, str] | None:
    """The names of the keys of a map that is the value of claim ``name``."""
    if name.startswith("coswid"):  # CoSWID has one label space for all its maps
        return C.COSWID_NAMES
    if name in _CLAIM_MAPS:
        return CLAIM_NAMES
    if name.endswith("/*") and name[:-2] in _ELEMENT_NAMES:
        return _ELEMENT_NAMES[name[:-2]]
    return MEMBER_NAMES.get(name)


def _child(parent: str, key: Any, key_name: str | None) -> str:
    """The context name of the value under ``key`` in a map that is the value of ``parent``."""
    if parent.startswith("coswid"):
        return f"coswid/{key_name or key}"
    if parent == "submods" and type(key) is str:
        return "submods/*"
    return key_name or ""


def _edn(v: Any, name: str, names: Mapping[Any, str] | None, pad: str) -> str:
    inner = pad + "  "
    if type(v) is dict:
        if not v:
            return "{}"
        items = []
        for key, item in v.items():
            key_name = names.get(key) if names is not None else None
            child = _child(name, key, key_name)
            label = f"/ {key_name} / " if key_name else ""
            value = _edn(item, child, _members(child), inner)
            items.append(f"{inner}{label}{_scalar(key)}: {value}")
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if type(v) is list:
        if not v:
            return "[]"
        if name == "measurements":  # [[content format, CoSWID bytes]]: show the tag itself
            return "[" + ", ".join(_measurement(m, pad) for m in v) + "]"
        element = f"{name}/*" if name else ""
        parts = [_edn(x, element, _members(element), inner) for x in v]
        if all(type(x) is not dict and type(x) is not list for x in v) and len(v) <= 8:
            return "[" + ", ".join(parts) + "]"
        return "[\n" + ",\n".join(inner + p for p in parts) + "\n" + pad + "]"
    note = _note(name, v)
    return _scalar(v) + (f" / {note} /" if note else "")


def _measurement(m: Any, pad: str) -> str:
    if type(m) is list and len(m) == 2 and m[0] == C.COAP_SWID_CBOR and type(m[1]) is bytes:
        try:
            tag = decode(m[1])
        except DecodeError:
            return _edn(m, "", None, pad)
        return f"[{m[0]} / swid+cbor /, << {_edn(tag, 'coswid', C.COSWID_NAMES, pad)} >>]"
    return _edn(m, "", None, pad)


def diagnostic(token: bytes) -> str:
    """The whole token in CBOR diagnostic notation (RFC 8949 §8), claims named in comments."""
    t = inspect_token(token)
    kind = t.message_type or "unknown message type"
    header = _edn(t.header, "", _HEADER_NAMES, "  ")
    payload = _edn(t.claims, "", CLAIM_NAMES, "  ")
    unprotected = _edn(t.unprotected, "", None, "  ")
    return (
        f"/ {kind}, {len(token)} bytes; not verified /\n"
        "18([\n"
        f"  / protected / << {header} >>,\n"
        f"  / unprotected / {unprotected},\n"
        f"  / payload / << {payload} >>,\n"
        f"  / signature / {_scalar(t.signature)}\n"
        "])"
    )


# -- JSON -------------------------------------------------------------------------------------


def _json(v: Any, name: str, names: Mapping[Any, str] | None) -> Any:
    if type(v) is dict:
        out = {}
        for key, item in v.items():
            key_name = names.get(key) if names is not None else None
            child = _child(name, key, key_name)
            out[key_name or str(key)] = _json(item, child, _members(child))
        return out
    if type(v) is list:
        if name == "measurements":
            return [_json_measurement(m) for m in v]
        element = f"{name}/*" if name else ""
        return [_json(x, element, _members(element)) for x in v]
    if type(v) is bytes:
        return v.hex()
    return v


def _json_measurement(m: Any) -> Any:
    if type(m) is list and len(m) == 2 and m[0] == C.COAP_SWID_CBOR and type(m[1]) is bytes:
        try:
            return [m[0], _json(decode(m[1]), "coswid", C.COSWID_NAMES)]
        except DecodeError:
            pass
    return _json(m, "", None)


def as_json(token: bytes) -> dict[str, Any]:
    """The token as a JSON object: claims by name (hex for byte strings), nothing verified."""
    t = inspect_token(token)
    return {
        "type": t.message_type,
        "content_type": t.content_type,
        "bytes": len(token),
        "verified": False,
        "protected": _json(t.header, "", _HEADER_NAMES),
        "unprotected": _json(t.unprotected, "", None),
        "claims": _json(t.claims, "", CLAIM_NAMES),
        "signature": t.signature.hex(),
    }
