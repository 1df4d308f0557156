"""One SQLite file in WAL mode and its transaction helper: the embedded default Database.

:class:`SqliteDatabase` is the :class:`~attest.store.base.Database` that the core tables
(:class:`attest.store.sqlite.SqliteStore`) and every mechanism's tables share.

Durability: ``journal_mode=WAL`` with ``synchronous=FULL`` fsyncs the WAL on every commit. A
database opened with ``group_sync=True`` (the daemon's) commits with ``synchronous=NORMAL``
instead and its owner calls :meth:`SqliteDatabase.sync` (one fsync of the WAL for many commits,
see attest/node/groupsync.py) before acting on a commit. Every write is one ``BEGIN IMMEDIATE``
transaction, which takes SQLite's write lock up front: read-check-write sequences are atomic
even across processes sharing the file.

Threads: one connection (``check_same_thread=False``) guarded by a :class:`threading.RLock`
(re-entrant, so the reads and writes inside :meth:`SqliteDatabase.group_commit` can take it).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from attest.errors import StoreError
from attest.store.base import StoreUnavailable, Transaction
from attest.store.columns import split_sql

#: Seconds a writer waits for another process's write lock before StoreUnavailable (default;
#: the daemon uses ``[store] busy_timeout_s``, shorter than a session's deadline).
BUSY_TIMEOUT_S = 10.0
#: With ``group_sync`` (the daemon, possibly several worker processes on one file) a write
#: that finds the lock taken is retried after 50 us, doubling up to 2 ms: the holder commits
#: without an fsync and lets go within a few hundred microseconds, while SQLite's own busy
#: handler sleeps at least 1 ms per attempt, which would idle a worker for longer than the
#: transaction it waits for.
_FIRST_RETRY_S = 50e-6
_MAX_RETRY_S = 2e-3

_T = TypeVar("_T")


class SqliteDatabase:
    """One SQLite file and its transaction helper (:class:`~attest.store.base.Database`).

    ``readonly=True`` opens an existing file without creating or changing anything.
    ``busy_timeout_s`` bounds how long a call waits for another connection's write lock.
    Operational failures (locked beyond it, disk full, I/O errors) raise
    :class:`~attest.store.base.StoreUnavailable`.

    Blocking: a call can wait up to ``busy_timeout_s`` (SQLite's busy handler, or the retry
    loop of :meth:`_locked` with its ``time.sleep``) and an fsync. Never call it on an event
    loop: the daemon runs every store call in a worker thread behind a limiter.
    """

    dialect = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        group_sync: bool = False,
        busy_timeout_s: float = BUSY_TIMEOUT_S,
    ) -> None:
        if not 0 <= busy_timeout_s <= 3600:
            raise ValueError("busy_timeout_s must be within 0..3600")
        self._busy_timeout_s = busy_timeout_s
        self._path = Path(path)
        self._readonly = readonly
        #: commits are made durable by sync(), not inside COMMIT (see the module docstring)
        self._group_sync = group_sync and not readonly
        self._wal_fd: int | None = None
        self._batch = False
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        try:
            if readonly:
                if not self._path.exists():
                    raise StoreError(f"{self._path}: no such store")
                target, uri = self._path.resolve().as_uri() + "?mode=ro", True
            else:
                target, uri = str(self._path), False
            conn = sqlite3.connect(
                target,
                uri=uri,
                timeout=busy_timeout_s,
                isolation_level=None,  # we issue BEGIN IMMEDIATE / COMMIT ourselves
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise _store_error(exc, f"{self._path}: cannot open: ") from None
        try:
            if not readonly:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"{self._path}: cannot enable WAL (got {mode})")
                conn.execute(f"PRAGMA synchronous={'NORMAL' if self._group_sync else 'FULL'}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA trusted_schema=OFF")
            if self._group_sync:
                conn.execute("PRAGMA busy_timeout=0")  # _locked retries (see _FIRST_RETRY_S)
        except sqlite3.Error as exc:
            conn.close()
            raise _store_error(exc, f"{self._path}: ") from None
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    @property
    def path(self) -> Path:
        return self._path

    @property
    def readonly(self) -> bool:
        return self._readonly

    @property
    def closed(self) -> bool:
        return self._conn is None

    def _locked(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run ``fn`` under the lock, turning sqlite3 errors into StoreError."""
        with self._lock:
            if self._conn is None:
                raise StoreError("store is closed")
            delay, deadline = _FIRST_RETRY_S, 0.0
            while True:
                try:
                    return fn(self._conn)
                except sqlite3.Error as exc:
                    if not (self._group_sync and _is_busy(exc)):
                        raise _store_error(exc) from None
                    # Another process holds the write lock (worker processes sharing the
                    # file, attest/node/workers.py). fn rolled back and runs again; see
                    # _FIRST_RETRY_S for why we wait here rather than in SQLite.
                    now = time.monotonic()
                    deadline = deadline or now + self._busy_timeout_s
                    if now >= deadline:
                        raise _store_error(exc) from None
                    time.sleep(delay)
                    delay = min(2 * delay, _MAX_RETRY_S)

    def read(self, fn: Callable[[Transaction], _T]) -> _T:
        return self._locked(fn)

    def write(self, fn: Callable[[Transaction], _T]) -> _T:
        """Run ``fn`` in one BEGIN IMMEDIATE transaction; roll back on any exception."""
        if self._readonly:
            raise StoreError("store is read-only")

        def txn(conn: sqlite3.Connection) -> _T:
            if self._batch:  # inside group_commit(): a savepoint in the open transaction
                conn.execute("SAVEPOINT attest_op")
                try:
                    result = fn(conn)
                except BaseException:
                    conn.execute("ROLLBACK TO attest_op")
                    conn.execute("RELEASE attest_op")
                    raise
                conn.execute("RELEASE attest_op")
                return result
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        return self._locked(txn)

    def run_script(self, script: str) -> None:
        statements = split_sql(script)

        def run(txn: Transaction) -> None:
            for statement in statements:
                txn.execute(statement)

        self.write(run)

    @contextlib.contextmanager
    def group_commit(self) -> Iterator[None]:
        """Run many writes of this thread in one transaction (bulk enrolment, benchmarks).

        Each write inside keeps its own atomicity (a savepoint: one that raises leaves no
        trace) and the block commits once at the end: nothing in it is durable, or visible to
        other connections, before the block exits without an exception. Other threads wait.
        """
        if self._readonly:
            raise StoreError("store is read-only")
        with self._lock:
            if self._conn is None:
                raise StoreError("store is closed")
            if self._batch:
                yield
                return
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _store_error(exc) from None
            self._batch = True
            try:
                yield
            except BaseException:
                self._batch = False
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self._batch = False
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise _store_error(exc) from None

    def sync(self) -> None:
        """Make every commit so far durable: fsync the WAL (a no-op without ``group_sync``).

        Safe to call from another thread while writes go on: it flushes whatever the log
        holds when the fsync starts, which includes every commit that returned before the call.
        """
        if not self._group_sync:
            return
        wal = str(self._path) + "-wal"
        fd = self._wal_fd
        try:
            if fd is not None and os.fstat(fd).st_ino != os.stat(wal).st_ino:
                os.close(fd)  # the log was removed and recreated: follow the new file
                fd = self._wal_fd = None
            if fd is None:
                fd = self._wal_fd = os.open(wal, os.O_RDONLY)
                _fsync_dir(self._path.parent)  # the log's directory entry, once per file
            os.fsync(fd)
        except FileNotFoundError:
            return  # no log yet (nothing was written) or it was checkpointed away and removed
        except OSError as exc:
            raise StoreUnavailable(f"{wal}: fsync failed: {exc.strerror}") from None

    def close(self) -> None:
        """Release the connection (idempotent)."""
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
            if self._wal_fd is not None:
                os.close(self._wal_fd)
                self._wal_fd = None


#: primary result codes of operational failures: BUSY, LOCKED, NOMEM, READONLY, IOERR, FULL,
#: CANTOPEN, PROTOCOL (https://sqlite.org/rescode.html)
_UNAVAILABLE = frozenset({5, 6, 7, 8, 10, 13, 14, 15})


def _store_error(exc: sqlite3.Error, prefix: str = "sqlite: ") -> StoreError:
    """The StoreError for a sqlite3 error: StoreUnavailable when retrying later may work."""
    code = getattr(exc, "sqlite_errorcode", None)
    unavailable = code is not None and code & 0xFF in _UNAVAILABLE
    return (StoreUnavailable if unavailable else StoreError)(f"{prefix}{exc}")


def _is_busy(exc: sqlite3.Error) -> bool:
    """SQLITE_BUSY (another connection holds the lock), including its extended codes."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == 5


def _fsync_dir(folder: Path) -> None:
    """fsync a directory, so that a file created in it survives a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
