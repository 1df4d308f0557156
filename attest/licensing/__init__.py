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
from attest.licensing import reasons as _reasons
from attest.licensing import verifier as _verifier
from attest.licensing.messages import (
    DELEGATION_CONTENT_TYPE,
    LICENSE_CONTENT_TYPE,
    LICENSE_STATE,
)
from attest.mechanism import Mechanism

MECHANISM = Mechanism(
    name="licensing",
    title="Offline Licensing",
    reasons=(_reasons.LicenseReason, _reasons.FIRST, _reasons.LAST),
    evidence_claims=(LICENSE_STATE,),
    content_types=(LICENSE_CONTENT_TYPE, DELEGATION_CONTENT_TYPE),
    config=_verifier.LicensingSection,
    check_config=_verifier.check_section,
    verifier=_verifier.build,
    chip=_chip.chip_part,
    cli="attest.licensing.cli",
)
