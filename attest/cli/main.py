"""The ``attest`` command: a thin layer over the library; nothing imports it.

Each core subcommand lives in its own module exposing ``add_parser(subparsers)``, which returns
its group of actions (or None); each registered mechanism's CLI module
(``Mechanism.cli``, e.g. attest/licensing/cli.py) then adds its own commands to those groups
with ``add_commands(groups)``. Exit codes are in :mod:`attest.cli.common`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import Any

from attest import __version__
from attest.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_RUNTIME,
    EXIT_USAGE,
    LOG_LEVELS,
    mechanism_cli_modules,
)
from attest.errors import AttestError, ConfigError

_SUBCOMMANDS = (
    "attest.cli.demo_cmd",
    "attest.cli.vectors_cmd",
    "attest.cli.authority_cmd",
    "attest.cli.manufacturer_cmd",
    "attest.cli.verifier_cmd",
    "attest.cli.chip_cmd",
    "attest.cli.audit_cmd",
    "attest.cli.result_cmd",
    "attest.cli.bench_cmd",
    "attest.cli.completion_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attest",
        description="Attestation protocol for hardware-enabled governance of AI chips.",
    )
    parser.add_argument("--version", action="version", version=f"attest {__version__}")
    parser.add_argument(
        "--log-level",
        default=None,
        choices=LOG_LEVELS,
        help="logging threshold for messages on stderr (default: WARNING; for `verifier "
        "serve` the configuration's [log] level, which this overrides)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups: dict[str, Any] = {"": subparsers}
    for name in _SUBCOMMANDS:
        module = importlib.import_module(name)
        group = module.add_parser(subparsers)
        if group is not None:
            groups[name.rsplit(".", 1)[1].removesuffix("_cmd")] = group
    for module in mechanism_cli_modules():
        module.add_commands(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every failure becomes one line on stderr and an exit code.

    Ctrl-C anywhere (also inside trio, where it arrives wrapped in exception groups) exits 130
    with one line; an error raised in a nursery is reported like one raised outside it.
    """
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        logging.basicConfig(
            level=getattr(logging, args.log_level or "WARNING"),
            format="%(asctime)s %(levelname)s %(name)s %(message)s",
            stream=sys.stderr,
        )
        return int(args.func(args) or 0)
    except BaseException as raised:
        exc = _unwrap(raised)
        if isinstance(exc, KeyboardInterrupt):
            print("attest: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        if isinstance(exc, ConfigError):
            print(f"attest: configuration error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(exc, AttestError):
            print(f"attest: error: {exc}", file=sys.stderr)
            return EXIT_RUNTIME
        raise


def _unwrap(exc: BaseException) -> BaseException:
    """The one exception an exception group stands for (KeyboardInterrupt if it holds one)."""
    while isinstance(exc, BaseExceptionGroup):
        if exc.subgroup(KeyboardInterrupt) is not None:
            return KeyboardInterrupt()
        if len(exc.exceptions) != 1:
            return exc
        exc = exc.exceptions[0]
    return exc


if __name__ == "__main__":
    sys.exit(main())
