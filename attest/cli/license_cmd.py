"""``attest license``: offline license issuance, inspection, and a node's license ledger.

``issue`` is the authority's offline act: a license file carried to the chip by hand (apply it
with ``attest chip apply-license``). The authority keeps every license it issues in
``AUTHORITY_DIR/licenses.json`` so serials never repeat for a chip. ``record`` copies such
licenses into a verifier node's ledger (so its appraisals know them), ``cap`` sets a region's
cap in a node's store, and ``status`` shows a node's delegation quota and region totals.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from attest.cli import argtypes, files
from attest.cli.main import EXIT_OK, EXIT_RUNTIME
from attest.codec.cbor import decode
from attest.codec.cose import ContentType, parse_sign1
from attest.durable import atomic_write
from attest.errors import AttestError, CertificateError, ConfigError, DecodeError
from attest.identity import VerifierIdentity
from attest.licensing.authority import sign_license
from attest.licensing.issuer import LicenseIssuer, LicensingPolicy
from attest.messages.license import Budgets, Delegation, License
from attest.messages.revocation import Revocations
from attest.messages.schema import UEID
from attest.node.config import LicensingSection, NodeConfig, parse_version, qualifying_tiers
from attest.store.base import LedgerRecord
from attest.store.sqlite import SqliteStore
from attest.verify.chain import TrustAnchors
from attest.verify.reasons import Tier

LICENSES_FILE = "licenses.json"
LICENSES_FORMAT = "attest-authority-licenses-v1"
#: format of `attest chip license-request` output
REQUEST_FORMAT = "attest-license-request-v1"
DEFAULT_VALIDITY_S = 30 * 24 * 3600


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "license",
        help="issue and inspect Offline Licensing licenses; a node's license ledger",
        description="Offline Licensing: licenses unlock a throttled chip for a budget.",
    )
    sub = parser.add_subparsers(dest="license_command", metavar="ACTION", required=True)

    p = sub.add_parser(
        "issue",
        help="the authority issues a license file for one chip (offline)",
        description=(
            "Sign a license with the authority key. The chip is named by --request (the JSON "
            "of `attest chip license-request`: UEID, current serial, chip time and a fresh "
            "nonce the license will answer) or by --ueid and --chip-time-s. The serial is "
            "above every serial the authority issued the chip and above the request's; it is "
            f"recorded in DIR/{LICENSES_FILE} before the file is written."
        ),
    )
    p.add_argument("--authority", required=True, type=Path, metavar="DIR", help="authority folder")
    p.add_argument("--request", type=Path, metavar="FILE", help="license request JSON from a chip")
    p.add_argument("--ueid", metavar="HEX", help="the chip's UEID (without --request)")
    p.add_argument(
        "--chip-time-s",
        type=argtypes.non_negative_int,
        help="the chip's operating time now, in seconds (without --request)",
    )
    p.add_argument("--flops", required=True, type=argtypes.positive_int, help="FLOP budget")
    p.add_argument(
        "--energy-mj", type=argtypes.non_negative_int, help="energy budget (mJ), optional"
    )
    p.add_argument(
        "--interconnect-bytes", type=argtypes.non_negative_int, help="interconnect budget, optional"
    )
    p.add_argument(
        "--valid-for-chip-s",
        type=argtypes.positive_int,
        default=DEFAULT_VALIDITY_S,
        metavar="S",
        help=f"lifetime in chip seconds from the chip time (default {DEFAULT_VALIDITY_S})",
    )
    p.add_argument(
        "--serial", type=argtypes.positive_int, help="explicit serial (must be new and higher)"
    )
    p.add_argument("--min-firmware", default="1.1.0", help="lowest firmware (default 1.1.0)")
    p.add_argument(
        "--no-nonce", action="store_true", help="do not bind the license to the request's nonce"
    )
    p.add_argument("--out", required=True, type=Path, help="license file to write (raw COSE)")
    p.set_defaults(func=cmd_issue)

    p = sub.add_parser(
        "inspect",
        help="show a license or delegation file (and check it with --anchors)",
        description=(
            "Decode a license or delegation token and print its claims. With --anchors the "
            "signature is checked: a license against the authority key, or with --delegation "
            "against the delegated verifier's key (the delegation itself against the authority)."
        ),
    )
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("--anchors", type=Path, metavar="FILE", help="authority anchors.json")
    p.add_argument("--delegation", type=Path, metavar="FILE", help="delegation of a license")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser(
        "record",
        help="record authority-issued licenses in a node's ledger",
        description=(
            "Verify licenses issued by the authority and append them to the node's license "
            "ledger, so appraisals know their serials and budgets (no quota is charged)."
        ),
    )
    _config_arg(p)
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.set_defaults(func=cmd_record)

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

    p = sub.add_parser("status", help="a node's delegation quota, region totals and ledger size")
    _config_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, type=Path, help="node configuration file (TOML)")


# -- node integration (used by `attest verifier serve`) ------------------------------------------
def policy_from(section: LicensingSection) -> LicensingPolicy:
    """The renewal policy of a node's ``[licensing]`` section."""
    return LicensingPolicy(
        budgets=Budgets(
            section.budget_flops,
            section.budget_energy_mj or None,
            section.budget_interconnect_bytes or None,
        ),
        validity_s=section.validity_s,
        qualifying_tiers=frozenset(
            Tier[n.upper()] for n in qualifying_tiers(section.qualifying_tiers)
        ),
        renew_below=section.renew_below,
        min_firmware=parse_version(section.min_firmware),
    )


