"""License renewal by a verifier node holding an authority delegation.

After each concluded appraisal the node may hand the chip its next license in the RESULT frame.
The decision is a pure function (:func:`plan_renewal`) of the verdict tier, the license state
the chip reported, what the ledger says about the chip and the node's policy; issuing is one
atomic store transaction (:meth:`~attest.licensing.ledger.LicenseLedger.issue_license`) that charges
the delegation's quota and the region's cap and appends the license to the ledger.

Exactly one license per renewal: a license is issued only when everything issued to the chip
has been applied by it (the ledger's latest serial is the one the chip reports). If the chip has
not yet applied the latest one (a lost RESULT, or a concurrent session that won the race), that
same license is delivered again instead of a new one. The store's optimistic check on the
ledger's latest serial makes two concurrent renewals for one chip issue at most one license.
"""

from __future__ import annotations

import enum
import threading
from collections import Counter
from dataclasses import dataclass, field, replace

from attest.errors import CertificateError
from attest.identity import VerifierIdentity
from attest.licensing.authority import sign_license
from attest.licensing.checks import LedgerView
from attest.licensing.ledger import (
    DelegationRevoked,
    LedgerRecord,
    LicenseConflict,
    LicenseLedger,
    QuotaExceeded,
)
from attest.licensing.messages import Budgets, Delegation, LicenseGrant, LicenseState
from attest.verify.chain import TrustAnchors, authority_act
from attest.verify.reasons import Tier

PPM = 1_000_000


class RenewalOutcome(enum.StrEnum):
    """What a renewal attempt did (logged per session; stable names)."""

    ISSUED = "issued"
    REDELIVERED = "redelivered"
    NOT_DUE = "not_due"
    NOT_QUALIFYING = "not_qualifying"
    NO_LICENSE_STATE = "no_license_state"
    QUOTA_EXCEEDED = "quota_exceeded"
    REGION_CAP_EXCEEDED = "region_cap_exceeded"
    DELEGATION_REVOKED = "delegation_revoked"
    #: a partner's roaming chip the agreement does not let this node's authority license
    PARTNER_NOT_LICENSABLE = "partner_not_licensable"
    #: the licence would pass the agreement's partner quota (federation, SPEC B.5)
    PARTNER_QUOTA_EXCEEDED = "partner_quota_exceeded"
    CONFLICT = "conflict"
    STORE_ERROR = "store_error"


#: a refused charge's scope (attest.licensing.ledger.QuotaExceeded) as a renewal outcome
_QUOTA_OUTCOMES = {
    "delegation": RenewalOutcome.QUOTA_EXCEEDED,
    "region": RenewalOutcome.REGION_CAP_EXCEEDED,
    "partner": RenewalOutcome.PARTNER_QUOTA_EXCEEDED,
}


@dataclass(frozen=True, slots=True)
class LicensingPolicy:
    """A node's renewal policy (``[licensing]`` in the node configuration)."""

    #: budget of every license the node issues
    budgets: Budgets = field(default_factory=lambda: Budgets(10**18))
    #: license lifetime in chip operating seconds from the chip time the chip reported
    validity_s: int = 86_400
    #: verdict tiers after which a chip may get a license
    qualifying_tiers: frozenset[Tier] = frozenset({Tier.AFFIRMING})
    #: renew once the remaining FLOPs (or remaining validity) fall below this fraction
    renew_below: float = 0.25
    #: the firmware a chip must run to use the license
    min_firmware: tuple[int, ...] = (1, 1, 0)

    def __post_init__(self) -> None:
        if not 0.0 <= self.renew_below <= 1.0:
            raise ValueError("renew_below must be within [0, 1]")
        if self.validity_s < 1:
            raise ValueError("validity_s must be >= 1")


@dataclass(frozen=True, slots=True)
class RenewalPlan:
    """What to do for one chip now. ``serial``/``expiry_s``: the license to issue or resend."""

    outcome: RenewalOutcome
    serial: int = 0
    expiry_s: int = 0


