"""Sans-I/O session protocol: framing, both state machines, and the Connection API.

Illegal-transition tests are generated from ``TRANSITIONS`` (every (role, state, event) the table
does not list), so adding a row to the table automatically moves a case from "illegal" to
"legal" here instead of leaving the tests stale.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attest.errors import LocalProtocolError, RemoteProtocolError
from attest.protocol import (
    MAX_FRAME_BYTES,
    NEED_DATA,
    PROTOCOL_VERSION,
    TRANSITIONS,
    Bye,
    ChallengeFrame,
    Connection,
    ConnectionClosed,
    Direction,
    Error,
    ErrorCode,
    Event,
    EvidenceFrame,
    FrameEvent,
    Hello,
    Next,
    Ping,
    Pong,
    ResultFrame,
    Role,
    State,
    choose_version,
)
from attest.protocol.events import EVENT_TYPES, FRAME_EVENT_TYPES
from attest.protocol.framing import decode_body, encode_frame
from attest.protocol.machine import INITIAL, LIVE, STATES

CHIP, VERIFIER = Role.CHIP, Role.VERIFIER
SEND, RECV = Direction.SEND, Direction.RECV

#: One valid instance of every frame event (version 1 everywhere, so guards never interfere).
SAMPLES: dict[type[FrameEvent], FrameEvent] = {
    Hello: Hello((PROTOCOL_VERSION,), b"device-cert", b"manufacturer-cert"),
    ChallengeFrame: ChallengeFrame(PROTOCOL_VERSION, b"verifier-cert", b"challenge"),
    EvidenceFrame: EvidenceFrame(b"evidence"),
    ResultFrame: ResultFrame(b"result"),
    Next: Next(),
    Bye: Bye(),
    Error: Error(ErrorCode.TIMEOUT, "too slow"),
    Ping: Ping(bytes(range(32))),
    Pong: Pong(b"ping-response"),
}


def frame(event: FrameEvent) -> bytes:
    return encode_frame(event)


def raw_frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def drain(conn: Connection) -> list[Event]:
    """Every event currently available (stops at NEED_DATA or ConnectionClosed)."""
    out: list[Event] = []
    while (ev := conn.next_event()) is not NEED_DATA:
        out.append(ev)
        if isinstance(ev, ConnectionClosed):
            break
    return out


def expect_remote(conn: Connection, code: ErrorCode) -> RemoteProtocolError:
    with pytest.raises(RemoteProtocolError) as info:
        conn.next_event()
    assert info.value.error_code == code
    assert conn.state is State.ERROR
    return info.value


# ---------------------------------------------------------------------------------------------
# Reaching any state by a path taken from the table itself


def _shortest_paths(role: Role) -> dict[State, list[tuple[Direction, type[FrameEvent]]]]:
    """BFS over the frame rows of the table, from the role's initial state."""
    paths: dict[State, list[tuple[Direction, type[FrameEvent]]]] = {INITIAL[role]: []}
    queue = deque([INITIAL[role]])
    while queue:
        state = queue.popleft()
        for d in Direction:
            for t in FRAME_EVENT_TYPES:
                nxt = TRANSITIONS.get((role, state, d, t))
                if nxt is not None and nxt not in paths:
                    paths[nxt] = [*paths[state], (d, t)]
                    queue.append(nxt)
    return paths


PATHS = {role: _shortest_paths(role) for role in Role}


def reach(role: Role, state: State) -> Connection:
    """A connection of ``role`` driven into ``state`` by legal moves (ERROR: by a bad frame)."""
    conn = Connection(role)
    if state is State.ERROR:
        conn.receive_data(b"\0\0\0\0")
        expect_remote(conn, ErrorCode.MALFORMED_FRAME)
        return conn
    for direction, event_type in PATHS[role][state]:
        if direction is SEND:
            conn.send(SAMPLES[event_type])
        else:
            conn.receive_data(frame(SAMPLES[event_type]))
            assert conn.next_event() == SAMPLES[event_type]
    assert conn.state is state
    return conn


