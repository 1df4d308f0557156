"""The one place a verifier node is built from its configuration.

``attest verifier serve`` (one process or ``--workers``), the operator commands, the demo, the
benchmarks and the tests all build nodes here, so they run the same wiring:

* :func:`load_identity`, :func:`open_store`, :func:`effective_revocations`, :func:`policy_from`,
  :func:`settings_from` — each piece from a :class:`~attest.node.config.NodeConfig`;
* :func:`assemble` — a :class:`~attest.node.service.VerifierService` from those pieces, with the
  verifier part of every registered mechanism that its configuration section turns on;
* :func:`build_node` — all of it, as the daemon runs it (group commit on for SQLite);
* :func:`reloader` — what SIGHUP does: re-read the configuration file and rebuild what depends
  on the revocation lists, the ``[policy]`` section and the mechanisms' sections (the service
  and every mechanism part), on the running node's identity and store.

The node refuses to start on any inconsistency: a key that does not match its certificate, a
revocation list the authority did not sign, a store that belongs to another verifier, a
verifier the authority has revoked. A reload that finds one keeps the running configuration.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from attest import files
from attest.errors import CertificateError, StoreError
from attest.identity import VerifierIdentity
from attest.mechanism import NodeContext, VerifierPart
from attest.messages.reference import ReferenceValues
from attest.messages.revocation import Revocations
from attest.node.config import NodeConfig, load_config
from attest.node.metrics import NodeMetrics
from attest.node.server import NodeSettings, VerifierNode
from attest.node.service import VerifierService, wall_clock_ms
from attest.registry import MECHANISMS
from attest.store import open_store as open_store_at
from attest.store.audit import KIND_REVOCATIONS, AuditEntry, digest, u64_tag
from attest.store.base import Store
from attest.verify.chain import TrustAnchors
from attest.verify.policy import Policy, parse_version
from attest.verify.references import open_reference_values, with_reference_values

log = logging.getLogger("attest.node")


def load_identity(config: NodeConfig) -> tuple[TrustAnchors, VerifierIdentity]:
    """The trust anchors and the node's identity (key matching its authority-signed cert)."""
    anchors = files.read_anchors(config.path(config.node.anchors_file))
    identity = files.load_verifier_identity(
        config.path(config.node.key_file), config.path(config.node.cert_file), anchors
    )
    return anchors, identity


def open_store(
    config: NodeConfig,
    identity: VerifierIdentity,
    *,
    group_sync: bool = False,
    migrate: bool = True,
) -> Store:
    """The node's store (SQLite file or shared PostgreSQL, by ``[store]``), its schema migrated
    unless ``migrate=False``. ``group_sync`` (the daemon, attest/node/groupsync.py) applies to
    SQLite only: a PostgreSQL commit is durable when it returns."""
    section = config.store
    return open_store_at(
        config.store_location(),
        verifier_id=identity.verifier_id,
        signing_key=identity.key,
        checkpoint_every=section.checkpoint_every,
        group_sync=group_sync,
        migrate=migrate,
        pool_size=config.store.pool_size,
        reconnect_timeout_s=config.store.reconnect_timeout_s,
        busy_timeout_s=section.busy_timeout_s,
        checkpoint_file=config.path(section.checkpoint_file) if section.checkpoint_file else None,
    )


def defers_sync(config: NodeConfig) -> bool:
    """Whether the daemon's store leaves fsync to the node's group commit (SQLite only)."""
    return config.store_backend == "sqlite"


def policy_from(config: NodeConfig) -> Policy:
    return Policy(
        policy_id=config.policy.policy_id,
        challenge_ttl_s=config.policy.challenge_ttl_s,
        min_firmware=parse_version(config.policy.min_firmware),
        allow_unknown_chips=config.policy.auto_enroll,
    )


def appraisal_policy(config: NodeConfig, anchors: TrustAnchors, store: Store) -> Policy:
    """The configured policy with every vendor's provisioned reference values folded in.

    A stored document that no longer verifies (e.g. its manufacturer certificate expired) is
    left out with an error in the log: that vendor's chips then get their ordinary reasons.
    """
    docs = []
    for vendor, _, token in store.reference_values():
        try:
            docs.append(open_reference_values(token, anchors, now_s=int(time.time())))
        except CertificateError as exc:
            log.error(
                "stored reference values rejected",
                extra={"fields": {"vendor": vendor, "error": str(exc)}},
            )
    return with_reference_values(policy_from(config), docs)