def build_issuer(
    config: NodeConfig,
    anchors: TrustAnchors,
    identity: VerifierIdentity,
    store: SqliteStore,
    revocations: Revocations,
) -> LicenseIssuer | None:
    """The node's license issuer if ``[licensing] enabled``; its delegation checked and stored.

    A delegation the authority's revocation list names is marked revoked in the store (for
    good): the node keeps attesting but issues nothing more under it.
    """
    if not config.licensing.enabled:
        return None
    path = config.path(config.licensing.delegation_file)
    try:
        token = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the delegation: {exc.strerror}") from None
    issuer = LicenseIssuer(
        identity=identity,
        anchors=anchors,
        delegation_token=token,
        store=store,
        policy=policy_from(config.licensing),
    )
    if issuer.delegation.delegation_id in revocations.delegations:
        store.revoke_delegation(issuer.delegation.delegation_id)
    return issuer


# -- issue ---------------------------------------------------------------------------------------
def _read_ledger(folder: Path) -> dict[str, Any]:
    path = folder / LICENSES_FILE
    if not path.exists():
        return {"format": LICENSES_FORMAT, "issued": []}
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != LICENSES_FORMAT:
        raise ConfigError(f"{path}: not an {LICENSES_FORMAT} file")
    return doc


def _ueid(text: str) -> bytes:
    try:
        return UEID.parse(bytes.fromhex(text))
    except (ValueError, DecodeError) as exc:
        raise ConfigError(f"UEID {text!r}: {exc}") from None


def cmd_issue(args: argparse.Namespace) -> int:
    authority = files.load_authority(args.authority)
    nonce = None
    above = 0
    if args.request is not None:
        try:
            req = json.loads(args.request.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{args.request}: cannot read: {exc}") from None
        if not isinstance(req, dict) or req.get("format") != REQUEST_FORMAT:
            raise ConfigError(f"{args.request}: not an {REQUEST_FORMAT} file")
        ueid, chip_time, above = _ueid(req["ueid"]), int(req["chipTimeS"]), int(req["serial"])
        nonce = None if args.no_nonce else bytes.fromhex(req["nonce"])
    elif args.ueid is not None and args.chip_time_s is not None:
        ueid, chip_time = _ueid(args.ueid), args.chip_time_s
    else:
        raise ConfigError("name the chip: --request FILE, or --ueid and --chip-time-s")
    ledger = _read_ledger(args.authority)
    issued = [e["serial"] for e in ledger["issued"] if e["ueid"] == ueid.hex()]
    floor = max([above, *issued])
    serial = args.serial if args.serial is not None else floor + 1
    if serial <= floor:
        raise ConfigError(f"--serial {serial} is not above {floor} (issued or reported)")
    try:
        min_fw = parse_version(args.min_firmware)
    except ValueError as exc:
        raise ConfigError(f"--min-firmware: {exc}") from None
    budgets = Budgets(args.flops, args.energy_mj, args.interconnect_bytes)
    now = int(time.time())
    expiry = chip_time + args.valid_for_chip_s
    token = sign_license(
        authority.key,
        issuer=authority.authority_id,
        ueid=ueid,
        serial=serial,
        budgets=budgets,
        expiry_s=expiry,
        now_s=now,
        min_firmware=min_fw,
        nonce=nonce,
    )
    # The serial is recorded first: a crash afterwards skips a serial, never reuses one.
    ledger["issued"].append(
        {"ueid": ueid.hex(), "serial": serial, "flops": args.flops, "expiryS": expiry, "iat": now}
    )
    files.write_json(args.authority / LICENSES_FILE, ledger)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, token)
    print(f"license serial {serial} for {ueid.hex()} written to {args.out}")
    print(f"  budget: {args.flops} FLOPs; expires at chip time {expiry} s")
    if nonce is not None:
        print(f"  bound to the chip's request nonce {nonce.hex()[:16]}…")
    return EXIT_OK


# -- inspect -------------------------------------------------------------------------------------
def _budgets_json(b: Budgets) -> dict[str, int]:
    out = {"flops": b.flops}
    if b.energy_mj is not None:
        out["energyMj"] = b.energy_mj
    if b.interconnect_bytes is not None:
        out["interconnectBytes"] = b.interconnect_bytes
    return out


