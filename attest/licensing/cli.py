"""Offline Licensing's commands: ``attest license ...`` and its actions in the other groups.

``license issue`` is the authority's offline act: a license file carried to the chip by hand
(apply it with ``attest chip apply-license``). The authority keeps every license it issues in
``AUTHORITY_DIR/licenses.json`` so serials never repeat for a chip. ``license record`` copies
such licenses into a verifier node's ledger (so its appraisals know them), ``license cap`` sets
a region's cap in a node's store, and ``license status`` shows a node's delegation quota and
region totals. ``authority delegate`` lets a node issue licenses; ``chip apply-license``,
``chip license-request`` and ``chip license-status`` work on one chip's state folder; ``chip
fabricate`` gets ``--throttle-baseline`` and ``--no-licensing``.

This is the operator face of the package: the one module of it that uses the node and the chip
(only attest.cli imports it; see the layer contracts in pyproject.toml).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from attest import files
from attest.cli import argtypes
from attest.cli.common import (
    EXIT_CHECK_FAILED,
    EXIT_OK,
    EXIT_RUNTIME,
    load_locked_chip,
    read_file,
)
from attest.codec.cose import parse_sign1
from attest.durable import atomic_write
from attest.errors import AttestError, CertificateError, ChipRefusal, ConfigError, DecodeError
from attest.licensing.authority import delegate, sign_license
from attest.licensing.chip import ChipLicensing, LicensingChip
from attest.licensing.ledger_cli import add_ledger_commands, describe
from attest.licensing.messages import (
    DELEGATION_CONTENT_TYPE,
    Budgets,
    Delegation,
    License,
    LicenseGrant,
)
from attest.messages.schema import UEID
from attest.node.provision import make_dir
from attest.verify.chain import TrustAnchors, verify_verifier_cert
from attest.verify.policy import parse_version

DAY_S = 24 * 3600
DELEGATIONS_FILE = "delegations.json"
DELEGATIONS_FORMAT = "attest-delegations-v1"
#: test hook: seconds `apply-license` sleeps between the durable high-water update and adding
#: the budget, announcing "accepted" on stdout first (the crash test kills the process there)
PAUSE_AFTER_ACCEPT_ENV = "ATTEST_TEST_PAUSE_AFTER_ACCEPT_S"

LICENSES_FILE = "licenses.json"
LICENSES_FORMAT = "attest-authority-licenses-v1"
#: format of `attest chip license-request` output
REQUEST_FORMAT = "attest-license-request-v1"
DEFAULT_VALIDITY_S = 30 * 24 * 3600


def add_commands(groups: dict[str, Any]) -> None:
    """Add the licensing commands to the CLI's groups (attest.cli.main calls this)."""
    _add_license_group(groups[""])
    _add_authority_actions(groups["authority"])
    _add_chip_actions(groups["chip"])


def _add_license_group(subparsers: Any) -> None:
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

    add_ledger_commands(sub)


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, type=Path, help="node configuration file (TOML)")


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
        ueid: bytes = UEID.parse(bytes.fromhex(text))
        return ueid
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
        cls = Delegation if msg.content_type == DELEGATION_CONTENT_TYPE else License
        parsed = cls.verify(token, anchors.authority_key)
        if parsed.issuer != anchors.authority_id:
            return "invalid: not issued by the authority"
        if isinstance(parsed, License) and parsed.delegation_id is not None:
            return "invalid: a delegated license needs --delegation"
        return "valid"
    except AttestError as exc:
        return f"invalid: {exc}"


def cmd_inspect(args: argparse.Namespace) -> int:
    token = files.read_bytes(args.file, "license or delegation")
    info = describe(token)
    if args.anchors is not None:
        anchors = files.read_anchors(args.anchors)
        delegation = (
            None if args.delegation is None else files.read_bytes(args.delegation, "delegation")
        )
        info["signature"] = _check(token, anchors, delegation)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:>14}: {value}")
    return EXIT_OK if not info.get("signature", "valid").startswith("invalid") else EXIT_RUNTIME