def test_table_is_well_formed() -> None:
    for (role, state, _direction, event_type), nxt in TRANSITIONS.items():
        assert state in STATES[role] and nxt in STATES[role]
        assert event_type in EVENT_TYPES
    for role in Role:
        # every live state is reachable by legal frames, and can reach CLOSED
        assert set(LIVE[role]) | {State.CLOSED} <= set(PATHS[role])
        for state in LIVE[role]:
            assert TRANSITIONS[(role, state, RECV, ConnectionClosed)] is State.CLOSED
            assert TRANSITIONS[(role, state, SEND, Error)] is State.CLOSED
    # the two machines mirror each other: whatever one side may send, the other may receive
    sent = {t for (r, _, d, t) in TRANSITIONS if d is SEND and r is CHIP}
    received = {t for (r, _, d, t) in TRANSITIONS if d is RECV and r is VERIFIER}
    assert sent <= received


LEGAL = [key for key in TRANSITIONS if key[3] in SAMPLES and key[1] is not State.ERROR]
ILLEGAL_SENDS = [
    (role, state, t)
    for role in Role
    for state in STATES[role]
    for t in FRAME_EVENT_TYPES
    if (role, state, SEND, t) not in TRANSITIONS
]
ILLEGAL_RECEIVES = [
    (role, state, t)
    for role in Role
    for state in LIVE[role]  # CLOSED discards input; ERROR refuses everything (tested below)
    for t in FRAME_EVENT_TYPES
    if (role, state, RECV, t) not in TRANSITIONS
]


def _id(case: tuple[object, ...]) -> str:
    return "-".join(getattr(x, "value", getattr(x, "__name__", str(x))) for x in case)


@pytest.mark.parametrize("key", LEGAL, ids=_id)
def test_every_legal_transition(key: tuple[Role, State, Direction, type[FrameEvent]]) -> None:
    role, state, direction, event_type = key
    conn = reach(role, state)
    event = SAMPLES[event_type]
    if direction is SEND:
        data = conn.send(event)
        assert decode_body(data[4:]) == event
    else:
        conn.receive_data(frame(event))
        assert conn.next_event() == event
    assert conn.state is TRANSITIONS[key]


@pytest.mark.parametrize("case", ILLEGAL_SENDS, ids=_id)
def test_every_illegal_send(case: tuple[Role, State, type[FrameEvent]]) -> None:
    role, state, event_type = case
    conn = reach(role, state)
    with pytest.raises(LocalProtocolError):
        conn.send(SAMPLES[event_type])
    assert conn.state is state


@pytest.mark.parametrize("case", ILLEGAL_RECEIVES, ids=_id)
def test_every_illegal_receive(case: tuple[Role, State, type[FrameEvent]]) -> None:
    role, state, event_type = case
    conn = reach(role, state)
    conn.receive_data(frame(SAMPLES[event_type]))
    exc = expect_remote(conn, ErrorCode.UNEXPECTED_FRAME)
    # dead afterwards: no events, no sends, except one ERROR frame saying why
    expect_remote(conn, ErrorCode.UNEXPECTED_FRAME)
    with pytest.raises(LocalProtocolError):
        conn.send(Bye())
    data = conn.error_frame_for(exc)
    assert data is not None
    reply = decode_body(data[4:])
    assert isinstance(reply, Error) and reply.code == ErrorCode.UNEXPECTED_FRAME
    assert conn.error_frame_for(exc) is None
    with pytest.raises(LocalProtocolError):
        conn.send(Error(ErrorCode.INTERNAL, "again"))
    assert conn.state is State.ERROR


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_error_state_refuses_input_and_eof(role: Role) -> None:
    conn = reach(role, State.ERROR)
    conn.receive_data(frame(Bye()))
    expect_remote(conn, ErrorCode.MALFORMED_FRAME)
    conn.receive_data(b"")
    expect_remote(conn, ErrorCode.MALFORMED_FRAME)
    conn.send(Error(ErrorCode.MALFORMED_FRAME, "zero-length frame"))  # the one allowed frame
    assert conn.state is State.ERROR


# ---------------------------------------------------------------------------------------------
# Happy exchanges

#: Two rounds on one connection, then an orderly close by the chip.
SCRIPT: list[tuple[Role, FrameEvent]] = [
    (CHIP, Hello((1, 7), b"dev", b"mfr")),
    (VERIFIER, ChallengeFrame(1, b"vcert", b"nonce-1")),
    (CHIP, EvidenceFrame(b"evidence-1")),
    (VERIFIER, ResultFrame(b"result-1")),
    (CHIP, Next()),
    (VERIFIER, ChallengeFrame(1, b"vcert", b"nonce-2")),
    (CHIP, EvidenceFrame(b"evidence-2" * 100)),
    (VERIFIER, ResultFrame(b"result-2")),
    (CHIP, Bye()),
]


