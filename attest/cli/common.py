"""What every ``attest`` subcommand shares: exit codes and safe access to chip state folders.

Exit codes: 0 success, 1 a check failed (e.g. a vector or an audit chain did not verify, a chip
refused a licence, the demo missed an attack), 2 usage or configuration error (an input file or
folder that is not there included, in every command: read inputs with :func:`read_file` or
``attest.files`` readers, which raise ConfigError), 3 runtime error,
4 the check passed as far as it could go but was incomplete (``attest audit verify`` without
the verifier's certificate: the chain is consistent, no signature was checked), 130
interrupted (Ctrl-C; attest.cli.main turns it into one line, also from inside trio).
"""

from __future__ import annotations

import fcntl
import importlib
import os
from pathlib import Path
from types import ModuleType

from attest import files
from attest.chip.device import Chip
from attest.errors import AttestError, ConfigError
from attest.registry import MECHANISMS

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_RUNTIME = 3
EXIT_INCOMPLETE = 4
EXIT_INTERRUPTED = 130

#: the global ``--log-level`` choices (also the ``[log] level`` values of a node)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_LOCK_FILE = "run.lock"


def read_file(path: Path, what: str) -> bytes:
    """A file's bytes, or a ConfigError naming what was expected there."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what}: {exc.strerror}") from None


def lock_chip_dir(chip_dir: Path) -> int:
    """Hold an exclusive lock on a chip folder (two processes must never drive one chip)."""
    try:
        fd = os.open(chip_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise AttestError(f"{chip_dir}: cannot lock the chip folder: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AttestError(f"{chip_dir}: chip is already running in another process") from None
    return fd


def load_locked_chip(state: Path) -> tuple[Chip, int]:
    """A chip from its folder and the lock held on it (close the descriptor when done)."""
    if not files.is_chip_dir(state):
        raise ConfigError(f"{state}: not a chip state folder")
    fd = lock_chip_dir(state)
    try:
        return Chip.load(state), fd
    except BaseException:
        os.close(fd)
        raise


def mechanism_cli_modules() -> list[ModuleType]:
    """The CLI module of every registered mechanism that has one (attest.cli imports them)."""
    return [importlib.import_module(m.cli) for m in MECHANISMS if m.cli is not None]
