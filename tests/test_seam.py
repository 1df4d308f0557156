"""The mechanism seam: one session appraisal, one commit rule, one registry, one kernel.

* :func:`attest.mechanism.appraise_session` combines the core and every mechanism into the one
  verdict that is signed, and decides what to commit as one value (Enroll | Advance | Nothing);
  the commit rule (SPEC §9.8): the chip's state advances exactly when the core accepted the
  Evidence, whatever a mechanism adds;
* the registry (attest/registry.py) is the one list of mechanisms; reason ranges, Evidence
  claims and content types are declared by the mechanisms and checked for conflicts;
* every framed protocol (the session, the link handshake) is a declaration on one kernel with
  one error behaviour, tested here from each declaration's own table.
"""

from __future__ import annotations

from itertools import pairwise, product
from typing import Any

import pytest
from conftest import Bench

from attest.errors import LocalProtocolError, RemoteProtocolError
from attest.licensing.checks import IssuedLicense, LedgerView
from attest.licensing.messages import LicenseState
from attest.licensing.reasons import LicenseReason
from attest.licensing.verifier import appraise_with_ledger
from attest.mechanism import Findings, appraise_session
from attest.messages.attestation import Evidence
from attest.messages.revocation import Revocations
from attest.messages.schema import Field, register_extension
from attest.pods.linkwire import (
    LINK,
    LinkBye,
    LinkConfirmFrame,
    LinkHello,
    LinkRefuse,
    LinkReply,
    LinkUp,
)
from attest.protocol.events import (
    Bye,
    ChallengeFrame,
    ConnectionClosed,
    Error,
    ErrorCode,
    EvidenceFrame,
    Hello,
    Next,
    Ping,
    Pong,
    ResultFrame,
)
from attest.protocol.kernel import Connection, Direction, Machine
from attest.protocol.machine import SESSION
from attest.registry import MECHANISMS, content_types
from attest.store.base import Advance, Enroll, Nothing
from attest.testvectors.world import ROUND1_MS, ROUND2_MS, ROUND2_SIGN_S
from attest.verify.policy import Policy
from attest.verify.reasons import Reason, ReasonCode, Tier, Trust, reason_of, register_reasons
from attest.verify.state import ChipState

UEID = b"\x01" + bytes(16)


def _session(bench: Bench, evidence: bytes, challenge: Any, state: ChipState | None, now_ms: int):
    ledger = LedgerView.of([IssuedLicense(1, 10**18, 10**6)], 1)
    return appraise_with_ledger(
        evidence,
        challenge=challenge,
        chain=bench.chain,
        state=state,
        anchors=bench.world.anchors,
        revocations=Revocations(),
        policy=Policy(),
        now_ms=now_ms,
        ledger=ledger,
    )


# -- the commit rule --------------------------------------------------------------------------


def test_a_mechanism_reason_contraindicates_the_verdict_but_the_chip_still_enrols(
    bench: Bench,
) -> None:
    challenge = bench.challenge()
    evidence = bench.forge(challenge, license_state=LicenseState(9, 0, 10))
    session = _session(bench, evidence, challenge, None, ROUND1_MS)
    assert session.verdict.tier is Tier.CONTRAINDICATED
    assert session.verdict.reasons == (LicenseReason.LICENSE_SERIAL_UNKNOWN,)
    assert session.core.verdict.tier is Tier.AFFIRMING  # the core accepted the Evidence
    assert isinstance(session.commit, Enroll)
    assert session.commit.record.state == session.core.new_state


def test_a_mechanism_reason_contraindicates_the_verdict_but_the_state_advances(
    bench: Bench,
) -> None:
    state, challenge = bench.next_round()
    evidence = bench.forge(challenge, ROUND2_SIGN_S, license_state=LicenseState(9, 0, 10))
    session = _session(bench, evidence, challenge, state, ROUND2_MS)
    assert session.verdict.tier is Tier.CONTRAINDICATED
    assert isinstance(session.commit, Advance)
    assert session.commit.expected_counter == state.attest_counter
    assert session.commit.state.attest_counter > state.attest_counter


def test_a_core_rejection_commits_nothing_whatever_the_mechanisms_say(bench: Bench) -> None:
    state, challenge = bench.next_round()
    # a replayed counter: the core contraindicates; the licence lie is still reported
    evidence = bench.forge(
        challenge,
        ROUND2_SIGN_S,
        attest_counter=state.attest_counter,
        license_state=LicenseState(9, 0, 10),
    )
    session = _session(bench, evidence, challenge, state, ROUND2_MS)
    assert isinstance(session.commit, Nothing)
    assert Reason.COUNTER_ROLLBACK in session.verdict.reasons
    assert LicenseReason.LICENSE_SERIAL_UNKNOWN in session.verdict.reasons


