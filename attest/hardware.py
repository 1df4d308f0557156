"""Accelerator models and simulated firmware: physical facts shared by chips and verifiers.

Peak rates bound how fast an honest chip's meters can grow; they are properties of the silicon
(published by the vendor, checked by the authority), so a meter that grew faster than
``elapsed x peak`` proves the chip lied or was tampered with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class ChipModel:
    """Physical limits of one accelerator model (``hwmodel`` in its device certificate)."""

    name: str
    peak_flops_per_s: int
    peak_power_mw: int  # the energy meter counts millijoules, so mJ/s = mW
    peak_interconnect_bytes_per_s: int
    max_pod_size: int

    def peaks(self) -> tuple[int, int, int]:
        """Peak growth per second of each meter, in the order of ``Meters.as_tuple``."""
        return (self.peak_flops_per_s, self.peak_power_mw, self.peak_interconnect_bytes_per_s)


#: Simulated accelerator models (fictitious names, realistic magnitudes).
DEFAULT_MODELS: Mapping[str, ChipModel] = MappingProxyType(
    {
        # datacentre part sold in 8-chip boards
        "HX100": ChipModel("HX100", 10**15, 700_000, 900 * 10**9, 8),
        # datacentre part certified for 64-chip pods
        "HX800": ChipModel("HX800", 2 * 10**15, 1_000_000, 900 * 10**9, 64),
        # consumer part: a pod of one
        "CX10": ChipModel("CX10", 10**14, 450_000, 64 * 10**9, 1),
    }
)


def simulated_firmware_measurement(version: tuple[int, ...]) -> bytes:
    """Digest of the simulated firmware image of ``version`` (what an honest chip reports)."""
    text = ".".join(str(p) for p in version)
    return hashlib.sha256(b"attest-simulated-firmware:" + text.encode()).digest()


#: Firmware versions whose simulated images the default policy knows.
KNOWN_FIRMWARE: tuple[tuple[int, ...], ...] = ((1, 0, 0), (1, 1, 0), (1, 2, 0), (2, 0, 0))
