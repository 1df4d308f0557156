"""The Fixed Set's commands: ``authority certify-pod`` and ``verifier register-pod``.

This is the operator face of the package: the one module of it that uses the node and the chip
(only attest.cli imports it; see the layer contracts in pyproject.toml).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from attest import files
from attest.chip.device import Chip
from attest.cli import argtypes
from attest.cli.common import EXIT_OK, EXIT_RUNTIME
from attest.durable import atomic_write
from attest.errors import AttestError, CertificateError, ChipRefusal, ConfigError
from attest.node.app import load_identity, open_store, policy_from
from attest.node.config import load_config
from attest.node.provision import make_dir
from attest.pods.cert import certify_pod
from attest.pods.chip import PodsChip
from attest.pods.messages import PodCert
from attest.pods.verifier import PodsVerifier
from attest.verify.chain import verify_device_chain


def add_commands(groups: dict[str, Any]) -> None:
    """Add the Fixed Set commands to the CLI's groups (attest.cli.main calls this)."""
    p = groups["authority"].add_parser(
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
    p.add_argument(
        "--dir", required=True, type=Path, help="authority folder (from `attest authority init`)"
    )
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

    p = groups["verifier"].add_parser(
        "register-pod",
        help="register pod certificates for the link-graph appraisal (Fixed Set)",
        description=(
            "Verify pod certificates (from `attest authority certify-pod`) against the trust "
            "anchors and store them; the node appraises chips' reported links against them "
            "from its next start. A pod certified by a manufacturer needs --issuer-cert."
        ),
    )
    p.add_argument("--config", required=True, type=Path, help="node configuration file (TOML)")
    p.add_argument("pods", nargs="+", type=Path, metavar="POD_CERT", help="pod certificate files")
    p.add_argument(
        "--issuer-cert",
        type=Path,
        help="the issuing manufacturer's certificate (if not the authority)",
    )
    p.set_defaults(func=cmd_register_pod)


def cmd_certify_pod(args: argparse.Namespace) -> int:
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
    token = certify_pod(
        authority, [(c.ueid, c.public_key) for c in chips], size_class=size_class, now_s=now
    )
    make_dir(args.out.parent)
    atomic_write(args.out, token)
    pod_id = PodCert.verify(token, authority.key.public_key).pod_id
    print(f"pod {pod_id.hex()} certified: {len(chips)} member(s), size class {size_class}")
    print(f"  written: {args.out}")
    if args.install:
        for chip in chips:
            try:
                chip.part(PodsChip).install_pod_cert(token, now_s=now)
            except ChipRefusal as exc:
                raise CertificateError(f"chip {chip.ueid.hex()} refused the pod: {exc}") from None
        print(f"  installed in {len(chips)} chip(s)")
    return EXIT_OK


def cmd_register_pod(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    anchors, identity = load_identity(config)
    issuer = (
        b""
        if args.issuer_cert is None
        else files.read_bytes(args.issuer_cert, "issuer's certificate (--issuer-cert)")
    )
    tokens = [(path, files.read_bytes(path, "pod certificate")) for path in args.pods]
    failed = 0
    with open_store(config, identity) as store:
        registry = PodsVerifier(store.db, anchors, policy_from(config))
        for path, token in tokens:
            try:
                cred = registry.register(token, issuer, now_s=int(time.time()))
            except AttestError as exc:
                failed += 1
                hint = "" if issuer else " (issued by a manufacturer? give its --issuer-cert)"
                print(f"{path}: NOT registered: {exc}{hint}", file=sys.stderr)
                continue
            cert = cred.cert
            print(
                f"pod {cred.pod_id.hex()} ({len(cert.members)} members, size class "
                f"{cert.size_class}, issued by {cert.issuer}) registered"
            )
    return EXIT_RUNTIME if failed else EXIT_OK