def plan_renewal(
    *,
    tier: Tier,
    state: LicenseState | None,
    view: LedgerView,
    policy: LicensingPolicy,
) -> RenewalPlan:
    """Decide, purely, whether the chip gets a new license, the outstanding one again, or none."""
    if state is None or state.chip_time_s is None:
        return RenewalPlan(RenewalOutcome.NO_LICENSE_STATE)
    if tier not in policy.qualifying_tiers:
        return RenewalPlan(RenewalOutcome.NOT_QUALIFYING)
    latest = view.latest_serial
    outstanding = view.issued.get(latest) if latest > state.serial else None
    if outstanding is not None and outstanding.expiry_s > state.chip_time_s:
        # issued but not (yet) applied by the chip: the same license again, never a second one
        return RenewalPlan(RenewalOutcome.REDELIVERED, latest, outstanding.expiry_s)
    current = view.issued.get(state.serial)
    threshold = round(policy.renew_below * PPM)
    low_budget = state.remaining_flops * PPM < threshold * policy.budgets.flops
    low_time = current is not None and (
        (current.expiry_s - state.chip_time_s) * PPM < threshold * policy.validity_s
    )
    due = outstanding is not None or state.serial == 0 or low_budget or low_time
    if not due:
        return RenewalPlan(RenewalOutcome.NOT_DUE)
    return RenewalPlan(
        RenewalOutcome.ISSUED,
        max(latest, state.serial) + 1,
        state.chip_time_s + policy.validity_s,
    )


def reports_new_serial(tier: Tier, state: LicenseState | None, view: LedgerView) -> bool:
    """Whether an accepted Evidence reports a serial above the highest one reported before."""
    accepted = tier is not Tier.CONTRAINDICATED
    return accepted and state is not None and state.serial > view.reported_serial


@dataclass(frozen=True, slots=True)
class Renewal:
    """The outcome of :meth:`LicenseIssuer.renew`: a grant for the RESULT frame, or none."""

    outcome: RenewalOutcome
    grant: LicenseGrant | None = None
    serial: int = 0


def open_delegation(
    token: bytes, anchors: TrustAnchors, identity: VerifierIdentity, source: str = "delegation"
) -> Delegation:
    """Verify a delegation for this node: the authority's, and bound to this node's id and key."""
    try:
        d = authority_act(token, Delegation, anchors)  # k of n where the authority is a committee
    except Exception as exc:  # any decode/signature failure is a configuration problem
        raise CertificateError(
            f"{source}: not a delegation signed by the authority: {exc}"
        ) from None
    if d.issuer != anchors.authority_id:
        raise CertificateError(f"{source}: delegation issued by {d.issuer!r}")
    if d.verifier_id != identity.verifier_id or d.public_key != identity.key.public_key:
        raise CertificateError(
            f"{source}: delegation {d.delegation_id} is for verifier {d.verifier_id!r} "
            "and another key, not this node"
        )
    return d


