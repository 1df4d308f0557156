"""The verifier daemon over real TCP on loopback: attestation, attacks, robustness, lifecycle.

Each test runs one or more in-process :class:`VerifierNode`s (port 0) on a real SQLite file and
talks to them with the chip driver (:func:`attest.chip.runner.attest`) or with a raw client that
can put arbitrary bytes or evidence on the wire. No test asserts on wall-clock time;
``trio.fail_after`` is only a guard against hangs.
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from attest.chip.adversary import CompromisedChip
from attest.chip.device import Chip, fabricate
from attest.chip.runner import VerifierRefused, attest
from attest.errors import ChipRefusal, RemoteProtocolError, StoreError
from attest.identity import Authority, Manufacturer, VerifierIdentity
from attest.keys import SigningKey
from attest.messages.attestation import NO_CHIP_UEID, AttestationResult, Challenge
from attest.messages.revocation import Revocations
from attest.net import receive_event, send_event
from attest.node.server import NodeSettings, VerifierNode
from attest.node.service import VerifierService
from attest.protocol.connection import Connection
from attest.protocol.events import (
    NEED_DATA,
    PROTOCOL_VERSION,
    Bye,
    ChallengeFrame,
    ConnectionClosed,
    Error,
    ErrorCode,
    Event,
    EvidenceFrame,
    Hello,
    Next,
    ResultFrame,
)
from attest.protocol.framing import encode_frame
from attest.protocol.machine import Role
from attest.store import SqliteStore, verify_audit
from attest.store.audit import AuditRecord
from attest.verify.chain import verify_verifier_cert
from attest.verify.policy import Policy
from attest.verify.reasons import Reason, Tier
from attest.verify.state import ChipStatus

HOST = "127.0.0.1"
VERIFIER_ID = "kl-1"
GUARD_S = 10.0  # hang guard only, never a timing assertion


# -- the world: authority, manufacturer, verifier --------------------------------------------


@dataclass(frozen=True)
class World:
    auth: Authority
    mfr: Manufacturer
    ver: VerifierIdentity
    now_s: int

    def chip(self, chip_class: type[Chip] = Chip) -> Chip:
        chip = fabricate(
            self.mfr,
            self.auth.anchors,
            hwmodel="HX100",
            pod_class=8,
            now_s=self.now_s,
            chip_class=chip_class,
        )
        chip.boot(time.time())
        return chip

    def open_store(self, path: Path) -> SqliteStore:
        return SqliteStore(path, verifier_id=VERIFIER_ID, signing_key=self.ver.key)


@pytest.fixture(scope="module")
def world() -> World:
    now = int(time.time())
    auth = Authority("authority.example", SigningKey.derive_insecure_for_tests("node-authority"))
    mkey = SigningKey.derive_insecure_for_tests("node-mfr")
    mfr = Manufacturer(
        "mfr-a", mkey, auth.certify_manufacturer("mfr-a", mkey.public_key, now_s=now)
    )
    vkey = SigningKey.derive_insecure_for_tests("node-verifier")
    ver = VerifierIdentity(
        VERIFIER_ID,
        "MY-KL",
        vkey,
        auth.certify_verifier(VERIFIER_ID, "MY-KL", vkey.public_key, now_s=now),
    )
    return World(auth, mfr, ver, now)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "verifier.db"


@asynccontextmanager
async def running_node(
    world: World,
    path: Path,
    settings: NodeSettings | None = None,
    *,
    revocations: Revocations | None = None,
) -> AsyncIterator[VerifierNode]:
    """A node serving ``path`` on loopback; shut down (and drained, store closed) on exit."""
    store = world.open_store(path)
    service = VerifierService(
        identity=world.ver,
        anchors=world.auth.anchors,
        store=store,
        policy=Policy(),
        revocations=revocations,
    )
    node = VerifierNode(service, settings or NodeSettings(http_port=0))
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        try:
            yield node
        finally:
            node.shutdown()
    assert node.finished.is_set()


def port_of(node: VerifierNode) -> int:
    assert node.address is not None
    return node.address.port


def store_of(node: VerifierNode) -> SqliteStore:
    store = node.service.store
    assert isinstance(store, SqliteStore)
    return store


def last_audit(store: SqliteStore) -> AuditRecord:
    seq, _ = store.audit_head()
    return next(iter(store.audit_entries(seq)))


# -- a raw chip-side client: arbitrary evidence or bytes on the wire ------------------------


class RawClient:
    """One TCP connection with a chip-role Connection; every step is explicit."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.conn = Connection(Role.CHIP)

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        return cls(await trio.open_tcp_stream(HOST, port))

    async def send(self, event: Hello | EvidenceFrame | Next | Bye) -> None:
        await send_event(self.stream, self.conn, event)

    async def receive(self) -> Event:
        try:
            return await receive_event(self.stream, self.conn)
        except trio.BrokenResourceError:
            return ConnectionClosed()

    async def hello(self, chip: Chip) -> ChallengeFrame:
        hello = Hello((PROTOCOL_VERSION,), chip.chain.device_cert, chip.chain.manufacturer_cert)
        await self.send(hello)
        frame = await self.receive()
        assert isinstance(frame, ChallengeFrame), frame
        return frame

    async def answer(self, evidence: bytes) -> ResultFrame:
        await self.send(EvidenceFrame(evidence))
        frame = await self.receive()
        assert isinstance(frame, ResultFrame), frame
        return frame

    async def aclose(self) -> None:
        await self.stream.aclose()