def whole(data: bytes) -> Iterator[bytes]:
    yield data


def bytewise(data: bytes) -> Iterator[bytes]:
    for i in range(len(data)):
        yield data[i : i + 1]


def run_script(chunker: Callable[[bytes], Iterator[bytes]]) -> tuple[Connection, Connection]:
    peers = {CHIP: Connection(CHIP), VERIFIER: Connection(VERIFIER)}
    for sender, event in SCRIPT:
        receiver = peers[sender.peer]
        got: list[Event] = []
        for piece in chunker(peers[sender].send(event)):
            receiver.receive_data(piece)
            got += drain(receiver)
        assert got == [event]
    return peers[CHIP], peers[VERIFIER]


@pytest.mark.parametrize("chunker", [whole, bytewise], ids=["whole", "bytewise"])
def test_happy_exchange(chunker: Callable[[bytes], Iterator[bytes]]) -> None:
    chip, verifier = run_script(chunker)
    assert chip.state is State.CLOSED and verifier.state is State.CLOSED
    assert chip.version == verifier.version == 1
    assert verifier.offered_versions == (1, 7)
    for conn in (chip, verifier):
        conn.receive_data(b"")
        assert conn.next_event() == ConnectionClosed()
        assert conn.next_event() == ConnectionClosed()  # idempotent, like h11
        assert conn.eof_state is State.CLOSED and not conn.abrupt_close


@settings(max_examples=50, deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=10))
def test_happy_exchange_any_fragmentation(sizes: list[int]) -> None:
    def chunker(data: bytes) -> Iterator[bytes]:
        i = k = 0
        while i < len(data):
            yield data[i : i + sizes[k % len(sizes)]]
            i += sizes[k % len(sizes)]
            k += 1

    chip, verifier = run_script(chunker)
    assert chip.state is verifier.state is State.CLOSED


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_coalesced_frames(role: Role) -> None:
    """All of the peer's frames arrive in one chunk (plus EOF); one frame per next_event."""
    conn = Connection(role)
    conn.receive_data(b"".join(frame(ev) for sender, ev in SCRIPT if sender is role.peer))
    conn.receive_data(b"")
    for sender, event in SCRIPT:
        if sender is role:
            conn.send(event)
        else:
            assert conn.next_event() == event
    assert conn.next_event() == ConnectionClosed()
    assert conn.state is State.CLOSED


def test_result_and_idle_bye_in_one_chunk() -> None:
    chip, verifier = Connection(CHIP), Connection(VERIFIER)
    verifier.receive_data(chip.send(SAMPLES[Hello]))
    assert verifier.next_event() == SAMPLES[Hello]
    chip.receive_data(verifier.send(SAMPLES[ChallengeFrame]))
    assert chip.next_event() == SAMPLES[ChallengeFrame]
    verifier.receive_data(chip.send(SAMPLES[EvidenceFrame]))
    assert verifier.next_event() == SAMPLES[EvidenceFrame]
    chip.receive_data(verifier.send(SAMPLES[ResultFrame]) + verifier.send(Bye()))
    assert drain(chip) == [SAMPLES[ResultFrame], Bye()]
    assert chip.state is State.CLOSED


# ---------------------------------------------------------------------------------------------
# Closing, EOF and races


def test_eof_while_peer_owes_a_frame_is_visible() -> None:
    conn = reach(VERIFIER, State.AWAIT_EVIDENCE)
    conn.receive_data(b"")
    assert conn.next_event() == ConnectionClosed()
    assert conn.state is State.CLOSED
    assert conn.eof_state is State.AWAIT_EVIDENCE and conn.abrupt_close


def test_frames_crossing_our_error_are_discarded() -> None:
    verifier = reach(VERIFIER, State.AWAIT_EVIDENCE)
    verifier.send(Error(ErrorCode.TIMEOUT, "evidence took too long"))
    assert verifier.state is State.CLOSED
    verifier.receive_data(frame(SAMPLES[EvidenceFrame]) + b"\xff\xff\xff\xff garbage")
    assert verifier.next_event() is NEED_DATA
    verifier.receive_data(b"")
    assert verifier.next_event() == ConnectionClosed()
    assert verifier.eof_state is State.CLOSED


