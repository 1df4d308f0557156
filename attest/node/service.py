"""What a verifier node does for one session, minus the network: the glue of core and store.

:class:`VerifierService` issues challenges and concludes sessions: it looks up the chip, loads what
each mechanism needs, runs :func:`attest.mechanism.appraise_session` (the core plus every mechanism,
pure), signs the EAR result, and commits nonce consumption, the chip's new state, the mechanisms'
writes, the audit entry and the signed result token in one durable transaction *before* the result
is returned to the caller (and so before it can reach the chip); then each mechanism concludes (a
licence renewal rides back as a grant). Its store steps block (SQLite, fsync, PostgreSQL round
trips); the trio server runs them in its store thread(s) — as many at once as the store's
``concurrency`` allows (one for SQLite), so the mechanism parts are thread-safe — and the pure steps
on its event loop (:meth:`VerifierService.conclude` says which are which). Build one with
:mod:`attest.node.app`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from attest import __version__
from attest.errors import CertificateError
from attest.identity import VerifierIdentity
from attest.mechanism import (
    HOME,
    ChainRoute,
    Conclusion,
    Grant,
    LiveSession,
    Loaded,
    RoutedPart,
    SessionAppraisal,
    SessionPart,
    VerifierPart,
    appraise_core,
    route_chain,
    with_mechanisms,
)
from attest.messages.attestation import NO_CHIP_UEID, NONCE_BYTES, AttestationResult, Challenge
from attest.messages.certs import DeviceCert, ManufacturerCert
from attest.messages.revocation import Revocations
from attest.store.audit import AuditEntry, AuditRecord
from attest.store.base import ChipRecord, Enroll, StateConflict, Store
from attest.verify.chain import ChainCache, DeviceChain, TrustAnchors, verify_device_chain
from attest.verify.core import Appraisal, Verdict
from attest.verify.policy import Policy
from attest.verify.reasons import trustworthiness_vector
from attest.verify.state import ChipState, ChipStatus

P = TypeVar("P")


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Outcome:
    """A concluded session: the verdict, the signed result token and its audit record."""

    verdict: Verdict
    result: bytes
    audit: AuditRecord
    #: what each enabled mechanism did after the commit, by mechanism name
    conclusions: Mapping[str, Conclusion] = field(default_factory=dict)
    #: the session registered the chip (first contact with auto-enrolment)
    enrolled: bool = False
    #: which anchors judged the chain (a partner authority's under federation)
    route: ChainRoute = HOME

    @property
    def grant(self) -> Grant | None:
        """The grant to send with the RESULT (at most one mechanism grants)."""
        for c in self.conclusions.values():
            if c.grant is not None:
                return c.grant
        return None

    @property
    def log_fields(self) -> dict[str, Any]:
        """Every mechanism's fields for the session's log line (and the chain's route: the
        partner authority and the agreement number, ``chain_authority`` / ``chain_agreement``)."""
        out: dict[str, Any] = {f"chain_{k}": v for k, v in self.route.log.items()}
        for c in self.conclusions.values():
            out.update(c.log)
        return out


@dataclass(frozen=True, slots=True)
class Reading:
    """What one session's appraisal needs from the store (:meth:`VerifierService.read`)."""

    chain: DeviceChain
    #: the chip's registry entry (None: unknown, or the chain names no chip)
    record: ChipRecord | None
    #: each enabled mechanism's view of the chip
    loaded: tuple[Loaded, ...]
    #: which anchors judge the chain (a partner authority's, under federation)
    route: ChainRoute = HOME


@dataclass(frozen=True, slots=True)
class Appraised:
    """The core's appraisal of one session, not yet committed (:meth:`VerifierService.appraise`)."""

    reading: Reading
    challenge: Challenge
    core: Appraisal
    now_ms: int


@dataclass(frozen=True, slots=True)
class Recorded:
    """A committed session and its signed result token (:meth:`VerifierService.record`)."""

    appraised: Appraised
    session: SessionAppraisal
    audit: AuditRecord
    conclusions: Mapping[str, Conclusion]
    #: the signed AttestationResult, kept in the store beside ``audit``
    result: bytes


