"""Offline Licensing's commands on a node's store: ``attest license record|import|cap|status``.

A node's appraisals check the licence serial a chip reports against the node's ledger, so a
licence the authority issued offline must be in the ledger before the chip carrying it is
attested: ``record`` takes licence files one by one, ``import`` a whole folder of them (as the
authority hands them over), verifying each first and skipping those already recorded.

Part of the package's operator face (attest.licensing.cli): only attest.cli loads it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from attest import files
from attest.cli import argtypes
from attest.cli.common import EXIT_CHECK_FAILED, EXIT_OK
from attest.codec.cbor import decode
from attest.codec.cose import parse_sign1
from attest.errors import AttestError, CertificateError, ConfigError
from attest.licensing.ledger import LedgerRecord, LicenseLedger, QuotaStatus, RegionStatus
from attest.licensing.messages import (
    DELEGATION_CONTENT_TYPE,
    LICENSE_CONTENT_TYPE,
    Budgets,
    Delegation,
    License,
)
from attest.node.app import load_identity, open_store
from attest.node.config import load_config
from attest.store.base import Store
from attest.verify.chain import TrustAnchors

#: the meters in the order of Budgets.as_tuple, as the JSON of these commands names them
METERS = ("flops", "energyMj", "interconnectBytes")


def add_ledger_commands(sub: Any) -> None:
    """Add record, import, cap and status to the ``attest license`` group."""
    p = sub.add_parser(
        "record",
        help="record authority-issued licenses in a node's ledger",
        description=(
            "Verify licenses issued by the authority and append them to the node's license "
            "ledger, so appraisals know their serials and budgets (no quota is charged). "
            "Exit status 0 if every file was recorded (or already was), 1 if one was refused."
        ),
    )
    _config_arg(p)
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser(
        "import",
        help="record every authority-issued license in a folder (before enabling licensing)",
        description=(
            "Record in the node's ledger every license file found in DIR (and its subfolders): "
            "each is verified against the authority's key first; files that are not licenses "
            "are skipped, licenses already recorded are left alone, so importing a folder "
            "again is harmless. Do this before enabling [licensing] on a node whose chips "
            "hold licenses the authority issued offline: their serials are otherwise unknown "
            "to the ledger and their attestations contraindicated (LICENSE_SERIAL_UNKNOWN). "
            "Exit status 0 if every license was recorded, 1 if one was refused."
        ),
    )
    _config_arg(p)
    p.add_argument("dir", type=Path, metavar="DIR", help="folder of license files")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser(
        "cap",
        help="set (or lift) a region's cap in a node's store, on the authority's instruction",
    )
    _config_arg(p)
    p.add_argument("--region", required=True)
    p.add_argument(
        "--flops", type=argtypes.non_negative_int, help="cap on FLOPs issued in the region"
    )
    p.add_argument("--energy-mj", type=argtypes.non_negative_int)
    p.add_argument("--interconnect-bytes", type=argtypes.non_negative_int)
    p.add_argument("--lift", action="store_true", help="remove the cap")
    p.set_defaults(func=cmd_cap)

    p = sub.add_parser(
        "status",
        help="a node's delegation quota, region totals and ledger size",
        description=(
            "The delegation in the node's [licensing] delegation_file (its quota, how much of "
            "it is issued, its validity), its region's cap and totals over every delegation, "
            "and the number of ledger entries. Times are UTC (ISO 8601)."
        ),
    )
    _config_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_status)


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, type=Path, help="node configuration file (TOML)")


# -- describing tokens ---------------------------------------------------------------------
def budgets_json(b: Budgets) -> dict[str, int]:
    """The metered amounts of a budget or quota (unmetered meters left out)."""
    return {k: v for k, v in zip(METERS, b.as_tuple(), strict=True) if v is not None}


def describe(token: bytes) -> dict[str, Any]:
    """The claims of a license or delegation token, JSON-ready (signature not checked)."""
    try:
        msg = parse_sign1(token)
        if msg.content_type == LICENSE_CONTENT_TYPE:
            lic = License.from_claims(decode(msg.payload))
            return {
                "type": "license",
                "issuer": lic.issuer,
                "issuedAt": lic.issued_at,
                "ueid": lic.ueid.hex(),
                "serial": lic.serial,
                "budgets": budgets_json(lic.budgets),
                "expiryChipS": lic.expiry_s,
                "minFirmware": ".".join(map(str, lic.min_firmware)),
                "nonce": None if lic.nonce is None else lic.nonce.hex(),
                "delegationId": lic.delegation_id,
            }
        if msg.content_type == DELEGATION_CONTENT_TYPE:
            d = Delegation.from_claims(decode(msg.payload))
            return {
                "type": "delegation",
                "issuer": d.issuer,
                "verifierId": d.verifier_id,
                "region": d.region,
                "delegationId": d.delegation_id,
                "quota": budgets_json(d.quota),
                "issuedAt": d.issued_at,
                "expiresAt": d.expires_at,
                "verifierKey": d.public_key.raw.hex(),
            }
    except AttestError as exc:
        raise ConfigError(f"not a license or delegation: {exc}") from None
    raise ConfigError(f"not a license or delegation (content type {msg.content_type!r})")


def iso_time(epoch_s: int) -> str:
    """UTC, to the second: what a person compares with a clock."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


