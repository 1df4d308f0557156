"""Whether the node's store accepts writes, and how the node finds out that it does again.

A store can stop accepting writes while the node runs: the disk fills up, or another process
(an operator's ``sqlite3`` shell, a maintenance job) holds the write lock for longer than the
busy timeout. None of that may end the node. Instead:

* a session whose store call fails gets ERROR INTERNAL, and :meth:`StoreHealth.failed` marks
  the store failing: ``/readyz`` answers 503 (a load balancer sends chips elsewhere);
* while it is failing, new sessions get ERROR INTERNAL at once instead of each waiting out a
  busy timeout in the one store thread (which would only queue every other session behind it);
* a probe task retries the very operation that failed first (issuing a challenge: a real
  write) every :data:`PROBE_INTERVAL_S` seconds; the first success marks the store healthy
  again, and the node is ready without anyone restarting it. A session's successful store
  call does the same.

The probe's challenges are ordinary outstanding challenges that expire and are purged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from attest.errors import AttestError

log = logging.getLogger("attest.node")

#: seconds between probes of a failing store
PROBE_INTERVAL_S = 0.5


class StoreHealth:
    """Failing or healthy; transitions are logged once each (see the module docstring)."""

    def __init__(self, on_change: Callable[[], None] | None = None) -> None:
        #: called after each transition (the node's ``attest_ready`` gauge follows it)
        self._on_change = on_change
        #: the error that made the store failing, or None while it is healthy
        self.error: str | None = None
        #: store failures seen since the node started (sessions and probes)
        self.failures = 0
        self.recoveries = 0
        self._changed = trio.Event()

    @property
    def healthy(self) -> bool:
        return self.error is None

    def failed(self, exc: BaseException) -> bool:
        """Record a failed store call; True if the store was healthy until now."""
        self.failures += 1
        if self.error is not None:
            return False
        self.error = str(exc)
        log.error(
            "store failing: sessions get ERROR INTERNAL and /readyz reports not ready "
            "until a write succeeds again",
            extra={"fields": {"event": "store_failing", "error": self.error}},
        )
        self._changed.set()
        if self._on_change is not None:
            self._on_change()
        return True

    def succeeded(self) -> None:
        """Record a successful store write."""
        if self.error is None:
            return
        log.warning(
            "store recovered",
            extra={"fields": {"event": "store_recovered", "failures": self.failures}},
        )
        self.error = None
        self.recoveries += 1
        self._changed.set()
        if self._on_change is not None:
            self._on_change()

    async def wait_failing(self) -> None:
        while self.error is None:
            self._changed = trio.Event()
            await self._changed.wait()

    async def watch(self, probe: Callable[[], Awaitable[object]]) -> None:
        """Forever: wait until the store fails, then probe it until a probe succeeds."""
        while True:
            await self.wait_failing()
            while self.error is not None:
                await trio.sleep(PROBE_INTERVAL_S)
                try:
                    await probe()
                except AttestError:
                    self.failures += 1
                    continue
                self.succeeded()
