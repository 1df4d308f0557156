"""The ``attest`` command: a thin layer over the library.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``; the module sets
``func`` on its parser. Exit codes: 0 success, 1 a check failed (e.g. a vector or an audit chain
did not verify, or the demo missed an attack), 2 usage or configuration error, 3 runtime error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from attest import __version__
from attest.errors import AttestError, ConfigError

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_RUNTIME = 3

_SUBCOMMANDS = (
    "attest.cli.demo_cmd",
    "attest.cli.vectors_cmd",
    "attest.cli.authority_cmd",
    "attest.cli.verifier_cmd",
    "attest.cli.chip_cmd",
    "attest.cli.audit_cmd",
    "attest.cli.license_cmd",
    "attest.cli.bench_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attest",
        description="Attestation protocol for hardware-enabled governance of AI chips.",
    )
    parser.add_argument("--version", action="version", version=f"attest {__version__}")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging threshold for messages on stderr (default: WARNING)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _SUBCOMMANDS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # subcommand not built yet
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"attest: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AttestError as exc:
        print(f"attest: error: {exc}", file=sys.stderr)
        return EXIT_RUNTIME
    except KeyboardInterrupt:
        print("attest: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
