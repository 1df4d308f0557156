"""The mechanisms this build of attest runs: the one list, and the registration it implies.

Adding a mechanism is its own package plus one line here. Importing this module registers each
mechanism's reason codes (:func:`attest.verify.reasons.register_reasons`) and Evidence claims
(:func:`attest.messages.schema.register_extension`); the message and reason layers import it
themselves the first time they need the complete set, so the wire format never depends on
what a program happened to import first.
"""

from __future__ import annotations

from attest.federation import MECHANISM as FEDERATION
from attest.licensing import MECHANISM as LICENSING
from attest.location import MECHANISM as LOCATION
from attest.mechanism import Mechanism
from attest.messages.attestation import Evidence
from attest.messages.content import ContentType
from attest.messages.schema import register_extension
from attest.pods import MECHANISM as PODS
from attest.verify.reasons import register_reasons

#: in the order their reasons, claims, steps and log fields are combined
MECHANISMS: tuple[Mechanism, ...] = (LICENSING, PODS, LOCATION, FEDERATION)


def _register(mechanisms: tuple[Mechanism, ...]) -> None:
    names = [m.name for m in mechanisms]
    if len(set(names)) != len(names):
        raise ValueError(f"two mechanisms share a name: {names}")
    for m in mechanisms:
        if m.reasons is not None:
            register_reasons(*m.reasons)
        for claim in m.evidence_claims:
            register_extension(Evidence, claim)


_register(MECHANISMS)


def content_types() -> tuple[str, ...]:
    """Every content type of the protocol: the core's, then each mechanism's."""
    return (*ContentType, *(ct for m in MECHANISMS for ct in m.content_types))


def mechanism(name: str) -> Mechanism:
    """The registered mechanism called ``name`` (KeyError if there is none)."""
    for m in MECHANISMS:
        if m.name == name:
            return m
    raise KeyError(name)
