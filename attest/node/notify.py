"""Readiness and state changes for a service manager: systemd's ``sd_notify`` protocol.

Under a ``Type=notify`` unit (deploy/systemd/attest-verifier.service) systemd passes the path of
a Unix datagram socket in ``NOTIFY_SOCKET``; the daemon sends newline-separated ``KEY=value``
assignments there, one datagram per message (sd_notify(3)). A leading ``@`` names a socket in
the abstract namespace. The node sends:

* ``READY=1`` once its attestation and HTTP listeners accept connections (so ``systemctl
  start`` returns, and units ordered after it start, only when chips can be served);
* ``STOPPING=1`` when SIGTERM (or SIGINT) begins the drain;
* ``RELOADING=1`` with ``MONOTONIC_USEC`` when SIGHUP begins a reload, then ``READY=1`` when the
  reload is done (successful or not: the node serves either way), as ``Type=notify-reload``
  expects.

Without ``NOTIFY_SOCKET`` every call does nothing, so the same code runs anywhere. The protocol
is a few lines, so there is no dependency for it. A message that cannot be sent (no listener,
a full queue) is logged and dropped: the node never waits for its service manager. The
daemon's event loop sends with trio (:func:`send`); the ``--workers`` supervisor, which has no
event loop and sends from signal handlers, with a non-blocking plain socket (:func:`send_now`).
"""

from __future__ import annotations

import logging
import os
import socket
import time

import trio

log = logging.getLogger("attest.node")

SOCKET_ENV = "NOTIFY_SOCKET"


def _address() -> str | bytes | None:
    path = os.environ.get(SOCKET_ENV, "")
    if not path:
        return None
    if path.startswith("@"):  # abstract namespace: a leading NUL byte instead of "@"
        return b"\0" + path[1:].encode()
    return path


def message(*assignments: str, status: str = "") -> bytes:
    """One notification: ``KEY=value`` lines (a ``STATUS=`` line last if given)."""
    lines = [*assignments, *([f"STATUS={status}"] if status else [])]
    return "\n".join(lines).encode() + b"\n"


def reloading_message(status: str = "reloading") -> bytes:
    # MONOTONIC_USEC: CLOCK_MONOTONIC in µs, which Type=notify-reload requires with RELOADING=1
    usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    return message("RELOADING=1", f"MONOTONIC_USEC={usec}", status=status)


def _failed(exc: OSError) -> None:
    log.warning(
        "service manager notification not sent",
        extra={"fields": {"event": "notify_failed", "error": str(exc)}},
    )


async def send(data: bytes) -> bool:
    """Send one notification from the event loop; False if there is no socket or it failed."""
    address = _address()
    if address is None:
        return False
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    with sock:
        try:
            with trio.move_on_after(1.0):  # a manager that does not read must not hold us
                await sock.sendto(data, address)
                return True
        except OSError as exc:
            _failed(exc)
            return False
    return False


def send_now(data: bytes) -> bool:
    """Send one notification without blocking (for code outside an event loop)."""
    address = _address()
    if address is None:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(data, socket.MSG_DONTWAIT, address)
        except OSError as exc:
            _failed(exc)
            return False
    return True


async def ready(status: str = "serving") -> bool:
    return await send(message("READY=1", status=status))


async def stopping(status: str = "draining") -> bool:
    return await send(message("STOPPING=1", status=status))


async def reloading(status: str = "reloading") -> bool:
    return await send(reloading_message(status))
