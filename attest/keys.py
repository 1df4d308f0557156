"""Ed25519 keys over libsodium (PyNaCl).

The secret half of a key lives only inside a :class:`SigningKey`; it has no accessor that
returns it, no ``repr`` that shows it and refuses to be pickled. The one way out is
:func:`write_secret_key`, which writes a 0600 file for an operator's key store or a chip's own
state directory. Deterministic derivation from a label exists only for tests and published
vectors and says so in its name.
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import nacl.bindings  # imports (and so initialises) PyNaCl's bundled libsodium
import nacl.exceptions
import nacl.signing

from attest.durable import atomic_write
from attest.errors import AttestError, DecodeError

SIGNATURE_BYTES = 64
PUBLIC_KEY_BYTES = 32


def _open_libsodium() -> tuple[
    Callable[[bytes, bytes, bytes], bool], Callable[[bytes, bytes], bool]
]:
    """``crypto_sign_verify_detached`` and ``sodium_memcmp`` of PyNaCl's libsodium, called directly.

    PyNaCl exposes only ``crypto_sign_open``, which copies ``signature || message`` into a new
    buffer, copies the message out again and raises on failure; that costs a few microseconds
    per call and an exception on the failure path (a timing difference between a good and a bad
    signature). libsodium's ``crypto_sign_open`` is ``crypto_sign_verify_detached`` plus those
    copies, so calling the detached function through cffi's ABI mode on the same shared object
    accepts exactly the same signatures. PyNaCl's ``sodium_memcmp`` wrapper likewise copies both
    inputs into fresh buffers; the direct call compares the bytes in place. If the symbols
    cannot be reached (a PyNaCl built against a system libsodium that hides them), PyNaCl's own
    bindings are used instead.
    """
    try:
        import cffi  # type: ignore[import-untyped]
        import nacl._sodium

        ffi = cffi.FFI()
        ffi.cdef(
            "int crypto_sign_verify_detached(const unsigned char *sig, const unsigned char *m,"
            " unsigned long long mlen, const unsigned char *pk);"
            "int sodium_memcmp(const void * const b1_, const void * const b2_, size_t len);"
        )
        lib = ffi.dlopen(nacl._sodium.__file__)
        verify = lib.crypto_sign_verify_detached
        memcmp = lib.sodium_memcmp
    except Exception:  # pragma: no cover - depends on how PyNaCl was built
        return _verify_via_open, _memcmp_via_pynacl

    def verify_detached(signature: bytes, message: bytes, public_key: bytes) -> bool:
        return bool(verify(signature, message, len(message), public_key) == 0)

    def sodium_equal(a: bytes, b: bytes) -> bool:
        # The lengths are public (fixed by the wire format); the contents are compared by
        # libsodium in time that depends only on the length.
        n = len(a)
        return n == len(b) and memcmp(a, b, n) == 0

    return verify_detached, sodium_equal


def _memcmp_via_pynacl(a: bytes, b: bytes) -> bool:
    return bool(nacl.bindings.sodium_memcmp(a, b))


def _verify_via_open(signature: bytes, message: bytes, public_key: bytes) -> bool:
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
        return False
    return True


#: (signature, message, public key) -> bool; lengths and types are checked by the caller.
#: ct_equal(a, b): libsodium's constant-time ``sodium_memcmp``; a length difference (public)
#: returns False without comparing.
_verify_detached, ct_equal = _open_libsodium()


def ed25519_verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """libsodium's strict Ed25519 verification; lengths are checked before libsodium is called."""
    if type(signature) is not bytes or len(signature) != SIGNATURE_BYTES:
        return False
    if type(public_key) is not bytes or len(public_key) != PUBLIC_KEY_BYTES:
        return False
    if type(message) is not bytes:
        message = bytes(message)
    return _verify_detached(signature, message, public_key)


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