EvidenceFn = Callable[[Challenge], bytes]


@dataclass(frozen=True)
class Round:
    challenge: Challenge
    evidence: bytes
    result: AttestationResult


def open_result(world: World, frame: ChallengeFrame, token: bytes) -> AttestationResult:
    """Verify a RESULT token with the verifier certificate that came with the challenge."""
    cert = verify_verifier_cert(frame.verifier_cert, world.auth.anchors)
    assert cert is not None
    assert cert.verifier_id == VERIFIER_ID
    assert cert.public_key.raw == world.ver.key.public_key.raw
    return AttestationResult.verify(token, cert.public_key)


async def one_round(world: World, port: int, chip: Chip, make: EvidenceFn | None = None) -> Round:
    """HELLO → CHALLENGE → (chosen evidence) → RESULT → BYE on a fresh connection."""
    with trio.fail_after(GUARD_S):
        client = await RawClient.connect(port)
        try:
            frame = await client.hello(chip)
            challenge = chip.accept_challenge(
                frame.verifier_cert, frame.challenge, int(time.time())
            )
            evidence = make(challenge) if make else chip.answer(challenge, time.time())
            reply = await client.answer(evidence)
            await client.send(Bye())
        finally:
            await client.aclose()
    return Round(challenge, evidence, open_result(world, frame, reply.result))


async def idle_client(world: World, port: int, chip: Chip) -> RawClient:
    """A connection that finished one affirming round and now sits in IDLE (keep-alive)."""
    client = await RawClient.connect(port)
    frame = await client.hello(chip)
    challenge = chip.accept_challenge(frame.verifier_cert, frame.challenge, int(time.time()))
    reply = await client.answer(chip.answer(challenge, time.time()))
    assert open_result(world, frame, reply.result).status == Tier.AFFIRMING
    return client


async def read_to_eof(stream: trio.SocketStream) -> bytes:
    data = b""
    with trio.fail_after(GUARD_S):
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                break
            if not chunk:
                break
            data += chunk
    return data


def server_events(data: bytes) -> list[Event]:
    """Parse what the server sent (before any HELLO of ours) into events, ending at EOF."""
    conn = Connection(Role.CHIP)
    conn.receive_data(data)
    conn.receive_data(b"")
    events: list[Event] = []
    while not events or not isinstance(events[-1], ConnectionClosed):
        event = conn.next_event()
        assert event is not NEED_DATA
        events.append(event)
    return events


# -- 1. end to end, and persistence across a restart -----------------------------------------