def test_idle_bye_crossing_next() -> None:
    chip, verifier = reach(CHIP, State.IDLE), reach(VERIFIER, State.IDLE)
    to_verifier, to_chip = chip.send(Next()), verifier.send(Bye())
    chip.receive_data(to_chip)
    verifier.receive_data(to_verifier)
    assert chip.next_event() == Bye() and chip.state is State.CLOSED
    assert verifier.next_event() is NEED_DATA and verifier.state is State.CLOSED


def test_data_after_eof_is_a_caller_bug() -> None:
    conn = Connection(VERIFIER)
    conn.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"x")


# ---------------------------------------------------------------------------------------------
# Framing errors


@pytest.mark.parametrize("partial", [b"\0", b"\0\0\0", frame(SAMPLES[Hello])[:-1]])
def test_truncated_frame_at_eof(partial: bytes) -> None:
    conn = Connection(VERIFIER)
    conn.receive_data(partial)
    assert conn.next_event() is NEED_DATA
    conn.receive_data(b"")
    exc = expect_remote(conn, ErrorCode.MALFORMED_FRAME)
    assert "truncated frame" in str(exc)


@pytest.mark.parametrize("limit", [100, MAX_FRAME_BYTES])
def test_oversized_length_rejected_from_header_alone(limit: int) -> None:
    conn = Connection(VERIFIER, max_frame_bytes=limit)
    conn.receive_data((limit + 1).to_bytes(4, "big"))  # no body at all
    exc = expect_remote(conn, ErrorCode.FRAME_TOO_LARGE)
    data = conn.error_frame_for(exc)
    assert data is not None
    assert decode_body(data[4:]) == Error(ErrorCode.FRAME_TOO_LARGE, str(exc))


def test_length_at_the_limit_waits_for_the_body() -> None:
    conn = Connection(VERIFIER, max_frame_bytes=100)
    conn.receive_data((100).to_bytes(4, "big") + b"\0" * 99)
    assert conn.next_event() is NEED_DATA


def test_zero_length_frame() -> None:
    conn = Connection(CHIP)
    conn.receive_data(b"\0\0\0\0")
    expect_remote(conn, ErrorCode.MALFORMED_FRAME)


GARBAGE_BODIES = {
    "not-cbor": b"\xff",
    "two-items": cbor2.dumps([5]) + cbor2.dumps([5]),
    "non-shortest-head": b"\x98\x01\x05",  # [5] with a 1-byte length head
    "indefinite-array": b"\x9f\x05\xff",
    "not-an-array": cbor2.dumps({1: 5}),
    "empty-array": cbor2.dumps([]),
    "type-not-int": cbor2.dumps(["hello"]),
    "type-is-bool": cbor2.dumps([True]),
    "type-0": cbor2.dumps([0]),
    "type-8": cbor2.dumps([8]),
    "type-negative": cbor2.dumps([-1]),
    "next-with-field": cbor2.dumps([5, 0]),
    "hello-short": cbor2.dumps([1, [1], b"dev"]),
    "hello-no-versions": cbor2.dumps([1, [], b"dev", b"mfr"]),
    "hello-9-versions": cbor2.dumps([1, list(range(9)), b"dev", b"mfr"]),
    "hello-negative-version": cbor2.dumps([1, [-1], b"dev", b"mfr"]),
    "hello-versions-not-list": cbor2.dumps([1, 1, b"dev", b"mfr"]),
    "hello-cert-is-text": cbor2.dumps([1, [1], "dev", b"mfr"]),
    "error-negative-code": cbor2.dumps([7, -3, "x"]),
    "error-text-too-long": cbor2.dumps([7, 1, "x" * 257]),
    "error-text-is-bytes": cbor2.dumps([7, 1, b"x"]),
    "error-bad-utf8": b"\x83\x07\x01\x61\xff",
}


@pytest.mark.parametrize("body", GARBAGE_BODIES.values(), ids=GARBAGE_BODIES.keys())
def test_garbage_body_is_malformed(body: bytes) -> None:
    conn = Connection(VERIFIER)
    conn.receive_data(raw_frame(body))
    expect_remote(conn, ErrorCode.MALFORMED_FRAME)


def test_unknown_error_code_is_accepted() -> None:
    conn = Connection(CHIP)
    conn.receive_data(raw_frame(cbor2.dumps([7, 999, ""])))
    assert conn.next_event() == Error(999, "")
    assert conn.state is State.CLOSED


