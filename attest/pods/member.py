"""A chip's pod slot: its installed pod certificate and the pod revocations it knows.

Kept in its own file of the chip's state folder (``pod.cbor``, replaced atomically), apart from
the counters, so the Fixed Set mechanism and the attestation state evolve independently. The
rules a chip applies before it trusts a certificate live here, in the order SPEC (Fixed Set,
chip acceptance rules) gives them:

1. the certificate verifies (Authority, or certified unexpired manufacturer) — POD_CERT_INVALID;
2. its pod id is not on the chip's revocation list — POD_REVOKED;
3. its size class (and member count) is within the chip model's pod limit — POD_TOO_LARGE;
4. it lists this chip with this chip's device key — POD_NOT_MEMBER.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from attest.chip.revocations import verify_newer_list
from attest.codec.cbor import decode, encode
from attest.durable import atomic_write
from attest.errors import AttestError, CertificateError, ChipRefusal
from attest.keys import PublicKey
from attest.pods.cert import PodCredential, install_refusal, open_pod_cert
from attest.pods.link import LinkContext
from attest.pods.links import LinkTable
from attest.pods.names import Refusal
from attest.verify.chain import TrustAnchors

__all__ = ["LinkContext", "LinkTable", "PodState", "Refusal"]

POD_STATE_FILE = "pod.cbor"
_VERSION = 1


@dataclass(frozen=True, slots=True)
class PodState:
    """What a chip holds for the Fixed Set mechanism (immutable; replaced on change)."""

    credential: PodCredential | None = None
    #: number of the newest authority revocation list the chip adopted (0: none)
    revocations_number: int = 0
    revoked_pods: frozenset[bytes] = field(default_factory=frozenset)

    @property
    def pod_id(self) -> bytes | None:
        return self.credential.pod_id if self.credential is not None else None

    # -- persistence -----------------------------------------------------------------------
    def save(self, state_dir: Path | None) -> None:
        if state_dir is None:
            return
        cred = self.credential
        doc = {
            "v": _VERSION,
            "pod_cert": cred.token if cred else b"",
            "issuer_cert": cred.issuer_cert if cred else b"",
            "revocations_number": self.revocations_number,
            "revoked_pods": sorted(self.revoked_pods),
        }
        atomic_write(state_dir / POD_STATE_FILE, encode(doc))

    @classmethod
    def load(cls, state_dir: Path, anchors: TrustAnchors) -> PodState:
        """The saved slot (an empty one if none was saved).

        The certificate's signature is re-verified; its issuer's expiry was checked when it was
        installed and is checked again by every peer in every handshake.
        """
        path = state_dir / POD_STATE_FILE
        if not path.exists():
            return cls()
        try:
            doc = decode(path.read_bytes())
            if doc.get("v") != _VERSION:
                raise AttestError("unsupported pod state version")
            cred = None
            if doc["pod_cert"]:
                cred = open_pod_cert(doc["pod_cert"], doc["issuer_cert"], anchors, now_s=0)
            return cls(cred, doc["revocations_number"], frozenset(doc["revoked_pods"]))
        except (AttestError, OSError, KeyError, TypeError, AttributeError) as exc:
            raise AttestError(f"{path}: cannot load pod state: {exc}") from None

    # -- the acceptance rules --------------------------------------------------------------
    def install(
        self,
        token: bytes,
        issuer_cert: bytes,
        *,
        anchors: TrustAnchors,
        ueid: bytes,
        device_key: PublicKey,
        max_pod_size: int,
        now_s: int,
        enforce: bool = True,
    ) -> PodState:
        """The state with ``token`` installed; raises ChipRefusal naming the failed rule.

        ``enforce=False`` (tampered firmware) skips rules 2-4; a certificate must still verify,
        since the chip has to present it to peers.
        """
        try:
            cred = open_pod_cert(token, issuer_cert, anchors, now_s=now_s)
        except CertificateError as exc:
            raise ChipRefusal(str(Refusal.POD_CERT_INVALID), str(exc)) from None
        refusal = install_refusal(
            cred,
            ueid=ueid,
            device_key=device_key,
            max_pod_size=max_pod_size,
            revoked_pods=self.revoked_pods,
        )
        if refusal is not None and enforce:
            raise ChipRefusal(str(refusal))
        return replace(self, credential=cred)

    def adopt_revocations(self, token: bytes, anchors: TrustAnchors) -> PodState:
        """The state with a newer revocation list's pods; raises ChipRefusal otherwise (§12)."""
        rl = verify_newer_list(token, anchors, self.revocations_number)
        return replace(self, revocations_number=rl.number, revoked_pods=frozenset(rl.pods))
