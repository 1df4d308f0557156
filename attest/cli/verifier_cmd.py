"""``attest verifier``: run a verifier node, write its configuration, enrol chips.

``serve`` is the daemon: it loads the node's identity and trust anchors, refuses to start on any
inconsistency (a key that does not match its certificate, a revocation list the authority did not
sign, a store that belongs to another verifier), serves until SIGTERM/SIGINT, drains and exits 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
import tomllib
from pathlib import Path

import trio

from attest.chip.device import Chip
from attest.cli import files
from attest.cli.main import EXIT_OK, EXIT_RUNTIME
from attest.durable import atomic_write
from attest.errors import AttestError, CertificateError, ConfigError
from attest.identity import VerifierIdentity
from attest.messages.revocation import Revocations
from attest.node.config import NodeConfig, example_toml, load_config, parse_version
from attest.node.logs import configure_logging
from attest.node.server import NodeAddress, NodeSettings, VerifierNode, run_until_signalled
from attest.node.service import VerifierService
from attest.store.sqlite import SqliteStore
from attest.verify.chain import DeviceChain, TrustAnchors, verify_device_chain
from attest.verify.policy import Policy

log = logging.getLogger("attest.node")

#: settings holding paths; ``--print-config`` shows them resolved against the config's folder
_PATH_SETTINGS = {
    ("node", "key_file"),
    ("node", "cert_file"),
    ("node", "anchors_file"),
    ("node", "revocations_file"),
    ("listen", "port_file"),
    ("store", "path"),
    ("licensing", "delegation_file"),
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "verifier",
        help="run a verifier node, write its configuration, enrol chips",
        description="A regional verifier node (configured by a TOML file plus ATTEST_* env).",
    )
    sub = parser.add_subparsers(dest="verifier_command", metavar="ACTION", required=True)

    p = sub.add_parser(
        "serve",
        help="run the verifier daemon until SIGTERM/SIGINT",
        description=(
            "Serve attestation sessions until SIGTERM or SIGINT, then drain in-flight sessions "
            "and exit 0. If [listen] port_file is set, the bound port is written there once the "
            "node is ready (use port 0 to let the OS choose). A revocation list in [node] "
            "revocations_file is verified and kept in the store; an older list never replaces "
            "a newer one."
        ),
    )
    _config_arg(p)
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the effective configuration (file + environment, paths resolved) and exit",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="K",
        help=(
            "serve with K processes sharing the port (SO_REUSEPORT) and the store, to use K "
            "cores (default 1; see attest/node/workers.py)"
        ),
    )
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)  # a worker
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("init-config", help="write a commented configuration with every default")
    p.add_argument("--out", type=Path, help="file to write (default: standard output)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(func=cmd_init_config)

    p = sub.add_parser(
        "enroll",
        help="register chips from their certificates (needed when auto_enroll is false)",
        description=(
            "Register chips in the node's store after checking their certificate chain against "
            "the trust anchors. Each CHIP is a chip state folder, a folder of chip-* state "
            "folders, or a pair of files DEVICE_CERT MANUFACTURER_CERT (raw COSE)."
        ),
    )
    _config_arg(p)
    p.add_argument("chips", nargs="+", metavar="CHIP", help="chip folder(s) or certificate pairs")
    p.set_defaults(func=cmd_enroll)

    # -- Fixed Set
    p = sub.add_parser(
        "register-pod",
        help="register pod certificates for the link-graph appraisal (Fixed Set)",
        description=(
            "Verify pod certificates (from `attest authority certify-pod`) against the trust "
            "anchors and store them; the node appraises chips' reported links against them "
            "from its next start. A pod certified by a manufacturer needs --issuer-cert."
        ),
    )
    _config_arg(p)
    p.add_argument("pods", nargs="+", type=Path, metavar="POD_CERT", help="pod certificate files")
    p.add_argument(
        "--issuer-cert",
        type=Path,
        help="the issuing manufacturer's certificate (if not the authority)",
    )
    p.set_defaults(func=cmd_register_pod)


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, type=Path, help="node configuration file (TOML)")


# -- shared setup ----------------------------------------------------------------------------
def load_node_identity(config: NodeConfig) -> tuple[TrustAnchors, VerifierIdentity]:
    anchors = files.read_anchors(config.path(config.node.anchors_file))
    identity = files.load_verifier_identity(
        config.path(config.node.key_file), config.path(config.node.cert_file), anchors
    )
    return anchors, identity


def open_store(
    config: NodeConfig, identity: VerifierIdentity, *, group_sync: bool = False
) -> SqliteStore:
    """The node's store; the daemon opens it with ``group_sync`` (attest/node/groupsync.py)."""
    return SqliteStore(
        config.path(config.store.path),
        verifier_id=identity.verifier_id,
        signing_key=identity.key,
        checkpoint_every=config.store.checkpoint_every,
        group_sync=group_sync,
    )