BAD_EVENTS: dict[str, object] = {
    "versions-list": Hello([1], b"d", b"m"),  # type: ignore[arg-type]
    "versions-empty": Hello((), b"d", b"m"),
    "versions-bool": Hello((True,), b"d", b"m"),
    "cert-bytearray": Hello((1,), bytearray(b"d"), b"m"),
    "text-too-long": Error(1, "x" * 257),
    "code-negative": Error(-1, ""),
    "closed-event": ConnectionClosed(),
    "not-an-event": object(),
}


@pytest.mark.parametrize("event", BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_sending_a_malformed_event(event: FrameEvent) -> None:
    conn = Connection(CHIP)
    with pytest.raises(LocalProtocolError):
        conn.send(event)
    assert conn.state is State.SEND_HELLO and conn.offered_versions is None


def test_sending_an_oversized_frame() -> None:
    conn = Connection(CHIP, max_frame_bytes=64)
    conn.send(SAMPLES[Hello])
    conn.receive_data(frame(SAMPLES[ChallengeFrame]))
    conn.next_event()
    with pytest.raises(LocalProtocolError):
        conn.send(EvidenceFrame(b"x" * 64))
    assert conn.state is State.SEND_EVIDENCE
    conn.send(EvidenceFrame(b"x" * 32))


@pytest.mark.parametrize("bad", [0, -1, 1 << 32, 1.5])
def test_max_frame_bytes_is_validated(bad: object) -> None:
    with pytest.raises(ValueError):
        Connection(VERIFIER, max_frame_bytes=bad)  # type: ignore[arg-type]


def test_error_frame_for_outside_error_state() -> None:
    conn = Connection(VERIFIER)
    assert conn.error_frame_for(RemoteProtocolError("x", error_code=3)) is None


# ---------------------------------------------------------------------------------------------
# Version negotiation


@pytest.mark.parametrize(
    ("offered", "supported", "expected"),
    [
        ((1,), (1,), 1),
        ((1, 2, 3), (1, 2), 2),
        ((3, 2, 1), (2, 3, 4), 3),
        ((2, 3), (1,), None),
    ],
)
def test_choose_version(
    offered: tuple[int, ...], supported: tuple[int, ...], expected: int | None
) -> None:
    assert choose_version(Hello(offered, b"", b""), supported) == expected


def test_default_supported_version_is_1() -> None:
    assert choose_version(Hello((1, 2), b"", b"")) == 1 == PROTOCOL_VERSION


def test_no_common_version_ends_with_error() -> None:
    chip, verifier = Connection(CHIP), Connection(VERIFIER)
    verifier.receive_data(chip.send(Hello((2, 3), b"d", b"m")))
    hello = verifier.next_event()
    assert isinstance(hello, Hello) and choose_version(hello) is None
    with pytest.raises(LocalProtocolError):  # cannot pick a version the chip did not offer
        verifier.send(ChallengeFrame(1, b"v", b"c"))
    chip.receive_data(verifier.send(Error(ErrorCode.UNSUPPORTED_VERSION, "need version 1")))
    assert chip.next_event() == Error(ErrorCode.UNSUPPORTED_VERSION, "need version 1")
    assert chip.state is verifier.state is State.CLOSED


def test_challenge_with_unoffered_version() -> None:
    chip = Connection(CHIP)
    chip.send(Hello((1,), b"d", b"m"))
    chip.receive_data(frame(ChallengeFrame(2, b"v", b"c")))
    expect_remote(chip, ErrorCode.UNSUPPORTED_VERSION)


def test_version_cannot_change_between_rounds() -> None:
    chip = Connection(CHIP)
    chip.send(Hello((1, 2), b"d", b"m"))
    chip.receive_data(frame(ChallengeFrame(2, b"v", b"c")))
    assert chip.next_event() == ChallengeFrame(2, b"v", b"c")
    chip.send(EvidenceFrame(b"e"))
    chip.receive_data(frame(ResultFrame(b"r")))
    assert chip.next_event() == ResultFrame(b"r")
    chip.send(Next())
    chip.receive_data(frame(ChallengeFrame(1, b"v", b"c")))
    expect_remote(chip, ErrorCode.UNSUPPORTED_VERSION)


# ---------------------------------------------------------------------------------------------
# Fuzzing: whatever arrives, the connection yields events or RemoteProtocolError, nothing else

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(1 << 64), (1 << 64) - 1)
    | st.binary(max_size=8)
    | st.text(max_size=8)
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.integers(0, 3), inner, max_size=3)
    ),
    max_leaves=8,
)
_valid_events = st.one_of(
    st.builds(
        Hello,
        st.lists(st.integers(0, 3), min_size=1, max_size=8).map(tuple),
        st.binary(max_size=8),
        st.binary(max_size=8),
    ),
    st.builds(ChallengeFrame, st.integers(0, 3), st.binary(max_size=8), st.binary(max_size=8)),
    st.builds(EvidenceFrame, st.binary(max_size=8)),
    st.builds(ResultFrame, st.binary(max_size=8)),
    st.just(Next()),
    st.just(Bye()),
    st.builds(Error, st.integers(0, 10), st.text(max_size=8)),
)
_bodies = st.one_of(
    _valid_events.map(lambda ev: encode_frame(ev)[4:]),
    st.tuples(st.integers(-1, 9), st.lists(_values, max_size=4)).map(
        lambda t: cbor2.dumps([t[0], *t[1]])
    ),
    st.binary(max_size=12),
)
_chunks = st.one_of(_bodies.map(raw_frame), st.binary(max_size=8))
_streams = st.lists(_chunks, max_size=8).map(b"".join)


