"""Ed25519 keys over libsodium (PyNaCl).

The secret half of a key lives only inside a :class:`SigningKey`; it has no accessor that
returns it, no ``repr`` that shows it and refuses to be pickled. The one way out is
:func:`write_secret_key`, which writes a 0600 file for an operator's key store or a chip's own
state directory. Deterministic derivation from a label exists only for tests and published
vectors and says so in its name.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.signing
from nacl.bindings import crypto_sign_open

from attest.durable import atomic_write
from attest.errors import AttestError, DecodeError

SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """libsodium's strict Ed25519 verification; lengths are checked before libsodium is called."""
    if type(signature) is not bytes or len(signature) != SIGNATURE_BYTES:
        return False
    if type(public_key) is not bytes or len(public_key) != PUBLIC_KEY_BYTES:
        return False
    try:
        crypto_sign_open(signature + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A 32-byte Ed25519 public key."""

    raw: bytes

    def __post_init__(self) -> None:
        if type(self.raw) is not bytes or len(self.raw) != PUBLIC_KEY_BYTES:
            raise DecodeError("an Ed25519 public key is exactly 32 bytes")

    def verify(self, message: bytes, signature: bytes) -> bool:
        return ed25519_verify(self.raw, message, signature)

    def __repr__(self) -> str:
        return f"PublicKey({self.raw.hex()})"


class SigningKey:
    """An Ed25519 signing key whose secret never leaves the object (except to a 0600 file)."""

    __slots__ = ("__sk", "public_key")

    def __init__(self, _sk: nacl.signing.SigningKey) -> None:
        self.__sk = _sk
        self.public_key = PublicKey(bytes(_sk.verify_key))

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh key from libsodium's CSPRNG."""
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def derive_insecure_for_tests(cls, label: str) -> SigningKey:
        """Deterministic key from a public label. ONLY for tests and published vectors."""
        return cls(
            nacl.signing.SigningKey(hashlib.sha256(b"attest-test-key:" + label.encode()).digest())
        )

    def sign(self, message: bytes) -> bytes:
        """Detached 64-byte Ed25519 signature (RFC 8032, deterministic)."""
        return self.__sk.sign(message).signature

    def __repr__(self) -> str:
        return f"SigningKey(public={self.public_key.raw.hex()})"

    def __reduce__(self) -> object:
        raise TypeError("signing keys cannot be pickled")

    def _seed(self) -> bytes:
        # Name-mangled accessor used only by write_secret_key below.
        return bytes(self.__sk)


_KEYFILE_MAGIC = b"attest-ed25519-seed-v1\n"


def write_secret_key(path: str | os.PathLike[str], key: SigningKey) -> None:
    """Write ``key`` to a file with mode 0600, durably. The only way a secret leaves its object."""
    atomic_write(path, _KEYFILE_MAGIC + key._seed().hex().encode() + b"\n", mode=0o600)


def read_secret_key(path: str | os.PathLike[str]) -> SigningKey:
    """Read a key written by :func:`write_secret_key`."""
    data = Path(path).read_bytes()
    if not data.startswith(_KEYFILE_MAGIC):
        raise AttestError(f"{path}: not an attest secret key file")
    try:
        seed = bytes.fromhex(data[len(_KEYFILE_MAGIC) :].decode().strip())
    except ValueError:
        raise AttestError(f"{path}: corrupt secret key file") from None
    if len(seed) != 32:
        raise AttestError(f"{path}: corrupt secret key file")
    return SigningKey(nacl.signing.SigningKey(seed))
