"""``attest audit``: check and read a verifier's audit log offline.

The store is opened read-only, so an auditor can run this against a live node's file (SQLite WAL
lets readers proceed while the node writes), a copy, or one node's chain in a PostgreSQL
database that several nodes share (``--db postgresql://... --verifier-id ID``). Checkpoint
signatures are only meaningful with the verifier's public key, taken from its certificate;
given the authority's trust anchors too, the certificate itself is checked first. ``verify``
also compares the store with the checkpoint the node published beside it
(attest/store/published.py), which reveals committed entries the store lost (a write-ahead log
deleted after a crash, a database restored from an older backup).

Exit status of ``verify``: 0 verified (chain, signed checkpoints, published checkpoint); 1 a
problem was found; 4 no problem found but signatures were not checked (no --verifier-cert), so
only the chain's internal consistency is known: a log rewritten from scratch would pass.
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
from attest.cli.common import EXIT_CHECK_FAILED, EXIT_INCOMPLETE, EXIT_OK
from attest.errors import ConfigError
from attest.store import open_store, published, verify_audit
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
            "Recompute the audit hash chain, check every signed checkpoint and compare the "
            "store with the checkpoint the node published beside it (DB.checkpoint), which "
            "reveals lost commits (e.g. a write-ahead log deleted after a crash). Without "
            "--verifier-cert no signature is checked: edits in the middle are found, a fully "
            "re-hashed log is not. Exit status: 0 verified, 1 a problem was found, 4 no "
            "problem found but signatures not checked (no --verifier-cert)."
        ),
    )
    _db_arg(p)
    p.add_argument(
        "--checkpoint-file",
        type=Path,
        metavar="FILE",
        help="the published checkpoint to compare with (default: DB.checkpoint, if present)",
    )
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
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object per entry, with every field of the hash rule (SPEC §11.1)",
    )
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
    if args.checkpoint_file is not None:
        file: Path | None = args.checkpoint_file
        token = published.read_token(args.checkpoint_file)
        if token is None:
            raise ConfigError(f"{args.checkpoint_file}: no such checkpoint file")
    elif is_url(args.db):
        file, token = None, None  # a database has no file beside it: give --checkpoint-file
    else:
        file = published.checkpoint_file_for(args.db)
        token = published.read_token(file)
    with _open(args, cert_id) as store:
        if cert_id is not None and store.verifier_id != cert_id:
            problems.append(
                f"store belongs to verifier {store.verifier_id!r} but the certificate is "
                f"for {cert_id!r}"
            )
        report = verify_audit(store, public_key, token)
    problems.extend(report.problems)
    consistent = report.ok and not problems
    checked = public_key is not None
    ok = consistent and checked
    if args.json:
        doc = {
            "ok": ok,
            "chain_consistent": consistent,
            "signatures_checked": checked,
            "entries": report.entries,
            "head_hash": report.head_hash.hex(),
            "checkpoints_verified": report.checkpoints_verified,
            "checkpoints_checked": checked,
            "checkpoint_file": str(file) if token is not None else None,
            "published_seq": report.published_seq,
            "published_verified": report.published_verified,
            "problems": problems,
        }
        print(json.dumps(doc, indent=2))
    else:
        print(f"entries:              {report.entries}")
        print(f"head hash:            {report.head_hash.hex()}")
        if checked:
            print(f"checkpoints verified: {report.checkpoints_verified}")
        else:
            print("checkpoints verified: NOT CHECKED (no --verifier-cert)")
        if token is None:
            print(f"published checkpoint: none at {file} (lost commits cannot be detected)")
        elif report.published_seq is not None:
            how = "signature verified" if report.published_verified else "signature NOT checked"
            print(f"published checkpoint: seq {report.published_seq} ({how}) from {file}")
        for problem in problems:
            print(f"PROBLEM: {problem}")
        if not consistent:
            print(f"audit log FAILED ({len(problems)} problem(s))")
        elif not checked:
            print(
                "audit chain internally consistent; signatures NOT checked (give "
                "--verifier-cert): a log rewritten from scratch would pass this check"
            )
        else:
            print("audit log OK (chain, signed checkpoints and published checkpoint verified)")
    if not consistent:
        return EXIT_CHECK_FAILED
    return EXIT_OK if checked else EXIT_INCOMPLETE


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
                    {  # every field of the hash rule (SPEC §11.1), plus readable names
                        "seq": rec.seq,
                        "time_ms": e.time_ms,
                        "verifier_id": e.verifier_id,
                        "ueid": e.ueid.hex(),
                        "tier_code": e.tier,
                        "tier": argtypes.tier_name(e.tier),
                        "reason_codes": list(e.reasons),
                        "reasons": [reason_name(r) for r in e.reasons],
                        "evidence_digest": e.evidence_digest.hex(),
                        "nonce": e.nonce.hex(),
                        "kind": e.kind,
                        "prev_hash": rec.prev_hash.hex(),
                        "hash": rec.hash.hex(),
                    }
                )
            )
        return EXIT_OK
    table = Table(title=f"audit log of {verifier_id} ({count} entries)", title_justify="left")
    for column in ("seq", "time (UTC)", "kind", "ueid", "tier", "reasons"):
        table.add_column(column, no_wrap=column != "reasons")
    for rec in records:
        e = rec.entry
        table.add_row(
            str(rec.seq),
            time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.time_ms / 1000)),
            e.kind,
            e.ueid.hex()[:_UEID_PREFIX] if e.ueid else "-",
            argtypes.tier_name(e.tier),
            ", ".join(reason_name(r) for r in e.reasons) or "-",
        )
    # A pipe gets a fixed width so scripts see whole rows; a terminal uses its own.
    Console(width=None if sys.stdout.isatty() else 120).print(table)
    return EXIT_OK
