"""The node's accept loop: out of descriptors, wait and retry, and say so once in a while.

``trio.serve_listeners`` logs every failed ``accept`` with a traceback, ten times a second, for
as long as the process is out of descriptors (EMFILE): hundreds of log lines a second across a
node's listeners, filling the disk while the node is already in trouble. This loop waits
:data:`ACCEPT_RETRY_S` after such an error and logs it at most once per ten seconds per error
kind, with the number of suppressed repeats. Other accept errors are no peer's to cause; they
are logged the same way and the loop goes on rather than ending the node.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Awaitable, Callable

import trio

from attest.node.logs import RateLimited

log = logging.getLogger("attest.node")
_limited = RateLimited(log)

#: accept() errors that mean "out of descriptors or memory": wait, then accept again
CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
ACCEPT_RETRY_S = 0.1


async def accept_forever(
    listener: trio.SocketListener,
    handler: Callable[[trio.SocketStream], Awaitable[None]],
    nursery: trio.Nursery,
) -> None:
    """Accept connections until cancelled, starting ``handler(stream)`` in ``nursery`` for each.

    The handler must not raise (the node's handlers catch everything): an exception would end
    the nursery, and so the node.
    """
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
                _limited(
                    f"accept:{code}",
                    logging.ERROR,
                    "accept failed: out of file descriptors or memory; retrying"
                    if exc.errno in CAPACITY_ERRNOS
                    else "accept failed; retrying",
                    {"event": "accept_error", "errno": code, "error": exc.strerror},
                )
                await trio.sleep(ACCEPT_RETRY_S)
                continue
            nursery.start_soon(handler, stream)
