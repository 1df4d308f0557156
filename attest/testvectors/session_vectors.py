"""Session-protocol vectors (vectors/session.json): transcripts, versions, chip-side checks.

* transcripts for both roles (SPEC §7.2–§7.7): every legal round and close, every illegal frame in
  every live state (generated from the transition table, as tests/test_protocol.py does), every
  illegal send, oversized and zero-length frames, truncation, malformed bodies, the check order
  and version guards;
* the verifier's version choice (§7.4);
* the chip's processing of a CHALLENGE (§7.10) and of a RESULT (§7.12).

Each case states the outcome it is written for; generation fails if the checker disagrees.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import cbor2

from attest.codec.cbor import encode
from attest.protocol.events import (
    FRAME_EVENT_TYPES,
    Bye,
    ChallengeFrame,
    Error,
    ErrorCode,
    EvidenceFrame,
    FrameEvent,
    Hello,
    Next,
    Ping,
    Pong,
    ResultFrame,
)
from attest.protocol.framing import CODEC, MAX_FRAME_BYTES, encode_frame
from attest.protocol.kernel import Direction
from attest.protocol.machine import LIVE, Role, State, next_state
from attest.testvectors.format import VectorError, vector_document
from attest.testvectors.session_check import (
    SESSION_ALGORITHM,
    _negotiation,
    run_transcript,
)
from attest.testvectors.session_chip_vectors import challenge_group, result_group, result_token
from attest.testvectors.world import (
    NOW_S,
    World,
    build_world,
)

HEADER = [
    "The session protocol between a chip and a verifier (SPEC §7).",
    "SessionTranscript: one side's connection (role) starts in its initial state and performs",
    "the steps in order: send (our side sends the frame whose body is given), recv (these bytes",
    "arrive: parse every complete frame, stop at the first violation or close) and eof (the peer",
    "closed its side). trace gives, after each step, the state, whether a send was allowed",
    "(sent), the frames received (EOF for end of stream) and the ERROR code of a violation",
    "detected (error). After a violation or a close nothing more is parsed. result is valid when",
    "no violation was detected and every send was allowed; error is the first violation's code.",
    "VersionNegotiation: the version a verifier that speaks supported chooses for a HELLO that",
    "offers offered (null and UNSUPPORTED_VERSION when they share none).",
    "Token fields of frames are opaque to the session layer (§7.3); most transcripts carry short",
    "placeholder byte strings in them.",
    "ChallengeProcessing / ResultProcessing: a chip's checks of a CHALLENGE (§7.10) and of a",
    "RESULT (§7.12) under the group's trust anchors; refusal names the first failed check.",
]

NOTES = {
    "Legal": "A legal sequence of frames.",
    "UnexpectedFrame": "A well-formed frame the transition table does not allow in that state.",
    "IllegalSend": "Our side tries a move the table does not allow: the send is refused.",
    "Close": "BYE, ERROR or end of stream: orderly and abrupt ends, and crossing frames.",
    "Framing": "Length header and body framing: oversized, zero, truncated, split, coalesced.",
    "MaxSize": "Frames at and one byte beyond max_frame_bytes (65 536).",
    "MalformedBody": "A body that is not a valid frame: CBOR, frame shape or field types.",
    "CheckOrder": "Several checks fail; the first in §7.6's order decides the code.",
    "Version": "Version negotiation and the version guards of §7.4.",
    "ChallengeCheck": "A chip's check of a CHALLENGE (§7.10).",
    "ResultCheck": "A chip's check of a RESULT (§7.12).",
    "Boundary": "A time exactly at, or one second before, an expiry.",
}

_FRAME_NAMES = {cls: CODEC.name_of(cls) for cls in FRAME_EVENT_TYPES}


@dataclass(frozen=True, slots=True)
class _Tokens:
    """Real tokens for the frames of a transcript (frames treat them as opaque)."""

    device_cert: bytes
    manufacturer_cert: bytes
    verifier_cert: bytes
    challenge: bytes
    evidence: bytes
    result: bytes


def _tokens(w: World) -> _Tokens:
    chip = w.chip("hx100-a")
    v = w.verifiers["kl-1"]
    ch, token = w.challenge("session/round1")
    evidence = chip.answer(chip.accept_challenge(v.cert, token, NOW_S), NOW_S + 1)
    result = result_token(w, ch, chip.ueid)
    return _Tokens(
        chip.chain.device_cert, chip.chain.manufacturer_cert, v.cert, token, evidence, result
    )


# -- transcripts ----------------------------------------------------------------------------------


@dataclass
class _Case:
    comment: str
    flags: tuple[str, ...]
    sections: tuple[str, ...]
    role: str
    steps: list[dict[str, Any]]
    valid: bool
    error: str | None = None


def _send(event: FrameEvent) -> dict[str, Any]:
    return {"op": "send", "frame": encode_frame(event)[4:].hex()}


def _recv(data: bytes) -> dict[str, Any]:
    return {"op": "recv", "data": data.hex()}


def _recv_frame(event: FrameEvent) -> dict[str, Any]:
    return _recv(encode_frame(event))


def _eof() -> dict[str, Any]:
    return {"op": "eof"}


def _raw(body: bytes) -> bytes:
    """A frame with an arbitrary body (for bodies no encoder would produce)."""
    return struct.pack(">I", len(body)) + body


class _Frames:
    """One instance of every frame type, with real tokens."""

    def __init__(self, t: _Tokens) -> None:
        self.t = t
        self.hello = Hello((1,), t.device_cert, t.manufacturer_cert)
        self.challenge = ChallengeFrame(1, t.verifier_cert, t.challenge)
        self.evidence = EvidenceFrame(t.evidence)
        self.result = ResultFrame(t.result)
        self.next = Next()
        self.bye = Bye()
        self.error = Error(ErrorCode.TIMEOUT, "timeout")
        self.ping = Ping(bytes(range(32)))  # location verification (§15.2)
        self.pong = Pong(b"ping-response")

    def of(self, cls: type[FrameEvent]) -> FrameEvent:
        by_cls: dict[type[FrameEvent], FrameEvent] = {
            Hello: self.hello,
            ChallengeFrame: self.challenge,
            EvidenceFrame: self.evidence,
            ResultFrame: self.result,
            Next: self.next,
            Bye: self.bye,
            Error: self.error,
            Ping: self.ping,
            Pong: self.pong,
        }
        return by_cls[cls]


def _prefixes(f: _Frames) -> dict[tuple[Role, State], list[dict[str, Any]]]:
    """A shortest legal sequence of steps that brings each role into each live state."""
    v, c = Role.VERIFIER, Role.CHIP
    return {
        (v, State.AWAIT_HELLO): [],
        (v, State.SEND_CHALLENGE): [_recv_frame(f.hello)],
        (v, State.AWAIT_EVIDENCE): [_recv_frame(f.hello), _send(f.challenge)],
        (v, State.SEND_RESULT): [
            _recv_frame(f.hello),
            _send(f.challenge),
            _recv_frame(f.evidence),
        ],
        (v, State.AWAIT_PONG): [
            _recv_frame(f.hello),
            _send(f.challenge),
            _recv_frame(f.evidence),
            _send(f.ping),
        ],
        (v, State.IDLE): [
            _recv_frame(f.hello),
            _send(f.challenge),
            _recv_frame(f.evidence),
            _send(f.result),
        ],
        (c, State.SEND_HELLO): [],
        (c, State.AWAIT_CHALLENGE): [_send(f.hello)],
        (c, State.SEND_EVIDENCE): [_send(f.hello), _recv_frame(f.challenge)],
        (c, State.AWAIT_RESULT): [_send(f.hello), _recv_frame(f.challenge), _send(f.evidence)],
        (c, State.SEND_PONG): [
            _send(f.hello),
            _recv_frame(f.challenge),
            _send(f.evidence),
            _recv_frame(f.ping),
        ],
        (c, State.IDLE): [
            _send(f.hello),
            _recv_frame(f.challenge),
            _send(f.evidence),
            _recv_frame(f.result),
        ],
    }


def _table_cases(f: _Frames) -> list[_Case]:
    """Every illegal received frame and every illegal send, in every live state of both roles."""
    cases: list[_Case] = []
    prefixes = _prefixes(f)
    for role in (Role.VERIFIER, Role.CHIP):
        for state in LIVE[role]:
            prefix = prefixes[(role, state)]
            for cls in FRAME_EVENT_TYPES:
                name = _FRAME_NAMES[cls]
                if next_state(role, state, Direction.RECV, cls) is None:
                    cases.append(
                        _Case(
                            f"{role.value} in {state.value} receives {name}",
                            ("UnexpectedFrame",),
                            ("7.6",),
                            role.value,
                            [*prefix, _recv_frame(f.of(cls))],
                            False,
                            "UNEXPECTED_FRAME",
                        )
                    )
                if next_state(role, state, Direction.SEND, cls) is None:
                    cases.append(
                        _Case(
                            f"{role.value} in {state.value} may not send {name}",
                            ("IllegalSend",),
                            ("7.6",),
                            role.value,
                            [*prefix, _send(f.of(cls))],
                            False,
                        )
                    )
            # ERROR is legal from every live state, in both directions
            cases.append(
                _Case(
                    f"{role.value} in {state.value} receives ERROR TIMEOUT: closed",
                    ("Close", "Legal"),
                    ("7.6", "7.7"),
                    role.value,
                    [*prefix, _recv_frame(f.error)],
                    True,
                )
            )
    return cases


def _transcript_cases(f: _Frames) -> list[_Case]:
    v, c = "verifier", "chip"
    p = _prefixes(f)
    V, C = Role.VERIFIER, Role.CHIP
    hello2 = Hello((1, 2), f.t.device_cert, f.t.manufacturer_cert)
    ev = f.evidence
    cases = [
        _Case(
            "verifier: two rounds on one connection (NEXT), then the chip's BYE and end of stream",
            ("Legal",),
            ("7.5", "7.6"),
            v,
            [
                *p[(V, State.IDLE)],
                _recv_frame(f.next),
                _send(f.challenge),
                _recv_frame(ev),
                _send(f.result),
                _recv_frame(f.bye),
                _eof(),
            ],
            True,
        ),
        _Case(
            "chip: two rounds on one connection, then BYE",
            ("Legal",),
            ("7.5", "7.6"),
            c,
            [
                *p[(C, State.IDLE)],
                _send(f.next),
                _recv_frame(f.challenge),
                _send(ev),
                _recv_frame(f.result),
                _send(f.bye),
            ],
            True,
        ),
        _Case(
            "verifier: two PINGs, each answered by a PONG, between EVIDENCE and RESULT",
            ("Legal",),
            ("7.6", "15.2"),
            v,
            [
                *p[(V, State.SEND_RESULT)],
                _send(f.ping),
                _recv_frame(f.pong),
                _send(f.ping),
                _recv_frame(f.pong),
                _send(f.result),
            ],
            True,
        ),
        _Case(
            "chip: answers a PING with a PONG, then takes the RESULT",
            ("Legal",),
            ("7.6", "15.2"),
            c,
            [*p[(C, State.SEND_PONG)], _send(f.pong), _recv_frame(f.result)],
            True,
        ),
        _Case(
            "chip: RESULT carrying a license grant [license, null]",
            ("Legal",),
            ("7.3",),
            c,
            [*p[(C, State.AWAIT_RESULT)], _recv_frame(ResultFrame(f.t.result, (b"\xd2", None)))],
            True,
        ),
        _Case(
            "chip: RESULT carrying a license grant [license, delegation]",
            ("Legal",),
            ("7.3",),
            c,
            [
                *p[(C, State.AWAIT_RESULT)],
                _recv_frame(ResultFrame(f.t.result, (b"\xd2", b"\xd2"))),
            ],
            True,
        ),
        _Case(
            "verifier declines the round: BYE instead of CHALLENGE",
            ("Close", "Legal"),
            ("7.7",),
            v,
            [*p[(V, State.SEND_CHALLENGE)], _send(f.bye)],
            True,
        ),
        _Case(
            "chip closes instead of HELLO",
            ("Close", "Legal"),
            ("7.7",),
            c,
            [_send(f.bye)],
            True,
        ),
        _Case(
            "verifier: BYE before HELLO",
            ("Close", "Legal"),
            ("7.6",),
            v,
            [_recv_frame(f.bye)],
            True,
        ),
        _Case(
            "verifier idle close: BYE in IDLE",
            ("Close", "Legal"),
            ("7.7",),
            v,
            [*p[(V, State.IDLE)], _send(f.bye)],
            True,
        ),
        _Case(
            "chip: the verifier's idle BYE crosses the chip's NEXT (BYE in AWAIT_CHALLENGE)",
            ("Close", "Legal"),
            ("7.7",),
            c,
            [*p[(C, State.IDLE)], _send(f.next), _recv_frame(f.bye)],
            True,
        ),
        _Case(
            "chip: the verifier's BYE in IDLE",
            ("Close", "Legal"),
            ("7.6",),
            c,
            [*p[(C, State.IDLE)], _recv_frame(f.bye)],
            True,
        ),
        _Case(
            "verifier: after the chip's BYE, a crossing NEXT is discarded, then end of stream",
            ("Close", "Legal"),
            ("7.7",),
            v,
            [*p[(V, State.IDLE)], _recv(encode_frame(f.bye) + encode_frame(f.next)), _eof()],
            True,
        ),
        _Case(
            "verifier: end of stream at a frame boundary while awaiting EVIDENCE (abrupt close)",
            ("Close", "Legal"),
            ("7.7",),
            v,
            [*p[(V, State.AWAIT_EVIDENCE)], _eof()],
            True,
        ),
        _Case(
            "chip: end of stream at a frame boundary in IDLE",
            ("Close", "Legal"),
            ("7.7",),
            c,
            [*p[(C, State.IDLE)], _eof()],
            True,
        ),
        _Case(
            "verifier sends ERROR TIMEOUT out of turn while awaiting EVIDENCE",
            ("Close", "Legal"),
            ("7.7", "7.9"),
            v,
            [*p[(V, State.AWAIT_EVIDENCE)], _send(Error(ErrorCode.TIMEOUT, "session deadline"))],
            True,
        ),
        _Case(
            "chip accepts an ERROR with a code it does not know (99)",
            ("Close", "Legal"),
            ("7.7", "7.8"),
            c,
            [*p[(C, State.AWAIT_CHALLENGE)], _recv_frame(Error(99, "from a newer peer"))],
            True,
        ),
        _Case(
            "ERROR text of 256 characters (the maximum)",
            ("Close", "Legal", "Boundary"),
            ("7.3",),
            c,
            [*p[(C, State.AWAIT_CHALLENGE)], _recv_frame(Error(ErrorCode.OVERLOADED, "é" * 256))],
            True,
        ),
        _Case(
            "ERROR with empty text",
            ("Close", "Legal"),
            ("7.3",),
            v,
            [_recv_frame(Error(ErrorCode.INTERNAL, ""))],
            True,
        ),
        _Case(
            "after a violation: one ERROR may be sent, a second is refused, later bytes discarded",
            ("Close", "UnexpectedFrame"),
            ("7.6", "7.7"),
            v,
            [
                _recv_frame(f.next),
                _send(Error(ErrorCode.UNEXPECTED_FRAME, "NEXT before HELLO")),
                _send(Error(ErrorCode.UNEXPECTED_FRAME, "again")),
                _recv_frame(f.hello),
            ],
            False,
            "UNEXPECTED_FRAME",
        ),
        _Case(
            "after receiving BYE the chip may not send",
            ("Close", "IllegalSend"),
            ("7.7",),
            c,
            [*p[(C, State.IDLE)], _recv_frame(f.bye), _send(f.next)],
            False,
        ),
        # -- framing
        _Case(
            "frame split across reads: header, then body in two parts",
            ("Framing", "Legal"),
            ("7.2",),
            v,
            [
                _recv(encode_frame(f.hello)[:4]),
                _recv(encode_frame(f.hello)[4:20]),
                _recv(encode_frame(f.hello)[20:]),
            ],
            True,
        ),
        _Case(
            "two frames in one read: RESULT then BYE",
            ("Framing", "Legal"),
            ("7.2",),
            c,
            [*p[(C, State.AWAIT_RESULT)], _recv(encode_frame(f.result) + encode_frame(f.bye))],
            True,
        ),
        _Case(
            "length 65 537 is refused from the header alone, before any body byte",
            ("Framing", "MaxSize"),
            ("7.2",),
            v,
            [_recv(struct.pack(">I", MAX_FRAME_BYTES + 1))],
            False,
            "FRAME_TOO_LARGE",
        ),
        _Case(
            "length 2^32 - 1",
            ("Framing",),
            ("7.2",),
            c,
            [*p[(C, State.AWAIT_CHALLENGE)], _recv(b"\xff\xff\xff\xff")],
            False,
            "FRAME_TOO_LARGE",
        ),
        _Case(
            "zero length",
            ("Framing",),
            ("7.2",),
            v,
            [_recv(b"\x00\x00\x00\x00")],
            False,
            "MALFORMED_FRAME",
        ),
        _Case(
            "end of stream inside the length header",
            ("Framing", "Close"),
            ("7.2",),
            v,
            [_recv(b"\x00\x00"), _eof()],
            False,
            "MALFORMED_FRAME",
        ),
        _Case(
            "end of stream inside the body",
            ("Framing", "Close"),
            ("7.2",),
            v,
            [_recv(encode_frame(f.hello)[:-1]), _eof()],
            False,
            "MALFORMED_FRAME",
        ),
        _Case(
            "EVIDENCE frame whose body is exactly 65 536 bytes",
            ("Framing", "MaxSize", "Legal"),
            ("7.2",),
            v,
            [*p[(V, State.AWAIT_EVIDENCE)], _recv(encode_frame(EvidenceFrame(bytes(65531))))],
            True,
        ),
        _Case(
            "EVIDENCE frame whose body is 65 537 bytes",
            ("Framing", "MaxSize"),
            ("7.2",),
            v,
            [*p[(V, State.AWAIT_EVIDENCE)], _recv(_raw(encode([3, bytes(65532)])))],
            False,
            "FRAME_TOO_LARGE",
        ),
    ]
    # -- malformed bodies (each in a state where the frame type would be legal)
    bad_bodies: list[tuple[str, bytes, tuple[str, ...]]] = [
        ("body is not CBOR (a lone break code)", b"\xff", ()),
        ("body is a map, not an array", encode({1: 1}), ()),
        ("body is an empty array", b"\x80", ()),
        ("frame type is a text string", encode(["HELLO"]), ()),
        ("unknown frame type 8", encode([8]), ()),
        ("frame type 0", encode([0]), ()),
        ("HELLO with a field missing", encode([1, [1], f.t.device_cert]), ()),
        (
            "HELLO with an extra field",
            encode([1, [1], f.t.device_cert, f.t.manufacturer_cert, b""]),
            (),
        ),
        ("HELLO with no versions", encode([1, [], f.t.device_cert, f.t.manufacturer_cert]), ()),
        (
            "HELLO with nine versions",
            encode([1, list(range(1, 10)), f.t.device_cert, f.t.manufacturer_cert]),
            (),
        ),
        (
            "HELLO versions is an integer",
            encode([1, 1, f.t.device_cert, f.t.manufacturer_cert]),
            (),
        ),
        (
            "HELLO version is negative",
            encode([1, [-1], f.t.device_cert, f.t.manufacturer_cert]),
            (),
        ),
        (
            "HELLO certificate is a text string",
            encode([1, [1], "cert", f.t.manufacturer_cert]),
            (),
        ),
        (
            "HELLO with a non-shortest integer (not deterministic CBOR)",
            b"\x84\x01\x81\x18\x01" + encode(f.t.device_cert) + encode(f.t.manufacturer_cert),
            (),
        ),
        (
            "HELLO with an indefinite-length array",
            b"\x9f\x01\x81\x01" + encode(f.t.device_cert) + encode(f.t.manufacturer_cert) + b"\xff",
            (),
        ),
        ("HELLO followed by a trailing byte", encode_frame(f.hello)[4:] + b"\x00", ()),
    ]
    for comment, body, _ in bad_bodies:
        cases.append(
            _Case(
                f"verifier: {comment}",
                ("MalformedBody",),
                ("7.2", "7.3"),
                v,
                [_recv(_raw(body))],
                False,
                "MALFORMED_FRAME",
            )
        )
    chip_bad: list[tuple[str, bytes, State]] = [
        ("RESULT with an explicit null grant", encode([4, f.t.result, None]), State.AWAIT_RESULT),
        (
            "RESULT grant of one element",
            encode([4, f.t.result, [f.t.result]]),
            State.AWAIT_RESULT,
        ),
        (
            "RESULT grant whose delegation is a text string",
            encode([4, f.t.result, [f.t.result, "d"]]),
            State.AWAIT_RESULT,
        ),
        ("ERROR text of 257 characters", encode([7, 1, "x" * 257]), State.AWAIT_CHALLENGE),
        ("ERROR code is negative", encode([7, -1, ""]), State.AWAIT_CHALLENGE),
        ("ERROR without text", encode([7, 1]), State.AWAIT_CHALLENGE),
        ("NEXT with a field", encode([5, 0]), State.AWAIT_CHALLENGE),
        (
            "CHALLENGE version is a byte string",
            encode([2, b"\x01", f.t.verifier_cert, f.t.challenge]),
            State.AWAIT_CHALLENGE,
        ),
        (
            "CHALLENGE version 2^64 (a bignum tag)",
            cbor2.dumps([2, 2**64, f.t.verifier_cert, f.t.challenge]),
            State.AWAIT_CHALLENGE,
        ),
    ]
    for comment, body, state in chip_bad:
        cases.append(
            _Case(
                f"chip: {comment}",
                ("MalformedBody",),
                ("7.2", "7.3"),
                c,
                [*p[(C, state)], _recv(_raw(body))],
                False,
                "MALFORMED_FRAME",
            )
        )
    # -- check order and versions
    cases += [
        _Case(
            "malformed and unexpected (a NEXT with a field before HELLO): framing first",
            ("CheckOrder", "MalformedBody"),
            ("7.6",),
            v,
            [_recv(_raw(encode([5, 0])))],
            False,
            "MALFORMED_FRAME",
        ),
        _Case(
            "oversized and unexpected: the length is judged first",
            ("CheckOrder", "Framing"),
            ("7.6",),
            c,
            [_recv(struct.pack(">I", MAX_FRAME_BYTES + 1) + b"\x85")],
            False,
            "FRAME_TOO_LARGE",
        ),
        _Case(
            "CHALLENGE with a version never offered, before HELLO: the table first",
            ("CheckOrder", "Version", "UnexpectedFrame"),
            ("7.6",),
            c,
            [_recv_frame(ChallengeFrame(2, f.t.verifier_cert, f.t.challenge))],
            False,
            "UNEXPECTED_FRAME",
        ),
        _Case(
            "chip offered [1]; CHALLENGE names version 2",
            ("Version",),
            ("7.4",),
            c,
            [_send(f.hello), _recv_frame(ChallengeFrame(2, f.t.verifier_cert, f.t.challenge))],
            False,
            "UNSUPPORTED_VERSION",
        ),
        _Case(
            "chip offered [1, 2]; CHALLENGE names 2: accepted",
            ("Version", "Legal"),
            ("7.4",),
            c,
            [_send(hello2), _recv_frame(ChallengeFrame(2, f.t.verifier_cert, f.t.challenge))],
            True,
        ),
        _Case(
            "chip offered [1, 2]; the second round's CHALLENGE changes the version to 1",
            ("Version",),
            ("7.4",),
            c,
            [
                _send(hello2),
                _recv_frame(ChallengeFrame(2, f.t.verifier_cert, f.t.challenge)),
                _send(ev),
                _recv_frame(f.result),
                _send(f.next),
                _recv_frame(f.challenge),
            ],
            False,
            "UNSUPPORTED_VERSION",
        ),
        _Case(
            "verifier may not send a CHALLENGE with a version the chip did not offer",
            ("Version", "IllegalSend"),
            ("7.4",),
            v,
            [_recv_frame(f.hello), _send(ChallengeFrame(2, f.t.verifier_cert, f.t.challenge))],
            False,
        ),
        _Case(
            "HELLO offers only [2, 3]: the verifier answers ERROR UNSUPPORTED_VERSION and closes",
            ("Version", "Close", "Legal"),
            ("7.4",),
            v,
            [
                _recv_frame(Hello((2, 3), f.t.device_cert, f.t.manufacturer_cert)),
                _send(Error(ErrorCode.UNSUPPORTED_VERSION, "no common version")),
            ],
            True,
        ),
    ]
    return cases


def _transcript_group(f: _Frames, role: str, cases: list[_Case], first_tc: int) -> dict[str, Any]:
    tests = []
    tc = first_tc
    for case in cases:
        if case.role != role:
            continue
        out = run_transcript(role, MAX_FRAME_BYTES, case.steps)
        want = ("valid" if case.valid else "invalid", case.error)
        if (out["result"], out["error"]) != want:
            raise VectorError(f"session case {case.comment!r}: meant {want}, got {out}")
        tests.append(
            {
                "tcId": tc,
                "comment": case.comment,
                "flags": list(case.flags),
                "sections": list(case.sections),
                "steps": case.steps,
                **out,
            }
        )
        tc += 1
    return {
        "type": "SessionTranscript",
        "comment": f"the {role}'s side of a session",
        "outputs": ["result", "error", "trace"],
        "role": role,
        "maxFrameBytes": MAX_FRAME_BYTES,
        "tests": tests,
    }


# -- version negotiation and the chip's checks ----------------------------------------------------


def _negotiation_group(first_tc: int) -> dict[str, Any]:
    rows: list[tuple[str, list[int], list[int]]] = [
        ("both speak 1", [1], [1]),
        ("chip speaks 1 and 2, verifier 1", [1, 2], [1]),
        ("chip speaks 2, verifier 1: none in common", [2], [1]),
        ("highest common version, whatever the order offered", [3, 1, 2], [1, 2, 3]),
        ("highest common version: 5", [5, 4], [1, 4, 5]),
        ("version 0 only", [0], [1]),
        ("a version offered twice", [1, 1], [1]),
        ("eight versions (the maximum)", [1, 2, 3, 4, 5, 6, 7, 8], [1]),
        ("the largest uint next to 1", [2**64 - 1, 1], [1]),
    ]
    tests = []
    for i, (comment, offered, supported) in enumerate(rows):
        t = {
            "tcId": first_tc + i,
            "comment": comment,
            "flags": ["Version"],
            "sections": ["7.4"],
            "offered": offered,
            "supported": supported,
        }
        tests.append({**t, **_negotiation(t)})
    return {
        "type": "VersionNegotiation",
        "comment": "the verifier chooses the highest version it shares with the chip",
        "outputs": ["chosen", "error"],
        "tests": tests,
    }


#: Frames treat tokens as opaque byte strings (§7.3): most transcripts carry these short
#: placeholders, only the two-round transcripts real tokens.
_PLACEHOLDERS = _Tokens(
    b"device-cert", b"manufacturer-cert", b"verifier-cert", b"challenge", b"evidence", b"result"
)


def session_document(w: World | None = None) -> dict[str, Any]:
    w = w or build_world()
    real = _transcript_cases(_Frames(_tokens(w)))[:2]
    f = _Frames(_PLACEHOLDERS)
    cases = real + _table_cases(f) + _transcript_cases(f)[2:]
    groups = []
    tc = 1
    for role in ("verifier", "chip"):
        g = _transcript_group(f, role, cases, tc)
        tc += len(g["tests"])
        groups.append(g)
    for kind in ("negotiation", "challenge", "result"):
        if kind == "negotiation":
            g = _negotiation_group(tc)
        elif kind == "challenge":
            g = challenge_group(w, tc)
        else:
            g = result_group(w, tc)
        tc += len(g["tests"])
        groups.append(g)
    used = {fl for g in groups for t in g["tests"] for fl in t["flags"]}
    if used - set(NOTES):
        raise VectorError(f"flags without a note: {sorted(used - set(NOTES))}")
    return vector_document(
        SESSION_ALGORITHM, tc - 1, HEADER, {k: v for k, v in NOTES.items() if k in used}, groups
    )
