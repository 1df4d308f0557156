"""The Fixed Set inside a chip: its pod slot, its link table and the Evidence claims they give.

:class:`PodState` is the pod slot: the installed pod certificate and the pod revocations the
chip knows.

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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from attest.codec.cbor import decode, encode
from attest.durable import atomic_write
from attest.errors import AttestError, CertificateError, ChipRefusal
from attest.keys import PublicKey
from attest.mechanism import ChipHost, Grant
from attest.messages.revocation import verify_newer_list
from attest.messages.schema import SignedMessage
from attest.pods.cert import PodCredential, install_refusal, open_pod_cert
from attest.pods.link import LinkContext
from attest.pods.links import LinkTable
from attest.pods.names import Refusal
from attest.verify.chain import TrustAnchors

__all__ = ["LinkContext", "LinkTable", "PodState", "PodsChip", "Refusal"]

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
        rl = verify_newer_list(
            token, anchors.authority_id, anchors.authority_key, self.revocations_number
        )
        return replace(self, revocations_number=rl.number, revoked_pods=frozenset(rl.pods))


class PodsChip:
    """The Fixed Set part of one chip (a :class:`~attest.mechanism.ChipPart`).

    ``enforce`` is False only in tampered firmware (attest.chip.adversary), which ignores the
    pod rule; ``hide_links`` makes such firmware also report only its links to members of its
    own pod.
    """

    def __init__(
        self,
        host: ChipHost,
        sign: Callable[[SignedMessage], bytes],
        *,
        enforce: bool = True,
        hide_links: bool = False,
    ) -> None:
        self._host = host
        self._sign = sign
        self.enforce = enforce
        self.hide_links = hide_links
        self.pod = (
            PodState() if host.state_dir is None else PodState.load(host.state_dir, host.anchors)
        )
        self.links = LinkTable(peak_bps=host.model.peak_interconnect_bytes_per_s)

    def install_pod_cert(self, token: bytes, issuer_cert: bytes = b"", *, now_s: int) -> None:
        """Adopt a pod certificate (at a trusted facility); raises ChipRefusal naming the rule.

        The certificate must verify, name an unrevoked pod within this model's size limit and
        list this chip with its own device key. Full links of a previous pod drop to the cap.
        """
        host = self._host
        self.pod = self.pod.install(
            token,
            issuer_cert,
            anchors=host.anchors,
            ueid=host.ueid,
            device_key=host.public_key,
            max_pod_size=host.model.max_pod_size,
            now_s=now_s,
            enforce=self.enforce,
        )
        self.pod.save(host.state_dir)
        self.links.drop_all(Refusal.POD_CHANGED, now_s)

    def apply_revocations(self, token: bytes) -> int:
        """Adopt a newer authority revocation list for its revoked pods; returns its number.

        Links are not cut here: the next re-verification of each link refuses a revoked pod.
        """
        self.pod = self.pod.adopt_revocations(token, self._host.anchors)
        self.pod.save(self._host.state_dir)
        return self.pod.revocations_number

    def link_context(self) -> LinkContext:
        """This chip's side of a link handshake round: pod state snapshot and its signer."""
        host = self._host
        return LinkContext(
            ueid=host.ueid,
            anchors=host.anchors,
            credential=self.pod.credential,
            revoked_pods=self.pod.revoked_pods,
            max_pod_size=host.model.max_pod_size,
            sign=self._sign,
            enforce=self.enforce,
        )

    # -- the ChipPart ----------------------------------------------------------------------
    def evidence_claims(self, now_s: float) -> Mapping[str, Any]:
        """Pod id, live full links, refusal proofs (none for a chip with no pod and no links)."""
        links, refusals = self.links.report(now_s)
        claims: dict[str, Any] = {}
        if self.pod.pod_id is not None or links:
            if self.hide_links:  # tampered firmware lying to its verifier
                cred = self.pod.credential
                members = {u for u, _ in cred.cert.members} if cred is not None else set()
                links = tuple(p for p in links if p in members)
            claims["pod_id"] = self.pod.pod_id
            claims["links"] = links
        if refusals:
            claims["link_refusals"] = refusals
        return claims

    def usage(
        self, seconds: float, share: float, peaks: tuple[int, int, int], chip_time_ms: int
    ) -> tuple[float, float, float] | None:
        return None

    def accept_grant(self, grant: Grant, *, session_nonce: bytes, now_s: float) -> str | None:
        return None

    def loaded(self) -> None:
        return None

    def save(self) -> dict[str, Any] | None:
        return None  # the pod slot keeps its own file (pod.cbor)