def test_the_signed_verdict_merges_reasons_once_in_code_order(bench: Bench) -> None:
    class Twice:
        """A mechanism that reports a core reason again and one of its own."""

        def load(self, ueid: bytes) -> None:
            return None

        def appraise(
            self, view: None, core: Any, *, revocations: Any, now_ms: int
        ) -> Findings[Any]:
            return Findings((LicenseReason.LICENSE_SERIAL_ROLLBACK, Reason.FIRMWARE_UNKNOWN))

        def steps(self, findings: Any, verdict: Any) -> tuple[()]:
            return ()

        def conclude(self, findings: Any, verdict: Any, *, now_ms: int) -> Any:
            return None

    challenge = bench.challenge()
    policy = Policy(firmware_measurements={})  # the core says FIRMWARE_UNKNOWN (a warning)
    session = appraise_session(
        bench.answer(challenge),
        challenge=challenge,
        chain=bench.chain,
        record=None,
        anchors=bench.world.anchors,
        revocations=Revocations(),
        policy=policy,
        now_ms=ROUND1_MS,
        mechanisms=((Twice(), None),),
    )
    assert session.verdict.reasons == (
        Reason.FIRMWARE_UNKNOWN,
        LicenseReason.LICENSE_SERIAL_ROLLBACK,
    )
    assert session.verdict.tier is Tier.CONTRAINDICATED
    assert isinstance(session.commit, Enroll)  # the core only warned


# -- the registry -----------------------------------------------------------------------------


def test_every_mechanism_declares_disjoint_ranges_and_its_reasons_resolve() -> None:
    ranges = []
    for m in MECHANISMS:
        assert m.reasons is not None, m.name
        enum_cls, first, last = m.reasons
        ranges.append((first, last))
        for r in enum_cls:
            assert first <= r <= last
            assert reason_of(int(r)) is r
    ranges.sort()
    assert all(a[1] < b[0] for a, b in pairwise(ranges))
    assert ranges[0][0] > max(Reason)


def test_an_overlapping_reason_range_is_refused() -> None:
    class Clash(ReasonCode):
        CLASH = 101, Trust.CONFIGURATION, 96

    with pytest.raises(ValueError, match="overlaps"):
        register_reasons(Clash, 100, 129)


def test_a_reason_without_an_ar4si_claim_is_refused() -> None:
    """Every reason says what it means to a relying party (SPEC §10.1), or it does not exist."""
    with pytest.raises(TypeError, match="declares no AR4SI claim"):

        class Bare(ReasonCode):
            BARE = 170

    with pytest.raises(ValueError, match="not a warning or worse"):

        class Affirming(ReasonCode):
            FINE = 171, Trust.HARDWARE, 2


def test_a_claim_key_or_name_taken_twice_is_refused() -> None:
    from attest.messages.schema import UINT

    taken_key = Field("other_name", -70004, UINT, optional=True)  # licensing's key
    with pytest.raises(ValueError, match="already taken"):
        register_extension(Evidence, taken_key)
    taken_name = Field("license_state", -79999, UINT, optional=True)
    with pytest.raises(ValueError, match="already taken"):
        register_extension(Evidence, taken_name)
    required = Field("new_thing", -79998, UINT)
    with pytest.raises(ValueError, match="optional"):
        register_extension(Evidence, required)


def test_the_registry_knows_every_content_type_once() -> None:
    types = content_types()
    assert len(types) == len(set(types)) == 16


# -- one kernel, one error behaviour ------------------------------------------------------------

