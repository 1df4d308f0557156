"""Reason codes of Offline Licensing (100-129): the chip's reported license state is checked
against what the ledger says was issued to it (attest.licensing.checks)."""

from __future__ import annotations

from attest.verify.reasons import ReasonCode

FIRST, LAST = 100, 129


class LicenseReason(ReasonCode):
    #: the chip reports a license serial the ledger never issued to it
    LICENSE_SERIAL_UNKNOWN = 100
    #: the chip reports more budget left than the ledger ever issued to it
    LICENSE_BUDGET_EXCEEDS_ISSUED = 101
    #: the chip reports a lower license serial than it reported before
    LICENSE_SERIAL_ROLLBACK = 102
    #: the chip claims budget left on a license that has expired in its own chip time
    LICENSE_EXPIRY_IGNORED = 103
