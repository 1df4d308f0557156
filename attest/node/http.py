"""A deliberately tiny HTTP/1.1 endpoint for operations: /healthz, /readyz, /metrics.

It answers GET only, reads at most 8 KiB of request head within a short deadline, and closes
each connection after one response. Anything richer belongs behind a real reverse proxy.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import trio

log = logging.getLogger("attest.node.http")

MAX_HEAD_BYTES = 8192
REQUEST_TIMEOUT_S = 5.0

Route = Callable[[], tuple[int, str, bytes]]
_REASONS = {
    200: "OK",
    404: "Not Found",
    405: "Method Not Allowed",
    400: "Bad Request",
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


async def _handle(stream: trio.SocketStream, routes: dict[str, Route]) -> None:
    async with stream:
        head = b""
        with trio.move_on_after(REQUEST_TIMEOUT_S):
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
            route = routes.get(parts[1].split("?", 1)[0])
            if route is None:
                reply = _response(404, "text/plain", b"not found\n")
            else:
                reply = _response(*route())
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await stream.send_all(reply)


async def serve_http(
    host: str,
    port: int,
    routes: dict[str, Route],
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``routes`` until cancelled; reports the bound port through ``task_status``."""
    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()[1]
    log.info("http endpoint listening on %s:%d", host, bound)
    task_status.started(bound)

    async def handle(stream: trio.SocketStream) -> None:
        await _handle(stream, routes)

    await trio.serve_listeners(handle, listeners)
