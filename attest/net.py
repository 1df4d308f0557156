"""Trio transport glue shared by every driver: pump bytes between a stream and a sans-I/O
:class:`~attest.protocol.connection.Connection`."""

from __future__ import annotations

import socket

import trio

from attest.errors import ConfigError
from attest.protocol.connection import Connection
from attest.protocol.events import NEED_DATA, Event, FrameEvent

RECEIVE_BYTES = 65_536


async def receive_event(stream: trio.abc.ReceiveStream, conn: Connection) -> Event:
    """Read until the connection yields one event (a frame, or ConnectionClosed at EOF)."""
    while True:
        event = conn.next_event()
        if event is not NEED_DATA:
            return event
        conn.receive_data(await stream.receive_some(RECEIVE_BYTES))


async def send_event(stream: trio.abc.SendStream, conn: Connection, event: FrameEvent) -> None:
    """Validate ``event`` against the state machine, then write its frame."""
    await stream.send_all(conn.send(event))


def parse_hostport(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """'HOST:PORT' or ':PORT' or 'PORT' → (host, port); raises ValueError."""
    host, _, port = text.rpartition(":")
    value = int(port)
    if not 0 < value < 65536:
        raise ValueError(f"port {value} out of range")
    return (host.strip("[]") or default_host), value


async def open_reuseport_listeners(host: str, port: int, backlog: int) -> list[trio.SocketListener]:
    """Listening sockets on ``host:port`` with ``SO_REUSEPORT`` set before ``bind``."""
    if not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover - not Linux or BSD
        raise ConfigError("--workers needs SO_REUSEPORT, which this platform lacks")
    infos = await trio.socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    listeners = []
    for family, type_, proto, _, sockaddr in infos:
        sock = trio.socket.socket(family, type_, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            await sock.bind(sockaddr)
            sock.listen(backlog)
        except BaseException:
            sock.close()
            raise
        listeners.append(trio.SocketListener(sock))
    return listeners
