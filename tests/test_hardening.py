"""The daemon attacked as an outsider would (issue 10): peers and the store cannot end the node.

Each test reproduces one finding against an in-process :class:`VerifierNode` on a real SQLite
file and real loopback sockets (no mocks): a TCP reset on either port, a store locked by another
process or on a full filesystem, a long-held write lock that must not freeze the event loop, and
floods of idle connections. No test asserts on wall-clock time; ``trio.fail_after`` only guards
against hangs, and "while the lock is held" means "before the test releases it".
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import socket
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from test_node import (
    GUARD_S,
    HOST,
    RawClient,
    World,
    hello_frame,
    http_get,
    idle_client,
    one_round,
    port_of,
    read_to_eof,
    server_events,
    world,
)

from attest.chip.device import Chip
from attest.chip.runner import attest
from attest.node.admission import Admission, Refusal, address_key
from attest.node.logs import RateLimited
from attest.node.server import NodeSettings, VerifierNode
from attest.node.service import VerifierService
from attest.protocol.events import (
    PROTOCOL_VERSION,
    Bye,
    ChallengeFrame,
    ConnectionClosed,
    Error,
    ErrorCode,
    Hello,
    Next,
)
from attest.store import SqliteStore, verify_audit
from attest.verify.policy import Policy
from attest.verify.reasons import Tier

__all__ = ["world"]  # the module-scoped fixture, shared with test_node


@asynccontextmanager
async def daemon_node(
    world: World,
    path: Path,
    settings: NodeSettings | None = None,
    *,
    busy_timeout_s: float = 10.0,
) -> AsyncIterator[VerifierNode]:
    """A node as ``attest verifier serve`` runs it: group commit, ops HTTP on a free port."""
    store = SqliteStore(
        path,
        verifier_id="kl-1",
        signing_key=world.ver.key,
        group_sync=True,
        busy_timeout_s=busy_timeout_s,
    )
    service = VerifierService(
        identity=world.ver, anchors=world.auth.anchors, store=store, policy=Policy()
    )
    node = VerifierNode(service, settings or NodeSettings(http_port=0, group_sync=True))
    async with trio.open_nursery() as nursery:
        await nursery.start(node.run)
        try:
            yield node
        finally:
            node.shutdown()


def http_port_of(node: VerifierNode) -> int:
    assert node.address is not None and node.address.http_port is not None
    return node.address.http_port


def hello_of(chip: Chip) -> Hello:
    return Hello((PROTOCOL_VERSION,), chip.chain.device_cert, chip.chain.manufacturer_cert)


async def reset_connection(port: int, data: bytes = b"", source: str = HOST) -> None:
    """Connect, maybe send ``data``, then abort with a TCP RST (SO_LINGER 0)."""
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await sock.bind((source, 0))
    await sock.connect((HOST, port))
    if data:
        await sock.send(data)
    sock.close()


# -- 1. a reset on either port ------------------------------------------------------------------


async def test_tcp_reset_on_ops_and_attestation_ports_does_not_end_node(
    world: World, tmp_path: Path
) -> None:
    """Regression: one RST on the ops port raised BrokenResourceError out of serve_listeners."""
    chip = world.chip()
    async with daemon_node(world, tmp_path / "v.db") as node:
        http, port = http_port_of(node), port_of(node)
        with trio.fail_after(GUARD_S):
            for data in (b"", b"GET /metr", b"GET /metrics HTTP/1.1\r\n"):
                for _ in range(5):
                    await reset_connection(http, data)
            for data in (b"", hello_frame(chip)[:7], hello_frame(chip)):
                for _ in range(5):
                    await reset_connection(port, data)
            # a reset in the middle of a session, after the CHALLENGE was sent
            client = await RawClient.connect(port)
            await client.hello(chip)
            client.stream.socket.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            await client.aclose()
            await trio.sleep(0.05)  # let the node see every reset (not a timing assertion)
            assert await http_get(http, "/healthz") == (200, b"ok\n")
            assert (await one_round(world, port, chip)).result.status == Tier.AFFIRMING
        assert b"attest_handler_errors_total 0.0" in node.metrics.render()


# -- 2. a store error while issuing a challenge -------------------------------------------------

_HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


class LockHolder:
    """Another process holding the store's write lock (BEGIN IMMEDIATE) until released."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    async def wait_locked(self) -> None:
        assert self.proc.stdout is not None
        line = await trio.to_thread.run_sync(self.proc.stdout.readline)
        assert line.strip() == "locked"

    async def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert await trio.to_thread.run_sync(self.proc.wait, GUARD_S) == 0


