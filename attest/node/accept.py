"""The node's accept loop: drain the kernel's queue fast, refuse cheaply, survive EMFILE.

Two things ``trio.serve_listeners`` does not do well for a node under a connection flood:

* **Draining.** It accepts one connection per turn of the scheduler and starts a task for
  each. When a flood keeps the kernel's accept queue full, a chip's connection waits behind
  everything queued before it, and every refusal costs a task. Here each wake-up of the
  listening socket accepts up to :data:`BATCH` connections in one go (non-blocking ``accept``
  on the same socket), and ``dispatch`` decides about each one synchronously: it refuses a
  connection on the spot (a few microseconds, no task) or returns the task that serves it.
* **Out of descriptors.** It logs every failed ``accept`` with a traceback, ten times a
  second, for as long as the process is out of descriptors (EMFILE). Here such an error is
  logged at most once per ten seconds per kind, with the number of suppressed repeats, and the
  loop waits :data:`ACCEPT_RETRY_S` before accepting again. Other accept errors are no peer's
  to cause; they are logged the same way and the loop goes on rather than ending the node.

Refusing fast is not enough against a flood that reopens every connection it loses: it then
reconnects as fast as the node refuses. :class:`RefusalLot` keeps refused connections open,
unanswered, for a few seconds, which slows such a flood to its number of connections divided
by that delay, at the cost of a descriptor each.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import logging
import os
import random
import socket
from collections.abc import Awaitable, Callable

import trio

from attest.node.logs import RateLimited

log = logging.getLogger("attest.node")
_limited = RateLimited(log)

#: accept() errors that mean "out of descriptors or memory": wait, then accept again
CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
#: accept() errors about one connection that was gone before we took it
_GONE_ERRNOS = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ENETDOWN})
ACCEPT_RETRY_S = 0.1
#: connections accepted per wake-up of the listening socket
BATCH = 256

#: decides about one accepted connection: the task that serves it, or None (already handled)
Dispatch = Callable[[trio.SocketStream], Callable[[], Awaitable[None]] | None]


def batch_socket(listener: trio.SocketListener) -> socket.socket:
    """A second handle on ``listener``'s socket, for non-blocking accepts in a batch (make it
    before the node reports ready: it takes a descriptor)."""
    raw = socket.socket(fileno=os.dup(listener.socket.fileno()))
    raw.setblocking(False)
    return raw


async def accept_forever(
    listener: trio.SocketListener,
    dispatch: Dispatch,
    nursery: trio.Nursery,
    raw: socket.socket | None = None,
) -> None:
    """Accept connections until cancelled; start each task ``dispatch`` returns in ``nursery``.

    ``dispatch`` and the tasks must not raise (the node's handlers catch everything): an
    exception would end the nursery, and so the node. ``raw`` is :func:`batch_socket`'s handle
    (made here if not given). The listener and ``raw`` are closed on exit.
    """
    raw = raw if raw is not None else batch_socket(listener)
    try:
        async with listener:
            while True:
                await trio.lowlevel.wait_readable(raw)
                for _ in range(BATCH):
                    try:
                        conn, _ = raw.accept()
                    except BlockingIOError:
                        break
                    except OSError as exc:
                        if exc.errno in _GONE_ERRNOS:
                            continue
                        _log_accept_error(exc)
                        await trio.sleep(ACCEPT_RETRY_S)
                        break
                    stream = trio.SocketStream(trio.socket.from_stdlib_socket(conn))
                    task = dispatch(stream)
                    if task is not None:
                        nursery.start_soon(task)
                await trio.lowlevel.checkpoint()  # let the accepted connections run
    finally:
        raw.close()


def _log_accept_error(exc: OSError) -> None:
    code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    _limited(
        f"accept:{code}",
        logging.ERROR,
        "accept failed: out of file descriptors or memory; retrying"
        if exc.errno in CAPACITY_ERRNOS
        else "accept failed; retrying",
        {"event": "accept_error", "errno": code, "error": exc.strerror},
    )


def refuse_now(stream: trio.SocketStream, frame: bytes) -> None:
    """Write ``frame`` (an ERROR) without waiting and close: a refusal that costs no task.

    The socket is fresh, so its send buffer is empty and a short frame goes out at once; if
    it does not (the peer is already gone), the connection is simply closed.
    """
    sock = stream.socket
    with contextlib.suppress(OSError):
        os.write(sock.fileno(), frame)
    sock.close()


class RefusalLot:
    """Refused connections kept open, unanswered, until their time comes (no task each).

    A flood that reopens every connection the node closes runs as fast as the node refuses:
    both sides then spend their CPU on connection churn. Kept here instead, a refused
    connection costs a descriptor and a heap entry until ``delay_s`` (randomised from half to
    one and a half times it, so that a flood accepted in one burst does not come back in one)
    has passed; then :meth:`run` answers it (OVERLOADED) and closes it. At most ``capacity``
    are kept (the descriptors the start-up check left for them); beyond that a refusal is
    answered at once. The cost: a refused connection learns of it up to ``1.5 * delay_s``
    late.
    """

    #: how often due connections are answered
    TICK_S = 0.05

    def __init__(self, capacity: int, delay_s: float) -> None:
        self.capacity = capacity
        self.delay_s = delay_s
        self._heap: list[tuple[float, int, trio.SocketStream, bytes]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._heap)

    def refuse(self, stream: trio.SocketStream, frame: bytes) -> None:
        """Keep ``stream`` to be answered with ``frame`` later (or now, when full)."""
        if len(self._heap) >= self.capacity:
            refuse_now(stream, frame)
            return
        due = trio.current_time() + self.delay_s * random.uniform(0.5, 1.5)
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, stream, frame))

    async def run(self) -> None:
        """Answer and close kept connections as they fall due, until cancelled (then all)."""
        try:
            while True:
                await trio.sleep(self.TICK_S)
                now = trio.current_time()
                while self._heap and self._heap[0][0] <= now:
                    _, _, stream, frame = heapq.heappop(self._heap)
                    refuse_now(stream, frame)
        finally:
            while self._heap:
                _, _, stream, frame = heapq.heappop(self._heap)
                refuse_now(stream, frame)
