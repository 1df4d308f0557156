"""What a verifier node does for one session, minus the network: the glue of core and store.

:class:`VerifierService` issues challenges and concludes sessions: it looks up the chip,
runs the pure verification core, signs the EAR result, and commits nonce consumption, the
chip's new state and the audit entry in one durable transaction *before* the result is
returned to the caller (and so before it can reach the chip). Its methods block (SQLite,
fsync); the trio server calls them from a worker thread, one at a time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from attest import __version__
from attest.errors import CertificateError, StoreError
from attest.identity import VerifierIdentity
from attest.licensing.issuer import LicenseIssuer, Renewal, RenewalOutcome
from attest.messages import claims as C
from attest.messages.attestation import NONCE_BYTES, AttestationResult, Challenge
from attest.messages.revocation import Revocations
from attest.pods.monitor import PodMonitor  # Fixed Set
from attest.store.audit import AuditEntry, AuditRecord
from attest.store.base import ChipRecord, StateConflict, Store
from attest.verify.chain import ChainCache, DeviceChain, TrustAnchors, verify_device_chain
from attest.verify.core import Verdict, appraise
from attest.verify.graph import GraphAlert  # Fixed Set
from attest.verify.policy import Policy
from attest.verify.state import ChipState, ChipStatus


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Outcome:
    """A concluded session: the verdict, the signed result token and its audit record."""

    verdict: Verdict
    result: bytes
    audit: AuditRecord
    #: Offline Licensing: what the renewal did, and the grant to send with the result
    renewal: Renewal | None = None
    #: Fixed Set: new link-graph alerts involving this chip (for the log and metrics)
    pod_alerts: tuple[GraphAlert, ...] = ()


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
        licensing: LicenseIssuer | None = None,
    ) -> None:
        self.identity = identity
        self.anchors = anchors
        self.store = store
        self.policy = policy
        self.revocations = revocations or Revocations()
        self.clock_ms = clock_ms
        self.cache = ChainCache()
        #: Fixed Set: pod registry, latest pod reports, link-graph appraisal
        self.pods = PodMonitor(store, anchors, policy)
        #: Offline Licensing: the node's license issuer (None: the node issues no licenses)
        self.licensing = licensing

    def new_challenge(self) -> tuple[Challenge, bytes]:
        """A fresh signed challenge, recorded as outstanding in the store."""
        now_ms = self.clock_ms()
        now_s = now_ms // 1000
        challenge = Challenge(
            verifier_id=self.identity.verifier_id,
            issued_at=now_s,
            expires_at=now_s + self.policy.challenge_ttl_s,
            nonce=os.urandom(NONCE_BYTES),
            region=self.identity.region,
        )
        self.store.issue_challenge(challenge.nonce, None, now_ms, challenge.expires_at * 1000)
        return challenge, challenge.sign(self.identity.key)

    def conclude(self, chain: DeviceChain, challenge: Challenge, evidence: bytes) -> Outcome:
        """Appraise ``evidence`` for ``challenge`` and durably record the outcome."""
        try:
            return self._conclude_once(chain, challenge, evidence)
        except StateConflict:
            # Another node (sharing the store) advanced this chip meanwhile: appraise again
            # against the state that won; the evidence will now be judged against it.
            return self._conclude_once(chain, challenge, evidence)

    def _conclude_once(self, chain: DeviceChain, challenge: Challenge, evidence: bytes) -> Outcome:
        now_ms = self.clock_ms()
        certs = verify_device_chain(chain, self.anchors, self.cache)
        record = self.store.get_chip(certs[0].ueid) if certs is not None else None
        # A known chip is judged against the chain it enrolled with, not the one it presents.
        used_chain = DeviceChain(record.device_cert, record.manufacturer_cert) if record else chain
        # Offline Licensing: what the ledger says was issued to the chip the chain names
        ledger = self.licensing.view(certs[0].ueid) if self.licensing and certs else None
        verdict = appraise(
            evidence,
            challenge=challenge,
            chain=used_chain,
            state=record.state if record else None,
            anchors=self.anchors,
            revocations=self.revocations,
            policy=self.policy,
            now_ms=now_ms,
            cache=self.cache,
            ledger=ledger,
        )
        # Fixed Set: the link graph's reasons join the verdict before it is signed
        pods = self.pods.review(verdict, revoked_pods=self.revocations.pods, now_ms=now_ms)
        verdict = pods.verdict
        ueid = verdict.ueid or b""
        result = AttestationResult(
            verifier_id=self.identity.verifier_id,
            issued_at=now_ms // 1000,
            nonce=challenge.nonce,
            ueid=ueid if ueid else b"\x01" + bytes(16),
            profile=C.EAR_PROFILE,
            appraisal=(
                int(verdict.tier),
                self.policy.policy_id,
                tuple(int(r) for r in verdict.reasons),
            ),
            verifier_build=f"attest {__version__}",
            evidence_digest=verdict.evidence_digest,
        ).sign(self.identity.key)
        enroll = None
        if record is None and verdict.new_state is not None:
            enroll = ChipRecord(chain.device_cert, chain.manufacturer_cert, verdict.new_state)
        audit = self.store.commit_appraisal(
            nonce=challenge.nonce,
            ueid=ueid,
            now_ms=now_ms,
            new_state=verdict.new_state if record is not None else None,
            entry=AuditEntry(
                time_ms=now_ms,
                verifier_id=self.identity.verifier_id,
                ueid=ueid,
                tier=int(verdict.tier),
                reasons=tuple(int(r) for r in verdict.reasons),
                evidence_digest=verdict.evidence_digest,
                nonce=challenge.nonce,
            ),
            enroll=enroll,
            expected_counter=record.state.attest_counter if record else None,
        )
        self.pods.commit(pods)  # Fixed Set: the chip's pod report, once the appraisal is durable
        renewal = None
        if self.licensing is not None and ledger is not None and verdict.evidence is not None:
            # after the appraisal is durable: the chip's next license, if due and in quota
            try:
                renewal = self.licensing.renew(
                    ueid=ueid,
                    tier=verdict.tier,
                    state=verdict.evidence.license_state,
                    view=ledger,
                    now_ms=now_ms,
                )
            except StoreError:  # the appraisal stands; the chip just gets no license this round
                renewal = Renewal(RenewalOutcome.STORE_ERROR)
        return Outcome(verdict, result, audit, renewal, pod_alerts=pods.alerts)

    def enroll(self, chain: DeviceChain) -> bool:
        """Register a chip from its certificates (operator enrolment). False if already known."""
        certs = verify_device_chain(chain, self.anchors, self.cache)
        if certs is None:
            raise CertificateError("device certificate chain does not verify to the authority")
        device = certs[0]
        state = ChipState.enrolled(device.ueid, device.public_key, device.hwmodel)
        return self.store.enroll(ChipRecord(chain.device_cert, chain.manufacturer_cert, state))

    def revoke_chip(self, ueid: bytes) -> None:
        self.store.set_status(ueid, ChipStatus.REVOKED)