@st.composite
def _mutated_sessions(draw: st.DrawFn) -> tuple[Role, bytes]:
    """The peer's half of a legal multi-round session, then maybe one corruption."""
    role = draw(st.sampled_from(list(Role)))
    rounds = draw(st.integers(1, 3))
    if role is VERIFIER:
        peer = [SAMPLES[Hello], SAMPLES[EvidenceFrame]]
        peer += [Next(), SAMPLES[EvidenceFrame]] * (rounds - 1)
    else:
        peer = [SAMPLES[ChallengeFrame], SAMPLES[ResultFrame]] * rounds
    peer += draw(st.sampled_from([[], [Bye()], [SAMPLES[Error]]]))
    data = bytearray(b"".join(frame(ev) for ev in peer))
    where = draw(st.integers(0, len(data)))
    match draw(st.sampled_from(["none", "flip", "truncate", "insert", "drop"])):
        case "flip" if where < len(data):
            data[where] ^= draw(st.integers(1, 255))
        case "truncate":
            del data[where:]
        case "insert":
            data[where:where] = draw(_chunks)
        case "drop" if where < len(data):
            del data[where : where + draw(st.integers(1, 8))]
    return role, bytes(data)


def _react(conn: Connection, event: Event) -> None:
    """A minimal driver: answer whatever the state asks for, so fuzzing reaches deep states."""
    if conn.state is State.SEND_CHALLENGE:
        assert isinstance(event, Hello | Next)
        version = conn.version or choose_version(Hello(conn.offered_versions or (0,), b"", b""))
        if version is None:
            conn.send(Error(ErrorCode.UNSUPPORTED_VERSION, "no common version"))
        else:
            conn.send(ChallengeFrame(version, b"v", b"c"))
    elif conn.state is State.SEND_RESULT:
        conn.send(ResultFrame(b"r"))
    elif conn.state is State.SEND_EVIDENCE:
        conn.send(EvidenceFrame(b"e"))
    elif conn.state is State.SEND_PONG:
        conn.send(Pong(b"p"))
    elif conn.state is State.IDLE and conn.our_role is CHIP:
        conn.send(Next())


def _trace(role: Role, stream: bytes, sizes: list[int], eof: bool) -> list[object]:
    """Feed ``stream`` in chunks of ``sizes`` (cycled); return the outcome, checking invariants."""
    conn = Connection(role, max_frame_bytes=256)
    if role is CHIP:
        conn.send(Hello((1, 2), b"d", b"m"))
    pieces = []
    i = k = 0
    while i < len(stream):
        pieces.append(stream[i : i + sizes[k % len(sizes)]])
        i += sizes[k % len(sizes)]
        k += 1
    if eof:
        pieces.append(b"")
    trace: list[object] = []
    for piece in pieces:
        conn.receive_data(piece)
        while True:
            try:
                event = conn.next_event()
            except RemoteProtocolError as exc:
                assert conn.state is State.ERROR
                assert exc.error_code in ErrorCode.__members__.values()
                trace.append(("error", exc.error_code))
                with pytest.raises(RemoteProtocolError):  # no further events, ever
                    conn.next_event()
                reply = conn.error_frame_for(exc)
                assert reply is not None and decode_body(reply[4:]) == Error(
                    exc.error_code, str(exc)[:256]
                )
                return trace
            assert conn.state in STATES[role]
            if event is NEED_DATA:
                break
            assert isinstance(event, EVENT_TYPES)
            trace.append(event)
            if isinstance(event, ConnectionClosed):
                return trace
            _react(conn, event)
    return trace


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=st.tuples(st.sampled_from(list(Role)), _streams | st.binary(max_size=64))
    | _mutated_sessions(),
    sizes=st.lists(st.integers(1, 16), min_size=1, max_size=5),
    eof=st.booleans(),
)
def test_fuzz_any_bytes_give_events_or_remote_error(
    case: tuple[Role, bytes], sizes: list[int], eof: bool
) -> None:
    # ...and chunking never changes the outcome.
    role, stream = case
    assert _trace(role, stream, sizes, eof) == _trace(role, stream, [len(stream) or 1], eof)


