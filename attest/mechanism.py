"""The seam: how a mechanism plugs into the verifier, the chip, the store and the CLI.

A *mechanism* (Offline Licensing, Fixed Set, location, federation) is one package that declares
a :class:`Mechanism` and is listed once in :mod:`attest.registry`. Nothing in the core, the
node or the store names a mechanism; they work through the parts declared here.

Theory of operation (verifier side)
-----------------------------------
For each session the node (attest/node/service.py) does, in order:

1. ``view = part.load(ueid)`` for every enabled :class:`VerifierPart` — what the mechanism
   needs from its tables to judge this chip (store reads; blocking, in the store thread);
2. :func:`appraise_session` — pure: the verification core (:func:`attest.verify.core.appraise`),
   then ``part.appraise(view, appraisal)`` of every mechanism, combined into the *one* verdict
   that is signed (reasons merged in code order, tier the worst of all) and the one
   :data:`~attest.store.base.Commit` for the chip's state;
3. ``store.commit_appraisal(commit=..., steps=..., events=...)`` — one transaction: the nonce,
   the chip's state, every mechanism's ``steps``, the audit entry and the audit entries of the
   mechanisms' ``Findings.events`` (a pod alert), durable before anything is sent;
4. ``part.conclude(findings, verdict)`` — after the commit: effects that need the committed
   appraisal (a licence renewal in its own transaction, in-memory caches, alerts); it may return
   a :class:`Grant` that rides in the RESULT frame.

A part that may judge a chain under *other trust anchors* (federation: a chip of a partner
authority) is a :class:`ChainPart`: before step 1 the node asks it for a :class:`ChainRoute`
(:func:`route_chain`), and the core then verifies the chain under the route's anchors (never
through the node's chain cache, which holds chains of its own anchors); a route that refuses a
foreign chain leaves the node's own anchors (so the core reports CERT_CHAIN_INVALID) and adds
its reasons, which say why.

A part that also takes part in the *live session* (location verification) is a
:class:`SessionPart` as well: after the chip's EVIDENCE the node asks it how many PINGs to send
(:meth:`SessionPart.pings`), times each PONG with its monotonic clock, and gives the part the
:class:`LiveSession` in place of step 1 (:meth:`SessionPart.load_session`); when the
connection ends, :meth:`SessionPart.closed`. A node without such a part sends no PING.

The commit rule (SPEC §9.8): the chip's state advances exactly when the *core* accepted the
Evidence. A mechanism can make the signed verdict contraindicated, but not undo what the core
established: an authentic, fresh Evidence's counters and meters are facts that the anti-replay
and anti-rollback checks of every later session need, whatever else is wrong with the chip.

Chip side
---------
A :class:`ChipPart` lives inside one simulated chip: it adds its claims to every Evidence, may
limit the chip's work (licensing throttles), takes the grants addressed to it and persists its
own state with the chip's.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from attest.hardware import ChipModel
from attest.identity import VerifierIdentity
from attest.keys import PublicKey
from attest.messages.attestation import Challenge
from attest.messages.revocation import Revocations
from attest.messages.schema import Field, SignedMessage
from attest.store.audit import AuditEvent
from attest.store.base import Advance, ChipRecord, Commit, Enroll, Nothing, Step, Store
from attest.verify.chain import ChainCache, DeviceChain, TrustAnchors
from attest.verify.clone import clone_suspected
from attest.verify.core import Appraisal, Verdict, appraise
from attest.verify.policy import Policy
from attest.verify.reasons import Reason, ReasonCode, tier_of

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

ViewT = TypeVar("ViewT")
DetailT = TypeVar("DetailT")


@dataclass(frozen=True, slots=True)
class Grant:
    """Something a verifier hands a chip with a RESULT (a renewed licence and its delegation).

    On the wire it is the RESULT frame's optional third item ``[token, companion / null]``.
    """

    token: bytes
    companion: bytes | None = None


@dataclass(frozen=True, slots=True)
class Findings(Generic[DetailT]):
    """What one mechanism concluded about one session's Evidence (pure)."""

    #: reason codes this mechanism adds to the verdict
    reasons: tuple[ReasonCode, ...] = ()
    #: the mechanism's own record of what to commit and act on (opaque to the node)
    detail: DetailT | None = None
    #: audit entries of the mechanism's own kinds that this session raises (e.g. a pod
    #: alert): appended right after the session's entry, in the appraisal's transaction
    events: tuple[AuditEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class Conclusion:
    """What a mechanism did after the appraisal was committed."""

    #: to deliver with the RESULT (at most one mechanism grants per session)
    grant: Grant | None = None
    #: fields for the session's log line
    log: Mapping[str, Any] = field(default_factory=dict)
    #: the mechanism's own record of what it did (e.g. a licence Renewal), for its callers
    detail: Any = None


class VerifierPart(Protocol[ViewT, DetailT]):
    """A mechanism inside one verifier node (built by the node from its configuration).

    Its methods are called from the node's store threads, several sessions at once on a store
    whose ``concurrency`` is above one (PostgreSQL): a part that caches state guards it.
    """

    def load(self, ueid: bytes) -> ViewT:
        """What this mechanism needs to judge the chip ``ueid`` (may read the store)."""
        ...

    def appraise(
        self, view: ViewT, core: Appraisal, *, revocations: Revocations, now_ms: int
    ) -> Findings[DetailT]:
        """Pure: the reasons to add to the verdict and what to commit (see the module doc)."""
        ...

    def steps(self, findings: Findings[DetailT], verdict: Verdict) -> Sequence[Step]:
        """Writes that must land in the appraisal's own transaction (``verdict`` is the one
        that is signed)."""
        ...

    def conclude(self, findings: Findings[DetailT], verdict: Verdict, *, now_ms: int) -> Conclusion:
        """After the appraisal transaction committed: effects and a grant for the RESULT."""
        ...


#: a part and the view it loaded for this session
Loaded = tuple[VerifierPart[Any, Any], Any]


@dataclass(frozen=True, slots=True)
class TimedPing:
    """One PING of a live session and its PONG (SPEC §7.3): the nonce sent, the PingResponse
    token that came back, and the round trip in nanoseconds as the node's driver timed it with
    its monotonic clock (from just before the PING was written to just after the PONG was
    parsed, so everything on the way only adds)."""

    nonce: bytes
    response: bytes
    rtt_ns: int


@dataclass(frozen=True, slots=True)
class LiveSession:
    """What the node's driver knows of the connection a round belongs to."""

    #: random per connection: tells two sessions of one chip apart
    session_id: bytes
    #: this round's timed PINGs, in the order sent
    pings: tuple[TimedPing, ...] = ()


class SessionPart(abc.ABC):
    """A verifier part that also takes part in the live session (see the module doc).

    An ABC, not a Protocol: the node finds such parts by ``isinstance``, which a type checker
    verifies; a part opts in by inheriting it and implementing all three methods.
    """

    @abc.abstractmethod
    def pings(self, ueid: bytes, session_id: bytes, *, now_ms: int) -> int:
        """The chip ``ueid`` sent EVIDENCE on session ``session_id``: how many PINGs to send
        it before the RESULT (0: none). May read and write the store (it runs in the store
        thread)."""

    @abc.abstractmethod
    def load_session(self, ueid: bytes, session: LiveSession) -> Any:
        """:meth:`VerifierPart.load` for a live session: the view, with what the session
        measured."""

    @abc.abstractmethod
    def closed(self, ueid: bytes, session_id: bytes) -> None:
        """The connection of ``session_id`` ended, orderly or not (may write the store)."""


@dataclass(frozen=True, slots=True)
class ChainRoute:
    """Which trust anchors judge a chip's chain, and why a foreign chain is not recognised."""

    #: the anchors to verify the chain under (None: the node's own)
    anchors: TrustAnchors | None = None
    #: reasons to add to the verdict (why the chain is not recognised)
    reasons: tuple[ReasonCode, ...] = ()
    #: fields for the session's log line (the chain's authority, the agreement number ...)
    log: Mapping[str, Any] = field(default_factory=dict)
    #: the partner authority and the agreement number the result names (SPEC B.5): set only
    #: when a partner's anchors judge the chain by an agreement
    chain: tuple[str, int] | None = None
    #: with ``chain``: the FLOPs the agreement lets this node's authority license to the
    #: chain authority's roaming chips in all (the partner quota; 0: it may not license them)
    licence_quota: int = 0


#: the route of a chain no part claims: the node's own anchors, nothing added
HOME = ChainRoute()


class RoutedPart(abc.ABC):
    """A verifier part whose view of a chip depends on its chain's route (licensing: a
    partner's roaming chip is licensed only within the agreement's quota). Found by
    ``isinstance``; the node calls :meth:`load_routed` in place of ``load``."""

    @abc.abstractmethod
    def load_routed(self, ueid: bytes, route: ChainRoute) -> Any:
        """:meth:`VerifierPart.load` knowing which anchors judge the chip's chain."""


class ChainPart(abc.ABC):
    """A verifier part that may route a chain to another authority's anchors (see the module
    doc). An ABC the node finds by ``isinstance``, like :class:`SessionPart`."""

    @abc.abstractmethod
    def route(self, chain: DeviceChain, *, now_ms: int) -> ChainRoute | None:
        """The route of ``chain``, or None when it is not this part's (the node's own chain).

        Pure given the part's state; it may read the chain's payloads *unverified* only to
        choose anchors: the core verifies the chain under them."""


def route_chain(parts: Sequence[object], chain: DeviceChain, *, now_ms: int) -> ChainRoute:
    """The first route a :class:`ChainPart` among ``parts`` gives ``chain`` (else :data:`HOME`)."""
    for part in parts:
        if isinstance(part, ChainPart):
            route = part.route(chain, now_ms=now_ms)
            if route is not None:
                return route
    return HOME


@dataclass(frozen=True, slots=True)
class SessionAppraisal:
    """Everything :func:`appraise_session` decided: the signed verdict and what to commit."""

    verdict: Verdict
    commit: Commit
    #: the core's own appraisal (its reasons are part of ``verdict``)
    core: Appraisal
    #: each enabled mechanism's findings, in registry order
    findings: tuple[tuple[VerifierPart[Any, Any], Findings[Any]], ...] = ()

    def steps(self) -> list[Step]:
        """Every mechanism's writes for the appraisal transaction, in registry order."""
        return [s for part, f in self.findings for s in part.steps(f, self.verdict)]

    def events(self) -> list[AuditEvent]:
        """Every mechanism's audit events for the appraisal transaction, in registry order."""
        return [e for _, f in self.findings for e in f.events]


def appraise_session(
    evidence: bytes,
    *,
    challenge: Challenge,
    chain: DeviceChain,
    record: ChipRecord | None,
    anchors: TrustAnchors,
    revocations: Revocations,
    policy: Policy,
    now_ms: int,
    mechanisms: Sequence[Loaded] = (),
    cache: ChainCache | None = None,
    node_checks: bool = False,
    route: ChainRoute = HOME,
) -> SessionAppraisal:
    """Appraise one session's Evidence with the core and every mechanism (pure).

    ``record`` is the chip's registry entry (None on first contact): a known chip is judged
    against the chain and state it enrolled with, not the chain it presents now.
    ``node_checks`` adds what a verifier node judges beyond the procedure the vectors pin
    (SPEC §9.11, :data:`attest.verify.reasons.NODE_REASONS`): the clone check
    (attest.verify.clone). The node always sets it. The two halves, :func:`appraise_core` and
    :func:`with_mechanisms`, may run apart (the daemon runs the core on its event loop and the
    mechanisms in its store thread, beside their loads).
    """
    core = appraise_core(
        evidence,
        challenge=challenge,
        chain=chain,
        record=record,
        anchors=route.anchors or anchors,
        revocations=revocations,
        policy=policy,
        now_ms=now_ms,
        cache=cache if route.anchors is None else None,
    )
    return with_mechanisms(
        core,
        chain=chain,
        record=record,
        revocations=revocations,
        now_ms=now_ms,
        mechanisms=mechanisms,
        node_checks=node_checks,
        added=route.reasons,
    )


def appraise_core(
    evidence: bytes,
    *,
    challenge: Challenge,
    chain: DeviceChain,
    record: ChipRecord | None,
    anchors: TrustAnchors,
    revocations: Revocations,
    policy: Policy,
    now_ms: int,
    cache: ChainCache | None = None,
) -> Appraisal:
    """The verification core's half of :func:`appraise_session` (pure; no mechanism state)."""
    used = DeviceChain(record.device_cert, record.manufacturer_cert) if record else chain
    return appraise(
        evidence,
        challenge=challenge,
        chain=used,
        state=record.state if record else None,
        anchors=anchors,
        revocations=revocations,
        policy=policy,
        now_ms=now_ms,
        cache=cache,
    )


def with_mechanisms(
    core: Appraisal,
    *,
    chain: DeviceChain,
    record: ChipRecord | None,
    revocations: Revocations,
    now_ms: int,
    mechanisms: Sequence[Loaded] = (),
    node_checks: bool = False,
    added: Sequence[ReasonCode] = (),
) -> SessionAppraisal:
    """The mechanisms' half of :func:`appraise_session`: their findings on the core's
    appraisal (and, with ``node_checks``, the node's clone check), combined into the one
    verdict and the one Commit (pure given the views).

    Run it where the mechanisms' parts are used (their views may share the parts' state).
    ``added`` are reasons decided before the appraisal (a chain's route, :class:`ChainRoute`).
    """
    findings = tuple(
        (part, part.appraise(view, core, revocations=revocations, now_ms=now_ms))
        for part, view in mechanisms
    )
    verdict = core.verdict
    extra: list[ReasonCode] = [*added, *(r for _, f in findings for r in f.reasons)]
    if node_checks and clone_suspected(core, record.state if record else None):
        extra.append(Reason.CLONE_SUSPECTED)
    if extra:
        reasons = tuple(sorted({*verdict.reasons, *extra}))
        verdict = Verdict(
            tier_of(reasons), reasons, verdict.evidence_digest, verdict.ueid, verdict.evidence
        )
    commit: Commit
    if core.new_state is None:
        commit = Nothing()
    elif record is None:
        commit = Enroll(ChipRecord(chain.device_cert, chain.manufacturer_cert, core.new_state))
    else:
        commit = Advance(core.new_state, record.state.attest_counter)
    return SessionAppraisal(verdict, commit, core, findings)


@dataclass(frozen=True, slots=True)
class NodeContext:
    """What a mechanism gets when a node builds its verifier part (attest/node/app.py)."""

    identity: VerifierIdentity
    anchors: TrustAnchors
    store: Store
    policy: Policy
    revocations: Revocations
    #: the mechanism's own section of the node configuration (its ``config`` type), or None
    section: Any
    #: resolves a path in the configuration against the configuration file's folder
    resolve: Callable[[str], Path]
    #: the node's Prometheus registry, for the mechanism's own metrics (None: no metrics)
    metrics: CollectorRegistry | None = None


class ChipPart(Protocol):
    """A mechanism inside one chip (see the module doc)."""

    def evidence_claims(self, now_s: float) -> Mapping[str, Any]:
        """This mechanism's claims for the Evidence being built (names of its claim Fields)."""
        ...

    def usage(
        self, seconds: float, share: float, peaks: tuple[int, int, int], chip_time_ms: int
    ) -> tuple[float, float, float] | None:
        """Work done per meter when the chip runs ``seconds`` at ``share`` of peak, if this
        mechanism limits it (licensing), else None."""
        ...

    def accept_grant(self, grant: Grant, *, session_nonce: bytes, now_s: float) -> str | None:
        """Take a grant addressed to this mechanism: a one-line account of what was done
        (raises ChipRefusal when refused), or None if it is not this mechanism's."""
        ...

    def apply_revocations(self, token: bytes) -> int | None:
        """Adopt a newer authority revocation list (raises ChipRefusal when refused): its
        number, or None if this mechanism keeps no revocations."""
        ...

    def loaded(self) -> None:
        """Called once the chip is restored from its folder (e.g. to roll a journal forward)."""
        ...

    def save(self) -> dict[str, Any] | None:
        """The part's state for the chip's state file (None: it keeps its own file)."""
        ...


class QuietChipPart:
    """A :class:`ChipPart` that adds no claims, limits nothing, takes no grant or revocation
    list and keeps nothing in the chip's state file. A mechanism whose chip side does one thing
    (answer PINGs, recognise partner verifiers) subclasses it and overrides only that."""

    def evidence_claims(self, now_s: float) -> Mapping[str, Any]:
        return {}

    def usage(
        self, seconds: float, share: float, peaks: tuple[int, int, int], chip_time_ms: int
    ) -> tuple[float, float, float] | None:
        return None

    def accept_grant(self, grant: Grant, *, session_nonce: bytes, now_s: float) -> str | None:
        return None

    def apply_revocations(self, token: bytes) -> int | None:
        return None

    def loaded(self) -> None:
        return None

    def save(self) -> dict[str, Any] | None:
        return None


class ChipHost(Protocol):
    """What a chip offers the mechanisms inside it (attest.chip.device.Chip is one)."""

    @property
    def ueid(self) -> bytes: ...

    @property
    def anchors(self) -> TrustAnchors: ...

    @property
    def model(self) -> ChipModel: ...

    @property
    def firmware_version(self) -> tuple[int, ...]: ...

    @property
    def public_key(self) -> PublicKey: ...

    @property
    def state_dir(self) -> Path | None:
        """The chip's state folder (None for a chip that lives in memory only)."""
        ...

    @property
    def chip_time_s(self) -> int:
        """The chip's monotonic operating time in whole seconds."""
        ...

    def persist(self) -> None:
        """Write the chip's state file durably (a part calls it after changing its state)."""
        ...

    def partner_licensor(self, delegation: bytes, *, now_s: int) -> PartnerLicensor | None:
        """A part's :meth:`VerifierRecognizer.licensor` for ``delegation`` (None: home's)."""
        ...


#: signs a message with the chip's device key (handed only to the chip's own parts)
DeviceSigner = Callable[[SignedMessage], bytes]


class PingResponder(abc.ABC):
    """A chip part that answers the PINGs of a live session (location verification).

    Found by ``isinstance`` (an ABC a type checker verifies); a chip without one cannot be
    pinged, and one that is never pinged never uses it.
    """

    @abc.abstractmethod
    def answer_ping(self, nonce: bytes, landmark_id: str) -> bytes:
        """The signed answer to a PING with ``nonce`` from the verifier ``landmark_id`` (the
        certified verifier of this round's CHALLENGE)."""


@dataclass(frozen=True, slots=True)
class PartnerLicensor:
    """A partner authority whose delegated nodes may license a roaming chip (federation).

    ``anchors`` judge the partner's Delegation; ``quota_flops`` bounds the FLOPs the chip may
    accept from that partner's nodes in all (the agreement's partner quota). ``anchors`` None:
    a partner's delegation the chip must refuse, ``why`` saying why.
    """

    anchors: TrustAnchors | None
    quota_flops: int = 0
    why: str = ""


class VerifierRecognizer(abc.ABC):
    """A chip part that may recognise a verifier node certified by another authority
    (federation). Found by ``isinstance``, like :class:`PingResponder`; a chip without one
    accepts only verifiers of its own fused authority (SPEC §7.10)."""

    @abc.abstractmethod
    def verifier_anchors(self, verifier_cert: bytes, *, now_s: int) -> TrustAnchors | None:
        """The anchors to check ``verifier_cert`` under (a partner authority's), or None to
        leave it to the chip's own anchors. Pure given the part's state; the certificate's
        issuer may be read unverified only to choose the anchors."""

    def licensor(self, delegation: bytes, *, now_s: int) -> PartnerLicensor | None:
        """Who judges a Delegation of another authority (a roaming chip's licence), or None
        to leave it to the chip's own anchors (read the issuer unverified, only to choose)."""
        return None


@dataclass(frozen=True)
class Mechanism:
    """One mechanism's declaration (see the module doc). Listed in :mod:`attest.registry`."""

    #: short stable name: the config section, the chip state key, log and metric prefixes
    name: str
    #: what SPEC calls it
    title: str
    #: its reason enum and the code range it owns (inclusive)
    reasons: tuple[type[ReasonCode], int, int] | None = None
    #: the optional claims it adds to Evidence
    evidence_claims: tuple[Field, ...] = ()
    #: the content types of its signed messages (SPEC's content-type table)
    content_types: tuple[str, ...] = ()
    #: SPEC §5 names of its claim keys (``attest inspect`` prints them), e.g. from
    #: :func:`attest.messages.claims.private_claim_names`
    claim_names: Mapping[int, str] = field(default_factory=dict)
    #: names of the members of its map-valued claims, by the claim's name
    member_names: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    #: its section of the node configuration: a frozen dataclass with defaults, or None
    config: type | None = None
    #: builds its verifier part for a node, or None when the configuration leaves it off
    verifier: Callable[[NodeContext], VerifierPart[Any, Any] | None] | None = None
    #: builds its part of a chip from what the chip saved for it (or what fabrication asked
    #: for; None when neither): the part, or None for a chip without the mechanism
    chip: Callable[[ChipHost, Any, DeviceSigner], ChipPart | None] | None = None
    #: module with ``add_commands(groups)`` for the CLI (only attest.cli imports it)
    cli: str | None = None
    #: validates its configuration section beyond types (raises ConfigError)
    check_config: Callable[[Any], None] | None = None