class LicenseIssuer:
    """A verifier node's license renewals under one delegation (blocking; store calls)."""

    def __init__(
        self,
        *,
        identity: VerifierIdentity,
        anchors: TrustAnchors,
        delegation_token: bytes,
        ledger: LicenseLedger,
        policy: LicensingPolicy,
    ) -> None:
        self.identity = identity
        self.delegation = open_delegation(delegation_token, anchors, identity)
        self.delegation_token = delegation_token
        self.ledger = ledger
        self.policy = policy
        #: how often each renewal outcome happened (for logs, metrics and the demo)
        self.outcomes: Counter[RenewalOutcome] = Counter()
        self._outcomes_lock = threading.Lock()
        ledger.register_delegation(delegation_token, self.delegation)

    @property
    def region(self) -> str:
        return self.delegation.region

    def view(self, ueid: bytes) -> LedgerView:
        """The appraisal's ledger input for ``ueid``."""
        return self.ledger.license_view(ueid)

    def renew(
        self,
        *,
        ueid: bytes,
        tier: Tier,
        state: LicenseState | None,
        view: LedgerView,
        now_ms: int,
        note_report: bool = True,
    ) -> Renewal:
        """Run the renewal for one concluded appraisal (call only after it is committed).

        ``note_report`` records the serial the chip reported (the node does that inside the
        appraisal's transaction instead, attest.licensing.verifier).
        """
        renewal = self._renew(
            ueid=ueid, tier=tier, state=state, view=view, now_ms=now_ms, note_report=note_report
        )
        with self._outcomes_lock:  # sessions may renew from several threads (PostgreSQL)
            self.outcomes[renewal.outcome] += 1
        return renewal

    def _renew(
        self,
        *,
        ueid: bytes,
        tier: Tier,
        state: LicenseState | None,
        view: LedgerView,
        now_ms: int,
        note_report: bool,
    ) -> Renewal:
        if note_report and reports_new_serial(tier, state, view):
            assert state is not None
            self.ledger.note_license_report(ueid, state.serial)
        if view.partner is not None and view.partner_quota <= 0:
            return Renewal(RenewalOutcome.PARTNER_NOT_LICENSABLE)
        for _ in range(2):  # a lost race is re-planned once against the winner's ledger
            plan = plan_renewal(tier=tier, state=state, view=view, policy=self.policy)
            if plan.outcome is RenewalOutcome.REDELIVERED:
                return self._redeliver(ueid, plan.serial)
            if plan.outcome is not RenewalOutcome.ISSUED:
                return Renewal(plan.outcome)
            try:
                return self._issue(ueid, plan, view, now_ms)
            except LicenseConflict:
                fresh = self.ledger.license_view(ueid)
                view = replace(fresh, partner=view.partner, partner_quota=view.partner_quota)
            except QuotaExceeded as exc:
                return Renewal(_QUOTA_OUTCOMES.get(exc.scope, RenewalOutcome.QUOTA_EXCEEDED))
            except DelegationRevoked:
                return Renewal(RenewalOutcome.DELEGATION_REVOKED)
        return Renewal(RenewalOutcome.CONFLICT)

    def _issue(self, ueid: bytes, plan: RenewalPlan, view: LedgerView, now_ms: int) -> Renewal:
        d = self.delegation
        partner = None if view.partner is None else (view.partner, view.partner_quota)
        token = sign_license(
            self.identity.key,
            issuer=self.identity.verifier_id,
            ueid=ueid,
            serial=plan.serial,
            budgets=self.policy.budgets,
            expiry_s=plan.expiry_s,
            now_s=now_ms // 1000,
            min_firmware=self.policy.min_firmware,
            delegation_id=d.delegation_id,
        )
        self.ledger.issue_license(
            LedgerRecord(
                ueid=ueid,
                serial=plan.serial,
                issuer=self.identity.verifier_id,
                delegation_id=d.delegation_id,
                region=d.region,
                budgets=self.policy.budgets,
                expiry_s=plan.expiry_s,
                issued_at_ms=now_ms,
                token=token,
                partner=partner,
            ),
            expected_latest=view.latest_serial,
            now_s=now_ms // 1000,
        )
        return Renewal(
            RenewalOutcome.ISSUED, LicenseGrant(token, self.delegation_token), plan.serial
        )

    def _redeliver(self, ueid: bytes, serial: int) -> Renewal:
        """The outstanding licence again, whichever node of the shared ledger issued it: its
        delegation is in the ledger too (a node that lost a renewal race, or whose RESULT was
        lost, must not leave the chip waiting for the issuing node)."""
        for rec in self.ledger.license_records(ueid):
            if rec.serial != serial or rec.delegation_id is None:
                continue
            if rec.delegation_id == self.delegation.delegation_id:
                companion: bytes | None = self.delegation_token
            else:
                companion = self.ledger.delegation_token(rec.delegation_id)
            if companion is not None:
                grant = LicenseGrant(rec.token, companion)
                return Renewal(RenewalOutcome.REDELIVERED, grant, serial)
        # issued by the authority itself: delivered out of band
        return Renewal(RenewalOutcome.NOT_DUE)
