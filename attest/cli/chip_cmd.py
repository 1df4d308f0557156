"""``attest chip``: fabricate simulated chips and run them against a verifier.

A chip lives in its own state folder (device key 0600, counters, certificates); every counter
change is durable before it is used, so stopping ``attest chip run`` at any moment (SIGINT,
SIGTERM, kill -9) never lets the chip sign a counter value twice. A lock file keeps two
processes from driving the same chip at once, which would race its counters.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import trio

from attest.chip.device import Chip
from attest.chip.license import ChipLicensing
from attest.chip.runner import Workload, attest
from attest.cli import argtypes, files
from attest.cli.main import EXIT_CHECK_FAILED, EXIT_OK, EXIT_RUNTIME
from attest.errors import AttestError, ConfigError
from attest.hardware import DEFAULT_MODELS
from attest.messages.attestation import AttestationResult
from attest.messages.license import LicenseGrant
from attest.net import parse_hostport
from attest.verify.reasons import Reason, Tier

_LOCK_FILE = "run.lock"
#: rounds per connection when running forever (then it reconnects)
_FOREVER_BATCH = 1000
_RETRY_MAX_S = 30.0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "chip",
        help="fabricate simulated chips and attest them to a verifier",
        description="Simulated accelerators (the Attester role).",
    )
    sub = parser.add_subparsers(dest="chip_command", metavar="ACTION", required=True)

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
    # -- Offline Licensing
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
    p.set_defaults(func=cmd_fabricate)

    p = sub.add_parser(
        "run",
        help="boot chips and attest them to a verifier",
        description=(
            "Boot each chip (its boot count rises durably) and attest it over one keep-alive "
            "connection, printing one line per result: UEID, tier, reasons, counter. Several "
            "--state folders (or a folder of chip-* folders) run concurrently. Exit status: 0 "
            "if every result was affirming or warning, 1 if any was contraindicated, 3 if a "
            "session failed. SIGINT/SIGTERM stop it cleanly."
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
    p.set_defaults(func=cmd_run)

    # -- Offline Licensing
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

    p = sub.add_parser(
        "apply-revocations",
        help="give a chip the authority's newer revocation list (revoked delegations)",
    )
    p.add_argument("--state", required=True, type=Path, metavar="DIR", help="chip state folder")
    p.add_argument("file", type=Path, metavar="FILE", help="signed revocation list")
    p.set_defaults(func=cmd_apply_revocations)


# -- argument types --------------------------------------------------------------------------


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
    licensing = (
        None
        if args.no_licensing
        else ChipLicensing(baseline_ppm=round(args.throttle_baseline * 1_000_000))
    )
    for target in targets:
        chip = manufacturer.fabricate(
            anchors,
            hwmodel=model.name,
            pod_class=pod_class,
            now_s=now,
            firmware_version=args.firmware,
            state_dir=target,
            licensing=licensing,
        )
        print(f"{chip.ueid.hex()} {chip.hwmodel} {target}")
    return EXIT_OK


# -- run -------------------------------------------------------------------------------------
@dataclass
class _Tally:
    results: int = 0
    contraindicated: int = 0
    errors: int = 0


def _lock(chip_dir: Path) -> int:
    """Hold an exclusive lock on the chip folder for the life of the process."""
    try:
        fd = os.open(chip_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise AttestError(f"{chip_dir}: cannot lock the chip folder: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AttestError(f"{chip_dir}: chip is already running in another process") from None
    return fd


def cmd_run(args: argparse.Namespace) -> int:
    try:
        host, port = parse_hostport(args.verifier)
    except ValueError:
        raise ConfigError(f"--verifier {args.verifier!r}: expected HOST:PORT") from None
    dirs = files.expand_chip_dirs(args.state)
    locks = [_lock(d) for d in dirs]
    try:
        chips = [Chip.load(d) for d in dirs]
        tally = _Tally()
        stopped = trio.run(_run_all, chips, host, port, args, tally)
    finally:
        for fd in locks:
            os.close(fd)
    if stopped:
        print(f"attest: stopped by {stopped}", file=sys.stderr)
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
        tier = argtypes.code_name(Tier, result.status)
        reasons = ",".join(argtypes.code_name(Reason, r) for r in result.reasons) or "-"
        tally.results += 1
        if result.status >= Tier.CONTRAINDICATED:
            tally.contraindicated += 1
        print(f"{ueid} {tier} {reasons} counter={chip.attest_counter}", flush=True)

    def licensed(grant: LicenseGrant, refusal: str | None) -> None:
        # Offline Licensing: a renewed license came with the result
        state = chip.license_state()
        if refusal is None and state is not None:
            print(f"{ueid} LICENSE applied serial={state.serial}", flush=True)
        else:
            print(f"{ueid} LICENSE refused {refusal}", flush=True)

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
                on_grant=licensed,
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


# -- Offline Licensing -----------------------------------------------------------------------
#: test hook: seconds `apply-license` sleeps between the durable high-water update and adding
#: the budget, announcing "accepted" on stdout first (the crash test kills the process there)
PAUSE_AFTER_ACCEPT_ENV = "ATTEST_TEST_PAUSE_AFTER_ACCEPT_S"


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what}: {exc.strerror}") from None


def _load_one(state: Path) -> tuple[Chip, int]:
    if not files.is_chip_dir(state):
        raise ConfigError(f"{state}: not a chip state folder")
    fd = _lock(state)
    try:
        return Chip.load(state), fd
    except BaseException:
        os.close(fd)
        raise


def cmd_apply_license(args: argparse.Namespace) -> int:
    from attest.errors import ChipRefusal

    grant = LicenseGrant(
        _read_file(args.file, "license"),
        None if args.delegation is None else _read_file(args.delegation, "delegation"),
    )
    pause = float(os.environ.get(PAUSE_AFTER_ACCEPT_ENV, "0") or 0)

    chip, fd = _load_one(args.state)
    try:

        def announce() -> None:
            assert chip.licensing is not None
            print(f"accepted serial {chip.licensing.serial}; applying", flush=True)
            if pause > 0:
                time.sleep(pause)

        try:
            lic = chip.apply_license(grant, time.time(), after_accept=announce)
        except ChipRefusal as exc:
            print(f"{chip.ueid.hex()} REFUSED {exc}")
            return EXIT_CHECK_FAILED
        state = chip.license_state()
        assert state is not None
        print(
            f"{chip.ueid.hex()} applied serial {lic.serial}: {state.remaining_flops} FLOPs left, "
            f"expires at chip time {lic.expiry_s} s"
        )
    finally:
        os.close(fd)
    return EXIT_OK


def cmd_license_request(args: argparse.Namespace) -> int:
    import json

    chip, fd = _load_one(args.state)
    try:
        nonce = chip.license_request()
        state = chip.license_state()
        assert state is not None
        doc = {
            "format": "attest-license-request-v1",
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
    chip, fd = _load_one(args.state)
    os.close(fd)
    lic = chip.licensing
    if lic is None:
        print(f"{chip.ueid.hex()} has no licensing mechanism")
        return EXIT_OK
    t = chip.chip_time_s
    print(f"ueid:        {chip.ueid.hex()}")
    print(f"chip time:   {t} s")
    print(f"serial:      {lic.serial}")
    print(f"remaining:   {lic.remaining_flops(t)} FLOPs (expires at chip time {lic.expiry_s} s)")
    print(
        f"throttled:   {'yes' if chip.throttled else 'no'} (baseline {lic.baseline_ppm / 1e4:g} %)"
    )
    print(f"revocations: list #{lic.revocations_number}")
    return EXIT_OK


def cmd_apply_revocations(args: argparse.Namespace) -> int:
    from attest.errors import ChipRefusal

    token = _read_file(args.file, "revocation list")
    chip, fd = _load_one(args.state)
    try:
        number = chip.apply_revocations(token)
    except ChipRefusal as exc:
        print(f"{chip.ueid.hex()} REFUSED {exc}")
        return EXIT_CHECK_FAILED
    finally:
        os.close(fd)
    print(f"{chip.ueid.hex()} now holds revocation list #{number}")
    return EXIT_OK
