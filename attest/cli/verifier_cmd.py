"""``attest verifier``: run a verifier node, write its configuration, enrol chips.

``serve`` is the daemon: the node is built by :func:`attest.node.app.build_node`, which refuses
to start on any inconsistency (a key that does not match its certificate, a revocation list the
authority did not sign, a store that belongs to another verifier); it serves until
SIGTERM/SIGINT, drains and exits 0.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import trio

from attest import files
from attest.chip.device import Chip
from attest.cli.common import EXIT_CHECK_FAILED, EXIT_OK, EXIT_RUNTIME, read_file
from attest.durable import atomic_write
from attest.errors import AttestError, CertificateError, ConfigError, StoreError
from attest.node.app import (
    appraisal_policy,
    build_node,
    load_identity,
    open_store,
    provision,
    reloader,
)
from attest.node.config import NodeConfig, example_toml, is_database_url, load_config
from attest.node.logs import configure_logging
from attest.node.server import NodeAddress, VerifierNode, run_until_signalled
from attest.node.service import VerifierService
from attest.verify.chain import DeviceChain, verify_device_chain


def _is_path_setting(key: str) -> bool:
    """Settings holding paths (``--print-config`` resolves them against the config's folder)."""
    return key == "path" or key.endswith("_file")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "verifier",
        help="run a verifier node, write its configuration, enrol chips",
        description="A regional verifier node (configured by a TOML file plus ATTEST_* env).",
    )
    sub: argparse._SubParsersAction[argparse.ArgumentParser] = parser.add_subparsers(
        dest="verifier_command", metavar="ACTION", required=True
    )

    p = sub.add_parser(
        "serve",
        help="run the verifier daemon until SIGTERM/SIGINT",
        description=(
            "Serve attestation sessions until SIGTERM or SIGINT, then drain in-flight sessions "
            "and exit 0. SIGHUP re-reads the configuration: the revocation list, [policy] and "
            "the mechanisms' sections take effect (identity, store, listeners and limits need a "
            "restart); a reload that fails keeps the running configuration. If [listen] "
            "port_file is set, the bound port is written there once the node is ready (use "
            "port 0 to let the OS choose). A revocation list in [node] revocations_file is "
            "verified and kept in the store; an older list never replaces a newer one."
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
            "folders, an endorsements file (*.jsonl, from `attest manufacturer endorse`), or a "
            "pair of files DEVICE_CERT MANUFACTURER_CERT (raw COSE)."
        ),
    )
    _config_arg(p)
    p.add_argument("chips", nargs="+", metavar="CHIP", help="chip folder(s) or certificate pairs")
    p.set_defaults(func=cmd_enroll)

    p = sub.add_parser(
        "provision",
        help="load a vendor's signed reference values (its models and firmware) into the node",
        description=(
            "Verify a manufacturer's reference-values document (signed by the manufacturer, "
            "whose certificate the Authority signed; see `attest manufacturer reference-values`) "
            "and keep it in the node's store. The node appraises that vendor's chips against it "
            "from its next start or SIGHUP. A document must have a higher number than the one "
            "held for the vendor, and may not declare a model another vendor declares. Exit "
            "status 0 if provisioned, 2 if refused (the reason is printed)."
        ),
    )
    _config_arg(p)
    p.add_argument("file", type=Path, metavar="FILE", help="signed reference-values document")
    p.set_defaults(func=cmd_provision)

    p = sub.add_parser(
        "migrate",
        help="report the store's schema version and apply pending migrations",
        description=(
            "Print the schema version of the node's store (SQLite file or PostgreSQL database) "
            "and the migrations this attest would apply, then apply them in one transaction. A "
            "node applies them by itself when it starts; run this to do it once, before several "
            "nodes sharing a database are upgraded. Exit status 0 when the schema is current "
            "(after applying), 1 with --check when migrations are pending."
        ),
    )
    _config_arg(p)
    p.add_argument(
        "--check", action="store_true", help="only report; exit 1 if migrations are pending"
    )
    p.set_defaults(func=cmd_migrate)

    return sub


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, type=Path, help="node configuration file (TOML)")


