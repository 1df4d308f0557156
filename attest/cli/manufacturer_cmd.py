"""``attest manufacturer``: a chip vendor's fab-line tools (the Endorser of RFC 9334).

A real fab line never sees a device secret: each chip makes its key inside and exports the
public half with its UEID (an endorsement request). ``endorse`` signs device certificates for
such public keys, one (``--device-key``) or a batch (``--batch``, JSON Lines), and writes
endorsements the chips install (``attest chip install-cert``). ``reference-values`` signs the
vendor's document of its chip models and firmware measurements, which verifier nodes load with
``attest verifier provision``. File formats: SPEC.md Appendix A.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from attest import files
from attest.cli import argtypes
from attest.cli.common import EXIT_OK, read_file
from attest.errors import AttestError, CertificateError, ConfigError
from attest.identity import EndorsementRequest, new_ueid
from attest.keys import parse_public_key
from attest.messages.certs import DeviceCert
from attest.verify.references import open_reference_values


def add_parser(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "manufacturer",
        help="endorse device keys made elsewhere; sign reference values",
        description="A chip vendor's fab-line tools (the manufacturer folder comes from "
        "`attest authority certify-manufacturer`).",
    )
    sub: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="manufacturer_command", metavar="ACTION", required=True
    )

    p = sub.add_parser(
        "endorse",
        help="sign device certificates for chips' public keys",
        description=(
            "Sign a device certificate for each chip public key and write endorsements (JSON "
            "Lines, format attest-endorsement-v1) for `attest chip install-cert`. Give one key "
            "with --device-key and --model, or a file of endorsement requests (JSON Lines, "
            "format attest-endorsement-request-v1, as `attest chip create` prints) with --batch. "
            "Prints one line per chip: UEID, model, pod class."
        ),
    )
    _manufacturer_dir(p)
    one = p.add_mutually_exclusive_group(required=True)
    one.add_argument(
        "--device-key",
        metavar="PUB",
        help="the chip's Ed25519 public key: a PEM or DER file (`openssl pkey -pubout`), or 64 "
        "hex digits",
    )
    one.add_argument(
        "--batch", type=Path, metavar="FILE", help="endorsement requests, one JSON per line"
    )
    p.add_argument("--model", help="chip model (hwmodel) of --device-key")
    p.add_argument(
        "--ueid",
        type=argtypes.ueid,
        help="the chip's UEID, hex (with --device-key; default: a new random one)",
    )
    p.add_argument(
        "--pod-class",
        type=argtypes.positive_int,
        help="largest pod the chip is certified for (default: the built-in model's maximum; "
        "required for other models)",
    )
    p.add_argument("--out", required=True, type=Path, help="endorsements file to write")
    p.set_defaults(func=cmd_endorse)

    p = sub.add_parser(
        "reference-values",
        help="sign the vendor's chip models and firmware reference values",
        description=(
            "Sign a reference-values document (COSE_Sign1, content type "
            "application/vnd.attest.reference-values+cbor) from a source JSON file (format "
            "attest-reference-values-source-v1: number, models with their peak rates and pod "
            "limit, firmware versions with measurement and status). Nodes load it with "
            "`attest verifier provision`; each new document needs a higher number."
        ),
    )
    _manufacturer_dir(p)
    p.add_argument("source", type=Path, metavar="SOURCE", help="reference-values source JSON")
    p.add_argument("--out", required=True, type=Path, help="signed document to write")
    p.set_defaults(func=cmd_reference_values)
    return sub


def _manufacturer_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--manufacturer",
        required=True,
        type=Path,
        metavar="MDIR",
        help="manufacturer folder (from `attest authority certify-manufacturer`)",
    )


def _key_argument(text: str) -> bytes:
    path = Path(text)
    return read_file(path, "device public key") if path.exists() else text.encode()


def cmd_endorse(args: argparse.Namespace) -> int:
    now = int(time.time())
    manufacturer, _ = files.load_manufacturer(args.manufacturer, now_s=now)
    if args.batch is not None:
        if args.model or args.ueid or args.pod_class:
            raise ConfigError("--model, --ueid and --pod-class go with --device-key, not --batch")
        requests = [
            files.parse_endorsement_request(doc, where)
            for where, doc in files.read_json_lines(args.batch, "endorsement requests")
        ]
    else:
        if not args.model:
            raise ConfigError("--device-key needs --model")
        try:
            key = parse_public_key(_key_argument(args.device_key))
        except AttestError as exc:
            raise ConfigError(f"--device-key: {exc}") from None
        requests = [EndorsementRequest(args.ueid or new_ueid(), key, args.model, args.pod_class)]
    seen: set[bytes] = set()
    for r in requests:
        if r.ueid in seen:
            raise ConfigError(f"UEID {r.ueid.hex()} is requested twice")
        seen.add(r.ueid)
    try:
        endorsements = [manufacturer.endorse_request(r, now_s=now) for r in requests]
    except CertificateError as exc:
        raise ConfigError(str(exc)) from None
    files.write_json_lines(args.out, (files.endorsement_json(e) for e in endorsements))
    for e, r in zip(endorsements, requests, strict=True):
        pod_class = DeviceCert.verify(e.device_cert, manufacturer.key.public_key).pod_class
        print(f"{e.ueid.hex()} {r.hwmodel} {pod_class}")
    return EXIT_OK


def cmd_reference_values(args: argparse.Namespace) -> int:
    now = int(time.time())
    manufacturer, anchors = files.load_manufacturer(args.manufacturer, now_s=now)
    number, models, firmware = files.read_reference_values_source(args.source)
    try:
        token = manufacturer.reference_values(
            number=number, models=models, firmware=firmware, now_s=now
        )
        doc = open_reference_values(token, anchors, now_s=now)  # what every node will check
    except AttestError as exc:
        raise ConfigError(f"{args.source}: {exc}") from None
    files.write_bytes(args.out, token)
    print(
        f"reference values {doc.number} of {doc.issuer}: {len(doc.models)} models, "
        f"{len(doc.firmware)} firmware versions -> {args.out}"
    )
    return EXIT_OK
