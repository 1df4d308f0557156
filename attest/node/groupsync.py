"""Group commit for the verifier daemon: one fsync makes many sessions' commits durable.

With ``synchronous=FULL`` SQLite fsyncs the write-ahead log inside every COMMIT, while it holds
the database's write lock: the node's single store thread then spends most of its time waiting
for the disk, one session at a time, and with several worker processes every one of them waits
for the others' fsyncs too. A store opened with ``group_sync=True`` commits each transaction
(still atomic, still one transaction per appraisal) without that fsync, and the daemon calls
:meth:`GroupSync.durable` after the commit and *before* it sends the result: the caller waits
for an fsync of the log that started after its commit returned. While one fsync runs, newly
committed sessions queue up and share the next one, so a node does a few hundred fsyncs a
second however many sessions it concludes.

Why this is as durable as FULL for every result that leaves the node: SQLite in WAL mode
appends each committed transaction to the one ``-wal`` file that all connections (and worker
processes) share, so an fsync of that file after a commit covers it and every commit before
it, whichever process made them. If a checkpoint moved the frames into the database file first,
SQLite (``synchronous=NORMAL``) has synced the database file before the log could be reused.
WAL mode with NORMAL is crash-consistent (atomic commits); what it gives up - that a crash may
lose the last commits - is exactly what :meth:`durable` restores before any caller acts on them.
A failed fsync is not retried (after a failed fsync the kernel may have dropped the dirty
pages): every waiter of that round and every later caller gets the error, and the task that
drives the rounds raises it, which stops the node.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from attest.errors import StoreError


class GroupSync:
    """Shares one ``sync`` (fsync of the store's log) among every session waiting for one.

    ``start_soon`` starts the background task that runs the fsync rounds (the node passes its
    nursery's); it runs while anyone waits and exits when no one does.
    """

    def __init__(
        self, sync: Callable[[], None], start_soon: Callable[[Callable[[], Awaitable[None]]], None]
    ) -> None:
        self._sync = sync
        self._start_soon = start_soon
        self._limiter = trio.CapacityLimiter(1)
        self._waiting: list[trio.Event] = []
        self._running = False
        self._failed: BaseException | None = None
        #: fsync rounds done and the sessions they covered (for metrics and tests)
        self.rounds = 0
        self.covered = 0

    async def durable(self) -> None:
        """Return once everything committed before this call is on stable storage."""
        self._check()
        done = trio.Event()
        self._waiting.append(done)
        if not self._running:
            self._running = True
            self._start_soon(self._drive)
        await done.wait()
        self._check()

    def _check(self) -> None:
        if self._failed is not None:
            raise StoreError(f"the store's log could not be synced: {self._failed}")

    async def _drive(self) -> None:
        """fsync rounds until no one waits; those who queued during a round share the next."""
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    # shielded: the waiters must learn the outcome of a round that started
                    with trio.CancelScope(shield=True):
                        await trio.to_thread.run_sync(self._sync, limiter=self._limiter)
                except BaseException as exc:
                    self._failed = exc
                    for event in batch + self._waiting:
                        event.set()
                    self._waiting = []
                    raise StoreError(f"the store's log could not be synced: {exc}") from exc
                self.rounds += 1
                self.covered += len(batch)
                for event in batch:
                    event.set()
        finally:
            self._running = False
