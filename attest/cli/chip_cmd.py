"""``attest chip``: fabricate simulated chips and run them against a verifier.

A chip lives in its own state folder (device key 0600, counters, certificates); every counter
change is durable before it is used, so stopping ``attest chip run`` at any moment (SIGINT,
SIGTERM, kill -9) never lets the chip sign a counter value twice. A lock file keeps two
processes from driving the same chip at once, which would race its counters.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from attest import files
from attest.chip.device import Chip, fabricate
from attest.chip.runner import GrantOutcome, Workload, attest
from attest.chip.signers import CommandSigner
from attest.cli import argtypes
from attest.cli.common import (
    EXIT_CHECK_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUNTIME,
    load_locked_chip,
    lock_chip_dir,
    mechanism_cli_modules,
    read_file,
)
from attest.errors import AttestError, ChipRefusal, ConfigError
from attest.hardware import DEFAULT_MODELS, ChipModel
from attest.identity import EndorsementRequest, new_ueid
from attest.keys import Signer, parse_public_key
from attest.messages.attestation import AttestationResult
from attest.net import parse_hostport
from attest.verify.chain import TrustAnchors
from attest.verify.reasons import Tier, reason_name
from attest.verify.references import open_reference_values

#: rounds per connection when running forever (then it reconnects)
_FOREVER_BATCH = 1000
_RETRY_MAX_S = 30.0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "chip",
        help="fabricate simulated chips and attest them to a verifier",
        description="Simulated accelerators (the Attester role).",
    )
    sub: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="chip_command", metavar="ACTION", required=True
    )

    p = sub.add_parser(
        "fabricate",
        help="make chips endorsed by a manufacturer",
        description=(
            "Make chips: each generates its own device key; the manufacturer endorses the public "
            "half. One chip is written to DIR itself; several go to DIR/chip-0001, chip-0002, ... "
            "(continuing after existing ones). Prints one UEID per line."
        ),
    )
    p.add_argument(
        "--manufacturer",
        required=True,
        type=Path,
        metavar="MDIR",
        help="manufacturer folder (from `attest authority certify-manufacturer`)",
    )
    p.add_argument("--model", required=True, choices=sorted(DEFAULT_MODELS), help="chip model")
    p.add_argument("--state", required=True, type=Path, metavar="DIR", help="state folder")
    p.add_argument(
        "--count", type=argtypes.positive_int, default=1, help="how many chips (default: 1)"
    )
    p.add_argument(
        "--firmware",
        default="1.2.0",
        type=argtypes.version,
        help="firmware version the chips run (default: 1.2.0)",
    )
    p.add_argument(
        "--pod-class",
        type=argtypes.positive_int,
        help="largest pod the chip is certified for (default: the model's maximum)",
    )
    for module in mechanism_cli_modules():  # mechanisms' options (licensing's baseline ...)
        if hasattr(module, "add_fabricate_options"):
            module.add_fabricate_options(p)
    p.set_defaults(func=cmd_fabricate)

    p = sub.add_parser(
        "create",
        help="make one chip that is not yet endorsed (bring your own key or model)",
        description=(
            "Make a chip in DIR that has no device certificate yet, and print its endorsement "
            "request (one JSON line, format attest-endorsement-request-v1: UEID, public key, "
            "model) for `attest manufacturer endorse --batch`; then give the chip its "
            "certificate with `attest chip install-cert`. The chip generates its own key, or "
            "signs through --signer-cmd with a key held elsewhere (an HSM, `openssl pkeyutl`)."
        ),
    )
    p.add_argument("--state", required=True, type=Path, metavar="DIR", help="state folder")
    p.add_argument(
        "--anchors",
        required=True,
        type=Path,
        metavar="FILE",
        help="the authority's anchors.json (its key is fused into the chip)",
    )
    p.add_argument("--model", required=True, help="chip model (hwmodel)")
    p.add_argument(
        "--reference-values",
        type=Path,
        metavar="FILE",
        help="the vendor's signed reference values, for a model that is not built in (the "
        "chip's simulated workload takes its peak rates from there)",
    )
    _firmware_options(p, default="1.2.0")
    p.add_argument("--ueid", type=argtypes.ueid, help="the chip's UEID, hex (default: random)")
    p.add_argument(
        "--pod-class",
        type=argtypes.positive_int,
        help="pod class to request (default: the manufacturer's default for the model)",
    )
    p.add_argument(
        "--signer-cmd",
        metavar="CMD",
        help="sign with an external command instead of a key inside the chip; {message} in CMD "
        "is replaced by the path of a file holding the bytes to sign, and the command prints "
        "the 64-byte signature, e.g. 'openssl pkeyutl -sign -rawin -inkey dev.pem -in {message}'",
    )
    p.add_argument(
        "--public-key",
        metavar="PUB",
        help="the public key of --signer-cmd's key: PEM/DER file or 64 hex digits",
    )
    for module in mechanism_cli_modules():
        if hasattr(module, "add_fabricate_options"):
            module.add_fabricate_options(p)
    p.set_defaults(func=cmd_create)

    p = sub.add_parser(
        "install-cert",
        help="give a created chip its device certificate from the manufacturer",
        description=(
            "The chip takes the endorsement for its UEID from FILE (JSON Lines, format "
            "attest-endorsement-v1, as `attest manufacturer endorse` writes) after checking that "
            "it chains to its fused authority key and names its own UEID, key and model. Exit "
            "status 0 if installed, 1 if refused (the reason is printed)."
        ),
    )
    p.add_argument("--state", required=True, type=Path, metavar="DIR", help="chip state folder")
    p.add_argument("file", type=Path, metavar="FILE", help="endorsements file")
    p.set_defaults(func=cmd_install_cert)

    p = sub.add_parser(
        "update-firmware",
        help="install another firmware version (it runs from the next boot)",
        description="Replace the chip's firmware version and, optionally, the measurement it "
        "reports (by default the simulated image's digest).",
    )
    p.add_argument("--state", required=True, type=Path, metavar="DIR", help="chip state folder")
    _firmware_options(p, default=None)
    p.set_defaults(func=cmd_update_firmware)

    p = sub.add_parser(
        "run",
        help="boot chips and attest them to a verifier",
        description=(
            "Boot each chip (its boot count rises durably) and attest it over one keep-alive "
            "connection, printing one line per result: UEID, tier, the reasons (comma-separated; "
            "none for a clean result) and counter=N; a summary line goes to stderr at the end. "
            "Several --state folders (or a folder of chip-* folders) run concurrently. Exit "
            "status: 0 if every result was affirming or warning, 1 if any was contraindicated, "
            "3 if a session failed, 130 if stopped by SIGINT (Ctrl-C); SIGTERM stops it cleanly "
            "with the status of the results so far. With --out DIR every signed result is saved "
            "as DIR/<ueid-hex>-<attest counter, 10 digits>.result.cose (the token exactly as "
            "received) and the verifier certificate it verified under as DIR/verifier.cert "
            "(replaced when it changes), so that `attest result verify DIR/<file> --anchors "
            "ANCHORS` checks it again."
        ),
    )
    p.add_argument("--verifier", required=True, metavar="HOST:PORT", help="verifier node address")
    p.add_argument(
        "--state",
        required=True,
        action="append",
        type=Path,
        metavar="DIR",
        help="chip state folder or folder of chip-* folders; repeatable",
    )
    p.add_argument(
        "--rounds",
        type=argtypes.non_negative_int,
        default=1,
        help="attestation rounds per chip; 0 runs until stopped, reconnecting on errors "
        "(default: 1)",
    )
    p.add_argument(
        "--interval",
        type=argtypes.non_negative_float,
        default=5.0,
        metavar="S",
        help="seconds between rounds (default: 5)",
    )
    p.add_argument(
        "--share",
        type=argtypes.share,
        default=0.5,
        metavar="F",
        help="fraction of peak compute the simulated workload uses, 0..1 (default: 0.5)",
    )
    p.add_argument(
        "--timeout",
        type=argtypes.positive_float,
        default=30.0,
        metavar="S",
        help="deadline for connecting and each session, beyond the intervals (default: 30)",
    )
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="save every signed result token and the verifier certificate here (see above)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "apply-revocations",
        help="give a chip the authority's newer revocation list",
        description=(
            "Every mechanism of the chip that keeps a revocation list (revoked delegations, "
            "revoked pods) adopts it if the authority signed it and it is newer than the one it "
            "holds. Exit status 0 if adopted, 1 if refused (the reason is printed)."
        ),
    )
    p.add_argument("--state", required=True, type=Path, metavar="DIR", help="chip state folder")
    p.add_argument("file", type=Path, metavar="FILE", help="signed revocation list")
    p.set_defaults(func=cmd_apply_revocations)
    return sub


def _firmware_options(p: argparse.ArgumentParser, *, default: str | None) -> None:
    p.add_argument(
        "--firmware",
        required=default is None,
        default=default,
        type=argtypes.version,
        help="firmware version" + (f" (default: {default})" if default else ""),
    )
    p.add_argument(
        "--firmware-measurement",
        type=argtypes.digest,
        metavar="HEX",
        help="SHA-256 of the firmware image the chip reports (default: the simulated image's)",
    )


# -- fabricate -------------------------------------------------------------------------------
def cmd_fabricate(args: argparse.Namespace) -> int:
    now = int(time.time())
    manufacturer, anchors = files.load_manufacturer(args.manufacturer, now_s=now)
    model = DEFAULT_MODELS[args.model]
    pod_class = args.pod_class or model.max_pod_size
    if pod_class > model.max_pod_size:
        raise ConfigError(f"--pod-class {pod_class} exceeds {model.name}'s maximum")
    state: Path = args.state
    if args.count == 1:
        targets = [state]
    else:
        first = 1
        while (state / files.chip_dir_name(first)).exists():
            first += 1
        targets = [state / files.chip_dir_name(i) for i in range(first, first + args.count)]
    for target in targets:
        if files.is_chip_dir(target):
            raise ConfigError(f"{target} already holds a chip; refusing to replace its identity")
    parts: dict[str, Any] = {}
    for module in mechanism_cli_modules():
        if hasattr(module, "fabricate_parts"):
            parts.update(module.fabricate_parts(args))
    for target in targets:
        chip = fabricate(
            manufacturer,
            anchors,
            hwmodel=model.name,
            pod_class=pod_class,
            now_s=now,
            firmware_version=args.firmware,
            state_dir=target,
            parts=parts,
        )  # create, endorse the public key, install: as `chip create` and its peers do
        print(f"{chip.ueid.hex()} {chip.hwmodel} {target}")
    return EXIT_OK


# -- create, install-cert, update-firmware -----------------------------------------------------
def cmd_create(args: argparse.Namespace) -> int:
    state: Path = args.state
    if files.is_chip_dir(state):
        raise ConfigError(f"{state} already holds a chip; refusing to replace its identity")
    anchors = files.read_anchors(args.anchors)
    model = _model(args.model, args.reference_values, anchors)
    signer: Signer | None = None
    if args.signer_cmd is not None:
        if args.public_key is None:
            raise ConfigError("--signer-cmd needs --public-key (the key it signs with)")
        try:
            public_key = parse_public_key(_key_text(args.public_key))
            signer = CommandSigner(shlex.split(args.signer_cmd), public_key)
            signer.sign(b"attest: signer self-test")  # fail here, not at the first session
        except (AttestError, ValueError) as exc:
            raise ConfigError(f"--signer-cmd: {exc}") from None
    elif args.public_key is not None:
        raise ConfigError("--public-key goes with --signer-cmd")
    parts: dict[str, Any] = {}
    for module in mechanism_cli_modules():
        if hasattr(module, "fabricate_parts"):
            parts.update(module.fabricate_parts(args))
    chip = Chip.create(
        anchors=anchors,
        ueid=args.ueid or new_ueid(),
        hwmodel=model.name,
        model=model,
        firmware_version=args.firmware,
        firmware_measurement=args.firmware_measurement,
        state_dir=state,
        signer=signer,
        parts=parts,
    )
    request = EndorsementRequest(chip.ueid, chip.public_key, chip.hwmodel, args.pod_class)
    print(json.dumps(files.endorsement_request_json(request), sort_keys=True))
    return EXIT_OK


def _model(name: str, reference_values: Path | None, anchors: TrustAnchors) -> ChipModel:
    if reference_values is None:
        if name not in DEFAULT_MODELS:
            raise ConfigError(
                f"model {name!r} is not built in: give the vendor's --reference-values"
            )
        return DEFAULT_MODELS[name]
    token = read_file(reference_values, "reference values")
    try:
        doc = open_reference_values(token, anchors, now_s=int(time.time()))
    except AttestError as exc:
        raise ConfigError(f"{reference_values}: {exc}") from None
    for m in doc.models:
        if m.name == name:
            return m
    raise ConfigError(f"{reference_values}: {doc.issuer!r} declares no model {name!r}")


def _key_text(text: str) -> bytes:
    path = Path(text)
    return read_file(path, "public key") if path.exists() else text.encode()


def cmd_install_cert(args: argparse.Namespace) -> int:
    chip, fd = load_locked_chip(args.state)
    try:
        ueid = chip.ueid
        found = [
            files.parse_endorsement(doc, where)
            for where, doc in files.read_json_lines(args.file, "endorsements")
            if isinstance(doc, dict) and doc.get("ueid") == ueid.hex()
        ]
        if not found:
            raise ConfigError(f"{args.file}: no endorsement for chip {ueid.hex()}")
        try:
            chip.install_endorsement(found[0].device_cert, found[0].manufacturer_cert)
        except ChipRefusal as exc:
            print(f"{ueid.hex()} REFUSED {exc}")
            return EXIT_CHECK_FAILED
    finally:
        os.close(fd)
    print(f"{ueid.hex()} {chip.hwmodel} endorsed")
    return EXIT_OK


def cmd_update_firmware(args: argparse.Namespace) -> int:
    chip, fd = load_locked_chip(args.state)
    try:
        chip.install_firmware(args.firmware, args.firmware_measurement)
    finally:
        os.close(fd)
    version = ".".join(map(str, chip.firmware_version))
    print(f"{chip.ueid.hex()} firmware {version} {chip.firmware_measurement.hex()}")
    return EXIT_OK


# -- run -------------------------------------------------------------------------------------
@dataclass
class _Tally:
    chips: int = 0
    results: int = 0
    contraindicated: int = 0
    errors: int = 0
    tiers: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        """One line for stderr: what the run did, so a scroll of results needs no counting."""
        tiers = ", ".join(f"{n} {tier}" for tier, n in sorted(self.tiers.items()))
        errors = f"; {self.errors} chip(s) stopped by a session error" if self.errors else ""
        chips = "1 chip" if self.chips == 1 else f"{self.chips} chips"
        return f"attest chip run: {chips}, {self.results} result(s): {tiers or 'none'}{errors}"


def cmd_run(args: argparse.Namespace) -> int:
    try:
        host, port = parse_hostport(args.verifier)
    except ValueError:
        raise ConfigError(f"--verifier {args.verifier!r}: expected HOST:PORT") from None
    dirs = files.expand_chip_dirs(args.state)
    if args.out is not None:
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--out {args.out}: {exc.strerror}") from None
    locks = [lock_chip_dir(d) for d in dirs]
    try:
        chips = [Chip.load(d) for d in dirs]
        tally = _Tally(chips=len(chips))
        stopped = trio.run(_run_all, chips, host, port, args, tally)
    finally:
        for fd in locks:
            os.close(fd)
    print(tally.summary(), file=sys.stderr)
    if stopped:
        print(f"attest: stopped by {stopped}", file=sys.stderr)
    if stopped == "SIGINT":
        return EXIT_INTERRUPTED
    if tally.contraindicated:
        return EXIT_CHECK_FAILED
    return EXIT_RUNTIME if tally.errors else EXIT_OK


async def _run_all(
    chips: list[Chip], host: str, port: int, args: argparse.Namespace, tally: _Tally
) -> str | None:
    """Run every chip concurrently; returns the signal name if one stopped the run."""
    stopped: list[str] = []
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:

            async def watch() -> None:
                async for signum in signals:
                    stopped.append(signal.Signals(signum).name)
                    nursery.cancel_scope.cancel()

            nursery.start_soon(watch)
            async with trio.open_nursery() as chip_tasks:
                for chip in chips:
                    chip_tasks.start_soon(_run_chip, chip, host, port, args, tally)
            nursery.cancel_scope.cancel()  # every chip finished: stop watching for signals
    return stopped[0] if stopped else None


async def _run_chip(
    chip: Chip, host: str, port: int, args: argparse.Namespace, tally: _Tally
) -> None:
    chip.boot(time.time())
    workload = Workload(share=args.share)
    ueid = chip.ueid.hex()

    def report(result: AttestationResult) -> None:
        tier = argtypes.tier_name(result.status)
        reasons = "".join(f" {reason_name(r)}" for r in result.reasons[:1])
        reasons += "".join(f",{reason_name(r)}" for r in result.reasons[1:])
        tally.results += 1
        tally.tiers[tier.lower()] += 1
        if result.status >= Tier.CONTRAINDICATED:
            tally.contraindicated += 1
        print(f"{ueid} {tier}{reasons} counter={chip.attest_counter}", flush=True)

    def keep(result: AttestationResult, token: bytes, verifier_cert: bytes) -> None:
        out: Path = args.out
        files.write_bytes(out / files.result_file_name(chip.ueid, chip.attest_counter), token)
        cert_file = out / files.RESULTS_VERIFIER_CERT
        if not cert_file.exists() or cert_file.read_bytes() != verifier_cert:
            files.write_bytes(cert_file, verifier_cert)

    def granted(outcome: GrantOutcome) -> None:
        # a mechanism's grant (a renewed licence) came with the result
        if outcome.refusal is None:
            print(f"{ueid} {outcome.taken}", flush=True)
        else:
            print(f"{ueid} GRANT refused {outcome.refusal}", flush=True)

    forever = args.rounds == 0
    remaining = args.rounds
    backoff = 1.0
    while forever or remaining > 0:
        batch = _FOREVER_BATCH if forever else remaining
        before = tally.results
        try:
            await attest(
                chip,
                host,
                port,
                rounds=batch,
                interval_s=args.interval,
                workload=workload,
                timeout_s=args.timeout,
                on_result=report,
                on_grant=granted,
                on_token=keep if args.out is not None else None,
            )
        except (AttestError, OSError, trio.BrokenResourceError, trio.TooSlowError) as exc:
            detail = str(exc) or type(exc).__name__
            print(f"{ueid} ERROR {detail}", file=sys.stderr, flush=True)
            if not forever:
                tally.errors += 1
                return
            backoff = 1.0 if tally.results > before else min(_RETRY_MAX_S, backoff * 2)
            await trio.sleep(max(args.interval, backoff))
            continue
        remaining -= batch
        if forever:
            await trio.sleep(args.interval)


# -- revocations -----------------------------------------------------------------------------
def cmd_apply_revocations(args: argparse.Namespace) -> int:
    token = read_file(args.file, "revocation list")
    chip, fd = load_locked_chip(args.state)
    try:
        number = chip.apply_revocations(token)
    except ChipRefusal as exc:
        print(f"{chip.ueid.hex()} REFUSED {exc}")
        return EXIT_CHECK_FAILED
    finally:
        os.close(fd)
    print(f"{chip.ueid.hex()} now holds revocation list #{number}")
    return EXIT_OK
