"""``attest verifier serve --workers K``: one node served by K processes on one port.

CPython runs Python code on one core per process, so a node scales across cores with
processes. The parent (a supervisor that serves nothing itself) starts K ordinary
``attest verifier serve`` processes with a hidden ``--reuse-port`` flag; each binds the node's
port with ``SO_REUSEPORT``, and the kernel spreads incoming connections over them (by a hash of
each connection's addresses; a chip's keep-alive connection stays with one worker, so a
session's challenge and evidence meet in the same process, as they must: a worker only
concludes challenges it issued in that connection).

Shared state: all workers open the same SQLite file (WAL mode, ``BEGIN IMMEDIATE`` per write,
busy timeout of ``attest.store.sqlite_db.BUSY_TIMEOUT_S``). That keeps exactly one chip registry,
one challenge table and one audit hash chain, with every invariant the single-process node has:

* a chip's state only advances from the value a worker appraised against (the optimistic
  ``attest_counter`` check; a loser re-reads and appraises again, SPEC.md §9.8), so two
  connections of one chip on two workers cannot both advance it;
* audit entries are appended inside the writing transaction, so the chain stays gap-free and
  ordered across processes, and any worker may sign a checkpoint;
* durability: each worker makes its commits durable with one fsync of the shared log before
  it sends results (attest/node/groupsync.py); that fsync covers other workers' earlier
  commits too.

On a PostgreSQL store (``[store] path = "postgresql://..."``) the workers simply open the shared
database like any node: each has its own connections, the database's row locks keep the same
invariants (attest/store/postgres.py), and the workers share the node's one audit chain.

With SQLite the price is that writes from all workers are serialised by its one write lock. It
is held for one short transaction at a time (the fsync happens outside it), and the CPU-heavy
part of a session - signature checks, parsing, signing - runs in parallel, so this is the
cheapest design that keeps one audit chain. The alternatives: one store per worker (no lock,
but K audit chains and a chip's state split across workers, which would break rollback
detection when a chip reconnects to another worker) or one store-owning process that workers
call over IPC (one more hop per session, and the same serialisation inside the owner).

Before starting the workers the parent applies the configured revocation list to the store
once, so workers never race to store the same newer list. It writes the configured
``port_file`` when every worker is ready, forwards SIGTERM/SIGINT (drain) and SIGHUP (reload:
each worker re-reads the configuration itself; a newer revocation list is stored by whichever
worker gets there first, attest.node.app.effective_revocations) to the workers and reports
success only if every worker drained and exited 0.

The ops endpoint is one port too: every worker binds ``[http] port`` with ``SO_REUSEPORT`` (0:
the parent reserves a free one for all of them; -1: none), and whichever worker answers a
scrape renders the metrics of all workers, from the private directory the parent gives them
(prometheus-client's multiprocess mode, attest/node/metrics.py): so Prometheus has one target
per node and its counters are the node's, including those of a worker that has exited. The
alternative, a ``worker`` label on K ports (or a supervisor that fetches and relabels K
scrapes), would make every query sum over workers and would lose a stopped worker's counts.
``/healthz`` and ``/readyz`` answer for the worker that takes the request.

Under systemd (``Type=notify``, attest/node/notify.py) the parent alone talks to the service
manager: READY=1 once every worker is ready, STOPPING=1 and RELOADING=1 when it forwards the
signals; the workers do not see ``NOTIFY_SOCKET``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client.multiprocess import mark_process_dead

from attest.durable import atomic_write
from attest.errors import AttestError, ConfigError
from attest.node import notify
from attest.node.app import effective_revocations, load_identity, open_store
from attest.node.config import load_config
from attest.node.metrics import MULTIPROC_ENV

#: how long the parent waits for a worker to be ready before giving up
READY_TIMEOUT_S = 60.0


def _reserve_port(host: str) -> socket.socket:
    """A bound (not listening) SO_REUSEPORT socket: holds a free port for the workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, 0))
    return sock