async def expect_error(port: int, chip_frame: bytes) -> ErrorCode | None:
    """Send a HELLO; return the ERROR code the node answers with (None if it answered else)."""
    with trio.fail_after(GUARD_S):
        stream = await trio.open_tcp_stream(HOST, port)
        async with stream:
            await stream.send_all(chip_frame)
            events = server_events(await read_to_eof(stream))
    return events[0].code if isinstance(events[0], Error) else None


async def wait_ready(http: int) -> None:
    with trio.fail_after(GUARD_S):
        while (await http_get(http, "/readyz"))[0] != 200:
            await trio.sleep(0.05)


async def test_store_locked_by_another_process_fails_sessions_and_recovers(
    world: World, tmp_path: Path
) -> None:
    """Regression: a store error in new_challenge (outside any try) ended the node (exit 3)."""
    db = tmp_path / "v.db"
    first, later = world.chip(), world.chip()
    async with daemon_node(world, db, busy_timeout_s=0.2) as node:
        http, port = http_port_of(node), port_of(node)
        assert (await one_round(world, port, first)).result.status == Tier.AFFIRMING
        idle = await idle_client(world, port, world.chip())

        holder = LockHolder(db)
        await holder.wait_locked()
        try:
            # the session that meets the lock fails alone, with ERROR INTERNAL
            assert await expect_error(port, hello_frame(later)) == ErrorCode.INTERNAL
            status, body = await http_get(http, "/readyz")
            assert (status, body) == (503, b"not ready: store failing\n")
            assert await http_get(http, "/healthz") == (200, b"ok\n")
            assert b"attest_store_up 0.0" in node.metrics.render()
            assert b"attest_ready 0.0" in node.metrics.render()  # as /readyz says
            # while it is failing, sessions fail at once (no queue behind the busy timeout),
            # including the next round of a keep-alive session
            assert await expect_error(port, hello_frame(later)) == ErrorCode.INTERNAL
            await idle.send(Next())
            event = await idle.receive()
            assert isinstance(event, Error) and event.code == ErrorCode.INTERNAL
        finally:
            await holder.release()
        await idle.aclose()

        await wait_ready(http)  # by itself: the probe found the store working again
        assert b"attest_store_up 1.0" in node.metrics.render()
        assert b"attest_ready 1.0" in node.metrics.render()
        assert (await one_round(world, port, later)).result.status == Tier.AFFIRMING
        store = node.service.store
        assert isinstance(store, SqliteStore)
        assert store.get_chip(later.ueid) is not None
    report = verify_audit(db, world.ver.key.public_key)
    assert report.ok, report.problems
    assert report.entries == 3


def _mount_tmpfs(folder: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
    )
    return done.returncode == 0


async def test_full_filesystem_fails_sessions_and_recovers(world: World, tmp_path: Path) -> None:
    """A real full filesystem (a small tmpfs filled with a file): ERROR INTERNAL, not-ready,
    then ready again by itself once space is freed."""
    mnt = tmp_path / "small"
    if not _mount_tmpfs(mnt, "4m"):
        pytest.skip("needs root and mount(8) to mount a small tmpfs")
    try:
        db = mnt / "v.db"
        async with daemon_node(world, db) as node:
            http, port = http_port_of(node), port_of(node)
            assert (await one_round(world, port, world.chip())).result.status == Tier.AFFIRMING
            filler = mnt / "filler"
            # unbuffered: a short last write leaves nothing for close() to fail on again
            with open(filler, "wb", buffering=0) as f, pytest.raises(OSError):  # ENOSPC
                while True:
                    f.write(b"\0" * 65536)
            # SQLite may still find room in pages it already owns: attest until it fails
            codes: set[ErrorCode | None] = set()
            with trio.fail_after(GUARD_S):
                while ErrorCode.INTERNAL not in codes:
                    codes.add(await expect_error(port, hello_frame(world.chip())))
            assert (await http_get(http, "/readyz"))[0] == 503
            assert await http_get(http, "/healthz") == (200, b"ok\n")
            filler.unlink()
            await wait_ready(http)
            assert (await one_round(world, port, world.chip())).result.status == Tier.AFFIRMING
        report = verify_audit(db, world.ver.key.public_key)
        assert report.ok, report.problems
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


# -- 3. no blocking call on the event loop ------------------------------------------------------


