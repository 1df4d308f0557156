"""Offline Licensing in a verifier node: ledger checks of every Evidence, renewals after.

:class:`LicensingVerifier` is the mechanism's :class:`~attest.mechanism.VerifierPart`. Before
the appraisal it reads what the ledger says was issued to the chip; on authentic Evidence it
checks the reported license state against it (attest.licensing.checks: reason codes 100-103);
in the appraisal's transaction it records a newly reported serial; after the commit it runs the
renewal (attest.licensing.issuer), whose licence rides in the RESULT frame as a grant.

The node's ``[licensing]`` configuration section (:class:`LicensingSection`) turns it on.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from attest.codec.cbor import decode
from attest.errors import ConfigError, StoreError
from attest.licensing.checks import LedgerView, check_license_state, license_reasons
from attest.licensing.issuer import (
    LicenseIssuer,
    LicensingPolicy,
    Renewal,
    RenewalOutcome,
    reports_new_serial,
)
from attest.licensing.ledger import LicenseLedger
from attest.licensing.messages import Budgets, LicenseState, license_state_of
from attest.licensing.quota import METER_NAMES
from attest.licensing.reasons import LicenseReason
from attest.mechanism import (
    ChainRoute,
    Conclusion,
    Findings,
    NodeContext,
    RoutedPart,
    SessionAppraisal,
    appraise_session,
)
from attest.messages.attestation import Challenge
from attest.messages.revocation import Revocations
from attest.store.audit import KIND_ATTESTATION
from attest.store.base import ChipRecord, Step, Store
from attest.verify.chain import DeviceChain, TrustAnchors
from attest.verify.core import Appraisal, Verdict
from attest.verify.policy import Policy, parse_version
from attest.verify.reasons import Tier
from attest.verify.state import ChipState

log = logging.getLogger("attest.node.licensing")


@dataclass(frozen=True, slots=True)
class LicensingSection:
    """Offline Licensing: renew licenses after qualifying attestations (needs a delegation)."""

    #: issue licenses at all (needs the authority's delegation for this node's key)
    enabled: bool = False
    #: the delegation token from `attest authority delegate` (COSE_Sign1 by the authority)
    delegation_file: str = "delegation.cose"
    #: FLOPs each license grants
    budget_flops: int = 10**18
    #: energy (mJ) each license grants; 0 leaves energy unbudgeted
    budget_energy_mj: int = 0
    #: interconnect bytes each license grants; 0 leaves them unbudgeted
    budget_interconnect_bytes: int = 0
    #: license lifetime in the chip's operating seconds, counted from the chip time it reported
    validity_s: int = 86400
    #: comma-separated verdict tiers that qualify a chip for a license: affirming, warning
    qualifying_tiers: str = "affirming"
    #: renew when remaining FLOPs or remaining validity drop below this fraction (0..1)
    renew_below: float = 0.25
    #: firmware version a chip must run to use the licenses this node issues
    min_firmware: str = "1.1.0"


def qualifying_tiers(text: str) -> frozenset[str]:
    """'affirming, warning' → {'affirming', 'warning'} (only those two may qualify)."""
    names = frozenset(t.strip() for t in text.split(",") if t.strip())
    if not names or not names <= {"affirming", "warning"}:
        raise ValueError(f"qualifying_tiers {text!r}: use affirming and/or warning")
    return names


def check_section(lic: LicensingSection) -> None:
    """Offline Licensing settings (checked even when disabled, so a typo never waits)."""
    if not 1 <= lic.budget_flops < 1 << 63:
        raise ConfigError("licensing.budget_flops must be 1..2^63-1")
    for key in ("budget_energy_mj", "budget_interconnect_bytes"):
        if not 0 <= getattr(lic, key) < 1 << 63:
            raise ConfigError(f"licensing.{key} must be 0..2^63-1 (0: not budgeted)")
    if lic.validity_s < 1:
        raise ConfigError("licensing.validity_s must be >= 1")
    if not 0.0 <= lic.renew_below <= 1.0:
        raise ConfigError("licensing.renew_below must be within 0..1")
    try:
        qualifying_tiers(lic.qualifying_tiers)
        parse_version(lic.min_firmware)
    except ValueError as exc:
        raise ConfigError(f"licensing: {exc}") from None


def policy_from(section: LicensingSection) -> LicensingPolicy:
    """The renewal policy of a node's ``[licensing]`` section."""
    return LicensingPolicy(
        budgets=Budgets(
            section.budget_flops,
            section.budget_energy_mj or None,
            section.budget_interconnect_bytes or None,
        ),
        validity_s=section.validity_s,
        qualifying_tiers=frozenset(
            Tier[n.upper()] for n in qualifying_tiers(section.qualifying_tiers)
        ),
        renew_below=section.renew_below,
        min_firmware=parse_version(section.min_firmware),
    )