# -- authority delegate ----------------------------------------------------------------------
def _add_authority_actions(sub: Any) -> None:
    p = sub.add_parser(
        "delegate",
        help="let a verifier node issue licenses in a region, up to a quota",
        description=(
            "Sign a delegation: the verifier (bound to the key in its certificate) may issue "
            "licenses to chips in REGION until the FLOPs (and optional energy/interconnect) "
            "quota is used up. Delegations are numbered (DIR/"
            f"{DELEGATIONS_FILE}); `attest authority revoke --delegation N` revokes one. Put the "
            "file in [licensing] delegation_file of the node and set enabled = true."
        ),
    )
    p.add_argument(
        "--dir", required=True, type=Path, help="authority folder (from `attest authority init`)"
    )
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--verifier",
        type=Path,
        metavar="VDIR",
        help="verifier folder (writes VDIR/delegation.cose)",
    )
    target.add_argument("--verifier-cert", type=Path, metavar="FILE", help="verifier certificate")
    p.add_argument(
        "--region", required=True, type=argtypes.identifier, help="region the quota is for"
    )
    p.add_argument(
        "--quota-flops", required=True, type=argtypes.positive_int, metavar="N", help="FLOP quota"
    )
    p.add_argument(
        "--quota-energy-mj", type=argtypes.positive_int, metavar="N", help="energy quota (mJ)"
    )
    p.add_argument(
        "--quota-interconnect-bytes",
        type=argtypes.positive_int,
        metavar="N",
        help="interconnect quota",
    )
    p.add_argument(
        "--validity-days",
        type=argtypes.positive_int,
        default=90,
        help="lifetime in days (default 90)",
    )
    p.add_argument("--out", type=Path, help="delegation file (default VDIR/delegation.cose)")
    p.set_defaults(func=cmd_delegate)


def cmd_delegate(args: argparse.Namespace) -> int:
    authority = files.load_authority(args.dir)
    cert_path = args.verifier_cert or args.verifier / files.VERIFIER_CERT_FILE
    token = files.read_bytes(cert_path, "verifier certificate")
    cert = verify_verifier_cert(token, authority.anchors)
    if cert is None:
        raise CertificateError(f"{cert_path}: not a verifier certificate of this authority")
    out: Path | None = args.out or (args.verifier / "delegation.cose" if args.verifier else None)
    if out is None:
        raise ConfigError("--out is required with --verifier-cert")
    path = args.dir / DELEGATIONS_FILE
    doc: dict[str, Any] = (
        files.read_json(path, "delegation register")
        if path.exists()
        else {"format": DELEGATIONS_FORMAT, "number": 0, "issued": []}
    )
    if doc.get("format") != DELEGATIONS_FORMAT or type(doc.get("number")) is not int:
        raise ConfigError(f"{path}: not an {DELEGATIONS_FORMAT} file")
    doc["number"] += 1
    quota = Budgets(args.quota_flops, args.quota_energy_mj, args.quota_interconnect_bytes)
    now = int(time.time())
    delegation = delegate(
        authority,
        delegation_id=doc["number"],
        verifier_id=cert.verifier_id,
        public_key=cert.public_key,
        region=args.region,
        quota=quota,
        now_s=now,
        validity_s=args.validity_days * DAY_S,
    )
    doc["issued"].append(
        {
            "id": doc["number"],
            "verifier": cert.verifier_id,
            "region": args.region,
            "quotaFlops": args.quota_flops,
            "iat": now,
        }
    )
    # The number is persisted first: a crash afterwards skips a number, never reuses one.
    files.write_json(path, doc)
    make_dir(out.parent)
    atomic_write(out, delegation)
    print(f"delegation #{doc['number']} for {cert.verifier_id!r} in region {args.region}")
    print(f"  quota:     {args.quota_flops} FLOPs")
    print(f"  valid for: {args.validity_days} days")
    print(f"  written:   {out}")
    return 0


# -- chip actions ----------------------------------------------------------------------------
def add_fabricate_options(p: argparse.ArgumentParser) -> None:
    """``chip fabricate`` options of the licensing part (attest.cli.chip_cmd calls this)."""
    p.add_argument(
        "--throttle-baseline",
        type=argtypes.share,
        default=0.01,
        metavar="F",
        help="share of peak an unlicensed chip may run at, 0..1 (default: 0.01)",
    )
    p.add_argument(
        "--no-licensing",
        action="store_true",
        help="make a chip without the licensing mechanism (never throttled, reports no license)",
    )


def fabricate_parts(args: argparse.Namespace) -> dict[str, Any]:
    """The licensing part a fabricated chip starts with (none with ``--no-licensing``)."""
    if args.no_licensing:
        return {}
    return {"licensing": ChipLicensing(baseline_ppm=round(args.throttle_baseline * 1_000_000))}