async def test_attest_over_tcp_and_state_survives_restart(world: World, db: Path) -> None:
    chip = world.chip()
    async with running_node(world, db) as node:
        port, store = port_of(node), store_of(node)
        first = await one_round(world, port, chip)
        assert first.result.status == Tier.AFFIRMING == 2
        assert first.result.reasons == ()
        assert first.result.ueid == chip.ueid
        assert first.result.nonce == first.challenge.nonce
        record = store.get_chip(chip.ueid)
        assert record is not None
        assert record.state.attest_counter == chip.attest_counter == 1

        # a second round on a new connection (the real chip driver) advances the state
        with trio.fail_after(GUARD_S):
            [second] = await attest(chip, HOST, port)
        assert (second.status, second.ueid) == (Tier.AFFIRMING, chip.ueid)
        record = store.get_chip(chip.ueid)
        assert record is not None
        assert record.state.attest_counter == chip.attest_counter == 2
        entries_before, _ = store.audit_head()
        assert entries_before == 2

    with pytest.raises(StoreError):
        store.count_chips()  # closed by the node
    report = verify_audit(db, world.ver.key.public_key)
    assert report.ok and report.entries == 2

    # a new node on the same file knows the chip: its state continues, no re-enrolment
    async with running_node(world, db) as node:
        store = store_of(node)
        with trio.fail_after(GUARD_S):
            results = await attest(chip, HOST, port_of(node), rounds=2)
        assert [(r.status, r.ueid) for r in results] == [(Tier.AFFIRMING, chip.ueid)] * 2
        assert store.count_chips() == 1
        record = store.get_chip(chip.ueid)
        assert record is not None
        assert record.state.attest_counter == chip.attest_counter == 4
        assert record.device_cert == chip.chain.device_cert
        assert store.audit_head()[0] == entries_before + 2

    report = verify_audit(db, world.ver.key.public_key)
    assert report.ok, report.problems
    assert report.entries == 4


# -- 2. attacks: rejected with the exact reason, audited, state untouched --------------------


async def assert_rejected(
    world: World,
    node: VerifierNode,
    chip: Chip,
    make: EvidenceFn | None,
    expected: set[Reason],
    *,
    exact: bool = True,
) -> Round:
    store = store_of(node)
    before = store.get_chip(chip.ueid)
    entries, _ = store.audit_head()
    done = await one_round(world, port_of(node), chip, make)
    reasons = {Reason(r) for r in done.result.reasons}
    assert done.result.status == Tier.CONTRAINDICATED == 96
    assert expected <= reasons, reasons
    if exact:
        assert reasons == expected
    # audited: one new entry with the same verdict
    assert store.audit_head()[0] == entries + 1
    entry = last_audit(store).entry
    assert entry.tier == 96
    assert entry.ueid == chip.ueid
    assert set(entry.reasons) == set(done.result.reasons)
    assert entry.nonce == done.challenge.nonce
    # the chip's stored state did not move
    assert store.get_chip(chip.ueid) == before
    return done


async def test_evidence_replay_rejected(world: World, db: Path) -> None:
    chip = world.chip()
    async with running_node(world, db) as node:
        honest = await one_round(world, port_of(node), chip)
        assert honest.result.status == Tier.AFFIRMING
        await assert_rejected(
            world,
            node,
            chip,
            lambda _challenge: honest.evidence,
            {Reason.NONCE_MISMATCH, Reason.EVIDENCE_REPLAY},
            exact=False,  # the stale counter is reported too
        )


async def test_counter_rollback_rejected(world: World, db: Path) -> None:
    chip = world.chip(CompromisedChip)
    assert isinstance(chip, CompromisedChip)
    async with running_node(world, db) as node:
        for _ in range(3):
            assert (await one_round(world, port_of(node), chip)).result.status == Tier.AFFIRMING

        def rolled_back(challenge: Challenge) -> bytes:
            ev = chip.current_evidence(challenge, time.time())
            return chip.sign_arbitrary_evidence(
                dataclasses.replace(ev, attest_counter=chip.attest_counter - 1)
            )

        await assert_rejected(world, node, chip, rolled_back, {Reason.COUNTER_ROLLBACK})


async def test_wrong_nonce_rejected(world: World, db: Path) -> None:
    chip = world.chip(CompromisedChip)
    assert isinstance(chip, CompromisedChip)
    async with running_node(world, db) as node:
        assert (await one_round(world, port_of(node), chip)).result.status == Tier.AFFIRMING

        def wrong_nonce(challenge: Challenge) -> bytes:
            ev = chip.current_evidence(challenge, time.time())
            return chip.sign_arbitrary_evidence(
                dataclasses.replace(
                    ev, nonce=os.urandom(len(challenge.nonce)), attest_counter=ev.attest_counter + 1
                )
            )

        await assert_rejected(world, node, chip, wrong_nonce, {Reason.NONCE_MISMATCH})