async def test_held_write_lock_does_not_freeze_the_event_loop(world: World, tmp_path: Path) -> None:
    """Regression: with group commit, store calls ran on the trio thread and the busy retry
    slept there, so /healthz and every session froze while another process held the lock.

    Here a session's challenge waits for the lock in the store thread (the busy timeout is
    longer than the lock is held) while the node keeps serving everything else.
    """
    db = tmp_path / "v.db"
    waiting, keepalive = world.chip(), world.chip()
    async with daemon_node(world, db, busy_timeout_s=60.0) as node:
        http, port = http_port_of(node), port_of(node)
        idle = await idle_client(world, port, keepalive)
        holder = LockHolder(db)
        await holder.wait_locked()
        try:
            with trio.fail_after(GUARD_S):
                blocked = await RawClient.connect(port)
                await blocked.send(hello_of(waiting))
                # its challenge's store call is now waiting for the lock in the store thread
                while not node.store_thread.running:
                    await trio.sleep(0.01)
                # meanwhile: the ops endpoint answers ...
                assert await http_get(http, "/healthz") == (200, b"ok\n")
                assert (await http_get(http, "/metrics"))[0] == 200
                # ... a peer sending garbage gets its protocol error ...
                stream = await trio.open_tcp_stream(HOST, port)
                async with stream:
                    await stream.send_all(b"\x00\x00\x00\x00")
                    [error, _closed] = server_events(await read_to_eof(stream))
                assert isinstance(error, Error) and error.code == ErrorCode.MALFORMED_FRAME
                # ... and a keep-alive session can end cleanly
                await idle.send(Bye())
                assert isinstance(await idle.receive(), ConnectionClosed)
                await idle.aclose()
        finally:
            await holder.release()
        with trio.fail_after(GUARD_S):  # the waiting session goes on once the lock is free
            frame = await blocked.receive()
            assert isinstance(frame, ChallengeFrame), frame
            challenge = waiting.accept_challenge(
                frame.verifier_cert, frame.challenge, int(time.time())
            )
            await blocked.answer(waiting.answer(challenge, time.time()))
            await blocked.aclose()
        assert node.service.store.audit_head()[0] == 2
    report = verify_audit(db, world.ver.key.public_key)
    assert report.ok and report.entries == 2, report


# -- 4. connection-slot denial of service --------------------------------------------------------


async def open_idle(port: int, source: str, count: int) -> list[trio.socket.SocketType]:
    """``count`` connections from ``source`` that never send anything."""
    socks = []
    for _ in range(count):
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        await sock.bind((source, 0))
        await sock.connect((HOST, port))
        socks.append(sock)
    return socks


async def test_idle_flood_from_one_address_leaves_room_for_chips(
    world: World, tmp_path: Path
) -> None:
    """Regression: idle sockets from one client took every slot and shut honest chips out."""
    settings = NodeSettings(
        http_port=-1,
        group_sync=True,
        max_connections=64,
        max_connections_per_address=16,
        hello_timeout_s=0.5,
    )
    async with daemon_node(world, tmp_path / "v.db", settings) as node:
        port = port_of(node)
        with trio.fail_after(GUARD_S):
            flood = await open_idle(port, "127.0.0.2", 200)
            results: list[Tier] = []

            async def honest() -> None:
                [result] = await attest(world.chip(), HOST, port, timeout_s=GUARD_S)
                results.append(result.status)

            async with trio.open_nursery() as nursery:  # fewer at once than the address cap
                for _ in range(12):
                    nursery.start_soon(honest)
        assert results == [Tier.AFFIRMING] * 12
        metrics = node.metrics.render()
        assert b'attest_connections_refused_total{reason="address_cap"} 184.0' in metrics
        # a refused connection is kept open for a while, then told OVERLOADED
        with trio.fail_after(GUARD_S):
            [error, _closed] = server_events(await read_to_eof(trio.SocketStream(flood[-1])))
        assert isinstance(error, Error) and error.code == ErrorCode.OVERLOADED
        for sock in flood:
            sock.close()


async def test_full_node_evicts_the_oldest_connection_without_hello(
    world: World, tmp_path: Path
) -> None:
    """Many addresses (the per-address cap does not help): a chip still gets a slot."""
    settings = NodeSettings(
        http_port=-1, group_sync=True, max_connections=16, max_connections_per_address=4
    )
    async with daemon_node(world, tmp_path / "v.db", settings) as node:
        port = port_of(node)
        with trio.fail_after(GUARD_S):
            silent = [(await open_idle(port, f"127.0.1.{i}", 1))[0] for i in range(1, 17)]
            while node.admission.open < 16:  # every slot taken by a silent connection
                await trio.sleep(0.01)
            [result] = await attest(world.chip(), HOST, port, timeout_s=GUARD_S)
            assert result.status == Tier.AFFIRMING
            # the oldest silent connection lost its slot and was told so
            oldest = trio.SocketStream(silent[0])
            [error, _closed] = server_events(await read_to_eof(oldest))
            assert isinstance(error, Error) and error.code == ErrorCode.OVERLOADED
        assert b"attest_connections_evicted_total 1.0" in node.metrics.render()
        for sock in silent[1:]:
            sock.close()


