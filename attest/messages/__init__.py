"""Message types: frozen dataclasses that travel as COSE_Sign1 tokens with CBOR claim payloads.

These are the core messages; each mechanism defines its own in its package (attest/licensing,
attest/pods ...) with the same schema machinery (:mod:`attest.messages.schema`).
"""

from attest import speed
from attest.messages.attestation import AttestationResult, Challenge, Evidence, Meters
from attest.messages.certs import DeviceCert, ManufacturerCert, VerifierCert
from attest.messages.content import ContentType
from attest.messages.revocation import RevocationList, Revocations

if speed.FAST:  # the one switch (attest/speed.py)
    from attest.messages import _fast

    _fast.install()

__all__ = [
    "AttestationResult",
    "Challenge",
    "ContentType",
    "DeviceCert",
    "Evidence",
    "ManufacturerCert",
    "Meters",
    "RevocationList",
    "Revocations",
    "VerifierCert",
]