@dataclass(frozen=True, slots=True)
class LicenseReview:
    """The detail of the licensing findings: what the renewal after the commit needs."""

    ueid: bytes
    state: LicenseState | None
    view: LedgerView


def review(view: LedgerView, core: Appraisal) -> Findings[LicenseReview]:
    """Pure: the licensing reasons for an appraised Evidence, given the ledger's view of the chip.

    Only authentic Evidence is judged (its claims are otherwise masked, like the core's), and
    it is judged whatever the core's verdict: a replayed Evidence can still lie about its
    licence.
    """
    ev = core.evidence
    if ev is None or core.ueid is None:  # nothing authentic to check
        return Findings()
    state = license_state_of(ev)
    reasons = license_reasons(check_license_state(state, view))
    return Findings(reasons, LicenseReview(core.ueid, state, view))


class LedgerChecks:
    """The licensing part's appraisal alone, against a given ledger view (published vectors,
    tests): it loads nothing, writes nothing and renews nothing."""

    def load(self, ueid: bytes) -> LedgerView:
        raise NotImplementedError("give LedgerChecks its view directly")

    def appraise(
        self, view: LedgerView, core: Appraisal, *, revocations: Revocations, now_ms: int
    ) -> Findings[LicenseReview]:
        return review(view, core)

    def steps(self, findings: Findings[LicenseReview], verdict: Verdict) -> Sequence[Step]:
        return ()

    def conclude(
        self, findings: Findings[LicenseReview], verdict: Verdict, *, now_ms: int
    ) -> Conclusion:
        return Conclusion()


LEDGER_CHECKS = LedgerChecks()


def appraise_with_ledger(
    evidence: bytes,
    *,
    challenge: Challenge,
    chain: DeviceChain,
    state: ChipState | None,
    anchors: TrustAnchors,
    revocations: Revocations,
    policy: Policy,
    now_ms: int,
    ledger: LedgerView | None,
) -> SessionAppraisal:
    """The core plus the licensing checks against ``ledger`` (None: the verifier keeps no
    ledger, so nothing of licensing is checked): what the vectors of reason codes 100-103 pin."""
    record = (
        None if state is None else ChipRecord(chain.device_cert, chain.manufacturer_cert, state)
    )
    return appraise_session(
        evidence,
        challenge=challenge,
        chain=chain,
        record=record,
        anchors=anchors,
        revocations=revocations,
        policy=policy,
        now_ms=now_ms,
        mechanisms=() if ledger is None else ((LEDGER_CHECKS, ledger),),
    )


#: renewals that were due and qualified but issued nothing (``attest_license_refusals_total``)
REFUSALS = (
    RenewalOutcome.QUOTA_EXCEEDED,
    RenewalOutcome.REGION_CAP_EXCEEDED,
    RenewalOutcome.DELEGATION_REVOKED,
    RenewalOutcome.PARTNER_NOT_LICENSABLE,
    RenewalOutcome.PARTNER_QUOTA_EXCEEDED,
    RenewalOutcome.CONFLICT,
    RenewalOutcome.STORE_ERROR,
)


