"""Appraisal policy: which chip models a verifier knows and which firmware it trusts.

The built-in simulated models and firmware are the defaults; vendors add theirs through signed
reference-values documents (attest.messages.reference, attest.verify.references).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from attest.hardware import (
    DEFAULT_MODELS,
    KNOWN_FIRMWARE,
    ChipModel,
    simulated_firmware_measurement,
)
from attest.messages.reference import FirmwareReference, FirmwareStatus

__all__ = ["ChipModel", "FirmwareReference", "FirmwareStatus", "Policy", "parse_version"]


@dataclass(frozen=True, slots=True)
class Policy:
    """Inputs of appraisal that an operator chooses (SPEC.md §8)."""

    policy_id: str = "attest-default-v1"
    models: Mapping[str, ChipModel] = field(default_factory=lambda: DEFAULT_MODELS)
    min_firmware: tuple[int, ...] = (1, 1, 0)
    firmware_measurements: Mapping[tuple[int, ...], bytes] = field(
        default_factory=lambda: MappingProxyType(
            {v: simulated_firmware_measurement(v) for v in KNOWN_FIRMWARE}
        )
    )
    challenge_ttl_s: int = 30
    #: appraise chips with no registry entry (first contact); if False they get NOT_ENROLLED
    allow_unknown_chips: bool = True
    #: vendors' reference values by (model, firmware version): they take precedence over
    #: ``firmware_measurements`` for that model and add a status (attest.verify.references)
    references: Mapping[tuple[str, tuple[int, ...]], FirmwareReference] = field(
        default_factory=lambda: MappingProxyType({})
    )
    #: models with at least one reference: their firmware is known only from the references
    #: (the version table ``firmware_measurements`` speaks for the other models)
    referenced_models: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "referenced_models", frozenset(model for model, _ in self.references)
        )


def parse_version(text: str) -> tuple[int, ...]:
    """'1.2.0' → (1, 2, 0) (a firmware version as the policy and licences name it)."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not a dotted version like 1.2.0")
    return tuple(int(p) for p in parts)