# -- record and import ---------------------------------------------------------------------
def _open_node(config_path: Path) -> tuple[TrustAnchors, Store, LicenseLedger]:
    config = load_config(config_path)
    anchors, identity = load_identity(config)
    store = open_store(config, identity)
    return anchors, store, LicenseLedger(store.db, audit=store)


def record_authority_license(ledger: LicenseLedger, anchors: TrustAnchors, token: bytes) -> bool:
    """Verify a license the authority itself issued, then record it; False if already recorded.

    Raises CertificateError for a license that does not verify (or was issued by a node under
    a delegation: that node recorded it itself), StoreError for a conflicting serial.
    """
    lic = License.verify(token, anchors.authority_key)
    if lic.issuer != anchors.authority_id or lic.delegation_id is not None:
        raise CertificateError("not issued by the authority itself")
    return ledger.record_license(
        LedgerRecord(
            ueid=lic.ueid,
            serial=lic.serial,
            issuer=lic.issuer,
            delegation_id=None,
            region=None,
            budgets=lic.budgets,
            expiry_s=lic.expiry_s,
            issued_at_ms=lic.issued_at * 1000,
            token=token,
        )
    )


def _record_each(
    ledger: LicenseLedger, anchors: TrustAnchors, tokens: list[tuple[Path, bytes]]
) -> Counter[str]:
    counts: Counter[str] = Counter()
    for path, token in tokens:
        try:
            new = record_authority_license(ledger, anchors, token)
        except AttestError as exc:
            counts["refused"] += 1
            print(f"{path}: NOT recorded: {exc}", file=sys.stderr)
            continue
        lic = describe(token)
        state = "recorded" if new else "already recorded"
        counts[state] += 1
        print(f"{lic['ueid']} serial {lic['serial']} {state}")
    return counts


def cmd_record(args: argparse.Namespace) -> int:
    tokens = [(path, files.read_bytes(path, "license")) for path in args.files]
    anchors, store, ledger = _open_node(args.config)
    with store:
        counts = _record_each(ledger, anchors, tokens)
    return EXIT_CHECK_FAILED if counts["refused"] else EXIT_OK


def _is_license(token: bytes) -> bool:
    try:
        return bool(parse_sign1(token).content_type == LICENSE_CONTENT_TYPE)
    except AttestError:
        return False