async def test_forged_signature_rejected(world: World, db: Path) -> None:
    chip = world.chip()
    other = world.chip(CompromisedChip)
    assert isinstance(other, CompromisedChip)
    async with running_node(world, db) as node:
        assert (await one_round(world, port_of(node), chip)).result.status == Tier.AFFIRMING

        def flipped(challenge: Challenge) -> bytes:
            token = bytearray(chip.answer(challenge, time.time()))
            token[-1] ^= 0x01  # the last byte of a COSE_Sign1 is the signature's
            return bytes(token)

        def foreign_key(challenge: Challenge) -> bytes:
            # the claims are this chip's, the signature is another (genuine) chip's key
            ev = chip.current_evidence(challenge, time.time())
            return other.sign_arbitrary_evidence(
                dataclasses.replace(ev, attest_counter=chip.attest_counter + 1)
            )

        await assert_rejected(world, node, chip, flipped, {Reason.BAD_SIGNATURE})
        await assert_rejected(world, node, chip, foreign_key, {Reason.BAD_SIGNATURE})


async def test_revoked_chip_rejected(world: World, db: Path, tmp_path: Path) -> None:
    chip = world.chip()
    async with running_node(world, db) as node:
        assert (await one_round(world, port_of(node), chip)).result.status == Tier.AFFIRMING
        store_of(node).set_status(chip.ueid, ChipStatus.REVOKED)
        await assert_rejected(world, node, chip, None, {Reason.DEVICE_REVOKED})

    # revoked by the authority's list: rejected on first contact, and never enrolled
    listed = world.chip()
    revocations = Revocations(number=1, devices=frozenset({listed.ueid}))
    async with running_node(world, tmp_path / "other.db", revocations=revocations) as node:
        done = await assert_rejected(world, node, listed, None, {Reason.DEVICE_REVOKED})
        assert done.result.ueid == listed.ueid
        assert store_of(node).get_chip(listed.ueid) is None


# -- 3. protocol robustness: bad bytes end the session and change nothing --------------------


def expected_error(data: bytes) -> ErrorCode | None:
    """What a verifier Connection makes of ``data`` then EOF: an error code, or None if the
    first thing in it is a legal event (such inputs are not garbage)."""
    conn = Connection(Role.VERIFIER)
    conn.receive_data(data)
    conn.receive_data(b"")
    try:
        conn.next_event()
    except RemoteProtocolError as exc:
        return ErrorCode(exc.error_code)
    return None


def hello_frame(chip: Chip) -> bytes:
    return encode_frame(
        Hello((PROTOCOL_VERSION,), chip.chain.device_cert, chip.chain.manufacturer_cert)
    )


def garbage_inputs(chip: Chip, seed: int, count: int) -> list[tuple[bytes, ErrorCode]]:
    """Random byte strings the verifier must refuse, with the code it must refuse them with."""
    rng = random.Random(seed)
    hello = hello_frame(chip)
    out: list[tuple[bytes, ErrorCode]] = []
    while len(out) < count:
        kind = len(out) % 4
        if kind == 0:  # anything at all
            data = rng.randbytes(rng.randint(1, 64))
        elif kind == 1:  # a well-sized header around a random body
            body = rng.randbytes(rng.randint(1, 64))
            data = len(body).to_bytes(4, "big") + body
        elif kind == 2:  # a HELLO with one byte changed
            i = rng.randrange(len(hello))
            data = hello[:i] + bytes([hello[i] ^ rng.randint(1, 255)]) + hello[i + 1 :]
        else:  # a HELLO cut short
            data = hello[: rng.randrange(1, len(hello))]
        code = expected_error(data)
        if code is not None:
            out.append((data, code))
    return out


async def send_raw(port: int, data: bytes, *, eof: bool = True) -> list[Event]:
    """Write ``data`` (then EOF), return everything the server said before closing."""
    with trio.fail_after(GUARD_S):
        stream = await trio.open_tcp_stream(HOST, port)
        async with stream:
            await stream.send_all(data)
            if eof:
                await stream.send_eof()
            return server_events(await read_to_eof(stream))