class Signer(Protocol):
    """Anything that signs with an Ed25519 key it never hands out.

    :class:`SigningKey` is the in-process one; a vendor can drive attest's chip logic with a key
    held in an HSM or another process instead (attest.chip.signers.CommandSigner runs a
    command such as ``openssl pkeyutl``). ``sign`` returns a 64-byte RFC 8032 signature.
    """

    @property
    def public_key(self) -> PublicKey: ...

    def sign(self, message: bytes) -> bytes: ...


#: DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410 §4): SEQUENCE { SEQUENCE { OID
#: 1.3.101.112 }, BIT STRING (32 bytes) } — what ``openssl pkey -pubout`` writes
_SPKI_ED25519 = bytes.fromhex("302a300506032b6570032100")


def parse_public_key(data: bytes | str) -> PublicKey:
    """An Ed25519 public key in any form a vendor's tools write.

    Accepted: 64 hex digits; the 32 raw bytes; an RFC 8410 SubjectPublicKeyInfo in DER or in
    PEM (``-----BEGIN PUBLIC KEY-----``, as ``openssl pkey -pubout`` writes). Raises DecodeError.
    """
    raw = data.encode() if isinstance(data, str) else bytes(data)
    text = raw.strip()
    if text.startswith(b"-----BEGIN PUBLIC KEY-----"):
        body = text.split(b"\n")
        if not body[-1].strip().startswith(b"-----END PUBLIC KEY-----"):
            raise DecodeError("PEM public key without its END line")
        try:
            raw = base64.b64decode(b"".join(line.strip() for line in body[1:-1]), validate=True)
        except ValueError:
            raise DecodeError("PEM public key: not base64") from None
    elif len(text) == 2 * PUBLIC_KEY_BYTES and all(c in b"0123456789abcdefABCDEF" for c in text):
        return PublicKey(bytes.fromhex(text.decode()))
    if len(raw) == PUBLIC_KEY_BYTES:
        return PublicKey(raw)
    if len(raw) == len(_SPKI_ED25519) + PUBLIC_KEY_BYTES and raw.startswith(_SPKI_ED25519):
        return PublicKey(raw[len(_SPKI_ED25519) :])
    raise DecodeError(
        "not an Ed25519 public key (expected 64 hex digits, 32 bytes, or SubjectPublicKeyInfo "
        "DER/PEM with OID 1.3.101.112)"
    )


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

    def __reduce__(self) -> str:
        raise TypeError("signing keys cannot be pickled")

    def _seed(self) -> bytes:
        # Name-mangled accessor used only by write_secret_key below.
        return bytes(self.__sk)


_KEYFILE_MAGIC = b"attest-ed25519-seed-v1\n"


def write_secret_key(path: str | os.PathLike[str], key: SigningKey) -> None:
    """Write ``key`` to a file with mode 0600, durably. The only way a secret leaves its object."""
    atomic_write(path, _KEYFILE_MAGIC + key._seed().hex().encode() + b"\n", mode=0o600)


def read_secret_key(path: str | os.PathLike[str]) -> SigningKey:
    """Read a key written by :func:`write_secret_key`.

    Like ssh, refuse a key file that its group or others may read or write (mode & 0o077):
    a secret that anyone on the machine could have copied is no longer a secret, and using it
    silently would hide that.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        mode = os.fstat(fd).st_mode
        if mode & 0o077:
            raise AttestError(
                f"{path}: permissions {stat.S_IMODE(mode):04o} are too open: a secret key file "
                f"must be accessible by its owner only (chmod 600 {path})"
            )
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read()
    finally:
        os.close(fd)
    if not data.startswith(_KEYFILE_MAGIC):
        raise AttestError(f"{path}: not an attest secret key file")
    try:
        seed = bytes.fromhex(data[len(_KEYFILE_MAGIC) :].decode().strip())
    except ValueError:
        raise AttestError(f"{path}: corrupt secret key file") from None
    if len(seed) != 32:
        raise AttestError(f"{path}: corrupt secret key file")
    return SigningKey(nacl.signing.SigningKey(seed))