def cmd_import(args: argparse.Namespace) -> int:
    folder: Path = args.dir
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder (expected a folder of license files)")
    tokens: list[tuple[Path, bytes]] = []
    skipped = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        token = files.read_bytes(path, "license")
        if _is_license(token):
            tokens.append((path, token))
        else:
            skipped += 1
    anchors, store, ledger = _open_node(args.config)
    with store:
        counts = _record_each(ledger, anchors, tokens)
    print(
        f"imported {counts['recorded']} license(s) from {folder}; {counts['already recorded']} "
        f"already recorded, {counts['refused']} refused, {skipped} other file(s) skipped"
    )
    return EXIT_CHECK_FAILED if counts["refused"] else EXIT_OK


# -- cap and status ------------------------------------------------------------------------
def cmd_cap(args: argparse.Namespace) -> int:
    if args.lift == (args.flops is not None):
        raise ConfigError("give either --flops (with optional other meters) or --lift")
    _, store, ledger = _open_node(args.config)
    cap = None if args.lift else Budgets(args.flops, args.energy_mj, args.interconnect_bytes)
    with store:
        ledger.set_region_cap(args.region, cap)
        status = ledger.region_status(args.region)
    print(f"region {args.region}: {_amounts(_meters(status.cap), 'uncapped')}")
    print(f"  issued: {_amounts(_meters(status.issued), 'nothing')}")
    return EXIT_OK


def _meters(values: tuple[int | None, ...]) -> dict[str, int | None]:
    return dict(zip(METERS, values, strict=True))


def _amounts(meters: dict[str, int | None], none: str) -> str:
    shown = [f"{k} {v}" for k, v in meters.items() if v is not None]
    return ", ".join(shown) if shown else none


def status_json(
    delegation: dict[str, Any] | None,
    quota: QuotaStatus | None,
    region: RegionStatus | None,
    ledger_entries: int,
) -> dict[str, Any]:
    """`license status --json`: every amount labelled by its meter, every time in ISO 8601."""
    out: dict[str, Any] = {}
    if delegation is not None:
        out["delegation"] = {
            **delegation,
            "issuedAt": iso_time(delegation["issuedAt"]),
            "expiresAt": iso_time(delegation["expiresAt"]),
            "issued": None if quota is None else _meters(quota.issued),
            "revoked": None if quota is None else quota.revoked,
        }
    if region is not None:
        out["region"] = {
            "region": region.region,
            "cap": _meters(region.cap),
            "issued": _meters(region.issued),
            "licenses": region.licenses,
        }
    out["ledgerEntries"] = ledger_entries
    return out


def cmd_status(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    _, store, ledger = _open_node(args.config)
    delegation = quota = region = None
    with store:
        path = config.path(config.section("licensing").delegation_file)
        if path.exists():
            delegation = describe(files.read_bytes(path, "delegation"))
            quota = ledger.delegation_status(delegation["delegationId"])
            region = ledger.region_status(delegation["region"])
        out = status_json(delegation, quota, region, len(ledger.license_records()))
    if args.json:
        print(json.dumps(out))
        return EXIT_OK
    d = out.get("delegation")
    if d is None:
        print(f"delegation:     none ({path} does not exist)")
    else:
        print(
            f"delegation:     #{d['delegationId']} for {d['verifierId']} in region "
            f"{d['region']}, issued by {d['issuer']}"
        )
        print(f"  valid:        {d['issuedAt']} to {d['expiresAt']}")
        print(f"  quota:        {_amounts(d['quota'], 'none')}")
        issued = d["issued"]
        shown = "not in this store yet" if issued is None else _amounts(issued, "nothing")
        print(f"  issued:       {shown}")
        print(f"  revoked:      {'yes' if d['revoked'] else 'no'}")
    r = out.get("region")
    if r is not None:
        print(f"region {r['region']}:")
        print(f"  cap:          {_amounts(r['cap'], 'uncapped')}")
        print(f"  issued:       {_amounts(r['issued'], 'nothing')} ({r['licenses']} license(s))")
    print(f"ledger entries: {out['ledgerEntries']}")
    return EXIT_OK
