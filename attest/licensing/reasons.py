"""Reason codes of Offline Licensing (100-129): the chip's reported license state is checked
against what the ledger says was issued to it (attest.licensing.checks).

Each is AR4SI ``executables`` 96 (contraindicated run-time): an honest firmware enforces its
licences and cannot report what these checks catch, whatever its measurement says."""

from __future__ import annotations

from attest.verify.reasons import ReasonCode, Trust

FIRST, LAST = 100, 129


class LicenseReason(ReasonCode):
    #: the chip reports a license serial the ledger never issued to it
    LICENSE_SERIAL_UNKNOWN = 100, Trust.EXECUTABLES, 96
    #: the chip reports more budget left than the ledger ever issued to it
    LICENSE_BUDGET_EXCEEDS_ISSUED = 101, Trust.EXECUTABLES, 96
    #: the chip reports a lower license serial than it reported before
    LICENSE_SERIAL_ROLLBACK = 102, Trust.EXECUTABLES, 96
    #: the chip claims budget left on a license that has expired in its own chip time
    LICENSE_EXPIRY_IGNORED = 103, Trust.EXECUTABLES, 96