def serve_workers(config_path: Path, workers: int) -> bool:
    """Run ``workers`` serving processes for the node configured at ``config_path``; True if
    every worker drained and exited cleanly."""
    if workers < 2:
        raise ConfigError("--workers must be at least 2 here (1 is the plain node)")
    config = load_config(config_path)
    anchors, identity = load_identity(config)
    with open_store(config, identity) as store:
        effective_revocations(config, anchors, store)
    port_file = config.path(config.listen.port_file) if config.listen.port_file else None
    if port_file is not None:
        port_file.unlink(missing_ok=True)
    reserved = _reserve_port(config.listen.host) if config.listen.port == 0 else None
    port = reserved.getsockname()[1] if reserved is not None else config.listen.port
    reserved_http = _reserve_port(config.http.host) if config.http.port == 0 else None
    http_port = reserved_http.getsockname()[1] if reserved_http is not None else config.http.port
    procs: list[subprocess.Popen[bytes]] = []
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        if signum == signal.SIGHUP:
            # the workers reload on their own; the parent is ready again at once
            notify.send_now(notify.reloading_message("workers told to reload"))
            notify.send_now(notify.message("READY=1", status="workers told to reload"))
        elif not stopping:
            notify.send_now(notify.message("STOPPING=1", status="draining"))
        stopping = stopping or signum != signal.SIGHUP
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    forwarded = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {s: signal.signal(s, forward) for s in forwarded}
    try:
        with tempfile.TemporaryDirectory(prefix="attest-workers-") as tmp:
            ready_files = [Path(tmp) / f"worker-{i}.port" for i in range(workers)]
            metrics_dir = Path(tmp) / "metrics"
            metrics_dir.mkdir()
            for i in range(workers):
                procs.append(
                    _start_worker(config_path, http_port, port, ready_files[i], metrics_dir)
                )
            if not _wait_ready(procs, ready_files, lambda: stopping):
                forward(signal.SIGTERM, None)
                _wait_all(procs)
                raise AttestError("a worker failed to start (see its log lines above)")
            for held in (reserved, reserved_http):
                if held is not None:
                    held.close()
            reserved = reserved_http = None
            if port_file is not None:
                atomic_write(port_file, f"{port}\n".encode())
            notify.send_now(notify.message("READY=1", status=f"{workers} workers serving"))
            codes = _wait_all(procs, metrics_dir)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for held in (reserved, reserved_http):
            if held is not None:
                held.close()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if port_file is not None:
            port_file.unlink(missing_ok=True)
    return all(code == 0 for code in codes)


def _start_worker(
    config_path: Path, http_port: int, port: int, ready_file: Path, metrics_dir: Path
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.pop(notify.SOCKET_ENV, None)  # only the parent speaks to the service manager
    env["ATTEST_LISTEN_PORT"] = str(port)
    env["ATTEST_LISTEN_PORT_FILE"] = str(ready_file)
    env["ATTEST_HTTP_PORT"] = str(http_port)
    env[MULTIPROC_ENV] = str(metrics_dir)
    cmd = [sys.executable, "-m", "attest.cli.main", "verifier", "serve"]
    cmd += ["--config", str(config_path), "--reuse-port"]
    return subprocess.Popen(cmd, env=env)


def _wait_ready(
    procs: list[subprocess.Popen[bytes]], ready_files: list[Path], stopping: object
) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if stopping() or any(p.poll() is not None for p in procs):  # type: ignore[operator]
            return False
        if all(f.exists() and f.read_text().endswith("\n") for f in ready_files):
            return True
        time.sleep(0.05)
    return False


def _wait_all(procs: list[subprocess.Popen[bytes]], metrics_dir: Path | None = None) -> list[int]:
    """Every worker's exit code, once all have exited. As each exits, its live gauges
    (open connections, readiness) leave the node's metrics; its counters stay."""
    codes: dict[int, int] = {}
    while len(codes) < len(procs):
        for i, proc in enumerate(procs):
            if i in codes:
                continue
            code = proc.poll()
            if code is None:
                continue
            codes[i] = code
            if metrics_dir is not None:
                mark_process_dead(proc.pid, str(metrics_dir))  # type: ignore[no-untyped-call]
        if len(codes) < len(procs):
            time.sleep(0.05)
    return [codes[i] for i in range(len(procs))]
