#!/usr/bin/env python3
"""An example implementation adapter for ``attest vectors check --impl`` (vectors/README.md).

Plain Python 3.11, standard library only, written from SPEC.md alone: it imports nothing from
``attest``. It implements

* ``attest-deterministic-cbor`` (cbor_decoding.json): the strict decoder of SPEC §4.1 and the
  diagnostic notation of §15.4;
* ``attest-session`` (session.json): the session state machines of §7.2–§7.7 (groups
  SessionTranscript and VersionNegotiation; the chip's token checks need Ed25519 and are
  declared unsupported);
* ``attest-audit-log`` (audit.json): the entry hash rule of §11.1 (AuditEntryHash; auditing
  checkpoints needs Ed25519 and is declared unsupported);

and answers ``{"unsupported": ...}`` for every other file. Usage::

    attest vectors check --impl "python3 vectors/impl/example_adapter.py"

Protocol: one JSON request on stdin ``{"protocol": "attest-vectors-impl/1", "file": NAME,
"document": FILE}``; one JSON answer on stdout ``{"results": [{"tcId": N, "outputs": {...}} |
{"tcId": N, "unsupported": WHY}]}`` or ``{"unsupported": WHY}``; exit status 0.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from typing import Any

# -- deterministic CBOR (SPEC §4.1) ---------------------------------------------------------------

MAX_BYTES = 65536
MAX_DEPTH = 8


class Malformed(Exception):
    """The input is not one deterministic CBOR item of the allowed kinds."""


def _head(data: bytes, pos: int) -> tuple[int, int, int, int]:
    """(major type, additional info, argument, next position); checks shortest form."""
    if pos >= len(data):
        raise Malformed("truncated")
    ib = data[pos]
    major, info = ib >> 5, ib & 0x1F
    pos += 1
    if info < 24:
        return major, info, info, pos
    if info > 27:
        raise Malformed("reserved or indefinite length")
    n = 1 << (info - 24)
    if pos + n > len(data):
        raise Malformed("truncated")
    arg = int.from_bytes(data[pos : pos + n], "big")
    smallest = {24: 24, 25: 256, 26: 65536, 27: 1 << 32}[info]
    if arg < smallest:
        raise Malformed("not the shortest form")
    return major, info, arg, pos + n


def _item(data: bytes, pos: int, depth: int) -> tuple[Any, int]:
    if depth > MAX_DEPTH:
        raise Malformed("too deep")
    major, info, arg, pos = _head(data, pos)
    if major == 0:
        return arg, pos
    if major == 1:
        return -1 - arg, pos
    if major in (2, 3):
        if pos + arg > len(data):
            raise Malformed("truncated")
        raw = data[pos : pos + arg]
        if major == 2:
            return bytes(raw), pos + arg
        try:
            return raw.decode("utf-8"), pos + arg
        except UnicodeDecodeError:
            raise Malformed("invalid UTF-8") from None
    if major == 4:
        out = []
        for _ in range(arg):
            v, pos = _item(data, pos, depth + 1)
            out.append(v)
        return out, pos
    if major == 5:
        result: dict[Any, Any] = {}
        last = b""
        for i in range(arg):
            start = pos
            k, pos = _item(data, pos, depth + 1)
            if type(k) not in (int, bytes, str):
                raise Malformed("map key type")
            encoded = data[start:pos]
            if i and encoded <= last:
                raise Malformed("map keys not in strictly increasing order")
            last = encoded
            v, pos = _item(data, pos, depth + 1)
            result[(type(k), k)] = v
        return _Map(result), pos
    if major == 6:
        raise Malformed("tags are not allowed")
    # major 7: simple values and floats
    if info == 20:
        return False, pos
    if info == 21:
        return True, pos
    if info == 22:
        return None, pos
    raise Malformed("float or other simple value")


class _Map(dict):  # type: ignore[type-arg]
    """A decoded map; keys are (type, value) so 1 and True never collide."""


def decode(data: bytes) -> Any:
    if len(data) > MAX_BYTES or not data:
        raise Malformed("size")
    value, pos = _item(data, 0, 1)
    if pos != len(data):
        raise Malformed("trailing bytes")
    return value


def diagnostic(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, bytes):
        return f"h'{v.hex()}'"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(diagnostic(x) for x in v) + "]"
    return "{" + ", ".join(f"{diagnostic(k[1])}: {diagnostic(x)}" for k, x in v.items()) + "}"


def encode(v: Any) -> bytes:
    """Deterministic encoding of ints, bytes, text and arrays (enough for audit entries)."""

    def head(major: int, n: int) -> bytes:
        if n < 24:
            return bytes([major << 5 | n])
        for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
            if n < 1 << (8 * size):
                return bytes([major << 5 | info]) + n.to_bytes(size, "big")
        raise ValueError("too large")

    if isinstance(v, bool) or v is None:
        raise ValueError("not needed here")
    if isinstance(v, int):
        return head(0, v) if v >= 0 else head(1, -1 - v)
    if isinstance(v, bytes):
        return head(2, len(v)) + v
    if isinstance(v, str):
        raw = v.encode("utf-8")
        return head(3, len(raw)) + raw
    if isinstance(v, list):
        return head(4, len(v)) + b"".join(encode(x) for x in v)
    raise ValueError(f"cannot encode {type(v).__name__}")


def cbor_test(group: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    try:
        value = decode(bytes.fromhex(t["input"]))
    except Malformed:
        return {"result": "invalid", "diagnostic": None}
    return {"result": "valid", "diagnostic": diagnostic(value)}


# -- the session protocol (SPEC §7.2–§7.7) --------------------------------------------------------

FRAMES = {
    1: "HELLO",
    2: "CHALLENGE",
    3: "EVIDENCE",
    4: "RESULT",
    5: "NEXT",
    6: "BYE",
    7: "ERROR",
    8: "PING",
    9: "PONG",  # location verification (§15.2)
}
CODES = {
    1: "MALFORMED_FRAME",
    2: "FRAME_TOO_LARGE",
    3: "UNEXPECTED_FRAME",
    4: "UNSUPPORTED_VERSION",
}


def _uint(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def parse_frame(body: bytes) -> tuple[str, list[Any]]:
    """(frame name, fields) of a valid frame body (§7.3), else Malformed."""
    item = decode(body)
    if not isinstance(item, list) or not item or not _uint(item[0]) or item[0] not in FRAMES:
        raise Malformed("not a frame")
    name, f = FRAMES[item[0]], item[1:]

    def need(ok: bool) -> None:
        if not ok:
            raise Malformed(f"bad {name}")

    if name == "HELLO":
        need(len(f) == 3 and isinstance(f[0], list) and 1 <= len(f[0]) <= 8)
        need(all(_uint(v) for v in f[0]) and isinstance(f[1], bytes) and isinstance(f[2], bytes))
    elif name == "CHALLENGE":
        need(len(f) == 3 and _uint(f[0]) and isinstance(f[1], bytes) and isinstance(f[2], bytes))
    elif name == "EVIDENCE":
        need(len(f) == 1 and isinstance(f[0], bytes))
    elif name == "RESULT":
        need(len(f) in (1, 2) and isinstance(f[0], bytes))
        if len(f) == 2:
            g = f[1]
            need(isinstance(g, list) and len(g) == 2 and isinstance(g[0], bytes))
            need(isinstance(g[1], bytes) or g[1] is None)
    elif name in ("NEXT", "BYE"):
        need(not f)
    elif name == "PING":
        need(len(f) == 1 and isinstance(f[0], bytes) and len(f[0]) == 32)
    elif name == "PONG":
        need(len(f) == 1 and isinstance(f[0], bytes))
    else:  # ERROR
        need(len(f) == 2 and _uint(f[0]) and isinstance(f[1], str) and len(f[1]) <= 256)
    return name, f


V, C = "verifier", "chip"
TABLE = {
    (V, "AWAIT_HELLO", "recv", "HELLO"): "SEND_CHALLENGE",
    (V, "AWAIT_HELLO", "recv", "BYE"): "CLOSED",
    (V, "SEND_CHALLENGE", "send", "CHALLENGE"): "AWAIT_EVIDENCE",
    (V, "SEND_CHALLENGE", "send", "BYE"): "CLOSED",
    (V, "AWAIT_EVIDENCE", "recv", "EVIDENCE"): "SEND_RESULT",
    (V, "SEND_RESULT", "send", "RESULT"): "IDLE",
    (V, "SEND_RESULT", "send", "PING"): "AWAIT_PONG",
    (V, "AWAIT_PONG", "recv", "PONG"): "SEND_RESULT",
    (V, "IDLE", "recv", "NEXT"): "SEND_CHALLENGE",
    (V, "IDLE", "recv", "BYE"): "CLOSED",
    (V, "IDLE", "send", "BYE"): "CLOSED",
    (C, "SEND_HELLO", "send", "HELLO"): "AWAIT_CHALLENGE",
    (C, "SEND_HELLO", "send", "BYE"): "CLOSED",
    (C, "AWAIT_CHALLENGE", "recv", "CHALLENGE"): "SEND_EVIDENCE",
    (C, "AWAIT_CHALLENGE", "recv", "BYE"): "CLOSED",
    (C, "SEND_EVIDENCE", "send", "EVIDENCE"): "AWAIT_RESULT",
    (C, "AWAIT_RESULT", "recv", "RESULT"): "IDLE",
    (C, "AWAIT_RESULT", "recv", "PING"): "SEND_PONG",
    (C, "SEND_PONG", "send", "PONG"): "AWAIT_RESULT",
    (C, "IDLE", "send", "NEXT"): "AWAIT_CHALLENGE",
    (C, "IDLE", "send", "BYE"): "CLOSED",
    (C, "IDLE", "recv", "BYE"): "CLOSED",
}
LIVE = {
    V: ("AWAIT_HELLO", "SEND_CHALLENGE", "AWAIT_EVIDENCE", "SEND_RESULT", "AWAIT_PONG", "IDLE"),
    C: ("SEND_HELLO", "AWAIT_CHALLENGE", "SEND_EVIDENCE", "AWAIT_RESULT", "SEND_PONG", "IDLE"),
}


class Session:
    def __init__(self, role: str, max_frame: int) -> None:
        self.role, self.max_frame = role, max_frame
        self.state = "AWAIT_HELLO" if role == V else "SEND_HELLO"
        self.buf = b""
        self.eof = False
        self.offered: list[int] | None = None
        self.version: int | None = None
        self.error_sent = False

    def move(self, direction: str, name: str) -> str | None:
        if name == "ERROR" and self.state in LIVE[self.role]:
            return "CLOSED"
        if name == "ERROR" and self.state == "ERROR" and direction == "send":
            return None if self.error_sent else "ERROR"
        if name == "EOF" and (self.state in LIVE[self.role] or self.state == "CLOSED"):
            return "CLOSED"
        return TABLE.get((self.role, self.state, direction, name))

    def version_ok(self, fields: list[Any]) -> bool:
        return fields[0] in (self.offered or []) and self.version in (None, fields[0])

    def send(self, body: bytes) -> bool:
        name, fields = parse_frame(body)
        new = self.move("send", name)
        if new is None or (name == "CHALLENGE" and not self.version_ok(fields)):
            return False
        if name == "HELLO":
            self.offered = fields[0]
        if name == "CHALLENGE":
            self.version = fields[0]
        if self.state == "ERROR":
            self.error_sent = True
        self.state = new
        return True

    def receive(self, data: bytes | None) -> tuple[list[str], str | None]:
        if self.state == "ERROR":
            return [], None
        if data is None:
            self.eof = True
        elif self.state != "CLOSED":
            self.buf += data
        events: list[str] = []
        try:
            while True:
                if self.state == "CLOSED":
                    self.buf = b""
                    if self.eof:
                        events.append("EOF")
                    return events, None
                if len(self.buf) < 4:
                    if self.eof and self.buf:
                        raise _Violation(1)
                    if self.eof:
                        name, fields = "EOF", []
                    else:
                        return events, None
                else:
                    (length,) = struct.unpack(">I", self.buf[:4])
                    if length == 0:
                        raise _Violation(1)
                    if length > self.max_frame:
                        raise _Violation(2)
                    if len(self.buf) < 4 + length:
                        if self.eof:
                            raise _Violation(1)
                        return events, None
                    body, self.buf = self.buf[4 : 4 + length], self.buf[4 + length :]
                    try:
                        name, fields = parse_frame(body)
                    except Malformed:
                        raise _Violation(1) from None
                new = self.move("recv", name)
                if new is None:
                    raise _Violation(3)
                if name == "HELLO":
                    self.offered = fields[0]
                if name == "CHALLENGE":
                    if not self.version_ok(fields):
                        raise _Violation(4)
                    self.version = fields[0]
                events.append(name)
                self.state = new
                if name == "EOF":
                    return events, None
        except _Violation as v:
            self.state, self.buf = "ERROR", b""
            return events, CODES[v.code]


class _Violation(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def transcript_test(group: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    s = Session(group["role"], group["maxFrameBytes"])
    trace, first, refused = [], None, False
    for step in t["steps"]:
        if step["op"] == "send":
            sent = s.send(bytes.fromhex(step["frame"]))
            refused = refused or not sent
            trace.append({"state": s.state, "sent": sent, "received": None, "error": None})
        else:
            data = None if step["op"] == "eof" else bytes.fromhex(step["data"])
            events, error = s.receive(data)
            first = first or error
            trace.append({"state": s.state, "sent": None, "received": events, "error": error})
    ok = first is None and not refused
    return {"result": "valid" if ok else "invalid", "error": first, "trace": trace}


def negotiation_test(group: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    common = set(t["offered"]) & set(t["supported"])
    chosen = max(common) if common else None
    return {"chosen": chosen, "error": None if common else "UNSUPPORTED_VERSION"}


# -- the audit hash rule (SPEC §11.1) -------------------------------------------------------------


def entry_hash_test(group: dict[str, Any], t: dict[str, Any]) -> dict[str, Any]:
    e = t["entry"]
    body = encode(
        [
            e["seq"],
            e["timeMs"],
            e["verifierId"],
            bytes.fromhex(e["ueid"]),
            e["tier"],
            list(e["reasons"]),
            bytes.fromhex(e["evidenceDigest"]),
            bytes.fromhex(e["nonce"]),
            e["kind"],
        ]
    )
    digest = hashlib.sha256(b"attest-audit-v1" + bytes.fromhex(t["prevHash"]) + body).digest()
    return {"body": body.hex(), "hash": digest.hex()}


# -- dispatch -------------------------------------------------------------------------------------

GROUPS = {
    ("attest-deterministic-cbor", "CborDecode"): cbor_test,
    ("attest-session", "SessionTranscript"): transcript_test,
    ("attest-session", "VersionNegotiation"): negotiation_test,
    ("attest-audit-log", "AuditEntryHash"): entry_hash_test,
}


def answer(request: dict[str, Any]) -> dict[str, Any]:
    doc = request["document"]
    algorithm = doc.get("algorithm")
    if not any(a == algorithm for a, _ in GROUPS):
        return {"unsupported": f"this example does not implement {algorithm}"}
    results = []
    for g in doc["testGroups"]:
        run = GROUPS.get((algorithm, g["type"]))
        for t in g["tests"]:
            if run is None:
                results.append({"tcId": t["tcId"], "unsupported": f"group {g['type']}"})
            else:
                results.append({"tcId": t["tcId"], "outputs": run(g, t)})
    return {"results": results}


def main() -> int:
    request = json.loads(sys.stdin.read())
    if request.get("protocol") != "attest-vectors-impl/1":
        print(f"unknown protocol {request.get('protocol')!r}", file=sys.stderr)
        return 2
    json.dump(answer(request), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
