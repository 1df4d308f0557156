"""``attest authority``: the root of trust's offline tasks.

Creates the authority key and its public trust-anchor file, certifies manufacturers and verifier
nodes (each gets a ready-made folder, see :mod:`attest.files` and :mod:`attest.node.provision`)
and issues numbered, signed revocation lists. Mechanisms add their own authority acts
(``delegate``, ``certify-pod``). Secret keys only ever go to 0600 files; nothing here prints one.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from attest import files
from attest.cli import argtypes
from attest.durable import atomic_write
from attest.errors import ConfigError, DecodeError
from attest.identity import YEAR_S
from attest.messages.schema import UEID
from attest.node import provision
from attest.pods.messages import POD_ID_BYTES

DAY_S = 24 * 3600
#: items per category a revocation list may hold (attest.messages.revocation decoding limit)
MAX_LIST_ITEMS = 4096


def add_parser(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "authority",
        help="create the authority, certify manufacturers and verifiers, revoke",
        description="Tasks of the governance authority (run them on an offline machine).",
    )
    sub: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="authority_command", metavar="ACTION", required=True
    )

    p = sub.add_parser("init", help="create the authority key and its trust-anchor file")
    p.add_argument("--dir", required=True, type=Path, help="authority folder to create")
    p.add_argument(
        "--id",
        required=True,
        dest="authority_id",
        type=argtypes.identifier,
        help="authority identifier",
    )
    p.add_argument("--force", action="store_true", help="replace an existing authority key")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser(
        "certify-manufacturer", help="create a manufacturer folder with a certified key"
    )
    _authority_dir(p)
    p.add_argument(
        "--id",
        required=True,
        dest="manufacturer_id",
        type=argtypes.identifier,
        help="manufacturer identifier",
    )
    p.add_argument("--out", required=True, type=Path, help="manufacturer folder to create")
    p.add_argument(
        "--validity-days",
        type=argtypes.positive_int,
        default=10 * YEAR_S // DAY_S,
        help="certificate lifetime in days (default: 3650)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing manufacturer key")
    p.set_defaults(func=cmd_certify_manufacturer)

    p = sub.add_parser(
        "certify-verifier",
        help="create a verifier node folder: key, certificate, anchors, verifier.toml",
    )
    _authority_dir(p)
    p.add_argument(
        "--id",
        required=True,
        dest="verifier_id",
        type=argtypes.identifier,
        help="verifier node identifier",
    )
    p.add_argument(
        "--region",
        required=True,
        type=argtypes.identifier,
        help="jurisdiction the node serves (e.g. MY-KL)",
    )
    p.add_argument("--out", required=True, type=Path, help="verifier folder to create")
    p.add_argument(
        "--validity-days",
        type=argtypes.positive_int,
        default=YEAR_S // DAY_S,
        help="certificate lifetime in days (default: 365)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing verifier key")
    p.set_defaults(func=cmd_certify_verifier)

    p = sub.add_parser(
        "revoke",
        help="add revocations and issue the next signed revocation list",
        description=(
            "Add devices, manufacturers or verifiers to the authority's revocation state (kept "
            f"in DIR/{files.REVOCATION_STATE_FILE}) and issue the next complete, numbered, "
            "signed list. Put the output path in [node] revocations_file of each verifier."
        ),
    )
    _authority_dir(p)
    p.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="UEID_HEX",
        help="revoke a chip by its UEID (hex, as printed by `attest chip fabricate`); repeatable",
    )
    p.add_argument(
        "--manufacturer",
        action="append",
        default=[],
        metavar="ID",
        help="revoke a manufacturer (every chip it endorsed); repeatable",
    )
    p.add_argument(
        "--verifier", action="append", default=[], metavar="ID", help="revoke a verifier node"
    )
    p.add_argument(
        "--delegation",
        action="append",
        default=[],
        type=argtypes.positive_int,
        metavar="N",
        help="revoke a license delegation by its number (Offline Licensing); repeatable",
    )
    p.add_argument(
        "--pod",
        action="append",
        default=[],
        metavar="POD_ID_HEX",
        help="revoke a pod by its id (Fixed Set; as printed by certify-pod); repeatable",
    )
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        help=f"where to write the signed list (a copy goes to DIR/{files.REVOCATION_TOKEN_FILE})",
    )
    p.set_defaults(func=cmd_revoke)

    return sub


def _authority_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dir", required=True, type=Path, help="authority folder (from `attest authority init`)"
    )


def cmd_init(args: argparse.Namespace) -> int:
    folder: Path = args.dir
    authority = provision.create_authority(folder, args.authority_id, force=args.force)
    print(f"authority {args.authority_id!r} created")
    print(f"  secret key:   {folder / files.AUTHORITY_KEY_FILE} (mode 0600, keep offline)")
    print(
        f"  trust anchor: {folder / files.ANCHORS_FILE} "
        "(public; give to manufacturers and verifiers)"
    )
    print(f"  public key:   {authority.key.public_key.raw.hex()}")
    return 0


def cmd_certify_manufacturer(args: argparse.Namespace) -> int:
    authority = files.load_authority(args.dir)
    out: Path = args.out
    manufacturer = provision.certify_manufacturer_folder(
        authority,
        out,
        args.manufacturer_id,
        validity_s=args.validity_days * DAY_S,
        force=args.force,
    )
    print(f"manufacturer {args.manufacturer_id!r} certified by {authority.authority_id!r}")
    print(f"  folder:     {out}")
    print(f"  secret key: {out / files.MANUFACTURER_KEY_FILE} (mode 0600)")
    print(f"  public key: {manufacturer.key.public_key.raw.hex()}")
    print(f"  valid for:  {args.validity_days} days")
    return 0


def cmd_certify_verifier(args: argparse.Namespace) -> int:
    authority = files.load_authority(args.dir)
    out: Path = args.out
    key, config_path = provision.certify_verifier_folder(
        authority,
        out,
        args.verifier_id,
        args.region,
        validity_s=args.validity_days * DAY_S,
        force=args.force,
    )
    print(f"verifier {args.verifier_id!r} (region {args.region}) certified")
    print(f"  folder:     {out}")
    print(f"  secret key: {out / files.VERIFIER_KEY_FILE} (mode 0600)")
    print(f"  public key: {key.public_key.raw.hex()}")
    print(f"  config:     {config_path}")
    print(f"  start it:   attest verifier serve --config {config_path}")
    return 0


def _pod_id(text: str) -> str:
    """A pod id on the command line: 32 hex digits (16 bytes)."""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"--pod {text!r}: not hex") from None
    if len(raw) != POD_ID_BYTES:
        raise ConfigError(f"--pod {text!r}: a pod id is {POD_ID_BYTES} bytes")
    return raw.hex()


def cmd_revoke(args: argparse.Namespace) -> int:
    if not (args.device or args.manufacturer or args.verifier or args.delegation or args.pod):
        raise ConfigError(
            "nothing to revoke: give --device, --manufacturer, --verifier, --delegation or --pod"
        )
    pods = [_pod_id(text) for text in args.pod]  # Fixed Set
    devices: list[str] = []
    for text in args.device:
        try:
            devices.append(UEID.parse(bytes.fromhex(text)).hex())
        except ValueError:
            raise ConfigError(f"--device {text!r}: not hex") from None
        except DecodeError as exc:
            raise ConfigError(f"--device {text!r}: {exc}") from None
    authority = files.load_authority(args.dir)
    state = files.read_revocation_state(args.dir)
    state["number"] += 1
    for name, new in (
        ("devices", devices),
        ("manufacturers", args.manufacturer),
        ("verifiers", args.verifier),
    ):
        state[name] = sorted(set(state[name]) | set(new))
        if len(state[name]) > MAX_LIST_ITEMS:
            raise ConfigError(f"more than {MAX_LIST_ITEMS} revoked {name}: the list format's limit")
    state["delegations"] = sorted(set(state.get("delegations", [])) | set(args.delegation))
    if len(state["delegations"]) > MAX_LIST_ITEMS:
        raise ConfigError(f"more than {MAX_LIST_ITEMS} revoked delegations: the list's limit")
    state["pods"] = sorted(set(state.get("pods", [])) | set(pods))  # Fixed Set
    if len(state["pods"]) > MAX_LIST_ITEMS:
        raise ConfigError(f"more than {MAX_LIST_ITEMS} revoked pods: the list's limit")
    token = authority.revocation_list(
        state["number"],
        now_s=int(time.time()),
        devices=[bytes.fromhex(d) for d in state["devices"]],
        manufacturers=state["manufacturers"],
        verifiers=state["verifiers"],
        delegations=state["delegations"],
        pods=[bytes.fromhex(p) for p in state["pods"]],
    )
    # The number is persisted first: a crash afterwards skips a number, never reuses one.
    files.write_json(args.dir / files.REVOCATION_STATE_FILE, state)
    atomic_write(args.dir / files.REVOCATION_TOKEN_FILE, token)
    provision.make_dir(args.out.parent)
    if args.out.resolve() != (args.dir / files.REVOCATION_TOKEN_FILE).resolve():
        atomic_write(args.out, token)
    print(f"revocation list #{state['number']} written to {args.out}")
    print(
        f"  revoked: {len(state['devices'])} device(s), "
        f"{len(state['manufacturers'])} manufacturer(s), {len(state['verifiers'])} verifier(s)"
        + (f", {len(state['delegations'])} delegation(s)" if state["delegations"] else "")
        + (f", {len(state['pods'])} pod(s)" if state["pods"] else "")
    )
    return 0
