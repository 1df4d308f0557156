"""Offline Licensing inside a chip: the pure licensing logic and the chip's licensing part.

The functions and :class:`ChipLicensing` are pure (no I/O); :class:`LicensingChip` is the
mechanism's :class:`~attest.mechanism.ChipPart`, which keeps the state in the chip's state file
(through the chip's ``persist``).

A chip ships throttled to a baseline share of its peak (default 1 %). A license it accepts adds
its budget; work run while licensed is charged against the budget at the rate actually run; when
a budgeted meter reaches zero, or the chip's monotonic operating time reaches the license's
expiry, the chip falls back to the baseline (and an expired budget is forfeited).

Acceptance is two steps so that a crash can never apply a license twice or lose it:

1. :func:`accept` raises the high-water serial and records the license as *pending* — the chip
   persists this state durably before anything else happens;
2. :func:`apply_pending` moves the pending budget into the remaining budget (persisted again).

A crash between the two leaves a pending license that :func:`apply_pending` completes on the
next start (roll forward); a second delivery of the same license is refused by the serial
check in both states. So each accepted serial adds its budget exactly once.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from attest.codec.cose import verify1
from attest.errors import AttestError, ChipRefusal
from attest.licensing.messages import (
    Budgets,
    Delegation,
    License,
    LicenseGrant,
    LicenseState,
)
from attest.mechanism import ChipHost, Grant, PartnerLicensor
from attest.messages.revocation import verify_newer_list
from attest.verify.chain import TrustAnchors, authority_act

PPM = 1_000_000
#: default throttle: 1 % of peak (DESIGN.md §6)
DEFAULT_BASELINE_PPM = 10_000
#: how many live delegations a chip tracks quota use for (bounded memory, as on a real chip)
MAX_TRACKED_DELEGATIONS = 64
_U64_MAX = (1 << 64) - 1


class LicenseRefusal(enum.StrEnum):
    """Why a chip refused a license, in the order the checks run (SPEC: license acceptance)."""

    LICENSE_DELEGATION_INVALID = "LICENSE_DELEGATION_INVALID"
    LICENSE_DELEGATION_EXPIRED = "LICENSE_DELEGATION_EXPIRED"
    LICENSE_DELEGATION_REVOKED = "LICENSE_DELEGATION_REVOKED"
    LICENSE_MALFORMED = "LICENSE_MALFORMED"
    LICENSE_SIGNATURE_INVALID = "LICENSE_SIGNATURE_INVALID"
    LICENSE_ISSUER_MISMATCH = "LICENSE_ISSUER_MISMATCH"
    LICENSE_WRONG_CHIP = "LICENSE_WRONG_CHIP"
    LICENSE_REPLAYED = "LICENSE_REPLAYED"
    LICENSE_SERIAL_OUT_OF_ORDER = "LICENSE_SERIAL_OUT_OF_ORDER"
    LICENSE_EXPIRED = "LICENSE_EXPIRED"
    LICENSE_FIRMWARE_TOO_OLD = "LICENSE_FIRMWARE_TOO_OLD"
    LICENSE_NONCE_MISMATCH = "LICENSE_NONCE_MISMATCH"
    LICENSE_QUOTA_EXCEEDED = "LICENSE_QUOTA_EXCEEDED"
    #: an offline license operation on a chip without the mechanism
    LICENSING_UNSUPPORTED = "LICENSING_UNSUPPORTED"


class PartnerRefusal(enum.StrEnum):
    """Why a roaming chip refused a licence from a partner authority's delegated node
    (federation, SPEC B.5): checked where a home delegation is verified."""

    #: no agreement in force lets that authority license this chip's authority's chips
    LICENSE_PARTNER_NOT_RECOGNISED = "LICENSE_PARTNER_NOT_RECOGNISED"
    #: the licence would take what this chip accepted from that partner past the quota
    LICENSE_PARTNER_QUOTA_EXCEEDED = "LICENSE_PARTNER_QUOTA_EXCEEDED"


#: every license refusal name, in check order
LICENSE_REFUSALS: tuple[LicenseRefusal, ...] = tuple(LicenseRefusal)[:-1]
_NO_BUDGET = Budgets(0)


@dataclass(frozen=True, slots=True)
class DelegationUse:
    """Budget this chip has accepted under one delegation (its share of that quota)."""

    delegation_id: int
    #: the delegation's wall-clock expiry: after it the entry can be forgotten
    expires_at: int
    used: tuple[int, int, int] = (0, 0, 0)
    #: the partner authority that delegated ("": the chip's own; delegation ids are per
    #: authority, and a roaming chip's partner quota sums what it took from that partner)
    authority: str = ""


@dataclass(frozen=True, slots=True)
class PendingLicense:
    """An accepted license whose budget has not been added yet (the crash journal)."""

    serial: int
    budgets: Budgets
    expiry_s: int


@dataclass(frozen=True, slots=True)
class ChipLicensing:
    """The licensing state of one chip. Immutable: every step returns a new value."""

    #: throttle when unlicensed, in millionths of peak
    baseline_ppm: int = DEFAULT_BASELINE_PPM
    #: high-water mark: the highest serial ever accepted (0 = none)
    serial: int = 0
    #: budget left per meter (None: that meter is not limited by the license in force)
    remaining: Budgets = _NO_BUDGET
    #: chip operating time (s) from which ``remaining`` is void
    expiry_s: int = 0
    pending: PendingLicense | None = None
    #: total budget ever added, per meter (monotonic; lets audits compare with issuance)
    applied: tuple[int, int, int] = (0, 0, 0)
    delegations: tuple[DelegationUse, ...] = ()
    #: newest revocation list applied to the chip (anti-rollback) and its revoked delegations
    revocations_number: int = 0
    revoked_delegations: frozenset[int] = field(default_factory=frozenset)
    #: nonce of an outstanding offline license request (single use)
    request_nonce: bytes | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.baseline_ppm <= PPM:
            raise ValueError("baseline_ppm must be in 0..1_000_000")

    # -- what the chip is allowed to do now ------------------------------------------------------
    def active(self, chip_time_s: int) -> bool:
        """True while a license is in force: unexpired and no budgeted meter exhausted."""
        return chip_time_s < self.expiry_s and all(
            r is None or r > 0 for r in self.remaining.as_tuple()
        )

    def remaining_flops(self, chip_time_s: int) -> int:
        """FLOPs the chip may still run licensed (0 once the license expired: forfeited)."""
        return self.remaining.flops if chip_time_s < self.expiry_s else 0

    # -- persistence (inside the chip's state file) ----------------------------------------------
    def to_cbor(self) -> dict[str, Any]:
        p = self.pending
        return {
            "baseline_ppm": self.baseline_ppm,
            "serial": self.serial,
            "remaining": list(self.remaining.as_tuple()),
            "expiry_s": self.expiry_s,
            "pending": None if p is None else [p.serial, list(p.budgets.as_tuple()), p.expiry_s],
            "applied": list(self.applied),
            "delegations": [
                [
                    d.delegation_id,
                    d.expires_at,
                    list(d.used),
                    *([d.authority] if d.authority else []),
                ]
                for d in self.delegations
            ],
            "revocations_number": self.revocations_number,
            "revoked_delegations": sorted(self.revoked_delegations),
            "request_nonce": self.request_nonce,
        }

    @classmethod
    def from_cbor(cls, raw: dict[str, Any]) -> ChipLicensing:
        p = raw["pending"]
        return cls(
            baseline_ppm=raw["baseline_ppm"],
            serial=raw["serial"],
            remaining=Budgets.from_tuple(tuple(raw["remaining"])),
            expiry_s=raw["expiry_s"],
            pending=None
            if p is None
            else PendingLicense(p[0], Budgets.from_tuple(tuple(p[1])), p[2]),
            applied=tuple(raw["applied"]),
            delegations=tuple(
                DelegationUse(d[0], d[1], tuple(d[2]), d[3] if len(d) > 3 else "")
                for d in raw["delegations"]
            ),
            revocations_number=raw["revocations_number"],
            revoked_delegations=frozenset(raw["revoked_delegations"]),
            request_nonce=raw["request_nonce"],
        )


# -- acceptance --------------------------------------------------------------------------------
def check_license(
    state: ChipLicensing,
    grant: LicenseGrant,
    *,
    anchors: TrustAnchors,
    ueid: bytes,
    firmware: tuple[int, ...],
    chip_time_s: int,
    now_s: int,
    session_nonce: bytes | None = None,
    partner: PartnerLicensor | None = None,
) -> tuple[License, Delegation | None]:
    """Every acceptance check, in order; the first failure raises ChipRefusal with its name.

    ``now_s`` is the chip's clock (delegation expiry, like a VerifierCert's); license expiry is
    judged in ``chip_time_s``, the chip's monotonic operating time. ``session_nonce`` is the
    nonce of the attestation round the license arrived in (None offline). ``partner`` judges
    a delegation of another authority (a roaming chip, federation): its anchors in place of
    the chip's, and its partner quota over everything the chip took from that authority.
    """
    delegation: Delegation | None = None
    authority = ""
    if grant.delegation is not None:
        if partner is not None:
            if partner.anchors is None:
                raise ChipRefusal(PartnerRefusal.LICENSE_PARTNER_NOT_RECOGNISED, partner.why)
            anchors, authority = partner.anchors, partner.anchors.authority_id
        try:
            delegation = authority_act(grant.delegation, Delegation, anchors)
        except AttestError as exc:
            raise ChipRefusal(LicenseRefusal.LICENSE_DELEGATION_INVALID, str(exc)) from None
        if delegation.issuer != anchors.authority_id:
            raise ChipRefusal(
                LicenseRefusal.LICENSE_DELEGATION_INVALID, "delegation not issued by the authority"
            )
        if now_s >= delegation.expires_at:
            raise ChipRefusal(LicenseRefusal.LICENSE_DELEGATION_EXPIRED)
        if not authority and delegation.delegation_id in state.revoked_delegations:
            raise ChipRefusal(
                LicenseRefusal.LICENSE_DELEGATION_REVOKED, f"delegation {delegation.delegation_id}"
            )
        key, expected_issuer = delegation.public_key, delegation.verifier_id
    else:
        key, expected_issuer = anchors.authority_key, anchors.authority_id
    try:
        lic = License.verify(grant.license, key)
    except (AttestError, TypeError) as exc:
        # DecodeError after a good signature means a validly signed, malformed payload
        name = (
            LicenseRefusal.LICENSE_MALFORMED
            if _signature_ok(grant.license, key)
            else LicenseRefusal.LICENSE_SIGNATURE_INVALID
        )
        raise ChipRefusal(name, str(exc)) from None
    expected_delegation = None if delegation is None else delegation.delegation_id
    if lic.issuer != expected_issuer or lic.delegation_id != expected_delegation:
        raise ChipRefusal(
            LicenseRefusal.LICENSE_ISSUER_MISMATCH, "issuer or delegation id does not match"
        )
    if lic.ueid != ueid:
        raise ChipRefusal(LicenseRefusal.LICENSE_WRONG_CHIP)
    if lic.serial == state.serial:
        raise ChipRefusal(LicenseRefusal.LICENSE_REPLAYED, f"serial {lic.serial} already applied")
    if lic.serial < state.serial:
        raise ChipRefusal(
            LicenseRefusal.LICENSE_SERIAL_OUT_OF_ORDER,
            f"serial {lic.serial} below high-water {state.serial}",
        )
    if chip_time_s >= lic.expiry_s:
        raise ChipRefusal(
            LicenseRefusal.LICENSE_EXPIRED, f"chip time {chip_time_s} >= expiry {lic.expiry_s}"
        )
    if firmware < lic.min_firmware:
        raise ChipRefusal(LicenseRefusal.LICENSE_FIRMWARE_TOO_OLD)
    if lic.nonce is not None and lic.nonce not in (session_nonce, state.request_nonce):
        raise ChipRefusal(LicenseRefusal.LICENSE_NONCE_MISMATCH)
    if delegation is not None:
        used = _use_of(state, delegation.delegation_id, authority)
        for u, b, q in zip(used, lic.budgets.as_tuple(), delegation.quota.as_tuple(), strict=True):
            # a metered quota bounds every license under it; an unbudgeted meter would escape it
            if q is not None and (b is None or u + b > q):
                raise ChipRefusal(
                    LicenseRefusal.LICENSE_QUOTA_EXCEEDED, f"delegation {delegation.delegation_id}"
                )
        if partner is not None:
            taken = sum(d.used[0] for d in state.delegations if d.authority == authority)
            flops = lic.budgets.flops
            if taken + flops > partner.quota_flops:
                raise ChipRefusal(
                    PartnerRefusal.LICENSE_PARTNER_QUOTA_EXCEEDED,
                    f"{authority}: {taken} + {flops} > {partner.quota_flops} FLOPs",
                )
        live = [d for d in state.delegations if d.expires_at > now_s]
        known = any(
            (d.delegation_id, d.authority) == (delegation.delegation_id, authority) for d in live
        )
        if not known and len(live) >= MAX_TRACKED_DELEGATIONS:
            raise ChipRefusal(
                LicenseRefusal.LICENSE_DELEGATION_INVALID, "too many live delegations to track"
            )
    return lic, delegation


def _signature_ok(token: bytes, key: Any) -> bool:
    try:
        verify1(token, key, License.CONTENT_TYPE)
    except (AttestError, TypeError):
        return False
    return True


def _use_of(state: ChipLicensing, delegation_id: int, authority: str = "") -> tuple[int, int, int]:
    for d in state.delegations:
        if (d.delegation_id, d.authority) == (delegation_id, authority):
            return d.used
    return (0, 0, 0)


def accept(
    state: ChipLicensing,
    lic: License,
    delegation: Delegation | None,
    *,
    now_s: int,
    authority: str = "",
) -> ChipLicensing:
    """Step 1: raise the high-water mark, charge the delegation quota, journal the budget."""
    delegations = state.delegations
    if delegation is not None:
        used = _use_of(state, delegation.delegation_id, authority)
        new_used = tuple(
            _sat(u + (b or 0)) for u, b in zip(used, lic.budgets.as_tuple(), strict=True)
        )
        others = tuple(
            d
            for d in state.delegations
            if (d.delegation_id, d.authority) != (delegation.delegation_id, authority)
            and d.expires_at > now_s
        )
        delegations = (
            *others,
            DelegationUse(delegation.delegation_id, delegation.expires_at, new_used, authority),  # type: ignore[arg-type]
        )
    return replace(
        state,
        serial=lic.serial,
        pending=PendingLicense(lic.serial, lic.budgets, lic.expiry_s),
        delegations=delegations,
        request_nonce=None
        if lic.nonce is not None and lic.nonce == state.request_nonce
        else state.request_nonce,
    )


def apply_pending(state: ChipLicensing, chip_time_s: int) -> ChipLicensing:
    """Step 2: add the journalled budget. The newest license decides which meters are limited
    and the expiry; unexpired budget left from earlier licenses carries over, expired is lost."""
    p = state.pending
    if p is None:
        return state
    carry = state.remaining if chip_time_s < state.expiry_s else _NO_BUDGET
    merged = tuple(
        None if b is None else _sat((c or 0) + b)
        for c, b in zip(carry.as_tuple(), p.budgets.as_tuple(), strict=True)
    )
    applied = tuple(
        _sat(a + (b or 0)) for a, b in zip(state.applied, p.budgets.as_tuple(), strict=True)
    )
    return replace(
        state,
        remaining=Budgets.from_tuple(merged),
        expiry_s=p.expiry_s,
        applied=applied,  # type: ignore[arg-type]
        pending=None,
    )


def _sat(v: int) -> int:
    return min(v, _U64_MAX)


# -- revocations -------------------------------------------------------------------------------
def apply_revocations(state: ChipLicensing, token: bytes, anchors: TrustAnchors) -> ChipLicensing:
    """Adopt a newer authority revocation list (its revoked delegations); older ones refused."""
    rl = verify_newer_list(
        token, anchors.authority_id, anchors.authority_key, state.revocations_number
    )
    return replace(
        state,
        revocations_number=rl.number,
        revoked_delegations=frozenset(rl.delegations or ()),
    )


# -- the workload model ------------------------------------------------------------------------
def run_workload(
    state: ChipLicensing,
    *,
    chip_time_ms: int,
    seconds: float,
    share: float,
    peaks: tuple[int, int, int],
) -> tuple[ChipLicensing, tuple[float, float, float]]:
    """Run ``seconds`` at ``share`` of peak as far as the license allows; return the new state
    and the work actually done per meter.

    Licensed time lasts until the expiry or until a budgeted meter runs out at this rate,
    whichever comes first; the rest of the interval runs at ``min(share, baseline)``. Budget is
    charged for licensed work only, rounded up, never below zero.
    """
    baseline = min(share, state.baseline_ppm / PPM)
    licensed_s = 0.0
    limiting: int | None = None
    remaining = list(state.remaining.as_tuple())
    if state.active(chip_time_ms // 1000):
        licensed_s = min(seconds, max(0.0, (state.expiry_s * 1000 - chip_time_ms) / 1000))
        for i, (r, peak) in enumerate(zip(remaining, peaks, strict=True)):
            rate = peak * share
            if r is not None and rate > 0 and r / rate <= licensed_s:
                licensed_s, limiting = r / rate, i
    throttled_s = seconds - licensed_s
    usage = tuple(p * share * licensed_s + p * baseline * throttled_s for p in peaks)
    for i, (r, peak) in enumerate(zip(remaining, peaks, strict=True)):
        if r is None:
            continue
        charge = r if i == limiting else min(r, math.ceil(peak * share * licensed_s))
        remaining[i] = r - charge
    new = replace(state, remaining=Budgets.from_tuple(tuple(remaining)))
    return new, usage  # type: ignore[return-value]


# -- the chip part -----------------------------------------------------------------------------
class LicensingChip:
    """The Offline Licensing part of one chip (a :class:`~attest.mechanism.ChipPart`).

    A chip fabricated with it ships throttled to its baseline; a chip without it is a version 1
    part that reports no license state.
    """

    def __init__(self, host: ChipHost, state: ChipLicensing) -> None:
        self._host = host
        self.state = state

    @property
    def throttled(self) -> bool:
        """True while the chip runs at its baseline (no license, exhausted or expired)."""
        return not self.state.active(self._host.chip_time_s)

    def license_state(self) -> LicenseState:
        """What Evidence reports: serial in force, FLOPs left, chip time."""
        t = self._host.chip_time_s
        return LicenseState(self.state.serial, self.state.remaining_flops(t), t)

    def apply_license(
        self,
        grant: LicenseGrant,
        now_s: float,
        *,
        session_nonce: bytes | None = None,
        after_accept: Callable[[], None] | None = None,
    ) -> License:
        """Check a license and add its budget (SPEC: license acceptance). Raises ChipRefusal.

        The high-water serial is made durable *before* the budget is added; ``after_accept``
        runs between the two writes (crash tests stop the process there).
        """
        host = self._host
        partner = (
            host.partner_licensor(grant.delegation, now_s=int(now_s))
            if grant.delegation is not None
            else None
        )
        parsed, delegation = check_license(
            self.state,
            grant,
            anchors=host.anchors,
            ueid=host.ueid,
            firmware=host.firmware_version,
            chip_time_s=host.chip_time_s,
            now_s=int(now_s),
            session_nonce=session_nonce,
            partner=partner,
        )
        authority = partner.anchors.authority_id if partner and partner.anchors else ""
        self.state = accept(self.state, parsed, delegation, now_s=int(now_s), authority=authority)
        host.persist()
        if after_accept is not None:
            after_accept()
        self._apply_pending()
        return parsed

    def _apply_pending(self) -> None:
        self.state = apply_pending(self.state, self._host.chip_time_s)
        self._host.persist()

    def license_request(self) -> bytes:
        """A fresh nonce for an offline license request; a license bound to it is accepted once."""
        nonce = os.urandom(32)
        self.state = replace(self.state, request_nonce=nonce)
        self._host.persist()
        return nonce

    def apply_revocations(self, token: bytes) -> int:
        """Adopt a newer authority revocation list (revoked delegations); returns its number."""
        self.state = apply_revocations(self.state, token, self._host.anchors)
        self._host.persist()
        return self.state.revocations_number

    # -- the ChipPart ----------------------------------------------------------------------
    def evidence_claims(self, now_s: float) -> Mapping[str, Any]:
        return {"license_state": self.license_state()}

    def usage(
        self, seconds: float, share: float, peaks: tuple[int, int, int], chip_time_ms: int
    ) -> tuple[float, float, float] | None:
        self.state, used = run_workload(
            self.state, chip_time_ms=chip_time_ms, seconds=seconds, share=share, peaks=peaks
        )
        return used

    def accept_grant(self, grant: Grant, *, session_nonce: bytes, now_s: float) -> str | None:
        as_license = grant if isinstance(grant, LicenseGrant) else LicenseGrant(*_fields(grant))
        lic = self.apply_license(as_license, now_s, session_nonce=session_nonce)
        return f"LICENSE applied serial={lic.serial}"

    def loaded(self) -> None:
        if self.state.pending is not None:
            # a crash hit between accepting a license and adding its budget: roll forward
            self._apply_pending()

    def save(self) -> dict[str, Any] | None:
        return self.state.to_cbor()


def chip_part(host: ChipHost, saved: Any, sign: object) -> LicensingChip | None:
    """The mechanism's chip factory: ``saved`` is None (a chip without licensing), a
    :class:`ChipLicensing` (fabrication) or the part's saved state."""
    if saved is None:
        return None
    state = saved if isinstance(saved, ChipLicensing) else ChipLicensing.from_cbor(saved)
    return LicensingChip(host, state)


def _fields(grant: Grant) -> tuple[bytes, bytes | None]:
    return grant.token, grant.companion
