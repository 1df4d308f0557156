"""Fixed Set: full-bandwidth links only between the members of one certified pod.

The mechanism's package (registered in :mod:`attest.registry`):

* ``messages`` — PodCert, the two signed link proofs, its Evidence claims (wire formats);
* ``claims`` — its claim keys; ``reasons`` — its reason codes (130-159); ``names`` — the
  chip's refusal names;
* ``cert`` — verifying pod certificates, the chip's acceptance rules;
* ``link`` — the link handshake: a declaration on the sans-I/O kernel, and its decisions;
* ``links`` — a chip's link table (full vs capped, re-verification, refusals);
* ``chip`` — the chip's pod slot and its chip part; ``driver`` — trio driver of handshakes;
* ``graph`` — the pure appraisal of the reported link graph;
* ``tables`` — its tables in the node's database; ``verifier`` — its verifier part;
* ``cli`` — its commands (only attest.cli imports it).
"""

from __future__ import annotations

from typing import Any

from attest.mechanism import ChipHost, DeviceSigner, Mechanism, NodeContext
from attest.messages.claims import private_claim_names
from attest.pods import claims as _claims
from attest.pods import reasons as _reasons
from attest.pods.chip import PodsChip
from attest.pods.messages import (
    EVIDENCE_CLAIMS,
    LINK_CONFIRM_CONTENT_TYPE,
    LINK_RESPONSE_CONTENT_TYPE,
    POD_CERT_CONTENT_TYPE,
)
from attest.pods.names import Refusal
from attest.pods.verifier import PodsVerifier


def _chip_part(host: ChipHost, saved: Any, sign: DeviceSigner) -> PodsChip:
    """Every chip has a pod slot (empty until a pod certificate is installed)."""
    return PodsChip(host, sign)


def _verifier_part(ctx: NodeContext) -> PodsVerifier:
    return PodsVerifier.for_node(ctx)


MECHANISM = Mechanism(
    name="pods",
    title="Fixed Set",
    reasons=(_reasons.PodReason, _reasons.FIRST, _reasons.LAST),
    evidence_claims=EVIDENCE_CLAIMS,
    content_types=(POD_CERT_CONTENT_TYPE, LINK_RESPONSE_CONTENT_TYPE, LINK_CONFIRM_CONTENT_TYPE),
    claim_names=private_claim_names(vars(_claims)),
    verifier=_verifier_part,
    chip=_chip_part,
    cli="attest.pods.cli",
)

__all__ = ["MECHANISM", "Refusal"]
