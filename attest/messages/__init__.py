"""Message types: frozen dataclasses that travel as COSE_Sign1 tokens with CBOR claim payloads."""

from attest.messages.attestation import AttestationResult, Challenge, Evidence, Meters
from attest.messages.certs import DeviceCert, ManufacturerCert, VerifierCert
from attest.messages.revocation import RevocationList, Revocations

__all__ = [
    "AttestationResult",
    "Challenge",
    "DeviceCert",
    "Evidence",
    "ManufacturerCert",
    "Meters",
    "RevocationList",
    "Revocations",
    "VerifierCert",
]