class LicensingVerifier(RoutedPart):
    """The node's licensing part: ledger checks in the appraisal, renewals after it.

    With a metrics registry it counts licences issued and renewals refused, and shows how much
    of its delegation's quota is spent (refreshed after every issuance or refusal).
    """

    def __init__(self, issuer: LicenseIssuer, metrics: Any = None) -> None:
        self.issuer = issuer
        self.ledger = issuer.ledger
        self._issued: Any = None
        self._refused: Any = None
        self._quota: Any = None
        if metrics is not None:
            from prometheus_client import Counter, Gauge

            self._issued = Counter(
                "attest_licenses_issued",
                "Licences this node signed and handed to chips",
                registry=metrics,
            )
            self._refused = Counter(
                "attest_license_refusals",
                "Renewals that were due but issued nothing, by why (quota, region cap ...)",
                ["reason"],
                registry=metrics,
            )
            for outcome in REFUSALS:
                self._refused.labels(reason=outcome.value)
            self._quota = Gauge(
                "attest_license_quota_used_ratio",
                "Share of this node's delegation quota already issued, per limited meter",
                ["meter"],
                registry=metrics,
                multiprocess_mode="livemax",
            )
            self.note_quota()

    def note_quota(self) -> None:
        """Refresh ``attest_license_quota_used_ratio`` from the ledger (a store read)."""
        if self._quota is None:
            return
        status = self.ledger.delegation_status(self.issuer.delegation.delegation_id)
        if status is None:
            return
        limits = status.quota.as_tuple()
        for meter, issued, limit in zip(METER_NAMES, status.issued, limits, strict=True):
            if limit:
                self._quota.labels(meter=meter).set(issued / limit)

    def load(self, ueid: bytes) -> LedgerView:
        return self.ledger.license_view(ueid)

    def load_routed(self, ueid: bytes, route: ChainRoute) -> LedgerView:
        """A partner's roaming chip (its chain judged under a federation agreement) is
        licensed only within the agreement's partner quota, and not at all without one."""
        view = self.ledger.license_view(ueid)
        if route.chain is None:
            return view
        return replace(view, partner=route.chain[0], partner_quota=route.licence_quota)

    def appraise(
        self, view: LedgerView, core: Appraisal, *, revocations: Revocations, now_ms: int
    ) -> Findings[LicenseReview]:
        return review(view, core)

    def steps(self, findings: Findings[LicenseReview], verdict: Verdict) -> Sequence[Step]:
        r = findings.detail
        if r is None or r.state is None or not reports_new_serial(verdict.tier, r.state, r.view):
            return ()
        return (LicenseLedger.report_step(r.ueid, r.state.serial),)

    def conclude(
        self, findings: Findings[LicenseReview], verdict: Verdict, *, now_ms: int
    ) -> Conclusion:
        r = findings.detail
        if r is None:
            return Conclusion()
        try:
            renewal = self.issuer.renew(
                ueid=r.ueid,
                tier=verdict.tier,
                state=r.state,
                view=r.view,
                now_ms=now_ms,
                note_report=False,  # done in the appraisal's transaction (steps)
            )
        except StoreError:  # the appraisal stands; the chip just gets no license this round
            renewal = Renewal(RenewalOutcome.STORE_ERROR)
        self._count(renewal.outcome)
        log: dict[str, object] = {"license": renewal.outcome.value}
        if renewal.serial:
            log["license_serial"] = renewal.serial
        g = renewal.grant
        return Conclusion(g, log, renewal)

    def _count(self, outcome: RenewalOutcome) -> None:
        if self._issued is None:
            return
        if outcome is RenewalOutcome.ISSUED:
            self._issued.inc()
        elif outcome in REFUSALS:
            self._refused.labels(reason=outcome.value).inc()
        if outcome in (RenewalOutcome.ISSUED, RenewalOutcome.QUOTA_EXCEEDED):
            # a failed read leaves only the gauge stale; the next issuance refreshes it
            with contextlib.suppress(StoreError):
                self.note_quota()


