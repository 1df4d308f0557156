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