class VerifierService:
    """Challenge issuing and evidence appraisal for one verifier node."""

    def __init__(
        self,
        *,
        identity: VerifierIdentity,
        anchors: TrustAnchors,
        store: Store,
        policy: Policy,
        revocations: Revocations | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
        parts: Mapping[str, VerifierPart[Any, Any]] | None = None,
    ) -> None:
        self.identity = identity
        self.anchors = anchors
        self.store = store
        self.policy = policy
        self.revocations = revocations or Revocations()
        self.clock_ms = clock_ms
        self.cache = ChainCache()
        #: the enabled mechanisms' verifier parts, by mechanism name, in registry order
        self.parts: dict[str, VerifierPart[Any, Any]] = dict(parts or {})

    @property
    def session_parts(self) -> list[SessionPart]:
        """The enabled parts that take part in the live session (they may PING the chip)."""
        return [p for p in self.parts.values() if isinstance(p, SessionPart)]

    def route(self, chain: DeviceChain) -> ChainRoute:
        """Which anchors judge ``chain`` (:func:`attest.mechanism.route_chain`)."""
        return route_chain(tuple(self.parts.values()), chain, now_ms=self.clock_ms())

    def _certs(
        self, chain: DeviceChain, route: ChainRoute | None = None
    ) -> tuple[DeviceCert, ManufacturerCert] | None:
        """The chain's certificates under its route's anchors (the cache holds only chains of
        the node's own anchors)."""
        route = self.route(chain) if route is None else route
        if route.anchors is not None:
            return verify_device_chain(chain, route.anchors)
        return verify_device_chain(chain, self.anchors, self.cache)

    def _ueid_of(self, chain: DeviceChain) -> bytes | None:
        certs = self._certs(chain)
        return certs[0].ueid if certs is not None else None

    def pings_for(self, chain: DeviceChain, session_id: bytes) -> int:
        """How many PINGs to send the chip of ``chain`` after its EVIDENCE (0: none)."""
        parts = self.session_parts
        ueid = self._ueid_of(chain) if parts else None
        if ueid is None:
            return 0
        now_ms = self.clock_ms()
        return max(p.pings(ueid, session_id, now_ms=now_ms) for p in parts)

    def session_closed(self, chain: DeviceChain, session_id: bytes) -> None:
        """Tell the session parts that the connection ``session_id`` ended."""
        parts = self.session_parts
        ueid = self._ueid_of(chain) if parts else None
        if ueid is not None:
            for p in parts:
                p.closed(ueid, session_id)

    def part(self, kind: type[P]) -> P | None:
        """The enabled mechanism part of type ``kind``, or None."""
        for part in self.parts.values():
            if isinstance(part, kind):
                return part
        return None

    def make_challenge(self) -> tuple[Challenge, bytes]:
        """A fresh signed challenge (pure but for the clock and the nonce; not yet recorded)."""
        now_s = self.clock_ms() // 1000
        challenge = Challenge(
            verifier_id=self.identity.verifier_id,
            issued_at=now_s,
            expires_at=now_s + self.policy.challenge_ttl_s,
            nonce=os.urandom(NONCE_BYTES),
            region=self.identity.region,
        )
        return challenge, challenge.sign(self.identity.key)

    def record_challenge(self, challenge: Challenge) -> None:
        """Record ``challenge`` as outstanding (store write): before it is sent."""
        self.store.issue_challenge(
            challenge.nonce, None, challenge.issued_at * 1000, challenge.expires_at * 1000
        )

    def new_challenge(self) -> tuple[Challenge, bytes]:
        """A fresh signed challenge, recorded as outstanding in the store."""
        challenge, token = self.make_challenge()
        self.record_challenge(challenge)
        return challenge, token

    def conclude(
        self,
        chain: DeviceChain,
        challenge: Challenge,
        evidence: bytes,
        session: LiveSession | None = None,
    ) -> Outcome:
        """Appraise ``evidence`` for ``challenge`` and durably record the outcome.

        ``session`` is the live connection's (its id and this round's timed PINGs); None for an
        appraisal outside a connection.

        The four steps in one call: :meth:`read` and :meth:`record` use the store,
        :meth:`appraise` and :meth:`finish` do not (the daemon runs the first two in its store
        thread and the others on its event loop, so that the two threads do not contend for
        the interpreter: the store thread then mostly waits in SQLite). :meth:`record` also
        signs the result (one Ed25519 signature), so that the token is committed with its
        audit entry.
        """
        for attempt in (1, 2):
            try:
                return self.finish(
                    self.record(self.appraise(self.read(chain, session), challenge, evidence))
                )
            except StateConflict:
                # Another node (sharing the store) advanced this chip meanwhile: appraise
                # again against the state that won; the evidence will be judged against it.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def read(self, chain: DeviceChain, live: LiveSession | None = None) -> Reading:
        """Step 1 (store reads): the chip the chain names, and what each mechanism knows (a
        part that takes part in the live session reads it with the session's timed PINGs)."""
        route = self.route(chain)
        certs = self._certs(chain, route)
        ueid = certs[0].ueid if certs is not None else None
        if ueid is None:
            return Reading(chain, None, (), route)
        record = self.store.get_chip(ueid)
        loaded = tuple(
            (
                part,
                part.load_session(ueid, live)
                if live is not None and isinstance(part, SessionPart)
                else part.load_routed(ueid, route)
                if isinstance(part, RoutedPart)
                else part.load(ueid),
            )
            for part in self.parts.values()
        )
        return Reading(chain, record, loaded, route)

    def appraise(self, reading: Reading, challenge: Challenge, evidence: bytes) -> Appraised:
        """Step 2 (pure): the verification core's appraisal."""
        now_ms = self.clock_ms()
        core = appraise_core(
            evidence,
            challenge=challenge,
            chain=reading.chain,
            record=reading.record,
            anchors=reading.route.anchors or self.anchors,
            revocations=self.revocations,
            policy=self.policy,
            now_ms=now_ms,
            cache=self.cache if reading.route.anchors is None else None,
        )
        return Appraised(reading, challenge, core, now_ms)

    def record(self, appraised: Appraised) -> Recorded:
        """Step 3 (store): the mechanisms' findings, the durable commit, their conclusions.

        Raises :class:`StateConflict` if the chip changed since :meth:`read` (nothing was
        committed): read and appraise again.
        """
        reading, now_ms, nonce = appraised.reading, appraised.now_ms, appraised.challenge.nonce
        session = with_mechanisms(
            appraised.core,
            chain=reading.chain,
            record=reading.record,
            revocations=self.revocations,
            now_ms=now_ms,
            mechanisms=reading.loaded,
            node_checks=True,
            added=reading.route.reasons,
        )
        verdict = session.verdict
        subject = verdict.ueid or b""
        # Signed before the commit so that the token, exactly as it will be sent, is kept in
        # the same transaction as the audit entry (GET /chips/{ueid}/result serves it).
        result = self._sign_result(appraised, verdict)
        audit = self.store.commit_appraisal(
            nonce=nonce,
            ueid=subject,
            now_ms=now_ms,
            commit=session.commit,
            entry=AuditEntry(
                time_ms=now_ms,
                verifier_id=self.identity.verifier_id,
                ueid=subject,
                tier=int(verdict.tier),
                reasons=tuple(int(r) for r in verdict.reasons),
                evidence_digest=verdict.evidence_digest,
                nonce=nonce,
            ),
            steps=session.steps(),
            events=[e.entry(now_ms, self.identity.verifier_id) for e in session.events()],
            result=result,
        )
        names = {id(part): name for name, part in self.parts.items()}
        conclusions = {
            names[id(part)]: part.conclude(findings, verdict, now_ms=now_ms)
            for part, findings in session.findings
        }
        return Recorded(appraised, session, audit, conclusions, result)

    def _sign_result(self, appraised: Appraised, verdict: Verdict) -> bytes:
        """The signed AttestationResult (an EAR, SPEC §6.8) of an appraisal's verdict."""
        subject = verdict.ueid or b""
        return AttestationResult.of(
            verifier_id=self.identity.verifier_id,
            issued_at=appraised.now_ms // 1000,
            nonce=appraised.challenge.nonce,
            ueid=subject if subject else NO_CHIP_UEID,
            status=int(verdict.tier),
            vector=trustworthiness_vector(verdict.reasons),
            policy_id=self.policy.policy_id,
            reasons=tuple(int(r) for r in verdict.reasons),
            verifier_build=f"attest {__version__}",
            evidence_digest=verdict.evidence_digest,
            chain=appraised.reading.route.chain,
        ).sign(self.identity.key)

    def finish(self, recorded: Recorded) -> Outcome:
        """Step 4 (pure): the outcome of a committed appraisal, with its signed result."""
        enrolled = isinstance(recorded.session.commit, Enroll)
        route = recorded.appraised.reading.route
        return Outcome(
            recorded.session.verdict,
            recorded.result,
            recorded.audit,
            recorded.conclusions,
            enrolled,
            route,
        )

    def enroll(self, chain: DeviceChain) -> bool:
        """Register a chip from its certificates (operator enrolment). False if already known."""
        certs = self._certs(chain)
        if certs is None:
            raise CertificateError("device certificate chain does not verify to the authority")
        device = certs[0]
        state = ChipState.enrolled(device.ueid, device.public_key, device.hwmodel)
        return self.store.enroll(ChipRecord(chain.device_cert, chain.manufacturer_cert, state))

    def revoke_chip(self, ueid: bytes) -> None:
        self.store.set_status(ueid, ChipStatus.REVOKED)