SESSION_SAMPLES: dict[type, Any] = {
    Hello: Hello((1,), b"d", b"m"),
    ChallengeFrame: ChallengeFrame(1, b"v", b"c"),
    EvidenceFrame: EvidenceFrame(b"e"),
    ResultFrame: ResultFrame(b"r"),
    Next: Next(),
    Bye: Bye(),
    Error: Error(ErrorCode.TIMEOUT, "t"),
    Ping: Ping(bytes(32)),
    Pong: Pong(b"p"),
}
LINK_SAMPLES: dict[type, Any] = {
    LinkHello: LinkHello(1, UEID, bytes(32), bytes(32), b"", b""),
    LinkReply: LinkReply(1, UEID, bytes(32), bytes(32), b"", b"", b"p"),
    LinkConfirmFrame: LinkConfirmFrame(b"p"),
    LinkUp: LinkUp(),
    LinkRefuse: LinkRefuse("LINK_NOT_MEMBER"),
    LinkBye: LinkBye(),
}
PROTOCOLS: dict[str, tuple[Machine[Any, Any], dict[type, Any]]] = {
    "session": (SESSION, SESSION_SAMPLES),
    "link": (LINK, LINK_SAMPLES),
}


def _at(machine: Machine[Any, Any], role: Any, state: Any) -> Connection[Any, Any]:
    conn: Connection[Any, Any] = Connection(machine, role)
    conn._state = state  # reach the state directly: the table, not a path, is under test
    return conn


def _live(machine: Machine[Any, Any]) -> list[tuple[Any, Any]]:
    return sorted(
        {
            (r, s)
            for (r, s, _, _) in machine.transitions
            if s not in (machine.closed, machine.error)
        },
        key=lambda rs: (str(rs[0]), str(rs[1])),
    )


def _illegal(direction: Direction) -> list[tuple[str, Any, Any, type]]:
    out = []
    for name, (machine, samples) in PROTOCOLS.items():
        for (role, state), cls in product(_live(machine), samples):
            if machine.next_state(role, state, direction, cls) is None:
                out.append((name, role, state, cls))
    return out


@pytest.mark.parametrize("case", _illegal(Direction.RECV), ids=str)
def test_an_illegal_receive_errors_the_same_way_in_every_protocol(
    case: tuple[str, Any, Any, type],
) -> None:
    name, role, state, cls = case
    machine, samples = PROTOCOLS[name]
    conn = _at(machine, role, state)
    conn.receive_data(machine.codec.encode(samples[cls]))
    for _ in range(2):  # and again, with the same code, on every later call
        with pytest.raises(RemoteProtocolError) as exc:
            conn.next_event()
        assert exc.value.error_code == ErrorCode.UNEXPECTED_FRAME
        assert conn.state is machine.error
    conn.receive_data(b"more")  # discarded, not buffered
    assert len(conn._buffer) == 0


@pytest.mark.parametrize("case", _illegal(Direction.SEND), ids=str)
def test_an_illegal_send_changes_nothing_in_every_protocol(
    case: tuple[str, Any, Any, type],
) -> None:
    name, role, state, cls = case
    machine, samples = PROTOCOLS[name]
    conn = _at(machine, role, state)
    with pytest.raises(LocalProtocolError):
        conn.send(samples[cls])
    assert conn.state is state


@pytest.mark.parametrize("name", PROTOCOLS)
def test_garbage_oversize_and_truncation_error_the_same_way(name: str) -> None:
    machine, _ = PROTOCOLS[name]
    role = next(iter(machine.initial))
    cases: list[tuple[bytes, bool, ErrorCode]] = [
        (b"\x00\x00\x00\x01\xff", False, ErrorCode.MALFORMED_FRAME),  # not CBOR
        (b"\x00\x00\x00\x02\x81\x63", False, ErrorCode.MALFORMED_FRAME),  # unknown frame type
        (b"\x00\x00\x00\x00", False, ErrorCode.MALFORMED_FRAME),  # zero length
        ((1 << 20).to_bytes(4, "big"), False, ErrorCode.FRAME_TOO_LARGE),
        (b"\x00\x00\x00\x05\x81", True, ErrorCode.MALFORMED_FRAME),  # EOF inside a frame
    ]
    for data, eof, code in cases:
        conn: Connection[Any, Any] = Connection(machine, role)
        conn.receive_data(data)
        if eof:
            conn.receive_data(b"")
        with pytest.raises(RemoteProtocolError) as exc:
            conn.next_event()
        assert exc.value.error_code == code, data.hex()
        assert conn.state is machine.error


@pytest.mark.parametrize("name", PROTOCOLS)
def test_data_after_eof_is_our_bug_and_eof_between_frames_closes(name: str) -> None:
    machine, _ = PROTOCOLS[name]
    role = next(iter(machine.initial))
    conn: Connection[Any, Any] = Connection(machine, role)
    conn.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"x")
    assert isinstance(conn.next_event(), ConnectionClosed)
    assert conn.state is machine.closed
    assert conn.abrupt_close
