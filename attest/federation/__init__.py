"""Federation: several authorities, one coalition (SPEC Appendix B).

* ``sign`` — COSE_Sign (tag 98) acts with one COSE_Signature per officer, the strict check;
* ``committee`` — k-of-n committee descriptors, genesis and rotation;
* ``agreement`` — federation agreements: members, thresholds, what each recognises of whom;
* ``route`` — cross-recognition: which anchors judge a chip's chain, which results count;
* ``state`` — the agreement and partners' committees a verifier keeps durably (anti-rollback);
* ``verifier`` — its ``[federation]`` section and verifier part (a ChainPart on the seam);
* ``chip`` — a chip's agreement and the partner verifier nodes it answers;
* ``reasons`` — its reason codes (190-219); ``claims`` — its claim keys (-70400 .. -70499);
* ``cli`` — ``attest federation ...`` (only attest.cli imports it).
"""

from __future__ import annotations

from attest.federation import chip as _chip
from attest.federation import reasons as _reasons
from attest.federation import verifier as _verifier
from attest.federation.agreement import AGREEMENT_CONTENT_TYPE
from attest.federation.committee import COMMITTEE_CONTENT_TYPE
from attest.mechanism import Mechanism

#: the content types of federation's own documents, COSE_Sign objects (SPEC B.2)
SIGN_CONTENT_TYPES = (COMMITTEE_CONTENT_TYPE, AGREEMENT_CONTENT_TYPE)

MECHANISM = Mechanism(
    name="federation",
    title="Federation",
    reasons=(_reasons.FederationReason, _reasons.FIRST, _reasons.LAST),
    # its content types (committee, agreement) are COSE_Sign, not the COSE_Sign1 profile that
    # Mechanism.content_types lists (SPEC §4.4); see SIGN_CONTENT_TYPES
    config=_verifier.FederationSection,
    check_config=_verifier.check_section,
    verifier=_verifier.build,
    chip=_chip.chip_part,
    cli="attest.federation.cli",
)
