"""The attacker of ``attest bench dos``: many idle connections from one address, reopened.

Run by :mod:`attest.bench.dos` as ``python -m attest.bench.flood``; it stops when its
standard input closes. It opens ``--sockets``
non-blocking TCP connections to the verifier from one source address, never sends a byte, and
whenever the verifier closes one (an ERROR frame, EOF or a reset) closes its end with a reset
and opens a new one at once: the connection-slot attack of issue 10 ("one client holding 4,096
idle sockets and reopening them"). A hand-written epoll loop, like the load generator, so that
the attack costs the machine as little CPU as possible per connection.

It raises its own RLIMIT_NOFILE (soft up to hard) to hold the sockets. Output: ``phase ready``
once every socket was opened once, then, when it stops, one JSON line with
the counts (connections opened, closed by the verifier, failed to connect) and the peak and
final number of connections it held open.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import resource
import select
import socket
import struct
import sys
import time
from typing import Any

_LINGER_RESET = struct.pack("ii", 1, 0)


class Flood:
    """The epoll loop holding the idle connections (see the module docstring)."""

    def __init__(self, host: str, port: int, source: str, sockets: int) -> None:
        self.addr = (host, port)
        self.source = source
        self.target = sockets
        self.epoll = select.epoll()
        self.socks: dict[int, socket.socket] = {}
        self.opened = 0
        self.closed_by_verifier = 0
        self.connect_failed = 0
        self.peak_open = 0

    def _open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        try:
            sock.bind((self.source, 0))
            err = sock.connect_ex(self.addr)
        except OSError as exc:
            err = exc.errno or errno.EIO
        if err not in (0, errno.EINPROGRESS):
            self.connect_failed += 1
            sock.close()
            return
        self.opened += 1
        self.socks[sock.fileno()] = sock
        self.epoll.register(sock.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
        self.peak_open = max(self.peak_open, len(self.socks))

    def _drop(self, fd: int) -> None:
        sock = self.socks.pop(fd)
        with contextlib.suppress(OSError):
            self.epoll.unregister(fd)
        sock.close()  # SO_LINGER 0: a reset, no TIME_WAIT on either side

    def run(self, seconds: float) -> dict[str, Any]:
        """Open every socket, then keep them open until stdin closes (or ``seconds`` pass)."""
        for _ in range(self.target):
            self._open()
        print("phase ready", flush=True)
        stdin = sys.stdin.fileno()
        self.epoll.register(stdin, select.EPOLLIN | select.EPOLLHUP)
        end = time.monotonic() + seconds
        stop = False
        while not stop and time.monotonic() < end:
            for fd, _mask in self.epoll.poll(0.05):
                if fd == stdin:
                    stop = True  # the benchmark is done with us (EOF or a line)
                elif fd in self.socks:  # the verifier said something or hung up: reopen
                    self.closed_by_verifier += 1
                    self._drop(fd)
                    self._open()
            failed = self.connect_failed
            while len(self.socks) < self.target and self.connect_failed == failed:
                self._open()  # refill what failed to connect (stop at the next failure)
        held = len(self.socks)
        for fd in list(self.socks):
            self._drop(fd)
        return {
            "sockets": self.target,
            "source": self.source,
            "opened": self.opened,
            "closed_by_verifier": self.closed_by_verifier,
            "connect_failed": self.connect_failed,
            "peak_open": self.peak_open,
            "open_at_end": held,
        }


def _raise_fd_limit(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        soft = want
    return soft


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--source", default="127.0.0.2", help="the one address the flood comes from")
    p.add_argument("--sockets", type=int, default=10_000)
    p.add_argument("--seconds", type=float, required=True)
    args = p.parse_args(argv)
    limit = _raise_fd_limit(args.sockets + 64)
    if limit < args.sockets + 16:
        p.error(f"RLIMIT_NOFILE allows only {limit} descriptors for {args.sockets} sockets")
    result = Flood(args.host, args.port, args.source, args.sockets).run(args.seconds)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
