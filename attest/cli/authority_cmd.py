"""``attest authority``: the root of trust's offline tasks.

Creates the authority key and its public trust-anchor file, certifies manufacturers and verifier
nodes (each gets a ready-made folder, see :mod:`attest.cli.files`) and issues numbered, signed
revocation lists. Secret keys only ever go to 0600 files; nothing here prints one.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from attest.cli import argtypes, files
from attest.durable import atomic_write
from attest.errors import AttestError, CertificateError, ChipRefusal, ConfigError, DecodeError
from attest.identity import YEAR_S, Authority
from attest.keys import PublicKey, SigningKey, write_secret_key
from attest.messages.attestation import POD_ID_BYTES
from attest.messages.schema import UEID
from attest.verify.chain import TrustAnchors, verify_verifier_cert

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

    # -- Fixed Set
    p = sub.add_parser(
        "certify-pod",
        help="certify a pod: the chips that may link at full bandwidth (Fixed Set)",
        description=(
            "Sign a pod certificate listing each member chip's UEID and device key (read from "
            "its state folder, chain checked against this authority) and the pod's size class. "
            "A chip installs it only if it is listed and the size class is within its model's "
            "limit. Give the file to verifier nodes; revoke it with `attest authority revoke "
            "--pod ID`."
        ),
    )
    _authority_dir(p)
    p.add_argument(
        "--members",
        required=True,
        nargs="+",
        metavar="CHIPDIR",
        help="chip state folders (or folders of chip-* folders) of the members",
    )
    p.add_argument("--out", required=True, type=Path, help="pod certificate file to write")
    p.add_argument(
        "--size-class",
        type=argtypes.positive_int,
        help="most chips the pod may link (default: the members' smallest model limit)",
    )
    p.add_argument(
        "--install",
        action="store_true",
        help="also install the certificate into the members (at the trusted facility)",
    )
    p.set_defaults(func=cmd_certify_pod)
    # -- end Fixed Set

    # -- Offline Licensing
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
    _authority_dir(p)
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


def _authority_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dir", required=True, type=Path, help="authority folder (from `attest authority init`)"
    )


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


def _certified_folder(
    authority: Authority,
    out: Path,
    key_file: str,
    cert_file: str,
    force: bool,
    certify: Callable[[PublicKey], bytes],
) -> tuple[SigningKey, Path]:
    """Create ``out`` with a new secret key (0600), its certificate and the trust anchors."""
    _make_dir(out)
    key_path = out / key_file
    files.refuse_overwrite(key_path, force)
    key = SigningKey.generate()
    cert = certify(key.public_key)
    write_secret_key(key_path, key)
    atomic_write(out / cert_file, cert)
    files.write_anchors(out / files.ANCHORS_FILE, authority.anchors)
    return key, key_path


def cmd_certify_manufacturer(args: argparse.Namespace) -> int:
    authority = files.load_authority(args.dir)
    out: Path = args.out
    now = int(time.time())
    key, key_path = _certified_folder(
        authority,
        out,
        files.MANUFACTURER_KEY_FILE,
        files.MANUFACTURER_CERT_FILE,
        args.force,
        lambda pk: authority.certify_manufacturer(
            args.manufacturer_id, pk, now_s=now, validity_s=args.validity_days * DAY_S
        ),
    )
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
    now = int(time.time())
    key, key_path = _certified_folder(
        authority,
        out,
        files.VERIFIER_KEY_FILE,
        files.VERIFIER_CERT_FILE,
        args.force,
        lambda pk: authority.certify_verifier(
            args.verifier_id, args.region, pk, now_s=now, validity_s=args.validity_days * DAY_S
        ),
    )
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
    _make_dir(args.out.parent)
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


# -- Offline Licensing -----------------------------------------------------------------------
DELEGATIONS_FILE = "delegations.json"
DELEGATIONS_FORMAT = "attest-delegations-v1"


def cmd_delegate(args: argparse.Namespace) -> int:
    from attest.licensing.authority import delegate
    from attest.messages.license import Budgets

    authority = files.load_authority(args.dir)
    cert_path = args.verifier_cert or args.verifier / files.VERIFIER_CERT_FILE
    token = files._read_bytes(cert_path, "verifier certificate")
    cert = verify_verifier_cert(token, authority.anchors)
    if cert is None:
        raise CertificateError(f"{cert_path}: not a verifier certificate of this authority")
    out: Path | None = args.out or (args.verifier / "delegation.cose" if args.verifier else None)
    if out is None:
        raise ConfigError("--out is required with --verifier-cert")
    path = args.dir / DELEGATIONS_FILE
    doc = (
        files._read_json(path, "delegation register")
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
    _make_dir(out.parent)
    atomic_write(out, delegation)
    print(f"delegation #{doc['number']} for {cert.verifier_id!r} in region {args.region}")
    print(f"  quota:     {args.quota_flops} FLOPs")
    print(f"  valid for: {args.validity_days} days")
    print(f"  written:   {out}")
    return 0


# -- Fixed Set -------------------------------------------------------------------------------
def _pod_id(text: str) -> str:
    """A pod id on the command line: 32 hex digits (16 bytes)."""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ConfigError(f"--pod {text!r}: not hex") from None
    if len(raw) != POD_ID_BYTES:
        raise ConfigError(f"--pod {text!r}: a pod id is {POD_ID_BYTES} bytes")
    return raw.hex()


def cmd_certify_pod(args: argparse.Namespace) -> int:
    from attest.chip.device import Chip
    from attest.messages.pod import PodCert
    from attest.verify.chain import verify_device_chain

    authority = files.load_authority(args.dir)
    chips: list[Chip] = []
    for folder in files.expand_chip_dirs(args.members):
        try:
            chip = Chip.load(folder)
        except AttestError as exc:
            raise ConfigError(str(exc)) from None
        if verify_device_chain(chip.chain, authority.anchors) is None:
            raise CertificateError(f"{folder}: chip certificates do not chain to this authority")
        chips.append(chip)
    if len({c.ueid for c in chips}) != len(chips):
        raise ConfigError("a chip is listed twice")
    size_class = args.size_class or min(c.model.max_pod_size for c in chips)
    if len(chips) > size_class:
        raise ConfigError(f"{len(chips)} members exceed the size class {size_class}")
    now = int(time.time())
    token = authority.certify_pod(
        [(c.ueid, c.public_key) for c in chips], size_class=size_class, now_s=now
    )
    _make_dir(args.out.parent)
    atomic_write(args.out, token)
    pod_id = PodCert.verify(token, authority.key.public_key).pod_id
    print(f"pod {pod_id.hex()} certified: {len(chips)} member(s), size class {size_class}")
    print(f"  written: {args.out}")
    if args.install:
        for chip in chips:
            try:
                chip.install_pod_cert(token, now_s=now)
            except ChipRefusal as exc:
                raise CertificateError(f"chip {chip.ueid.hex()} refused the pod: {exc}") from None
        print(f"  installed in {len(chips)} chip(s)")
    return 0
