"""Content types (COSE header label 3) of the core message types.

A content type names one message type inside the signed protected header, so a signature made
over one type never verifies as another. Mechanisms name the content types of their own messages
in their packages (e.g. :mod:`attest.licensing.messages`); every message class registers its
type with the codec when it is defined (:class:`attest.messages.schema.SignedMessage`).
"""

from __future__ import annotations

import enum


class ContentType(enum.StrEnum):
    """Media types of the core signed messages."""

    MANUFACTURER_CERT = "application/vnd.attest.manufacturer-cert+cbor"
    DEVICE_CERT = "application/vnd.attest.device-cert+cbor"
    VERIFIER_CERT = "application/vnd.attest.verifier-cert+cbor"
    REVOCATION_LIST = "application/vnd.attest.revocation-list+cbor"
    CHALLENGE = "application/vnd.attest.challenge+cbor"
    EVIDENCE = "application/vnd.attest.evidence+cbor"
    RESULT = "application/vnd.attest.result+cbor"
    AUDIT_CHECKPOINT = "application/vnd.attest.audit-checkpoint+cbor"
    REFERENCE_VALUES = "application/vnd.attest.reference-values+cbor"
