"""Stable names of the chip-side Fixed Set refusals (raised as ``ChipRefusal(Refusal.X)``).

They never travel as reason codes; they name the failed check in logs, tests and the link
REFUSE frame, so a peer (and its operator) learns why a link stayed capped.
"""

from __future__ import annotations

import enum


class Refusal(enum.StrEnum):
    """Why a chip refused a pod certificate or a full-bandwidth link."""

    # -- installing a pod certificate (and checking a peer's, in the handshake)
    POD_CERT_INVALID = "POD_CERT_INVALID"
    POD_REVOKED = "POD_REVOKED"
    POD_TOO_LARGE = "POD_TOO_LARGE"
    POD_NOT_MEMBER = "POD_NOT_MEMBER"
    # (a revocation list is refused by the rule every mechanism shares:
    # attest.messages.revocation.ListRefusal)
    # -- the link handshake
    LINK_NO_POD = "LINK_NO_POD"
    LINK_NOT_MEMBER = "LINK_NOT_MEMBER"
    LINK_SELF = "LINK_SELF"
    LINK_PROOF_INVALID = "LINK_PROOF_INVALID"
    LINK_PROOF_MISMATCH = "LINK_PROOF_MISMATCH"
    LINK_PEER_REFUSED = "LINK_PEER_REFUSED"
    LINK_PROTOCOL_ERROR = "LINK_PROTOCOL_ERROR"
    # -- why a full link dropped to the cap without a refusal
    LINK_EXPIRED = "LINK_EXPIRED"
    POD_CHANGED = "POD_CHANGED"
