"""Offline Licensing: a chip ships throttled; a licence bound to it unlocks a budget.

The mechanism's package (registered in :mod:`attest.registry`):

* ``messages`` — Delegation, License and the license state in Evidence (wire formats);
* ``claims`` — its claim keys; ``reasons`` — its reason codes (100-129);
* ``chip`` — the chip's acceptance checks, budget accounting and its chip part;
* ``checks`` — the verifier's ledger checks of a reported license state (pure);
* ``issuer`` / ``authority`` / ``quota`` — renewals, signing acts, quota arithmetic;
* ``ledger`` — its tables in the node's database; ``verifier`` — its verifier part;
* ``cli`` — its commands (only attest.cli imports it).
"""

from __future__ import annotations

from attest.licensing import chip as _chip
from attest.licensing import claims as _claims
from attest.licensing import reasons as _reasons
from attest.licensing import verifier as _verifier
from attest.licensing.messages import (
    DELEGATION_CONTENT_TYPE,
    LICENSE_CONTENT_TYPE,
    LICENSE_STATE,
)
from attest.mechanism import Mechanism
from attest.messages.claims import METER_NAMES, private_claim_names

MECHANISM = Mechanism(
    name="licensing",
    title="Offline Licensing",
    reasons=(_reasons.LicenseReason, _reasons.FIRST, _reasons.LAST),
    evidence_claims=(LICENSE_STATE,),
    content_types=(LICENSE_CONTENT_TYPE, DELEGATION_CONTENT_TYPE),
    claim_names=private_claim_names(vars(_claims)),
    member_names={
        "hem-license-state": {
            _claims.LICENSE_STATE_SERIAL: "serial",
            _claims.LICENSE_STATE_REMAINING_FLOPS: "remaining_flops",
            _claims.LICENSE_STATE_CHIP_TIME: "chip_time",
        },
        "hem-license-budgets": METER_NAMES,
        "hem-delegation-quota": METER_NAMES,
    },
    config=_verifier.LicensingSection,
    check_config=_verifier.check_section,
    verifier=_verifier.build,
    chip=_chip.chip_part,
    cli="attest.licensing.cli",
)