def policy_from(config: NodeConfig) -> Policy:
    return Policy(
        policy_id=config.policy.policy_id,
        challenge_ttl_s=config.policy.challenge_ttl_s,
        min_firmware=parse_version(config.policy.min_firmware),
        allow_unknown_chips=config.policy.auto_enroll,
    )


def settings_from(config: NodeConfig) -> NodeSettings:
    lim = config.limits
    return NodeSettings(
        host=config.listen.host,
        port=config.listen.port,
        http_host=config.http.host,
        http_port=config.http.port,
        max_connections=lim.max_connections,
        session_timeout_s=lim.session_timeout_s,
        idle_timeout_s=lim.idle_timeout_s,
        max_frame_bytes=lim.max_frame_bytes,
        drain_timeout_s=lim.drain_timeout_s,
    )


def effective_revocations(
    config: NodeConfig, anchors: TrustAnchors, store: SqliteStore
) -> Revocations:
    """The newest verified list of (configured file, list kept in the store); stores a newer file.

    Lists are complete and numbered, so keeping the highest number is anti-rollback: removing
    or downgrading the file cannot un-revoke anything.
    """
    best: Revocations | None = None
    stored = store.get_revocations()
    if stored is not None:
        rl = files.open_revocation_list(stored[1], anchors, f"{store.path} (stored list)")
        best = Revocations.from_list(rl)
    if config.node.revocations_file:
        path = config.path(config.node.revocations_file)
        revs, token = files.read_revocations(path, anchors)
        if best is None or revs.number > best.number:
            store.put_revocations(revs.number, token)
            best = revs
        elif revs.number < best.number:
            log.warning(
                "configured revocation list is older than the stored one; keeping the stored one",
                extra={"fields": {"file_number": revs.number, "stored_number": best.number}},
            )
    return best or Revocations()


# -- serve -----------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.print_config:
        sys.stdout.write(render_config(config))
        return 0
    configure_logging(config.log.level, config.log.format)
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    if args.workers > 1:
        from attest.node.workers import serve_workers

        return serve_workers(args.config, args.workers)
    anchors, identity = load_node_identity(config)
    port_file = config.path(config.listen.port_file) if config.listen.port_file else None
    if port_file is not None:
        port_file.unlink(missing_ok=True)  # a stale port must never be mistaken for ours
    store = open_store(config, identity, group_sync=True)
    try:
        revocations = effective_revocations(config, anchors, store)
        if identity.verifier_id in revocations.verifiers:
            raise CertificateError(
                f"verifier {identity.verifier_id!r} is revoked (list #{revocations.number})"
            )
        from attest.cli.license_cmd import build_issuer  # Offline Licensing

        service = VerifierService(
            identity=identity,
            anchors=anchors,
            store=store,
            policy=policy_from(config),
            revocations=revocations,
            licensing=build_issuer(config, anchors, identity, store, revocations),
        )
        settings = settings_from(config)
        if args.reuse_port:
            settings = dataclasses.replace(settings, reuse_port=True)
        node = VerifierNode(service, settings)
        try:
            trio.run(_serve, node, port_file)
        except BaseExceptionGroup as group:
            raise _single(group, config) from None
        except OSError as exc:
            raise _single(exc, config) from None
    finally:
        store.close()  # idempotent; the node closes it itself after a normal drain
        if port_file is not None:
            port_file.unlink(missing_ok=True)
    return 0


async def _serve(node: VerifierNode, port_file: Path | None) -> None:
    async with trio.open_nursery() as nursery:
        address: NodeAddress = await nursery.start(run_until_signalled, node)
        if port_file is not None:
            try:
                atomic_write(port_file, f"{address.port}\n".encode())
            except OSError as exc:  # stops the node: scripts waiting for the file would hang
                raise AttestError(f"cannot write port file {port_file}: {exc.strerror}") from None


