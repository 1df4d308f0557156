"""``attest audit``: check and read a verifier's audit log offline.

The store is opened read-only, so an auditor can run this against a live node's file (SQLite WAL
lets readers proceed while the node writes), a copy, or one node's chain in a PostgreSQL
database that several nodes share (``--db postgresql://... --verifier-id ID``). Checkpoint
signatures are only meaningful with the verifier's public key, taken from its certificate;
given the authority's trust anchors too, the certificate itself is checked first.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from attest import files
from attest.cli import argtypes
from attest.cli.common import EXIT_CHECK_FAILED, EXIT_OK
from attest.errors import ConfigError
from attest.store import open_store, verify_audit
from attest.store.base import Store
from attest.store.pg_db import is_url
from attest.store.sqlite import SqliteStore
from attest.verify.reasons import reason_name

_UEID_PREFIX = 12


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "audit",
        help="verify or show a verifier's audit log",
        description="Offline checks of a verifier node's tamper-evident audit log.",
    )
    sub: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="audit_command", metavar="ACTION", required=True
    )

    p = sub.add_parser(
        "verify",
        help="check the hash chain and signed checkpoints of an audit log",
        description=(
            "Recompute the audit hash chain and check every signed checkpoint. Without "
            "--verifier-cert only the chain is checked (edits in the middle are found, a cut-off "
            "tail or a fully re-hashed log is not). Exit status 0 if the log verifies, else 1."
        ),
    )
    _db_arg(p)
    p.add_argument(
        "--verifier-cert",
        type=Path,
        metavar="FILE",
        help="the verifier's certificate: its key checks the checkpoint signatures",
    )
    p.add_argument(
        "--anchors",
        type=Path,
        metavar="FILE",
        help="authority trust anchors (anchors.json): check --verifier-cert against them first",
    )
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("show", help="print audit entries as a table")
    _db_arg(p)
    p.add_argument(
        "--last",
        type=argtypes.positive_int,
        metavar="N",
        help="only the newest N entries (default: all)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object per entry")
    p.set_defaults(func=cmd_show)


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        required=True,
        metavar="PATH|URL",
        help="the verifier's SQLite store, or the postgresql:// URL of a database that nodes share",
    )
    p.add_argument(
        "--verifier-id",
        metavar="ID",
        help="with a postgresql:// URL: whose chain (default: the --verifier-cert's node)",
    )


def _require_db(db: str) -> None:
    if not is_url(db) and not Path(db).is_file():
        raise ConfigError(f"{db}: no such store")


def _open(args: argparse.Namespace, cert_id: str | None = None) -> Store:
    """The store read-only: an SQLite file, or one node's chain in a shared database."""
    if is_url(args.db):
        verifier_id = getattr(args, "verifier_id", None) or cert_id
        if verifier_id is None:
            raise ConfigError("a postgresql:// store holds many chains: give --verifier-id")
        return open_store(args.db, verifier_id=verifier_id, readonly=True)
    return SqliteStore(args.db, readonly=True)


def cmd_verify(args: argparse.Namespace) -> int:
    _require_db(args.db)
    if args.anchors is not None and args.verifier_cert is None:
        raise ConfigError("--anchors checks a verifier certificate: give --verifier-cert too")
    public_key = None
    cert_id = None
    if args.verifier_cert is not None:
        anchors = files.read_anchors(args.anchors) if args.anchors is not None else None
        cert_id, public_key = files.read_verifier_public_key(args.verifier_cert, anchors)
    problems: list[str] = []
    with _open(args, cert_id) as store:
        if cert_id is not None and store.verifier_id != cert_id:
            problems.append(
                f"store belongs to verifier {store.verifier_id!r} but the certificate is "
                f"for {cert_id!r}"
            )
        report = verify_audit(store, public_key)
    problems.extend(report.problems)
    ok = report.ok and not problems
    if args.json:
        doc = {
            "ok": ok,
            "entries": report.entries,
            "head_hash": report.head_hash.hex(),
            "checkpoints_verified": report.checkpoints_verified,
            "checkpoints_checked": public_key is not None,
            "problems": problems,
        }
        print(json.dumps(doc, indent=2))
    else:
        print(f"entries:              {report.entries}")
        print(f"head hash:            {report.head_hash.hex()}")
        if public_key is None:
            print("checkpoints verified: not checked (give --verifier-cert)")
        else:
            print(f"checkpoints verified: {report.checkpoints_verified}")
        for problem in problems:
            print(f"PROBLEM: {problem}")
        print("audit log OK" if ok else f"audit log FAILED ({len(problems)} problem(s))")
    return EXIT_OK if ok else EXIT_CHECK_FAILED


def cmd_show(args: argparse.Namespace) -> int:
    _require_db(args.db)
    with _open(args) as store:
        count, _ = store.audit_head()
        start = 1 if args.last is None else max(1, count - args.last + 1)
        records = list(store.audit_entries(start))
        verifier_id = store.verifier_id
    if args.json:
        for rec in records:
            e = rec.entry
            print(
                json.dumps(
                    {
                        "seq": rec.seq,
                        "time_ms": e.time_ms,
                        "ueid": e.ueid.hex(),
                        "tier": argtypes.tier_name(e.tier),
                        "reasons": [reason_name(r) for r in e.reasons],
                        "kind": e.kind,
                        "nonce": e.nonce.hex(),
                        "hash": rec.hash.hex(),
                    }
                )
            )
        return EXIT_OK
    table = Table(title=f"audit log of {verifier_id} ({count} entries)", title_justify="left")
    for column in ("seq", "time (UTC)", "ueid", "tier", "reasons"):
        table.add_column(column, no_wrap=column != "reasons")
    for rec in records:
        e = rec.entry
        table.add_row(
            str(rec.seq),
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.time_ms / 1000)),
            e.ueid.hex()[:_UEID_PREFIX] if e.ueid else "-",
            argtypes.tier_name(e.tier),
            ", ".join(reason_name(r) for r in e.reasons) or "-",
        )
    # A pipe gets a fixed width so scripts see whole rows; a terminal uses its own.
    Console(width=None if sys.stdout.isatty() else 120).print(table)
    return EXIT_OK
