"""Helpers for tests that drive the real ``attest`` CLI in subprocesses.

Every command runs as ``python -m attest.cli.main`` with a scrubbed ``ATTEST_*`` environment, and
its output is kept so a test can check that no secret ever reached stdout or stderr. A verifier
daemon's logs go to a file (a full pipe would block it), and it is always killed on exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CLI = [sys.executable, "-m", "attest.cli.main"]
#: bound for anything that could hang (a subprocess, a port file that never appears)
HANG_TIMEOUT_S = 30.0


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTEST_")}
    env.update(extra or {})
    return env


@dataclass
class Cli:
    """Runs ``attest`` commands and remembers everything they printed."""

    outputs: list[str] = field(default_factory=list)

    def run(
        self, *args: str | os.PathLike[str], env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*CLI, *map(str, args)],
            env=clean_env(env),
            capture_output=True,
            text=True,
            timeout=HANG_TIMEOUT_S,
        )
        self.outputs += [proc.stdout, proc.stderr]
        return proc

    def ok(self, *args: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> str:
        """Run a command that must succeed; return its stdout."""
        proc = self.run(*args, env=env)
        assert proc.returncode == 0, f"attest {args} exited {proc.returncode}:\n{proc.stderr}"
        return proc.stdout


@dataclass
class World:
    """Folders made by ``attest authority``: the authority, one manufacturer, one verifier."""

    root: Path
    authority: Path
    manufacturer: Path
    verifier: Path

    @property
    def config(self) -> Path:
        return self.verifier / "verifier.toml"

    @property
    def db(self) -> Path:
        return self.verifier / "verifier.db"

    def key_files(self) -> list[Path]:
        return sorted(self.root.rglob("*.key"))


def make_world(cli: Cli, root: Path, verifier_id: str = "kl-1") -> World:
    world = World(root, root / "authority", root / "mfr", root / "verifier")
    cli.ok("authority", "init", "--dir", world.authority, "--id", "authority.test")
    cli.ok(
        "authority", "certify-manufacturer", "--dir", world.authority,
        "--id", "mfr-a", "--out", world.manufacturer,
    )  # fmt: skip
    cli.ok(
        "authority", "certify-verifier", "--dir", world.authority,
        "--id", verifier_id, "--region", "MY-KL", "--out", world.verifier,
    )  # fmt: skip
    return world


def secret_hexes(key_files: list[Path]) -> list[str]:
    """The secret seeds (as hex) of attest key files, to search outputs for leaks."""
    return [path.read_text().splitlines()[1].strip() for path in key_files]


def wait_for_port_file(path: Path, proc: subprocess.Popen[bytes], log: Path) -> int:
    """Poll until the daemon writes its port (bounded); fail fast if it exits first."""
    deadline = time.monotonic() + HANG_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"verifier exited {proc.returncode}:\n{log.read_text()}")
        try:
            text = path.read_text()
        except FileNotFoundError:
            text = ""
        if text.endswith("\n"):
            return int(text)
        time.sleep(0.02)
    raise AssertionError(f"no port file after {HANG_TIMEOUT_S} s:\n{log.read_text()}")


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the daemon and wait (bounded) for it to exit; returns its exit code."""
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=HANG_TIMEOUT_S)


@contextmanager
def serve(
    world: World,
    env: Mapping[str, str] | None = None,
    name: str = "serve",
    options: tuple[str, ...] = (),
) -> Iterator[Daemon]:
    """Run ``attest [options] verifier serve`` on a free port; always killed when the block
    exits (``options``: global ones, such as ``--log-level``)."""
    port_file = world.root / f"{name}.port"
    log = world.root / f"{name}.log"
    settings = {
        "ATTEST_LISTEN_PORT": "0",
        "ATTEST_LISTEN_PORT_FILE": str(port_file),
        "ATTEST_HTTP_PORT": "0",
        "ATTEST_LOG_LEVEL": "INFO",
        **(env or {}),
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*CLI, *options, "verifier", "serve", "--config", str(world.config)],
            env=clean_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Daemon(proc, wait_for_port_file(port_file, proc, log), log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=HANG_TIMEOUT_S)
