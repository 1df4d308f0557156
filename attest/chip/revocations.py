"""How a chip adopts an authority revocation list: one rule for every mechanism that keeps one.

A chip accepts a list only if the authority signed it and its number is above the number the
mechanism already holds, so an old list can never be replayed to un-revoke a delegation or pod.
"""

from __future__ import annotations

from attest.errors import AttestError, ChipRefusal
from attest.messages.revocation import RevocationList
from attest.verify.chain import TrustAnchors

REVOCATIONS_INVALID = "REVOCATIONS_INVALID"
REVOCATIONS_STALE = "REVOCATIONS_STALE"


def verify_newer_list(token: bytes, anchors: TrustAnchors, held_number: int) -> RevocationList:
    """The list in ``token`` if the authority signed it and it is newer than ``held_number``."""
    try:
        rl = RevocationList.verify(token, anchors.authority_key)
    except AttestError as exc:
        raise ChipRefusal(REVOCATIONS_INVALID, str(exc)) from None
    if rl.issuer != anchors.authority_id:
        raise ChipRefusal(REVOCATIONS_INVALID, f"list issued by {rl.issuer!r}, not the authority")
    if rl.number <= held_number:
        raise ChipRefusal(REVOCATIONS_STALE, f"list {rl.number} is not newer than {held_number}")
    return rl
