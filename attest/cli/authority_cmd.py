"""``attest authority``: the root of trust's offline tasks.

Creates the authority key and its public trust-anchor file, certifies manufacturers and verifier
nodes (each gets a ready-made folder, see :mod:`attest.cli.files`) and issues numbered, signed
revocation lists. Secret keys only ever go to 0600 files; nothing here prints one.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from attest.cli import files
from attest.durable import atomic_write
from attest.errors import ConfigError, DecodeError
from attest.identity import YEAR_S
from attest.keys import SigningKey, write_secret_key
from attest.messages.schema import UEID
from attest.verify.chain import TrustAnchors

DAY_S = 24 * 3600
#: items per category a revocation list may hold (attest.messages.revocation decoding limit)
MAX_LIST_ITEMS = 4096


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "authority",
        help="create the authority, certify manufacturers and verifiers, revoke",
        description="Tasks of the governance authority (run them on an offline machine).",
    )
    sub = parser.add_subparsers(dest="authority_command", metavar="ACTION", required=True)

    p = sub.add_parser("init", help="create the authority key and its trust-anchor file")
    p.add_argument("--dir", required=True, type=Path, help="authority folder to create")
    p.add_argument(
        "--id", required=True, dest="authority_id", type=_name, help="authority identifier"
    )
    p.add_argument("--force", action="store_true", help="replace an existing authority key")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser(
        "certify-manufacturer", help="create a manufacturer folder with a certified key"
    )
    _authority_dir(p)
    p.add_argument(
        "--id", required=True, dest="manufacturer_id", type=_name, help="manufacturer identifier"
    )
    p.add_argument("--out", required=True, type=Path, help="manufacturer folder to create")
    p.add_argument(
        "--validity-days",
        type=_positive_int,
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
        "--id", required=True, dest="verifier_id", type=_name, help="verifier node identifier"
    )
    p.add_argument(
        "--region", required=True, type=_name, help="jurisdiction the node serves (e.g. MY-KL)"
    )
    p.add_argument("--out", required=True, type=Path, help="verifier folder to create")
    p.add_argument(
        "--validity-days",
        type=_positive_int,
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
        "--out",
        required=True,
        type=Path,
        help=f"where to write the signed list (a copy goes to DIR/{files.REVOCATION_TOKEN_FILE})",
    )
    p.set_defaults(func=cmd_revoke)


def _authority_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dir", required=True, type=Path, help="authority folder (from `attest authority init`)"
    )


def _name(text: str) -> str:
    """Identifiers end up in signed certificates: no empty or padded ones."""
    if not text or text != text.strip():
        raise argparse.ArgumentTypeError("must be non-empty, without surrounding spaces")
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create folder: {exc.strerror}") from None


def cmd_init(args: argparse.Namespace) -> int:
    folder: Path = args.dir
    _make_dir(folder)
    key_path = folder / files.AUTHORITY_KEY_FILE
    files.refuse_overwrite(key_path, args.force)
    key = SigningKey.generate()
    write_secret_key(key_path, key)
    anchors_path = folder / files.ANCHORS_FILE
    files.write_anchors(anchors_path, TrustAnchors(args.authority_id, key.public_key))
    print(f"authority {args.authority_id!r} created")
    print(f"  secret key:   {key_path} (mode 0600, keep offline)")
    print(f"  trust anchor: {anchors_path} (public; give to manufacturers and verifiers)")
    print(f"  public key:   {key.public_key.raw.hex()}")
    return 0


def cmd_certify_manufacturer(args: argparse.Namespace) -> int:
    authority = files.load_authority(args.dir)
    out: Path = args.out
    _make_dir(out)
    key_path = out / files.MANUFACTURER_KEY_FILE
    files.refuse_overwrite(key_path, args.force)
    now = int(time.time())
    key = SigningKey.generate()
    cert = authority.certify_manufacturer(
        args.manufacturer_id, key.public_key, now_s=now, validity_s=args.validity_days * DAY_S
    )
    write_secret_key(key_path, key)
    atomic_write(out / files.MANUFACTURER_CERT_FILE, cert)
    files.write_anchors(out / files.ANCHORS_FILE, authority.anchors)
    files.write_json(out / files.MANUFACTURER_INFO_FILE, {"manufacturer_id": args.manufacturer_id})
    print(f"manufacturer {args.manufacturer_id!r} certified by {authority.authority_id!r}")
    print(f"  folder:     {out}")
    print(f"  secret key: {key_path} (mode 0600)")
    print(f"  public key: {key.public_key.raw.hex()}")
    print(f"  valid for:  {args.validity_days} days")
    return 0


def cmd_certify_verifier(args: argparse.Namespace) -> int:
    authority = files.load_authority(args.dir)
    out: Path = args.out
    _make_dir(out)
    key_path = out / files.VERIFIER_KEY_FILE
    files.refuse_overwrite(key_path, args.force)
    now = int(time.time())
    key = SigningKey.generate()
    cert = authority.certify_verifier(
        args.verifier_id,
        args.region,
        key.public_key,
        now_s=now,
        validity_s=args.validity_days * DAY_S,
    )
    write_secret_key(key_path, key)
    atomic_write(out / files.VERIFIER_CERT_FILE, cert)
    files.write_anchors(out / files.ANCHORS_FILE, authority.anchors)
    config_path = out / files.VERIFIER_CONFIG_FILE
    if not config_path.exists() or args.force:
        atomic_write(config_path, files.verifier_toml().encode())
    print(f"verifier {args.verifier_id!r} (region {args.region}) certified")
    print(f"  folder:     {out}")
    print(f"  secret key: {key_path} (mode 0600)")
    print(f"  public key: {key.public_key.raw.hex()}")
    print(f"  config:     {config_path}")
    print(f"  start it:   attest verifier serve --config {config_path}")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    if not (args.device or args.manufacturer or args.verifier):
        raise ConfigError("nothing to revoke: give --device, --manufacturer or --verifier")
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
    token = authority.revocation_list(
        state["number"],
        now_s=int(time.time()),
        devices=[bytes.fromhex(d) for d in state["devices"]],
        manufacturers=state["manufacturers"],
        verifiers=state["verifiers"],
    )
    # The number is persisted first: a crash afterwards skips a number, never reuses one.
    files.write_json(args.dir / files.REVOCATION_STATE_FILE, state)
    atomic_write(args.dir / files.REVOCATION_TOKEN_FILE, token)
    _make_dir(args.out.parent)
    if args.out.resolve() != (args.dir / files.REVOCATION_TOKEN_FILE).resolve():
        atomic_write(args.out, token)
    print(f"revocation list #{state['number']} written to {args.out}")
    print(
        f"  revoked: {len(state['devices'])} device(s), "
        f"{len(state['manufacturers'])} manufacturer(s), {len(state['verifiers'])} verifier(s)"
    )
    return 0