def provision(config: NodeConfig, token: bytes) -> ReferenceValues:
    """Verify a vendor's reference-values document and keep it in the node's store (the node
    reads it at start and on SIGHUP). Raises CertificateError or StoreError (not newer)."""
    anchors, identity = load_identity(config)
    with open_store(config, identity) as store:
        held = {vendor: (number, t) for vendor, number, t in store.reference_values()}
        claimed = open_reference_values(token, anchors, now_s=int(time.time()))
        doc = open_reference_values(
            token,
            anchors,
            now_s=int(time.time()),
            held_number=held[claimed.issuer][0] if claimed.issuer in held else None,
        )  # RV_NOT_NEWER if the node holds this vendor's document or a newer one
        others = [
            open_reference_values(t, anchors, now_s=0)  # an expired vendor still owns its names
            for vendor, (_, t) in held.items()
            if vendor != doc.issuer
        ]
        with_reference_values(policy_from(config), [*others, doc])  # refuses a model clash
        store.put_reference_values(doc.issuer, doc.number, token)  # atomic, anti-rollback again
    return doc


def settings_from(config: NodeConfig, *, group_sync: bool = False) -> NodeSettings:
    lim = config.limits
    return NodeSettings(
        host=config.listen.host,
        port=config.listen.port,
        http_host=config.http.host,
        http_port=config.http.port,
        max_connections=lim.max_connections,
        max_connections_per_address=lim.max_connections_per_address,
        hello_timeout_s=lim.hello_timeout_s,
        session_timeout_s=lim.session_timeout_s,
        idle_timeout_s=lim.idle_timeout_s,
        max_frame_bytes=lim.max_frame_bytes,
        drain_timeout_s=lim.drain_timeout_s,
        group_sync=group_sync,
    )


def _stored_revocations(anchors: TrustAnchors, store: Store) -> Revocations | None:
    stored = store.get_revocations()
    if stored is None:
        return None
    rl = files.open_revocation_list(stored[1], anchors, "the store's revocation list")
    return Revocations.from_list(rl)


def effective_revocations(
    config: NodeConfig,
    anchors: TrustAnchors,
    store: Store,
    *,
    clock_ms: Callable[[], int] = wall_clock_ms,
) -> Revocations:
    """The newest verified list of (configured file, list kept in the store); stores a newer file.

    Lists are complete and numbered, so keeping the highest number is anti-rollback: removing
    or downgrading the file cannot un-revoke anything. Adopting a newer list is an audit entry
    (kind ``revocations``, SPEC §11.2) in the transaction that stores it. Processes sharing a
    store may adopt the same list at once; the one that loses that race takes the stored list.
    """
    best = _stored_revocations(anchors, store)
    if config.node.revocations_file:
        path = config.path(config.node.revocations_file)
        revs, token = files.read_revocations(path, anchors)
        if best is None or revs.number > best.number:
            entry = AuditEntry(
                time_ms=clock_ms(),
                verifier_id=store.verifier_id,
                ueid=b"",
                tier=0,
                reasons=(),
                evidence_digest=digest(token),
                nonce=u64_tag(revs.number),
                kind=KIND_REVOCATIONS,
            )
            try:
                store.put_revocations(revs.number, token, audit=entry)
                best = revs
            except StoreError:
                raced = _stored_revocations(anchors, store)  # another process stored one
                if raced is None or raced.number < revs.number:
                    raise
                best = raced
            log.info(
                "revocation list in force",
                extra={"fields": {"event": "revocations", "number": best.number}},
            )
        elif revs.number < best.number:
            log.warning(
                "configured revocation list is older than the stored one; keeping the stored one",
                extra={"fields": {"file_number": revs.number, "stored_number": best.number}},
            )
    return best or Revocations()


@dataclass(frozen=True, slots=True)
class Assembly:
    """A service and the metrics its mechanisms registered into (for the VerifierNode)."""

    service: VerifierService
    metrics: NodeMetrics


