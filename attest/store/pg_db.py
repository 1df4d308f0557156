"""One PostgreSQL database and its transaction helper: the Database that several nodes share.

:class:`PostgresDatabase` is the :class:`~attest.store.base.Database` of
:class:`attest.store.postgres.PostgresStore` and of every mechanism's tables when a node's
``[store] path`` is a ``postgresql://`` URL. The table modules write SQL with ``?``
placeholders in the subset common to SQLite and PostgreSQL; :func:`translate` turns it into
psycopg's ``%s`` style once per statement text.

Driving it from trio: a thread pool behind a ``trio.CapacityLimiter``, the approach the node
already uses for SQLite (attest/node/server.py ``_db_call``), rather than psycopg's
generator-based waits on ``trio.lowlevel.wait_readable``. The Database API is synchronous and
shared with SQLite, and each mechanism's writes are synchronous callbacks that run inside the
appraisal's transaction (``Step``); an async driver would need a second, async copy of every
table module. A blocked psycopg call releases the GIL, so the event loop keeps running while a
worker thread waits for the server.

Transactions: connections are in autocommit mode; :meth:`PostgresDatabase.write` wraps ``fn`` in
``BEGIN ... COMMIT`` at READ COMMITTED, where correctness across nodes comes from conditional
updates and row locks in the SQL itself (see attest/store/postgres.py), never from locks in this
process. A read runs each statement on its own. Commits are synchronous (``synchronous_commit``
on, the server default): when ``write`` returns, the transaction is durable.

Failures: a deadlock or serialization failure rolls back and runs ``fn`` again; a lost
connection *before* COMMIT was sent (the server rolled the transaction back) is retried on a
fresh connection for up to ``reconnect_timeout_s``, so a server restart costs waiting sessions a
pause, not an error; a connection lost *during* COMMIT leaves the outcome unknown and raises
:class:`CommitUnknown` (the caller must not report success, and must not blindly redo it).
Every other server error is a :class:`~attest.errors.StoreError`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from attest.errors import StoreError
from attest.store.base import Cursor, StoreUnavailable, Transaction

_T = TypeVar("_T")

DEFAULT_POOL_SIZE = 4
DEFAULT_RECONNECT_TIMEOUT_S = 5.0
#: deadlock_detected, serialization_failure: the server rolled back; running again is safe
_RETRY_SQLSTATES = frozenset({"40P01", "40001"})
_MAX_CONFLICT_RETRIES = 20

_translated: dict[str, str] = {}


def translate(sql: str) -> str:
    """``?`` placeholders to ``%s`` (and ``%`` to ``%%``), outside string literals."""
    out = _translated.get(sql)
    if out is not None:
        return out
    parts: list[str] = []
    quoted = False
    for ch in sql:
        if ch == "'":
            quoted = not quoted
            parts.append(ch)
        elif ch == "%":
            parts.append("%%")
        elif ch == "?" and not quoted:
            parts.append("%s")
        else:
            parts.append(ch)
    out = "".join(parts)
    if len(_translated) < 4096:
        _translated[sql] = out
    return out


def is_url(location: str) -> bool:
    """Whether a configured store location names a PostgreSQL server."""
    return location.startswith(("postgresql://", "postgres://"))


def redact(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    try:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(url)
    except Exception:
        return "postgresql://…"
    if "password" in params:
        params["password"] = "***"
    return str(make_conninfo(**params))  # type: ignore[arg-type]


class CommitUnknown(StoreUnavailable):
    """The connection broke while COMMIT was in flight: the transaction may or may not have
    been applied. Nothing may be reported as done; the next read tells which it was."""


class PgTransaction:
    """A :class:`~attest.store.base.Transaction` over one psycopg connection.

    Inside :meth:`PostgresDatabase.write` the ``BEGIN`` is not a round trip of its own: it
    travels with the first statement (psycopg's pipeline mode). :meth:`batch` sends several
    statements in one round trip and :meth:`finish` sends the last ones together with
    ``COMMIT`` (the appraisal transaction takes two round trips this way, plus its steps).
    """

    __slots__ = ("_begin", "_conn", "committing", "finished")

    def __init__(self, conn: Any, transaction: bool = False) -> None:
        self._conn = conn
        self._begin = transaction
        #: COMMIT has been sent (a connection lost now leaves the outcome unknown)
        self.committing = False
        #: COMMIT was sent by :meth:`finish` and succeeded
        self.finished = False

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        if self._begin:
            return self.batch([(sql, parameters)])[0]
        cur = self._conn.cursor()
        if parameters:
            cur.execute(translate(sql), parameters)
        else:  # no parameters: psycopg sends the text as it is (no %-escapes to undo)
            cur.execute(sql)
        result: Cursor = cur
        return result

    def batch(
        self, statements: Sequence[tuple[str, Sequence[Any]]], *, commit: bool = False
    ) -> list[Cursor]:
        """Run ``statements`` in one round trip (results are ready when it returns)."""
        cursors: list[Cursor] = []
        with self._conn.pipeline():
            if self._begin:
                self._conn.execute("BEGIN")
                self._begin = False
            for sql, parameters in statements:
                cur = self._conn.cursor()
                cur.execute(translate(sql) if parameters else sql, parameters or None)
                cursors.append(cur)
            if commit:
                self.committing = True
                self._conn.execute("COMMIT")
        if commit:
            self.finished = True
        return cursors

    def finish(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[Cursor]:
        """The transaction's last statements and its COMMIT, in one round trip."""
        return self.batch(statements, commit=True)

    def script(self, script: str) -> None:
        """Several statements at once (DDL; no parameters, so psycopg sends it as one query)."""
        if self._begin:
            self._conn.execute("BEGIN")
            self._begin = False
        self._conn.execute(script)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise StoreError(
            f"a postgresql:// store needs psycopg 3: pip install 'hem-attest[postgresql]' ({exc})"
        ) from None
    return psycopg


class PostgresDatabase:
    """Connections to one PostgreSQL database (:class:`~attest.store.base.Database`).

    At most ``pool_size`` connections, opened on demand and kept for reuse; a broken one is
    dropped and replaced at the next use. (A node makes at most ``pool_size`` store calls at
    once, so a small pool of our own is enough: psycopg-pool's background reconnection with
    exponential backoff would only delay recovery after a server restart.) ``readonly=True``
    opens every transaction read-only.
    """

    dialect = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        readonly: bool = False,
        pool_size: int = DEFAULT_POOL_SIZE,
        reconnect_timeout_s: float = DEFAULT_RECONNECT_TIMEOUT_S,
        application_name: str = "attest",
    ) -> None:
        if pool_size < 1:
            raise ValueError("pool_size must be >= 1")
        self._psycopg = _psycopg()
        self._url = url
        self._readonly = readonly
        self._reconnect_timeout_s = reconnect_timeout_s
        self._closed = False
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(pool_size)
        self.pool_size = pool_size
        self._idle: list[Any] = []
        self._kwargs: dict[str, Any] = {
            "autocommit": True,
            "application_name": application_name,
            "connect_timeout": max(1, round(reconnect_timeout_s)),
        }
        if readonly:
            self._kwargs["options"] = "-c default_transaction_read_only=on"
        deadline = time.monotonic() + reconnect_timeout_s
        while True:  # a node starting while its server restarts waits for it, as a call would
            try:
                self._idle.append(self._connect())
                break
            except self._psycopg.Error as exc:
                retry = isinstance(exc, self._psycopg.OperationalError)
                if not retry or time.monotonic() >= deadline:
                    raise StoreError(
                        f"{redact(url)}: cannot connect to PostgreSQL: {_message(exc)}"
                    ) from None
                time.sleep(0.1)

    @property
    def url(self) -> str:
        return self._url

    @property
    def readonly(self) -> bool:
        return self._readonly

    @property
    def closed(self) -> bool:
        return self._closed

    # -- connections -----------------------------------------------------------------------------

    def _connect(self) -> Any:
        return self._psycopg.connect(self._url, **self._kwargs)

    def _getconn(self, timeout: float) -> Any:
        if not self._slots.acquire(timeout=max(0.0, timeout)):
            raise StoreUnavailable("PostgreSQL: every connection of the pool is busy")
        try:
            with self._lock:
                if self._closed:
                    raise StoreError("store is closed")
                while self._idle:
                    conn = self._idle.pop()
                    if not conn.closed and not conn.broken:
                        return conn
            return self._connect()  # OperationalError when the server is down: retried
        except BaseException:
            self._slots.release()
            raise

    def _putconn(self, conn: Any) -> None:
        try:
            with self._lock:
                if not self._closed and not conn.closed and not conn.broken:
                    self._idle.append(conn)
                    return
            conn.close()
        finally:
            self._slots.release()

    # -- the transaction helper ------------------------------------------------------------------

    def _run(
        self, fn: Callable[[PgTransaction], _T], *, transaction: bool, writes: bool = False
    ) -> _T:
        """Run ``fn`` on a pooled connection: in one transaction (``transaction``), or each
        statement on its own (a read; or, with ``writes``, one autocommitted write)."""
        psycopg = self._psycopg
        if self._closed:
            raise StoreError("store is closed")
        deadline = time.monotonic() + self._reconnect_timeout_s
        conflicts = 0
        while True:
            conn = None
            txn: PgTransaction | None = None
            try:
                conn = self._getconn(deadline - time.monotonic())
                txn = PgTransaction(conn, transaction)
                if not transaction:
                    txn.committing = writes  # its one statement commits as it runs
                    return fn(txn)
                try:
                    result = fn(txn)
                except BaseException:
                    if not conn.broken:
                        conn.execute("ROLLBACK")
                    raise
                if not txn.finished:
                    txn.committing = True
                    conn.execute("COMMIT")
                return result
            except psycopg.OperationalError as exc:
                if getattr(exc, "sqlstate", None) in _RETRY_SQLSTATES:
                    conflicts += 1
                    if conflicts <= _MAX_CONFLICT_RETRIES:
                        continue
                if conn is not None and not conn.broken:
                    raise StoreError(f"postgresql: {_message(exc)}") from None
                if txn is not None and txn.committing:
                    raise CommitUnknown(
                        f"postgresql: connection lost during COMMIT: {_message(exc)}"
                    ) from None
                if time.monotonic() >= deadline:  # the server is down: the node reports not-ready
                    raise StoreUnavailable(
                        f"postgresql: connection lost: {_message(exc)}"
                    ) from None
                time.sleep(0.05)  # the server is restarting: again, on a new connection
            except psycopg.Error as exc:
                raise StoreError(f"postgresql: {_message(exc)}") from None
            finally:
                if conn is not None:
                    self._putconn(conn)

    def read(self, fn: Callable[[Transaction], _T]) -> _T:
        return self._run(fn, transaction=False)

    def write(self, fn: Callable[[Transaction], _T]) -> _T:
        """Run ``fn`` in one transaction; roll back (and re-raise) on any exception."""
        if self._readonly:
            raise StoreError("store is read-only")
        return self._run(fn, transaction=True)

    def run_script(self, script: str) -> None:
        """DDL in one transaction, under the schema lock, and only once per distinct script.

        Mechanisms run their scripts each time a node starts. ``CREATE OR REPLACE TRIGGER`` and
        ``CREATE INDEX IF NOT EXISTS`` take table locks even when nothing changes, so a node
        starting beside running ones would queue behind their writes and could deadlock with
        them (it holds one table's lock while waiting for another's, which a licence issuance
        holds while waiting for the first). So the script's SHA-256 is recorded in
        ``applied_scripts`` and a script already applied is not run again: a start then
        takes no table lock at all. A changed script (a new release) has a new digest and runs.
        """
        digest = hashlib.sha256(script.encode()).digest()

        def run(txn: Transaction) -> None:
            assert isinstance(txn, PgTransaction)
            lock_schema(txn)
            txn.script(_APPLIED_SCRIPTS)
            seen = "SELECT 1 FROM applied_scripts WHERE digest = ?"
            if txn.execute(seen, (digest,)).fetchone() is not None:
                return
            txn.script(script)
            txn.execute(
                "INSERT INTO applied_scripts (digest, applied_ms) "
                "VALUES (?, (extract(epoch FROM now()) * 1000)::bigint)",
                (digest,),
            )

        self.write(run)

    def close(self) -> None:
        """Close every connection (idempotent; calls in flight finish on theirs)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


#: the scripts :meth:`PostgresDatabase.run_script` has applied (no lock on an existing table)
_APPLIED_SCRIPTS = (
    "CREATE TABLE IF NOT EXISTS applied_scripts"
    " (digest bytea PRIMARY KEY, applied_ms bigint NOT NULL)"
)

#: the advisory lock every schema change takes (a constant: "attest" in ASCII)
SCHEMA_LOCK = 0x617474657374


def lock_schema(txn: Transaction) -> None:
    """Serialise schema changes of all processes sharing the database (until COMMIT)."""
    txn.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))


def _message(exc: BaseException) -> str:
    """The server's primary message (one line) or the exception text."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    return str(primary or exc).strip().splitlines()[0] if str(primary or exc).strip() else repr(exc)
