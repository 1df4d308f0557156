"""Offline Licensing's appraisal checks: a chip's reported license state against the ledger.

The chip enforces its license itself; what a verifier can add is a cross-check of what the chip
*says* (serial in force, FLOPs left, chip time) against what the license ledger says was issued
to it. An honest chip can never fail these checks: its serial is one it was issued, its remaining
budget is at most the sum of what it was issued up to that serial, its serial never goes down,
and it forfeits budget when its license expires. A chip that fails one lies (or was tampered
with) about its licensing.

Pure: the caller reads the ledger view from its store; this module reads nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from attest.licensing.messages import LicenseState
from attest.licensing.reasons import LicenseReason


@dataclass(frozen=True, slots=True)
class IssuedLicense:
    """One ledger row as the appraisal needs it."""

    serial: int
    budget_flops: int
    #: chip operating time (seconds) from which the license is void
    expiry_s: int


@dataclass(frozen=True, slots=True)
class LedgerView:
    """Everything issued to one chip, plus the highest serial it reported in accepted evidence."""

    issued: Mapping[int, IssuedLicense] = field(default_factory=lambda: MappingProxyType({}))
    reported_serial: int = 0
    #: a roaming chip's own authority, when a partner's committee judged its chain under a
    #: federation agreement (None: a chip of this node's authority)
    partner: str | None = None
    #: with ``partner``: the FLOPs the agreement lets this node's authority license to that
    #: authority's chips in all (0: none; SPEC B.5)
    partner_quota: int = 0

    @classmethod
    def of(cls, issued: Iterable[IssuedLicense], reported_serial: int = 0) -> LedgerView:
        return cls(MappingProxyType({i.serial: i for i in issued}), reported_serial)

    @property
    def latest_serial(self) -> int:
        return max(self.issued, default=0)


@dataclass(frozen=True, slots=True)
class LicenseFindings:
    """The outcome of each licensing check (True = failed)."""

    serial_unknown: bool = False
    budget_exceeds_issued: bool = False
    serial_rollback: bool = False
    expiry_ignored: bool = False


def check_license_state(state: LicenseState | None, ledger: LedgerView | None) -> LicenseFindings:
    """Evaluate every licensing check (no early exit; the loop visits every ledger row).

    Without a ledger (licensing not enforced by this verifier) or without a reported state
    (a chip without the mechanism) nothing is checked.
    """
    if ledger is None or state is None:
        return LicenseFindings()
    issued_up_to = 0
    known = False
    expiry = None
    for row in ledger.issued.values():
        upto = row.serial <= state.serial
        issued_up_to += row.budget_flops if upto else 0
        match = row.serial == state.serial
        known |= match
        if match:
            expiry = row.expiry_s
    chip_time = state.chip_time_s
    expired = expiry is not None and chip_time is not None and chip_time >= expiry
    return LicenseFindings(
        serial_unknown=(state.serial != 0) & (not known),
        budget_exceeds_issued=state.remaining_flops > issued_up_to,
        serial_rollback=state.serial < ledger.reported_serial,
        expiry_ignored=expired & (state.remaining_flops > 0),
    )


def license_reasons(findings: LicenseFindings) -> tuple[LicenseReason, ...]:
    """The reason codes of failed checks, in code order."""
    table = (
        (LicenseReason.LICENSE_SERIAL_UNKNOWN, findings.serial_unknown),
        (LicenseReason.LICENSE_BUDGET_EXCEEDS_ISSUED, findings.budget_exceeds_issued),
        (LicenseReason.LICENSE_SERIAL_ROLLBACK, findings.serial_rollback),
        (LicenseReason.LICENSE_EXPIRY_IGNORED, findings.expiry_ignored),
    )
    return tuple(r for r, failed in table if failed)
