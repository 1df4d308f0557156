"""Location verification's commands: ``attest location show`` and ``attest location verify``.

The operator face of the package (only attest.cli imports it). ``show`` lists the newest
record of each chip at each landmark from a node's database (or a shared location database);
``verify`` checks one record's signature and prints its bound. Exit codes: 0 ok, 1 a record
did not verify, 2 usage or configuration error, 3 runtime error.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from attest import files
from attest.cli.common import EXIT_CHECK_FAILED, EXIT_OK, read_file
from attest.durable import atomic_write
from attest.errors import AttestError, ConfigError
from attest.location.appraisal import disk_of, fibre_estimate_m
from attest.location.geometry import Place
from attest.location.messages import LocationRecord, record_digest
from attest.location.tables import LocationTables
from attest.messages.certs import VerifierCert
from attest.store.sqlite_db import SqliteDatabase
from attest.verify.chain import verify_verifier_cert


def add_commands(groups: dict[str, Any]) -> None:
    """Add the ``location`` group to the CLI (attest.cli.main calls this)."""
    p = groups[""].add_parser(
        "location",
        help="location records: list them, check one (location verification)",
        description=(
            "Landmarks (verifier nodes with [location] enabled) time chips' signed answers and "
            "sign location records: the chip was within the record's bound of the landmark."
        ),
    )
    sub = p.add_subparsers(dest="location_command", metavar="ACTION", required=True)

    show = sub.add_parser(
        "show",
        help="the newest record of each chip at each landmark",
        description=(
            "Read a node's database (or a shared [location] database) and list, per chip, the "
            "newest record of each landmark: samples, least round trip, allowance, the "
            "straight-line bound, the surface radius it implies and a fibre estimate (~200 "
            "km/ms, shown only, never used to accuse). Signatures are checked against each "
            "landmark's certificate (and that against --anchors, if given)."
        ),
    )
    show.add_argument("--db", required=True, type=Path, help="SQLite database file")
    show.add_argument("--ueid", help="only this chip (hex)")
    show.add_argument("--anchors", type=Path, help="trust anchors to check landmark certificates")
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    show.add_argument(
        "--export", type=Path, metavar="DIR", help="also write each record and landmark cert here"
    )
    show.set_defaults(func=cmd_show)

    ver = sub.add_parser(
        "verify",
        help="check a location record's signature and print its bound",
        description=(
            "Verify a LocationRecord token (COSE_Sign1) under its landmark's certificate "
            "(--cert, or the one stored beside it in --db) and print what it proves. Exit "
            "status 1 if it does not verify."
        ),
    )
    ver.add_argument("file", type=Path, metavar="FILE", help="the record (COSE_Sign1 bytes)")
    ver.add_argument("--cert", type=Path, help="the landmark's verifier certificate")
    ver.add_argument("--db", type=Path, help="database holding the record and its certificate")
    ver.add_argument("--anchors", type=Path, help="trust anchors to check the certificate")
    ver.set_defaults(func=cmd_verify)


def _open(path: Path) -> LocationTables:
    if not path.is_file():
        raise ConfigError(f"{path}: no such database")
    tables = LocationTables(SqliteDatabase(path, readonly=True))
    try:
        tables.open_sessions(0)
    except AttestError:
        raise ConfigError(f"{path}: holds no location tables") from None
    return tables


def _check(token: bytes, cert_token: bytes, anchors: Any) -> tuple[LocationRecord | None, str]:
    """(record, '') if the record verifies under the certificate, else (None, why)."""
    if anchors is not None:
        vcert = verify_verifier_cert(cert_token, anchors)
        if vcert is None:
            return None, "the landmark certificate does not chain to the trust anchors"
    else:
        try:
            vcert = VerifierCert.from_payload(_payload(cert_token))
        except AttestError as exc:
            return None, f"the landmark certificate is malformed: {exc}"
    try:
        record = LocationRecord.verify(token, vcert.public_key)
    except AttestError as exc:
        return None, f"the record does not verify: {exc}"
    if record.landmark_id != vcert.verifier_id:
        return None, f"signed by {vcert.verifier_id!r}, names landmark {record.landmark_id!r}"
    if not record.consistent:
        return None, "its bound is not (rtt_min - allowance) x c / 2"
    return record, ""


def _payload(token: bytes) -> bytes:
    from attest.codec.cose import parse_sign1

    return parse_sign1(token).payload


def _summary(record: LocationRecord, digest: bytes) -> dict[str, Any]:
    disk = disk_of(record)
    return {
        "record": digest.hex(),
        "ueid": record.ueid.hex(),
        "landmark": record.landmark_id,
        "landmark_position": str(Place.of_microdegrees(record.position)),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.issued_at)),
        "samples": record.samples,
        "rtt_min_us": round(record.rtt_min_ns / 1000, 3),
        "allowance_us": round(record.allowance_ns / 1000, 3),
        "bound_km": round(record.bound_m / 1000, 3),
        "surface_radius_km": None if disk is None else round(disk.radius_m / 1000, 3),
        "fibre_estimate_km": round(fibre_estimate_m(record) / 1000, 3),
    }


def cmd_show(args: argparse.Namespace) -> int:
    tables = _open(args.db)
    anchors = files.read_anchors(args.anchors) if args.anchors else None
    only = bytes.fromhex(args.ueid) if args.ueid else None
    latest: dict[tuple[bytes, str], tuple[int, bytes, bytes, bytes]] = {}
    for digest, ueid, landmark, time_ms, token, cert in tables.all_records():
        if only is not None and ueid != only:
            continue
        key = (ueid, landmark)
        if key not in latest or (time_ms, digest) > latest[key][:2]:
            latest[key] = (time_ms, digest, token, cert)
    rows, bad = [], 0
    for (ueid, landmark), (_, digest, token, cert) in sorted(latest.items()):
        record, why = _check(token, cert, anchors)
        if record is None:
            bad += 1
            rows.append(
                {"record": digest.hex(), "ueid": ueid.hex(), "landmark": landmark, "error": why}
            )
            continue
        rows.append(_summary(record, digest))
        if args.export:
            args.export.mkdir(parents=True, exist_ok=True)
            atomic_write(args.export / f"{ueid.hex()[:16]}-{landmark}.cose", token)
            atomic_write(args.export / f"{landmark}.cert", cert)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        if not rows:
            print("no location records")
        for r in rows:
            if "error" in r:
                print(f"{r['ueid'][:16]}  {r['landmark']:<16} INVALID: {r['error']}")
                continue
            print(
                f"{r['ueid'][:16]}  {r['landmark']:<16} {r['time']}  {r['samples']:>4} pings  "
                f"rtt {r['rtt_min_us']:>10.1f} us  bound {r['bound_km']:>9.1f} km  "
                f"(surface {r['surface_radius_km']} km, fibre ~{r['fibre_estimate_km']:.1f} km)"
            )
    return EXIT_CHECK_FAILED if bad else EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    token = read_file(args.file, "location record")
    digest = record_digest(token)
    if args.cert is not None:
        cert = read_file(args.cert, "landmark certificate")
    elif args.db is not None:
        stored = [r for r in _open(args.db).all_records() if r[0] == digest]
        if not stored:
            raise ConfigError(f"{args.db}: does not hold this record ({digest.hex()[:16]})")
        cert = stored[0][5]
    else:
        raise ConfigError("give the landmark's certificate (--cert) or the database (--db)")
    anchors = files.read_anchors(args.anchors) if args.anchors else None
    record, why = _check(token, cert, anchors)
    if record is None:
        print(f"{args.file}: INVALID: {why}")
        return EXIT_CHECK_FAILED
    s = _summary(record, digest)
    chained = "certificate checked against the anchors" if anchors else "anchors not checked"
    print(f"{args.file}: valid location record ({chained})")
    print(f"  chip      {s['ueid']}")
    print(f"  landmark  {s['landmark']} at {s['landmark_position']}, {s['time']}")
    print(
        f"  measured  {s['samples']} pings, least round trip {s['rtt_min_us']} us, "
        f"allowance {s['allowance_us']} us"
    )
    print(
        f"  bound     the chip was within {s['bound_km']} km of the landmark (straight line; "
        f"{s['surface_radius_km']} km along the surface)"
    )
    print(f"  estimate  ~{s['fibre_estimate_km']} km over fibre (shown only, never to accuse)")
    return EXIT_OK