async def test_garbage_ends_session_without_state_change(world: World, db: Path) -> None:
    chip = world.chip()
    async with running_node(world, db) as node:
        port, store = port_of(node), store_of(node)
        await one_round(world, port, chip)
        head, chips = store.audit_head(), store.count_chips()
        outstanding = store.outstanding_challenges()

        hello = hello_frame(chip)
        evidence_first = encode_frame(EvidenceFrame(b"\xd2\x84"))
        cases: list[tuple[bytes, ErrorCode, bool]] = [
            (hello[:-3], ErrorCode.MALFORMED_FRAME, True),  # truncated frame, then EOF
            (hello[:2], ErrorCode.MALFORMED_FRAME, True),  # EOF inside the header
            ((65537).to_bytes(4, "big"), ErrorCode.FRAME_TOO_LARGE, False),  # judged at once
            (((1 << 32) - 1).to_bytes(4, "big") + b"x" * 10, ErrorCode.FRAME_TOO_LARGE, False),
            (b"\x00\x00\x00\x00", ErrorCode.MALFORMED_FRAME, False),  # zero length
            (evidence_first, ErrorCode.UNEXPECTED_FRAME, False),  # EVIDENCE before HELLO
            (encode_frame(Next()), ErrorCode.UNEXPECTED_FRAME, False),
        ]
        cases += [(data, code, True) for data, code in garbage_inputs(chip, seed=1, count=30)]
        seen = set()
        for data, code, eof in cases:
            events = await send_raw(port, data, eof=eof)
            assert len(events) == 2, (data, events)
            error, closed = events
            assert isinstance(error, Error), (data, events)
            assert error.code == code, (data, error)
            assert isinstance(closed, ConnectionClosed)
            seen.add(code)
        assert seen == {
            ErrorCode.MALFORMED_FRAME,
            ErrorCode.FRAME_TOO_LARGE,
            ErrorCode.UNEXPECTED_FRAME,
        }

        # nothing was recorded, enrolled or left outstanding
        assert store.audit_head() == head
        assert store.count_chips() == chips
        assert store.outstanding_challenges() == outstanding
        # and the node still serves
        assert (await one_round(world, port, chip)).result.status == Tier.AFFIRMING


async def test_wrong_frame_mid_session(world: World, db: Path) -> None:
    """NEXT instead of EVIDENCE: UNEXPECTED_FRAME; the challenge is never consumed."""
    chip = world.chip()
    async with running_node(world, db) as node:
        store = store_of(node)
        head = store.audit_head()
        with trio.fail_after(GUARD_S):
            stream = await trio.open_tcp_stream(HOST, port_of(node))
            async with stream:
                await stream.send_all(hello_frame(chip) + encode_frame(Next()))
                data = await read_to_eof(stream)
        conn = Connection(Role.CHIP)
        conn.send(Hello((PROTOCOL_VERSION,), chip.chain.device_cert, chip.chain.manufacturer_cert))
        conn.receive_data(data)
        conn.receive_data(b"")
        assert isinstance(conn.next_event(), ChallengeFrame)
        error = conn.next_event()
        assert isinstance(error, Error) and error.code == ErrorCode.UNEXPECTED_FRAME
        assert isinstance(conn.next_event(), ConnectionClosed)
        assert store.audit_head() == head
        assert store.count_chips() == 0


# -- 4. deadlines --------------------------------------------------------------------------------


async def test_stalled_session_times_out_while_others_are_served(world: World, db: Path) -> None:
    staller, honest = world.chip(), world.chip()
    settings = NodeSettings(http_port=-1, session_timeout_s=0.5)
    async with running_node(world, db, settings) as node:
        store = store_of(node)
        with trio.fail_after(GUARD_S):
            client = await RawClient.connect(port_of(node))
            await client.hello(staller)  # ... and then say nothing
            # the daemon keeps serving others while the staller waits
            [result] = await attest(honest, HOST, port_of(node))
            assert result.status == Tier.AFFIRMING
            event = await client.receive()
            await client.aclose()
        assert isinstance(event, Error | ConnectionClosed)
        if isinstance(event, Error):
            assert event.code == ErrorCode.TIMEOUT
        # the stalled session left no audit entry and did not enrol its chip
        assert store.audit_head()[0] == 1
        assert store.get_chip(staller.ueid) is None
        metrics = node.metrics.render()
        assert b'attest_protocol_errors_total{code="TIMEOUT"} 1.0' in metrics
        # the staller's round is a session that timed out; the honest chip's one completed
        assert b'attest_sessions_total{outcome="timeout"} 1.0' in metrics
        assert b'attest_sessions_total{outcome="completed"} 1.0' in metrics
        assert b'attest_connections_total{outcome="timeout"} 1.0' in metrics
        assert b'attest_connections_total{outcome="closed"} 1.0' in metrics


