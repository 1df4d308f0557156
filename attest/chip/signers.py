"""Device keys held outside the chip object: a :class:`~attest.keys.Signer` that runs a command.

A vendor's chip may keep its device key in an HSM, a TPM or a separate process; attest's chip
logic then needs only something that signs. :class:`CommandSigner` is the example: it writes the
message to a private temporary file, runs a command (``{message}`` in its arguments is replaced by
that file's path) and reads the 64-byte signature from its standard output. With OpenSSL 3::

    openssl pkeyutl -sign -rawin -inkey device.pem -in {message}

Every signature is checked against the public key before it is used, so a misconfigured or
failing signer is caught at the first message, never sent.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from typing import Any

from attest.errors import AttestError
from attest.keys import SIGNATURE_BYTES, PublicKey

#: the placeholder a command's arguments use for the path of the message file
MESSAGE_PLACEHOLDER = "{message}"
DEFAULT_TIMEOUT_S = 10.0


class SignerError(AttestError):
    """The external signer failed or returned something that is not a valid signature."""


class CommandSigner:
    """Signs by running a command (see the module docstring)."""

    def __init__(
        self, argv: Sequence[str], public_key: PublicKey, *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        if not argv or not any(MESSAGE_PLACEHOLDER in a for a in argv):
            raise ValueError(f"the command must name the message file as {MESSAGE_PLACEHOLDER}")
        self.argv = tuple(argv)
        self._public_key = public_key
        self.timeout_s = timeout_s

    @property
    def public_key(self) -> PublicKey:
        return self._public_key

    def sign(self, message: bytes) -> bytes:
        with tempfile.TemporaryDirectory(prefix="attest-sign-") as folder:
            path = os.path.join(folder, "message")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(message)
            argv = [a.replace(MESSAGE_PLACEHOLDER, path) for a in self.argv]
            try:
                run = subprocess.run(argv, capture_output=True, timeout=self.timeout_s, check=False)
            except subprocess.TimeoutExpired:
                raise SignerError(
                    f"signer {self.argv[0]!r} gave no signature within {self.timeout_s:g} s"
                ) from None
            except OSError as exc:
                raise SignerError(f"signer {self.argv[0]!r} did not run: {exc}") from None
        if run.returncode != 0:
            detail = run.stderr.decode(errors="replace").strip()[:200]
            raise SignerError(f"signer {self.argv[0]!r} exited {run.returncode}: {detail}")
        signature = run.stdout
        if len(signature) != SIGNATURE_BYTES or not self._public_key.verify(message, signature):
            raise SignerError(
                f"signer {self.argv[0]!r} returned {len(signature)} bytes that are not a valid "
                "Ed25519 signature under the chip's public key"
            )
        return signature

    def to_state(self) -> dict[str, Any]:
        """What a chip's state file keeps to run this signer again (no secret in it)."""
        return {"kind": "command", "argv": list(self.argv), "public_key": self._public_key.raw}

    @classmethod
    def from_state(cls, state: Any) -> CommandSigner:
        if not isinstance(state, dict) or state.get("kind") != "command":
            raise AttestError("unknown signer in the chip state")
        return cls([str(a) for a in state["argv"]], PublicKey(state["public_key"]))