def _add_chip_actions(sub: Any) -> None:
    p = sub.add_parser(
        "apply-license",
        help="hand a license file to a chip (offline); it checks and applies it",
        description=(
            "The chip checks the license (signature chain to its authority key, its own UEID, a "
            "serial above its high-water mark, chip-time expiry, firmware, nonce, delegation "
            "quota and revocation) and adds the budget. The high-water mark is durable before "
            "the budget is added, so a crash can never apply a license twice. Exit status 0 if "
            "applied, 1 if refused (the reason is printed)."
        ),
    )
    p.add_argument("--state", required=True, type=Path, metavar="DIR", help="chip state folder")
    p.add_argument("file", type=Path, metavar="FILE", help="license file (raw COSE)")
    p.add_argument("--delegation", type=Path, metavar="FILE", help="delegation, if delegated")
    p.set_defaults(func=cmd_apply_license)

    p = sub.add_parser(
        "license-request",
        help="print a license request (UEID, serial, chip time, a fresh nonce) as JSON",
        description=(
            "Draw a fresh nonce (kept durably by the chip) and print what the authority needs "
            "to issue the next license offline: `attest license issue --request FILE`."
        ),
    )
    p.add_argument("--state", required=True, type=Path, metavar="DIR", help="chip state folder")
    p.add_argument("--out", type=Path, help="write the JSON here instead of standard output")
    p.set_defaults(func=cmd_license_request)

    p = sub.add_parser(
        "license-status", help="show a chip's license state (serial, budget left, throttle)"
    )
    p.add_argument("--state", required=True, type=Path, metavar="DIR", help="chip state folder")
    p.set_defaults(func=cmd_license_status)


def cmd_apply_license(args: argparse.Namespace) -> int:
    grant = LicenseGrant(
        read_file(args.file, "license"),
        None if args.delegation is None else read_file(args.delegation, "delegation"),
    )
    pause = float(os.environ.get(PAUSE_AFTER_ACCEPT_ENV, "0") or 0)
    chip, fd = load_locked_chip(args.state)
    try:
        try:
            part = chip.part(LicensingChip)
        except ChipRefusal as exc:
            print(f"{chip.ueid.hex()} REFUSED {exc}")
            return EXIT_CHECK_FAILED

        def announce() -> None:
            print(f"accepted serial {part.state.serial}; applying", flush=True)
            if pause > 0:
                time.sleep(pause)

        try:
            lic = part.apply_license(grant, time.time(), after_accept=announce)
        except ChipRefusal as exc:
            print(f"{chip.ueid.hex()} REFUSED {exc}")
            return EXIT_CHECK_FAILED
        state = part.license_state()
        print(
            f"{chip.ueid.hex()} applied serial {lic.serial}: {state.remaining_flops} FLOPs left, "
            f"expires at chip time {lic.expiry_s} s"
        )
    finally:
        os.close(fd)
    return EXIT_OK


def cmd_license_request(args: argparse.Namespace) -> int:
    chip, fd = load_locked_chip(args.state)
    try:
        part = chip.part(LicensingChip)
        nonce = part.license_request()
        state = part.license_state()
        doc = {
            "format": REQUEST_FORMAT,
            "ueid": chip.ueid.hex(),
            "hwmodel": chip.hwmodel,
            "firmware": ".".join(map(str, chip.firmware_version)),
            "serial": state.serial,
            "chipTimeS": state.chip_time_s,
            "nonce": nonce.hex(),
        }
    finally:
        os.close(fd)
    text = json.dumps(doc, indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        files.write_json(args.out, doc)
        print(f"license request written to {args.out}")
    return EXIT_OK


def cmd_license_status(args: argparse.Namespace) -> int:
    chip, fd = load_locked_chip(args.state)
    os.close(fd)
    if not chip.has(LicensingChip):
        print(f"{chip.ueid.hex()} has no licensing mechanism")
        return EXIT_OK
    part = chip.part(LicensingChip)
    lic = part.state
    t = chip.chip_time_s
    print(f"ueid:        {chip.ueid.hex()}")
    print(f"chip time:   {t} s")
    print(f"serial:      {lic.serial}")
    print(f"remaining:   {lic.remaining_flops(t)} FLOPs (expires at chip time {lic.expiry_s} s)")
    print(
        f"throttled:   {'yes' if part.throttled else 'no'} (baseline {lic.baseline_ppm / 1e4:g} %)"
    )
    print(f"revocations: list #{lic.revocations_number}")
    return EXIT_OK
