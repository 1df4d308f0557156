"""The node's store threads: every store call runs here, never on the event loop.

One thread for SQLite (calls one at a time, so its single writer is never contended inside the
node); as many as the store serves at once for PostgreSQL (``Store.concurrency``, its pool), so
that sessions' round trips to the database server overlap.

A store call blocks: SQLite waits for another process's write lock (its busy handler, or the
retry loop with ``time.sleep`` in attest/store/sqlite_db.py), reads pages from disk, and a WAL
checkpoint fsyncs. On the trio thread any of that would freeze every session and ``/healthz``.

Why one dedicated thread rather than ``trio.to_thread.run_sync`` per call: the store is used by
one caller at a time anyway (a limiter of one), and a session makes two store calls, so the
per-call overhead of a thread hop is paid twice per session. ``to_thread.run_sync`` hands each
call to a cached worker (with a fresh thread name, a contextvars copy and the limiter's
bookkeeping); this thread instead takes calls from a queue in order, so calls that queue up
while one runs are run back to back without waiting for a wake-up each. ``attest bench e2e``
measured the difference (see the issue-10 note).

Semantics are those of ``to_thread.run_sync(fn, limiter=CapacityLimiter(workers))``: calls
start in submission order, at most ``workers`` at a time; ``run`` returns ``fn``'s result or
raises its exception in the calling task. A call that is cancelled while it still waits in the
queue is dropped (it never runs); one that has started runs to completion and its caller waits
for it (the store must not be abandoned mid-transaction).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import outcome
import trio

T = TypeVar("T")

_QUEUED, _RUNNING, _DROPPED = range(3)


class _Job:
    __slots__ = ("args", "fn", "state", "task", "token")

    def __init__(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        task: trio.lowlevel.Task,
        token: trio.lowlevel.TrioToken,
    ) -> None:
        self.fn = fn
        self.args = args
        self.task = task
        self.token = token
        self.state = _QUEUED


class StoreThread:
    """Runs blocking store calls in one dedicated thread (see the module docstring)."""

    def __init__(self, name: str = "attest-store", *, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError("a store thread needs at least one worker")
        self._name = name
        self._workers = workers
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._state = threading.Lock()
        self._threads: list[threading.Thread] = []
        #: calls run so far, and how many run now (for tests and metrics)
        self.calls = 0
        self._busy = 0

    @property
    def running(self) -> bool:
        """Whether a call is running now."""
        return self._busy > 0

    def start(self) -> None:
        if not self._threads:
            self._threads = [
                threading.Thread(target=self._main, name=f"{self._name}-{i}", daemon=True)
                for i in range(self._workers)
            ]
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        """Let the threads finish the calls already queued, then exit (returns at once)."""
        for _ in self._threads:
            self._jobs.put(None)
        self._threads = []

    @trio.lowlevel.enable_ki_protection
    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the store thread; its result or exception, in this task.

        KeyboardInterrupt-protected: a Ctrl-C landing between queueing the job and waiting for
        it would leave the thread to reschedule a task no longer waiting here (trio then stops
        with TrioInternalError); protected, trio delivers it at the wait, through ``abort``.
        """
        await trio.lowlevel.checkpoint_if_cancelled()
        if not self._threads:
            raise RuntimeError("the store thread is not running")
        job = _Job(fn, args, trio.lowlevel.current_task(), trio.lowlevel.current_trio_token())
        self._jobs.put(job)

        def abort(_: object) -> trio.lowlevel.Abort:
            with self._state:
                if job.state == _QUEUED:
                    job.state = _DROPPED
                    return trio.lowlevel.Abort.SUCCEEDED
            return trio.lowlevel.Abort.FAILED  # running: wait for it to finish

        result: T = await trio.lowlevel.wait_task_rescheduled(abort)  # unwraps the outcome
        return result

    def _main(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            with self._state:
                if job.state == _DROPPED:
                    continue
                job.state = _RUNNING
                self._busy += 1
            result = outcome.capture(job.fn, *job.args)
            with self._state:
                self._busy -= 1
                self.calls += 1
            with contextlib.suppress(trio.RunFinishedError):  # the run ended under us
                job.token.run_sync_soon(trio.lowlevel.reschedule, job.task, result)
