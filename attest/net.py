"""Trio transport glue shared by every driver: pump bytes between a stream and a sans-I/O
:class:`~attest.protocol.connection.Connection`."""

from __future__ import annotations

import trio

from attest.protocol.connection import Connection
from attest.protocol.events import NEED_DATA, Event, FrameEvent

RECEIVE_BYTES = 65_536


async def receive_event(stream: trio.abc.ReceiveStream, conn: Connection) -> Event:
    """Read until the connection yields one event (a frame, or ConnectionClosed at EOF)."""
    while True:
        event = conn.next_event()
        if event is not NEED_DATA:
            return event  # type: ignore[return-value]
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