@settings(max_examples=100, deadline=None)
@given(stream=st.binary(max_size=64))
def test_fuzz_raw_bytes_fresh_verifier(stream: bytes) -> None:
    conn = Connection(VERIFIER)
    conn.receive_data(stream)
    try:
        events = drain(conn)
    except RemoteProtocolError:
        assert conn.state is State.ERROR
        with pytest.raises(RemoteProtocolError):
            conn.next_event()
    else:
        assert all(isinstance(ev, EVENT_TYPES) for ev in events)


# ---------------------------------------------------------------------------------------------
# Offline Licensing: RESULT's optional third item, a license grant [license, delegation / null]

GRANTS = {
    "authority-license": (b"license", None),
    "delegated-license": (b"license", b"delegation"),
}


@pytest.mark.parametrize("grant", GRANTS.values(), ids=GRANTS.keys())
def test_result_with_grant_round_trips(grant: tuple[bytes, bytes | None]) -> None:
    event = ResultFrame(b"result", grant)
    body = frame(event)[4:]
    assert cbor2.loads(body) == [4, b"result", list(grant)]
    chip = reach(CHIP, State.AWAIT_RESULT)
    chip.receive_data(frame(event))
    assert chip.next_event() == event
    assert chip.state is State.IDLE  # the transition table is unchanged


def test_result_without_grant_keeps_its_version_1_encoding() -> None:
    assert frame(ResultFrame(b"r"))[4:] == cbor2.dumps([4, b"r"])
    assert decode_body(cbor2.dumps([4, b"r"])) == ResultFrame(b"r", None)


BAD_GRANTS = {
    "null-instead-of-absent": cbor2.dumps([4, b"r", None]),
    "not-an-array": cbor2.dumps([4, b"r", b"license"]),
    "one-item": cbor2.dumps([4, b"r", [b"license"]]),
    "three-items": cbor2.dumps([4, b"r", [b"license", None, b"x"]]),
    "license-is-text": cbor2.dumps([4, b"r", ["license", None]]),
    "delegation-is-int": cbor2.dumps([4, b"r", [b"license", 0]]),
    "extra-field": cbor2.dumps([4, b"r", [b"license", None], 0]),
}


@pytest.mark.parametrize("body", BAD_GRANTS.values(), ids=BAD_GRANTS.keys())
def test_malformed_grant_is_malformed_frame(body: bytes) -> None:
    conn = reach(CHIP, State.AWAIT_RESULT)
    conn.receive_data(raw_frame(body))
    expect_remote(conn, ErrorCode.MALFORMED_FRAME)


@pytest.mark.parametrize("grant", [(b"l",), ("l", None), [b"l", None], (b"l", 1)])
def test_sending_a_malformed_grant(grant: object) -> None:
    conn = reach(VERIFIER, State.SEND_RESULT)
    with pytest.raises(LocalProtocolError):
        conn.send(ResultFrame(b"r", grant))  # type: ignore[arg-type]
    assert conn.state is State.SEND_RESULT


@settings(max_examples=200, deadline=None)
@given(
    grant=st.none() | st.tuples(st.binary(max_size=16), st.none() | st.binary(max_size=16)),
    result=st.binary(max_size=16),
)
def test_fuzz_grants_round_trip(grant: tuple[bytes, bytes | None] | None, result: bytes) -> None:
    event = ResultFrame(result, grant)
    assert decode_body(encode_frame(event)[4:]) == event
