"""Compromised chips for attack simulation (demo, tests, vectors).

A physically attacked chip can make its own key sign anything. These subclasses model exactly
that — the key still never leaves the chip object — so attacks are produced by the same signing
code as honest evidence and differ only in their claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from attest.chip.device import Chip, PartFactory
from attest.mechanism import DeviceSigner
from attest.messages.attestation import Evidence
from attest.pods.chip import PodsChip
from attest.verify.chain import DeviceChain


class CompromisedChip(Chip):
    """A chip whose firmware signs whatever Evidence it is told to."""

    def sign_arbitrary_evidence(self, evidence: Evidence) -> bytes:
        return self._sign_evidence(evidence)

    def install_endorsement(self, device_cert: bytes, manufacturer_cert: bytes) -> None:
        """Takes any chain unchecked: a counterfeit fab's chips carry its uncertified chain."""
        self._install(DeviceChain(device_cert, manufacturer_cert))


# -- Fixed Set (attest/pods) ---------------------------------------------------------------------
def _tampered_pods(host: Any, saved: Any, sign: DeviceSigner) -> PodsChip:
    return PodsChip(host, sign, enforce=False)


class TamperedFirmwareChip(Chip):
    """Firmware that ignores the pod rule: it links at full bandwidth with anyone who answers.

    It installs any genuine pod certificate (whatever its size or membership), accepts every
    peer whose certificate verifies, and signs ``accept = true`` for it. ``hide_links`` makes
    it also lie to the verifier: it then reports only the links to members of its own pod
    (its refusal proofs and pod id stay as an honest chip would report them).
    """

    PART_OVERRIDES: ClassVar[Mapping[str, PartFactory]] = {"pods": _tampered_pods}

    @property
    def hide_links(self) -> bool:
        return self.part(PodsChip).hide_links

    @hide_links.setter
    def hide_links(self, value: bool) -> None:
        self.part(PodsChip).hide_links = value
