"""The verifier daemon: a trio TCP server driving one sans-I/O Connection per chip.

Structure (explicit structured concurrency, no hidden background tasks)::

    run_until_signalled(node)             ← `attest verifier serve` (node from attest.node.app)
      └─ nursery
           ├─ VerifierNode.run            ← listeners, sessions, drain
           │    └─ nursery: ops HTTP, maintenance (checkpoint file every second, registered
           │                chips every 10 s and after an enrolment, challenge purge every
           │                60 s), the store probe (health.py), one accept loop per listener
           │                → a task per connection
           └─ signal watcher              ← SIGTERM/SIGINT → VerifierNode.shutdown();
                                            SIGHUP → VerifierNode.reload(); each step told
                                            to a service manager (notify.py, sd_notify)

Per connection: HELLO → (CHALLENGE → EVIDENCE → [PING → PONG]* → RESULT) → IDLE → NEXT … →
BYE. HELLO must arrive within ``hello_timeout_s``; each exchange has a deadline
(``session_timeout_s``); waiting in IDLE has its own (``idle_timeout_s``). Who gets a slot is
decided by attest/node/admission.py: a cap per address on connections that have not
authenticated, and eviction of the oldest connection still waiting for HELLO when every slot is
taken.

Nothing a peer or the store does ends the node: a connection handler catches everything it
can raise (a bug is logged, rate-limited, and ends that connection only); the accept loop
(attest/node/accept.py) waits, and logs rate-limited, when the process runs out of descriptors;
a failing store fails the sessions that need it with ERROR INTERNAL while ``/readyz`` reports
not-ready, until a probe finds it working again (attest/node/health.py). Every store call
(challenge issue, appraisal commit, maintenance) runs in the node's store threads
(attest/node/storethread.py), never on the event loop: one for SQLite, so its writer is never
contended inside one node; the store's ``concurrency`` (the pool size) for PostgreSQL, so that
sessions' waits for the database server overlap. With group commit the fsync runs in a thread
of its own (groupsync.py).

Timed pings: when a mechanism part takes part in the live session (location verification,
:class:`~attest.mechanism.SessionPart`), the node asks it after each EVIDENCE how many PINGs to
send, sends them one at a time on the same connection (TCP_NODELAY, so no frame waits for
Nagle's algorithm) and times each PONG with ``clock_ns`` (``time.perf_counter_ns``: monotonic,
nanoseconds), from just before the PING is written to just after the PONG is parsed; the timed
PINGs go to the appraisal. The part hears when the connection ends, however it ends.

Shutdown: stop accepting (readyz turns 503), tell idle keep-alive sessions SHUTTING_DOWN,
let in-flight exchanges finish within ``drain_timeout_s``, cancel what remains, then close the
store (which signs a final audit checkpoint and publishes it to the checkpoint file).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import trio

from attest.errors import AttestError, DecodeError, RemoteProtocolError, StoreError
from attest.mechanism import LiveSession, TimedPing
from attest.messages.attestation import COSE_SIGN1_MEDIA_TYPE, RESULT_MEDIA_TYPE, Challenge
from attest.messages.schema import UEID
from attest.net import open_reuseport_listeners, receive_event, send_event
from attest.node import notify
from attest.node.accept import RefusalLot, accept_forever, batch_socket, refuse_now
from attest.node.admission import Admission, Refusal, Slot, address_key, fit_to_fd_limit
from attest.node.groupsync import GroupSync
from attest.node.health import StoreHealth
from attest.node.logs import RateLimited
from attest.node.metrics import SESSION_OUTCOMES, NodeMetrics
from attest.node.service import Outcome, VerifierService
from attest.node.storethread import StoreThread
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
from attest.store.audit import Checkpoint
from attest.store.base import StateConflict, StoreUnavailable
from attest.verify.chain import DeviceChain

log = logging.getLogger("attest.node")
_limited = RateLimited(log)
T = TypeVar("T")

_ERROR_SEND_TIMEOUT_S = 1.0


def _refusal_frame(code: ErrorCode, text: str) -> bytes:
    """The ERROR frame a verifier sends before HELLO (the same bytes for every refusal)."""
    return Connection(Role.VERIFIER).send(Error(int(code), text))


#: OVERLOADED frames for a full node and for an address over its cap (admission.py)
_REFUSALS = {
    False: _refusal_frame(ErrorCode.OVERLOADED, "try again later"),
    True: _refusal_frame(ErrorCode.OVERLOADED, "too many connections from your address"),
}
#: maintenance periods in seconds: publish the audit head to the checkpoint file, recount the
#: registered chips (other processes enrol too; also at the tick after an enrolment here, so
#: the workers of one node agree within a second), delete expired challenges
PUBLISH_INTERVAL_S = 1.0
RECOUNT_INTERVAL_S = 10.0
PURGE_INTERVAL_S = 60.0


@dataclass(frozen=True, slots=True)
class NodeSettings:
    """The knobs of the network layer (a subset of NodeConfig, so tests can build one directly)."""

    host: str = "127.0.0.1"
    port: int = 0
    http_host: str = "127.0.0.1"
    http_port: int = -1
    max_connections: int = 4096
    #: connections from one address (IPv6: one /64) that have not authenticated yet
    max_connections_per_address: int = 128
    #: a new connection must send HELLO within this many seconds
    hello_timeout_s: float = 5.0
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
    slot: Slot
    idle: bool = False
    shutting_down: bool = False
    rounds: int = 0
    #: random per connection (a mechanism tells two sessions of one chip apart by it)
    session_id: bytes = b""
    #: set once a session part heard of this connection (it then hears of its end)
    announced: DeviceChain | None = None
    #: a round (an attestation session) began and has not sent its RESULT yet
    in_round: bool = False


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
        #: every store call runs here (attest/node/storethread.py): one at a time for SQLite,
        #: as many as the store serves at once (its pool) for PostgreSQL
        self.store_thread = StoreThread(workers=service.store.concurrency)
        #: group commit (attest/node/groupsync.py) when the store defers fsync to us
        self._group_sync: GroupSync | None = None
        self.health = StoreHealth(on_change=self._note_ready)
        #: refused connections kept open until they are answered (accept.py)
        self.refused = RefusalLot(0, settings.hello_timeout_s)
        self.admission = Admission(settings.max_connections, settings.max_connections_per_address)
        self._sessions: set[_Session] = set()
        self._all_closed = trio.Event()
        self._stopping = False
        #: a chip enrolled since the last recount of the registry
        self._enrolled = False
        #: the newest audit entry seq this node has seen (attest_audit_head_seq)
        self._head_seq = 0
        #: set when ``run`` has returned (store closed)
        self.finished = trio.Event()

    # -- lifecycle -----------------------------------------------------------------------------
    async def run(
        self, *, task_status: trio.TaskStatus[NodeAddress] = trio.TASK_STATUS_IGNORED
    ) -> None:
        s = self.settings
        self.store_thread.start()
        try:
            serving, keep = fit_to_fd_limit(s.max_connections)
            self.admission = Admission(serving, s.max_connections_per_address)
            self.refused = RefusalLot(keep, s.hello_timeout_s)
            backlog = min(4096, serving)
            if s.reuse_port:
                listeners = await open_reuseport_listeners(s.host, s.port, backlog=backlog)
            else:
                listeners = await trio.open_tcp_listeners(s.port, host=s.host, backlog=backlog)
        except BaseException:
            await self._close_store()
            self.finished.set()
            raise
        port = listeners[0].socket.getsockname()[1]
        raws = []
        try:
            raws = [batch_socket(listener) for listener in listeners]
            await self._recount()
            self._note_head((await self._db_call(self.service.store.audit_head))[0])
            self.metrics.revocation_list.set(self.service.revocations.number)
            async with trio.open_nursery() as nursery:
                http_port = None
                if s.http_port >= 0:
                    from attest.node.http import serve_http

                    http_port = await nursery.start(
                        functools.partial(serve_http, reuse_port=s.reuse_port),
                        s.http_host,
                        s.http_port,
                        self._routes(),
                        self._prefixes(),
                    )
                self.address = NodeAddress(port, http_port)
                self.ready = True
                self._note_ready()
                log.info(
                    "verifier node ready",
                    extra={
                        "fields": {
                            "event": "ready",
                            "verifier_id": self.service.identity.verifier_id,
                            "port": port,
                            "http_port": http_port,
                            "max_connections": serving,
                        }
                    },
                )
                task_status.started(self.address)
                nursery.start_soon(self._maintenance)
                nursery.start_soon(self.refused.run)
                nursery.start_soon(self.health.watch, self._probe)
                if self.settings.group_sync:
                    self._group_sync = GroupSync(self.service.store.sync, nursery.start_soon)
                with self._accepting:
                    async with trio.open_nursery() as accepting:
                        for listener, raw in zip(listeners, raws, strict=True):
                            accepting.start_soon(
                                accept_forever, listener, self._dispatch, nursery, raw
                            )
                # Accepting stopped (the listeners are closed): drain in-flight sessions, then
                # cancel the rest.
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
            self._note_ready()
            for raw in raws:
                raw.close()
            with trio.CancelScope(shield=True):
                for listener in listeners:
                    await listener.aclose()
            await self._close_store()
            log.info("store closed", extra={"fields": {"event": "stopped"}})
            self.finished.set()

    async def _close_store(self) -> None:
        """Close the store (final checkpoint, published); a store that cannot take the final
        checkpoint (disk full, locked) is still closed and the node still stops cleanly."""
        with trio.CancelScope(shield=True):
            try:
                await self._db_call(self.service.store.close)
            except AttestError as exc:
                log.error(
                    "store closed without its final checkpoint",
                    extra={"fields": {"event": "close_error", "error": str(exc)}},
                )
            finally:
                self.store_thread.stop()

    async def _maintenance(self) -> None:
        """Periodic store work: publish the audit head, recount chips, purge challenges."""
        tick = 0
        recount = round(RECOUNT_INTERVAL_S / PUBLISH_INTERVAL_S)
        purge = round(PURGE_INTERVAL_S / PUBLISH_INTERVAL_S)
        while True:
            await trio.sleep(PUBLISH_INTERVAL_S)
            tick += 1
            await self._maintain("publish_checkpoint", self._publish)
            if tick % recount == 0 or self._enrolled:
                await self._maintain("count_chips", self._recount)
            if tick % purge == 0:
                await self._maintain("purge", self._purge_expired_challenges)

    async def _maintain(self, what: str, step: Callable[[], Awaitable[None]]) -> None:
        """Run one maintenance step; a failure is recorded and logged, never raised."""
        try:
            await step()
        except AttestError as exc:
            self._store_failed(exc)
            _limited(
                f"maintenance:{what}",
                logging.WARNING,
                "maintenance step failed",
                {"event": "maintenance_error", "step": what, "error": str(exc)},
            )
        except OSError as exc:  # the checkpoint file (outside the store) could not be written
            _limited(
                f"maintenance:{what}",
                logging.ERROR,
                "maintenance step failed",
                {"event": "maintenance_error", "step": what, "error": str(exc)},
            )

    async def _publish(self) -> None:
        store = self.service.store

        def publish() -> tuple[Checkpoint | None, int]:
            return store.publish_checkpoint(), store.audit_head()[0]

        checkpoint, head = await self._db_call(publish)
        self._note_head(head)
        if checkpoint is not None:
            self.metrics.audit_published.set(checkpoint.seq)
            self.metrics.audit_published_at.set(checkpoint.iat)

    async def _recount(self) -> None:
        self._enrolled = False
        self.metrics.registered_chips.set(await self._db_call(self.service.store.count_chips))

    async def _purge_expired_challenges(self) -> None:
        """Delete expired challenges so the table stays bounded."""
        now_ms = self.service.clock_ms()
        purged = await self._db_call(self.service.store.expire_challenges, now_ms)
        if purged:
            log.info(
                "expired challenges purged",
                extra={"fields": {"event": "purge", "unanswered": purged}},
            )

    async def _probe(self) -> None:
        """A store write like a session's first one: does the store work again?"""
        await self._db_call(self.service.new_challenge)
        self.metrics.store_up.set(1)

    def _store_failed(self, exc: BaseException) -> None:
        """Note a failed store call; only operational failures make the store "failing"."""
        if isinstance(exc, StoreUnavailable):
            self.metrics.store_failures.inc()
            self.metrics.store_up.set(0)
            self.health.failed(exc)

    def _note_head(self, seq: int) -> None:
        """``attest_audit_head_seq``: the newest audit entry seen (sessions, maintenance)."""
        if seq > self._head_seq:
            self._head_seq = seq
            self.metrics.audit_head.set(seq)

    def _note_ready(self) -> None:
        """``attest_ready``: what /readyz answers now (accepting, and the store works)."""
        self.metrics.ready.set(1 if self.ready and self.health.healthy else 0)

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
        self._note_ready()
        self._accepting.cancel()
        for session in list(self._sessions):
            if session.idle:
                session.shutting_down = True
                session.scope.cancel()

    async def reload(self, rebuild: Callable[[VerifierService], VerifierService]) -> bool:
        """Replace the service with ``rebuild(current)`` (SIGHUP); keep it if that fails.

        ``rebuild`` (attest.node.app.reloader) runs in the store thread: it reads files and
        writes the store (a newer revocation list is stored and audited). A round in flight
        finishes with the service it started with. A node that the list now in force revokes
        stops (SPEC §12).
        """
        try:
            service = await self._db_call(rebuild, self.service)
        except (AttestError, OSError, ValueError) as exc:
            log.error(
                "reload failed; the running configuration stays in force",
                extra={"fields": {"event": "reload_failed", "error": str(exc)}},
            )
            return False
        self.service = service
        number = service.revocations.number
        self.metrics.revocation_list.set(number)
        log.info(
            "configuration reloaded",
            extra={
                "fields": {
                    "event": "reloaded",
                    "revocation_list": number,
                    "policy_id": service.policy.policy_id,
                    "mechanisms": sorted(service.parts),
                }
            },
        )
        if service.identity.verifier_id in service.revocations.verifiers:
            log.critical(
                "this verifier is revoked by the revocation list now in force; stopping",
                extra={"fields": {"event": "revoked", "revocation_list": number}},
            )
            self.shutdown()
            return True
        await self._maintain("count_chips", self._recount)
        return True

    def _routes(self) -> dict[str, object]:
        def healthz() -> tuple[int, str, bytes]:
            return (200, "text/plain", b"ok\n")

        def readyz() -> tuple[int, str, bytes]:
            if not self.ready:
                return (503, "text/plain", b"not ready\n")
            if not self.health.healthy:
                return (503, "text/plain", b"not ready: store failing\n")
            return (200, "text/plain", b"ready\n")

        def metrics() -> tuple[int, str, bytes]:
            return (200, "text/plain; version=0.0.4; charset=utf-8", self.metrics.render())

        def verifier_cert() -> tuple[int, str, bytes]:
            # what a relying party checks results with (against its own trust anchors)
            return (200, COSE_SIGN1_MEDIA_TYPE, self.service.identity.cert)

        return {
            "/healthz": healthz,
            "/readyz": readyz,
            "/metrics": metrics,
            "/verifier/cert": verifier_cert,
        }

    def _prefixes(self) -> dict[str, Callable[[str], Awaitable[tuple[int, str, bytes]]]]:
        return {"/chips/": self._chip_result}

    async def _chip_result(self, rest: str) -> tuple[int, str, bytes]:
        """``GET /chips/{ueid-hex}/result``: the newest result token this node signed for the
        chip, byte for byte as the chip received it (400 for a malformed UEID, 404 for a chip
        with no result, 503 while the store is failing)."""
        ueid_hex, slash, what = rest.partition("/")
        if not slash or what != "result":
            return (404, "text/plain", b"not found\n")
        try:
            ueid = UEID.parse(bytes.fromhex(ueid_hex) if ueid_hex.isalnum() else b"")
        except (ValueError, DecodeError):
            return (400, "text/plain", b"malformed ueid: expected 34, 50 or 66 hex digits\n")
        try:
            token = await self._db_call(self.service.store.latest_result, ueid)
        except StoreUnavailable:
            return (503, "text/plain", b"store unavailable\n")
        except StoreError as exc:  # a refusal retrying cannot fix: logged, the node goes on
            _limited(
                "result",
                logging.ERROR,
                "cannot read a chip's result",
                {"event": "http_error", "error": str(exc)},
            )
            return (500, "text/plain", b"internal error\n")
        if token is None:
            return (404, "text/plain", b"no result for this chip\n")
        return (200, RESULT_MEDIA_TYPE, token)

    async def _db_call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the store thread: every store call of the node goes through here."""
        return await self.store_thread.run(fn, *args)

    async def _session_call(self, fn: Callable[..., T], *args: Any) -> T:
        """A session's service call (challenge, conclusion) in the store thread.

        A store that cannot serve it fails this session only (ERROR INTERNAL) and marks the
        store failing; a call that succeeds marks it healthy again.
        """
        try:
            result = await self._db_call(fn, *args)
        except StoreUnavailable as exc:
            self._store_failed(exc)
            raise RemoteProtocolError("internal error", error_code=ErrorCode.INTERNAL) from exc
        if not self.health.healthy:
            self.health.succeeded()
            self.metrics.store_up.set(1)
        return result

    # -- one connection ------------------------------------------------------------------------
    async def serve_stream(self, stream: trio.abc.Stream, peer: str = "simulated") -> None:
        """Serve one connection on a stream the caller opened (the network simulation of
        attest.location.sim, tests on trio's MockClock); TCP connections come from ``run``.
        It is admitted like a TCP connection from address ``peer``."""
        slot, _, _ = self.admission.admit(peer)
        if slot is None:
            await stream.aclose()
            return
        await self._handle(stream, slot, peer)

    def _dispatch(self, stream: trio.SocketStream) -> Callable[[], Awaitable[None]] | None:
        """Admit a new connection (its task) or refuse it on the spot (None): admission.py.

        Synchronous and cheap, so that the accept loop keeps the kernel's queue short even
        when a flood fills it with connections that are refused anyway.
        """
        try:
            host, port = stream.socket.getpeername()[:2]
        except OSError:  # reset before we got here
            stream.socket.close()
            return None
        if self._stopping:
            self.metrics.connections.labels(outcome="shutting_down").inc()
            refuse_now(stream, _refusal_frame(ErrorCode.SHUTTING_DOWN, "try again later"))
            return None
        slot, evicted, refusal = self.admission.admit(address_key(host))
        if evicted is not None:
            self.metrics.evicted.inc()
            if isinstance(evicted.handle, trio.CancelScope):
                evicted.handle.cancel()
        if slot is None:
            reason = refusal.value if refusal is not None else "?"
            self.metrics.refused.labels(reason=reason).inc()
            self.metrics.connections.labels(outcome="overloaded").inc()
            self.refused.refuse(stream, _REFUSALS[refusal is Refusal.ADDRESS_CAP])
            return None
        return functools.partial(self._handle, stream, slot, f"{host}:{port}")

    async def _handle(self, stream: trio.abc.Stream, slot: Slot, peer: str) -> None:
        """One admitted connection, to its close. Nothing it raises reaches the nursery."""
        session = _Session(trio.CancelScope(), slot)
        slot.handle = session.scope
        self._sessions.add(session)
        self.metrics.open_connections.inc()
        try:
            conn = Connection(Role.VERIFIER, self.settings.max_frame_bytes)
            await self._serve_connection(stream, conn, session, peer)
        except Exception as exc:  # a bug: log it, end this connection, keep the node
            self.metrics.handler_errors.inc()
            _limited(
                "handler",
                logging.ERROR,
                "connection handler failed",
                {"event": "handler_error", "peer": peer, "error": repr(exc)},
                exc_info=True,
            )
        finally:
            self.admission.release(slot)
            self._sessions.discard(session)
            if not self._sessions:
                self._all_closed.set()
            self.metrics.open_connections.dec()
            with trio.CancelScope(shield=True), trio.move_on_after(_ERROR_SEND_TIMEOUT_S):
                await stream.aclose()

    async def _serve_connection(
        self, stream: trio.abc.Stream, conn: Connection, session: _Session, peer: str
    ) -> None:
        s = self.settings
        outcome = "closed"
        try:
            with session.scope:
                session.scope.deadline = trio.current_time() + s.hello_timeout_s
                # Waiting for HELLO counts as idle: a shutdown ends it at once.
                session.idle = True
                hello = await receive_event(stream, conn)
                session.idle = False
                if not isinstance(hello, Hello):
                    return  # ConnectionClosed before HELLO
                self.admission.hello(session.slot)
                session.scope.deadline = trio.current_time() + s.session_timeout_s
                version = choose_version(hello)
                if version is None:
                    outcome = "unsupported_version"
                    await self._send_error(
                        stream, conn, ErrorCode.UNSUPPORTED_VERSION, "version 1 only"
                    )
                    return
                chain = DeviceChain(hello.device_cert, hello.manufacturer_cert)
                while True:
                    session.in_round = True
                    if await self._exchange(stream, conn, chain, version, peer, session):
                        self.admission.authenticated(session.slot)
                    session.in_round = False
                    self.metrics.sessions.labels(outcome="completed").inc()
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
            # Reached on a deadline, on shutdown (idle session cancelled, or exchange ended),
            # or when a newer connection took the slot of this one before it sent HELLO.
            if session.slot.evicted:
                outcome = "evicted"
                await self._send_error(stream, conn, ErrorCode.OVERLOADED, "try again later")
            elif session.shutting_down:
                outcome = "shutting_down"
                await self._send_error(
                    stream, conn, ErrorCode.SHUTTING_DOWN, "node is shutting down"
                )
            else:
                outcome = "timeout"
                self.metrics.protocol_errors.labels(code="TIMEOUT").inc()
                _limited(
                    "timeout",
                    logging.WARNING,
                    "session deadline passed",
                    {"event": "timeout", "peer": peer, "state": conn.state.value},
                )
                await self._send_error(stream, conn, ErrorCode.TIMEOUT, "session deadline passed")
        except RemoteProtocolError as exc:
            code = ErrorCode(exc.error_code)
            internal = code is ErrorCode.INTERNAL
            outcome = "internal_error" if internal else "protocol_error"
            self.metrics.protocol_errors.labels(code=code.name).inc()
            _limited(
                "internal" if internal else "protocol",
                logging.ERROR if internal else logging.WARNING,
                "session failed: internal error" if internal else "protocol error",
                {
                    "event": "internal_error" if internal else "protocol_error",
                    "peer": peer,
                    "error": str(exc.__cause__ or exc),
                },
            )
            frame = conn.error_frame_for(exc)
            if frame is not None:
                with (
                    trio.move_on_after(_ERROR_SEND_TIMEOUT_S),
                    contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError),
                ):
                    await stream.send_all(frame)
            elif internal:  # our failure, not the peer's: the machine is not in ERROR
                await self._send_error(stream, conn, ErrorCode.INTERNAL, "internal error")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            outcome = "disconnected"
        finally:
            self.metrics.connections.labels(outcome=outcome).inc()
            if session.in_round:  # the round this connection ended in ended the same way
                ended = outcome if outcome in SESSION_OUTCOMES else "disconnected"
                self.metrics.sessions.labels(outcome=ended).inc()
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
    ) -> bool:
        """One CHALLENGE → EVIDENCE → [PING → PONG]* → RESULT round; the outcome is durable
        before RESULT is sent.

        Returns whether the Evidence was authentic (signed by a certified device key).
        """
        if not self.health.healthy:  # fail fast while the probe finds out (health.py)
            raise RemoteProtocolError("store unavailable", error_code=ErrorCode.INTERNAL)
        service = self.service  # one service for the whole round, even across a reload
        challenge, token = service.make_challenge()
        await self._session_call(service.record_challenge, challenge)
        await send_event(stream, conn, ChallengeFrame(version, service.identity.cert, token))
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
        if service.session_parts:
            session.announced = chain
            count = await self._session_call(service.pings_for, chain, session.session_id)
            timed = await ping_chip(stream, conn, count, self.clock_ns)
            live = LiveSession(session.session_id, timed)
        started = time.perf_counter()
        try:
            outcome = await self._conclude(service, chain, challenge, event.evidence, live)
            if self._group_sync is not None:
                await self._group_sync.durable()  # group commit: durable before RESULT
        except RemoteProtocolError:
            raise
        except AttestError as exc:
            log.error(
                "appraisal could not be recorded",
                extra={"fields": {"event": "store_error", "peer": peer, "error": str(exc)}},
            )
            raise RemoteProtocolError("internal error", error_code=ErrorCode.INTERNAL) from exc
        if outcome.enrolled:  # counted now, and recounted at the next tick (other workers
            self.metrics.registered_chips.inc()  # enrol into the same store)
            self._enrolled = True
        self._note_head(outcome.audit.seq)
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
        return verdict.evidence is not None

    async def _conclude(
        self,
        service: VerifierService,
        chain: DeviceChain,
        challenge: Challenge,
        evidence: bytes,
        live: LiveSession | None,
    ) -> Outcome:
        """:meth:`VerifierService.conclude` with its store steps in the store thread and its
        pure steps (the core's appraisal, signing the result) here on the event loop."""
        for attempt in (1, 2):
            reading = await self._session_call(service.read, chain, live)
            appraised = service.appraise(reading, challenge, evidence)
            try:
                recorded = await self._session_call(service.record, appraised)
            except StateConflict:
                if attempt == 2:
                    raise
                continue
            return service.finish(recorded)
        raise AssertionError("unreachable")

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
    node: VerifierNode,
    *,
    reload: Callable[[VerifierService], VerifierService] | None = None,
    task_status: trio.TaskStatus[NodeAddress] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``node`` until SIGTERM or SIGINT, then let it drain and return.

    SIGHUP reloads: ``reload`` (attest.node.app.reloader) rebuilds the service from the
    configuration file; without one SIGHUP is logged and ignored. SIGHUP never ends the node
    (unless the list now in force revokes it). A service manager hears of each step
    (attest/node/notify.py): READY=1 once listening, STOPPING=1, RELOADING=1 then READY=1.
    """
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for signum in signals:
                    name = signal.Signals(signum).name
                    if signum == signal.SIGHUP:
                        log.info(
                            "signal received, reloading" if reload else "SIGHUP ignored",
                            extra={"fields": {"event": "signal", "signal": name}},
                        )
                        if reload is not None:
                            draining = node.stopping  # the manager knows already: say nothing
                            if not draining:
                                await notify.reloading()
                            done = await node.reload(reload)
                            if draining:
                                pass
                            elif node.stopping:  # the list now in force revokes this node
                                await notify.stopping("revoked: stopping")
                            else:
                                await notify.ready("reloaded" if done else "reload failed")
                        continue
                    log.info(
                        "signal received, draining",
                        extra={"fields": {"event": "signal", "signal": name}},
                    )
                    if not node.stopping:
                        await notify.stopping()
                    node.shutdown()

            nursery.start_soon(watch)
            address: NodeAddress = await nursery.start(node.run)
            await notify.ready(f"serving on port {address.port}")  # listeners are up
            task_status.started(address)
            await node.finished.wait()
            nursery.cancel_scope.cancel()
