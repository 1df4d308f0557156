"""A throwaway PostgreSQL server on a loopback port, for tests, benchmarks and the chaos harness.

The binaries come from the ``pgserver`` wheel (PostgreSQL 16 inside a PyPI package, in the
test extra) or, failing that, from an installed server (Debian's ``postgresql`` package under
/usr/lib/postgresql/*/bin, or ``pg_config --bindir``). :class:`Cluster` runs ``initdb`` in a
fresh folder and the ``postgres`` server itself as a child process in its own process group,
listening on 127.0.0.1 and a socket in the data folder, so that the chaos harness can SIGKILL
the whole server (postmaster and backends, as a power cut would) and start it again on the
same data: PostgreSQL then recovers from its write-ahead log.

PostgreSQL refuses to run as root; as root (CI, containers) the server runs as an
unprivileged system user (``attest-pg``, created with ``useradd`` when missing), which must be
able to reach the binaries and the data folder.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

#: the system user that runs the server when we are root
PG_USER = "attest-pg"
START_TIMEOUT_S = 60.0


class ClusterError(RuntimeError):
    """No PostgreSQL server could be started here (no binaries, or they failed)."""


def find_bindir() -> Path:
    """The folder holding ``initdb`` and ``postgres`` (see the module docstring)."""
    with contextlib.suppress(ImportError), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pgserver warns about XDG_RUNTIME_DIR on import
        from pgserver._commands import POSTGRES_BIN_PATH

        if (Path(POSTGRES_BIN_PATH) / "postgres").exists():
            return Path(POSTGRES_BIN_PATH)
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "postgres").exists():
            return Path(candidate)
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        path = Path(out.stdout.strip())
        if (path / "postgres").exists():
            return path
    raise ClusterError(
        "no PostgreSQL binaries: install the test extra (pip install -e '.[test]', which brings "
        "pgserver) or Debian's postgresql package"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PG_USER)
    except KeyError:
        pass
    try:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ClusterError(f"cannot create the system user {PG_USER}: {exc}") from None
    return pwd.getpwnam(PG_USER)


def _open_path_for_others(path: Path) -> None:
    """Let another user traverse every folder above ``path`` and read the binaries."""
    for parent in [path, *path.parents]:
        with contextlib.suppress(OSError):
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o005)


class Cluster:
    """One PostgreSQL server with its data folder (see the module docstring)."""

    def __init__(self, root: Path | None = None, *, port: int | None = None) -> None:
        self.bindir = find_bindir()
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="attest-pg-")) if root is None else root
        self.root.mkdir(parents=True, exist_ok=True)
        self.data = self.root / "data"
        self.port = port or free_port()
        self.log = self.root / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            self._user = _ensure_user()
            _open_path_for_others(self.bindir)
            _open_path_for_others((self.bindir / "..").resolve())
            lib = (self.bindir / ".." / "lib").resolve()
            if lib.exists():
                for dirpath, _dirs, filenames in os.walk(lib):
                    os.chmod(dirpath, os.stat(dirpath).st_mode | 0o005)
                    for f in filenames:
                        fp = os.path.join(dirpath, f)
                        os.chmod(fp, os.stat(fp).st_mode | 0o004)
            _open_path_for_others(self.root)
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)

    @property
    def url(self) -> str:
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        user = self._user.pw_uid if self._user else None
        group = self._user.pw_gid if self._user else None
        return subprocess.run(
            list(args), capture_output=True, user=user, group=group, check=False, timeout=120
        )

    def init(self) -> None:
        """``initdb`` the data folder (trust authentication: loopback only)."""
        out = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        )
        if out.returncode != 0:
            raise ClusterError(f"initdb failed: {out.stderr.decode(errors='replace')[-2000:]}")

    def start(self) -> None:
        """Start the server (recovering from its log after a kill) and wait until it answers."""
        if not (self.data / "PG_VERSION").exists():
            self.init()
        cmd = [
            str(self.bindir / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            "-k",
            str(self.root),
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=64MB",
            "-c",
            "log_min_messages=warning",
        ]
        user = self._user.pw_uid if self._user else None
        group = self._user.pw_gid if self._user else None
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            log = open(self.log, "ab")  # noqa: SIM115 - handed to the child
            try:
                self.proc = subprocess.Popen(
                    cmd,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    user=user,
                    group=group,
                    start_new_session=True,
                )
            finally:
                log.close()
            if self._wait_ready(deadline):
                return
            # e.g. the shared memory of a killed server is still held by dying backends
            if time.monotonic() >= deadline:
                self.kill()
                tail = self.log.read_text(errors="replace")[-2000:]
                raise ClusterError(f"PostgreSQL did not start:\n{tail}")
            time.sleep(0.2)

    def _wait_ready(self, deadline: float) -> bool:
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                if self._accepts():
                    return True
            time.sleep(0.05)
        return False

    def _accepts(self) -> bool:
        try:
            import psycopg
        except ImportError:  # pragma: no cover
            return True
        try:
            with psycopg.connect(self.url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def kill(self) -> None:
        """SIGKILL the server and all its backends (as a power cut would), then reap it."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        """A fast clean shutdown (SIGINT), or a kill if it does not come."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
        self.proc = None

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def close(self) -> None:
        """Stop the server and remove its folder (if we made it)."""
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def running_cluster(root: Path | None = None) -> Iterator[Cluster]:
    cluster = Cluster(root)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()
