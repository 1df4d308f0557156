"""A deliberately tiny HTTP/1.1 endpoint for operations: /healthz, /readyz, /metrics, and for
relying parties the newest signed result of a chip (``/chips/{ueid-hex}/result``).

Fixed paths are plain functions; a path under a prefix (``/chips/``) goes to an async handler with
the rest of the path, which gets :data:`HANDLER_TIMEOUT_S` (it may wait for the store thread) and
answers 503 when that runs out. It answers GET only, reads at most 8 KiB of request head within a
short deadline, and closes each connection after one response. At most :data:`MAX_CONNECTIONS`
requests are served at once (more are closed unanswered), so a flood of scrapes cannot take the
node's file descriptors. Anything richer belongs behind a real reverse proxy.

No connection can end the node: whatever a peer does (a reset in the middle of a request, a
half-open socket, bytes that are not HTTP) ends only its own connection. A handler's exception
would propagate into the node's nursery, so :func:`_guarded` catches every exception a handler
could raise, logs it (rate-limited) and drops the connection.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable

import trio

from attest.net import open_reuseport_listeners
from attest.node.accept import accept_forever, batch_socket
from attest.node.logs import RateLimited

log = logging.getLogger("attest.node.http")
_limited = RateLimited(log)

MAX_HEAD_BYTES = 8192
REQUEST_TIMEOUT_S = 5.0
#: requests served at once; more connections are closed at once (counted in the fd budget)
MAX_CONNECTIONS = 64

#: how long an async handler may take (it waits for the store thread) before a 503
HANDLER_TIMEOUT_S = 5.0

Response = tuple[int, str, bytes]
Route = Callable[[], Response]
#: a handler for every path under a prefix: gets the rest of the path (after the prefix)
PrefixRoute = Callable[[str], Awaitable[Response]]
_NO_PREFIXES: dict[str, PrefixRoute] = {}
_REASONS = {
    200: "OK",
    404: "Not Found",
    405: "Method Not Allowed",
    400: "Bad Request",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _response(status: int, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


async def _handle(
    stream: trio.SocketStream, routes: dict[str, Route], prefixes: dict[str, PrefixRoute]
) -> None:
    async with stream:
        head = b""
        # A reset or an abort while reading ends this request only (BrokenResourceError).
        with (
            trio.move_on_after(REQUEST_TIMEOUT_S),
            contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError),
        ):
            while b"\r\n\r\n" not in head and len(head) < MAX_HEAD_BYTES:
                chunk = await stream.receive_some(MAX_HEAD_BYTES)
                if not chunk:
                    break
                head += chunk
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            reply = _response(400, "text/plain", b"bad request\n")
        elif parts[0] != "GET":
            reply = _response(405, "text/plain", b"only GET\n")
        else:
            path = parts[1].split("?", 1)[0]
            route = routes.get(path)
            if route is not None:
                reply = _response(*route())
            else:
                reply = await _by_prefix(path, prefixes)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(reply)


async def _by_prefix(path: str, prefixes: dict[str, PrefixRoute]) -> bytes:
    """The reply of the handler whose prefix ``path`` starts with (404 without one)."""
    for prefix, handler in prefixes.items():
        if path.startswith(prefix):
            with trio.move_on_after(HANDLER_TIMEOUT_S):
                return _response(*await handler(path[len(prefix) :]))
            return _response(503, "text/plain", b"busy: try again\n")
    return _response(404, "text/plain", b"not found\n")


async def serve_http(
    host: str,
    port: int,
    routes: dict[str, Route],
    prefixes: dict[str, PrefixRoute] = _NO_PREFIXES,
    *,
    reuse_port: bool = False,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``routes`` (exact paths) and ``prefixes`` until cancelled; reports the bound port
    through ``task_status``.

    ``reuse_port``: share the port with the node's other worker processes (workers.py).
    """
    if reuse_port:
        listeners = await open_reuseport_listeners(host, port, backlog=MAX_CONNECTIONS)
    else:
        listeners = await trio.open_tcp_listeners(port, host=host)
    raws = [batch_socket(listener) for listener in listeners]
    bound = listeners[0].socket.getsockname()[1]
    log.info("http endpoint listening on %s:%d", host, bound)
    task_status.started(bound)
    active = 0

    def dispatch(stream: trio.SocketStream) -> Callable[[], Awaitable[None]] | None:
        nonlocal active
        if active >= MAX_CONNECTIONS:
            stream.socket.close()  # the ops endpoint is busy: no answer at all
            return None
        active += 1
        return functools.partial(handle, stream)

    async def handle(stream: trio.SocketStream) -> None:
        nonlocal active
        try:
            await _guarded(stream, routes, prefixes)
        finally:
            active -= 1

    async with trio.open_nursery() as nursery:  # accept_forever: EMFILE logged rate-limited
        for listener, raw in zip(listeners, raws, strict=True):
            nursery.start_soon(accept_forever, listener, dispatch, nursery, raw)


async def _guarded(
    stream: trio.SocketStream, routes: dict[str, Route], prefixes: dict[str, PrefixRoute]
) -> None:
    """:func:`_handle`, with anything it raises logged instead of propagated to the node."""
    try:
        await _handle(stream, routes, prefixes)
    except Exception as exc:  # a bug or an OS error on one connection must not end the node
        _limited(
            "handler",
            logging.ERROR,
            "http request failed",
            {"event": "http_error", "error": repr(exc)},
            exc_info=True,
        )
        await trio.aclose_forcefully(stream)