# -- 5. connection limit -----------------------------------------------------------------------


async def test_max_connections_overloaded(world: World, db: Path) -> None:
    # (a refused connection is answered after about hello_timeout_s: accept.RefusalLot)
    settings = NodeSettings(http_port=-1, max_connections=2, hello_timeout_s=0.2)
    async with running_node(world, db, settings) as node:
        port = port_of(node)
        with trio.fail_after(GUARD_S):
            held = [await idle_client(world, port, world.chip()) for _ in range(2)]
            # a third connection is refused at once
            events = await send_raw(port, b"", eof=False)
            assert isinstance(events[0], Error) and events[0].code == ErrorCode.OVERLOADED
            # ... also for the real chip driver, which speaks first
            with pytest.raises(VerifierRefused) as refused:
                await attest(world.chip(), HOST, port)
            assert refused.value.code == ErrorCode.OVERLOADED
            # freeing a slot lets the next chip in
            # (the server closes its end only after it has released the slot)
            await held[0].send(Bye())
            assert isinstance(await held[0].receive(), ConnectionClosed)
            await held[0].aclose()
            [result] = await attest(world.chip(), HOST, port)
            assert result.status == Tier.AFFIRMING
            await held[1].aclose()
        assert b'attest_connections_total{outcome="overloaded"} 2.0' in node.metrics.render()


# -- 6. graceful shutdown -----------------------------------------------------------------------


async def test_graceful_shutdown(world: World, db: Path) -> None:
    settings = NodeSettings(http_port=-1, drain_timeout_s=GUARD_S, idle_timeout_s=60)
    store: SqliteStore | None = None
    with trio.fail_after(GUARD_S):
        async with running_node(world, db, settings) as node:
            store, port = store_of(node), port_of(node)
            idle = [await idle_client(world, port, world.chip()) for _ in range(3)]
            # one session is mid-exchange when the shutdown begins
            busy_chip = world.chip()
            busy = await RawClient.connect(port)
            frame = await busy.hello(busy_chip)

            node.shutdown()
            for client in idle:
                event = await client.receive()
                assert isinstance(event, Error) and event.code == ErrorCode.SHUTTING_DOWN
                assert isinstance(await client.receive(), ConnectionClosed)
                await client.aclose()
            # no new sessions are accepted
            with pytest.raises(OSError):
                await trio.open_tcp_stream(HOST, port)
            # the in-flight exchange is finished, then that session is told too
            challenge = busy_chip.accept_challenge(
                frame.verifier_cert, frame.challenge, int(time.time())
            )
            reply = await busy.answer(busy_chip.answer(challenge, time.time()))
            assert open_result(world, frame, reply.result).status == Tier.AFFIRMING
            event = await busy.receive()
            assert isinstance(event, Error) and event.code == ErrorCode.SHUTTING_DOWN
            await busy.aclose()
            await node.finished.wait()
    assert not node.ready
    with pytest.raises(StoreError):
        store.audit_head()  # the node closed its store
    report = verify_audit(db, world.ver.key.public_key)
    assert report.ok, report.problems
    assert report.entries == 4
    with SqliteStore(db, readonly=True) as ro:
        checkpoints = list(ro.audit_checkpoints())
        assert checkpoints and checkpoints[-1].seq == report.entries
        assert checkpoints[-1].head_hash == report.head_hash