def build(ctx: NodeContext) -> LicensingVerifier | None:
    """The node's licensing part if ``[licensing] enabled``; its delegation checked and stored.

    A delegation the authority's revocation list names is marked revoked in the store (for
    good): the node keeps attesting but issues nothing more under it.
    """
    section: LicensingSection = ctx.section
    if not section.enabled:
        return None
    path = ctx.resolve(section.delegation_file)
    try:
        token = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the delegation: {exc.strerror}") from None
    ledger = LicenseLedger(ctx.store.db, audit=ctx.store)
    issuer = LicenseIssuer(
        identity=ctx.identity,
        anchors=ctx.anchors,
        delegation_token=token,
        ledger=ledger,
        policy=policy_from(section),
    )
    if issuer.delegation.delegation_id in ctx.revocations.delegations:
        ledger.revoke_delegation(issuer.delegation.delegation_id)
    check_budgets(section, issuer.delegation.quota, path)
    _report_start(ledger, issuer, ctx.store)
    return LicensingVerifier(issuer, ctx.metrics)


def check_budgets(section: LicensingSection, quota: Budgets, delegation_file: Path) -> None:
    """Refuse a licence budget larger than the whole delegated quota: every renewal would be
    refused (``quota_exceeded``) while the chips' own verdicts stay affirming, so nothing but
    a log field would show that no licence is ever issued."""
    wanted = (section.budget_flops, section.budget_energy_mj, section.budget_interconnect_bytes)
    names = ("budget_flops", "budget_energy_mj", "budget_interconnect_bytes")
    for name, budget, limit in zip(names, wanted, quota.as_tuple(), strict=True):
        if budget and limit is not None and budget > limit:
            raise ConfigError(
                f"licensing.{name} = {budget} exceeds the quota of the delegation in "
                f"{delegation_file} ({limit}): no licence could ever be issued; lower "
                f"{name} or ask the authority for a larger delegation"
            )


def _report_start(ledger: LicenseLedger, issuer: LicenseIssuer, store: Store) -> None:
    """One start-up line: the delegation's quota left, and how many chips were last refused
    because they report a licence serial this ledger does not know (authority-issued offline
    licences not yet imported: `attest license import DIR`)."""
    d = issuer.delegation
    status = ledger.delegation_status(d.delegation_id)
    issued = 0 if status is None else status.issued[0]
    unknown = chips_last_refused(store, LicenseReason.LICENSE_SERIAL_UNKNOWN)
    fields = {
        "event": "licensing",
        "delegation": d.delegation_id,
        "region": d.region,
        "quota_flops": d.quota.flops,
        "issued_flops": issued,
        "ledger_licences": len(ledger.license_records()),
        "chips_serial_unknown": unknown,
    }
    if unknown:
        log.warning(
            "licensing: %d chip(s) report licence serials the ledger does not know (their last "
            "attestation: LICENSE_SERIAL_UNKNOWN); record the authority's licences with "
            "`attest license import DIR`",
            unknown,
            extra={"fields": fields},
        )
    else:
        log.info("licensing enabled", extra={"fields": fields})
    if d.quota.flops - issued < issuer.policy.budgets.flops:
        log.warning(
            "licensing: the delegation's quota left is smaller than one licence budget; "
            "renewals will be refused (quota_exceeded) until the authority delegates more",
            extra={"fields": fields},
        )


def chips_last_refused(store: Store, reason: int) -> int:
    """Chips whose latest attestation on this node's audit chain carries ``reason``.

    Reads the core's audit table (same name and columns on both backends), once at start-up.
    """
    rows = store.db.read(
        lambda c: c.execute(
            "SELECT a.reasons FROM audit a JOIN (SELECT ueid, MAX(seq) AS seq FROM audit "
            "WHERE verifier_id = ? AND kind = ? GROUP BY ueid) last "
            "ON a.ueid = last.ueid AND a.seq = last.seq WHERE a.verifier_id = ?",
            (store.verifier_id, KIND_ATTESTATION, store.verifier_id),
        ).fetchall()
    )
    return sum(1 for (reasons,) in rows if int(reason) in decode(bytes(reasons)))