def _single(error: BaseException, config: NodeConfig) -> BaseException:
    """The one real error inside trio's nested exception groups; socket errors explained."""
    exc = error
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, OSError):
        where = f"{config.listen.host}:{config.listen.port}"
        if config.http.port >= 0:
            where += f" (attestation) or {config.http.host}:{config.http.port} (http)"
        return AttestError(f"cannot listen on {where}: {exc.strerror or exc}")
    return exc


def render_config(config: NodeConfig) -> str:
    """The effective configuration as TOML (paths absolute, so it works from any folder)."""
    lines = [f"# effective configuration (relative paths resolved against {config.base_dir})"]
    for section, values in config.as_dict().items():
        if not isinstance(values, dict):
            continue
        lines.append(f"\n[{section}]")
        for key, value in values.items():
            if (section, key) in _PATH_SETTINGS and value:
                value = str(config.path(value))
            lines.append(f"{key} = {_toml_value(value)}")
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # what we print must itself be a valid configuration
    return text


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid TOML basic-string escapes
    return repr(value)


# -- init-config -----------------------------------------------------------------------------
def cmd_init_config(args: argparse.Namespace) -> int:
    text = example_toml()
    if args.out is None:
        sys.stdout.write(text)
        return 0
    files.refuse_overwrite(args.out, args.force)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(args.out, text.encode())
    print(f"wrote {args.out}")
    return 0


# -- enroll ----------------------------------------------------------------------------------
def _chains(items: list[str]) -> list[tuple[str, DeviceChain]]:
    """(label, chain) for each chip folder or DEVICE_CERT MANUFACTURER_CERT pair."""
    out: list[tuple[str, DeviceChain]] = []
    pending: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            if pending:
                raise ConfigError(f"{pending[0]}: a device certificate needs its manufacturer's")
            out.extend((str(d), Chip.load(d).chain) for d in files.expand_chip_dirs([path]))
        elif path.is_file():
            pending.append(path)
            if len(pending) == 2:
                device, manufacturer = (p.read_bytes() for p in pending)
                out.append((f"{pending[0]}", DeviceChain(device, manufacturer)))
                pending = []
        else:
            raise ConfigError(f"{path}: no such file or folder")
    if pending:
        raise ConfigError(f"{pending[0]}: a device certificate needs its manufacturer's")
    return out


def cmd_enroll(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    anchors, identity = load_node_identity(config)
    chains = _chains(args.chips)
    enrolled = known = failed = 0
    with open_store(config, identity) as store:
        service = VerifierService(
            identity=identity, anchors=anchors, store=store, policy=policy_from(config)
        )
        for label, chain in chains:
            certs = verify_device_chain(chain, anchors)
            if certs is None:
                failed += 1
                print(
                    f"{label}: NOT enrolled: certificate chain does not verify to authority "
                    f"{anchors.authority_id!r}",
                    file=sys.stderr,
                )
                continue
            ueid = certs[0].ueid.hex()
            try:
                new = service.enroll(chain)
            except AttestError as exc:
                failed += 1
                print(f"{label}: NOT enrolled: {exc}", file=sys.stderr)
                continue
            enrolled += new
            known += not new
            print(f"{ueid} {certs[0].hwmodel} {'enrolled' if new else 'already known'}")
    print(f"enrolled {enrolled}, already known {known}, failed {failed}")
    return EXIT_RUNTIME if failed else EXIT_OK


# -- Fixed Set -------------------------------------------------------------------------------
def cmd_register_pod(args: argparse.Namespace) -> int:
    from attest.pods.monitor import PodMonitor

    config = load_config(args.config)
    anchors, identity = load_node_identity(config)
    issuer = b"" if args.issuer_cert is None else args.issuer_cert.read_bytes()
    failed = 0
    with open_store(config, identity) as store:
        monitor = PodMonitor(store, anchors, policy_from(config))
        for path in args.pods:
            try:
                cred = monitor.register(path.read_bytes(), issuer, now_s=int(time.time()))
            except (AttestError, OSError) as exc:
                failed += 1
                print(f"{path}: NOT registered: {exc}", file=sys.stderr)
                continue
            cert = cred.cert
            print(
                f"pod {cred.pod_id.hex()} ({len(cert.members)} members, size class "
                f"{cert.size_class}, issued by {cert.issuer}) registered"
            )
    return EXIT_RUNTIME if failed else EXIT_OK
