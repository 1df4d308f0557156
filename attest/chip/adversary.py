"""Compromised chips for attack simulation (demo, tests, vectors).

A physically attacked chip can make its own key sign anything. These subclasses model exactly
that — the key still never leaves the chip object — so attacks are produced by the same signing
code as honest evidence and differ only in their claims.
"""

from __future__ import annotations

from attest.chip.device import Chip
from attest.messages.attestation import Evidence


class CompromisedChip(Chip):
    """A chip whose firmware signs whatever Evidence it is told to."""

    def sign_arbitrary_evidence(self, evidence: Evidence) -> bytes:
        return self._sign_evidence(evidence)


# -- Fixed Set (attest/pods) ---------------------------------------------------------------------
class TamperedFirmwareChip(Chip):
    """Firmware that ignores the pod rule: it links at full bandwidth with anyone who answers.

    It installs any genuine pod certificate (whatever its size or membership), accepts every
    peer whose certificate verifies, and signs ``accept = true`` for it. ``hide_links`` makes
    it also lie to the verifier: it then reports only the links to members of its own pod
    (its refusal proofs and pod id stay as an honest chip would report them).
    """

    enforces_pod_rule = False
    hide_links: bool = False

    def pod_claims(self, now_s: float) -> dict[str, object]:
        claims = super().pod_claims(now_s)
        cred = self.pod.credential
        if self.hide_links and "links" in claims:
            members = {u for u, _ in cred.cert.members} if cred is not None else set()
            claims["links"] = tuple(p for p in claims["links"] if p in members)  # type: ignore[attr-defined]
        return claims