async def test_hello_deadline_is_shorter_than_the_session_deadline(
    world: World, tmp_path: Path
) -> None:
    settings = NodeSettings(
        http_port=-1, group_sync=True, hello_timeout_s=0.2, session_timeout_s=3600
    )
    async with daemon_node(world, tmp_path / "v.db", settings) as node:
        with trio.fail_after(GUARD_S):
            [sock] = await open_idle(port_of(node), HOST, 1)
            [error, _closed] = server_events(await read_to_eof(trio.SocketStream(sock)))
        assert isinstance(error, Error) and error.code == ErrorCode.TIMEOUT


def test_admission_rules() -> None:
    adm = Admission(max_connections=3, max_per_address=2)
    a1, _, _ = adm.admit("10.0.0.1")
    a2, _, _ = adm.admit("10.0.0.1")
    assert a1 is not None and a2 is not None
    assert adm.admit("10.0.0.1") == (None, None, Refusal.ADDRESS_CAP)
    adm.hello(a1)
    adm.authenticated(a1)  # an authenticated connection frees its address's count
    a3, evicted, _ = adm.admit("10.0.0.1")
    assert a3 is not None and evicted is None and adm.open == 3
    # full: the oldest connection still waiting for HELLO (a2) makes room
    b1, evicted, _ = adm.admit("10.0.0.9")
    assert b1 is not None and evicted is a2 and a2.evicted
    for slot in (a3, b1):
        adm.hello(slot)
    assert adm.admit("10.0.0.8") == (None, None, Refusal.FULL)  # nothing left to evict
    adm.release(a1)
    assert adm.admit("10.0.0.8")[0] is not None
    assert address_key("2001:db8:1:2:3::4") == address_key("2001:db8:1:2:ffff::1")
    assert address_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert address_key("::ffff:10.1.2.3") == "10.1.2.3"


_FD_LIMIT = """
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[1])))
from attest.errors import ConfigError
from attest.node.admission import fit_to_fd_limit
try:
    print(fit_to_fd_limit(4096))
except ConfigError as exc:
    print("refused:", exc)
"""


@pytest.mark.parametrize(("limit", "expected"), [(1024, "(832, 0)"), (100, "refused:")])
def test_max_connections_checked_against_the_open_file_limit(limit: int, expected: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _FD_LIMIT, str(limit)], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith(expected), out
    if limit == 1024:
        assert "max_connections clamped to the open-file limit" in out.stderr


async def test_out_of_descriptors_is_logged_rate_limited(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: accept failing with EMFILE logged a traceback ten times a second."""
    settings = NodeSettings(http_port=-1, group_sync=True, max_connections=16)
    async with daemon_node(world, tmp_path / "v.db", settings) as node:
        port = port_of(node)
        clients = [socket.socket() for _ in range(3)]  # their descriptors exist already
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        lowest_free = os.dup(0)
        os.close(lowest_free)
        caplog.clear()
        resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))  # no new descriptor
        try:
            for client in clients:
                client.setblocking(False)
                client.connect_ex((HOST, port))  # the kernel completes it; accept gets EMFILE
            await trio.sleep(0.6)  # several accept attempts (one per 0.1 s)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        failed = [r for r in caplog.records if r.getMessage().startswith("accept failed")]
        assert len(failed) == 1, [r.getMessage() for r in caplog.records]
        assert failed[0].fields["errno"] == "EMFILE"  # type: ignore[attr-defined]
        # the node is still serving, and the waiting connections are accepted now
        assert (await one_round(world, port, world.chip())).result.status == Tier.AFFIRMING
        for client in clients:
            client.close()


def test_rate_limited_log_counts_what_it_suppressed() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("attest.test.ratelimited")
    logger.addHandler(Keep())
    now = [0.0]
    limited = RateLimited(logger, interval_s=10.0, clock=lambda: now[0])
    assert limited("k", logging.ERROR, "m")
    assert not limited("k", logging.ERROR, "m")
    assert limited("other", logging.ERROR, "m")  # keys are limited separately
    now[0] = 10.0
    assert limited("k", logging.ERROR, "m")
    assert [getattr(r, "fields", {}).get("suppressed") for r in records] == [None, None, 1]