def assemble(
    *,
    identity: VerifierIdentity,
    anchors: TrustAnchors,
    store: Store,
    policy: Policy,
    revocations: Revocations,
    sections: Mapping[str, Any],
    resolve: Callable[[str], Path] = Path,
    clock_ms: Callable[[], int] = wall_clock_ms,
    metrics: NodeMetrics | None = None,
) -> Assembly:
    """A service with the verifier part of every mechanism its section turns on.

    ``sections`` holds each mechanism's configuration section by name (a missing one takes
    its defaults); ``resolve`` turns paths in them into files. ``metrics`` is a running
    node's (a reload): the parts register into a fresh mechanism registry of it.
    """
    metrics = metrics or NodeMetrics()
    mechanism_metrics = metrics.new_mechanism_registry()
    parts: dict[str, VerifierPart[Any, Any]] = {}
    for m in MECHANISMS:
        if m.verifier is None:
            continue
        section = sections.get(m.name) if m.config is not None else None
        if section is None and m.config is not None:
            section = m.config()
        part = m.verifier(
            NodeContext(
                identity=identity,
                anchors=anchors,
                store=store,
                policy=policy,
                revocations=revocations,
                section=section,
                resolve=resolve,
                metrics=mechanism_metrics,
            )
        )
        if part is not None:
            parts[m.name] = part
    service = VerifierService(
        identity=identity,
        anchors=anchors,
        store=store,
        policy=policy,
        revocations=revocations,
        clock_ms=clock_ms,
        parts=parts,
    )
    return Assembly(service, metrics)


def service_from(config: NodeConfig, store: Store) -> VerifierService:
    """The service of ``config`` on an open store (operator commands: enrol, register ...)."""
    anchors, identity = load_identity(config)
    return assemble(
        identity=identity,
        anchors=anchors,
        store=store,
        policy=appraisal_policy(config, anchors, store),
        revocations=effective_revocations(config, anchors, store),
        sections=config.mechanisms,
        resolve=config.path,
    ).service


def build_node(config: NodeConfig, *, reuse_port: bool = False) -> VerifierNode:
    """The daemon's node: identity, store (group commit), revocations, every mechanism.

    The caller runs it (``run_until_signalled``) and the node closes the store when it
    stops; if building fails halfway, the store is closed here.
    """
    anchors, identity = load_identity(config)
    group_sync = defers_sync(config)
    store = open_store(config, identity, group_sync=group_sync)
    try:
        revocations = effective_revocations(config, anchors, store)
        if identity.verifier_id in revocations.verifiers:
            raise CertificateError(
                f"verifier {identity.verifier_id!r} is revoked (list #{revocations.number})"
            )
        built = assemble(
            identity=identity,
            anchors=anchors,
            store=store,
            policy=appraisal_policy(config, anchors, store),
            revocations=revocations,
            sections=config.mechanisms,
            resolve=config.path,
        )
        settings = replace(settings_from(config, group_sync=group_sync), reuse_port=reuse_port)
        return VerifierNode(built.service, settings, built.metrics)
    except BaseException:
        store.close()
        raise


def rebuild_service(
    config: NodeConfig, service: VerifierService, metrics: NodeMetrics
) -> VerifierService:
    """A new service for ``config`` on ``service``'s identity, anchors and store (a reload).

    Blocking (files, store writes): the node runs it in its store thread.
    """
    revocations = effective_revocations(
        config,
        service.anchors,
        service.store,
        clock_ms=service.clock_ms,
    )
    return assemble(
        identity=service.identity,
        anchors=service.anchors,
        store=service.store,
        policy=appraisal_policy(config, service.anchors, service.store),  # reference values too
        revocations=revocations,
        sections=config.mechanisms,
        resolve=config.path,
        clock_ms=service.clock_ms,
        metrics=metrics,
    ).service


def reloader(
    config_path: Path, metrics: NodeMetrics
) -> Callable[[VerifierService], VerifierService]:
    """SIGHUP's action for a node configured by ``config_path`` (attest.node.server.reload).

    Re-reads the file (and ``ATTEST_*`` overrides); the revocation lists, ``[policy]``, the
    vendors' reference values provisioned since (``attest verifier provision``) and the
    mechanisms' sections take effect. Identity, store, listeners and limits need a restart.
    """

    def rebuild(service: VerifierService) -> VerifierService:
        return rebuild_service(load_config(config_path), service, metrics)

    return rebuild
