"""``attest vectors``: write the published test vectors, or check an implementation against them.

``check`` rebuilds every input from the JSON alone (see attest.testvectors.check), so it is the
same procedure an implementer in another language follows; with ``--impl CMD`` it runs *their*
implementation instead, through the stdin/stdout JSON protocol of attest.testvectors.impl
(SPEC §16.11, vectors/README.md).

Exit status of ``check``: 0 every test passed (tests an implementation declares unsupported are
skipped, not failed), 1 some test failed (a missing vector file counts as a failure), 2 usage
error (no vector files in the folder, an empty --impl command).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from attest.cli.common import EXIT_CHECK_FAILED, EXIT_OK
from attest.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "vectors",
        help="generate or check the published test vectors",
        description=(
            "Test vectors in the style of Wycheproof, one file per family (vectors/README.md): "
            "evidence appraisal, deterministic CBOR, COSE_Sign1, the session protocol, the audit "
            "log, revocation lists, message schemas, Offline Licensing and Fixed Set."
        ),
    )
    sub = p.add_subparsers(dest="vectors_command", metavar="ACTION", required=True)

    gen = sub.add_parser(
        "generate",
        help="write the vector files (byte-identical on every run)",
        description="Write every vector file of this build into the output folder.",
    )
    gen.add_argument(
        "--out", type=Path, default=Path("vectors"), help="output folder (default: ./vectors)"
    )
    gen.set_defaults(func=run_generate)

    chk = sub.add_parser(
        "check",
        help="check this implementation (or another one, --impl) against vector files",
        description=(
            "Recompute every expected outcome and compare; print one line per file and a final "
            "'N passed, N failed' line. With --impl CMD, run CMD once per file: it reads "
            '{"protocol": "attest-vectors-impl/1", "file": NAME, "document": FILE} on stdin '
            'and writes {"results": [{"tcId": N, "outputs": {...}} | {"tcId": N, '
            '"unsupported": WHY}]} (or {"unsupported": WHY}) on stdout (vectors/README.md). '
            "Exit status 0 if no test failed, 1 if any failed (a missing vector file counts as "
            "a failure), 2 if the folder holds no vector files."
        ),
    )
    chk.add_argument(
        "--dir", type=Path, default=Path("vectors"), help="vector folder (default: ./vectors)"
    )
    chk.add_argument(
        "--impl",
        metavar="CMD",
        help="command line of another implementation's adapter (split like a shell would)",
    )
    chk.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="S",
        help="seconds the --impl command may take per file (default: 300)",
    )
    chk.add_argument(
        "--quiet", action="store_true", help="do not list failing tests, only the counts"
    )
    chk.set_defaults(func=run_check)


def run_generate(args: argparse.Namespace) -> int:
    from attest.testvectors.generate import generate  # builds the test world: import on use

    counts = generate(args.out)
    for name, n in counts.items():
        print(f"{args.out / name}: {n} tests")
    return EXIT_OK


def _counts(passed: int, failed: int, skipped: int) -> str:
    return f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else "")


def run_check(args: argparse.Namespace) -> int:
    from attest.testvectors.check import FILES, FileReport, check_file, vector_files

    directory: Path = args.dir
    found = vector_files(directory) if directory.is_dir() else []
    if not found:
        raise ConfigError(f"{directory}: no vector files here (expected {', '.join(FILES)})")
    command: list[str] | None = None
    if args.impl is not None:
        command = shlex.split(args.impl)
        if not command:
            raise ConfigError("--impl: empty command")
        if args.timeout <= 0:
            raise ConfigError("--timeout must be positive")
    present = {p.name for p in found}
    reports: list[tuple[Path, FileReport]] = []
    for path in found:
        if command is None:
            reports.append((path, check_file(path)))
        else:
            from attest.testvectors.impl import check_file_with

            reports.append((path, check_file_with(command, path, args.timeout)))
    for name in FILES:
        if name not in present:
            reports.append((directory / name, FileReport(name, 0, 1, (f"{name}: missing",))))
    for path, r in reports:
        print(f"{path}: {_counts(r.passed, r.failed, r.skipped)}")
        if not args.quiet:
            for line in r.failures:
                print(f"  FAIL {line}")
    failed = sum(r.failed for _, r in reports)
    print(_counts(sum(r.passed for _, r in reports), failed, sum(r.skipped for _, r in reports)))
    return EXIT_CHECK_FAILED if failed else EXIT_OK
