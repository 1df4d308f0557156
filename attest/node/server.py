"""The verifier daemon: a trio TCP server driving one sans-I/O Connection per chip.

Structure (explicit structured concurrency, no hidden background tasks)::

    run_until_signalled(node)             ← `attest verifier serve` (node from attest.node.app)
      └─ nursery
           ├─ VerifierNode.run            ← listeners, sessions, drain
           │    └─ nursery: ops HTTP, challenge purge (every 60 s),
           │                accept loop → one task per connection
           └─ signal watcher              ← SIGTERM/SIGINT → VerifierNode.shutdown()

Per connection: HELLO → (CHALLENGE → EVIDENCE → [PING → PONG]* → RESULT) → IDLE → NEXT … →
BYE. Each exchange has a deadline (``session_timeout_s``); waiting in IDLE has its own
(``idle_timeout_s``). Store work (challenge issue, appraisal commit) runs in worker threads
behind a limiter of the store's ``concurrency``: one for SQLite, so its writer is never
contended inside one node; the pool size for PostgreSQL, so that sessions' waits for the
database server overlap.

Timed pings: when a mechanism part takes part in the live session (location verification,
:class:`~attest.mechanism.SessionPart`), the node asks it after each EVIDENCE how many PINGs to
send, sends them one at a time on the same connection (TCP_NODELAY, so no frame waits for
Nagle's algorithm) and times each PONG with ``clock_ns`` (``time.perf_counter_ns``: monotonic,
nanoseconds), from just before the PING is written to just after the PONG is parsed; the timed
PINGs go to the appraisal. The part hears when the connection ends, however it ends.

Shutdown: stop accepting (readyz turns 503), tell idle keep-alive sessions SHUTTING_DOWN,
let in-flight exchanges finish within ``drain_timeout_s``, cancel what remains, then close the
store (which signs a final audit checkpoint).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import trio

from attest.errors import AttestError, RemoteProtocolError
from attest.mechanism import LiveSession, TimedPing
from attest.net import open_reuseport_listeners, receive_event, send_event
from attest.node.groupsync import GroupSync
from attest.node.metrics import NodeMetrics
from attest.node.service import VerifierService
from attest.protocol.connection import Connection
from attest.protocol.events import (
    ChallengeFrame,
    Error,
    ErrorCode,
    EvidenceFrame,
    Hello,
    Next,
    Ping,
    Pong,
    ResultFrame,
)
from attest.protocol.framing import PING_NONCE_BYTES
from attest.protocol.machine import Role, choose_version
from attest.verify.chain import DeviceChain

log = logging.getLogger("attest.node")
T = TypeVar("T")

_ERROR_SEND_TIMEOUT_S = 1.0
#: how often expired, unanswered challenges are deleted from the store
PURGE_INTERVAL_S = 60.0


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """The knobs of the network layer (a subset of NodeConfig, so tests can build one directly)."""

    host: str = "127.0.0.1"
    port: int = 0
    http_host: str = "127.0.0.1"
    http_port: int = -1
    max_connections: int = 4096
    session_timeout_s: float = 10.0
    idle_timeout_s: float = 30.0
    max_frame_bytes: int = 65536
    drain_timeout_s: float = 10.0
    #: bind with SO_REUSEPORT (one of several worker processes, attest/node/workers.py)
    reuse_port: bool = False
    #: the store defers fsync to the node, which shares one among sessions (groupsync.py)
    group_sync: bool = False


@dataclass(frozen=True, slots=True)
class NodeAddress:
    port: int
    http_port: int | None


@dataclass(eq=False)
class _Session:
    scope: trio.CancelScope
    idle: bool = False
    shutting_down: bool = False
    rounds: int = 0
    #: random per connection (a mechanism tells two sessions of one chip apart by it)
    session_id: bytes = b""
    #: set once a session part heard of this connection (it then hears of its end)
    announced: DeviceChain | None = None


class VerifierNode:
    """One verifier node's network service. ``run`` it in a nursery; ``shutdown`` to drain."""

    def __init__(
        self,
        service: VerifierService,
        settings: NodeSettings,
        metrics: NodeMetrics | None = None,
        *,
        clock_ns: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self.service = service
        #: the monotonic clock that times PINGs (tests on trio's MockClock pass virtual time)
        self.clock_ns = clock_ns
        self.settings = settings
        self.metrics = metrics or NodeMetrics()
        self.ready = False
        self.address: NodeAddress | None = None
        self._accepting = trio.CancelScope()
        self._db = trio.CapacityLimiter(service.store.concurrency)
        #: group commit (attest/node/groupsync.py) when the store defers fsync to us
        self._group_sync: GroupSync | None = None
        self._sessions: set[_Session] = set()
        self._all_closed = trio.Event()
        self._open = 0
        self._stopping = False
        #: set when ``run`` has returned (store closed)
        self.finished = trio.Event()

    # -- lifecycle -----------------------------------------------------------------------------
    async def run(
        self, *, task_status: trio.TaskStatus[NodeAddress] = trio.TASK_STATUS_IGNORED
    ) -> None:
        s = self.settings
        if s.reuse_port:
            listeners = await open_reuseport_listeners(
                s.host, s.port, backlog=min(4096, s.max_connections)
            )
        else:
            listeners = await trio.open_tcp_listeners(
                s.port, host=s.host, backlog=min(4096, s.max_connections)
            )
        port = listeners[0].socket.getsockname()[1]
        try:
            self.metrics.registered_chips.set(await self._db_call(self.service.store.count_chips))
            async with trio.open_nursery() as nursery:
                http_port = None
                if s.http_port >= 0:
                    from attest.node.http import serve_http

                    http_port = await nursery.start(
                        serve_http, s.http_host, s.http_port, self._routes()
                    )
                self.address = NodeAddress(port, http_port)
                self.ready = True
                log.info(
                    "verifier node ready",
                    extra={
                        "fields": {
                            "event": "ready",
                            "verifier_id": self.service.identity.verifier_id,
                            "port": port,
                            "http_port": http_port,
                        }
                    },
                )
                task_status.started(self.address)
                nursery.start_soon(self._purge_expired_challenges)
                if self.settings.group_sync:
                    self._group_sync = GroupSync(self.service.store.sync, nursery.start_soon)
                with self._accepting:
                    await trio.serve_listeners(self._handle, listeners, handler_nursery=nursery)
                # Accepting stopped: drain in-flight sessions, then cancel the rest.
                for listener in listeners:
                    await listener.aclose()
                with trio.move_on_after(s.drain_timeout_s) as drain:
                    while self._sessions:
                        self._all_closed = trio.Event()
                        await self._all_closed.wait()
                left = len(self._sessions)
                log.info(
                    "drained",
                    extra={
                        "fields": {
                            "event": "drained",
                            "cancelled_sessions": left,
                            "timed_out": drain.cancelled_caught,
                        }
                    },
                )
                nursery.cancel_scope.cancel()
        finally:
            self.ready = False
            with trio.CancelScope(shield=True):
                await self._db_call(self.service.store.close)
            log.info("store closed", extra={"fields": {"event": "stopped"}})
            self.finished.set()

    async def _purge_expired_challenges(self) -> None:
        """Delete expired challenges periodically so the table stays bounded."""
        while True:
            await trio.sleep(PURGE_INTERVAL_S)
            now_ms = self.service.clock_ms()
            purged = await self._db_call(self.service.store.expire_challenges, now_ms)
            if purged:
                log.info(
                    "expired challenges purged",
                    extra={"fields": {"event": "purge", "unanswered": purged}},
                )

    @property
    def stopping(self) -> bool:
        """True once :meth:`shutdown` was called."""
        return self._stopping

    def shutdown(self) -> None:
        """Stop accepting, end idle sessions, let in-flight exchanges finish (see module doc)."""
        if self._stopping:
            return
        self._stopping = True
        self.ready = False
        self._accepting.cancel()
        for session in list(self._sessions):
            if session.idle:
                session.shutting_down = True
                session.scope.cancel()

    def _routes(self) -> dict[str, object]:
        def healthz() -> tuple[int, str, bytes]:
            return (200, "text/plain", b"ok\n")

        def readyz() -> tuple[int, str, bytes]:
            return (
                (200, "text/plain", b"ready\n")
                if self.ready
                else (503, "text/plain", b"not ready\n")
            )

        def metrics() -> tuple[int, str, bytes]:
            return (200, "text/plain; version=0.0.4; charset=utf-8", self.metrics.render())

        return {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics}

    async def _db_call(self, fn: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(fn, *args, limiter=self._db)

    async def _session_call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a session's service call (challenge, conclusion).

        With group commit its store work never waits for the disk (the fsync is shared
        afterwards, see attest/node/groupsync.py), so it runs right here on the event loop:
        a hop to the store thread and back costs more CPU than the call itself. Without it
        (a store that syncs inside COMMIT), the call goes to the store thread as before.
        """
        if self._group_sync is None:
            return await self._db_call(fn, *args)
        async with self._db:  # one store user at a time, as with the store thread
            return fn(*args)

    # -- one connection ------------------------------------------------------------------------
    async def serve_stream(self, stream: trio.abc.Stream) -> None:
        """Serve one connection on a stream the caller opened (the network simulation of
        attest.location.sim, tests on trio's MockClock); TCP connections come from ``run``."""
        await self._handle(stream)

    async def _handle(self, stream: trio.abc.Stream) -> None:
        self._open += 1
        self.metrics.open_connections.inc()
        session = _Session(trio.CancelScope(), session_id=os.urandom(16))
        self._sessions.add(session)
        try:
            await self._serve_connection(stream, session)
        finally:
            self._sessions.discard(session)
            if not self._sessions:
                self._all_closed.set()
            self._open -= 1
            self.metrics.open_connections.dec()
            with trio.CancelScope(shield=True), trio.move_on_after(_ERROR_SEND_TIMEOUT_S):
                await stream.aclose()

    async def _serve_connection(self, stream: trio.abc.Stream, session: _Session) -> None:
        s = self.settings
        conn = Connection(Role.VERIFIER, s.max_frame_bytes)
        try:
            host, port = stream.socket.getpeername()[:2]  # type: ignore[attr-defined]
            peer = f"{host}:{port}"
        except (OSError, AttributeError):  # AttributeError: not a socket (a simulated link)
            peer = "?"
        if self._open > s.max_connections or self._stopping:
            code = ErrorCode.SHUTTING_DOWN if self._stopping else ErrorCode.OVERLOADED
            self.metrics.sessions.labels(outcome=code.name.lower()).inc()
            await self._send_error(stream, conn, code, "try again later")
            return
        outcome = "closed"
        try:
            with session.scope:
                session.scope.deadline = trio.current_time() + s.session_timeout_s
                # Waiting for HELLO counts as idle: a shutdown ends it at once.
                session.idle = True
                hello = await receive_event(stream, conn)
                session.idle = False
                if not isinstance(hello, Hello):
                    return  # ConnectionClosed before HELLO
                version = choose_version(hello)
                if version is None:
                    outcome = "unsupported_version"
                    await self._send_error(
                        stream, conn, ErrorCode.UNSUPPORTED_VERSION, "version 1 only"
                    )
                    return
                chain = DeviceChain(hello.device_cert, hello.manufacturer_cert)
                while True:
                    await self._exchange(stream, conn, chain, version, peer, session)
                    session.rounds += 1
                    if self.stopping:  # shutdown() may have been called during the exchange
                        # Shutdown began during this exchange: end it now, do not idle.
                        session.shutting_down = True
                        break
                    # Keep-alive: wait for NEXT or BYE.
                    session.idle = True
                    session.scope.deadline = trio.current_time() + s.idle_timeout_s
                    event = await receive_event(stream, conn)
                    session.idle = False
                    if not isinstance(event, Next):
                        return  # BYE or EOF
                    session.scope.deadline = trio.current_time() + s.session_timeout_s
            # Reached on a deadline, or on shutdown (idle session cancelled, or exchange ended).
            if session.shutting_down:
                outcome = "shutting_down"
                await self._send_error(
                    stream, conn, ErrorCode.SHUTTING_DOWN, "node is shutting down"
                )
            else:
                outcome = "timeout"
                self.metrics.protocol_errors.labels(code="TIMEOUT").inc()
                log.warning(
                    "session deadline passed",
                    extra={"fields": {"event": "timeout", "peer": peer, "state": conn.state.value}},
                )
                await self._send_error(stream, conn, ErrorCode.TIMEOUT, "session deadline passed")
        except RemoteProtocolError as exc:
            outcome = "protocol_error"
            self.metrics.protocol_errors.labels(code=ErrorCode(exc.error_code).name).inc()
            log.warning(
                "protocol error",
                extra={"fields": {"event": "protocol_error", "peer": peer, "error": str(exc)}},
            )
            frame = conn.error_frame_for(exc)
            if frame is not None:
                with trio.move_on_after(_ERROR_SEND_TIMEOUT_S):
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await stream.send_all(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            outcome = "disconnected"
        finally:
            self.metrics.sessions.labels(outcome=outcome).inc()
            if session.announced is not None:  # the session parts heard of it: say it ended
                with trio.CancelScope(shield=True):
                    try:
                        await self._db_call(
                            self.service.session_closed, session.announced, session.session_id
                        )
                    except AttestError as exc:
                        log.error(
                            "session end could not be recorded",
                            extra={"fields": {"event": "store_error", "error": str(exc)}},
                        )

    async def _exchange(
        self,
        stream: trio.abc.Stream,
        conn: Connection,
        chain: DeviceChain,
        version: int,
        peer: str,
        session: _Session,
    ) -> None:
        """One CHALLENGE → EVIDENCE → [PING → PONG]* → RESULT round; the outcome is durable
        before RESULT is sent."""
        challenge, token = await self._session_call(self.service.new_challenge)
        await send_event(stream, conn, ChallengeFrame(version, self.service.identity.cert, token))
        event = await receive_event(stream, conn)
        if isinstance(event, Error):  # e.g. REFUSED: the chip says which check our CHALLENGE failed
            code = (
                ErrorCode(event.code).name
                if event.code in ErrorCode._value2member_map_
                else event.code
            )
            log.warning(
                "chip ended the round with an error",
                extra={
                    "fields": {
                        "event": "peer_error",
                        "peer": peer,
                        "code": code,
                        "text": event.text,
                    }
                },
            )
            raise trio.BrokenResourceError("chip sent ERROR instead of evidence")
        if not isinstance(event, EvidenceFrame):
            raise trio.BrokenResourceError("peer closed before sending evidence")
        live: LiveSession | None = None
        if self.service.session_parts:
            session.announced = chain
            count = await self._session_call(self.service.pings_for, chain, session.session_id)
            timed = await ping_chip(stream, conn, count, self.clock_ns)
            live = LiveSession(session.session_id, timed)
        started = time.perf_counter()
        try:
            outcome = await self._session_call(
                self.service.conclude, chain, challenge, event.evidence, live
            )
            if self._group_sync is not None:
                await self._group_sync.durable()  # group commit: durable before RESULT
        except AttestError as exc:
            log.error(
                "appraisal could not be recorded",
                extra={"fields": {"event": "store_error", "peer": peer, "error": str(exc)}},
            )
            raise RemoteProtocolError("internal error", error_code=ErrorCode.INTERNAL) from exc
        grant = outcome.grant  # a mechanism's grant (a renewed licence) rides with the result
        frame = ResultFrame(
            outcome.result, None if grant is None else (grant.token, grant.companion)
        )
        await send_event(stream, conn, frame)
        latency = time.perf_counter() - started
        verdict = outcome.verdict
        self.metrics.latency.observe(latency)
        self.metrics.verdicts.labels(tier=verdict.tier.name.lower()).inc()
        for reason in verdict.reasons:
            self.metrics.reasons.labels(reason=reason.name).inc()
        log.info(
            "attestation",
            extra={
                "fields": {
                    "event": "attestation",
                    "peer": peer,
                    "ueid": (verdict.ueid or b"").hex(),
                    "verdict": verdict.tier.name.lower(),
                    "reasons": [r.name for r in verdict.reasons],
                    "latency_ms": round(latency * 1000, 3),
                    "audit_seq": outcome.audit.seq,
                    **outcome.log_fields,
                }
            },
        )

    async def _send_error(
        self, stream: trio.abc.Stream, conn: Connection, code: ErrorCode, text: str
    ) -> None:
        try:
            frame = conn.send(Error(int(code), text))
        except AttestError:
            return
        with (
            trio.CancelScope(shield=True),
            trio.move_on_after(_ERROR_SEND_TIMEOUT_S),
            contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError),
        ):
            await stream.send_all(frame)


async def ping_chip(
    stream: trio.abc.Stream, conn: Connection, count: int, clock_ns: Callable[[], int]
) -> tuple[TimedPing, ...]:
    """Send ``count`` PINGs one at a time on a session in SEND_RESULT; time each PONG.

    ``clock_ns`` (``time.perf_counter_ns`` in the daemon) is read just before the PING is
    written and just after its PONG is parsed, so the network, both TCP stacks, the chip's work
    and our own scheduling all only add to the round trip. The PONGs' signatures are judged
    afterwards, in the appraisal, never on the clock. TCP_NODELAY keeps the kernel from holding
    a small frame back (trio sets it on its TCP streams; we make sure).
    """
    if count <= 0:
        return ()
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: a simulated link
        stream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)  # type: ignore[attr-defined]
    timed = []
    for _ in range(count):
        nonce = os.urandom(PING_NONCE_BYTES)
        frame = conn.send(Ping(nonce))
        sent = clock_ns()
        await stream.send_all(frame)
        event = await receive_event(stream, conn)
        received = clock_ns()
        if not isinstance(event, Pong):
            raise trio.BrokenResourceError("peer closed instead of answering a PING")
        timed.append(TimedPing(nonce, event.response, received - sent))
    return tuple(timed)


async def run_until_signalled(
    node: VerifierNode, *, task_status: trio.TaskStatus[NodeAddress] = trio.TASK_STATUS_IGNORED
) -> None:
    """Run ``node`` until SIGTERM or SIGINT, then let it drain and return."""
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for signum in signals:
                    log.info(
                        "signal received, draining",
                        extra={
                            "fields": {"event": "signal", "signal": signal.Signals(signum).name}
                        },
                    )
                    node.shutdown()

            nursery.start_soon(watch)
            task_status.started(await nursery.start(node.run))
            await node.finished.wait()
            nursery.cancel_scope.cancel()
