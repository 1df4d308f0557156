"""``attest vectors``: write the published test vectors, or re-verify a directory of them.

``check`` rebuilds every input from the JSON alone (see attest.testvectors.check), so it is the
same procedure an implementer in another language follows with their own code.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from attest.cli.common import EXIT_CHECK_FAILED, EXIT_OK


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "vectors",
        help="generate or check the published test vectors",
        description=(
            "Test vectors in the style of Wycheproof: evidence appraisal (every reason code), "
            "strict deterministic-CBOR decoding and COSE_Sign1 verification."
        ),
    )
    sub = p.add_subparsers(dest="vectors_command", metavar="ACTION", required=True)

    gen = sub.add_parser(
        "generate",
        help="write the vector files (byte-identical on every run)",
        description="Write evidence_appraisal.json, cbor_decoding.json and cose_sign1.json.",
    )
    gen.add_argument(
        "--out", type=Path, default=Path("vectors"), help="output folder (default: ./vectors)"
    )
    gen.set_defaults(func=run_generate)

    chk = sub.add_parser(
        "check",
        help="re-verify vector files from their JSON alone",
        description=(
            "Recompute every expected outcome with this implementation and compare. Exit status "
            "1 if any test fails (a missing file counts as a failure)."
        ),
    )
    chk.add_argument(
        "--dir", type=Path, default=Path("vectors"), help="vector folder (default: ./vectors)"
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


def run_check(args: argparse.Namespace) -> int:
    from attest.testvectors.check import check_dir

    reports = check_dir(args.dir)
    passed = sum(r.passed for r in reports)
    failed = sum(r.failed for r in reports)
    for r in reports:
        print(f"{args.dir / r.name}: {r.passed} passed, {r.failed} failed")
        if not args.quiet:
            for line in r.failures:
                print(f"  FAIL {line}")
    print(f"{passed} passed, {failed} failed")
    return EXIT_CHECK_FAILED if failed else EXIT_OK