# -- serve -----------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    if args.log_level is not None:
        # the global --log-level outranks the file and the environment; through the
        # environment it also reaches the worker processes of --workers K
        os.environ["ATTEST_LOG_LEVEL"] = args.log_level
    config = load_config(args.config)
    if args.print_config:
        sys.stdout.write(render_config(config))
        return 0
    configure_logging(config.log.level, config.log.format)
    # SIGHUP means "reload" once the node runs; before that it must not end the process
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if args.workers < 1:
        raise ConfigError("--workers must be at least 1")
    if args.workers > 1:
        from attest.node.workers import serve_workers

        return EXIT_OK if serve_workers(args.config, args.workers) else EXIT_RUNTIME
    port_file = config.path(config.listen.port_file) if config.listen.port_file else None
    if port_file is not None:
        port_file.unlink(missing_ok=True)  # a stale port must never be mistaken for ours
    node = build_node(config, reuse_port=args.reuse_port)
    try:
        trio.run(_serve, node, port_file, reloader(args.config, node.metrics))
    except BaseExceptionGroup as group:
        raise _single(group, config) from None
    except OSError as exc:
        raise _single(exc, config) from None
    finally:
        node.service.store.close()  # idempotent; the node closes it itself after a normal drain
        if port_file is not None:
            port_file.unlink(missing_ok=True)
    return 0


async def _serve(
    node: VerifierNode,
    port_file: Path | None,
    reload: Callable[[VerifierService], VerifierService],
) -> None:
    async with trio.open_nursery() as nursery:
        address: NodeAddress = await nursery.start(
            functools.partial(run_until_signalled, node, reload=reload)
        )
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
            if _is_path_setting(key) and value and not is_database_url(value):
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


# -- migrate ---------------------------------------------------------------------------------
def cmd_migrate(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    _, identity = load_identity(config)
    with open_store(config, identity, migrate=False) as store:
        found = store.schema
        where = config.store_backend
        print(f"{where} store: schema version {found.current}, this attest: {found.latest}")
        for m in found.pending:
            print(f"  pending {m.version}: {m.summary}")
        if found.up_to_date:
            print("up to date")
            return EXIT_OK
        if args.check:
            return EXIT_CHECK_FAILED
        for m in store.migrate():
            print(f"  applied {m.version}: {m.summary}")
        print(f"schema version {store.schema.current}")
    return EXIT_OK


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
        elif path.is_file() and path.suffix == ".jsonl":  # `attest manufacturer endorse` output
            if pending:
                raise ConfigError(f"{pending[0]}: a device certificate needs its manufacturer's")
            for where, doc in files.read_json_lines(path, "endorsements"):
                e = files.parse_endorsement(doc, where)
                out.append((where, DeviceChain(e.device_cert, e.manufacturer_cert)))
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
    anchors, identity = load_identity(config)
    chains = _chains(args.chips)
    enrolled = known = failed = 0
    with open_store(config, identity) as store:
        # enrolment needs no mechanism: a service without parts
        service = VerifierService(
            identity=identity,
            anchors=anchors,
            store=store,
            policy=appraisal_policy(config, anchors, store),
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


# -- provision -------------------------------------------------------------------------------
def cmd_provision(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    token = read_file(args.file, "reference-values document")
    try:
        doc = provision(config, token)
    except (CertificateError, StoreError) as exc:
        raise ConfigError(f"{args.file}: {exc}") from None
    versions = sorted({".".join(map(str, f.version)) for f in doc.firmware})
    print(
        f"provisioned reference values {doc.number} of {doc.issuer}: models "
        f"{', '.join(m.name for m in doc.models) or '-'}; firmware {', '.join(versions) or '-'}"
    )
    return EXIT_OK