def describe(token: bytes) -> dict[str, Any]:
    """The claims of a license or delegation token, JSON-ready (signature not checked)."""
    try:
        msg = parse_sign1(token)
        if msg.content_type == ContentType.LICENSE:
            lic = License.from_claims(decode(msg.payload))
            return {
                "type": "license",
                "issuer": lic.issuer,
                "issuedAt": lic.issued_at,
                "ueid": lic.ueid.hex(),
                "serial": lic.serial,
                "budgets": _budgets_json(lic.budgets),
                "expiryChipS": lic.expiry_s,
                "minFirmware": ".".join(map(str, lic.min_firmware)),
                "nonce": None if lic.nonce is None else lic.nonce.hex(),
                "delegationId": lic.delegation_id,
            }
        if msg.content_type == ContentType.DELEGATION:
            d = Delegation.from_claims(decode(msg.payload))
            return {
                "type": "delegation",
                "issuer": d.issuer,
                "verifierId": d.verifier_id,
                "region": d.region,
                "delegationId": d.delegation_id,
                "quota": _budgets_json(d.quota),
                "issuedAt": d.issued_at,
                "expiresAt": d.expires_at,
                "verifierKey": d.public_key.raw.hex(),
            }
    except AttestError as exc:
        raise ConfigError(f"not a license or delegation: {exc}") from None
    raise ConfigError(f"not a license or delegation (content type {msg.content_type!r})")


def _check(token: bytes, anchors: TrustAnchors, delegation: bytes | None) -> str:
    try:
        if delegation is not None:
            d = Delegation.verify(delegation, anchors.authority_key)
            if d.issuer != anchors.authority_id:
                return "invalid: delegation not issued by the authority"
            lic = License.verify(token, d.public_key)
            ok = lic.issuer == d.verifier_id and lic.delegation_id == d.delegation_id
            return "valid (delegated)" if ok else "invalid: issuer does not match the delegation"
        msg = parse_sign1(token)
        cls = Delegation if msg.content_type == ContentType.DELEGATION else License
        parsed = cls.verify(token, anchors.authority_key)
        if parsed.issuer != anchors.authority_id:
            return "invalid: not issued by the authority"
        if isinstance(parsed, License) and parsed.delegation_id is not None:
            return "invalid: a delegated license needs --delegation"
        return "valid"
    except AttestError as exc:
        return f"invalid: {exc}"


def cmd_inspect(args: argparse.Namespace) -> int:
    token = files._read_bytes(args.file, "license or delegation")
    info = describe(token)
    if args.anchors is not None:
        anchors = files.read_anchors(args.anchors)
        delegation = (
            None if args.delegation is None else files._read_bytes(args.delegation, "delegation")
        )
        info["signature"] = _check(token, anchors, delegation)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:>14}: {value}")
    return EXIT_OK if not info.get("signature", "valid").startswith("invalid") else EXIT_RUNTIME


# -- node store commands -------------------------------------------------------------------------
def _open_node(config_path: Path) -> tuple[TrustAnchors, VerifierIdentity, SqliteStore]:
    from attest.cli.verifier_cmd import load_node_identity, open_store
    from attest.node.config import load_config

    config = load_config(config_path)
    anchors, identity = load_node_identity(config)
    return anchors, identity, open_store(config, identity)


def cmd_record(args: argparse.Namespace) -> int:
    anchors, _, store = _open_node(args.config)
    failed = 0
    with store:
        for path in args.files:
            token = files._read_bytes(path, "license")
            try:
                lic = License.verify(token, anchors.authority_key)
                if lic.issuer != anchors.authority_id or lic.delegation_id is not None:
                    raise CertificateError("not issued by the authority itself")
                new = store.record_license(
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
            except AttestError as exc:
                failed += 1
                print(f"{path}: NOT recorded: {exc}", file=sys.stderr)
                continue
            state = "recorded" if new else "already recorded"
            print(f"{lic.ueid.hex()} serial {lic.serial} {state}")
    return EXIT_RUNTIME if failed else EXIT_OK


def cmd_cap(args: argparse.Namespace) -> int:
    if args.lift == (args.flops is not None):
        raise ConfigError("give either --flops (with optional other meters) or --lift")
    _, _, store = _open_node(args.config)
    cap = None if args.lift else Budgets(args.flops, args.energy_mj, args.interconnect_bytes)
    with store:
        store.set_region_cap(args.region, cap)
        status = store.region_status(args.region)
    print(f"region {args.region}: cap {status.cap}, issued {status.issued}")
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from attest.node.config import load_config

    config = load_config(args.config)
    _, _, store = _open_node(args.config)
    out: dict[str, Any] = {}
    with store:
        path = config.path(config.licensing.delegation_file)
        if path.exists():
            d = describe(path.read_bytes())
            status = store.delegation_status(d["delegationId"])
            out["delegation"] = {
                **d,
                "issued": None if status is None else list(status.issued),
                "revoked": None if status is None else status.revoked,
            }
            region = store.region_status(d["region"])
            out["region"] = {
                "region": region.region,
                "cap": list(region.cap),
                "issued": list(region.issued),
                "licenses": region.licenses,
            }
        out["ledgerEntries"] = len(store.license_records())
    print(json.dumps(out, indent=None if args.json else 2))
    return EXIT_OK
