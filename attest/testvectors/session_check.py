"""Re-verify ``vectors/session.json`` (the session protocol, SPEC §7) from its JSON alone.

Four groups, each judged by comparing the outputs computed here with the group's ``outputs``:

* ``SessionTranscript`` — one side's Connection fed a sequence of sends, received bytes and
  end of stream (§7.2–§7.7): the state and events after every step and the ERROR code;
* ``VersionNegotiation`` — the verifier's choice of version (§7.4);
* ``ChallengeProcessing`` — a chip's checks of a CHALLENGE (§7.10);
* ``ResultProcessing`` — a chip's checks of a RESULT (§7.12).

Like the other checkers it imports nothing from the generator or the test world.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from attest.chip.device import check_challenge, check_result
from attest.errors import ChipRefusal, LocalProtocolError, RemoteProtocolError
from attest.keys import PublicKey
from attest.protocol.connection import Connection
from attest.protocol.events import NEED_DATA, ConnectionClosed, ErrorCode, Hello
from attest.protocol.framing import CODEC, decode_body
from attest.protocol.machine import Role, State, choose_version
from attest.testvectors.format import judged
from attest.verify.chain import TrustAnchors

SESSION_FILE = "session.json"
SESSION_ALGORITHM = "attest-session"

_Run = Callable[[dict[str, Any]], list[str]]
_TERMINAL = (State.CLOSED, State.ERROR)


def code_name(code: int) -> str:
    """An ERROR code's name (§7.8), or its decimal value for a code this build does not know."""
    try:
        return ErrorCode(code).name
    except ValueError:
        return str(code)


def _receive(conn: Connection, data: bytes) -> tuple[list[str], str | None]:
    """Feed ``data`` (``b""``: end of stream) and parse every complete frame (§7.7 rules)."""
    if conn.state is State.ERROR:
        return [], None  # nothing is parsed after a violation; the bytes are discarded
    conn.receive_data(data)
    events: list[str] = []
    while True:
        try:
            event = conn.next_event()
        except RemoteProtocolError as exc:
            return events, code_name(exc.error_code)
        if event is NEED_DATA:
            return events, None
        if isinstance(event, ConnectionClosed):
            events.append("EOF")
            return events, None
        events.append(CODEC.name_of(type(event)))


def run_transcript(role: str, max_frame_bytes: int, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The outputs of a SessionTranscript test: ``result``, ``error`` and ``trace``."""
    conn = Connection(Role(role), max_frame_bytes)
    trace: list[dict[str, Any]] = []
    first_error: str | None = None
    refused = False
    for step in steps:
        op = step["op"]
        if op == "send":
            try:
                conn.send(decode_body(bytes.fromhex(step["frame"])))
                sent = True
            except LocalProtocolError:
                sent, refused = False, True
            trace.append({"state": conn.state.value, "sent": sent, "received": None, "error": None})
            continue
        data = b"" if op == "eof" else bytes.fromhex(step["data"])
        events, error = _receive(conn, data)
        first_error = first_error or error
        trace.append({"state": conn.state.value, "sent": None, "received": events, "error": error})
    ok = first_error is None and not refused
    return {"result": "valid" if ok else "invalid", "error": first_error, "trace": trace}


def _transcript(group: dict[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda t: run_transcript(group["role"], group["maxFrameBytes"], t["steps"])


def _negotiation(t: dict[str, Any]) -> dict[str, Any]:
    chosen = choose_version(Hello(tuple(t["offered"]), b"", b""), t["supported"])
    return {"chosen": chosen, "error": None if chosen is not None else "UNSUPPORTED_VERSION"}


def _anchors(group: dict[str, Any]) -> TrustAnchors:
    ta = group["trustAnchors"]
    return TrustAnchors(ta["authorityId"], PublicKey(bytes.fromhex(ta["authorityKey"])))


def _challenge(anchors: TrustAnchors) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def compute(t: dict[str, Any]) -> dict[str, Any]:
        try:
            check_challenge(
                bytes.fromhex(t["verifierCert"]), bytes.fromhex(t["challenge"]), anchors, t["nowS"]
            )
        except ChipRefusal as exc:
            return {"result": "invalid", "refusal": str(exc.reason)}
        return {"result": "valid", "refusal": None}

    return compute


def _result(anchors: TrustAnchors) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def compute(t: dict[str, Any]) -> dict[str, Any]:
        try:
            check_result(
                bytes.fromhex(t["verifierCert"]),
                bytes.fromhex(t["resultToken"]),
                anchors,
                ueid=bytes.fromhex(t["chipUeid"]),
                nonce=bytes.fromhex(t["roundNonce"]),
                verifier_id=t["roundVerifierId"],
            )
        except ChipRefusal as exc:
            return {"result": "invalid", "refusal": str(exc.reason)}
        return {"result": "valid", "refusal": None}

    return compute


def session_groups(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], _Run]]:
    """(group, test runner) for every group of a session vector file."""
    for g in doc["testGroups"]:
        kind = g["type"]
        if kind == "SessionTranscript":
            yield g, judged(g, _transcript(g))
        elif kind == "VersionNegotiation":
            yield g, judged(g, _negotiation)
        elif kind == "ChallengeProcessing":
            yield g, judged(g, _challenge(_anchors(g)))
        elif kind == "ResultProcessing":
            yield g, judged(g, _result(_anchors(g)))
        else:
            raise ValueError(f"unknown session group type {kind!r}")