# -- 7. operations endpoint ---------------------------------------------------------------------


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    with trio.fail_after(GUARD_S):
        stream = await trio.open_tcp_stream(HOST, port)
        async with stream:
            await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = await read_to_eof(stream)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_http_endpoints(world: World, db: Path) -> None:
    chip = world.chip(CompromisedChip)
    assert isinstance(chip, CompromisedChip)
    async with running_node(world, db, NodeSettings(http_port=0)) as node:
        assert node.address is not None and node.address.http_port
        http, port = node.address.http_port, port_of(node)
        assert await http_get(http, "/healthz") == (200, b"ok\n")
        assert (await http_get(http, "/readyz"))[0] == 200
        assert (await http_get(http, "/nope"))[0] == 404

        await one_round(world, port, chip)
        await one_round(
            world,
            port,
            chip,
            lambda c: chip.sign_arbitrary_evidence(chip.current_evidence(c, time.time())),
        )
        status, metrics = await http_get(http, "/metrics")
        assert status == 200
        lines = metrics.decode().splitlines()
        assert 'attest_verdicts_total{tier="affirming"} 1.0' in lines
        assert 'attest_verdicts_total{tier="contraindicated"} 1.0' in lines
        assert 'attest_reasons_total{reason="COUNTER_ROLLBACK"} 1.0' in lines
        assert "attest_session_seconds_count 2.0" in lines
        assert any(line.startswith('attest_session_seconds_bucket{le="0.001"}') for line in lines)
        assert 'attest_session_seconds_bucket{le="+Inf"} 2.0' in lines
        assert "attest_registered_chips 1.0" in lines  # kept current (was: start-up only)

        # once shutdown begins (an exchange still in flight keeps the node up): not ready
        busy = await RawClient.connect(port)
        frame = await busy.hello(chip)
        node.shutdown()
        assert await http_get(http, "/readyz") == (503, b"not ready\n")
        assert (await http_get(http, "/healthz"))[0] == 200
        challenge = chip.accept_challenge(frame.verifier_cert, frame.challenge, int(time.time()))
        await busy.answer(chip.answer(challenge, time.time()))
        await busy.send(Bye())
        await busy.aclose()


# -- a chip that refuses, a chip that cannot be attributed (SPEC §7.10, §7.12) -------------------


async def test_a_refusing_chip_tells_the_verifier_why(
    world: World, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A chip fused with another authority refuses our CHALLENGE with ERROR REFUSED."""
    other = Authority("authority.other", SigningKey.derive_insecure_for_tests("other-authority"))
    chip = fabricate(
        world.mfr, other.anchors, hwmodel="HX100", pod_class=8, now_s=world.now_s,
        chip_class=CompromisedChip,  # takes the (real) manufacturer's chain unchecked
    )  # fmt: skip
    chip.boot(time.time())
    async with running_node(world, db) as node:
        with trio.fail_after(GUARD_S), pytest.raises(ChipRefusal) as refused:
            await attest(chip, "127.0.0.1", port_of(node))
        assert refused.value.reason == "VERIFIER_CERT_INVALID"
        assert chip.attest_counter == 0  # nothing signed
        with trio.fail_after(GUARD_S):
            while not any(
                getattr(r, "fields", {}).get("event") == "peer_error" for r in caplog.records
            ):
                await trio.sleep(0.01)
    (record,) = [r for r in caplog.records if getattr(r, "fields", {}).get("event") == "peer_error"]
    assert record.fields["code"] == "REFUSED"  # type: ignore[attr-defined]
    assert record.fields["text"].startswith("VERIFIER_CERT_INVALID")  # type: ignore[attr-defined]
    with world.open_store(db) as store:
        assert store.audit_head()[0] == 0  # no appraisal, no entry


async def test_a_chip_whose_chain_is_not_accepted_learns_why(world: World, db: Path) -> None:
    """CERT_CHAIN_INVALID comes back as a diagnostic result the chip accepts (names no chip)."""
    impostor = Authority("authority.example", SigningKey.derive_insecure_for_tests("impostor"))
    key = SigningKey.derive_insecure_for_tests("impostor-mfr")
    rogue = Manufacturer(
        "mfr-a", key, impostor.certify_manufacturer("mfr-a", key.public_key, now_s=world.now_s)
    )
    chip = fabricate(
        rogue, world.auth.anchors, hwmodel="HX100", pod_class=8, now_s=world.now_s,
        chip_class=CompromisedChip,
    )  # fmt: skip
    chip.boot(time.time())
    async with running_node(world, db) as node:
        with trio.fail_after(GUARD_S):
            (result,) = await attest(chip, "127.0.0.1", port_of(node))
    assert result.ueid == NO_CHIP_UEID and result.status == Tier.CONTRAINDICATED
    assert Reason.CERT_CHAIN_INVALID in result.reasons
