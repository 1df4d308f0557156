"""The session state machine of both roles, as one transition table on the shared kernel.

Theory of operation
===================

Sans-I/O
--------
This package never touches a socket, a clock or a thread. A driver (trio server, blocking
client, test, fuzzer) owns the transport and feeds the :class:`~attest.protocol.Connection`::

    bytes from the network ──receive_data()──▶ Connection ──next_event()──▶ events
    events to send ─────────────send()───────▶ Connection ──(return)──────▶ bytes to write

Because the whole protocol is a pure function of the bytes and calls it has seen, it can be
tested exhaustively and fuzzed deterministically, and every transport adapter shares exactly
the same rules (the design of h11, which this copies).

Roles and turns
---------------
A connection has two roles: the CHIP (client, proves itself) and the VERIFIER (server, judges).
The exchange alternates strictly (only ERROR, and the verifier's idle BYE, may be sent out of
turn, and both end the session), so unlike h11 a *single* state per connection suffices: it is
the state of the session as seen by our side. State names say whose turn it is:

* ``SEND_*``  — we owe the peer a frame; only we may move the session forward.
* ``AWAIT_*`` — the peer owes us a frame.
* ``IDLE``    — a round has finished (RESULT delivered); the chip decides: NEXT or BYE.
* ``CLOSED``  — orderly end (BYE, ERROR frame, or EOF at a frame boundary). Terminal.
* ``ERROR``   — the peer broke the protocol (RemoteProtocolError). Terminal.

One round, and the keep-alive loop (verifier's view; the chip's view is the mirror image)::

    (start)
    AWAIT_HELLO ──recv HELLO──▶ SEND_CHALLENGE ──send CHALLENGE──▶ AWAIT_EVIDENCE
                                    ▲                                   │
                                    │ recv NEXT                         │ recv EVIDENCE
                                    │                                   ▼
                                  IDLE ◀─────────send RESULT──────── SEND_RESULT ◀─┐
                                    │                        send PING  │          │ recv
                                    │ recv BYE / send BYE               ▼          │ PONG
                                    ▼                               AWAIT_PONG ────┘
                                  CLOSED    also reached by: recv BYE in AWAIT_HELLO,
                                            send BYE in SEND_CHALLENGE, send or recv
                                            ERROR in any live state, EOF between frames

Timed pings (location verification): between a chip's EVIDENCE and the verifier's RESULT the
verifier may send PING frames, one at a time, each answered by one PONG before the next. They
sit there because the chip is known by then (its Evidence names it; the PONGs are signed with
the same device key) and the round is still open, so what the pings measured joins the one
appraisal whose RESULT ends the round. A verifier that never pings moves SEND_RESULT → IDLE
exactly as before, and a chip that is never pinged sees no new frame: both stay byte for byte
what they were. The connection counts PINGs per round and refuses more than
:data:`MAX_PINGS_PER_ROUND` (a guard, like the version's).

Every rule of both roles is a row of :data:`TRANSITIONS`, keyed by
``(role, state, direction, event type)``. ``send()`` and ``next_event()`` consult the same table
(direction SEND or RECV), so an illegal send and an illegal receive are the same fact seen from
two sides, and tests enumerate illegal moves from the table instead of listing them by hand.
The table and the frames (:mod:`attest.protocol.framing`) together are :data:`SESSION`, a
declaration on the kernel (:mod:`attest.protocol.kernel`) that the Fixed Set's link handshake
shares: framing, codec, connection and error behaviour are written once.

Closing
-------
* BYE is sent only between rounds — by the chip in SEND_HELLO or IDLE, by the verifier in
  SEND_CHALLENGE (declining another round) or IDLE (idle close) — so it never cuts a round in
  half. The one race (the verifier's idle BYE crossing the chip's NEXT) is covered by the chip
  accepting BYE in AWAIT_CHALLENGE.
* ERROR may be sent and received in any live (non-terminal) state; it ends the connection.
  A side that has sent or received BYE/ERROR is CLOSED and *discards* any further bytes: they
  can only be the peer's half of a crossing (EVIDENCE racing our ERROR TIMEOUT, NEXT racing our
  BYE). Nothing after a close can change the outcome, so nothing is parsed.
* EOF (``receive_data(b"")``) at a frame boundary yields :class:`ConnectionClosed` and CLOSED in
  any live state; ``Connection.eof_state`` records the state EOF arrived in, so a driver can tell
  an orderly close (``eof_state is CLOSED``) from a peer that vanished while it owed us a frame
  (``AWAIT_*``). EOF inside a frame is a RemoteProtocolError ("truncated frame").

Errors
------
* :class:`~attest.errors.LocalProtocolError` — *we* tried an illegal send or built a bad event.
  Nothing changes; the caller has a bug and may carry on correctly.
* :class:`~attest.errors.RemoteProtocolError` — the peer sent garbage (MALFORMED_FRAME), an
  oversized frame (FRAME_TOO_LARGE), a legal frame at the wrong time (UNEXPECTED_FRAME) or a
  version it was never offered (UNSUPPORTED_VERSION); ``error_code`` says which. The connection
  enters ERROR; every later ``next_event``/``send`` raises, except exactly one ``send(Error(..))``
  (or ``error_frame_for(exc)``) so the driver can tell the peer why before closing.

Checks happen in a fixed order — framing (length, CBOR, frame shape) before the table, the table
before version guards — so a given byte string always yields the same error code.

Versions
--------
HELLO lists the versions the chip speaks; the verifier answers with one of them in every
CHALLENGE (:func:`choose_version` picks the highest common one) or, if there is none, sends
ERROR UNSUPPORTED_VERSION. The version is fixed by the first CHALLENGE. These are guards on
field values, checked by the Connection after the table allows the move; they never add
transitions.

Out of scope
------------
Time (the driver runs timers and sends ERROR TIMEOUT), cryptography and token contents (COSE
tokens are opaque bytes here; :mod:`attest.messages` and :mod:`attest.verify` judge them), nonce
freshness, and flow control (the driver bounds how much it reads before calling
``next_event``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Final

from attest.protocol.events import (
    SUPPORTED_VERSIONS,
    Bye,
    ChallengeFrame,
    ConnectionClosed,
    Error,
    Event,
    EvidenceFrame,
    Hello,
    Next,
    Ping,
    Pong,
    ResultFrame,
)
from attest.protocol.framing import CODEC
from attest.protocol.kernel import Direction, Machine

#: Most PINGs a verifier may send in one round (a guard of the Connection; SPEC §7.6).
MAX_PINGS_PER_ROUND: Final = 1000


class Role(enum.Enum):
    """Which end of the connection we are."""

    CHIP = "chip"
    VERIFIER = "verifier"

    @property
    def peer(self) -> Role:
        """The other role (the sender of everything we receive)."""
        return Role.VERIFIER if self is Role.CHIP else Role.CHIP


class State(enum.Enum):
    """Session state as seen by one side. Each role uses its own subset (see ``STATES``)."""

    # verifier
    AWAIT_HELLO = "AWAIT_HELLO"
    SEND_CHALLENGE = "SEND_CHALLENGE"
    AWAIT_EVIDENCE = "AWAIT_EVIDENCE"
    SEND_RESULT = "SEND_RESULT"
    AWAIT_PONG = "AWAIT_PONG"
    # chip
    SEND_HELLO = "SEND_HELLO"
    AWAIT_CHALLENGE = "AWAIT_CHALLENGE"
    SEND_EVIDENCE = "SEND_EVIDENCE"
    AWAIT_RESULT = "AWAIT_RESULT"
    SEND_PONG = "SEND_PONG"
    # both
    IDLE = "IDLE"
    CLOSED = "CLOSED"
    ERROR = "ERROR"


#: States from which the session can still progress, per role.
LIVE: Final[Mapping[Role, tuple[State, ...]]] = MappingProxyType(
    {
        Role.VERIFIER: (
            State.AWAIT_HELLO,
            State.SEND_CHALLENGE,
            State.AWAIT_EVIDENCE,
            State.SEND_RESULT,
            State.AWAIT_PONG,
            State.IDLE,
        ),
        Role.CHIP: (
            State.SEND_HELLO,
            State.AWAIT_CHALLENGE,
            State.SEND_EVIDENCE,
            State.AWAIT_RESULT,
            State.SEND_PONG,
            State.IDLE,
        ),
    }
)
TERMINAL: Final = (State.CLOSED, State.ERROR)
#: Every state a role can be in.
STATES: Final[Mapping[Role, tuple[State, ...]]] = MappingProxyType(
    {role: (*live, *TERMINAL) for role, live in LIVE.items()}
)
#: Where each role starts: the chip speaks first.
INITIAL: Final[Mapping[Role, State]] = MappingProxyType(
    {Role.VERIFIER: State.AWAIT_HELLO, Role.CHIP: State.SEND_HELLO}
)

Key = tuple[Role, State, Direction, type[Event]]

_V, _C = Role.VERIFIER, Role.CHIP
_SEND, _RECV = Direction.SEND, Direction.RECV
_S = State

# fmt: off
#: THE protocol: (role, state, direction, event type) -> next state. Absent key = illegal move.
TRANSITIONS: Final[Mapping[Key, State]] = MappingProxyType({
    # -- verifier: a round is (HELLO | NEXT) -> CHALLENGE -> EVIDENCE -> RESULT
    (_V, _S.AWAIT_HELLO,     _RECV, Hello):          _S.SEND_CHALLENGE,
    (_V, _S.AWAIT_HELLO,     _RECV, Bye):            _S.CLOSED,
    (_V, _S.SEND_CHALLENGE,  _SEND, ChallengeFrame): _S.AWAIT_EVIDENCE,
    (_V, _S.SEND_CHALLENGE,  _SEND, Bye):            _S.CLOSED,
    (_V, _S.AWAIT_EVIDENCE,  _RECV, EvidenceFrame):  _S.SEND_RESULT,
    (_V, _S.SEND_RESULT,     _SEND, ResultFrame):    _S.IDLE,
    (_V, _S.SEND_RESULT,     _SEND, Ping):           _S.AWAIT_PONG,
    (_V, _S.AWAIT_PONG,      _RECV, Pong):           _S.SEND_RESULT,
    (_V, _S.IDLE,            _RECV, Next):           _S.SEND_CHALLENGE,
    (_V, _S.IDLE,            _RECV, Bye):            _S.CLOSED,
    (_V, _S.IDLE,            _SEND, Bye):            _S.CLOSED,
    # -- chip: the mirror image
    (_C, _S.SEND_HELLO,      _SEND, Hello):          _S.AWAIT_CHALLENGE,
    (_C, _S.SEND_HELLO,      _SEND, Bye):            _S.CLOSED,
    (_C, _S.AWAIT_CHALLENGE, _RECV, ChallengeFrame): _S.SEND_EVIDENCE,
    (_C, _S.AWAIT_CHALLENGE, _RECV, Bye):            _S.CLOSED,
    (_C, _S.SEND_EVIDENCE,   _SEND, EvidenceFrame):  _S.AWAIT_RESULT,
    (_C, _S.AWAIT_RESULT,    _RECV, ResultFrame):    _S.IDLE,
    (_C, _S.AWAIT_RESULT,    _RECV, Ping):           _S.SEND_PONG,
    (_C, _S.SEND_PONG,       _SEND, Pong):           _S.AWAIT_RESULT,
    (_C, _S.IDLE,            _SEND, Next):           _S.AWAIT_CHALLENGE,
    (_C, _S.IDLE,            _SEND, Bye):            _S.CLOSED,
    (_C, _S.IDLE,            _RECV, Bye):            _S.CLOSED,
    # -- both roles: ERROR frames, either direction, from every live state
    **{(r, s, d, Error): _S.CLOSED for r in Role for s in LIVE[r] for d in Direction},
    # -- both roles: after a peer violation, one ERROR frame may still be sent to say why
    **{(r, _S.ERROR, _SEND, Error): _S.ERROR for r in Role},
    # -- both roles: EOF at a frame boundary (CLOSED -> CLOSED is the orderly case)
    **{(r, s, _RECV, ConnectionClosed): _S.CLOSED for r in Role for s in (*LIVE[r], _S.CLOSED)},
})
# fmt: on


#: The session protocol, declared on the kernel.
SESSION: Final = Machine(
    name="session",
    codec=CODEC,
    transitions=TRANSITIONS,
    initial=INITIAL,
    closed=State.CLOSED,
    error=State.ERROR,
    error_frame=Error,
    peer={Role.CHIP: Role.VERIFIER, Role.VERIFIER: Role.CHIP},
)


def next_state(
    role: Role, state: State, direction: Direction, event_type: type[Event]
) -> State | None:
    """The state after the move, or None if the table does not allow it."""
    return TRANSITIONS.get((role, state, direction, event_type))


def choose_version(hello: Hello, supported: Iterable[int] = SUPPORTED_VERSIONS) -> int | None:
    """Verifier policy: the highest version both sides speak, or None (send UNSUPPORTED_VERSION)."""
    common = set(hello.versions).intersection(supported)
    return max(common) if common else None
